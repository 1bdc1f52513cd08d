"""Classic control: adapter, preferences, continuous EFE terms, planner, SAC baseline (fast, CPU)."""
import dataclasses
import math

import numpy as np
import pytest
import torch

from diffaif.agents import AGENTS, agent_config, make_agent
from diffaif.config import ConfigError
from diffaif.envs import ControlTask, make_env
from diffaif.experiments.compare import CompareConfig, run_comparison
from diffaif.experiments.fidelity import control_fidelity
from diffaif.model.evaluate import _sample_windows
from diffaif.data.episodes import EpisodeData
from diffaif.planning.continuous import ContinuousConfig, gaussian_cem, propose_box_policies, uniform_policies
from diffaif.planning.efe import (continuous_entropy, ensemble_information_gain, sampled_expected_free_energy,
                                  gaussian_log_preference)
from diffaif.planning.policies import CEMConfig, PolicyConfig, matching_rows
from diffaif.tasks.control import control_encoding, control_preference

TINY_AIF = {
    "world_model": {"model": {"length": 5, "width": 32, "depth": 1, "heads": 2},
                    "train": {"steps": 30, "batch_size": 32, "warmup_steps": 5, "left_pad": 1}},
    "planner": {"policies": {"kind": "cem", "horizon": 3, "n_candidates": 6, "cem": {"n_elite": 2, "iterations": 2}},
                "context": 1, "n_samples": 8, "denoising_steps": 2},
    "model_preset": "control", "retrain": "never",
}


# ---- adapter ------------------------------------------------------------------------------------
def test_cartpole_adapter_state_and_success_flags():
    env = make_env("CartPole-v1", max_episode_steps=5)
    assert isinstance(env, ControlTask) and env.family == "cartpole"
    obs, info = env.reset(seed=0)
    assert obs.shape == (4,) and info["state"].dtype == np.float64 and np.allclose(obs, info["state"])
    assert info["success"] is False and "distance" not in info
    done = False
    while not done:
        obs, _, terminated, truncated, info = env.step(1)
        done = terminated or truncated
    assert truncated and not terminated and info["success"] is True   # survived to the time limit
    env = make_env("CartPole-v1")
    env.reset(seed=0)
    for _ in range(100):                                               # pushing one way drops the pole
        _, _, terminated, _, info = env.step(1)
        if terminated:
            break
    assert terminated and info["success"] is False


def test_mountaincar_reaches_flag_and_pendulum_upright():
    env = make_env("MountainCar-v0")
    _, info = env.reset(seed=0)
    assert info["success"] is False and info["distance"] > 0.5
    env.unwrapped.state = np.array([0.49, 0.06])
    _, _, terminated, _, info = env.step(2)
    assert terminated and info["success"] is True and info["distance"] == 0.0
    pendulum = make_env("Pendulum-v1")
    pendulum.reset(seed=0)
    pendulum.unwrapped.state = np.array([0.0, 0.0])
    _, _, _, _, info = pendulum.step(np.zeros(1, np.float32))
    assert info["success"] is True and info["distance"] < 0.01
    pendulum.unwrapped.state = np.array([math.pi, 0.0])
    _, _, _, _, info = pendulum.step(np.zeros(1, np.float32))
    assert info["success"] is False and info["distance"] > 3


def test_sensor_noise_and_any_control_id():
    env = make_env("CartPole-v1", obs_noise=0.1)
    obs, info = env.reset(seed=3)
    again, _ = make_env("CartPole-v1", obs_noise=0.1).reset(seed=3)
    assert not np.allclose(obs, info["state"]) and np.array_equal(obs, again)   # noisy, reproducible
    acrobot = make_env("control:Acrobot-v1")
    obs, info = acrobot.reset(seed=0)
    assert obs.shape == (6,) and "state" in info and "success" not in info   # harness falls back to termination
    with pytest.raises(ValueError, match="obs_noise"):
        make_env("Pendulum-v1", obs_noise=-1.0)
    with pytest.raises(ValueError, match="NoSuchEnv"):
        make_env("control:NoSuchEnv-v0")


def test_action_repeat_holds_the_action_and_counts_env_steps():
    plain, repeated = make_env("CartPole-v1"), make_env("CartPole-v1", action_repeat=3)
    plain.reset(seed=4)
    obs, _ = repeated.reset(seed=4)
    for _ in range(3):
        expected, *_ = plain.step(0)
    obs, reward, terminated, _, info = repeated.step(0)
    assert np.array_equal(obs, expected) and reward == 3.0 and info["env_steps"] == 3 and not terminated
    repeated.reset(seed=4)                           # pushing one way drops the pole mid-repeat
    repeats, steps, terminated = 0, 0, False
    while not terminated:
        _, reward, terminated, _, info = repeated.step(1)
        repeats, steps = repeats + 1, steps + info["env_steps"]
        assert reward == info["env_steps"]
    assert steps < 3 * repeats                       # the last repeat stopped at the termination
    limited = make_env("MountainCar-v0", action_repeat=7)   # the time limit counts env steps: 200 = 28 × 7 + 4
    limited.reset(seed=0)
    taken = [limited.step(1)[4]["env_steps"] for _ in range(29)]
    assert taken[-1] == 4 and sum(taken) == 200
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match="action_repeat"):
            make_env("CartPole-v1", action_repeat=bad)


def test_standardisation_scale_is_floored_by_the_bounded_observation_range():
    states = np.zeros((11, 4))
    states[:, 0] = np.linspace(-0.1, 0.1, 11)         # the cart barely moves, as under a random policy
    states[:, 1:] = np.random.default_rng(0).normal(0.0, 2.0, (11, 3))
    data = EpisodeData(states, states.copy(), np.zeros(11, np.int64), np.zeros(11), np.zeros(11, bool),
                       np.zeros(11, bool), np.array([0]))
    for noise in (0.0, 0.1):                           # sensor noise widens the space to ±inf; the floor stays
        env = make_env("CartPole-v1", obs_noise=noise)
        data_std = np.std(states, axis=0)
        for part in ("state", "obs"):
            std = np.array(control_encoding(env, data, min_scale=0.25).parts[part].std)
            # x: 0.25 × 4.8 (the bound) beats the data's 0.063; θ's floor 0.25 × 0.419 is below its data σ;
            # the speeds are unbounded and keep the data's σ
            assert std == pytest.approx([1.2, data_std[1], data_std[2], data_std[3]], rel=1e-5)
            assert control_encoding(env, data).parts[part].std == pytest.approx(tuple(data_std))
            # anchored x: the σ of its displacements within 3-step windows (0, 0.02, 0.04 m), no floor
            anchored = control_encoding(env, data, min_scale=0.25, anchored=[0], span=3).parts[part]
            moves = np.array([0.0, 0.02, 0.04] * 9)
            assert anchored.std == pytest.approx((moves.std(), *std[1:]), rel=1e-5)
            assert anchored.mean[0] == pytest.approx(moves.mean())
    with pytest.raises(ValueError, match="min_scale"):
        ContinuousConfig(min_scale=-1.0)


# ---- preferences ----------------------------------------------------------------------------------
def test_preferences_peak_at_the_goal():
    config = ContinuousConfig()
    cartpole = control_preference("cartpole", config)
    states = torch.tensor([[0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.15, 0.0], [1.5, 0.0, 0.0, 0.0]])
    upright, tilted, off_centre = cartpole.log_density(states, 1.0).tolist()
    assert upright > off_centre and upright > tilted
    car = control_preference("mountaincar", config)
    at_flag, beyond, valley = car.log_density(torch.tensor([[0.5, 0.0], [0.55, 0.03], [-0.5, 0.0]]), 1.0).tolist()
    assert at_flag == pytest.approx(beyond) and at_flag > valley        # one-sided: flat at and past the flag
    pendulum = control_preference("pendulum", config)
    still, hanging, spinning = pendulum.log_density(torch.tensor([[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0], [1.0, 0.0, 6.0]]),
                                                    1.0).tolist()
    assert still > hanging and still > spinning
    sharper = pendulum.log_density(torch.tensor([[-1.0, 0.0, 0.0]]), 4.0).item()
    assert sharper < hanging                                              # higher precision, steeper


def test_bad_preference_and_config_keys_are_named():
    # the preference names belong to the control task family: checked when the agent is built, before training
    with pytest.raises(ValueError, match="no preference for task family 'bogus'"):
        make_agent("aif", make_env("CartPole-v1"), overrides={"planner": {"continuous": {"preference": "bogus"}}})
    with pytest.raises(ValueError, match="entropy estimator 'histo'"):
        ContinuousConfig(entropy="histo")
    with pytest.raises(ConfigError, match="not_a_key"):
        agent_config("aif", {"planner": {"continuous": {"not_a_key": 1}}})
    with pytest.raises(ValueError, match="no preference for task family 'acrobot'"):
        control_preference("acrobot", ContinuousConfig())
    with pytest.raises(ValueError, match="3 dimensions"):
        control_preference("pendulum", ContinuousConfig(preference_scales=[1.0, 1.0]))
    with pytest.raises(ValueError, match="preference_scales must be > 0"):
        ContinuousConfig(preference_scales=[0.0, 1.0, 1.0])


def test_preference_scales_replace_the_presets_and_inf_drops_a_dimension():
    config = agent_config("aif", {"planner": {"continuous": {"preference_scales": [1.0, math.inf, 0.1, math.inf]}}})
    cartpole = control_preference("cartpole", config.planner.continuous)
    assert cartpole.scale == (1.0, math.inf, 0.1, math.inf) and cartpole.target == (0.0,) * 4
    slow, fast = cartpole.log_density(torch.tensor([[0.5, 0.0, 0.05, 0.0], [0.5, 3.0, 0.05, -3.0]]), 1.0).tolist()
    assert slow == pytest.approx(fast)                                    # no preference on the speeds
    assert slow == pytest.approx(-0.5 * (0.5**2 + 0.5**2) + gaussian_log_preference(
        torch.zeros(1, 2), torch.zeros(2), torch.tensor([1.0, 100.0]), torch.tensor([False, False])).item())


# ---- continuous EFE maths -------------------------------------------------------------------------
def test_gaussian_log_preference_by_hand():
    value = gaussian_log_preference(torch.tensor([1.0, 5.0]), torch.zeros(2), torch.tensor([4.0, 0.0]),
                                    torch.tensor([False, False]))
    assert value.item() == pytest.approx(0.5 * math.log(4 / (2 * math.pi)) - 0.5 * 4 * 1.0)   # dim 2: no preference
    one_sided = gaussian_log_preference(torch.tensor([[2.0], [-1.0]]), torch.zeros(1), torch.ones(1),
                                        torch.tensor([True]))
    assert one_sided[0].item() == pytest.approx(-0.5 * math.log(2 * math.pi))
    assert one_sided[1].item() == pytest.approx(-0.5 * math.log(2 * math.pi) - 0.5)


def test_preference_floor_flattens_the_density_far_from_the_target():
    obs = torch.tensor([[0.0], [-1.0], [-10.0], [-20.0]])
    floored = gaussian_log_preference(obs, torch.zeros(1), torch.ones(1), torch.tensor([True]), floor=3.0)
    peak = -0.5 * math.log(2 * math.pi)
    # log(e^{-q} + e^{-3}) with q = 0, 1/2, 50, 200
    expected = [peak + math.log(math.exp(-q) + math.exp(-3.0)) for q in (0.0, 0.5, 50.0, 200.0)]
    assert floored.tolist() == pytest.approx(expected)
    assert floored[2].item() == pytest.approx(floored[3].item()) == pytest.approx(peak - 3.0)
    with pytest.raises(ValueError, match="floor > 0"):
        gaussian_log_preference(obs, torch.zeros(1), torch.ones(1), torch.tensor([True]), floor=0.0)
    config = ContinuousConfig(preference_floor=3.0)
    car = control_preference("mountaincar", config)
    valley, far_valley = car.log_density(torch.tensor([[-0.5, 0.0], [-1.1, 0.0]]), 1.0).tolist()
    assert valley == pytest.approx(far_valley)                  # 10 and 16 σ below the flag: both on the floor
    with pytest.raises(ValueError, match="preference_floor > 0"):
        ContinuousConfig(preference_floor=-1.0)


def test_entropy_estimators_match_a_known_covariance():
    generator = torch.Generator().manual_seed(0)
    cov = torch.tensor([[2.0, 0.6], [0.6, 0.5]], dtype=torch.float64)
    x = torch.randn(4000, 2, generator=generator, dtype=torch.float64) @ torch.linalg.cholesky(cov).T
    exact = 0.5 * math.log((2 * math.pi * math.e) ** 2 * torch.linalg.det(cov).item())
    assert continuous_entropy(x, "gaussian").item() == pytest.approx(exact, abs=0.05)
    assert continuous_entropy(x, "knn", k=4).item() == pytest.approx(exact, abs=0.1)
    with pytest.raises(ValueError, match="unknown entropy estimator 'kde'"):
        continuous_entropy(x, "kde")


def test_efe_terms_recover_the_mutual_information_of_a_noisy_sensor():
    generator = torch.Generator().manual_seed(1)
    sensor_std = 0.5
    states = torch.randn(2, 3, 4000, 1, generator=generator, dtype=torch.float64)      # (K, H, n, d)
    obs = states + sensor_std * torch.randn(states.shape, generator=generator, dtype=torch.float64)
    log_pref = -0.5 * obs[..., 0] ** 2
    terms = sampled_expected_free_energy(states, obs, log_pref, continuous_entropy)
    assert terms["info_gain"].shape == (2,)
    exact = 3 * 0.5 * math.log(1 + 1 / sensor_std**2)                                  # Σ_τ I[s_τ; o_τ]
    assert torch.allclose(terms["info_gain"], torch.full((2,), exact, dtype=torch.float64), atol=0.05)
    assert torch.allclose(terms["G"], terms["risk"] + terms["ambiguity"])
    assert torch.allclose(terms["G"], -terms["extrinsic"] - terms["info_gain"])
    with pytest.raises(ValueError, match="must agree"):
        sampled_expected_free_energy(states, obs, log_pref[..., :10], continuous_entropy)


def test_ensemble_information_gain_zero_for_identical_and_positive_for_disjoint_members():
    generator = torch.Generator().manual_seed(2)
    member = torch.randn(5, 64, 2, generator=generator, dtype=torch.float64)            # (..., n, d)
    identical = torch.stack([member, member, member])
    for estimator in ("gaussian", "knn"):
        assert torch.allclose(ensemble_information_gain(identical, estimator), torch.zeros(5, dtype=torch.float64))
    disjoint = torch.stack([member, member + 20.0])
    assert bool((ensemble_information_gain(disjoint, "gaussian") > 1.0).all())
    assert bool((ensemble_information_gain(disjoint, "knn") > 0.5).all())             # ≈ log 2 for far modes
    with pytest.raises(ValueError, match="M >= 2"):
        ensemble_information_gain(member[None])


def test_gaussian_cem_finds_the_best_sequence_within_bounds():
    low, high = torch.tensor([-2.0]), torch.tensor([2.0])
    target = torch.tensor([[1.0], [-0.5], [3.0]])                                         # last step beyond the bound
    generator = torch.Generator().manual_seed(0)
    proposal, mean = gaussian_cem(lambda p: ((p - target) ** 2).sum((1, 2)), low, high, 3, 64, 8, 6,
                                  torch.zeros(3, 1), torch.ones(3, 1), 0.1, generator)
    best = proposal.policies[proposal.scores.argmin()]
    assert torch.allclose(best, torch.tensor([[1.0], [-0.5], [2.0]]), atol=0.15)
    assert bool((proposal.policies >= low).all() and (proposal.policies <= high).all())
    random = uniform_policies(10, 3, low, high, generator)
    assert random.shape == (10, 3, 1) and bool((random.abs() <= 2).all())
    assert torch.equal(matching_rows(random[[2, 0]], random), torch.tensor([2, 0]))
    assert matching_rows(random[:2] + 1, random) is None


def test_box_proposals_warm_start_from_the_shifted_previous_mean():
    low, high = torch.tensor([-2.0, -1.0]), torch.tensor([2.0, 1.0])
    previous = torch.tensor([[1.0, 0.5], [-1.0, 0.25], [0.5, -0.5]])
    seen = []
    config = PolicyConfig(kind="cem", horizon=3, n_candidates=5, cem=CEMConfig(n_elite=2, iterations=1))
    (policies, scores), mean = propose_box_policies(config, low, high, 1e-6, previous,
                                                    lambda p: seen.append(p) or p.sum((1, 2)))
    # one step later: the old steps 1 and 2, then the centre of the bounds (0, 0)
    expected = torch.tensor([[-1.0, 0.25], [0.5, -0.5], [0.0, 0.0]])
    assert torch.allclose(seen[0], expected.expand(5, 3, 2), atol=1e-4) and torch.equal(policies, seen[0])
    assert torch.allclose(mean, expected, atol=1e-4) and scores.shape == (5,)
    (cold, _), _ = propose_box_policies(config, low, high, 1e-6, None, lambda p: p.sum((1, 2)))
    assert torch.allclose(cold, torch.zeros(5, 3, 2), atol=1e-4)
    (random, unscored), no_mean = propose_box_policies(dataclasses.replace(config, kind="random"), low, high, 0.5,
                                                       previous, None, torch.Generator().manual_seed(0))
    assert random.shape == (5, 3, 2) and unscored is None and no_mean is None
    assert bool((random.abs() <= high).all()) and not torch.allclose(random[0], random[1])


# ---- agents end to end ----------------------------------------------------------------------------
def test_aif_runs_an_episode_on_cartpole(tmp_path):
    env = make_env("CartPole-v1", max_episode_steps=6)
    agent = make_agent("aif", env, seed=0, overrides={**TINY_AIF, "run_dir": str(tmp_path)})
    assert agent.warm_up(env, 120, seed=1) == 120
    assert agent.model.encoding.parts["action"].kind == "categorical"
    assert agent.model.encoding.parts["obs"].kind == "continuous"
    obs, info = env.reset(seed=5)
    agent.reset(obs, info)
    done, steps = False, 0
    while not done:
        action = agent.act(obs)
        assert env.action_space.contains(action)
        log = agent.step_log()
        assert len(log["action_probs"]) == 2 and math.isfinite(log["G_chosen"]) and log["novelty_chosen"] == 0
        obs, reward, terminated, truncated, info = env.step(action)
        agent.observe(action, reward, obs, terminated, truncated, info)
        done, steps = terminated or truncated, steps + 1
    assert math.isfinite(agent._surprise[-1]) and agent.data.n_interactions == 120 + steps


def test_warm_up_holds_each_random_action_for_at_most_warmup_hold_steps(tmp_path):
    env = make_env("Pendulum-v1", max_episode_steps=40)
    runs = {}
    for hold in (1, 4):
        overrides = {**TINY_AIF, "warmup_hold": hold, "run_dir": str(tmp_path / str(hold))}
        agent = make_agent("aif", env, seed=0, overrides=overrides)
        assert agent.warm_up(env, 120, seed=1) == 120
        lengths = []
        for index in range(agent.data.n_episodes):
            actions = agent.data.episode(index)["actions"][:-1, 0]     # the final row has no action
            changes = np.flatnonzero(np.diff(actions)) + 1
            lengths += np.diff(np.concatenate([[0], changes, [len(actions)]])).tolist()
        runs[hold] = lengths
        assert agent.data.n_episodes == 3 and sum(lengths) == 120
    assert max(runs[1]) == 1 and max(runs[4]) <= 4 and max(runs[4]) > 1
    with pytest.raises(ValueError, match="warmup_hold must be >= 1"):
        make_agent("aif", env, seed=0, overrides={"warmup_hold": 0})


def test_plan_predicted_observations_are_the_decoded_mean_of_the_samples(tmp_path):
    env = make_env("MountainCar-v0", max_episode_steps=5)
    agent = make_agent("aif", env, seed=0, overrides={**TINY_AIF, "run_dir": str(tmp_path)})
    agent.warm_up(env, 60, seed=1)
    obs, info = env.reset(seed=2)
    plan = agent.planner.plan([obs], [])
    assert plan.predicted_obs.shape == (len(plan.policies), 3, 2)        # (K, H, d_o)
    assert torch.allclose(plan.predicted_obs[plan.chosen, 0], plan.next_obs.mean(0), atol=1e-5)
    spec = agent.model.encoding.parts["obs"]
    z = (plan.next_obs - torch.tensor(spec.mean)) / torch.tensor(spec.std)
    mean, cov = z.double().mean(0), torch.cov(z.T.double()) + 1e-4 * torch.eye(2, dtype=torch.float64)
    by_hand = -torch.distributions.MultivariateNormal(mean, cov).log_prob(torch.zeros(2, dtype=torch.float64))
    assert plan.surprise(0, np.array(spec.mean)) == pytest.approx(float(by_hand), rel=1e-5)


def test_anchored_cart_position_makes_the_plan_translation_invariant(tmp_path):
    env = make_env("CartPole-v1", max_episode_steps=20)
    overrides = {**TINY_AIF, "planner": {**TINY_AIF["planner"], "policies": {"kind": "random", "horizon": 3,
                                                                             "n_candidates": 6},
                                         "continuous": {"anchored": [0]}}, "run_dir": str(tmp_path)}
    agent = make_agent("aif", env, seed=0, overrides=overrides)
    agent.warm_up(env, 120, seed=1)
    assert agent.model.encoding.anchored == (0,)
    history = [np.array([0.1, 0.2, 0.01, -0.1]), np.array([0.11, 0.25, 0.008, -0.12])]
    policies = torch.randint(0, 2, (6, 3), generator=torch.Generator().manual_seed(0))
    moved = []
    for shift in (0.0, 1.5):                      # the same history with the cart 1.5 m to the right
        agent.planner.generator.manual_seed(0)
        moved.append(agent.planner.evaluate([o + [shift, 0, 0, 0] for o in history], [0], policies))
    # the model sees the same tokens, so it predicts the same future, moved by 1.5 m
    expected = moved[0]["predicted_obs"] + torch.tensor([1.5, 0.0, 0.0, 0.0])
    assert torch.allclose(moved[1]["predicted_obs"], expected, atol=1e-5)
    assert torch.allclose(moved[1]["info_gain"], moved[0]["info_gain"], atol=1e-5)
    # ... and the centring preference sees the cart 1.5 m off centre
    assert (moved[1]["extrinsic"] < moved[0]["extrinsic"]).all()
    # the model's evaluation decodes with each window's offset too
    (obs, states, _), (moved_obs, moved_states, _) = (
        _sample_windows(agent.model, [dict(obs_history=np.stack(history) + [shift, 0, 0, 0],
                                           action_history=np.array([0]), policy=np.array([1, 0, 1]))],
                        1, 3, 4, None, None, seed=0, batch_windows=1) for shift in (0.0, 1.5))
    np.testing.assert_allclose(moved_obs - obs, np.broadcast_to([1.5, 0, 0, 0], obs.shape), atol=1e-5)
    np.testing.assert_allclose(moved_states - states, np.broadcast_to([1.5, 0, 0, 0], states.shape), atol=1e-5)


def test_control_fidelity_compares_predictions_with_the_simulator(tmp_path):
    env = make_env("Pendulum-v1", max_episode_steps=4)
    agent = make_agent("aif", env, seed=0, overrides={**TINY_AIF, "run_dir": str(tmp_path)})
    agent.warm_up(env, 60, seed=1)
    result = control_fidelity(agent, env, episodes=2, seed=0)
    assert result["decisions"] == 8 and len(result["spearman"]) == len(result["true_regret"]) == 8
    assert all(r >= 0 for r in result["true_regret"])
    assert result["true_regret_p95"] == pytest.approx(np.percentile(result["true_regret"], 95))
    assert all(-1 <= r <= 1 for r in result["spearman"] if math.isfinite(r))
    error = np.array(result["prediction_error"])
    assert error.shape == (3, 3) and (error >= 0).all() and error[:, :2].max() <= 2   # |cos|, |sin| errors
    assert [-16.3 * 4 < e["return"] <= 0 for e in result["episodes"]] == [True, True]
    assert agent.data.n_interactions == 60 + 8                            # it recorded its episodes


def test_discrete_random_shooting_keeps_the_previous_plan_shifted(tmp_path):
    env = make_env("CartPole-v1", max_episode_steps=8)
    overrides = {**TINY_AIF, "run_dir": str(tmp_path),
                 "planner": {**TINY_AIF["planner"], "policies": {"kind": "random", "horizon": 3, "n_candidates": 5}}}
    agent = make_agent("aif", env, seed=0, overrides=overrides)
    agent.warm_up(env, 60, seed=1)
    obs, info = env.reset(seed=3)
    agent.reset(obs, info)
    first = agent.planner.plan([obs], [])
    assert agent.planner._previous is not None
    chosen = first.policies[first.chosen]
    second = agent.planner.plan([obs, obs], [first.action])
    reused = second.policies[-2:]                                        # one per completing action
    assert torch.equal(reused[:, :2], chosen[1:].expand(2, 2)) and reused[:, 2].tolist() == [0, 1]


def test_argmax_of_the_first_action_marginal_pools_the_candidates(tmp_path):
    env = make_env("CartPole-v1", max_episode_steps=8)
    planner_overrides = {**TINY_AIF["planner"], "gamma": 1.0,
                         "policies": {"kind": "random", "horizon": 3, "n_candidates": 8}}
    chosen_actions = []
    for marginal in (False, True):
        overrides = {**TINY_AIF, "run_dir": str(tmp_path / str(marginal)),
                     "planner": {**planner_overrides, "continuous": {"action_marginal": marginal}}}
        agent = make_agent("aif", env, seed=0, overrides=overrides)
        agent.warm_up(env, 60, seed=1)
        evaluate = agent.planner.evaluate

        def rigged(observations, actions, policies):
            """The best policy starts with 0 (G 0); every other 0-start has G 10, every 1-start G 0.05."""
            terms = evaluate(observations, actions, policies)
            first = policies[:, 0]
            assert (first == 0).sum() >= 1 and (first == 1).sum() >= 2
            G = torch.where(first == 1, 0.05, 10.0)
            G[int(torch.nonzero(first == 0)[0])] = 0.0
            return {**terms, "G": G}

        agent.planner.evaluate = rigged
        obs, _ = env.reset(seed=3)
        plan = agent.planner.plan([obs], [])
        ones = int((plan.policies[:, 0] == 1).sum())
        # P(a=1) = n_1 e^-0.05 / Z > P(a=0) = (1 + (n_0 - 1) e^-10) / Z whenever n_1 >= 2
        assert float(plan.policy_probs[plan.policies[:, 0] == 1].sum()) == pytest.approx(
            ones * math.exp(-0.05) / (ones * math.exp(-0.05) + 1 + (8 - ones - 1) * math.exp(-10)), rel=1e-5)
        assert plan.policies[plan.chosen, 0] == plan.action
        chosen_actions.append(plan.action)
    assert chosen_actions == [0, 1]
    with pytest.raises(ValueError, match="action_marginal needs Discrete actions"):   # at once, before training
        make_agent("aif", make_env("Pendulum-v1"), seed=0, overrides={
            **TINY_AIF, "planner": {**TINY_AIF["planner"], "continuous": {"action_marginal": True}}})


def test_aif_ensemble_on_pendulum_reports_novelty(tmp_path):
    env = make_env("Pendulum-v1", max_episode_steps=3)
    overrides = {**TINY_AIF, "ensemble": 2, "run_dir": str(tmp_path),
                 "planner": {**TINY_AIF["planner"], "policies": {"kind": "random", "horizon": 3, "n_candidates": 4}}}
    agent = make_agent("aif", env, seed=0, overrides=overrides)
    agent.warm_up(env, 60, seed=1)
    assert len(agent.ensemble) == 2 and (tmp_path / "train0_member1" / "model").is_dir()
    obs, info = env.reset(seed=0)
    agent.reset(obs, info)
    action = agent.act(obs)
    assert action.shape == (1,) and -2 <= float(action[0]) <= 2
    assert agent.step_log()["novelty_chosen"] != 0.0


def test_budgets_count_env_steps_under_action_repeat(tmp_path):
    env = make_env("MountainCar-v0", action_repeat=10, max_episode_steps=30)
    agent = make_agent("aif", env, seed=0, overrides={**TINY_AIF, "run_dir": str(tmp_path)})
    assert agent.warm_up(env, 50, seed=1) == 50 and agent.data.n_interactions == 5   # 5 decisions of 10 steps
    config = CompareConfig(env="MountainCar-v0", agents=["random"], episodes=1, seeds=1, env_kwargs={"max_episode_steps": 30},
                           agent_env={"random": {"action_repeat": 4}}, out=str(tmp_path / "run"), progress=False)
    random = run_comparison(config)["agents"]["random"]
    assert random["env_steps"] == 30 and random["steps_mean"] == 30        # 8 decisions: 7 × 4 + 2
    pytest.importorskip("stable_baselines3")
    with pytest.raises(ValueError, match="action_repeat=10"):
        make_agent("dqn", env, seed=0).warm_up(env, 100, seed=0)


def test_sac_warm_up_act_and_registry():
    pytest.importorskip("stable_baselines3")
    assert "sac" in AGENTS
    env = make_env("Pendulum-v1")
    agent = make_agent("sac", env, seed=0, overrides={"learning_starts": 20, "batch_size": 16, "net_arch": [16]})
    assert agent.warm_up(env, 40, seed=1) == 40
    obs, _ = env.reset(seed=0)
    action = agent.act(obs)
    assert env.action_space.contains(np.asarray(action, dtype=np.float32))
    with pytest.raises(ValueError, match="Box action space"):
        make_agent("sac", make_env("CartPole-v1"), seed=0)
    with pytest.raises(ConfigError, match="ent_coef"):
        agent_config("sac", {"ent_coef": "lots"})


def test_harness_reports_returns_on_continuous_actions(tmp_path):
    config = CompareConfig(env="Pendulum-v1", agents=["random"], episodes=2, seeds=1,
                           env_kwargs={"max_episode_steps": 5}, out=str(tmp_path), progress=False)
    summary = run_comparison(config)
    random = summary["agents"]["random"]
    assert random["return_mean"] < 0 and random["return_std"] >= 0 and random["env_steps"] == 10


def play(agent, env, seed: int = 0) -> tuple[float, int, dict, np.ndarray]:
    """One episode of ``agent`` on ``env`` → (return, env steps, last info, last observation)."""
    obs, info = env.reset(seed=seed)
    agent.reset(obs, info)
    total, steps, done = 0.0, 0, False
    while not done:
        action = agent.act(obs)
        obs, reward, terminated, truncated, info = env.step(action)
        agent.observe(action, reward, obs, terminated, truncated, info)
        total, steps, done = total + float(reward), steps + info["env_steps"], terminated or truncated
    return total, steps, info, obs


def test_true_dynamics_reference_planner():
    env = make_env("MountainCar-v0", action_repeat=2, max_episode_steps=4)
    env.reset(seed=0)
    start = env.unwrapped.state.copy()
    preference = control_preference("mountaincar", ContinuousConfig())
    observations = env.simulate(np.array([2, 2, 2]))
    score = float(preference.log_density(torch.as_tensor(observations, dtype=torch.float64), 1.0).sum())
    assert np.array_equal(env.unwrapped.state, start)              # planned on a copy
    twin = make_env("MountainCar-v0", action_repeat=2, max_episode_steps=4)
    twin.reset(seed=0)
    first, second = twin.step(2)[0], twin.step(2)[0]                 # the time limit ends it: o_2 is repeated
    expected = preference.log_density(torch.as_tensor(np.stack([first, second, second]), dtype=torch.float64), 1.0)
    assert score == pytest.approx(float(expected.sum()))
    # the aif planner on the simulator (the true_dynamics agent)
    car = make_env("MountainCar-v0", action_repeat=50)
    agent = make_agent("true_dynamics", car, seed=0, overrides={"planner": {
        "policies": {"kind": "random", "horizon": 2, "n_candidates": 2}, "n_samples": 2,
        "continuous": {"preference_floor": 10.0, "info_gain_weight": 0.0, "novelty_weight": 0.0}}})
    total, steps, info, obs = play(agent, car)
    assert total == -steps                                            # −1 per env step, not per decision
    assert info["success"] == (obs[0] >= 0.5) and (info["success"] or steps == 200)
    cem = {"policies": {"kind": "cem", "horizon": 3, "n_candidates": 4, "cem": {"n_elite": 2, "iterations": 2}},
           "n_samples": 2}
    cartpole = make_env("CartPole-v1")
    total, steps, _, _ = play(make_agent("true_dynamics", cartpole, seed=0, overrides={"planner": cem}), cartpole)
    assert total == steps > 0                                         # +1 per env step until the pole falls
    pendulum = make_env("Pendulum-v1", action_repeat=4)
    box = {**cem, "policies": {**cem["policies"], "horizon": 2, "cem": {"n_elite": 2, "iterations": 1}}}
    total, steps, _, _ = play(make_agent("true_dynamics", pendulum, seed=0, overrides={"planner": box}), pendulum)
    assert steps == 200 and -16.3 * 200 < total < 0                   # Box torques; reward in [-16.27, 0] per step
    with pytest.raises(ValueError, match="needs a hand-written preference"):
        make_agent("true_dynamics", make_env("Acrobot-v1"))
    with pytest.raises(ValueError, match="classic-control tasks"):
        make_agent("true_dynamics", make_env("grid4x4"))
