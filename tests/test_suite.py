"""diffaif suite (diffaif.experiments.suite) and diffaif pretrain (diffaif.experiments.pretrain), on tiny
budgets (fast, CPU): what each suite writes, the control baselines' rl-zoo hyperparameters, the
published-budget run, MountainCar's reach, and pretraining with its resumption."""
import json

import pytest

from diffaif.agents import agent_config
from diffaif.cli import SUITES, main
from diffaif.config import build_config, preset_path
from diffaif.experiments import suite
from diffaif.experiments.compare import CompareConfig

# rl-baselines3-zoo hyperparams/dqn.yml and sac.yml (the values the task configs must give the baseline)
RL_ZOO = {
    "cartpole": {"learning_rate": 2.3e-3, "batch_size": 64, "buffer_size": 100_000, "learning_starts": 1000,
                 "gamma": 0.99, "target_update_interval": 10, "train_freq": 256, "gradient_steps": 128,
                 "exploration_fraction": 0.16, "exploration_final_eps": 0.04, "net_arch": [256, 256]},
    "mountaincar": {"learning_rate": 4e-3, "batch_size": 128, "buffer_size": 10_000, "learning_starts": 1000,
                    "gamma": 0.98, "target_update_interval": 600, "train_freq": 16, "gradient_steps": 8,
                    "exploration_fraction": 0.2, "exploration_final_eps": 0.07, "net_arch": [256, 256]},
    "pendulum": {"learning_rate": 1e-3, "batch_size": 256, "learning_starts": 100, "tau": 0.005, "gamma": 0.99,
                 "train_freq": 1, "gradient_steps": 1, "ent_coef": "auto", "net_arch": [256, 256]},
}
EMPTY = "MiniGrid-Empty-5x5-v0"
TINY_MODEL = ["model.width=16", "model.depth=1", "model.heads=2", "model.length=6", "train.batch_size=8",
              "train.warmup_steps=0", "train.num_train_timesteps=100", "train.checkpoint_interval=10"]


def test_the_cli_names_the_suites_of_the_module():
    assert SUITES == suite.SUITES


def test_grid_suite_writes_summary_table_and_plot(tmp_path):
    out = tmp_path / "grid"
    assert main(["suite", "grid", "--quick", "--out", str(out), "agents=[random,oracle]", "episodes=2"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["suite"] == "grid" and summary["quick"] and summary["command"].startswith("diffaif suite grid")
    assert list(summary["tasks"]) == ["grid4x4", "grid8x8"] and summary["tasks"]["grid8x8"]["random"]["seeds"] == 1
    oracle = [r for r in summary["rows"] if r["agent"] == "oracle"]
    assert [r["steps_over_oracle"] for r in oracle] == [1.0, 1.0]
    table = (out / "table.md").read_text()
    assert table.startswith("| task | agent |") and "| grid8x8 | oracle | 1.00 |" in table and "1 × 2" in table
    assert (out / "success.png").is_file() and (out / "grid4x4" / "episodes.csv").is_file()
    assert main(["suite", "grid", "--out", str(out)]) == 2                      # no silent overwrite


@pytest.mark.parametrize("argv, words", [
    (["suite", "grid", "--tasks", "grid5x5"], "unknown task 'grid5x5'"),
    (["suite", "grid", "--published-only"], "--published-only is an option of the control suite"),
    (["suite", "control", "--tasks", "cartpole", "no_such_key=1"], "unknown config key 'no_such_key'"),
    (["suite", "minigrid", "--tasks", "grid4x4"], "not MiniGrid ids"),
])
def test_suite_refuses_bad_input_before_writing(argv, words, tmp_path, capsys):
    assert main([*argv, "--out", str(tmp_path / "x")]) == 2
    assert words in capsys.readouterr().err and not (tmp_path / "x").exists()


def test_minigrid_suite_pretrains_once_and_charges_it(tmp_path):
    out = tmp_path / "mg"
    argv = ["suite", "minigrid", "--quick", "--device", "cpu", "--out", str(out), "--tasks", EMPTY,
            "pretrain_interactions=60", "compare.episodes=1", "compare.warmup_steps=60",
            "compare.agents=[aif,random,bfs_oracle]", "compare.env_kwargs.max_steps=5",
            "compare.agent.aif.planner.policies.horizon=3", "compare.agent.aif.planner.policies.n_candidates=2",
            "compare.agent.aif.planner.policies.n_random=2", "compare.agent.aif.planner.n_samples=2",
            "compare.agent.aif.planner.denoising_steps=1",
            *(f"world_model.{t}" for t in [*TINY_MODEL, "train.steps=3"])]
    assert main(argv) == 0
    rows = json.loads((out / "summary.json").read_text())["rows"]
    by_agent = {r["agent"]: r for r in rows}
    assert set(by_agent) == {"aif", "random", "bfs_oracle"}
    assert by_agent["aif"]["env_steps"] >= 60                    # the world model's data is charged
    assert by_agent["bfs_oracle"]["steps_over_oracle"] == 1.0
    record = out / "pretrain" / EMPTY / "pretrain.json"
    made = record.stat().st_mtime_ns
    assert main([*argv, "--overwrite"]) == 0                     # same settings: the model is reused
    assert record.stat().st_mtime_ns == made


def test_pretrain_trains_and_resumes(tmp_path, capsys):
    common = ["pretrain", "--env", EMPTY, "--model", "minigrid_tiny", "--device", "cpu", "--out", str(tmp_path)]
    assert main([*common, "--interactions", "40", "--seeds", "2", "--base-seed", "3", "train.steps=3", *TINY_MODEL]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seed3", "seed4"]
    record = json.loads((tmp_path / "seed4" / "pretrain.json").read_text())
    assert (record["seed_index"], record["base_seed"], record["interactions"]) == (1, 3, 40)
    assert record["env_options"]["obs_mode"] == "state"          # what compare gives the aif agent on MiniGrid
    assert (tmp_path / "seed3" / "train0" / "model" / "world_model.json").is_file()
    resume = ["pretrain", "--resume", "--device", "cpu", "--out", str(tmp_path), "--base-seed", "3"]
    assert main([*resume, "train.steps=5", *TINY_MODEL]) == 0
    steps = [json.loads(line)["step"] for line in (tmp_path / "seed3" / "train0" / "metrics.jsonl").read_text().splitlines()]
    assert steps[-1] == 5 and sorted(set(steps)) == steps
    assert json.loads((tmp_path / "seed3" / "pretrain.json").read_text())["resumed"][0]["to_steps"] == 5
    capsys.readouterr()
    assert main([*resume, "--interactions", "40"]) == 2
    assert "--resume trains the runs in --out on" in capsys.readouterr().err
    assert main([*common, "--interactions", "40"]) == 2              # no silent overwrite


@pytest.mark.parametrize("task", sorted(RL_ZOO))
def test_task_config_gives_the_baseline_rl_zoo_hyperparameters(task):
    pytest.importorskip("stable_baselines3")
    config = build_config(CompareConfig, [preset_path("experiments", task)])
    name = suite.BASELINE[task]
    baseline = agent_config(name, config.agent.get(name))
    assert {key: getattr(baseline, key) for key in RL_ZOO[task]} == RL_ZOO[task]
    if name == "dqn":  # what rl-zoo leaves to SB3's defaults
        assert (baseline.tau, baseline.exploration_initial_eps, baseline.max_grad_norm) == (1.0, 1.0, 10.0)


def test_published_only_adds_its_row_to_the_earlier_ones(tmp_path, monkeypatch):
    pytest.importorskip("stable_baselines3")
    monkeypatch.setattr(suite, "PUBLISHED_BUDGET", {"cartpole": 300, "pendulum": 300, "mountaincar": 300})
    earlier = {"seed_mean_return": 20.0, "seed_std_return": 0.0, "episodes_to_first_success": [None],
               "success_rate": 0.0, "env_steps": 1020.0, "seeds": 1, "episodes": 1, "returns_per_seed": [[20.0]]}
    (tmp_path / "summary.json").write_text(json.dumps({"tasks": {"cartpole": {"aif": earlier}}}))
    assert main(["suite", "control", "--published-only", "--tasks", "cartpole,pendulum", "--out", str(tmp_path),
                 "seeds=1", "episodes=1"]) == 0
    results = json.loads((tmp_path / "summary.json").read_text())["tasks"]
    assert list(results["cartpole"]) == ["aif", "dqn (published budget 300)"]
    assert list(results["pendulum"]) == ["sac (published budget 300)"]
    sac = results["pendulum"]["sac (published budget 300)"]
    assert sac["env_steps"] == 300 + 200   # the trained budget + the evaluated episode (Pendulum: 200 steps)
    assert (tmp_path / "cartpole_dqn_published" / "episodes.csv").exists()
    assert not (tmp_path / "cartpole").exists()   # the configured agents did not run
    table = (tmp_path / "table.md").read_text()
    assert "| cartpole | aif |" in table and "| pendulum | sac (published budget 300) |" in table
    assert (tmp_path / "pendulum_returns.png").is_file()


def test_mountaincar_reach_by_hand(tmp_path):
    rows = [("aif", 0, [[-0.5, 0.01], [-0.3, -0.04]]), ("aif", 1, [[-0.6, 0.02], [-0.1, 0.0]]),
            ("random", 0, [[-0.4, 0.0]])]
    path = tmp_path / "steps.jsonl"
    path.write_text("".join(json.dumps({"agent": agent, "seed": 0, "episode": episode, "state": state}) + "\n"
                            for agent, episode, states in rows for state in states))
    reach = suite.mountaincar_reach(path)
    assert reach["aif"] == pytest.approx([(-0.3 - 0.1) / 2, (0.04 + 0.02) / 2])
    assert reach["random"] == pytest.approx([-0.4, 0.0])


def test_mountaincar_rows_report_their_reach(tmp_path):
    config = CompareConfig(env="MountainCar-v0", agents=["random"], seeds=1, episodes=1, out=str(tmp_path),
                           progress=False)
    stats = suite.run_control_comparison(config)["agents"]["random"]
    assert -1.2 <= stats["highest_x"] < 0.5 and 0 < stats["largest_speed"] <= 0.07   # the env's bounds; no flag
    table = suite.format_control_rows({"mountaincar": {"random": stats}})
    assert f"| {stats['highest_x']:.2f}, {stats['largest_speed']:.3f} |" in table
