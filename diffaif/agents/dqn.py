"""DQN from Stable-Baselines3 (the ``baselines`` extra) behind the diffaif Agent interface.

``warm_up(env, steps, seed)`` trains SB3's ``DQN`` for ``steps`` environment interactions on the
agent's observation (whatever the env gives: MiniGrid's compact view, the hidden state, a cell
index; SB3 one-hot encodes ``Discrete`` / ``MultiDiscrete`` spaces); afterwards the agent acts
greedily on the learned Q-network (ε-greedy with ``eval_epsilon`` > 0) and does not learn during
the evaluated episodes. Without warm-up it acts on the untrained network.
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
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        for name in ("buffer_size", "batch_size", "train_freq", "gradient_steps", "target_update_interval"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.learning_starts < 0:
            raise ValueError(f"learning_starts must be >= 0, got {self.learning_starts}")
        for name in ("tau", "gamma", "exploration_fraction", "exploration_initial_eps", "exploration_final_eps",
                     "eval_epsilon"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if any(int(n) < 1 for n in self.net_arch):
            raise ValueError(f"net_arch sizes must be >= 1, got {self.net_arch}")

    def sb3_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``stable_baselines3.DQN`` (all but policy, env and seed)."""
        keys = ("learning_rate", "buffer_size", "learning_starts", "batch_size", "tau", "gamma", "train_freq",
                "gradient_steps", "target_update_interval", "exploration_fraction", "exploration_initial_eps",
                "exploration_final_eps", "max_grad_norm", "device", "verbose")
        kwargs = {k: getattr(self, k) for k in keys}
        kwargs["policy_kwargs"] = {"net_arch": [int(n) for n in self.net_arch]}
        return kwargs


def _dqn_class():
    try:
        from stable_baselines3 import DQN
    except ImportError as err:  # the optional extra
        raise ImportError("DQNAgent needs stable-baselines3: pip install -e '.[baselines]'") from err
    return DQN


class DQNAgent(Agent):
    """SB3 DQN trained in ``warm_up``; acts on argmax Q (``model``: the SB3 ``DQN``)."""

    name = "dqn"

    def __init__(self, env: gym.Env, seed: int | None = None, config: DQNConfig | None = None):
        super().__init__(env, seed)
        self.config = config if config is not None else DQNConfig()
        if not isinstance(env.action_space, gym.spaces.Discrete):
            raise ValueError(f"DQNAgent needs a Discrete action space, got {env.action_space}")
        self.model = _dqn_class()(self.config.policy, env, seed=seed, **self.config.sb3_kwargs())
        self._last_q = np.zeros(env.action_space.n)

    def warm_up(self, env: gym.Env, steps: int, seed: int) -> int:
        """Train DQN for ``steps`` interactions with ``env`` (episodes reset by SB3); return the count used."""
        if steps < 0:
            raise ValueError(f"steps must be >= 0, got {steps}")
        if steps == 0:
            return 0
        if env is not self.env:
            self.model.set_env(env)
        self.model.set_random_seed(int(seed) % 2**32)
        before = self.model.num_timesteps
        self.model.learn(total_timesteps=steps, reset_num_timesteps=False, progress_bar=False)
        return int(self.model.num_timesteps - before)

    def q_values(self, observation: Any) -> np.ndarray:
        """Q(observation, ·) of the online network, shape (n_actions,)."""
        import torch

        obs_tensor, _ = self.model.policy.obs_to_tensor(np.asarray(observation))
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

    def predict(self, observation, state=None, episode_start=None, deterministic: bool = False):
        """SB3's ``predict`` of the trained model (greedy when ``deterministic``)."""
        return self.model.predict(observation, state=state, episode_start=episode_start, deterministic=deterministic)


__all__ = ["DQNAgent", "DQNConfig"]
