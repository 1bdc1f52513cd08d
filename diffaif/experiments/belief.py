"""``diffaif belief``: the view agent's belief map over episodes, with information gain on and off.

Per seed the agent (``aif_map``) is warmed up once; a copy of it is then evaluated with each
``info_gain_weights`` value on the same layouts. Per step the evaluator (not the agent) measures the
share of the true grid's cells the belief map holds. Writes ``summary.json`` (per weight: success,
mean steps, the mean share seen after each step), ``seen.png`` (that share against the step) and
``belief_map.png`` (one episode: the belief map at five moments with the path so far, and the
expected and realised information gain per step).
"""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from diffaif.agents import agent_env_options, make_agent
from diffaif.data.files import atomic_write_text
from diffaif.envs import make_env
from diffaif.envs.minigrid_task import CELL_NAMES
from diffaif.experiments.compare import derived_seed
from diffaif.planning.belief_map import UNKNOWN


@dataclass
class BeliefConfig:
    env: str = "MiniGrid-FourRooms-v0"
    seeds: int = 5
    episodes: int = 10                 # evaluated episodes per seed and weight
    seed: int = 0
    warmup_steps: int = 2000
    max_steps: int = 100
    info_gain_weights: list[float] = field(default_factory=lambda: [1.0, 0.0])
    agent: dict[str, Any] = field(default_factory=dict)      # MapAIFConfig overrides
    out: str = "runs/belief"

    def __post_init__(self):
        if self.seeds < 1 or self.episodes < 1 or self.max_steps < 1:
            raise ValueError("seeds, episodes and max_steps must be >= 1")
        if not self.info_gain_weights or min(self.info_gain_weights) < 0:
            raise ValueError(f"info_gain_weights must be a non-empty list of values >= 0, got {self.info_gain_weights}")


def share_seen(cells: np.ndarray, radius: int, start: np.ndarray, width: int, height: int) -> float:
    """The share of a ``width`` x ``height`` grid's cells known in a belief map centred on ``start`` (x, y)."""
    ys, xs = np.nonzero(cells != UNKNOWN)
    wx, wy = xs - radius + start[0], ys - radius + start[1]
    return float(np.sum((wx >= 0) & (wx < width) & (wy >= 0) & (wy < height))) / (width * height)


def run_episode(env, agent, reset_seed: int, keep_maps: bool = False) -> dict:
    """One episode; per step the share seen, the expected and realised information gain (and the maps)."""
    obs, info = env.reset(seed=reset_seed)
    agent.reset(obs, info)
    world, start, radius = env.unwrapped, info["state"][:2].copy(), agent.belief.radius
    seen = [share_seen(agent.belief.cells, radius, start, world.width, world.height)]
    expected, realised, poses, maps = [], [], [agent.belief.pose], [agent.belief.cells.copy()] if keep_maps else []
    done = False
    while not done:
        action = agent.act(obs)
        expected.append(agent.step_log()["expected_info_gain"])
        obs, reward, terminated, truncated, info = env.step(action)
        agent.observe(action, reward, obs, terminated, truncated, info)
        done = terminated or truncated
        realised.append(agent.revealed_gain if not terminated else 0.0)
        seen.append(share_seen(agent.belief.cells, radius, start, world.width, world.height))
        poses.append(agent.belief.pose)
        if keep_maps:
            maps.append(agent.belief.cells.copy())
    return {"success": bool(info["success"]), "steps": len(expected), "seen": seen, "expected_gain": expected,
            "realised_gain": realised, "poses": poses, "maps": maps}


def run_belief(config: BeliefConfig) -> dict:
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    options = {**agent_env_options("aif_map", config.env), "max_steps": config.max_steps}
    results: dict[str, list[dict]] = {str(w): [] for w in config.info_gain_weights}
    figure_episode = None
    for s in range(config.seeds):
        env = make_env(config.env, **options)
        warm = make_agent("aif_map", env, derived_seed(config.seed, s, 2), config.agent)
        warm.warm_up(env, config.warmup_steps, seed=derived_seed(config.seed, s, 1))
        for weight in config.info_gain_weights:
            agent = copy.deepcopy(warm)
            agent.planner.config.info_gain_weight = weight
            for e in range(config.episodes):
                keep = figure_episode is None and s == 0 and e == 0 and weight == config.info_gain_weights[0]
                episode = run_episode(env, agent, derived_seed(config.seed, s, 0, e), keep_maps=keep)
                if keep:
                    figure_episode = episode
                results[str(weight)].append({k: v for k, v in episode.items() if k != "maps"})
    summary = {"config": config.__dict__, "weights": {}}
    for weight, episodes in results.items():
        longest = max(len(e["seen"]) for e in episodes)
        padded = np.array([e["seen"] + [e["seen"][-1]] * (longest - len(e["seen"])) for e in episodes])
        summary["weights"][weight] = {
            "success_rate": float(np.mean([e["success"] for e in episodes])),
            "steps_mean": float(np.mean([e["steps"] for e in episodes])), "episodes": len(episodes),
            "seen_per_step": padded.mean(0).round(4).tolist(),
            "realised_gain_per_step": float(np.mean([g for e in episodes for g in e["realised_gain"]]))}
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2))
    plot_seen(out / "seen.png", summary, config.env)
    plot_belief_episode(out / "belief_map.png", figure_episode, config.env)
    return summary


# colours of CELL_NAMES: unseen, empty, wall, floor, door_open, door_closed, door_locked, key, ball, box, goal, lava
CELL_COLOURS = ["#bbbbbb", "#ffffff", "#444444", "#eeeeee", "#c8a064", "#8b5a2b", "#5a3a1b", "#e6c619", "#3a7bd5",
                "#9b6a3a", "#2ca02c", "#d62728"]


def plot_seen(path: Path, summary: dict, env_id: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    for weight, row in summary["weights"].items():
        ax.plot(row["seen_per_step"], label=f"β = {weight}: success {row['success_rate']:.2f}, "
                                            f"{row['steps_mean']:.1f} steps")
    ax.set(xlabel="step", ylabel="share of the grid seen", title=f"{env_id}: information gain weight β")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_belief_episode(path: Path, episode: dict, env_id: str) -> None:
    """The belief map at five moments of ``episode`` (path so far in blue) and its information gain per step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    maps, poses = episode["maps"], np.array([p[:2] for p in episode["poses"]])
    known = np.nonzero(maps[-1] != UNKNOWN)
    rows = slice(known[0].min(), known[0].max() + 1)
    cols = slice(known[1].min(), known[1].max() + 1)
    moments = sorted(set(np.linspace(0, len(maps) - 1, 5).round().astype(int).tolist()))
    fig = plt.figure(figsize=(3 * len(moments), 6))
    colours = ListedColormap(CELL_COLOURS[: len(CELL_NAMES)])
    for i, t in enumerate(moments):
        ax = fig.add_subplot(2, len(moments), i + 1)
        ax.imshow(maps[t][rows, cols], cmap=colours, vmin=0, vmax=len(CELL_NAMES) - 1, interpolation="nearest")
        ax.plot(poses[: t + 1, 1] - cols.start, poses[: t + 1, 0] - rows.start, color="#1f77b4", lw=1.5)
        ax.plot(poses[t, 1] - cols.start, poses[t, 0] - rows.start, "o", color="#1f77b4")
        ax.set_title(f"step {t}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    ax = fig.add_subplot(2, 1, 2)
    steps = np.arange(1, len(episode["expected_gain"]) + 1)
    ax.bar(steps, episode["realised_gain"], color="#ff7f0e", alpha=0.6, label="realised (entropy of the cells revealed)")
    ax.plot(steps, episode["expected_gain"], "k.-", label="expected, of the view after the chosen action")
    ax.set(xlabel="step", ylabel="information gain about the map (nats)",
           title=f"{env_id}: one episode, {'success' if episode['success'] else 'failure'} in {len(steps)} steps")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


__all__ = ["BeliefConfig", "run_belief", "run_episode", "share_seen"]
