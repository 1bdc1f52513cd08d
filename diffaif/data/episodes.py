"""Episodes collected in an environment, their ``.npz`` files, and the training windows cut from them.

Layout (flat arrays over all steps of all episodes, N rows; also the ``.npz`` keys):

- ``states`` (N,) int or (N, d) float: hidden state at step t (``info["state"]``; -1 / NaN if unknown);
- ``observations`` (N,) int or (N, d) float: observation at step t;
- ``actions`` (N,) int or (N, d) float: action taken at step t; -1 (NaN) on each episode's final row,
  which stores the final state and observation;
- ``rewards`` (N,) float, ``terminated`` (N,) bool, ``truncated`` (N,) bool: what ``env.step(actions[t])``
  returned (0 / False on the final row);
- ``episode_starts`` (n_episodes,) int: row offset of each episode's first step.

So row t holds the state in which action t was taken, and episode e spans rows
``episode_starts[e] : episode_starts[e + 1]`` (or to N for the last one).
"""
from __future__ import annotations

import zipfile
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from einops import rearrange

from diffaif.data.encoding import TaskEncoding
from diffaif.data.files import atomic_write

ABSENT_STATE = -1   # the hidden state of an env that reports none (no ``info["state"]``)


def hidden_state(info: dict) -> Any:
    """The hidden state an env reports in ``info["state"]``, or ``ABSENT_STATE``."""
    return info.get("state", ABSENT_STATE)


NPZ_KEYS: tuple[str, ...] = ("states", "observations", "actions", "rewards", "terminated", "truncated",
                             "episode_starts")


def _empty(like: Any) -> np.ndarray:
    """An empty flat array whose dtype/shape-tail fit values like ``like``."""
    arr = np.asarray(like)
    dtype = np.int64 if np.issubdtype(arr.dtype, np.integer) else np.float64
    return np.zeros((0,) + arr.shape, dtype=dtype)


def _absent_like(arr: np.ndarray) -> np.ndarray:
    """The absent value for one row of ``arr``: -1 for ints, NaN for floats."""
    return np.full(arr.shape[1:], -1 if np.issubdtype(arr.dtype, np.integer) else np.nan, dtype=arr.dtype)


@dataclass
class EpisodeData:
    """Episodes as flat per-step arrays (see the module docstring for the layout)."""

    states: np.ndarray
    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray = field(default_factory=lambda: np.zeros(0))
    terminated: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    truncated: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    episode_starts: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def __post_init__(self):
        n = len(self.states)
        for name in NPZ_KEYS[1:6]:
            if len(getattr(self, name)) != n:
                raise ValueError(f"EpisodeData.{name} has {len(getattr(self, name))} rows, states has {n}")
        starts = np.asarray(self.episode_starts, dtype=np.int64)
        if len(starts) and (starts[0] != 0 or np.any(np.diff(starts) <= 0) or starts[-1] >= n):
            raise ValueError(f"episode_starts must start at 0, increase strictly and stay below {n}; got {starts}")
        if n and not len(starts):
            raise ValueError("EpisodeData with steps needs episode_starts")
        self.episode_starts = starts

    @classmethod
    def empty(cls, state_example: Any = 0, obs_example: Any = 0, action_example: Any = 0) -> "EpisodeData":
        """No episodes yet; the examples fix dtypes (int = categorical, float array = continuous)."""
        return cls(_empty(state_example), _empty(obs_example), _empty(action_example))

    @property
    def n_steps(self) -> int:
        return len(self.states)

    @property
    def n_episodes(self) -> int:
        return len(self.episode_starts)

    @property
    def n_interactions(self) -> int:
        """Environment steps taken: every row but each episode's final one."""
        return self.n_steps - self.n_episodes

    def episode_bounds(self) -> list[tuple[int, int]]:
        """(first row, one past the final row) of each episode."""
        ends = np.append(self.episode_starts[1:], self.n_steps)
        return [(int(a), int(b)) for a, b in zip(self.episode_starts, ends)]

    def episode_terminated(self) -> np.ndarray:
        """(n_episodes,) bool: whether each episode ended by termination (its last action terminated)."""
        return np.array([b - a >= 2 and bool(self.terminated[b - 2]) for a, b in self.episode_bounds()], dtype=bool)

    def received_rewards(self) -> np.ndarray:
        """(N,) float: the reward received on arriving at each row, NaN on each episode's first row."""
        received = np.concatenate([[np.nan], self.rewards[:-1]]).astype(np.float64)
        received[self.episode_starts] = np.nan
        return received

    def episode(self, index: int) -> dict[str, np.ndarray]:
        """The rows of one episode as a dict of the per-step arrays."""
        a, b = self.episode_bounds()[index]
        return {name: getattr(self, name)[a:b] for name in NPZ_KEYS[:6]}

    def _append_row(self, state: Any, observation: Any) -> None:
        self.states = np.concatenate([self.states, np.asarray(state, dtype=self.states.dtype)[None]])
        self.observations = np.concatenate([self.observations, np.asarray(observation, self.observations.dtype)[None]])
        self.actions = np.concatenate([self.actions, _absent_like(self.actions)[None]])
        self.rewards = np.append(self.rewards, 0.0)
        self.terminated = np.append(self.terminated, False)
        self.truncated = np.append(self.truncated, False)

    def start_episode(self, state: Any, observation: Any) -> None:
        """Open a new episode at its first (state, observation); its action is filled by the next transition."""
        self.episode_starts = np.append(self.episode_starts, self.n_steps)
        self._append_row(state, observation)

    def append_transition(self, action: Any, reward: float, terminated: bool, truncated: bool,
                          next_state: Any, next_observation: Any) -> None:
        """Record ``env.step(action)`` taken in the open episode's latest state.

        Fills the latest row's action/reward/flags and adds the next (state, observation) as the new
        final row. Call ``start_episode`` first.
        """
        if not self.n_episodes:
            raise ValueError("append_transition needs an open episode: call start_episode(state, observation) first")
        previous = self.n_steps - 2
        if previous >= self.episode_starts[-1] and (self.terminated[previous] or self.truncated[previous]):
            raise ValueError("the open episode already ended; call start_episode for the next one")
        self.actions[-1] = np.asarray(action, dtype=self.actions.dtype)
        self.rewards[-1] = float(reward)
        self.terminated[-1] = bool(terminated)
        self.truncated[-1] = bool(truncated)
        self._append_row(next_state, next_observation)


def model_view(data: EpisodeData, encoding: TaskEncoding) -> EpisodeData:
    """``data`` as the world model observes it: each observation with the reward received on arriving
    at it (``TaskEncoding.model_observations``). ``data`` itself when the encoding's observation carries
    no reward, or when ``data`` already holds model observations (one entry more per row)."""
    spec = encoding.parts["obs"]
    if spec.reward_values is None:
        return data
    width = 1 if data.observations.ndim == 1 else data.observations.shape[-1]
    if width == (spec.size if spec.kind == "continuous" else len(spec.factors)):
        return data
    observations = encoding.model_observations(data.observations, data.received_rewards())
    return replace(data, observations=observations)


def collect_episodes(env: Any, n_episodes: int | None = None,
                     policy: str | Callable[[Any, np.random.Generator], Any] = "random", seed: int = 0,
                     min_interactions: int | None = None) -> EpisodeData:
    """Run ``n_episodes`` episodes, or whole episodes until at least ``min_interactions`` interactions
    (``env.step`` calls; give exactly one of the two); ``policy`` is "random" (uniform over the action
    space) or a callable ``policy(observation, rng) -> action``. Episode e is reset with seed ``seed + e``."""
    if (n_episodes is None) == (min_interactions is None):
        raise ValueError("give exactly one of n_episodes and min_interactions")
    budget = n_episodes if n_episodes is not None else min_interactions
    if budget < 1:
        name = "n_episodes" if n_episodes is not None else "min_interactions"
        raise ValueError(f"{name} must be >= 1, got {budget}")
    rng = np.random.default_rng(seed)
    if policy == "random":
        env.action_space.seed(seed)
        act = lambda obs, rng: env.action_space.sample()  # noqa: E731
    elif callable(policy):
        act = policy
    else:
        raise ValueError(f"policy must be 'random' or a callable(observation, rng), got {policy!r}")
    data, e = None, 0
    while (e < n_episodes) if n_episodes is not None else (data is None or data.n_interactions < min_interactions):
        obs, info = env.reset(seed=seed + e)
        if data is None:
            data = EpisodeData.empty(hidden_state(info), obs, env.action_space.sample())
        data.start_episode(hidden_state(info), obs)
        done = False
        while not done:
            action = act(obs, rng)
            obs, reward, terminated, truncated, info = env.step(action)
            data.append_transition(action, reward, terminated, truncated, hidden_state(info), obs)
            done = terminated or truncated
        e += 1
    return data


def save_episodes(data: EpisodeData, path: str | Path) -> None:
    """Write ``data`` as ``.npz`` (keys ``NPZ_KEYS``), atomically (temp file, then rename)."""
    path = Path(path)
    atomic_write(path, lambda handle: np.savez_compressed(handle, **{key: getattr(data, key) for key in NPZ_KEYS}))


def load_episodes(path: str | Path) -> EpisodeData:
    """Read an ``.npz`` written by ``save_episodes``; a missing file is a FileNotFoundError, a corrupt,
    foreign or incomplete one a ValueError, both naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"episode file {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as npz:
            files = set(npz.files)
            arrays = {key: npz[key] for key in NPZ_KEYS if key in files}
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error, ValueError) as err:
        # a text file: "pickled data"; a bit flip: zlib.error or a CRC BadZipFile
        raise ValueError(f"episode file {path} is not a readable .npz ({err})") from None
    missing = [key for key in NPZ_KEYS if key not in arrays]
    if missing:
        raise ValueError(f"episode file {path} lacks the keys {missing} (has {sorted(files)})")
    try:
        return EpisodeData(**arrays)
    except ValueError as err:
        raise ValueError(f"episode file {path} is inconsistent: {err}") from None


def window_rows(n_rows: int, terminated: bool, length: int, left_pad: int) -> np.ndarray:
    """Row indices of every window of one episode, -1 where a window runs before the episode start.

    Windows start at rows ``-left_pad .. last`` with ``last = n_rows - 1`` for a terminated episode
    (its final row is repeated as absorbing padding, so indices past the end are clipped to it) and
    ``last = n_rows - length`` for any other episode (no padding after it).  -> (n_windows, length) int.
    """
    last = n_rows - 1 if terminated else n_rows - length
    starts = np.arange(-left_pad, last + 1)
    rows = starts[:, None] + np.arange(length)
    return np.where(rows < 0, -1, np.minimum(rows, n_rows - 1))


def window_displacements(data: EpisodeData, length: int) -> tuple[np.ndarray, np.ndarray]:
    """States and observations of every length-``length`` window (``window_rows``, no left padding) minus
    the window's first observation: the values that anchored dimensions take (``TaskEncoding``).
    -> (n_windows * length, d_s), (n_windows * length, d_o)."""
    states, observations = [], []
    for (a, b), done in zip(data.episode_bounds(), data.episode_terminated()):
        rows = window_rows(b - a, bool(done), length, 0) + a
        first = data.observations[rows[:, :1]]
        states.append(data.states[rows] - first)
        observations.append(data.observations[rows] - first)
    if not any(len(o) for o in observations):
        raise ValueError(f"no episode is long enough for windows of length {length}")
    return (rearrange(np.concatenate(states), "n t d -> (n t) d"),
            rearrange(np.concatenate(observations), "n t d -> (n t) d"))


def windows(data: EpisodeData, encoding: TaskEncoding, length: int, left_pad: int | None = None,
            seed: int = 0) -> torch.Tensor:
    """All length-``length`` windows of all episodes, encoded: (n_windows, length, dim) float32.

    Padding rule:
    - a window may start up to ``left_pad`` (default ``length - 1``) steps before an episode's first
      step; those steps are *absent* tokens (all parts absent: -1 entries for categorical parts,
      0 for continuous), so the model learns where episodes start;
    - after a *terminated* episode the final (absorbing) step is repeated: same state and
      observation (with no reward received, where the observation carries one), actions drawn
      uniformly at random (categorical actions; continuous actions are drawn from the data's
      actions), so the model learns that the terminal state is absorbing;
    - a *truncated* (or still open) episode is not padded: windows end at its final step at the latest;
    - the final step's missing action (-1 / NaN in the data) is drawn the same uniform way: no
      action was taken there, and any action is consistent with what the window shows.
    """
    if length < 1:
        raise ValueError(f"window length must be >= 1, got {length}")
    left_pad = length - 1 if left_pad is None else int(left_pad)
    if not 0 <= left_pad < length:
        raise ValueError(f"left_pad must be in [0, {length - 1}], got {left_pad}")
    rng = np.random.default_rng(seed)
    terminated = data.episode_terminated()
    pieces = []
    for (a, b), done in zip(data.episode_bounds(), terminated):
        rows = window_rows(b - a, bool(done), length, left_pad)
        if not len(rows):
            continue
        absent = rows < 0
        flat = np.where(absent, 0, rows + a)
        states, obs = data.states[flat], data.observations[flat]
        repeats = (np.arange(-left_pad, -left_pad + len(rows))[:, None] + np.arange(length)) > b - a - 1
        obs[repeats] = encoding.without_reward(obs[repeats])   # after the end nothing more is paid
        actions = data.actions[flat].copy()
        padded = np.where(absent, False, rows >= b - a - 1)  # final row and its absorbing repeats
        spec = encoding.parts["action"]
        if spec.kind == "categorical":
            actions[padded] = rng.integers(0, spec.size, size=int(padded.sum()))
        else:
            taken = data.actions[~np.isnan(data.actions).any(axis=-1)]
            actions[padded] = taken[rng.integers(0, len(taken), size=int(padded.sum()))]
        for arr in (states, obs, actions):
            arr[absent] = -1 if arr.dtype.kind == "i" else np.nan
        pieces.append(encoding.encode(states, obs, actions))
    if not pieces:
        raise ValueError(f"no episode is long enough for windows of length {length} with left_pad {left_pad}")
    return torch.from_numpy(np.concatenate(pieces))
