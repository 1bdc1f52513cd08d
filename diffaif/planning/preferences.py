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
