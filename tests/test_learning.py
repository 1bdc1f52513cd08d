"""The world model learns, uses the action, and samples as documented: planning-shaped training,
one-step sampling in time order, categorical draws, a training time budget."""
from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces

from diffaif.data import collect_episodes
from diffaif.data.encoding import PartSpec, TaskEncoding
from diffaif.model import ModelConfig, TrainConfig, train_world_model
from diffaif.model.evaluate import evaluate_categorical_world_model
from diffaif.model.train import absent_steps, budget_cosine_schedule, training_known_mask
from diffaif.model.world_model import draw_categorical, known_window, prediction_stages

torch.set_num_threads(2)


class Chain(gym.Env):
    """Three states in a ring; action 0 steps back, 1 stays, 2 steps forward (deterministic).
    The observation is the state; episodes are truncated after 12 steps."""

    observation_space = spaces.Discrete(3)
    action_space = spaces.Discrete(3)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.state, self.t = int(self.np_random.integers(3)), 0
        return self.state, {"state": self.state}

    def step(self, action):
        self.state, self.t = (self.state + int(action) - 1) % 3, self.t + 1
        return self.state, 0.0, False, self.t >= 12, {"state": self.state}


CHAIN_ENCODING = TaskEncoding([PartSpec("state", "categorical", 3), PartSpec("obs", "categorical", 3),
                               PartSpec("action", "categorical", 3)])
SEQUENTIAL = ModelConfig(length=5, width=32, depth=2, heads=2, mlp_ratio=2, steps=1, order="sequential",
                         position_from_end=True)
ONE_STEP_TRAIN = TrainConfig(steps=300, batch_size=64, lr=3e-3, warmup_steps=20, min_noise=0.99,
                             num_train_timesteps=100, scored_future=1, left_pad=1, log_interval=50,
                             checkpoint_interval=300)


@pytest.fixture(scope="module")
def chain_model(tmp_path_factory):
    data = collect_episodes(Chain(), 40, seed=0)
    return train_world_model(data, CHAIN_ENCODING, SEQUENTIAL, ONE_STEP_TRAIN, tmp_path_factory.mktemp("chain"),
                             progress=False)


def test_a_tiny_model_learns_the_chain_and_uses_the_action(chain_model):
    result = evaluate_categorical_world_model(chain_model, Chain(), n_episodes=10, horizon=3, n_samples=2,
                                              context=1, per_episode=4)
    assert result["obs_accuracy_sample"] == [1.0, 1.0, 1.0]
    # the same history with each action gives each successor: the action is used, not averaged over
    known, mask = known_window(CHAIN_ENCODING, 3, 1, [[0, 1]] * 3, [[2]] * 3, [[0], [1], [2]])
    samples = chain_model.inpaint(known, mask, 1, generator=torch.Generator().manual_seed(0))
    assert CHAIN_ENCODING.decode(samples[:, 0, 2])["obs"].tolist() == [0, 1, 2]


@pytest.mark.parametrize("order", ["joint", "sequential"])
@pytest.mark.parametrize("draw", [False, True])
def test_inpainting_never_changes_known_entries(chain_model, order, draw):
    known, mask = known_window(CHAIN_ENCODING, 5, 1, [[2, 0], [1, 1]], [[1], [0]], [[2, 2, 0], [1, 0, 0]])
    samples = chain_model.inpaint(known, mask, 3, generator=torch.Generator().manual_seed(0), order=order, draw=draw)
    expanded = mask[:, None].expand_as(samples)
    assert torch.equal(samples[expanded], known[:, None].expand_as(samples)[expanded])
    # every categorical block of the unknown part is a valid one-hot after the last step
    obs = CHAIN_ENCODING.slice("obs")
    if draw or order == "sequential":
        assert ((samples[..., obs] == 1).sum(-1) == 1).all()


def test_sequential_sampling_predicts_k_steps_from_sampled_ones(chain_model):
    # from state 0, three steps forward: 1, 2, 0; the one-step-trained model gets there only in time order
    known, mask = known_window(CHAIN_ENCODING, 5, 1, [[0]], np.zeros((1, 0), dtype=int), [[2, 2, 2, 2]])
    samples = chain_model.inpaint(known, mask, 2, generator=torch.Generator().manual_seed(0))
    assert CHAIN_ENCODING.decode(samples[0, :, 2:5])["obs"].tolist() == [[1, 2, 0]] * 2


def test_prediction_stages_follow_the_unknown_observations():
    known, mask = known_window(CHAIN_ENCODING, 5, 1, [[0, 1]], [[2]], [[1, 1, 1]])
    assert prediction_stages(mask, CHAIN_ENCODING.slice("obs")) == [2, 3, 4]


def test_draw_categorical_follows_the_softmax():
    logits = torch.log(torch.tensor([0.2, 0.5, 0.3])).expand(20000, 3)
    x = torch.zeros(20000, 9)
    z = torch.randn(20000, 9, generator=torch.Generator().manual_seed(0))
    full = torch.cat([logits, logits, logits], -1)
    drawn = draw_categorical(CHAIN_ENCODING, full, x, z)
    freq = (drawn[:, 3:6] > 0).float().mean(0)
    assert torch.allclose(freq, torch.tensor([0.2, 0.5, 0.3]), atol=0.01)
    assert ((drawn > 0).sum(-1) == 3).all()  # one hot entry per block
    # the same Gaussian draws give the same categorical draws (common random numbers)
    assert torch.equal(drawn, draw_categorical(CHAIN_ENCODING, full, x, z))


def test_training_masks_have_the_planner_pattern():
    x0 = torch.from_numpy(CHAIN_ENCODING.encode(np.array([[-1, 0, 1, 2, 0]]), np.array([[-1, 0, 1, 2, 0]]),
                                                np.array([[-1, 2, 2, 1, 1]]))).expand(4, -1, -1)
    absent = absent_steps(CHAIN_ENCODING, x0)
    assert absent[0].tolist() == [True, False, False, False, False]
    present = torch.tensor([[1], [2], [3], [1]])
    known, scored = training_known_mask(CHAIN_ENCODING, absent, present, 1.0, 0.0, torch.Generator().manual_seed(0),
                                        scored_future=1)
    obs, state, action = (CHAIN_ENCODING.slice(p) for p in ("obs", "state", "action"))
    assert known[:, :, action].all() and known[:, 0].all()          # every action, the absent step whole
    assert known[1, :, obs].all(-1).tolist() == [True, True, True, False, False]
    assert not known[:, 1:, state].any()                            # hidden states are inferred
    # scored: what is unknown up to one step after the present, nothing further
    assert scored[1, :, obs].all(-1).tolist() == [False, False, False, True, False]
    assert scored[1, :, state].all(-1).tolist() == [False, True, True, True, False]
    assert not (known & scored).any()


def test_max_seconds_stops_training_and_saves(tmp_path):
    data = collect_episodes(Chain(), 5, seed=0)
    config = TrainConfig(steps=100_000, batch_size=8, warmup_steps=0, num_train_timesteps=100, max_seconds=1.0,
                         log_interval=10_000, checkpoint_interval=10_000)
    train_world_model(data, CHAIN_ENCODING, ModelConfig(length=3, width=16, depth=1, heads=2), config, tmp_path,
                      progress=False)
    last = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[-1])
    assert 0 < last["step"] < 100_000 and 1.0 <= last["elapsed_s"] < 10
    assert (tmp_path / "model" / "world_model.json").is_file()


def test_budget_schedule_decays_with_time_as_with_steps():
    clock = [0.0]
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    schedule = budget_cosine_schedule(optimizer, warmup_steps=2, steps=1000, max_seconds=10.0, clock=lambda: clock[0])
    assert schedule.get_last_lr()[0] == pytest.approx(0.5)        # warm-up: (0 + 1) / 2
    for seconds, expected in ((0.0, 1.0), (5.0, 0.5), (10.0, 0.0), (20.0, 0.0)):
        clock[0] = seconds
        assert schedule.lr_lambdas[0](2) == pytest.approx(expected, abs=1e-9)
    clock[0] = 0.0
    assert schedule.lr_lambdas[0](501) == pytest.approx(0.5)      # halfway through the steps: cos(π/2)


def test_view_cells_map_back_to_minigrid_view_coordinates():
    from diffaif.envs import make_env
    from diffaif.model.evaluate import cells_seen_before, view_to_world

    env = make_env("MiniGrid-FourRooms-v0")
    obs, info = env.reset(seed=3)
    world = env.unwrapped
    for _ in range(20):
        cells = view_to_world(np.array([*world.agent_pos, world.agent_dir]), 7)
        assert [world.get_view_coords(int(i), int(j)) for i, j in cells] == [(k % 7, k // 7) for k in range(49)]
        obs, *_ = env.step(2)  # forward, or blocked
    # turning right at (4, 4): the view x 4..10, y 1..7 becomes x 1..7, y 4..10; the 4 x 4 overlap is
    # determined, except the agent's own cell; an unseen cell in either view is not
    before, after = np.array([4, 4, 0]), np.array([4, 4, 1])
    view = np.ones(49, dtype=int)
    seen = cells_seen_before(before, view, after, view, 7)
    assert not seen[6 * 7 + 3] and seen.sum() == 4 * 4 - 1
    hidden = view.copy()
    hidden[0] = 0  # the after view's top-left cell (7, 10) lies outside the overlap anyway
    hidden[6 * 7 + 0] = 0  # the after view's bottom-left cell: world (7, 4), inside the overlap
    assert cells_seen_before(before, view, after, hidden, 7).sum() == 4 * 4 - 2


def test_probabilities_come_with_the_samples(chain_model):
    known, mask = known_window(CHAIN_ENCODING, 5, 2, [[0, 1]], [[2]], [[2, 0]])   # index 0: before the start
    for order in ("joint", "sequential"):
        samples, probs = chain_model.inpaint(known, mask, 3, generator=torch.Generator().manual_seed(0),
                                             order=order, return_probs=True)
        assert probs.shape == samples.shape
        for part in ("state", "obs", "action"):
            block = probs[..., CHAIN_ENCODING.slice(part)]
            present = block.sum(-1) > 0      # steps before the episode start hold no distribution
            assert torch.allclose(block.sum(-1)[present], torch.ones(())) and (block >= 0).all()
        known_part = mask[:, None].expand_as(samples)
        assert torch.equal(probs[known_part], ((known[:, None].expand_as(samples) + 1) / 2)[known_part])
    assert (probs[0, :, 0] == 0).all()  # the absent step holds no distribution
    # the trained model is sure of the next observation: after 1 with action 2 comes 2
    assert probs[0, :, 3, CHAIN_ENCODING.slice("obs")].argmax(-1).tolist() == [2, 2, 2]
    with pytest.raises(ValueError, match="return_probs"):
        chain_model.inpaint(known, mask, 1, mode="repaint", return_probs=True)
