"""The BFS oracle for MiniGrid: shortest paths on the true grid, marking the physical limit.

Unlike every other agent it is allowed the true hidden state: it reads the MiniGrid env it was built
for (``MiniGridTask.shortest_paths``, rebuilt by the wrapper at every reset) and takes an action of
least ``1 + distance(successor)`` — the exact shortest path over position, direction, carried key and
door states. It never learns; ``warm_up`` uses no interactions.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from diffaif.agents.base import Agent
from diffaif.envs.minigrid_task import MiniGridTask

TIE_BREAKS = ("first", "random")


@dataclass
class BFSOracleConfig:
    """``tie_break``: "first" takes the lowest action index among equally short paths, "random" a uniform one."""

    tie_break: str = "first"

    def __post_init__(self):
        if self.tie_break not in TIE_BREAKS:
            raise ValueError(f"tie_break must be one of {TIE_BREAKS}, got {self.tie_break!r}")


def find_task(env: gym.Env) -> MiniGridTask:
    """The ``MiniGridTask`` wrapper inside ``env`` (which may carry further wrappers on top)."""
    layer = env
    while isinstance(layer, gym.Wrapper):
        if isinstance(layer, MiniGridTask):
            return layer
        layer = layer.env
    raise ValueError(f"BFSOracleAgent needs a MiniGridTask env (diffaif.envs.make_env('MiniGrid-...')), got {env}")


class BFSOracleAgent(Agent):
    """Greedy on exact steps-to-goal from the env's true state (privileged: reads the hidden state)."""

    name = "bfs_oracle"

    def __init__(self, env: gym.Env, seed: int | None = None, config: BFSOracleConfig | None = None):
        super().__init__(env, seed)
        self.config = config if config is not None else BFSOracleConfig()
        self.task = find_task(env)
        if not self.task.compute_distance:
            raise ValueError("BFSOracleAgent needs the env's shortest paths: keep compute_distance=True")
        self._last_values = np.zeros(self.action_space.n)

    def act(self, observation: Any) -> int:
        paths = self.task.shortest_paths
        if paths is None:
            raise RuntimeError("act() before the env was reset")
        values = paths.action_values(self.task.current_key())
        self._last_values = values
        best = np.flatnonzero(values == values.min())
        return int(best[self.rng.integers(len(best))] if self.config.tie_break == "random" else best[0])

    def step_log(self) -> dict[str, Any]:
        """Steps to goal after each action at the last decision (inf: the goal is lost, e.g. lava)."""
        return {"expected_steps": self._last_values.tolist()}

    def predict(self, observation, state=None, episode_start=None, deterministic: bool = False):
        """SB3's ``predict``: the oracle reads the env itself, so only the action is computed."""
        batched = np.ndim(observation) > np.ndim(self.env.observation_space.sample())
        action = self.act(observation)
        return (np.array([action]) if batched else np.array(action)), state


__all__ = ["BFSOracleAgent", "BFSOracleConfig", "find_task"]
