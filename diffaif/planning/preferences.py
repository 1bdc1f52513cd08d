"""Prior preferences ``p̃(o)`` over grid-world observations (cells), as normalised log-probabilities.

Two choices, both a softmax over per-cell logits scaled by a precision λ:

- ``sparse``: ``log p̃(o) = λ·[o = goal] − log Z``. Only the goal is preferred, as in the method
  paper; every other cell is equally (dis)preferred, so a short horizon sees no gradient towards
  the goal until the goal is within reach.
- ``shaped``: ``log p̃(o) = −λ·d(o, goal) − log Z`` with d the BFS shortest-path length. Every step
  closer is preferred, so even a one-step horizon points the way. Cells with no path to the goal
  (walls, enclosed cells) get the least preferred finite logit, ``−λ·max d``, rather than ``−inf``,
  so the risk stays finite if the model ever predicts them.

λ = 0 gives uniform preferences (pure epistemic behaviour).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from diffaif.envs.grid import GridWorld

PREFERENCE_KINDS = ("sparse", "shaped")


def normalise_log_preference(logits: torch.Tensor) -> torch.Tensor:
    """``log p̃(o) = ℓ(o) − log Σ_o' exp ℓ(o')`` over the last dim."""
    return logits - torch.logsumexp(logits, dim=-1, keepdim=True)


def grid_log_preferences(env, kind: str = "sparse", precision: float = 1.0,
                         dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Normalised ``log p̃(o)`` over the cells of a grid world, shape (n_cells,).

    env: a ``GridWorld`` or a gymnasium wrapper around one; kind: ``"sparse"`` or ``"shaped"``
    (see the module docstring); precision λ ≥ 0 scales the logits.
    """
    if kind not in PREFERENCE_KINDS:
        raise ValueError(f"unknown preference kind {kind!r}; valid kinds: {list(PREFERENCE_KINDS)}")
    if precision < 0:
        raise ValueError(f"precision must be >= 0, got {precision}")
    grid = getattr(env, "unwrapped", env)
    if not isinstance(grid, GridWorld):
        raise ValueError(f"grid_log_preferences needs a GridWorld environment, got {type(grid).__name__}")
    if kind == "sparse":
        logits = np.zeros(grid.n_cells)
        logits[grid.goal] = precision
    else:
        distance = grid.distances()
        reachable = np.isfinite(distance)
        logits = np.where(reachable, -precision * np.where(reachable, distance, 0.0),
                          -precision * distance[reachable].max())
    return normalise_log_preference(torch.as_tensor(logits, dtype=torch.float64)).to(dtype)


def outcome_log_preferences(names: Sequence[str], preferred: Sequence[str], avoided: Sequence[str] = (),
                            precision: float = 1.0, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Normalised ``log p̃(o)`` over named outcomes: logit ``+λ`` for preferred names, ``−λ`` for avoided
    ones, 0 for the rest (MiniGrid's floor tile: prefer "goal", avoid "lava"). → (len(names),)."""
    unknown = sorted((set(preferred) | set(avoided)) - set(names))
    if unknown:
        raise ValueError(f"unknown outcome names {unknown}; valid names: {list(names)}")
    if precision < 0:
        raise ValueError(f"precision must be >= 0, got {precision}")
    logits = torch.tensor([precision * ((n in preferred) - (n in avoided)) for n in names], dtype=torch.float64)
    return normalise_log_preference(logits).to(dtype)


@dataclass(frozen=True)
class VectorPreference:
    """``log p̃(o)`` of an observation vector o (factored categories), up to a constant:

        log p̃(o) = ℓ(o_f) − λ_d · (|o_x − o_gx| + |o_y − o_gy|)

    ℓ a normalised log-preference over the values of one factor f (MiniGrid: the tile under the
    agent), and optionally a shaping term, the L1 distance between two observed positions (agent and
    goal, when the observation holds them) with precision λ_d (0: no shaping, the sparse preference).
    """

    factor: int
    log_p: torch.Tensor                             # (K_f,)
    positions: tuple[int, int, int, int] | None = None   # factors (x, y, goal x, goal y)
    distance_precision: float = 0.0

    def __post_init__(self):
        if self.distance_precision < 0:
            raise ValueError(f"distance_precision must be >= 0, got {self.distance_precision}")
        if self.distance_precision > 0 and self.positions is None:
            raise ValueError("a distance_precision > 0 needs the factors of the positions")

    @property
    def goal(self) -> int:
        """The most preferred value of the preference factor."""
        return int(self.log_p.argmax())

    def __call__(self, obs: torch.Tensor) -> torch.Tensor:
        """obs (..., F) long → log p̃ (...) float."""
        value = self.log_p[obs[..., self.factor]]
        if self.distance_precision > 0:
            x, y, gx, gy = (obs[..., i] for i in self.positions)
            value = value - self.distance_precision * ((x - gx).abs() + (y - gy).abs()).to(value.dtype)
        return value
