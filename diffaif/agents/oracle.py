"""The oracle: an agent given the true model, marking the physical limit of any agent.

On diffaif's grid worlds (``OracleAgent``) it solves the MDP with cost 1 per step to the absorbing
goal by value iteration, so ``Q[s, a]`` is the exact expected number of steps to the goal after
taking ``a`` in ``s`` and acting optimally. Under full observability it acts greedily on ``Q`` of the
observed cell; otherwise it runs the exact Bayes filter over hidden cells (``bayes_filter_update``,
re-exported here) and acts by QMDP on the belief.

On gymnasium's tabular envs that expose their model as ``env.unwrapped.P`` (FrozenLake, Taxi,
CliffWalking; ``TabularOracleAgent``) it maximises the discounted return instead: the env's own
rewards, discount ``OracleConfig.discount``, by ``discounted_value_iteration`` on ``tabular_model``.
``make_oracle`` (the "oracle" agent) picks whichever the env offers.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from diffaif.agents.base import Agent
# The exact filter lives in the data layer so the world-model evaluation (below agents) can use it too.
from diffaif.data.exact_filter import bayes_filter_update

TIE_BREAKS = ("first", "random")


@dataclass
class OracleConfig:
    """``tie_break``: "first" takes the lowest action index among equal values, "random" a uniform one.

    Value iteration stops when no value changes by more than ``tolerance`` (steps on a grid world,
    return on a tabular env). ``discount``: the discount of the return on a tabular env's model
    (``TabularOracleAgent``); the grid worlds' expected steps are undiscounted.
    """

    tie_break: str = "first"
    tolerance: float = 1e-10
    max_iterations: int = 100_000
    discount: float = 0.99

    def __post_init__(self):
        if self.tie_break not in TIE_BREAKS:
            raise ValueError(f"tie_break must be one of {TIE_BREAKS}, got {self.tie_break!r}")
        if not self.tolerance > 0:
            raise ValueError(f"tolerance must be > 0, got {self.tolerance}")
        if self.max_iterations < 1:
            raise ValueError(f"max_iterations must be >= 1, got {self.max_iterations}")
        if not 0.0 <= self.discount <= 1.0:
            raise ValueError(f"discount must be in [0, 1], got {self.discount}")


def safe_actions(P: np.ndarray, goal: int) -> np.ndarray:
    """Mask (n_states, n_actions) of actions after which the goal is still reached with probability 1.

    ``P[s, a, s']`` has shape (n_states, n_actions, n_states). The fixed point of: keep the states
    that can reach ``goal`` through actions whose every outcome is a kept state (almost-sure
    reachability); other states and actions have infinite expected steps.
    """
    n_states = P.shape[0]
    keep = np.ones(n_states, dtype=bool)
    while True:
        safe = ~np.any(P[:, :, ~keep] > 0, axis=2) & keep[:, None]
        edges = np.any((P > 0) & safe[:, :, None], axis=1)  # (s, s'): a safe action may lead s -> s'
        reach = np.zeros(n_states, dtype=bool)
        reach[goal] = True
        queue = deque([goal])
        while queue:
            target = queue.popleft()
            for s in np.flatnonzero(edges[:, target] & ~reach):
                reach[s] = True
                queue.append(s)
        if np.array_equal(reach, keep):
            return safe
        keep = reach


def value_iteration(P: np.ndarray, goal: int, tolerance: float = 1e-10, max_iterations: int = 100_000) -> np.ndarray:
    """Expected steps to ``goal``: the fixed point of Q[s, a] = 1 + Σ_s' P[s, a, s'] min_a' Q[s', a'].

    ``P`` has shape (n_states, n_actions, n_states); returns Q of shape (n_states, n_actions) with
    Q[goal, :] = 0 and Q = inf for actions after which the goal may never be reached (see
    ``safe_actions``). Starting from V = 0 the iterates rise monotonically to the optimum (a
    stochastic shortest-path problem with positive costs); they are exact integers after
    max-distance iterations when P is deterministic.
    """
    if P.ndim != 3 or P.shape[0] != P.shape[2]:
        raise ValueError(f"P must have shape (n_states, n_actions, n_states), got {P.shape}")
    if not 0 <= goal < P.shape[0]:
        raise ValueError(f"goal {goal} is not a state index in [0, {P.shape[0]})")
    safe = safe_actions(P, goal)
    finite = safe.any(axis=1)  # safe actions only ever lead to these states
    value = np.zeros(P.shape[0])
    for _ in range(max_iterations):
        q = np.where(safe, 1.0 + np.einsum("sat,t->sa", P[:, :, finite], value[finite]), np.inf)
        q[goal] = 0.0
        new_value = q.min(axis=1)
        if np.all(np.abs(new_value[finite] - value[finite]) <= tolerance):
            return q
        value = np.where(finite, new_value, 0.0)
    raise RuntimeError(f"value iteration did not converge to tolerance {tolerance} in {max_iterations} iterations")


def qmdp_values(belief: np.ndarray, Q: np.ndarray) -> np.ndarray:
    """QMDP action values Σ_s b(s) Q(s, a), shape (n_actions,); states with b(s) = 0 add nothing (even if Q is inf)."""
    return belief @ np.where(belief[:, None] > 0, Q, 0.0)


class OracleAgent(Agent):
    """Acts optimally (full observability) or by QMDP on the exact belief (partial observability).

    ``belief`` is the current posterior over hidden cells, shape (n_states,); ``q`` the exact
    expected steps to goal, shape (n_states, n_actions).
    """

    name = "oracle"

    def __init__(self, env: gym.Env, seed: int | None = None, config: OracleConfig | None = None):
        super().__init__(env, seed)
        self.config = config if config is not None else OracleConfig()
        world = env.unwrapped
        model_attrs = ("transition_matrix", "observation_matrix", "goal", "start")
        missing = [attr for attr in model_attrs if not hasattr(world, attr)]
        if missing:
            raise ValueError(f"OracleAgent needs an env with the true model; {type(world).__name__} lacks {missing}")
        self.P = world.transition_matrix()
        self.O = world.observation_matrix()
        self.start = int(world.start)
        self.q = value_iteration(self.P, int(world.goal), self.config.tolerance, self.config.max_iterations)
        self.fully_observed = self.O.shape[0] == self.O.shape[1] and np.array_equal(self.O, np.eye(len(self.O)))
        self.belief = self._start_belief()
        self._last_values = np.zeros(self.q.shape[1])

    def _start_belief(self) -> np.ndarray:
        belief = np.zeros(self.P.shape[0])
        belief[self.start] = 1.0
        return belief

    def reset(self, observation: Any, info: dict | None = None) -> None:
        self.belief = bayes_filter_update(self._start_belief(), self.P, self.O, None, observation)

    def act(self, observation: Any) -> int:
        values = self.q[int(observation)] if self.fully_observed else qmdp_values(self.belief, self.q)
        self._last_values = values
        best = np.flatnonzero(values == values.min())
        return int(best[self.rng.integers(len(best))] if self.config.tie_break == "random" else best[0])

    def observe(self, action: int, reward: float, next_observation: Any, terminated: bool, truncated: bool,
                info: dict | None = None) -> None:
        self.belief = bayes_filter_update(self.belief, self.P, self.O, action, next_observation)

    def step_log(self) -> dict[str, Any]:
        """Expected steps to goal of each action at the last decision, and the belief's entropy in nats."""
        support = self.belief[self.belief > 0]
        entropy = float(-(support * np.log(support)).sum())
        return {"expected_steps": self._last_values.tolist(), "belief_entropy": entropy}


def tabular_model(env: gym.Env) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The model gymnasium's toy-text envs expose as ``env.unwrapped.P`` as arrays ``(P, R, done)``.

    ``env.unwrapped.P[s][a]`` lists the outcomes ``(probability, next_state, reward, terminated)``.
    Returns ``P[s, a, s']`` (n_states, n_actions, n_states), the transition probabilities;
    ``R[s, a]`` (n_states, n_actions), the expected reward of taking ``a`` in ``s``; and
    ``done[s, a, s']`` (n_states, n_actions, n_states), the probability that the transition
    ``s -a-> s'`` terminates the episode given that it happens (0 or 1 unless outcomes to the same
    ``s'`` differ). States and actions without an entry keep zero rows.
    """
    world = env.unwrapped
    model = getattr(world, "P", None)
    if not isinstance(model, dict):
        raise ValueError(f"{type(world).__name__} exposes no tabular model P (a dict state -> action -> outcomes)")
    if not isinstance(env.observation_space, gym.spaces.Discrete) or not isinstance(env.action_space,
                                                                                   gym.spaces.Discrete):
        raise ValueError(f"a tabular model needs Discrete observation and action spaces, got "
                         f"{env.observation_space} and {env.action_space}")
    n_states, n_actions = int(env.observation_space.n), int(env.action_space.n)
    P = np.zeros((n_states, n_actions, n_states))
    R = np.zeros((n_states, n_actions))
    terminating = np.zeros((n_states, n_actions, n_states))
    for s, by_action in model.items():
        for a, outcomes in by_action.items():
            for probability, next_state, reward, terminated in outcomes:
                P[s, a, next_state] += probability
                R[s, a] += probability * reward
                terminating[s, a, next_state] += probability * bool(terminated)
    done = np.divide(terminating, P, out=np.zeros_like(P), where=P > 0)
    return P, R, done


def discounted_value_iteration(P: np.ndarray, R: np.ndarray, done: np.ndarray, discount: float,
                               tolerance: float = 1e-10, max_iterations: int = 100_000) -> np.ndarray:
    """Optimal action values of a discounted MDP: the fixed point of the Bellman optimality equation

        Q(s, a) = R(s, a) + γ · Σ_s' P(s, a, s') · (1 − done(s, a, s')) · max_a' Q(s', a'),

    with ``P`` (n_states, n_actions, n_states), ``R`` (n_states, n_actions), ``done`` of P's shape
    (or (n_states,): states whose entry ends the episode) and γ = ``discount``; a terminating
    transition has no future. Iterates V_{k+1}(s) = max_a Q_k(s, a) from V_0 = 0 until no value
    changes by more than ``tolerance``; returns Q (n_states, n_actions).
    """
    if P.ndim != 3 or P.shape[0] != P.shape[2]:
        raise ValueError(f"P must have shape (n_states, n_actions, n_states), got {P.shape}")
    if R.shape != P.shape[:2]:
        raise ValueError(f"R must have shape {P.shape[:2]}, got {R.shape}")
    done = np.asarray(done, dtype=np.float64)
    if done.shape == (P.shape[0],):
        done = np.broadcast_to(done[None, None, :], P.shape)
    if done.shape != P.shape:
        raise ValueError(f"done must have shape {P.shape} or ({P.shape[0]},), got {done.shape}")
    if not 0.0 <= discount <= 1.0:
        raise ValueError(f"discount must be in [0, 1], got {discount}")
    n_states, n_actions = R.shape
    going_on = (discount * P * (1.0 - done)).reshape(n_states * n_actions, n_states)
    rewards = R.reshape(-1)
    value = np.zeros(n_states)
    for _ in range(max_iterations):
        q = (rewards + going_on @ value).reshape(n_states, n_actions)
        new_value = q.max(axis=1)
        if np.max(np.abs(new_value - value)) <= tolerance:
            return q
        value = new_value
    raise RuntimeError(f"value iteration did not converge to tolerance {tolerance} in {max_iterations} iterations")


class TabularOracleAgent(Agent):
    """Acts greedily on the optimal discounted action values ``q`` (n_states, n_actions) of the env's
    own tabular model ``env.unwrapped.P`` (``tabular_model``, ``discounted_value_iteration``)."""

    name = "oracle"

    def __init__(self, env: gym.Env, seed: int | None = None, config: OracleConfig | None = None):
        super().__init__(env, seed)
        self.config = config if config is not None else OracleConfig()
        P, R, done = tabular_model(env)
        self.q = discounted_value_iteration(P, R, done, self.config.discount, self.config.tolerance,
                                            self.config.max_iterations)
        self._last_values = np.zeros(self.q.shape[1])

    def act(self, observation: Any) -> int:
        values = self.q[int(observation)]
        self._last_values = values
        best = np.flatnonzero(values == values.max())
        return int(best[self.rng.integers(len(best))] if self.config.tie_break == "random" else best[0])

    def step_log(self) -> dict[str, Any]:
        """Optimal discounted value of each action at the last decision."""
        return {"q_values": self._last_values.tolist()}


GRID_MODEL = ("transition_matrix", "observation_matrix", "goal", "start")


def make_oracle(env: gym.Env, seed: int | None = None, config: OracleConfig | None = None) -> Agent:
    """The oracle the env's model allows (the "oracle" agent): ``OracleAgent`` on a diffaif grid world
    (its transition and observation matrices), ``TabularOracleAgent`` on an env exposing a tabular
    ``P`` (gymnasium's FrozenLake, Taxi, CliffWalking); any other env → ValueError."""
    world = env.unwrapped
    if all(hasattr(world, attr) for attr in GRID_MODEL):
        return OracleAgent(env, seed, config)
    if isinstance(getattr(world, "P", None), dict):
        return TabularOracleAgent(env, seed, config)
    raise ValueError(f"oracle needs an env that exposes its model: a diffaif grid world or a tabular env with P "
                     f"(FrozenLake, Taxi, CliffWalking); {type(world).__name__} has neither (on MiniGrid use "
                     f"bfs_oracle)")


__all__ = ["OracleAgent", "OracleConfig", "TabularOracleAgent", "bayes_filter_update", "discounted_value_iteration",
           "make_oracle", "qmdp_values", "safe_actions", "tabular_model", "value_iteration"]
