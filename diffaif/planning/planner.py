"""Expected free energy of candidate policies, estimated from inpainted world-model rollouts.

One planning step (``EFEPlanner.plan``): build a known/mask window per candidate policy (past
observations and actions, the policy's actions), inpaint ``n_samples`` joint rollouts of all K
candidates in one batch, decode the future hidden states and observations, estimate ``q(s_τ|π)`` and
``q(o_τ|π)``, and score ``G(π) = risk + ambiguity`` (``diffaif.planning.efe``); the agent then acts on
``P(π) = softmax(−γ G)``. G is minimised everywhere.

Both planners here are configurations of the one core, ``planning/core.py``'s ``InpaintingPlanner``
(windows, the batched sampling call, proposals, the choice of the action): ``EFEPlanner`` scores
single categorical states and observations (grid worlds) with histograms and the cached likelihood,
``FactoredEFEPlanner`` vectors of categories (MiniGrid, any categorical gymnasium env) with plug-in
entropies of joint samples.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import gymnasium as gym
import torch
from einops import rearrange

from diffaif.data.episodes import EpisodeData
from diffaif.model.world_model import WorldModel
from diffaif.planning.continuous import ContinuousConfig
from diffaif.planning.core import InpaintingPlanner
from diffaif.planning.efe import (action_marginal, categorical_entropy, expected_free_energy, factored_surprise,
                                  histogram, sampled_expected_free_energy, support_distribution,
                                  support_expected_free_energy, surprise)
from diffaif.planning.policies import PolicyConfig
from diffaif.planning.preferences import VectorPreference
from diffaif.planning.value import TailValue

OBS_ESTIMATORS = ("histogram", "rao_blackwell")
STATE_ESTIMATORS = ("histogram", "probabilities")
TERMS = ("G", "risk", "ambiguity", "extrinsic", "info_gain", "tail")   # per-policy terms a plan keeps
SELECTIONS = ("argmax", "sample")


@dataclass
class PlannerConfig:
    policies: PolicyConfig = field(default_factory=PolicyConfig)
    context: int = 1                 # past steps given to the model (belief about the present state)
    n_samples: int = 16              # rollouts per candidate policy
    denoising_steps: int | None = None   # per inpainting call; None: the world model's own (ModelConfig.steps)
    mode: str = "masked"             # inpainting mode: "masked" or "repaint"
    gamma: float = 16.0              # policy precision in P(π) ∝ exp(−γ G)
    preference: str = "shaped"       # "sparse" (goal only), "shaped" (distance to goal) or "reward" (the
                                     # reward as log-preference: the generic task family plans any task)
    preference_precision: float = 1.0
    distance_precision: float = 1.0  # MiniGrid "shaped": log-preference lost per grid cell from the goal
    pseudo_count: float = 0.1        # Dirichlet pseudo-count of the outcome histograms
    # q(o_τ|π): histogram of sampled observations, or Σ_s q(s_τ|π) p̂(o|s) with p̂ the model's own
    # observation likelihood (Rao-Blackwellised: lower variance, consistent with q(s_τ|π)); for one-step
    # plans of an observation-only task with a tail value, the net's predictive over the vectors seen.
    obs_estimator: str = "rao_blackwell"
    # q(s_τ|π): histogram of sampled states, or the mean over rollouts of the model's predictive
    # distribution of s_τ (``inpaint(return_probs=True)``: Rao-Blackwellised; masked x0 models only)
    state_estimator: str = "histogram"
    likelihood_samples: int = 128    # samples per state for the cached p̂(o|s) and H[p(o|s)]
    selection: str = "argmax"        # act on argmax P(a) or sample a ~ P(a)
    common_random_numbers: bool = True
    # Run the net on context + 1 + horizon tokens instead of the model's full window: fewer tokens,
    # faster; right for models trained with ``train.crop_prob`` > 0, which have seen short windows.
    crop_window: bool = True
    # Add a value learned from the data set for what follows the horizon (planning/value.py), the
    # discounted risk of the best continuation seen after the last predicted observation; None: the
    # task family's default (on for generic categorical tasks, off elsewhere)
    tail_value: bool | None = None
    tail_discount: float = 0.95
    continuous: ContinuousConfig = field(default_factory=ContinuousConfig)  # control tasks (planning/continuous.py)

    def __post_init__(self):
        if self.obs_estimator not in OBS_ESTIMATORS:
            raise ValueError(f"obs_estimator must be one of {OBS_ESTIMATORS}, got {self.obs_estimator!r}")
        if self.state_estimator not in STATE_ESTIMATORS:
            raise ValueError(f"state_estimator must be one of {STATE_ESTIMATORS}, got {self.state_estimator!r}")
        if self.selection not in SELECTIONS:
            raise ValueError(f"selection must be one of {SELECTIONS}, got {self.selection!r}")
        if self.context < 0 or self.n_samples < 1 or (self.denoising_steps is not None and self.denoising_steps < 1):
            raise ValueError("context must be >= 0, n_samples and denoising_steps >= 1")
        if not 0 <= self.tail_discount < 1:
            raise ValueError(f"tail_discount must be in [0, 1), got {self.tail_discount}")


@dataclass
class Plan:
    """One decision: the action, P(a), and per-policy EFE terms for the log."""

    action: int
    action_probs: torch.Tensor          # (A,)
    policies: torch.Tensor              # (K, H)
    terms: dict[str, torch.Tensor]      # each (K,): G, risk, ambiguity, extrinsic, info_gain (, tail)

    def per_action(self) -> dict[str, list[float]]:
        """Each EFE term of the lowest-G policy starting with each action (NaN where no policy does)."""
        best = best_per_action(self.terms["G"], self.policies[:, 0], self.action_probs.shape[0])
        return {name: [float(values[b]) if b >= 0 else float("nan") for b in best.tolist()]
                for name, values in self.terms.items()}

    def best_policy(self, action: int) -> int:
        """Row of the lowest-G policy starting with ``action``."""
        return int(best_per_action(self.terms["G"], self.policies[:, 0], self.action_probs.shape[0])[action])

    def log(self) -> dict:
        """The decision for the step log: P(a), per action the EFE terms of its best policy (Fig. 3 and 4
        of the method paper), and the candidates with their G, risk and ambiguity."""
        per_action = self.per_action()
        return {"action_probs": self.action_probs.tolist(), "efe_per_action": per_action["G"],
                **{f"{name}_per_action": values for name, values in per_action.items() if name != "G"},
                "policies": self.policies.tolist(),
                **{f"{name}_per_policy": self.terms[name].tolist() for name in ("G", "risk", "ambiguity")}}


@dataclass
class CategoricalPlan(Plan):
    belief: torch.Tensor = None         # (S,) the model's belief about the present hidden state
    q_o: torch.Tensor = None            # (K, H, O) predicted observations per policy

    def next_observation(self, action: int) -> torch.Tensor:
        """q(o_{t+1}) under the lowest-G policy starting with ``action``: (O,)."""
        return self.q_o[self.best_policy(action), 0]

    def surprise(self, action: int, observation) -> float:
        """``−log q(o_{t+1} = observation)`` under the lowest-G policy starting with ``action`` (nats)."""
        return float(surprise(self.next_observation(action), int(observation)))

    def log(self) -> dict:
        return {**super().log(), "belief_entropy": float(categorical_entropy(self.belief)),
                "belief_map": int(self.belief.argmax())}


@dataclass
class FactoredPlan(Plan):
    next_obs: torch.Tensor = None       # (K, n, F) sampled o_{t+1} per policy
    obs_sizes: tuple[int, ...] = ()
    pseudo_count: float = 0.1

    def surprise(self, action: int, observation) -> float:
        """Mean-field surprise of the observed vector under the best policy starting with ``action``."""
        return float(factored_surprise(self.next_obs[self.best_policy(action)],
                                       torch.as_tensor(observation, dtype=torch.long), self.obs_sizes,
                                       self.pseudo_count))


class DiscreteActionPlanner(InpaintingPlanner):
    """The core with categorical actions from one world model, acting on ``P(a)`` (the categorical
    planners' decision records keep it)."""

    kept_terms = TERMS

    def __init__(self, model: WorldModel, config: PlannerConfig, seed: int = 0):
        action = model.encoding.parts["action"]
        if action.kind != "categorical" or action.factors is not None:
            raise ValueError("this planner needs categorical actions")
        super().__init__(model, config, gym.spaces.Discrete(action.size), seed)

    def _decision(self, chosen: int, probs: torch.Tensor, policies: torch.Tensor) -> tuple[int, torch.Tensor]:
        """The chosen policy's first action and ``P(a)`` (A,)."""
        return int(policies[chosen, 0]), action_marginal(probs, policies[:, 0], self.n_actions)


class EFEPlanner(DiscreteActionPlanner):
    """Scores candidate policies by Monte Carlo EFE from a world model over categorical s, o, a."""

    def __init__(self, model: WorldModel, log_preference: torch.Tensor, config: PlannerConfig, seed: int = 0):
        enc = model.encoding
        for part in ("state", "obs", "action"):
            if enc.parts[part].kind != "categorical" or enc.parts[part].factors is not None:
                raise ValueError(f"EFEPlanner needs a (single) categorical {part!r}; use FactoredEFEPlanner "
                                 f"for vectors of categories")
        super().__init__(model, config, seed)
        self.n_states = enc.parts["state"].size
        self.n_obs = enc.parts["obs"].size
        if log_preference.shape != (self.n_obs,):
            raise ValueError(f"log_preference must have shape ({self.n_obs},), got {tuple(log_preference.shape)}")
        self.log_preference = log_preference.float()
        self._likelihood: torch.Tensor | None = None

    def _decode(self, samples: torch.Tensor, part: str) -> torch.Tensor:
        """Categorical indices of ``part``: (..., T, D) → (..., T) long (argmax of the ±1 one-hot)."""
        return samples[..., self.model.encoding.slice(part)].argmax(-1)

    def likelihood(self) -> torch.Tensor:
        """The model's observation likelihood ``p̂(o|s)`` (S, O), cached: inpaint o given s for every s.

        Each state is put at the present step with everything else unknown; the histogram of the
        inpainted observations is p̂(o|s). Its row entropies are the ambiguity H[p(o|s)].
        """
        if self._likelihood is None:
            enc = self.model.encoding
            states = torch.arange(self.n_states)
            c = self.config.context
            values = torch.full((self.n_states, self.window), -1, dtype=torch.long)
            state_values = values.clone()
            state_values[:, c] = states
            known = torch.as_tensor(enc.encode(state_values.numpy(), values.numpy(), values.numpy()))
            mask = torch.zeros_like(known, dtype=torch.bool)
            mask[:, c, enc.slice("state")] = True
            samples = self._sample(known, mask, self.config.likelihood_samples)
            obs = self._decode(samples[:, :, c], "obs")            # (S, n)
            self._likelihood = histogram(obs, self.n_obs, self.config.pseudo_count)
        return self._likelihood

    def evaluate(self, observations: Sequence[int], actions: Sequence[int], policies: torch.Tensor) -> dict:
        """EFE terms of ``policies`` (K, H) given the history.

        ``observations``: o_{t-k+1} .. o_t (k ≥ 1, the last is the present); ``actions``: the k−1 actions
        between them. Only the last ``context + 1`` observations are used.
        → dict of (K,) tensors (G, risk, ambiguity, extrinsic, info_gain), ``q_o`` (K, H, O) and
        ``belief`` (S,), the model's belief about the present hidden state pooled over all rollouts.
        """
        c, horizon = self.config.context, policies.shape[1]
        known, mask = self._window(observations, actions, policies)
        if self.config.state_estimator == "probabilities":
            samples, probs = self._sample(known, mask, self.config.n_samples, return_probs=True)
            q_s = probs[:, :, c + 1:c + 1 + horizon, self.model.encoding.slice("state")].mean(1)   # (K, H, S)
        else:
            samples = self._sample(known, mask, self.config.n_samples)   # (K, N, T, D)
            states = self._decode(samples[:, :, c + 1:c + 1 + horizon], "state").transpose(1, 2)  # (K, H, N)
            q_s = histogram(states, self.n_states, 0.0)                  # (K, H, S)
        future = samples[:, :, c + 1:c + 1 + horizon]                    # (K, N, H, D)
        likelihood = self.likelihood()
        if self.config.obs_estimator == "rao_blackwell":
            q_o = q_s @ likelihood
        else:
            q_o = histogram(self._decode(future, "obs").transpose(1, 2), self.n_obs, self.config.pseudo_count)
        terms = expected_free_energy(q_o, q_s, self.log_preference, categorical_entropy(likelihood))
        terms["belief"] = histogram(self._decode(samples[:, :, c], "state").reshape(-1), self.n_states, 0.0)
        terms["q_o"] = q_o
        return terms

    def _write_goal(self, known: torch.Tensor, mask: torch.Tensor) -> None:
        goal = torch.full((self.n_obs,), -1.0)
        goal[int(self.log_preference.argmax())] = 1.0
        obs_slice = self.model.encoding.slice("obs")
        known[0, -1, obs_slice] = goal
        mask[0, -1, obs_slice] = True

    def _plan(self, chosen, probs, policies, terms, scored) -> CategoricalPlan:
        return CategoricalPlan(*self._decision(chosen, probs, policies), policies, terms, belief=scored["belief"],
                               q_o=scored["q_o"][scored["rows"]])


class FactoredEFEPlanner(DiscreteActionPlanner):
    """EFE planning over vectors of categories (MiniGrid's compact state and view), from joint samples.

    States and observations are compared as whole vectors (``row_codes``); the EFE terms are the
    plug-in estimates of ``sampled_expected_free_energy``, with ``preference(o)`` the log-preference
    of each sampled observation vector (``VectorPreference``: a density over one factor, e.g. the
    tile under the agent, optionally shaped, or the reward received). An encoding without a hidden state
    part is planned as an MDP over observations. With ``config.tail_value``, G also counts the learned
    value ``T(o_H)`` of the last predicted observation (``TailValue``), refitted by ``learn(data)``.
    One-step plans of such an MDP take the expectations under the net's predictive probabilities
    instead (``obs_estimator`` "rao_blackwell", ``_evaluate_on_support``).
    """

    def __init__(self, model: WorldModel, preference: VectorPreference, config: PlannerConfig, seed: int = 0):
        enc = model.encoding
        for part in ("state", "obs"):
            if part in enc.parts and enc.parts[part].kind != "categorical":
                raise ValueError(f"FactoredEFEPlanner needs a categorical {part!r}, got {enc.parts[part].kind}")
        super().__init__(model, config, seed)
        self.obs_sizes = enc.parts["obs"].blocks
        if not 0 <= preference.factor < len(self.obs_sizes):
            raise ValueError(f"the preference factor must index one of the {len(self.obs_sizes)} observation "
                             f"factors, got {preference.factor}")
        if preference.log_p.shape != (self.obs_sizes[preference.factor],):
            raise ValueError(f"the preference needs {self.obs_sizes[preference.factor]} log-probabilities, "
                             f"got shape {tuple(preference.log_p.shape)}")
        self.preference = preference
        self.tail = TailValue(preference, config.tail_discount) if config.tail_value else None

    def learn(self, data: EpisodeData) -> None:
        """Refit the tail value (if any) on the data set."""
        if self.tail is not None:
            self.tail.fit(data)

    def _decode(self, samples: torch.Tensor, part: str) -> torch.Tensor:
        """(..., D) tokens → (..., F) long category vectors (F = 1 for a single categorical part)."""
        values = torch.as_tensor(self.model.encoding.decode_part(samples.numpy(), part))
        return values if self.model.encoding.parts[part].factors is not None else values[..., None]

    def evaluate(self, observations: Sequence, actions: Sequence[int], policies: torch.Tensor) -> dict:
        """EFE terms of ``policies`` (K, H) from ``n_samples`` joint rollouts each.

        → dict of (K,) tensors (G, risk, ambiguity, extrinsic, info_gain; with a tail value also
        ``tail``, the mean ``T(o_H)`` over the samples, included in G) and ``next_obs`` (K, n, F).
        """
        c, horizon = self.config.context, policies.shape[1]
        known, mask = self._window(observations, actions, policies)
        if self._rao_blackwell(horizon):
            return self._evaluate_on_support(known, mask)
        samples = self._sample(known, mask, self.config.n_samples)       # (K, n, T, D)
        future = rearrange(samples[:, :, c + 1:c + 1 + horizon], "k n h d -> k h n d")
        obs = self._decode(future, "obs")                                 # (K, H, n, F)
        # without a hidden state part the observation is all there is (an MDP): no information gain
        states = self._decode(future, "state") if self.model.encoding.has_state else None
        terms = sampled_expected_free_energy(states, obs, self.preference(obs))
        if self.tail is not None:
            terms["tail"] = self.tail(obs[:, -1]).mean(-1)
            terms["G"] = terms["G"] + terms["tail"]
        terms["next_obs"] = obs[:, 0]
        return terms

    def _rao_blackwell(self, horizon: int) -> bool:
        """Whether ``evaluate`` takes expectations under the model's predictive probabilities: one-step plans
        of an observation-only task with a fitted tail value (whose observation vectors are the support)."""
        return (self.config.obs_estimator == "rao_blackwell" and horizon == 1 and not self.model.encoding.has_state
                and self.tail is not None and self.tail.nodes is not None)

    def _evaluate_on_support(self, known: torch.Tensor, mask: torch.Tensor) -> dict:
        """One-step EFE terms and tail value as expectations under q(o_{t+1}|π), the net's per-factor
        predictive (mean over the rollouts) restricted to the observation vectors seen
        (``support_distribution``), instead of sample frequencies: no sampling noise in G."""
        c, nodes = self.config.context, self.tail.nodes
        samples, probs = self._sample(known, mask, self.config.n_samples, return_probs=True)
        q = support_distribution(probs[:, :, c + 1, self.model.encoding.slice("obs")].mean(1), nodes,
                                 self.obs_sizes)                            # (K, U)
        terms = support_expected_free_energy(q, self.preference(nodes))
        terms["tail"] = q @ self.tail.values
        terms["G"] = terms["G"] + terms["tail"]
        terms["next_obs"] = self._decode(samples[:, :, c + 1], "obs")      # (K, n, F)
        return terms

    def _write_goal(self, known: torch.Tensor, mask: torch.Tensor) -> None:
        factor = self.preference.factor
        start = self.model.encoding.slice("obs").start + sum(self.obs_sizes[:factor])
        block = slice(start, start + self.obs_sizes[factor])
        goal = torch.full((self.obs_sizes[factor],), -1.0)
        goal[self.preference.goal] = 1.0
        known[0, -1, block] = goal
        mask[0, -1, block] = True

    def _plan(self, chosen, probs, policies, terms, scored) -> FactoredPlan:
        return FactoredPlan(*self._decision(chosen, probs, policies), policies, terms,
                            next_obs=scored["next_obs"][scored["rows"]],
                            obs_sizes=self.obs_sizes, pseudo_count=self.config.pseudo_count)


def best_per_action(G: torch.Tensor, first_actions: torch.Tensor, n_actions: int) -> torch.Tensor:
    """Index of the lowest-G policy among those starting with each action, −1 where none does.

    G: (K,), first_actions: (K,) → (A,) long.
    """
    masked = torch.where(first_actions[None, :] == torch.arange(n_actions)[:, None], G[None, :], torch.inf)
    best = masked.argmin(dim=1)
    return torch.where(torch.isinf(masked.min(dim=1).values), -1, best)
