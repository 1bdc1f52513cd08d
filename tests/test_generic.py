"""Any gymnasium env: spaces flattened into the world model's parts, the reward observed and preferred,
no hidden state needed; one env per observation space type trains a tiny model and plans a step."""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from diffaif.agents import make_agent
from diffaif.envs import make_env
from diffaif.model.evaluate import evaluate_any_world_model
from diffaif.data.encoding import (PartSpec, TaskEncoding, flat_observation, observation_part, reward_index,
                                   space_kind)
from diffaif.data.episodes import EpisodeData, model_view, windows
from diffaif.planning.continuous import RewardPreference
from diffaif.planning.planner import FactoredEFEPlanner, PlannerConfig
from diffaif.tasks import task_planning
from diffaif.tasks.generic import decoded_observations, generic_planning, reward_preference, reward_values

LENGTH = 4   # chain cells 0..3; action 1 moves right, 0 left; reaching cell 3 pays 1 and ends the episode
SPACES = {
    "Discrete": gym.spaces.Discrete(LENGTH),
    "MultiDiscrete": gym.spaces.MultiDiscrete([LENGTH, 2]),
    "MultiBinary": gym.spaces.MultiBinary(LENGTH),
    "Box": gym.spaces.Box(0.0, 1.0, (2,), dtype=np.float32),
    "Dict": gym.spaces.Dict({"cell": gym.spaces.Discrete(LENGTH), "parity": gym.spaces.MultiBinary(1)}),
    "Tuple": gym.spaces.Tuple((gym.spaces.Discrete(LENGTH), gym.spaces.Discrete(2))),
}


class Chain(gym.Env):
    """A corridor of ``LENGTH`` cells shown through ``observation_space``; no ``info["state"]``."""

    def __init__(self, space: gym.Space, step_cap: int = 12):
        self.observation_space, self.action_space = space, gym.spaces.Discrete(2)
        self.step_cap = step_cap

    def _observe(self):
        kind, cell = type(self.observation_space).__name__, self.cell
        return {"Discrete": cell, "MultiDiscrete": np.array([cell, cell % 2]),
                "MultiBinary": np.eye(LENGTH, dtype=np.int8)[cell],
                "Box": np.array([cell / LENGTH, 0.5], dtype=np.float32),
                "Dict": {"cell": cell, "parity": np.array([cell % 2], dtype=np.int8)},
                "Tuple": (cell, cell % 2)}[kind]

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.cell, self.steps = 0, 0
        return self._observe(), {}

    def step(self, action):
        self.cell = int(np.clip(self.cell + (1 if int(action) == 1 else -1), 0, LENGTH - 1))
        self.steps += 1
        terminated = self.cell == LENGTH - 1
        return self._observe(), float(terminated), terminated, self.steps >= self.step_cap, {}


TINY = {"world_model": {"model": {"width": 32, "depth": 1, "heads": 2, "length": 5},
                        "train": {"steps": 400, "batch_size": 32, "warmup_steps": 0, "checkpoint_interval": 1000}},
        "planner": {"n_samples": 8}, "retrain": "never"}


# ---- spaces → parts ---------------------------------------------------------------------------
def test_nested_spaces_flatten_in_a_fixed_order():
    space = SPACES["Dict"]
    np.testing.assert_array_equal(flat_observation(space, {"parity": np.array([1]), "cell": 2}), [2, 1])
    part = observation_part(space, reward_values=(0.0, 1.0))
    assert part.factors == (LENGTH, 2, 3) and part.kind == "categorical"      # cell, parity, reward (none, 0, 1)
    assert observation_part(SPACES["MultiBinary"], None).factors == (2,) * LENGTH
    box = observation_part(SPACES["Box"], ())
    assert (box.kind, box.size, box.reward_values) == ("continuous", 3, ())
    start = gym.spaces.Discrete(3, start=-1)                                    # indices count from the start
    assert flat_observation(start, -1).tolist() == [0]
    mixed = gym.spaces.Tuple((gym.spaces.Discrete(2), gym.spaces.Box(0, 1, (1,))))
    with pytest.raises(ValueError, match="mixes discrete and continuous"):
        space_kind(mixed)
    with pytest.raises(ValueError, match="no encoding of the space"):
        space_kind(gym.spaces.Text(5))


def test_reward_categories_and_model_observations():
    assert reward_index(np.array([np.nan, 0.0, 1.0, 0.9, -3.0]), (0.0, 1.0)).tolist() == [0, 1, 2, 2, 1]
    enc = TaskEncoding([observation_part(SPACES["Discrete"], (0.0, 1.0)), PartSpec("action", "categorical", 2)])
    assert not enc.has_state
    seen = enc.model_observations(np.array([[0], [1], [3]]), [np.nan, 0.0, 1.0])
    assert seen.tolist() == [[0, 0], [1, 1], [3, 2]]
    assert TaskEncoding.from_dict(enc.to_dict()) == enc
    with pytest.raises(ValueError, match="only the observation carries the reward"):
        PartSpec("state", "categorical", 3, factors=(3,), reward_values=(1.0, 2.0))
    with pytest.raises(ValueError, match="needs the parts"):
        TaskEncoding([PartSpec("action", "categorical", 2)])
    with pytest.raises(ValueError, match="anchored dimensions need a hidden state"):
        TaskEncoding([PartSpec("obs", "continuous", 2), PartSpec("action", "categorical", 2)], anchored=[0])


def test_model_view_appends_the_reward_received_once():
    data = EpisodeData.empty(-1, np.array([0]), 0)
    for rewards in ([0.0, 1.0], [0.0]):
        data.start_episode(-1, np.array([0]))
        for k, r in enumerate(rewards):
            data.append_transition(1, r, r > 0, False, -1, np.array([k + 1]))
    np.testing.assert_array_equal(data.received_rewards(), [np.nan, 0.0, 1.0, np.nan, 0.0])
    assert reward_values(data) == (0.0, 1.0)
    enc = TaskEncoding([observation_part(SPACES["Discrete"], reward_values(data)), PartSpec("action", "categorical", 2)])
    view = model_view(data, enc)
    assert view.observations[:, 1].tolist() == [0, 1, 2, 0, 1]
    assert model_view(view, enc) is view                                        # already the model's view
    # windows: the final step shows the reward paid on arriving; its absorbing repeats show none
    rewards = enc.decode_part(windows(view, enc, length=3, left_pad=0).numpy(), "obs")[..., 1]
    assert rewards[:3].tolist() == [[0, 1, 2], [1, 2, 0], [2, 0, 0]]            # the terminated episode


def test_reward_preference_is_the_reward_scaled_by_the_precision():
    log_p = reward_preference((-1.0, 0.0, 20.0), precision=0.5)
    assert torch.logsumexp(log_p, 0).item() == pytest.approx(0.0, abs=1e-6)
    differences = (log_p[1:] - log_p[1]).tolist()
    assert differences == pytest.approx([0.0, 0.5, 10.5], abs=1e-5)          # λ·(r − r_min)
    assert log_p[0].item() == pytest.approx(log_p[2].item())                   # none received: reward 0
    obs = torch.tensor([[0.3, -1.0], [0.3, 2.0]])
    assert RewardPreference().log_density(obs, 2.0).tolist() == [-2.0, 4.0]


def test_the_generic_family_takes_envs_no_other_family_knows():
    config = PlannerConfig()
    task = task_planning(Chain(SPACES["Dict"]), config)
    assert task.model_preset == "categorical"
    assert task.observation({"cell": 1, "parity": np.array([1])}).tolist() == [1, 1]
    assert task_planning(Chain(SPACES["Box"]), config).model_preset == "control"
    # the preference "reward" hands a known family's task to the generic family (the reward as preference)
    reward = PlannerConfig(preference="reward")
    assert task_planning(make_env("grid4x4"), reward).model_preset == "categorical"
    assert task_planning(make_env("grid4x4"), config).model_preset == "tiny"
    with pytest.raises(ValueError, match="needs Discrete actions"):
        env = Chain(SPACES["Discrete"])
        env.action_space = gym.spaces.MultiDiscrete([2, 2])
        generic_planning(env, config)


class PackedChain(Chain):
    """The corridor with its cell and parity packed into one index the env decodes (as Taxi does)."""

    def __init__(self):
        super().__init__(gym.spaces.Discrete(2 * LENGTH))

    def _observe(self):
        return 2 * self.cell + self.cell % 2

    def decode(self, index):
        yield index // 2
        yield index % 2


def test_an_index_the_env_decodes_is_observed_decoded():
    task = task_planning(PackedChain(), PlannerConfig())
    assert task.observation(7).tolist() == [3, 1] and task.observation(4).tolist() == [2, 0]
    space, decode = decoded_observations(PackedChain())
    assert space == gym.spaces.MultiDiscrete([LENGTH, 2])
    assert decoded_observations(Chain(SPACES["Discrete"])) is None   # no decode: taken as it is
    taxi = decoded_observations(gym.make("Taxi-v3" if "Taxi-v3" in gym.registry else "Taxi-v4"))
    assert taxi[0] == gym.spaces.MultiDiscrete([5, 5, 5, 4])      # row, column, passenger, destination

# ---- a tiny model per space type plans a step -------------------------------------------------
@pytest.mark.parametrize("kind", sorted(SPACES))
def test_an_env_of_each_space_type_trains_and_plans(kind, tmp_path):
    env = Chain(SPACES[kind])
    steps = {**TINY["world_model"]["train"], "steps": 40}
    agent = make_agent("aif", env, seed=0, overrides={**TINY, "world_model": {**TINY["world_model"], "train": steps},
                                                      "run_dir": str(tmp_path)})
    agent.learn(total_env_steps=90, warmup_steps=80)
    enc = agent.model.encoding
    assert not enc.has_state and enc.parts["obs"].reward_values is not None
    obs, info = env.reset(seed=0)
    agent.reset(obs, info)
    assert env.action_space.contains(agent.act(obs))
    assert np.isfinite(agent.step_log()["G_chosen" if kind == "Box" else "efe_per_action"]).all()


def test_a_tiny_model_learns_to_walk_to_the_reward(tmp_path):
    """The planner (one step ahead plus the tail value over observed transitions) walks straight to the
    rewarded cell once its world model has learnt the corridor from random play."""
    env = Chain(SPACES["Discrete"])
    agent = make_agent("aif", env, seed=0, overrides={**TINY, "run_dir": str(tmp_path)})
    agent.learn(total_env_steps=600, warmup_steps=600)
    assert isinstance(agent.planner, FactoredEFEPlanner) and agent.planner.tail is not None
    obs, info = env.reset(seed=1)
    agent.reset(obs, info)
    for step in range(LENGTH - 1):
        action = agent.act(obs)
        obs, reward, terminated, truncated, info = env.step(action)
        agent.observe(action, reward, obs, terminated, truncated, info)
        assert action == 1, f"step {step}: moved left"
    assert terminated and reward == 1.0
    # eval-model on a state-less encoding whose observations carry the reward received
    result = evaluate_any_world_model(agent.model, env, n_episodes=10, horizon=2, context=1, n_samples=8)
    assert result["obs_accuracy"][0] > 0.95 > result["obs_accuracy_persistence"][0]
