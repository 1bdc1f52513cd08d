"""Directed exploration: act to learn the transitions, by the expected information gain about them.

The parameter information gain (novelty) of trying action a after observation o, under a Dirichlet
posterior over the successor o' with concentrations α (pseudo counts plus the observed counts), is
``E_{o'}[KL(Dir(α + e_{o'}) ‖ Dir(α))] ≈ (K − 1) / (2 α₀)`` (α₀ = Σ α; pymdp's novelty term). With K = 2
outcomes, a pseudo count ½ each and N trials of the pair this is

    ν(o, a) = 1 / (2 (N(o, a) + 1)).

Exploration plans for the novelty of a whole episode, not one step: value iteration over the
observed transitions (empirical frequencies p̂(o'|o, a)),

    Q(o, a) = ν(o, a) + β Σ_{o'} p̂(o'|o, a) V(o'),    V(o) = max_a Q(o, a),

with a pair never tried taking the optimistic bound ``ν(·, 0) / (1 − β)`` and a terminated episode's
final observation the mean value of the episodes' first observations (the next episode starts there).
This is count-based exploration as in model-based interval estimation (Strehl & Littman 2008) with
active inference's novelty as the bonus: the agent goes where its data are thin rather than where a
random walk happens to go, so the cells far from the start get tried as often as those near it.
"""
from __future__ import annotations

import numpy as np


def novelty(trials: np.ndarray) -> np.ndarray:
    """``ν = 1 / (2 (N + 1))``, the expected information gain about a pair's successor distribution from
    one more trial (module docstring). trials: (...) counts N ≥ 0 → (...) float."""
    trials = np.asarray(trials, dtype=np.float64)
    if (trials < 0).any():
        raise ValueError("trial counts must be >= 0")
    return 0.5 / (trials + 1.0)


def arrival_values(values: np.ndarray, terminal: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """What arriving at each node is worth: its value, or, where an episode terminated, the mean value of
    the episodes' first nodes (the next episode starts there). (U,), (U,) bool, (S,) → (U,)."""
    restart = values[starts].mean() if len(starts) else 0.0
    return np.where(terminal, restart, values)


def novelty_backup(trials: np.ndarray, source: np.ndarray, action: np.ndarray, target: np.ndarray,
                   count: np.ndarray, arrive: np.ndarray, discount: float) -> np.ndarray:
    """``Q(o, a) = ν(o, a) + β Σ_{o'} p̂(o'|o, a) arrive(o')`` for the rows of ``trials`` (R, A); the edges'
    ``source`` index those rows, ``target`` the entries of ``arrive``; untried pairs get the bound
    ``ν(0) / (1 − β)``. → (R, A)."""
    rows, n_actions = trials.shape
    share = count / np.maximum(trials[source, action], 1)                # p̂(o'|o, a) per edge
    expected = np.bincount(source * n_actions + action, share * arrive[target], minlength=rows * n_actions)
    bound = float(novelty(0)) / (1 - discount)
    return np.where(trials > 0, novelty(trials) + discount * expected.reshape(rows, n_actions), bound)


def exploration_values(trials: np.ndarray, source: np.ndarray, action: np.ndarray, target: np.ndarray,
                       count: np.ndarray, terminal: np.ndarray, starts: np.ndarray, discount: float,
                       values: np.ndarray | None = None, sweeps: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Value iteration of the novelty over the observed transitions (module docstring).

    trials: (U, A) trials per (node, action); source, action, target, count: (E,) the distinct observed
    transitions and how often each was seen; terminal: (U,) bool, nodes where an episode terminated;
    starts: (S,) nodes where episodes started; discount β in [0, 1); ``values`` (U,) a warm start (the
    previous call's V), else the optimistic bound; ``sweeps`` Bellman updates.
    → Q (U, A) and V (U,).
    """
    if not 0 <= discount < 1:
        raise ValueError(f"the exploration discount must be in [0, 1), got {discount}")
    value = (np.full(len(trials), float(novelty(0)) / (1 - discount)) if values is None
             else np.asarray(values, dtype=np.float64))
    for _ in range(sweeps):
        q = novelty_backup(trials, source, action, target, count, arrival_values(value, terminal, starts), discount)
        value = q.max(axis=1)
    return q, value


class DirectedExploration:
    """A behaviour policy for collecting data: in each observation, the action of highest exploration
    value Q (``exploration_values``, ties broken at random). Every ``every`` decisions the values get
    ``sweeps`` Bellman updates over all observed transitions from their previous values; in between,
    the present observation's Q is backed up from them alone (its own counts are always current).

    Observations are categorical vectors (ints), compared whole; actions are indices 0..n_actions−1.
    """

    def __init__(self, n_actions: int, discount: float = 0.95, sweeps: int = 20, every: int = 10, seed: int = 0):
        if n_actions < 1 or sweeps < 1 or every < 1:
            raise ValueError(f"n_actions, sweeps and every must be >= 1, got {n_actions}, {sweeps}, {every}")
        self.n_actions, self.discount, self.sweeps, self.every = n_actions, discount, sweeps, every
        self._decisions = 0
        self.rng = np.random.default_rng(seed)
        self._nodes: dict[bytes, int] = {}                    # observation → node
        self._edges: dict[tuple[int, int, int], int] = {}     # (u, a, v) → row of _transitions
        self._leaving: dict[int, list[int]] = {}              # u → its rows of _transitions
        # growing arrays, the first len(_nodes) / len(_edges) rows in use
        self._trials = np.zeros((16, n_actions))
        self._terminal = np.zeros(16, dtype=bool)
        self._values = np.zeros(16)
        self._transitions = np.zeros((16, 4), dtype=np.int64)  # rows [u, a, v, count]
        self._starts: set[int] = set()

    def _node(self, observation) -> int:
        obs = np.asarray(observation)
        if not np.issubdtype(obs.dtype, np.integer):
            raise ValueError(f"directed exploration needs categorical (integer) observations, got dtype {obs.dtype}")
        key = obs.astype(np.int64).tobytes()
        if key not in self._nodes:
            u = self._nodes[key] = len(self._nodes)
            if u == len(self._values):
                self._trials, self._terminal, self._values = (np.concatenate([x, np.zeros_like(x)])
                                                              for x in (self._trials, self._terminal, self._values))
            self._values[u] = float(novelty(0)) / (1 - self.discount)   # the optimistic bound
        return self._nodes[key]

    def start(self, observation) -> None:
        """An episode begins at ``observation``."""
        self._starts.add(self._node(observation))

    def record(self, observation, action: int, next_observation, terminated: bool) -> None:
        """The transition ``observation —action→ next_observation``."""
        u, v, a = self._node(observation), self._node(next_observation), int(action)
        self._trials[u, a] += 1
        row = self._edges.setdefault((u, a, v), len(self._edges))
        if row == len(self._transitions):
            self._transitions = np.concatenate([self._transitions, np.zeros_like(self._transitions)])
        if self._transitions[row, 3] == 0:   # a transition not seen before
            self._transitions[row, :3] = u, a, v
            self._leaving.setdefault(u, []).append(row)
        self._transitions[row, 3] += 1
        self._terminal[v] |= bool(terminated)

    def act(self, observation) -> int:
        """The most informative action after ``observation``, looking ahead over the episode."""
        u, nodes = self._node(observation), len(self._nodes)
        starts = np.fromiter(self._starts, dtype=np.int64)
        if self._decisions % self.every == 0:
            source, action, target, count = self._transitions[:len(self._edges)].T
            _, self._values[:nodes] = exploration_values(
                self._trials[:nodes], source, action, target, count, self._terminal[:nodes], starts,
                self.discount, self._values[:nodes], self.sweeps)
        self._decisions += 1
        _, action, target, count = self._transitions[self._leaving.get(u, [])].reshape(-1, 4).T
        arrive = arrival_values(self._values[:nodes], self._terminal[:nodes], starts)
        q = novelty_backup(self._trials[u:u + 1], np.zeros_like(action), action, target, count, arrive,
                           self.discount)[0]
        best = np.flatnonzero(q >= q.max() - 1e-12)
        return int(self.rng.choice(best))
