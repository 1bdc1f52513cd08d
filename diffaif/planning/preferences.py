"""Prior preferences ``p̃(o)`` as normalised log-probabilities, and the vector preference the factored
planner scores observation vectors with. The task families (``diffaif.tasks``) build theirs from these:
grid cells (``tasks.grid``), MiniGrid outcomes, the reward (``tasks.generic``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch


PREFERENCE_KINDS = ("sparse", "shaped")


def normalise_log_preference(logits: torch.Tensor) -> torch.Tensor:
    """``log p̃(o) = ℓ(o) − log Σ_o' exp ℓ(o')`` over the last dim."""
    return logits - torch.logsumexp(logits, dim=-1, keepdim=True)




def outcome_log_preferences(names: Sequence[str], preferred: Sequence[str], avoided: Sequence[str] = (),
                            precision: float = 1.0, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Normalised ``log p̃(o)`` over named outcomes: logit ``+λ`` for preferred names, ``−λ`` for avoided
    ones, 0 for the rest (MiniGrid's floor tile: prefer "goal", avoid "lava"). → (len(names),)."""
    unknown = sorted((set(preferred) | set(avoided)) - set(names))
    if unknown:
        raise ValueError(f"unknown outcome names {unknown}; valid names: {list(names)}")
    if precision < 0:
        raise ValueError(f"precision must be >= 0, got {precision}")
    logits = torch.tensor([precision * ((n in preferred) - (n in avoided)) for n in names], dtype=torch.float64)
    return normalise_log_preference(logits).to(dtype)


@dataclass(frozen=True)
class VectorPreference:
    """``log p̃(o)`` of an observation vector o (factored categories), up to a constant:

        log p̃(o) = ℓ(o_f) − λ_d · (|o_x − o_gx| + |o_y − o_gy|)

    ℓ a normalised log-preference over the values of one factor f (MiniGrid: the tile under the
    agent), and optionally a shaping term, the L1 distance between two observed positions (agent and
    goal, when the observation holds them) with precision λ_d (0: no shaping, the sparse preference).
    """

    factor: int
    log_p: torch.Tensor                             # (K_f,)
    positions: tuple[int, int, int, int] | None = None   # factors (x, y, goal x, goal y)
    distance_precision: float = 0.0

    def __post_init__(self):
        if self.distance_precision < 0:
            raise ValueError(f"distance_precision must be >= 0, got {self.distance_precision}")
        if self.distance_precision > 0 and self.positions is None:
            raise ValueError("a distance_precision > 0 needs the factors of the positions")

    @property
    def goal(self) -> int:
        """The most preferred value of the preference factor."""
        return int(self.log_p.argmax())

    def __call__(self, obs: torch.Tensor) -> torch.Tensor:
        """obs (..., F) long → log p̃ (...) float."""
        value = self.log_p[obs[..., self.factor]]
        if self.distance_precision > 0:
            x, y, gx, gy = (obs[..., i] for i in self.positions)
            value = value - self.distance_precision * ((x - gx).abs() + (y - gy).abs()).to(value.dtype)
        return value
