import numpy as np
import pytest

from diffaif.data import (EpisodeData, PartSpec, TaskEncoding, bayes_filter_update, collect_episodes, filter_beliefs,
                          grid_encoding, load_episodes, predict_observations, save_episodes, windows)
from diffaif.data.episodes import window_displacements
from diffaif.envs import make_env


@pytest.fixture(scope="module")
def env():
    return make_env("grid4x4")


def test_one_hot_scaled_to_pm1_and_absent_token():
    enc = TaskEncoding([PartSpec("state", "categorical", 3), PartSpec("obs", "categorical", 2),
                        PartSpec("action", "categorical", 2)])
    x = enc.encode(np.array([2, -1]), np.array([0, -1]), np.array([1, -1]))
    assert x.dtype == np.float32 and x.shape == (2, 7)
    np.testing.assert_array_equal(x[0], [-1, -1, 1, 1, -1, -1, 1])
    np.testing.assert_array_equal(x[1], -np.ones(7))  # absent token
    assert enc.slice("obs") == slice(3, 5)


def test_grid_encoding_round_trip(env):
    enc = grid_encoding(env)
    assert enc.dim == 16 + 16 + 4
    rng = np.random.default_rng(0)
    s, o, a = rng.integers(0, 16, (3, 5)), rng.integers(0, 16, (3, 5)), rng.integers(0, 4, (3, 5))
    decoded = enc.decode(enc.encode(s, o, a))
    np.testing.assert_array_equal(decoded["state"], s)
    np.testing.assert_array_equal(decoded["obs"], o)
    np.testing.assert_array_equal(decoded["action"], a)
    assert TaskEncoding.from_dict(enc.to_dict()) == enc
    assert enc.logits(enc.encode(s, o, a), "action").shape == (3, 5, 4)


def test_continuous_part_standardised_and_round_trip():
    enc = TaskEncoding([PartSpec("state", "continuous", 2), PartSpec("obs", "continuous", 2),
                        PartSpec("action", "categorical", 3)])
    rng = np.random.default_rng(1)
    s = rng.normal(5.0, 3.0, (100, 2))
    enc = enc.fitted(state=s, obs=s)
    x = enc.encode(s, s, np.zeros(100, dtype=int))
    np.testing.assert_allclose(x[:, :2].mean(0), 0, atol=1e-6)
    np.testing.assert_allclose(x[:, :2].std(0), 1, atol=1e-5)
    np.testing.assert_allclose(enc.decode(x)["state"], s, atol=1e-5)
    absent = enc.encode(np.full((1, 2), np.nan), np.full((1, 2), np.nan), np.array([-1]))
    np.testing.assert_array_equal(absent, [[0, 0, 0, 0, -1, -1, -1]])
    assert TaskEncoding.from_dict(enc.to_dict()) == enc


def test_anchored_dimensions_are_relative_to_the_first_present_observation():
    enc = TaskEncoding([PartSpec("state", "continuous", 2, (0.0, 0.0), (2.0, 1.0)),
                        PartSpec("obs", "continuous", 2, (0.0, 0.0), (2.0, 1.0)),
                        PartSpec("action", "categorical", 2)], anchored=[0])
    # one window (T=3) whose first step is absent: dimension 0 is taken relative to o_1[0] = 10
    obs = np.array([[np.nan, np.nan], [10.0, 1.0], [14.0, 2.0]])
    x = enc.encode(obs, obs, np.array([-1, 0, 1]))
    np.testing.assert_array_equal(x[:, :2], [[0, 0], [0, 1], [2, 2]])          # (x - 10) / 2, y / 1
    np.testing.assert_array_equal(enc.window_offset(obs), [[10.0, 0.0]])
    # moving the whole window along dimension 0 changes no token
    np.testing.assert_array_equal(enc.encode(obs + [5.0, 0.0], obs + [5.0, 0.0], np.array([-1, 0, 1])), x)
    np.testing.assert_allclose(enc.decode(x, enc.window_offset(obs))["obs"][1:], obs[1:])
    with pytest.raises(ValueError, match="offset"):
        enc.decode(x)
    assert TaskEncoding.from_dict(enc.to_dict()) == enc and enc.fitted(obs=obs[1:]).anchored == (0,)
    with pytest.raises(ValueError, match="anchored"):
        TaskEncoding(list(enc.parts.values()), anchored=[2])
    with pytest.raises(ValueError, match="anchored"):
        TaskEncoding([PartSpec("state", "categorical", 3), PartSpec("obs", "categorical", 3),
                      PartSpec("action", "categorical", 2)], anchored=[0])


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="kind"):
        PartSpec("state", "ordinal", 3)
    enc = TaskEncoding([PartSpec("state", "categorical", 3), PartSpec("obs", "categorical", 3),
                        PartSpec("action", "categorical", 2)])
    with pytest.raises(ValueError, match=r"\[-1, 3\)"):
        enc.encode(np.array([3]), np.array([0]), np.array([0]))
    with pytest.raises(ValueError, match="parts"):
        TaskEncoding([PartSpec("state", "categorical", 3)])


def _two_episodes() -> EpisodeData:
    """Episode 0 terminates after 2 moves (states 0, 1, 2); episode 1 is truncated after 3 moves."""
    data = EpisodeData.empty()
    data.start_episode(0, 0)
    data.append_transition(1, 0.0, False, False, 1, 1)
    data.append_transition(1, 1.0, True, False, 2, 2)
    data.start_episode(5, 5)
    data.append_transition(2, 0.0, False, False, 6, 6)
    data.append_transition(2, 0.0, False, False, 7, 7)
    data.append_transition(3, 0.0, False, True, 8, 8)
    return data


def test_episode_layout_and_append_rules():
    data = _two_episodes()
    np.testing.assert_array_equal(data.episode_starts, [0, 3])
    np.testing.assert_array_equal(data.actions, [1, 1, -1, 2, 2, 3, -1])
    np.testing.assert_array_equal(data.episode_terminated(), [True, False])
    assert data.n_steps == 7 and data.n_episodes == 2
    with pytest.raises(ValueError, match="already ended"):
        data.append_transition(0, 0.0, False, False, 9, 9)
    with pytest.raises(ValueError, match="start_episode"):
        EpisodeData.empty().append_transition(0, 0.0, False, False, 1, 1)


def test_windows_padding_rules():
    data = _two_episodes()
    enc = TaskEncoding([PartSpec("state", "categorical", 9), PartSpec("obs", "categorical", 9),
                        PartSpec("action", "categorical", 4)])
    w = windows(data, enc, length=3, left_pad=1, seed=0)
    # terminated episode (3 rows): starts -1..2 -> 4 windows; truncated (4 rows): starts -1..1 -> 3 windows
    assert w.shape == (7, 3, enc.dim)
    decoded = enc.decode(w)
    # left padding: one absent token (all -1) before the first step
    np.testing.assert_array_equal(w[0, 0].numpy(), -np.ones(enc.dim))
    np.testing.assert_array_equal(decoded["state"][0, 1:], [0, 1])
    # absorbing padding after termination: the goal state repeated
    np.testing.assert_array_equal(decoded["state"][3], [2, 2, 2])
    np.testing.assert_array_equal(decoded["obs"][3], [2, 2, 2])
    # truncated episode: no padding, the last window ends on the final step
    np.testing.assert_array_equal(decoded["state"][6], [6, 7, 8])
    np.testing.assert_array_equal(decoded["action"][6, :2], [2, 3])
    # every present (non-absent) token has exactly one +1 per categorical part: no absent action left
    present = ~(w == -1).all(-1)
    assert ((w[present] == 1).sum(-1) == 3).all()


def test_window_displacements_subtract_each_window_s_first_observation():
    data = EpisodeData(np.array([[0.0], [1.0], [3.0], [10.0], [10.5]]), np.array([[0.0], [1.0], [3.0], [10.0], [10.5]]),
                       np.zeros(5, np.int64), np.zeros(5), np.array([False, True, False, False, False]),
                       np.zeros(5, bool), np.array([0, 3]))
    states, obs = window_displacements(data, 2)
    # episode 0 terminated (rows 0-2, its last row repeated): windows 0-1, 1-2, 2-2; episode 1: 3-4
    np.testing.assert_array_equal(obs[:, 0], [0, 1, 0, 2, 0, 0, 0, 0.5])
    np.testing.assert_array_equal(states, obs)
    with pytest.raises(ValueError, match="length 3"):
        window_displacements(EpisodeData(*[a[3:] for a in (data.states, data.observations, data.actions,
                                                            data.rewards, data.terminated, data.truncated)],
                                         np.array([0])), 3)


def test_collect_episodes_grid(env):
    data = collect_episodes(env, 5, seed=3)
    assert data.n_episodes == 5
    finals = np.append(data.episode_starts[1:], data.n_steps) - 1
    assert (data.actions[finals] == -1).all() and (np.delete(data.actions, finals) >= 0).all()
    np.testing.assert_array_equal(data.states, data.observations)  # grid4x4 is fully observed
    again = collect_episodes(env, 5, seed=3)
    np.testing.assert_array_equal(again.actions, data.actions)
    terminated = data.episode_terminated()
    assert (data.states[finals[terminated]] == env.unwrapped.goal).all()


def test_npz_round_trip_and_errors(tmp_path):
    data = _two_episodes()
    path = tmp_path / "eps.npz"
    save_episodes(data, path)
    loaded = load_episodes(path)
    for key in ("states", "observations", "actions", "rewards", "terminated", "truncated", "episode_starts"):
        np.testing.assert_array_equal(getattr(loaded, key), getattr(data, key))
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        load_episodes(tmp_path / "missing.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(path.read_bytes()[:40])
    with pytest.raises(ValueError, match="bad.npz"):
        load_episodes(bad)
    partial = tmp_path / "partial.npz"
    np.savez(partial, states=data.states)
    with pytest.raises(ValueError, match="lacks the keys"):
        load_episodes(partial)


def test_bayes_filter_exact_values():
    P = np.zeros((2, 1, 2))
    P[0, 0] = [0.5, 0.5]
    P[1, 0] = [0.0, 1.0]
    O = np.array([[0.9, 0.1], [0.2, 0.8]])
    b = bayes_filter_update(np.array([1.0, 0.0]), P, O, 0, 1)
    # predicted [0.5, 0.5]; times O[:, 1] = [0.05, 0.4] -> [1/9, 8/9]
    np.testing.assert_allclose(b, [1 / 9, 8 / 9])
    beliefs = filter_beliefs(np.array([0.5, 0.5]), P, O, [0, 1], [0])
    np.testing.assert_allclose(beliefs[0], np.array([0.45, 0.1]) / 0.55)
    np.testing.assert_allclose(predict_observations(np.array([1.0, 0.0]), P, O, [0]), [[0.55, 0.45]])
    with pytest.raises(ValueError, match="probability 0"):
        bayes_filter_update(np.array([1.0, 0.0]), P, np.eye(2), None, 1)
