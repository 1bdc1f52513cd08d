"""How fast a world model learns: prediction accuracy against training seconds, on fixed data.

For each time budget S, a fresh model is trained for at most S CPU-seconds of this process
(``train.max_seconds`` with ``budget_clock="cpu"``, whose cosine learning rate decays over the
budget) on the same random-policy interactions, then evaluated on held-out episodes with
``evaluate_any_world_model``. Each point is thus what a user with S seconds of one core gets, not an
intermediate checkpoint of one long run; counting process time keeps the points fair when other
work shares the machine. Wall seconds are recorded beside it.
"""
from __future__ import annotations

import json
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from diffaif.config import build_config, preset_or_file

# The headline figure per observation kind: whole-observation accuracy or mean absolute error.
CATEGORICAL_KEY, CONTINUOUS_KEY = "obs_accuracy", "obs_abs_error"


@dataclass
class LearningCurveConfig:
    env: str = "MiniGrid-DoorKey-5x5-v0"
    env_options: dict[str, Any] = field(default_factory=dict)   # keyword arguments of make_env
    interactions: int = 20000          # random-policy training data (whole episodes, at least this many steps)
    model_preset: str = "minigrid_tiny"                         # configs/model/<preset>.yaml
    world_model: dict[str, Any] = field(default_factory=dict)   # overrides of the preset (model.*, train.*)
    budgets_s: list[float] = field(default_factory=lambda: [15.0, 30.0, 60.0, 120.0])
    eval_episodes: int = 100
    per_episode: int = 8               # evaluation windows per held-out episode
    horizon: int = 5
    context: int = 1
    n_samples: int = 1                 # one sample: accuracy of a single rollout
    threads: int = 1
    seed: int = 0
    eval_seed: int = 10_000
    out: str = "runs/learning_curve.json"

    def __post_init__(self):
        if not self.budgets_s or min(self.budgets_s) <= 0:
            raise ValueError(f"budgets_s must be positive seconds, got {self.budgets_s}")
        for name in ("interactions", "eval_episodes", "per_episode", "horizon", "n_samples", "threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")


def learning_curve(config: LearningCurveConfig) -> dict[str, Any]:
    """Train and evaluate one model per budget; → {"config", "interactions", "points": [...]}. Each point:
    ``budget_s``, ``train_cpu_s``, ``train_wall_s``, ``train_steps`` and the evaluation's lists over k."""
    from diffaif.data import collect_episodes
    from diffaif.envs import make_env
    from diffaif.model.evaluate import evaluate_any_world_model
    from diffaif.model.train import WorldModelConfig, train_world_model
    from diffaif.tasks import task_encoding

    torch.set_num_threads(config.threads)
    env = make_env(config.env, **config.env_options)
    data = collect_episodes(env, seed=config.seed, min_interactions=config.interactions)
    encoding = task_encoding(env, data)
    preset = preset_or_file("model", config.model_preset)
    points = []
    for budget in config.budgets_s:
        wm = build_config(WorldModelConfig, [preset, config.world_model])
        wm.train.max_seconds, wm.train.steps = float(budget), 10**9   # the budget, not the step count, ends it
        wm.train.budget_clock = "cpu"
        wm.train.seed = config.seed
        with tempfile.TemporaryDirectory() as run:
            cpu, wall = time.process_time(), time.perf_counter()
            model = train_world_model(data, encoding, wm.model, wm.train, run, progress=False)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            steps = json.loads((Path(run) / "metrics.jsonl").read_text().splitlines()[-1])["step"]
        evaluation = evaluate_any_world_model(model, env, n_episodes=config.eval_episodes, horizon=config.horizon,
                                              n_samples=config.n_samples, seed=config.eval_seed,
                                              context=config.context, per_episode=config.per_episode)
        points.append({"budget_s": budget, "train_cpu_s": round(cpu, 1), "train_wall_s": round(wall, 1),
                       "train_steps": steps, **evaluation})
    return {"config": asdict(config), "interactions": int(data.n_interactions), "points": points}


def plot_learning_curve(result: dict[str, Any], path: str | Path) -> None:
    """Accuracy (or error) at each k against training CPU-seconds, one line per k, as a PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = result["points"]
    key = CATEGORICAL_KEY if CATEGORICAL_KEY in points[0] else CONTINUOUS_KEY
    seconds = [p["train_cpu_s"] for p in points]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for k in range(len(points[0][key])):
        values = [p[key][k] if key == CATEGORICAL_KEY else sum(p[key][k]) / len(p[key][k]) for p in points]
        ax.plot(seconds, values, marker="o", label=f"k = {k + 1}")
    ax.set_xlabel("training CPU-seconds")
    ax.set_ylabel("whole-observation accuracy" if key == CATEGORICAL_KEY else "mean absolute error")
    ax.set_title(f"{result['config']['env']}: {result['interactions']} interactions", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run_learning_curve(config: LearningCurveConfig) -> dict[str, Any]:
    """``learning_curve``, written to ``config.out`` (JSON) and beside it as a PNG plot."""
    from diffaif.data.files import atomic_write_text, check_writable

    check_writable(config.out)
    result = learning_curve(config)
    atomic_write_text(config.out, json.dumps(result, indent=2))
    plot_learning_curve(result, Path(config.out).with_suffix(".png"))
    return result
