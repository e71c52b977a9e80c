"""Launch a real N-node cluster of either engine, one loopback "host" per node.

Node ``i`` binds ``127.0.0.(i+2)`` and every node uses the same client port
(the cluster bus is port + 10000), the way a real deployment has one port on
many hosts. Linux routes all of 127.0.0.0/8 to ``lo``, so no setup is needed;
``loopback_hosts_usable()`` checks that binding works before a run.

Engines: ``shoal`` (``python -m node.main``) and ``redis`` (``redis-server``),
started with the same flags (persistence off, cluster mode on, the given
``cluster-node-timeout``). The cluster is formed with ``redis-cli --cluster
create`` -- the real tool, unchanged -- optionally with
``--cluster-replicas``. Each node has its own directory under one temp dir,
so ``restart(i)`` reloads that node's ``nodes.conf``.

Process faults act by PID: ``kill`` (SIGKILL), ``pause`` (SIGSTOP),
``resume`` (SIGCONT), ``restart``. ``stop_all()`` ends every node this object
started (SIGCONT first, so a paused node can act on SIGTERM) and removes the
temp dir; call it in a ``finally``.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

__all__ = ["ClusterError", "LocalCluster", "engine_available", "loopback_hosts_usable", "node_host"]

REPO = Path(__file__).resolve().parent.parent
BUS_OFFSET = 10000
ENGINES = ("shoal", "redis")


class ClusterError(RuntimeError):
    pass


def node_host(i: int) -> str:
    """The loopback address of node ``i`` (0-based): 127.0.0.2, 127.0.0.3, ..."""
    if not 0 <= i < 250:
        raise ValueError("node index out of range")
    return f"127.0.0.{i + 2}"


def loopback_hosts_usable(n: int) -> str | None:
    """None if ``n`` loopback addresses can be bound here, else why not."""
    for i in range(n):
        try:
            with socket.socket() as s:
                s.bind((node_host(i), 0))
        except OSError as e:
            return f"cannot bind {node_host(i)}: {e}"
    return None


def engine_available(engine: str) -> str | None:
    """None if ``engine`` and ``redis-cli`` can be run, else why not."""
    if engine not in ENGINES:
        return f"unknown engine {engine!r} (choose from {', '.join(ENGINES)})"
    if shutil.which("redis-cli") is None:
        return "redis-cli is not installed (it forms the cluster: apt-get install redis-tools)"
    if engine == "redis" and shutil.which("redis-server") is None:
        return "redis-server is not installed"
    return None


def _free_common_port(hosts: list[str], rng: random.Random) -> int:
    """A port that is free, with its bus port, on every host (below the ephemeral range)."""
    for _ in range(500):
        port = rng.randint(12000, 22700)
        try:
            for host in hosts:
                for p in (port, port + BUS_OFFSET):
                    with socket.socket() as s:
                        s.bind((host, p))
        except OSError:
            continue
        return port
    raise ClusterError("no port free on every loopback host")


def _client(host: str, port: int, timeout: float = 2.0) -> redis.Redis:
    return redis.Redis(host=host, port=port, socket_timeout=timeout, socket_connect_timeout=timeout,
                       retry=Retry(NoBackoff(), 0))


def _parse_info(text: str) -> dict[str, str]:
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


@dataclass
class Node:
    index: int
    host: str
    port: int
    dir: Path
    argv: list[str]
    proc: subprocess.Popen | None = None
    paused: bool = False
    starts: int = 0
    history: list[str] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class LocalCluster:
    """An N-node cluster of ``engine`` on 127.0.0.2.. (see the module docstring)."""

    def __init__(self, engine: str = "shoal", nodes: int = 3, *, replicas: int = 0, node_timeout: int = 2000,
                 seed: int = 0, base_dir: str | None = None, options: list[str] | tuple = (),
                 env: dict | None = None) -> None:
        why = engine_available(engine) or loopback_hosts_usable(nodes)
        if why:
            raise ClusterError(why)
        if nodes < 3:
            raise ClusterError("redis-cli --cluster create needs at least 3 primaries")
        if nodes < 3 * (1 + replicas):
            raise ClusterError(f"{nodes} nodes cannot hold 3 primaries with {replicas} replica(s) each")
        self.engine = engine
        self.replicas = replicas
        self.node_timeout = node_timeout
        self.env = dict(env or {})  # extra environment for the node processes (e.g. SHOAL_MUTANT)
        self.root = Path(tempfile.mkdtemp(prefix=f"jepsen-{engine}-", dir=base_dir))
        hosts = [node_host(i) for i in range(nodes)]
        self.port = _free_common_port(hosts, random.Random(seed ^ os.getpid()))
        self.nodes: list[Node] = []
        for i, host in enumerate(hosts):
            d = self.root / f"n{i + 1}"
            d.mkdir()
            base = [sys.executable, "-m", "node.main"] if engine == "shoal" else [shutil.which("redis-server")]
            argv = base + [
                "--port", str(self.port), "--bind", host, "--dir", str(d),
                "--logfile", str(d / "server.log"), "--save", "", "--appendonly", "no",
                "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", str(node_timeout),
                # only loopback addresses are bound; Redis counts 127.0.0.N (N > 1) as remote and would refuse
                # its replicas' connections in protected mode
                "--protected-mode", "no",
            ]
            # outgoing connections (replication; Redis's bus too) speak from the node's own address, so
            # partitions between addresses cut them (Shoal's bus binds its own address by itself)
            argv += ["--bind-source-addr", host]
            argv += list(options)  # scenario directives, e.g. --cluster-replica-no-failover yes
            self.nodes.append(Node(i, host, self.port, d, argv))

    # ------------------------------------------------------------ lifecycle
    def _spawn(self, node: Node) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
        env.pop("SHOAL_MUTANT", None)  # only the mutants this cluster was asked for
        env.update(self.env)
        node.proc = subprocess.Popen(node.argv, cwd=node.dir, env=env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=open(node.dir / "stderr.log", "ab"))
        node.paused = False
        node.starts += 1

    def _wait_up(self, node: Node, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not node.alive():
                raise ClusterError(f"node {node.index} ({node.address}) exited with {node.proc.returncode}: "
                                   f"{self.log_tail(node.index)}")
            try:
                if _client(node.host, node.port, 0.5).ping():
                    return
            except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError):
                pass
            time.sleep(0.05)
        raise ClusterError(f"node {node.index} ({node.address}) did not answer PING within {timeout:.0f} s")

    def start(self, timeout: float = 90.0) -> "LocalCluster":
        """Start every node and form the cluster; returns self."""
        for node in self.nodes:
            self._spawn(node)
        for node in self.nodes:
            self._wait_up(node)
        argv = ["redis-cli", "--cluster", "create", *[n.address for n in self.nodes],
                "--cluster-replicas", str(self.replicas), "--cluster-yes"]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as e:
            raise ClusterError(f"redis-cli --cluster create did not finish within {timeout:.0f} s: "
                               f"{(e.stdout or b'')[-1500:]!r}") from None
        if done.returncode != 0 or "[OK] All 16384 slots covered." not in done.stdout:
            raise ClusterError(f"redis-cli --cluster create failed ({done.returncode}):\n"
                               f"{done.stdout[-2000:]}{done.stderr[-2000:]}")
        self.wait_healthy(timeout)
        return self

    def stop_all(self) -> None:
        """Stop every node by PID (SIGCONT, SIGTERM, then SIGKILL) and remove the temp dir."""
        for node in self.nodes:
            if node.alive():
                try:
                    os.kill(node.pid, signal.SIGCONT)
                    os.kill(node.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for node in self.nodes:
            if node.proc is None:
                continue
            try:
                node.proc.wait(10)
            except subprocess.TimeoutExpired:
                try:
                    os.kill(node.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                node.proc.wait()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "LocalCluster":
        try:
            return self.start()
        except BaseException:
            self.stop_all()
            raise

    def __exit__(self, *exc) -> None:
        self.stop_all()

    # --------------------------------------------------------------- faults
    def kill(self, i: int) -> None:
        node = self.nodes[i]
        if node.alive():
            os.kill(node.pid, signal.SIGKILL)
            node.proc.wait()
        node.paused = False

    def restart(self, i: int, timeout: float = 30.0) -> None:
        """Start node ``i`` again in the same dir (it reloads its nodes.conf); kills it first if alive."""
        node = self.nodes[i]
        if node.alive():
            self.kill(i)
        self._spawn(node)
        self._wait_up(node, timeout)

    def pause(self, i: int) -> None:
        node = self.nodes[i]
        if node.alive():
            os.kill(node.pid, signal.SIGSTOP)
            node.paused = True

    def resume(self, i: int) -> None:
        node = self.nodes[i]
        if node.alive():
            os.kill(node.pid, signal.SIGCONT)
        node.paused = False

    def heal_processes(self) -> list[str]:
        """Resume paused nodes and restart dead ones; returns what was done."""
        done = []
        for node in self.nodes:
            if node.paused:
                self.resume(node.index)
                done.append(f"resumed n{node.index + 1}")
            if not node.alive():
                self.restart(node.index)
                done.append(f"restarted n{node.index + 1}")
        return done

    # ---------------------------------------------------------------- state
    def client(self, i: int, timeout: float = 2.0) -> redis.Redis:
        return _client(self.nodes[i].host, self.nodes[i].port, timeout)

    def cluster_info(self, i: int) -> dict[str, str]:
        raw = self.client(i).execute_command("CLUSTER", "INFO")
        return _parse_info(raw.decode() if isinstance(raw, bytes) else raw)

    def cluster_nodes(self, i: int) -> list[list[str]]:
        raw = self.client(i).execute_command("CLUSTER", "NODES")  # two-word form: redis-py leaves it raw
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        return [line.split() for line in text.splitlines() if line.strip()]

    def slot_owners(self, via: int | None = None) -> dict[str, list[tuple[int, int]]]:
        """Primary address -> slot ranges, as one reachable node sees it."""
        for i in ([via] if via is not None else range(len(self.nodes))):
            if not self.nodes[i].alive() or self.nodes[i].paused:
                continue
            try:
                out: dict[str, list[tuple[int, int]]] = {}
                for f in self.cluster_nodes(i):
                    if "master" not in f[2].split(","):
                        continue
                    addr = f[1].split("@")[0]
                    for tok in f[8:]:
                        if tok.startswith("["):
                            continue
                        lo, _, hi = tok.partition("-")
                        out.setdefault(addr, []).append((int(lo), int(hi or lo)))
                return out
            except (redis.RedisError, OSError):
                continue
        raise ClusterError("no node answered CLUSTER NODES")

    def primaries(self) -> list[int]:
        """Indices of the nodes that own slots."""
        owners = self.slot_owners()
        return [n.index for n in self.nodes if owners.get(n.address)]

    def node_for_slot(self, slot: int) -> int | None:
        for addr, ranges in self.slot_owners().items():
            if any(lo <= slot <= hi for lo, hi in ranges):
                for n in self.nodes:
                    if n.address == addr:
                        return n.index
        return None

    def _signature(self, i: int) -> str:
        return "|".join(sorted(f"{f[0]}:{' '.join(sorted(t for t in f[8:] if not t.startswith('[')))}"
                               for f in self.cluster_nodes(i)))

    def healthy(self) -> bool:
        """Every node answers, reports cluster_state:ok, knows every node, and all agree on the slots."""
        sigs = set()
        for node in self.nodes:
            if not node.alive() or node.paused:
                return False
            info = self.cluster_info(node.index)
            if info.get("cluster_state") != "ok" or int(info.get("cluster_known_nodes", 0)) != len(self.nodes):
                return False
            if any("fail" in f[2].split(",") or "pfail" in f[2].split(",") for f in self.cluster_nodes(node.index)):
                return False
            sigs.add(self._signature(node.index))
        return len(sigs) == 1

    def wait_healthy(self, timeout: float) -> float:
        """Wait until ``healthy()``; returns the seconds it took. Raises ClusterError on timeout."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            try:
                if self.healthy():
                    return time.monotonic() - start
            except (redis.RedisError, OSError, ValueError):
                pass
            time.sleep(0.1)
        raise ClusterError(f"the cluster did not become healthy within {timeout:.0f} s")

    # ------------------------------------------------------- roles and slots
    def index_of(self, addr: str) -> int | None:
        """The node index of ``host:port`` (also accepts ``host:port@cport``)."""
        addr = addr.split("@")[0]
        for n in self.nodes:
            if n.address == addr:
                return n.index
        return None

    def node_id(self, i: int) -> str:
        raw = self.client(i).execute_command("CLUSTER", "MYID")
        return raw.decode() if isinstance(raw, bytes) else str(raw)

    def topology(self, via: int | None = None) -> dict[int, tuple[str, int | None]]:
        """Node index -> (``master``/``slave``, index of its primary or None), as one live node sees it."""
        for i in ([via] if via is not None else range(len(self.nodes))):
            if not self.nodes[i].alive() or self.nodes[i].paused:
                continue
            try:
                lines = self.cluster_nodes(i)
            except (redis.RedisError, OSError):
                continue
            ids = {f[0]: self.index_of(f[1]) for f in lines}
            out = {}
            for f in lines:
                idx = ids[f[0]]
                if idx is None:
                    continue
                flags = f[2].split(",")
                role = "master" if "master" in flags else "slave" if "slave" in flags else "?"
                out[idx] = (role, ids.get(f[3]) if f[3] != "-" else None)
            return out
        raise ClusterError("no node answered CLUSTER NODES")

    def replicas_of(self, i: int, via: int | None = None) -> list[int]:
        return sorted(j for j, (role, m) in self.topology(via).items() if role == "slave" and m == i)

    def role_of(self, i: int) -> str:
        """What node ``i`` says about itself (INFO replication role): master / slave / down."""
        if not self.nodes[i].alive() or self.nodes[i].paused:
            return "down"
        try:
            return str(self.info(i).get("role", "?"))
        except (redis.RedisError, OSError):
            return "down"

    def info(self, i: int, section: str = "replication") -> dict:
        """INFO ``section`` of node ``i`` as a dict (redis-py parses it)."""
        return self.client(i).info(section)

    def link_up(self, i: int) -> bool:
        return self.info(i).get("master_link_status") == "up"

    def wait_for(self, predicate, timeout: float, interval: float = 0.05, stop=None):
        """Poll ``predicate()`` (errors count as falsy) until it is truthy; returns it, or None on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                v = predicate()
                if v:
                    return v
            except (redis.RedisError, OSError, ClusterError, ValueError, KeyError):
                pass
            if stop is not None and stop.is_set():
                return None
            time.sleep(interval)
        return None

    def migrate_slot(self, slot: int, src: int, dst: int, *, finish: bool = True, batch: int = 100) -> int:
        """Move ``slot`` from ``src`` to ``dst`` the way redis-cli --cluster reshard does (IMPORTING,
        MIGRATING, MIGRATE of every key, SETSLOT NODE everywhere); returns the keys moved. With
        ``finish=False`` it stops after marking the slot and moving the first batch of keys: a
        half-migrated slot, as an interrupted reshard leaves it."""
        s, d = self.client(src, 5.0), self.client(dst, 5.0)
        src_id, dst_id = self.node_id(src), self.node_id(dst)
        d.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", src_id)
        s.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id)
        moved = 0
        while True:
            keys = s.execute_command("CLUSTER", "GETKEYSINSLOT", slot, batch)
            if keys:
                s.execute_command("MIGRATE", self.nodes[dst].host, self.nodes[dst].port, "", 0, 5000,
                                  "KEYS", *keys)
                moved += len(keys)
            if not finish:
                return moved
            if not keys:
                break
        self.finish_slot(slot, dst)
        return moved

    def finish_slot(self, slot: int, dst: int) -> None:
        """SETSLOT NODE ``dst`` on the destination first, then on every other live primary."""
        dst_id = self.node_id(dst)
        self.client(dst, 5.0).execute_command("CLUSTER", "SETSLOT", slot, "NODE", dst_id)
        for n in self.nodes:
            if n.index != dst and n.alive() and not n.paused:
                try:
                    if self.role_of(n.index) == "master":
                        self.client(n.index, 5.0).execute_command("CLUSTER", "SETSLOT", slot, "NODE", dst_id)
                except redis.RedisError:
                    pass

    def fix(self, timeout: float = 120.0) -> str:
        """``redis-cli --cluster fix`` (the real tool): closes open slots; returns its output."""
        live = next(n for n in self.nodes if n.alive() and not n.paused)
        done = subprocess.run(["redis-cli", "--cluster", "fix", live.address, "--cluster-yes"], capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        return done.stdout + done.stderr

    def log_tail(self, i: int, chars: int = 1500) -> str:
        parts = []
        for name in ("server.log", "stderr.log"):
            try:
                parts.append((self.nodes[i].dir / name).read_text(errors="replace")[-chars:])
            except OSError:
                pass
        return "\n".join(parts)

    def logs_contain(self, needle: str) -> list[int]:
        """Indices of nodes whose logs contain ``needle`` (e.g. "Traceback")."""
        hits = []
        for node in self.nodes:
            for name in ("server.log", "stderr.log"):
                try:
                    if needle in (node.dir / name).read_text(errors="replace"):
                        hits.append(node.index)
                        break
                except OSError:
                    pass
        return hits
