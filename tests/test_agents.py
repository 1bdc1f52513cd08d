"""Baseline agents: the oracle's exact values and filter, Q-learning's learning, the registry, SB3 predict."""
from __future__ import annotations

import numpy as np
import pytest
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv

from diffaif.agents import AGENTS, OracleAgent, QLearningAgent, RandomAgent, make_agent
from diffaif.agents.oracle import bayes_filter_update, qmdp_values, safe_actions, value_iteration
from diffaif.agents.qlearning import QLearningConfig, epsilon_at, q_learning_target
from diffaif.config import ConfigError
from diffaif.envs import GridWorld, make_env


def play(env, agent, episodes: int, seed: int) -> list[int]:
    """Steps of each episode, the agent learning online through ``observe``."""
    steps = []
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        agent.reset(obs)
        done, n = False, 0
        while not done:
            action = agent.act(obs)
            obs, reward, terminated, truncated, info = env.step(action)
            agent.observe(action, reward, obs, terminated, truncated, info)
            done, n = terminated or truncated, n + 1
        steps.append(n)
    return steps


# ---- oracle -----------------------------------------------------------------------------------

def test_oracle_values_equal_bfs_distances_without_slip():
    for env in (make_env("grid4x4").unwrapped, make_env("grid8x8", slip=0.0).unwrapped,
                GridWorld(size=5, walls=[(1, 1), (1, 2), (1, 3), (3, 1), (3, 2), (3, 3)])):
        q = value_iteration(env.transition_matrix(), env.goal)
        free = env.free_cells()  # wall cells are never occupied (BFS marks them unreachable)
        np.testing.assert_array_equal(q.min(axis=1)[free], env.distances()[free])
    q = value_iteration(make_env("grid4x4").unwrapped.transition_matrix(), 15)
    assert q[0].tolist() == [7.0, 6.0, 7.0, 6.0]  # up / left bump the border and waste a step


def test_oracle_values_solve_the_bellman_equation_with_slip():
    env = make_env("grid8x8").unwrapped
    P = env.transition_matrix()
    q = value_iteration(P, env.goal)
    bellman = 1.0 + np.einsum("sat,t->sa", P, q.min(axis=1))
    bellman[env.goal] = 0.0
    np.testing.assert_allclose(q, bellman, atol=1e-8)
    assert q[env.start].min() > env.distances()[env.start]  # slipping costs extra steps


def test_value_iteration_marks_trapped_states_infinite():
    # 3 states in a line, goal 0; state 2 is a trap, and action 1 from state 1 may fall into it.
    P = np.zeros((3, 2, 3))
    P[0, :, 0] = 1.0
    P[1, 0, 0] = 1.0
    P[1, 1, [0, 2]] = 0.5
    P[2, :, 2] = 1.0
    np.testing.assert_array_equal(safe_actions(P, 0), [[True, True], [True, False], [False, False]])
    q = value_iteration(P, 0)
    np.testing.assert_array_equal(q, [[0.0, 0.0], [1.0, np.inf], [np.inf, np.inf]])
    assert qmdp_values(np.array([0.0, 1.0, 0.0]), q).tolist() == [1.0, np.inf]


def test_oracle_reaches_the_goal_in_six_steps_on_grid4x4():
    env = make_env("grid4x4")
    for tie_break in ("first", "random"):
        agent = make_agent("oracle", env, seed=0, overrides={"tie_break": tie_break})
        assert play(env, agent, episodes=10, seed=0) == [6] * 10


def test_bayes_filter_matches_a_hand_computed_two_cell_example():
    # Cells {0, 1}; action 0 stays w.p. 0.8 (else swaps), action 1 swaps w.p. 0.9 (else stays).
    P = np.array([[[0.8, 0.2], [0.1, 0.9]],
                  [[0.2, 0.8], [0.9, 0.1]]])
    O = np.array([[0.7, 0.3],
                  [0.4, 0.6]])
    belief = np.array([0.5, 0.5])
    # Predict: [0.5·0.8 + 0.5·0.2, 0.5·0.2 + 0.5·0.8] = [0.5, 0.5]; correct by o = 0: [0.35, 0.2] / 0.55.
    np.testing.assert_allclose(bayes_filter_update(belief, P, O, 0, 0), [7 / 11, 4 / 11])
    # From [0.25, 0.75], action 1: [0.25·0.1 + 0.75·0.9, 0.25·0.9 + 0.75·0.1] = [0.7, 0.3];
    # o = 1: [0.7·0.3, 0.3·0.6] = [0.21, 0.18] → [7/13, 6/13].
    np.testing.assert_allclose(bayes_filter_update(np.array([0.25, 0.75]), P, O, 1, 1), [7 / 13, 6 / 13])
    with pytest.raises(ValueError, match="observation 1"):
        bayes_filter_update(np.array([1.0, 0.0]), np.eye(2)[:, None, :], np.eye(2), 0, 1)  # cell 0 stays


def test_oracle_tracks_the_exact_belief_under_partial_observability():
    env = make_env("grid8x8")
    agent = OracleAgent(env, seed=0)
    assert not agent.fully_observed
    P, O = agent.P, agent.O
    obs, _ = env.reset(seed=3)
    agent.reset(obs)
    belief = np.eye(64)[env.unwrapped.start]
    for _ in range(15):
        action = agent.act(obs)
        np.testing.assert_allclose(agent.step_log()["expected_steps"], belief @ agent.q)
        assert action == int(np.argmin(belief @ agent.q))
        obs, _, terminated, truncated, _ = env.step(action)
        agent.observe(action, 0.0, obs, terminated, truncated)
        predicted = belief @ P[:, action]
        belief = predicted * O[:, obs] / (predicted @ O[:, obs])
        np.testing.assert_allclose(agent.belief, belief)
        if terminated:
            break


def test_oracle_needs_the_true_model():
    class NoModel:
        unwrapped = object()
        action_space = make_env("grid4x4").action_space
        observation_space = make_env("grid4x4").observation_space

    with pytest.raises(ValueError, match="transition_matrix"):
        OracleAgent(NoModel(), seed=0)


# ---- Q-learning ---------------------------------------------------------------------------------

def test_epsilon_schedules():
    assert epsilon_at(0, 1.0, 0.05, 0.5, "exponential") == 1.0
    assert epsilon_at(2, 1.0, 0.05, 0.5, "exponential") == 0.25
    assert epsilon_at(10, 1.0, 0.05, 0.5, "exponential") == 0.05
    assert epsilon_at(3, 1.0, 0.05, 0.25, "linear") == 0.25
    assert epsilon_at(4, 1.0, 0.05, 0.25, "linear") == 0.05
    with pytest.raises(ValueError, match="cosine"):
        epsilon_at(0, 1.0, 0.05, 0.5, "cosine")


def test_q_learning_target_bootstraps_unless_terminated():
    next_values = np.array([0.0, 2.0, 1.0])
    assert q_learning_target(1.0, next_values, 0.5, terminated=True) == 1.0
    assert q_learning_target(1.0, next_values, 0.5, terminated=False) == 2.0  # also when truncated


def test_q_learning_update_in_observe():
    env = make_env("grid4x4")
    agent = QLearningAgent(env, seed=0, config=QLearningConfig(learning_rate=0.5, discount=0.9))
    agent.q[1] = [0.0, 0.0, 0.0, 4.0]
    agent.reset(0)
    agent.act(0)
    agent.observe(3, 0.0, 1, terminated=False, truncated=True)
    assert agent.q[0, 3] == 0.5 * 0.9 * 4.0
    agent.act(14)
    agent.observe(3, 1.0, 15, terminated=True, truncated=False)
    assert agent.q[14, 3] == 0.5


def test_q_learning_improves_over_200_episodes():
    env = make_env("grid4x4")
    agent = make_agent("qlearning", env, seed=0)
    steps = play(env, agent, episodes=200, seed=0)
    assert np.mean(steps[-20:]) < np.mean(steps[:20])
    assert agent.epsilon == pytest.approx(0.05)


def test_q_learning_warm_up_uses_exactly_the_budget():
    env = make_env("grid4x4")
    agent = make_agent("qlearning", env, seed=0)
    assert agent.warm_up(env, 250, seed=0) == 250
    assert agent.episodes_started >= 3 and np.any(agent.q > 0)
    assert make_agent("random", env, seed=0).warm_up(env, 250, seed=0) == 0
    with pytest.raises(ValueError, match="-1"):
        agent.warm_up(env, -1, seed=0)


# ---- random, registry, SB3 ----------------------------------------------------------------------

def test_random_agent_is_uniform_and_seeded():
    env = make_env("grid4x4")
    actions = [RandomAgent(env, seed=7).act(0) for _ in range(3)]
    assert len(set(actions)) == 1  # same seed, same first action
    agent = RandomAgent(env, seed=7)
    counts = np.bincount([agent.act(0) for _ in range(4000)], minlength=4)
    assert np.all(np.abs(counts / 4000 - 0.25) < 0.03)


def test_registry_builds_agents_with_validated_configs():
    env = make_env("grid4x4")
    assert {"random", "qlearning", "oracle"} <= set(AGENTS)
    agent = make_agent("qlearning", env, seed=0, overrides={"learning_rate": 0.5})
    assert agent.config.learning_rate == 0.5 and agent.config.epsilon_schedule == "exponential"
    assert isinstance(make_agent("random", env, seed=0), RandomAgent)


@pytest.mark.parametrize("name, overrides, words", [
    ("sarsa", None, ["sarsa", "qlearning", "oracle", "random"]),
    ("qlearning", {"learnig_rate": 0.5}, ["learnig_rate", "learning_rate"]),
    ("qlearning", {"epsilon_schedule": "cosine"}, ["epsilon_schedule", "cosine"]),
    ("qlearning", {"discount": "high"}, ["discount"]),
    ("oracle", {"tie_break": "last"}, ["tie_break", "last"]),
    ("random", {"epsilon": 0.1}, ["random", "epsilon"]),
])
def test_registry_errors_name_the_bad_word(name, overrides, words):
    with pytest.raises(ValueError) as err:
        make_agent(name, make_env("grid4x4"), seed=0, overrides=overrides)
    assert all(word in str(err.value) for word in words), str(err.value)
    if name != "sarsa":
        assert isinstance(err.value, ConfigError)


def test_sb3_evaluate_policy_runs_the_oracle():
    env = DummyVecEnv([lambda: Monitor(make_env("grid4x4"))])
    agent = make_agent("oracle", make_env("grid4x4"), seed=0)
    rewards, lengths = evaluate_policy(agent, env, n_eval_episodes=3, return_episode_rewards=True)
    assert rewards == [1.0] * 3 and lengths == [6] * 3


def test_sb3_predict_keeps_the_oracle_belief_in_sync():
    env = make_env("grid8x8")
    agent = make_agent("oracle", env, seed=0)
    reference = make_agent("oracle", env, seed=0)
    obs, _ = env.reset(seed=5)
    reference.reset(obs)
    state = None
    for _ in range(10):
        action, state = agent.predict(np.array([obs]), state=state, episode_start=np.array([state is None]))
        np.testing.assert_allclose(agent.belief, reference.belief)  # both have seen the same history
        expected = reference.act(obs)
        assert action.tolist() == [expected]
        obs, _, terminated, truncated, _ = env.step(expected)
        reference.observe(expected, 0.0, obs, terminated, truncated)
        if terminated:
            break


def test_sb3_evaluate_policy_scores_q_learning_without_learning():
    env = make_env("grid4x4")
    agent = make_agent("qlearning", env, seed=0)
    play(env, agent, episodes=100, seed=0)
    table = agent.q.copy()
    vec_env = DummyVecEnv([lambda: Monitor(make_env("grid4x4"))])
    _, lengths = evaluate_policy(agent, vec_env, n_eval_episodes=2, return_episode_rewards=True)
    np.testing.assert_array_equal(agent.q, table)
    assert lengths == [6, 6]  # greedy on a learnt table
