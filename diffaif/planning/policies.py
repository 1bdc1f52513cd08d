"""Candidate policies (action sequences) for the planner, all as long tensors of shape (K, H).

- ``enumerate``: every one of the ``|A|^H`` sequences (small tasks; the exact reference uses it);
- ``random``: K sequences of uniformly drawn actions (random shooting);
- ``cem``: the cross-entropy method over independent per-step categorical distributions,
  refitted to the lowest-G candidates;
- ``model``: sequences sampled from the world model itself (the planner supplies the sampler),
  optionally conditioned on the preferred outcome at the end of the window.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, NamedTuple

import torch

ScoreFn = Callable[[torch.Tensor], torch.Tensor]
SampleFn = Callable[[int], torch.Tensor]


def enumerate_policies(n_actions: int, horizon: int, max_policies: int = 1_000_000) -> torch.Tensor:
    """All ``n_actions ** horizon`` sequences in lexicographic order (the last step varies fastest).

    Row i holds the base-|A| digits of i, most significant first: ``π_τ(i) = ⌊i / |A|^{H−τ}⌋ mod |A|``.
    → (n_actions ** horizon, horizon) long.
    """
    _check_positive(n_actions=n_actions, horizon=horizon)
    count = n_actions ** horizon
    if count > max_policies:
        raise ValueError(f"{n_actions}^{horizon} = {count} policies exceed max_policies={max_policies}; "
                         "use random or cem candidates")
    place_values = n_actions ** torch.arange(horizon - 1, -1, -1)
    return (torch.arange(count).unsqueeze(1) // place_values) % n_actions


def random_policies(n: int, horizon: int, n_actions: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """``n`` sequences of independent uniform actions → (n, horizon) long."""
    _check_positive(n=n, horizon=horizon, n_actions=n_actions)
    return torch.randint(n_actions, (n, horizon), generator=generator)


class Proposal(NamedTuple):
    """Candidate policies (K, H) and, where the proposer already evaluated them, their G (K,)."""

    policies: torch.Tensor
    scores: torch.Tensor | None


def _score_unique(score_fn: ScoreFn, candidates: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Score each distinct candidate once (scoring by diffusion sampling is the expensive part).

    → (unique candidates (U, H), their scores (U,), index of each candidate's row in the unique set (K,)).
    """
    unique, inverse = torch.unique(candidates, dim=0, return_inverse=True)
    scores = torch.as_tensor(score_fn(unique))
    if scores.shape != (unique.shape[0],):
        raise ValueError(f"score_fn must return shape ({unique.shape[0]},) for {unique.shape[0]} policies, "
                         f"got {tuple(scores.shape)}")
    return unique, scores, inverse


def cem_policies(score_fn: ScoreFn, n_actions: int, horizon: int, n_candidates: int = 64, n_elite: int = 8,
                 iterations: int = 3, generator: torch.Generator | None = None,
                 smoothing: float = 0.5) -> Proposal:
    """Cross-entropy method over per-step action probabilities ``θ_τ(a)`` (minimises the score).

    Each iteration samples ``n_candidates`` sequences ``π_τ ~ Cat(θ_τ)``, scores them with
    ``score_fn(policies (U, H)) -> G (U,)`` (lower is better; each distinct sequence once) and
    refits to the ``n_elite`` lowest: ``θ_τ ← smoothing · θ_τ + (1 − smoothing) · f_τ`` with
    ``f_τ(a)`` the fraction of elites taking action a at step τ. θ starts uniform.
    → Proposal of the last iteration's distinct candidates (≤ n_candidates, H), sorted by
    ascending score, and their scores.
    """
    _check_positive(n_actions=n_actions, horizon=horizon, n_candidates=n_candidates, n_elite=n_elite,
                    iterations=iterations)
    if n_elite > n_candidates:
        raise ValueError(f"n_elite={n_elite} must not exceed n_candidates={n_candidates}")
    if not 0.0 <= smoothing < 1.0:
        raise ValueError(f"smoothing must lie in [0, 1), got {smoothing}")
    probs = torch.full((horizon, n_actions), 1.0 / n_actions)
    for _ in range(iterations - 1):
        candidates = _sample_sequences(probs, n_candidates, generator)
        _, unique_scores, inverse = _score_unique(score_fn, candidates)
        elites = candidates[torch.topk(unique_scores[inverse], n_elite, largest=False).indices]
        elite_freq = torch.nn.functional.one_hot(elites, n_actions).to(probs.dtype).mean(0)
        probs = smoothing * probs + (1.0 - smoothing) * elite_freq
    unique, unique_scores, _ = _score_unique(score_fn, _sample_sequences(probs, n_candidates, generator))
    order = torch.argsort(unique_scores)
    return Proposal(unique[order], unique_scores[order])


def _sample_sequences(probs: torch.Tensor, n: int, generator: torch.Generator | None) -> torch.Tensor:
    """``n`` sequences with independent steps ``π_τ ~ Cat(probs[τ])``: probs (H, A) → (n, H) long."""
    return torch.multinomial(probs, n, replacement=True, generator=generator).T


@dataclasses.dataclass
class CEMConfig:
    """Cross-entropy method settings (see ``cem_policies``)."""

    n_elite: int = 8
    iterations: int = 3
    smoothing: float = 0.5


@dataclasses.dataclass
class PolicyConfig:
    """Which candidate policies the planner scores.

    kind: ``enumerate`` (all |A|^H), ``random`` (``n_candidates`` uniform sequences), ``cem`` or
    ``model`` (``n_candidates`` sequences sampled from the world model, duplicates scored once);
    horizon: planning depth H; n_candidates: K for ``random``, ``model`` and per CEM iteration;
    model_goal: ``model`` proposals are conditioned on the preferred outcome at the window's end;
    n_random: uniform random sequences added to the ``model`` proposals (exploration the model's own
    habits would not propose).
    """

    kind: str = "enumerate"
    horizon: int = 3
    n_candidates: int = 64
    model_goal: bool = True
    n_random: int = 0
    cem: CEMConfig = dataclasses.field(default_factory=CEMConfig)

    def __post_init__(self):
        _check_positive(horizon=self.horizon, n_candidates=self.n_candidates)
        if self.n_random < 0:
            raise ValueError(f"n_random must be >= 0, got {self.n_random}")


def _propose_enumerate(config: PolicyConfig, n_actions: int, generator, score_fn, sample_fn) -> Proposal:
    return Proposal(enumerate_policies(n_actions, config.horizon), None)


def _propose_random(config: PolicyConfig, n_actions: int, generator, score_fn, sample_fn) -> Proposal:
    return Proposal(random_policies(config.n_candidates, config.horizon, n_actions, generator), None)


def _propose_cem(config: PolicyConfig, n_actions: int, generator, score_fn, sample_fn) -> Proposal:
    if score_fn is None:
        raise ValueError("policy kind 'cem' needs a score_fn(policies) -> G")
    return cem_policies(score_fn, n_actions, config.horizon, config.n_candidates, config.cem.n_elite,
                        config.cem.iterations, generator, config.cem.smoothing)


def _propose_model(config: PolicyConfig, n_actions: int, generator, score_fn, sample_fn) -> Proposal:
    if sample_fn is None:
        raise ValueError("policy kind 'model' needs a sample_fn(n) -> (n, H) policies from the world model")
    candidates = sample_fn(config.n_candidates)
    if config.n_random:
        candidates = torch.cat([candidates, random_policies(config.n_random, config.horizon, n_actions, generator)])
    return Proposal(torch.unique(candidates, dim=0), None)


PROPOSERS: dict[str, Callable[..., Proposal]] = {
    "enumerate": _propose_enumerate,
    "random": _propose_random,
    "cem": _propose_cem,
    "model": _propose_model,
}


def propose_policies(config: PolicyConfig, n_actions: int, generator: torch.Generator | None = None,
                     score_fn: ScoreFn | None = None, sample_fn: SampleFn | None = None) -> Proposal:
    """Candidate policies of the configured kind → Proposal(policies (K, H) long, scores (K,) or None)."""
    if config.kind not in PROPOSERS:
        raise ValueError(f"unknown policy kind {config.kind!r}; valid kinds: {sorted(PROPOSERS)}")
    return PROPOSERS[config.kind](config, n_actions, generator, score_fn, sample_fn)


def matching_rows(policies: torch.Tensor, scored: torch.Tensor) -> torch.Tensor | None:
    """Index into ``scored`` (M, ...) of each row of ``policies`` (K, ...), or None if any row is missing
    (the planners use it to find their final candidates among those a proposer already scored)."""
    if policies.shape[1:] != scored.shape[1:]:
        return None
    equal = (policies[:, None] == scored[None]).reshape(len(policies), len(scored), -1).all(-1)  # (K, M)
    return equal.float().argmax(1) if bool(equal.any(1).all()) else None


def propose_and_score(propose: Callable[[ScoreFn], Proposal], evaluate: Callable[[torch.Tensor], dict],
                      names: tuple[str, ...]) -> tuple[torch.Tensor, dict, dict]:
    """The planners' one loop: ``propose(score)`` returns the final candidates (K, ...), scoring with
    ``evaluate(policies) -> dict of per-policy tensors (with "G")`` as it goes; the final candidates are
    found among the last scored ones (``matching_rows``), else scored once more.

    → (policies, the terms in ``names`` for them, the last ``evaluate`` output with "rows": the final
    candidates' rows in it).
    """
    last: dict = {}

    def score(policies: torch.Tensor) -> torch.Tensor:
        last.clear()
        last.update(evaluate(policies), policies=policies)
        return last["G"]

    policies = propose(score).policies
    rows = matching_rows(policies, last["policies"]) if last else None
    if rows is None:  # the proposer did not score its final candidates
        score(policies)
        rows = torch.arange(len(policies))
    last["rows"] = rows
    return policies, {name: last[name][rows] for name in names if name in last}, last


def check_window(context: int, horizon: int, length: int) -> None:
    """A planning window (``context`` past steps, the present, ``horizon`` future ones) must fit the
    model's ``length``."""
    if context + horizon + 1 > length:
        raise ValueError(f"context ({context}) + horizon ({horizon}) + 1 exceeds the model's window length {length}")


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
