"""Gymnasium classic control (CartPole, MountainCar, Pendulum, ...) as diffaif tasks.

``ControlTask`` wraps an unmodified gymnasium env: the hidden state is the env's own (noise-free)
observation vector, reported as ``info["state"]`` (float64); the agent's observation is that vector
plus optional Gaussian sensor noise of standard deviation ``obs_noise`` per dimension (noise > 0 makes
the task partially observed). ``info["success"]`` says whether the task is solved: CartPole survived
to the time limit, MountainCar reached the flag, Pendulum is upright and nearly still; where a
distance to the goal means something it is ``info["distance"]`` (MountainCar: to the flag,
Pendulum: angle from upright). With ``action_repeat`` k > 1 one step holds the action for k env steps
(fewer when the episode ends first), returns their summed reward and the last observation, and reports
the env steps it took as ``info["env_steps"]`` so budgets stay counted in env steps; the env's time
limit still counts env steps. A world model of such a task predicts k env steps per step, so a plan
of H steps looks kH env steps ahead.
"""
from __future__ import annotations

import copy
from typing import Any, Callable

import gymnasium as gym
import numpy as np

CONTROL_PREFIX = "control:"
CONTROL_IDS: frozenset[str] = frozenset({
    "CartPole-v1", "CartPole-v0", "MountainCar-v0", "MountainCarContinuous-v0", "Pendulum-v1", "Acrobot-v1",
})

MOUNTAIN_CAR_FLAG = 0.5          # position of the flag (gymnasium's goal_position)
PENDULUM_UPRIGHT_ANGLE = 0.2     # rad: "upright" for Pendulum's success
PENDULUM_STILL_SPEED = 1.0       # rad/s: "still" for Pendulum's success


def task_family(gym_id: str) -> str:
    """The task family of a gymnasium id: ``"CartPole-v1"`` -> ``"cartpole"``, ``"MountainCarContinuous-v0"``
    -> ``"mountaincar"``; other ids give their lower-cased name without version."""
    name = gym_id.split("/")[-1].split("-v")[0].lower()
    return "mountaincar" if name.startswith("mountaincar") else name


def _pendulum_angle(state: np.ndarray) -> float:
    """θ in (−π, π] from Pendulum's (cos θ, sin θ, θ̇) state; 0 is upright."""
    return float(np.arctan2(state[1], state[0]))


def _cartpole_status(state: np.ndarray, terminated: bool, truncated: bool) -> dict[str, Any]:
    return {"success": bool(truncated and not terminated)}


def _mountaincar_status(state: np.ndarray, terminated: bool, truncated: bool) -> dict[str, Any]:
    return {"success": bool(state[0] >= MOUNTAIN_CAR_FLAG), "distance": float(max(0.0, MOUNTAIN_CAR_FLAG - state[0]))}


def _pendulum_status(state: np.ndarray, terminated: bool, truncated: bool) -> dict[str, Any]:
    angle = abs(_pendulum_angle(state))
    return {"success": bool(angle < PENDULUM_UPRIGHT_ANGLE and abs(state[2]) < PENDULUM_STILL_SPEED),
            "distance": angle}


# family -> status(state, terminated, truncated) -> {"success": ..., ["distance": ...]}; families not
# listed get no entries (the harness then counts termination as success).
TASK_STATUS: dict[str, Callable[[np.ndarray, bool, bool], dict[str, Any]]] = {
    "cartpole": _cartpole_status,
    "mountaincar": _mountaincar_status,
    "pendulum": _pendulum_status,
}


def is_control_id(name: str) -> bool:
    """Whether ``name`` is routed to ``ControlTask``: a known classic-control id or ``control:<any id>``."""
    return name.startswith(CONTROL_PREFIX) or name in CONTROL_IDS


class ControlTask(gym.Wrapper):
    """A classic-control env with ``info["state"]``, optional sensor noise and a success flag."""

    def __init__(self, env: gym.Env, obs_noise: float = 0.0, action_repeat: int = 1):
        super().__init__(env)
        if not isinstance(env.observation_space, gym.spaces.Box) or len(env.observation_space.shape) != 1:
            raise ValueError(f"ControlTask needs a flat Box observation space, got {env.observation_space}")
        if obs_noise < 0:
            raise ValueError(f"obs_noise must be >= 0, got {obs_noise}")
        if isinstance(action_repeat, bool) or not isinstance(action_repeat, (int, np.integer)) or action_repeat < 1:
            raise ValueError(f"action_repeat must be an integer >= 1, got {action_repeat!r}")
        self.obs_noise = float(obs_noise)
        self.action_repeat = int(action_repeat)
        self.family = task_family(env.spec.id if env.spec is not None else type(env.unwrapped).__name__)
        self._status = TASK_STATUS.get(self.family)
        self._noise_rng = np.random.default_rng()
        if self.obs_noise > 0:  # noisy readings may leave the true state's bounds
            shape = env.observation_space.shape
            self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape, dtype=env.observation_space.dtype)

    def _observe(self, state: np.ndarray) -> np.ndarray:
        noisy = state + self.obs_noise * self._noise_rng.standard_normal(state.shape) if self.obs_noise else state
        return noisy.astype(self.observation_space.dtype)

    def _info(self, info: dict, state: np.ndarray, terminated: bool, truncated: bool) -> dict:
        status = self._status(state, terminated, truncated) if self._status else {}
        return {**info, "state": state, **status}

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self._noise_rng = np.random.default_rng(seed)
        obs, info = self.env.reset(seed=seed, options=options)
        state = np.asarray(obs, dtype=np.float64)
        return self._observe(state), self._info(info, state, False, False)

    def step(self, action):
        # gymnasium's RepeatAction does not say how many env steps it took, which the budgets need
        total, terminated, truncated, taken = 0.0, False, False, 0
        while taken < self.action_repeat and not (terminated or truncated):
            obs, reward, terminated, truncated, info = self.env.step(action)
            total += float(reward)
            taken += 1
        state = np.asarray(obs, dtype=np.float64)
        info = {**self._info(info, state, terminated, truncated), "env_steps": taken}
        return self._observe(state), total, terminated, truncated, info

    def env_action(self, action: Any) -> Any:
        """One step of an action sequence as ``step`` takes it: an int (Discrete) or a float32 array (Box)."""
        if isinstance(self.action_space, gym.spaces.Discrete):
            return int(action)
        return np.asarray(action, dtype=np.float32)

    def simulate(self, actions: np.ndarray) -> np.ndarray:
        """The observations (H, d) that ``actions`` ((H,) Discrete or (H, d_a) Box) would give from the
        current state, run on a copy: this env is left as it was. After a termination the last
        observation is repeated, as the world model's absorbing padding does."""
        twin = copy.deepcopy(self)
        observations, done = [], False
        for action in actions:
            if not done:
                obs, _, terminated, truncated, _ = twin.step(self.env_action(action))
                done = terminated or truncated
            observations.append(obs)
        return np.asarray(observations)


def make_control_task(name: str, obs_noise: float = 0.0, action_repeat: int = 1, **env_kwargs: Any) -> ControlTask:
    """``ControlTask`` around ``gym.make(id, **env_kwargs)``; ``name`` is an id or ``control:<id>``."""
    gym_id = name[len(CONTROL_PREFIX):] if name.startswith(CONTROL_PREFIX) else name
    if gym_id not in gym.registry:
        raise ValueError(f"unknown gymnasium id {gym_id!r} for a control task; e.g. {sorted(CONTROL_IDS)}")
    return ControlTask(gym.make(gym_id, **env_kwargs), obs_noise=obs_noise, action_repeat=action_repeat)
