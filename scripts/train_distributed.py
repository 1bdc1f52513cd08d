"""Train a tiny world model with ``train_world_model`` under ``accelerate launch`` and record what each process did.

    accelerate launch --cpu --num_processes 2 scripts/train_distributed.py --out /tmp/dist

Every process writes ``<out>/ranks/rank<i>.json``: its process index, the number of processes, the
torch.distributed backend, a digest of each training batch it drew (observed by wrapping
``diffusion_loss``), and a digest of the world model ``train_world_model`` returned. After all
processes are done, the main process lists the files in ``<out>/run`` (the training's out_dir) into
``<out>/ranks/files.json``. tests/test_distributed.py reads these records.
"""
from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import torch
from accelerate import PartialState

import diffaif.model.train as train_module
from diffaif.data import collect_episodes, grid_encoding
from diffaif.envs import make_env
from diffaif.model import ModelConfig, TrainConfig

TINY = dict(length=6, width=32, depth=1, heads=2, mlp_ratio=2, steps=3)


def digest(tensor: torch.Tensor) -> str:
    return hashlib.sha1(tensor.detach().float().cpu().contiguous().numpy().tobytes()).hexdigest()[:16]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--env", default="grid4x4")
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr-schedule", default="cosine")
    args = parser.parse_args(argv)
    out = Path(args.out)
    torch.set_num_threads(1)

    batches: list[dict] = []
    original_loss = train_module.diffusion_loss

    def observed_loss(net, scheduler, encoding, x0, *args, **kwargs):
        batches.append({"x0": digest(x0), "shape": list(x0.shape)})
        return original_loss(net, scheduler, encoding, x0, *args, **kwargs)

    train_module.diffusion_loss = observed_loss
    env = make_env(args.env)
    data = collect_episodes(env, args.episodes, seed=0)
    config = TrainConfig(steps=args.steps, batch_size=args.batch_size, warmup_steps=0, lr_schedule=args.lr_schedule,
                         log_interval=1, checkpoint_interval=args.steps, num_train_timesteps=100)
    model = train_module.train_world_model(data, grid_encoding(env), ModelConfig(**TINY), config, out / "run",
                                           progress=False)
    train_module.diffusion_loss = original_loss
    state = PartialState()  # the state train_world_model's Accelerator set up (made first, it would ignore --cpu)
    params = torch.cat([p.detach().flatten().cpu() for p in model.net.parameters()])
    dist = torch.distributed
    record = {"process_index": state.process_index, "num_processes": state.num_processes,
              "backend": dist.get_backend() if dist.is_available() and dist.is_initialized() else None,
              "device": str(state.device), "batches": batches, "model_digest": digest(params)}
    (out / "ranks").mkdir(parents=True, exist_ok=True)
    (out / "ranks" / f"rank{state.process_index}.json").write_text(json.dumps(record, indent=2))
    state.wait_for_everyone()
    if state.is_main_process:
        files = sorted(str(p.relative_to(out / "run")) for p in (out / "run").rglob("*") if p.is_file())
        (out / "ranks" / "files.json").write_text(json.dumps(files, indent=2))


if __name__ == "__main__":
    main()
