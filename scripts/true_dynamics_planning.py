"""Receding-horizon planning on the true simulator with the AIF agent's preference.

A reference for the world-model planner: the same objective (``Σ_τ log p̃(o_τ)`` of the task's
preference from ``diffaif.planning.continuous``), proposer (random shooting or CEM, as the agent
proposes: ``propose_policies`` for Discrete actions, ``propose_box_policies`` with its warm start for
Box actions), horizon, candidates and action repeat, but each candidate is rolled out on a copy of
the env itself (``ControlTask.simulate``) instead of the diffusion model. What this planner cannot
do, no world model will make the agent do: e.g. whether a 10-decision plan at action repeat k
reaches MountainCar's flag, or whether CartPole's cart drifts off the track under a 10-step plan.
Writes ``<out>/true_dynamics_<env>_<proposer>_k<k>_h<H>_n<K>.json`` (per episode: return, env steps,
success, final observation) and prints the summary.

    python scripts/true_dynamics_planning.py --env MountainCar-v0 --action-repeat 10 --horizon 10 --candidates 256
    python scripts/true_dynamics_planning.py --env CartPole-v1 --horizon 10 --candidates 32 --episodes 4
    python scripts/true_dynamics_planning.py --env CartPole-v1 --proposer cem --horizon 20 --candidates 64
    python scripts/true_dynamics_planning.py --env Pendulum-v1 --proposer cem --action-repeat 3 --episodes 5
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from diffaif.envs import make_env
from diffaif.planning.continuous import ContinuousConfig, propose_box_policies
from diffaif.tasks.control import control_preference
from diffaif.planning.policies import CEMConfig, PolicyConfig, propose_policies


def run(env_id: str, action_repeat: int, horizon: int, candidates: int, episodes: int, seed: int,
        proposer: str = "random", cem: CEMConfig | None = None, continuous: ContinuousConfig | None = None,
        precision: float = 1.0) -> list[dict]:
    """``episodes`` episodes acting on the first action of the best of the ``proposer``'s candidates
    (``candidates`` random sequences, or per CEM iteration). ``continuous`` is the agent's
    ``planner.continuous`` (its preference scales and floor, the Box CEM's initial σ), ``precision``
    its ``planner.preference_precision`` (deterministic rollouts: without a floor it scales every score
    alike, so it only matters with one)."""
    continuous = continuous or ContinuousConfig()
    env = make_env(env_id, action_repeat=action_repeat)
    discrete = isinstance(env.action_space, gym.spaces.Discrete)
    if not discrete:
        low, high = (torch.as_tensor(bound, dtype=torch.float32) for bound in (env.action_space.low,
                                                                                env.action_space.high))
    preference = control_preference(env.family, continuous)
    policy_config = PolicyConfig(kind=proposer, horizon=horizon, n_candidates=candidates, cem=cem or CEMConfig())
    generator = torch.Generator().manual_seed(seed)

    def score(policies: torch.Tensor) -> torch.Tensor:
        """G = −Σ_τ log p̃(o_τ) of each policy (K, H) or (K, H, d_a) from env's current state → (K,)."""
        observations = torch.as_tensor(np.stack([env.simulate(p.numpy()) for p in policies]))
        return -preference.log_density(observations.double(), precision).sum(-1)

    results = []
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        total, steps, done, mean = 0.0, 0, False, None
        while not done:
            if discrete:
                policies, scores = propose_policies(policy_config, int(env.action_space.n), generator, score)
            else:
                (policies, scores), mean = propose_box_policies(policy_config, low, high, continuous.cem_init_std,
                                                                mean, score, generator)
            if scores is None:
                scores = score(policies)
            best = policies[int(torch.argmin(scores)), 0].numpy()
            obs, reward, terminated, truncated, info = env.step(env.env_action(best))
            total, steps, done = total + float(reward), steps + info["env_steps"], terminated or truncated
        results.append({"return": total, "env_steps": steps, "success": bool(info.get("success", terminated)),
                        "final_obs": np.asarray(obs).round(3).tolist()})
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="MountainCar-v0")
    parser.add_argument("--action-repeat", type=int, default=1)
    parser.add_argument("--proposer", choices=["random", "cem"], default="random")
    parser.add_argument("--cem-elite", type=int, default=8)
    parser.add_argument("--cem-iterations", type=int, default=3)
    parser.add_argument("--cem-init-std", type=float, default=0.5, help="Box CEM: initial σ / half-range")
    parser.add_argument("--horizon", type=int, default=10)
    parser.add_argument("--candidates", type=int, default=32)
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--preference-scales", type=lambda text: [float(v) for v in text.split(",")], default=None,
                        help="comma-separated σ_j replacing the preference's (inf: none), e.g. 0.5,2,0.05,inf")
    parser.add_argument("--precision", type=float, default=1.0, help="the preference's precision")
    parser.add_argument("--preference-floor", type=float, default=math.inf,
                        help="nats below the preference's peak where it turns flat (a sparse goal)")
    parser.add_argument("--out", default="runs/true_dynamics")
    args = parser.parse_args(argv)
    cem = CEMConfig(n_elite=args.cem_elite, iterations=args.cem_iterations)
    continuous = ContinuousConfig(preference_scales=args.preference_scales, preference_floor=args.preference_floor,
                                  cem_init_std=args.cem_init_std)
    results = run(args.env, args.action_repeat, args.horizon, args.candidates, args.episodes, args.seed,
                  args.proposer, cem, continuous, args.precision)
    summary = {"env": args.env, "action_repeat": args.action_repeat, "proposer": args.proposer,
               "cem": dataclasses.asdict(cem) if args.proposer == "cem" else None, "horizon": args.horizon,
               "candidates": args.candidates, "preference_scales": args.preference_scales,
               "precision": args.precision,
               "preference_floor": args.preference_floor if math.isfinite(args.preference_floor) else None,
               "return_mean": float(np.mean([r["return"] for r in results])),
               "success_rate": float(np.mean([r["success"] for r in results])), "episodes": results}
    scales = "" if args.preference_scales is None else "_s" + "-".join(map(str, args.preference_scales))
    if math.isfinite(args.preference_floor):
        scales += f"_p{args.precision:g}_f{args.preference_floor:g}"
    name = (f"true_dynamics_{args.env}_{args.proposer}_k{args.action_repeat}_h{args.horizon}_n{args.candidates}"
            f"{scales}.json")
    out = Path(args.out) / name
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2))
    print(json.dumps({k: v for k, v in summary.items() if k != "episodes"}),
          [(r["return"], r["final_obs"][0]) for r in results])


if __name__ == "__main__":
    main()
