"""The grid worlds: gymnasium conformity, exact model matrices, dynamics, rendering, input checks."""
from __future__ import annotations

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from diffaif.envs import ACTION_NAMES, GridWorld, make_env

UP, DOWN, LEFT, RIGHT = (ACTION_NAMES.index(a) for a in ("up", "down", "left", "right"))


@pytest.mark.parametrize("name", ["grid4x4", "grid8x8"])
def test_check_env_passes(name):
    check_env(make_env(name).unwrapped, skip_render_check=True)


@pytest.mark.parametrize("name", ["grid4x4", "grid8x8"])
def test_model_matrices_are_stochastic(name):
    env = make_env(name).unwrapped
    P, O = env.transition_matrix(), env.observation_matrix()
    assert P.shape == (env.n_cells, 4, env.n_cells) and O.shape == (env.n_cells, env.n_cells)
    np.testing.assert_allclose(P.sum(axis=2), 1.0)
    np.testing.assert_allclose(O.sum(axis=1), 1.0)
    assert np.all(P >= 0) and np.all(O >= 0)
    assert np.all(P[env.goal, :, env.goal] == 1.0)  # the goal is absorbing


def test_grid4x4_is_fully_observed_and_deterministic():
    env = make_env("grid4x4").unwrapped
    np.testing.assert_array_equal(env.observation_matrix(), np.eye(16))
    assert set(np.unique(env.transition_matrix())) == {0.0, 1.0}
    assert env.start == 0 and env.goal == 15
    assert env.distances()[env.start] == 6


def test_grid8x8_is_partially_observed():
    env = make_env("grid8x8").unwrapped
    O = env.observation_matrix()
    assert not np.allclose(O, np.eye(64))
    # A cell with observability 0.1 reports itself with probability 0.1, a neighbour otherwise.
    dark = 3 * 8 + 3
    assert O[dark, dark] == pytest.approx(0.1)
    assert O[dark, [dark - 8, dark + 8, dark - 1, dark + 1]] == pytest.approx([0.225] * 4)


def test_borders_and_walls_keep_the_agent_in_place():
    env = GridWorld(size=3, start=(0, 0), goal=(2, 2), walls=[(1, 0)])
    P = env.transition_matrix()
    assert P[0, UP, 0] == 1.0 and P[0, LEFT, 0] == 1.0  # border
    assert P[0, DOWN, 0] == 1.0  # wall at (1, 0)
    assert P[0, RIGHT, 1] == 1.0
    env.reset(seed=0)
    for action in (UP, LEFT, DOWN):
        obs, _, _, _, info = env.step(action)
        assert obs == 0 and info["state"] == 0
    obs, _, _, _, info = env.step(RIGHT)
    assert obs == 1 and info["state"] == 1
    assert env.distances()[0] == 4  # the wall forces the path right first


def test_slip_statistics_match_the_slip_probability():
    slip, n = 0.2, 4000
    env = make_env("grid4x4", slip=slip).unwrapped
    counts = np.zeros(env.n_cells)
    env.reset(seed=123)
    for _ in range(n):
        env.reset()
        _, _, _, _, info = env.step(RIGHT)
        counts[info["state"]] += 1
    # From (0, 0) going right: right w.p. 1 - slip + slip/4, stay (up, left bump) 2 slip/4, down slip/4.
    expected = {1: 1 - slip + slip / 4, 0: slip / 2, 4: slip / 4}
    np.testing.assert_allclose(env.transition_matrix()[0, RIGHT, list(expected)], list(expected.values()))
    for cell, p in expected.items():
        assert abs(counts[cell] / n - p) < 4 * np.sqrt(p * (1 - p) / n), (cell, counts[cell] / n, p)
    assert counts.sum() == counts[list(expected)].sum()


def test_episode_terminates_at_goal_with_reward_and_truncates_at_cap():
    env = make_env("grid4x4", max_steps=5).unwrapped
    env.reset(seed=0)
    for _ in range(4):
        _, reward, terminated, truncated, _ = env.step(RIGHT)
    assert (reward, terminated, truncated) == (0.0, False, False)
    _, reward, terminated, truncated, _ = env.step(RIGHT)  # 5th step: still in the corner, cap reached
    assert (reward, terminated, truncated) == (0.0, False, True)
    env.reset(seed=0)
    for action in (RIGHT, RIGHT, RIGHT, DOWN, DOWN):
        env.step(action)
    obs, reward, terminated, truncated, info = env.step(DOWN)
    assert (obs, reward, terminated, truncated, info["distance"]) == (15, 1.0, True, False, 0.0)


@pytest.mark.parametrize("name, size", [("grid4x4", 4), ("grid8x8", 8)])
def test_render_shapes(name, size):
    env = make_env(name, render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (16 * size, 16 * size, 3) and frame.dtype == np.uint8
    env = make_env(name, render_mode="ansi")
    env.reset(seed=0)
    text = env.render()
    rows = text.strip("\n").split("\n")
    assert len(rows) == size and all(len(row.split()) == size for row in rows)
    assert rows[0].split()[0] == "A" and rows[-1].split()[-1] == "G"


@pytest.mark.parametrize("kwargs, field", [
    (dict(size=1), "size"),
    (dict(slip=1.5), "slip"),
    (dict(obs_noise="gaussian"), "obs_noise"),
    (dict(render_mode="human"), "render_mode"),
    (dict(start=(4, 0)), "start"),
    (dict(goal=(0, -1)), "goal"),
    (dict(walls=[(9, 9)]), "wall"),
    (dict(walls=[(3, 3)]), "goal"),
    (dict(observability=np.ones((3, 3))), "observability"),
    (dict(observability=np.full((4, 4), 1.5)), "observability"),
])
def test_bad_constructor_input_names_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        GridWorld(**{"size": 4, **kwargs})


def test_make_env_rejects_unknown_names():
    with pytest.raises(ValueError, match="grid5x5"):
        make_env("grid5x5")
