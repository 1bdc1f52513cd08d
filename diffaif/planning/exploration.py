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
    n_nodes, n_actions = trials.shape
    bound = float(novelty(0)) / (1 - discount)
    tried = trials > 0
    share = count / trials[source, action]                         # p̂(o'|o, a) per edge
    value = np.full(n_nodes, bound) if values is None else np.asarray(values, dtype=np.float64)
    bonus = novelty(trials)
    pair = source * n_actions + action
    for _ in range(sweeps):
        restart = value[starts].mean() if len(starts) else 0.0
        arrive = np.where(terminal, restart, value)
        expected = np.bincount(pair, share * arrive[target], minlength=n_nodes * n_actions)
        q = np.where(tried, bonus + discount * expected.reshape(n_nodes, n_actions), bound)
        value = q.max(axis=1)
    return q, value


class DirectedExploration:
    """A behaviour policy for collecting data: in each observation, the action of highest exploration
    value Q (``exploration_values``, ties broken at random), updated after every transition.

    Observations are categorical vectors (ints), compared whole; actions are indices 0..n_actions−1.
    """

    def __init__(self, n_actions: int, discount: float = 0.95, sweeps: int = 50, seed: int = 0):
        if n_actions < 1:
            raise ValueError(f"n_actions must be >= 1, got {n_actions}")
        self.n_actions, self.discount, self.sweeps = n_actions, discount, sweeps
        self.rng = np.random.default_rng(seed)
        self._nodes: dict[bytes, int] = {}
        self._edges: dict[tuple[int, int, int], int] = {}     # (u, a, v) → row of _transitions
        self._transitions: list[list[int]] = []               # rows [u, a, v, count]
        self._trials = np.zeros((0, n_actions))
        self._terminal = np.zeros(0, dtype=bool)
        self._starts: set[int] = set()
        self._values: np.ndarray | None = None

    def _node(self, observation) -> int:
        obs = np.asarray(observation)
        if not np.issubdtype(obs.dtype, np.integer):
            raise ValueError(f"directed exploration needs categorical (integer) observations, got dtype {obs.dtype}")
        key = obs.astype(np.int64).tobytes()
        if key not in self._nodes:
            self._nodes[key] = len(self._nodes)
            self._trials = np.vstack([self._trials, np.zeros((1, self.n_actions))])
            self._terminal = np.append(self._terminal, False)
            if self._values is not None:
                self._values = np.append(self._values, float(novelty(0)) / (1 - self.discount))
        return self._nodes[key]

    def start(self, observation) -> None:
        """An episode begins at ``observation``."""
        self._starts.add(self._node(observation))

    def record(self, observation, action: int, next_observation, terminated: bool) -> None:
        """The transition ``observation —action→ next_observation``."""
        u, v = self._node(observation), self._node(next_observation)
        self._trials[u, int(action)] += 1
        row = self._edges.setdefault((u, int(action), v), len(self._transitions))
        if row == len(self._transitions):
            self._transitions.append([u, int(action), v, 0])
        self._transitions[row][3] += 1
        self._terminal[v] |= bool(terminated)

    def act(self, observation) -> int:
        """The most informative action after ``observation``, looking ahead over the episode."""
        u = self._node(observation)
        source, action, target, count = np.array(self._transitions, dtype=np.int64).reshape(-1, 4).T
        q, self._values = exploration_values(self._trials, source, action, target, count, self._terminal,
                                             np.fromiter(self._starts, dtype=np.int64), self.discount,
                                             self._values, self.sweeps)
        best = np.flatnonzero(q[u] >= q[u].max() - 1e-12)
        return int(self.rng.choice(best))
