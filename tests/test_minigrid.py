"""MiniGrid adapter, BFS oracle and DQN baseline: fast checks (tiny envs, few steps)."""
from __future__ import annotations

import copy
import warnings
from collections import deque

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from diffaif.agents import AGENTS, BFSOracleAgent, QLearningAgent, make_agent
from diffaif.envs import MiniGridTask, make_env
from diffaif.envs.minigrid_task import CELL_NAMES, N_CELL_CODES, STATE_FIELDS, default_actions
from diffaif.experiments.compare import run_episode

EMPTY, DOORKEY, LAVA = "MiniGrid-Empty-8x8-v0", "MiniGrid-DoorKey-5x5-v0", "MiniGrid-LavaGapS5-v0"


def brute_force_steps(env: MiniGridTask) -> float:
    """Fewest actions to the goal by BFS over deep copies of the real MiniGrid env (independent of ShortestPaths)."""
    world = env.unwrapped

    def signature(w):
        carried = None if w.carrying is None else w.carrying.encode()
        return tuple(int(v) for v in w.agent_pos), int(w.agent_dir), carried, w.grid.encode().tobytes()

    queue, seen = deque([(copy.deepcopy(world), 0)]), {signature(world)}
    while queue:
        w, depth = queue.popleft()
        for action in env.actions:
            nxt = copy.deepcopy(w)
            nxt.step_count = 0
            _, reward, terminated, _, _ = nxt.step(action)
            if terminated:
                if reward > 0:
                    return depth + 1
                continue
            sig = signature(nxt)
            if sig not in seen:
                seen.add(sig)
                queue.append((nxt, depth + 1))
    return np.inf


def play(env, agent, seed):
    obs, info = env.reset(seed=seed)
    agent.reset(obs, info)
    steps, done, distances = 0, False, [info["distance"]]
    while not done:
        action = agent.act(obs)
        obs, reward, terminated, truncated, info = env.step(action)
        agent.observe(action, reward, obs, terminated, truncated, info)
        distances.append(info["distance"])
        steps, done = steps + 1, terminated or truncated
    return steps, info, distances


@pytest.mark.parametrize("name", [EMPTY, DOORKEY, LAVA])
def test_check_env_passes(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # gymnasium notes that the env is a wrapper
        check_env(make_env(name), skip_render_check=True)


@pytest.mark.parametrize("options", [{"obs_mode": "state"}, {"obs_direction": True}, {"obs_index": 500}])
def test_check_env_passes_other_observations(options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_env(make_env(DOORKEY, **options), skip_render_check=True)


def test_make_env_routes_minigrid_ids():
    assert isinstance(make_env(EMPTY), MiniGridTask)
    assert isinstance(make_env("minigrid:" + EMPTY), MiniGridTask)
    env = make_env(EMPTY, max_steps=7, obs_mode="state")  # an env option and a wrapper option
    assert env.unwrapped.max_steps == 7 and env.obs_mode == "state"
    with pytest.raises(ValueError, match="bad env option"):
        make_env(EMPTY, no_such_option=1)
    with pytest.raises(ValueError, match="unknown MiniGrid env"):
        make_env("MiniGrid-NoSuchTask-v0")


def test_action_subsets():
    assert make_env(EMPTY).action_names == ["left", "right", "forward"]
    assert make_env(LAVA).action_space.n == 3
    assert make_env(DOORKEY).action_names == ["left", "right", "forward", "pickup", "toggle"]
    assert len(default_actions("MiniGrid-Playground-v0")) == 7
    env = make_env(EMPTY, actions=["forward", "right"])
    obs, info = env.reset(seed=0)  # start (1, 1) facing right
    _, _, _, _, info = env.step(0)
    assert tuple(info["state"][:3]) == (2, 1, 0)
    _, _, _, _, info = env.step(1)
    assert info["state"][2] == 1
    with pytest.raises(ValueError, match="unknown MiniGrid action"):
        make_env(EMPTY, actions=["jump"])


@pytest.mark.parametrize("name", [EMPTY, DOORKEY, LAVA])
def test_state_and_view_shapes_and_ranges(name):
    env = make_env(name)
    obs, info = env.reset(seed=3)
    assert obs.shape == (49,) and obs.dtype == np.int64 and env.observation_space.contains(obs)
    assert info["state"].shape == (len(STATE_FIELDS),) and env.state_space.contains(info["state"])
    rng = np.random.default_rng(0)
    for _ in range(30):
        obs, _, terminated, truncated, info = env.step(int(rng.integers(env.action_space.n)))
        assert env.observation_space.contains(obs) and env.state_space.contains(info["state"])
        assert obs.min() >= 0 and obs.max() < N_CELL_CODES
        if terminated or truncated:
            obs, info = env.reset()
    world = env.unwrapped
    state = dict(zip(STATE_FIELDS, info["state"]))
    assert (state["agent_x"], state["agent_y"], state["agent_dir"]) == (*map(int, world.agent_pos), world.agent_dir)
    assert world.grid.get(state["goal_x"], state["goal_y"]).type == "goal"
    assert "mission" not in info


def test_view_is_egocentric():
    env = make_env(EMPTY)
    obs, info = env.reset(seed=0)  # (1, 1) facing right along the top wall
    view = env.view_grid(obs)
    wall, empty = CELL_NAMES.index("wall"), CELL_NAMES.index("empty")
    assert (view[:, 2] == wall).all()  # the top wall runs along the agent's left
    assert (view[0] == wall).all()  # the far right wall, six cells ahead
    assert view[6, 3] == empty and (view[1:, 4:] == empty).all()


def test_doorkey_state_tracks_key_and_door():
    env = make_env(DOORKEY)
    oracle = make_agent("bfs_oracle", env, seed=0)
    obs, info = env.reset(seed=1)
    oracle.reset(obs, info)
    state = dict(zip(STATE_FIELDS, info["state"]))
    assert state["door_state"] == 3 and state["key_present"] == 1 and state["carried_type"] == 0
    seen = [info["state"]]
    done = False
    while not done:
        obs, _, terminated, truncated, info = env.step(oracle.act(obs))
        seen.append(info["state"])
        done = terminated or truncated
    seen = np.array(seen)
    fields = {f: i for i, f in enumerate(STATE_FIELDS)}
    assert 1 in seen[:, fields["carried_type"]]  # picked the key up
    assert seen[-1, fields["key_present"]] == 0 and seen[-1, fields["door_state"]] == 1  # unlocked, open


def test_bfs_oracle_empty_8x8_takes_exactly_11_steps():
    env = make_env(EMPTY)
    agent = make_agent("bfs_oracle", env, seed=0)
    for seed in (0, 1):
        steps, info, distances = play(env, agent, seed)
        assert steps == 11 and info["success"] and distances[0] == 11 and distances[-1] == 0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bfs_oracle_doorkey_is_optimal(seed):
    env = make_env(DOORKEY)
    agent = make_agent("bfs_oracle", env, seed=0)
    env.reset(seed=seed)
    optimum = brute_force_steps(env)
    steps, info, distances = play(env, agent, seed)
    assert info["success"] and steps == optimum == distances[0]
    assert np.array_equal(np.diff(distances), -np.ones(steps))  # distance falls by one each step


def test_distance_with_all_actions_matches_brute_force():
    env = make_env(DOORKEY, actions=list(range(7)))  # drop and done included
    env.reset(seed=2)
    env.step(2)
    _, _, _, _, info = env.step(0)
    assert info["distance"] == brute_force_steps(env)


def test_lava_distance_and_success():
    env = make_env(LAVA)
    agent = make_agent("bfs_oracle", env, seed=0)
    steps, info, _ = play(env, agent, seed=0)
    assert info["success"] and steps == 6
    for seed in range(20):  # a layout whose lava column blocks the row the agent starts on
        _, info = env.reset(seed=seed)  # (1, 1) facing right
        gap_x, gap_y = info["state"][13:15]
        if gap_y != 1:
            break
    world = env.unwrapped
    assert world.grid.get(gap_x, gap_y) is None and world.grid.get(gap_x, 1).type == "lava" and gap_x == 2
    _, reward, terminated, _, info = env.step(2)  # forward into the lava
    assert terminated and reward == 0 and not info["success"] and info["distance"] == np.inf


def test_run_episode_harness_with_bfs_oracle():
    env = make_env(DOORKEY)
    agent = make_agent("bfs_oracle", env, seed=0)
    steps, success, ret, distances = run_episode(env, agent, reset_seed=5)
    assert success and steps == distances[0] and ret > 0


def test_qlearning_runs_on_the_hidden_state_via_obs_index():
    env = make_env("MiniGrid-Empty-5x5-v0", obs_mode="state", obs_index=1_000, max_steps=50)
    agent = make_agent("qlearning", env, seed=0)
    assert isinstance(agent, QLearningAgent)
    used = agent.warm_up(env, 500, seed=0)
    assert used == 500 and np.count_nonzero(agent.q) > 0 and len(env._index) > 10
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    env2 = make_env(EMPTY, obs_mode="state", obs_index=3)
    env2.reset(seed=0)
    with pytest.raises(RuntimeError, match="obs_index"):
        for _ in range(10):
            env2.step(2)
            env2.step(1)


def test_fixed_layout_seeds():
    env = make_env("MiniGrid-FourRooms-v0", seeds=[4])
    _, first = env.reset(seed=0)
    _, again = env.reset(seed=123)
    assert np.array_equal(first["state"], again["state"])


def test_dqn_warm_up_and_act():
    pytest.importorskip("stable_baselines3")
    assert "dqn" in AGENTS and "bfs_oracle" in AGENTS
    env = make_env(EMPTY, max_steps=50)
    agent = make_agent("dqn", env, seed=0, overrides={"learning_starts": 50, "buffer_size": 1000,
                                                     "target_update_interval": 100, "net_arch": [32]})
    assert agent.warm_up(env, 200, seed=1) == 200
    obs, info = env.reset(seed=0)
    agent.reset(obs, info)
    for _ in range(5):
        action = agent.act(obs)
        assert env.action_space.contains(action)
        assert len(agent.step_log()["q_values"]) == env.action_space.n
        obs, *_ = env.step(action)
    action, _ = agent.predict(obs, deterministic=True)
    assert env.action_space.contains(int(action))


def test_bfs_oracle_needs_a_minigrid_task():
    with pytest.raises(ValueError, match="MiniGridTask"):
        BFSOracleAgent(make_env("grid4x4"))
