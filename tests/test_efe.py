import math

import pytest
import torch

from diffaif.planning.efe import (
    support_distribution,
    support_expected_free_energy,
    action_marginal,
    ambiguity,
    categorical_entropy,
    categorical_kl,
    category_counts,
    expected_free_energy,
    extrinsic_value,
    gaussian_entropy,
    histogram,
    information_gain,
    knn_entropy,
    log_unit_ball_volume,
    miller_madow_entropy,
    parameter_information_gain,
    policy_posterior,
    risk,
)


def gaussian_truth(cov: torch.Tensor) -> float:
    d = cov.shape[0]
    return 0.5 * (d * math.log(2 * math.pi * math.e) + torch.logdet(cov).item())


def test_entropy_of_uniform_is_log_k_and_zero_log_zero_is_zero():
    for k in (1, 2, 7):
        assert categorical_entropy(torch.full((k,), 1.0 / k)).item() == pytest.approx(math.log(k))
    batch = torch.tensor([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0]])
    torch.testing.assert_close(categorical_entropy(batch), torch.tensor([0.0, math.log(2)]))
    # along another dim
    torch.testing.assert_close(categorical_entropy(batch.T, dim=0), torch.tensor([0.0, math.log(2)]))


def test_kl_of_known_pairs():
    q = torch.tensor([0.5, 0.5])
    p = torch.tensor([0.25, 0.75])
    expected = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    assert categorical_kl(q, p).item() == pytest.approx(expected, abs=1e-6)
    assert categorical_kl(q, q).item() == 0.0
    # q = 0 where p = 0 contributes nothing; q > 0 where p = 0 is infinite
    assert categorical_kl(torch.tensor([1.0, 0.0]), torch.tensor([0.5, 0.0])).item() == pytest.approx(math.log(2))
    assert categorical_kl(torch.tensor([0.5, 0.5]), torch.tensor([1.0, 0.0])).item() == math.inf


def test_histogram_with_pseudo_count():
    indices = torch.tensor([[0, 0, 1], [2, 2, 2]])
    torch.testing.assert_close(histogram(indices, 3), torch.tensor([[2 / 3, 1 / 3, 0.0], [0.0, 0.0, 1.0]]))
    torch.testing.assert_close(histogram(indices, 3, pseudo_count=1.0),
                               torch.tensor([[3 / 6, 2 / 6, 1 / 6], [1 / 6, 1 / 6, 4 / 6]]))
    torch.testing.assert_close(category_counts(indices, 4), torch.tensor([[2.0, 1, 0, 0], [0, 0, 3, 0]]))
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        histogram(torch.tensor([0, 3]), 3)
    with pytest.raises(ValueError, match="pseudo_count"):
        histogram(indices, 3, pseudo_count=-1.0)


def test_miller_madow_value_and_bias_reduction():
    counts = torch.tensor([2.0, 1.0, 1.0, 0.0])
    plug_in = -(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25))
    assert miller_madow_entropy(counts).item() == pytest.approx(plug_in + 2 / 8, abs=1e-6)

    generator = torch.Generator().manual_seed(0)
    k, n, repeats = 10, 20, 4000
    samples = torch.randint(k, (repeats, n), generator=generator)
    counts = category_counts(samples, k)
    plug_in_bias = (categorical_entropy(counts / n).mean() - math.log(k)).item()
    corrected_bias = (miller_madow_entropy(counts).mean() - math.log(k)).item()
    assert plug_in_bias < -0.15  # ≈ −(K−1)/(2N) = −0.225
    assert abs(corrected_bias) < 0.3 * abs(plug_in_bias)


def test_unit_ball_volume():
    assert math.exp(log_unit_ball_volume(1)) == pytest.approx(2.0)
    assert math.exp(log_unit_ball_volume(2)) == pytest.approx(math.pi)
    assert math.exp(log_unit_ball_volume(3)) == pytest.approx(4 / 3 * math.pi)


@pytest.mark.parametrize("whiten", [False, True])
def test_knn_entropy_matches_gaussian_truth(whiten):
    generator = torch.Generator().manual_seed(1)
    cov = torch.tensor([[2.0, 0.6], [0.6, 0.5]], dtype=torch.float64)
    chol = torch.linalg.cholesky(cov)
    x = torch.randn(2000, 2, generator=generator, dtype=torch.float64) @ chol.T
    assert abs(knn_entropy(x, k=4, whiten=whiten).item() - gaussian_truth(cov)) < 0.1


def test_knn_entropy_is_batched_and_translation_invariant():
    generator = torch.Generator().manual_seed(2)
    x = torch.randn(3, 200, 2, generator=generator, dtype=torch.float64)
    batched = knn_entropy(x)
    assert batched.shape == (3,)
    torch.testing.assert_close(batched[1], knn_entropy(x[1]))
    torch.testing.assert_close(knn_entropy(x + 5.0), batched)
    # scaling by c adds d·log c
    torch.testing.assert_close(knn_entropy(3.0 * x), batched + 2 * math.log(3.0))


def test_gaussian_entropy_exact_on_large_samples():
    generator = torch.Generator().manual_seed(3)
    cov = torch.tensor([[1.0, 0.3, 0.0], [0.3, 2.0, -0.4], [0.0, -0.4, 0.7]], dtype=torch.float64)
    x = torch.randn(100_000, 3, generator=generator, dtype=torch.float64) @ torch.linalg.cholesky(cov).T
    assert gaussian_entropy(x, ridge=0.0).item() == pytest.approx(gaussian_truth(cov), abs=0.01)
    # exactly the formula applied to the sample covariance
    sample_cov = torch.cov(x.T)
    assert gaussian_entropy(x, ridge=0.0).item() == pytest.approx(gaussian_truth(sample_cov), abs=1e-9)


def random_model(generator, batch=5, horizon=3, n_states=6, n_obs=4):
    q_s = torch.softmax(torch.randn(batch, horizon, n_states, generator=generator, dtype=torch.float64), -1)
    obs_model = torch.softmax(torch.randn(n_states, n_obs, generator=generator, dtype=torch.float64), -1)
    log_pref = torch.log_softmax(torch.randn(n_obs, generator=generator, dtype=torch.float64), -1)
    return q_s, obs_model, log_pref


def test_two_decompositions_agree_and_info_gain_is_mutual_information():
    q_s, obs_model, log_pref = random_model(torch.Generator().manual_seed(4))
    q_o = q_s @ obs_model
    obs_entropy = categorical_entropy(obs_model)
    terms = expected_free_energy(q_o, q_s, log_pref, obs_entropy)
    assert set(terms) == {"G", "risk", "ambiguity", "extrinsic", "info_gain"}
    assert all(v.shape == (5,) for v in terms.values())
    torch.testing.assert_close(terms["G"], -terms["extrinsic"] - terms["info_gain"])
    assert torch.all(terms["info_gain"] >= 0)
    # the terms one by one, against explicit sums
    kl = (q_o * (q_o.log() - log_pref)).sum((-2, -1))
    explicit_ambiguity = -(q_s.unsqueeze(-1) * obs_model * obs_model.log()).sum((-3, -2, -1))
    torch.testing.assert_close(terms["G"], kl + explicit_ambiguity)   # G = KL[q(o) || p~(o)] + E_q(s) H[p(o|s)]
    torch.testing.assert_close(risk(q_o, log_pref), kl)
    torch.testing.assert_close(extrinsic_value(q_o, log_pref), (q_o * log_pref).sum((-2, -1)))
    torch.testing.assert_close(ambiguity(q_s, obs_entropy), torch.einsum("bhs,s->b", q_s, obs_entropy))
    mutual_info = (q_s.unsqueeze(-1) * obs_model * (obs_model / q_o.unsqueeze(-2)).log()).sum((-3, -2, -1))
    torch.testing.assert_close(information_gain(q_o, q_s, obs_entropy), mutual_info)


def test_time_indexed_preferences_and_zero_probability_cells():
    q_o = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])  # (1, H=2, K=2)
    log_pref = torch.tensor([[0.0, -math.inf], [-math.inf, 0.0]])  # exactly what is predicted
    assert risk(q_o, log_pref).item() == 0.0
    assert extrinsic_value(q_o, log_pref).item() == 0.0
    with pytest.raises(ValueError, match="normalised"):
        risk(q_o, torch.zeros(2))


def test_policy_posterior_prefers_lower_G():
    probs = policy_posterior(torch.tensor([1.0, 0.0, 3.0]), gamma=2.0)
    assert torch.argmax(probs).item() == 1
    torch.testing.assert_close(probs, torch.softmax(torch.tensor([-2.0, 0.0, -6.0]), -1))
    torch.testing.assert_close(policy_posterior(torch.tensor([1.0, 5.0]), gamma=0.0), torch.tensor([0.5, 0.5]))
    with pytest.raises(ValueError, match="gamma"):
        policy_posterior(torch.zeros(2), gamma=-1.0)


def test_action_marginal_sums_policies_by_first_action():
    probs = torch.tensor([[0.1, 0.2, 0.3, 0.4], [0.25, 0.25, 0.25, 0.25]])
    first = torch.tensor([2, 0, 2, 1])
    marginal = action_marginal(probs, first, n_actions=4)
    torch.testing.assert_close(marginal, torch.tensor([[0.2, 0.4, 0.4, 0.0], [0.25, 0.25, 0.5, 0.0]]))
    torch.testing.assert_close(marginal.sum(-1), torch.ones(2))
    with pytest.raises(ValueError, match="first_actions"):
        action_marginal(probs, torch.tensor([0, 1]), n_actions=4)


def test_parameter_information_gain():
    # members that agree exactly: no novelty; members with disjoint predictions: log M
    agree = torch.zeros(3, 12, dtype=torch.long)
    assert parameter_information_gain(agree, 4).item() == pytest.approx(0.0)
    disjoint = torch.arange(3).reshape(3, 1).expand(3, 12)
    assert parameter_information_gain(disjoint, 4).item() == pytest.approx(math.log(3), abs=1e-6)
    # agreeing stochastic members: the pool is as large as each member's sample, so the plug-in
    # biases cancel on average (pooling all M·n samples would show ≈ (K−1)/(2n)·(1 − 1/M) = 0.1 nats)
    generator = torch.Generator().manual_seed(5)
    samples = torch.randint(6, (3, 2000, 30), generator=generator)  # (M, batch, n)
    novelty = parameter_information_gain(samples, 6)
    assert novelty.shape == (2000,)
    assert abs(novelty.mean().item()) < 0.02


def test_support_distribution_is_the_mean_field_renormalised_over_the_support():
    probs = torch.tensor([0.25, 0.75, 0.5, 0.3, 0.2])            # factor sizes (2, 3)
    support = torch.tensor([[0, 0], [1, 2], [1, 0]])
    q = support_distribution(probs, support, (2, 3))
    assert torch.allclose(q, torch.tensor([0.125, 0.15, 0.375]) / 0.65)
    with pytest.raises(ValueError, match="support"):
        support_distribution(probs, support, (2, 2))


def test_support_expected_free_energy_by_hand():
    terms = support_expected_free_energy(torch.tensor([0.5, 0.5]), torch.tensor([0.0, -2.0]))
    log2 = math.log(2)
    assert terms["extrinsic"].item() == pytest.approx(-1.0)
    assert terms["ambiguity"].item() == pytest.approx(log2)
    assert terms["risk"].item() == pytest.approx(1.0 - log2)
    assert terms["G"].item() == pytest.approx(1.0) and terms["info_gain"].item() == 0.0
