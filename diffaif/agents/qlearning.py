"""Tabular Q-learning with ε-greedy exploration: the method paper's model-free baseline.

The table is indexed by the observation (a cell index), so under partial observability the agent
treats observations as states; observations of any other discrete space (MultiDiscrete, MultiBinary,
an integer Box, a Tuple or Dict of those: a MiniGrid view, a hidden-state vector) get a table row on
first sight, keyed by their values flattened to one hashable tuple (``observation_key``). A float Box
observation has no table: the agent refuses it (use dqn or ppo). It learns online, inside
``observe``, during every episode it plays, evaluated ones included, as the paper's baseline does.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from diffaif.agents.base import Agent, env_steps

EPSILON_SCHEDULES = ("exponential", "linear")


@dataclass
class QLearningConfig:
    """Hyperparameters of tabular Q-learning.

    ε follows ``epsilon_schedule`` per completed episode (see ``epsilon_at``); the defaults explore
    fully in the first episode and reach ε ≈ 0.1 after about 45 episodes.
    """

    learning_rate: float = 0.1
    discount: float = 0.95
    epsilon_start: float = 1.0
    epsilon_end: float = 0.05
    epsilon_decay: float = 0.95
    epsilon_schedule: str = "exponential"
    initial_q: float = 0.0

    def __post_init__(self):
        if not 0.0 < self.learning_rate <= 1.0:
            raise ValueError(f"learning_rate must be in (0, 1], got {self.learning_rate}")
        if not 0.0 <= self.discount <= 1.0:
            raise ValueError(f"discount must be in [0, 1], got {self.discount}")
        for field in ("epsilon_start", "epsilon_end"):
            if not 0.0 <= getattr(self, field) <= 1.0:
                raise ValueError(f"{field} must be in [0, 1], got {getattr(self, field)}")
        if self.epsilon_schedule not in EPSILON_SCHEDULES:
            raise ValueError(f"epsilon_schedule must be one of {EPSILON_SCHEDULES}, got {self.epsilon_schedule!r}")
        if self.epsilon_schedule == "exponential" and not 0.0 < self.epsilon_decay <= 1.0:
            raise ValueError(f"epsilon_decay must be in (0, 1] for the exponential schedule, got {self.epsilon_decay}")
        if self.epsilon_schedule == "linear" and self.epsilon_decay < 0.0:
            raise ValueError(f"epsilon_decay must be >= 0 for the linear schedule, got {self.epsilon_decay}")


def epsilon_at(episode: int, start: float, end: float, decay: float, schedule: str) -> float:
    """Exploration rate of the ``episode``-th episode (0-based).

    exponential: ε_k = max(end, start · decay^k);   linear: ε_k = max(end, start − decay · k).
    """
    if episode < 0:
        raise ValueError(f"episode must be >= 0, got {episode}")
    if schedule == "exponential":
        return max(end, start * decay**episode)
    if schedule == "linear":
        return max(end, start - decay * episode)
    raise ValueError(f"schedule must be one of {EPSILON_SCHEDULES}, got {schedule!r}")


def q_learning_target(reward: float, next_values: np.ndarray, discount: float, terminated: bool) -> float:
    """TD target y = r + γ · max_a' Q(s', a'), and y = r when s' is terminal.

    A truncated episode is not terminal: its last state still has a future, so it bootstraps.
    """
    return float(reward) if terminated else float(reward + discount * np.max(next_values))


def discrete_space_problem(space: gym.Space) -> str | None:
    """Why observations of ``space`` cannot key a table (a float Box somewhere in it), or None if they can."""
    if isinstance(space, (gym.spaces.Discrete, gym.spaces.MultiDiscrete, gym.spaces.MultiBinary)):
        return None
    if isinstance(space, gym.spaces.Box):
        return None if np.issubdtype(space.dtype, np.integer) else f"a {space.dtype} Box of shape {space.shape}"
    if isinstance(space, (gym.spaces.Tuple, gym.spaces.Dict)):
        parts = space.spaces.values() if isinstance(space, gym.spaces.Dict) else space.spaces
        return next((problem for problem in map(discrete_space_problem, parts) if problem), None)
    return f"a {type(space).__name__} space"


def observation_key(space: gym.Space, observation: Any) -> tuple[int, ...]:
    """``observation`` of the discrete ``space`` as one flat hashable tuple of ints.

    Discrete: (value,); MultiDiscrete / MultiBinary / integer Box: the values in C order; Tuple: the
    parts' keys concatenated; Dict: the same in the space's key order.
    """
    if isinstance(space, gym.spaces.Tuple):
        return tuple(v for part, obs in zip(space.spaces, observation) for v in observation_key(part, obs))
    if isinstance(space, gym.spaces.Dict):
        return tuple(v for name, part in space.spaces.items() for v in observation_key(part, observation[name]))
    return tuple(int(v) for v in np.asarray(observation).ravel().tolist())


def argmax_random_tie(values: np.ndarray, rng: np.random.Generator) -> int:
    """Index of the largest entry of ``values`` (n,), chosen uniformly among ties."""
    best = np.flatnonzero(values == values.max())
    return int(best[rng.integers(len(best))])


class QLearningAgent(Agent):
    """ε-greedy tabular Q-learning; the table ``q`` has shape (n_observations, n_actions).

    For a non-``Discrete`` observation space, ``q`` has one row per distinct observation seen so far
    (``keys``: observation values -> row), grown as new ones arrive.
    """

    name = "qlearning"

    def __init__(self, env: gym.Env, seed: int | None = None, config: QLearningConfig | None = None):
        super().__init__(env, seed)
        self.config = config if config is not None else QLearningConfig()
        if not isinstance(env.action_space, gym.spaces.Discrete):
            raise ValueError(f"QLearningAgent needs a Discrete action space, got {env.action_space}")
        problem = discrete_space_problem(env.observation_space)
        if problem is not None:
            raise ValueError(f"QLearningAgent needs discrete observations to index its table, got {problem}: "
                             f"use dqn or ppo")
        tabular = isinstance(env.observation_space, gym.spaces.Discrete)
        self.keys: dict[tuple, int] | None = None if tabular else {}
        rows = env.observation_space.n if tabular else 0
        self.q = np.full((rows, env.action_space.n), self.config.initial_q, dtype=np.float64)
        self.episodes_started = 0
        self.epsilon = self._epsilon(0)
        self._acted_on: int | None = None

    def _epsilon(self, episode: int) -> float:
        c = self.config
        return epsilon_at(episode, c.epsilon_start, c.epsilon_end, c.epsilon_decay, c.epsilon_schedule)

    def _index(self, observation: Any) -> int:
        if self.keys is None:
            return int(observation) - self.env.observation_space.start
        key = observation_key(self.env.observation_space, observation)
        row = self.keys.get(key)
        if row is None:
            row = self.keys[key] = len(self.keys)
            if row >= len(self.q):  # grow the table geometrically
                extra = np.full((max(64, len(self.q)), self.q.shape[1]), self.config.initial_q)
                self.q = np.concatenate([self.q, extra])
        return row

    def reset(self, observation: Any, info: dict | None = None) -> None:
        self.epsilon = self._epsilon(self.episodes_started)
        self.episodes_started += 1
        self._acted_on = None

    def act(self, observation: Any) -> int:
        state = self._index(observation)
        self._acted_on = state
        if self.rng.random() < self.epsilon:
            action = int(self.rng.integers(self.q.shape[1]))
        else:
            action = argmax_random_tie(self.q[state], self.rng)
        return action + int(self.action_space.start)

    def observe(self, action: int, reward: float, next_observation: Any, terminated: bool, truncated: bool,
                info: dict | None = None) -> None:
        """One Q-learning step on the transition from the observation last acted on."""
        if self._acted_on is None:
            raise RuntimeError("observe() called before act() in this episode")
        a = int(action) - int(self.action_space.start)
        target = q_learning_target(reward, self.q[self._index(next_observation)], self.config.discount, terminated)
        self.q[self._acted_on, a] += self.config.learning_rate * (target - self.q[self._acted_on, a])
        self._acted_on = None

    def warm_up(self, env: gym.Env, steps: int, seed: int) -> int:
        """Learn over ε-greedy episodes until ``steps`` interactions are used; return that count.

        The ε schedule carries on across warm-up and later episodes; the last warm-up episode may be cut
        short by the budget.
        """
        if steps < 0:
            raise ValueError(f"steps must be >= 0, got {steps}")
        used = 0
        episode_seed: int | None = seed
        while used < steps:
            obs, _ = env.reset(seed=episode_seed)
            episode_seed = None  # seed the first reset only, so later episodes continue the stream
            self.reset(obs)
            done = False
            while not done and used < steps:
                action = self.act(obs)
                obs, reward, terminated, truncated, info = env.step(action)
                self.observe(action, float(reward), obs, terminated, truncated, info)
                used += env_steps(info)
                done = terminated or truncated
        return used

    def predict(self, observation, state=None, episode_start=None, deterministic: bool = False):
        """SB3's ``predict`` scores the current table without learning (SB3 passes no rewards).

        ``deterministic`` acts greedily (ties at random), otherwise ε-greedy at the current ε.
        """
        if isinstance(self.env.observation_space, (gym.spaces.Tuple, gym.spaces.Dict)):
            batched, single = False, observation  # one structured observation (no VecEnv batching)
        else:
            obs = np.asarray(observation)
            batched = obs.ndim > np.ndim(self.env.observation_space.sample())
            if batched and obs.shape[0] != 1:
                raise ValueError(f"predict handles one environment at a time, got {obs.shape[0]} observations")
            single = obs[0] if batched else obs
            single = single.item() if single.ndim == 0 else single
        if deterministic:
            action = argmax_random_tie(self.q[self._index(single)], self.rng) + int(self.action_space.start)
        else:
            action = self.act(single)
            self._acted_on = None
        return (np.array([action]) if batched else np.array(action)), state
