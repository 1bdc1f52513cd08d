"""Baselines on any gymnasium env: Q-learning on any discrete observation, SB3 DQN / PPO budgets and
spaces, the oracle on a tabular model ``P``, and the reward-based success flag."""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from diffaif.agents import AGENTS, OracleAgent, TabularOracleAgent, make_agent
from diffaif.agents.oracle import discounted_value_iteration, tabular_model
from diffaif.agents.qlearning import observation_key
from diffaif.envs import RewardSuccess, make_env
from diffaif.experiments.compare import CompareConfig, run_comparison, run_episode

LENGTH = 4  # corridor cells 0..3; the goal is cell 3
ENCODINGS = {
    "discrete": (gym.spaces.Discrete(LENGTH), lambda x: x),
    "multidiscrete": (gym.spaces.MultiDiscrete([2, 2]), lambda x: np.array([x // 2, x % 2])),
    "tuple": (gym.spaces.Tuple((gym.spaces.Discrete(2), gym.spaces.Discrete(2))), lambda x: (x // 2, x % 2)),
    "dict": (gym.spaces.Dict({"high": gym.spaces.Discrete(2), "low": gym.spaces.Discrete(2)}),
             lambda x: {"high": x // 2, "low": x % 2}),
    "integer box": (gym.spaces.Box(0, LENGTH - 1, (1,), dtype=np.int64), lambda x: np.array([x])),
}


class Corridor(gym.Env):
    """Cells 0..3, start 0; action 1 moves right, action 0 left; reward 1 and termination at cell 3.

    The cell is observed through ``encoding`` (a key of ENCODINGS), so every space carries the same state.
    """

    def __init__(self, encoding: str = "discrete", max_steps: int = 20):
        self.observation_space, self._encode = ENCODINGS[encoding]
        self.action_space = gym.spaces.Discrete(2)
        self.max_steps = max_steps

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.x, self.t = 0, 0
        return self._encode(self.x), {}

    def step(self, action):
        self.x = min(LENGTH - 1, self.x + 1) if int(action) == 1 else max(0, self.x - 1)
        self.t += 1
        terminated = self.x == LENGTH - 1
        return self._encode(self.x), float(terminated), terminated, self.t >= self.max_steps, {}


# ---- Q-learning on any discrete observation --------------------------------------------------------

def test_observation_key_flattens_every_discrete_space_to_one_tuple():
    for encoding, (space, encode) in ENCODINGS.items():
        keys = [observation_key(space, encode(x)) for x in range(LENGTH)]
        assert all(isinstance(k, tuple) and all(type(v) is int for v in k) for k in keys), encoding
        assert len(set(keys)) == LENGTH, encoding
    nested = gym.spaces.Dict({"a": gym.spaces.Tuple((gym.spaces.Discrete(3), gym.spaces.MultiBinary(2))),
                              "b": gym.spaces.Discrete(5)})
    assert observation_key(nested, {"a": (2, np.array([1, 0], dtype=np.int8)), "b": 4}) == (2, 1, 0, 4)


@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
def test_qlearning_learns_the_corridor_on_each_observation_space(encoding):
    env = Corridor(encoding)
    agent = make_agent("qlearning", env, seed=0, overrides={"learning_rate": 0.5, "discount": 0.9})
    assert agent.warm_up(env, 1500, seed=0) == 1500
    if agent.keys is not None:  # one row per cell, the goal included (met as a next observation)
        assert sorted(agent.keys.values()) == list(range(LENGTH))
    obs, _ = env.reset(seed=1)
    agent.reset(obs)
    agent.epsilon = 0.0
    for _ in range(LENGTH - 1):
        obs, reward, terminated, truncated, _ = env.step(agent.act(obs))
    assert terminated and reward == 1.0  # straight right: 3 steps


def test_qlearning_refuses_float_observations_in_one_line():
    with pytest.raises(ValueError, match=r"discrete observations.*float32 Box of shape \(6,\).*dqn or ppo") as err:
        make_agent("qlearning", make_env("Acrobot-v1"), seed=0)
    assert "\n" not in str(err.value)
    mixed = Corridor()
    mixed.observation_space = gym.spaces.Tuple((gym.spaces.Discrete(2), gym.spaces.Box(0, 1, (2,))))
    with pytest.raises(ValueError, match="float32 Box of shape"):
        make_agent("qlearning", mixed, seed=0)


# ---- SB3 DQN / PPO -----------------------------------------------------------------------------

@pytest.mark.parametrize("name, budget, overrides", [
    ("dqn", 101, {"learning_starts": 20, "train_freq": 4, "buffer_size": 500}),  # 101 is no multiple of 4
    ("ppo", 150, {"n_steps": 64, "batch_size": 32, "n_epochs": 1}),             # nor of 64
])
def test_sb3_agents_train_for_exactly_the_budget(name, budget, overrides):
    env = make_env("FrozenLake-v1")
    agent = make_agent(name, env, seed=0, overrides=overrides)
    assert agent.warm_up(env, budget, seed=0) == budget
    assert agent.model.num_timesteps == budget
    assert agent.warm_up(env, 7, seed=1) == 7  # a second call adds exactly its own budget
    assert env.action_space.contains(agent.act(0))


def test_ppo_is_registered_and_flattens_tuple_and_dict_observations():
    assert "ppo" in AGENTS
    for encoding in ("tuple", "dict"):
        env = Corridor(encoding)
        agent = make_agent("ppo", env, seed=0, overrides={"n_steps": 32, "batch_size": 16, "n_epochs": 1})
        assert agent.flatten
        assert agent.model.observation_space == gym.spaces.Box(0, 1, (4,), dtype=np.int64)
        assert agent.warm_up(env, 40, seed=0) == 40
        obs, _ = env.reset(seed=0)
        assert isinstance(agent.act(obs), int)
    dqn = make_agent("dqn", Corridor("dict"), seed=0, overrides={"learning_starts": 1})
    assert dqn.flatten and dqn.q_values({"high": 1, "low": 0}).shape == (2,)


@pytest.mark.parametrize("name, env_id, words", [
    ("dqn", "Pendulum-v1", ["'dqn'", "Discrete action space", "Box("]),
    ("sac", "FrozenLake-v1", ["'sac'", "Box action space", "Discrete(4)"]),
])
def test_sb3_agents_name_the_action_space_they_cannot_handle(name, env_id, words):
    with pytest.raises(ValueError) as err:
        make_agent(name, make_env(env_id), seed=0)
    assert all(word in str(err.value) for word in words) and "\n" not in str(err.value)


# ---- the oracle on a tabular model -------------------------------------------------------------------

def chain(slip: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """States 0 -> 1 -> 2: action 0 moves right (stays put with probability ``slip``), action 1 stays.
    Entering 2 pays 1 and ends the episode; 2 is absorbing."""
    P, R, done = np.zeros((3, 2, 3)), np.zeros((3, 2)), np.zeros((3, 2, 3))
    for s in (0, 1):
        P[s, 0, s + 1], P[s, 0, s] = 1 - slip, slip
        P[s, 1, s] = 1.0
    P[2, :, 2] = 1.0
    R[1, 0] = 1 - slip
    done[1, 0, 2] = 1.0
    return P, R, done


def test_discounted_value_iteration_on_a_deterministic_chain():
    q = discounted_value_iteration(*chain(slip=0.0), discount=0.9, tolerance=1e-12)
    np.testing.assert_allclose(q, [[0.9, 0.81], [1.0, 0.9], [0.0, 0.0]], atol=1e-10)


def test_discounted_value_iteration_on_a_slippery_chain():
    # V1 = 0.5 + 0.45 V1 = 10/11; V0 = 0.45 V1 + 0.45 V0 = 90/121; staying is worth 0.9 V
    q = discounted_value_iteration(*chain(slip=0.5), discount=0.9, tolerance=1e-13)
    np.testing.assert_allclose(q, [[90 / 121, 0.9 * 90 / 121], [10 / 11, 9 / 11], [0.0, 0.0]], atol=1e-10)
    P, R, _ = chain(slip=0.5)  # a terminal-state mask gives the same values as transition flags
    np.testing.assert_allclose(discounted_value_iteration(P, R, np.array([0.0, 0.0, 1.0]), 0.9, 1e-13), q, atol=1e-10)


def test_tabular_model_reads_frozenlake():
    P, R, done = tabular_model(make_env("FrozenLake-v1", is_slippery=False))
    assert P.shape == (16, 4, 16) and R.shape == (16, 4) and done.shape == (16, 4, 16)
    np.testing.assert_allclose(P.sum(axis=2), 1.0)
    assert P[14, 2, 15] == 1.0 and R[14, 2] == 1.0 and done[14, 2, 15] == 1.0  # right from 14: the goal
    assert done[4, 1, 8] == 0.0 and done[4, 2, 5] == 1.0  # 5 is a hole
    assert R.sum() == 1.0  # the goal is entered only from 14 (above it, 11, is a hole)


def test_oracle_reaches_the_frozenlake_goal_in_six_steps():
    env = make_env("FrozenLake-v1", is_slippery=False)
    agent = make_agent("oracle", env, seed=0)
    assert isinstance(agent, TabularOracleAgent)
    steps, success, ret, _ = run_episode(env, agent, reset_seed=0)
    assert (steps, success, ret) == (6, True, 1.0)


def test_oracle_picks_the_model_the_env_offers():
    assert isinstance(make_agent("oracle", make_env("grid4x4"), seed=0), OracleAgent)
    assert isinstance(make_agent("oracle", make_env("Taxi-v4"), seed=0), TabularOracleAgent)
    with pytest.raises(ValueError, match="oracle needs an env that exposes its model.*CartPoleEnv"):
        make_agent("oracle", make_env("CartPole-v1"), seed=0)


# ---- success of plain gymnasium envs -------------------------------------------------------------------

def test_reward_success_marks_the_goal_not_a_hole():
    env = make_env("FrozenLake-v1", is_slippery=False)
    assert isinstance(env, RewardSuccess)
    env.reset(seed=0)
    *_, terminated, _, info = env.step(1)  # down to 4
    assert info["success"] is False and not terminated
    *_, terminated, _, info = env.step(2)  # right into the hole at 5
    assert terminated and info["success"] is False
    env.reset(seed=0)
    for action in (1, 1, 2, 1, 2, 2):
        _, reward, terminated, _, info = env.step(action)
    assert terminated and reward == 1.0 and info["success"] is True


def test_reward_success_keeps_an_env_own_flag_and_wraps_plain_ids_only():
    class Flagged(Corridor):
        def step(self, action):
            obs, reward, terminated, truncated, info = super().step(action)
            return obs, reward, terminated, truncated, {"success": "own"}

    env = RewardSuccess(Flagged())
    env.reset(seed=0)
    assert env.step(1)[-1]["success"] == "own"
    for name in ("grid4x4", "CartPole-v1"):
        assert not isinstance(make_env(name), RewardSuccess)


def test_compare_reports_frozenlake_success_from_rewards(tmp_path):
    config = CompareConfig(env="FrozenLake-v1", agents=["oracle", "random", "qlearning"], episodes=5, seeds=1,
                           env_kwargs={"is_slippery": False}, out=str(tmp_path), progress=False, workers=1)
    summary = run_comparison(config)
    assert summary["agents"]["oracle"]["success_rate"] == 1.0
    assert summary["agents"]["oracle"]["return_mean"] == 1.0
    for name in ("random", "qlearning"):  # success exactly when the return is 1
        agent = summary["agents"][name]
        assert agent["success_rate"] == pytest.approx(agent["return_mean"])


def test_plain_ids_without_an_episode_cap_get_the_default_one():
    from diffaif.envs import DEFAULT_MAX_EPISODE_STEPS

    assert gym.spec("CliffWalking-v1").max_episode_steps is None
    env = make_env("CliffWalking-v1")
    env.reset(seed=0)
    steps, truncated = 0, False
    while not truncated:
        *_, truncated, _ = env.step(0)  # up against the top wall: never terminates
        steps += 1
    assert steps == DEFAULT_MAX_EPISODE_STEPS
    assert make_env("CliffWalking-v1", max_episode_steps=5).spec.max_episode_steps == 5
    assert make_env("FrozenLake-v1").spec.max_episode_steps == 100  # a registered cap stays
