import importlib.util
import math

import numpy as np
import pytest
import torch

from diffaif.envs import make_env
from diffaif.planning.exact import exact_expected_free_energy, exact_predictions
from diffaif.planning.policies import enumerate_policies
from diffaif.tasks.grid import grid_log_preferences

UP, DOWN, LEFT, RIGHT = 0, 1, 2, 3


def entropy(*p):
    return -sum(x * math.log(x) for x in p if x > 0)


def kl(q, p):
    return sum(a * math.log(a / b) for a, b in zip(q, p) if a > 0)


# Two states; action 0 stays, action 1 switches. Observations are noisy state reports.
TOY_P = np.array([[[1.0, 0.0], [0.0, 1.0]], [[0.0, 1.0], [1.0, 0.0]]])  # P[s, a, s']
TOY_O = np.array([[0.9, 0.1], [0.2, 0.8]])
TOY_PREF = np.log([0.25, 0.75])


def test_exact_efe_of_a_two_state_toy_by_hand():
    policies = torch.tensor([[0, 0], [1, 0], [1, 1]])
    terms = exact_expected_free_energy(np.array([1.0, 0.0]), policies, TOY_P, TOY_O, TOY_PREF)
    pref = (0.25, 0.75)
    risk_0, amb_0 = kl((0.9, 0.1), pref), entropy(0.9, 0.1)  # in state 0
    risk_1, amb_1 = kl((0.2, 0.8), pref), entropy(0.2, 0.8)  # in state 1
    expected_risk = [2 * risk_0, 2 * risk_1, risk_1 + risk_0]
    expected_ambiguity = [2 * amb_0, 2 * amb_1, amb_1 + amb_0]
    np.testing.assert_allclose(terms["risk"].numpy(), expected_risk, rtol=1e-12)
    np.testing.assert_allclose(terms["ambiguity"].numpy(), expected_ambiguity, rtol=1e-12)
    np.testing.assert_allclose(terms["G"].numpy(), np.add(expected_risk, expected_ambiguity), rtol=1e-12)
    extrinsic_1 = 0.2 * math.log(0.25) + 0.8 * math.log(0.75)
    assert terms["extrinsic"][1].item() == pytest.approx(2 * extrinsic_1, rel=1e-12)
    # a certain state: H[q(o)] equals the ambiguity, so nothing is learned
    np.testing.assert_allclose(terms["info_gain"].numpy(), 0.0, atol=1e-12)
    # switching into the preferred state is the better plan
    assert terms["G"][1] < terms["G"][2] < terms["G"][0]


def test_toy_uncertain_belief_has_positive_info_gain():
    terms = exact_expected_free_energy(np.array([0.5, 0.5]), torch.tensor([[0]]), TOY_P, TOY_O, TOY_PREF)
    q_o = (0.55, 0.45)
    assert terms["info_gain"].item() == pytest.approx(entropy(*q_o) - 0.5 * (entropy(0.9, 0.1) + entropy(0.2, 0.8)))
    assert terms["info_gain"].item() > 0


def test_grid4x4_shaped_preferences_rank_moves_toward_goal_first():
    env = make_env("grid4x4").unwrapped
    policies = enumerate_policies(4, 3)
    belief = np.eye(env.n_cells)[env.start]
    log_pref = grid_log_preferences(env, "shaped", precision=1.0)
    G = exact_expected_free_energy(belief, policies, env.transition_matrix(), env.observation_matrix(), log_pref)["G"]
    assert G.shape == (64,)

    def g(*actions):
        return G[actions[0] * 16 + actions[1] * 4 + actions[2]].item()

    # every sequence of only down/right moves gets 3 steps closer: all tie at the minimum
    toward = [g(a, b, c) for a in (DOWN, RIGHT) for b in (DOWN, RIGHT) for c in (DOWN, RIGHT)]
    assert max(toward) - min(toward) < 1e-12
    assert min(toward) == pytest.approx(G.min().item(), abs=1e-12)
    assert g(RIGHT, RIGHT, RIGHT) < g(UP, UP, UP)
    assert g(DOWN, DOWN, DOWN) < g(LEFT, LEFT, LEFT)
    assert g(RIGHT, RIGHT, RIGHT) < g(RIGHT, RIGHT, UP) < g(UP, UP, UP)
    # fully observable: no ambiguity, no information to gain
    terms = exact_expected_free_energy(belief, policies, env.transition_matrix(), env.observation_matrix(), log_pref)
    assert torch.all(terms["ambiguity"] == 0)
    torch.testing.assert_close(terms["info_gain"], torch.zeros(64, dtype=torch.float64))


def test_grid4x4_sparse_preferences_are_flat_beyond_the_horizon():
    env = make_env("grid4x4").unwrapped
    belief = np.eye(env.n_cells)[env.start]
    log_pref = grid_log_preferences(env, "sparse", precision=4.0)
    G = exact_expected_free_energy(belief, enumerate_policies(4, 3), env.transition_matrix(),
                                   env.observation_matrix(), log_pref)["G"]
    assert G.max() - G.min() < 1e-12  # the goal (6 steps away) is out of reach of every policy


def test_grid8x8_predictions_are_distributions_and_terms_consistent():
    env = make_env("grid8x8").unwrapped
    belief = np.eye(env.n_cells)[env.start]
    policies = enumerate_policies(4, 3)
    P, O = env.transition_matrix(), env.observation_matrix()
    q_s, q_o = exact_predictions(belief, policies, P, O)
    assert q_s.shape == (64, 3, 64) and q_o.shape == (64, 3, 64) and q_s.dtype == torch.float64
    torch.testing.assert_close(q_s.sum(-1), torch.ones(64, 3, dtype=torch.float64))
    torch.testing.assert_close(q_o.sum(-1), torch.ones(64, 3, dtype=torch.float64))
    # first step of (down, ...) with slip 0.1: 0.925 down, 0.05 stays (bumps up/left), 0.025 right
    np.testing.assert_allclose(q_s[DOWN * 16, 0, [8, 0, 1]].numpy(), [0.925, 0.05, 0.025])
    terms = exact_expected_free_energy(belief, policies, P, O, grid_log_preferences(env, "shaped"))
    torch.testing.assert_close(terms["G"], -terms["extrinsic"] - terms["info_gain"])
    assert torch.all(terms["ambiguity"] > 0) and torch.all(terms["info_gain"] >= 0)


def test_exact_rejects_bad_inputs():
    with pytest.raises(ValueError, match="belief must sum to 1"):
        exact_expected_free_energy(np.array([0.5, 0.4]), torch.tensor([[0]]), TOY_P, TOY_O, TOY_PREF)
    with pytest.raises(ValueError, match=r"actions must lie in \[0, 2\)"):
        exact_expected_free_energy(np.array([1.0, 0.0]), torch.tensor([[2]]), TOY_P, TOY_O, TOY_PREF)
    with pytest.raises(ValueError, match="P must have shape"):
        exact_expected_free_energy(np.array([1.0, 0.0]), torch.tensor([[0]]), TOY_P[:1], TOY_O, TOY_PREF)


def test_preferences():
    env = make_env("grid4x4")
    sparse = grid_log_preferences(env, "sparse", precision=2.0)
    assert sparse.shape == (16,)
    assert torch.logsumexp(sparse, 0).item() == pytest.approx(0.0, abs=1e-6)
    assert sparse[15].item() == pytest.approx(2.0 - math.log(15 + math.exp(2.0)), abs=1e-6)
    assert torch.all(sparse[:15] == sparse[0])
    shaped = grid_log_preferences(env, "shaped", precision=0.5, dtype=torch.float64)
    distance = torch.as_tensor(env.unwrapped.distances())
    torch.testing.assert_close(shaped - shaped[15], -0.5 * distance)
    torch.testing.assert_close(grid_log_preferences(env, "shaped", precision=0.0), torch.full((16,), -math.log(16)))
    with pytest.raises(ValueError, match=r"unknown preference kind 'dense'.*\['sparse', 'shaped'\]"):
        grid_log_preferences(env, "dense")


def test_shaped_preferences_give_walls_the_least_preferred_logit():
    env = make_env("grid4x4", walls=[(1, 1), (0, 1), (1, 0)]).unwrapped  # (0, 0) is walled in
    shaped = grid_log_preferences(env, "shaped", precision=1.0, dtype=torch.float64)
    assert torch.all(torch.isfinite(shaped))
    finite = torch.as_tensor(env.distances())
    worst = shaped[torch.isfinite(finite)].min()
    assert shaped[0] == worst and shaped[5] == worst


PYMDP_MISSING = importlib.util.find_spec("pymdp") is None


@pytest.mark.skipif(PYMDP_MISSING, reason="inferactively-pymdp is not installed (its 1.x needs JAX); "
                                           "the exact reference is then checked only against hand values")
def test_matches_pymdp_negative_efe():
    """pymdp (1.x, JAX) returns −G: Σ_τ (H[q(o)] − E_q(s) H[A] + q(o)·C). With C = log p̃ normalised
    this is exactly our extrinsic + info_gain, so −neg_efe = G; its utility term is our extrinsic.
    pymdp clips probabilities at machine epsilon and runs in float32, hence the tolerance."""
    import jax
    import jax.numpy as jnp
    from pymdp import control

    env = make_env("grid8x8").unwrapped
    P, O = env.transition_matrix(), env.observation_matrix()
    log_pref = grid_log_preferences(env, "shaped", precision=0.5, dtype=torch.float64)
    belief = np.full(env.n_cells, 1.0 / env.n_cells)  # uncertain start: non-trivial info gain
    policies = enumerate_policies(4, 2)
    ours = exact_expected_free_energy(belief, policies, P, O, log_pref)

    A = [jnp.asarray(O.T, dtype=jnp.float32)]                          # A[o, s]
    B = [jnp.asarray(np.transpose(P, (2, 0, 1)), dtype=jnp.float32)]   # B[s', s, a]
    C = [jnp.asarray(log_pref.numpy(), dtype=jnp.float32)]
    qs = [jnp.asarray(belief, dtype=jnp.float32)]

    def neg_efe(policy):
        return control.compute_neg_efe_policy(qs, A, B, C, None, None, [[0]], [[0]], policy)

    theirs = jax.vmap(neg_efe)(jnp.asarray(policies.numpy()[:, :, None]))  # (K, H, n_factors=1)
    np.testing.assert_allclose(-np.asarray(theirs), ours["G"].numpy(), rtol=1e-4, atol=1e-4)

    q_s, q_o = exact_predictions(belief, policies, P, O)
    utility = [sum(float(control.compute_expected_utility([jnp.asarray(q_o[k, t].numpy())], C))
                   for t in range(2)) for k in (0, 5, 15)]
    np.testing.assert_allclose(utility, ours["extrinsic"][[0, 5, 15]].numpy(), rtol=1e-5)
