"""Classic control (``ControlTask``): continuous states and observations, hand-written Gaussian
preferences per task (CartPole, MountainCar, Pendulum), ``ContinuousPlanner``."""
from __future__ import annotations

import dataclasses
from typing import Sequence

import gymnasium as gym
import numpy as np

from diffaif.data.encoding import PartSpec, TaskEncoding
from diffaif.data.episodes import EpisodeData, window_displacements
from diffaif.envs.control import MOUNTAIN_CAR_FLAG, ControlTask
from diffaif.planning.continuous import ContinuousConfig, ContinuousPlanner, GaussianPreference
from diffaif.planning.planner import PlannerConfig
from diffaif.tasks.base import TaskPlanning, box_actions_by_cem, no_tail_value


def cartpole_preference() -> GaussianPreference:
    """CartPole (x, ẋ, θ, θ̇): upright (θ = 0, σ 0.05 rad: the pole falls at 0.21) and centred
    (x = 0, σ 0.5: the track ends at ±2.4); no preference on the speeds. (A preference for slow
    speeds, σ 0.5, made even a planner with the true simulator drop the pole: catching it needs a fast
    cart. Planning on the true dynamics with 32 random 10-step sequences gave 500 in 6 of 6 episodes
    with these scales, 386-486 with speed preferences or other position scales.)"""
    return GaussianPreference((0.0, 0.0, 0.0, 0.0), (0.5, float("inf"), 0.05, float("inf")), (False,) * 4)


def mountaincar_preference() -> GaussianPreference:
    """MountainCar (x, ẋ): at the flag, x ≥ 0.5 (one-sided, σ 0.1 below it); no preference on speed."""
    return GaussianPreference((MOUNTAIN_CAR_FLAG, 0.0), (0.1, float("inf")), (True, False))


def pendulum_preference() -> GaussianPreference:
    """Pendulum (cos θ, sin θ, θ̇): upright (cos θ = 1, sin θ = 0; σ 0.3) and still (θ̇ = 0, σ 1 rad/s),
    weighted like gymnasium's cost θ² + 0.1 θ̇². (The speed term makes a swing-up costly before it pays:
    on the true dynamics Box CEM with 32 candidates and plans of 5 decisions of 3 env steps scores −502
    over 6 episodes, one never swung up; with σ_θ̇ 2 or 3 rad/s, −147, every one swung up and held.)"""
    return GaussianPreference((1.0, 0.0, 0.0), (0.3, 0.3, 1.0), (False,) * 3)


PREFERENCES = {"cartpole": cartpole_preference, "mountaincar": mountaincar_preference,
               "pendulum": pendulum_preference}


def control_preference(family: str, config: ContinuousConfig) -> GaussianPreference:
    """The preference of task ``family`` (or ``config.preference`` when it is not "auto")."""
    name = family if config.preference == "auto" else config.preference
    if name not in PREFERENCES:
        raise ValueError(f"no preference for task family {name!r}; set planner.continuous.preference to one of "
                         f"{sorted(PREFERENCES)}")
    preference = dataclasses.replace(PREFERENCES[name](), floor=config.preference_floor)
    if config.preference_scales is None:
        return preference
    if len(config.preference_scales) != len(preference.target):
        raise ValueError(f"preference_scales has {len(config.preference_scales)} entries, the {name} preference "
                         f"{len(preference.target)} dimensions")
    return dataclasses.replace(preference, scale=tuple(float(s) for s in config.preference_scales))


def _control_parts(env: gym.Env) -> list[PartSpec]:
    """State and observation continuous (the observation's size), the action categorical or continuous."""
    obs_dim, space = int(env.observation_space.shape[0]), env.action_space
    if isinstance(space, gym.spaces.Discrete):
        action = PartSpec("action", "categorical", int(space.n))
    elif isinstance(space, gym.spaces.Box) and len(space.shape) == 1:
        action = PartSpec("action", "continuous", int(space.shape[0]))
    else:
        raise ValueError(f"control tasks need a Discrete or flat Box action space, got {space}")
    return [PartSpec("state", "continuous", obs_dim), PartSpec("obs", "continuous", obs_dim), action]


def unit_control_encoding(env: gym.Env) -> TaskEncoding:
    """The control layout with mean 0 and std 1 everywhere: for planning on the true dynamics, where no
    model is trained on standardised values."""
    return TaskEncoding([dataclasses.replace(p, mean=(0.0,) * p.size, std=(1.0,) * p.size)
                         if p.kind == "continuous" else p for p in _control_parts(env)])


def control_encoding(env: gym.Env, data: EpisodeData, min_scale: float = 0.0, anchored: Sequence[int] = (),
                     span: int = 1) -> TaskEncoding:
    """State and observation continuous, standardised by ``data`` with σ_j ≥ ``min_scale`` × half-range
    of the observation space's dimension j where it is bounded; ``anchored`` dimensions standardised by
    their displacements within windows of ``span`` steps instead (no floor); action categorical
    (Discrete) or continuous (Box, standardised by the actions in ``data``)."""
    obs_dim = int(env.observation_space.shape[0])
    encoding = TaskEncoding(_control_parts(env), anchored)
    action = encoding.parts["action"]
    stats = {"state": data.states, "obs": data.observations}
    if action.kind == "continuous":
        stats["action"] = data.actions
    encoding = encoding.fitted(**stats)
    moved = encoding.fitted(**dict(zip(("state", "obs"), window_displacements(data, span)))) if anchored else encoding
    is_anchored = np.isin(np.arange(obs_dim), list(anchored))
    # the wrapped env's own bounds: ControlTask widens the observation space to ±inf under sensor noise
    bounds = env.unwrapped.observation_space
    half_range = np.where(np.isfinite(bounds.high - bounds.low), (bounds.high - bounds.low) / 2, 0.0)
    floor = np.where(is_anchored, 0.0, min_scale * half_range.astype(np.float64))

    def standardised(spec: PartSpec) -> PartSpec:
        if spec.name not in ("state", "obs"):
            return spec
        mean = np.where(is_anchored, moved.parts[spec.name].mean, spec.mean)
        std = np.maximum(np.where(is_anchored, moved.parts[spec.name].std, spec.std), floor)
        return dataclasses.replace(spec, mean=tuple(mean.tolist()), std=tuple(std.tolist()))

    return TaskEncoding([standardised(spec) for spec in encoding.parts.values()], anchored)


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
    no_tail_value(config, "control tasks")
    config = box_actions_by_cem(config, env.action_space)
    config.continuous.check_action_space(env.action_space)   # before any training, not after it
    preference = control_preference(env.family, config.continuous)
    span = config.context + 1 + config.policies.horizon  # the planning window
    return TaskPlanning(lambda data: control_encoding(env, data, config.continuous.min_scale,
                                                      config.continuous.anchored, span),
                        lambda models, seed: ContinuousPlanner(models, preference, env.action_space, config, seed),
                        config, model_preset="control")
