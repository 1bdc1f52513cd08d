"""The one planner core: every planner is a world-model sampler, a scorer and a proposer in one loop.

One decision (``InpaintingPlanner.plan``): ``_propose`` draws candidate policies (enumeration,
random, CEM, or samples of the world model itself), scoring them with ``evaluate`` as it goes (one
batched ``inpaint`` call per scoring: the windows of all K candidates, ``n_samples`` rollouts each);
the final candidates get ``P(π) = softmax(−γ G)`` and the agent acts on the first action of the chosen
one. What differs between task families is only ``evaluate`` (the EFE estimator for their kinds of
states and observations) and ``_plan`` (the decision record); ``EFEPlanner`` and
``FactoredEFEPlanner`` (categorical, ``planning/planner.py``) and ``ContinuousPlanner``
(``planning/continuous.py``) are such configurations.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Sequence

import gymnasium as gym
import numpy as np
import torch

from diffaif.data.episodes import EpisodeData
from diffaif.model.world_model import WorldModel, known_window
from diffaif.planning.efe import action_marginal, policy_posterior
from diffaif.planning.policies import Proposal, ScoreFn, check_window, propose_and_score, propose_policies


class InpaintingPlanner(ABC):
    """What every world-model planner shares: windows of the history and candidate policies, the batched
    sampling call, proposals, and the choice of the policy to act on.

    ``models``: one world model or an ensemble (same encoding); ``action_space``: Discrete (policies
    (K, H) long) or flat Box (policies (K, H, d) float). Subclasses define ``evaluate`` (the EFE terms
    of K policies from their rollouts) and ``_plan`` (the decision record), and may override
    ``_propose`` (default: ``propose_policies`` with model-sampled candidates) and ``_new_episode``.
    ``kept_terms`` names the per-policy terms a decision keeps.
    """

    kept_terms: tuple[str, ...] = ("G",)

    def __init__(self, models: WorldModel | Sequence[WorldModel], config: Any, action_space: gym.Space,
                 seed: int = 0, action_marginal: bool = True):
        self.models = list(models) if isinstance(models, (list, tuple)) else [models]
        if not self.models:
            raise ValueError("a planner needs at least one world model")
        self.model = self.models[0]
        self.encoding = self.model.encoding
        if any(m.encoding != self.encoding for m in self.models):
            raise ValueError("the ensemble's world models must share one encoding")
        check_window(config.context, config.policies.horizon, self.model.length)
        self.config = config
        self.window = config.context + 1 + config.policies.horizon if config.crop_window else self.model.length
        self.discrete = isinstance(action_space, gym.spaces.Discrete)
        if self.discrete:
            self.n_actions = int(action_space.n)
        elif isinstance(action_space, gym.spaces.Box) and len(action_space.shape) == 1:
            self.n_actions = None
            self.low = torch.as_tensor(action_space.low, dtype=torch.float32)
            self.high = torch.as_tensor(action_space.high, dtype=torch.float32)
        else:
            raise ValueError(f"a planner needs Discrete or flat Box actions, got {action_space}")
        # act on argmax_a P(a) (through the most probable policy starting with it) rather than argmax P(π)
        self.action_marginal = action_marginal and self.discrete
        self.generator = torch.Generator().manual_seed(seed)

    # ---- the world model ------------------------------------------------------------------------
    def _sample(self, known: torch.Tensor, mask: torch.Tensor, n_samples: int, return_probs: bool = False,
                model: WorldModel | None = None, generator: torch.Generator | None = None) -> Any:
        """``n_samples`` rollouts of each window (B, T, D) → (B, n, T, D) on the CPU (with ``return_probs``
        also the predictive probabilities), from ``model`` (default: the first) with ``generator``
        (default: the planner's)."""
        extra = {"return_probs": True} if return_probs else {}  # samplers without probabilities still serve
        out = (model or self.model).inpaint(known, mask, n_samples, self.config.denoising_steps, self.config.mode,
                                            generator=generator or self.generator,
                                            shared_noise=self.config.common_random_numbers, **extra)
        # the net runs on the model's device; the EFE arithmetic on these small tensors stays on the CPU
        return tuple(t.cpu() for t in out) if return_probs else out.cpu()

    def _recent(self, observations: Sequence) -> np.ndarray:
        """The last ``context + 1`` observations, the present last: (k, ...)."""
        return np.asarray(list(observations)[-(self.config.context + 1):])

    def _window(self, observations: Sequence, actions: Sequence, policies: torch.Tensor):
        """``known_window`` for K policies (K, H[, d]) after the last ``context + 1`` observations and the
        actions between them → known (K, T, D), mask (K, T, D)."""
        obs = self._recent(observations)
        n_past = len(obs) - 1
        past = np.asarray(list(actions)[len(actions) - n_past:] if n_past else [])
        past = past.astype(np.int64).reshape(n_past) if self.discrete else \
            past.astype(np.float64).reshape(n_past, self.low.shape[0])
        K = policies.shape[0]
        return known_window(self.encoding, self.window, self.config.context, np.repeat(obs[None], K, 0),
                            np.repeat(past[None], K, 0), policies.numpy())

    def model_policies(self, observations: Sequence, actions: Sequence[int], n: int) -> torch.Tensor:
        """Action sequences sampled from the world model itself: inpaint the window with the history
        known and the actions free; with ``policies.model_goal`` the preferred outcome is also
        written into the last step (``_write_goal``), so the samples are sequences the model thinks
        lead there. → (n, H) long.
        """
        c, horizon = self.config.context, self.config.policies.horizon
        known, mask = self._window(observations, actions, torch.zeros((1, 0), dtype=torch.long))
        if self.config.policies.model_goal:
            self._write_goal(known, mask)
        samples = self._sample(known, mask, n)[0]                          # (n, T, D)
        return torch.as_tensor(self.encoding.decode_part(samples[:, c:c + horizon].numpy(), "action"))

    def _write_goal(self, known: torch.Tensor, mask: torch.Tensor) -> None:
        """Write the preferred outcome into the last step of ``known`` (1, T, D) and set ``mask``."""
        raise ValueError(f"{type(self).__name__} has no goal observation to condition proposals on "
                         "(policies.model_goal)")

    # ---- the loop -------------------------------------------------------------------------------
    @abstractmethod
    def evaluate(self, observations: Sequence, actions: Sequence, policies: torch.Tensor) -> dict:
        """EFE terms of ``policies`` (K, H[, d]): a dict of (K,) tensors, G and ``kept_terms``, plus whatever
        ``_plan`` needs."""

    @abstractmethod
    def _plan(self, chosen: int, probs: torch.Tensor, policies: torch.Tensor, terms: dict, scored: dict) -> Any:
        """The decision record for the policy in row ``chosen``; ``scored`` is the last ``evaluate`` output,
        whose ``scored["rows"]`` index the final candidates in it."""

    def _propose(self, score: ScoreFn, observations: Sequence, actions: Sequence) -> Proposal:
        """The final candidates, scored with ``score`` as the proposer goes (Discrete actions)."""
        def sample(n: int) -> torch.Tensor:
            return self.model_policies(observations, actions, n)

        return propose_policies(self.config.policies, self.n_actions, self.generator, score, sample)

    def _new_episode(self) -> None:
        """Forget what a decision carries to the next one (nothing, here)."""

    def learn(self, data: EpisodeData) -> None:
        """Fit what the planner learns from the data set besides the world model (nothing, here)."""

    def choose(self, probs: torch.Tensor, policies: torch.Tensor) -> int:
        """The row of the policy to act on: ``selection`` "sample" draws π ~ P(π); "argmax" takes the most
        probable policy, or with ``action_marginal`` the most probable one starting with
        ``argmax_a P(a)``, ``P(a) = Σ_{π: π_1 = a} P(π)``."""
        if self.config.selection == "sample":
            return int(torch.multinomial(probs, 1, generator=self.generator))
        if self.action_marginal:
            best = torch.argmax(action_marginal(probs, policies[:, 0], self.n_actions))
            return int(torch.argmax(torch.where(policies[:, 0] == best, probs, -1.0)))
        return int(torch.argmax(probs))

    def plan(self, observations: Sequence, actions: Sequence) -> Any:
        """Propose and score candidates, then act on the first action of the chosen one (``choose``)."""
        if len(observations) == 1:  # a new episode
            self._new_episode()
        policies, terms, last = propose_and_score(
            lambda score: self._propose(score, observations, actions),
            lambda candidates: self.evaluate(observations, actions, candidates), self.kept_terms)
        probs = policy_posterior(terms["G"], self.config.gamma)
        return self._plan(self.choose(probs, policies), probs, policies, terms, last)
