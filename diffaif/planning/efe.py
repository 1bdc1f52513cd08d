"""Expected free energy and the entropy estimators it is built from (torch, batched).

Convention everywhere: G is minimised and ``P(π) ∝ exp(−γ G)``; logarithms are natural (nats).
For a policy π over a horizon of H steps,

    G(π) = Σ_τ KL[q(o_τ|π) ‖ p̃(o)] + Σ_τ E_{q(s_τ|π)} H[p(o|s_τ)]                 (risk + ambiguity)
         = −Σ_τ E_{q(o_τ|π)}[log p̃(o_τ)] − Σ_τ (H[q(o_τ|π)] − E_{q(s_τ|π)} H[p(o|s_τ)])
                                                                 (−extrinsic − information gain)

Every function takes arbitrary leading batch dimensions (candidates, samples, ...).
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from einops import rearrange, reduce


def _check_log_probabilities(name: str, log_p: torch.Tensor, atol: float = 1e-4) -> None:
    log_total = torch.logsumexp(log_p, dim=-1)
    if not torch.allclose(log_total, torch.zeros_like(log_total), atol=atol):
        raise ValueError(f"{name} must be normalised log-probabilities (logsumexp 0 over the last dim); "
                         f"logsumexp ranges over [{log_total.min().item():.6g}, {log_total.max().item():.6g}]")


def _expected_log(p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """Elementwise ``p · log q`` with ``0 · log q = 0`` (also where ``log q = −inf``)."""
    return torch.where(p > 0, p * log_q, torch.zeros((), dtype=p.dtype, device=p.device))


# ---- categorical entropies ---------------------------------------------------------------------
def categorical_entropy(p: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Shannon entropy ``H[p] = −Σ_k p_k log p_k`` along ``dim``, with ``0 · log 0 = 0``.

    p: (..., K) probabilities → (...).
    """
    return -torch.special.xlogy(p, p).sum(dim)


def surprise(p: torch.Tensor, outcome: int, floor: float = 1e-12) -> torch.Tensor:
    """Surprise (self-information) of an observed outcome ``−log p[outcome]``; p (K,), floored to stay finite."""
    return -torch.log(p[outcome].clamp_min(floor))


def categorical_kl(q: torch.Tensor, p: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """``KL[q ‖ p] = Σ_k q_k (log q_k − log p_k)`` along ``dim``.

    Terms with ``q_k = 0`` contribute 0; ``q_k > 0`` where ``p_k = 0`` gives ``+inf``.
    q, p: (..., K) probabilities (broadcastable) → (...).
    """
    return (torch.special.xlogy(q, q) - torch.special.xlogy(q, p)).sum(dim)


def category_counts(indices: torch.Tensor, n_categories: int) -> torch.Tensor:
    """How often each category occurs: ``c_k = Σ_i [x_i = k]``.

    indices: (..., n_samples) long in ``[0, n_categories)`` → counts (..., n_categories), float.
    """
    if indices.dtype not in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8):
        raise ValueError(f"indices must be an integer tensor, got dtype {indices.dtype}")
    if indices.numel() and (indices.min() < 0 or indices.max() >= n_categories):
        raise ValueError(f"indices must lie in [0, {n_categories}); got range "
                         f"[{indices.min().item()}, {indices.max().item()}]")
    one_hot = torch.nn.functional.one_hot(indices.long(), n_categories).to(torch.get_default_dtype())
    return reduce(one_hot, "... n k -> ... k", "sum")


def histogram(indices: torch.Tensor, n_categories: int, pseudo_count: float = 0.0) -> torch.Tensor:
    """Posterior-mean probabilities of a Dirichlet(α) prior given samples: ``(c_k + α) / (N + K α)``.

    The pseudo-count α keeps unvisited categories off zero, so KL against a histogram stays finite.
    indices: (..., n_samples) long → probabilities (..., n_categories).
    """
    if pseudo_count < 0:
        raise ValueError(f"pseudo_count must be >= 0, got {pseudo_count}")
    n_samples = indices.shape[-1]
    if n_samples == 0 and pseudo_count == 0:
        raise ValueError("histogram of zero samples needs a positive pseudo_count")
    counts = category_counts(indices, n_categories)
    return (counts + pseudo_count) / (n_samples + n_categories * pseudo_count)


def miller_madow_entropy(counts: torch.Tensor) -> torch.Tensor:
    """Bias-corrected plug-in entropy ``Ĥ = −Σ_k p̂_k log p̂_k + (K_occupied − 1) / (2N)``.

    ``p̂_k = c_k / N`` and ``K_occupied`` the number of categories with ``c_k > 0``; the plug-in
    estimate alone is biased low by about that amount (Miller 1955).
    counts: (..., K) non-negative, N > 0 → (...).
    """
    if torch.any(counts < 0):
        raise ValueError(f"counts must be non-negative, got min {counts.min().item()}")
    n_total = counts.sum(-1)
    if torch.any(n_total <= 0):
        raise ValueError("every count vector needs at least one sample (N > 0)")
    plug_in = categorical_entropy(counts / n_total.unsqueeze(-1))
    occupied = (counts > 0).sum(-1).to(counts.dtype)
    return plug_in + (occupied - 1) / (2 * n_total)


# ---- continuous entropies ----------------------------------------------------------------------
def log_unit_ball_volume(dim: int) -> float:
    """``log V_d = (d/2) log π − log Γ(d/2 + 1)``, the volume of the Euclidean unit d-ball."""
    return 0.5 * dim * math.log(math.pi) - math.lgamma(0.5 * dim + 1)


def _sample_covariance(x: torch.Tensor) -> torch.Tensor:
    """Unbiased covariance ``Σ = (x − x̄)ᵀ(x − x̄) / (n − 1)``; x (..., n, d) → (..., d, d)."""
    centred = x - x.mean(-2, keepdim=True)
    return rearrange(centred, "... n d -> ... d n") @ centred / (x.shape[-2] - 1)


def _ridged_cholesky(x: torch.Tensor, ridge: float) -> torch.Tensor:
    """Cholesky factor L of ``Σ + ridge·I`` (the ridge keeps degenerate samples factorisable)."""
    cov = _sample_covariance(x)
    eye = torch.eye(x.shape[-1], dtype=x.dtype, device=x.device)
    return torch.linalg.cholesky(cov + ridge * eye)


def _check_samples(x: torch.Tensor, min_samples: int) -> None:
    if x.ndim < 2:
        raise ValueError(f"samples must have shape (..., n, d), got {tuple(x.shape)}")
    if x.shape[-2] < min_samples:
        raise ValueError(f"need at least {min_samples} samples, got n={x.shape[-2]}")


def gaussian_entropy(x: torch.Tensor, ridge: float = 1e-6) -> torch.Tensor:
    """Entropy of the Gaussian fitted to the samples: ``½ log det(2πe (Σ + ridge·I))``.

    ``Σ`` is the unbiased sample covariance; the ridge bounds the entropy below for degenerate samples.
    x: (..., n, d) → (...).
    """
    _check_samples(x, 2)
    chol = _ridged_cholesky(x, ridge)
    log_det = 2 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)
    return 0.5 * (x.shape[-1] * math.log(2 * math.pi * math.e) + log_det)


def knn_entropy(x: torch.Tensor, k: int = 4, whiten: bool = False, ridge: float = 1e-6,
                min_distance: float = 1e-10) -> torch.Tensor:
    """Kozachenko–Leonenko entropy ``Ĥ = ψ(n) − ψ(k) + log V_d + (d/n) Σ_i log ρ_k(i)``.

    ``ρ_k(i)`` is the Euclidean distance from sample i to its k-th nearest other sample and
    ``V_d`` the unit d-ball volume. With ``whiten=True`` the samples are first mapped to
    ``z = L⁻¹(x − x̄)`` with ``L Lᵀ = Σ + ridge·I`` (isotropic neighbourhoods suit the Euclidean
    ball better) and the Jacobian is added back: ``H[x] = H[z] + log det L``. Distances are floored
    at ``min_distance`` because repeated samples would give ``log 0``.
    x: (..., n, d) → (...).
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    _check_samples(x, k + 1)
    n, d = x.shape[-2], x.shape[-1]
    log_jacobian = torch.zeros(x.shape[:-2], dtype=x.dtype, device=x.device)
    if whiten:
        chol = _ridged_cholesky(x, ridge)
        centred = rearrange(x - x.mean(-2, keepdim=True), "... n d -> ... d n")
        x = rearrange(torch.linalg.solve_triangular(chol, centred, upper=False), "... d n -> ... n d")
        log_jacobian = torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)
    distances = torch.cdist(x, x)
    self_mask = torch.eye(n, dtype=torch.bool, device=x.device)
    distances = distances.masked_fill(self_mask, float("inf"))
    rho_k = torch.topk(distances, k, dim=-1, largest=False).values[..., k - 1]
    mean_log_rho = torch.log(rho_k.clamp_min(min_distance)).mean(-1)
    psi_n, psi_k = torch.special.digamma(torch.tensor([float(n), float(k)], dtype=torch.float64)).tolist()
    return psi_n - psi_k + log_unit_ball_volume(d) + d * mean_log_rho + log_jacobian


# ---- expected free energy terms ----------------------------------------------------------------
def _check_horizon_tensor(name: str, q: torch.Tensor) -> None:
    if q.ndim < 2:
        raise ValueError(f"{name} must have shape (..., H, K) with a horizon dim, got {tuple(q.shape)}")


def risk(q_o: torch.Tensor, log_preference: torch.Tensor) -> torch.Tensor:
    """Risk ``Σ_τ KL[q(o_τ|π) ‖ p̃(o)] = Σ_τ Σ_o q(o_τ) (log q(o_τ) − log p̃(o))``.

    q_o: (..., H, K) predicted observation probabilities; log_preference: (K,) or (H, K) normalised
    log p̃(o) → (...).
    """
    _check_horizon_tensor("q_o", q_o)
    _check_log_probabilities("log_preference", log_preference)
    return (torch.special.xlogy(q_o, q_o) - _expected_log(q_o, log_preference)).sum((-2, -1))


def ambiguity(q_s: torch.Tensor, obs_entropy: torch.Tensor) -> torch.Tensor:
    """Ambiguity ``Σ_τ E_{q(s_τ|π)} H[p(o|s_τ)] = Σ_τ Σ_s q(s_τ) H_o(s)``.

    q_s: (..., H, S) predicted state probabilities; obs_entropy: (S,) entropy of p(o|s) per state
    (or any shape broadcastable to q_s) → (...).
    """
    _check_horizon_tensor("q_s", q_s)
    return (q_s * obs_entropy).sum((-2, -1))


def extrinsic_value(q_o: torch.Tensor, log_preference: torch.Tensor) -> torch.Tensor:
    """Extrinsic (pragmatic) value ``Σ_τ E_{q(o_τ|π)}[log p̃(o_τ)]`` (≤ 0; higher is better).

    q_o: (..., H, K); log_preference: (K,) or (H, K) normalised log p̃(o) → (...).
    """
    _check_horizon_tensor("q_o", q_o)
    _check_log_probabilities("log_preference", log_preference)
    return _expected_log(q_o, log_preference).sum((-2, -1))


def information_gain(q_o: torch.Tensor, q_s: torch.Tensor, obs_entropy: torch.Tensor) -> torch.Tensor:
    """Epistemic value ``Σ_τ (H[q(o_τ|π)] − E_{q(s_τ|π)} H[p(o|s_τ)])``.

    When ``q(o_τ) = Σ_s q(s_τ) p(o|s)`` this is the mutual information ``I[s_τ; o_τ] ≥ 0``;
    with separately estimated q(o) and q(s) (Monte Carlo) it can come out negative.
    q_o: (..., H, K); q_s: (..., H, S); obs_entropy: (S,) → (...).
    """
    _check_horizon_tensor("q_o", q_o)
    return categorical_entropy(q_o).sum(-1) - ambiguity(q_s, obs_entropy)


def expected_free_energy(q_o: torch.Tensor, q_s: torch.Tensor, log_preference: torch.Tensor,
                         obs_entropy: torch.Tensor) -> dict[str, torch.Tensor]:
    """All EFE terms: ``G = risk + ambiguity = −extrinsic − info_gain``.

    Since ``KL[q(o) ‖ p̃] = −H[q(o)] − E_q[log p̃]``, the two decompositions are the same number
    for any inputs; they are the textbook EFE (and ``info_gain`` the mutual information between
    states and observations) when q_o is consistent with q_s, i.e. ``q(o_τ) = Σ_s q(s_τ) p(o|s)``.
    q_o: (..., H, K); q_s: (..., H, S); log_preference: (K,) or (H, K); obs_entropy: (S,)
    → dict with keys ``G``, ``risk``, ``ambiguity``, ``extrinsic``, ``info_gain``, each (...).
    """
    risk_term = risk(q_o, log_preference)
    ambiguity_term = ambiguity(q_s, obs_entropy)
    return {
        "G": risk_term + ambiguity_term,
        "risk": risk_term,
        "ambiguity": ambiguity_term,
        "extrinsic": extrinsic_value(q_o, log_preference),
        "info_gain": information_gain(q_o, q_s, obs_entropy),
    }


# ---- EFE of factored categorical outcomes from joint samples -------------------------------------
def row_codes(x: torch.Tensor) -> torch.Tensor:
    """An integer id per distinct row of ``x``: equal rows get equal ids, different rows different ids.

    x: (..., F) integer vectors (a MiniGrid state or view) → (...) long in ``[0, number of distinct rows)``.
    """
    _, inverse = torch.unique(rearrange(x, "... f -> (...) f"), dim=0, return_inverse=True)
    return inverse.reshape(x.shape[:-1])


def sample_entropy(codes: torch.Tensor) -> torch.Tensor:
    """Plug-in entropy of the empirical distribution of n samples: ``Ĥ = −Σ_k (c_k/n) log(c_k/n)``.

    codes: (..., n) long ids (``row_codes``) → (...). Biased low by ≈ (K−1)/(2n) for K outcomes;
    it is 0 when all samples agree and log n when all differ.
    """
    ordered = codes.sort(dim=-1).values
    n = codes.shape[-1]
    starts = torch.ones_like(ordered, dtype=torch.bool)
    starts[..., 1:] = ordered[..., 1:] != ordered[..., :-1]
    runs = starts.long().cumsum(-1) - 1                              # run index of each sorted sample
    counts = torch.zeros_like(ordered, dtype=torch.float64).scatter_add_(-1, runs, torch.ones_like(runs, dtype=torch.float64))
    p = counts / n
    return -torch.special.xlogy(p, p).sum(-1).to(torch.get_default_dtype())


def vector_sample_entropy(x: torch.Tensor) -> torch.Tensor:
    """Plug-in entropy of n samples of integer vectors (whole vectors compared): x (..., n, F) long → (...)."""
    return sample_entropy(row_codes(x))


def sampled_expected_free_energy(states: torch.Tensor | None, obs: torch.Tensor, log_preference: torch.Tensor,
                                 entropy: Callable[[torch.Tensor], torch.Tensor] = vector_sample_entropy
                                 ) -> dict[str, torch.Tensor]:
    """EFE terms from n joint samples ``(s_τ, o_τ) ~ q(s_τ, o_τ|π)``, with Ĥ the ``entropy`` estimate of
    a set of samples (categorical vectors: ``vector_sample_entropy``, plug-in; continuous ones:
    ``continuous_entropy`` with its estimator):

      extrinsic = Σ_τ (1/n) Σ_i log p̃(o_τ^i)                    (preference of each sampled outcome)
      info_gain = Σ_τ Î[s_τ; o_τ] = Σ_τ (Ĥ[s_τ] + Ĥ[o_τ] − Ĥ[s_τ, o_τ])
      ambiguity = Σ_τ (Ĥ[s_τ, o_τ] − Ĥ[s_τ])                    (E_q(s) H[p(o|s)])
      risk      = −extrinsic − Σ_τ Ĥ[o_τ]                         (KL[q(o) ‖ p̃] of the samples)
      G = risk + ambiguity = −extrinsic − info_gain.

    states: (..., H, n, d_s), or None where there is no hidden state (the observation is the state:
    Ĥ[s] = 0 and Ĥ[s, o] = Ĥ[o], so info_gain = 0 and G = −extrinsic); obs: (..., H, n, d_o);
    log_preference: (..., H, n) log p̃ of each sampled observation; entropy: (..., n, d) → (...).
    → dict of (...) tensors.
    """
    if obs.shape[:-1] != log_preference.shape or (states is not None and states.shape[:-1] != obs.shape[:-1]):
        raise ValueError(f"states (..., H, n, d_s), obs (..., H, n, d_o) and log_preference (..., H, n) must agree; "
                         f"got {None if states is None else tuple(states.shape)}, {tuple(obs.shape)}, "
                         f"{tuple(log_preference.shape)}")
    h_o = entropy(obs)
    if states is None:
        h_s, h_so = torch.zeros_like(h_o), h_o
    else:
        h_s, h_so = entropy(states), entropy(torch.cat([states, obs], dim=-1))
    extrinsic = log_preference.mean(-1).sum(-1)
    ambiguity_term = (h_so - h_s).sum(-1)
    risk_term = -extrinsic - h_o.sum(-1)
    return {"G": risk_term + ambiguity_term, "risk": risk_term, "ambiguity": ambiguity_term,
            "extrinsic": extrinsic, "info_gain": (h_s + h_o - h_so).sum(-1)}


def support_distribution(probs: torch.Tensor, support: torch.Tensor, sizes: tuple[int, ...],
                         floor: float = 1e-12) -> torch.Tensor:
    """The mean-field predictive of a vector of categories restricted to the vectors of a support:
    ``q(u) ∝ Π_f p_f(u_f)`` over the rows u of ``support``, normalised over them.

    probs: (..., Σ sizes) the per-factor distributions side by side (each block sums to 1); support:
    (U, F) long; sizes: (K_1 .. K_F) → (..., U).
    """
    if support.shape[-1] != len(sizes) or probs.shape[-1] != sum(sizes):
        raise ValueError(f"support (U, F) and probs (..., Σ sizes) need F = {len(sizes)} and Σ sizes = {sum(sizes)}; "
                         f"got {tuple(support.shape)}, {tuple(probs.shape)}")
    offsets = torch.tensor([0, *sizes[:-1]]).cumsum(0)
    log_q = probs[..., support + offsets].clamp_min(floor).log().sum(-1)          # (..., U)
    return log_q.softmax(-1)


def support_expected_free_energy(q: torch.Tensor, log_preference: torch.Tensor) -> dict[str, torch.Tensor]:
    """One-step EFE terms of an observation-only task (no hidden state: the observation is the state)
    from the predictive q(o) over support vectors, exactly where ``sampled_expected_free_energy`` uses
    samples (Rao-Blackwellised):

      extrinsic = Σ_o q(o) log p̃(o),   H = −Σ_o q(o) log q(o)
      risk = −extrinsic − H,   ambiguity = H,   info_gain = 0,   G = risk + ambiguity = −extrinsic.

    q: (..., U); log_preference: (U,) → dict of (...) tensors.
    """
    if q.shape[-1:] != log_preference.shape:
        raise ValueError(f"q (..., U) and log_preference (U,) must agree; got {tuple(q.shape)}, "
                         f"{tuple(log_preference.shape)}")
    extrinsic = (q * log_preference).sum(-1)
    entropy = categorical_entropy(q)
    return {"G": -extrinsic, "risk": -extrinsic - entropy, "ambiguity": entropy, "extrinsic": extrinsic,
            "info_gain": torch.zeros_like(extrinsic)}


def factored_surprise(samples: torch.Tensor, outcome: torch.Tensor, sizes: tuple[int, ...],
                      pseudo_count: float = 0.1) -> torch.Tensor:
    """Surprise of an observed vector under the mean-field of n predicted samples:
    ``−Σ_f log q_f(o_f)``, ``q_f(k) = (c_fk + α) / (n + α K_f)`` with ``c_fk`` how many samples have
    factor f equal to k (a joint histogram of n samples would call every unseen vector impossible).

    samples: (n, F) long; outcome: (F,) long; sizes: (K_1 .. K_F) → ().
    """
    if samples.shape[-1] != len(sizes) or outcome.shape != (len(sizes),):
        raise ValueError(f"samples (n, F) and outcome (F,) need F = {len(sizes)}; got {tuple(samples.shape)}, "
                         f"{tuple(outcome.shape)}")
    counts = (samples == outcome).sum(0).double()
    q = (counts + pseudo_count) / (samples.shape[0] + pseudo_count * torch.tensor(sizes, dtype=torch.float64))
    return -torch.log(q).sum().to(torch.get_default_dtype())


# ---- from G to actions -------------------------------------------------------------------------
def policy_posterior(G: torch.Tensor, gamma: float) -> torch.Tensor:
    """``P(π) = softmax(−γ G(π))`` over the last dim; lower G gets higher probability.

    G: (..., K) → (..., K); gamma ≥ 0 is the precision (inverse temperature).
    """
    if gamma < 0:
        raise ValueError(f"gamma must be >= 0, got {gamma}")
    return torch.softmax(-gamma * G, dim=-1)


def action_marginal(policy_probs: torch.Tensor, first_actions: torch.Tensor, n_actions: int) -> torch.Tensor:
    """``P(a) = Σ_{π : π_1 = a} P(π)``, the probability of each first action.

    policy_probs: (..., K); first_actions: (K,) long in ``[0, n_actions)`` → (..., n_actions).
    """
    if first_actions.ndim != 1 or first_actions.shape[0] != policy_probs.shape[-1]:
        raise ValueError(f"first_actions must have shape ({policy_probs.shape[-1]},), "
                         f"got {tuple(first_actions.shape)}")
    if first_actions.numel() and (first_actions.min() < 0 or first_actions.max() >= n_actions):
        raise ValueError(f"first_actions must lie in [0, {n_actions}); got range "
                         f"[{first_actions.min().item()}, {first_actions.max().item()}]")
    one_hot = torch.nn.functional.one_hot(first_actions.long(), n_actions).to(policy_probs.dtype)
    return policy_probs @ one_hot


# ---- ensembles -------------------------------------------------------------------------------
def parameter_information_gain(member_samples: torch.Tensor, n_categories: int,
                               pseudo_count: float = 0.0) -> torch.Tensor:
    """Novelty of an ensemble's predictions: ``H[(1/M) Σ_m q_m] − (1/M) Σ_m H[q_m]``.

    Each member's ``q_m`` is the histogram of its n samples. The mixture histogram pools the first
    ``n // M`` samples of every member, so it has as many samples as each member's own estimate
    and the same per-member weight: the plug-in entropies are then biased low by the same
    ≈ (K−1)/(2n), which cancels in the difference, instead of showing novelty where members agree.
    member_samples: (M, ..., n) long, n ≥ M → (...).
    """
    n_members, n_samples = member_samples.shape[0], member_samples.shape[-1]
    if member_samples.ndim < 2 or n_members < 2:
        raise ValueError(f"member_samples must have shape (M >= 2, ..., n), got {tuple(member_samples.shape)}")
    if n_samples < n_members:
        raise ValueError(f"need at least one sample per member in the pool: n={n_samples} < M={n_members}")
    member_entropy = categorical_entropy(histogram(member_samples, n_categories, pseudo_count)).mean(0)
    pooled = rearrange(member_samples[..., : n_samples // n_members], "m ... n -> ... (m n)")
    mixture_entropy = categorical_entropy(histogram(pooled, n_categories, pseudo_count))
    return mixture_entropy - member_entropy


# ---- EFE of continuous outcomes from samples (classic control) ------------------------------------
ENTROPY_ESTIMATORS: tuple[str, ...] = ("gaussian", "knn")


def continuous_entropy(x: torch.Tensor, estimator: str = "gaussian", k: int = 4) -> torch.Tensor:
    """Differential entropy of samples by ``estimator``: "gaussian" (``gaussian_entropy``, cheap, exact
    for Gaussian samples) or "knn" (``knn_entropy`` with pre-whitening, k neighbours).

    x: (..., n, d) → (...).
    """
    if estimator == "gaussian":
        return gaussian_entropy(x)
    if estimator == "knn":
        return knn_entropy(x, k=k, whiten=True)
    raise ValueError(f"unknown entropy estimator {estimator!r}; valid estimators: {ENTROPY_ESTIMATORS}")


def gaussian_log_preference(obs: torch.Tensor, target: torch.Tensor, precision: torch.Tensor,
                            one_sided: torch.Tensor, floor: float = math.inf) -> torch.Tensor:
    """Log preference density ``log p̃(o) = Σ_{j: λ_j > 0} ½ log(λ_j / 2π) + log(e^{−q} + e^{−c})``,
    ``q = ½ Σ_j λ_j δ_j²``.

    ``δ_j = o_j − μ_j``, or ``min(o_j − μ_j, 0)`` where ``one_sided[j]`` (every ``o_j ≥ μ_j`` is equally
    preferred: a flat top, so the density is unnormalised by a constant that does not rank policies).
    Dimensions with precision ``λ_j = 0`` carry no preference. ``floor`` c mixes a flat density
    ``c`` nats below the peak into the Gaussian: observations far from the target are all equally
    (un)preferred, so the preference is a sparse goal rather than a slope (c = ∞: the plain Gaussian).
    obs: (..., d); target, precision: (d,) float; one_sided: (d,) bool → (...).
    """
    if torch.any(precision < 0) or not floor > 0:
        raise ValueError(f"precision must be >= 0 and floor > 0, got {precision.tolist()} and {floor}")
    delta = obs - target
    delta = torch.where(one_sided, delta.clamp(max=0.0), delta)
    constrained = precision > 0
    log_norm = 0.5 * torch.log(torch.where(constrained, precision, 2 * math.pi) / (2 * math.pi)).sum(-1)
    quadratic = 0.5 * (precision * delta**2).sum(-1)
    return log_norm + torch.logaddexp(-quadratic, torch.full_like(quadratic, -floor))


def ensemble_information_gain(member_samples: torch.Tensor, estimator: str = "gaussian", k: int = 4) -> torch.Tensor:
    """Parameter information gain (novelty) of an ensemble's predictions, continuous outcomes:
    ``H[(1/M) Σ_m q_m] − (1/M) Σ_m H[q_m]``.

    With ``s = n // M``, member m contributes its samples ``m s .. (m + 1) s − 1`` to the mixture, and
    every member's own entropy uses its first ``M s``: all estimates see the same number of samples,
    so estimator biases cancel, and members that draw identical samples (the same noise through the
    same weights) give exactly 0 (distinct slices: no duplicated samples, which would break k-NN).
    member_samples: (M, ..., n, d), n ≥ M → (...).
    """
    n_members, n_samples = member_samples.shape[0], member_samples.shape[-2]
    if member_samples.ndim < 3 or n_members < 2:
        raise ValueError(f"member_samples must have shape (M >= 2, ..., n, d), got {tuple(member_samples.shape)}")
    share = n_samples // n_members
    if share < 1:
        raise ValueError(f"need at least one sample per member in the pool: n={n_samples} < M={n_members}")
    member_entropy = continuous_entropy(member_samples[..., : n_members * share, :], estimator, k).mean(0)
    pooled = torch.cat([member_samples[m, ..., m * share:(m + 1) * share, :] for m in range(n_members)], dim=-2)
    return continuous_entropy(pooled, estimator, k) - member_entropy


# ---- maps observed by a deterministic view (MiniGrid) ----------------------------------------------
def revealed_information_gain(cell_entropy: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
    """Information gain of a view about a map whose cells are independent under the belief:
    ``I(map; o) = H[q(o)] − E H[p(o | map)] = Σ_{i visible} H[q(map_i)]``, because a seen cell is
    observed without noise (ambiguity 0) and the view is the visible cells themselves.

    cell_entropy: (..., n_cells) nats; visible: (..., n_cells) bool (broadcastable) → (...).
    """
    return (cell_entropy * visible).sum(-1)


def dirichlet_novelty(counts: torch.Tensor, n_outcomes: int = 2, alpha: float = 0.5) -> torch.Tensor:
    """Expected information gain about a categorical parameter from one more draw, for a Dirichlet
    with concentration ``alpha`` on each of ``n_outcomes`` outcomes after ``counts`` draws:
    ``(n_outcomes − 1) / (2 (counts + n_outcomes · alpha))`` nats (the large-count expansion of the
    mutual information between the next outcome and the parameter).

    counts: (...) ≥ 0 → (...).
    """
    if n_outcomes < 2 or alpha <= 0:
        raise ValueError(f"need n_outcomes >= 2 and alpha > 0, got {n_outcomes}, {alpha}")
    return (n_outcomes - 1) / (2 * (counts + n_outcomes * alpha))
