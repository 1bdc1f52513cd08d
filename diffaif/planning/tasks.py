"""What planning in a task needs, chosen by the task's type: how its (state, observation, action)
steps become tokens, and the planner that scores policies with a world model over those tokens.

``task_planning(env, config)`` asks each entry of ``TASK_FAMILIES`` in turn; an entry returns a
``TaskPlanning`` for the envs it knows and None for the others. Add a task family by appending one.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Protocol, Sequence

import gymnasium as gym
import numpy as np
import torch

from diffaif.data.encoding import (PartSpec, TaskEncoding, flat_observation, grid_encoding, observation_part,
                                   space_kind, space_part)
from diffaif.data.episodes import EpisodeData, model_view
from diffaif.envs.control import ControlTask
from diffaif.envs.grid import GridWorld
from diffaif.envs.minigrid_task import CELL_NAMES, STATE_FIELDS, MiniGridTask
from diffaif.model.world_model import WorldModel
from diffaif.planning.continuous import (PREFERENCES, ContinuousPlanner, RewardPreference, control_encoding,
                                        control_preference)
from diffaif.planning.planner import EFEPlanner, FactoredEFEPlanner, PlannerConfig
from diffaif.planning.preferences import (PREFERENCE_KINDS, VectorPreference, grid_log_preferences,
                                         normalise_log_preference, outcome_log_preferences)

MAX_REWARD_VALUES = 16   # distinct rewards kept as categories; more are binned at their quantiles


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
    ``config``: the planner settings with the family's defaults filled in."""

    encoding: Callable[[EpisodeData], TaskEncoding]
    make_planner: Callable[[WorldModel, int], Planner]
    config: PlannerConfig
    model_preset: str = "tiny"
    observation: Callable[[Any], Any] = _unchanged

    @property
    def span(self) -> int:
        """The steps a planning window covers, context + present + horizon: at most the model's length."""
        return self.config.context + 1 + self.config.policies.horizon


def grid_planning(env: gym.Env, config: PlannerConfig) -> TaskPlanning | None:
    """Grid worlds: categorical cells; sparse or shaped preferences over the observed cell."""
    task = env.unwrapped
    if not isinstance(task, GridWorld):
        return None
    _no_tail_value(config, "grid worlds")
    log_preference = grid_log_preferences(task, config.preference, config.preference_precision)
    return TaskPlanning(lambda data: grid_encoding(task),
                        lambda model, seed: EFEPlanner(model, log_preference, config, seed=seed), config)


def control_planning(env: gym.Env, config: PlannerConfig) -> TaskPlanning | None:
    """Classic control (``ControlTask``): continuous states and observations, hand-written Gaussian
    preferences; ``make_planner`` takes one world model or an ensemble (a list) for the parameter
    information gain. A task without a hand-written preference, or ``planner.continuous.preference``
    "reward", is left to ``generic_planning`` (the reward as preference)."""
    if not isinstance(env, ControlTask):
        return None
    preference_name = env.family if config.continuous.preference == "auto" else config.continuous.preference
    if preference_name == "reward" or (config.continuous.preference == "auto" and env.family not in PREFERENCES):
        return None
    _no_tail_value(config, "control tasks")
    config = _box_actions_by_cem(config, env.action_space)
    config.continuous.check_action_space(env.action_space)   # before any training, not after it
    preference = control_preference(env.family, config.continuous)
    span = config.context + 1 + config.policies.horizon  # the planning window
    return TaskPlanning(lambda data: control_encoding(env, data, config.continuous.min_scale,
                                                      config.continuous.anchored, span),
                        lambda models, seed: ContinuousPlanner(models, preference, env.action_space, config, seed),
                        config, model_preset="control")


def _box_actions_by_cem(config: PlannerConfig, action_space: gym.Space) -> PlannerConfig:
    """Box actions cannot be enumerated: the default policy kind ("enumerate") becomes "cem" for them."""
    if isinstance(action_space, gym.spaces.Box) and config.policies.kind == "enumerate":
        return dataclasses.replace(config, policies=dataclasses.replace(config.policies, kind="cem"))
    return config


def _no_tail_value(config: PlannerConfig, family: str) -> None:
    if config.tail_value:
        raise ValueError(f"planner.tail_value needs categorical observation vectors (MiniGrid, generic tasks), "
                         f"not {family}")


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
                        lambda model, seed: FactoredEFEPlanner(model, preference, config, seed=seed),
                        config, model_preset="minigrid_tiny")


def reward_values(data: EpisodeData) -> tuple[float, ...]:
    """The distinct rewards of ``data``'s transitions (sorted), or ``MAX_REWARD_VALUES`` of their quantiles
    when there are more: the categories of a categorical observation's reward entry."""
    taken = np.ones(data.n_steps, dtype=bool)
    taken[np.append(data.episode_starts[1:], data.n_steps) - 1] = False   # final rows: no action, no reward
    rewards = data.rewards[taken]
    if not len(rewards):
        raise ValueError("the data set holds no transition: no reward values to encode")
    distinct = np.unique(rewards)
    if len(distinct) > MAX_REWARD_VALUES:
        distinct = np.unique(np.quantile(rewards, np.linspace(0, 1, MAX_REWARD_VALUES)))
    return tuple(float(v) for v in distinct)


def reward_preference(values: Sequence[float], precision: float) -> torch.Tensor:
    """Normalised ``log p̃(r) ∝ λ·r`` over the reward categories of ``TaskEncoding.model_observations``:
    category 0 (no reward yet, an episode's start) as the least reward, then ``values``. → (1 + len,)."""
    logits = precision * torch.tensor([min(values), *values], dtype=torch.float64)
    return normalise_log_preference(logits).float()


def generic_planning(env: gym.Env, config: PlannerConfig) -> TaskPlanning | None:
    """Any gymnasium env with categorical observations (Discrete, MultiDiscrete, MultiBinary, or a
    Dict/Tuple of them, flattened) and Discrete actions: the observation plus the reward received is
    what the world model sees (no hidden state part: an MDP over observations), and the preference is
    the reward as log-preference, ``log p̃(o) = λ·r − log Z`` (λ = ``preference_precision``). By default
    (``planner.tail_value`` None) the planner looks one step ahead and adds the tail value, a backup over
    the observed transitions: a sparse reward is rarely within a short horizon, and a one-step plan is
    closed-loop where longer open-loop plans are not (stochastic tasks). With ``tail_value`` set, the
    configured horizon is used."""
    space = env.observation_space
    if space_kind(space) == "continuous":
        return _generic_continuous(env, config)
    if not isinstance(env.action_space, gym.spaces.Discrete):
        raise ValueError(f"the planner needs Discrete actions on {type(env.unwrapped).__name__}, got {env.action_space}")
    action = space_part("action", env.action_space)
    if config.tail_value is None:
        config = dataclasses.replace(config, tail_value=True,
                                     policies=dataclasses.replace(config.policies, horizon=1))

    def encoding(data: EpisodeData) -> TaskEncoding:
        return TaskEncoding([observation_part(space, reward_values(data)), action])

    def make_planner(model: WorldModel, seed: int) -> FactoredEFEPlanner:
        spec = model.encoding.parts["obs"]
        preference = VectorPreference(factor=len(spec.factors) - 1,
                                      log_p=reward_preference(spec.reward_values, config.preference_precision))
        return FactoredEFEPlanner(model, preference, config, seed=seed)

    return TaskPlanning(encoding, make_planner, config, model_preset="categorical",
                        observation=lambda observation: flat_observation(space, observation))


def _generic_continuous(env: gym.Env, config: PlannerConfig) -> TaskPlanning:
    """Box observations (flattened) with the reward received as one more dimension, standardised by the
    data; Discrete or flat Box actions; ``ContinuousPlanner`` with the reward as log-preference."""
    space, actions = env.observation_space, env.action_space
    if isinstance(actions, gym.spaces.Discrete):
        action = space_part("action", actions)
    elif isinstance(actions, gym.spaces.Box) and len(actions.shape) == 1:
        action = PartSpec("action", "continuous", int(actions.shape[0]))
    else:
        raise ValueError(f"the planner needs Discrete or flat Box actions, got {actions}")
    _no_tail_value(config, "continuous observations")
    config = _box_actions_by_cem(config, actions)

    def encoding(data: EpisodeData) -> TaskEncoding:
        layout = TaskEncoding([observation_part(space, ()), action])
        stats = {"obs": model_view(data, layout).observations}
        if action.kind == "continuous":
            stats["action"] = data.actions
        return layout.fitted(**stats)

    return TaskPlanning(encoding, lambda models, seed: ContinuousPlanner(models, RewardPreference(), actions, config,
                                                                         seed),
                        config, model_preset="control",
                        observation=lambda observation: flat_observation(space, observation))


# asked in order: the last family takes any env it can encode
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
