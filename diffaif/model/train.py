"""Training the world model: denoising score matching on episode windows.

Files written to ``out_dir``: ``config.yaml`` (resolved model + train config), ``encoding.json``,
``episodes.npz`` (the training episodes, so a run says what data, and how many interactions, it cost),
``metrics.jsonl`` (one line per log interval; a resumed run first drops the lines after its checkpoint),
``checkpoint.pt`` (net, optimizer, lr schedule, EMA, step; written atomically) and ``model/`` (the EMA
world model, ``WorldModel.load``-able; swapped in crash-safely), both renewed at every checkpoint
interval and at the end.

Every step's batch, masks and noise come from a generator seeded by (seed, process, step), so a
resumed run draws exactly what the uninterrupted run would have drawn.
"""
from __future__ import annotations

import contextlib
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch
from accelerate import Accelerator
from diffusers import DDPMScheduler
from diffusers.optimization import get_scheduler
from diffusers.training_utils import EMAModel
from torch.optim.lr_scheduler import LambdaLR
from tqdm.auto import tqdm

from diffaif.config import save_config
from diffaif.data.encoding import TaskEncoding
from diffaif.data.files import atomic_write, atomic_write_text
from diffaif.data.episodes import EpisodeData, save_episodes, windows
from diffaif.model.score_net import ScoreNet
from diffaif.model.world_model import (PREDICTION_TYPES, ModelConfig, NoiseSchedule, WorldModel, build_score_net,
                                       categorical_cross_entropy)

CHECKPOINT_FILE = "checkpoint.pt"
MODEL_DIR = "model"
EPISODES_FILE = "episodes.npz"
ENCODING_FILE = "encoding.json"


BUDGET_SCHEDULES = ("cosine", "constant", "constant_with_warmup")
BUDGET_CLOCKS = {"wall": time.time, "cpu": time.process_time}


@dataclass
class TrainConfig:
    steps: int = 3000
    batch_size: int = 256
    lr: float = 1e-3
    lr_schedule: str = "cosine"        # any name of diffusers.optimization.get_scheduler
    warmup_steps: int = 100
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    ema_decay: float = 0.999           # EMAModel ramps up as (1 + step) / (10 + step) to this value
    prediction_type: str = "sample"    # "sample" (x0, cross-entropy on categorical parts) | "epsilon" | "v_prediction"
    num_train_timesteps: int = 1000
    beta_schedule: str = "squaredcos_cap_v2"
    # Masked mode: which entries of a training window are given. A *planning* window knows what the
    # planner knows (observations up to a present step c <= left_pad, every action); an *unconditional*
    # one nothing; the rest know random (step, part) subsets, so other queries still work.
    planning_share: float = 0.9
    unconditional_share: float = 0.05
    scored_future: int | None = 1      # planning windows: loss on this many steps after the present (None: all)
    # noise levels t ~ U[⌊min_noise·T⌋, T): low t teach little (x_t all but gives x0); a sampler of one
    # step asks the net at t = T - 1 only
    min_noise: float = 0.999
    left_pad: int | None = None        # most absent steps before an episode start in a window (None: length - 1)
    crop_prob: float = 0.0             # share of batches cut to a random length 2..T from the window start, so
                                       # the net also serves short planning windows (fewer tokens, faster)
    max_seconds: float | None = None   # stop after this many seconds of training (saved as at the end)
    budget_clock: str = "wall"         # what max_seconds counts: "wall" time or this process's "cpu" time
    seed: int = 0
    log_interval: int = 50
    checkpoint_interval: int = 500
    wandb_mode: str = "disabled"       # "disabled" | "offline" | "online"

    def __post_init__(self):
        if self.prediction_type not in PREDICTION_TYPES:
            raise ValueError(f"TrainConfig.prediction_type must be one of {PREDICTION_TYPES}, got {self.prediction_type!r}")
        for name in ("planning_share", "unconditional_share", "crop_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"TrainConfig.{name} must be in [0, 1], got {getattr(self, name)}")
        if self.planning_share + self.unconditional_share > 1.0:
            raise ValueError(f"TrainConfig.planning_share + unconditional_share must be <= 1, got "
                             f"{self.planning_share} + {self.unconditional_share}")
        if not 0.0 <= self.min_noise < 1.0:
            raise ValueError(f"TrainConfig.min_noise must be in [0, 1), got {self.min_noise}")
        if self.max_seconds is not None and self.max_seconds <= 0:
            raise ValueError(f"TrainConfig.max_seconds must be > 0 or null, got {self.max_seconds}")
        if self.budget_clock not in BUDGET_CLOCKS:
            raise ValueError(f"TrainConfig.budget_clock must be one of {tuple(BUDGET_CLOCKS)}, "
                             f"got {self.budget_clock!r}")
        if self.max_seconds is not None and self.lr_schedule not in BUDGET_SCHEDULES:
            raise ValueError(f"TrainConfig.max_seconds works with lr_schedule {BUDGET_SCHEDULES}, "
                             f"not {self.lr_schedule!r}")
        if self.wandb_mode not in ("disabled", "offline", "online"):
            raise ValueError(f"TrainConfig.wandb_mode must be disabled/offline/online, got {self.wandb_mode!r}")
        for name in ("steps", "batch_size", "log_interval", "checkpoint_interval"):
            if getattr(self, name) < 1:
                raise ValueError(f"TrainConfig.{name} must be >= 1, got {getattr(self, name)}")


@dataclass
class WorldModelConfig:
    """The schema of ``configs/model/*.yaml``: architecture and training."""

    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


def absent_steps(encoding: TaskEncoding, x0: torch.Tensor) -> torch.Tensor:
    """Steps of encoded windows that lie before their episode's start: (B, T, D) -> (B, T) bool.

    Such a step is the absent token (``TaskEncoding``): its observation entries are all -1
    (categorical) or all 0 (continuous), which no present observation is.
    """
    spec = encoding.parts["obs"]
    absent_value = -1.0 if spec.kind == "categorical" else 0.0
    return (x0[..., encoding.slice("obs")] == absent_value).all(-1)


def training_known_mask(encoding: TaskEncoding, absent: torch.Tensor, present: torch.Tensor, planning_share: float,
                        unconditional_share: float, generator: torch.Generator,
                        scored_future: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Known-masks for masked-mode training, and which entries the loss scores: absent (B, T) bool and
    present (B, 1) int -> known (B, T, D) bool (whole parts of a step) and scored (B, T, D) bool.

    Each window is, with probability ``planning_share``, a *planning* window, what ``known_window``
    gives the planner: observations known up to its present step c (< T - 1), every action known,
    hidden states unknown, steps before the episode start known whole; with probability
    ``unconditional_share`` nothing is known; otherwise each (step, part) is known with a
    rate drawn uniformly per window (other queries: perception, action inference).

    Every unknown entry is scored, except that planning windows score only the first
    ``scored_future`` steps after the present (None: all): a model sampled one step at a time
    (``ModelConfig.order="sequential"``) is asked nothing further.
    """
    batch, length = absent.shape
    names = list(encoding.parts)
    steps = torch.arange(length)
    planning = torch.zeros(batch, length, len(names), dtype=torch.bool)
    planning[..., names.index("obs")] = steps <= present
    planning[..., names.index("action")] = True
    planning |= absent[..., None]
    rate = torch.rand(batch, 1, 1, generator=generator)
    iid = torch.rand(batch, length, len(names), generator=generator) < rate
    kind = torch.rand(batch, 1, 1, generator=generator)
    is_planning = kind < planning_share
    per_part = torch.where(is_planning, planning, iid & (kind >= planning_share + unconditional_share))
    scored = ~per_part
    if scored_future is not None:
        scored &= ~(is_planning & (steps > present + scored_future)[..., None])
    widths = torch.tensor([encoding.parts[n].size for n in names])
    return torch.repeat_interleave(per_part, widths, dim=-1), torch.repeat_interleave(scored, widths, dim=-1)


def x0_loss(encoding: TaskEncoding, logits: torch.Tensor, x0: torch.Tensor, unknown: torch.Tensor) -> torch.Tensor:
    """Loss of the x0 prediction on unknown entries: cross-entropy ``-log softmax(logits)[index]`` per
    categorical block of a step, squared error per continuous entry; averaged over what is predicted.

    Absent categorical steps (all -1, no index) are never predicted: ``known_window`` always gives them.
    ``logits``, ``x0`` (B, T, D); ``unknown`` (B, T, D) bool.
    """
    total, count = categorical_cross_entropy(encoding, logits, x0, unknown)
    for name, spec in encoding.parts.items():
        if spec.kind == "continuous":
            part = encoding.slice(name)
            weight = unknown[..., part].to(logits.dtype)
            total, count = total + ((logits[..., part] - x0[..., part]) ** 2 * weight).sum(), count + weight.sum()
    return total / count.clamp(min=1.0)


def diffusion_loss(net: torch.nn.Module, scheduler: DDPMScheduler, encoding: TaskEncoding, x0: torch.Tensor,
                   mask: torch.Tensor | None, generator: torch.Generator, min_noise: float = 0.0,
                   scored: torch.Tensor | None = None) -> torch.Tensor:
    """Denoising loss on the unknown entries of ``x_t = sqrt(ᾱ_t) x0 + sqrt(1 - ᾱ_t) ε``,
    t ~ U[⌊min_noise·T⌋, T).

    prediction_type "sample": ``x0_loss`` of the net output (logits) against x0; "epsilon" / "v_prediction":
    mean squared error against ε / ``v = sqrt(ᾱ_t) ε - sqrt(1 - ᾱ_t) x0``. With a known-mask (B, T, D)
    the known entries of the input are clean, the mask is the extra channel, and only unknown entries count
    (of those, only the ``scored`` ones where given).
    """
    batch = x0.shape[0]
    noise = torch.randn(x0.shape, generator=generator).to(x0.device)
    levels = scheduler.config.num_train_timesteps
    t = torch.randint(int(min_noise * levels), levels, (batch,), generator=generator).to(x0.device)
    x_t = scheduler.add_noise(x0, noise, t)
    if mask is not None:
        x_t = torch.where(mask, x0, x_t)
    output = net(x_t, t, mask)
    unknown = torch.ones_like(x0, dtype=torch.bool) if mask is None else ~mask
    if scored is not None:
        unknown = unknown & scored
    if scheduler.config.prediction_type == "sample":
        return x0_loss(encoding, output, x0, unknown)
    target = noise if scheduler.config.prediction_type == "epsilon" else scheduler.get_velocity(x0, noise, t)
    weight = unknown.to(x0.dtype)
    return ((output - target) ** 2 * weight).sum() / weight.sum().clamp(min=1.0)


def budget_cosine_schedule(optimizer: torch.optim.Optimizer, warmup_steps: int, steps: int, max_seconds: float,
                           clock: Callable[[], float]) -> LambdaLR:
    """Linear warm-up, then ``½ (1 + cos π p)`` of the peak lr with progress ``p = max(step share, time
    share)``: step share ``(step - warmup) / (steps - warmup)``, time share ``clock() / max_seconds``. A
    run stopped by its time budget thus ends with a decayed learning rate, as a run of ``steps`` does."""
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = max((step - warmup_steps) / max(1, steps - warmup_steps), clock() / max_seconds)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return LambdaLR(optimizer, factor)


def load_checkpoint(path: str | Path) -> dict:
    """The training state saved in ``checkpoint.pt``; an unreadable file is a ValueError naming it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no training checkpoint at {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for a truncated or foreign file
        raise ValueError(f"training checkpoint {path} is corrupt: {err}") from None
    missing = {"step", "net", "optimizer", "lr_scheduler", "ema", "model_config"} - set(state)
    if missing:
        raise ValueError(f"training checkpoint {path} lacks {sorted(missing)}")
    return state


def resume_state(out_dir: str | Path, model_config: ModelConfig, encoding: TaskEncoding) -> dict:
    """The training state a resumed run in ``out_dir`` continues from, checked against the model config
    and the encoding asked for (so nothing is written before a mismatch is found); → ``load_checkpoint``'s dict."""
    checkpoint_path = Path(out_dir) / CHECKPOINT_FILE
    state = load_checkpoint(checkpoint_path)
    if state["model_config"] != asdict(model_config):
        raise ValueError(f"cannot resume from {checkpoint_path}: it was trained with model config "
                         f"{state['model_config']}, not {asdict(model_config)}")
    encoding_path = Path(out_dir) / ENCODING_FILE
    if encoding_path.is_file() and TaskEncoding.from_dict(json.loads(encoding_path.read_text())) != encoding:
        raise ValueError(f"cannot resume from {checkpoint_path}: the run's {encoding_path} is not the encoding "
                         f"of this env and data (another env, env option or data set?)")
    return state


def keep_metrics_until(path: Path, step: int) -> None:
    """Rewrite the metrics log ``path`` with only its records up to ``step`` (the checkpoint a run resumes
    from), so the records logged after it are not duplicated; ``step`` 0 empties it (a fresh run)."""
    kept = []
    if step and path.is_file():
        for line in path.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:  # a line cut by a kill
                continue
            if record.get("step", 0) <= step:
                kept.append(line + "\n")
    atomic_write_text(path, "".join(kept))


def _ema_world_model(ema: EMAModel, encoding: TaskEncoding, model_config: ModelConfig,
                     noise: NoiseSchedule) -> WorldModel:
    net = build_score_net(encoding, model_config)
    ema.copy_to(net.parameters())
    return WorldModel(net, encoding, model_config, noise)


def _start_wandb(accelerator: Accelerator, cfg: TrainConfig, model_config: ModelConfig) -> None:
    """Start the wandb tracker in ``cfg.wandb_mode`` (which wins over a WANDB_MODE environment variable);
    a failure is a one-line RuntimeError."""
    try:
        accelerator.init_trackers("diffaif", config={"model": asdict(model_config), "train": asdict(cfg)},
                                  init_kwargs={"wandb": {"mode": cfg.wandb_mode}})
    except Exception as err:  # wandb raises many types (network, auth, settings)
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise RuntimeError(f"wandb could not start in train.wandb_mode={cfg.wandb_mode}: {first} "
                           f"(train.wandb_mode=disabled trains without it)") from None


def train_world_model(data: EpisodeData, encoding: TaskEncoding, model_config: ModelConfig,
                      train_config: TrainConfig, out_dir: str | Path, resume: bool = False,
                      init_model: WorldModel | None = None, progress: bool = True) -> WorldModel:
    """Train a score net on the windows of ``data``; returns the EMA world model (also saved in ``out_dir/model``).

    ``resume=True`` continues from ``out_dir/checkpoint.pt`` (net, optimizer, lr schedule, EMA, step)
    up to ``train_config.steps``. ``init_model`` (a world model of the same architecture) fine-tunes
    from its weights with a fresh optimizer, as the agent's retraining does. A NaN/inf loss raises ``TrainingDivergedError`` before the update, so
    the last checkpoint stays the last good one.
    """
    out_dir = Path(out_dir)
    cfg = train_config
    state = resume_state(out_dir, model_config, encoding) if resume else None  # before anything is written
    out_dir.mkdir(parents=True, exist_ok=True)
    # Every process draws its own batch of cfg.batch_size windows per step (see the generator seed below),
    # so one step is one step of the lr schedule whatever the number of processes; accelerate's default
    # (step_scheduler_with_optimizer=True) would step it num_processes times per step, as for a sharded
    # dataloader, and a cosine schedule would run out, then climb back, halfway through training.
    accelerator = Accelerator(log_with="wandb" if cfg.wandb_mode != "disabled" else None,
                              step_scheduler_with_optimizer=False)
    if cfg.wandb_mode != "disabled":
        _start_wandb(accelerator, cfg, model_config)
    torch.manual_seed(cfg.seed)
    noise_schedule = NoiseSchedule(cfg.num_train_timesteps, cfg.beta_schedule, cfg.prediction_type,
                                   clip_sample=encoding.all_categorical)
    scheduler = DDPMScheduler(num_train_timesteps=cfg.num_train_timesteps, beta_schedule=cfg.beta_schedule,
                              prediction_type=cfg.prediction_type)
    dataset = windows(data, encoding, model_config.length, left_pad=cfg.left_pad, seed=cfg.seed)
    net: ScoreNet = build_score_net(encoding, model_config)
    if init_model is not None:
        if init_model.config != model_config or init_model.encoding != encoding:
            raise ValueError(f"init_model has config {init_model.config} and encoding {init_model.encoding}; "
                             f"training asks for {model_config} and {encoding}")
        net.load_state_dict(init_model.net.state_dict())
    optimizer = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    clock = BUDGET_CLOCKS[cfg.budget_clock]
    budget_began = clock()
    if cfg.max_seconds is not None and cfg.lr_schedule == "cosine":
        lr_scheduler = budget_cosine_schedule(optimizer, cfg.warmup_steps, cfg.steps, cfg.max_seconds,
                                              lambda: clock() - budget_began)
    else:
        lr_scheduler = get_scheduler(cfg.lr_schedule, optimizer, num_warmup_steps=cfg.warmup_steps,
                                     num_training_steps=cfg.steps)
    ema = EMAModel(net.parameters(), decay=cfg.ema_decay)
    checkpoint_path = out_dir / CHECKPOINT_FILE
    start = 0
    if state is not None:
        net.load_state_dict(state["net"])
        optimizer.load_state_dict(state["optimizer"])
        lr_scheduler.load_state_dict(state["lr_scheduler"])
        ema.load_state_dict(state["ema"])
        start = int(state["step"])
    net, optimizer, lr_scheduler = accelerator.prepare(net, optimizer, lr_scheduler)
    ema.to(accelerator.device)
    dataset = dataset.to(accelerator.device)
    if accelerator.is_main_process:  # only the main process writes files
        save_config(WorldModelConfig(model_config, cfg), out_dir / "config.yaml")
        atomic_write_text(out_dir / ENCODING_FILE, json.dumps(encoding.to_dict(), indent=2))
        save_episodes(data, out_dir / EPISODES_FILE)
        keep_metrics_until(out_dir / "metrics.jsonl", start)

    def save_checkpoint(step: int) -> None:
        unwrapped = accelerator.unwrap_model(net)
        state = {"step": step, "net": unwrapped.state_dict(), "optimizer": optimizer.state_dict(),
                 "lr_scheduler": lr_scheduler.state_dict(), "ema": ema.state_dict(),
                 "model_config": asdict(model_config)}
        atomic_write(checkpoint_path, lambda handle: torch.save(state, handle))
        _ema_world_model(ema, encoding, model_config, noise_schedule).save(out_dir / MODEL_DIR)

    last_saved = start if resume else None
    # present steps of planning windows: up to the planner's context (left_pad), or anywhere in the
    # window for a model sampled one step at a time
    max_present = model_config.length - 2 if cfg.left_pad is None or cfg.scored_future is not None else cfg.left_pad
    losses: list[float] = []
    began, cpu_began = time.time(), time.process_time()
    budget_began = clock()  # the time budget counts training steps only
    bar = tqdm(range(start, cfg.steps), initial=start, total=cfg.steps, desc="train world model",
               disable=not (progress and accelerator.is_local_main_process))
    net.train()
    with (open(out_dir / "metrics.jsonl", "a") if accelerator.is_main_process else contextlib.nullcontext()) as metrics:
        for step in bar:
            generator = torch.Generator().manual_seed(cfg.seed * 1_000_003 + accelerator.process_index * 7919 + step)
            x0 = dataset[torch.randint(0, len(dataset), (cfg.batch_size,), generator=generator).to(dataset.device)]
            length = model_config.length
            if cfg.scored_future is not None:  # one present per batch, the window cut after what is scored
                present = torch.randint(0, max_present + 1, (1, 1), generator=generator).expand(cfg.batch_size, 1)
                length = min(length, int(present[0, 0]) + 1 + cfg.scored_future)
            elif length > 2 and torch.rand((), generator=generator) < cfg.crop_prob:
                length = int(torch.randint(2, length, (), generator=generator))
            x0 = x0[:, :length]
            if cfg.scored_future is None:
                present = torch.randint(0, min(max_present, length - 2) + 1, (cfg.batch_size, 1), generator=generator)
            mask = scored = None
            if model_config.mask_channel:
                mask, scored = training_known_mask(encoding, absent_steps(encoding, x0).cpu(), present,
                                                   cfg.planning_share, cfg.unconditional_share, generator,
                                                   cfg.scored_future)
                mask, scored = mask.to(x0.device), scored.to(x0.device)
            loss = diffusion_loss(net, scheduler, encoding, x0, mask, generator, cfg.min_noise, scored)
            # all processes stop together: one alone would leave the others waiting in the gradient all-reduce
            if not bool(accelerator.gather(torch.isfinite(loss.detach()).float().reshape(1)).all()):
                where = (f"the last good checkpoint is {checkpoint_path} (step {last_saved})"
                         if last_saved is not None else "no checkpoint was written yet")
                raise TrainingDivergedError(f"training diverged: loss is {loss.item()} at step {step + 1} "
                                            f"(process {accelerator.process_index} of {accelerator.num_processes}) "
                                            f"(lr {lr_scheduler.get_last_lr()[0]:.3g}); {where}")
            accelerator.backward(loss)
            accelerator.clip_grad_norm_(net.parameters(), cfg.grad_clip)
            optimizer.step()
            lr_scheduler.step()
            optimizer.zero_grad()
            ema.step(accelerator.unwrap_model(net).parameters())
            losses.append(loss.item())
            done = step + 1
            out_of_time = cfg.max_seconds is not None and bool(accelerator.gather(
                torch.tensor([clock() - budget_began >= cfg.max_seconds], device=accelerator.device)).any())
            last = done == cfg.steps or out_of_time
            if done % cfg.log_interval == 0 or last:
                mean_loss = accelerator.reduce(torch.tensor(sum(losses) / len(losses), device=accelerator.device), "mean")
                record = {"step": done, "loss": float(mean_loss), "lr": lr_scheduler.get_last_lr()[0],
                          "elapsed_s": round(time.time() - began, 2),
                          "cpu_s": round(time.process_time() - cpu_began, 2)}
                if metrics is not None:
                    metrics.write(json.dumps(record) + "\n")
                    metrics.flush()
                accelerator.log(record, step=done)
                bar.set_postfix(loss=f"{record['loss']:.4f}")
                losses.clear()
            if accelerator.is_main_process and (done % cfg.checkpoint_interval == 0 or last):
                save_checkpoint(done)
                last_saved = done
            if out_of_time:
                break
    accelerator.wait_for_everyone()  # every process returns once the main one has written the model
    if cfg.wandb_mode != "disabled":
        accelerator.end_training()
    return _ema_world_model(ema, encoding, model_config, noise_schedule).to(accelerator.device)
