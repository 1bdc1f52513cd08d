"""scripts/control_suite.py: the baselines' rl-zoo hyperparameters and the published-budget run (fast, CPU)."""
import json
from pathlib import Path

import pytest

from diffaif.agents import agent_config
from diffaif.config import build_config, preset_path
from diffaif.experiments.compare import CompareConfig

pytest.importorskip("stable_baselines3")

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"

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


@pytest.fixture
def suite(monkeypatch):
    monkeypatch.syspath_prepend(str(SCRIPTS))
    import control_suite
    return control_suite


@pytest.mark.parametrize("task", sorted(RL_ZOO))
def test_task_config_gives_the_baseline_rl_zoo_hyperparameters(suite, task):
    config = build_config(CompareConfig, [preset_path("experiments", task)])
    name = suite.BASELINE[task]
    baseline = agent_config(name, config.agent.get(name))
    assert {key: getattr(baseline, key) for key in RL_ZOO[task]} == RL_ZOO[task]
    if name == "dqn":  # what rl-zoo leaves to SB3's defaults
        assert (baseline.tau, baseline.exploration_initial_eps, baseline.max_grad_norm) == (1.0, 1.0, 10.0)


def test_published_only_adds_its_row_to_the_earlier_ones(suite, tmp_path, monkeypatch):
    monkeypatch.setattr(suite, "PUBLISHED_BUDGET", {"cartpole": 300, "pendulum": 300, "mountaincar": 300})
    earlier = {"seed_mean_return": 20.0, "seed_std_return": 0.0, "episodes_to_first_success": [None],
               "success_rate": 0.0, "env_steps": 1020.0, "seeds": 1, "episodes": 1, "returns_per_seed": [[20.0]]}
    (tmp_path / "summary.json").write_text(json.dumps({"cartpole": {"aif": earlier}}))
    suite.main(["--published-only", "--tasks", "cartpole,pendulum", "--out", str(tmp_path), "seeds=1", "episodes=1"])
    results = json.loads((tmp_path / "summary.json").read_text())
    assert list(results["cartpole"]) == ["aif", "dqn (published budget 300)"]
    assert list(results["pendulum"]) == ["sac (published budget 300)"]
    sac = results["pendulum"]["sac (published budget 300)"]
    assert sac["env_steps"] == 300 + 200   # the trained budget + the evaluated episode (Pendulum: 200 steps)
    assert (tmp_path / "cartpole_dqn_published" / "episodes.csv").exists()
    assert not (tmp_path / "cartpole").exists()   # the configured agents did not run
    table = (tmp_path / "table.md").read_text()
    assert "| cartpole | aif |" in table and "| pendulum | sac (published budget 300) |" in table


def test_mountaincar_reach_by_hand(suite, tmp_path):
    rows = [("aif", 0, [[-0.5, 0.01], [-0.3, -0.04]]), ("aif", 1, [[-0.6, 0.02], [-0.1, 0.0]]),
            ("random", 0, [[-0.4, 0.0]])]
    path = tmp_path / "steps.jsonl"
    path.write_text("".join(json.dumps({"agent": agent, "seed": 0, "episode": episode, "state": state}) + "\n"
                            for agent, episode, states in rows for state in states))
    reach = suite.mountaincar_reach(path)
    assert reach["aif"] == pytest.approx([(-0.3 - 0.1) / 2, (0.04 + 0.02) / 2])
    assert reach["random"] == pytest.approx([-0.4, 0.0])


def test_mountaincar_rows_report_their_reach(suite, tmp_path):
    config = CompareConfig(env="MountainCar-v0", agents=["random"], seeds=1, episodes=1, out=str(tmp_path))
    stats = suite.run(config)["agents"]["random"]
    assert -1.2 <= stats["highest_x"] < 0.5 and 0 < stats["largest_speed"] <= 0.07   # the env's bounds; no flag
    table = suite.format_rows({"mountaincar": {"random": stats}})
    assert f"| {stats['highest_x']:.2f}, {stats['largest_speed']:.3f} |" in table
