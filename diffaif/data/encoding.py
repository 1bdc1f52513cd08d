"""How a task's hidden state, observation and action become float vectors, and back.

One time step is one token ``concat(state, observation, action)``; a window of ``T`` steps is a
``(..., T, dim)`` float array. Each part is either

- *categorical* over ``size`` values: one-hot scaled to [-1, 1] (+1 at the index, -1 elsewhere),
  decoded by argmax; a *factored* categorical part (``factors=(n_1, .., n_F)``, ``size = Σ n_f``) is
  F such one-hots side by side, one per entry of an integer vector (a MiniGrid state or view), and
  its values have a trailing axis of F; or
- *continuous* of ``size`` dimensions: standardised ``(x - mean) / std`` with data-set statistics
  stored in the encoding, decoded by un-standardising.

The hidden state is optional: an env that does not expose one (no ``info["state"]``) has
observation-only steps. An observation part may also carry the *reward* received on arriving at the
step (``PartSpec.reward_values``): the reward is then observed and modelled like any other entry, and a
preference over it is the reward as log-preference.

An *absent* value (a step before the episode started, or an unknown hidden state) is written as
index ``-1`` for a categorical part and ``NaN`` for a continuous one; it encodes to the absent token
(all entries -1, resp. all 0), which is no valid value, so the model can tell that the episode had
not started yet.

*Anchored* dimensions (continuous state and observation of one size) are written relative to the
window's first present observation: a window of CartPole, whose dynamics do not depend on where the
cart is, then shows the cart's displacement, which stays inside what the data showed wherever the
cart goes. Decoding them needs that offset back (``TaskEncoding.window_offset``).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any, Sequence

import numpy as np
from einops import rearrange

PARTS: tuple[str, ...] = ("state", "obs", "action")
REQUIRED_PARTS: tuple[str, ...] = ("obs", "action")   # the hidden state is optional
KINDS: tuple[str, ...] = ("categorical", "continuous")


@dataclass(frozen=True)
class PartSpec:
    """One part of a token: ``kind`` is "categorical" (``size`` values; ``factors`` splits them into
    independent categorical entries of an integer vector) or "continuous" (``size`` dims).

    ``reward_values`` (observation only; None: no reward): the part's last entry is the reward received
    on arriving at the step. Categorical: a factor over ``1 + len(reward_values)`` values, 0 for none
    (an episode's first step, and the absorbing steps after its end: reward 0) and k for
    ``reward_values[k - 1]``; continuous: one dimension (``()``), 0 where none was received.
    """

    name: str
    kind: str
    size: int
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    factors: tuple[int, ...] | None = None
    reward_values: tuple[float, ...] | None = None

    def __post_init__(self):
        if self.name not in PARTS:
            raise ValueError(f"part name must be one of {PARTS}, got {self.name!r}")
        if self.kind not in KINDS:
            raise ValueError(f"part {self.name!r}: kind must be one of {KINDS}, got {self.kind!r}")
        if self.size < 1:
            raise ValueError(f"part {self.name!r}: size must be >= 1, got {self.size}")
        for stat in ("mean", "std"):
            value = getattr(self, stat)
            if value is not None and len(value) != self.size:
                raise ValueError(f"part {self.name!r}: {stat} has {len(value)} entries, expected {self.size}")
        if self.std is not None and min(self.std) <= 0:
            raise ValueError(f"part {self.name!r}: std must be positive, got {self.std}")
        if self.factors is not None:
            if self.kind != "categorical":
                raise ValueError(f"part {self.name!r}: only a categorical part has factors")
            if min(self.factors) < 1 or sum(self.factors) != self.size:
                raise ValueError(f"part {self.name!r}: factors {self.factors} must be >= 1 and sum to size {self.size}")
        if self.reward_values is not None:
            if self.name != "obs":
                raise ValueError(f"part {self.name!r}: only the observation carries the reward")
            if self.kind == "categorical" and (self.factors is None or self.factors[-1] != len(self.reward_values) + 1):
                raise ValueError(f"a categorical observation with {len(self.reward_values)} reward values needs a last "
                                 f"factor of {len(self.reward_values) + 1} (none + each value), got {self.factors}")
            if self.kind == "continuous" and self.reward_values:
                raise ValueError("a continuous observation carries the reward as one dimension: reward_values ()")

    @property
    def blocks(self) -> tuple[int, ...]:
        """Sizes of the part's one-hot blocks: its factors, or one block of ``size`` (a categorical part)."""
        return self.factors if self.factors is not None else (self.size,)


def one_hot_pm1(indices: np.ndarray, size: int) -> np.ndarray:
    """``x[..., k] = +1 if k == index else -1``; index -1 (absent) gives all -1.

    (...,) int -> (..., size) float32.
    """
    indices = np.asarray(indices)
    if indices.size and (indices.min() < -1 or indices.max() >= size):
        raise ValueError(f"categorical indices must lie in [-1, {size}), got range [{indices.min()}, {indices.max()}]")
    return np.where(np.arange(size) == indices[..., None], 1.0, -1.0).astype(np.float32)


def standardise(values: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """``(x - mean) / std``; NaN (absent) gives 0.  (..., d) -> (..., d) float32."""
    z = (np.asarray(values, dtype=np.float64) - mean) / std
    return np.nan_to_num(z, nan=0.0).astype(np.float32)


def first_present(values: Any) -> np.ndarray:
    """The first present (not NaN) row of each window: (..., T, d) -> (..., 1, d), NaN where none is."""
    values = np.asarray(values, dtype=np.float64)
    first = (~np.isnan(values).any(-1)).argmax(-1)
    return np.take_along_axis(values, first[..., None, None], axis=-2)


class TaskEncoding:
    """The token layout of a task: an ordered list of parts ``state``, ``obs``, ``action``, and the
    ``anchored`` observation dimensions (see the module docstring)."""

    def __init__(self, parts: Sequence[PartSpec], anchored: Sequence[int] = ()):
        names = [p.name for p in parts]
        if len(set(names)) != len(names) or not set(REQUIRED_PARTS) <= set(names) <= set(PARTS):
            raise ValueError(f"an encoding needs the parts {REQUIRED_PARTS} (and optionally 'state'), each once; "
                             f"got {names}")
        self.parts = {p.name: p for p in parts}
        offsets = np.cumsum([0] + [p.size for p in parts])
        self._slices = {p.name: slice(int(a), int(b)) for p, a, b in zip(parts, offsets[:-1], offsets[1:])}
        self.dim = int(offsets[-1])
        self.anchored = tuple(int(j) for j in anchored)
        if self.anchored:
            state, obs = self.parts.get("state"), self.parts["obs"]
            if state is None:
                raise ValueError("anchored dimensions need a hidden state part")
            if state.kind != "continuous" or obs.kind != "continuous" or state.size != obs.size:
                raise ValueError("anchored dimensions need a continuous state and observation of one size, got "
                                 f"state {state.kind}[{state.size}], obs {obs.kind}[{obs.size}]")
            if len(set(self.anchored)) != len(self.anchored) or not all(0 <= j < obs.size for j in self.anchored):
                raise ValueError(f"anchored dimensions must be distinct indices in [0, {obs.size}), got {anchored}")

    def __repr__(self) -> str:
        body = ", ".join(f"{p.name}={p.kind}[{p.size}]" for p in self.parts.values())
        anchored = f"; anchored={list(self.anchored)}" if self.anchored else ""
        return f"TaskEncoding({body}; dim={self.dim}{anchored})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TaskEncoding) and self.to_dict() == other.to_dict()

    def slice(self, part: str) -> slice:
        """Where ``part`` lives in the last axis of a token."""
        if part not in self._slices:
            raise KeyError(f"unknown part {part!r}; parts: {list(self._slices)}")
        return self._slices[part]

    @cached_property
    def categorical_groups(self) -> list[np.ndarray]:
        """Token indices of the categorical one-hot blocks, grouped by block size: one (n_blocks, size)
        int array per size, so a softmax over every block of a size is one gather (49 view cells, one
        call). Computed once per encoding: the sampler uses it at every denoising step."""
        by_size: dict[int, list[np.ndarray]] = {}
        for name, spec in self.parts.items():
            if spec.kind != "categorical":
                continue
            start = self.slice(name).start
            for size in spec.blocks:
                by_size.setdefault(size, []).append(np.arange(start, start + size))
                start += size
        return [np.stack(blocks) for _, blocks in sorted(by_size.items())]

    @property
    def has_state(self) -> bool:
        return "state" in self.parts

    @property
    def all_categorical(self) -> bool:
        return all(p.kind == "categorical" for p in self.parts.values())

    def _check_stats(self, spec: PartSpec) -> tuple[np.ndarray, np.ndarray]:
        if spec.mean is None or spec.std is None:
            raise ValueError(f"continuous part {spec.name!r} has no mean/std; build it with TaskEncoding.fitted(...)")
        return np.asarray(spec.mean), np.asarray(spec.std)

    def encode_part(self, part: str, values: Any) -> np.ndarray:
        """(..., T) indices or (..., T, d) values -> (..., T, width of part) float32."""
        spec = self.parts[part]
        if spec.kind == "categorical" and spec.factors is not None:
            values = np.asarray(values, dtype=np.int64)
            if values.shape[-1:] != (len(spec.factors),):
                raise ValueError(f"factored part {part!r} expects a last axis of size {len(spec.factors)}, "
                                 f"got shape {values.shape}")
            return np.concatenate([one_hot_pm1(values[..., f], n) for f, n in enumerate(spec.factors)], axis=-1)
        if spec.kind == "categorical":
            return one_hot_pm1(np.asarray(values, dtype=np.int64), spec.size)
        values = np.asarray(values, dtype=np.float64)
        if values.shape[-1:] != (spec.size,):
            raise ValueError(f"continuous part {part!r} expects a last axis of size {spec.size}, got shape {values.shape}")
        return standardise(values, *self._check_stats(spec))

    def window_offset(self, observations: Any) -> np.ndarray:
        """What a window's anchored dimensions are relative to: its first present observation there and 0
        on the other dimensions. Raw observations (..., T, d_o) -> (..., 1, d_o); all 0 when nothing is
        anchored or no observation is present."""
        first = first_present(observations)
        offset = np.zeros_like(first)
        offset[..., list(self.anchored)] = np.nan_to_num(first[..., list(self.anchored)])
        return offset

    def encode(self, states: Any, observations: Any, actions: Any) -> np.ndarray:
        """Tokens ``concat(s, o, a)`` of windows: arrays of shape (..., T) or (..., T, d) -> (..., T, dim)
        float32 (anchored dimensions of s and o relative to ``window_offset(observations)``). Without a
        state part ``states`` is ignored (may be None)."""
        if self.anchored:
            offset = self.window_offset(observations)
            states = np.asarray(states, dtype=np.float64) - offset
            observations = np.asarray(observations, dtype=np.float64) - offset
        by_name = {"state": states, "obs": observations, "action": actions}
        pieces = [self.encode_part(name, by_name[name]) for name in self.parts]
        lead = {piece.shape[:-1] for piece in pieces}
        if len(lead) != 1:
            raise ValueError(f"state, obs and action must share their leading shape (..., T); got {sorted(lead)}")
        return np.concatenate(pieces, axis=-1)

    def logits(self, x: Any, part: str) -> np.ndarray:
        """The raw entries of ``part`` in tokens ``x`` (..., dim) -> (..., width); for a categorical
        part their softmax is a distribution over its values."""
        x = np.asarray(x)
        if x.shape[-1] != self.dim:
            raise ValueError(f"tokens must have a last axis of size {self.dim}, got shape {x.shape}")
        return x[..., self.slice(part)]

    def decode_part(self, x: Any, part: str, offset: Any = None) -> np.ndarray:
        """(..., dim) tokens -> (...,) int indices (categorical), (..., F) (factored) or (..., d) values
        (continuous). ``offset`` (broadcastable to the values): the windows' ``window_offset``, which
        the state and observation need back when dimensions are anchored."""
        spec = self.parts[part]
        anchored = bool(self.anchored) and part in ("state", "obs")
        if anchored and offset is None:
            raise ValueError(f"decoding {part!r} of an encoding with anchored dimensions {list(self.anchored)} "
                             "needs the windows' offset (TaskEncoding.window_offset)")
        raw = self.logits(x, part)
        if spec.kind == "categorical" and spec.factors is not None:
            edges = np.cumsum((0,) + spec.factors)
            return np.stack([raw[..., a:b].argmax(axis=-1) for a, b in zip(edges[:-1], edges[1:])], axis=-1)
        if spec.kind == "categorical":
            return raw.argmax(axis=-1)
        mean, std = self._check_stats(spec)
        return raw * std + mean + (np.asarray(offset) if anchored else 0.0)

    def decode(self, x: Any, offset: Any = None) -> dict[str, np.ndarray]:
        """(..., dim) tokens (numpy or torch) -> {part: decoded array}; ``offset`` as in ``decode_part``."""
        if hasattr(x, "detach"):
            x = x.detach().cpu().numpy()
        return {name: self.decode_part(x, name, offset) for name in self.parts}

    def model_observations(self, observations: Any, received: Any) -> np.ndarray:
        """What the world model observes: the env's flat observations with the reward received on arriving
        at each step appended (``PartSpec.reward_values``); unchanged when the observation has no reward.

        observations (N,) or (N, d); received (N,) float, NaN where none was (an episode's first step: the
        categorical "none" value, or 0.0) → (N, F) int (categorical) or (N, d + 1) float.
        """
        spec = self.parts["obs"]
        if spec.reward_values is None:
            return observations
        received = np.asarray(received, dtype=np.float64).reshape(-1)
        obs = np.asarray(observations).reshape(len(received), -1)
        if spec.kind == "categorical":
            return np.concatenate([obs.astype(np.int64), reward_index(received, spec.reward_values)[:, None]], axis=1)
        return np.concatenate([obs.astype(np.float64), np.nan_to_num(received, nan=0.0)[:, None]], axis=1)

    def without_reward(self, observations: np.ndarray) -> np.ndarray:
        """Model observations (..., F) with the reward entry set to "none received" (categorical index 0,
        continuous 0.0): what an absorbing step after the episode's end shows, where nothing more is paid."""
        if self.parts["obs"].reward_values is None:
            return observations
        observations = observations.copy()
        observations[..., -1] = 0
        return observations

    def fitted(self, **values: np.ndarray) -> "TaskEncoding":
        """A copy whose continuous parts carry the mean/std of ``values[part]`` (shape (n, d)).

        NaN (absent) entries are ignored; a constant dimension gets std 1.
        """
        parts = []
        for spec in self.parts.values():
            if spec.name in values and spec.kind == "continuous":
                data = rearrange(np.asarray(values[spec.name], dtype=np.float64), "... d -> (...) d")
                std = np.nanstd(data, axis=0)
                spec = replace(spec, mean=tuple(np.nanmean(data, axis=0).tolist()),
                               std=tuple(np.where(std > 0, std, 1.0).tolist()))
            parts.append(spec)
        return TaskEncoding(parts, self.anchored)

    def to_dict(self) -> dict:
        return {"parts": [
            {"name": p.name, "kind": p.kind, "size": p.size,
             "mean": None if p.mean is None else list(p.mean), "std": None if p.std is None else list(p.std),
             "factors": None if p.factors is None else list(p.factors),
             "reward_values": None if p.reward_values is None else list(p.reward_values)}
            for p in self.parts.values()
        ], "anchored": list(self.anchored)}

    @classmethod
    def from_dict(cls, data: dict) -> "TaskEncoding":
        try:
            return cls([PartSpec(name=p["name"], kind=p["kind"], size=int(p["size"]),
                                 mean=None if p.get("mean") is None else tuple(p["mean"]),
                                 std=None if p.get("std") is None else tuple(p["std"]),
                                 factors=None if p.get("factors") is None else tuple(p["factors"]),
                                 reward_values=None if p.get("reward_values") is None else tuple(p["reward_values"]))
                        for p in data["parts"]], anchored=data.get("anchored", ()))
        except (KeyError, TypeError) as err:
            raise ValueError(f"not a TaskEncoding dict (missing or bad field {err}): {data!r}") from None


def space_part(name: str, space: Any) -> PartSpec:
    """The token part of a gymnasium space: ``Discrete(n)`` is categorical over n, ``MultiDiscrete``
    factored categorical (one factor per entry, ``start`` 0)."""
    kind = type(space).__name__
    if kind == "Discrete" and int(space.start) == 0:
        return PartSpec(name, "categorical", int(space.n))
    if kind == "MultiDiscrete" and space.nvec.ndim == 1 and not space.start.any():
        factors = tuple(int(n) for n in space.nvec)
        return PartSpec(name, "categorical", sum(factors), factors=factors)
    raise ValueError(f"part {name!r}: no categorical encoding of {space} (Discrete or 1-d MultiDiscrete from 0)")


def reward_index(rewards: Any, values: Sequence[float]) -> np.ndarray:
    """The reward category of each reward: 0 where none was received (NaN), else 1 + the index of the
    nearest of ``values``. (N,) float → (N,) int64."""
    rewards, values = np.asarray(rewards, dtype=np.float64), np.asarray(values, dtype=np.float64)
    if not len(values):
        raise ValueError("reward_index needs at least one reward value")
    nearest = np.abs(np.nan_to_num(rewards)[:, None] - values[None, :]).argmin(-1)
    return np.where(np.isnan(rewards), 0, 1 + nearest).astype(np.int64)


def space_leaves(space: Any) -> list[Any]:
    """The leaf spaces of a (nested) gymnasium space in flattening order: a Dict's entries by sorted key,
    a Tuple's in order."""
    kind = type(space).__name__
    if kind == "Dict":
        return [leaf for key in sorted(space.spaces) for leaf in space_leaves(space.spaces[key])]
    if kind == "Tuple":
        return [leaf for sub in space.spaces for leaf in space_leaves(sub)]
    if kind in ("Discrete", "MultiDiscrete", "MultiBinary", "Box"):
        return [space]
    raise ValueError(f"no encoding of the space {space}: Discrete, MultiDiscrete, MultiBinary, Box, or a Dict/Tuple "
                     f"of them")


def _leaf_values(space: Any, x: Any) -> np.ndarray:
    kind = type(space).__name__
    if kind == "Dict":
        return np.concatenate([_leaf_values(space.spaces[key], x[key]) for key in sorted(space.spaces)])
    if kind == "Tuple":
        return np.concatenate([_leaf_values(sub, item) for sub, item in zip(space.spaces, x)])
    x = np.asarray(x).reshape(-1)
    if kind in ("Discrete", "MultiDiscrete"):
        return x.astype(np.int64) - np.asarray(space.start).reshape(-1)
    return x.astype(np.int64) if kind == "MultiBinary" else x.astype(np.float64)


def flat_observation(space: Any, x: Any) -> np.ndarray:
    """One observation of ``space`` as a flat vector (``space_leaves`` order): category indices from 0
    (int64) when every leaf is discrete, values (float64) when every leaf is a Box. → (d,)."""
    continuous = space_kind(space) == "continuous"
    values = _leaf_values(space, x)
    return values.astype(np.float64) if continuous else values


def space_kind(space: Any) -> str:
    """"categorical" when every leaf of ``space`` is discrete, "continuous" when every leaf is a Box."""
    kinds = {"continuous" if type(leaf).__name__ == "Box" else "categorical" for leaf in space_leaves(space)}
    if len(kinds) > 1:
        raise ValueError(f"the space {space} mixes discrete and continuous entries; diffaif encodes an observation "
                         "as all categorical or all continuous (wrap the env to discretise or embed one kind)")
    return kinds.pop()


def observation_part(space: Any, reward_values: Sequence[float] | None) -> PartSpec:
    """The observation part of ``space`` (flattened, ``flat_observation``) with the reward entry appended
    when ``reward_values`` is given (categorical: its sorted distinct values; continuous: empty)."""
    if space_kind(space) == "continuous":
        size = sum(int(np.prod(leaf.shape)) for leaf in space_leaves(space))
        extra = 0 if reward_values is None else 1
        return PartSpec("obs", "continuous", size + extra, reward_values=None if reward_values is None else ())
    factors = []
    for leaf in space_leaves(space):
        kind = type(leaf).__name__
        factors += ([int(leaf.n)] if kind == "Discrete" else [int(n) for n in np.asarray(leaf.nvec).reshape(-1)]
                    if kind == "MultiDiscrete" else [2] * int(np.prod(leaf.shape)))
    if reward_values is not None:
        reward_values = tuple(float(v) for v in reward_values)
        factors.append(len(reward_values) + 1)
    return PartSpec("obs", "categorical", sum(factors), factors=tuple(factors), reward_values=reward_values)


def grid_encoding(env: Any) -> TaskEncoding:
    """Grid worlds: state and observation categorical over the cells, action categorical over 4 moves."""
    grid = getattr(env, "unwrapped", env)
    n_actions = int(grid.action_space.n)
    return TaskEncoding([
        PartSpec("state", "categorical", int(grid.n_cells)),
        PartSpec("obs", "categorical", int(grid.n_cells)),
        PartSpec("action", "categorical", n_actions),
    ])

