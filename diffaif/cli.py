"""The ``diffaif`` command line: thin subcommands over library functions."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from diffaif.config import ConfigError, build_config


def _layers(args, **flags) -> list[dict]:
    """Config layers: an optional YAML file, then the explicit flags that were given."""
    layers: list = [args.config] if getattr(args, "config", None) else []
    layers.append({k: v for k, v in flags.items() if v is not None})
    return layers


def cmd_compare(args) -> None:
    from diffaif.experiments.compare import CompareConfig, run_comparison
    from diffaif.experiments.stats import format_table

    agents = args.agents.split(",") if args.agents else None
    config = build_config(CompareConfig, _layers(args, env=args.env, agents=agents, episodes=args.episodes,
                                                 seeds=args.seeds, out=args.out), args.overrides)
    summary = run_comparison(config)
    print(format_table(summary))
    print(f"wrote {Path(config.out).resolve()}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="diffaif", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("compare", help="evaluate agents on a task over seeds x episodes (Table I)")
    p.add_argument("--env")
    p.add_argument("--agents", help="comma-separated agent names")
    p.add_argument("--episodes", type=int)
    p.add_argument("--seeds", type=int)
    p.add_argument("--out")
    p.add_argument("--config", help="YAML file of CompareConfig keys")
    p.add_argument("overrides", nargs="*", help="dotted.key=value overrides, e.g. agent.qlearning.epsilon_start=0.5")
    p.set_defaults(func=cmd_compare)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (ConfigError, ValueError, FileNotFoundError) as err:
        print(f"diffaif {args.command}: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
