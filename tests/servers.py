"""Start and stop real server processes for tests: shoal-server and redis-server.

Both are started the same way (``--port N --bind 127.0.0.1 ...``), wait until
they answer PING, and are stopped by PID (SIGTERM, then SIGKILL). Ports come
from the kernel (bind to port 0, read it back, close), on loopback only.
"""

from __future__ import annotations

import contextlib

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["ServerProcess", "free_cluster_port", "free_port", "redis_server_path", "shoal_server_cmd"]

REPO = Path(__file__).resolve().parent.parent


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def free_cluster_port(host: str = "127.0.0.1") -> int:
    """A free port whose bus port (+10000) is free too, both below the ephemeral range (32768+)."""
    import random

    for _ in range(500):
        port = random.randint(12000, 22700)
        try:
            for p in (port, port + 10000):
                with socket.socket() as s:
                    s.bind((host, p))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair for a cluster node")


def redis_server_path() -> str:
    path = shutil.which("redis-server")
    if path is None:
        raise RuntimeError(
            "redis-server is not installed; the differential tests need real Redis 7 "
            "(apt-get install redis-server redis-tools)"
        )
    return path


def shoal_server_cmd() -> list[str]:
    return [sys.executable, "-m", "node.main"]


class ServerProcess:
    """One server process on 127.0.0.1. Use as a context manager or call stop()."""

    def __init__(self, kind: str, *args: str, port: int | None = None, host: str = "127.0.0.1") -> None:
        assert kind in ("shoal", "redis")
        self.kind = kind
        self.host = host
        cluster = "--cluster-enabled" in args and args[args.index("--cluster-enabled") + 1] == "yes"
        self.port = port or (free_cluster_port(host) if cluster else free_port(host))
        self.dir = tempfile.mkdtemp(prefix=f"{kind}-{self.port}-")
        self.log_path = os.path.join(self.dir, "server.log")
        base = shoal_server_cmd() if kind == "shoal" else [redis_server_path()]
        self.argv = base + [
            "--port", str(self.port), "--bind", host, "--dir", self.dir,
            "--save", "", "--appendonly", "no", "--logfile", self.log_path,
            "--repl-diskless-sync-delay", "0",  # a full sync forks at once (Redis's default waits 5 s)
            *args,
        ]
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 15.0) -> "ServerProcess":
        env = dict(os.environ)
        env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
        self.proc = subprocess.Popen(
            self.argv, cwd=self.dir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                raise RuntimeError(f"{self.kind} server exited at start: {err}\n{self.log()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5) as s:
                    s.sendall(b"*1\r\n$4\r\nPING\r\n")
                    if s.recv(64):
                        return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.kind} server did not answer on port {self.port}\n{self.log()}")

    def log(self) -> str:
        try:
            return Path(self.log_path).read_text(errors="replace")
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 10.0, *, keep_dir: bool = False) -> int | None:
        """SIGTERM (then SIGKILL) by PID; the data directory is removed unless ``keep_dir`` (restarts)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if self.proc.stderr:
            self.proc.stderr.close()
        if not keep_dir:
            shutil.rmtree(self.dir, ignore_errors=True)
        return self.proc.returncode

    def __enter__(self) -> "ServerProcess":
        # ``with ServerProcess(...).start() as p`` must not start a second process
        # (it would fail to bind, and the first one would be left running).
        if self.alive():
            return self
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


@contextlib.contextmanager
def created_cluster(count: int, *extra: str, node_timeout: int, replicas: int = 1):
    """``count`` Shoal cluster nodes joined by ``redis-cli --cluster create --cluster-replicas N``.

    Yields the ServerProcess list as soon as the tool returns: each test module
    then waits for what it calls formed (roles known, links up...). On the way
    out every node is stopped by PID (a SIGSTOPped one is continued first, or it
    would ignore SIGTERM), and no node may have logged a Python traceback.
    """
    nodes: list[ServerProcess] = []
    try:
        for _ in range(count):
            node = ServerProcess("shoal", "--cluster-enabled", "yes", "--cluster-node-timeout", str(node_timeout),
                                 *extra, port=free_cluster_port())
            nodes.append(node.start(timeout=30))
        done = subprocess.run(
            ["redis-cli", "--cluster", "create", *[f"127.0.0.1:{n.port}" for n in nodes],
             "--cluster-replicas", str(replicas), "--cluster-yes"],
            capture_output=True, text=True, timeout=120,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "[OK] All 16384 slots covered." in done.stdout, done.stdout
        yield nodes
    finally:
        for node in nodes:
            if node.alive():
                os.kill(node.proc.pid, signal.SIGCONT)
        for node in nodes:
            node.stop()
    for node in nodes:
        assert "Traceback" not in node.log(), node.log()
