"""``shoal``: the command-line face of a local Shoal deployment.

    shoal up   [--port 7000] [--host 127.0.0.1] [--dir var]   start a node in the background
    shoal down [--port 7000] [--dir var]                      stop it (by the PID it wrote)
    shoal status [--port 7000]                                 PING it

Each node gets ``<dir>/<port>/`` holding its log, pid file and data files.
Until cluster mode lands (issue S3) ``up`` starts one standalone node; the
3-primary + 3-replica layout will use the same directory scheme.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["main"]


def _ping(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _node_dir(base: str, port: int) -> Path:
    return Path(base).resolve() / str(port)


def cmd_up(args) -> int:
    node_dir = _node_dir(args.dir, args.port)
    node_dir.mkdir(parents=True, exist_ok=True)
    if _ping(args.host, args.port):
        print(f"A server already answers on {args.host}:{args.port}; not starting another.")
        return 1
    pidfile = node_dir / "shoal.pid"
    logfile = node_dir / "shoal.log"
    argv = [
        sys.executable, "-m", "node.main",
        "--port", str(args.port), "--bind", args.host, "--dir", str(node_dir),
        "--logfile", str(logfile), "--pidfile", str(pidfile),
    ]
    proc = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        start_new_session=True,
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.stderr.write(proc.stderr.read().decode(errors="replace"))
            print(f"shoal-server exited with status {proc.returncode}; see {logfile}")
            return 1
        if _ping(args.host, args.port):
            print(f"Shoal node up on {args.host}:{args.port} (pid {proc.pid}).")
            print(f"  connect:  redis-cli -h {args.host} -p {args.port}")
            print(f"  python:   redis.Redis(host={args.host!r}, port={args.port})")
            print(f"  logs:     {logfile}")
            print(f"  stop:     make down   (or: shoal down --port {args.port})")
            return 0
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGTERM)
    print(f"shoal-server did not answer on {args.host}:{args.port} within 15 s; see {logfile}")
    return 1


def cmd_down(args) -> int:
    pidfile = _node_dir(args.dir, args.port) / "shoal.pid"
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        print(f"No pid file at {pidfile}: nothing to stop.")
        return 0
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        print(f"Process {pid} is already gone.")
        pidfile.unlink(missing_ok=True)
        return 0
    for _ in range(200):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            print(f"Stopped the node on port {args.port} (pid {pid}).")
            return 0
        time.sleep(0.05)
    print(f"Process {pid} did not exit within 10 s after SIGTERM.")
    return 1


def cmd_status(args) -> int:
    up = _ping(args.host, args.port)
    print(f"{args.host}:{args.port} {'up' if up else 'down'}")
    return 0 if up else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="shoal", description="Run Shoal nodes locally.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, func in (("up", cmd_up), ("down", cmd_down), ("status", cmd_status)):
        p = sub.add_parser(name)
        p.add_argument("--port", type=int, default=7000)
        p.add_argument("--host", default="127.0.0.1")
        p.add_argument("--dir", default="var")
        p.set_defaults(func=func)
    args = parser.parse_args(argv)
    if not args.host.startswith("127."):
        parser.error("Shoal's local launcher only binds loopback addresses (127.0.0.0/8)")
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
