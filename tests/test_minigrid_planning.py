"""Active inference on MiniGrid: factored encodings, sample-based EFE, the factored planner and the ladder.

``TrueRollouts`` stands in for the diffusion model: it answers the planner's inpainting request by
playing each candidate policy in a copy of the live MiniGrid env, so the planner's EFE must equal
the value computed by hand from the goal step, and its choice must be the BFS oracle's.
"""
from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch

from diffaif.agents import make_agent
from diffaif.data.encoding import PartSpec, TaskEncoding, space_part
from diffaif.envs import make_env
from diffaif.envs.minigrid_task import CELL_NAMES
from diffaif.experiments.compare import CompareConfig, run_comparison
from diffaif.model.world_model import predicted_x0
from diffaif.planning.efe import factored_surprise, row_codes, sample_entropy, sampled_expected_free_energy
from diffaif.planning.planner import FactoredEFEPlanner, PlannerConfig
from diffaif.planning.policies import PolicyConfig
from diffaif.planning.preferences import VectorPreference, outcome_log_preferences
from diffaif.tasks import task_planning

EMPTY = "MiniGrid-Empty-5x5-v0"
AIF_ENV = {"obs_floor": True, "obs_mode": "state"}
TINY_MODEL = {"model": {"width": 16, "depth": 1, "heads": 2, "length": 6},
              "train": {"steps": 3, "batch_size": 8, "warmup_steps": 0, "num_train_timesteps": 100,
                        "log_interval": 1, "checkpoint_interval": 10}}
TINY_PLANNER = {"context": 1, "n_samples": 2, "denoising_steps": 2,
                "policies": {"kind": "model", "horizon": 3, "n_candidates": 4, "n_random": 4}}


# ---- encoding ---------------------------------------------------------------------------------
def test_factored_part_round_trip_and_dict():
    enc = TaskEncoding([PartSpec("state", "categorical", 5, factors=(2, 3)),
                        PartSpec("obs", "categorical", 4, factors=(4,)), PartSpec("action", "categorical", 3)])
    states = np.array([[[1, 2], [0, 0], [-1, -1]]])
    x = enc.encode(states, np.array([[[3], [0], [-1]]]), np.array([[2, 0, -1]]))
    assert x.shape == (1, 3, 12)
    assert x[0, 0, :5].tolist() == [-1, 1, -1, -1, 1]
    assert (x[0, 2] == -1).all()                                   # absent step: every block all -1
    np.testing.assert_array_equal(enc.decode_part(x[:, :2], "state"), states[:, :2])
    assert TaskEncoding.from_dict(enc.to_dict()) == enc
    assert [g.shape for g in enc.categorical_groups] == [(1, 2), (2, 3), (1, 4)]


def test_factored_part_errors():
    with pytest.raises(ValueError, match="sum to size"):
        PartSpec("state", "categorical", 6, factors=(2, 3))
    with pytest.raises(ValueError, match="only a categorical part"):
        PartSpec("state", "continuous", 5, factors=(2, 3))
    enc = TaskEncoding([PartSpec("state", "categorical", 5, factors=(2, 3)), PartSpec("obs", "categorical", 2),
                        PartSpec("action", "categorical", 2)])
    with pytest.raises(ValueError, match="last axis of size 2"):
        enc.encode_part("state", np.zeros((1, 4, 3), dtype=int))


def test_space_part_of_multidiscrete_and_discrete():
    env = make_env(EMPTY, **AIF_ENV)
    part = space_part("obs", env.vector_space)
    assert part.factors == tuple(int(n) for n in env.vector_space.nvec) and part.size == sum(part.factors)
    assert space_part("action", env.action_space).size == 3
    with pytest.raises(ValueError, match="no categorical encoding"):
        space_part("obs", make_env("CartPole-v1").observation_space)


def test_predicted_x0_is_a_softmax_per_block():
    enc = TaskEncoding([PartSpec("state", "categorical", 5, factors=(2, 3)), PartSpec("obs", "categorical", 2),
                        PartSpec("action", "categorical", 2)])
    x0 = predicted_x0(enc, torch.randn(4, 3, enc.dim))
    for block in (slice(0, 2), slice(2, 5), slice(5, 7), slice(7, 9)):
        torch.testing.assert_close(((x0[..., block] + 1) / 2).sum(-1), torch.ones(4, 3))


# ---- sample-based EFE -------------------------------------------------------------------------
def test_row_codes_and_sample_entropy():
    codes = row_codes(torch.tensor([[1, 2], [3, 4], [1, 2], [5, 6]]))
    assert codes[0] == codes[2] and len(set(codes.tolist())) == 3
    h = sample_entropy(torch.tensor([[7, 7, 7, 7], [0, 0, 1, 1], [0, 1, 2, 3], [0, 0, 0, 1]]))
    expected = [0.0, np.log(2), np.log(4), -(0.75 * np.log(0.75) + 0.25 * np.log(0.25))]
    np.testing.assert_allclose(h.numpy(), expected, atol=1e-6)


def test_sampled_efe_terms():
    log_p = torch.log(torch.tensor([0.5, 0.25, 0.25]))
    # four samples, one step: s and o perfectly coupled and uniform over 4 values -> I[s;o] = log 4
    s = torch.tensor([[[0, 1, 2, 3]]])
    o = torch.tensor([[[0, 1, 2, 2]]])
    terms = sampled_expected_free_energy(s[..., None], o[..., None], log_p[o])
    h_o = -(0.25 * np.log(0.25) * 2 + 0.5 * np.log(0.5))
    assert terms["info_gain"].item() == pytest.approx(h_o, abs=1e-6)       # o is a function of s: I = H[o]
    assert terms["ambiguity"].item() == pytest.approx(0.0, abs=1e-6)
    assert terms["extrinsic"].item() == pytest.approx(float(log_p[o].mean()), abs=1e-6)
    for t in (terms,):
        torch.testing.assert_close(t["G"], -t["extrinsic"] - t["info_gain"])
        torch.testing.assert_close(t["G"], t["risk"] + t["ambiguity"])
    # observation independent of the state: no information gain, ambiguity = H[o]
    independent = sampled_expected_free_energy(torch.tensor([[[[0], [0], [1], [1]]]]),
                                               torch.tensor([[[[0], [1], [0], [1]]]]), torch.zeros(1, 1, 4))
    assert independent["info_gain"].item() == pytest.approx(0.0, abs=1e-6)
    assert independent["ambiguity"].item() == pytest.approx(np.log(2), abs=1e-6)
    # without a hidden state the observation is all there is: no information gain, G = −extrinsic
    alone = sampled_expected_free_energy(None, o[..., None], log_p[o])
    assert alone["info_gain"].item() == pytest.approx(0.0, abs=1e-6)
    torch.testing.assert_close(alone["G"], -alone["extrinsic"])
    with pytest.raises(ValueError, match="must agree"):
        sampled_expected_free_energy(s[..., None], o[..., :2, None], log_p[o])


def test_factored_surprise_by_hand():
    samples = torch.tensor([[0, 1], [0, 2], [1, 1], [0, 1]])
    # factor 0: 3 of 4 samples are 0 -> (3 + 0.5) / (4 + 0.5 * 2); factor 1: 1 of 4 is 2 -> (1 + 0.5) / (4 + 0.5 * 3)
    expected = -np.log(3.5 / 5) - np.log(1.5 / 5.5)
    assert factored_surprise(samples, torch.tensor([0, 2]), (2, 3), 0.5).item() == pytest.approx(expected, rel=1e-6)


def test_outcome_preferences():
    log_p = outcome_log_preferences(CELL_NAMES, ("goal",), ("lava",), precision=2.0)
    assert torch.logsumexp(log_p, 0).item() == pytest.approx(0.0, abs=1e-6)
    assert int(log_p.argmax()) == CELL_NAMES.index("goal") and int(log_p.argmin()) == CELL_NAMES.index("lava")
    assert (log_p[CELL_NAMES.index("goal")] - log_p[CELL_NAMES.index("empty")]).item() == pytest.approx(2.0)
    with pytest.raises(ValueError, match="unknown outcome names"):
        outcome_log_preferences(CELL_NAMES, ("treasure",))


def test_vector_preference_sparse_and_shaped():
    log_p = outcome_log_preferences(CELL_NAMES, ("goal",), ("lava",), 2.0)
    # obs vectors (x, y, goal x, goal y, floor)
    obs = torch.tensor([[1, 1, 3, 3, CELL_NAMES.index("empty")], [3, 3, 3, 3, CELL_NAMES.index("goal")],
                        [2, 3, 3, 3, CELL_NAMES.index("lava")]])
    sparse = VectorPreference(4, log_p)
    torch.testing.assert_close(sparse(obs), log_p[obs[:, 4]])
    shaped = VectorPreference(4, log_p, positions=(0, 1, 2, 3), distance_precision=0.5)
    torch.testing.assert_close(shaped(obs), log_p[obs[:, 4]] - 0.5 * torch.tensor([4.0, 0.0, 1.0]))
    assert shaped.goal == CELL_NAMES.index("goal")
    with pytest.raises(ValueError, match="needs the factors"):
        VectorPreference(4, log_p, distance_precision=1.0)


def test_shaped_minigrid_preference_needs_the_state_observation():
    with pytest.raises(ValueError, match="obs_mode='state'"):
        make_agent("aif", make_env(EMPTY, obs_floor=True), seed=0, overrides={"planner": {"preference": "shaped"}})
    with pytest.raises(ValueError, match="unknown preference kind"):
        make_agent("aif", make_env(EMPTY, **AIF_ENV), seed=0, overrides={"planner": {"preference": "dense"}})


# ---- the planner against true rollouts --------------------------------------------------------
class TrueRollouts:
    """A stand-in world model: plays each candidate policy in a copy of the live env (whose present
    observation and state are ``env.present``) and encodes the window it produces."""

    def __init__(self, env, encoding, length: int, context: int = 1):
        self.env, self.encoding, self.length, self.context = env, encoding, length, context

    def inpaint(self, known, mask, n_samples, steps=None, mode=None, generator=None, shared_noise=False):
        c = self.context
        actions = self.encoding.decode_part(known.numpy(), "action")     # (B, T)
        windows = []
        for row in actions:
            sim = copy.deepcopy(self.env)
            obs, state = sim.present
            states, observations, acts = [[-1] * len(state)] * c, [[-1] * len(obs)] * c, [-1] * c
            terminated = False
            for t in range(c, self.length):
                states, observations, acts = states + [state.tolist()], observations + [obs.tolist()], acts + [int(row[t])]
                if not terminated:  # after termination the last step repeats (absorbing), as in training
                    obs, _, terminated, _, info = sim.step(int(row[t]))
                    state = info["state"]
            window = self.encoding.encode(np.array(states), np.array(observations), np.array(acts))
            windows.append(np.repeat(window[None], n_samples, axis=0))
        return torch.as_tensor(np.stack(windows))


def test_factored_planner_on_true_rollouts_is_exact_and_optimal():
    env = make_env(EMPTY, **AIF_ENV)
    obs, info = env.reset(seed=0)
    env.present = (obs, info["state"])
    encoding = task_planning(env, PlannerConfig()).encoding(None)
    horizon = 6
    model = TrueRollouts(env, encoding, 1 + 1 + horizon)
    config = PlannerConfig(context=1, n_samples=2, policies=PolicyConfig(kind="enumerate", horizon=horizon),
                           common_random_numbers=False)
    log_p = outcome_log_preferences(CELL_NAMES, ("goal",), ("lava",), 3.0)
    planner = FactoredEFEPlanner(model, VectorPreference(len(env.vector_space.nvec) - 1, log_p), config)
    plan = planner.plan([obs], [])
    key = env.current_key()
    assert env.shortest_paths.action_values(key)[plan.action] == env.shortest_paths.action_values(key).min()
    # deterministic rollouts: no information gain, so G = -extrinsic; the best policy sees the goal
    # tile from the step k it is reached (BFS distance) to the horizon, and the empty floor before
    assert torch.allclose(plan.terms["info_gain"], torch.zeros(()))
    k = int(env.shortest_paths.distance(key))
    goal, empty = log_p[CELL_NAMES.index("goal")], log_p[CELL_NAMES.index("empty")]
    best = int(plan.terms["G"].argmin())
    assert plan.terms["extrinsic"][best].item() == pytest.approx(((horizon - k + 1) * goal + (k - 1) * empty).item(),
                                                                 rel=1e-5)


# ---- the agent and the ladder, tiny ------------------------------------------------------------
def test_aif_agent_plays_minigrid_with_a_tiny_model(tmp_path):
    env = make_env(EMPTY, **AIF_ENV)
    agent = make_agent("aif", env, seed=0, overrides={"world_model": TINY_MODEL, "planner": TINY_PLANNER,
                                                      "retrain": "never", "run_dir": str(tmp_path)})
    assert agent.warm_up(env, 60, seed=1) == 60
    obs, info = env.reset(seed=2)
    agent.reset(obs, info)
    for _ in range(3):
        action = agent.act(obs)
        assert 0 <= action < env.action_space.n
        obs, reward, terminated, truncated, info = env.step(action)
        agent.observe(action, reward, obs, terminated, truncated, info)
        log = agent.step_log()
        assert len(log["action_probs"]) == 3 and abs(sum(log["action_probs"]) - 1) < 1e-5
        assert {"info_gain_per_action", "extrinsic_per_action", "decision_ms"} <= set(log)
        json.dumps(log)
        if terminated or truncated:
            break


def test_aif_on_minigrid_needs_the_floor_sense():
    with pytest.raises(ValueError, match="obs_floor=True"):
        make_agent("aif", make_env(EMPTY, obs_mode="state"), seed=0)


def test_compare_gives_each_agent_its_own_observation(tmp_path):
    config = CompareConfig(env=EMPTY, agents=["qlearning", "bfs_oracle"], episodes=2, seeds=1,
                           agent_env={"qlearning": {"obs_mode": "state", "obs_index": 1000}},
                           out=str(tmp_path), progress=False)
    summary = run_comparison(config)
    assert summary["agents"]["bfs_oracle"]["success_rate"] == 1.0
    bad = CompareConfig(env=EMPTY, agents=["qlearning"], episodes=1, seeds=1, agent_env={"qlearnin": {}},
                        out=str(tmp_path), progress=False)
    with pytest.raises(ValueError, match="unknown agents"):
        run_comparison(bad)
