"""Grid worlds (``GridWorld``): categorical cells as state and observation, ``EFEPlanner`` with the
model's cached likelihood, and a preference over the observed cell, a softmax over per-cell logits
scaled by a precision λ:

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

import gymnasium as gym
import numpy as np
import torch

from diffaif.data.encoding import grid_encoding
from diffaif.envs.grid import GridWorld
from diffaif.planning.planner import EFEPlanner, PlannerConfig
from diffaif.planning.preferences import PREFERENCE_KINDS, normalise_log_preference
from diffaif.tasks.base import TaskPlanning, no_tail_value


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


def grid_planning(env: gym.Env, config: PlannerConfig) -> TaskPlanning | None:
    """Grid worlds: categorical cells; sparse or shaped preferences over the observed cell."""
    task = env.unwrapped
    if not isinstance(task, GridWorld) or config.preference == "reward":   # "reward": the generic family's
        return None
    no_tail_value(config, "grid worlds")
    log_preference = grid_log_preferences(task, config.preference, config.preference_precision)
    return TaskPlanning(lambda data: grid_encoding(task),
                        lambda model, seed: EFEPlanner(model, log_preference, config, seed=seed), config)
