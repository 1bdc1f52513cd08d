"""Probe (issue 26): Taxi with its state index decoded into (row, col, passenger, destination) by a
gymnasium wrapper: does the generic family learn and plan it then? Agent seed 0, warm-up seed 1 (20 000
novelty steps), the model's one-step accuracy on 240 held-out windows, then 20 episodes (reset seeds
50 000...) without learning. Table: docs/results/generic.md.

    python scripts/probes/taxi_decoded.py"""
import numpy as np, torch, gymnasium as gym
from diffaif.agents import make_agent
from diffaif.envs import make_env
from diffaif.model.evaluate import evaluate_any_world_model
torch.set_num_threads(1)

class Decoded(gym.ObservationWrapper):
    def __init__(self, env):
        super().__init__(env)
        self.observation_space = gym.spaces.MultiDiscrete([5, 5, 5, 4])
    def observation(self, s):
        return np.array(list(self.env.unwrapped.decode(int(s))), dtype=np.int64)

env = Decoded(make_env("Taxi-v4"))
agent = make_agent("aif", env, seed=0, overrides={})
agent.warm_up(env, 20000, seed=1)
r = evaluate_any_world_model(agent.model, env, n_episodes=30, horizon=1, context=1, n_samples=1, per_episode=8)
print({k: r[k] for k in ("obs_accuracy", "obs_entry_accuracy", "obs_accuracy_persistence", "n_windows")}, flush=True)
returns, wins = [], 0
for e in range(20):
    o, info = env.reset(seed=50000 + e); agent.reset(o, None); done, ret = False, 0.0
    while not done:
        a = agent.act(o); o, rew, te, tr, info = env.step(a); agent.observe(a, rew, o, te, tr, None); ret += rew; done = te or tr
    returns.append(ret); wins += te
print("20 episodes: mean return", np.mean(returns), "success", wins / 20)
