"""Exact expected free energy by enumeration with a known discrete model (the reference).

Given the current belief ``q(s_0)``, a transition model ``P[s, a, s'] = p(s'|s, a)`` and an
observation model ``O[s, o] = p(o|s)``, each policy's predictions are exact:

    q(s_τ|π) = q(s_{τ−1}|π) · P[:, π_τ, :]        (τ = 1..H, so step τ follows action π_τ)
    q(o_τ|π) = q(s_τ|π) · O

and the EFE terms of ``diffaif.planning.efe`` are evaluated on them in float64. Because q(o)
is consistent with q(s), ``info_gain`` is the mutual information and G is the textbook EFE of
discrete active inference (pymdp computes the same quantity, as ``−G``, in
``pymdp.control.compute_neg_efe_policy`` when its C is the normalised log-preference).
"""
from __future__ import annotations

import torch
from einops import rearrange

from diffaif.planning.efe import categorical_entropy, expected_free_energy


def _as_float64(name: str, array) -> torch.Tensor:
    tensor = torch.as_tensor(array)
    if not tensor.is_floating_point():
        raise ValueError(f"{name} must hold probabilities (floating point), got dtype {tensor.dtype}")
    return tensor.to(torch.float64)


def _check_stochastic(name: str, tensor: torch.Tensor, atol: float = 1e-8) -> None:
    if torch.any(tensor < 0):
        raise ValueError(f"{name} has negative entries (min {tensor.min().item():.3g})")
    sums = tensor.sum(-1)
    if not torch.allclose(sums, torch.ones_like(sums), atol=atol):
        raise ValueError(f"{name} must sum to 1 over its last dim; sums range over "
                         f"[{sums.min().item():.6g}, {sums.max().item():.6g}]")


def exact_predictions(belief, policies: torch.Tensor, P, O) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact predictive distributions ``q(s_τ|π)`` and ``q(o_τ|π)`` for τ = 1..H.

    belief: (S,) q(s_0); policies: (K, H) long actions; P: (S, A, S) with P[s, a, s'] = p(s'|s, a);
    O: (S, O) with O[s, o] = p(o|s) → (q_s (K, H, S), q_o (K, H, O)), float64.
    """
    belief, P, O = _as_float64("belief", belief), _as_float64("P", P), _as_float64("O", O)
    policies = torch.as_tensor(policies)
    n_states = belief.shape[0]
    if belief.ndim != 1:
        raise ValueError(f"belief must have shape (S,), got {tuple(belief.shape)}")
    if P.ndim != 3 or P.shape[0] != n_states or P.shape[2] != n_states:
        raise ValueError(f"P must have shape ({n_states}, A, {n_states}), got {tuple(P.shape)}")
    if O.ndim != 2 or O.shape[0] != n_states:
        raise ValueError(f"O must have shape ({n_states}, n_obs), got {tuple(O.shape)}")
    if policies.ndim != 2 or policies.shape[1] < 1 or policies.is_floating_point():
        raise ValueError(f"policies must be a (K, H >= 1) integer tensor, got shape {tuple(policies.shape)} "
                         f"dtype {policies.dtype}")
    if policies.numel() and (policies.min() < 0 or policies.max() >= P.shape[1]):
        raise ValueError(f"policy actions must lie in [0, {P.shape[1]}); got range "
                         f"[{policies.min().item()}, {policies.max().item()}]")
    _check_stochastic("belief", belief)
    _check_stochastic("P", P)
    _check_stochastic("O", O)

    n_policies, horizon = policies.shape
    state = belief.expand(n_policies, n_states)
    predicted_states = []
    for tau in range(horizon):
        transition = rearrange(P[:, policies[:, tau].long(), :], "s k t -> k s t")
        state = torch.einsum("ks,kst->kt", state, transition)
        predicted_states.append(state)
    q_s = torch.stack(predicted_states, dim=1)
    return q_s, q_s @ O


def exact_expected_free_energy(belief, policies: torch.Tensor, P, O, log_preference) -> dict[str, torch.Tensor]:
    """Exact EFE of every policy: ``G(π) = Σ_{τ=1..H} KL[q(o_τ|π) ‖ p̃] + E_{q(s_τ|π)} H[p(o|s_τ)]``.

    belief: (S,); policies: (K, H) long; P: (S, A, S); O: (S, O); log_preference: (O,) or (H, O)
    normalised log p̃(o) → dict with keys ``G``, ``risk``, ``ambiguity``, ``extrinsic``,
    ``info_gain``, each (K,) float64.
    """
    q_s, q_o = exact_predictions(belief, policies, P, O)
    obs_entropy = categorical_entropy(_as_float64("O", O))
    return expected_free_energy(q_o, q_s, _as_float64("log_preference", log_preference), obs_entropy)
