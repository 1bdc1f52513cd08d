"""MiniGrid (``MiniGridTask``): the compact state and the observation vector as factored categories,
a preference over the tile under the agent, ``FactoredEFEPlanner``."""
from __future__ import annotations

import gymnasium as gym

from diffaif.data.encoding import TaskEncoding, space_part
from diffaif.envs.minigrid_task import CELL_NAMES, STATE_FIELDS, MiniGridTask
from diffaif.planning.planner import FactoredEFEPlanner, PlannerConfig
from diffaif.planning.preferences import PREFERENCE_KINDS, VectorPreference, outcome_log_preferences
from diffaif.tasks.base import TaskPlanning, find_wrapper


def minigrid_planning(env: gym.Env, config: PlannerConfig) -> TaskPlanning | None:
    """MiniGrid: the compact state and the observation vector as factored categories; the preference
    is over the tile under the agent (``obs_floor``): reaching the goal is preferred and lava avoided,
    with precision λ = ``preference_precision``. Subgoals (keys, doors) are not written anywhere:
    they follow from which rollouts the model says reach the goal. ``preference="shaped"`` (with
    ``obs_mode="state"``, whose observation holds both positions) also prefers, by
    ``distance_precision``, observations where the agent is fewer grid cells from the goal. The warm-up
    explores by novelty (``DirectedExploration``): in a larger room random play rarely opens the door and
    reaches the goal, which the tail value needs to have seen."""
    task = find_wrapper(env, MiniGridTask)
    if task is None or config.preference == "reward":   # "reward": the generic family's
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
                        config, model_preset="minigrid_tiny", warmup_policy="novelty")
