"""Bench the active-inference agent on the grid4x4 demo configuration; writes runs/bench/*.json.

    python scripts/bench_planning.py --pretrained runs/g4tiny/model                  # CPU, agent defaults
    python scripts/bench_planning.py --device cuda --samples 16 64 --steps 5 10     # a grid of (N, S)
    python scripts/bench_planning.py --pretrained runs/g4tiny/model --curve-steps 1 2 3 4 5 10

Without ``--pretrained`` a tiny model (configs/model/tiny.yaml) is trained for ``--train-steps`` steps
first (timing only: the JSON says so) and reused for every point of the grid. The first point also
times training (windows/s). Each point is one ``diffaif.experiments.bench.run_bench`` JSON
(``planning_<tag>[_N<n>_S<s>].json``); ``planning_<tag>_summary.json`` lists their headline figures.
``--curve-steps`` adds k-step prediction accuracy and time per inpaint call against the number of
denoising steps (``denoising_steps_<tag>.json``, see ``bench.denoising_curve``), to choose the default.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from diffaif.experiments.bench import BenchConfig, headline, run_bench


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="grid4x4")
    parser.add_argument("--pretrained", help="a saved WorldModel directory (default: train a tiny one for timing)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--decisions", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--train-steps", type=int, default=300)
    parser.add_argument("--samples", type=int, nargs="*", default=[], help="N values (default: the agent's)")
    parser.add_argument("--steps", type=int, nargs="*", default=[], help="denoising steps S (default: the agent's)")
    parser.add_argument("--curve-steps", type=int, nargs="*", default=[],
                        help="also the accuracy/time curve over these denoising steps (denoising_steps_<tag>.json)")
    parser.add_argument("--curve-episodes", type=int, default=50)
    parser.add_argument("--out-dir", default="runs/bench")
    parser.add_argument("--tag", help="file name tag (default: the device, with the thread count on CPU)")
    parser.add_argument("overrides", nargs="*", help="dotted BenchConfig overrides for every point, "
                                                     "e.g. planner.policies.kind=cem")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    tag = args.tag or (args.device if args.device == "cuda" else f"cpu{torch.get_num_threads()}t")
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    grid = [(n, s) for n in (args.samples or [None]) for s in (args.steps or [None])]
    from diffaif.config import build_config

    pretrained, train_steps = args.pretrained, args.train_steps
    summary = []
    for i, (n, s) in enumerate(grid):
        planner = {**({"n_samples": n} if n else {}), **({"denoising_steps": s} if s else {})}
        name = f"planning_{tag}" + (f"_N{n}" if n else "") + (f"_S{s}" if s else "") + ".json"
        config = build_config(BenchConfig, [dict(
            env=args.env, pretrained=pretrained, planner=planner, decisions=args.decisions, warmup=args.warmup,
            train_steps=train_steps if i == 0 else 0, device=args.device, threads=args.threads,
            out=str(out_dir / name), run_dir=str(out_dir / f"model_{tag}") if pretrained is None else None)],
            args.overrides)
        result = run_bench(config)
        if pretrained is None:  # trained on the first point: reuse it
            pretrained = str(out_dir / f"model_{tag}" / "model")
        line = {"file": name, **headline(result)}
        summary.append(line)
        print(json.dumps(line), flush=True)
    (out_dir / f"planning_{tag}_summary.json").write_text(json.dumps(summary, indent=2))
    if args.curve_steps:
        from diffaif.envs import make_env
        from diffaif.experiments.bench import denoising_curve, environment_info
        from diffaif.model import WorldModel

        model = WorldModel.load(pretrained, args.device)
        curve = denoising_curve(model, make_env(args.env), args.curve_steps, n_episodes=args.curve_episodes)
        curve.update(model_source=pretrained, environment=environment_info(args.device))
        (out_dir / f"denoising_steps_{tag}.json").write_text(json.dumps(curve, indent=2))
        for point in curve["points"]:
            print(json.dumps({"steps": point["steps"], "obs_accuracy": [round(a, 3) for a in point["obs_accuracy"]],
                              "seconds_per_call": round(point["seconds_per_call"], 4)}), flush=True)
    print(f"wrote {out_dir.resolve()}/planning_{tag}*.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
