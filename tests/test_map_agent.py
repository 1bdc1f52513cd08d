"""The view agent's pieces: belief map, visibility, shortest costs, reward hypotheses, map model, agent."""
import json
import math

import numpy as np
import pytest
import torch

from diffaif.agents import agent_config, agent_env_options, make_agent
from diffaif.agents.map_aif import MapAIFAgent
from diffaif.envs import make_env
from diffaif.envs.minigrid_task import ACTION_NAMES, CELL_NAMES, N_CELL_CODES, _CELL_LUT
from diffaif.model.map_model import MapModelConfig, train_map_model
from diffaif.planning.belief_map import OPAQUE_CODES, UNKNOWN, BeliefMap, view_visibility
from diffaif.planning.efe import dirichlet_novelty, revealed_information_gain
from diffaif.planning.map_planner import LocalRules, RuleTables, reward_surprise, shortest_costs

C = {name: i for i, name in enumerate(CELL_NAMES)}
RADIUS = 26


def _true_codes(env) -> np.ndarray:
    """The true grid's cell codes, [x, y]."""
    enc = env.unwrapped.grid.encode()
    return _CELL_LUT[enc[..., 0], np.minimum(enc[..., 2], 2)]


def _view_env(env_id: str, **options):
    return make_env(env_id, max_steps=100, compute_distance=True, **{**agent_env_options("aif_map", env_id), **options})


@pytest.mark.parametrize("env_id", ["MiniGrid-FourRooms-v0", "MiniGrid-MultiRoom-N2-S4-v0"])
def test_dead_reckoned_map_agrees_with_the_true_grid(env_id):
    env = _view_env(env_id)
    rng = np.random.default_rng(0)
    for episode in range(2):
        obs, info = env.reset(seed=episode)
        start = info["state"][:2]
        belief = BeliefMap(RADIUS)
        belief.reset(obs[:49].reshape(7, 7), obs[49])
        for _ in range(60):
            action, front = int(rng.integers(env.action_space.n)), belief.front()
            obs, _, terminated, truncated, info = env.step(action)
            if terminated or truncated:
                break
            view, direction = obs[:49].reshape(7, 7), obs[49]
            moved = ACTION_NAMES[env.actions[action]] == "forward" and \
                belief.moved_forward(view, direction, front not in OPAQUE_CODES)
            belief.move(moved, direction)
            belief.update(view, direction)
            y, x, d = belief.pose
            assert (x - RADIUS + start[0], y - RADIUS + start[1], d) == tuple(info["state"][:3])
        truth, (width, height) = _true_codes(env), (env.unwrapped.width, env.unwrapped.height)
        ys, xs = np.nonzero(belief.cells != UNKNOWN)
        wx, wy = xs - RADIUS + start[0], ys - RADIUS + start[1]
        inside = (wx >= 0) & (wx < width) & (wy >= 0) & (wy < height) & \
            ~((wx == env.unwrapped.agent_pos[0]) & (wy == env.unwrapped.agent_pos[1]))
        assert inside.sum() > 20
        assert np.array_equal(belief.cells[ys[inside], xs[inside]], truth[wx[inside], wy[inside]])


def test_view_visibility_is_minigrids_process_vis():
    env = make_env("MiniGrid-FourRooms-v0")
    for seed in range(15):
        env.reset(seed=seed)
        world = env.unwrapped
        _, visible = world.gen_obs_grid()
        top_x, top_y, _, _ = world.get_view_exts()
        grid = world.grid.slice(top_x, top_y, 7, 7)
        for _ in range(world.agent_dir + 1):
            grid = grid.rotate_left()
        enc = grid.encode()
        opaque = np.isin(_CELL_LUT[enc[..., 0], np.minimum(enc[..., 2], 2)].T, OPAQUE_CODES)
        opaque[6, 3] = False
        assert np.array_equal(view_visibility(opaque[None])[0], visible.T)


def _minigrid_rules() -> LocalRules:
    """The rules as MiniGrid has them, for the codes of Empty, LavaGap, FourRooms and MultiRoom."""
    rules = LocalRules()
    for code, outcome in [("empty", "pass"), ("door_open", "pass"), ("goal", "goal"), ("lava", "trap"),
                          ("wall", "block"), ("door_closed", "block")]:
        rules.record("forward", C[code], C["empty"], outcome)
    rules.record("toggle", C["door_closed"], C["empty"], (C["door_open"], C["empty"]))
    return rules


@pytest.mark.parametrize("env_id", ["MiniGrid-Empty-8x8-v0", "MiniGrid-LavaGapS5-v0", "MiniGrid-FourRooms-v0",
                                    "MiniGrid-MultiRoom-N2-S4-v0"])
def test_shortest_costs_on_the_true_map_are_the_bfs_distances(env_id):
    env = make_env(env_id, max_steps=100)
    tables = RuleTables.build(_minigrid_rules(), ["left", "right", "forward", "pickup", "toggle"])
    for seed in range(3):
        _, info = env.reset(seed=seed)
        cells = _true_codes(env).T                                   # [y, x]
        goal = torch.from_numpy(tables.goal[:, cells[None]].transpose(1, 0, 2, 3))
        enter = torch.from_numpy(tables.enter[:, cells[None]].transpose(1, 0, 2, 3))
        pickup = torch.from_numpy(tables.pickup[:, cells[None]].transpose(1, 0, 2, 3))
        stop = torch.where(goal[:, :, None].expand(-1, -1, 4, -1, -1), 0.0, math.inf).double()
        costs = shortest_costs(stop, enter, pickup, step=1.0)
        x, y, d = info["state"][:3]
        assert float(costs[0, 0, d, y, x]) == info["distance"]


def test_reward_surprise_hand_values():
    marginals = np.zeros((1, 5, N_CELL_CODES))
    marginals[0, 0, C["goal"]] = 1.0                                # seen goal
    marginals[0, 1, C["empty"]] = 1.0                               # seen empty
    marginals[0, 2, C["goal"]], marginals[0, 2, C["empty"]] = 0.3, 0.7
    marginals[0, 3, C["goal"]], marginals[0, 3, C["empty"]] = 0.1, 0.9
    marginals[0, 4, C["ball"]] = 1.0                                # seen, never stepped on
    known = np.array([[True, True, False, False, True]])
    reward = np.zeros(N_CELL_CODES)
    reward[C["goal"]], reward[C["ball"]] = 1.0, 0.5
    surprise = reward_surprise(marginals, known, reward)
    assert surprise[0, 0] == 0 and surprise[0, 1] == math.inf and surprise[0, 4] == pytest.approx(math.log(2))
    assert np.allclose(surprise[0, 2:4], [-math.log(0.75), -math.log(0.25)])


def test_rule_tables_hold_untried_cells_as_possible_rewards():
    tables = RuleTables.build(_minigrid_rules(), ["left", "right", "forward"])
    assert tables.reward[C["goal"]] == 1.0 and tables.reward[C["empty"]] == 0.0 and tables.reward[C["wall"]] == 0.0
    assert tables.reward[C["key"]] == 0.5 and tables.reward[UNKNOWN] == 0.0


def test_map_information_gain_and_novelty_hand_values():
    entropy = torch.tensor([[math.log(2), math.log(3), 1.0]])
    assert torch.isclose(revealed_information_gain(entropy, torch.tensor([[True, True, False]])),
                         torch.tensor([math.log(6)])).all()
    assert dirichlet_novelty(torch.tensor(0.0)) == 0.5                  # (2 − 1) / (2 · (0 + 1))
    assert dirichlet_novelty(torch.tensor(3.0), n_outcomes=3, alpha=1.0) == pytest.approx(2 / 12)
    with pytest.raises(ValueError, match="n_outcomes"):
        dirichlet_novelty(torch.tensor(1.0), n_outcomes=1)


def test_local_rules_fall_back_to_pooled_counts_and_round_trip():
    rules = _minigrid_rules()
    assert rules.outcome("forward", C["empty"], C["key"]) == "pass"     # never tried with a key: pooled
    assert rules.count("forward", C["empty"], C["key"]) == 0
    rules.record("pickup", C["key"], C["empty"], (C["empty"], C["key"]))
    assert rules.carried_codes() == [C["empty"], C["key"]]
    again = LocalRules.from_state_dict(rules.state_dict())
    assert again.counts == rules.counts


def test_map_model_learns_to_inpaint_walls():
    """Rooms of 3x3 empty cells between walls every 4th row and column: the hidden cells are inferred."""
    size = 21
    grid = np.full((size, size), C["empty"])
    grid[::4, :], grid[:, ::4] = C["wall"], C["wall"]
    config = MapModelConfig(width=16, depth=3, steps=250, batch_size=16, crop=12)
    inpainter, log = train_map_model([grid] * 4, N_CELL_CODES, UNKNOWN, config)
    assert log["steps"] == 250
    hidden = np.zeros_like(grid, dtype=bool)
    hidden[6:15, 6:15] = True
    partial = np.where(hidden, UNKNOWN, grid)
    guess = inpainter.marginals(partial).argmax(-1)
    assert (guess[hidden] == grid[hidden]).mean() > 0.9
    samples = inpainter.inpaint(partial, 2, 3, torch.Generator().manual_seed(0))
    assert (samples[:, ~hidden] == grid[~hidden]).all() and not (samples == UNKNOWN).any()


def test_view_agent_solves_empty_and_reloads(tmp_path):
    env = _view_env("MiniGrid-Empty-5x5-v0")
    agent = make_agent("aif_map", env, 0, {"max_warmup_steps": 150, "model": {"width": 16, "depth": 2, "steps": 60}})
    assert agent.warm_up(env, 10_000, seed=1) == 150 and agent.inpainter is not None
    for episode in range(2):
        obs, info = env.reset(seed=100 + episode)
        agent.reset(obs, info)
        for _ in range(30):
            action = agent.act(obs)
            obs, reward, terminated, truncated, info = env.step(action)
            agent.observe(action, reward, obs, terminated, truncated, info)
            if terminated or truncated:
                break
        assert info["success"]
    assert agent.rules.outcome("forward", C["goal"], C["empty"]) == "goal"
    agent.save(tmp_path / "agent")
    loaded = MapAIFAgent.load(tmp_path / "agent", env)
    assert loaded.rules.counts == agent.rules.counts and len(loaded.maps) == len(agent.maps)
    obs, info = env.reset(seed=7)
    agent.reset(obs, info)
    loaded.reset(obs, info)
    agent.act(obs)
    loaded.act(obs)
    assert np.allclose(agent._plan.q, loaded._plan.q)


def test_view_agent_learns_for_a_budget():
    env = _view_env("MiniGrid-Empty-5x5-v0")
    agent = MapAIFAgent(env, 0, agent_config("aif_map", {"max_warmup_steps": 80, "model": {"width": 16, "steps": 20}}))
    assert agent.learn(120) is agent and agent.inpainter is not None and len(agent.maps) >= 4
    with pytest.raises(ValueError, match="total_env_steps"):
        agent.learn(0)


def test_view_agent_refuses_the_compact_state():
    env = make_env("MiniGrid-Empty-5x5-v0", obs_mode="state")
    with pytest.raises(ValueError, match="observes the view and direction only"):
        make_agent("aif_map", env, 0)


def test_belief_experiment_writes_the_share_seen_and_figures(tmp_path):
    from diffaif.cli import main

    out = tmp_path / "belief"
    assert main(["belief", "--env", "MiniGrid-Empty-5x5-v0", "--seeds", "1", "--episodes", "1", "--out", str(out),
                 "warmup_steps=100", "agent.model.steps=20", "agent.model.width=16"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    for row in summary["weights"].values():
        seen = row["seen_per_step"]
        assert 0 < seen[0] <= seen[-1] <= 1 and all(b >= a for a, b in zip(seen, seen[1:]))
    assert (out / "belief_map.png").stat().st_size > 0 and (out / "seen.png").stat().st_size > 0
    assert main(["belief", "--out", str(out), "info_gain_weights=[]"]) == 2      # an existing folder, a bad list


def test_local_rules_reject_an_unknown_forward_outcome():
    with pytest.raises(ValueError, match="forward outcome"):
        LocalRules().record("forward", C["empty"], C["empty"], "moved")
