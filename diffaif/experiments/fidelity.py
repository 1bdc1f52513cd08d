"""How faithful is the Monte Carlo EFE from the diffusion model to what the true model gives?

Grid worlds (``efe_fidelity``): along the trajectories of the active-inference agent, at every
visited step both estimates score the same candidate policies: the planner's Monte Carlo G from
inpainted rollouts, and the exact G from enumeration with the true matrices and the exact Bayes-filter
belief. Reported: Spearman's rank correlation of G over policies, and agreement of the chosen action —
the Monte Carlo choice counts as agreeing when it is one of the exactly optimal first actions (ties are
common: on an open grid "right" and "down" are often equally good).

Control tasks (``control_fidelity``): the same comparison with the env's own simulator in place of
the exact model — each candidate action sequence is also run on a copy of the env, and the planner's
extrinsic value and predicted observations are compared with the true ones.
"""
from __future__ import annotations

import numpy as np
import torch
from scipy import stats

from diffaif.agents.aif import DiffusionAIFAgent
from diffaif.data.exact_filter import bayes_filter_update
from diffaif.planning.efe import action_marginal, policy_posterior
from diffaif.planning.exact import exact_expected_free_energy


def efe_fidelity(agent: DiffusionAIFAgent, env, episodes: int, seed: int = 0, tie_tolerance: float = 1e-6) -> dict:
    """Compare the agent's Monte Carlo G with the exact G over ``episodes`` episodes it plays.

    → dict with per-step ``spearman`` and ``agree`` lists and their summaries, and the exact-EFE
    regret of the chosen action (0 when it is exactly optimal), and the mean |G − exact G| (nats).
    """
    task = env.unwrapped
    P, O = task.transition_matrix(), task.observation_matrix()
    prior = np.eye(task.n_cells)[task.start]
    gamma, n_actions = agent.config.planner.gamma, task.action_space.n
    rhos, agree, regret, error = [], [], [], []
    for e in range(episodes):
        obs, info = env.reset(seed=seed + e)
        agent.reset(obs)
        belief = bayes_filter_update(prior, P, O, None, obs)
        done = False
        while not done:
            action = agent.act(obs)
            plan = agent._last_plan
            exact = exact_expected_free_energy(belief, plan.policies, P, O, agent.planner.log_preference.double())
            rho = stats.spearmanr(plan.terms["G"].numpy(), exact["G"].numpy()).statistic
            rhos.append(float(rho) if np.isfinite(rho) else float("nan"))
            error.append(float((plan.terms["G"].double() - exact["G"]).abs().mean()))
            exact_probs = action_marginal(policy_posterior(exact["G"], gamma), plan.policies[:, 0], n_actions)
            agree.append(bool(exact_probs[action] >= exact_probs.max() - tie_tolerance))
            chosen = exact["G"][plan.policies[:, 0] == action].min()
            regret.append(float(chosen - exact["G"].min()))
            obs, reward, terminated, truncated, info = env.step(action)
            agent.observe(action, reward, obs, terminated, truncated)
            belief = bayes_filter_update(belief, P, O, action, obs)
            done = terminated or truncated
    finite = np.array([r for r in rhos if np.isfinite(r)])
    return {
        "decisions": len(agree),
        "action_agreement": float(np.mean(agree)),
        "spearman_median": float(np.median(finite)) if finite.size else float("nan"),
        "spearman_mean": float(finite.mean()) if finite.size else float("nan"),
        "spearman_undefined": int(len(rhos) - finite.size),
        # exact G of the best policy starting with the chosen action minus the exact minimum (nats)
        "exact_regret_mean": float(np.mean(regret)),
        "exact_regret_p95": float(np.percentile(regret, 95)),
        # mean over decisions of the mean |G - exact G| over the candidates (nats): bias and noise
        "g_abs_error_mean": float(np.mean(error)),
        "spearman": rhos,
        "agree": agree,
    }


def control_fidelity(agent: DiffusionAIFAgent, env, episodes: int, seed: int = 0) -> dict:
    """Compare the world model's rollouts with the true env's along ``episodes`` episodes the agent
    plays on a control task (``env`` a ``ControlTask``; the agent records them and retrains by its own
    rule, as in ``compare``).

    At every decision each candidate action sequence π_k is also run on a copy of ``env``
    (``ControlTask.simulate``). Reported per decision: Spearman's rank correlation over the candidates
    of the planner's extrinsic value ``Σ_τ E_q[log p̃(o_τ)]`` with the true ``Σ_τ log p̃(o_τ)``; the
    chosen candidate's true-extrinsic regret ``max_k V_k − V_chosen`` (nats; 0 when it is the truly
    best for the goal, whatever the other EFE terms say); and the chosen candidate's prediction error
    ``|E_q[o_τ] − o_τ|`` per horizon step τ and observation dimension.
    """
    rhos, regret, errors, outcomes = [], [], [], []
    for e in range(episodes):
        obs, info = env.reset(seed=seed + e)
        agent.reset(obs, info)
        done, ret = False, 0.0
        while not done:
            action = agent.act(obs)
            plan, planner = agent._last_plan, agent.planner
            true_obs = torch.as_tensor(np.stack([env.simulate(policy) for policy in plan.policies.numpy()]))
            value = planner.preference.log_density(true_obs.double(), planner.config.preference_precision).sum(-1)
            rho = stats.spearmanr(plan.terms["extrinsic"].numpy(), value.numpy()).statistic
            rhos.append(float(rho) if np.isfinite(rho) else float("nan"))
            regret.append(float(value.max() - value[plan.chosen]))
            errors.append((plan.predicted_obs[plan.chosen].double() - true_obs[plan.chosen]).abs().numpy())
            obs, reward, terminated, truncated, info = env.step(action)
            agent.observe(action, reward, obs, terminated, truncated, info)
            done, ret = terminated or truncated, ret + float(reward)
        outcomes.append({"return": ret, "success": bool(info.get("success", terminated))})
    finite = np.array([r for r in rhos if np.isfinite(r)])
    return {
        "decisions": len(regret),
        "episodes": outcomes,
        "spearman_median": float(np.median(finite)) if finite.size else float("nan"),
        "spearman_mean": float(finite.mean()) if finite.size else float("nan"),
        "spearman_undefined": int(len(rhos) - finite.size),  # all true (or predicted) values tied
        "true_regret_mean": float(np.mean(regret)),
        "true_regret_p95": float(np.percentile(regret, 95)),
        # (H, d_o): mean over decisions of the chosen plan's |E_q[o_τ] − o_τ|
        "prediction_error": np.mean(errors, axis=0).tolist(),
        "spearman": rhos,
        "true_regret": regret,
    }
