"""The diffaif command line: the collect → train → eval-model → plan pipeline, the demo, and its errors."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from diffaif.cli import main
from diffaif.data import load_episodes

TINY = ["model.width=16", "model.depth=1", "model.heads=2", "model.length=6", "train.steps=3",
        "train.batch_size=16", "train.warmup_steps=0", "train.num_train_timesteps=100", "train.log_interval=1"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    assert main(["collect", "--env", "grid4x4", "--episodes", "3", "--out", str(root / "data")]) == 0
    assert main(["train", "--env", "grid4x4", "--data", str(root / "data"), "--out", str(root / "run"), *TINY]) == 0
    return root


def test_collect_writes_the_documented_npz(run):
    data = load_episodes(run / "data" / "episodes.npz")
    meta = json.loads((run / "data" / "meta.json").read_text())
    assert data.n_episodes == meta["episodes"] == 3 and meta["steps"] == data.n_steps
    assert meta["interactions"] == data.n_interactions == data.n_steps - 3
    # each episode ends on its last transition (the row before its final row), and only there
    last_transitions = np.append(data.episode_starts[1:], data.n_steps) - 2
    assert np.flatnonzero(data.terminated | data.truncated).tolist() == last_transitions.tolist()


def test_train_writes_a_loadable_run(run):
    for name in ("config.yaml", "encoding.json", "episodes.npz", "metrics.jsonl", "checkpoint.pt",
                 "model/world_model.json", "run.json"):
        assert (run / "run" / name).is_file(), name
    assert len((run / "run" / "metrics.jsonl").read_text().splitlines()) == 3


def test_eval_model_and_plan_fidelity_write_json(run):
    assert main(["eval-model", "--run", str(run / "run"), "--episodes", "2", "--horizon", "2", "--samples", "2",
                 "--steps", "2"]) == 0
    result = json.loads((run / "run" / "eval_model.json").read_text())
    assert len(result["obs_accuracy"]) == 2 and all(0 <= a <= 1 for a in result["obs_accuracy"])
    assert main(["plan", "--run", str(run / "run"), "--fidelity", "--episodes", "1", "planner.n_samples=2",
                 "planner.likelihood_samples=2", "planner.denoising_steps=1"]) == 0
    fidelity = json.loads((run / "run" / "fidelity.json").read_text())
    assert fidelity["decisions"] == len(fidelity["agree"]) > 0
    assert 0 <= fidelity["action_agreement"] <= 1


def test_demo_runs_the_comparison_with_the_aif_agent(tmp_path):
    out = tmp_path / "demo"
    assert main(["demo", "seeds=1", "episodes=1", "warmup_steps=40", f"out={out}", "progress=false",
                 "agent.aif.world_model.model.width=16", "agent.aif.world_model.model.depth=1",
                 "agent.aif.world_model.model.heads=2", "agent.aif.world_model.train.steps=2",
                 "agent.aif.world_model.train.batch_size=16", "agent.aif.world_model.train.warmup_steps=0",
                 "agent.aif.planner.n_samples=2", "agent.aif.planner.likelihood_samples=2"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["agents"]) == {"aif", "qlearning", "random", "oracle"}
    assert summary["agents"]["aif"]["env_steps"] >= 40          # the warm-up is charged to the agent
    assert summary["agents"]["aif"]["decision_ms_median"] > 0
    assert (out / "aif_action_probabilities.png").is_file() and (out / "aif_efe_per_action.png").is_file()


@pytest.mark.parametrize("argv, words", [
    (["compare", "--env", "grid5x5", "--episodes", "1"], ["unknown env 'grid5x5'; valid choices: ['grid4x4', 'grid8x8']"]),
    (["compare", "--agents", "oracle,sarsa", "--episodes", "1"], ["unknown agent 'sarsa'", "'qlearning'"]),
    (["compare", "--episodes", "1", "no_such_key=3"],
     ["unknown config key 'no_such_key'; valid keys here: ['agent', 'agent_env', 'agents', 'env'"]),
    (["compare", "--agents", "aif", "--episodes", "1", "agent.aif.planner.gama=3"],
     ["unknown config key 'planner.gama'", "'gamma'", "'n_samples'"]),
    (["train", "--env", "grid4x4", "--data", "/nonexistent", "--out", "{tmp}/x", "--model", "huge"],
     ["unknown model preset 'huge'; valid choices: [", "'tiny'"]),
    (["collect", "--env", "grid4x4", "--episodes", "1", "--policy", "greedy", "--out", "{tmp}/x"],
     ["unknown policy 'greedy'; valid choices: ['random']"]),
])
def test_bad_input_names_the_bad_word_and_the_valid_choices(argv, words, capsys, tmp_path):
    assert main([arg.replace("{tmp}", str(tmp_path)) for arg in argv]) == 2
    err = capsys.readouterr().err
    assert all(word in err for word in words), err


def test_eval_model_reports_per_dimension_errors_on_a_control_task(tmp_path):
    assert main(["collect", "--env", "Pendulum-v1", "--episodes", "2", "--out", str(tmp_path / "data")]) == 0
    assert main(["train", "--env", "Pendulum-v1", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "run"),
                 *TINY]) == 0
    assert main(["eval-model", "--run", str(tmp_path / "run"), "--episodes", "2", "--horizon", "3", "--context", "1",
                 "--samples", "4", "--steps", "2"]) == 0
    result = json.loads((tmp_path / "run" / "eval_model.json").read_text())
    # Pendulum never terminates within its 200 steps: 4 windows from each of the 2 episodes
    assert result["n_windows"] == 8 and result["context"] == 1
    for key in ("obs_abs_error", "obs_abs_error_persistence", "obs_spread"):
        values = np.array(result[key])
        assert values.shape == (3, 3) and np.isfinite(values).all() and (values >= 0).all(), key
    assert (np.array(result["obs_abs_error_persistence"]) > 0).all()


def test_grid_evaluation_of_a_control_model_names_the_right_function(tmp_path):
    from diffaif.envs import make_env
    from diffaif.model import WorldModel
    from diffaif.model.evaluate import evaluate_world_model

    assert main(["collect", "--env", "CartPole-v1", "--episodes", "2", "--out", str(tmp_path / "data")]) == 0
    assert main(["train", "--env", "CartPole-v1", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "run"),
                 *TINY]) == 0
    model = WorldModel.load(tmp_path / "run" / "model")
    with pytest.raises(ValueError, match="evaluate_continuous_world_model"):
        evaluate_world_model(model, make_env("CartPole-v1"))


def test_compare_help_states_the_harness_defaults(capsys):
    from diffaif.cli import COMPARE_DEFAULTS
    from diffaif.experiments.compare import CompareConfig

    defaults = CompareConfig(agents=CompareConfig().agents)
    assert COMPARE_DEFAULTS == (f"env {defaults.env}, agents {','.join(defaults.agents)}, {defaults.episodes} "
                                f"episodes, {defaults.seeds} seeds, out {defaults.out}")
    with pytest.raises(SystemExit):
        main(["collect", "--help"])
    assert "(default: 0)" in capsys.readouterr().out


def test_light_commands_import_no_torch():
    """--help and a random/oracle comparison import neither torch nor SB3 (start-up time, memory)."""
    code = ("import sys; from diffaif.cli import build_parser; build_parser(); "
            "from diffaif.experiments.compare import seeded_agent, CompareConfig; "
            "seeded_agent(CompareConfig(agents=['random', 'oracle', 'qlearning']), 'oracle', 0); "
            "print(sorted({'torch', 'stable_baselines3'} & set(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_the_aif_agent_gets_the_minigrid_env_options_it_needs_unless_stated():
    from diffaif.experiments.compare import CompareConfig, seeded_agent

    config = CompareConfig(env="MiniGrid-Empty-5x5-v0", agents=["aif", "random"], warmup_steps=1)
    env, _ = seeded_agent(config, "aif", 0)
    assert env.unwrapped is not None and env.obs_floor and env.obs_index == 0 and env.obs_mode == "state"
    random_env, _ = seeded_agent(config, "random", 0)
    assert not random_env.obs_floor and random_env.obs_mode == "view"  # other agents keep the env's defaults
    stated = CompareConfig(env="MiniGrid-Empty-5x5-v0", agents=["aif"], warmup_steps=1,
                           agent_env={"aif": {"obs_mode": "view"}}, agent={"aif": {"planner": {"preference": "sparse"}}})
    assert seeded_agent(stated, "aif", 0)[0].obs_mode == "view"


def test_parallel_seeds_write_the_same_results(tmp_path):
    argv = ["compare", "--env", "grid8x8", "--agents", "random,oracle,qlearning", "--episodes", "3", "--seeds", "3"]
    assert main([*argv, "--workers", "1", "--out", str(tmp_path / "w1")]) == 0
    assert main([*argv, "--workers", "2", "--out", str(tmp_path / "w2")]) == 0
    for name in ("summary.json", "episodes.csv", "steps.jsonl"):
        assert (tmp_path / "w1" / name).read_text() == (tmp_path / "w2" / name).read_text(), name


def test_eval_model_takes_the_sampler_overrides(run):
    out = run / "eval_eta.json"
    assert main(["eval-model", "--run", str(run / "run"), "--episodes", "2", "--horizon", "2", "--samples", "2",
                 "--steps", "2", "--eta", "0.5", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["sampler"]["eta"] == 0.5


CONTROL_AIF = {"world_model": {"model": {"length": 5, "width": 32, "depth": 1, "heads": 2},
                               "train": {"steps": 30, "batch_size": 32, "warmup_steps": 5, "left_pad": 1}},
               "planner": {"policies": {"kind": "cem", "horizon": 3, "n_candidates": 6,
                                        "cem": {"n_elite": 2, "iterations": 2}},
                           "context": 1, "n_samples": 8, "denoising_steps": 2},
               "model_preset": "control", "retrain": "never"}


def test_plan_fidelity_on_a_control_task_after_the_warm_up(tmp_path):
    import yaml

    from diffaif.config import ConfigError

    config = tmp_path / "cartpole.yaml"
    config.write_text(yaml.safe_dump({"env": "CartPole-v1", "warmup_steps": 40, "env_kwargs": {"max_episode_steps": 3},
                                      "agent": {"aif": {**CONTROL_AIF, "run_dir": str(tmp_path / "aif")}}}))
    out = tmp_path / "f.json"
    assert main(["plan", "--fidelity", "--config", str(config), "--episodes", "1", "--out", str(out), "seed=2"]) == 0
    result = json.loads(out.read_text())
    assert result["decisions"] == 3 and result["warmup_env_steps"] == 40 and result["seed"] == 2
    assert np.array(result["prediction_error"]).shape == (3, 4)
    with pytest.raises(ConfigError, match="no_such_key"):
        main(["--debug", "plan", "--fidelity", "--config", str(config), "--out", str(tmp_path / "g.json"),
              "no_such_key=1"])


def test_plan_fidelity_on_a_control_run(tmp_path):
    short = ["--env", "Pendulum-v1", "--env-option", "max_episode_steps=8"]
    assert main(["collect", *short, "--episodes", "3", "--out", str(tmp_path / "data")]) == 0
    assert main(["train", *short, "--data", str(tmp_path / "data"), "--out", str(tmp_path / "run"),
                 "--model", "control", *TINY]) == 0
    assert main(["plan", "--fidelity", "--run", str(tmp_path / "run"), "--episodes", "1",
                 "planner.n_samples=2", "planner.denoising_steps=1", "planner.context=1",
                 "planner.policies.kind=random", "planner.policies.horizon=2", "planner.policies.n_candidates=4"]) == 0
    result = json.loads((tmp_path / "run" / "fidelity.json").read_text())
    assert result["decisions"] == 8 and np.array(result["prediction_error"]).shape == (2, 3)


def test_plan_fidelity_on_minigrid_is_one_clear_line(tmp_path, capsys):
    config = tmp_path / "minigrid.yaml"
    config.write_text("env: MiniGrid-Empty-5x5-v0\nagents: [aif]\n")
    assert main(["plan", "--fidelity", "--config", str(config), "--out", str(tmp_path / "f.json")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "MiniGrid-Empty-5x5-v0 has neither" in err
    assert not (tmp_path / "f.json").exists()
