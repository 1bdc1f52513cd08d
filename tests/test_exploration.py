"""Directed exploration by novelty: the bonus and its value iteration against hand values, and that it
covers a corridor random play does not."""
from __future__ import annotations

import numpy as np
import pytest

from diffaif.agents.aif import AIFConfig
from diffaif.planning.exploration import DirectedExploration, exploration_values, novelty


def test_novelty_is_the_dirichlet_information_gain_of_one_more_trial():
    assert novelty(np.array([0, 1, 3])).tolist() == [0.5, 0.25, 0.125]
    with pytest.raises(ValueError, match=">= 0"):
        novelty(np.array([-1]))


def test_an_untried_action_keeps_the_optimistic_bound():
    # one node; action 0 tried once (a self-loop), action 1 never: V = bound = ν(0)/(1-β) = 1 at β = 1/2
    q, v = exploration_values(np.array([[1.0, 0.0]]), np.array([0]), np.array([0]), np.array([0]),
                              np.array([1.0]), np.array([False]), np.array([0]), discount=0.5)
    assert q.tolist() == [[0.25 + 0.5 * 1.0, 1.0]] and v.tolist() == [1.0]


def test_a_terminated_episode_continues_from_the_start():
    # start 0 -a0-> 1, terminal (tried twice): V(0) = ν(2) + β V(0) → ν(2)/(1-β) = (1/6)/(1/2)
    q, v = exploration_values(np.array([[2.0], [0.0]]), np.array([0]), np.array([0]), np.array([1]),
                              np.array([2.0]), np.array([False, True]), np.array([0]), discount=0.5, sweeps=200)
    assert q[0, 0] == pytest.approx(1 / 3, abs=1e-12)


def corridor_coverage(policy: str, steps: int = 400, cells: int = 20, episode: int = 20) -> np.ndarray:
    """Trials of each (cell, action) pair on a corridor (0 left, 1 right, start at cell 0, an episode
    every ``episode`` steps) under directed exploration or random actions."""
    explorer, rng = DirectedExploration(2, seed=0), np.random.default_rng(0)
    trials, cell = np.zeros((cells, 2)), 0
    for t in range(steps):
        if t % episode == 0:
            cell = 0
            explorer.start(np.array([cell]))
        action = explorer.act(np.array([cell])) if policy == "novelty" else int(rng.integers(2))
        after = int(np.clip(cell + (1 if action else -1), 0, cells - 1))
        explorer.record(np.array([cell]), action, np.array([after]), False)
        trials[cell, action] += 1
        cell = after
    return trials


def test_directed_exploration_covers_a_corridor_random_play_does_not():
    directed, random = corridor_coverage("novelty"), corridor_coverage("random")
    assert directed.min() >= 1 and random.min() == 0
    assert (random[-3:] == 0).all()   # random play never reaches the far end


def test_exploration_needs_categorical_observations_and_a_random_hold_does_not_apply():
    with pytest.raises(ValueError, match="categorical"):
        DirectedExploration(2).act(np.array([0.5]))
    with pytest.raises(ValueError, match="warmup_hold"):
        AIFConfig(warmup_policy="novelty", warmup_hold=3)
    with pytest.raises(ValueError, match="warmup_policy must be one of"):
        AIFConfig(warmup_policy="curious")


def test_each_task_family_names_its_warm_up():
    from test_generic import SPACES, Chain

    from diffaif.envs import make_env
    from diffaif.planning.planner import PlannerConfig
    from diffaif.tasks import task_planning

    config = PlannerConfig(preference="sparse")
    assert task_planning(Chain(SPACES["Discrete"]), config).warmup_policy == "novelty"
    assert task_planning(make_env("MiniGrid-Empty-5x5-v0", obs_floor=True, obs_mode="state"),
                         config).warmup_policy == "novelty"
    assert task_planning(make_env("grid4x4"), config).warmup_policy == "random"
    assert task_planning(Chain(SPACES["Box"]), config).warmup_policy == "random"
