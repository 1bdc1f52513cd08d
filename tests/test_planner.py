"""The Monte Carlo EFE planner and the active-inference agent.

``TrueSampler`` stands in for the diffusion model: it answers the planner's two inpainting requests
(a state at the present step; observations up to the present and the policy's actions) with samples
from the true grid dynamics. With it, the planner's estimate must equal the exact EFE computed by
enumeration (deterministic grid), or converge to it (slippery grid): this checks the planner's
windows, decoding and estimators independently of how well a network was trained.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from diffaif.agents import make_agent
from diffaif.data import grid_encoding
from diffaif.envs import make_env
from diffaif.experiments.fidelity import efe_fidelity
from diffaif.planning.exact import exact_expected_free_energy
from diffaif.planning.planner import EFEPlanner, PlannerConfig, best_per_action
from diffaif.planning.policies import PolicyConfig, enumerate_policies
from diffaif.tasks.grid import grid_log_preferences

TINY_MODEL = {"model": {"width": 16, "depth": 1, "heads": 2, "length": 6},
              "train": {"steps": 3, "batch_size": 16, "warmup_steps": 0, "num_train_timesteps": 100,
                        "log_interval": 1, "checkpoint_interval": 10}}


class TrueSampler:
    """Samples windows of a fully observable grid world from its true transition matrix."""

    def __init__(self, env, length: int = 8):
        self.task = env.unwrapped
        self.encoding = grid_encoding(self.task)
        self.length = length
        self.P = self.task.transition_matrix()            # (S, A, S)
        self.calls = []

    def inpaint(self, known, mask, n_samples, steps=None, mode=None, generator=None, shared_noise=False):
        enc = self.encoding
        self.calls.append(tuple(known.shape))
        rng = np.random.default_rng(0 if generator is None else int(torch.randint(2**31, (1,), generator=generator)))
        batch, length, _ = known.shape
        state_known = mask[..., enc.slice("state")].all(-1)
        obs_known = mask[..., enc.slice("obs")].all(-1) & (known[..., enc.slice("obs")] > 0).any(-1)
        action_known = mask[..., enc.slice("action")].all(-1) & (known[..., enc.slice("action")] > 0).any(-1)
        states = known[..., enc.slice("state")].argmax(-1).numpy()
        obs = known[..., enc.slice("obs")].argmax(-1).numpy()
        actions = known[..., enc.slice("action")].argmax(-1).numpy()
        out_states = np.zeros((batch, n_samples, length), dtype=np.int64)
        out_actions = rng.integers(0, 4, size=(batch, n_samples, length))
        for b in range(batch):
            anchor = int(np.flatnonzero(state_known[b] | obs_known[b])[-1])
            s0 = states[b, anchor] if state_known[b, anchor] else obs[b, anchor]
            for n in range(n_samples):
                s = s0
                out_states[b, n, anchor] = s
                for t in range(anchor, length - 1):
                    a = actions[b, t] if action_known[b, t] else out_actions[b, n, t]
                    out_actions[b, n, t] = a
                    s = rng.choice(self.P.shape[-1], p=self.P[s, a])
                    out_states[b, n, t + 1] = s
        samples = torch.as_tensor(enc.encode(out_states, out_states, out_actions))
        return torch.where(mask[:, None], known[:, None], samples)


def planner_for(env, sampler, **config) -> EFEPlanner:
    cfg = PlannerConfig(**{"pseudo_count": 0.0, "likelihood_samples": 4, **config})
    return EFEPlanner(sampler, grid_log_preferences(env, "shaped"), cfg, seed=0)


@pytest.mark.parametrize("obs_estimator", ["rao_blackwell", "histogram"])
def test_monte_carlo_efe_equals_exact_efe_on_a_deterministic_grid(obs_estimator):
    env = make_env("grid4x4")
    planner = planner_for(env, TrueSampler(env), obs_estimator=obs_estimator, n_samples=2,
                          policies=PolicyConfig(kind="enumerate", horizon=2))
    policies = enumerate_policies(4, 2)
    terms = planner.evaluate([5], [], policies)
    task = env.unwrapped
    exact = exact_expected_free_energy(np.eye(16)[5], policies, task.transition_matrix(),
                                       task.observation_matrix(), planner.log_preference.double())
    for name in ("G", "risk", "ambiguity"):
        np.testing.assert_allclose(terms[name].numpy(), exact[name].numpy(), atol=1e-4)
    assert torch.equal(terms["belief"], torch.eye(16)[5])


def test_monte_carlo_efe_converges_to_exact_efe_under_slip():
    env = make_env("grid4x4", slip=0.3)
    planner = planner_for(env, TrueSampler(env), n_samples=400, policies=PolicyConfig(kind="enumerate", horizon=2))
    policies = enumerate_policies(4, 2)
    terms = planner.evaluate([0], [], policies)
    task = env.unwrapped
    exact = exact_expected_free_energy(np.eye(16)[0], policies, task.transition_matrix(),
                                       task.observation_matrix(), planner.log_preference.double())
    # histogram of 400 draws: risk error of order sqrt(K/N) nats per step
    assert np.abs(terms["G"].numpy() - exact["G"].numpy()).max() < 0.25
    from scipy.stats import spearmanr
    assert spearmanr(terms["G"].numpy(), exact["G"].numpy()).statistic > 0.9


def test_one_batched_call_per_decision_on_a_cropped_window():
    env = make_env("grid4x4")
    sampler = TrueSampler(env)
    planner = planner_for(env, sampler, n_samples=3, context=1, policies=PolicyConfig(kind="enumerate", horizon=2))
    planner.likelihood()
    sampler.calls.clear()
    plan = planner.plan([0, 4], [1])
    assert sampler.calls == [(16, 4, sampler.encoding.dim)]   # K = 16 policies, context 1 + 1 + horizon 2 tokens
    assert plan.action_probs.shape == (4,) and abs(float(plan.action_probs.sum()) - 1) < 1e-6
    assert plan.action in (1, 3)                                # down or right: both shorten the path
    assert plan.q_o.shape == (16, 2, 16)
    assert planner.window == 4 < sampler.length                # cropped: context 1 + present + horizon 2
    assert EFEPlanner(sampler, planner.log_preference, PlannerConfig(crop_window=False)).window == sampler.length


def test_planner_rejects_a_horizon_beyond_the_window():
    env = make_env("grid4x4")
    with pytest.raises(ValueError, match="exceeds the model's window length"):
        planner_for(env, TrueSampler(env, length=4), context=1, policies=PolicyConfig(horizon=3))


def test_best_per_action_marks_missing_actions():
    G = torch.tensor([3.0, 1.0, 2.0])
    first = torch.tensor([0, 0, 2])
    assert best_per_action(G, first, 4).tolist() == [1, -1, 2, -1]


def test_fidelity_of_the_true_sampler_is_perfect():
    env = make_env("grid4x4")
    agent = make_agent("aif", env, seed=0, overrides={"planner": {"n_samples": 2, "pseudo_count": 0.0}})
    agent._set_model(TrueSampler(env))
    result = efe_fidelity(agent, env, episodes=2, seed=0)
    assert result["decisions"] == 12                       # two episodes on the 6-step shortest path
    assert result["action_agreement"] == 1.0
    assert result["spearman_median"] > 0.999
    assert result["exact_regret_mean"] == 0.0


def test_agent_warm_up_trains_acts_records_and_retrains(tmp_path):
    env = make_env("grid4x4")
    agent = make_agent("aif", env, seed=0, overrides={
        "world_model": TINY_MODEL, "run_dir": str(tmp_path), "retrain": "steps", "retrain_every": 3,
        "retrain_steps": 2, "retrain_lr": 1e-5,
        "planner": {"n_samples": 2, "denoising_steps": 2, "likelihood_samples": 2}})
    assert agent.warm_up(env, 30, seed=1) == 30
    assert agent.trainings == 1 and agent.data.n_interactions == 30
    obs, info = env.reset(seed=0)
    agent.reset(obs, info)
    for _ in range(3):
        action = agent.act(obs)
        assert 0 <= action < 4
        log = agent.step_log()
        assert set(log) >= {"action_probs", "efe_per_action", "risk_per_action", "ambiguity_per_action",
                            "decision_ms", "belief_entropy", "policies", "G_per_policy"}
        obs, reward, terminated, truncated, info = env.step(action)
        agent.observe(action, reward, obs, terminated, truncated, info)
    assert agent.data.n_interactions == 33                 # the evaluated steps join the data set
    assert agent.trainings == 2                            # "steps" rule: retrained after 3 steps
    assert (tmp_path / "train1" / "model" / "world_model.json").is_file()
    peak_lr = [max(json.loads(line)["lr"] for line in (tmp_path / name / "metrics.jsonl").read_text().splitlines())
               for name in ("train0", "train1")]
    assert peak_lr[1] <= 1e-5 < peak_lr[0]                 # the retrain ran at retrain_lr


def test_pretrained_agent_charges_its_training_data(tmp_path):
    env = make_env("grid4x4")
    trainer = make_agent("aif", env, seed=3, overrides={"world_model": TINY_MODEL, "run_dir": str(tmp_path / "seed3")})
    trainer.warm_up(env, 25, seed=0)
    agent = make_agent("aif", env, seed=3, overrides={"world_model": TINY_MODEL, "retrain": "never",
                                                      "pretrained": str(tmp_path / "seed{seed}" / "train0" / "model")})
    assert agent.warm_up(env, 1000, seed=0) == 25
    with pytest.raises(FileNotFoundError, match="no world model"):
        make_agent("aif", env, seed=4, overrides={"pretrained": str(tmp_path / "seed{seed}" / "train0" / "model")})


def test_untrained_agent_says_what_is_missing():
    env = make_env("grid4x4")
    agent = make_agent("aif", env, seed=0)
    with pytest.raises(RuntimeError, match="not trained"):
        agent.reset(*env.reset(seed=0))


def test_matching_rows_finds_rows_or_reports_missing_ones():
    from diffaif.planning.policies import matching_rows
    scored = torch.tensor([[0, 1], [3, 3], [2, 0]])
    assert matching_rows(torch.tensor([[2, 0], [0, 1]]), scored).tolist() == [2, 0]
    assert matching_rows(torch.tensor([[1, 1]]), scored) is None


@pytest.mark.parametrize("kind", ["cem", "random", "model"])
def test_every_proposer_plans_with_terms_of_its_own_candidates(kind):
    env = make_env("grid4x4")
    planner = planner_for(env, TrueSampler(env), n_samples=2,
                          policies=PolicyConfig(kind=kind, horizon=2, n_candidates=8))
    plan = planner.plan([5], [])
    exact = exact_expected_free_energy(np.eye(16)[5], plan.policies, env.unwrapped.transition_matrix(),
                                       env.unwrapped.observation_matrix(), planner.log_preference.double())
    np.testing.assert_allclose(plan.terms["G"].numpy(), exact["G"].numpy(), atol=1e-4)
    assert plan.q_o.shape == (len(plan.policies), 2, 16)
