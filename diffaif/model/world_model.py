"""The diffusion world model: score net + encoding + noise schedule, and conditioning by inpainting.

Time layout of a planning window (``known_window``): ``length`` tokens, index ``c = context`` is the
present step t (its observation is known, its action is the first action of the candidate policy),
indices ``< c`` are the past (observations and actions known, hidden states inferred), indices ``> c``
the future (actions known as far as the policy reaches, states and observations predicted).
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from diffusers import DDIMScheduler, RePaintScheduler
from einops import rearrange, repeat

from diffaif.data.encoding import TaskEncoding
from diffaif.data.files import atomic_write_text, normal_mode
from diffaif.model.score_net import ScoreNet

MODES: tuple[str, ...] = ("repaint", "masked")
ORDERS: tuple[str, ...] = ("joint", "sequential")
PREDICTION_TYPES: tuple[str, ...] = ("sample", "epsilon", "v_prediction")
PRECISIONS: tuple[str, ...] = ("fp32", "bf16")
WORLD_MODEL_FILE = "world_model.json"
# Sampler settings of models saved before these keys existed (joint DDIM, positions from the start).
LEGACY_SAMPLER = {"order": "joint", "draw": False, "position_from_end": False}
NET_DIR = "score_net"
NET_FILES: tuple[str, ...] = ("config.json", "diffusion_pytorch_model.safetensors")  # what save_pretrained writes


@dataclass
class ModelConfig:
    """Architecture of the score net and the sampler defaults stored with the model."""

    length: int = 8            # window length T (context + present + future)
    width: int = 128
    depth: int = 4
    heads: int = 4
    mlp_ratio: int = 4
    dropout: float = 0.0
    mode: str = "masked"       # "masked": mask channel, no resampling (measured far better); "repaint": unconditional
    steps: int = 1             # default denoising steps of inpaint() (one x0 step: docs/results/world_model.md)
    # Masked mode: "joint" denoises the whole window at once; "sequential" predicts one future step per
    # pass (the earliest one with an unknown observation), fixes it, and goes on: H passes of ``steps``.
    order: str = "sequential"
    draw: bool = True          # last step: draw each categorical block from the net's softmax (not its mean)
    position_from_end: bool = True    # position embeddings counted from the window's end (see ScoreNet)
    jump_length: int = 1       # RePaint: steps forward per resampling jump
    jump_n_sample: int = 2     # RePaint: times each jump is resampled (1 = no resampling)
    eta: float = 0.0           # RePaint: 0 = deterministic DDIM update of the unknown part, 1 = DDPM-like
    guidance: float = 0.0      # RePaint: reconstruction-guidance weight w (0 = plain RePaint; see reconstruction_guided_x0)

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"ModelConfig.mode must be one of {MODES}, got {self.mode!r}")
        if self.order not in ORDERS:
            raise ValueError(f"ModelConfig.order must be one of {ORDERS}, got {self.order!r}")
        for name in ("length", "width", "depth", "heads", "steps", "jump_length", "jump_n_sample"):
            if getattr(self, name) < 1:
                raise ValueError(f"ModelConfig.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("eta", "guidance"):
            if getattr(self, name) < 0:
                raise ValueError(f"ModelConfig.{name} must be >= 0, got {getattr(self, name)}")

    @property
    def mask_channel(self) -> bool:
        return self.mode == "masked"


@dataclass
class NoiseSchedule:
    """The forward process the net was trained with (shared by the training and sampling schedulers)."""

    num_train_timesteps: int = 1000
    beta_schedule: str = "squaredcos_cap_v2"
    prediction_type: str = "sample"    # "sample" (x0; softmax for categorical parts) | "epsilon" | "v_prediction"
    clip_sample: bool = True           # clip predicted x0 to [-1, 1] (only right for all-categorical tokens)

    def __post_init__(self):
        if self.prediction_type not in PREDICTION_TYPES:
            raise ValueError(f"prediction_type must be one of {PREDICTION_TYPES}, got {self.prediction_type!r}")


def build_score_net(encoding: TaskEncoding, config: ModelConfig) -> ScoreNet:
    return ScoreNet(dim=encoding.dim, length=config.length, width=config.width, depth=config.depth,
                    heads=config.heads, mlp_ratio=config.mlp_ratio, dropout=config.dropout,
                    mask_channel=config.mask_channel, position_from_end=config.position_from_end)


def predicted_x0(encoding: TaskEncoding, logits: torch.Tensor) -> torch.Tensor:
    """The net's x0 estimate under ``prediction_type="sample"``: (..., D) -> (..., D).

    A categorical block of K logits becomes ``2 softmax(logits) - 1``, the expected ±1 one-hot (so the
    net is trained with cross-entropy, which learns far faster than MSE on sparse one-hots); a
    continuous part is the raw output.
    """
    x0 = logits.clone()
    for group in encoding.categorical_groups:
        index = torch.as_tensor(group, device=logits.device)
        x0[..., index] = 2 * logits[..., index].softmax(-1) - 1
    return x0


def categorical_cross_entropy(encoding: TaskEncoding, logits: torch.Tensor, target: torch.Tensor,
                              scored: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``Σ -log softmax(logits)[index]`` over the categorical blocks whose target holds an index and
    whose entries are all ``scored``; absent blocks (all -1) are never scored.

    logits, target (..., D) float; scored (..., D) bool → (summed cross-entropy, number of blocks scored).
    """
    total, count = logits.new_zeros(()), logits.new_zeros(())
    for group in encoding.categorical_groups:
        index = torch.as_tensor(group, device=logits.device)
        hot = target[..., index] > 0                                     # (..., blocks, size)
        weight = (scored[..., index].all(-1) & hot.any(-1)).to(logits.dtype)
        ce = -(logits[..., index].log_softmax(-1) * hot).sum(-1)
        total, count = total + (ce * weight).sum(), count + weight.sum()
    return total, count


def draw_categorical(encoding: TaskEncoding, logits: torch.Tensor, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """``x`` with every categorical block replaced by a ±1 one-hot drawn from ``softmax(logits)``.

    The draw is Gumbel-max with Gumbel noise ``-log(-log Φ(z))`` from standard normal ``z``, so the
    caller's (possibly shared) Gaussian draws fix it. logits, x, z (..., D) -> (..., D).
    """
    uniform = torch.special.ndtr(z).clamp(1e-12, 1 - 1e-12)
    return argmax_categorical(encoding, x, logits - torch.log(-torch.log(uniform)))


def categorical_probabilities(encoding: TaskEncoding, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``x`` with every categorical block replaced by ``softmax(logits)``, the net's predictive
    distribution of that block (entries in [0, 1]): (..., D) -> (..., D)."""
    x = x.clone()
    for group in encoding.categorical_groups:
        index = torch.as_tensor(group, device=logits.device)
        x[..., index] = logits[..., index].softmax(-1)
    return x


def argmax_categorical(encoding: TaskEncoding, x: torch.Tensor, scores: torch.Tensor | None = None) -> torch.Tensor:
    """``x`` with every categorical block replaced by the ±1 one-hot of the largest of ``scores`` in that
    block (default: ``x`` itself): (..., D) -> (..., D)."""
    scores = x if scores is None else scores
    x = x.clone()
    for group in encoding.categorical_groups:
        index = torch.as_tensor(group, device=x.device)
        hot = torch.zeros_like(x[..., index]).scatter_(-1, scores[..., index].argmax(-1, keepdim=True), 1.0)
        x[..., index] = 2 * hot - 1
    return x


def prediction_stages(mask: torch.Tensor, obs: slice) -> list[int]:
    """Where the sequential sampler stops: after each window step with an unknown observation entry
    (in any row), the first stage also covering every earlier step. (B, T, D) bool -> ascending steps."""
    predicted = (~mask[..., obs]).any(-1).any(0).nonzero().flatten().tolist()
    return predicted or [mask.shape[1] - 1]


def epsilon_from_output(output: torch.Tensor, x_t: torch.Tensor, alpha_bar: torch.Tensor,
                        prediction_type: str) -> torch.Tensor:
    """The noise estimate: ``eps = output`` (epsilon), ``eps = sqrt(ᾱ) v + sqrt(1 - ᾱ) x_t`` (v-prediction)
    or ``eps = (x_t - sqrt(ᾱ) x̂0) / sqrt(1 - ᾱ)`` (sample, ``output`` = x̂0)."""
    if prediction_type == "epsilon":
        return output
    if prediction_type == "sample":
        return (x_t - alpha_bar.sqrt() * output) / (1 - alpha_bar).sqrt()
    return alpha_bar.sqrt() * output + (1 - alpha_bar).sqrt() * x_t


def x0_from_output(output: torch.Tensor, x_t: torch.Tensor, alpha_bar: torch.Tensor, prediction_type: str) -> torch.Tensor:
    """The x0 estimate behind a net output of any prediction type (``output`` itself for "sample")."""
    if prediction_type == "sample":
        return output
    eps = epsilon_from_output(output, x_t, alpha_bar, prediction_type)
    return (x_t - (1 - alpha_bar).sqrt() * eps) / alpha_bar.sqrt()


def repaint_step(x_t: torch.Tensor, eps: torch.Tensor, known: torch.Tensor, mask: torch.Tensor,
                 noise_unknown: torch.Tensor, noise_known: torch.Tensor, alpha_bar: torch.Tensor,
                 alpha_bar_prev: torch.Tensor, eta: float, clip: bool) -> torch.Tensor:
    """One RePaint reverse step from level ᾱ to level ᾱ' (all tensors (B, T, D) or scalars).

    ``x̂0 = (x_t - sqrt(1-ᾱ) eps) / sqrt(ᾱ)``; ``σ = η sqrt((1-ᾱ')/(1-ᾱ) (1 - ᾱ/ᾱ'))``;
    unknown: ``sqrt(ᾱ') x̂0 + sqrt(1-ᾱ'-σ²) eps + σ z``; known: ``sqrt(ᾱ') known + sqrt(1-ᾱ') z'``.
    (The formula of diffusers' ``RePaintScheduler.step``, with the noise passed in so that it can be
    shared across candidates, and independent draws for the two parts.)
    """
    x0 = (x_t - (1 - alpha_bar).sqrt() * eps) / alpha_bar.sqrt()
    if clip:
        x0 = x0.clamp(-1, 1)
    sigma = eta * ((1 - alpha_bar_prev) / (1 - alpha_bar) * (1 - alpha_bar / alpha_bar_prev)).sqrt()
    unknown = alpha_bar_prev.sqrt() * x0 + (1 - alpha_bar_prev - sigma**2).clamp(min=0).sqrt() * eps + sigma * noise_unknown
    known_part = alpha_bar_prev.sqrt() * known + (1 - alpha_bar_prev).sqrt() * noise_known
    return torch.where(mask, known_part, unknown)


def renoise(x: torch.Tensor, alpha_bar_from: torch.Tensor, alpha_bar_to: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """Forward jump from level ᾱ_from to a noisier ᾱ_to: ``sqrt(ᾱ_to/ᾱ_from) x + sqrt(1 - ᾱ_to/ᾱ_from) z``.

    (The product of the one-step noisings that diffusers' ``RePaintScheduler.undo_step`` draws one by one.)
    """
    ratio = alpha_bar_to / alpha_bar_from
    return ratio.sqrt() * x + (1 - ratio).sqrt() * noise


class NoiseSource:
    """Gaussian draws for ``batch`` x ``n_samples`` sequences of shape ``shape`` -> ((batch n), *shape).

    With ``shared=True`` (common random numbers) each draw has shape (n_samples, *shape) and is repeated
    over the batch, so every batch row sees the same noise.
    """

    def __init__(self, batch: int, n_samples: int, shape: tuple[int, ...], shared: bool,
                 generator: torch.Generator | None, device: torch.device, dtype: torch.dtype):
        self.batch, self.n_samples, self.shape, self.shared = batch, n_samples, shape, shared
        self.generator, self.device, self.dtype = generator, device, dtype

    def __call__(self) -> torch.Tensor:
        gen_device = self.generator.device if self.generator is not None else self.device
        rows = self.n_samples if self.shared else self.batch * self.n_samples
        z = torch.randn((rows, *self.shape), generator=self.generator, device=gen_device, dtype=self.dtype)
        z = z.to(self.device)
        return repeat(z, "n ... -> (b n) ...", b=self.batch) if self.shared else z


def _alpha_bar(scheduler: Any, t: int) -> torch.Tensor:
    """ᾱ at timestep t; t < 0 is the clean end (``final_alpha_cumprod``)."""
    return scheduler.alphas_cumprod[t] if t >= 0 else torch.as_tensor(scheduler.final_alpha_cumprod)


class WorldModel:
    """A trained score net (EMA weights) with its encoding, architecture/sampler config and noise schedule."""

    def __init__(self, net: ScoreNet, encoding: TaskEncoding, config: ModelConfig, noise: NoiseSchedule):
        if net.config.dim != encoding.dim:
            raise ValueError(f"score net width {net.config.dim} does not match the encoding dim {encoding.dim}")
        if (net.config.mask_channel != config.mask_channel or net.config.length != config.length
                or net.config.get("position_from_end", False) != config.position_from_end):
            raise ValueError(f"score net config {dict(net.config)} does not match the model config {config}")
        self.net = net.eval()
        self.encoding = encoding
        self.config = config
        self.noise = noise
        self.precision = "fp32"
        self._forward = self.net

    def set_runtime(self, precision: str = "fp32", compile: bool = False) -> "WorldModel":
        """How the net runs when sampling: ``precision="bf16"`` autocasts its matmuls to bfloat16 (weights
        stay fp32, outputs are cast back); ``compile=True`` runs it through ``torch.compile`` (graphs are
        captured on the first call of each input shape, so the first decisions are slow)."""
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        self.precision = precision
        self._forward = torch.compile(self.net, dynamic=False) if compile else self.net
        return self

    def run_net(self, x: torch.Tensor, t: torch.Tensor | int, mask: torch.Tensor | None) -> torch.Tensor:
        """The raw net output for (B, T, D) windows, in the runtime set by ``set_runtime``."""
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"):
            return self._forward(x, t, mask).float()

    @property
    def length(self) -> int:
        return self.config.length

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def to(self, device: str | torch.device) -> "WorldModel":
        self.net.to(device)
        return self

    # ---- sampling -------------------------------------------------------------------------
    def denoise(self, x: torch.Tensor, t: torch.Tensor | int, mask: torch.Tensor | None) -> torch.Tensor:
        """The net's prediction (noise, v or x̂0, per ``noise.prediction_type``) for noisy windows (B, T, D)."""
        output = self.run_net(x, t, mask)
        return predicted_x0(self.encoding, output) if self.noise.prediction_type == "sample" else output

    def _scheduler_kwargs(self) -> dict:
        return dict(num_train_timesteps=self.noise.num_train_timesteps, beta_schedule=self.noise.beta_schedule,
                    clip_sample=self.noise.clip_sample)

    @torch.no_grad()
    def inpaint(self, known: Any, mask: Any, n_samples: int, steps: int | None = None, mode: str | None = None,
                generator: torch.Generator | None = None, shared_noise: bool = False, order: str | None = None,
                draw: bool | None = None, return_probs: bool = False) -> Any:
        """Samples of whole windows given the entries of ``known`` where ``mask`` is set.

        ``known`` (B, T, D) float, ``mask`` (B, T, D) bool -> (B, n_samples, T, D), equal to ``known``
        exactly where ``mask`` is set. All B x n_samples windows go through the net as one batch per
        denoising step. ``mode`` (default: the model's) is "masked" (DDIM with ``steps`` steps, known
        entries clamped to their clean values and given as the mask channel; needs a model trained in
        masked mode) or "repaint" (RePaint jumps over ``steps`` steps; a masked-mode model is run with an
        empty mask, i.e. unconditionally, as it was also trained). ``shared_noise=True``: every random
        draw has shape (n_samples, T, D) and is repeated over B (common random numbers). ``order`` and
        ``draw`` (default: the model's) are the masked sampler's ``ModelConfig.order`` and ``ModelConfig.draw``.

        ``return_probs=True`` (masked mode, x0 prediction) also returns, in the samples' shape, the
        predictive distribution behind each sample: every unknown categorical block holds the softmax
        of the net's last pass over it (known blocks their one-hot as 0/1, continuous entries the
        samples), so an estimate can average probabilities instead of counting draws (Rao-Blackwell).
        """
        mode = mode or self.config.mode
        steps = steps or self.config.steps
        order = order or self.config.order
        draw = self.config.draw if draw is None else draw
        if order not in ORDERS:
            raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if mode == "masked" and not self.config.mask_channel:
            raise ValueError("mode='masked' needs a model trained with the mask channel (ModelConfig.mode='masked')")
        if n_samples < 1:
            raise ValueError(f"n_samples must be >= 1, got {n_samples}")
        if return_probs and (mode != "masked" or self.noise.prediction_type != "sample"):
            raise ValueError("return_probs needs mode 'masked' and a model predicting x0 (prediction_type 'sample')")
        known = torch.as_tensor(known, dtype=torch.float32, device=self.device)
        mask = torch.as_tensor(mask, dtype=torch.bool, device=self.device)
        batch, length, dim = known.shape
        if mask.shape != known.shape or dim != self.encoding.dim or length > self.length:
            raise ValueError(f"known and mask must both be (B, T<={self.length}, {self.encoding.dim}); "
                             f"got {tuple(known.shape)} and {tuple(mask.shape)}")
        flat_known = repeat(known, "b t d -> (b n) t d", n=n_samples)
        flat_mask = repeat(mask, "b t d -> (b n) t d", n=n_samples)
        noise = NoiseSource(batch, n_samples, (length, dim), shared_noise, generator, self.device, known.dtype)
        probs = None
        if mode == "masked" and order == "sequential":
            x, probs = self._sample_sequential(flat_known, flat_mask, steps, noise, draw)
        elif mode == "masked":
            x, probs = self._sample_masked(flat_known, flat_mask, steps, noise, draw)
        else:
            x = self._sample_repaint(flat_known, flat_mask, steps, noise)
        x = rearrange(torch.where(flat_mask, flat_known, x), "(b n) t d -> b n t d", b=batch)
        if not return_probs:
            return x
        known_probs = flat_known.clone()
        for group in self.encoding.categorical_groups:  # a known block's ±1 one-hot as 0/1 (absent: all 0)
            index = torch.as_tensor(group, device=flat_known.device)
            known_probs[..., index] = (flat_known[..., index] + 1) / 2
        probs = torch.where(flat_mask, known_probs, probs)
        return x, rearrange(probs, "(b n) t d -> b n t d", b=batch)

    def _sample_masked(self, known: torch.Tensor, mask: torch.Tensor, steps: int, noise: NoiseSource,
                       draw: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """DDIM from pure noise with the known entries clamped; with ``draw`` the last step's categorical
        blocks are drawn from the net's softmax instead of taking its mean (whose argmax is the mode).
        → (samples, ``categorical_probabilities`` of the last step, None unless x0 is predicted)."""
        scheduler = DDIMScheduler(**self._scheduler_kwargs(), prediction_type=self.noise.prediction_type,
                                  timestep_spacing="trailing", set_alpha_to_one=True)
        scheduler.set_timesteps(steps, device=self.device)
        x = noise()[:, :known.shape[1]]
        for t in scheduler.timesteps:
            x = torch.where(mask, known, x)
            logits = self.run_net(x, t, mask)
            output = predicted_x0(self.encoding, logits) if self.noise.prediction_type == "sample" else logits
            x = scheduler.step(output, t, x, eta=0.0).prev_sample
        if self.noise.prediction_type != "sample":
            return x, None
        if draw:
            x = draw_categorical(self.encoding, logits, x, noise()[:, :known.shape[1]])
        return x, categorical_probabilities(self.encoding, logits, x)

    def _sample_sequential(self, known: torch.Tensor, mask: torch.Tensor, steps: int, noise: NoiseSource,
                           draw: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One ``_sample_masked`` pass per predicted step (``prediction_stages``), in time order, each on
        the window up to that step (as ``train.scored_future`` trains it): a pass fixes its step's
        observation as known for the next, so far steps are predicted from sampled near ones, as the
        environment would produce them. Hidden states stay unknown, as in training's planning windows;
        each step keeps those of the pass that predicted it. A categorical observation is fixed as the
        one-hot it decodes to, a value training windows hold. → (samples, probabilities as
        ``_sample_masked`` gives them, each step's from the pass that predicted it)."""
        obs = self.encoding.slice("obs")
        known, mask = known.clone(), mask.clone()
        probs = known.clone()
        done = 0
        for stage in prediction_stages(mask, obs):
            x, stage_probs = self._sample_masked(known[:, :stage + 1], mask[:, :stage + 1], steps, noise, draw)
            x = torch.where(mask[:, :stage + 1], known[:, :stage + 1],
                            x if draw else argmax_categorical(self.encoding, x))
            known[:, done:stage + 1] = x[:, done:]
            if stage_probs is not None:
                probs[:, done:stage + 1] = stage_probs[:, done:]
            mask[:, :stage + 1, obs] = True
            done = stage + 1
        return known, probs if stage_probs is not None else None

    def _sample_repaint(self, known: torch.Tensor, mask: torch.Tensor, steps: int, noise: NoiseSource) -> torch.Tensor:
        # RePaintScheduler gives the jump schedule and ᾱ; the step itself is repaint_step() so that the
        # noise can be shared across candidates (the scheduler draws its own noise per batch element).
        scheduler = RePaintScheduler(**self._scheduler_kwargs())
        scheduler.set_timesteps(steps, jump_length=self.config.jump_length,
                                jump_n_sample=self.config.jump_n_sample)
        scheduler.alphas_cumprod = scheduler.alphas_cumprod.to(self.device)
        stride = self.noise.num_train_timesteps // scheduler.num_inference_steps
        empty_mask = torch.zeros_like(mask) if self.config.mask_channel else None
        x = noise()
        t_last = int(scheduler.timesteps[0]) + 1
        for t in (int(t) for t in scheduler.timesteps):
            if t < t_last:  # reverse step: level t -> t - stride
                alpha_bar, alpha_bar_prev = _alpha_bar(scheduler, t), _alpha_bar(scheduler, t - stride)
                if self.config.guidance > 0:
                    x0 = self.reconstruction_guided_x0(x, t, known, mask, alpha_bar, empty_mask)
                    eps = epsilon_from_output(x0, x, alpha_bar, "sample")
                else:
                    output = self.denoise(x, t, empty_mask)
                    eps = epsilon_from_output(output, x, alpha_bar, self.noise.prediction_type)
                x = repaint_step(x, eps, known, mask, noise(), noise(), alpha_bar, alpha_bar_prev,
                                 self.config.eta, self.noise.clip_sample)
            else:  # resampling jump: back up from level t_last - stride to t - stride = t_last
                x = renoise(x, _alpha_bar(scheduler, t_last - stride), _alpha_bar(scheduler, t_last), noise())
            t_last = t
        return x

    def reconstruction_error(self, output: torch.Tensor, x0: torch.Tensor, known: torch.Tensor,
                             mask: torch.Tensor) -> torch.Tensor:
        """How badly the net's estimate reconstructs the known entries, summed over the batch.

        With ``prediction_type="sample"`` a categorical part's output are logits: the error of a known,
        present step is the cross-entropy ``-log softmax(logits)[known index]`` (whose gradient does not
        vanish when the softmax saturates, unlike the squared error of ``2 softmax - 1``); absent steps
        (all -1) are left out, as in training: no softmax reconstructs them, so their error would only
        push the unknown part off. Everything else (continuous parts, other prediction types) counts by
        the squared error of x̂0.
        """
        error = x0.new_zeros(())
        squared = torch.ones_like(mask)
        if self.noise.prediction_type == "sample":
            error, _ = categorical_cross_entropy(self.encoding, output, known, mask)
            for group in self.encoding.categorical_groups:
                squared[..., torch.as_tensor(group.ravel(), device=mask.device)] = False
        return error + ((x0 - known) ** 2 * (mask & squared)).sum()

    def reconstruction_guided_x0(self, x: torch.Tensor, t: int, known: torch.Tensor, mask: torch.Tensor,
                                 alpha_bar: torch.Tensor, net_mask: torch.Tensor | None) -> torch.Tensor:
        """The x0 estimate with reconstruction guidance (Ho et al. 2022, "Video Diffusion Models", eq. 7).

        ``x̃0 = x̂0 - (w sqrt(ᾱ) / 2) ∇_{x_t} E(x̂0(x_t), known)`` on the unknown entries, E the
        ``reconstruction_error`` (known entries keep x̂0: RePaint replaces them anyway). Replacement alone
        lets the unknown part hear about the known part only through the noised copy the net sees, so it
        drifts off the condition (measured: 1-step accuracy ~0.5-0.8 on grid4x4 whatever the resampling);
        the gradient of how badly the net's own x̂0 reconstructs the known values pulls the unknown part
        towards what agrees with them. Costs one backward pass through the net per step.
        """
        with torch.enable_grad():
            x_in = x.detach().requires_grad_(True)
            output = self.run_net(x_in, t, net_mask)
            x0 = (predicted_x0(self.encoding, output) if self.noise.prediction_type == "sample"
                  else x0_from_output(output, x_in, alpha_bar, self.noise.prediction_type))
            (grad,) = torch.autograd.grad(self.reconstruction_error(output, x0, known, mask), x_in)
        x0 = x0.detach() - (self.config.guidance * alpha_bar.sqrt() / 2) * torch.where(mask, 0.0, grad)
        return x0.clamp(-1, 1) if self.noise.clip_sample else x0

    # ---- persistence ----------------------------------------------------------------------
    def save(self, directory: str | Path) -> None:
        """Write ``score_net/`` (safetensors + config.json) and ``world_model.json`` into a temporary
        folder beside ``directory``, then swap it in (``_swap_in``): a crash at any moment leaves a
        complete model that ``load`` reads. Temporaries of earlier interrupted saves are removed."""
        directory = Path(directory)
        directory.parent.mkdir(parents=True, exist_ok=True)
        for stale in directory.parent.glob(f".{directory.name}.tmp*"):
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}.tmp"))
        try:
            os.chmod(tmp, normal_mode(directory=True))
            self.net.save_pretrained(tmp / NET_DIR, safe_serialization=True)
            meta = {"encoding": self.encoding.to_dict(), "config": asdict(self.config), "noise": asdict(self.noise)}
            atomic_write_text(tmp / WORLD_MODEL_FILE, json.dumps(meta, indent=2))
            _swap_in(tmp, directory)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    @classmethod
    def load(cls, directory: str | Path, device: str | torch.device = "cpu") -> "WorldModel":
        """Read a directory written by ``save`` (or, when a save was interrupted between its renames, the
        previous complete copy beside it); a missing, corrupt or mismatched file is an error naming it."""
        directory = _complete_copy(Path(directory))
        meta_path = directory / WORLD_MODEL_FILE
        if not meta_path.is_file():
            raise FileNotFoundError(f"no world model at {directory}: {meta_path} is missing")
        try:
            meta = json.loads(meta_path.read_text())
            encoding = TaskEncoding.from_dict(meta["encoding"])
            config = ModelConfig(**{**LEGACY_SAMPLER, **meta["config"]})
            noise = NoiseSchedule(**meta["noise"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
            raise ValueError(f"world model file {meta_path} is corrupt: {err}") from None
        net_path = directory / NET_DIR
        missing = [name for name in NET_FILES if not (net_path / name).is_file()]
        if missing:
            raise FileNotFoundError(f"score net folder {net_path} lacks {', '.join(missing)}")
        try:  # local_files_only: a local folder must never turn into a model-hub download
            net = ScoreNet.from_pretrained(net_path, local_files_only=True)
        except Exception as err:  # diffusers/safetensors raise many types for a bad file; name the file
            raise ValueError(f"score net checkpoint {net_path} could not be loaded: {err}") from None
        try:
            return cls(net, encoding, config, noise).to(device)
        except ValueError as err:
            raise ValueError(f"checkpoint {directory} is inconsistent: {err}") from None


def remove_saved(directory: str | Path) -> None:
    """Delete a model written by ``save``, with any previous copy or temporary an interrupted save left."""
    directory = Path(directory)
    for path in (directory, _previous_copy(directory), *directory.parent.glob(f".{directory.name}.tmp*")):
        shutil.rmtree(path, ignore_errors=True)


def _previous_copy(directory: Path) -> Path:
    """Where ``save`` keeps the previous complete model while it swaps a new one in."""
    return directory.with_name(f".{directory.name}.old")


def _swap_in(new: Path, directory: Path) -> None:
    """Rename the complete folder ``new`` onto ``directory``, keeping this invariant at every moment:
    ``directory`` is a complete model, or it is absent and ``_previous_copy(directory)`` is one."""
    previous = _previous_copy(directory)
    if directory.exists():
        shutil.rmtree(previous, ignore_errors=True)  # stale: directory itself is complete
        os.replace(directory, previous)
    os.replace(new, directory)
    shutil.rmtree(previous, ignore_errors=True)


def _complete_copy(directory: Path) -> Path:
    """``directory``, or its previous complete copy when a save was interrupted between its renames."""
    previous = _previous_copy(directory)
    if not directory.exists() and (previous / WORLD_MODEL_FILE).is_file():
        return previous
    return directory


def _blank(encoding: TaskEncoding, part: str, batch: int, length: int) -> np.ndarray:
    """Absent values for one part of (batch, length) steps: -1 indices (vectors of them for a factored
    part) or NaN vectors."""
    spec = encoding.parts[part]
    if spec.kind == "categorical":
        factors = () if spec.factors is None else (len(spec.factors),)
        return np.full((batch, length, *factors), -1, dtype=np.int64)
    return np.full((batch, length, spec.size), np.nan)


def known_window(encoding: TaskEncoding, length: int, context: int, observations: Any, past_actions: Any,
                 policy: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """The (known, mask) pair for planning: history right-aligned before the present step c = ``context``.

    ``observations`` (B, k) (or (B, k, d) continuous): o_{t-k+1} .. o_t, the last one the present;
    ``past_actions`` (B, k-1): a_{t-k+1} .. a_{t-1}; ``policy`` (B, h): a_t .. a_{t+h-1}, h <= length - c.
    k <= c + 1; when k < c + 1 the episode started k steps ago and the window indices before it are
    known *absent* tokens (as in training windows). Hidden states and future observations are unknown.
    Returns known (B, length, dim) float32 and mask (B, length, dim) bool.
    """
    observations, past_actions, policy = np.asarray(observations), np.asarray(past_actions), np.asarray(policy)
    batch, k = observations.shape[:2]
    horizon = policy.shape[1]
    if not 1 <= k <= context + 1:
        raise ValueError(f"need 1..{context + 1} observations (context {context}), got {k}")
    if past_actions.shape[:2] != (batch, k - 1):
        raise ValueError(f"past_actions must be (B={batch}, k-1={k - 1}), got {past_actions.shape}")
    if policy.shape[0] != batch or context + horizon > length:
        raise ValueError(f"policy must be (B={batch}, h<={length - context}), got {policy.shape}")
    first = context - k + 1  # window index of the oldest known observation
    values = {part: _blank(encoding, part, batch, length) for part in encoding.parts}
    values["obs"][:, first:context + 1] = observations
    values["action"][:, first:context] = past_actions
    values["action"][:, context:context + horizon] = policy
    steps_known = {part: np.zeros((batch, length), dtype=bool) for part in values}
    steps_known["obs"][:, first:context + 1] = True
    steps_known["action"][:, first:context + horizon] = True
    for part in steps_known:
        steps_known[part][:, :first] = True  # absent tokens before the episode start
    known = encoding.encode(values.get("state"), values["obs"], values["action"])
    mask = np.zeros(known.shape, dtype=bool)
    for part, rows in steps_known.items():
        mask[..., encoding.slice(part)] = rows[..., None]
    return torch.from_numpy(known), torch.from_numpy(mask)
