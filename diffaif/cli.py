"""The ``diffaif`` command line: thin subcommands over library functions.

Every error reaches the user as one line naming the problem and the file or key (exit status 2);
``--debug`` anywhere on the line shows the traceback instead. Nothing is written before the input is
validated, and no run directory is overwritten without ``--overwrite`` (``train --resume`` continues one).
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import sys
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from diffaif.config import ConfigError, build_config

EPISODES_FILE = "episodes.npz"
META_FILE = "meta.json"        # beside a collect's episodes: env, env options, policy, budget
RUN_FILE = "run.json"          # in a training run: env, env options, data
SAMPLER_KEYS = ("eta", "jump_length", "jump_n_sample", "guidance")   # eval-model's sampler overrides
SUITES = ("grid", "minigrid", "control")   # diffaif.experiments.suite.SUITES (tests/test_suite.py checks)


def _layers(args, **flags) -> list[dict]:
    """Config layers: an optional YAML file, then the explicit flags that were given."""
    from diffaif.config import preset_or_file

    layers: list = [preset_or_file("experiments", args.config)] if getattr(args, "config", None) else []
    layers.append({k: v for k, v in flags.items() if v is not None})
    return layers


def _check_new_run_dir(out: Path, overwrite: bool, alternative: str = "") -> None:
    """Refuse an ``--out`` that could not be written, or that already holds files unless ``--overwrite``
    says so (``alternative``: another way out, for the message); creates nothing."""
    from diffaif.data.files import check_writable

    check_writable(out, directory=True)
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise ValueError(f"--out {out} already holds a run: pass --overwrite to replace it{alternative}")


def _check_resumed_run_dir(out: Path, overwrite: bool) -> None:
    """``train --resume``: the run must exist and be writable; --overwrite contradicts it."""
    from diffaif.data.files import check_writable

    if overwrite:
        raise ValueError("--resume continues a run and --overwrite replaces it: give one of them")
    if not out.is_dir():
        raise FileNotFoundError(f"--resume: there is no run at {out} to continue")
    check_writable(out, directory=True)


def _env_options(items: list[str] | None) -> dict[str, Any]:
    """``--env-option KEY=VALUE`` flags as a dict, values parsed as OmegaConf dotlist values (true, 3, 0.5)."""
    options: dict[str, Any] = {}
    for item in items or []:
        key, sep, _ = item.partition("=")
        if not sep or not key.isidentifier():
            raise ValueError(f"--env-option {item!r} is not KEY=VALUE")
        options.update(OmegaConf.to_container(OmegaConf.from_dotlist([item])))
    return options


def _read_json(path: Path, required: tuple[str, ...]) -> dict:
    """A JSON object file with ``required`` keys; anything else is an error naming the file and key."""
    try:
        content = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path} is not a readable JSON file: {err}") from None
    if not isinstance(content, dict):
        raise ValueError(f"{path} must hold a JSON object, not a {type(content).__name__}")
    missing = [key for key in required if key not in content]
    if missing:
        raise ValueError(f"{path} lacks the key {missing[0]!r}")
    return content


def _write_json(path: Path, payload: dict) -> None:
    from diffaif.data.files import atomic_write_text

    atomic_write_text(path, json.dumps(payload, indent=2))
    print(f"wrote {path.resolve()}")


def cmd_compare(args) -> None:
    from diffaif.experiments.compare import CompareConfig, run_comparison
    from diffaif.experiments.stats import format_table

    if args.agents is not None and not args.agents.strip():
        raise ConfigError("--agents is empty: name at least one agent, comma-separated")
    agents = args.agents.split(",") if args.agents else None
    config = build_config(CompareConfig, _layers(args, env=args.env, agents=agents, episodes=args.episodes,
                                                 seeds=args.seeds, out=args.out, workers=args.workers),
                          args.overrides)
    _refuse_overrides_of_other_agents(args.overrides, config.agents)
    _check_new_run_dir(Path(config.out), args.overwrite)
    summary = run_comparison(config)  # creates the directory only once the config is validated
    print(format_table(summary))
    print(f"wrote {Path(config.out).resolve()}")


def _refuse_overrides_of_other_agents(overrides: list[str], agents: list[str]) -> None:
    """A command-line ``agent.<name>.*`` / ``agent_env.<name>`` override for an agent that is not compared
    would have no effect: an error, not silence (a YAML preset may configure agents a run leaves out)."""
    from diffaif.agents import AGENTS

    for override in overrides:
        parts = override.split("=", 1)[0].split(".")
        if parts[0] not in ("agent", "agent_env") or len(parts) < 2:
            continue
        if parts[1] not in AGENTS:
            raise ConfigError(f"override {override!r} names unknown agent {parts[1]!r}; "
                              f"valid choices: {sorted(AGENTS)}")
        if parts[1] not in agents:
            raise ConfigError(f"override {override!r} configures agent {parts[1]!r}, which is not among "
                              f"the agents compared {agents}")


def cmd_demo(args) -> None:
    args.env = args.agents = args.episodes = args.seeds = args.workers = None
    cmd_compare(args)


def cmd_collect(args) -> None:
    from diffaif.data import collect_episodes, save_episodes
    from diffaif.envs import make_env

    if args.policy != "random":
        raise ValueError(f"unknown policy {args.policy!r}; valid choices: ['random']")
    for flag in ("episodes", "steps"):
        if getattr(args, flag) is not None and getattr(args, flag) < 1:
            raise ValueError(f"--{flag} must be >= 1, got {getattr(args, flag)}")
    out = Path(args.out)
    _check_new_run_dir(out, args.overwrite)
    options = _env_options(args.env_option)
    env = make_env(args.env, **options)
    data = collect_episodes(env, args.episodes, policy=args.policy, seed=args.seed, min_interactions=args.steps)
    save_episodes(data, out / EPISODES_FILE)
    _write_json(out / META_FILE, {"env": args.env, "env_options": options, "policy": args.policy,
                                  "episodes": data.n_episodes, "interactions": data.n_interactions,
                                  "steps": int(data.n_steps), "seed": args.seed})


def _check_data_env(meta_path: Path, env: str, options: dict) -> None:
    """Refuse to train on data collected in another env (or with other env options) than ``--env``."""
    if not meta_path.is_file():
        return
    meta = _read_json(meta_path, ("env",))
    recorded = (meta["env"], meta.get("env_options", {}))
    if recorded != (env, options):
        raise ValueError(f"--env {env} with options {options} does not match the data: {meta_path} records "
                         f"env {recorded[0]} with options {recorded[1]}")


def _same_episodes(a, b) -> bool:
    import numpy as np

    from diffaif.data.episodes import NPZ_KEYS

    return all(np.array_equal(x, y, equal_nan=x.dtype.kind == "f" and y.dtype.kind == "f")
               for x, y in ((np.asarray(getattr(a, k)), np.asarray(getattr(b, k))) for k in NPZ_KEYS))


def _check_resume(out: Path, env: str, options: dict, data, data_path: Path) -> None:
    """A resumed run keeps its env, env options and data: refuse others, naming both."""
    from diffaif.data import load_episodes

    run_file = out / RUN_FILE
    recorded = _read_json(run_file, ("env",)) if run_file.is_file() else {}
    if recorded and (recorded["env"], recorded.get("env_options", {})) != (env, options):
        raise ValueError(f"--resume with --env {env} and options {options}, but {run_file} records env "
                         f"{recorded['env']} with options {recorded.get('env_options', {})}")
    run_episodes = out / EPISODES_FILE
    if run_episodes.is_file() and not _same_episodes(load_episodes(run_episodes), data):
        origin = f" (collected as {recorded['data']})" if "data" in recorded else ""
        raise ValueError(f"--resume with --data {data_path}, but run {out} was trained on other data: "
                         f"{run_episodes}{origin}")


def _remove_training_state(out: Path) -> None:
    """What a replaced run must not leave behind: its checkpoint (a later --resume would continue it) and
    its model (an evaluation would read it); the other files are rewritten at the start of training."""
    from diffaif.model.train import CHECKPOINT_FILE, MODEL_DIR
    from diffaif.model.world_model import remove_saved

    (out / CHECKPOINT_FILE).unlink(missing_ok=True)
    remove_saved(out / MODEL_DIR)


def cmd_train(args) -> None:
    from diffaif.config import preset_or_file
    from diffaif.data import load_episodes
    from diffaif.data.files import atomic_write_text
    from diffaif.envs import make_env
    from diffaif.model import WorldModelConfig, train_world_model
    from diffaif.model.train import resume_state
    from diffaif.tasks import task_encoding

    out = Path(args.out)
    if args.resume:
        _check_resumed_run_dir(out, args.overwrite)
    else:
        _check_new_run_dir(out, args.overwrite, alternative=", or --resume to continue training it")
    config = build_config(WorldModelConfig, [preset_or_file("model", args.model)], args.overrides)
    options = _env_options(args.env_option)
    data_path = Path(args.data)
    episodes_path = data_path / EPISODES_FILE if data_path.is_dir() else data_path
    data = load_episodes(episodes_path)
    _check_data_env(episodes_path.parent / META_FILE, args.env, options)
    env = make_env(args.env, **options)
    encoding = task_encoding(env, data)
    if args.resume:
        _check_resume(out, args.env, options, data, data_path)
        resume_state(out, config.model, encoding)
    elif args.overwrite:
        _remove_training_state(out)
    atomic_write_text(out / RUN_FILE, json.dumps({"env": args.env, "env_options": options,
                                                   "data": str(data_path)}, indent=2))
    model = train_world_model(data, encoding, config.model, config.train, out, resume=args.resume)
    print(f"trained world model: {out.resolve() / 'model'} (window length {model.length})")


def _run_env(run: Path, env: str | None) -> tuple[str, dict]:
    """The env name and options a run was trained with (``run.json``); ``--env`` overrides the name."""
    run_file = run / RUN_FILE
    if not run_file.is_file():
        if env:
            return env, {}
        raise FileNotFoundError(f"{run_file} is missing: pass --env")
    recorded = _read_json(run_file, () if env else ("env",))
    options = recorded.get("env_options", {})
    if env and env != recorded.get("env"):
        return env, {}
    return recorded["env"], options


def _check_out_file(path: Path) -> Path:
    from diffaif.data.files import check_writable

    check_writable(path)
    return path


def cmd_eval_model(args) -> None:
    from diffaif.envs import make_env
    from diffaif.model import WorldModel
    from diffaif.model.evaluate import evaluate_any_world_model

    run = Path(args.run)
    out = _check_out_file(Path(args.out) if args.out else run / "eval_model.json")
    model = WorldModel.load(run / "model")
    sampler = {key: getattr(args, key) for key in SAMPLER_KEYS if getattr(args, key) is not None}
    if sampler:  # the saved model's sampler settings, replaced for this evaluation only
        model.config = dataclasses.replace(model.config, **sampler)
    name, options = _run_env(run, args.env)
    env = make_env(name, **options)
    result = evaluate_any_world_model(model, env, n_episodes=args.episodes, horizon=args.horizon,
                                      n_samples=args.samples, steps=args.steps, mode=args.mode, seed=args.seed,
                                      context=args.context)
    result["sampler"] = {"steps": args.steps or model.config.steps, "mode": args.mode or model.config.mode,
                         **{key: getattr(model.config, key) for key in SAMPLER_KEYS}}
    _write_json(out, result)
    print(json.dumps({k: v for k, v in result.items() if not isinstance(v, list) or len(v) <= 8}, indent=2))


def _fidelity_report(env: Any, name: str):
    """The fidelity report that fits the task: the exact EFE on grid tasks, the env's simulator on control
    tasks; MiniGrid has neither (an error before any work)."""
    from diffaif.experiments.fidelity import control_fidelity, efe_fidelity

    if hasattr(env.unwrapped, "transition_matrix"):
        return efe_fidelity
    if hasattr(env, "simulate"):
        return control_fidelity
    raise ValueError(f"plan --fidelity compares the planner with the exact EFE (grid tasks) or with the env's "
                     f"simulator (control tasks); {name} has neither")


def cmd_plan(args) -> None:
    if not args.fidelity:
        raise ValueError("plan needs --fidelity (the only report it makes so far)")
    if args.run:
        result, out = _plan_on_run(args)
    else:
        result, out = _plan_after_warm_up(args)
    _write_json(out, result)
    print(json.dumps({k: v for k, v in result.items() if not isinstance(v, list)}, indent=2))


def _plan_on_run(args) -> tuple[dict, Path]:
    """``plan --run``: the AIF agent plans with the run's model (no retraining); overrides are agent keys."""
    from diffaif.agents import make_agent
    from diffaif.envs import make_env

    run = Path(args.run)
    out = _check_out_file(Path(args.out) if args.out else run / "fidelity.json")
    name, options = _run_env(run, args.env)
    env = make_env(name, **options)
    report = _fidelity_report(env, name)
    overrides = {"pretrained": str(run / "model"), "retrain": "never"}
    overrides.update(OmegaConf.to_container(OmegaConf.from_dotlist(args.overrides)))
    seed = 0 if args.seed is None else args.seed
    agent = make_agent("aif", env, seed=seed, overrides=overrides)
    return {"env": name, "run": str(run), **report(agent, env, episodes=args.episodes, seed=seed)}, out


def _plan_after_warm_up(args) -> tuple[dict, Path]:
    """``plan --config``: the AIF agent of an experiment (its env options, warm-up budget and settings) is
    built and warmed up as ``compare`` does for seed index 0, then plays ``--episodes`` episodes (reset
    seeds as that seed's evaluated episodes); overrides are CompareConfig keys."""
    import time

    from diffaif.envs import make_env
    from diffaif.experiments.compare import CompareConfig, derived_seed, seeded_agent

    config = build_config(CompareConfig, _layers(args, env=args.env, seed=args.seed), args.overrides)
    out = _check_out_file(Path(args.out) if args.out else Path("runs") / "fidelity" / f"{config.env}.json")
    report = _fidelity_report(make_env(config.env, **config.env_kwargs), config.env)   # before the warm-up
    env, agent = seeded_agent(config, "aif", 0)
    began = time.perf_counter()
    used = agent.warm_up(env, config.warmup_steps, seed=derived_seed(config.seed, 0, 1))
    result = report(agent, env, episodes=args.episodes, seed=derived_seed(config.seed, 0, 0))
    return {"env": config.env, "config": args.config, "overrides": args.overrides, "seed": config.seed,
            "warmup_env_steps": used, "seconds": time.perf_counter() - began, **result}, out


def cmd_bench(args) -> None:
    from diffaif.experiments.bench import run_from_args

    run_from_args(args)


def cmd_belief(args) -> None:
    from diffaif.config import build_config
    from diffaif.experiments.belief import BeliefConfig, run_belief

    given = {k: v for k, v in (("env", args.env), ("seeds", args.seeds), ("episodes", args.episodes),
                               ("out", args.out)) if v is not None}
    config = build_config(BeliefConfig, [given], args.overrides)
    _check_new_run_dir(Path(config.out), args.overwrite)
    summary = run_belief(config)
    for weight, row in summary["weights"].items():
        print(f"info_gain_weight {weight}: success {row['success_rate']:.2f}, {row['steps_mean']:.1f} steps")
    print(f"wrote {Path(config.out).resolve()}")


def cmd_suite(args) -> None:
    from diffaif.experiments.suite import default_out, run_suite

    control_only = [flag for flag, on in (("--skip-baseline", args.skip_baseline),
                                          ("--published-budget", args.published_budget),
                                          ("--published-only", args.published_only)) if on]
    if control_only and args.suite != "control":
        raise ValueError(f"{control_only[0]} is an option of the control suite, not of {args.suite}")
    if args.device and args.suite != "minigrid":
        raise ValueError(f"--device is an option of the minigrid suite (its pretraining), not of {args.suite}")
    if args.seeds is not None and args.seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {args.seeds}")
    out = Path(args.out) if args.out else default_out(args.suite, args.quick)
    if not args.published_only:   # which adds rows to an earlier run's
        _check_new_run_dir(out, args.overwrite)
    options = {"seeds": args.seeds, "overrides": args.overrides, "command": ["diffaif", "suite", *args.argv],
               "tasks": [t for t in args.tasks.split(",") if t] if args.tasks else None}
    if args.suite == "control":
        options.update(baseline=not args.skip_baseline, published_budget=args.published_budget,
                       published_only=args.published_only)
    if args.suite == "minigrid":
        options["device"] = args.device or _default_device()
    run_suite(args.suite, out, quick=args.quick, **options)
    print(f"wrote {out.resolve()}")


def _default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def cmd_pretrain(args) -> None:
    import shutil

    from diffaif.experiments.pretrain import model_path, pretrain, resume_pretraining, run_dir

    world_model = OmegaConf.to_container(OmegaConf.from_dotlist(args.overrides))
    device = args.device or _default_device()
    seeds = range(args.base_seed, args.base_seed + args.seeds)
    if args.seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {args.seeds}")
    out = Path(args.out)
    if args.resume:
        if args.overwrite or args.interactions is not None or args.env:
            raise ValueError("--resume trains the runs in --out on (to train.steps): give it neither --env, "
                             "--interactions nor --overwrite")
        for seed in seeds:
            print(json.dumps(resume_pretraining(run_dir(out, seed), world_model, device)))
        return
    if not args.env or args.interactions is None:
        raise ValueError("pretrain needs --env and --interactions (or --resume to train earlier runs on)")
    _check_new_run_dir(out, args.overwrite, alternative=", or --resume to train it on")
    options = _env_options(args.env_option)
    for index, seed in enumerate(seeds):
        shutil.rmtree(run_dir(out, seed), ignore_errors=True)   # --overwrite: this seed's earlier run
        print(json.dumps(pretrain(args.env, options, args.interactions, run_dir(out, seed), seed_index=index,
                                  base_seed=args.base_seed, model_preset=args.model, world_model=world_model,
                                  device=device)))
    print(f"models: {model_path(out.resolve(), '{seed}')} for seeds {list(seeds)}")


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default, except None and False (an unset option or an off switch)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


# CompareConfig's defaults, for --help without importing the harness (tests/test_cli.py checks them)
COMPARE_DEFAULTS = "env grid4x4, agents oracle,random,qlearning, 100 episodes, 5 seeds, out runs/compare"


def build_parser() -> argparse.ArgumentParser:
    """The parser of every subcommand; light to build (imports neither torch nor the harness)."""
    from diffaif.agents import AGENTS
    from diffaif.config import preset_names

    formatter = DefaultsHelpFormatter
    parser = argparse.ArgumentParser(prog="diffaif", description=__doc__, formatter_class=formatter)
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error (anywhere on the line)")
    sub = parser.add_subparsers(dest="command", required=True)
    add = functools.partial(sub.add_parser, formatter_class=formatter)
    agents = f"comma-separated agent names, from {sorted(AGENTS)}"
    experiments = f"an experiment preset {preset_names('experiments')} or a YAML file of CompareConfig keys"
    given = f"the --config's, else CompareConfig's ({COMPARE_DEFAULTS})"
    overwrite = "replace the files of an existing --out directory"
    env_option = "KEY=VALUE option of make_env, e.g. obs_mode=state (repeatable)"

    p = add("compare", help="evaluate agents on a task over seeds x episodes (Table I)",
            description=f"Evaluate agents on a task over seeds x episodes. Unset options: {given}.")
    p.add_argument("--env", help="grid4x4, grid8x8, a MiniGrid id or a gymnasium id")
    p.add_argument("--agents", help=agents)
    p.add_argument("--episodes", type=int, help="evaluated episodes per seed")
    p.add_argument("--seeds", type=int, help="independent seeds per agent")
    p.add_argument("--out", help="run directory")
    p.add_argument("--overwrite", action="store_true", help=overwrite)
    p.add_argument("--config", help=experiments)
    p.add_argument("--workers", type=int, help="processes running seeds in parallel (default: one per seed, "
                                               "at most one per core and per 2 GiB of free memory)")
    p.add_argument("overrides", nargs="*", help="dotted.key=value overrides, e.g. agent.qlearning.epsilon_start=0.5")
    p.set_defaults(func=cmd_compare)

    p = add("demo", help="the main job: AIF vs Q-learning, random and the oracle on grid4x4 (preset demo)")
    p.add_argument("--out", help="run directory (default: the preset's, runs/demo)")
    p.add_argument("--overwrite", action="store_true", help=overwrite)
    p.add_argument("--config", default="demo", help=experiments)
    p.add_argument("overrides", nargs="*", help="dotted.key=value overrides, e.g. seeds=1")
    p.set_defaults(func=cmd_demo)

    p = add("bench", help="decision latency (median/p95) with its network-only floor, rollouts/s, training "
                          "windows/s, peak memory -> JSON",
            description="Bench the AIF agent's planner (diffaif.experiments.bench). Unset options: the "
                        "--config's, else BenchConfig's.")
    p.add_argument("--env", help="task (BenchConfig default grid4x4)")
    p.add_argument("--pretrained", help="a saved WorldModel directory (default: train a tiny one for timing)")
    p.add_argument("--model-preset", help="model preset trained when there is no --pretrained")
    p.add_argument("--decisions", type=int, help="timed decisions")
    p.add_argument("--warmup", type=int, help="untimed decisions first")
    p.add_argument("--train-steps", type=int, help="training-throughput run (and the model's training without "
                                                   "--pretrained); 0: skip")
    p.add_argument("--device", choices=["cpu", "cuda"])
    p.add_argument("--threads", type=int, help="torch threads")
    p.add_argument("--seed", type=int)
    p.add_argument("--grid-n-samples", type=int, nargs="+", metavar="N",
                   help="bench every N (x every --grid-denoising-steps): one JSON per point beside --out, "
                        "--out holds their headline figures")
    p.add_argument("--grid-denoising-steps", type=int, nargs="+", metavar="S", help="denoising steps of the grid")
    p.add_argument("--steps-curve", type=int, nargs="+", metavar="S",
                   help="also k-step prediction accuracy and time per inpaint call at these denoising steps")
    p.add_argument("--curve-episodes", type=int, help="held-out episodes of the --steps-curve")
    p.add_argument("--curve-horizon", type=int, help="steps predicted ahead in the --steps-curve")
    p.add_argument("--curve-samples", type=int, help="rollouts per window in the --steps-curve")
    p.add_argument("--learning-curve", action="store_true",
                   help="instead: world-model accuracy against training seconds on fixed data "
                        "(diffaif.experiments.learning_curve; --config and overrides are then "
                        "LearningCurveConfig keys, e.g. budgets_s=[30,120] env_options.obs_mode=state)")
    p.add_argument("--out", help="JSON file (BenchConfig default runs/bench/bench.json)")
    p.add_argument("--run-dir", help="keep the bench's training run here (default: a temporary folder)")
    p.add_argument("--config", help="YAML file of BenchConfig keys")
    p.add_argument("overrides", nargs="*", help="dotted overrides, e.g. planner.n_samples=32 "
                                                "planner.policies.kind=cem world_model.train.batch_size=128")
    p.set_defaults(func=cmd_bench)

    p = add("suite", help="run a results suite -> summary.json, table.md and plots (docs/results quote them)",
            description="Run a results suite (diffaif.experiments.suite): grid = the grid4x4 and grid8x8 "
                        "presets; minigrid = the MiniGrid ladder (preset minigrid_ladder); control = "
                        "CartPole, Pendulum, MountainCar with same-budget SB3 baselines.")
    p.add_argument("suite", choices=SUITES)
    p.add_argument("--quick", action="store_true", help="a smoke run: one seed, tiny budgets, a few minutes")
    p.add_argument("--out", help="output folder (default: runs/suite/<suite>, runs/suite/<suite>_quick)")
    p.add_argument("--overwrite", action="store_true", help=overwrite)
    p.add_argument("--seeds", type=int, help="seeds per agent (default: the presets')")
    p.add_argument("--tasks", help="comma-separated subset: grid4x4,grid8x8 / MiniGrid ids / "
                                   "cartpole,pendulum,mountaincar")
    p.add_argument("--device", choices=["cpu", "cuda"], help="minigrid: where the world models are trained "
                                                             "and plan (default: cuda if there is one)")
    p.add_argument("--skip-baseline", action="store_true", help="control: no same-budget baseline")
    p.add_argument("--published-budget", action="store_true",
                   help="control: also the SB3 baseline at rl-baselines3-zoo's budget")
    p.add_argument("--published-only", action="store_true",
                   help="control: only that baseline, added to the rows already in --out")
    p.add_argument("overrides", nargs="*", help="dotted overrides of every task's CompareConfig (grid, control) "
                                                "or of the ladder's keys (minigrid: compare.episodes=5)")
    p.set_defaults(func=cmd_suite)

    p = add("belief", help="the view agent (aif_map) on MiniGrid with information gain on and off -> share of "
                           "the map seen per step, belief_map.png",
            description="Warm the view agent up once per seed, then evaluate it with each info_gain_weights "
                        "value (diffaif.experiments.belief). Unset options: BeliefConfig's.")
    p.add_argument("--env", help="a MiniGrid id (default MiniGrid-FourRooms-v0)")
    p.add_argument("--seeds", type=int, help="seeds, each warmed up once")
    p.add_argument("--episodes", type=int, help="evaluated episodes per seed and weight")
    p.add_argument("--out", help="output folder (default runs/belief)")
    p.add_argument("--overwrite", action="store_true", help=overwrite)
    p.add_argument("overrides", nargs="*", help="BeliefConfig keys, e.g. warmup_steps=1000 agent.planner.n_samples=4")
    p.set_defaults(func=cmd_belief)

    p = add("pretrain", help="the AIF agent's warm-up (random interactions, world-model training) ahead of a "
                             "comparison -> <out>/seed<seed>/train0/model",
            description="Seed s does what `diffaif compare seed=B` does for seed B+s: compare later with "
                        "agent.aif.pretrained=<out>/seed{seed}/train0/model (the agent fills in {seed}).")
    p.add_argument("--env", help="grid4x4, grid8x8, a MiniGrid id or a gymnasium id")
    p.add_argument("--env-option", action="append", metavar="KEY=VALUE", help=env_option)
    p.add_argument("--interactions", type=int, help="random-policy warm-up env steps per seed")
    p.add_argument("--seeds", type=int, default=1, help="seeds: B, B+1, ...")
    p.add_argument("--base-seed", type=int, default=0, help="B: the comparison's seed")
    p.add_argument("--model", default="tiny", help=f"a model preset {preset_names('model')} or a .yaml path")
    p.add_argument("--device", choices=["cpu", "cuda"], help="default: cuda if there is one")
    p.add_argument("--resume", action="store_true", help="train the seeds' runs in --out on to train.steps")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--overwrite", action="store_true", help=overwrite)
    p.add_argument("overrides", nargs="*", help="world-model overrides, e.g. train.steps=500")
    p.set_defaults(func=cmd_pretrain)

    p = add("collect", help="roll out a behaviour policy and store episodes (.npz)")
    p.add_argument("--env", required=True, help="grid4x4, grid8x8, a MiniGrid id or a gymnasium id")
    budget = p.add_mutually_exclusive_group(required=True)
    budget.add_argument("--episodes", type=int, help="number of episodes")
    budget.add_argument("--steps", type=int, help="whole episodes until at least this many interactions")
    p.add_argument("--env-option", action="append", metavar="KEY=VALUE", help=env_option)
    p.add_argument("--policy", default="random", help="behaviour policy, from ['random']")
    p.add_argument("--seed", type=int, default=0, help="seed of the resets and actions")
    p.add_argument("--out", required=True, help="directory for episodes.npz and meta.json")
    p.add_argument("--overwrite", action="store_true", help=overwrite)
    p.set_defaults(func=cmd_collect)

    p = add("train", help="train a diffusion world model on stored episodes")
    p.add_argument("--env", required=True, help="the env the data was collected in")
    p.add_argument("--env-option", action="append", metavar="KEY=VALUE", help=env_option)
    p.add_argument("--data", required=True, help="a collect directory or an episodes .npz")
    p.add_argument("--out", required=True, help="run directory, e.g. runs/NAME")
    p.add_argument("--model", default="tiny", help=f"a model preset {preset_names('model')} or a .yaml path")
    p.add_argument("--resume", action="store_true", help="continue from the run's last checkpoint")
    p.add_argument("--overwrite", action="store_true", help=overwrite)
    p.add_argument("overrides", nargs="*", help="dotted.key=value overrides, e.g. train.steps=500")
    p.set_defaults(func=cmd_train)

    p = add("eval-model", help="k-step prediction accuracy (grid tasks: and calibration against the exact "
                                          "filter; control tasks: per-dimension error; MiniGrid views: per-cell accuracy) "
                                          "against the true env")
    p.add_argument("--run", required=True, help="a train run directory")
    p.add_argument("--env", help="default: the env (and env options) in the run's run.json")
    p.add_argument("--episodes", type=int, default=50, help="held-out episodes")
    p.add_argument("--horizon", type=int, default=5, help="steps predicted ahead")
    p.add_argument("--context", type=int, help="past steps in the window (default: window length - 1 - horizon)")
    p.add_argument("--samples", type=int, default=16, help="rollouts per window")
    p.add_argument("--steps", type=int, help="denoising steps (default: the model's)")
    p.add_argument("--mode", choices=["masked", "repaint"], help="inpainting mode (default: the model's)")
    p.add_argument("--eta", type=float, help="DDIM eta (default: the model's)")
    p.add_argument("--jump-length", type=int, help="RePaint jump length (default: the model's)")
    p.add_argument("--jump-n-sample", type=int, help="RePaint resamplings per jump (default: the model's)")
    p.add_argument("--guidance", type=float, help="reconstruction-guidance weight (default: the model's)")
    p.add_argument("--seed", type=int, default=10_000, help="seed of the held-out episodes")
    p.add_argument("--out", help="JSON file (default: <run>/eval_model.json)")
    p.set_defaults(func=cmd_eval_model)

    p = add("plan", help="EFE planning with a trained model; --fidelity compares it with the exact EFE (grid "
                         "tasks) or the env's simulator (control tasks)")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", help="a train run directory: plan with its model (overrides: AIF agent keys)")
    source.add_argument("--config", help=f"instead: {experiments}; its AIF agent is warmed up as compare does "
                                         "for the first seed (overrides: CompareConfig keys)")
    p.add_argument("--env", help="default: the env (and env options) in the run's run.json, or the --config's")
    p.add_argument("--fidelity", action="store_true", help="compare the planner's EFE with the exact EFE (grid) "
                                                           "or its predictions with the simulator's (control)")
    p.add_argument("--episodes", type=int, default=10, help="episodes planned")
    p.add_argument("--seed", type=int, help="--run: seed of the agent and the resets (default 0); --config: "
                                            "the comparison's seed")
    p.add_argument("--out", help="JSON file (default: <run>/fidelity.json, runs/fidelity/<env>.json)")
    p.add_argument("overrides", nargs="*", help="e.g. planner.n_samples=32 (--run), agent.aif.ensemble=1 "
                                                "(--config)")
    p.set_defaults(func=cmd_plan)
    return parser


def _one_line(err: BaseException) -> str:
    """The first line of an error; types other than the expected ones are named, with a pointer to --debug."""
    text = next((line.strip() for line in str(err).splitlines() if line.strip()), "")
    if isinstance(err, (ValueError, FileNotFoundError)):
        return text or type(err).__name__
    return f"{type(err).__name__}: {text} (--debug shows the traceback)"


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand; → exit status (0 done, 2 error, 130 interrupted)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in argv
    argv = [arg for arg in argv if arg != "--debug"]
    command = argv[0] if argv else None
    try:
        parser = build_parser()
        args, extra = parser.parse_known_args(argv)
        # argparse gives a positional ``overrides`` (nargs *) nothing when another positional came before an
        # option (``suite grid --quick key=value``): the key=value words left over are overrides too
        if extra and isinstance(getattr(args, "overrides", None), list) and \
                all("=" in word and not word.startswith("-") for word in extra):
            args.overrides, extra = [*args.overrides, *extra], []
        if extra:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.argv = argv[1:]   # what a suite records as its command
        args.func(args)
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"diffaif {command}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # the boundary: one line for the user, the traceback only with --debug
        if debug:
            raise
        print(f"diffaif {command}: error: {_one_line(err)}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
