"""``diffaif suite grid|minigrid|control [--quick]``: the result suites as reproducible artefacts.

Each suite runs the comparison harness on its tasks and writes, under its out folder, one harness run
folder per task (and variant), ``summary.json`` (per task and agent the harness summary, plus the
suite's settings, command, commit and wall time), ``table.md`` (the table that docs/results/*.md quote)
and plots:

- **grid**: the ``grid4x4`` and ``grid8x8`` experiment presets (AIF, Q-learning, random, oracle);
  ``table.md`` per task and agent: success, mean steps, mean steps ÷ the oracle's, environment steps
  used, decision time; ``success.png`` (success and steps ÷ oracle per task and agent).
- **minigrid**: the ladder (preset ``minigrid_ladder``, overrides are its keys, e.g.
  ``compare.episodes=5``): per task the AIF agent's world model is pretrained once on its warm-up's
  interactions (``<out>/pretrain/<task>``, ``diffaif.experiments.pretrain``; reused when an earlier run
  made it with the same settings) when the MDP variant ``aif`` is among the agents; the view agent
  ``aif_map`` is compared with Q-learning on the view, DQN, PPO, random and the BFS oracle; the same
  table and plot as grid.
- **control**: CartPole-v1, Pendulum-v1, MountainCar-v0 (presets ``cartpole``, ``pendulum``,
  ``mountaincar``) with the AIF agent and random; then the task's SB3 baseline (``BASELINE``) trained
  for as many env steps as the AIF agent used in all (warm-up + evaluated episodes) and evaluated on
  the same episodes (``baseline=False``: skipped); MountainCar once more without information gain.
  ``published_budget`` also trains the baseline for rl-baselines3-zoo's budget (``PUBLISHED_BUDGET``),
  ``published_only`` runs just that and adds its row to the task's rows already in ``summary.json``.
  ``table.md``: return mean ± std over seeds of the per-seed mean return and of the last evaluated
  episode's return, success, env steps, evaluated episodes to the first success, decision time, and on
  MountainCar how far the episodes explored (highest x, largest speed); ``<task>_returns.png``
  (return per evaluated episode, mean over seeds).

``quick=True`` layers ``QUICK[suite]`` (tiny budgets, one seed) under the user's overrides: a
smoke run of a few minutes on one core whose figures mean nothing.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import math
import shlex
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

SUITES = ("grid", "minigrid", "control")
GRID_TASKS = ("grid4x4", "grid8x8")
CONTROL_TASKS = ("cartpole", "pendulum", "mountaincar")
BASELINE = {"cartpole": "dqn", "pendulum": "sac", "mountaincar": "dqn"}
# rl-baselines3-zoo's n_timesteps for BASELINE[task] (hyperparams/dqn.yml, sac.yml)
PUBLISHED_BUDGET = {"cartpole": 50_000, "pendulum": 20_000, "mountaincar": 120_000}
# MountainCar's ablation: one world model, no parameter information gain
NO_NOVELTY = {"agent": {"aif": {"ensemble": 1, "planner": {"continuous": {"novelty_weight": 0.0}}}}}

# --quick: a smoke run (one seed, tiny budgets); layered over the presets, under the user's overrides
QUICK: dict[str, dict[str, Any]] = {
    "grid": {"seeds": 1, "episodes": 5, "warmup_steps": 500, "progress": False,
             "agent": {"aif": {"world_model": {"train": {"steps": 200}}}}},
    "minigrid": {"tasks": ["MiniGrid-Empty-5x5-v0"], "pretrain_interactions": 1000,
                 "world_model": {"train": {"steps": 200}},
                 "compare": {"seeds": 1, "episodes": 3, "warmup_steps": 1000,
                             "agent": {"dqn": {"learning_starts": 100}, "ppo": {"n_steps": 64},
                                       "aif_map": {"max_warmup_steps": 200, "model": {"steps": 50}}}}},
    "control": {"seeds": 1, "episodes": 1, "warmup_steps": 300, "progress": False,
                "agent": {"aif": {"world_model": {"train": {"steps": 100}},
                                  "planner": {"policies": {"n_candidates": 16}, "n_samples": 4}}}},
}


@dataclass
class LadderConfig:
    """The MiniGrid suite's keys (preset ``minigrid_ladder``)."""
    tasks: list[str] = field(default_factory=list)
    pretrain_interactions: int = 20000
    model_preset: str = "minigrid_tiny"
    world_model: dict[str, Any] = field(default_factory=dict)
    task_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    compare: dict[str, Any] = field(default_factory=dict)
    out: str = "runs/minigrid"


def default_out(suite: str, quick: bool) -> Path:
    return Path("runs") / "suite" / (f"{suite}_quick" if quick else suite)


class _Provenance:
    """What ``summary.json`` records of a run: the suite, its command, the commit it began on (read once,
    at the start) and the seconds so far."""

    def __init__(self, suite: str, quick: bool, command: Sequence[str] | None):
        from diffaif.experiments.bench import _git_commit

        self.began = time.perf_counter()
        self.fixed = {"suite": suite, "quick": quick, "command": shlex.join(command) if command else None,
                      **_git_commit()}

    def record(self) -> dict[str, Any]:
        return {**self.fixed, "seconds": round(time.perf_counter() - self.began, 1)}


def _write(out: Path, summary: dict, table: str) -> None:
    from diffaif.data.files import atomic_write_text

    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2))
    footer = f"\n`{summary['command']}`" if summary.get("command") else ""
    footer += f" (commit {summary['commit'][:7]}{', uncommitted changes' if summary['dirty'] else ''})" \
        if summary.get("commit") else ""
    atomic_write_text(out / "table.md", table + footer + ("\n" if footer else ""))


# ---- grid and MiniGrid: one table over tasks and agents -----------------------------------------------
def task_rows(task: str, summary: dict) -> list[dict]:
    """Per agent of one comparison: success, mean steps (÷ the oracle's), env steps, decision time."""
    oracle = next((summary["agents"][name]["steps_mean"] for name in ("oracle", "bfs_oracle")
                   if name in summary["agents"]), None)
    return [{"task": task, "agent": name, "success_rate": a["success_rate"], "steps_mean": a["steps_mean"],
             "steps_over_oracle": a["steps_mean"] / oracle if oracle else None, "env_steps": a["env_steps"],
             "decision_ms_median": a.get("decision_ms_median"), "seeds": a.get("seeds"),
             "episodes": a.get("episodes")} for name, a in summary["agents"].items()]


def format_task_rows(rows: list[dict]) -> str:
    def fmt(v, spec):
        return "-" if v is None else format(v, spec)
    lines = ["| task | agent | success | mean steps | ÷ oracle | env steps | decision ms | seeds × episodes |",
             "|" + "---|" * 8]
    for r in rows:
        runs = f"{r['seeds']} × {r['episodes'] // r['seeds']}" if r.get("seeds") else "-"
        lines.append(f"| {r['task']} | {r['agent']} | {fmt(r['success_rate'], '.2f')} | {fmt(r['steps_mean'], '.2f')} | "
                     f"{fmt(r['steps_over_oracle'], '.2f')} | {fmt(r['env_steps'], '.0f')} | "
                     f"{fmt(r['decision_ms_median'], '.0f')} | {runs} |")
    return "\n".join(lines) + "\n"


def plot_task_rows(path: Path, rows: list[dict]) -> None:
    """Success rate and mean steps ÷ the oracle's, per task (groups) and agent (bars)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    tasks = list(dict.fromkeys(r["task"] for r in rows))
    agents = list(dict.fromkeys(r["agent"] for r in rows))
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    width = 0.8 / max(len(agents), 1)
    for i, agent in enumerate(agents):
        mine = {r["task"]: r for r in rows if r["agent"] == agent}
        x = np.arange(len(tasks)) + i * width
        for ax, key in zip(axes, ("success_rate", "steps_over_oracle")):
            ax.bar(x, [mine[t][key] if t in mine and mine[t][key] is not None else 0 for t in tasks], width,
                   label=agent)
    for ax, label in zip(axes, ("success rate", "mean steps ÷ oracle's")):
        ax.set_xticks(np.arange(len(tasks)) + 0.4 - width / 2, tasks, fontsize=7, rotation=15)
        ax.set_ylabel(label)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _task_suite(out: Path, configs: dict, provenance: _Provenance, run_one) -> dict:
    rows: list[dict] = []
    tasks: dict[str, dict] = {}
    out.mkdir(parents=True, exist_ok=True)
    for task, config in configs.items():
        summary = run_one(task, config)
        tasks[task] = summary["agents"]
        rows += task_rows(task, summary)
        result = {**provenance.record(), "rows": rows, "tasks": tasks}
        _write(out, result, format_task_rows(rows))
        plot_task_rows(out / "success.png", rows)
        print(format_task_rows(task_rows(task, summary)), flush=True)
    return result


def run_grid(out: Path, quick: bool = False, seeds: int | None = None, tasks: Sequence[str] | None = None,
             overrides: Sequence[str] = (), command: Sequence[str] | None = None) -> dict:
    """The grid suite: the presets of ``tasks`` (default ``GRID_TASKS``), overrides are CompareConfig keys."""
    from diffaif.config import build_config, preset_path
    from diffaif.experiments.compare import CompareConfig, run_comparison, validate_comparison

    provenance = _Provenance("grid", quick, command)
    tasks = list(tasks or GRID_TASKS)
    _check_tasks(tasks, GRID_TASKS)
    configs = {}
    for task in tasks:
        layers = [preset_path("experiments", task), QUICK["grid"] if quick else {}, {"seeds": seeds} if seeds else {}]
        config = build_config(CompareConfig, layers, overrides)
        configs[task] = dataclasses.replace(config, out=str(out / task))
        validate_comparison(configs[task])
    return _task_suite(out, configs, provenance, lambda task, config: run_comparison(config))


def _same_pretraining(record_file: Path, settings: dict) -> bool:
    if not record_file.is_file():
        return False
    record = json.loads(record_file.read_text())
    return all(record.get(key) == value for key, value in settings.items())


def run_minigrid(out: Path, quick: bool = False, seeds: int | None = None, tasks: Sequence[str] | None = None,
                 overrides: Sequence[str] = (), command: Sequence[str] | None = None, device: str = "cpu") -> dict:
    """The MiniGrid ladder: preset ``minigrid_ladder``; overrides are LadderConfig keys."""
    from diffaif.agents import agent_env_options, make_agent
    from diffaif.config import build_config, preset_path
    from diffaif.envs import is_minigrid_id, make_env
    from diffaif.experiments.compare import CompareConfig, run_comparison, validate_comparison
    from diffaif.experiments.pretrain import RECORD_FILE, pretrain

    provenance = _Provenance("minigrid", quick, command)
    layers = [preset_path("experiments", "minigrid_ladder"), QUICK["minigrid"] if quick else {},
              {"compare": {"seeds": seeds}} if seeds else {}]
    ladder = build_config(LadderConfig, layers, overrides)
    tasks = list(tasks or ladder.tasks)
    not_minigrid = [task for task in tasks if not is_minigrid_id(task)]
    if not_minigrid:
        raise ValueError(f"not MiniGrid ids: {not_minigrid}")
    configs = {}
    for task in tasks:
        compare = build_config(CompareConfig, [ladder.compare, ladder.task_overrides.get(task, {}),
                                               {"env": task, "out": str(out / task)}])
        validate_comparison(compare)
        configs[task] = compare

    def run_one(task: str, compare: CompareConfig) -> dict:
        if "aif" in compare.agents:
            folder = out / "pretrain" / task
            options = {**agent_env_options("aif", task), **compare.env_kwargs, **compare.agent_env.get("aif", {})}
            warmup = make_agent("aif", make_env(task, **options), overrides=compare.agent.get("aif", {})).warmup_policy
            settings = {"env": task, "env_options": options, "base_seed": compare.seed, "seed_index": 0,
                        "interactions_budget": ladder.pretrain_interactions, "model_preset": ladder.model_preset,
                        "world_model": ladder.world_model, "warmup_policy": warmup}
            if not _same_pretraining(folder / RECORD_FILE, settings):
                shutil.rmtree(folder, ignore_errors=True)   # another run's model: not this experiment
                pretrain(task, options, ladder.pretrain_interactions, folder, base_seed=compare.seed,
                         model_preset=ladder.model_preset, world_model=ladder.world_model, device=device,
                         warmup_policy=warmup)
            compare.agent.setdefault("aif", {}).update(pretrained=str(folder / "train0" / "model"), device=device)
        return run_comparison(compare)

    return _task_suite(out, configs, provenance, run_one)


# ---- control --------------------------------------------------------------------------------------------
def mountaincar_reach(steps_path: Path) -> dict[str, list[float]]:
    """Per agent, how far MountainCar's episodes explored, from a run's ``steps.jsonl``: the mean over
    episodes of the highest position x reached (the flag is at 0.5) and of the largest speed |ẋ|,
    from the true states after each step: ``{agent: [highest x, largest |ẋ|]}``. An agent with
    action repeat is seen after each decision only, so its reach is if anything understated."""
    import numpy as np

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


def run_control_comparison(config) -> dict:
    """One harness run; its summary plus per-episode returns/successes read back from episodes.csv
    (and, on MountainCar, how far the episodes explored: ``mountaincar_reach``)."""
    import numpy as np

    from diffaif.experiments.compare import run_comparison

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


def run_baseline(config, task: str, budget: int, out: Path) -> dict:
    """The task's SB3 baseline trained for ``budget`` env steps, then evaluated on ``config``'s episodes."""
    name = BASELINE[task]
    return run_control_comparison(dataclasses.replace(config, agents=[name], warmup_steps=budget,
                                                      out=str(out)))["agents"][name]


def with_overrides(config, overrides: dict):
    """``config`` with nested ``overrides`` merged in (validated like any config layer)."""
    from diffaif.config import build_config
    from diffaif.experiments.compare import CompareConfig

    return build_config(CompareConfig, [dataclasses.asdict(config), overrides])


def run_control_task(config, task: str, out: Path, same_budget: bool) -> dict[str, dict]:
    """The configured agents, MountainCar's ablation and (``same_budget``) the baseline at the AIF agent's budget."""
    runs = dict(run_control_comparison(config)["agents"])
    if task == "mountaincar" and "aif" in runs:
        variant = with_overrides(dataclasses.replace(config, agents=["aif"], out=str(out / f"{task}_no_novelty")),
                                 NO_NOVELTY)
        runs["aif (no info gain)"] = run_control_comparison(variant)["agents"]["aif"]
    if same_budget and "aif" in runs:
        budget = math.ceil(runs["aif"]["env_steps"])  # the AIF agent's warm-up + the episodes it learned from
        runs[f"{BASELINE[task]} (same budget)"] = run_baseline(config, task, budget, out / f"{task}_{BASELINE[task]}")
    return runs


def plot_returns(path: Path, task: str, runs: dict[str, dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

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


def format_control_rows(results: dict[str, dict[str, dict]]) -> str:
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


def run_control(out: Path, quick: bool = False, seeds: int | None = None, tasks: Sequence[str] | None = None,
                overrides: Sequence[str] = (), command: Sequence[str] | None = None, baseline: bool = True,
                published_budget: bool = False, published_only: bool = False) -> dict:
    """The control suite: presets ``cartpole``, ``pendulum``, ``mountaincar``; overrides are CompareConfig keys."""
    from diffaif.config import build_config, preset_path
    from diffaif.experiments.compare import CompareConfig, validate_comparison

    provenance = _Provenance("control", quick, command)
    tasks = list(tasks or CONTROL_TASKS)
    _check_tasks(tasks, CONTROL_TASKS)
    configs = {}
    for task in tasks:
        layers = [preset_path("experiments", task), QUICK["control"] if quick else {},
                  {"seeds": seeds} if seeds else {}]
        configs[task] = dataclasses.replace(build_config(CompareConfig, layers, overrides), out=str(out / task))
        validate_comparison(configs[task])
    out.mkdir(parents=True, exist_ok=True)
    summary_path = out / "summary.json"
    earlier = json.loads(summary_path.read_text()).get("tasks", {}) if summary_path.is_file() else {}
    results: dict[str, dict[str, dict]] = dict(earlier) if published_only else {}
    for task, config in configs.items():
        if published_only:
            runs = dict(earlier.get(task, {}))  # this task's earlier rows in out, if any
        else:
            runs = run_control_task(config, task, out, same_budget=baseline)
        if published_budget or published_only:
            budget, name = PUBLISHED_BUDGET[task], BASELINE[task]
            runs[f"{name} (published budget {budget})"] = run_baseline(config, task, budget,
                                                                       out / f"{task}_{name}_published")
        results[task] = runs
        plot_returns(out / f"{task}_returns.png", task, runs)
        summary = {**provenance.record(), "tasks": results}
        _write(out, summary, format_control_rows(results))
        print(format_control_rows({task: runs}), flush=True)
    return summary


def _check_tasks(tasks: Sequence[str], valid: Sequence[str]) -> None:
    unknown = [task for task in tasks if task not in valid]
    if unknown:
        raise ValueError(f"unknown task {unknown[0]!r}; valid choices: {list(valid)}")


def run_suite(suite: str, out: str | Path | None = None, quick: bool = False, **options: Any) -> dict:
    """Run suite ``suite`` (one of ``SUITES``) into ``out`` (default ``default_out``); ``options`` go to
    ``run_grid`` / ``run_minigrid`` / ``run_control``. → what ``summary.json`` holds."""
    runners = {"grid": run_grid, "minigrid": run_minigrid, "control": run_control}
    if suite not in runners:
        raise ValueError(f"unknown suite {suite!r}; valid choices: {list(SUITES)}")
    out = Path(out) if out else default_out(suite, quick)
    return runners[suite](out, quick=quick, **options)
