"""Exact Bayes filter for tasks with known tabular matrices (the ground truth the world model is scored against)."""
from __future__ import annotations

from typing import Sequence

import numpy as np


def bayes_filter_update(belief: np.ndarray, P: np.ndarray, O: np.ndarray, action: int | None,
                        observation: int) -> np.ndarray:
    """One filter step ``b'(s') ∝ O[s', o] · Σ_s b(s) P[s, a, s']``.

    ``belief`` (n_states,), ``P`` (n_states, n_actions, n_states), ``O`` (n_states, n_obs).
    ``action=None`` skips the prediction (the first observation of an episode, with ``belief`` the prior).
    Returns the normalised posterior (n_states,); an observation impossible under the belief is an error.
    """
    predicted = np.asarray(belief, dtype=np.float64) if action is None else belief @ P[:, int(action)]
    posterior = predicted * O[:, int(observation)]
    evidence = posterior.sum()
    if evidence <= 0:
        raise ValueError(f"observation {observation} has probability 0 under the predicted belief (action {action})")
    return posterior / evidence


def filter_beliefs(prior: np.ndarray, P: np.ndarray, O: np.ndarray, observations: Sequence[int],
                   actions: Sequence[int]) -> np.ndarray:
    """Beliefs ``b_t = p(s_t | o_0..o_t, a_0..a_{t-1})`` for t = 0..T-1: (T, n_states).

    ``actions[t]`` is the action taken at step t (only the first T-1 are used).
    """
    beliefs = [bayes_filter_update(prior, P, O, None, observations[0])]
    for t in range(1, len(observations)):
        beliefs.append(bayes_filter_update(beliefs[-1], P, O, actions[t - 1], observations[t]))
    return np.stack(beliefs)


def predict_observations(belief: np.ndarray, P: np.ndarray, O: np.ndarray, actions: Sequence[int]) -> np.ndarray:
    """k-step predictive ``p(o_{t+k}) = b_t P[:, a_t] ··· P[:, a_{t+k-1}] O`` for k = 1..len(actions): (K, n_obs)."""
    out, b = [], np.asarray(belief, dtype=np.float64)
    for a in actions:
        b = b @ P[:, int(a)]
        out.append(b @ O)
    return np.stack(out)
