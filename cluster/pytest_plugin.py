"""A pytest plugin for your own tests: a real local Shoal cluster you can break on purpose.

Installed with Shoal (entry point ``pytest11``), it gives tests a
``shoal_cluster`` fixture: fresh ``shoal-server`` processes joined into a
cluster, stopped by PID when the test ends. Configure it with a marker::

    @pytest.mark.shoal_cluster(primaries=3, replicas=1, node_timeout=2000)
    def test_my_app_survives_a_failover(shoal_cluster):
        app = MyApp(shoal_cluster.startup_nodes)
        app.save("order:1", "paid")
        shoal_cluster.kill(shoal_cluster.primary_for("order:1"))
        shoal_cluster.wait_stable()
        assert app.load("order:1") == "paid"   # your retry logic at work

The handle offers ``kill(node)``, ``restart(node)``, ``pause(node)``,
``resume(node)``, ``failover(slot_or_node, mode="")``, ``reshard(slots, to)``,
``wait_stable()``, ``client()`` (a redis-py ``RedisCluster``), and
``partition(groups)`` / ``heal()``. Nodes are indexes into ``nodes``. Every
node listens on its own loopback address (127.0.0.2, .3, ...), so a partition
is nftables rules between addresses; that needs a private network namespace
(run pytest under ``unshare --user --map-root-user --net``), and
``partition`` skips the test with the reason when it is not available.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from cluster.netns import in_private_netns, loopback_up
from cluster.resp import RespClient, RespError
from cluster.waiting import wait_until
from slots import keyslot

__all__ = ["ShoalCluster"]


def pytest_configure(config) -> None:
    config.addinivalue_line(
        "markers", "shoal_cluster(primaries=3, replicas=1, node_timeout=2000): shape of the shoal_cluster fixture")


@dataclass
class _Node:
    index: int
    host: str
    port: int
    dir: Path
    proc: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


def _call(node: _Node, *args, timeout: float = 2.0):
    with RespClient(node.host, node.port, timeout=timeout) as client:
        return client.call(*args)


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _common_port(hosts: list[str]) -> int:
    """A port free on every host, with its bus port (+10000) free too, below the ephemeral range."""
    import random

    rng = random.Random(os.getpid() ^ time.monotonic_ns())
    for _ in range(200):
        port = rng.randrange(12000, 22000)
        sockets = []
        try:
            for host in hosts:
                for p in (port, port + 10000):
                    s = socket.socket()
                    sockets.append(s)
                    s.bind((host, p))
            return port
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError("no port is free on every loopback address")


class ShoalCluster:
    """A running local cluster and the faults you can inflict on it."""

    def __init__(self, primaries: int = 3, replicas: int = 1, node_timeout: int = 2000) -> None:
        self.primaries = primaries
        self.replicas = replicas
        self.node_timeout = node_timeout
        self.base = Path(tempfile.mkdtemp(prefix="shoal-cluster-"))
        count = primaries * (1 + replicas)
        if in_private_netns():
            loopback_up()  # a fresh namespace starts with lo down
        hosts = [f"127.0.0.{i + 2}" for i in range(count)]
        port = _common_port(hosts)
        self.nodes = [_Node(i, host, port, self.base / f"n{i + 1}") for i, host in enumerate(hosts)]
        self._partitioned = False

    # ------------------------------------------------------------ lifecycle

    def _spawn(self, node: _Node) -> None:
        node.dir.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "node.main", "--port", str(node.port), "--bind", node.host,
                "--dir", str(node.dir), "--logfile", str(node.dir / "shoal.log"), "--save", "",
                "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", str(self.node_timeout), "--enable-debug-command", "yes",
                # a restarted replica resyncs at once instead of after Redis's default 5 s wait for company
                "--repl-diskless-sync-delay", "0"]
        node.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        self._wait(lambda: _call(node, "PING") == "PONG", 30, f"{node.address} to answer PING")

    def start(self) -> "ShoalCluster":
        for node in self.nodes:
            self._spawn(node)
        ids = [_text(_call(n, "CLUSTER", "MYID")) for n in self.nodes]
        per = 16384 // self.primaries
        for i, node in enumerate(self.nodes[:self.primaries]):
            last = 16383 if i == self.primaries - 1 else (i + 1) * per - 1
            _call(node, "CLUSTER", "ADDSLOTSRANGE", i * per, last)
        for i, node in enumerate(self.nodes):
            _call(node, "CLUSTER", "SET-CONFIG-EPOCH", i + 1)
        for node in self.nodes[1:]:
            _call(node, "CLUSTER", "MEET", self.nodes[0].host, self.nodes[0].port)
        self._wait(lambda: all(_text(_call(n, "CLUSTER", "NODES")).count("\n") >= len(self.nodes)
                               and "handshake" not in _text(_call(n, "CLUSTER", "NODES")) for n in self.nodes),
                   60, "every node to know every other")
        for j, node in enumerate(self.nodes[self.primaries:]):
            _call(node, "CLUSTER", "REPLICATE", ids[j % self.primaries])
        self.wait_stable()
        return self

    def stop(self) -> None:
        if self._partitioned:
            self.heal()
        for node in self.nodes:
            if node.proc is not None and node.proc.poll() is None:
                try:
                    os.kill(node.proc.pid, signal.SIGCONT)
                    node.proc.terminate()
                    node.proc.wait(10)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    node.proc.kill()
                    node.proc.wait(10)
        shutil.rmtree(self.base, ignore_errors=True)

    # --------------------------------------------------------------- views

    @property
    def startup_nodes(self) -> list[tuple[str, int]]:
        return [(n.host, n.port) for n in self.nodes]

    def client(self, **options):
        """A redis-py RedisCluster on this cluster (options go to its constructor)."""
        from redis.cluster import ClusterNode, RedisCluster

        return RedisCluster(startup_nodes=[ClusterNode(h, p) for h, p in self.startup_nodes], **options)

    def _live(self) -> list[_Node]:
        return [n for n in self.nodes if n.proc is not None and n.proc.poll() is None]

    def _nodes_lines(self, via: _Node) -> list[list[str]]:
        return [line.split() for line in _text(_call(via, "CLUSTER", "NODES")).splitlines() if line.strip()]

    def role(self, node: int) -> str:
        return _text(_call(self.nodes[node], "ROLE")[0])

    def primary_for(self, key_or_slot) -> int:
        """The index of the node serving a key (or a slot number) right now."""
        slot = key_or_slot if isinstance(key_or_slot, int) else keyslot(str(key_or_slot).encode())
        for node in self._live():
            try:
                for fields in self._nodes_lines(node):
                    if "master" not in fields[2] or "fail" in fields[2]:
                        continue
                    for token in fields[8:]:
                        lo, _, hi = token.partition("-")
                        if token[0].isdigit() and int(lo) <= slot <= int(hi or lo):
                            host, port = fields[1].split("@")[0].rsplit(":", 1)
                            return next(n.index for n in self.nodes if n.host == host and n.port == int(port))
                return -1
            except (OSError, ConnectionError, RespError):
                continue
        raise RuntimeError("no live node answered")

    # -------------------------------------------------------------- faults

    def kill(self, node: int) -> None:
        """SIGKILL the node's process (its data is gone unless it persisted)."""
        proc = self.nodes[node].proc
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(10)

    def restart(self, node: int) -> None:
        self.kill(node)
        self._spawn(self.nodes[node])

    def pause(self, node: int) -> None:
        os.kill(self.nodes[node].proc.pid, signal.SIGSTOP)

    def resume(self, node: int) -> None:
        os.kill(self.nodes[node].proc.pid, signal.SIGCONT)

    def failover(self, slot_or_node, mode: str = "") -> int:
        """Promote a replica of the primary serving a slot (or of node index ``slot_or_node`` given as
        ``("node", i)``) with CLUSTER FAILOVER [FORCE|TAKEOVER]; returns the promoted node's index."""
        if isinstance(slot_or_node, tuple):
            primary = slot_or_node[1]
        else:
            primary = self.primary_for(slot_or_node)
        primary_id = _text(_call(self.nodes[primary], "CLUSTER", "MYID"))
        for node in self._live():
            if node.index != primary and _text(_call(node, "CLUSTER", "MYID")) != primary_id:
                lines = self._nodes_lines(node)
                mine = next(f for f in lines if "myself" in f[2])
                if mine[3] == primary_id:
                    _call(node, "CLUSTER", "FAILOVER", *([mode.upper()] if mode else []))
                    self._wait(lambda n=node: _text(_call(n, "ROLE")[0]) == "master", 30,
                               f"{node.address} to become primary")
                    return node.index
        raise RuntimeError(f"the primary n{primary + 1} has no live replica to promote")

    def reshard(self, slots, to: int) -> int:
        """Move ``slots`` (an iterable of slot numbers) to node ``to``; returns keys moved."""
        from cluster.admin import ClusterView, Conn, move_slot

        conn = Conn()
        try:
            view = ClusterView(conn, self.nodes[to].address)
            target_id = _text(_call(self.nodes[to], "CLUSTER", "MYID"))
            target = view.nodes[target_id]
            owners = view.owner_of()
            moved = 0
            for slot in slots:
                source = view.nodes[owners[slot]]
                if source.id != target.id:
                    moved += move_slot(view, source, target, slot)
            return moved
        finally:
            conn.close()

    def partition(self, groups: list[list[int]]) -> None:
        """Cut traffic between the groups (nodes in the same group still talk). Needs a namespace."""
        if shutil.which("nft") is None:
            pytest.skip("partition() needs nftables (nft) installed")
        if not in_private_netns():
            pytest.skip("partition() needs a private network namespace (run pytest under "
                        "`unshare --user --map-root-user --net`); it never changes the host's rules")
        rules = ["table inet shoal_fixture {", "  chain output {", "    type filter hook output priority 0;"]
        for i, group in enumerate(groups):
            for other in groups[i + 1:]:
                for a in group:
                    for b in other:
                        rules.append(f"    ip saddr {self.nodes[a].host} ip daddr {self.nodes[b].host} drop")
                        rules.append(f"    ip saddr {self.nodes[b].host} ip daddr {self.nodes[a].host} drop")
        rules += ["  }", "}"]
        self.heal()
        done = subprocess.run(["nft", "-f", "-"], input="\n".join(rules).encode(), capture_output=True)
        if done.returncode != 0:
            pytest.skip("partition() needs a private network namespace (run pytest under "
                        "`unshare --user --map-root-user --net`): " + done.stderr.decode(errors="replace").strip())
        self._partitioned = True

    def heal(self) -> None:
        if not in_private_netns():
            return
        subprocess.run(["nft", "delete", "table", "inet", "shoal_fixture"], capture_output=True)
        self._partitioned = False

    # -------------------------------------------------------------- waiting

    def wait_stable(self, timeout: float = 60.0) -> None:
        """Until every live node says cluster_state:ok and they all agree on who serves which slot."""

        def stable() -> bool:
            signatures = set()
            for node in self._live():
                if "cluster_state:ok" not in _text(_call(node, "CLUSTER", "INFO")):
                    return False
                lines = self._nodes_lines(node)
                signatures.add(tuple(sorted((f[0], " ".join(t for t in f[8:] if t[0].isdigit()))
                                            for f in lines if "master" in f[2] and "fail" not in f[2])))
            return len(signatures) == 1

        self._wait(stable, timeout, "the cluster to be stable")

    _wait = staticmethod(wait_until)


@pytest.fixture
def shoal_cluster(request):
    """A fresh local Shoal cluster (see the module docstring); stopped when the test ends."""
    marker = request.node.get_closest_marker("shoal_cluster")
    options = dict(marker.kwargs) if marker is not None else {}
    cluster = ShoalCluster(**options)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
