"""Expected free energy of candidate policies, estimated from inpainted world-model rollouts.

One planning step (``EFEPlanner.plan``): build a known/mask window per candidate policy (past
observations and actions, the policy's actions), inpaint ``n_samples`` joint rollouts of all K
candidates in one batch, decode the future hidden states and observations, estimate ``q(s_τ|π)`` and
``q(o_τ|π)``, and score ``G(π) = risk + ambiguity`` (``diffaif.planning.efe``); the agent then acts on
``P(π) = softmax(−γ G)``. G is minimised everywhere.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch

from diffaif.model.world_model import WorldModel, known_window
from diffaif.planning.efe import (action_marginal, categorical_entropy, expected_free_energy, histogram,
                                  policy_posterior, surprise)
from diffaif.planning.policies import PolicyConfig, propose_policies

OBS_ESTIMATORS = ("histogram", "rao_blackwell")
SELECTIONS = ("argmax", "sample")


@dataclass
class PlannerConfig:
    policies: PolicyConfig = field(default_factory=PolicyConfig)
    context: int = 1                 # past steps given to the model (belief about the present state)
    n_samples: int = 16              # rollouts per candidate policy
    denoising_steps: int = 10
    mode: str = "masked"             # inpainting mode: "masked" or "repaint"
    gamma: float = 16.0              # policy precision in P(π) ∝ exp(−γ G)
    preference: str = "shaped"       # "sparse" (goal only) or "shaped" (distance to goal)
    preference_precision: float = 1.0
    pseudo_count: float = 0.1        # Dirichlet pseudo-count of the outcome histograms
    # q(o_τ|π): histogram of sampled observations, or Σ_s q(s_τ|π) p̂(o|s) with p̂ the model's own
    # observation likelihood (Rao-Blackwellised: lower variance, consistent with q(s_τ|π)).
    obs_estimator: str = "rao_blackwell"
    likelihood_samples: int = 128    # samples per state for the cached p̂(o|s) and H[p(o|s)]
    selection: str = "argmax"        # act on argmax P(a) or sample a ~ P(a)
    common_random_numbers: bool = True
    # Run the net on context + 1 + horizon tokens instead of the model's full window: fewer tokens,
    # faster; right for models trained with ``train.crop_prob`` > 0, which have seen short windows.
    crop_window: bool = True

    def __post_init__(self):
        if self.obs_estimator not in OBS_ESTIMATORS:
            raise ValueError(f"obs_estimator must be one of {OBS_ESTIMATORS}, got {self.obs_estimator!r}")
        if self.selection not in SELECTIONS:
            raise ValueError(f"selection must be one of {SELECTIONS}, got {self.selection!r}")
        if self.context < 0 or self.n_samples < 1 or self.denoising_steps < 1:
            raise ValueError("context must be >= 0, n_samples and denoising_steps >= 1")


@dataclass
class Plan:
    """One decision: the action, P(a), and per-policy EFE terms for the log."""

    action: int
    action_probs: torch.Tensor          # (A,)
    policies: torch.Tensor              # (K, H)
    terms: dict[str, torch.Tensor]      # each (K,): G, risk, ambiguity, extrinsic, info_gain
    belief: torch.Tensor                # (S,) the model's belief about the present hidden state
    q_o: torch.Tensor                   # (K, H, O) predicted observations per policy

    def per_action(self) -> dict[str, list[float]]:
        """Each EFE term of the lowest-G policy starting with each action (NaN where no policy does)."""
        n_actions = self.action_probs.shape[0]
        best = best_per_action(self.terms["G"], self.policies[:, 0], n_actions)
        return {name: [float(values[b]) if b >= 0 else float("nan") for b in best.tolist()]
                for name, values in self.terms.items()}

    def next_observation(self, action: int) -> torch.Tensor:
        """q(o_{t+1}) under the lowest-G policy starting with ``action``: (O,)."""
        best = int(best_per_action(self.terms["G"], self.policies[:, 0], self.action_probs.shape[0])[action])
        return self.q_o[best, 0]

    def surprise(self, action: int, observation) -> float:
        """``−log q(o_{t+1} = observation)`` under the lowest-G policy starting with ``action`` (nats)."""
        return float(surprise(self.next_observation(action), int(observation)))

    def log(self) -> dict:
        """The decision for the step log: P(a), per action the EFE terms of its best policy (Fig. 3 and 4
        of the method paper), the candidates with their G, risk and ambiguity, and the belief."""
        per_action = self.per_action()
        return {"action_probs": self.action_probs.tolist(), "efe_per_action": per_action["G"],
                **{f"{name}_per_action": values for name, values in per_action.items() if name != "G"},
                "policies": self.policies.tolist(),
                **{f"{name}_per_policy": self.terms[name].tolist() for name in ("G", "risk", "ambiguity")},
                "belief_entropy": float(categorical_entropy(self.belief)), "belief_map": int(self.belief.argmax())}


class EFEPlanner:
    """Scores candidate policies by Monte Carlo EFE from a world model over categorical s, o, a."""

    def __init__(self, model: WorldModel, log_preference: torch.Tensor, config: PlannerConfig, seed: int = 0):
        enc = model.encoding
        for part in ("state", "obs", "action"):
            if enc.parts[part].kind != "categorical":
                raise ValueError(f"EFEPlanner needs categorical parts; {part!r} is {enc.parts[part].kind}")
        horizon = config.policies.horizon
        if config.context + horizon + 1 > model.length:
            raise ValueError(f"context ({config.context}) + horizon ({horizon}) + 1 exceeds the model's "
                             f"window length {model.length}")
        self.model = model
        self.config = config
        self.window = config.context + 1 + horizon if config.crop_window else model.length
        self.n_states = enc.parts["state"].size
        self.n_obs = enc.parts["obs"].size
        self.n_actions = enc.parts["action"].size
        if log_preference.shape != (self.n_obs,):
            raise ValueError(f"log_preference must have shape ({self.n_obs},), got {tuple(log_preference.shape)}")
        self.log_preference = log_preference.float()
        self.generator = torch.Generator().manual_seed(seed)
        self._likelihood: torch.Tensor | None = None

    def _decode(self, samples: torch.Tensor, part: str) -> torch.Tensor:
        """Categorical indices of ``part``: (..., T, D) → (..., T) long (argmax of the ±1 one-hot)."""
        return samples[..., self.model.encoding.slice(part)].argmax(-1)

    def _sample(self, known: torch.Tensor, mask: torch.Tensor, n_samples: int) -> torch.Tensor:
        # the net runs on the model's device; the EFE arithmetic on these small tensors stays on the CPU
        return self.model.inpaint(known, mask, n_samples, self.config.denoising_steps, self.config.mode,
                                  generator=self.generator, shared_noise=self.config.common_random_numbers).cpu()

    def _window(self, observations: Sequence[int], actions: Sequence[int], policies: torch.Tensor):
        """``known_window`` for K policies (K, h) after the last ``context + 1`` observations and the actions between them."""
        obs = list(observations)[-(self.config.context + 1):]
        past = list(actions)[len(actions) - (len(obs) - 1):] if len(obs) > 1 else []
        K = policies.shape[0]
        return known_window(self.model.encoding, self.window, self.config.context, torch.tensor([obs] * K),
                            torch.tensor([past] * K, dtype=torch.long).reshape(K, -1), policies)

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
        samples = self._sample(known, mask, self.config.n_samples)       # (K, N, T, D)
        future = samples[:, :, c + 1:c + 1 + horizon]                    # (K, N, H, D)
        states = self._decode(future, "state").transpose(1, 2)           # (K, H, N)
        q_s = histogram(states, self.n_states, 0.0)                      # (K, H, S)
        likelihood = self.likelihood()
        if self.config.obs_estimator == "rao_blackwell":
            q_o = q_s @ likelihood
        else:
            q_o = histogram(self._decode(future, "obs").transpose(1, 2), self.n_obs, self.config.pseudo_count)
        terms = expected_free_energy(q_o, q_s, self.log_preference, categorical_entropy(likelihood))
        terms["belief"] = histogram(self._decode(samples[:, :, c], "state").reshape(-1), self.n_states, 0.0)
        terms["q_o"] = q_o
        return terms

    def model_policies(self, observations: Sequence[int], actions: Sequence[int], n: int) -> torch.Tensor:
        """Action sequences sampled from the world model itself: inpaint the window with the history
        known and the actions free; with ``policies.model_goal`` the preferred observation is also
        written into the last step, so the samples are sequences the model thinks lead there.
        → (n, H) long.
        """
        c, horizon = self.config.context, self.config.policies.horizon
        known, mask = self._window(observations, actions, torch.zeros((1, 0), dtype=torch.long))
        if self.config.policies.model_goal:
            goal = torch.full((self.n_obs,), -1.0)
            goal[int(self.log_preference.argmax())] = 1.0
            obs_slice = self.model.encoding.slice("obs")
            known[0, -1, obs_slice] = goal
            mask[0, -1, obs_slice] = True
        samples = self._sample(known, mask, n)[0]                          # (n, T, D)
        return self._decode(samples[:, c:c + horizon], "action")

    def plan(self, observations: Sequence[int], actions: Sequence[int]) -> Plan:
        """Propose candidates, score them, and choose the next action from ``P(a) = Σ_{π: π_1=a} P(π)``."""
        last: dict = {}

        def score(policies: torch.Tensor) -> torch.Tensor:
            last.update(self.evaluate(observations, actions, policies), policies=policies)
            return last["G"]

        def sample(n: int) -> torch.Tensor:
            return self.model_policies(observations, actions, n)

        policies = propose_policies(self.config.policies, self.n_actions, self.generator, score, sample).policies
        rows = rows_in(policies, last["policies"], self.n_actions) if last else None
        if rows is None:  # the proposer did not score its final candidates
            score(policies)
            rows = torch.arange(len(policies))
        terms = {name: last[name][rows] for name in ("G", "risk", "ambiguity", "extrinsic", "info_gain")}
        probs = action_marginal(policy_posterior(terms["G"], self.config.gamma), policies[:, 0], self.n_actions)
        if self.config.selection == "argmax":
            action = int(torch.argmax(probs))
        else:
            action = int(torch.multinomial(probs, 1, generator=self.generator))
        return Plan(action, probs, policies, terms, last["belief"], last["q_o"][rows])


def rows_in(policies: torch.Tensor, scored: torch.Tensor, n_actions: int) -> torch.Tensor | None:
    """Index into ``scored`` (M, H) of each row of ``policies`` (K, H), or None if any row is missing.

    Rows are compared by their base-|A| code ``Σ_τ π_τ |A|^{H−1−τ}``.
    """
    if policies.shape[1] != scored.shape[1]:
        return None
    place = n_actions ** torch.arange(policies.shape[1] - 1, -1, -1)
    codes, scored_codes = (policies * place).sum(-1), (scored * place).sum(-1)
    order = torch.argsort(scored_codes)
    found = order[torch.searchsorted(scored_codes[order], codes).clamp(max=len(order) - 1)]
    return found if torch.equal(scored_codes[found], codes) else None


def best_per_action(G: torch.Tensor, first_actions: torch.Tensor, n_actions: int) -> torch.Tensor:
    """Index of the lowest-G policy among those starting with each action, −1 where none does.

    G: (K,), first_actions: (K,) → (A,) long.
    """
    masked = torch.where(first_actions[None, :] == torch.arange(n_actions)[:, None], G[None, :], torch.inf)
    best = masked.argmin(dim=1)
    return torch.where(torch.isinf(masked.min(dim=1).values), -1, best)
