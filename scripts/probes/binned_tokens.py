"""Probe (issue 24, item 5): quantile-binned tokens against standardised Gaussian x0 for a control task's
observations. Same random-policy data (seed 0), the same CPU-second budget, the same held-out windows
(50 episodes from seed 10 000, 4 per episode, context 1, the true actions); the mean absolute error of
the k-step prediction per observation dimension in the env's units. Table: docs/results/world_model.md.

    python scripts/probes/binned_tokens.py ENV INTERACTIONS BUDGET_S BINS HORIZON VARIANTS OUT
    e.g. CartPole-v1 2000 120 32 10 gauss,bins,bins_draw runs/probes/binned_cartpole.json

Variants: "gauss" (the control preset), "bins" (each dimension cut at the data's quantiles into BINS
tokens, the categorical preset's one-step sequential sampler, argmax), "bins_draw" (drawn from the
softmax, 16 samples averaged); a bin decodes to the median of the data in it."""
import sys, json, time, tempfile, dataclasses
import numpy as np, torch
from diffaif.envs import make_env
from diffaif.data import collect_episodes
from diffaif.data.encoding import PartSpec, TaskEncoding
from diffaif.tasks import task_encoding
from diffaif.config import build_config, preset_or_file
from diffaif.model.train import WorldModelConfig, train_world_model
from diffaif.model.evaluate import _planning_windows, _sample_windows

torch.set_num_threads(1)
env_id, interactions, budget, bins, horizon = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
variants, out_path = sys.argv[6].split(","), sys.argv[7]
env = make_env(env_id)
data = collect_episodes(env, seed=0, min_interactions=interactions)
held = collect_episodes(env, 50, seed=10_000)
items = _planning_windows(held, 1, horizon, 4, None, np.random.default_rng(10_000))
true = np.stack([it["future_obs"] for it in items]); present = np.stack([it["obs_history"][-1] for it in items])
out = {"env": env_id, "interactions": int(data.n_interactions), "windows": len(items), "horizon": horizon,
       "persistence": np.abs(present[:, None] - true).mean(0).tolist()}

def train(data, enc, preset, extra):
    wm = build_config(WorldModelConfig, [preset_or_file("model", preset), extra])
    wm.model.length = max(wm.model.length, 2 + horizon)
    wm.train.max_seconds, wm.train.steps, wm.train.budget_clock, wm.train.seed = budget, 10**9, "cpu", 0
    with tempfile.TemporaryDirectory() as run:
        t = time.process_time()
        m = train_world_model(data, enc, wm.model, wm.train, run, progress=False)
        return m, time.process_time() - t

for v in variants:
    if v == "gauss":
        enc = task_encoding(env, data)
        model, cpu = train(data, enc, "control", {})
        obs, _, facts = _sample_windows(model, items, 1, horizon, 16, None, None, 10_000, 256)
        pred = obs.mean(1)
    else:
        d = data.observations.shape[1]
        edges = [np.quantile(data.observations[:, j], np.linspace(0, 1, bins + 1)[1:-1]) for j in range(d)]
        def binned(x):
            x = np.asarray(x, dtype=np.float64)
            return np.stack([np.digitize(x[..., j], edges[j]) for j in range(d)], -1).astype(np.int64)
        b = binned(data.observations)
        centres = np.array([[np.median(data.observations[b[:, j] == k, j]) if (b[:, j] == k).any() else np.nan
                             for k in range(bins)] for j in range(d)])
        bd = dataclasses.replace(data, observations=b, states=b)
        enc = TaskEncoding([PartSpec("obs", "categorical", bins * d, factors=(bins,) * d),
                            PartSpec("action", "categorical", int(env.action_space.n))])
        extra = {"model": {"draw": v == "bins_draw"}}
        model, cpu = train(bd, enc, "categorical", extra)
        bitems = [dict(it, obs_history=binned(it["obs_history"])) for it in items]
        obs, _, facts = _sample_windows(model, bitems, 1, horizon, 16 if v == "bins_draw" else 1, None, None, 10_000, 256)
        pred = np.stack([centres[j][obs[..., j]] for j in range(d)], -1).mean(1)
    err = np.abs(pred - true).mean(0)
    out[v] = {"train_cpu_s": round(cpu, 1), "abs_error": err.tolist(), "seconds_per_call": facts["seconds_per_call"]}
    print(v, round(cpu, 1), "k=1", np.round(err[0], 4), f"k={horizon}", np.round(err[-1], 4), flush=True)
json.dump(out, open(out_path, "w"), indent=1)
