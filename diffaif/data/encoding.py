"""How a task's hidden state, observation and action become float vectors, and back.

One time step is one token ``concat(state, observation, action)``; a window of ``T`` steps is a
``(..., T, dim)`` float array. Each part is either

- *categorical* over ``size`` values: one-hot scaled to [-1, 1] (+1 at the index, -1 elsewhere),
  decoded by argmax; a *factored* categorical part (``factors=(n_1, .., n_F)``, ``size = Σ n_f``) is
  F such one-hots side by side, one per entry of an integer vector (a MiniGrid state or view), and
  its values have a trailing axis of F; or
- *continuous* of ``size`` dimensions: standardised ``(x - mean) / std`` with data-set statistics
  stored in the encoding, decoded by un-standardising.

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
KINDS: tuple[str, ...] = ("categorical", "continuous")


@dataclass(frozen=True)
class PartSpec:
    """One part of a token: ``kind`` is "categorical" (``size`` values; ``factors`` splits them into
    independent categorical entries of an integer vector) or "continuous" (``size`` dims)."""

    name: str
    kind: str
    size: int
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    factors: tuple[int, ...] | None = None

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
        if sorted(names) != sorted(PARTS):
            raise ValueError(f"an encoding needs exactly the parts {PARTS}, got {names}")
        self.parts = {p.name: p for p in parts}
        offsets = np.cumsum([0] + [p.size for p in parts])
        self._slices = {p.name: slice(int(a), int(b)) for p, a, b in zip(parts, offsets[:-1], offsets[1:])}
        self.dim = int(offsets[-1])
        self.anchored = tuple(int(j) for j in anchored)
        if self.anchored:
            state, obs = self.parts["state"], self.parts["obs"]
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
        float32 (anchored dimensions of s and o relative to ``window_offset(observations)``)."""
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
             "factors": None if p.factors is None else list(p.factors)}
            for p in self.parts.values()
        ], "anchored": list(self.anchored)}

    @classmethod
    def from_dict(cls, data: dict) -> "TaskEncoding":
        try:
            return cls([PartSpec(name=p["name"], kind=p["kind"], size=int(p["size"]),
                                 mean=None if p.get("mean") is None else tuple(p["mean"]),
                                 std=None if p.get("std") is None else tuple(p["std"]),
                                 factors=None if p.get("factors") is None else tuple(p["factors"]))
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


def grid_encoding(env: Any) -> TaskEncoding:
    """Grid worlds: state and observation categorical over the cells, action categorical over 4 moves."""
    grid = getattr(env, "unwrapped", env)
    n_actions = int(grid.action_space.n)
    return TaskEncoding([
        PartSpec("state", "categorical", int(grid.n_cells)),
        PartSpec("obs", "categorical", int(grid.n_cells)),
        PartSpec("action", "categorical", n_actions),
    ])

