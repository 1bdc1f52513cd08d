"""The one interface every agent offers, so one harness can evaluate any of them.

An episode is ``reset(obs)``, then repeatedly ``a = act(obs)``, ``env.step(a)``,
``observe(a, reward, next_obs, terminated, truncated, info)``. Agents see observations only, never the
environment's hidden state. Learning agents update inside ``observe``; ``warm_up`` gives them an
interaction budget before evaluation (the same for every agent in a comparison).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import gymnasium as gym
import numpy as np


def env_steps(info: dict) -> int:
    """How many env steps one ``env.step`` took: ``info["env_steps"]`` where a task repeats actions
    (``ControlTask(action_repeat=k)``), else 1. Budgets and episode lengths count these."""
    return int(info.get("env_steps", 1))


class Agent(ABC):
    """Base class: act on an observation, observe the transition, reset at episode start."""

    name = "agent"

    def __init__(self, env: gym.Env, seed: int | None = None):
        self.env = env
        self.action_space = env.action_space
        self.rng = np.random.default_rng(seed)

    def warm_up(self, env: gym.Env, steps: int, seed: int) -> int:
        """Use up to ``steps`` environment interactions before evaluation; return how many were used."""
        return 0

    def reset(self, observation: Any, info: dict | None = None) -> None:
        """Start of an episode with its first observation (``info``: as in ``observe``)."""

    @abstractmethod
    def act(self, observation: Any) -> int:
        """The action to take on ``observation``."""

    def observe(self, action: int, reward: float, next_observation: Any, terminated: bool, truncated: bool,
                info: dict | None = None) -> None:
        """The outcome of ``action``; learning agents update here.

        ``info`` may carry the true hidden state: a model-learning agent may store it as training data
        (Algorithm 1 of the method paper trains on (s, o, a)), but no agent acts on it.
        """

    def step_log(self) -> dict[str, Any]:
        """Per-step diagnostics of the last ``act`` (e.g. EFE per action), written to the run log."""
        return {}

    def predict(self, observation, state=None, episode_start=None, deterministic: bool = False):
        """Stable-Baselines3's ``predict``, so ``evaluate_policy`` can score any agent.

        Accepts a single observation or a batch of one from a ``VecEnv``. Like an SB3 recurrent policy,
        the returned ``state`` (the action just taken) must be passed back with the next observation:
        ``state=None`` or a true ``episode_start`` begins an episode (``reset``); otherwise the step
        from the previous action to this observation is passed to ``observe`` first, so agents that
        track a belief or a history stay in sync. SB3 passes no rewards and, as a ``VecEnv`` resets
        itself, no terminal observations: ``observe`` gets reward 0 and ``terminated=False`` here, so
        agents that learn from rewards should override this method.
        """
        obs = np.asarray(observation)
        batched = obs.ndim > np.ndim(self.env.observation_space.sample())
        if batched and obs.shape[0] != 1:
            raise ValueError(f"predict handles one environment at a time, got a batch of {obs.shape[0]} observations")
        single = obs[0] if batched else obs
        single = single.item() if np.ndim(single) == 0 else single
        starting = state is None or (episode_start is not None and bool(np.asarray(episode_start).reshape(-1)[0]))
        if starting:
            self.reset(single)
        else:
            self.observe(self._previous_action(state), 0.0, single, False, False)
        action = self.act(single)
        return (np.array([action]) if batched else np.array(action)), np.array([action])

    def _previous_action(self, state) -> Any:
        """The action ``predict`` returned as ``state`` (a batch of one): an int for a Discrete action
        space, the action array otherwise (a Box action is a vector, not an index)."""
        previous = np.asarray(state)[0]
        return int(previous) if isinstance(self.action_space, gym.spaces.Discrete) else previous
