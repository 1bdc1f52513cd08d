"""How faithful is the Monte Carlo EFE from the diffusion model to the exact EFE of the true model?

Along the trajectories of the active-inference agent, at every visited step both estimates score the
same candidate policies: the planner's Monte Carlo G from inpainted rollouts, and the exact G from
enumeration with the true matrices and the exact Bayes-filter belief. Reported: Spearman's rank
correlation of G over policies, and agreement of the chosen action — the Monte Carlo choice counts as
agreeing when it is one of the exactly optimal first actions (ties are common: on an open grid
"right" and "down" are often equally good).
"""
from __future__ import annotations

import numpy as np
from scipy import stats

from diffaif.agents.aif import DiffusionAIFAgent
from diffaif.data.exact_filter import bayes_filter_update
from diffaif.planning.efe import action_marginal, policy_posterior
from diffaif.planning.exact import exact_expected_free_energy


def efe_fidelity(agent: DiffusionAIFAgent, env, episodes: int, seed: int = 0, tie_tolerance: float = 1e-6) -> dict:
    """Compare the agent's Monte Carlo G with the exact G over ``episodes`` episodes it plays.

    → dict with per-step ``spearman`` and ``agree`` lists and their summaries, and the exact-EFE
    regret of the chosen action (0 when it is exactly optimal).
    """
    task = env.unwrapped
    P, O = task.transition_matrix(), task.observation_matrix()
    prior = np.eye(task.n_cells)[task.start]
    gamma, n_actions = agent.config.planner.gamma, task.action_space.n
    rhos, agree, regret = [], [], []
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
        "spearman": rhos,
        "agree": agree,
    }
