"""What planning in a task needs, chosen by the task's type: how its (state, observation, action)
steps become tokens, and the planner that scores policies with a world model over those tokens.

``task_planning(env, config)`` asks each entry of ``TASK_FAMILIES`` in turn; an entry returns a
``TaskPlanning`` for the envs it knows and None for the others. Add a task family by appending one.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol, Sequence

import gymnasium as gym

from diffaif.data.encoding import TaskEncoding, grid_encoding
from diffaif.data.episodes import EpisodeData
from diffaif.envs.grid import GridWorld
from diffaif.model.world_model import WorldModel
from diffaif.planning.planner import EFEPlanner, PlannerConfig
from diffaif.planning.preferences import grid_log_preferences


class Decision(Protocol):
    """What a planner returns: the action, the surprise of what came next, and a log row."""

    action: Any

    def surprise(self, action: Any, observation: Any) -> float: ...

    def log(self) -> dict: ...


class Planner(Protocol):
    def plan(self, observations: Sequence[Any], actions: Sequence[Any]) -> Decision: ...


@dataclass(frozen=True)
class TaskPlanning:
    """``encoding(data)``: the token layout (continuous parts take their statistics from ``data``);
    ``make_planner(model, seed)``: a planner for a world model trained on that layout."""

    encoding: Callable[[EpisodeData], TaskEncoding]
    make_planner: Callable[[WorldModel, int], Planner]


def grid_planning(env: gym.Env, config: PlannerConfig) -> TaskPlanning | None:
    """Grid worlds: categorical cells; sparse or shaped preferences over the observed cell."""
    task = env.unwrapped
    if not isinstance(task, GridWorld):
        return None
    log_preference = grid_log_preferences(task, config.preference, config.preference_precision)
    return TaskPlanning(lambda data: grid_encoding(task),
                        lambda model, seed: EFEPlanner(model, log_preference, config, seed=seed))


TASK_FAMILIES: list[Callable[[gym.Env, PlannerConfig], TaskPlanning | None]] = [grid_planning]


def task_planning(env: gym.Env, config: PlannerConfig) -> TaskPlanning:
    """The ``TaskPlanning`` of the first family in ``TASK_FAMILIES`` that knows ``env``."""
    for family in TASK_FAMILIES:
        found = family(env, config)
        if found is not None:
            return found
    raise ValueError(f"no planner knows the task {type(env.unwrapped).__name__}; known families: "
                     f"{[f.__name__ for f in TASK_FAMILIES]}")
