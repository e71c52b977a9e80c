"""Replication figures, Shoal->Shoal vs redis->redis: full sync time, and streaming catch-up.

    python -m bench.replication_bench [--keys 200000] [--stream 100000] [--only shoal|redis]
    python -m bench.replication_bench --keys 1000000          # the full figure

``make bench`` runs it as its replication section (``replication_phase``) with 200,000 keys
(``--repl-keys 1000000`` for the full figure, ``--no-repl`` to skip).

For each kind: a primary gets ``--keys`` string keys (``key:<n>`` -> 16 bytes, the memory phase's
loader); a fresh replica of the same kind is started standalone, then ``REPLICAOF`` the primary;

* full sync: wall time from REPLICAOF until the replica's link is up with every key loaded;
* other clients during the full sync: one more connection sends ``PING`` (1 ms apart) to the primary
  from REPLICAOF until the link is up; its max and p99 latency (Shoal's primary snapshots in a fork
  child, as Redis; before that it serialised in-process and every client waited);
* stream: ``--stream`` SETs pipelined into the primary, then the time until the replica's processed
  offset equals the primary's (from the first SET sent).

Both primaries run with ``repl-diskless-sync-delay 0`` (the default 5 s wait would dominate).
Loopback only; servers stopped by PID.
"""

from __future__ import annotations

import argparse
import socket
import threading
import time

from bench.loader import load_keys
from tests.servers import ServerProcess


def _call(s: socket.socket, *args) -> bytes:
    parts = [a if isinstance(a, bytes) else str(a).encode() for a in args]
    s.sendall(b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in parts))
    data = b""
    while True:
        chunk = s.recv(1 << 20)
        if not chunk:
            raise ConnectionError("server closed the connection")
        data += chunk
        if data.startswith((b"+", b"-", b":")) and data.endswith(b"\r\n"):
            return data
        if data.startswith(b"$"):
            head, _, rest = data.partition(b"\r\n")
            if len(rest) >= int(head[1:]) + 2:
                return data


def _info(s: socket.socket) -> dict[str, str]:
    text = _call(s, "INFO", "replication").decode(errors="replace")
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


def _connect(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=300)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def _wait_caught_up(p: socket.socket, r: socket.socket, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        target = _info(p)["master_repl_offset"]
        ri = _info(r)
        if ri.get("master_link_status") == "up" and ri.get("slave_repl_offset") == target:
            return
        time.sleep(0.005)
    raise TimeoutError("replica did not catch up")


def _pipeline_sets(port: int, count: int, batch: int = 1000) -> None:
    with _connect(port) as s:
        for first in range(0, count, batch):
            n = min(batch, count - first)
            s.sendall(b"".join(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$5\r\nvalue\r\n" % (len(k), k)
                               for k in (b"stream:%d" % i for i in range(first, first + n))))
            want = 5 * n
            got = 0
            while got < want:
                chunk = s.recv(1 << 20)
                if not chunk:
                    raise ConnectionError("primary closed the connection")
                got += len(chunk)


def _pinger(port: int, stop: threading.Event, latencies: list, errors: list) -> None:
    """PING the primary until ``stop``: each round trip's seconds into ``latencies``."""
    try:
        with _connect(port) as s:
            while not stop.is_set():
                start = time.perf_counter()
                s.sendall(b"*1\r\n$4\r\nPING\r\n")
                got = b""
                while not got.endswith(b"\r\n"):
                    chunk = s.recv(64)
                    if not chunk:
                        raise ConnectionError("primary closed the PING connection")
                    got += chunk
                latencies.append(time.perf_counter() - start)
                time.sleep(0.001)
    except Exception as exc:  # noqa: BLE001 - reported in the result
        errors.append(f"{type(exc).__name__}: {exc}")


def measure(kind: str, nkeys: int, nstream: int, timeout: float = 900.0) -> dict:
    extra = ("--repl-diskless-sync-delay", "0")
    with ServerProcess(kind, *extra) as primary, ServerProcess(kind) as replica:
        load_keys(primary.port, nkeys)
        with _connect(primary.port) as p, _connect(replica.port) as r:
            stop = threading.Event()
            latencies: list = []
            errors: list = []
            pinger = threading.Thread(target=_pinger, args=(primary.port, stop, latencies, errors), daemon=True)
            pinger.start()
            try:
                start = time.monotonic()
                _call(r, "REPLICAOF", "127.0.0.1", primary.port)
                deadline = start + timeout
                while True:
                    info = _info(r)
                    if info.get("master_link_status") == "up" and int(_call(r, "DBSIZE")[1:-2]) == nkeys:
                        break
                    if time.monotonic() > deadline:
                        raise TimeoutError("full sync did not finish")
                    time.sleep(0.005)
                full_sync_s = time.monotonic() - start
            finally:
                stop.set()
                pinger.join(timeout=60)
            during = sorted(latencies)
            pings = {"count": len(during), "errors": errors[:3],
                     "max_ms": during[-1] * 1000 if during else None,
                     "p99_ms": during[min(len(during) - 1, int(len(during) * 0.99))] * 1000 if during else None}
            stream_s = None
            if nstream:
                start = time.monotonic()
                _pipeline_sets(primary.port, nstream)
                _wait_caught_up(p, r, timeout)
                stream_s = time.monotonic() - start
            return {"full_sync_s": full_sync_s, "stream_s": stream_s, "pings_during_sync": pings,
                    "stream_ops_per_s": nstream / stream_s if stream_s else None}


def replication_phase(args, results: dict, log) -> None:
    """The replication section of ``make bench`` (``--no-repl`` skips it)."""
    keys = getattr(args, "repl_keys", None) or 200_000
    stream = getattr(args, "repl_stream", None)
    if stream is None:
        stream = 100_000
    section: dict = {"keys": keys, "stream": stream}
    for kind in ("redis", "shoal"):
        log(f"replication {kind}: {keys:,} keys, {stream:,} streamed SETs ...")
        try:
            section[kind] = measure(kind, keys, stream)
        except Exception as exc:  # noqa: BLE001 - one failing must not lose the rest of the report
            section[kind] = {"error": f"{type(exc).__name__}: {exc}"}
            log(f"replication {kind} failed: {exc}")
    r, s = section["redis"], section["shoal"]
    ok = "error" not in r and "error" not in s
    section["ratios"] = {
        "full_sync_s": s["full_sync_s"] / r["full_sync_s"] if ok and r["full_sync_s"] else None,
        "stream_s": s["stream_s"] / r["stream_s"] if ok and r.get("stream_s") and s.get("stream_s") else None,
    }
    results["replication"] = section


def render_replication(section: dict) -> str:
    lines = ["", f"Replication: full sync of {section['keys']:,} string keys, then {section['stream']:,} "
                 "pipelined SETs streamed; ratio = shoal/redis"]
    r, s = section["redis"], section["shoal"]
    for kind, m in (("redis", r), ("shoal", s)):
        if "error" in m:
            lines.append(f"  ERR {kind}: {m['error'][:110]}")
    if "error" not in r and "error" not in s:
        for key, label in (("full_sync_s", "full sync (s)"), ("stream_s", "stream catch-up (s)")):
            ratio = section["ratios"][key]
            rv, sv = r.get(key), s.get(key)
            lines.append(f"  {label:<22} redis {'-' if rv is None else format(rv, '.3f')}  shoal "
                         f"{'-' if sv is None else format(sv, '.3f')}  ratio "
                         f"{'-' if ratio is None else format(ratio, '.2f')}")
    for kind, m in (("redis", r), ("shoal", s)):
        pings = m.get("pings_during_sync") if "error" not in m else None
        if pings and pings.get("count"):
            lines.append(f"  other client during the full sync ({kind}): {pings['count']} PINGs, max "
                         f"{pings['max_ms']:.1f} ms, p99 {pings['p99_ms']:.1f} ms"
                         + (f", errors {pings['errors']}" if pings["errors"] else ""))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.replication_bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--keys", type=int, default=200_000, help="keys in the primary (default 200,000; 1,000,000 "
                                                              "for the full figure)")
    ap.add_argument("--stream", type=int, default=100_000, help="SETs streamed after the sync (0 skips)")
    ap.add_argument("--only", choices=("shoal", "redis"))
    a = ap.parse_args(argv)
    if a.only:
        print({a.only: measure(a.only, a.keys, a.stream)})
        return 0
    results: dict = {}
    replication_phase(argparse.Namespace(repl_keys=a.keys, repl_stream=a.stream), results,
                      lambda text: print(text, flush=True))
    print(render_replication(results["replication"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
