"""World-model fidelity on a control task: the planner's predictions against the true env.

Builds the AIF agent of an experiment config (its env options, warm-up budget and agent settings) and
warms it up as ``diffaif compare`` does for the first seed of base seed ``seed``, then plays
``--episodes`` episodes (their own reset seeds) with ``experiments.fidelity.control_fidelity``: at
every decision the candidates' predicted extrinsic values and observations are compared with those of
the same action sequences run on a copy of the env. Writes the result as JSON and prints its summary.

    python scripts/control_fidelity.py --config configs/experiments/mountaincar.yaml --episodes 3 --out runs/fidelity/mountaincar.json
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from diffaif.config import build_config
from diffaif.experiments.compare import CompareConfig, derived_seed, seeded_agent
from diffaif.experiments.fidelity import control_fidelity


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="an experiment YAML (CompareConfig keys)")
    parser.add_argument("--episodes", type=int, default=3)
    parser.add_argument("--out", required=True, help="JSON file to write")
    parser.add_argument("overrides", nargs="*", help="CompareConfig overrides, e.g. agent.aif.ensemble=1 seed=3")
    args = parser.parse_args(argv)
    config = build_config(CompareConfig, [args.config], args.overrides)
    env, agent = seeded_agent(config, "aif", 0)
    began = time.perf_counter()
    used = agent.warm_up(env, config.warmup_steps, seed=derived_seed(config.seed, 0, 1))
    result = control_fidelity(agent, env, args.episodes, seed=derived_seed(config.seed, 0, 0))
    result = {"env": config.env, "config": args.config, "overrides": args.overrides, "warmup_env_steps": used,
              "seconds": time.perf_counter() - began, **result}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps({k: v for k, v in result.items() if k not in ("spearman", "true_regret")}, indent=2))
    return result


if __name__ == "__main__":
    main()
