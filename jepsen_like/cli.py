"""``shoal chaos`` (also ``python -m jepsen_like``): list and run chaos scenarios.

    shoal chaos list
    shoal chaos run SCENARIO [--engine shoal|redis] [--nodes 6] [--time 20] [--seed N]
                             [--workload set|register|counter|list-append] [--node-timeout MS]
                             [--threads 6] [--json] [--report DIR]
    shoal chaos compare SCENARIO [same options]      Shoal and Redis side by side
    shoal chaos catalogue [--only a,b|--smoke] [--engines shoal,redis] [--table FILE] [same options]
                                                     (make chaos: every scenario, both engines)

``--mutant NAME`` (Shoal only) starts the nodes with a seeded bug
(node/mutants.py) -- the named scenario should then report a violation.
``catalogue --table FILE`` also writes the results as a markdown table
(scenario, engine, verdict, lost acknowledged writes, availability, failover
time), the table the closing notes quote.

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

from jepsen_like.nemesis import partition_support
from jepsen_like.netns import inside, run_inside
from jepsen_like.runner import run_scenario
from jepsen_like.scenarios import SCENARIOS
from jepsen_like.workloads import WORKLOADS

__all__ = ["main"]

EXIT = {"ok": 0, "allowed": 0, "violation": 1, "unknown": 2}


def cmd_list(args) -> int:
    for s in SCENARIOS.values():
        tags = [f"{s.nodes}+ nodes"] + (["Shoal only"] if s.shoal_only else []) + (["smoke"] if s.smoke else [])
        print(f"{s.name}  ({', '.join(tags)})")
        print(textwrap.indent(textwrap.fill(s.summary, 96), "    "))
        print(textwrap.indent(textwrap.fill("allows: " + s.allows, 96), "    "))
    return 0


def cmd_run(args) -> int:
    if args.scenario not in SCENARIOS:
        print(f"unknown scenario {args.scenario!r}; choose from: {', '.join(SCENARIOS)}", file=sys.stderr)
        return 1
    scenario = SCENARIOS[args.scenario]
    if scenario.is_partition and not inside() and partition_support() is None:
        # Partitions need a private network namespace: run this very command again inside one.
        return run_inside(["run", *args.raw_argv])
    summary = run_scenario(args.scenario, engine=args.engine, nodes=args.nodes, workload=args.workload,
                           duration=args.time, seed=args.seed, threads=args.threads,
                           node_timeout=args.node_timeout, report_dir=args.report, mutant=args.mutant)
    print(json.dumps(summary.to_dict(), indent=2) if args.json else summary.to_text(), end="" if not args.json else "\n")
    if summary.status == "skipped":
        return 3
    if summary.status == "error":
        return 1
    return EXIT.get(summary.judgement, 1)


_COLUMNS = ("scenario", "engine", "status", "judgement", "verdict", "lost", "availability", "failover_s", "ok",
            "fail", "info", "healthy_after_s")


def _row(summary) -> dict:
    return {
        "scenario": summary.scenario, "engine": summary.engine, "status": summary.status,
        "workload": summary.workload,
        "judgement": summary.judgement if summary.status == "completed" else summary.status,
        "verdict": summary.verdict if summary.status == "completed" else "-",
        "lost": "-" if summary.lost_acknowledged is None else summary.lost_acknowledged,
        "availability": "-" if summary.availability is None else f"{summary.availability:.1%}",
        "failover_s": "-" if summary.failover_time is None else summary.failover_time,
        "lost_outside_window": "-" if summary.lost_outside_window is None else summary.lost_outside_window,
        "expectations_failed": sum(1 for e in summary.expectations if e.startswith("FAILED")),
        "skip_reason": summary.skip_reason, "error": summary.error[-300:],
        "ok": summary.workload_ops["ok"], "fail": summary.workload_ops["fail"], "info": summary.workload_ops["info"],
        "healthy_after_s": "-" if summary.heal_seconds is None else summary.heal_seconds,
    }


def _table(rows: list[dict]) -> str:
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in _COLUMNS}
    lines = ["  ".join(c.ljust(widths[c]) for c in _COLUMNS)]
    lines += ["  ".join(str(r[c]).ljust(widths[c]) for c in _COLUMNS) for r in rows]
    return "\n".join(lines)


def markdown_table(rows: list[dict]) -> str:
    """The catalogue's results as a markdown table."""
    head = ["scenario", "engine", "verdict", "lost acknowledged writes", "availability", "failover time"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        verdict = r["judgement"]
        if r["status"] == "completed" and verdict in ("allowed", "violation"):
            verdict += f" ({r['verdict']})"
        if r.get("expectations_failed"):
            verdict += f", {r['expectations_failed']} expectation(s) failed"
        if r["status"] == "skipped":
            verdict = f"skipped: {r.get('skip_reason', '')}"
        elif r["status"] == "error":
            verdict = "error: " + (r.get("error") or "").replace("\n", " ").replace("|", "/")[:120]
        lost = str(r["lost"])
        if r.get("workload") in ("pubsub", "spubsub") and r["lost"] != "-":
            lost += " messages (at-most-once)"
        if r.get("lost_outside_window") not in (None, "-") and r["lost"] not in ("-", 0):
            lost += f" ({r['lost_outside_window']} outside the allowed window)"
        fo = "-" if r["failover_s"] == "-" else f"{r['failover_s']} s"
        lines.append(f"| {r['scenario']} | {r['engine']} | {verdict} | {lost} | {r['availability']} | {fo} |")
    return "\n".join(lines) + "\n"


def _run_one(name: str, engine: str, args):
    """One run; partitions re-execute in a namespace and come back as JSON."""
    scenario = SCENARIOS[name]
    if scenario.is_partition and not inside() and partition_support() is None:
        import subprocess

        from jepsen_like.netns import INSIDE_ENV
        from jepsen_like.runner import Summary

        argv = ["run", name, "--engine", engine, "--nodes", str(args.nodes), "--time", str(args.time),
                "--seed", str(args.seed), "--workload", args.workload, "--node-timeout", str(args.node_timeout),
                "--threads", str(args.threads), "--json"]
        if args.report:
            argv += ["--report", args.report]
        if getattr(args, "mutant", None):
            argv += ["--mutant", args.mutant]
        env = dict(__import__("os").environ)
        env.pop(INSIDE_ENV, None)
        done = subprocess.run(["unshare", "--user", "--map-root-user", "--net", sys.executable, "-m",
                               "jepsen_like", *argv], capture_output=True, text=True,
                              env={**env, INSIDE_ENV: "1"})
        try:
            return Summary(**json.loads(done.stdout))
        except (json.JSONDecodeError, TypeError):
            failed = Summary(name, engine, args.nodes, args.workload, args.seed, args.time)
            failed.status, failed.error = "error", (done.stdout + done.stderr)[-500:]
            return failed
    return run_scenario(name, engine=engine, nodes=args.nodes, workload=args.workload, duration=args.time,
                        seed=args.seed, threads=args.threads, node_timeout=args.node_timeout,
                        report_dir=args.report, mutant=getattr(args, "mutant", None))


def cmd_compare(args) -> int:
    """The same scenario, seed and workload against Shoal and real Redis, side by side."""
    if args.scenario not in SCENARIOS:
        print(f"unknown scenario {args.scenario!r}; choose from: {', '.join(SCENARIOS)}", file=sys.stderr)
        return 1
    summaries = [_run_one(args.scenario, engine, args) for engine in ("shoal", "redis")]
    rows = [_row(s) for s in summaries]
    print(json.dumps(rows, indent=2) if args.json else _table(rows))
    return 1 if any(s.status == "error" or s.judgement == "violation" for s in summaries) else 0


def cmd_catalogue(args) -> int:
    """Every scenario (or ``--only``), for each engine: the table the closing notes quote."""
    if args.only:
        names = args.only.split(",")
    else:
        names = [n for n, s in SCENARIOS.items() if s.smoke or not args.smoke]
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        print(f"unknown scenario(s) {', '.join(unknown)}", file=sys.stderr)
        return 1
    rows = []
    worst = 0
    for name in names:
        for engine in args.engines.split(","):
            summary = _run_one(name, engine, args)
            rows.append(_row(summary))
            print(_table(rows[-1:]).splitlines()[1], file=sys.stderr, flush=True)
            if summary.status == "error" or summary.judgement == "violation":
                worst = 1
            if args.table:  # rewritten after every run, so a long catalogue shows progress
                import pathlib

                path = pathlib.Path(args.table)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(markdown_table(rows), encoding="utf-8")
    print(json.dumps(rows, indent=2) if args.json else _table(rows))
    return worst


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
    compare = sub.add_parser("compare", help="run a scenario against Shoal and Redis and compare")
    compare.add_argument("scenario")
    catalogue = sub.add_parser("catalogue", help="run every scenario (make chaos) and print the table")
    catalogue.add_argument("--only", help="comma list of scenarios (default: all)")
    catalogue.add_argument("--engines", default="shoal,redis")
    catalogue.add_argument("--smoke", action="store_true", help="only the smoke subset (make test runs it)")
    catalogue.add_argument("--table", metavar="FILE", help="also write the results as a markdown table")
    for p in (run, compare, catalogue):
        p.add_argument("--report", metavar="DIR", help="write an HTML report with plots into DIR")
        p.add_argument("--mutant", help="Shoal only: start the nodes with this seeded bug (node/mutants.py)")
        if p is run:
            continue
        p.add_argument("--nodes", type=int, default=6)
        p.add_argument("--time", type=float, default=20.0, help="seconds of workload")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--workload", choices=list(WORKLOADS), default="set")
        p.add_argument("--node-timeout", type=int, default=2000, help="cluster-node-timeout in ms")
        p.add_argument("--threads", type=int, default=6, help="concurrent client threads")
        p.add_argument("--json", action="store_true", help="print the table as JSON")
    compare.set_defaults(func=cmd_compare)
    catalogue.set_defaults(func=cmd_catalogue)
    args = parser.parse_args(argv)
    args.raw_argv = list(sys.argv[1:] if argv is None else argv)[1:]
    if args.command in ("run", "compare", "catalogue") and (args.nodes < 3 or args.nodes > 200 or args.time <= 0 or args.threads < 1):
        parser.error("--nodes must be 3..200, --time positive, --threads >= 1")
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
