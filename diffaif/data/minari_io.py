"""Export episodes to, and import them from, a local Minari dataset (HDF5; optional extra ``diffaif[minari]``).

Mapping between :class:`EpisodeData` rows and a Minari episode of ``n`` transitions:

- ``observations`` (n + 1 entries): the episode's rows, the last one the final observation;
- ``actions``, ``rewards``, ``terminations``, ``truncations`` (n entries): rows 0 .. n-1 (the final row's
  absent action and its zero reward / False flags are not stored);
- ``infos["state"]`` (n + 1 entries): the hidden state of each row (the reset info and one info per step,
  Minari's layout), so a partially observed task keeps its ground truth. Imported data without it gets
  absent states (-1, or NaN for vector observations).

Datasets live where Minari keeps them (``$MINARI_DATASETS_PATH`` or ``~/.minari/datasets``); nothing is
downloaded. Images are stored raw (``jpeg_encoding=False`` where the installed Minari has the option).
"""
from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from diffaif.data.episodes import EpisodeData

STATE_INFO_KEY = "state"


def _minari():
    try:
        import minari
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError('Minari export/import needs the optional extra: pip install "diffaif[minari]"') from err
    return minari


def export_minari(data: EpisodeData, dataset_id: str, env_id: str | None = None, *,
                  observation_space: Any = None, action_space: Any = None, algorithm_name: str | None = None,
                  author: str | None = None, description: str | None = None) -> Any:
    """Write ``data`` as a new local Minari dataset ``dataset_id`` (e.g. ``"diffaif/grid4x4/random-v0"``).

    ``env_id``: a registered gymnasium id (``"diffaif/Grid4x4-v0"``) stored as the dataset's env spec and
    used for the spaces; without it, ``observation_space`` and ``action_space`` are required. Episodes with
    no transition yet (a just-started open episode) have nothing to store and are left out. Returns the
    ``MinariDataset``. An existing dataset id is an error (Minari never overwrites).
    """
    minari = _minari()
    from minari.data_collector import EpisodeBuffer

    buffers = []
    for a, b in data.episode_bounds():
        if b - a < 2:
            continue
        steps = slice(a, b - 1)
        buffers.append(EpisodeBuffer(
            id=len(buffers),
            observations=np.asarray(data.observations[a:b]),
            actions=np.asarray(data.actions[steps]),
            rewards=np.asarray(data.rewards[steps], dtype=np.float64),
            terminations=np.asarray(data.terminated[steps], dtype=bool),
            truncations=np.asarray(data.truncated[steps], dtype=bool),
            infos={STATE_INFO_KEY: np.asarray(data.states[a:b])},
        ))
    if not buffers:
        raise ValueError("no episode with at least one transition to export")
    kwargs = dict(env=env_id, observation_space=observation_space, action_space=action_space,
                  algorithm_name=algorithm_name, author=author, description=description, data_format="hdf5")
    if "jpeg_encoding" in inspect.signature(minari.create_dataset_from_buffers).parameters:
        kwargs["jpeg_encoding"] = False
    return minari.create_dataset_from_buffers(dataset_id, buffers, **kwargs)


def _absent_states(observations: np.ndarray) -> np.ndarray:
    if observations.ndim == 1:
        return np.full(len(observations), -1, dtype=np.int64)
    return np.full(observations.shape, np.nan)


def _as_flat(values: np.ndarray) -> np.ndarray:
    """Integer arrays as int64 (categorical), everything else as float64."""
    values = np.asarray(values)
    return values.astype(np.int64 if np.issubdtype(values.dtype, np.integer) else np.float64)


def import_minari(dataset_id: str) -> EpisodeData:
    """Read the local Minari dataset ``dataset_id`` into :class:`EpisodeData` (the inverse of ``export_minari``).

    Observations and actions must be plain arrays (Discrete or Box spaces); the hidden state comes from
    ``infos["state"]`` where present.
    """
    minari = _minari()
    dataset = minari.load_dataset(dataset_id)
    columns: dict[str, list] = {key: [] for key in ("states", "observations", "actions", "rewards", "terminated",
                                                    "truncated")}
    starts, offset = [], 0
    for episode in dataset.iterate_episodes():
        observations, actions = episode.observations, episode.actions
        if isinstance(observations, (dict, tuple)) or isinstance(actions, (dict, tuple)):
            raise ValueError(f"dataset {dataset_id}: only array observations and actions can be imported, "
                             f"got {type(observations).__name__} / {type(actions).__name__}")
        observations, actions = _as_flat(observations), _as_flat(actions)
        infos = episode.infos or {}
        states = _as_flat(infos[STATE_INFO_KEY]) if STATE_INFO_KEY in infos else _absent_states(observations)
        n = len(episode.rewards)
        if len(observations) != n + 1 or len(states) != n + 1 or len(actions) != n:
            raise ValueError(f"dataset {dataset_id}, episode {episode.id}: expected {n + 1} observations and states "
                             f"and {n} actions, got {len(observations)}, {len(states)} and {len(actions)}")
        absent_action = np.full((1, *actions.shape[1:]), -1 if actions.dtype == np.int64 else np.nan, actions.dtype)
        columns["states"].append(states)
        columns["observations"].append(observations)
        columns["actions"].append(np.concatenate([actions, absent_action]))
        columns["rewards"].append(np.append(np.asarray(episode.rewards, dtype=np.float64), 0.0))
        columns["terminated"].append(np.append(np.asarray(episode.terminations, dtype=bool), False))
        columns["truncated"].append(np.append(np.asarray(episode.truncations, dtype=bool), False))
        starts.append(offset)
        offset += n + 1
    if not starts:
        raise ValueError(f"dataset {dataset_id} has no episodes")
    return EpisodeData(**{key: np.concatenate(parts) for key, parts in columns.items()},
                       episode_starts=np.asarray(starts, dtype=np.int64))
