"""The cost of ACL checks: SET/GET throughput as a key-restricted user vs the default user.

    python -m bench.acl_cost            # standalone (also run by ``make bench`` via run_bench)
    python -m bench.acl_cost --quick

One shoal-server and one redis-server are started (persistence off). A user
``bench`` is created on both with ``on >benchpw ~key:* ~counter:* +@all``: every
command allowed but keys limited by patterns, so each request pays for a
command check and a key-pattern match (the default user pays for none).
redis-benchmark then runs SET and GET, ``-c 50``, at each pipeline depth,
first as the default user, then as ``bench`` (``--user bench -a benchpw``),
Redis then Shoal, one run at a time; rps is the median over the rounds.

Reported per server and test: rps default, rps restricted, and restricted /
default (1.00 = free). The last column compares the two servers' ratios
(Shoal's ratio / Redis's). Every process started here is stopped by PID.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys

from bench.procs import BenchServer
from bench.redisbench import BenchmarkError, parse_csv, redis_benchmark_path

__all__ = ["acl_phase", "render_acl", "main"]

KINDS = ("redis", "shoal")
TESTS = ("set", "get")
USER, PASSWORD = "bench", "benchpw"
RULES = ("on", f">{PASSWORD}", "~key:*", "~counter:*", "+@all")


def _call(port: int, *argv: str) -> bytes:
    import socket

    payload = b"*%d\r\n" % len(argv) + b"".join(b"$%d\r\n%b\r\n" % (len(a.encode()), a.encode()) for a in argv)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(payload)
        return s.recv(4096)


def run_as(port: int, test: str, requests: int, pipeline: int, clients: int, user: str | None) -> float:
    """One redis-benchmark run; rps."""
    argv = [redis_benchmark_path(), "-h", "127.0.0.1", "-p", str(port), "-c", str(clients),
            "-n", str(requests), "-P", str(pipeline), "--csv", "-t", test]
    if user is not None:
        argv += ["--user", user, "-a", PASSWORD]
    done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=60.0 + requests / 1000.0)
    rows = parse_csv(done.stdout)
    if done.returncode != 0 or test.upper() not in rows:
        raise BenchmarkError(f"redis-benchmark failed ({' '.join(argv)}): {done.stderr[-400:] or done.stdout[-400:]}")
    return rows[test.upper()]["rps"]


def acl_phase(args, results: dict, log) -> dict:
    """Measure and store ``results["acl"]``; ``args`` needs rounds, requests, requests_pipelined, pipelines, clients."""
    servers: dict[str, BenchServer] = {}
    out: dict = {"user_rules": " ".join(RULES), "runs": {}, "median_rps": {}, "ratios": {}}
    try:
        for kind in KINDS:
            servers[kind] = BenchServer(kind).start()
            reply = _call(servers[kind].port, "ACL", "SETUSER", USER, *RULES)
            if not reply.startswith(b"+OK"):
                raise RuntimeError(f"{kind}: ACL SETUSER failed: {reply!r}")
        for pipeline in args.pipelines:
            requests = args.requests if pipeline == 1 else args.requests_pipelined
            for test in TESTS:
                for who in ("default", "restricted"):
                    for kind in KINDS:
                        rps = []
                        for _ in range(args.rounds):
                            rps.append(run_as(servers[kind].port, test, requests, pipeline, args.clients,
                                              USER if who == "restricted" else None))
                        key = f"{kind}/{test.upper()}/P{pipeline}/{who}"
                        out["runs"][key] = rps
                        out["median_rps"][key] = statistics.median(rps)
                        log(f"acl: {key}: {out['median_rps'][key]:,.0f} rps")
                for kind in KINDS:
                    base = out["median_rps"][f"{kind}/{test.upper()}/P{pipeline}/default"]
                    restricted = out["median_rps"][f"{kind}/{test.upper()}/P{pipeline}/restricted"]
                    out["ratios"][f"{kind}/{test.upper()}/P{pipeline}"] = restricted / base if base else None
    finally:
        for server in servers.values():
            server.stop()
    results["acl"] = out
    return out


def render_acl(acl: dict) -> str:
    lines = ["", "ACL check cost: restricted user (key patterns) vs default user, rps medians",
             f"{'test':<10}{'server':<8}{'default':>12}{'restricted':>12}{'ratio':>8}{'shoal/redis':>13}"]
    for name in sorted(acl["ratios"], key=lambda k: (k.split("/")[1], k.split("/")[2], k.split("/")[0])):
        kind, test, pipe = name.split("/")
        ratio = acl["ratios"][name]
        other = acl["ratios"].get(f"redis/{test}/{pipe}")
        rel = f"{ratio / other:>13.2f}" if kind == "shoal" and ratio and other else f"{'':>13}"
        lines.append(
            f"{test + ' ' + pipe:<10}{kind:<8}{acl['median_rps'][f'{name}/default']:>12,.0f}"
            f"{acl['median_rps'][f'{name}/restricted']:>12,.0f}{ratio:>8.2f}{rel}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.acl_cost", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="20k requests, 1 round")
    p.add_argument("--rounds", type=int)
    p.add_argument("--requests", type=int)
    p.add_argument("--pipelines", default="1,16")
    p.add_argument("--clients", type=int, default=50)
    a = p.parse_args(argv)
    a.rounds = a.rounds or (1 if a.quick else 3)
    a.requests = a.requests or (20_000 if a.quick else 200_000)
    a.requests_pipelined = a.requests * 10
    a.pipelines = [int(x) for x in a.pipelines.split(",") if x.strip()]
    results: dict = {}
    acl_phase(a, results, lambda msg: print(msg, file=sys.stderr, flush=True))
    print(render_acl(results["acl"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
