"""Run the MiniGrid ladder: per task, pretrain the active-inference agent's world model on random
interactions (once, reused by every seed), then compare it with Q-learning, DQN, random and the BFS
oracle, and write one table over all tasks.

    python scripts/minigrid_ladder.py                                  # configs/experiments/minigrid_ladder.yaml
    python scripts/minigrid_ladder.py compare.episodes=5 --tasks MiniGrid-Empty-8x8-v0

Writes ``<out>/<task>/`` (the comparison: summary.json, table.md, plots), ``<out>/pretrain/<task>/``
(the world model and its episodes) and ``<out>/ladder.json`` / ``ladder.md``: per task and agent the
success rate, mean steps, mean steps ÷ the oracle's, the environment steps used and decision time.
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from diffaif.agents import make_agent
from diffaif.config import build_config, preset_path
from diffaif.envs import is_minigrid_id, make_env
from diffaif.experiments.compare import CompareConfig, derived_seed, run_comparison


@dataclass
class LadderConfig:
    tasks: list[str] = field(default_factory=list)
    pretrain_interactions: int = 20000
    model_preset: str = "minigrid_tiny"
    world_model: dict[str, Any] = field(default_factory=dict)
    task_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    compare: dict[str, Any] = field(default_factory=dict)
    out: str = "runs/minigrid"


def pretrain(config: LadderConfig, compare: CompareConfig, task: str, device: str) -> Path:
    """Random interactions and one world-model training for ``task`` (skipped when already done)."""
    run_dir = Path(config.out) / "pretrain" / task
    model = run_dir / "train0" / "model"
    if model.is_dir():
        return model
    env = make_env(task, **{**compare.env_kwargs, **compare.agent_env.get("aif", {})})
    agent = make_agent("aif", env, seed=compare.seed, overrides={
        "model_preset": config.model_preset, "world_model": config.world_model, "run_dir": str(run_dir),
        "device": device})
    began = time.perf_counter()
    used = agent.warm_up(env, config.pretrain_interactions, seed=derived_seed(compare.seed, 0, 1))
    (run_dir / "pretrain.json").write_text(json.dumps({
        "env": task, "interactions": used, "episodes": agent.data.n_episodes,
        "train_seconds": round(time.perf_counter() - began, 1), "device": device}, indent=2))
    return model


def ladder_rows(task: str, summary: dict) -> list[dict]:
    oracle = summary["agents"].get("bfs_oracle", {}).get("steps_mean")
    return [{"task": task, "agent": name, "success_rate": a["success_rate"], "steps_mean": a["steps_mean"],
             "steps_over_oracle": a["steps_mean"] / oracle if oracle else None, "env_steps": a["env_steps"],
             "decision_ms_median": a.get("decision_ms_median")} for name, a in summary["agents"].items()]


def format_ladder(rows: list[dict]) -> str:
    def fmt(v, spec):
        return "-" if v is None else format(v, spec)
    lines = ["| task | agent | success | mean steps | ÷ oracle | env steps | decision ms |", "|" + "---|" * 7]
    lines += [f"| {r['task']} | {r['agent']} | {fmt(r['success_rate'], '.2f')} | {fmt(r['steps_mean'], '.2f')} | "
              f"{fmt(r['steps_over_oracle'], '.2f')} | {fmt(r['env_steps'], '.0f')} | "
              f"{fmt(r['decision_ms_median'], '.0f')} |" for r in rows]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(preset_path("experiments", "minigrid_ladder")))
    parser.add_argument("--tasks", nargs="+", help="a subset of the config's tasks")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("overrides", nargs="*", help="dotted overrides, e.g. compare.episodes=5")
    args = parser.parse_args()
    config = build_config(LadderConfig, [args.config], args.overrides)
    tasks = args.tasks or config.tasks
    not_minigrid = [task for task in tasks if not is_minigrid_id(task)]
    if not_minigrid:  # e.g. an override swallowed by --tasks: put overrides before --tasks
        raise ValueError(f"not MiniGrid ids: {not_minigrid}")
    rows = []
    for task in tasks:
        compare = build_config(CompareConfig, [config.compare, config.task_overrides.get(task, {}),
                                               {"env": task, "out": str(Path(config.out) / task)}])
        if "aif" in compare.agents:
            model = pretrain(config, compare, task, args.device)
            compare.agent.setdefault("aif", {}).update(pretrained=str(model), device=args.device)
        summary = run_comparison(compare)
        rows += ladder_rows(task, summary)
        out = Path(config.out)
        (out / "ladder.json").write_text(json.dumps(rows, indent=2))
        (out / "ladder.md").write_text(format_ladder(rows))
        print(format_ladder(rows))


if __name__ == "__main__":
    main()
