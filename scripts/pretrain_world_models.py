"""Run the active-inference agent's warm-up (random interactions, then world-model training) ahead of a comparison.

Seed s does exactly what ``diffaif compare --seed 0`` does for seed index s inside the harness (agent
seed s, warm-up seed ``derived_seed(0, s, 1)``), so a comparison run later with
``agent.aif.pretrained=OUT/seed{seed}/train0/model`` is the same experiment, with the training moved
to a faster device. Each run directory keeps its training episodes, so the harness still charges
the warm-up interactions to the agent.

    python scripts/pretrain_world_models.py --env grid4x4 --interactions 2000 --seeds 0 1 2 3 4 --out runs/pre4
    python scripts/pretrain_world_models.py --env MiniGrid-Empty-8x8-v0 --env-option obs_floor=true \
        --env-option obs_mode=state --model minigrid_tiny --interactions 20000 --out runs/mg/empty8
    python scripts/pretrain_world_models.py --resume --out runs/mg/empty8 train.steps=20000   # train on to 20000
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from omegaconf import OmegaConf

from diffaif.agents import make_agent
from diffaif.config import build_config
from diffaif.data.episodes import load_episodes
from diffaif.envs import make_env
from diffaif.experiments.compare import derived_seed
from diffaif.model.train import EPISODES_FILE, MODEL_DIR, WorldModelConfig, train_world_model
from diffaif.model.world_model import WorldModel


def resume(run_dir: Path, world_model: dict, device: str) -> dict:
    """Continue the training in ``run_dir/train0`` from its checkpoint up to ``train.steps`` (the
    overrides' value); the learning-rate schedule is the one for the new total, at the resumed step."""
    run = run_dir / "train0"
    config = build_config(WorldModelConfig, [run / "config.yaml", world_model])
    began = time.perf_counter()
    train_world_model(load_episodes(run / EPISODES_FILE), WorldModel.load(run / MODEL_DIR).encoding, config.model,
                      config.train, run, resume=True, progress=False)
    record = json.loads((run_dir / "pretrain.json").read_text())
    record.setdefault("resumed", []).append({"to_steps": config.train.steps, "device": device,
                                             "train_seconds": round(time.perf_counter() - began, 1)})
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="grid4x4")
    parser.add_argument("--env-option", action="append", default=[], metavar="KEY=VALUE",
                        help="env keyword argument (as in the comparison's env_kwargs), repeatable")
    parser.add_argument("--interactions", type=int, help="random-policy warm-up steps per seed")
    parser.add_argument("--resume", action="store_true",
                        help="train each seed's existing run in --out on from its checkpoint to train.steps")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--base-seed", type=int, default=0, help="the comparison's --seed")
    parser.add_argument("--model", default="tiny", help="configs/model/<preset>.yaml")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", required=True)
    parser.add_argument("overrides", nargs="*", help="world-model overrides, e.g. train.steps=500")
    args = parser.parse_args()
    if (args.interactions is None) != args.resume:
        parser.error("give --interactions for a new run, or --resume (without it) to continue one")
    world_model = OmegaConf.to_container(OmegaConf.from_dotlist(args.overrides))
    env_kwargs = OmegaConf.to_container(OmegaConf.from_dotlist(args.env_option))
    for s in args.seeds:
        run_dir = Path(args.out) / f"seed{s}"
        if args.resume:
            record = resume(run_dir, world_model, args.device)
            (run_dir / "pretrain.json").write_text(json.dumps(record, indent=2))
            print(json.dumps(record))
            continue
        env = make_env(args.env, **env_kwargs)
        agent = make_agent("aif", env, seed=args.base_seed + s,
                           overrides={"model_preset": args.model, "world_model": world_model,
                                      "run_dir": str(run_dir), "device": args.device})
        began = time.perf_counter()
        used = agent.warm_up(env, args.interactions, seed=derived_seed(args.base_seed, s, 1))
        record = {"env": args.env, "env_kwargs": env_kwargs, "seed_index": s, "interactions": used, "episodes": agent.data.n_episodes,
                  "train_seconds": round(time.perf_counter() - began, 1), "device": args.device,
                  "model": str(run_dir / "train0" / "model")}
        (run_dir / "pretrain.json").write_text(json.dumps(record, indent=2))
        print(json.dumps(record))


if __name__ == "__main__":
    main()
