"""A learned expected-free-energy value for the tail of a policy beyond the planning horizon.

Rollouts cover H steps; what comes after the last predicted observation o_H is scored by a value
learned from the agent's own data set, over observations as whole vectors (categorical factors):

    T(o) = min_a Σ_{o'} p̂(o'|o, a) [ c(o') + β T(o') ],      c(o) = −log p̃(o)

the discounted cumulative risk (the extrinsic part of G) of the best continuation seen in the data,
by value iteration on the observed transitions o —a→ o', with p̂ their empirical frequencies
(exact for deterministic tasks such as MiniGrid, the maximum-likelihood model for stochastic ones
such as slippery FrozenLake). A terminated episode's final observation is absorbing (it loops to
itself, as in the world model's training windows), so T(goal) = c(goal) / (1 − β) and an outcome
k steps from it costs ≈ Σ_{t<k} β^t c + β^k T(goal). An observation with no observed successor
keeps the pessimistic bound
``max c / (1 − β)``. Observations never seen take the value of their nearest seen neighbours in
Hamming distance (mean over ties): the model's rollouts need not land exactly on seen vectors.
"""
from __future__ import annotations

import numpy as np
import torch

from diffaif.data.episodes import EpisodeData


def observed_transitions(data: EpisodeData) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The distinct observation vectors of ``data`` and the transitions between them.

    → ``nodes`` (U, F) int, ``source`` (E,) and ``target`` (E,) node indices and ``action`` (E,) the
    index of the action taken among the distinct actions: one edge per step of every episode, plus a
    self-loop at the final observation of each terminated episode (action -1: whatever is done).
    """
    obs = np.asarray(data.observations)
    if obs.ndim == 1:
        obs = obs[:, None]
    if not np.issubdtype(obs.dtype, np.integer):
        raise ValueError(f"a tail value needs categorical (integer) observations, got dtype {obs.dtype}")
    nodes, index = np.unique(obs, axis=0, return_inverse=True)
    index = index.reshape(-1)
    last = np.append(data.episode_starts[1:], data.n_steps) - 1      # each episode's final row
    steps = np.setdiff1d(np.arange(data.n_steps), last)               # rows with a successor in their episode
    absorbing = last[data.episode_terminated()]
    actions = np.asarray(data.actions).reshape(data.n_steps, -1)
    _, action = np.unique(actions[steps], axis=0, return_inverse=True)
    return (nodes, np.concatenate([index[steps], index[absorbing]]),
            np.concatenate([index[steps + 1], index[absorbing]]),
            np.concatenate([action.reshape(-1), np.full(len(absorbing), -1)]))


def tail_values(cost: torch.Tensor, source: torch.Tensor, target: torch.Tensor, discount: float,
                action: torch.Tensor | None = None, tolerance: float = 1e-6,
                max_iterations: int = 10_000) -> torch.Tensor:
    """Value iteration ``T(u) = min_a mean_{(u -a→ v)} [c(v) + β T(v)]`` from the pessimistic bound
    ``max c / (1 − β)``: the mean over the observed edges of each (node, action) pair is the backup
    under their empirical frequencies.

    cost: (U,) c ≥ 0 per node; source, target: (E,) long edges; action: (E,) long, the action of each
    edge (None: every edge is its own pair, ``T(u) = min_{(u→v)} c(v) + β T(v)``); discount β in
    [0, 1) → (U,). Nodes without an outgoing edge keep the bound. Iterates until an update changes no
    value by more than ``tolerance·(1 − β)``, which bounds the distance to the fixed point by ``tolerance``.
    """
    if not 0 <= discount < 1:
        raise ValueError(f"the tail discount must be in [0, 1), got {discount}")
    if (cost < 0).any():
        raise ValueError("tail costs −log p̃ must be >= 0")
    if action is None:
        pair, pair_node = torch.arange(len(source)), source
    else:
        pairs, pair = torch.unique(torch.stack([source, action], 1), dim=0, return_inverse=True)
        pair_node = pairs[:, 0]
    edges_per_pair = torch.zeros(len(pair_node), dtype=cost.dtype).index_add_(
        0, pair, torch.ones(len(pair), dtype=cost.dtype))
    bound = float(cost.max()) / (1 - discount)
    value = torch.full_like(cost, bound)
    for _ in range(max_iterations):
        backup = (cost[target] + discount * value[target]).to(value.dtype)
        expected = torch.zeros_like(edges_per_pair).index_add_(0, pair, backup) / edges_per_pair
        updated = value.scatter_reduce(0, pair_node, expected, reduce="amin", include_self=False)
        done = bool((updated - value).abs().max() <= tolerance * (1 - discount))
        value = updated
        if done:
            break
    return value


class TailValue:
    """``T(o)`` for observation vectors, fitted on a data set (see the module docstring)."""

    def __init__(self, log_preference, discount: float = 0.95):
        """log_preference: callable (..., F) long → (...) log p̃(o) ≤ 0 (e.g. ``VectorPreference``)."""
        self.log_preference = log_preference
        self.discount = discount
        self.nodes: torch.Tensor | None = None     # (U, F)
        self.values: torch.Tensor | None = None    # (U,)

    def fit(self, data: EpisodeData) -> "TailValue":
        nodes, source, target, action = observed_transitions(data)
        self.nodes = torch.as_tensor(nodes, dtype=torch.long)
        cost = -self.log_preference(self.nodes).double()
        self.values = tail_values(cost, torch.as_tensor(source), torch.as_tensor(target), self.discount,
                                  torch.as_tensor(action)).float()
        return self

    def __call__(self, obs: torch.Tensor) -> torch.Tensor:
        """obs (..., F) long → T (...): the value of the nearest seen vectors (mean over ties)."""
        if self.nodes is None:
            raise RuntimeError("the tail value is not fitted: call fit(data) first")
        if obs.shape[-1] != self.nodes.shape[-1]:
            raise ValueError(f"observations have {obs.shape[-1]} factors, the fitted ones {self.nodes.shape[-1]}")
        flat = obs.reshape(-1, obs.shape[-1])
        distance = (flat[:, None, :] != self.nodes[None, :, :]).sum(-1)          # (Q, U)
        nearest = (distance == distance.min(dim=1, keepdim=True).values).float()
        value = (nearest * self.values[None, :]).sum(1) / nearest.sum(1)
        return value.reshape(obs.shape[:-1])
