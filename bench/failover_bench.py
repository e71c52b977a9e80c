"""The failover section of ``make bench``: how long a primary's death interrupts writes, Shoal vs Redis.

For each engine: six nodes (3 primaries + 3 replicas, ``cluster-node-timeout``
1000 ms, persistence off) joined by ``redis-cli --cluster create
--cluster-replicas 1``. Then ``--failover-kills`` times (default 10): pick the
primary serving a test key, SIGKILL it, and from that instant send
``SET key value`` to its replica every 5 ms over a raw connection until the
replica answers ``+OK`` -- that is the first successful write on the new
primary. The killed node is restarted in its directory (nodes.conf), and the
next kill waits until it is back as a replica with its replication link up
and every node reports ``cluster_state:ok``. Reported: median and max of the
kill-to-write times. Target (issue S5): Shoal's median <= 0.7 x Redis's with
the same node timeout. Every process is stopped by PID in a ``finally``.
"""

from __future__ import annotations

import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.procs import free_cluster_port
from cluster.waiting import wait_until

__all__ = ["failover_phase", "render_failover"]

NODE_TIMEOUT_MS = 1000


def _encode(*args) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def _call(port: int, *args, timeout: float = 2.0):
    import hiredis

    reader = hiredis.Reader()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(_encode(*args))
        while True:
            reply = reader.gets()
            if reply is not False:
                return reply
            data = sock.recv(65536)
            if not data:
                raise ConnectionError("closed")
            reader.feed(data)


class _Node:
    def __init__(self, kind: str, port: int, base: Path, extra: tuple = ()) -> None:
        self.kind = kind
        self.extra = extra
        self.port = port
        self.dir = base / str(port)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        if self.kind == "shoal":
            argv = [sys.executable, "-m", "node.main"]
        else:
            argv = ["redis-server"]
        argv += ["--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir), "--save", "",
                 "--appendonly", "no", "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                 "--cluster-node-timeout", str(NODE_TIMEOUT_MS), "--logfile", str(self.dir / "server.log"),
                 *self.extra]
        env = dict(os.environ)
        env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent) + os.pathsep + env.get("PYTHONPATH", "")
        self.proc = subprocess.Popen(argv, cwd=self.dir, env=env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        _wait(lambda: _call(self.port, "PING") in (b"PONG", "PONG"), 30, f"{self.kind} :{self.port} up")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGTERM)
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def _wait(predicate, timeout: float, what: str) -> None:
    wait_until(predicate, timeout, what, interval=0.05)


def _nodes(port: int) -> list[list[str]]:
    text = _call(port, "CLUSTER", "NODES")
    text = text.decode() if isinstance(text, bytes) else text
    return [line.split() for line in text.splitlines() if line.strip()]


def _stable(nodes: list[_Node]) -> bool:
    """Every node ok, three primaries each with one connected, synced replica."""
    for node in nodes:
        info = _call(node.port, "CLUSTER", "INFO")
        if b"cluster_state:ok" not in (info if isinstance(info, bytes) else info.encode()):
            return False
    lines = _nodes(nodes[0].port)
    replicas = [f for f in lines if "slave" in f[2] and "fail" not in f[2]]
    if len(replicas) != 3 or any("fail" in f[2] for f in lines):
        return False
    for f in replicas:
        port = int(f[1].split("@")[0].rsplit(":", 1)[1])
        info = _call(port, "INFO", "replication")
        if b"master_link_status:up" not in info:
            return False
    return True


def _measure(kind: str, kills: int, log, extra: tuple = ()) -> dict:
    base = Path(tempfile.mkdtemp(prefix=f"bench-failover-{kind}-"))
    nodes: list[_Node] = []
    try:
        for _ in range(6):
            node = _Node(kind, free_cluster_port(), base, extra)
            node.start()
            nodes.append(node)
        done = subprocess.run(["redis-cli", "--cluster", "create", *[f"127.0.0.1:{n.port}" for n in nodes],
                               "--cluster-replicas", "1", "--cluster-yes"], capture_output=True, text=True,
                              timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"cluster create failed: {done.stdout[-300:]}{done.stderr[-300:]}")
        _wait(lambda: _stable(nodes), 120, f"{kind} cluster stable")
        by_port = {n.port: n for n in nodes}
        times = []
        for i in range(kills):
            key = f"failover:{i % 3}"
            slot = _call(nodes[0].port, "CLUSTER", "KEYSLOT", key)
            lines = _nodes(nodes[0].port)
            primary = next(f for f in lines if "master" in f[2] and any(
                t[0].isdigit() and int(t.split("-")[0]) <= slot <= int(t.split("-")[-1]) for t in f[8:]))
            replica = next(f for f in lines if f[3] == primary[0])
            victim = by_port[int(primary[1].split("@")[0].rsplit(":", 1)[1])]
            heir = by_port[int(replica[1].split("@")[0].rsplit(":", 1)[1])]
            t0 = time.monotonic()
            victim.kill()
            while True:
                try:
                    if _call(heir.port, "SET", key, f"v{i}", timeout=1.0) in (b"OK", "OK"):
                        break
                except (OSError, ConnectionError):
                    pass
                except Exception:  # MOVED / CLUSTERDOWN replies: not yet
                    pass
                if time.monotonic() - t0 > 60:
                    raise RuntimeError("no failover within 60 s")
                time.sleep(0.005)
            elapsed = time.monotonic() - t0
            times.append(elapsed)
            log(f"[failover] {kind}{' ' + ' '.join(extra) if extra else ''} kill {i + 1}/{kills}: first write on the new primary after {elapsed:.2f} s")
            victim.start()
            _wait(lambda: _stable(nodes), 120, f"{kind} cluster stable after restart")
        return {"kills": kills, "seconds": times, "median_s": statistics.median(times), "max_s": max(times)}
    finally:
        for node in nodes:
            node.stop()
        subprocess.run(["rm", "-rf", str(base)])


def failover_phase(args, results: dict, started: list, log) -> None:
    section = {"node_timeout_ms": NODE_TIMEOUT_MS, "runs": {}, "targets": []}
    results["failover"] = section
    # "shoal-fast": cluster-fast-failover yes (spec section 11 (c): the election starts when FAIL is
    # known, delays scaled to the node timeout); the default keeps Redis's timing rules.
    variants = (("redis", "redis", ()), ("shoal", "shoal", ()),
                ("shoal-fast", "shoal", ("--cluster-fast-failover", "yes")))
    for name, kind, extra in variants:
        try:
            section["runs"][name] = _measure(kind, args.failover_kills, log, extra)
        except Exception as exc:  # reported, the bench goes on
            section["runs"][name] = {"error": str(exc)}
            log(f"[failover] {name}: ERROR {exc}")
    r = section["runs"].get("redis", {})
    for name in ("shoal", "shoal-fast"):
        s = section["runs"].get(name, {})
        ratio = s["median_s"] / r["median_s"] if "median_s" in r and "median_s" in s and r["median_s"] else None
        section[f"median_ratio_{name}"] = ratio
        section["targets"].append({"name": f"failover median (kill -> first write) {name}/redis <= 0.7",
                                   "value": ratio, "met": None if ratio is None else ratio <= 0.7})


def render_failover(section: dict) -> str:
    lines = ["", f"failover (3+3 nodes, node timeout {section['node_timeout_ms']} ms, kill -> first write on "
                 "the new primary):"]
    for kind in ("redis", "shoal", "shoal-fast"):
        run = section["runs"].get(kind, {})
        if "error" in run:
            lines.append(f"  {kind:10}: ERROR {run['error'][:200]}")
        elif run:
            lines.append(f"  {kind:10}: median {run['median_s']:.2f} s, max {run['max_s']:.2f} s over "
                         f"{run['kills']} kills")
    for target in section["targets"]:
        status = {True: "MET", False: "NOT MET", None: "n/a"}[target["met"]]
        value = "-" if target["value"] is None else f"{target['value']:.2f}"
        lines.append(f"  target {target['name']}: {value} {status}")
    return "\n".join(lines)
