"""Agents by name: a registry of (agent class, config class) and a factory that validates configs.

``make_agent(name, env, seed, overrides)`` validates ``overrides`` over the agent's config dataclass,
whose defaults are the only defaults (``make_agent("aif", env)`` is ``DiffusionAIFAgent(env)``; task
settings live in the experiment presets); add an agent with
``AGENTS["name"] = AgentSpec(AgentClass, ConfigClass or None)``.
"""
from __future__ import annotations

import importlib
from typing import Any, Callable, NamedTuple

import gymnasium as gym

from diffaif.lazy import lazy_attributes

from diffaif.agents.base import Agent, env_steps
from diffaif.config import ConfigError, build_config


class AgentSpec(NamedTuple):
    """An agent class built as ``agent_class(env, seed, config)``, or ``agent_class(env, seed)`` when
    ``config_class`` is None (an agent without parameters); ``agent_class`` may also be a function that
    picks the class for the env (the oracle's ``make_oracle``). Either may be given as ``"module:Name"``,
    imported when the agent is first built, so comparing light agents never imports torch or SB3."""

    agent_class: type[Agent] | Callable[..., Agent] | str
    config_class: type | str | None


def _resolve(reference: type | str | None) -> Any:
    """A class, or the object a ``"module:Name"`` reference names."""
    if not isinstance(reference, str):
        return reference
    module, _, name = reference.partition(":")
    return getattr(importlib.import_module(module), name)


AGENTS: dict[str, AgentSpec] = {
    "random": AgentSpec("diffaif.agents.random_agent:RandomAgent", None),
    "qlearning": AgentSpec("diffaif.agents.qlearning:QLearningAgent", "diffaif.agents.qlearning:QLearningConfig"),
    # the true model: value iteration on a diffaif grid's matrices or a gymnasium env's tabular P
    "oracle": AgentSpec("diffaif.agents.oracle:make_oracle", "diffaif.agents.oracle:OracleConfig"),
    "aif": AgentSpec("diffaif.agents.aif:DiffusionAIFAgent", "diffaif.agents.aif:AIFConfig"),
    # MiniGrid from the egocentric view: a belief map, a diffusion model of its unseen cells
    "aif_map": AgentSpec("diffaif.agents.map_aif:MapAIFAgent", "diffaif.agents.map_aif:MapAIFConfig"),
    # MiniGrid: shortest paths on the true grid
    "bfs_oracle": AgentSpec("diffaif.agents.bfs_oracle:BFSOracleAgent", "diffaif.agents.bfs_oracle:BFSOracleConfig"),
    # Stable-Baselines3 DQN, PPO and SAC (the `baselines` extra); DQN for Discrete actions, SAC for Box
    "dqn": AgentSpec("diffaif.agents.dqn:DQNAgent", "diffaif.agents.dqn:DQNConfig"),
    "ppo": AgentSpec("diffaif.agents.dqn:PPOAgent", "diffaif.agents.dqn:PPOConfig"),
    "sac": AgentSpec("diffaif.agents.dqn:SACAgent", "diffaif.agents.dqn:SACConfig"),
    # classic control: the aif planner on rollouts of the true simulator (a reference, learns nothing)
    "true_dynamics": AgentSpec("diffaif.agents.true_dynamics:TrueDynamicsAgent", "diffaif.agents.aif:AIFConfig"),
}

# What an agent needs of an env family, set unless the user states otherwise (compare's env_kwargs or
# agent_env win): the active-inference agent on MiniGrid prefers the tile under it (obs_floor), plans
# on vector observations (obs_index 0) and, with its default shaped preference, observes positions.
AGENT_ENV_DEFAULTS: dict[str, dict[str, dict[str, Any]]] = {
    "aif": {"minigrid": {"obs_floor": True, "obs_index": 0, "obs_mode": "state"}},
    "aif_map": {"minigrid": {"obs_mode": "view", "obs_direction": True, "obs_floor": False, "obs_index": 0}},
}


def agent_env_options(name: str, env_name: str) -> dict[str, Any]:
    """The env options agent ``name`` needs on ``env_name`` by default (``AGENT_ENV_DEFAULTS``)."""
    from diffaif.envs import is_minigrid_id

    family = "minigrid" if is_minigrid_id(env_name) else None
    return dict(AGENT_ENV_DEFAULTS.get(name, {}).get(family, {}))


def agent_config(name: str, overrides: dict[str, Any] | None = None) -> Any:
    """The validated config of agent ``name``: its dataclass defaults ← ``overrides``.

    Returns None for an agent without a config class (then any key given is a ConfigError).
    """
    if name not in AGENTS:
        raise ValueError(f"unknown agent {name!r}; valid choices: {sorted(AGENTS)}")
    config_class = _resolve(AGENTS[name].config_class)
    layers = [dict(overrides or {})]
    if config_class is None:
        given = set(layers[0])
        if given:
            raise ConfigError(f"agent {name!r} takes no config; got keys {sorted(given)}")
        return None
    try:
        return build_config(config_class, layers)
    except ConfigError as err:
        raise ConfigError(f"agent.{name}: {err}") from None
    except ValueError as err:  # a dataclass __post_init__ check on a value
        raise ConfigError(f"bad config for agent {name!r}: {err}") from None


def make_agent(name: str, env: gym.Env, seed: int | None = None, overrides: dict[str, Any] | None = None) -> Agent:
    """Build agent ``name`` for ``env`` with its validated config (see ``agent_config``)."""
    config = agent_config(name, overrides)
    agent_class = _resolve(AGENTS[name].agent_class)
    return agent_class(env, seed) if AGENTS[name].config_class is None else agent_class(env, seed, config)


# the agent classes and configs, importable from here; loaded on first access (module __getattr__)
_EXPORTS = {
    "AIFConfig": "diffaif.agents.aif", "DiffusionAIFAgent": "diffaif.agents.aif",
    "MapAIFAgent": "diffaif.agents.map_aif", "MapAIFConfig": "diffaif.agents.map_aif",
    "BFSOracleAgent": "diffaif.agents.bfs_oracle", "BFSOracleConfig": "diffaif.agents.bfs_oracle",
    "DQNAgent": "diffaif.agents.dqn", "DQNConfig": "diffaif.agents.dqn",
    "SACAgent": "diffaif.agents.dqn", "SACConfig": "diffaif.agents.dqn",
    "PPOAgent": "diffaif.agents.dqn", "PPOConfig": "diffaif.agents.dqn",
    "OracleAgent": "diffaif.agents.oracle", "OracleConfig": "diffaif.agents.oracle",
    "TabularOracleAgent": "diffaif.agents.oracle", "make_oracle": "diffaif.agents.oracle",
    "bayes_filter_update": "diffaif.agents.oracle",
    "QLearningAgent": "diffaif.agents.qlearning", "QLearningConfig": "diffaif.agents.qlearning",
    "RandomAgent": "diffaif.agents.random_agent",
    "TrueDynamicsAgent": "diffaif.agents.true_dynamics",
}


__getattr__ = lazy_attributes(__name__, _EXPORTS)


__all__ = [
    "AGENTS", "AGENT_ENV_DEFAULTS", "AIFConfig", "BFSOracleAgent", "BFSOracleConfig", "DQNAgent", "DQNConfig", "DiffusionAIFAgent",
    "Agent", "MapAIFAgent", "MapAIFConfig", "AgentSpec", "OracleAgent", "OracleConfig", "PPOAgent", "PPOConfig", "QLearningAgent", "QLearningConfig",
    "RandomAgent", "SACAgent", "TrueDynamicsAgent", "SACConfig", "TabularOracleAgent", "agent_config", "agent_env_options", "bayes_filter_update", "env_steps",
    "make_agent", "make_oracle",
]
