"""PNG figures of a comparison run: the method paper's Fig. 2a/2b, learning curves, Fig. 3/4."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _padded_mean(traces: list[list[float]]) -> np.ndarray:
    """Mean over episodes of distance traces; a finished episode stays at its last distance."""
    length = max(len(t) for t in traces)
    grid = np.array([t + [t[-1]] * (length - len(t)) for t in traces], float)
    return grid.mean(axis=0)


def plot_comparison(out: Path, summary: dict, records) -> None:
    """distance_to_goal.png (Fig. 2a), performance.png (Fig. 2b), learning_curve.png."""
    agents = list(summary["agents"])
    fig, ax = plt.subplots(figsize=(6, 4))
    for name in agents:
        ax.plot(_padded_mean([r.distances for r in records if r.agent == name]), label=name)
    ax.set(xlabel="step", ylabel="distance to goal (shortest path)", title=f"{summary['env']}: distance to goal")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "distance_to_goal.png", dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    data = [[r.steps for r in records if r.agent == name] for name in agents]
    ax.boxplot(data, showmeans=True)
    ax.set_xticks(range(1, len(agents) + 1), agents)
    ax.set(ylabel="steps to goal", title=f"{summary['env']}: performance comparison")
    fig.tight_layout()
    fig.savefig(out / "performance.png", dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    for name in agents:
        rows = [r for r in records if r.agent == name]
        n_ep = max(r.episode for r in rows) + 1
        per_episode = np.array([np.mean([r.steps for r in rows if r.episode == e]) for e in range(n_ep)])
        window = max(1, n_ep // 20)
        smooth = np.convolve(per_episode, np.ones(window) / window, mode="valid")
        ax.plot(np.arange(len(smooth)) + window - 1, smooth, label=name)
    ax.set(xlabel="episode", ylabel="steps (mean over seeds, smoothed)", title=f"{summary['env']}: learning curves")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "learning_curve.png", dpi=120)
    plt.close(fig)


def plot_observability(observability: np.ndarray, path: Path, start=None, goal=None) -> None:
    """The per-cell observability map as a grey-scale picture (darker = less observable)."""
    fig, ax = plt.subplots(figsize=(4.5, 4))
    im = ax.imshow(observability, cmap="gray", vmin=0, vmax=1)
    for (r, c), v in np.ndenumerate(observability):
        ax.text(c, r, f"{v:.1f}", ha="center", va="center", color="red" if v < 0.5 else "black", fontsize=8)
    for cell, label in ((start, "S"), (goal, "G")):
        if cell is not None:
            ax.text(cell[1], cell[0] - 0.3, label, ha="center", va="center", color="blue", fontweight="bold")
    fig.colorbar(im, ax=ax, label="observability level")
    ax.set(title="observability map", xticks=[], yticks=[])
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_policy_traces(step_log: list[dict], action_names, out: Path, agent: str = "aif", episodes: int = 5) -> None:
    """Action probabilities (Fig. 3) and EFE per action (Fig. 4) over the steps of one agent's first
    ``episodes`` episodes of its first seed, joined end to end (dotted lines mark episode starts)."""
    rows = [r for r in step_log if r.get("agent") == agent and "action_probs" in r]
    if not rows:
        return
    seed = rows[0]["seed"]
    shown = sorted({r["episode"] for r in rows if r["seed"] == seed})[:episodes]
    rows = [r for r in rows if r["seed"] == seed and r["episode"] in shown]
    starts = [i for i, r in enumerate(rows) if r["t"] == 0]
    for key, fname, ylabel in (("action_probs", f"{agent}_action_probabilities.png", "P(action)"),
                               ("efe_per_action", f"{agent}_efe_per_action.png", "expected free energy G (min over policies)")):
        values = np.array([r[key] for r in rows], float)
        fig, ax = plt.subplots(figsize=(7, 4))
        for a, name in enumerate(action_names):
            ax.plot(values[:, a], marker="o", ms=3, label=name)
        for i in starts[1:]:
            ax.axvline(i - 0.5, color="grey", ls=":", lw=1)
        ax.set(xlabel=f"step (episodes {shown[0]}-{shown[-1]} of seed {seed})", ylabel=ylabel,
               title=f"{agent}: {key.replace('_', ' ')} over time")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / fname, dpi=120)
        plt.close(fig)
