"""The cost of maxmemory: SET/GET throughput with no limit, with an idle limit, and under eviction.

    python -m bench.eviction_cost            # standalone (also run by ``make bench`` via run_bench)
    python -m bench.eviction_cost --quick

One shoal-server and one redis-server are started (persistence off). For each
server, three configurations are measured with redis-benchmark (``-c 50``,
``-r 1000000`` random keys, 100-byte values), Redis then Shoal, one run at a
time, rps = median over the rounds:

* ``nolimit``  -- maxmemory 0 (the default hot path);
* ``limit``    -- maxmemory 4gb, allkeys-lru: never reached, so this is the
  price of the per-command maxmemory check and of LRU access tracking;
* ``evicting`` -- maxmemory 8mb, allkeys-lru, SET only: the data set is
  filled first, so every SET of a new key evicts (``evicted_keys`` is
  recorded to show it did).

Reported per server and test: rps per configuration, each configuration's
rps / nolimit, and Shoal's ratio / Redis's (1.00 = maxmemory costs Shoal
what it costs Redis). Every process started here is stopped by PID.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys

from bench.procs import CLK_TCK, BenchServer, cpu_ticks
from bench.redisbench import BenchmarkError, parse_csv, redis_benchmark_path

__all__ = ["eviction_phase", "main", "render_eviction"]

KINDS = ("redis", "shoal")
CONFIGS = {
    "nolimit": (("maxmemory", "0"), ("maxmemory-policy", "noeviction")),
    "limit": (("maxmemory", "4gb"), ("maxmemory-policy", "allkeys-lru")),
    "evicting": (("maxmemory", "8mb"), ("maxmemory-policy", "allkeys-lru")),
}
KEYSPACE = 1_000_000
VALUE_SIZE = 100


def _call(port: int, *argv: str) -> bytes:
    import socket

    payload = b"*%d\r\n" % len(argv) + b"".join(b"$%d\r\n%b\r\n" % (len(a.encode()), a.encode()) for a in argv)
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(payload)
        return s.recv(1 << 16)


def _info_field(port: int, section: str, name: str) -> int:
    text = _call(port, "INFO", section).decode(errors="replace")
    for line in text.split("\r\n"):
        if line.startswith(name + ":"):
            return int(line.split(":", 1)[1])
    return 0


def _run(port: int, test: str, requests: int, pipeline: int, clients: int) -> float:
    argv = [redis_benchmark_path(), "-h", "127.0.0.1", "-p", str(port), "-c", str(clients), "-n", str(requests),
            "-P", str(pipeline), "-r", str(KEYSPACE), "-d", str(VALUE_SIZE), "--csv", "-t", test]
    done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=120.0 + requests / 500.0)
    rows = parse_csv(done.stdout)
    if done.returncode != 0 or test.upper() not in rows:
        raise BenchmarkError(f"redis-benchmark failed ({' '.join(argv)}): {done.stderr[-400:] or done.stdout[-400:]}")
    return rows[test.upper()]["rps"]


def _configure(port: int, config: str) -> None:
    _call(port, "CONFIG", "SET", "maxmemory", "0")  # so FLUSHALL/filling below are never refused
    _call(port, "FLUSHALL")
    for name, value in CONFIGS[config]:
        reply = _call(port, "CONFIG", "SET", name, value)
        if not reply.startswith(b"+OK"):
            raise RuntimeError(f"CONFIG SET {name} {value}: {reply!r}")


def eviction_phase(args, results: dict, log) -> dict:
    """Measure and store ``results["eviction"]``; ``args`` needs rounds, requests, requests_pipelined,
    pipelines, clients."""
    servers: dict[str, BenchServer] = {}
    out: dict = {"keyspace": KEYSPACE, "value_size": VALUE_SIZE, "configs": {k: dict(v) for k, v in CONFIGS.items()},
                 "runs": {}, "median_rps": {}, "ratios": {}, "evicted_keys": {}, "cpu_us_per_op": {}}
    try:
        for kind in KINDS:
            servers[kind] = BenchServer(kind).start()
        for pipeline in args.pipelines:
            requests = args.requests if pipeline == 1 else args.requests_pipelined
            for test in ("set", "get"):
                for config in CONFIGS:
                    if config == "evicting" and test != "set":
                        continue
                    for kind in KINDS:
                        port = servers[kind].port
                        rps = []
                        cpu = []
                        for _ in range(args.rounds):
                            _configure(port, config)
                            if config == "evicting":
                                _run(port, "set", 40_000, 16, args.clients)  # fill up to the limit first
                                _call(port, "CONFIG", "RESETSTAT")
                            before = cpu_ticks(servers[kind].pid)
                            rps.append(_run(port, test, requests, pipeline, args.clients))
                            cpu.append((cpu_ticks(servers[kind].pid) - before) / CLK_TCK * 1e6 / requests)
                        key = f"{kind}/{test.upper()}/P{pipeline}/{config}"
                        out["cpu_us_per_op"][key] = statistics.median(cpu)
                        if config == "evicting":
                            out["evicted_keys"][key] = _info_field(port, "stats", "evicted_keys")
                        out["runs"][key] = rps
                        out["median_rps"][key] = statistics.median(rps)
                        log(f"eviction: {key}: {out['median_rps'][key]:,.0f} rps, "
                            f"{out['cpu_us_per_op'][key]:.2f} us server CPU/op"
                            + (f" ({out['evicted_keys'][key]:,} evicted)" if config == "evicting" else ""))
                for kind in KINDS:
                    base = out["median_rps"][f"{kind}/{test.upper()}/P{pipeline}/nolimit"]
                    for config in CONFIGS:
                        key = f"{kind}/{test.upper()}/P{pipeline}/{config}"
                        if key in out["median_rps"]:
                            out["ratios"][key] = out["median_rps"][key] / base if base else None
    finally:
        for server in servers.values():
            server.stop()
    results["eviction"] = out
    return out


def render_eviction(ev: dict) -> str:
    lines = ["", "maxmemory cost: rps with no limit / an unreached limit (allkeys-lru) / under eviction (SET);"
                 " then server CPU us/op",
             f"{'test':<10}{'server':<8}{'nolimit':>11}{'limit':>11}{'evicting':>11}"
             f"{'limit/no':>10}{'evict/no':>10}{'shoal/redis (evict/no)':>24}"
             f"{'cpu no':>9}{'cpu lim':>9}{'cpu evi':>9}"]
    tests = sorted({tuple(k.split("/")[1:3]) for k in ev["median_rps"]})
    for test, pipe in tests:
        for kind in KINDS:
            med = ev["median_rps"]
            ratio = ev["ratios"]
            base = med.get(f"{kind}/{test}/{pipe}/nolimit")
            lim = med.get(f"{kind}/{test}/{pipe}/limit")
            evi = med.get(f"{kind}/{test}/{pipe}/evicting")
            r_lim = ratio.get(f"{kind}/{test}/{pipe}/limit")
            r_evi = ratio.get(f"{kind}/{test}/{pipe}/evicting")
            rel = ""
            if kind == "shoal" and r_evi:
                other = ratio.get(f"redis/{test}/{pipe}/evicting")
                rel = f"{r_evi / other:.2f}" if other else ""
            fmt = lambda v, spec: format(v, spec) if v is not None else "-"  # noqa: E731
            cpu = [ev["cpu_us_per_op"].get(f"{kind}/{test}/{pipe}/{c}") for c in ("nolimit", "limit", "evicting")]
            lines.append(f"{test + ' ' + pipe:<10}{kind:<8}{fmt(base, '>11,.0f'):>11}{fmt(lim, '>11,.0f'):>11}"
                         f"{fmt(evi, '>11,.0f'):>11}{fmt(r_lim, '>10.2f'):>10}{fmt(r_evi, '>10.2f'):>10}{rel:>24}"
                         + "".join(f"{fmt(c, '>9.2f'):>9}" for c in cpu))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.eviction_cost", description=__doc__.split("\n\n")[0])
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
    eviction_phase(a, results, lambda msg: print(msg, file=sys.stderr, flush=True))
    print(render_eviction(results["eviction"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
