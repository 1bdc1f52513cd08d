"""The public API (``diffaif.AIFAgent`` and friends): light import, learn, predict, save/load, SB3's evaluate_policy."""
import subprocess
import sys

import numpy as np
import pytest
from stable_baselines3.common.env_util import DummyVecEnv
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor

import diffaif
from diffaif import AIFAgent, make_agent, make_env
from diffaif.config import ConfigError

# A world model and a planner small enough for tests: quality is not what they check.
TINY_GRID = {"world_model": {"train": {"steps": 20}}, "planner": {"n_samples": 4, "policies": {"horizon": 1}}}
TINY_PENDULUM = {"world_model": {"train": {"steps": 20}}, "retrain": "never",
                 "planner": {"n_samples": 2, "policies": {"n_candidates": 8, "cem": {"n_elite": 2}}}}


def test_import_diffaif_loads_no_heavy_library():
    code = "import sys, diffaif; diffaif.make_env; print(sorted({'torch', 'diffusers', 'stable_baselines3'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
    with pytest.raises(AttributeError, match="no attribute 'Agent'"):
        diffaif.Agent


def test_the_dataclass_defaults_are_the_only_defaults():
    env = make_env("grid4x4")
    assert make_agent("aif", env, seed=0).config == AIFAgent(env, seed=0).config


def test_from_config_reads_the_aif_section_of_an_experiment_preset():
    agent = AIFAgent.from_config("grid4x4", make_env("grid4x4"), seed=0, planner={"gamma": 4.0})
    assert agent.config.planner.policies.horizon == 2 and agent.config.planner.n_samples == 8
    assert agent.config.planner.gamma == 4.0
    with pytest.raises(ConfigError, match="valid choices: .*'grid4x4'"):
        AIFAgent.from_config("grid5x5", make_env("grid4x4"))


def _decisions(agent, env, reset_seed: int, steps: int) -> list:
    """The actions and EFE of ``steps`` decisions through ``predict`` from ``env.reset(seed=reset_seed)``."""
    obs, _ = env.reset(seed=reset_seed)
    state, out = None, []
    for _ in range(steps):
        action, state = agent.predict(obs, state=state, deterministic=True)
        out.append((np.asarray(action).tolist(), agent.step_log()["G_per_policy"]))
        obs, _, terminated, truncated, _ = env.step(action.item() if action.ndim == 0 else action)
        if terminated or truncated:
            break
    return out


def test_save_and_load_restore_the_same_decisions(tmp_path):
    env = make_env("grid8x8")
    agent = AIFAgent(env, seed=3, **TINY_GRID).learn(total_env_steps=150, warmup_steps=120)
    assert agent.trainings == 1 and agent.data.n_interactions == 150
    _decisions(agent, env, reset_seed=5, steps=3)  # advance the planner's generator before saving
    agent.save(tmp_path / "agent")
    loaded = AIFAgent.load(tmp_path / "agent", make_env("grid8x8"))
    assert loaded.config == agent.config and loaded.data.n_interactions == agent.data.n_interactions
    assert _decisions(loaded, env, 11, 6) == _decisions(agent, env, 11, 6)
    with pytest.raises(FileNotFoundError, match="no saved agent"):
        AIFAgent.load(tmp_path, env)


def test_evaluate_policy_scores_the_agent_on_a_discrete_task():
    agent = AIFAgent(make_env("grid4x4"), seed=0, **TINY_GRID).learn(total_env_steps=100, warmup_steps=100)
    vec_env = DummyVecEnv([lambda: Monitor(make_env("grid4x4", max_steps=15))])
    rewards, lengths = evaluate_policy(agent, vec_env, n_eval_episodes=2, return_episode_rewards=True)
    assert len(lengths) == 2 and all(1 <= n <= 15 for n in lengths)


def test_evaluate_policy_scores_the_agent_on_a_box_action_task():
    """Pendulum's actions are vectors: ``predict`` must pass the previous torque back, not an int of it."""
    env = make_env("Pendulum-v1", action_repeat=20)
    agent = AIFAgent.from_config("pendulum", env, seed=0, **TINY_PENDULUM).learn(total_env_steps=200,
                                                                                 warmup_steps=200)
    seen = []
    observe = agent.observe
    agent.observe = lambda action, *rest, **kw: (seen.append(np.asarray(action)), observe(action, *rest, **kw))
    vec_env = DummyVecEnv([lambda: Monitor(make_env("Pendulum-v1", action_repeat=20))])
    rewards, lengths = evaluate_policy(agent, vec_env, n_eval_episodes=1, return_episode_rewards=True)
    assert lengths == [10] and np.isfinite(rewards[0])
    assert seen and all(a.shape == (1,) and a.dtype.kind == "f" for a in seen)
    assert len({float(a[0]) for a in seen}) > 1  # real torques, not a constant cast
