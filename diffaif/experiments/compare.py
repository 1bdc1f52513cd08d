"""Run any set of agents on any task with the same seeds, step cap and interaction budget.

For each seed, every agent gets a fresh environment and is seeded identically; episode ``e`` of seed
``s`` resets the environment with the same seed for every agent, so differences come from the agents.
"""
from __future__ import annotations

import csv
import json
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from tqdm.auto import tqdm

from diffaif.agents import AGENTS, Agent, agent_config, agent_env_options, env_steps, make_agent
from diffaif.config import ConfigError, build_config, preset_or_file, save_config, to_dict
from diffaif.envs import make_env
from diffaif.experiments.plots import plot_comparison, plot_observability, plot_policy_traces
from diffaif.experiments.stats import format_table, pairwise_tests, summarise_steps


# The warm-up budget when none is given and the aif agent is compared (configs/demo.yaml's): it has
# no world model without one. Without the aif agent the default is 0.
AIF_WARMUP_STEPS = 2000


@dataclass
class CompareConfig:
    env: str = "grid4x4"
    agents: list[str] = field(default_factory=lambda: ["oracle", "random", "qlearning"])
    episodes: int = 100
    seeds: int = 5
    seed: int = 0
    # Interactions each agent may spend before the evaluated episodes (data collection, pre-training);
    # None: AIF_WARMUP_STEPS when "aif" is among the agents, else 0.
    warmup_steps: int | None = None
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    # Per-agent env options over env_kwargs: what the agent perceives (e.g. MiniGrid's obs_mode), never
    # the layout or the seeds, which stay the same for every agent.
    agent_env: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Per-agent config overrides, e.g. agent.qlearning.learning_rate=0.5
    agent: dict[str, Any] = field(default_factory=dict)
    out: str = "runs/compare"
    progress: bool = True
    # Processes running seeds in parallel (the results do not depend on it); None: default_workers
    workers: int | None = None

    def __post_init__(self):
        if not self.agents:
            raise ValueError(f"agents must name at least one agent; valid choices: {sorted(AGENTS)}")
        for name in ("episodes", "seeds"):
            if getattr(self, name) < 1:
                raise ValueError(f"CompareConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.warmup_steps is None:
            self.warmup_steps = AIF_WARMUP_STEPS if "aif" in self.agents else 0
        if self.warmup_steps < 0:
            raise ValueError(f"CompareConfig.warmup_steps must be >= 0, got {self.warmup_steps}")
        if self.workers is not None and self.workers < 1:
            raise ValueError(f"CompareConfig.workers must be >= 1, got {self.workers}")


GIB_PER_WORKER = 2  # memory a worker may need (a world model's training and planning on the CPU)


def default_workers(seeds: int) -> int:
    """One process per seed, at most one per core and one per ``GIB_PER_WORKER`` GiB of available memory."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        available_kib = next(int(line.split()[1]) for line in open("/proc/meminfo") if line.startswith("MemAvailable"))
        by_memory = available_kib // (GIB_PER_WORKER * 2**20)
    except (OSError, StopIteration):  # no /proc (macOS, Windows): cores alone
        by_memory = cores
    return max(1, min(seeds, cores, by_memory))


@dataclass
class EpisodeRecord:
    agent: str
    seed: int
    episode: int
    steps: int
    success: bool
    ret: float
    distances: list[float]


def derived_seed(*keys: int) -> int:
    """A 32-bit seed derived from non-negative integer keys (base seed, seed index, purpose, episode)."""
    return int(np.random.SeedSequence(list(keys)).generate_state(1)[0])


def run_episode(env, agent, reset_seed: int, step_log: list | None = None, tag: dict | None = None) -> tuple:
    """One episode; returns (env steps, success, return, distance-to-goal trace including the start)."""
    obs, info = env.reset(seed=reset_seed)
    agent.reset(obs, info)
    distances = [info.get("distance", np.nan)]
    steps, ret, terminated, truncated = 0, 0.0, False, False
    while not (terminated or truncated):
        action = agent.act(obs)
        log = agent.step_log()
        next_obs, reward, terminated, truncated, info = env.step(action)
        agent.observe(action, reward, next_obs, terminated, truncated, info)
        if step_log is not None:
            step_log.append({**(tag or {}), "t": steps, "obs": _plain(obs), "action": _plain(action),
                             "reward": float(reward), "state": _plain(info.get("state")),
                             "distance": info.get("distance"), **log})
        obs = next_obs
        steps += env_steps(info)
        ret += float(reward)
        distances.append(info.get("distance", np.nan))
    return steps, bool(info.get("success", terminated)), ret, distances


def _plain(x: Any) -> Any:
    arr = np.asarray(x)
    return arr.item() if arr.ndim == 0 else arr.tolist()


def seeded_agent(config: CompareConfig, name: str, seed_index: int) -> tuple[gym.Env, Agent]:
    """Agent ``name`` of ``config`` for seed index ``seed_index``, on its own env (the options the agent
    needs on this env family, ``agent_env_options``, under ``env_kwargs`` and its ``agent_env``
    options: what the user states wins) → (env, agent); not yet warmed up."""
    env = make_env(config.env, **{**agent_env_options(name, config.env), **config.env_kwargs,
                                  **config.agent_env.get(name, {})})
    return env, make_agent(name, env, seed=config.seed + seed_index, overrides=config.agent.get(name))


def validate_comparison(config: CompareConfig) -> None:
    """Fail fast, before any long run or any file, on a bad agent name, agent config or env option.

    Agents' configs in ``config.agent`` are checked for every agent named there, compared or not (a
    preset may configure agents that only some runs select).
    """
    for key in ("agent_env", "agent"):
        unknown = sorted(set(getattr(config, key)) - set(AGENTS))
        if unknown:
            raise ConfigError(f"{key} names unknown agents {unknown}; valid choices: {sorted(AGENTS)}")
    for name, overrides in config.agent.items():
        agent_config(name, overrides)
    aif = config.agent.get("aif") or {}
    if "aif" in config.agents and config.warmup_steps == 0 and not aif.get("pretrained"):
        raise ConfigError("agent aif has no world model: give it warmup_steps >= 1 or agent.aif.pretrained")
    for name in config.agents:
        seeded_agent(config, name, 0)


def run_comparison(config: CompareConfig) -> dict:
    """Evaluate every agent in ``config.agents``; write the run directory and return the summary."""
    validate_comparison(config)
    probe_env = make_env(config.env, **config.env_kwargs)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    task = probe_env.unwrapped
    if getattr(task, "observability", None) is not None and (task.observability < 1).any():
        plot_observability(task.observability, out / "observability.png",
                           start=task.position(task.start), goal=task.position(task.goal))
    records: list[EpisodeRecord] = []
    env_steps: dict[str, list[int]] = {name: [] for name in config.agents}
    step_log: list[dict] = []
    for seed_records, seed_env_steps, seed_log in _run_seeds(config):  # in seed order, however run
        records += seed_records
        step_log += seed_log
        for name, used in seed_env_steps.items():
            env_steps[name].append(used)
    summary = summarise(config, records, env_steps, step_log)
    write_outputs(out, config, summary, records, step_log)
    action_names = getattr(task, "action_names", [str(a) for a in range(getattr(probe_env.action_space, "n", 0))])
    for name in config.agents:
        plot_policy_traces(step_log, action_names, out, agent=name)
    return summary


def compare(config: str | Path | dict | CompareConfig | None = None, **keys: Any) -> dict:
    """Run a comparison (``run_comparison``) from a CompareConfig, an experiment preset name or YAML
    path, or a dict, with ``keys`` (CompareConfig fields) over it; → the summary.

    >>> compare(env="grid4x4", agents=["random", "oracle"], episodes=5, seeds=1)  # doctest: +SKIP
    """
    if isinstance(config, CompareConfig):
        config = to_dict(config)
    elif isinstance(config, (str, Path)):
        config = preset_or_file("experiments", config)
    return run_comparison(build_config(CompareConfig, [config or {}, keys]))


def run_seed(config: CompareConfig, s: int, bar=None) -> tuple[list[EpisodeRecord], dict[str, int], list[dict]]:
    """Every agent of ``config`` on seed index ``s``: warm-up, then the evaluated episodes →
    (episode records, env steps used per agent, step log); ``bar`` counts the episodes."""
    records, used_by_agent, step_log = [], {}, []
    for name in config.agents:
        env, agent = seeded_agent(config, name, s)
        used = agent.warm_up(env, config.warmup_steps, seed=derived_seed(config.seed, s, 1))
        for e in range(config.episodes):
            steps, success, ret, dist = run_episode(
                env, agent, derived_seed(config.seed, s, 0, e), step_log,
                tag={"agent": name, "seed": s, "episode": e})
            records.append(EpisodeRecord(name, s, e, steps, success, ret, dist))
            used += steps
            if bar is not None:
                bar.update(1)
        used_by_agent[name] = used
        env.close()
    return records, used_by_agent, step_log


def _run_seeds(config: CompareConfig):
    """``run_seed`` for every seed index, in order: in this process, or in ``workers`` fresh (spawned)
    processes, which give the same results since every seed derives from ``config.seed`` alone."""
    workers = min(config.seeds, config.workers or default_workers(config.seeds))
    bar = tqdm(total=config.seeds * len(config.agents) * config.episodes, desc=f"compare {config.env}",
               disable=not config.progress)
    with bar:
        if workers == 1:
            for s in range(config.seeds):
                yield run_seed(config, s, bar)
            return
        threads = max(1, default_workers(10**6) // workers)  # the cores shared out, not oversubscribed
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_share_cores, initargs=(threads,)) as pool:
            for result in pool.map(run_seed, [config] * config.seeds, range(config.seeds)):
                bar.update(len(config.agents) * config.episodes)
                yield result


def _share_cores(threads: int) -> None:
    """A worker's thread budget, set before torch loads (a value the user set is kept)."""
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(variable, str(threads))


def summarise(config: CompareConfig, records: list[EpisodeRecord], env_steps: dict[str, list[int]],
              step_log: list[dict]) -> dict:
    steps = {n: np.array([r.steps for r in records if r.agent == n]) for n in config.agents}
    agents = {}
    for n in config.agents:
        success = np.array([r.success for r in records if r.agent == n])
        returns = np.array([r.ret for r in records if r.agent == n])
        agents[n] = {**summarise_steps(steps[n], success), "env_steps": float(np.mean(env_steps[n])),
                     "seeds": config.seeds, "return_mean": float(returns.mean()),
                     "return_std": float(returns.std(ddof=1)) if returns.size > 1 else 0.0}
        decision_ms = [row["decision_ms"] for row in step_log if row["agent"] == n and "decision_ms" in row]
        if decision_ms:
            agents[n]["decision_ms_median"] = float(np.median(decision_ms))
            agents[n]["decision_ms_p95"] = float(np.percentile(decision_ms, 95))
    return {"env": config.env, "warmup_steps": config.warmup_steps, "agents": agents,
            "tests": pairwise_tests(steps)}


def write_outputs(out: Path, config: CompareConfig, summary: dict, records: list[EpisodeRecord],
                  step_log: list[dict]) -> None:
    save_config(config, out / "config.yaml")
    (out / "summary.json").write_text(json.dumps(summary, indent=2, allow_nan=False))  # strict JSON
    (out / "table.md").write_text(format_table(summary))
    with open(out / "episodes.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["agent", "seed", "episode", "steps", "success", "return"])
        for r in records:
            writer.writerow([r.agent, r.seed, r.episode, r.steps, int(r.success), r.ret])
    with open(out / "steps.jsonl", "w") as f:
        for row in step_log:
            f.write(json.dumps(row) + "\n")
    plot_comparison(out, summary, records)
