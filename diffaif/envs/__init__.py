"""Tasks: the paper's grid worlds, registered with gymnasium, and a name-based factory."""
from __future__ import annotations

from typing import Any

import gymnasium as gym

from diffaif.envs.control import CONTROL_IDS, ControlTask, is_control_id, make_control_task
from diffaif.envs.grid import ACTION_NAMES, ACTIONS, GridWorld
from diffaif.envs.minigrid_task import MiniGridTask, ShortestPaths, is_minigrid_id, make_minigrid_task
from diffaif.envs.success import RewardSuccess

# Observability level of each cell of the default 8x8 grid (1 = always observed correctly).
# A dark basin in the middle: the direct diagonal path crosses it, the border stays lit.
GRID8X8_OBSERVABILITY = [
    [1.0, 1.0, 1.0, 1.0, 0.9, 0.9, 1.0, 1.0],
    [1.0, 0.8, 0.6, 0.6, 0.5, 0.6, 0.8, 1.0],
    [1.0, 0.6, 0.3, 0.2, 0.2, 0.4, 0.7, 1.0],
    [0.9, 0.5, 0.2, 0.1, 0.1, 0.3, 0.6, 0.9],
    [0.9, 0.6, 0.3, 0.1, 0.2, 0.3, 0.6, 0.9],
    [1.0, 0.7, 0.4, 0.3, 0.3, 0.4, 0.7, 1.0],
    [1.0, 0.8, 0.7, 0.6, 0.6, 0.7, 0.8, 1.0],
    [1.0, 1.0, 1.0, 0.9, 0.9, 1.0, 1.0, 1.0],
]

# name -> (gymnasium id, default keyword arguments)
TASKS: dict[str, tuple[str, dict[str, Any]]] = {
    "grid4x4": (
        "diffaif/Grid4x4-v0",
        dict(size=4, start=(0, 0), goal=(3, 3), max_steps=100),
    ),
    "grid8x8": (
        "diffaif/Grid8x8-v0",
        dict(size=8, start=(0, 0), goal=(7, 7), slip=0.1, observability=GRID8X8_OBSERVABILITY,
             obs_noise="neighbour", max_steps=200),
    ),
}

# Episode cap of a plain gymnasium id registered without one (CliffWalking): a policy that never
# reaches the goal would otherwise run one episode forever.
DEFAULT_MAX_EPISODE_STEPS = 1000

for _name, (_gym_id, _kwargs) in TASKS.items():
    if _gym_id not in gym.registry:
        gym.register(id=_gym_id, entry_point="diffaif.envs.grid:GridWorld", kwargs=_kwargs)


def make_env(name: str, **overrides: Any) -> gym.Env:
    """Build a task by diffaif name (``grid4x4``) or any registered gymnasium id.

    ``overrides`` replace the task's default keyword arguments. MiniGrid ids (``MiniGrid-*``,
    ``BabyAI-*``, or any id as ``minigrid:<id>``) return the ``MiniGridTask`` wrapper
    (``make_minigrid_task``: wrapper options and env options both go in ``overrides``). Classic-control
    ids (``CONTROL_IDS``, or any id as ``control:<id>``) return the ``ControlTask`` wrapper
    (``make_control_task``: ``obs_noise`` and env options in ``overrides``). Any other registered
    gymnasium id is wrapped in ``RewardSuccess`` (success: terminated with a positive reward, unless the
    env sets ``info["success"]`` itself) and, if registered without an episode cap, gets
    ``DEFAULT_MAX_EPISODE_STEPS`` (``max_episode_steps`` in ``overrides`` sets another).
    """
    if is_minigrid_id(name):
        return make_minigrid_task(name, **overrides)
    if is_control_id(name):
        return make_control_task(name, **overrides)
    if name in TASKS:
        gym_id, _ = TASKS[name]
    elif name in gym.registry:
        gym_id = name
    else:
        raise ValueError(f"unknown env {name!r}; valid choices: {sorted(TASKS)} or a registered gymnasium id")
    is_grid = any(gym_id == grid_id for grid_id, _ in TASKS.values())  # the harness's own success rule
    if not is_grid and gym.spec(gym_id).max_episode_steps is None:
        overrides = {"max_episode_steps": DEFAULT_MAX_EPISODE_STEPS, **overrides}
    try:
        env = gym.make(gym_id, disable_env_checker=True, **overrides)
    except TypeError as err:
        if "unexpected keyword argument" not in str(err):
            raise
        spec = gym.spec(gym_id)
        raise ValueError(f"bad env option for {name!r}: {err}; default options: {sorted(spec.kwargs)}") from None
    return env if is_grid else RewardSuccess(env)


__all__ = ["ACTIONS", "ACTION_NAMES", "CONTROL_IDS", "DEFAULT_MAX_EPISODE_STEPS", "ControlTask", "GRID8X8_OBSERVABILITY", "GridWorld",
           "MiniGridTask", "RewardSuccess", "ShortestPaths", "TASKS", "is_control_id", "is_minigrid_id", "make_control_task", "make_env", "make_minigrid_task"]
