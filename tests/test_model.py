import json

import numpy as np
import pytest
import torch

from diffaif.data import collect_episodes, grid_encoding
from diffaif.envs import make_env
from diffaif.model import (ModelConfig, ScoreNet, TrainConfig, TrainingDivergedError, WorldModel, known_window,
                           load_checkpoint, train_world_model)
from diffaif.model.evaluate import _planning_windows, evaluate_world_model, histogram, total_variation
from diffaif.model.train import training_known_mask, x0_loss
from diffaif.model.world_model import epsilon_from_output, predicted_x0

torch.set_num_threads(2)

TINY = dict(length=6, width=32, depth=1, heads=2, mlp_ratio=2, steps=3, jump_length=1, jump_n_sample=2)


def tiny_train(**overrides) -> TrainConfig:
    base = dict(steps=4, batch_size=16, warmup_steps=0, log_interval=1, checkpoint_interval=2,
                num_train_timesteps=100)
    return TrainConfig(**{**base, **overrides})


@pytest.fixture(scope="module")
def env():
    return make_env("grid4x4")


@pytest.fixture(scope="module")
def data(env):
    return collect_episodes(env, 20, seed=0)


@pytest.fixture(scope="module")
def models(env, data, tmp_path_factory):
    """One tiny trained model per mode."""
    encoding = grid_encoding(env)
    return {mode: train_world_model(data, encoding, ModelConfig(mode=mode, **TINY), tiny_train(),
                                    tmp_path_factory.mktemp(mode), progress=False)
            for mode in ("masked", "repaint")}


def planning_batch(model, batch=3):
    policies = np.array([[3, 3, 1], [1, 1, 3], [3, 1, 3]])[:batch]
    return known_window(model.encoding, model.length, 2, np.zeros((batch, 1), dtype=int),
                        np.zeros((batch, 0), dtype=int), policies)


def test_score_net_shapes_and_save_load(tmp_path):
    net = ScoreNet(dim=10, length=5, width=16, depth=1, heads=2, mask_channel=True)
    x = torch.randn(3, 5, 10)
    mask = torch.zeros(3, 5, 10, dtype=torch.bool)
    assert net(x, torch.tensor([1, 2, 3]), mask).shape == (3, 5, 10)
    torch.nn.init.normal_(net.output.weight)  # non-zero output, so the round trip is a real check
    net.save_pretrained(tmp_path / "net", safe_serialization=True)
    assert (tmp_path / "net" / "diffusion_pytorch_model.safetensors").is_file()
    again = ScoreNet.from_pretrained(tmp_path / "net")
    assert torch.equal(again(x, 7, mask), net(x, 7, mask))
    with pytest.raises(ValueError, match="needs a mask"):
        net(x, 1)


def test_known_window_layout(env):
    enc = grid_encoding(env)
    known, mask = known_window(enc, 6, 2, [[4, 5]], [[3]], [[1, 1]])
    obs, act, state = enc.slice("obs"), enc.slice("action"), enc.slice("state")
    # index 0: absent token (history shorter than the context), fully known
    assert mask[0, 0].all() and (known[0, 0] == -1).all()
    np.testing.assert_array_equal(known[0, 1:3, obs].argmax(-1), [4, 5])
    np.testing.assert_array_equal(known[0, 1:4, act].argmax(-1), [3, 1, 1])
    assert mask[0, 1:3, obs].all() and not mask[0, 3:, obs].any()
    assert mask[0, 1:4, act].all() and not mask[0, 4:, act].any()
    assert not mask[0, 1:, state].any()
    with pytest.raises(ValueError, match="policy"):
        known_window(enc, 6, 2, [[4]], np.zeros((1, 0), dtype=int), [[1, 1, 1, 1, 1]])


def test_training_known_mask_covers_whole_parts_and_mixes_patterns(env):
    enc = grid_encoding(env)
    absent = torch.zeros(400, 6, dtype=torch.bool)
    present = torch.randint(0, 5, (400, 1), generator=torch.Generator().manual_seed(1))
    mask, scored = training_known_mask(enc, absent, present, 0.5, 0.25, torch.Generator().manual_seed(0))
    assert mask.shape == scored.shape == (400, 6, enc.dim)
    for part in ("state", "obs", "action"):
        block = mask[..., enc.slice(part)]
        assert (block.all(-1) | ~block.any(-1)).all()  # a part of a step is known entirely or not at all
    planning = mask[..., enc.slice("action")].all((1, 2)) & ~mask[..., enc.slice("state")].any((1, 2))
    empty = ~mask.any((1, 2))
    # shares 0.5 planning, 0.25 nothing known, 0.25 random subsets (some of which look like neither)
    assert 0.4 < planning.float().mean() < 0.65 and 0.15 < empty.float().mean() < 0.35
    assert torch.equal(scored, ~mask)  # without scored_future every unknown entry is scored


@pytest.mark.parametrize("mode", ["masked", "repaint"])
def test_inpaint_contract(models, mode):
    model = models[mode]
    known, mask = planning_batch(model)
    samples = model.inpaint(known, mask, n_samples=4, generator=torch.Generator().manual_seed(0))
    assert samples.shape == (3, 4, model.length, model.encoding.dim)
    expanded = mask[:, None].expand_as(samples)
    assert torch.equal(samples[expanded], known[:, None].expand_as(samples)[expanded])


@pytest.mark.parametrize("mode", ["masked", "repaint"])
def test_shared_noise_gives_identical_rows(models, mode):
    model = models[mode]
    known, mask = planning_batch(model, batch=1)
    known, mask = known.expand(3, -1, -1), mask.expand(3, -1, -1)
    shared = model.inpaint(known, mask, 4, generator=torch.Generator().manual_seed(1), shared_noise=True)
    assert torch.equal(shared[0], shared[1]) and torch.equal(shared[0], shared[2])
    assert not torch.equal(shared[0, 0], shared[0, 1])  # samples still differ from each other
    independent = model.inpaint(known, mask, 4, generator=torch.Generator().manual_seed(1))
    assert not torch.equal(independent[0], independent[1])


def test_masked_mode_needs_mask_channel(models):
    known, mask = planning_batch(models["repaint"])
    with pytest.raises(ValueError, match="mask channel"):
        models["repaint"].inpaint(known, mask, 2, mode="masked")


@pytest.mark.parametrize("mode", ["masked", "repaint"])
def test_save_load_bit_identical_samples(models, tmp_path, mode):
    from dataclasses import replace

    model = models[mode]
    model.save(tmp_path / "wm")
    loaded = WorldModel.load(tmp_path / "wm")  # ScoreNet.from_pretrained (safetensors)
    known, mask = planning_batch(model)
    a = model.inpaint(known, mask, 3, generator=torch.Generator().manual_seed(5))
    b = loaded.inpaint(known, mask, 3, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    if mode == "repaint":  # the guided sampler (backward passes) is deterministic too
        guided = [WorldModel(m.net, m.encoding, replace(m.config, guidance=5.0, eta=1.0), m.noise)
                  .inpaint(known, mask, 3, generator=torch.Generator().manual_seed(5)) for m in (model, loaded)]
        assert torch.equal(*guided)
    model.save(tmp_path / "wm")  # overwriting an existing save works
    assert loaded.encoding == model.encoding and loaded.config == model.config


def test_corrupt_checkpoints_are_named(models, tmp_path):
    models["masked"].save(tmp_path / "wm")
    weights = tmp_path / "wm" / "score_net" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(ValueError, match="score_net"):
        WorldModel.load(tmp_path / "wm")
    models["masked"].save(tmp_path / "wm2")
    (tmp_path / "wm2" / "world_model.json").write_text("{not json")
    with pytest.raises(ValueError, match="world_model.json"):
        WorldModel.load(tmp_path / "wm2")
    models["masked"].save(tmp_path / "wm3")
    meta = json.loads((tmp_path / "wm3" / "world_model.json").read_text())
    meta["config"]["mode"] = "repaint"  # mismatch: the net has a mask channel
    (tmp_path / "wm3" / "world_model.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="does not match"):
        WorldModel.load(tmp_path / "wm3")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        WorldModel.load(tmp_path / "nowhere")
    bad = tmp_path / "checkpoint.pt"
    bad.write_bytes(b"garbage")
    with pytest.raises(ValueError, match="checkpoint.pt"):
        load_checkpoint(bad)


def test_resume_continues_from_saved_step(env, data, tmp_path):
    encoding = grid_encoding(env)
    config = ModelConfig(mode="masked", **TINY)
    # a constant lr, so that a 4-step run is the start of the 6-step run (a cosine schedule depends on the length)
    full = train_world_model(data, encoding, config, tiny_train(steps=6, lr_schedule="constant"), tmp_path / "full",
                             progress=False)
    train_world_model(data, encoding, config, tiny_train(steps=4, lr_schedule="constant"), tmp_path / "part",
                      progress=False)
    assert load_checkpoint(tmp_path / "part" / "checkpoint.pt")["step"] == 4
    resumed = train_world_model(data, encoding, config, tiny_train(steps=6, lr_schedule="constant"),
                                tmp_path / "part", resume=True, progress=False)
    steps = [json.loads(line)["step"] for line in (tmp_path / "part" / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6]
    assert load_checkpoint(tmp_path / "part" / "checkpoint.pt")["step"] == 6
    for p, q in zip(full.net.parameters(), resumed.net.parameters()):
        assert torch.equal(p, q)  # same batches, noise and optimizer state as the uninterrupted run


def test_nan_loss_stops_with_clear_error(env, data, tmp_path):
    encoding = grid_encoding(env)
    config = ModelConfig(mode="repaint", **TINY)
    with pytest.raises(TrainingDivergedError, match=r"step \d+.*checkpoint.pt \(step \d+\)"):
        train_world_model(data, encoding, config, tiny_train(steps=50, lr=1e30, checkpoint_interval=1, grad_clip=1e30,
                                                             prediction_type="epsilon"), tmp_path, progress=False)
    state = load_checkpoint(tmp_path / "checkpoint.pt")
    assert all(torch.isfinite(v).all() for v in state["net"].values())
    WorldModel.load(tmp_path / "model")


def test_training_decreases_loss(env, data, tmp_path):
    encoding = grid_encoding(env)
    train_world_model(data, encoding, ModelConfig(mode="masked", **TINY),
                      tiny_train(steps=150, lr=3e-3, batch_size=64, log_interval=50, checkpoint_interval=150),
                      tmp_path, progress=False)
    losses = [json.loads(line)["loss"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert len(losses) == 3 and losses[-1] < 0.7 * losses[0]


def test_evaluate_reports_per_step_metrics(models, env):
    result = evaluate_world_model(models["masked"], env, n_episodes=3, horizon=3, n_samples=4, per_episode=2)
    assert len(result["obs_accuracy"]) == 3 and len(result["obs_tvd"]) == 3
    assert all(0 <= a <= 1 for a in result["obs_accuracy"] + result["obs_tvd"])
    assert result["obs_tvd_floor"] == [0.0, 0.0, 0.0]  # grid4x4 is deterministic: one draw is exact


def test_continuous_action_windows_stay_within_their_episode():
    # no uniform draw exists for a Box action beyond a terminated episode's end: such windows are skipped
    data = collect_episodes(make_env("CartPole-v1"), 3, seed=0)
    items = _planning_windows(data, context=2, horizon=3, per_episode=50, n_actions=None,
                              rng=np.random.default_rng(0))
    lengths = np.diff(np.array(data.episode_bounds()), axis=1)[:, 0]
    assert len(items) == sum(n - 3 for n in lengths)  # every t in 0..n-4 of each episode, and no other
    for item in items:
        a, _ = data.episode_bounds()[item["episode"]]
        t = a + item["t"]
        np.testing.assert_array_equal(item["future_obs"], data.observations[t + 1:t + 4])
        np.testing.assert_array_equal(item["policy"], data.actions[t:t + 3])


def test_x0_parametrisation_and_loss(env):
    enc = grid_encoding(env)
    logits = torch.zeros(1, 2, enc.dim)
    x0_hat = predicted_x0(enc, logits)
    torch.testing.assert_close(x0_hat[..., enc.slice("obs")], torch.full((1, 2, 16), 2 / 16 - 1))
    x0 = torch.from_numpy(enc.encode(np.array([[1, -1]]), np.array([[2, -1]]), np.array([[3, -1]])))
    unknown = torch.ones_like(x0, dtype=torch.bool)
    # uniform logits: cross-entropy log K per predicted part; the absent step (index -1) is not predicted
    expected = (2 * np.log(16) + np.log(4)) / 3
    torch.testing.assert_close(x0_loss(enc, logits, x0, unknown), torch.tensor(expected, dtype=torch.float32))
    # the three parametrisations give the same noise estimate for the same x_t, x0, eps
    alpha_bar = torch.tensor(0.3)
    eps = torch.randn(1, 2, enc.dim)
    x_t = alpha_bar.sqrt() * x0 + (1 - alpha_bar).sqrt() * eps
    v = alpha_bar.sqrt() * eps - (1 - alpha_bar).sqrt() * x0
    torch.testing.assert_close(epsilon_from_output(x0, x_t, alpha_bar, "sample"), eps)
    torch.testing.assert_close(epsilon_from_output(v, x_t, alpha_bar, "v_prediction"), eps)


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
def test_other_prediction_types_train_and_sample(env, data, tmp_path, prediction_type):
    model = train_world_model(data, grid_encoding(env), ModelConfig(mode="masked", **TINY),
                              tiny_train(steps=2, prediction_type=prediction_type), tmp_path, progress=False)
    known, mask = planning_batch(model)
    for mode in ("masked", "repaint"):
        samples = model.inpaint(known, mask, 2, mode=mode, generator=torch.Generator().manual_seed(0))
        assert torch.isfinite(samples).all()


def test_histogram_and_total_variation():
    hist = histogram(np.array([[0, 1, 1, 1]]), 3)
    np.testing.assert_allclose(hist, [[0.25, 0.75, 0.0]])
    np.testing.assert_allclose(total_variation(hist, np.array([[0.5, 0.5, 0.0]])), [0.25])


def test_window_belief_uses_what_the_window_shows():
    from diffaif.model.evaluate import window_beliefs

    env = make_env("grid8x8").unwrapped
    P, O = env.transition_matrix(), env.observation_matrix()
    start = np.eye(env.n_cells)[env.start]
    flat = np.full(env.n_cells, 1 / env.n_cells)
    # a history shorter than context + 1 shows the episode start: the start prior, as the full-episode filter
    short = dict(obs_history=np.array([0, 1]), action_history=np.array([3]))
    from diffaif.data import filter_beliefs
    np.testing.assert_allclose(window_beliefs(short, start, flat, P, O, context=2),
                               filter_beliefs(start, P, O, [0, 1], [3])[-1])
    # a full window may start anywhere: the occupancy prior, so a lone dark-cell observation stays ambiguous
    full = dict(obs_history=np.array([27, 27, 27]), action_history=np.array([0, 1]))
    belief = window_beliefs(full, start, flat, P, O, context=2)
    np.testing.assert_allclose(belief, filter_beliefs(flat, P, O, [27, 27, 27], [0, 1])[-1])
    assert belief.max() < 0.9


def test_repaint_reconstruction_guidance(models):
    from dataclasses import replace

    model = models["repaint"]
    known, mask = planning_batch(model)
    plain = model.inpaint(known, mask, 2, generator=torch.Generator().manual_seed(3))
    guided_model = WorldModel(model.net, model.encoding, replace(model.config, guidance=5.0), model.noise)
    guided = guided_model.inpaint(known, mask, 2, generator=torch.Generator().manual_seed(3))
    assert torch.isfinite(guided).all() and not torch.equal(guided, plain)
    expanded = mask[:, None].expand_as(guided)
    assert torch.equal(guided[expanded], known[:, None].expand_as(guided)[expanded])
    assert all(not p.requires_grad or p.grad is None for p in model.net.parameters())  # no gradient left behind
    with pytest.raises(ValueError, match="guidance"):
        ModelConfig(guidance=-1.0)


def test_bf16_runtime_samples_close_to_fp32_and_keeps_known_entries():
    from diffaif.model.world_model import NoiseSchedule, build_score_net
    enc = grid_encoding(make_env("grid4x4").unwrapped)
    model = WorldModel(build_score_net(enc, ModelConfig(length=4, width=16, depth=1, heads=2)), enc,
                       ModelConfig(length=4, width=16, depth=1, heads=2), NoiseSchedule())
    known = torch.zeros(2, 4, enc.dim)
    mask = torch.zeros_like(known, dtype=torch.bool)
    known[:, 0, :16], mask[:, 0, :16] = -1.0, True
    known[:, 0, 3] = 1.0
    fp32 = model.inpaint(known, mask, 3, steps=2, generator=torch.Generator().manual_seed(0))
    bf16 = model.set_runtime("bf16").inpaint(known, mask, 3, steps=2, generator=torch.Generator().manual_seed(0))
    assert bf16.dtype == torch.float32 and torch.equal(bf16[:, :, 0, :16], fp32[:, :, 0, :16])
    assert (bf16 - fp32).abs().max() < 0.1          # the same sampler, rounded matmuls
    with pytest.raises(ValueError, match="precision must be one of"):
        model.set_runtime("fp8")
