"""The random baseline: uniform actions, no memory, no learning."""
from __future__ import annotations

from typing import Any

import gymnasium as gym

from diffaif.agents.base import Agent


class RandomAgent(Agent):
    """Samples every action from the action space uniformly with its own seeded generator."""

    name = "random"

    def __init__(self, env: gym.Env, seed: int | None = None):
        super().__init__(env, seed)
        if not isinstance(self.action_space, (gym.spaces.Discrete, gym.spaces.Box)):
            raise ValueError(f"RandomAgent needs a Discrete or Box action space, got {self.action_space}")

    def act(self, observation: Any) -> Any:
        if isinstance(self.action_space, gym.spaces.Box):  # uniform within the bounds
            return self.rng.uniform(self.action_space.low, self.action_space.high).astype(self.action_space.dtype)
        return int(self.action_space.start + self.rng.integers(self.action_space.n))
