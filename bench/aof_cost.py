"""What the append-only file costs: SET throughput with appendonly off / everysec / always, Shoal vs Redis.

    python -m bench.aof_cost            # standalone (also run by ``make bench`` via run_bench; --no-aof skips)
    python -m bench.aof_cost --quick    # 20k requests, 1 round
    python -m bench.aof_cost --requests 100000 --pipelines 1,16 --rounds 3 --modes off,everysec,always

For each mode a fresh server of each kind is started (``--appendonly no``, or
``--appendonly yes --appendfsync everysec|always``, RDB saves off) and
redis-benchmark runs ``SET`` (``-c 50 -t set -P DEPTH --csv``, random keys
from a 100k key space) against it, Redis then Shoal, one run at a time; the
server's CPU (utime+stime from /proc) is read around each run. Reported per
kind and mode: rps (median over rounds), server CPU us/op, the AOF size
written (INFO ``aof_current_size``), and the ratios ``mode/off`` (1.00 = the
AOF is free) and ``shoal/redis``. ``always`` fsyncs before every reply batch,
so its figure depends on the disk (here: whatever backs the temp directory).
Loopback only; every server is stopped by PID.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import time

from bench.procs import CLK_TCK, BenchServer
from bench.redisbench import BenchmarkError, parse_csv, redis_benchmark_path

__all__ = ["aof_phase", "render_aof", "main"]

KINDS = ("redis", "shoal")
MODES = ("off", "everysec", "always")


def _info(port: int) -> dict[str, str]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"*2\r\n$4\r\nINFO\r\n$11\r\npersistence\r\n")
        data = b""
        while not data.endswith(b"\r\n\r\n") or data.count(b"\r\n") < 3:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    text = data.decode(errors="replace")
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


def _args(mode: str) -> tuple[str, ...]:
    if mode == "off":
        return ()
    return ("--appendonly", "yes", "--appendfsync", mode, "--auto-aof-rewrite-percentage", "0")


def _run(server: BenchServer, requests: int, pipeline: int, clients: int) -> dict:
    argv = [redis_benchmark_path(), "-h", "127.0.0.1", "-p", str(server.port), "-c", str(clients),
            "-n", str(requests), "-P", str(pipeline), "-r", "100000", "--csv", "-t", "set"]
    before = server.cpu_ticks()
    t0 = time.monotonic()
    done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=120.0 + requests / 200.0)
    wall = time.monotonic() - t0
    ticks = server.cpu_ticks() - before
    rows = parse_csv(done.stdout)
    if done.returncode != 0 or "SET" not in rows:
        raise BenchmarkError(f"redis-benchmark failed ({' '.join(argv)}): {done.stderr[-400:] or done.stdout[-400:]}")
    return {"rps": rows["SET"]["rps"], "p50_ms": rows["SET"].get("p50_ms"), "wall_s": wall,
            "cpu_us_per_op": ticks / CLK_TCK * 1e6 / requests, "cpu_ticks": ticks}


def aof_phase(args, results: dict, log) -> dict:
    """Measure and store ``results["aof"]``; ``args`` needs rounds, requests, requests_pipelined, pipelines,
    clients, and optionally ``aof_modes`` (default off,everysec,always)."""
    modes = getattr(args, "aof_modes", None) or MODES
    out: dict = {"modes": list(modes), "runs": {}, "median_rps": {}, "cpu_us_per_op": {}, "aof_bytes": {},
                 "ratios_vs_off": {}, "shoal_over_redis": {}}
    for mode in modes:
        for kind in KINDS:
            server = BenchServer(kind, *_args(mode))
            try:
                server.start()
                for pipeline in args.pipelines:
                    requests = args.requests if pipeline == 1 else args.requests_pipelined
                    runs = [_run(server, requests, pipeline, args.clients) for _ in range(args.rounds)]
                    key = f"{kind}/{mode}/P{pipeline}"
                    out["runs"][key] = runs
                    out["median_rps"][key] = statistics.median(r["rps"] for r in runs)
                    out["cpu_us_per_op"][key] = statistics.median(r["cpu_us_per_op"] for r in runs)
                    log(f"aof: {key}: {out['median_rps'][key]:,.0f} rps, "
                        f"{out['cpu_us_per_op'][key]:.1f} us CPU/op")
                if mode != "off":
                    out["aof_bytes"][f"{kind}/{mode}"] = int(_info(server.port).get("aof_current_size", 0))
            finally:
                server.stop()
    for pipeline in args.pipelines:
        for mode in modes:
            for kind in KINDS:
                base = out["median_rps"].get(f"{kind}/off/P{pipeline}")
                value = out["median_rps"][f"{kind}/{mode}/P{pipeline}"]
                out["ratios_vs_off"][f"{kind}/{mode}/P{pipeline}"] = value / base if base else None
            r = out["median_rps"][f"redis/{mode}/P{pipeline}"]
            out["shoal_over_redis"][f"{mode}/P{pipeline}"] = out["median_rps"][f"shoal/{mode}/P{pipeline}"] / r
    results["aof"] = out
    return out


def render_aof(aof: dict) -> str:
    lines = ["", "AOF cost: SET rps (median) by appendonly mode; ratio = mode/off; last column shoal/redis rps",
             f"{'mode':<10}{'P':>3}{'redis rps':>12}{'ratio':>7}{'us/op':>7}{'shoal rps':>12}{'ratio':>7}"
             f"{'us/op':>7}{'shoal/redis':>13}"]
    pipes = sorted({int(k.rsplit("/P", 1)[1]) for k in aof["median_rps"]})
    for pipeline in pipes:
        for mode in aof["modes"]:
            cells = []
            for kind in KINDS:
                key = f"{kind}/{mode}/P{pipeline}"
                ratio = aof["ratios_vs_off"].get(key)
                cells.append(f"{aof['median_rps'][key]:>12,.0f}{(ratio or 0):>7.2f}{aof['cpu_us_per_op'][key]:>7.1f}")
            rel = aof["shoal_over_redis"][f"{mode}/P{pipeline}"]
            lines.append(f"{mode:<10}{pipeline:>3}{''.join(cells)}{rel:>13.2f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.aof_cost", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="20k requests, 1 round")
    p.add_argument("--rounds", type=int)
    p.add_argument("--requests", type=int)
    p.add_argument("--pipelines", default="1,16")
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--modes", default=",".join(MODES))
    a = p.parse_args(argv)
    a.rounds = a.rounds or (1 if a.quick else 3)
    a.requests = a.requests or (20_000 if a.quick else 200_000)
    a.requests_pipelined = a.requests * 10
    a.pipelines = [int(x) for x in a.pipelines.split(",") if x.strip()]
    a.aof_modes = [m for m in a.modes.split(",") if m]
    if "off" not in a.aof_modes:
        a.aof_modes.insert(0, "off")
    results: dict = {}
    aof_phase(a, results, lambda msg: print(msg, file=sys.stderr, flush=True))
    print(render_aof(results["aof"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
