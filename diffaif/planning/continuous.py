"""Planning over continuous observations (gymnasium classic control) by Monte Carlo EFE.

One decision (``ContinuousPlanner.plan``, receding horizon: replan every step, act on the first
action): candidate action sequences come from the cross-entropy method or random shooting —
Gaussian over continuous (Box) actions, clipped to the bounds, or the categorical proposers of
``diffaif.planning.policies`` for Discrete actions. Each scoring inpaints ``n_samples`` rollouts of all
K candidates in one batched call per world model (one per ensemble member, all with the same noise),
and scores

    G(π) = −extrinsic − w_ig · info_gain − w_nov · novelty

with ``extrinsic = Σ_τ E_q[log p̃(o_τ)]`` under a Gaussian preference density over observations,
``info_gain = Σ_τ I[s_τ; o_τ]`` and, for an ensemble of M world models, ``novelty`` the parameter
information gain ``H[mixture] − mean_m H[member m]`` of the predicted observations
(``diffaif.planning.efe``). With both weights 1 and one model this is the textbook
``G = risk + ambiguity``. The agent acts on ``P(π) = softmax(−γ G)``.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from functools import partial
from typing import Any, Optional, Sequence

import gymnasium as gym
import numpy as np
import torch
from einops import rearrange, repeat

from diffaif.data.encoding import TaskEncoding
from diffaif.model.world_model import WorldModel
from diffaif.planning.core import InpaintingPlanner
from diffaif.planning.efe import (ENTROPY_ESTIMATORS, action_marginal, continuous_entropy, ensemble_information_gain,
                                  gaussian_log_preference, sampled_expected_free_energy)
from diffaif.planning.policies import PolicyConfig, Proposal, propose_policies

CONTINUOUS_PROPOSERS: tuple[str, ...] = ("random", "cem")              # Box actions
DISCRETE_PROPOSERS: tuple[str, ...] = ("enumerate", "random", "cem")   # Discrete actions (no model sampler)


@dataclass
class ContinuousConfig:
    """Settings of ``ContinuousPlanner`` (the rest comes from ``PlannerConfig``: horizon, candidates,
    samples, denoising steps, γ, selection; ``preference_precision`` scales the preference precisions).

    preference: "auto" (from the env id; "reward" for an id without a hand-written preference), "reward"
    (the reward as log-preference: the generic task family plans the task) or a hand-written one
    (``diffaif.tasks.control.PREFERENCES``);
    entropy: "gaussian" (Gaussian fit) or "knn" (Kozachenko–Leonenko, ``knn_k`` neighbours);
    info_gain_weight, novelty_weight: w_ig and w_nov in G (novelty needs an ensemble of world models);
    cem_init_std: Box CEM's initial standard deviation as a fraction of the half-range of the actions;
    warm_start: Box CEM starts from the previous decision's mean shifted by one step; discrete random
    shooting keeps the previous decision's chosen sequence, shifted, among its candidates;
    preference_scales: per-dimension σ_j replacing the preference's own (``.inf``: no preference on
    dimension j; the targets stay the task's);
    preference_floor: the preference is never more than this many nats below its peak (a flat density
    mixed in: far from the target every observation is equally unpreferred, a sparse goal);
    ``.inf``: the plain Gaussian;
    min_scale: the standardisation's σ_j is at least ``min_scale`` × the half-range of the observation
    space's dimension j where it is bounded (``control_encoding``), so that states the random warm-up
    never reached (CartPole's cart a metre off centre, MountainCar at the flag) lie a few units from
    the data, not tens of its standard deviations; 0 keeps the data's σ_j;
    anchored: observation dimensions the world model sees relative to the window's first observation
    (``TaskEncoding``), for dynamics that do not depend on them (CartPole's cart position, 0); their
    statistics are those of the displacements within a planning window, and ``min_scale`` leaves
    them alone;
    action_marginal: Discrete actions, ``selection`` "argmax": act on ``argmax_a P(a)``, ``P(a) =
    Σ_{π: π_1 = a} P(π)`` (as the grid planner does), which pools the Monte Carlo noise of G over the
    candidates that share a first action at policy precision γ; False: the first action of the most
    probable policy. (``selection`` "sample" draws from P(a) either way.)
    """

    preference: str = "auto"
    entropy: str = "gaussian"
    knn_k: int = 4
    info_gain_weight: float = 1.0
    novelty_weight: float = 1.0
    cem_init_std: float = 0.5
    warm_start: bool = True
    preference_scales: Optional[list[float]] = None
    preference_floor: float = math.inf
    min_scale: float = 0.25
    anchored: list[int] = dataclasses.field(default_factory=list)
    action_marginal: bool = False

    def __post_init__(self):
        if self.entropy not in ENTROPY_ESTIMATORS:
            raise ValueError(f"unknown entropy estimator {self.entropy!r}; valid estimators: {ENTROPY_ESTIMATORS}")
        if self.preference_scales is not None and not all(s > 0 for s in self.preference_scales):
            raise ValueError(f"preference_scales must be > 0 (inf: no preference), got {self.preference_scales}")
        if self.knn_k < 1 or self.cem_init_std <= 0 or self.min_scale < 0 or not self.preference_floor > 0:
            raise ValueError(f"knn_k must be >= 1, cem_init_std > 0, min_scale >= 0 and preference_floor > 0, got "
                             f"{self.knn_k}, {self.cem_init_std}, {self.min_scale}, {self.preference_floor}")

    def check_action_space(self, action_space: gym.Space) -> None:
        """The settings that need a kind of action space: ``action_marginal`` needs Discrete actions."""
        if self.action_marginal and not isinstance(action_space, gym.spaces.Discrete):
            raise ValueError(f"planner.continuous.action_marginal needs Discrete actions, got {action_space}")


# ---- preferences ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class GaussianPreference:
    """``p̃(o) ∝ Π_j N(o_j; μ_j, σ_j² / precision)`` over the dimensions with a finite σ_j, with a flat
    ``floor`` nats below its peak (``gaussian_log_preference``); ``one_sided`` dimensions prefer every
    ``o_j ≥ μ_j`` equally."""

    target: tuple[float, ...]
    scale: tuple[float, ...]                 # σ_j; inf: no preference on dimension j
    one_sided: tuple[bool, ...]
    floor: float = math.inf

    def log_density(self, obs: torch.Tensor, precision: float) -> torch.Tensor:
        """log p̃(o): obs (..., d) raw observations → (...)."""
        if obs.shape[-1] != len(self.target):
            raise ValueError(f"preference over {len(self.target)} dims, observations have {obs.shape[-1]}")
        scale = torch.tensor(self.scale, dtype=obs.dtype)
        return gaussian_log_preference(obs, torch.tensor(self.target, dtype=obs.dtype), precision / scale**2,
                                       torch.tensor(self.one_sided), self.floor)






@dataclass(frozen=True)
class RewardPreference:
    """The reward as log-preference, ``log p̃(o) = λ·r`` (up to a constant), with r the observation's
    last dimension, the reward received on arriving at it (``TaskEncoding.model_observations``)."""

    def log_density(self, obs: torch.Tensor, precision: float) -> torch.Tensor:
        """obs (..., d) raw observations → (...)."""
        return precision * obs[..., -1]



# ---- candidate action sequences for Box actions --------------------------------------------------
def gaussian_cem(score_fn, low: torch.Tensor, high: torch.Tensor, horizon: int, n_candidates: int, n_elite: int,
                 iterations: int, mean: torch.Tensor, std: torch.Tensor, smoothing: float,
                 generator: torch.Generator | None = None) -> tuple[Proposal, torch.Tensor]:
    """Cross-entropy method over continuous action sequences (minimises ``score_fn``).

    Each iteration samples ``π = clip(μ + σ ε, low, high)``, ε ~ N(0, I), scores them with
    ``score_fn(policies (K, H, d)) -> G (K,)`` and refits ``μ ← s μ + (1 − s) mean(elites)``,
    ``σ ← s σ + (1 − s) std(elites)`` to the ``n_elite`` lowest (s = ``smoothing``).
    mean, std: (H, d) initial parameters; low, high: (d,) bounds.
    → (Proposal of the last iteration's candidates (K, H, d) and their scores, the refitted mean (H, d)).
    """
    if not 1 <= n_elite <= n_candidates or iterations < 1:
        raise ValueError(f"need 1 <= n_elite ({n_elite}) <= n_candidates ({n_candidates}) and iterations >= 1")
    for _ in range(iterations):
        noise = torch.randn((n_candidates, horizon, low.shape[0]), generator=generator)
        candidates = torch.maximum(torch.minimum(mean + std * noise, high), low)
        scores = torch.as_tensor(score_fn(candidates))
        elites = candidates[torch.topk(scores, n_elite, largest=False).indices]
        mean = smoothing * mean + (1 - smoothing) * elites.mean(0)
        std = smoothing * std + (1 - smoothing) * elites.std(0, unbiased=False)
    return Proposal(candidates, scores), mean


def uniform_policies(n: int, horizon: int, low: torch.Tensor, high: torch.Tensor,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """Random shooting over Box actions: ``n`` sequences uniform in [low, high] → (n, horizon, d)."""
    return low + (high - low) * torch.rand((n, horizon, low.shape[0]), generator=generator)


def propose_box_policies(config: PolicyConfig, low: torch.Tensor, high: torch.Tensor, init_std: float,
                         previous_mean: torch.Tensor | None, score_fn, generator: torch.Generator | None = None
                         ) -> tuple[Proposal, torch.Tensor | None]:
    """Candidate Box action sequences (K, H, d) of ``config.kind``: uniform random shooting, or
    ``gaussian_cem`` from the centre of the bounds with σ = ``init_std`` × half-range, its mean
    warm-started from ``previous_mean`` (H, d) shifted by one step when given (receding horizon).
    → (Proposal, the CEM's refitted mean (H, d) or None for random shooting)."""
    if config.kind == "random":
        return Proposal(uniform_policies(config.n_candidates, config.horizon, low, high, generator), None), None
    mean = torch.zeros(config.horizon, low.shape[0]) + (low + high) / 2
    if previous_mean is not None:
        mean = torch.cat([previous_mean[1:], mean[-1:]])
    std = torch.zeros_like(mean) + init_std * (high - low) / 2
    return gaussian_cem(score_fn, low, high, config.horizon, config.n_candidates, config.cem.n_elite,
                        config.cem.iterations, mean, std, config.cem.smoothing, generator)


# ---- the decision --------------------------------------------------------------------------------
@dataclass
class ContinuousPlan:
    """One decision: the action, P(π) over the candidates, their EFE terms, the predicted next
    observation (samples under the chosen policy) for the surprise, and every candidate's
    mean predicted observations (to compare with the true ones: ``experiments.fidelity``)."""

    action: Any
    policy_probs: torch.Tensor          # (K,)
    policies: torch.Tensor              # (K, H) long or (K, H, d) float
    terms: dict[str, torch.Tensor]      # each (K,): G, extrinsic, info_gain, novelty, risk, ambiguity
    chosen: int
    next_obs: torch.Tensor              # (n, d_o) raw samples of o_{t+1} under the chosen policy
    encoding: TaskEncoding
    n_actions: int | None               # Discrete actions: their number; Box: None
    predicted_obs: torch.Tensor         # (K, H, d_o) raw o_{t+1..t+H} per policy, mean over samples and members

    def surprise(self, action: Any, observation: Any) -> float:
        """``−log q(o_{t+1})`` (nats, standardised units) under a Gaussian fit of the predicted samples."""
        z = torch.as_tensor(self.encoding.encode_part("obs", np.asarray(observation)[None]))[0]
        samples = torch.as_tensor(self.encoding.encode_part("obs", self.next_obs.numpy()))
        cov = torch.cov(samples.T.double()).reshape(z.shape[0], z.shape[0])
        # the ridge keeps the fit proper when the samples (nearly) agree
        normal = torch.distributions.MultivariateNormal(samples.double().mean(0),
                                                        cov + 1e-4 * torch.eye(z.shape[0], dtype=torch.float64))
        return float(-normal.log_prob(z.double()))

    def log(self) -> dict:
        """The chosen policy's EFE terms, the candidates' spread of G, and for Discrete actions P(a) and
        the lowest G per first action (the method paper's Fig. 3 and 4)."""
        row = {"action": np.asarray(self.action).tolist(), "G_min": float(self.terms["G"].min()),
               "G_mean": float(self.terms["G"].mean()),
               **{f"{name}_chosen": float(values[self.chosen]) for name, values in self.terms.items()}}
        if self.n_actions is not None:
            first = self.policies[:, 0]
            row["action_probs"] = action_marginal(self.policy_probs, first, self.n_actions).tolist()
            masked = torch.where(first[None, :] == torch.arange(self.n_actions)[:, None], self.terms["G"][None, :],
                                 torch.inf)
            row["efe_per_action"] = [float(v) if torch.isfinite(v) else float("nan") for v in masked.min(1).values]
        return row


class ContinuousPlanner(InpaintingPlanner):
    """Scores candidate action sequences by Monte Carlo EFE from one world model or an ensemble."""

    kept_terms = ("G", "extrinsic", "info_gain", "novelty", "risk", "ambiguity")

    def __init__(self, models: WorldModel | Sequence[WorldModel], preference: GaussianPreference,
                 action_space: gym.Space, config: Any, seed: int = 0):
        config.continuous.check_action_space(action_space)
        super().__init__(models, config, action_space, seed, action_marginal=config.continuous.action_marginal)
        for part in ("state", "obs"):
            if part in self.encoding.parts and self.encoding.parts[part].kind != "continuous":
                raise ValueError(f"ContinuousPlanner needs continuous states and observations; {part!r} is "
                                 f"{self.encoding.parts[part].kind}")
        self.continuous: ContinuousConfig = config.continuous
        self.preference = preference
        proposers = DISCRETE_PROPOSERS if self.discrete else CONTINUOUS_PROPOSERS
        if config.policies.kind not in proposers:
            raise ValueError(f"continuous observations with {type(action_space).__name__} actions plan with policy "
                             f"kinds {proposers}, got {config.policies.kind!r}")
        self._cem_mean: torch.Tensor | None = None
        self._previous: torch.Tensor | None = None   # discrete: the last decision's chosen sequence (H,)

    def evaluate(self, observations: Sequence[Any], actions: Sequence[Any], policies: torch.Tensor) -> dict:
        """EFE terms of ``policies`` ((K, H) long or (K, H, d) float) given the history.

        → dict of (K,) tensors G, extrinsic, info_gain, novelty, risk, ambiguity (the latter two of
        the single-model EFE, averaged over members), ``next_obs`` (K, n, d_o) raw samples of o_{t+1} and
        ``predicted_obs`` (K, H, d_o) raw observations, the mean over samples and members.
        """
        c, horizon = self.config.context, policies.shape[1]
        known, mask = self._window(observations, actions, policies)
        offset = self.encoding.window_offset(self._recent(observations).astype(np.float64))[0]
        seed = int(torch.randint(2**62, (), generator=self.generator))
        # every member sees the same noise: identical members predict identically (no spurious novelty)
        samples = torch.stack([self._sample(known, mask, self.config.n_samples, model=m,
                                            generator=torch.Generator().manual_seed(seed))
                               for m in self.models])                            # (M, K, n, T, D)
        future = rearrange(samples[:, :, :, c + 1:c + 1 + horizon], "m k n h d -> m k h n d")
        # without a hidden state part the observation is all there is: no information gain
        states = future[..., self.encoding.slice("state")].double() if self.encoding.has_state else None
        obs = future[..., self.encoding.slice("obs")].double()
        # (M, K, H, n, d_o) raw observations
        raw_obs = torch.as_tensor(self.encoding.decode_part(future.double().numpy(), "obs", offset))
        log_preference = self.preference.log_density(raw_obs, self.config.preference_precision)
        cc = self.continuous
        terms = {name: value.mean(0) for name, value in
                 sampled_expected_free_energy(states, obs, log_preference,
                                              partial(continuous_entropy, estimator=cc.entropy, k=cc.knn_k)).items()}
        novelty = torch.zeros_like(terms["G"])
        if len(self.models) > 1:
            novelty = ensemble_information_gain(obs, cc.entropy, cc.knn_k).sum(-1)
        terms["novelty"] = novelty
        terms["G"] = -terms["extrinsic"] - cc.info_gain_weight * terms["info_gain"] - cc.novelty_weight * novelty
        terms["next_obs"] = raw_obs[0, :, 0]
        terms["predicted_obs"] = raw_obs.mean(dim=(0, 3))
        return {name: value.float() for name, value in terms.items()}

    def _propose(self, score, observations: Sequence[Any], actions: Sequence[Any]) -> Proposal:
        """CEM or random shooting, warm-started from the previous decision where configured (no
        model-sampled candidates: ``DISCRETE_PROPOSERS``)."""
        pc = self.config.policies
        if self.discrete:
            proposal = propose_policies(pc, self.n_actions, self.generator, score)
            if pc.kind != "random" or not self.continuous.warm_start or self._previous is None:
                return proposal
            return Proposal(self._with_previous(proposal.policies), None)
        proposal, self._cem_mean = propose_box_policies(pc, self.low, self.high, self.continuous.cem_init_std,
                                                        self._cem_mean if self.continuous.warm_start else None,
                                                        score, self.generator)
        return proposal

    def _with_previous(self, policies: torch.Tensor) -> torch.Tensor:
        """Discrete random shooting with warm start: the last ``n_actions`` of the K random sequences
        are replaced by the previous decision's chosen sequence shifted by one step and completed by
        each action (receding-horizon reuse: the plan found a step ago stays a candidate)."""
        n = min(self.n_actions, len(policies))
        kept = repeat(self._previous[1:], "h -> n h", n=n)
        reused = torch.cat([kept, torch.arange(n, dtype=policies.dtype)[:, None]], 1)
        return torch.cat([policies[:len(policies) - n], reused])

    def _new_episode(self) -> None:
        self._cem_mean = self._previous = None

    def _plan(self, chosen, probs, policies, terms, scored) -> ContinuousPlan:
        rows = scored["rows"]
        first = policies[chosen, 0]
        self._previous = policies[chosen].clone() if self.discrete else None
        action = int(first) if self.discrete else first.numpy().astype(np.float32)
        return ContinuousPlan(action, probs, policies, terms, chosen, scored["next_obs"][rows[chosen]], self.encoding,
                              self.n_actions, scored["predicted_obs"][rows])

