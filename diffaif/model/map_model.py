"""A masked (absorbing-state) discrete diffusion model of maps: it inpaints the unknown cells of a map.

The denoiser ``MapDenoiser`` is fully convolutional, so one model serves maps of any size and is
indifferent to where in the map a pattern lies. Training (``train_map_model``) follows MaskGIT /
aMUSEd: a mask ratio ``r = cos(π u / 2)``, ``u ~ U(0, 1)``, hides that share of the known cells of a
random crop (rotated and mirrored at random: map cells have no orientation), and the loss is the
cross-entropy of the hidden known cells; cells never seen are inputs as the mask token and carry no
loss, so the model learns from the agent's own partial maps. Sampling (``MapInpainter.inpaint``) is
diffusers' ``AmusedScheduler``: each step draws every masked cell from the net's softmax and masks
again the least confident share of the cosine schedule, starting from the unknown cells' share.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from diffusers import AmusedScheduler
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from einops import rearrange
from torch import nn


class MapDenoiser(ModelMixin, ConfigMixin):
    """Logits of every cell's code from a map with masked cells: (B, H, W) long → (B, n_codes, H, W).

    Token ``n_codes`` is the mask. Embedding, then ``depth`` residual blocks of a dilated 3x3
    convolution (dilations cycle through ``dilations``: a receptive field across a room) and a 1x1
    convolution, group-normalised; a 1x1 output convolution.
    """

    @register_to_config
    def __init__(self, n_codes: int, width: int = 32, depth: int = 6, dilations: tuple[int, ...] = (1, 2, 4)):
        super().__init__()
        self.embed = nn.Embedding(n_codes + 1, width)
        self.blocks = nn.ModuleList(nn.Sequential(
            nn.GroupNorm(4, width), nn.GELU(),
            nn.Conv2d(width, width, 3, padding=dilations[i % len(dilations)], dilation=dilations[i % len(dilations)]),
            nn.GELU(), nn.Conv2d(width, width, 1)) for i in range(depth))
        self.output = nn.Conv2d(width, n_codes, 1)

    @property
    def mask_token(self) -> int:
        return self.config.n_codes

    def forward(self, cells: torch.Tensor) -> torch.Tensor:
        h = rearrange(self.embed(cells), "b h w c -> b c h w")
        for block in self.blocks:
            h = h + block(h)
        return self.output(h)


@dataclass
class MapModelConfig:
    """The denoiser's size and its training budget (``train_map_model``)."""

    width: int = 32
    depth: int = 6
    steps: int = 1500
    batch_size: int = 32
    crop: int = 15              # training crops are crop x crop cells
    lr: float = 2e-3
    seed: int = 0

    def __post_init__(self):
        for name in ("width", "depth", "steps", "batch_size", "crop"):
            if getattr(self, name) < 1:
                raise ValueError(f"MapModelConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.width % 4:
            raise ValueError(f"MapModelConfig.width must be a multiple of 4 (group norm), got {self.width}")


def masked_cell_loss(logits: torch.Tensor, target: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy ``−log p(target)`` over the hidden cells: logits (B, C, H, W), target and hidden (B, H, W)."""
    ce = nn.functional.cross_entropy(logits, target.clamp_max(logits.shape[1] - 1), reduction="none")
    return (ce * hidden).sum() / hidden.sum().clamp_min(1)


def training_batch(maps: list[np.ndarray], unknown: int, config: MapModelConfig,
                   rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random crops of the maps (rotated and mirrored at random), with ``unknown`` where outside a map.

    → cells (B, crop, crop) long and known (B, crop, crop) bool.
    """
    c = config.crop
    batch = np.full((config.batch_size, c, c), unknown, dtype=np.int64)
    for b in range(config.batch_size):
        cells = maps[int(rng.integers(len(maps)))]
        cells = np.rot90(cells, int(rng.integers(4)))
        cells = cells[:, ::-1] if rng.random() < 0.5 else cells
        y0 = int(rng.integers(-c // 2, max(cells.shape[0] - c // 2, 1)))
        x0 = int(rng.integers(-c // 2, max(cells.shape[1] - c // 2, 1)))
        src = cells[max(y0, 0): y0 + c, max(x0, 0): x0 + c]
        batch[b, max(-y0, 0): max(-y0, 0) + src.shape[0], max(-x0, 0): max(-x0, 0) + src.shape[1]] = src
    cells = torch.from_numpy(batch)
    return cells, cells != unknown


def train_map_model(maps: list[np.ndarray], n_codes: int, unknown: int, config: MapModelConfig,
                    max_seconds: float = float("inf")) -> tuple["MapInpainter", dict]:
    """Train a ``MapDenoiser`` on partial maps (cell codes, ``unknown`` where never seen).

    Returns the inpainter and a log (steps, seconds, final loss).
    """
    if not maps:
        raise ValueError("train_map_model needs at least one map")
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    net = MapDenoiser(n_codes, config.width, config.depth)
    optimizer = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, config.lr, total_steps=config.steps, pct_start=0.1)
    start, losses = time.perf_counter(), []
    for step in range(config.steps):
        cells, known = training_batch(maps, unknown, config, rng)
        cells = torch.where(known, cells, torch.full_like(cells, net.mask_token))
        ratio = torch.cos(math.pi / 2 * torch.rand(cells.shape[0], 1, 1))
        hidden = known & (torch.rand(cells.shape) < ratio)
        logits = net(torch.where(hidden, torch.full_like(cells, net.mask_token), cells))
        loss = masked_cell_loss(logits, cells, hidden)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
        if time.perf_counter() - start > max_seconds:
            break
    net.eval()
    log = {"steps": len(losses), "seconds": time.perf_counter() - start,
           "loss": float(np.mean(losses[-50:])), "config": asdict(config)}
    return MapInpainter(net, unknown), log


class MapInpainter:
    """Marginals and joint samples of a map's unknown cells from a trained ``MapDenoiser``."""

    def __init__(self, net: MapDenoiser, unknown: int):
        self.net = net
        self.unknown = unknown
        self.scheduler = AmusedScheduler(mask_token_id=net.mask_token)

    @torch.no_grad()
    def marginals(self, cells: np.ndarray) -> np.ndarray:
        """p(code) of every cell given the known ones, from one pass: (H, W) → (H, W, n_codes); known
        cells are one-hot."""
        x = torch.from_numpy(cells)[None]
        x = torch.where(x == self.unknown, torch.full_like(x, self.net.mask_token), x)
        probs = rearrange(self.net(x).softmax(1)[0], "c h w -> h w c").numpy()
        known = cells != self.unknown
        probs[known] = np.eye(probs.shape[-1])[cells[known]]
        return probs

    @torch.no_grad()
    def inpaint(self, cells: np.ndarray, n_samples: int, steps: int, generator: torch.Generator) -> np.ndarray:
        """``n_samples`` completions of the unknown cells: (H, W) → (n_samples, H, W), known cells kept."""
        x = torch.from_numpy(cells).expand(n_samples, *cells.shape).clone()
        unknown = x == self.unknown
        share = float(unknown.float().mean())
        if share == 0:
            return x.numpy()
        x[unknown] = self.net.mask_token
        self.scheduler.set_timesteps(steps)
        for t in self.scheduler.timesteps:
            logits = self.net(x)
            x = self.scheduler.step(logits, t, x, starting_mask_ratio=share, generator=generator).prev_sample
            x = x.reshape(n_samples, *cells.shape)
        return x.numpy()

    def save(self, directory: str | Path) -> None:
        self.net.save_pretrained(str(directory))

    @classmethod
    def load(cls, directory: str | Path, unknown: int) -> "MapInpainter":
        net = MapDenoiser.from_pretrained(str(directory))
        net.eval()
        return cls(net, unknown)


__all__ = ["MapDenoiser", "MapInpainter", "MapModelConfig", "masked_cell_loss", "train_map_model", "training_batch"]
