"""Train a world model per inpainting mode on random-policy episodes and measure its prediction accuracy.

Writes JSON (``--out``): per mode the training time, the ``evaluate_world_model`` result (k-step exact
accuracy given the true actions, TVD to the exact filter) and the time of one inpaint call of
``--candidates`` windows x ``--samples`` samples.

    python scripts/world_model_accuracy.py --env grid4x4 --config configs/model/tiny.yaml --out runs/wm_accuracy.json

``--load MODE=DIR`` evaluates a saved model (``DIR`` written by ``WorldModel.save``, e.g. ``runs/x/model``)
for that mode instead of training one, with the sampler settings (``steps``, ``eta``, ``jump_length``,
``jump_n_sample``, ``guidance``) of ``--config`` and the overrides rather than the saved ones.
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from diffaif.config import build_config
from diffaif.data import collect_episodes, grid_encoding
from diffaif.envs import make_env
from diffaif.model.evaluate import evaluate_world_model
from diffaif.model.train import WorldModelConfig, train_world_model
from diffaif.model.world_model import WorldModel, known_window

SAMPLER_KEYS = ("steps", "jump_length", "jump_n_sample", "eta", "guidance")


def time_inpaint(model, mode: str, candidates: int, samples: int, context: int, repeats: int = 3) -> float:
    """Median seconds of one inpaint call on ``candidates`` planning windows x ``samples`` samples."""
    rng = np.random.default_rng(0)
    horizon = model.length - 1 - context
    known, mask = known_window(model.encoding, model.length, context, np.zeros((candidates, 1), dtype=int),
                               np.zeros((candidates, 0), dtype=int), rng.integers(0, 4, size=(candidates, horizon)))
    times = []
    for r in range(repeats):
        began = time.perf_counter()
        model.inpaint(known, mask, samples, mode=mode, generator=torch.Generator().manual_seed(r), shared_noise=True)
        times.append(time.perf_counter() - began)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="grid4x4")
    parser.add_argument("--config", default="configs/model/tiny.yaml")
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--modes", nargs="+", default=["masked", "repaint"])
    parser.add_argument("--horizon", type=int, default=5)
    parser.add_argument("--eval-episodes", type=int, default=100)
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--candidates", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--run-dir", default="runs/wm_accuracy")
    parser.add_argument("--out", default="runs/wm_accuracy.json")
    parser.add_argument("--load", action="append", default=[], metavar="MODE=DIR",
                        help="evaluate the saved model DIR for MODE instead of training one")
    parser.add_argument("--eval-seed", type=int, default=10_000)
    parser.add_argument("--time-repeats", type=int, default=3, help="timed decision-sized calls (median)")
    parser.add_argument("overrides", nargs="*", help="dotted config overrides, e.g. train.steps=1000")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    env = make_env(args.env)
    encoding = grid_encoding(env)
    data = collect_episodes(env, args.episodes, seed=0)
    results = {"env": args.env, "episodes": args.episodes, "steps_of_data": data.n_steps,
               "device": "cuda" if torch.cuda.is_available() else f"cpu x{args.threads} threads", "modes": {}}
    loads = dict(item.split("=", 1) for item in args.load)
    for mode in args.modes:
        cfg = build_config(WorldModelConfig, [args.config], [*args.overrides, f"model.mode={mode}"])
        if mode in loads:
            model = WorldModel.load(loads[mode])
            model.config = replace(model.config, **{k: getattr(cfg.model, k) for k in SAMPLER_KEYS})
            train_s, trained = None, f"loaded from {loads[mode]}"
        else:
            began = time.perf_counter()
            model = train_world_model(data, encoding, cfg.model, cfg.train, Path(args.run_dir) / mode)
            train_s, trained = round(time.perf_counter() - began, 1), str(Path(args.run_dir) / mode)
        model.to("cpu")
        evaluation = evaluate_world_model(model, env, n_episodes=args.eval_episodes, horizon=args.horizon,
                                          n_samples=args.samples, mode=mode, seed=args.eval_seed)
        context = model.length - 1 - args.horizon
        results["modes"][mode] = {
            "train_seconds": train_s,
            "model": trained,
            "config": {"model": vars(model.config), "train": vars(cfg.train) if mode not in loads else None},
            "evaluation": evaluation,
            f"seconds_per_call_{args.candidates}x{args.samples}": time_inpaint(model, mode, args.candidates,
                                                                             args.samples, context,
                                                                             args.time_repeats),
        }
        print(json.dumps({mode: {k: evaluation[k] for k in ("obs_accuracy", "state_accuracy", "belief_accuracy")}}))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
