"""The ``diffaif`` command line: thin subcommands over library functions."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from omegaconf import OmegaConf

from diffaif.config import ConfigError, build_config


EPISODES_FILE = "episodes.npz"


def _layers(args, **flags) -> list[dict]:
    """Config layers: an optional YAML file, then the explicit flags that were given."""
    layers: list = [args.config] if getattr(args, "config", None) else []
    layers.append({k: v for k, v in flags.items() if v is not None})
    return layers


def cmd_compare(args) -> None:
    from diffaif.experiments.compare import CompareConfig, run_comparison
    from diffaif.experiments.stats import format_table

    agents = args.agents.split(",") if args.agents else None
    config = build_config(CompareConfig, _layers(args, env=args.env, agents=agents, episodes=args.episodes,
                                                 seeds=args.seeds, out=args.out), args.overrides)
    summary = run_comparison(config)
    print(format_table(summary))
    print(f"wrote {Path(config.out).resolve()}")


def cmd_demo(args) -> None:
    from diffaif.config import CONFIG_DIR

    args.config = args.config or CONFIG_DIR / "demo.yaml"
    args.env = args.agents = args.episodes = args.seeds = None
    cmd_compare(args)


def _write_json(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2))
    print(f"wrote {path.resolve()}")


def cmd_collect(args) -> None:
    from diffaif.data import collect_episodes, save_episodes
    from diffaif.envs import make_env

    if args.policy != "random":
        raise ValueError(f"unknown policy {args.policy!r}; valid choices: ['random']")
    env = make_env(args.env)
    data = collect_episodes(env, args.episodes, policy=args.policy, seed=args.seed)
    out = Path(args.out)
    save_episodes(data, out / EPISODES_FILE)
    _write_json(out / "meta.json", {"env": args.env, "policy": args.policy, "episodes": args.episodes,
                                    "steps": int(data.n_steps), "seed": args.seed})


def cmd_train(args) -> None:
    from diffaif.config import CONFIG_DIR, save_config
    from diffaif.data import load_episodes
    from diffaif.envs import make_env
    from diffaif.model import WorldModelConfig, train_world_model
    from diffaif.planning.planner import PlannerConfig
    from diffaif.planning.tasks import task_planning

    preset = Path(args.model) if args.model.endswith(".yaml") else CONFIG_DIR / "model" / f"{args.model}.yaml"
    if not preset.is_file():
        valid = sorted(p.stem for p in (CONFIG_DIR / "model").glob("*.yaml"))
        raise ValueError(f"unknown model config {args.model!r}; valid choices: {valid} or a .yaml path")
    config = build_config(WorldModelConfig, [preset], args.overrides)
    data_path = Path(args.data)
    data = load_episodes(data_path / EPISODES_FILE if data_path.is_dir() else data_path)
    env = make_env(args.env)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "run.json").write_text(json.dumps({"env": args.env, "data": str(data_path)}, indent=2))
    encoding = task_planning(env, PlannerConfig()).encoding(data)
    model = train_world_model(data, encoding, config.model, config.train, out, resume=args.resume)
    print(f"trained world model: {out.resolve() / 'model'} (window length {model.length})")


def _run_env(run: Path, env: str | None) -> str:
    meta = run / "run.json"
    if env:
        return env
    if not meta.is_file():
        raise FileNotFoundError(f"{meta} is missing: pass --env")
    return json.loads(meta.read_text())["env"]


def cmd_eval_model(args) -> None:
    from diffaif.envs import make_env
    from diffaif.model import WorldModel
    from diffaif.model.evaluate import evaluate_continuous_world_model, evaluate_world_model

    run = Path(args.run)
    model = WorldModel.load(run / "model")
    env = make_env(_run_env(run, args.env))
    continuous = model.encoding.parts["obs"].kind == "continuous"
    evaluate = evaluate_continuous_world_model if continuous else evaluate_world_model
    result = evaluate(model, env, n_episodes=args.episodes, horizon=args.horizon, n_samples=args.samples,
                      steps=args.steps, mode=args.mode, seed=args.seed, context=args.context)
    _write_json(Path(args.out) if args.out else run / "eval_model.json", result)
    print(json.dumps({k: v for k, v in result.items() if not isinstance(v, list) or len(v) <= 8}, indent=2))


def cmd_plan(args) -> None:
    from diffaif.agents import make_agent
    from diffaif.envs import make_env
    from diffaif.experiments.fidelity import efe_fidelity

    run = Path(args.run)
    env = make_env(_run_env(run, args.env))
    overrides = {"pretrained": str(run / "model"), "retrain": "never"}
    overrides.update(OmegaConf.to_container(OmegaConf.from_dotlist(args.overrides)))
    agent = make_agent("aif", env, seed=args.seed, overrides=overrides)
    if not args.fidelity:
        raise ValueError("plan needs --fidelity (the only report it makes so far)")
    result = efe_fidelity(agent, env, episodes=args.episodes, seed=args.seed)
    _write_json(Path(args.out) if args.out else run / "fidelity.json", result)
    print(json.dumps({k: v for k, v in result.items() if not isinstance(v, list)}, indent=2))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="diffaif", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("compare", help="evaluate agents on a task over seeds x episodes (Table I)")
    p.add_argument("--env")
    p.add_argument("--agents", help="comma-separated agent names")
    p.add_argument("--episodes", type=int)
    p.add_argument("--seeds", type=int)
    p.add_argument("--out")
    p.add_argument("--config", help="YAML file of CompareConfig keys")
    p.add_argument("overrides", nargs="*", help="dotted.key=value overrides, e.g. agent.qlearning.epsilon_start=0.5")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("demo", help="the main job: AIF vs Q-learning, random and the oracle on grid4x4 (configs/demo.yaml)")
    p.add_argument("--out")
    p.add_argument("--config", help="YAML file of CompareConfig keys (default configs/demo.yaml)")
    p.add_argument("overrides", nargs="*", help="dotted.key=value overrides, e.g. seeds=1")
    p.set_defaults(func=cmd_demo)

    sub.add_parser("bench", help="decision latency (median/p95) with its network-only floor, rollouts/s, training "
                                 "windows/s, peak memory -> JSON; see `diffaif bench --help`")

    p = sub.add_parser("collect", help="roll out a behaviour policy and store episodes (.npz)")
    p.add_argument("--env", required=True)
    p.add_argument("--episodes", type=int, required=True)
    p.add_argument("--policy", default="random")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_collect)

    p = sub.add_parser("train", help="train a diffusion world model on stored episodes")
    p.add_argument("--env", required=True)
    p.add_argument("--data", required=True, help="a collect directory or an episodes .npz")
    p.add_argument("--out", required=True, help="run directory, e.g. runs/NAME")
    p.add_argument("--model", default="tiny", help="configs/model/<name>.yaml or a .yaml path")
    p.add_argument("--resume", action="store_true", help="continue from the run's last checkpoint")
    p.add_argument("overrides", nargs="*", help="dotted.key=value overrides, e.g. train.steps=500")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval-model", help="k-step prediction accuracy (grid tasks: and calibration against the exact "
                                          "filter; control tasks: per-dimension error) against the true env")
    p.add_argument("--run", required=True)
    p.add_argument("--env")
    p.add_argument("--episodes", type=int, default=50)
    p.add_argument("--horizon", type=int, default=5)
    p.add_argument("--context", type=int, help="past steps in the window (default: window length - 1 - horizon)")
    p.add_argument("--samples", type=int, default=16)
    p.add_argument("--steps", type=int, help="denoising steps (default: the model's)")
    p.add_argument("--mode", choices=["masked", "repaint"])
    p.add_argument("--seed", type=int, default=10_000)
    p.add_argument("--out")
    p.set_defaults(func=cmd_eval_model)

    p = sub.add_parser("plan", help="EFE planning with a trained model; --fidelity compares with the exact EFE")
    p.add_argument("--run", required=True)
    p.add_argument("--env")
    p.add_argument("--fidelity", action="store_true")
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out")
    p.add_argument("overrides", nargs="*", help="AIF agent overrides, e.g. planner.n_samples=32")
    p.set_defaults(func=cmd_plan)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["bench"]:  # its own parser (diffaif.experiments.bench.build_parser)
        from diffaif.experiments.bench import main as bench_main
        return bench_main(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (ConfigError, ValueError, FileNotFoundError) as err:
        print(f"diffaif {args.command}: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
