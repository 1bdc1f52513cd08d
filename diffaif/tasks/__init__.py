"""Task families: what planning in a task needs, chosen by the task's type — how its (state,
observation, action) steps become tokens, the preference, the planner and its defaults. One module
per family; ``task_planning(env, config)`` asks each entry of ``TASK_FAMILIES`` in turn (an entry
returns a ``TaskPlanning`` for the envs it knows and None for the others). Add a family by writing a
module and inserting its function before ``generic_planning``, which takes any env it can encode.
"""
from __future__ import annotations

from typing import Callable

import gymnasium as gym

from diffaif.data.encoding import TaskEncoding
from diffaif.data.episodes import EpisodeData
from diffaif.planning.planner import PlannerConfig
from diffaif.tasks.base import Decision, Planner, TaskPlanning
from diffaif.tasks.control import control_planning
from diffaif.tasks.generic import generic_planning
from diffaif.tasks.grid import grid_planning
from diffaif.tasks.minigrid import minigrid_planning

TASK_FAMILIES: list[Callable[[gym.Env, PlannerConfig], TaskPlanning | None]] = [grid_planning, control_planning,
                                                                                 minigrid_planning, generic_planning]


def task_planning(env: gym.Env, config: PlannerConfig) -> TaskPlanning:
    """The ``TaskPlanning`` of the first family in ``TASK_FAMILIES`` that knows ``env``."""
    for family in TASK_FAMILIES:
        found = family(env, config)
        if found is not None:
            return found
    raise ValueError(f"no planner knows the task {type(env.unwrapped).__name__}; known families: "
                     f"{[f.__name__ for f in TASK_FAMILIES]}")


def task_encoding(env: gym.Env, data: EpisodeData) -> TaskEncoding:
    """The token layout of ``env``'s steps, fitted to ``data``: what training a world model needs.

    The layout does not depend on the planner's settings; the sparse preference is the one every
    family accepts whatever the observation (MiniGrid's shaped one needs the compact state).
    """
    return task_planning(env, PlannerConfig(preference="sparse")).encoding(data)


__all__ = ["Decision", "Planner", "TASK_FAMILIES", "TaskPlanning", "task_encoding", "task_planning"]
