"""What TLS costs: SET/GET throughput and server CPU over tls-port vs the plain port, Shoal and Redis.

    python -m bench.tls_cost [--requests 200000] [--requests-pipelined 1000000] [--pipelines 1,16]
                             [--rounds 1] [--only shoal|redis] [--quick]

``make bench`` runs it as its TLS section (``tls_phase``; ``--no-tls`` skips it).

One server of each kind is started with both a plain ``port`` and a ``tls-port``
(``tls-auth-clients no``; a throw-away CA and server certificate made with
``trustme`` in a temp directory). For every pipeline depth and test the driver runs

    redis-benchmark -p PLAIN -c 50 -n N -t TEST -P DEPTH --csv
    redis-benchmark -p TLS   -c 50 -n N -t TEST -P DEPTH --csv --tls --cacert ca.crt

alternately, one at a time, reading the server's CPU (utime+stime from /proc) around
each run. Reported per kind: ops/s and server CPU us/op on each port, and the ratios
``tls/plain`` (ops ratio < 1 means TLS is slower; CPU ratio > 1 means TLS costs more CPU
per request). Redis's figures give the yardstick: Shoal's TLS overhead is compared with
Redis's own (both use OpenSSL; Shoal through Python's ``ssl`` with memory BIOs).

The benchmark client runs on the same 2 cores, and TLS costs it CPU too, so ops/s on TLS
are partly the client's limit; the CPU-per-op figures are the server's alone.
Loopback only; every server is stopped by PID in a ``finally``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.procs import CLK_TCK, REPO, BenchServer, free_port
from bench.redisbench import parse_csv, redis_benchmark_path

__all__ = ["make_certs", "render_tls", "tls_phase"]

TESTS = ("set", "get")


def make_certs(directory: str) -> dict[str, str]:
    """A CA and a server certificate for 127.0.0.1/localhost, written as PEM files into ``directory``."""
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    paths = {name: str(Path(directory) / f"{name}.pem") for name in ("ca", "cert", "key")}
    ca.cert_pem.write_to_path(paths["ca"])
    cert.cert_chain_pems[0].write_to_path(paths["cert"])
    cert.private_key_pem.write_to_path(paths["key"])
    return paths


def _server_args(tls_port: int, certs: dict[str, str]) -> tuple[str, ...]:
    return ("--tls-port", str(tls_port), "--tls-cert-file", certs["cert"], "--tls-key-file", certs["key"],
            "--tls-ca-cert-file", certs["ca"], "--tls-auth-clients", "no")


def _run(server: BenchServer, port: int, test: str, pipeline: int, requests: int, clients: int,
         certs: dict[str, str] | None) -> dict:
    argv = [redis_benchmark_path(), "-h", "127.0.0.1", "-p", str(port), "-c", str(clients), "-n", str(requests),
            "-t", test, "-P", str(pipeline), "--csv"]
    if certs is not None:
        argv += ["--tls", "--cacert", certs["ca"]]
    before = server.cpu_ticks()
    t0 = time.monotonic()
    done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=120 + requests / 500)
    wall = time.monotonic() - t0
    ticks = server.cpu_ticks() - before
    try:
        rows = parse_csv(done.stdout)
    except Exception as exc:  # noqa: BLE001 - reported as the run's error
        rows = {}
        done.stderr += f" ({exc})"
    if done.returncode != 0 or test.upper() not in rows:
        return {"error": (done.stderr or done.stdout)[-500:], "requests": requests}
    run = dict(rows[test.upper()])
    run.update({"requests": requests, "cpu_ticks": ticks, "cpu_us_per_op": ticks / CLK_TCK * 1e6 / requests,
                "wall_s": wall})
    return run


def _median_run(runs: list[dict]) -> dict:
    good = [r for r in runs if "error" not in r]
    if not good:
        return runs[-1]
    return {"rps": statistics.median(r["rps"] for r in good),
            "cpu_us_per_op": statistics.median(r["cpu_us_per_op"] for r in good),
            "p50_ms": statistics.median(r["p50_ms"] for r in good),
            "cpu_ticks": min(r["cpu_ticks"] for r in good), "rounds": len(good)}


def tls_phase(args, results: dict, started: list, log) -> None:
    """Fill ``results["tls"]``: per kind, test and depth, plain vs TLS runs and the tls/plain ratios.

    ``args`` needs ``pipelines`` (list of ints) and ``clients``; ``tls_requests``,
    ``tls_requests_pipelined``, ``tls_rounds`` default to run_bench's ``requests``,
    ``min(requests_pipelined, 1M)`` and 1; ``tls_only`` picks one kind.
    """
    section: dict = {"runs": {}, "ratios": {}, "requests": {}}
    results["tls"] = section
    # Called from run_bench: the throughput section's request counts (pipelined capped at 1M), 1 round.
    if getattr(args, "tls_requests", None) is None:
        args.tls_requests = args.requests
    if getattr(args, "tls_requests_pipelined", None) is None:
        args.tls_requests_pipelined = min(args.requests_pipelined, 1_000_000)
    if getattr(args, "tls_rounds", None) is None:
        args.tls_rounds = 1
    kinds = [k for k in ("redis", "shoal") if getattr(args, "tls_only", None) in (None, k)]
    with tempfile.TemporaryDirectory(prefix="bench-tls-") as tmp:
        certs = make_certs(tmp)
        for kind in kinds:
            tls_port = free_port()
            server = BenchServer(kind, *_server_args(tls_port, certs))
            started.append(server)
            server.start()
            try:
                for pipeline in args.pipelines:
                    n = args.tls_requests if pipeline == 1 else args.tls_requests_pipelined
                    section["requests"][str(pipeline)] = n
                    for test in TESTS:
                        runs: dict[str, list] = {"plain": [], "tls": []}
                        for _ in range(args.tls_rounds):
                            runs["plain"].append(_run(server, server.port, test, pipeline, n, args.clients, None))
                            runs["tls"].append(_run(server, tls_port, test, pipeline, n, args.clients, certs))
                        med = {side: _median_run(r) for side, r in runs.items()}
                        section["runs"].setdefault(kind, {}).setdefault(test.upper(), {})[str(pipeline)] = med
                        ratio = {"ops_ratio": None, "cpu_ratio": None}
                        if "error" not in med["plain"] and "error" not in med["tls"]:
                            ratio["ops_ratio"] = med["tls"]["rps"] / med["plain"]["rps"]
                            ratio["cpu_ratio"] = med["tls"]["cpu_us_per_op"] / med["plain"]["cpu_us_per_op"]
                            log(f"[tls] {test.upper():3} -P {pipeline:<2} {kind:5}: plain {med['plain']['rps']:>10,.0f}"
                                f" ops/s {med['plain']['cpu_us_per_op']:.2f} us/op | tls {med['tls']['rps']:>10,.0f}"
                                f" ops/s {med['tls']['cpu_us_per_op']:.2f} us/op | ops x{ratio['ops_ratio']:.2f}"
                                f" cpu x{ratio['cpu_ratio']:.2f}")
                        else:
                            err = med["plain"].get("error") or med["tls"].get("error")
                            log(f"[tls] {test.upper()} -P {pipeline} {kind}: ERROR {str(err)[:200]}")
                        section["ratios"].setdefault(kind, {}).setdefault(test.upper(), {})[str(pipeline)] = ratio
            finally:
                server.stop()
    # Shoal's TLS overhead relative to Redis's: (shoal tls/plain) / (redis tls/plain).
    if "shoal" in section["ratios"] and "redis" in section["ratios"]:
        rel = {}
        for test, by_p in section["ratios"]["shoal"].items():
            for p, s in by_p.items():
                r = section["ratios"]["redis"][test][p]
                rel.setdefault(test, {})[p] = {
                    key: (s[key] / r[key] if s[key] and r[key] else None) for key in ("ops_ratio", "cpu_ratio")
                }
        section["shoal_vs_redis"] = rel


def render_tls(section: dict) -> str:
    lines = ["", "TLS cost (tls-port vs port, same server; ratios are tls/plain):",
             f"{'kind':<5} {'test':<4} {'-P':>3} {'n':>8} | {'plain ops/s':>11} {'tls ops/s':>11} {'ratio':>6} | "
             f"{'plain us/op':>11} {'tls us/op':>9} {'ratio':>6}"]

    def fmt(m, key, spec):
        return "ERR" if "error" in m else format(m[key], spec)

    def rfmt(v):
        return "-" if v is None else f"{v:.2f}"

    for kind, by_test in section["runs"].items():
        for test, by_p in by_test.items():
            for p, med in by_p.items():
                ratio = section["ratios"][kind][test][p]
                lines.append(
                    f"{kind:<5} {test:<4} {p:>3} {section['requests'][p]:>8} | {fmt(med['plain'], 'rps', ',.0f'):>11} "
                    f"{fmt(med['tls'], 'rps', ',.0f'):>11} {rfmt(ratio['ops_ratio']):>6} | "
                    f"{fmt(med['plain'], 'cpu_us_per_op', '.2f'):>11} {fmt(med['tls'], 'cpu_us_per_op', '.2f'):>9} "
                    f"{rfmt(ratio['cpu_ratio']):>6}")
    for test, by_p in section.get("shoal_vs_redis", {}).items():
        for p, rel in by_p.items():
            lines.append(f"  shoal's TLS factor / redis's TLS factor, {test} -P {p}: ops {rfmt(rel['ops_ratio'])}, "
                         f"cpu {rfmt(rel['cpu_ratio'])}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.tls_cost", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="20k / 100k requests, 1 round")
    p.add_argument("--requests", type=int, dest="tls_requests", help="-n at -P 1 (default 200,000)")
    p.add_argument("--requests-pipelined", type=int, dest="tls_requests_pipelined",
                   help="-n at -P > 1 (default 1,000,000)")
    p.add_argument("--pipelines", default="1,16")
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--rounds", type=int, dest="tls_rounds", default=1)
    p.add_argument("--only", dest="tls_only", choices=("shoal", "redis"))
    p.add_argument("--results-dir", default=str(REPO / "bench" / "results"))
    args = p.parse_args(argv)
    args.pipelines = [int(x) for x in args.pipelines.split(",") if x]
    if args.tls_requests is None:
        args.tls_requests = 20_000 if args.quick else 200_000
    if args.tls_requests_pipelined is None:
        args.tls_requests_pipelined = 100_000 if args.quick else 1_000_000

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    results: dict = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    started: list[BenchServer] = []
    try:
        tls_phase(args, results, started, log)
    finally:
        for server in started:
            server.stop()
    print(render_tls(results["tls"]))
    out = Path(args.results_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"tls-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    path.write_text(json.dumps(results, indent=1))
    print(f"\nresults: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
