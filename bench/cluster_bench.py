"""The cluster section of ``make bench``: a 3-primary Shoal cluster against a 3-primary Redis cluster.

Both clusters are built the same way (``redis-cli --cluster create`` over
fresh nodes, no replicas, persistence off) and driven by
``redis-benchmark --cluster`` with SET and GET at ``-P 1`` and ``-P 16``, one
kind after the other. Server CPU per command is the sum over the three nodes
of utime+stime read from /proc before and after each run, divided by the
request count.

redis-benchmark's cluster mode runs a thread per node and notices the end of
a run only on a 250 ms tick, so request counts are large (1M at -P 1, 6M at
-P 16 by default) or the throughput figures are floors.
"""

from __future__ import annotations

import subprocess
import time

from bench.procs import CLK_TCK, BenchServer, free_cluster_port
from bench.redisbench import parse_csv, redis_benchmark_path

__all__ = ["cluster_phase", "CLUSTER_TARGETS"]

#: (test, pipeline, metric, op, limit) -- from issue S3.
CLUSTER_TARGETS = [
    ("SET", 1, "ops_ratio", ">=", 0.7), ("GET", 1, "ops_ratio", ">=", 0.7),
    ("SET", 16, "ops_ratio", ">=", 0.4), ("GET", 16, "ops_ratio", ">=", 0.4),
    ("SET", 1, "cpu_ratio", "<=", 2.5), ("GET", 1, "cpu_ratio", "<=", 2.5),
    ("SET", 16, "cpu_ratio", "<=", 2.5), ("GET", 16, "cpu_ratio", "<=", 2.5),
]


def _start_cluster(kind: str, log) -> list[BenchServer]:
    nodes = []
    try:
        for _ in range(3):
            node = BenchServer(kind, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                               "--cluster-node-timeout", "5000", pick_port=free_cluster_port)
            nodes.append(node.start())
        addresses = [f"127.0.0.1:{n.port}" for n in nodes]
        done = subprocess.run(["redis-cli", "--cluster", "create", *addresses, "--cluster-yes"],
                              capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{kind}: redis-cli --cluster create failed:\n{done.stdout}{done.stderr}")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            states = [subprocess.run(["redis-cli", "-p", str(n.port), "CLUSTER", "INFO"], capture_output=True,
                                     text=True, timeout=10).stdout for n in nodes]
            if all("cluster_state:ok" in s for s in states):
                break
            time.sleep(0.2)
        else:
            raise RuntimeError(f"{kind} cluster never reported cluster_state:ok")
        log(f"{kind} cluster up on ports {[n.port for n in nodes]}")
        return nodes
    except BaseException:
        for node in nodes:
            node.stop()
        raise


def _run(nodes: list[BenchServer], test: str, pipeline: int, requests: int, clients: int) -> dict:
    argv = [redis_benchmark_path(), "--cluster", "-h", "127.0.0.1", "-p", str(nodes[0].port), "-c", str(clients),
            "-n", str(requests), "-t", test.lower(), "-P", str(pipeline), "--csv"]
    before = sum(n.cpu_ticks() for n in nodes)
    t0 = time.monotonic()
    done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=120 + requests / 1000)
    wall = time.monotonic() - t0
    ticks = sum(n.cpu_ticks() for n in nodes) - before
    # In cluster mode redis-benchmark prints the node list before the CSV.
    rows = parse_csv(done.stdout[max(done.stdout.find('"test"'), 0):])
    if done.returncode != 0 or test.upper() not in rows:
        return {"error": (done.stderr or done.stdout)[-500:], "requests": requests}
    run = dict(rows[test.upper()])
    run.update({"requests": requests, "cpu_ticks": ticks, "cpu_us_per_op": ticks / CLK_TCK * 1e6 / requests,
                "wall_s": wall, "argv": argv})
    return run


def cluster_phase(args, results: dict, started: list, log) -> None:
    """Fill ``results["cluster"]`` with runs, ratios and targets."""
    section = {"runs": {}, "ratios": {}, "targets": [], "requests": {}}
    results["cluster"] = section
    for kind in ("redis", "shoal"):
        nodes = _start_cluster(kind, log)
        started.extend(nodes)
        try:
            for pipeline in args.pipelines:
                n = args.cluster_requests if pipeline == 1 else args.cluster_requests_pipelined
                section["requests"][str(pipeline)] = n
                for test in ("set", "get"):
                    run = _run(nodes, test, pipeline, n, args.clients)
                    section["runs"].setdefault(kind, {}).setdefault(test.upper(), {})[str(pipeline)] = run
                    if "error" in run:
                        log(f"[cluster] {test.upper()} -P {pipeline} {kind}: ERROR {run['error'][:200]}")
                    else:
                        log(f"[cluster] {test.upper():3} -P {pipeline:<2} {kind:5}: {run['rps']:>11,.0f} ops/s  "
                            f"cpu {run['cpu_us_per_op']:.2f} us/op (3 nodes, {run['cpu_ticks']} ticks, n={n})")
        finally:
            for node in nodes:
                node.stop()
    for test in ("SET", "GET"):
        for pipeline in args.pipelines:
            r = section["runs"]["redis"][test][str(pipeline)]
            s = section["runs"]["shoal"][test][str(pipeline)]
            ratio = {"ops_ratio": None, "cpu_ratio": None}
            if "error" not in r and "error" not in s:
                ratio["ops_ratio"] = s["rps"] / r["rps"] if r["rps"] else None
                ratio["cpu_ratio"] = s["cpu_us_per_op"] / r["cpu_us_per_op"] if r["cpu_us_per_op"] else None
            section["ratios"].setdefault(test, {})[str(pipeline)] = ratio
    for test, pipeline, metric, op, limit in CLUSTER_TARGETS:
        value = section["ratios"].get(test, {}).get(str(pipeline), {}).get(metric)
        met = None if value is None else (value <= limit if op == "<=" else value >= limit)
        section["targets"].append({"name": f"cluster {test} {'CPU' if metric == 'cpu_ratio' else 'ops'} ratio at "
                                           f"-P{pipeline} {op} {limit}", "value": value, "met": met})


def render_cluster(section: dict) -> str:
    lines = ["", "cluster (3 primaries each, redis-benchmark --cluster):",
             f"{'test':<5} {'-P':>3} {'n':>9} | {'redis ops/s':>12} {'shoal ops/s':>12} {'ratio':>6} | "
             f"{'cpu us/op r':>11} {'cpu us/op s':>11} {'ratio':>6}"]
    for test, by_p in section["ratios"].items():
        for p, ratio in by_p.items():
            r = section["runs"]["redis"][test][p]
            s = section["runs"]["shoal"][test][p]

            def fmt(m, key, spec):
                return "ERR" if "error" in m else format(m[key], spec)

            def rfmt(v):
                return "-" if v is None else f"{v:.2f}"

            lines.append(f"{test:<5} {p:>3} {section['requests'][p]:>9} | {fmt(r, 'rps', ',.0f'):>12} "
                         f"{fmt(s, 'rps', ',.0f'):>12} {rfmt(ratio['ops_ratio']):>6} | "
                         f"{fmt(r, 'cpu_us_per_op', '.2f'):>11} {fmt(s, 'cpu_us_per_op', '.2f'):>11} "
                         f"{rfmt(ratio['cpu_ratio']):>6}")
    for t in section["targets"]:
        status = {True: "MET", False: "NOT MET", None: "n/a"}[t["met"]]
        value = "-" if t["value"] is None else f"{t['value']:.2f}"
        lines.append(f"  {status:<8} {t['name']:<40} value {value:>6}")
    return "\n".join(lines)
