"""``diffaif pretrain``: the active-inference agent's warm-up (random interactions, then world-model
training) run ahead of a comparison, e.g. on a faster device.

Seed index ``s`` of base seed ``b`` does exactly what ``diffaif compare`` (``seed=b``) does for seed
index ``s`` inside the harness: agent seed ``b + s``, warm-up seed ``derived_seed(b, s, 1)``, the env
options the aif agent gets by default on that env family (``agent_env_options``) under the ones
given. The model is written to ``<out>/seed<b+s>/train0/model`` (``model_path``) beside its training
episodes, and ``<out>/seed<b+s>/pretrain.json`` records what was done; so a later
``diffaif compare ... agent.aif.pretrained=<out>/seed{seed}/train0/model`` is the same experiment
(the agent fills in ``{seed}``), and the harness still charges the warm-up interactions to the agent.
``resume_pretraining`` trains such a run on from its checkpoint to a new ``train.steps``.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

RECORD_FILE = "pretrain.json"


def run_dir(out: str | Path, seed: int) -> Path:
    """The folder of agent seed ``seed`` (base seed + seed index) under ``out``."""
    return Path(out) / f"seed{seed}"


def model_path(out: str | Path, seed: int) -> Path:
    """Where the model of agent seed ``seed`` is written: ``<out>/seed<seed>/train0/model``."""
    return run_dir(out, seed) / "train0" / "model"


def pretrain(env_name: str, env_options: dict[str, Any], interactions: int, folder: str | Path, seed_index: int = 0,
             base_seed: int = 0, model_preset: str = "tiny", world_model: dict[str, Any] | None = None,
             device: str = "cpu", warmup_policy: str | None = None) -> dict[str, Any]:
    """One seed's warm-up into ``folder`` (``folder/train0/model``); → the record, also written to
    ``folder/pretrain.json``. ``warmup_policy`` None: the task family's (the record names the one used)."""
    from diffaif.agents import agent_env_options, make_agent
    from diffaif.data.files import atomic_write_text
    from diffaif.envs import make_env
    from diffaif.experiments.compare import derived_seed

    if interactions < 1:
        raise ValueError(f"--interactions must be >= 1, got {interactions}")
    options = {**agent_env_options("aif", env_name), **env_options}
    env = make_env(env_name, **options)
    folder = Path(folder)
    agent = make_agent("aif", env, seed=base_seed + seed_index,
                       overrides={"model_preset": model_preset, "world_model": world_model or {},
                                  "run_dir": str(folder), "device": device, "warmup_policy": warmup_policy})
    began = time.perf_counter()
    used = agent.warm_up(env, interactions, seed=derived_seed(base_seed, seed_index, 1))
    record = {"env": env_name, "env_options": options, "base_seed": base_seed, "seed_index": seed_index,
              "interactions_budget": interactions, "interactions": used, "episodes": agent.data.n_episodes,
              "warmup_policy": agent.warmup_policy, "model_preset": model_preset,
              "world_model": world_model or {}, "train_seconds": round(time.perf_counter() - began, 1),
              "device": device, "model": str(folder / "train0" / "model")}
    atomic_write_text(folder / RECORD_FILE, json.dumps(record, indent=2))
    return record


def resume_pretraining(folder: str | Path, world_model: dict[str, Any], device: str = "cpu") -> dict[str, Any]:
    """Continue the training in ``folder/train0`` from its checkpoint up to ``train.steps`` (``world_model``'s
    value); the learning-rate schedule is the one for the new total, at the resumed step. → the record,
    with the resumption appended."""
    from diffaif.config import build_config
    from diffaif.data.episodes import load_episodes
    from diffaif.data.files import atomic_write_text
    from diffaif.model.train import EPISODES_FILE, MODEL_DIR, WorldModelConfig, train_world_model
    from diffaif.model.world_model import WorldModel

    folder = Path(folder)
    run, record_file = folder / "train0", folder / RECORD_FILE
    if not (run / MODEL_DIR).is_dir() or not record_file.is_file():
        raise FileNotFoundError(f"--resume: there is no pretrained run at {folder} (no {run / MODEL_DIR} "
                                f"or {record_file})")
    config = build_config(WorldModelConfig, [run / "config.yaml", world_model])
    began = time.perf_counter()
    train_world_model(load_episodes(run / EPISODES_FILE), WorldModel.load(run / MODEL_DIR).encoding, config.model,
                      config.train, run, resume=True, progress=False)
    record = json.loads(record_file.read_text())
    record.setdefault("resumed", []).append({"to_steps": config.train.steps, "device": device,
                                             "train_seconds": round(time.perf_counter() - began, 1)})
    atomic_write_text(record_file, json.dumps(record, indent=2))
    return record
