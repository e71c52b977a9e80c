"""The migration section of ``make bench``: moving slots and big keys, Shoal against Redis.

Two figures from issue S6, each measured for both engines in the same run:

* **Reshard throughput.** A 3-primary cluster (``redis-cli --cluster create``)
  is loaded with ``--migration-keys`` string keys (default 200,000), then
  ``redis-cli --cluster reshard`` moves ``--migration-slots`` slots (default
  4096) from the first primary to the second. Keys per second = keys that
  were in those slots / wall time of the reshard. Target: Shoal >= 0.5 x Redis.
  Also shown: ms per slot, and the CPU the three servers used per slot (a
  figure a busy machine disturbs less than the wall time: redis-cli waits on
  a round trip per step, so every server's CPU slows the whole reshard).
* **Other clients during a big-key move.** A standalone source holds a hash
  of ``--big-fields`` fields (default 1,000,000) and MIGRATEs it to another
  server of the same kind while a probe client sends GETs back to back on the
  source; we report the probe's p50/p99/max latency during the move and the
  move's duration. Target: Shoal's p99 <= 50 ms. (Redis moves a key in one
  blocking step, so its max is the whole move: shown for reference.)

Every server is started and stopped by PID (bench.procs.BenchServer).
"""

from __future__ import annotations

import socket
import subprocess
import threading
import time

from bench.procs import CLK_TCK, BenchServer, free_cluster_port
from slots import keyslot

__all__ = ["migration_phase", "render_migration"]


def _cmd(port: int, *args, timeout: float = 120.0):
    """One command over a raw connection (the bench avoids client-library overheads)."""
    import hiredis

    reader = hiredis.Reader()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(_encode(args))
        while True:
            reply = reader.gets()
            if reply is not False:
                return reply
            data = sock.recv(1 << 16)
            if not data:
                raise ConnectionError("closed")
            reader.feed(data)


def _encode(args) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def _pipeline(port: int, commands, batch: int = 1000) -> None:
    import hiredis

    with socket.create_connection(("127.0.0.1", port), timeout=120) as sock:
        reader = hiredis.Reader()
        for start in range(0, len(commands), batch):
            chunk = commands[start:start + batch]
            sock.sendall(b"".join(_encode(c) for c in chunk))
            got = 0
            while got < len(chunk):
                reply = reader.gets()
                if reply is False:
                    reader.feed(sock.recv(1 << 20))
                    continue
                if isinstance(reply, hiredis.ReplyError):
                    raise RuntimeError(f"load failed: {reply}")
                got += 1


def _cluster(kind: str, log) -> list[BenchServer]:
    nodes = []
    try:
        for _ in range(3):
            nodes.append(BenchServer(kind, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                                     "--cluster-node-timeout", "5000", pick_port=free_cluster_port).start())
        addresses = [f"127.0.0.1:{n.port}" for n in nodes]
        done = subprocess.run(["redis-cli", "--cluster", "create", *addresses, "--cluster-yes"],
                              capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{kind}: cluster create failed: {done.stdout}{done.stderr}")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if all(b"cluster_state:ok" in _cmd(n.port, "CLUSTER", "INFO") for n in nodes):
                break
            time.sleep(0.2)
        else:
            raise RuntimeError(f"{kind} cluster never reached cluster_state:ok")
        return nodes
    except BaseException:
        for node in nodes:
            node.stop()
        raise


def _reshard(kind: str, keys: int, slots: int, log) -> dict:
    nodes = _cluster(kind, log)
    try:
        ids = [_cmd(n.port, "CLUSTER", "MYID").decode() for n in nodes]
        owner_of = {}
        for line in _cmd(nodes[0].port, "CLUSTER", "NODES").decode().splitlines():
            parts = line.split()
            for token in parts[8:]:
                if token.startswith("["):
                    continue
                lo, _, hi = token.partition("-")
                owner_of[(int(lo), int(hi or lo))] = parts[0]
        by_port = {}
        for i in range(keys):
            key = f"key:{i}"
            slot = keyslot(key.encode())
            owner = next(node for (lo, hi), node in owner_of.items() if lo <= slot <= hi)
            by_port.setdefault(owner, []).append(("SET", key, "x" * 16))
        port_of = dict(zip(ids, (n.port for n in nodes)))
        for owner, commands in by_port.items():
            _pipeline(port_of[owner], commands)
        first_slots = sorted((lo, hi) for (lo, hi), node in owner_of.items() if node == ids[0])
        moving = []
        for lo, hi in first_slots:
            moving.extend(range(lo, hi + 1))
        moving = moving[:slots]
        moved_keys = sum(_cmd(nodes[0].port, "CLUSTER", "COUNTKEYSINSLOT", s) for s in moving)
        cpu_before = [node.cpu_ticks() for node in nodes]
        start = time.perf_counter()
        done = subprocess.run(
            ["redis-cli", "--cluster", "reshard", f"127.0.0.1:{nodes[0].port}", "--cluster-from", ids[0],
             "--cluster-to", ids[1], "--cluster-slots", str(slots), "--cluster-yes"],
            capture_output=True, text=True, timeout=3600,
        )
        elapsed = time.perf_counter() - start
        cpu_s = sum(node.cpu_ticks() - before for node, before in zip(nodes, cpu_before)) / CLK_TCK
        if done.returncode != 0:
            return {"error": (done.stdout + done.stderr)[-500:]}
        run = {"keys_moved": moved_keys, "slots": slots, "seconds": elapsed, "keys_per_s": moved_keys / elapsed,
               "ms_per_slot": elapsed * 1000 / slots, "server_cpu_ms_per_slot": cpu_s * 1000 / slots}
        log(f"[migration] {kind:5} reshard {slots} slots / {moved_keys} keys in {elapsed:.2f} s "
            f"= {run['keys_per_s']:,.0f} keys/s, {run['ms_per_slot']:.2f} ms/slot "
            f"(servers' CPU {run['server_cpu_ms_per_slot']:.2f} ms/slot)")
        return run
    finally:
        for node in nodes:
            node.stop()


def _big_key_move(kind: str, fields: int, log) -> dict:
    source = BenchServer(kind).start()
    target = BenchServer(kind).start()
    try:
        batch = 1000
        _pipeline(source.port, [["HSET", "big", *sum(([f"f{j}", str(j)] for j in range(i, min(fields, i + batch))),
                                                        [])] for i in range(0, fields, batch)], batch=50)
        latencies: list[float] = []
        stop = threading.Event()

        def probe() -> None:
            import hiredis

            with socket.create_connection(("127.0.0.1", source.port), timeout=120) as sock:
                reader = hiredis.Reader()
                request = _encode(("GET", "probe"))
                while not stop.is_set():
                    t0 = time.perf_counter()
                    sock.sendall(request)
                    while True:
                        reply = reader.gets()
                        if reply is not False:
                            break
                        reader.feed(sock.recv(4096))
                    latencies.append(time.perf_counter() - t0)

        thread = threading.Thread(target=probe)
        thread.start()
        time.sleep(0.2)
        start = time.perf_counter()
        reply = _cmd(source.port, "MIGRATE", "127.0.0.1", target.port, "big", 0, 600_000, timeout=600)
        elapsed = time.perf_counter() - start
        time.sleep(0.1)
        stop.set()
        thread.join()
        if reply != b"OK":
            return {"error": repr(reply)}
        latencies.sort()
        n = len(latencies)
        run = {"fields": fields, "move_seconds": elapsed, "probe_requests": n,
               "p50_ms": latencies[n // 2] * 1000, "p99_ms": latencies[min(n - 1, int(n * 0.99))] * 1000,
               "max_ms": latencies[-1] * 1000}
        log(f"[migration] {kind:5} {fields}-field hash moved in {elapsed:.2f} s; other client p50 "
            f"{run['p50_ms']:.2f} ms p99 {run['p99_ms']:.2f} ms max {run['max_ms']:.1f} ms")
        return run
    finally:
        source.stop()
        target.stop()


def migration_phase(args, results: dict, started: list, log) -> None:
    section = {"reshard": {}, "big_key": {}, "targets": []}
    results["migration"] = section
    for kind in ("redis", "shoal"):
        try:
            section["reshard"][kind] = _reshard(kind, args.migration_keys, args.migration_slots, log)
        except Exception as exc:  # a failed engine is reported, the bench goes on
            section["reshard"][kind] = {"error": str(exc)}
        try:
            section["big_key"][kind] = _big_key_move(kind, args.big_fields, log)
        except Exception as exc:
            section["big_key"][kind] = {"error": str(exc)}
    r, s = section["reshard"].get("redis", {}), section["reshard"].get("shoal", {})
    ratio = s["keys_per_s"] / r["keys_per_s"] if "keys_per_s" in r and "keys_per_s" in s else None
    section["reshard_ratio"] = ratio
    section["targets"].append({"name": "reshard keys/s ratio >= 0.5", "value": ratio,
                               "met": None if ratio is None else ratio >= 0.5})
    p99 = section["big_key"].get("shoal", {}).get("p99_ms")
    section["targets"].append({"name": "p99 of other clients during a big-key move <= 50 ms", "value": p99,
                               "met": None if p99 is None else p99 <= 50})


def render_migration(section: dict) -> str:
    lines = ["", "migration (redis-cli --cluster reshard; MIGRATE of a big hash):"]
    for kind in ("redis", "shoal"):
        run = section["reshard"].get(kind, {})
        if "error" in run:
            lines.append(f"  reshard {kind:5}: ERROR {run['error'][:200]}")
        elif run:
            lines.append(f"  reshard {kind:5}: {run['keys_moved']} keys / {run['slots']} slots in "
                         f"{run['seconds']:.2f} s = {run['keys_per_s']:,.0f} keys/s, "
                         f"{run['ms_per_slot']:.2f} ms/slot (servers' CPU {run['server_cpu_ms_per_slot']:.2f} ms/slot)")
    for kind in ("redis", "shoal"):
        run = section["big_key"].get(kind, {})
        if "error" in run:
            lines.append(f"  big key {kind:5}: ERROR {run['error'][:200]}")
        elif run:
            lines.append(f"  big key {kind:5}: {run['fields']} fields in {run['move_seconds']:.2f} s; other client "
                         f"p50 {run['p50_ms']:.2f} / p99 {run['p99_ms']:.2f} / max {run['max_ms']:.1f} ms")
    for target in section["targets"]:
        status = {True: "MET", False: "NOT MET", None: "n/a"}[target["met"]]
        value = "-" if target["value"] is None else f"{target['value']:.2f}"
        lines.append(f"  target {target['name']}: {value} {status}")
    return "\n".join(lines)
