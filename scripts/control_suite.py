"""The classic-control suite: CartPole-v1, Pendulum-v1, MountainCar-v0 with EFE planning against
SB3 baselines at the same environment-step budget (and, optionally, at their published budget), and
MountainCar with / without the ensemble's parameter information gain.

For each task (``configs/experiments/<task>.yaml``) it runs the comparison harness for the
active-inference agent and random; then the task's SB3 baseline (``baseline`` below) is trained for
as many environment steps as the active-inference agent used in all (warm-up + evaluated episodes,
from which it keeps learning) and evaluated on the same episodes; MountainCar is run once more
without information gain. ``--published-budget`` also trains the baseline for the budget
rl-baselines3-zoo publishes for the task (``PUBLISHED_BUDGET``; its hyperparameters are
``agent.<baseline>`` in the task config) and evaluates it on the same episodes, labelled e.g.
"dqn (published budget 50000)"; ``--published-only`` runs just that, adding its row to the task's
rows already in ``--out``. Writes under ``--out`` (default ``runs/control``): one harness run
directory per task and variant, ``summary.json``, ``table.md`` (return mean ± std over seeds of
the per-seed mean return and of the last evaluated episode's return, success rate, environment
steps used, time a decision takes (an agent with action repeat decides once per repeat); evaluated
episodes to the first success) and ``<task>_returns.png``
(learning curves: return per evaluated episode, mean over seeds); on MountainCar the table adds how
far the episodes explored (highest x, largest speed), which separates the variants before any reaches
the flag.

    OMP_NUM_THREADS=1 python scripts/control_suite.py --tasks cartpole,pendulum,mountaincar seeds=5
    python scripts/control_suite.py --tasks cartpole seeds=2 episodes=2     # dotted CompareConfig overrides
    OMP_NUM_THREADS=1 python scripts/control_suite.py --published-only --out runs/control_published seeds=5 episodes=10
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from diffaif.config import build_config, preset_path  # noqa: E402
from diffaif.experiments.compare import CompareConfig, run_comparison  # noqa: E402

TASKS = ("cartpole", "pendulum", "mountaincar")
BASELINE = {"cartpole": "dqn", "pendulum": "sac", "mountaincar": "dqn"}
# rl-baselines3-zoo's n_timesteps for BASELINE[task] (hyperparams/dqn.yml, sac.yml)
PUBLISHED_BUDGET = {"cartpole": 50_000, "pendulum": 20_000, "mountaincar": 120_000}
# MountainCar's ablation: one world model, no parameter information gain
NO_NOVELTY = {"agent": {"aif": {"ensemble": 1, "planner": {"continuous": {"novelty_weight": 0.0}}}}}


def mountaincar_reach(steps_path: Path) -> dict[str, list[float]]:
    """Per agent, how far MountainCar's episodes explored, from a run's ``steps.jsonl``: the mean over
    episodes of the highest position x reached (the flag is at 0.5) and of the largest speed |ẋ|,
    from the true states after each step: ``{agent: [highest x, largest |ẋ|]}``. An agent with
    action repeat is seen after each decision only, so its reach is if anything understated."""
    episodes: dict[tuple, list] = {}
    with open(steps_path) as f:
        for line in f:
            row = json.loads(line)
            episodes.setdefault((row["agent"], row["seed"], row["episode"]), []).append(row["state"])
    reach: dict[str, list] = {}
    for (agent, _, _), states in episodes.items():
        states = np.asarray(states)
        reach.setdefault(agent, []).append((states[:, 0].max(), np.abs(states[:, 1]).max()))
    return {agent: np.mean(values, axis=0).tolist() for agent, values in reach.items()}


def run(config: CompareConfig) -> dict:
    """One harness run; returns its summary plus per-episode returns/successes read back from episodes.csv
    (and, on MountainCar, how far the episodes explored: ``mountaincar_reach``)."""
    summary = run_comparison(config)
    reach = mountaincar_reach(Path(config.out) / "steps.jsonl") if config.env.startswith("MountainCar") else {}
    with open(Path(config.out) / "episodes.csv") as f:
        rows = list(csv.DictReader(f))
    for name, stats in summary["agents"].items():
        mine = [r for r in rows if r["agent"] == name]
        seeds = sorted({int(r["seed"]) for r in mine})
        per_seed = [[float(r["return"]) for r in mine if int(r["seed"]) == s] for s in seeds]
        successes = [[int(r["success"]) for r in mine if int(r["seed"]) == s] for s in seeds]
        stats["returns_per_seed"] = per_seed
        stats["seed_mean_return"] = float(np.mean([np.mean(r) for r in per_seed]))
        stats["seed_std_return"] = float(np.std([np.mean(r) for r in per_seed], ddof=1)) if len(seeds) > 1 else 0.0
        stats["episodes_to_first_success"] = [next((i + 1 for i, ok in enumerate(s) if ok), None) for s in successes]
        last = [r[-1] for r in per_seed]   # the last evaluated episode: after all the learning the run allows
        stats["last_episode_return"] = float(np.mean(last))
        stats["last_episode_std"] = float(np.std(last, ddof=1)) if len(seeds) > 1 else 0.0
        if name in reach:
            stats["highest_x"], stats["largest_speed"] = reach[name]
    return summary


def run_baseline(config: CompareConfig, task: str, budget: int, out: Path) -> dict:
    """The task's SB3 baseline trained for ``budget`` env steps, then evaluated on ``config``'s episodes."""
    name = BASELINE[task]
    return run(dataclasses.replace(config, agents=[name], warmup_steps=budget, out=str(out)))["agents"][name]


def run_agents(config: CompareConfig, task: str, out: Path, same_budget: bool) -> dict[str, dict]:
    """The configured agents, MountainCar's ablation and (``same_budget``) the baseline at the AIF agent's budget."""
    runs = dict(run(config)["agents"])
    if task == "mountaincar":
        variant = with_overrides(dataclasses.replace(config, agents=["aif"], out=str(out / f"{task}_no_novelty")),
                                 NO_NOVELTY)
        runs["aif (no info gain)"] = run(variant)["agents"]["aif"]
    if same_budget and "aif" in runs:
        budget = math.ceil(runs["aif"]["env_steps"])  # the AIF agent's warm-up + the episodes it learned from
        runs[f"{BASELINE[task]} (same budget)"] = run_baseline(config, task, budget, out / f"{task}_{BASELINE[task]}")
    return runs


def with_overrides(config: CompareConfig, overrides: dict) -> CompareConfig:
    """``config`` with nested ``overrides`` merged in (validated like any config layer)."""
    return build_config(CompareConfig, [dataclasses.asdict(config), overrides])


def plot_returns(path: Path, task: str, runs: dict[str, dict]) -> None:
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, stats in runs.items():
        per_seed = stats["returns_per_seed"]
        length = min(len(r) for r in per_seed)
        curve = np.mean([r[:length] for r in per_seed], axis=0)
        ax.plot(np.arange(1, length + 1), curve, marker="o", label=f"{label} ({stats['env_steps']:.0f} env steps)")
    ax.set(xlabel="evaluated episode", ylabel="return (mean over seeds)", title=f"{task}: return per episode")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def format_rows(results: dict[str, dict[str, dict]]) -> str:
    lines = ["| task | agent | return (mean ± std over seeds) | last episode's return | success | env steps | "
             "seeds × episodes | first success (episode, per seed) | decision ms (median) | "
             "MountainCar reach: highest x, largest abs(ẋ) (mean over episodes) |", "|" + "---|" * 10]
    for task, runs in results.items():
        for label, s in runs.items():
            first = ", ".join("-" if e is None else str(e) for e in s["episodes_to_first_success"])
            ms = s.get("decision_ms_median")
            last = (f"{s['last_episode_return']:.1f} ± {s['last_episode_std']:.1f}" if "last_episode_return" in s
                    else "-")
            reach = f"{s['highest_x']:.2f}, {s['largest_speed']:.3f}" if "highest_x" in s else "-"
            lines.append(f"| {task} | {label} | {s['seed_mean_return']:.1f} ± {s['seed_std_return']:.1f} | {last} | "
                         f"{s['success_rate']:.2f} | {s['env_steps']:.0f} | {s['seeds']} × "
                         f"{s['episodes'] // s['seeds']} | {first} | {'-' if ms is None else f'{ms:.0f}'} | {reach} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", default=",".join(TASKS), help=f"comma-separated, from {TASKS}")
    parser.add_argument("--out", default="runs/control")
    parser.add_argument("--skip-baseline", action="store_true", help="no same-budget baseline")
    parser.add_argument("--published-budget", action="store_true",
                        help="also train the SB3 baseline for its published (rl-zoo) budget")
    parser.add_argument("--published-only", action="store_true",
                        help="only the published-budget baseline, added to the task's rows already in --out")
    parser.add_argument("overrides", nargs="*", help="dotted CompareConfig overrides, e.g. seeds=3")
    args = parser.parse_args(argv)
    tasks = [t for t in args.tasks.split(",") if t]
    unknown = sorted(set(tasks) - set(TASKS))
    if unknown:
        raise SystemExit(f"unknown tasks {unknown}; valid: {TASKS}")
    out = Path(args.out)
    results_path = out / "summary.json"
    results: dict[str, dict[str, dict]] = json.loads(results_path.read_text()) if results_path.exists() else {}
    for task in tasks:
        config = build_config(CompareConfig, [preset_path("experiments", task)], args.overrides)
        config = dataclasses.replace(config, out=str(out / task))
        if args.published_only:
            runs = results.get(task, {})  # this task's earlier rows in --out, if any
        else:
            runs = run_agents(config, task, out, same_budget=not args.skip_baseline)
        if args.published_budget or args.published_only:
            budget, name = PUBLISHED_BUDGET[task], BASELINE[task]
            runs[f"{name} (published budget {budget})"] = run_baseline(config, task, budget,
                                                                       out / f"{task}_{name}_published")
        results[task] = runs
        plot_returns(out / f"{task}_returns.png", task, runs)
        out.mkdir(parents=True, exist_ok=True)
        results_path.write_text(json.dumps(results, indent=2))
        (out / "table.md").write_text(format_rows(results))
        print(format_rows({task: runs}), flush=True)
    print(f"wrote {out.resolve()}")


if __name__ == "__main__":
    main()
