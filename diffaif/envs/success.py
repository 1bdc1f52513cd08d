"""A success flag for plain gymnasium envs, which report none.

The harness reads ``info["success"]`` and, where an env gives none, counts termination as success; on
FrozenLake that would count falling into a hole. ``RewardSuccess`` says an episode succeeded when it
terminated with a positive reward (FrozenLake's goal, Taxi's drop-off, CliffWalking's goal square is
reward −1 and so never counts: its success rate stays 0, read its return instead).
"""
from __future__ import annotations

from typing import Any

import gymnasium as gym


def reward_success(reward: float, terminated: bool) -> bool:
    """Whether a step ends the episode successfully: it terminated (not truncated) with reward > 0."""
    return bool(terminated and float(reward) > 0)


class RewardSuccess(gym.Wrapper):
    """Sets ``info["success"] = terminated and reward > 0`` on every step, unless the env already sets it."""

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = self.env.step(action)
        if "success" not in info:
            info = {**info, "success": reward_success(reward, terminated)}
        return obs, reward, terminated, truncated, info


__all__ = ["RewardSuccess", "reward_success"]
