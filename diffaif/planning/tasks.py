"""What planning in a task needs, chosen by the task's type: how its (state, observation, action)
steps become tokens, and the planner that scores policies with a world model over those tokens.

``task_planning(env, config)`` asks each entry of ``TASK_FAMILIES`` in turn; an entry returns a
``TaskPlanning`` for the envs it knows and None for the others. Add a task family by appending one.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol, Sequence

import gymnasium as gym

from diffaif.data.encoding import TaskEncoding, grid_encoding, space_part
from diffaif.data.episodes import EpisodeData
from diffaif.envs.control import ControlTask
from diffaif.envs.grid import GridWorld
from diffaif.envs.minigrid_task import CELL_NAMES, STATE_FIELDS, MiniGridTask
from diffaif.model.world_model import WorldModel
from diffaif.planning.continuous import ContinuousPlanner, control_encoding, control_preference
from diffaif.planning.planner import EFEPlanner, FactoredEFEPlanner, PlannerConfig
from diffaif.planning.preferences import (PREFERENCE_KINDS, VectorPreference, grid_log_preferences,
                                         outcome_log_preferences)


class Decision(Protocol):
    """What a planner returns: the action, the surprise of what came next, and a log row."""

    action: Any

    def surprise(self, action: Any, observation: Any) -> float: ...

    def log(self) -> dict: ...


class Planner(Protocol):
    def plan(self, observations: Sequence[Any], actions: Sequence[Any]) -> Decision: ...

    def learn(self, data: EpisodeData) -> None: ...


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
    _no_tail_value(config, "grid worlds")
    log_preference = grid_log_preferences(task, config.preference, config.preference_precision)
    return TaskPlanning(lambda data: grid_encoding(task),
                        lambda model, seed: EFEPlanner(model, log_preference, config, seed=seed))


def control_planning(env: gym.Env, config: PlannerConfig) -> TaskPlanning | None:
    """Classic control (``ControlTask``): continuous states and observations, Gaussian preferences;
    ``make_planner`` takes one world model or an ensemble (a list) for the parameter information gain."""
    if not isinstance(env, ControlTask):
        return None
    _no_tail_value(config, "control tasks")
    config.continuous.check_action_space(env.action_space)   # before any training, not after it
    preference = control_preference(env.family, config.continuous)
    span = config.context + 1 + config.policies.horizon  # the planning window
    return TaskPlanning(lambda data: control_encoding(env, data, config.continuous.min_scale,
                                                      config.continuous.anchored, span),
                        lambda models, seed: ContinuousPlanner(models, preference, env.action_space, config, seed))


def _no_tail_value(config: PlannerConfig, family: str) -> None:
    if config.tail_value:
        raise ValueError(f"planner.tail_value is implemented for MiniGrid only, not for {family}")


def _find_wrapper(env: gym.Env, kind: type) -> Any:
    while not isinstance(env, kind):
        if not isinstance(env, gym.Wrapper):
            return None
        env = env.env
    return env


def minigrid_planning(env: gym.Env, config: PlannerConfig) -> TaskPlanning | None:
    """MiniGrid: the compact state and the observation vector as factored categories; the preference
    is over the tile under the agent (``obs_floor``): reaching the goal is preferred and lava avoided,
    with precision λ = ``preference_precision``. Subgoals (keys, doors) are not written anywhere:
    they follow from which rollouts the model says reach the goal. ``preference="shaped"`` (with
    ``obs_mode="state"``, whose observation holds both positions) also prefers, by
    ``distance_precision``, observations where the agent is fewer grid cells from the goal."""
    task = _find_wrapper(env, MiniGridTask)
    if task is None:
        return None
    if not task.obs_floor or task.obs_index:
        raise ValueError("the active-inference agent on MiniGrid needs the env options obs_floor=True (the "
                         "preference is over the tile under the agent) and obs_index=0 (vector observations)")
    if config.preference not in PREFERENCE_KINDS:
        raise ValueError(f"unknown preference kind {config.preference!r}; valid kinds: {list(PREFERENCE_KINDS)}")
    shaped = config.preference == "shaped"
    if shaped and task.obs_mode != "state":
        raise ValueError("preference 'shaped' needs obs_mode='state' (the agent and goal positions observed); "
                         "use preference 'sparse' with the view")
    encoding = TaskEncoding([space_part("state", task.state_space), space_part("obs", task.vector_space),
                             space_part("action", task.action_space)])
    fields = [STATE_FIELDS.index(name) for name in ("agent_x", "agent_y", "goal_x", "goal_y")]
    preference = VectorPreference(
        factor=len(task.vector_space.nvec) - 1,
        log_p=outcome_log_preferences(CELL_NAMES, ("goal",), ("lava",), config.preference_precision),
        positions=tuple(fields), distance_precision=config.distance_precision if shaped else 0.0)
    return TaskPlanning(lambda data: encoding,
                        lambda model, seed: FactoredEFEPlanner(model, preference, config, seed=seed))


TASK_FAMILIES: list[Callable[[gym.Env, PlannerConfig], TaskPlanning | None]] = [grid_planning, control_planning,
                                                                                 minigrid_planning]


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
