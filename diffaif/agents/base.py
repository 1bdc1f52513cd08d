"""The one interface every agent offers, so one harness can evaluate any of them.

An episode is ``reset(obs)``, then repeatedly ``a = act(obs)``, ``env.step(a)``,
``observe(a, reward, next_obs, terminated, truncated)``. Agents see observations only, never the
environment's hidden state. Learning agents update inside ``observe``; ``warm_up`` gives them an
interaction budget before evaluation (the same for every agent in a comparison).
"""
from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np


class Agent:
    """Base class: act on an observation, observe the transition, reset at episode start."""

    name = "agent"

    def __init__(self, env: gym.Env, seed: int | None = None):
        self.env = env
        self.action_space = env.action_space
        self.rng = np.random.default_rng(seed)

    def warm_up(self, env: gym.Env, steps: int, seed: int) -> int:
        """Use up to ``steps`` environment interactions before evaluation; return how many were used."""
        return 0

    def reset(self, observation: Any) -> None:
        """Start of an episode with its first observation."""

    def act(self, observation: Any) -> int:
        raise NotImplementedError(f"{type(self).__name__} must implement act()")

    def observe(self, action: int, reward: float, next_observation: Any, terminated: bool, truncated: bool) -> None:
        """The outcome of ``action``; learning agents update here."""

    def step_log(self) -> dict[str, Any]:
        """Per-step diagnostics of the last ``act`` (e.g. EFE per action), written to the run log."""
        return {}

    def predict(self, observation, state=None, episode_start=None, deterministic: bool = False):
        """Stable-Baselines3's ``predict``, so ``evaluate_policy`` can score any agent.

        Accepts a single observation or a batch from a ``VecEnv`` of one environment; an episode
        start resets the agent's episode memory.
        """
        obs = np.asarray(observation)
        batched = obs.ndim >= 1 and obs.shape[0] == 1 and np.ndim(self.env.observation_space.sample()) < obs.ndim
        single = obs[0] if batched else obs
        single = single.item() if np.ndim(single) == 0 else single
        starting = episode_start is None or bool(np.asarray(episode_start).reshape(-1)[0]) or state is None
        if starting:
            self.reset(single)
        action = self.act(single)
        return (np.array([action]) if batched else np.array(action)), True
