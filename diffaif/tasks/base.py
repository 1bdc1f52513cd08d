"""What every task family gives the agent: ``TaskPlanning`` (encoding, planner, defaults) and the
planner protocol, plus the checks several families share."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Protocol, Sequence

import gymnasium as gym

from diffaif.data.encoding import TaskEncoding
from diffaif.data.episodes import EpisodeData
from diffaif.model.world_model import WorldModel
from diffaif.planning.planner import PlannerConfig


class Decision(Protocol):
    """What a planner returns: the action, the surprise of what came next, and a log row."""

    action: Any

    def surprise(self, action: Any, observation: Any) -> float: ...

    def log(self) -> dict: ...


class Planner(Protocol):
    def plan(self, observations: Sequence[Any], actions: Sequence[Any]) -> Decision: ...

    def learn(self, data: EpisodeData) -> None: ...


def _unchanged(observation: Any) -> Any:
    return observation


@dataclass(frozen=True)
class TaskPlanning:
    """``encoding(data)``: the token layout (continuous parts take their statistics from ``data``);
    ``make_planner(model, seed)``: a planner for a world model trained on that layout;
    ``model_preset``: the family's world model preset (``AIFConfig.model_preset`` None);
    ``observation(o)``: what the agent records of an env observation (a nested space flattened);
    ``config``: the planner settings with the family's defaults filled in;
    ``warmup_policy``: how the warm-up collects data (``AIFConfig.warmup_policy`` None)."""

    encoding: Callable[[EpisodeData], TaskEncoding]
    make_planner: Callable[[WorldModel, int], Planner]
    config: PlannerConfig
    model_preset: str = "tiny"
    observation: Callable[[Any], Any] = _unchanged
    warmup_policy: str = "random"

    @property
    def span(self) -> int:
        """The steps a planning window covers, context + present + horizon: at most the model's length."""
        return self.config.context + 1 + self.config.policies.horizon


def box_actions_by_cem(config: PlannerConfig, action_space: gym.Space) -> PlannerConfig:
    """Box actions cannot be enumerated: the default policy kind ("enumerate") becomes "cem" for them."""
    if isinstance(action_space, gym.spaces.Box) and config.policies.kind == "enumerate":
        return dataclasses.replace(config, policies=dataclasses.replace(config.policies, kind="cem"))
    return config


def no_tail_value(config: PlannerConfig, family: str) -> None:
    if config.tail_value:
        raise ValueError(f"planner.tail_value needs categorical observation vectors (MiniGrid, generic tasks), "
                         f"not {family}")


def find_wrapper(env: gym.Env, kind: type) -> Any:
    while not isinstance(env, kind):
        if not isinstance(env, gym.Wrapper):
            return None
        env = env.env
    return env
