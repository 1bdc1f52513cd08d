"""Speed of the active-inference agent: decision latency, rollouts/s, training throughput, memory.

``run_bench(BenchConfig)`` measures, on one device ("cpu" or "cuda"):

- **decision latency**: wall time of ``planner.plan(observations, actions)`` per action, on the real
  observations of episodes the planner itself plays, after ``warmup`` untimed decisions (the first
  one also builds the cached observation likelihood); median, p95, mean, min, max in ms;
- **rollouts per second**: ``Σ K·N·H / Σ latency`` over the timed decisions (K candidates scored,
  N samples each, horizon H), counted from the planner's actual ``inpaint`` calls (CEM scores
  several batches per decision);
- **floor**: the very score-net forward passes the planner made in each timed decision (same count,
  batch size and token length, recorded by a forward pre-hook) replayed alone in a tight loop under
  ``torch.no_grad`` on random inputs, right after that decision (so both see the same machine load);
  ``latency / floor`` shows the cost outside the network
  (sampler arithmetic, EFE, candidate proposal, Python);
- **training throughput**: windows per second of ``train_world_model`` over a short run, measured
  between its first and last metrics records (start-up, the first interval and the final save
  excluded);
- **peak memory**: CPU max RSS of the process (``resource``; includes everything done before it,
  training too) and, on CUDA, ``torch.cuda.max_memory_allocated`` per phase.

Every figure is stored with the configuration it was measured under (K, N, S, H, window tokens,
threads, device, versions). ``denoising_curve`` gives k-step prediction accuracy and time per inpaint
call for several denoising-step counts, to choose the planner's default. ``run_from_args`` is
``diffaif bench``; ``run_bench_grid`` runs the bench over a grid of (N, S).
"""
from __future__ import annotations

import dataclasses
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch

from diffaif.config import build_config, preset_or_file, to_dict

DEVICES = ("cpu", "cuda")


@dataclass
class BenchConfig:
    env: str = "grid4x4"
    env_kwargs: dict[str, Any] = field(default_factory=dict)   # env options (MiniGrid: obs_floor, obs_mode)
    # A saved WorldModel directory (with world_model.json). None: train ``model_preset`` for
    # ``train_steps`` steps on ``train_episodes`` random episodes and plan with that model
    # (timing only: such a model is far from converged).
    pretrained: str | None = None
    model_preset: str = "tiny"                                  # diffaif/configs/model/<preset>.yaml, or a .yaml path
    world_model: dict[str, Any] = field(default_factory=dict)   # overrides of the preset (model.*, train.*)
    planner: dict[str, Any] = field(default_factory=dict)       # overrides of the aif agent's planner config
    agent: dict[str, Any] = field(default_factory=dict)         # other aif agent overrides
    decisions: int = 50                 # timed decisions
    warmup: int = 3                     # untimed decisions first (>= 1: the first builds the likelihood cache)
    floor_repeats: int = 1              # replays of each decision's forward passes (the floor is their median)
    train_steps: int = 300              # training-throughput run (also the model's training when no pretrained); 0: skip
    train_episodes: int = 200           # random episodes collected for that run
    device: str = "cpu"                 # "cpu" | "cuda"
    threads: int | None = None          # torch.set_num_threads (None: leave as is)
    seed: int = 0
    steps_curve: list[int] = field(default_factory=list)   # denoising steps for denoising_curve ([]: skip)
    curve_episodes: int = 50
    curve_horizon: int = 5
    curve_samples: int = 16
    out: str | None = "runs/bench/bench.json"
    run_dir: str | None = None          # training output (default: a temporary folder, removed afterwards)

    def __post_init__(self):
        if self.device not in DEVICES:
            raise ValueError(f"device must be one of {DEVICES}, got {self.device!r}")
        if self.decisions < 2 or self.warmup < 1 or self.floor_repeats < 1:
            raise ValueError("decisions must be >= 2, warmup and floor_repeats >= 1")
        if self.train_steps < 0 or self.train_episodes < 1:
            raise ValueError("train_steps must be >= 0 and train_episodes >= 1")
        if self.pretrained is None and self.train_steps < 1:
            raise ValueError("without a pretrained model the bench trains one: train_steps must be >= 1")
        if any(s < 1 for s in self.steps_curve):
            raise ValueError(f"steps_curve entries must be >= 1, got {self.steps_curve}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be >= 1 (or null: torch's default), got {self.threads}")


# ---- helpers ----------------------------------------------------------------------------------
def _sync(device: torch.device | str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def _max_rss_mib() -> float:
    """Peak resident set size of this process so far (ru_maxrss: KiB on Linux, bytes on macOS)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def _summary_ms(seconds: Sequence[float]) -> dict[str, float]:
    ms = 1000 * np.asarray(seconds, dtype=float)
    return {"median_ms": float(np.median(ms)), "p95_ms": float(np.percentile(ms, 95)), "mean_ms": float(ms.mean()),
            "min_ms": float(ms.min()), "max_ms": float(ms.max()), "n": int(ms.size)}


def _git_commit() -> dict[str, Any]:
    root = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True, timeout=5)
        return {"commit": head.stdout.strip() or None, "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def environment_info(device: str) -> dict[str, Any]:
    """Versions, threads and hardware the figures were measured on."""
    import accelerate
    import diffusers

    info = {"device": device, "torch": torch.__version__, "diffusers": diffusers.__version__,
            "accelerate": accelerate.__version__, "python": platform.python_version(),
            "platform": platform.platform(), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch_interop_threads": torch.get_num_interop_threads(),
            "load_average_1_5_15min": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
            **_git_commit()}
    if device == "cuda":
        info["cuda_device"] = torch.cuda.get_device_name()
        info["cuda_version"] = torch.version.cuda
    return info


@contextmanager
def _accelerate_device(device: str) -> Iterator[None]:
    """Keep ``train_world_model``'s Accelerator on the CPU when the bench asks for "cpu" on a GPU machine."""
    old = os.environ.get("ACCELERATE_USE_CPU")
    if device == "cpu":
        os.environ["ACCELERATE_USE_CPU"] = "true"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("ACCELERATE_USE_CPU", None)
        else:
            os.environ["ACCELERATE_USE_CPU"] = old


# ---- training throughput ----------------------------------------------------------------------
def training_throughput(metrics_path: str | Path, batch_size: int, skip: int = 0) -> dict[str, Any]:
    """Windows per second between the first and the last record of a ``metrics.jsonl`` (after ``skip`` lines)."""
    lines = Path(metrics_path).read_text().splitlines()[skip:]
    records = [json.loads(line) for line in lines if line.strip()]
    if len(records) < 2:
        raise ValueError(f"{metrics_path} needs at least two records to time training, has {len(records)}")
    first, last = records[0], records[-1]
    steps, seconds = last["step"] - first["step"], last["elapsed_s"] - first["elapsed_s"]
    if seconds <= 0:
        raise ValueError(f"{metrics_path}: no time elapsed between steps {first['step']} and {last['step']}")
    return {"windows_per_second": batch_size * steps / seconds, "steps_per_second": steps / seconds,
            "timed_steps": steps, "timed_seconds": seconds, "from_step": first["step"], "to_step": last["step"],
            "final_loss": last["loss"]}


def train_for_bench(config: BenchConfig, model_config: Any, run_dir: Path) -> tuple[Any, dict[str, Any]]:
    """A short ``train_world_model`` run: → (the trained WorldModel, its throughput record)."""
    from diffaif.data import collect_episodes
    from diffaif.envs import make_env
    from diffaif.model.train import WorldModelConfig, train_world_model
    from diffaif.tasks import task_encoding

    preset = build_config(WorldModelConfig, [preset_or_file("model", config.model_preset), config.world_model])
    steps = config.train_steps
    log_interval = max(1, steps // 10)
    train_cfg = dataclasses.replace(preset.train, steps=steps, warmup_steps=min(preset.train.warmup_steps, steps // 10),
                                    log_interval=log_interval, checkpoint_interval=steps, wandb_mode="disabled")
    env = make_env(config.env, **config.env_kwargs)
    data = collect_episodes(env, config.train_episodes, seed=config.seed)
    metrics = run_dir / "metrics.jsonl"
    skip = len(metrics.read_text().splitlines()) if metrics.exists() else 0   # records of an earlier run
    if config.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    with _accelerate_device(config.device):
        began = time.perf_counter()
        model = train_world_model(data, task_encoding(env, data), model_config, train_cfg,
                                  run_dir, progress=False)
        wall = time.perf_counter() - began
    record = training_throughput(metrics, train_cfg.batch_size, skip=skip)
    record.update({"wall_seconds": wall, "train_device": str(model.device), "batch_size": train_cfg.batch_size,
                   "steps": steps, "window_tokens": model_config.length, "crop_prob": train_cfg.crop_prob,
                   "episodes": config.train_episodes, "data_steps": int(data.n_steps),
                   "note": ("windows of crop_prob batches are cut to 2..T tokens" if train_cfg.crop_prob else "")})
    if config.device == "cuda":
        record["cuda_max_memory_allocated_mib"] = torch.cuda.max_memory_allocated() / 2**20
    record["max_rss_mib_after"] = _max_rss_mib()
    return model, record


def _with_episodes(model_dir: Path, tmp: Path, config: BenchConfig, source: dict) -> Path:
    """The agent loads ``<model_dir>/../episodes.npz`` with a pretrained model (its data set). A model
    saved without one (runs older than that file) is linked into a temporary run beside a few random
    episodes; the bench reads no data, it only plans."""
    from diffaif.data import collect_episodes, save_episodes
    from diffaif.envs import make_env
    from diffaif.model.train import EPISODES_FILE

    if (model_dir.parent / EPISODES_FILE).is_file():
        return model_dir
    staged = tmp / "pretrained"
    staged.mkdir(parents=True, exist_ok=True)
    (staged / "model").symlink_to(model_dir.resolve(), target_is_directory=True)
    save_episodes(collect_episodes(make_env(config.env, **config.env_kwargs), 2, seed=config.seed), staged / EPISODES_FILE)
    source["note"] = f"no {EPISODES_FILE} beside the model: the agent was given 2 placeholder episodes (unused by the bench)"
    return staged / "model"


# ---- planning latency and floor ---------------------------------------------------------------
class _Recorder:
    """Counts what the planner runs: score-net input shapes (forward pre-hook) and inpaint batches."""

    def __init__(self, model: Any):
        self.model = model
        self.forwards: list[tuple[int, int, int, bool]] = []       # (B, T, D, has_mask) per net forward
        self.inpaints: list[tuple[int, int, int]] = []              # (K windows, N samples, T) per inpaint call
        self._hook = model.net.register_forward_pre_hook(self._on_forward, with_kwargs=True)
        original = model.inpaint

        def inpaint(known, mask, n_samples, *args, **kwargs):
            self.inpaints.append((int(len(known)), int(n_samples), int(known.shape[1])))
            return original(known, mask, n_samples, *args, **kwargs)

        model.inpaint = inpaint  # instance attribute: shadows the method until close()

    def _on_forward(self, module, args, kwargs) -> None:
        x = args[0] if args else kwargs["x"]
        mask = args[2] if len(args) > 2 else kwargs.get("mask")
        self.forwards.append((int(x.shape[0]), int(x.shape[1]), int(x.shape[2]), mask is not None))

    def take(self) -> tuple[list, list]:
        forwards, inpaints = self.forwards, self.inpaints
        self.forwards, self.inpaints = [], []
        return forwards, inpaints

    def close(self) -> None:
        self._hook.remove()
        self.model.__dict__.pop("inpaint", None)


def _floor_seconds(net: Any, forwards: list[tuple[int, int, int, bool]], device: torch.device,
                   inputs: dict) -> float:
    """Wall time of ``forwards`` (the passes of one decision) run back to back under no_grad; ``net`` is
    the model's ``run_net``, so the floor runs in the same precision and compiled form as the planner."""
    _sync(device)
    began = time.perf_counter()
    with torch.no_grad():
        for shape in forwards:
            x, t, mask = inputs[shape]
            net(x, t, mask)
    _sync(device)
    return time.perf_counter() - began


def _floor_inputs(forwards: list[tuple[int, int, int, bool]], device: torch.device, seed: int) -> dict:
    generator = torch.Generator().manual_seed(seed)
    inputs = {}
    for shape in set(forwards):
        batch, length, dim, has_mask = shape
        x = torch.randn(batch, length, dim, generator=generator).to(device)
        mask = (torch.rand(batch, length, dim, generator=generator) < 0.5).to(device) if has_mask else None
        inputs[shape] = (x, torch.tensor(500, device=device), mask)
    return inputs


def bench_planning(planner: Any, env: Any, config: BenchConfig) -> dict[str, Any]:
    """Latency of ``planner.plan`` on ``config.decisions`` decisions of episodes it plays, and the floor."""
    model = planner.model
    device = model.device
    recorder = _Recorder(model)
    latencies: list[float] = []
    floors: list[float] = []
    per_decision: list[tuple[list, list]] = []
    inputs: dict = {}
    episodes, rng = 0, np.random.default_rng(config.seed)
    try:
        obs, info = env.reset(seed=config.seed)
        observations, actions = [obs], []
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        for i in range(config.warmup + config.decisions):
            _sync(device)
            began = time.perf_counter()
            plan = planner.plan(observations, actions)
            _sync(device)
            elapsed = time.perf_counter() - began
            record = recorder.take()
            # floor: the same forward passes, alone, right after the decision (same machine load);
            # replayed in the warm-up decisions too (allocator, kernels), timed afterwards
            forwards = record[0]
            inputs.update(_floor_inputs([f for f in set(forwards) if f not in inputs], device, config.seed))
            floor = [_floor_seconds(model.run_net, forwards, device, inputs) for _ in range(config.floor_repeats)]
            recorder.take()  # drop the replay's own forwards
            if i >= config.warmup:
                latencies.append(elapsed)
                floors.append(float(np.median(floor)))
                per_decision.append(record)
            obs, reward, terminated, truncated, info = env.step(plan.action)
            observations.append(obs)
            actions.append(int(plan.action))
            del observations[:-64], actions[:-63]   # the planner reads only the last context + 1
            if terminated or truncated:
                episodes += 1
                obs, info = env.reset(seed=int(rng.integers(2**31)))
                observations, actions = [obs], []
        cuda_peak = torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else None
    finally:
        recorder.close()

    all_forwards = [f for forwards, _ in per_decision for f in forwards]
    cfg = planner.config
    horizon = cfg.policies.horizon
    windows = [sum(k for k, n, t in inpaints) for _, inpaints in per_decision]
    rollouts = [sum(k * n for k, n, t in inpaints) for _, inpaints in per_decision]
    n_forwards = [len(forwards) for forwards, _ in per_decision]
    shapes: dict[str, int] = {}
    for f in all_forwards:
        key = f"B={f[0]},T={f[1]},D={f[2]}"
        shapes[key] = shapes.get(key, 0) + 1
    tokens = sorted({f[1] for f in all_forwards})
    latency = _summary_ms(latencies)
    floor = _summary_ms(floors)
    total_s = float(np.sum(latencies))
    setup = {
        "K_candidates_per_decision": float(np.mean(windows)), "N_samples": cfg.n_samples,
        "S_denoising_steps": cfg.denoising_steps or model.config.steps,
        "H_horizon": horizon, "context": cfg.context, "window_tokens": tokens[0] if len(tokens) == 1 else tokens,
        "policy_kind": cfg.policies.kind, "mode": cfg.mode, "forwards_per_decision": float(np.mean(n_forwards)),
        "forward_shapes": shapes, "device": str(device), "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }
    return {
        "setup": setup,
        "latency": {**latency, "warmup_decisions": config.warmup, "episodes_finished": episodes,
                    "what": "wall time of planner.plan per action, on the observations of episodes it plays"},
        "rollouts": {
            "rollouts_per_second": float(np.sum(rollouts)) * horizon / total_s,
            "trajectories_per_second": float(np.sum(rollouts)) / total_s,
            "rollouts_per_decision": float(np.mean(rollouts)) * horizon,
            "what": "rollouts_per_second = sum over decisions of K*N*H / total latency; trajectories = K*N",
        },
        "floor": {**floor, "repeats": config.floor_repeats,
                  "what": "the same score-net forward passes per decision (same B, T), alone, under no_grad, "
                          "timed right after each decision (median of `repeats` replays)"},
        "ratio": {"median": latency["median_ms"] / floor["median_ms"], "mean": latency["mean_ms"] / floor["mean_ms"],
                  "paired_median": float(np.median(np.asarray(latencies) / np.asarray(floors))),
                  "what": "decision latency / floor: 1 means all time is in the score network"},
        "memory": {"max_rss_mib": _max_rss_mib(), "cuda_max_memory_allocated_mib": cuda_peak},
    }


# ---- denoising steps: accuracy vs. time -------------------------------------------------------
def denoising_curve(model: Any, env: Any, steps: Sequence[int] = (1, 2, 3, 4, 5, 10), n_episodes: int = 50,
                    horizon: int = 5, n_samples: int = 16, context: int | None = None, mode: str | None = None,
                    seed: int = 10_000) -> dict[str, Any]:
    """``evaluate_world_model`` at each number of denoising steps (same windows, same generator seed).

    → {"points": [{steps, obs_accuracy (per k), state_accuracy, obs_tvd, belief_accuracy,
    seconds_per_call}, ...], and the evaluation settings}.
    """
    from diffaif.model.evaluate import evaluate_world_model

    points = []
    for s in steps:
        result = evaluate_world_model(model, env, n_episodes=n_episodes, horizon=horizon, n_samples=n_samples,
                                      steps=int(s), mode=mode, seed=seed, context=context)
        settings = ("n_windows", "context", "horizon", "n_samples", "mode", "steps")
        points.append({"steps": int(s), **{k: v for k, v in result.items() if k not in settings},
                       "mean_obs_accuracy": float(np.mean(result["obs_accuracy"]))})
        last = result
    return {"points": points, "n_windows": last["n_windows"], "context": last["context"], "horizon": horizon,
            "n_samples": n_samples, "mode": last["mode"], "window_tokens": model.length,
            "n_episodes": n_episodes, "seed": seed, "device": str(model.device), "threads": torch.get_num_threads(),
            "what": "k-step accuracy given the true actions (evaluate_world_model); seconds_per_call = one "
                    "inpaint of up to 256 windows x n_samples"}


# ---- the whole bench --------------------------------------------------------------------------
def run_bench(config: BenchConfig) -> dict[str, Any]:
    """Run the bench; writes JSON to ``config.out`` (when set) and returns the same dict."""
    from diffaif.agents import make_agent
    from diffaif.envs import make_env
    from diffaif.model import WorldModel

    from diffaif.data.files import atomic_write_text, check_writable

    if config.device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' asked for, but torch sees no CUDA device")
    if config.out:
        check_writable(config.out)  # before the work, not after it
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    tmp = tempfile.TemporaryDirectory(prefix="diffaif-bench-")
    run_dir = Path(config.run_dir) if config.run_dir else Path(tmp.name) / "train"
    result: dict[str, Any] = {"bench_config": dataclasses.asdict(config)}
    try:
        began = time.perf_counter()
        if config.pretrained:
            pretrained = Path(config.pretrained.format(seed=config.seed))
            model_config = WorldModel.load(pretrained).config
            result["model_source"] = {"pretrained": str(pretrained)}
            pretrained = _with_episodes(pretrained, Path(tmp.name), config, result["model_source"])
            if config.train_steps:
                _, result["training"] = train_for_bench(config, model_config, run_dir)
        else:
            from diffaif.model.train import WorldModelConfig

            model_config = build_config(WorldModelConfig, [preset_or_file("model", config.model_preset),
                                                           config.world_model]).model
            _, result["training"] = train_for_bench(config, model_config, run_dir)
            pretrained = run_dir / "model"
            result["model_source"] = {"trained_for_bench": str(pretrained), "train_steps": config.train_steps,
                                      "note": f"trained only {config.train_steps} steps for timing: plans are "
                                              "not representative of a converged model"}
        env = make_env(config.env, **config.env_kwargs)
        overrides = {**config.agent, "pretrained": str(pretrained), "retrain": "never", "device": config.device,
                     "run_dir": str(Path(tmp.name) / "agent")}
        if config.planner:
            overrides["planner"] = config.planner
        agent = make_agent("aif", env, seed=config.seed, overrides=overrides)
        planner = agent.planner
        net = planner.model.net
        result["model"] = {"config": dataclasses.asdict(planner.model.config),
                           "parameters": int(sum(p.numel() for p in net.parameters())),
                           "encoding_dim": planner.model.encoding.dim}
        result["planner_config"] = to_dict(planner.config)
        result.update(bench_planning(planner, env, config))
        if config.steps_curve:
            result["denoising_curve"] = denoising_curve(planner.model, make_env(config.env, **config.env_kwargs), config.steps_curve,
                                                        n_episodes=config.curve_episodes, horizon=config.curve_horizon,
                                                        n_samples=config.curve_samples, mode=planner.config.mode)
        result["environment"] = environment_info(config.device)
        result["memory"]["max_rss_mib"] = _max_rss_mib()
        result["memory"]["what"] = ("max_rss_mib: process peak RSS so far (training and data included); "
                                    "cuda: peak allocated during the timed decisions")
        result["bench_seconds"] = time.perf_counter() - began
    finally:
        tmp.cleanup()
    if config.out:
        atomic_write_text(config.out, json.dumps(result, indent=2))
    return result


def headline(result: dict[str, Any]) -> dict[str, Any]:
    """The figures worth printing, with their configuration."""
    s = result["setup"]
    line = {"K": s["K_candidates_per_decision"], "N": s["N_samples"], "S": s["S_denoising_steps"], "H": s["H_horizon"],
            "tokens": s["window_tokens"], "device": s["device"], "threads": s["threads"],
            "latency_median_ms": round(result["latency"]["median_ms"], 2),
            "latency_p95_ms": round(result["latency"]["p95_ms"], 2),
            "floor_median_ms": round(result["floor"]["median_ms"], 2),
            "ratio_median": round(result["ratio"]["median"], 3),
            "rollouts_per_second": round(result["rollouts"]["rollouts_per_second"]),
            "max_rss_mib": round(result["memory"]["max_rss_mib"], 1)}
    if result["memory"].get("cuda_max_memory_allocated_mib") is not None:
        line["cuda_peak_mib"] = round(result["memory"]["cuda_max_memory_allocated_mib"], 1)
    if result.get("training"):
        line["train_windows_per_second"] = round(result["training"]["windows_per_second"])
    return line


def run_bench_grid(config: BenchConfig, n_samples: Sequence[int], denoising_steps: Sequence[int]) -> list[dict]:
    """``run_bench`` at every (N samples, S denoising steps) of the grid (an empty list: the config's
    value). Each point's JSON is written beside ``config.out`` as ``<stem>_N<n>_S<s>.json``, and
    ``config.out`` itself holds the list of the points' headline figures. Only the first point times
    training (and adds the ``steps_curve``); without ``pretrained`` it trains the model into ``run_dir``
    (default ``<stem>_model`` beside ``config.out``) and the other points plan with it. → that list."""
    from diffaif.data.files import atomic_write_text, check_writable

    if not config.out:
        raise ValueError("a --grid-n-samples / --grid-denoising-steps grid needs --out (the summary file)")
    out = Path(config.out)
    check_writable(out)
    stem = out.with_suffix("")
    run_dir = config.run_dir or (str(stem) + "_model" if config.pretrained is None else None)
    summary: list[dict] = []
    for i, (n, s) in enumerate((n, s) for n in (n_samples or [None]) for s in (denoising_steps or [None])):
        planner = {**config.planner, **({"n_samples": n} if n else {}), **({"denoising_steps": s} if s else {})}
        point = Path(f"{stem}" + (f"_N{n}" if n else "") + (f"_S{s}" if s else "") + ".json")
        point_config = dataclasses.replace(config, planner=planner, out=str(point), run_dir=run_dir,
                                           train_steps=config.train_steps if i == 0 else 0,
                                           steps_curve=config.steps_curve if i == 0 else [])
        if i > 0 and config.pretrained is None:   # trained on the first point: plan with that model
            point_config = dataclasses.replace(point_config, pretrained=str(Path(run_dir) / "model"), run_dir=None)
        result = run_bench(point_config)
        summary.append({"file": point.name, **headline(result)})
        print(json.dumps(summary[-1]), flush=True)
    atomic_write_text(out, json.dumps(summary, indent=2))
    return summary


def run_from_args(args: Any) -> None:
    """``diffaif bench`` (its options: ``diffaif.cli.build_parser``): run the bench, print the headline
    figures, write the JSON. Errors are raised for the command line's boundary to report."""
    grid = {"n_samples": args.grid_n_samples or [], "denoising_steps": args.grid_denoising_steps or []}
    keys = ("env", "pretrained", "model_preset", "decisions", "warmup", "train_steps", "device", "threads", "seed",
            "steps_curve", "curve_episodes", "curve_horizon", "curve_samples", "out", "run_dir")
    flags = {k: getattr(args, k) for k in keys if getattr(args, k, None) is not None}
    layers = ([args.config] if args.config else []) + [flags]
    if args.learning_curve:
        from diffaif.experiments.learning_curve import LearningCurveConfig, run_learning_curve

        curve_flags = {k: v for k, v in flags.items() if k in ("env", "model_preset", "threads", "seed", "out")}
        refused = sorted("--" + k.replace("_", "-") for k in set(flags) - set(curve_flags))
        refused += [f"--grid-{k.replace('_', '-')}" for k, v in grid.items() if v]
        if refused:
            raise ValueError(f"--learning-curve takes --env, --model-preset, --threads, --seed and --out, "
                             f"not {refused}")
        config = build_config(LearningCurveConfig, layers[:-1] + [curve_flags], args.overrides)
        result = run_learning_curve(config)
        for point in result["points"]:
            print(json.dumps({k: point[k] for k in ("budget_s", "train_cpu_s", "train_steps")} |
                             {k: point[k] for k in ("obs_accuracy", "obs_abs_error", "view_cell_accuracy_seen")
                              if k in point}))
        print(f"wrote {Path(config.out).resolve()}")
        return
    config = build_config(BenchConfig, layers, args.overrides)
    if grid["n_samples"] or grid["denoising_steps"]:
        run_bench_grid(config, grid["n_samples"], grid["denoising_steps"])
        print(f"wrote {Path(config.out).resolve()} and its points beside it")
        return
    result = run_bench(config)
    print(json.dumps(headline(result)))
    for point in result.get("denoising_curve", {}).get("points", []):
        print(json.dumps({"steps": point["steps"], "obs_accuracy": [round(a, 3) for a in point["obs_accuracy"]],
                          "seconds_per_call": round(point["seconds_per_call"], 4)}))
    if config.out:
        print(f"wrote {Path(config.out).resolve()}")
