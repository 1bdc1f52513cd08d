import numpy as np
import pytest

pytest.importorskip("minari")

from diffaif.data import collect_episodes  # noqa: E402
from diffaif.data.minari_io import export_minari, import_minari  # noqa: E402
from diffaif.envs import TASKS, make_env  # noqa: E402

KEYS = ("states", "observations", "actions", "rewards", "terminated", "truncated", "episode_starts")


@pytest.fixture
def minari_root(tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    return tmp_path / "minari"


def test_round_trip_keeps_hidden_state(minari_root):
    env = make_env("grid8x8", max_steps=15)  # partially observed: states differ from observations
    data = collect_episodes(env, 4, seed=2)
    assert (data.states != data.observations).any()
    dataset = export_minari(data, "diffaif/grid8x8/random-v0", env_id=TASKS["grid8x8"][0])
    assert dataset.total_episodes == 4 and dataset.total_steps == data.n_steps - data.n_episodes
    assert (minari_root / "diffaif" / "grid8x8" / "random-v0" / "data" / "main_data.hdf5").is_file()
    again = import_minari("diffaif/grid8x8/random-v0")
    for key in KEYS:
        np.testing.assert_array_equal(getattr(again, key), getattr(data, key), err_msg=key)
    assert again.states.dtype == np.int64 and again.actions.dtype == np.int64
    with pytest.raises(ValueError, match="already exists"):
        export_minari(data, "diffaif/grid8x8/random-v0", env_id=TASKS["grid8x8"][0])


def test_export_without_env_needs_spaces(minari_root):
    import gymnasium as gym

    data = collect_episodes(make_env("grid4x4", max_steps=5), 2, seed=0)
    export_minari(data, "grid4x4-test-v0", observation_space=gym.spaces.Discrete(16),
                  action_space=gym.spaces.Discrete(4))
    np.testing.assert_array_equal(import_minari("grid4x4-test-v0").observations, data.observations)
    with pytest.raises(FileNotFoundError):
        import_minari("nothing-here-v0")
