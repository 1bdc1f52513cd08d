"""Probe (issue 24, item 4): the grid planner's G with q(s_τ|π) from sampled-state histograms against the
model's predictive probabilities (``planner.state_estimator=probabilities``, Rao-Blackwellised), at
the same beliefs, against the exact EFE (true P, O and Bayes-filter belief) on grid8x8. Table:
docs/results/world_model.md.

    python scripts/probes/state_estimator_variance.py RUN/model POINTS REPEATS OUT
    e.g. runs/wm/g8/model 40 6 runs/probes/state_estimator_grid8x8.json

POINTS histories are drawn from random-policy episodes (reset seeds 100, 101, ...); at each, every
horizon-2 policy is scored REPEATS times. Reported: the standard deviation of G over the repeats
(mean over policies and points), |mean G − exact G|, and how often the argmin is exactly optimal."""
import sys, json, itertools
import numpy as np, torch
from diffaif.envs import make_env
from diffaif.model.world_model import WorldModel
from diffaif.planning.planner import PlannerConfig
from diffaif.planning.policies import PolicyConfig
from diffaif.tasks import task_planning
from diffaif.data.exact_filter import bayes_filter_update
from diffaif.planning.exact import exact_expected_free_energy

torch.set_num_threads(1)
run, n_points, repeats, out_path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
env = make_env("grid8x8"); task = env.unwrapped
P, O = task.transition_matrix(), task.observation_matrix()
model = WorldModel.load(run)
policies = torch.tensor(list(itertools.product(range(4), repeat=2)))
rng = np.random.default_rng(0)
points = []   # (observations, actions, belief)
e = 0
while len(points) < n_points:
    obs, info = env.reset(seed=100 + e); e += 1
    belief = bayes_filter_update(np.eye(task.n_cells)[task.start], P, O, None, obs)
    o_hist, a_hist, done = [obs], [], False
    while not done and len(points) < n_points:
        if rng.random() < 0.3:
            points.append((list(o_hist), list(a_hist), belief.copy()))
        a = int(rng.integers(4))
        obs, r, term, trunc, info = env.step(a)
        belief = bayes_filter_update(belief, P, O, a, obs)
        o_hist.append(obs); a_hist.append(a); done = term or trunc or len(a_hist) > 40
out = {"run": run, "points": n_points, "repeats": repeats}
for est, n in [("histogram", 16), ("probabilities", 16), ("histogram", 64)]:
    cfg = PlannerConfig(context=3, n_samples=n, denoising_steps=4, state_estimator=est,
                        policies=PolicyConfig(horizon=2))
    planner = task_planning(env, cfg).make_planner(model, 0)
    log_pref = planner.log_preference.double()
    std, err, agree = [], [], []
    for o_hist, a_hist, belief in points:
        G = torch.stack([planner.evaluate(o_hist, a_hist, policies)["G"].double()
                         for _ in range(repeats)])                    # (R, K)
        exact = exact_expected_free_energy(belief, policies, P, O, log_pref)["G"]
        std.append(G.std(0).mean().item()); err.append((G.mean(0) - exact).abs().mean().item())
        best = exact.min()
        agree.append(np.mean([(exact[g.argmin()] <= best + 1e-6).item() for g in G]))
    key = f"{est}_{n}"
    out[key] = {"G_std_over_repeats": float(np.mean(std)), "abs_error_of_mean_G": float(np.mean(err)),
                "argmin_exactly_optimal": float(np.mean(agree))}
    print(key, out[key], flush=True)
json.dump(out, open(out_path, "w"), indent=1)
