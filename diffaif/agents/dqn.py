"""Stable-Baselines3 algorithms (the ``baselines`` extra) behind the diffaif Agent interface: DQN
(Discrete actions), PPO (Discrete, Box, MultiDiscrete or MultiBinary actions) and SAC (Box actions).

``warm_up(env, steps, seed)`` trains the SB3 model for exactly ``steps`` environment interactions on
the agent's observation (whatever the env gives: MiniGrid's compact view, the hidden state, a cell
index, a classic-control state vector; SB3 one-hot encodes ``Discrete`` / ``MultiDiscrete``
spaces; a Tuple or Dict observation, which SB3's MlpPolicy cannot take, is flattened with gymnasium's
``FlattenObservation``); afterwards the agent acts deterministically on the learned policy (DQN:
greedy on the Q-network, ε-greedy with ``eval_epsilon`` > 0; PPO: the policy's mode; SAC: the mean
action) and does not learn during the evaluated episodes. Without warm-up it acts on the untrained
network.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

from diffaif.agents.base import Agent


@dataclass
class DQNConfig:
    """SB3 ``DQN`` hyperparameters (names as in SB3) plus the evaluation policy.

    ``net_arch``: hidden layer sizes of the Q-network (``policy_kwargs["net_arch"]``).
    ``eval_epsilon``: probability of a uniform random action when acting after warm-up (0: greedy).
    """

    policy: str = "MlpPolicy"
    learning_rate: float = 5e-4
    buffer_size: int = 50_000
    learning_starts: int = 1_000
    batch_size: int = 64
    tau: float = 1.0
    gamma: float = 0.99
    train_freq: int = 4
    gradient_steps: int = 1
    target_update_interval: int = 1_000
    exploration_fraction: float = 0.3
    exploration_initial_eps: float = 1.0
    exploration_final_eps: float = 0.05
    max_grad_norm: float = 10.0
    net_arch: list[int] = field(default_factory=lambda: [128, 128])
    eval_epsilon: float = 0.0
    device: str = "cpu"
    verbose: int = 0

    def __post_init__(self):
        _check_off_policy(self, positive=("target_update_interval",),
                          unit=("exploration_fraction", "exploration_initial_eps", "exploration_final_eps",
                                "eval_epsilon"))

    def sb3_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``stable_baselines3.DQN`` (all but policy, env and seed)."""
        return _sb3_kwargs(self, "target_update_interval", "exploration_fraction", "exploration_initial_eps",
                           "exploration_final_eps", "max_grad_norm")


@dataclass
class SACConfig:
    """SB3 ``SAC`` hyperparameters (names as in SB3; defaults as rl-baselines3-zoo's Pendulum-v1).

    ``ent_coef``: "auto" (learned entropy temperature), "auto_<initial value>" or a number as text.
    ``net_arch``: hidden layer sizes of actor and critics (``policy_kwargs["net_arch"]``).
    """

    policy: str = "MlpPolicy"
    learning_rate: float = 1e-3
    buffer_size: int = 100_000
    learning_starts: int = 100
    batch_size: int = 256
    tau: float = 0.005
    gamma: float = 0.99
    train_freq: int = 1
    gradient_steps: int = 1
    ent_coef: str = "auto"
    net_arch: list[int] = field(default_factory=lambda: [256, 256])
    device: str = "cpu"
    verbose: int = 0

    def __post_init__(self):
        _check_off_policy(self)
        self._ent_coef()

    def _ent_coef(self) -> str | float:
        if self.ent_coef.startswith("auto"):
            return self.ent_coef
        try:
            return float(self.ent_coef)
        except ValueError:
            raise ValueError(f"ent_coef must be 'auto', 'auto_<float>' or a number, got {self.ent_coef!r}") from None

    def sb3_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``stable_baselines3.SAC`` (all but policy, env and seed)."""
        return {**_sb3_kwargs(self), "ent_coef": self._ent_coef()}


COMMON_KEYS = ("learning_rate", "buffer_size", "learning_starts", "batch_size", "tau", "gamma", "train_freq",
               "gradient_steps", "device", "verbose")


def _check_off_policy(config: Any, positive: tuple[str, ...] = (), unit: tuple[str, ...] = ()) -> None:
    """The checks every off-policy SB3 config shares, plus ``positive`` (>= 1) and ``unit`` ([0, 1]) fields."""
    if not config.learning_rate > 0:
        raise ValueError(f"learning_rate must be > 0, got {config.learning_rate}")
    for name in ("buffer_size", "batch_size", "train_freq", "gradient_steps", *positive):
        if getattr(config, name) < 1:
            raise ValueError(f"{name} must be >= 1, got {getattr(config, name)}")
    if config.learning_starts < 0:
        raise ValueError(f"learning_starts must be >= 0, got {config.learning_starts}")
    for name in ("tau", "gamma", *unit):
        if not 0.0 <= getattr(config, name) <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {getattr(config, name)}")
    if any(int(n) < 1 for n in config.net_arch):
        raise ValueError(f"net_arch sizes must be >= 1, got {config.net_arch}")


@dataclass
class PPOConfig:
    """SB3 ``PPO`` hyperparameters (names and defaults as in SB3).

    ``net_arch``: hidden layer sizes of the policy and of the value network (each its own layers).
    PPO updates once per ``n_steps`` collected steps, so a warm-up budget below ``n_steps`` trains
    nothing, and steps after the last full rollout of the budget are collected but not learnt from.
    """

    policy: str = "MlpPolicy"
    learning_rate: float = 3e-4
    n_steps: int = 2048
    batch_size: int = 64
    n_epochs: int = 10
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_range: float = 0.2
    ent_coef: float = 0.0
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    net_arch: list[int] = field(default_factory=lambda: [64, 64])
    device: str = "cpu"
    verbose: int = 0

    def __post_init__(self):
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        for name in ("n_steps", "batch_size", "n_epochs"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("gamma", "gae_lambda"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        for name in ("clip_range", "max_grad_norm"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("ent_coef", "vf_coef"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if any(int(n) < 1 for n in self.net_arch):
            raise ValueError(f"net_arch sizes must be >= 1, got {self.net_arch}")

    def sb3_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``stable_baselines3.PPO`` (all but policy, env and seed)."""
        keys = ("learning_rate", "n_steps", "batch_size", "n_epochs", "gamma", "gae_lambda", "clip_range",
                "ent_coef", "vf_coef", "max_grad_norm", "device", "verbose")
        return {**{k: getattr(self, k) for k in keys}, "policy_kwargs": {"net_arch": [int(n) for n in self.net_arch]}}


def _sb3_kwargs(config: Any, *extra: str) -> dict[str, Any]:
    """SB3 constructor keywords: the common ones, ``extra`` fields, and ``net_arch`` as policy_kwargs."""
    kwargs = {k: getattr(config, k) for k in (*COMMON_KEYS, *extra)}
    kwargs["policy_kwargs"] = {"net_arch": [int(n) for n in config.net_arch]}
    return kwargs


def _sb3_class(algorithm: str):
    """The Stable-Baselines3 class named ``algorithm`` (``"DQN"``, ``"PPO"``, ``"SAC"``)."""
    try:
        import stable_baselines3
    except ImportError as err:  # the optional extra
        raise ImportError(f"the {algorithm} agent needs stable-baselines3: pip install -e '.[baselines]'") from err
    return getattr(stable_baselines3, algorithm)


def needs_flattening(space: gym.Space, policy: str) -> bool:
    """Whether SB3 needs observations of ``space`` flattened: a Tuple (SB3 takes none), or a Dict
    unless the policy is SB3's ``MultiInputPolicy``."""
    if isinstance(space, gym.spaces.Tuple):
        return True
    return isinstance(space, gym.spaces.Dict) and policy != "MultiInputPolicy"


def _rollout_ends_here(local_vars: dict[str, Any]) -> bool:
    """Whether the SB3 rollout being collected ends with the current step by itself (its locals:
    on-policy ``n_steps`` of ``n_rollout_steps``; off-policy ``train_freq`` in steps)."""
    if "n_rollout_steps" in local_vars:
        return local_vars["n_steps"] + 1 >= local_vars["n_rollout_steps"]
    train_freq = local_vars.get("train_freq")
    if train_freq is not None and getattr(train_freq.unit, "value", None) == "step":
        return local_vars["num_collected_steps"] >= train_freq.frequency
    return False


def _stop_at(total_timesteps: int):
    """An SB3 callback that ends ``learn`` once the model has taken ``total_timesteps`` steps.

    SB3 stops only between rollouts (``train_freq`` steps for DQN / SAC, ``n_steps`` for PPO), so a
    budget that is not a multiple would be overrun; this stops after the budget's last step. Where
    that step ends a rollout anyway the rollout completes and is learnt from, so a budget that is a
    multiple trains exactly as ``learn`` alone does.
    """
    from stable_baselines3.common.callbacks import BaseCallback

    class StopAtBudget(BaseCallback):
        def _on_step(self) -> bool:
            return self.num_timesteps < total_timesteps or _rollout_ends_here(self.locals)

    return StopAtBudget()


class SB3Agent(Agent):
    """An SB3 algorithm trained in ``warm_up``; acts on its deterministic policy (``model``: the SB3 model).

    Subclasses name the ``algorithm``, the ``action_space_types`` it handles and its ``config_class``
    (the default configuration). ``flatten``: whether observations are flattened for SB3
    (``needs_flattening``); the agent is still given and acts on the env's own observations.
    """

    algorithm: str
    action_space_types: tuple[type[gym.Space], ...]
    config_class: type

    def __init__(self, env: gym.Env, seed: int | None = None, config: Any = None):
        super().__init__(env, seed)
        self.config = config = config if config is not None else self.config_class()
        if not isinstance(env.action_space, self.action_space_types):
            handled = " or ".join(t.__name__ for t in self.action_space_types)
            raise ValueError(f"agent {self.name!r} (SB3 {self.algorithm}) needs a {handled} action space, "
                             f"got {env.action_space}")
        self.flatten = needs_flattening(env.observation_space, config.policy)
        self.model = _sb3_class(self.algorithm)(config.policy, self._sb3_env(env), seed=seed, **config.sb3_kwargs())

    def _sb3_env(self, env: gym.Env) -> gym.Env:
        """``env`` as the SB3 model sees it (observations flattened where needed)."""
        return gym.wrappers.FlattenObservation(env) if self.flatten else env

    def _sb3_observation(self, observation: Any) -> Any:
        """One observation of the env as the SB3 model sees it."""
        if self.flatten:
            return gym.spaces.flatten(self.env.observation_space, observation)
        return np.asarray(observation)

    def warm_up(self, env: gym.Env, steps: int, seed: int) -> int:
        """Train the SB3 model for ``steps`` interactions with ``env`` (episodes reset by SB3); return the
        count used."""
        if steps < 0:
            raise ValueError(f"steps must be >= 0, got {steps}")
        if steps == 0:
            return 0
        if getattr(env, "action_repeat", 1) != 1:
            raise ValueError(f"{self.name} counts its training budget in its own steps, so it cannot train on a task "
                             f"with action_repeat={env.action_repeat}: give it the task without action repeat")
        if env is not self.env:
            self.model.set_env(self._sb3_env(env))
        self.model.set_random_seed(int(seed) % 2**32)
        before = self.model.num_timesteps
        self.model.learn(total_timesteps=steps, reset_num_timesteps=False, progress_bar=False,
                         callback=_stop_at(before + steps))
        return int(self.model.num_timesteps - before)

    def act(self, observation: Any) -> Any:
        action, _ = self.model.predict(self._sb3_observation(observation), deterministic=True)
        return int(action) if isinstance(self.action_space, gym.spaces.Discrete) else action

    def predict(self, observation, state=None, episode_start=None, deterministic: bool = False):
        """SB3's ``predict`` of the trained model (its deterministic policy when ``deterministic``); a
        Tuple or Dict observation the model sees flattened must come one at a time, not batched."""
        if self.flatten:
            observation = self._sb3_observation(observation)
        return self.model.predict(observation, state=state, episode_start=episode_start, deterministic=deterministic)


class DQNAgent(SB3Agent):
    """SB3 DQN trained in ``warm_up``; acts on argmax Q."""

    name = "dqn"
    algorithm = "DQN"
    action_space_types = (gym.spaces.Discrete,)
    config_class = DQNConfig

    def __init__(self, env: gym.Env, seed: int | None = None, config: DQNConfig | None = None):
        super().__init__(env, seed, config)
        self._last_q = np.zeros(env.action_space.n)

    def q_values(self, observation: Any) -> np.ndarray:
        """Q(observation, ·) of the online network, shape (n_actions,)."""
        import torch

        obs_tensor, _ = self.model.policy.obs_to_tensor(self._sb3_observation(observation))
        with torch.no_grad():
            return self.model.q_net(obs_tensor)[0].cpu().numpy().astype(np.float64)

    def act(self, observation: Any) -> int:
        self._last_q = self.q_values(observation)
        if self.config.eval_epsilon > 0 and self.rng.random() < self.config.eval_epsilon:
            return int(self.rng.integers(self.action_space.n))
        return int(np.argmax(self._last_q))

    def step_log(self) -> dict[str, Any]:
        """Q-values of each action at the last decision."""
        return {"q_values": self._last_q.tolist()}


class PPOAgent(SB3Agent):
    """SB3 PPO trained in ``warm_up``; acts on the mode of its policy (argmax for Discrete actions)."""

    name = "ppo"
    algorithm = "PPO"
    action_space_types = (gym.spaces.Discrete, gym.spaces.Box, gym.spaces.MultiDiscrete, gym.spaces.MultiBinary)
    config_class = PPOConfig


class SACAgent(SB3Agent):
    """SB3 SAC trained in ``warm_up``; acts on the mean of its squashed Gaussian policy."""

    name = "sac"
    algorithm = "SAC"
    action_space_types = (gym.spaces.Box,)
    config_class = SACConfig


__all__ = ["DQNAgent", "DQNConfig", "PPOAgent", "PPOConfig", "SACAgent", "SACConfig", "SB3Agent", "needs_flattening"]
