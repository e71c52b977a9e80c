"""Server processes for the benchmark: start, stop (by PID), CPU time and RSS from /proc.

Both servers are started the same way (``--port N --bind 127.0.0.1 --save "" --appendonly no``)
in their own session, so a Ctrl-C in the terminal reaches the benchmark driver (which then
stops them in order, by PID) rather than killing them half-way through a measurement.
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
from pathlib import Path

__all__ = ["BenchServer", "CLK_TCK", "cpu_ticks", "free_port", "free_cluster_port", "rss_bytes", "REPO"]

REPO = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
HOST = "127.0.0.1"


def free_port(host: str = HOST) -> int:
    """A port the kernel just handed out on ``host`` (bound, read back, closed)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def free_cluster_port(host: str = HOST) -> int:
    """A free port whose cluster bus port (port + 10000) is free as well.

    Both are drawn below the kernel's ephemeral range (32768+ on Linux), so an
    outgoing connection cannot take the bus port between the probe and the bind.
    """
    import random

    for _ in range(200):
        port = random.randint(12000, 22700)
        try:
            with socket.socket() as s:
                s.bind((host, port))
        except OSError:
            continue
        try:
            with socket.socket() as s:
                s.bind((host, port + 10000))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair for a cluster node")


def _stat_fields(pid: int) -> list[str]:
    """Fields of /proc/<pid>/stat after the ``(comm)`` field; index 0 is field 3 (state)."""
    with open(f"/proc/{pid}/stat", "rb") as fh:
        raw = fh.read()
    # comm may contain spaces and parentheses: split after the *last* ')'.
    return raw[raw.rindex(b")") + 2:].decode().split()


def _own_ticks(pid: int) -> int:
    """utime + stime + cutime + cstime of one process, all threads, in clock ticks.

    Fields 14-17 of /proc/<pid>/stat; after dropping pid and comm they sit at 11..14.
    cutime/cstime count children the process has already reaped (none for a server run with
    persistence off, but a forking server would otherwise hide work there).
    """
    f = _stat_fields(pid)
    return int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return kids
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as fh:
                kids.extend(int(x) for x in fh.read().split())
        except (OSError, ValueError):
            pass  # thread gone, or kernel without CONFIG_PROC_CHILDREN
    return kids


def cpu_ticks(pid: int) -> int:
    """CPU time (clock ticks) used so far by ``pid`` and its live descendants."""
    total = _own_ticks(pid)
    stack = _children(pid)
    seen = {pid}
    while stack:
        child = stack.pop()
        if child in seen:
            continue
        seen.add(child)
        try:
            total += _own_ticks(child)
        except (OSError, ValueError, IndexError):
            continue
        stack.extend(_children(child))
    return total


def _status_kb(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


def rss_bytes(pid: int) -> int:
    """Resident set size (VmRSS) of ``pid`` in bytes."""
    return _status_kb(pid, "VmRSS") * 1024


def hwm_bytes(pid: int) -> int:
    """Peak resident set size (VmHWM) of ``pid`` in bytes."""
    return _status_kb(pid, "VmHWM") * 1024


def redis_server_path() -> str:
    path = shutil.which("redis-server")
    if path is None:
        raise RuntimeError("redis-server is not installed (apt-get install redis-server redis-tools)")
    return path


def shoal_server_cmd() -> list[str]:
    """shoal-server, run by this interpreter from this checkout (the PID *is* the server)."""
    return [sys.executable, "-m", "node.main"]


class BenchServer:
    """One server process on 127.0.0.1, started fresh with persistence off."""

    def __init__(self, kind: str, *extra: str, pick_port=None) -> None:
        if kind not in ("shoal", "redis"):
            raise ValueError(kind)
        self.kind = kind
        self.extra = extra
        self.pick_port = pick_port or free_port
        self.port = 0
        self.dir = ""
        self.proc: subprocess.Popen | None = None
        self._log_fh = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def _argv(self) -> list[str]:
        base = shoal_server_cmd() if self.kind == "shoal" else [redis_server_path()]
        return base + [
            "--port", str(self.port), "--bind", HOST, "--dir", self.dir,
            "--save", "", "--appendonly", "no", *self.extra,
        ]

    def start(self, timeout: float = 30.0, attempts: int = 3) -> "BenchServer":
        last = ""
        for _ in range(attempts):  # a free port can be taken between probe and bind: retry
            self.port = self.pick_port()
            self.dir = tempfile.mkdtemp(prefix=f"bench-{self.kind}-{self.port}-")
            env = dict(os.environ)
            env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
            self._log_fh = open(os.path.join(self.dir, "stdio.log"), "wb")
            self.proc = subprocess.Popen(
                self._argv(), cwd=self.dir, env=env, stdin=subprocess.DEVNULL,
                stdout=self._log_fh, stderr=subprocess.STDOUT, start_new_session=True,
            )
            if self._wait_ready(timeout):
                return self
            last = self.log()
            self.stop()
        raise RuntimeError(f"{self.kind} server did not start after {attempts} attempts:\n{last}")

    def _wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                return False
            try:
                with socket.create_connection((HOST, self.port), timeout=1.0) as s:
                    s.sendall(b"*1\r\n$4\r\nPING\r\n")
                    if s.recv(64).startswith(b"+PONG"):
                        return True
            except OSError:
                pass
            time.sleep(0.05)
        return False

    def log(self) -> str:
        try:
            return Path(self.dir, "stdio.log").read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def cpu_ticks(self) -> int:
        return cpu_ticks(self.pid)

    def rss_bytes(self) -> int:
        return rss_bytes(self.pid)

    def hwm_bytes(self) -> int:
        return hwm_bytes(self.pid)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM by PID, SIGKILL after ``timeout``; idempotent."""
        proc, self.proc = self.proc, None
        if proc is not None:
            try:
                if proc.poll() is None:
                    try:
                        os.kill(proc.pid, signal.SIGTERM)
                        proc.wait(timeout)
                    except subprocess.TimeoutExpired:
                        os.kill(proc.pid, signal.SIGKILL)
                        proc.wait()
            except ProcessLookupError:
                proc.wait()
        if self._log_fh is not None:
            self._log_fh.close()
            self._log_fh = None
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
