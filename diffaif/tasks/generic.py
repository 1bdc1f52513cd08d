"""Any gymnasium env no other family knows: its observation space flattened, the reward received
observed as one more entry and preferred, ``log p̃(o) = λ·r`` (the reward as log-preference, Tschantz
et al. 2020; Millidge's thesis); no hidden state part (an MDP over observations)."""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Sequence

import gymnasium as gym
import numpy as np
import torch

from diffaif.data.encoding import PartSpec, TaskEncoding, flat_observation, observation_part, space_kind, space_part
from diffaif.data.episodes import EpisodeData, model_view
from diffaif.model.world_model import WorldModel
from diffaif.planning.continuous import ContinuousPlanner, RewardPreference
from diffaif.planning.planner import FactoredEFEPlanner, PlannerConfig
from diffaif.planning.preferences import VectorPreference, normalise_log_preference
from diffaif.tasks.base import TaskPlanning, box_actions_by_cem, no_tail_value

MAX_REWARD_VALUES = 16   # distinct rewards kept as categories; more are binned at their quantiles


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
    category 0 (none received: an episode's start, the absorbing steps after its end) as reward 0, then
    ``values``. → (1 + len,)."""
    logits = precision * torch.tensor([0.0, *values], dtype=torch.float64)
    return normalise_log_preference(logits).float()


def decoded_observations(env: gym.Env) -> tuple[gym.Space, Callable[[Any], np.ndarray]] | None:
    """For a ``Discrete`` observation that the env itself decodes (``env.unwrapped.decode(i)`` yields
    the variables packed into index i, as Taxi's row, column, passenger and destination): the
    ``MultiDiscrete`` space of those variables (sizes read off decoding every index) and the decoder.
    A net learns the variables' regular dynamics where the packed index is a lookup table.
    None for any other env."""
    space, decode = env.observation_space, getattr(env.unwrapped, "decode", None)
    if not isinstance(space, gym.spaces.Discrete) or not callable(decode):
        return None

    def decoded(observation: Any) -> np.ndarray:
        return np.fromiter(decode(int(observation)), dtype=np.int64)

    table = np.stack([decoded(space.start + i) for i in range(int(space.n))])
    if table.ndim != 2 or (table < 0).any():
        raise ValueError(f"{type(env.unwrapped).__name__}.decode must yield non-negative integers, got {table[0]}")
    return gym.spaces.MultiDiscrete(table.max(0) + 1), decoded


def generic_planning(env: gym.Env, config: PlannerConfig) -> TaskPlanning | None:
    """Any gymnasium env with categorical observations (Discrete, MultiDiscrete, MultiBinary, or a
    Dict/Tuple of them, flattened) and Discrete actions: the observation plus the reward received is
    what the world model sees (no hidden state part: an MDP over observations), and the preference is
    the reward as log-preference, ``log p̃(o) = λ·r − log Z`` (λ = ``preference_precision``). By default
    (``planner.tail_value`` None) the planner looks one step ahead and adds the tail value, a backup over
    the observed transitions: a sparse reward is rarely within a short horizon, and a one-step plan is
    closed-loop where longer open-loop plans are not (stochastic tasks). With ``tail_value`` set, the
    configured horizon is used. The warm-up explores by novelty (``DirectedExploration``): random play
    rarely tries the pairs far from the start that a sparse reward lies behind. An index the env
    decodes is observed decoded (``decoded_observations``)."""
    space = env.observation_space
    if space_kind(space) == "continuous":
        return _generic_continuous(env, config)
    if not isinstance(env.action_space, gym.spaces.Discrete):
        raise ValueError(f"the planner needs Discrete actions on {type(env.unwrapped).__name__}, got {env.action_space}")
    action = space_part("action", env.action_space)
    if config.tail_value is None:
        config = dataclasses.replace(config, tail_value=True,
                                     policies=dataclasses.replace(config.policies, horizon=1))

    decoder = decoded_observations(env)
    if decoder is None:
        def observation(raw: Any) -> np.ndarray:
            return flat_observation(space, raw)
    else:
        space, observation = decoder

    def encoding(data: EpisodeData) -> TaskEncoding:
        return TaskEncoding([observation_part(space, reward_values(data)), action])

    def make_planner(model: WorldModel, seed: int) -> FactoredEFEPlanner:
        spec = model.encoding.parts["obs"]
        preference = VectorPreference(factor=len(spec.factors) - 1,
                                      log_p=reward_preference(spec.reward_values, config.preference_precision))
        return FactoredEFEPlanner(model, preference, config, seed=seed)

    return TaskPlanning(encoding, make_planner, config, model_preset="categorical",
                        observation=observation, warmup_policy="novelty")


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
    no_tail_value(config, "continuous observations")
    config = box_actions_by_cem(config, actions)

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
