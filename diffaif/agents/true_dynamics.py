"""A reference agent: the active-inference agent's planner with the true simulator as its world model.

Same preference, proposer, horizon, candidates and EFE as ``aif`` (its ``AIFConfig.planner``), but each
candidate is rolled out on a copy of the env (``diffaif.planning.true_dynamics.TrueDynamics``) instead of
being inpainted by a diffusion model. What this agent cannot do, no world model will make the aif agent
do (e.g. whether a 10-decision plan reaches MountainCar's flag). Classic-control tasks (``ControlTask``).
"""
from __future__ import annotations

from typing import Any

import gymnasium as gym

from diffaif.agents.aif import AIFConfig
from diffaif.agents.base import Agent
from diffaif.envs.control import ControlTask
from diffaif.planning.true_dynamics import TrueDynamics
from diffaif.tasks.control import control_planning, unit_control_encoding


class TrueDynamicsAgent(Agent):
    """Plans by the aif agent's EFE on rollouts of the true dynamics; learns nothing."""

    name = "true_dynamics"

    def __init__(self, env: gym.Env, seed: int | None = None, config: AIFConfig | None = None):
        super().__init__(env, seed)
        if not isinstance(env, ControlTask):
            raise ValueError(f"the true_dynamics agent plans on classic-control tasks (ControlTask), got "
                             f"{type(env.unwrapped).__name__}")
        self.config = config or AIFConfig()
        task = control_planning(env, self.config.planner)
        if task is None:
            raise ValueError(f"the true_dynamics agent needs a hand-written preference for {env.family!r} "
                             "(planner.continuous.preference); the simulator gives no reward to prefer")
        sampler = TrueDynamics(env, unit_control_encoding(env), task.span, task.config.context)
        self.planner = task.make_planner(sampler, 0 if seed is None else int(seed))
        self._observations: list = []
        self._actions: list = []
        self._last_plan = None

    def reset(self, observation: Any, info: dict | None = None) -> None:
        self._observations, self._actions = [observation], []

    def act(self, observation: Any) -> Any:
        self._last_plan = self.planner.plan(self._observations, self._actions)
        return self._last_plan.action

    def observe(self, action: Any, reward: float, next_observation: Any, terminated: bool, truncated: bool,
                info: dict | None = None) -> None:
        self._observations.append(next_observation)
        self._actions.append(action)

    def step_log(self) -> dict[str, Any]:
        return {} if self._last_plan is None else self._last_plan.log()
