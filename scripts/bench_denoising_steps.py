"""k-step prediction accuracy and time per inpaint call against the number of denoising steps.

    python scripts/bench_denoising_steps.py --pretrained runs/g4tiny/model --steps 1 2 3 4 5 10

Runs ``evaluate_world_model`` (same held-out windows and generator seed at every step count) through
``diffaif.experiments.bench.denoising_curve`` and writes ``runs/bench/denoising_steps_<tag>.json``, so
that the planner's default ``denoising_steps`` can be chosen from it. Without ``--pretrained`` the
tiny preset is trained for ``--train-steps`` steps first (accuracy then reflects that short training).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import torch

from diffaif.envs import make_env
from diffaif.experiments.bench import denoising_curve, environment_info
from diffaif.model import WorldModel


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="grid4x4")
    parser.add_argument("--pretrained")
    parser.add_argument("--train-steps", type=int, default=4000)
    parser.add_argument("--steps", type=int, nargs="+", default=[1, 2, 3, 4, 5, 10])
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--horizon", type=int, default=5)
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--mode", choices=["masked", "repaint"])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    env = make_env(args.env)
    source: dict = {"pretrained": args.pretrained}
    if args.pretrained:
        model = WorldModel.load(args.pretrained, args.device)
    else:
        from diffaif.config import build_config, preset_path
        from diffaif.data import collect_episodes, grid_encoding
        from diffaif.model.train import WorldModelConfig, train_world_model

        cfg = build_config(WorldModelConfig, [preset_path("model", "tiny")], [f"train.steps={args.train_steps}"])
        with tempfile.TemporaryDirectory() as tmp:
            model = train_world_model(collect_episodes(env, 200, seed=0), grid_encoding(env), cfg.model, cfg.train,
                                      tmp, progress=False).to(args.device)
        source = {"trained_for_bench": True, "train_steps": args.train_steps}
    curve = denoising_curve(model, env, args.steps, n_episodes=args.episodes, horizon=args.horizon,
                            n_samples=args.samples, mode=args.mode)
    result = {"model_source": source, "model_config": vars(model.config), **curve,
              "environment": environment_info(args.device)}
    tag = args.device if args.device == "cuda" else f"cpu{torch.get_num_threads()}t"
    out = Path(args.out or f"runs/bench/denoising_steps_{tag}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    for point in curve["points"]:
        print(json.dumps({"steps": point["steps"], "obs_accuracy": [round(a, 3) for a in point["obs_accuracy"]],
                          "seconds_per_call": round(point["seconds_per_call"], 4)}))
    print(f"wrote {out.resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
