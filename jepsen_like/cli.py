"""``shoal chaos`` (also ``python -m jepsen_like``): list and run chaos scenarios.

    shoal chaos list
    shoal chaos run SCENARIO [--engine shoal|redis] [--nodes 6] [--time 20] [--seed N]
                             [--workload set|register|counter|list-append] [--node-timeout MS]
                             [--threads 6] [--json]

``run`` prints the plain-text summary (``--json``: the summary as JSON). The
exit status is 0 when the run completed and was judged ``ok`` or ``allowed``,
1 for a ``violation`` or an error, 2 when ``unknown``, and 3 when skipped --
a skipped scenario never exits 0, so a script cannot mistake it for a pass.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap

from jepsen_like.runner import run_scenario
from jepsen_like.scenarios import SCENARIOS
from jepsen_like.workloads import WORKLOADS

__all__ = ["main"]

EXIT = {"ok": 0, "allowed": 0, "violation": 1, "unknown": 2}


def cmd_list(args) -> int:
    for s in SCENARIOS.values():
        print(f"{s.name}")
        print(textwrap.indent(textwrap.fill(s.summary, 96), "    "))
        print(textwrap.indent(textwrap.fill("allows: " + s.allows, 96), "    "))
    return 0


def cmd_run(args) -> int:
    if args.scenario not in SCENARIOS:
        print(f"unknown scenario {args.scenario!r}; choose from: {', '.join(SCENARIOS)}", file=sys.stderr)
        return 1
    summary = run_scenario(args.scenario, engine=args.engine, nodes=args.nodes, workload=args.workload,
                           duration=args.time, seed=args.seed, threads=args.threads,
                           node_timeout=args.node_timeout)
    print(json.dumps(summary.to_dict(), indent=2) if args.json else summary.to_text(), end="" if not args.json else "\n")
    if summary.status == "skipped":
        return 3
    if summary.status == "error":
        return 1
    return EXIT.get(summary.judgement, 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="shoal chaos", description="Chaos-test a Shoal or Redis cluster.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the scenarios and what each one allows").set_defaults(func=cmd_list)
    run = sub.add_parser("run", help="run one scenario and print its summary")
    run.add_argument("scenario")
    run.add_argument("--engine", choices=("shoal", "redis"), default="shoal")
    run.add_argument("--nodes", type=int, default=6)
    run.add_argument("--time", type=float, default=20.0, help="seconds of workload")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--workload", choices=list(WORKLOADS), default="set")
    run.add_argument("--node-timeout", type=int, default=2000, help="cluster-node-timeout in ms")
    run.add_argument("--threads", type=int, default=6, help="concurrent client threads")
    run.add_argument("--json", action="store_true", help="print the summary as JSON")
    run.set_defaults(func=cmd_run)
    args = parser.parse_args(argv)
    if args.command == "run" and (args.nodes < 3 or args.nodes > 200 or args.time <= 0 or args.threads < 1):
        parser.error("--nodes must be 3..200, --time positive, --threads >= 1")
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
