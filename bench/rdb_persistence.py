"""RDB persistence figures, Shoal vs redis-server: SAVE time, load time, BGSAVE fork/COW cost, and
client latency while a BGSAVE runs compared with idle.

    python -m bench.rdb_persistence [--keys 1000000] [--seconds 3] [--only shoal|redis]

``make bench`` runs it as its RDB section (``rdb_phase``) with 200,000 keys (``--rdb-keys 1000000`` for
the full figure, ``--no-rdb`` to skip), and adds the time of ``shoal backup create`` and ``restore`` of
the same data set (into a fresh Shoal and into redis-server).

Each server gets ``--keys`` string keys (``key:<n>`` -> 16 bytes, the memory phase's loader), then:

* idle: one client sends GET of random keys back to back for ``--seconds``; per-request latency;
* SAVE: wall time of the blocking SAVE;
* BGSAVE: the same client keeps sending GETs from the moment BGSAVE is acknowledged until INFO says
  the child is done; latency percentiles, the fork time (``latest_fork_usec``), the child's
  copy-on-write size (``rdb_last_cow_size``) and the save's wall time;
* load: the server is restarted on the file; the "DB loaded from disk: X seconds" log line.

Loopback only; servers stopped by PID.
"""

from __future__ import annotations

import argparse
import random
import re
import socket
import time
from pathlib import Path

from bench.loader import load_keys
from tests.servers import ServerProcess

_GET = b"*2\r\n$3\r\nGET\r\n"


def _connect(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def _call(s: socket.socket, *args: str) -> bytes:
    s.sendall(b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a.encode()) for a in args))
    data = b""
    while True:
        data += s.recv(1 << 20)
        if data.startswith((b"+", b"-", b":")) and data.endswith(b"\r\n"):
            return data
        if data.startswith(b"$"):
            head, _, rest = data.partition(b"\r\n")
            if len(rest) >= int(head[1:]) + 2:
                return data


def _info(s: socket.socket) -> dict[str, str]:
    text = _call(s, "INFO", "all").decode(errors="replace")
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


def _get(s: socket.socket, n: int) -> float:
    key = b"key:%d" % n
    start = time.perf_counter()
    s.sendall(_GET + b"$%d\r\n%s\r\n" % (len(key), key))
    data = b""
    while not data.endswith(b"\r\n") or data.count(b"\r\n") < 2:
        data += s.recv(4096)
    return time.perf_counter() - start


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000  # noqa: E731
    return {"n": len(ordered), "p50_ms": pick(0.50), "p99_ms": pick(0.99), "max_ms": ordered[-1] * 1000}


def measure(kind: str, nkeys: int, seconds: float) -> dict:
    rng = random.Random(1)
    proc = ServerProcess(kind).start()
    result: dict = {"kind": kind, "keys": nkeys}
    try:
        result["fill_s"] = load_keys(proc.port, nkeys)
        probe, admin = _connect(proc.port), _connect(proc.port)
        idle = []
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            idle.append(_get(probe, rng.randrange(nkeys)))
        result["idle"] = _percentiles(idle)
        start = time.monotonic()
        assert _call(admin, "SAVE") == b"+OK\r\n"
        result["save_s"] = time.monotonic() - start
        during = []
        start = time.monotonic()
        assert _call(admin, "BGSAVE").startswith(b"+Background saving started")
        polled = time.monotonic()
        while True:
            during.append(_get(probe, rng.randrange(nkeys)))
            if time.monotonic() - polled > 0.05:
                polled = time.monotonic()
                if _info(admin)["rdb_bgsave_in_progress"] == "0":
                    break
        result["bgsave_s"] = time.monotonic() - start
        info = _info(admin)
        result["bgsave_status"] = info["rdb_last_bgsave_status"]
        result["during_bgsave"] = _percentiles(during)
        result["fork_ms"] = int(info["latest_fork_usec"]) / 1000
        result["cow_mb"] = int(info["rdb_last_cow_size"]) / 2**20
        result["rss_mb"] = int(info["used_memory_rss"]) / 2**20
        probe.close()
        admin.close()
        proc.stop(keep_dir=True)
        proc.start(timeout=600)
        deadline = time.monotonic() + 600  # redis-server answers PING (-LOADING) while it loads
        while not (match := re.findall(r"DB loaded from disk: ([\d.]+) seconds", proc.log())):
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        result["load_s"] = float(match[-1]) if match else None
    finally:
        proc.stop()
    return result


RATIO_FIELDS = (("save_s", "SAVE wall time (s)"), ("load_s", "load at start (s)"),
                ("bgsave_s", "BGSAVE wall time (s)"), ("fork_ms", "fork time (ms)"))


def measure_backup(nkeys: int) -> dict:
    """``shoal backup`` create + restore of ``nkeys`` keys (standalone Shoal -> fresh Shoal and redis-server)."""
    import tempfile

    from cluster import backup

    out: dict = {"keys": nkeys}
    src = ServerProcess("shoal").start()
    try:
        load_keys(src.port, nkeys)
        with tempfile.TemporaryDirectory(prefix="shoal-bench-backup-") as dest:
            start = time.monotonic()
            m = backup.create_set("127.0.0.1", src.port, dest, out=lambda s: None)
            out["create_s"] = time.monotonic() - start
            out["set_bytes"] = m["totals"]["stored_bytes"]
            for kind in ("shoal", "redis"):
                with ServerProcess(kind) as target:
                    start = time.monotonic()
                    report = backup.restore_set(Path(dest) / m["set_id"], "127.0.0.1", target.port,
                                                out=lambda s: None)
                    out[f"restore_into_{kind}_s"] = time.monotonic() - start
                    if report["restored"] != nkeys:
                        raise RuntimeError(f"restore into {kind}: {report['restored']} of {nkeys} keys")
    finally:
        src.stop()
    return out


def rdb_phase(args, results: dict, log) -> None:
    """The RDB section of ``make bench`` (``python -m bench.run_bench``; ``--no-rdb`` skips it)."""
    section: dict = {"keys": args.rdb_keys, "seconds": args.rdb_seconds}
    for kind in ("redis", "shoal"):
        log(f"rdb {kind}: {args.rdb_keys:,} keys ...")
        try:
            section[kind] = measure(kind, args.rdb_keys, args.rdb_seconds)
        except Exception as exc:  # noqa: BLE001 - one server failing must not lose the rest of the report
            section[kind] = {"error": f"{type(exc).__name__}: {exc}"}
            log(f"rdb {kind} failed: {exc}")
    r, s = section["redis"], section["shoal"]
    section["ratios"] = {key: (s[key] / r[key] if "error" not in r and "error" not in s and s.get(key) is not None
                               and r.get(key) else None) for key, _ in RATIO_FIELDS}
    try:
        section["backup"] = measure_backup(args.rdb_keys)
    except Exception as exc:  # noqa: BLE001
        section["backup"] = {"error": f"{type(exc).__name__}: {exc}"}
        log(f"rdb backup figures failed: {exc}")
    results["rdb"] = section


def render_rdb(section: dict) -> str:
    lines = ["", f"RDB persistence: {section['keys']:,} string keys (16-byte values); ratio = shoal/redis"]
    r, s = section["redis"], section["shoal"]
    for kind, m in (("redis", r), ("shoal", s)):
        if "error" in m:
            lines.append(f"  ERR {kind}: {m['error'][:110]}")
    if "error" not in r and "error" not in s:
        for key, label in RATIO_FIELDS:
            ratio = section["ratios"][key]
            lines.append(f"  {label:<27} redis {_num(r[key])}  shoal {_num(s[key])}  ratio "
                         f"{'-' if ratio is None else format(ratio, '.2f')}")
        lines.append(f"  {'BGSAVE child COW (MB)':<27} redis {r['cow_mb']:.1f}  shoal {s['cow_mb']:.1f}")
        for phase in ("idle", "during_bgsave"):
            lines.append(f"  {'GET p99 ' + phase + ' (ms)':<27} redis {r[phase]['p99_ms']:.3f}  "
                         f"shoal {s[phase]['p99_ms']:.3f}")
    b = section.get("backup") or {}
    if "error" in b:
        lines.append(f"  ERR shoal backup: {b['error'][:110]}")
    elif b:
        lines.append(f"  shoal backup create {b['create_s']:.2f} s ({b['set_bytes'] / 2**20:.1f} MB), restore into "
                     f"shoal {b['restore_into_shoal_s']:.2f} s, into redis {b['restore_into_redis_s']:.2f} s "
                     f"({b['keys'] / b['restore_into_redis_s']:,.0f} keys/s)")
    return "\n".join(lines)


def _num(v) -> str:
    return "-" if v is None else f"{v:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--only", choices=("shoal", "redis"))
    args = parser.parse_args()
    kinds = (args.only,) if args.only else ("redis", "shoal")
    for kind in kinds:
        r = measure(kind, args.keys, args.seconds)
        print(f"{kind}: {r['keys']} keys, RSS {r['rss_mb']:.0f} MB")
        print(f"  SAVE {r['save_s']:.2f} s, load at start-up {r['load_s']} s")
        print(f"  BGSAVE {r['bgsave_s']:.2f} s ({r['bgsave_status']}), fork {r['fork_ms']:.1f} ms, "
              f"child copy-on-write {r['cow_mb']:.0f} MB")
        for phase in ("idle", "during_bgsave"):
            p = r[phase]
            print(f"  GET latency {phase:14s} n={p['n']:6d}  p50 {p['p50_ms']:.3f} ms  p99 {p['p99_ms']:.3f} ms"
                  f"  max {p['max_ms']:.1f} ms")


if __name__ == "__main__":
    main()
