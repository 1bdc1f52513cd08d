"""Agents by name: a registry of (agent class, config class) and a factory that validates configs.

``make_agent(name, env, seed, overrides)`` validates ``overrides`` over the agent's config dataclass,
whose defaults are the only defaults (``make_agent("aif", env)`` is ``DiffusionAIFAgent(env)``; task
settings live in the experiment presets); add an agent with
``AGENTS["name"] = AgentSpec(AgentClass, ConfigClass or None)``.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import gymnasium as gym

from diffaif.agents.aif import AIFConfig, DiffusionAIFAgent
from diffaif.agents.base import Agent, env_steps
from diffaif.agents.bfs_oracle import BFSOracleAgent, BFSOracleConfig
from diffaif.agents.dqn import DQNAgent, DQNConfig, SACAgent, SACConfig
from diffaif.agents.oracle import OracleAgent, OracleConfig, bayes_filter_update
from diffaif.agents.qlearning import QLearningAgent, QLearningConfig
from diffaif.agents.random_agent import RandomAgent
from diffaif.config import ConfigError, build_config


class AgentSpec(NamedTuple):
    """An agent class built as ``agent_class(env, seed, config)``, or ``agent_class(env, seed)`` when
    ``config_class`` is None (an agent without parameters)."""

    agent_class: type[Agent]
    config_class: type | None


AGENTS: dict[str, AgentSpec] = {
    "random": AgentSpec(RandomAgent, None),
    "qlearning": AgentSpec(QLearningAgent, QLearningConfig),
    "oracle": AgentSpec(OracleAgent, OracleConfig),
    "aif": AgentSpec(DiffusionAIFAgent, AIFConfig),
    "bfs_oracle": AgentSpec(BFSOracleAgent, BFSOracleConfig),  # MiniGrid: shortest paths on the true grid
    "dqn": AgentSpec(DQNAgent, DQNConfig),  # Stable-Baselines3 DQN (the `baselines` extra)
    "sac": AgentSpec(SACAgent, SACConfig),  # Stable-Baselines3 SAC, Box actions (the `baselines` extra)
}


def agent_config(name: str, overrides: dict[str, Any] | None = None) -> Any:
    """The validated config of agent ``name``: its dataclass defaults ← ``overrides``.

    Returns None for an agent without a config class (then any key given is a ConfigError).
    """
    if name not in AGENTS:
        raise ValueError(f"unknown agent {name!r}; valid choices: {sorted(AGENTS)}")
    config_class = AGENTS[name].config_class
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
    spec = AGENTS[name]
    return spec.agent_class(env, seed) if spec.config_class is None else spec.agent_class(env, seed, config)


__all__ = [
    "AGENTS", "AIFConfig", "BFSOracleAgent", "BFSOracleConfig", "DQNAgent", "DQNConfig", "DiffusionAIFAgent",
    "Agent", "AgentSpec", "OracleAgent", "OracleConfig", "QLearningAgent", "QLearningConfig",
    "RandomAgent", "SACAgent", "SACConfig", "agent_config", "bayes_filter_update", "env_steps",
    "make_agent",
]
