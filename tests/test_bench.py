import json

import pytest
import torch

from diffaif.envs import make_env
from diffaif.cli import main
from diffaif.experiments.bench import BenchConfig, denoising_curve, headline, run_bench, training_throughput
from diffaif.model import WorldModel

torch.set_num_threads(2)

TINY_MODEL = {"model": dict(length=6, width=32, depth=1, heads=2, mlp_ratio=2, steps=2),
              "train": dict(batch_size=16, num_train_timesteps=100, warmup_steps=0)}
PLANNER = {"n_samples": 2, "denoising_steps": 2, "context": 1, "likelihood_samples": 4, "mode": "masked",
           "policies": {"kind": "enumerate", "horizon": 2}}


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    """One bench run on a tiny model trained for 4 steps: (result, the config, its folder)."""
    folder = tmp_path_factory.mktemp("bench")
    config = BenchConfig(world_model=TINY_MODEL, planner=PLANNER, decisions=6, warmup=1, train_steps=4,
                         train_episodes=4, device="cpu", out=str(folder / "bench.json"), run_dir=str(folder / "train"))
    return run_bench(config), config, folder


def test_bench_reports_every_figure_with_its_setup(bench):
    result, config, folder = bench
    assert json.loads((folder / "bench.json").read_text()) == json.loads(json.dumps(result))
    setup = result["setup"]
    # enumerate with H=2 over 4 actions: K=16 candidates, one inpaint of 16 x 2 per decision, S net passes
    assert setup["K_candidates_per_decision"] == 16
    assert (setup["N_samples"], setup["S_denoising_steps"], setup["H_horizon"]) == (2, 2, 2)
    assert setup["forwards_per_decision"] == 2
    assert setup["window_tokens"] == 1 + 1 + 2          # context + present + horizon: the cropped window
    assert setup["forward_shapes"] == {"B=32,T=4,D=36": 2 * config.decisions}
    assert setup["device"] == "cpu" and setup["threads"] >= 1 and setup["torch"] == torch.__version__
    assert result["environment"]["torch"] == torch.__version__


def test_bench_figures_are_sane(bench):
    result, config, _ = bench
    latency, floor = result["latency"], result["floor"]
    assert latency["n"] == floor["n"] == config.decisions
    assert 0 < latency["min_ms"] <= latency["median_ms"] <= latency["p95_ms"] <= latency["max_ms"]
    assert 0 < floor["min_ms"] <= floor["median_ms"] <= floor["p95_ms"]
    # ratios are timing-dependent (no bound asserted on a shared CI machine), but they are the quotients
    assert result["ratio"]["median"] == pytest.approx(latency["median_ms"] / floor["median_ms"], rel=1e-6)
    rollouts = result["rollouts"]
    assert rollouts["rollouts_per_decision"] == 16 * 2 * 2
    assert rollouts["rollouts_per_second"] == pytest.approx(rollouts["trajectories_per_second"] * 2)
    assert rollouts["rollouts_per_second"] > 0
    training = result["training"]
    assert training["windows_per_second"] > 0 and training["timed_steps"] > 0 and training["batch_size"] == 16
    assert result["memory"]["max_rss_mib"] > 10 and result["memory"]["cuda_max_memory_allocated_mib"] is None
    assert result["model_source"]["train_steps"] == 4
    assert set(headline(result)) >= {"latency_median_ms", "latency_p95_ms", "floor_median_ms", "ratio_median",
                                     "rollouts_per_second", "train_windows_per_second", "K", "N", "S"}


def test_cli_main_on_a_pretrained_model(bench, tmp_path, capsys):
    _, config, folder = bench
    out = tmp_path / "cli.json"
    code = main(["bench", "--pretrained", str(folder / "train" / "model"), "--decisions", "3", "--warmup", "1",
                 "--train-steps", "0", "--out", str(out), "planner.n_samples=3", "planner.denoising_steps=1",
                 "planner.context=1", "planner.policies.horizon=1", "planner.likelihood_samples=4"])
    assert code == 0
    result = json.loads(out.read_text())
    assert result["setup"]["N_samples"] == 3 and result["setup"]["K_candidates_per_decision"] == 4
    assert "training" not in result and result["latency"]["n"] == 3
    assert json.loads(capsys.readouterr().out.splitlines()[0])["N"] == 3


def test_cli_bench_over_a_grid_of_samples_and_steps(bench, tmp_path):
    _, _, folder = bench
    out = tmp_path / "grid.json"
    code = main(["bench", "--pretrained", str(folder / "train" / "model"), "--decisions", "2", "--warmup", "1",
                 "--train-steps", "0", "--grid-n-samples", "2", "3", "--grid-denoising-steps", "1",
                 "--steps-curve", "1", "--curve-episodes", "2", "--curve-horizon", "2", "--curve-samples", "2",
                 "--out", str(out), "planner.context=1", "planner.policies.horizon=1", "planner.likelihood_samples=4"])
    assert code == 0
    summary = json.loads(out.read_text())
    assert [(line["file"], line["N"], line["S"]) for line in summary] == [("grid_N2_S1.json", 2, 1),
                                                                           ("grid_N3_S1.json", 3, 1)]
    first = json.loads((tmp_path / "grid_N2_S1.json").read_text())
    assert [p["steps"] for p in first["denoising_curve"]["points"]] == [1]   # the curve once, on the first point
    assert "denoising_curve" not in json.loads((tmp_path / "grid_N3_S1.json").read_text())


def test_cli_bench_learning_curve_refuses_the_grid(capsys):
    assert main(["bench", "--learning-curve", "--grid-n-samples", "2"]) == 2
    assert "--grid-n-samples" in capsys.readouterr().err


def test_cli_main_rejects_bad_config(capsys):
    assert main(["bench", "--device", "cpu", "--decisions", "1"]) == 2
    assert capsys.readouterr().err == "diffaif bench: error: decisions must be >= 2, warmup and floor_repeats >= 1\n"
    assert main(["bench", "planner_typo=3"]) == 2
    assert "unknown config key 'planner_typo'" in capsys.readouterr().err


def test_denoising_curve(bench):
    _, _, folder = bench
    model = WorldModel.load(folder / "train" / "model")
    curve = denoising_curve(model, make_env("grid4x4"), steps=[1, 2], n_episodes=2, horizon=2, n_samples=2)
    assert [p["steps"] for p in curve["points"]] == [1, 2]
    for point in curve["points"]:
        assert len(point["obs_accuracy"]) == 2 and all(0 <= a <= 1 for a in point["obs_accuracy"])
        assert point["seconds_per_call"] > 0
    assert curve["n_windows"] > 0 and curve["window_tokens"] == model.length


def test_training_throughput_reads_metrics(tmp_path):
    path = tmp_path / "metrics.jsonl"
    records = [{"step": 10, "loss": 2.0, "elapsed_s": 1.0}, {"step": 30, "loss": 1.0, "elapsed_s": 3.0}]
    path.write_text("\n".join(json.dumps(r) for r in [{"step": 99, "loss": 0, "elapsed_s": 0}] + records) + "\n")
    result = training_throughput(path, batch_size=8, skip=1)
    assert result["windows_per_second"] == pytest.approx(8 * 20 / 2.0)
    assert result["final_loss"] == 1.0
    with pytest.raises(ValueError):
        training_throughput(path, batch_size=8, skip=2)


def test_bench_config_validation():
    with pytest.raises(ValueError):
        BenchConfig(device="tpu")
    with pytest.raises(ValueError):
        BenchConfig(pretrained=None, train_steps=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_bench_on_cuda(bench, tmp_path):
    _, _, folder = bench
    result = run_bench(BenchConfig(pretrained=str(folder / "train" / "model"), planner=PLANNER, decisions=3, warmup=1,
                                   train_steps=4, train_episodes=4, world_model=TINY_MODEL, device="cuda",
                                   out=str(tmp_path / "cuda.json")))
    assert result["setup"]["device"].startswith("cuda")
    assert result["memory"]["cuda_max_memory_allocated_mib"] > 0
    assert result["latency"]["p95_ms"] >= result["latency"]["median_ms"] > 0
    assert result["training"]["train_device"].startswith("cuda")
