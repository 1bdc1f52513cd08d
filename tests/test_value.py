"""The learned tail value: transitions read from a data set, value iteration against closed forms,
nearest-neighbour lookup, and the planner with a tail value on true rollouts of MiniGrid."""
from __future__ import annotations


import numpy as np
import pytest
import torch

from diffaif.agents import make_agent
from diffaif.data.episodes import EpisodeData
from diffaif.envs import make_env
from diffaif.envs.minigrid_task import CELL_NAMES
from diffaif.planning.planner import FactoredEFEPlanner, PlannerConfig
from diffaif.planning.policies import PolicyConfig
from diffaif.planning.preferences import VectorPreference, outcome_log_preferences
from diffaif.tasks import task_planning
from diffaif.planning.value import TailValue, observed_transitions, tail_values
from test_minigrid_planning import AIF_ENV, TINY_MODEL, TINY_PLANNER, TrueRollouts

LAVA = "MiniGrid-LavaGapS5-v0"


def episodes(*runs: tuple[list[int], bool]) -> EpisodeData:
    """Episodes of scalar observations (state = observation, action 0): (observations, terminated)."""
    data = EpisodeData.empty(0, 0, 0)
    for obs, terminated in runs:
        data.start_episode(obs[0], obs[0])
        for i, o in enumerate(obs[1:]):
            last = i == len(obs) - 2
            data.append_transition(0, 0.0, terminated and last, last and not terminated, o, o)
    return data


def test_observed_transitions_add_a_self_loop_after_termination():
    nodes, source, target, action = observed_transitions(episodes(([5, 7, 9], True), ([7, 5], False)))
    assert nodes[:, 0].tolist() == [5, 7, 9]
    edges = sorted(zip(source.tolist(), target.tolist(), action.tolist()))
    assert edges == [(0, 1, 0), (1, 0, 0), (1, 2, 0), (2, 2, -1)]   # 9 is absorbing; 5 after truncation is not


def test_tail_values_match_the_closed_form_on_a_chain():
    # 0 → 1 → 2 → 3 (goal, absorbing); 4 is only ever seen last in a truncated episode (dead end)
    beta, c_e, c_g = 0.9, 2.0, 0.5
    cost = torch.tensor([c_e, c_e, c_e, c_g, c_e], dtype=torch.float64)
    value = tail_values(cost, torch.tensor([0, 1, 2, 3, 0]), torch.tensor([1, 2, 3, 3, 4]), beta)
    goal = c_g / (1 - beta)
    expected = [c_e + beta * (c_e + beta * goal), c_e + beta * goal, goal, goal, c_e / (1 - beta)]
    np.testing.assert_allclose(value.numpy(), expected, rtol=1e-5)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        tail_values(cost, torch.tensor([0]), torch.tensor([1]), 1.0)


def test_tail_values_back_up_the_empirical_expectation_per_action():
    # from 0: action 0 reaches the goal 1 (absorbing, cost 0) or the trap 2 (absorbing, cost 1) with
    # frequencies 1/4 and 3/4; action 1 always reaches 3, which reaches the goal next
    beta = 0.5
    cost = torch.tensor([1.0, 0.0, 1.0, 1.0], dtype=torch.float64)
    source, target, action = (torch.tensor(v) for v in ([0, 0, 0, 0, 0, 3, 1, 2], [1, 2, 2, 2, 3, 1, 1, 2],
                                                        [0, 0, 0, 0, 1, 0, -1, -1]))
    value = tail_values(cost, source, target, beta, action)
    trap = 1 / (1 - beta)
    gamble, detour = 0.25 * 0.0 + 0.75 * (1 + beta * trap), 1 + beta * 0.0
    np.testing.assert_allclose(value.numpy(), [min(gamble, detour), 0.0, trap, 0.0], atol=1e-5)
    # without actions every edge is its own choice: the optimistic minimum over successors
    assert tail_values(cost, source, target, beta)[0].item() == pytest.approx(0.0, abs=1e-5)


def test_tail_value_takes_the_nearest_seen_vectors():
    data = episodes(([0, 1, 2], True))
    tail = TailValue(lambda obs: -obs[..., 0].double(), discount=0.5).fit(data)   # c(o) = o
    exact = tail(torch.tensor([[0], [1], [2]]))
    np.testing.assert_allclose(exact.numpy(), [1 + 0.5 * 4, 4, 4], rtol=1e-6)       # T(2) = 2 / (1 − 0.5)
    # two factors: an unseen vector at Hamming distance 1 from two seen ones takes their mean
    two = EpisodeData(states=np.array([0, 0]), observations=np.array([[0, 0], [1, 1]]), actions=np.array([0, -1]),
                      rewards=np.zeros(2), terminated=np.array([True, False]), truncated=np.zeros(2, dtype=bool),
                      episode_starts=np.array([0]))
    tail = TailValue(lambda obs: -obs.sum(-1).double(), discount=0.5).fit(two)
    values = tail(torch.tensor([[0, 0], [1, 1]]))
    assert tail(torch.tensor([[0, 1]])).item() == pytest.approx(values.mean().item())
    with pytest.raises(ValueError, match="factors"):
        tail(torch.tensor([[0, 1, 2]]))
    with pytest.raises(RuntimeError, match="not fitted"):
        TailValue(lambda obs: obs)(torch.tensor([[0]]))


def random_data(env, steps: int, seed: int) -> EpisodeData:
    """Random interactions in one fixed layout (every reset with ``seed``)."""
    rng = np.random.default_rng(seed)
    data = None
    while data is None or data.n_interactions < steps:
        obs, info = env.reset(seed=seed)
        data = data or EpisodeData.empty(info["state"], obs, 0)
        data.start_episode(info["state"], obs)
        done = False
        while not done:
            action = int(rng.integers(env.action_space.n))
            obs, reward, terminated, truncated, info = env.step(action)
            done = terminated or truncated
            data.append_transition(action, reward, terminated, truncated, info["state"], obs)
    return data


def test_planner_with_a_tail_value_plans_past_its_horizon():
    env = make_env(LAVA, max_steps=30, **AIF_ENV)
    data = random_data(env, 3000, seed=3)
    obs, info = env.reset(seed=3)
    env.present = (obs, info["state"])
    encoding = task_planning(env, PlannerConfig()).encoding(None)
    config = PlannerConfig(context=1, n_samples=1, tail_value=True, tail_discount=0.9,
                           policies=PolicyConfig(kind="enumerate", horizon=1), common_random_numbers=False)
    log_p = outcome_log_preferences(CELL_NAMES, ("goal",), ("lava",), 3.0)
    planner = FactoredEFEPlanner(TrueRollouts(env, encoding, 3), VectorPreference(len(env.vector_space.nvec) - 1,
                                                                                  log_p), config)
    planner.learn(data)
    # deterministic and fully explored: T(o) of an outcome k steps from the goal is
    # c_e (1 − β^(k−1)) / (1 − β) + β^(k−1) c_g / (1 − β), with c = −log p̃ of the floor tile
    key = env.current_key()
    k = int(env.shortest_paths.distance(key))
    beta, c_e, c_g = 0.9, -log_p[CELL_NAMES.index("empty")].item(), -log_p[CELL_NAMES.index("goal")].item()
    expected = (c_e * (1 - beta ** (k - 1)) + beta ** (k - 1) * c_g) / (1 - beta)
    assert planner.tail(torch.as_tensor(obs)[None]).item() == pytest.approx(expected, rel=1e-5)
    assert k > 1  # the goal is beyond the one-step horizon, yet the choice is the oracle's
    plan = planner.plan([obs], [])
    values = env.shortest_paths.action_values(key)
    assert values[plan.action] == values.min()
    assert len(plan.log()["tail_per_action"]) == env.action_space.n


def test_agent_refits_the_tail_value_after_each_episode(tmp_path):
    env = make_env("MiniGrid-Empty-5x5-v0", max_steps=4, **AIF_ENV)
    agent = make_agent("aif", env, seed=0, overrides={
        "world_model": TINY_MODEL, "retrain": "never", "run_dir": str(tmp_path),
        "planner": {**TINY_PLANNER, "preference": "sparse", "tail_value": True}})
    agent.warm_up(env, 12, seed=1)
    assert len(agent.planner.tail.nodes) == len(np.unique(agent.data.observations, axis=0))
    before = agent.data.n_steps
    obs, info = env.reset(seed=5)
    agent.reset(obs, info)
    done = False
    while not done:
        action = agent.act(obs)
        obs, reward, terminated, truncated, info = env.step(action)
        agent.observe(action, reward, obs, terminated, truncated, info)
        done = terminated or truncated
    assert agent.data.n_steps > before
    np.testing.assert_array_equal(agent.planner.tail.nodes.numpy(), np.unique(agent.data.observations, axis=0))


def test_tail_value_is_refused_where_it_is_not_implemented():
    with pytest.raises(ValueError, match="needs categorical observation vectors"):
        make_agent("aif", make_env("CartPole-v1"), seed=0, overrides={"planner": {"tail_value": True}})
    with pytest.raises(ValueError, match="tail_discount"):
        PlannerConfig(tail_discount=1.0)
