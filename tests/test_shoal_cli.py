"""`shoal up` / `status` / `down`: a 3+3 cluster from nothing, checked by redis-cli, stopped by PID."""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(shutil.which("redis-cli") is None, reason="needs redis-cli (redis-tools)")


def _free_block(count: int) -> int:
    for _ in range(200):
        base = random.randint(12000, 22700 - count)  # bus ports stay below the ephemeral range
        try:
            for p in range(base, base + count):
                for q in (p, p + 10000):
                    with socket.socket() as s:
                        s.bind(("127.0.0.1", q))
        except OSError:
            continue
        return base
    raise RuntimeError("no free port block")


def shoal(*args, cwd):
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-m", "cluster.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=180)


def _pids(var: Path) -> list[int]:
    return [int(p.read_text()) for p in var.glob("*/shoal.pid")]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_up_status_check_down(tmp_path):
    port = _free_block(6)
    var = tmp_path / "var"
    try:
        up = shoal("up", "--port", str(port), "--primaries", "3", "--replicas-per-primary", "1",
                   "--node-timeout", "2000", "--dir", str(var), cwd=tmp_path)
        assert up.returncode == 0, up.stdout + up.stderr
        assert f"redis-cli -c -h 127.0.0.1 -p {port}" in up.stdout
        pids = _pids(var)
        assert len(pids) == 6 and all(_alive(p) for p in pids)

        status = shoal("status", "--port", str(port), cwd=tmp_path)
        assert status.returncode == 0, status.stdout
        assert "cluster_state: ok" in status.stdout
        rows = [line for line in status.stdout.splitlines() if "127.0.0.1:" in line]
        assert len(rows) == 6
        assert sum(" primary " in r for r in rows) == 3 and sum(" replica " in r for r in rows) == 3

        check = subprocess.run(["redis-cli", "--cluster", "check", f"127.0.0.1:{port}"], capture_output=True,
                               text=True, timeout=60)
        assert check.returncode == 0, check.stdout

        # `up` again on a running cluster is harmless: it finds the nodes and waits for ok.
        again = shoal("up", "--port", str(port), "--node-timeout", "2000", "--dir", str(var), cwd=tmp_path)
        assert again.returncode == 0, again.stdout
        assert sorted(_pids(var)) == sorted(pids)
    finally:
        down = shoal("down", "--dir", str(var), cwd=tmp_path)
    assert down.returncode == 0
    assert not any(_alive(p) for p in pids)


def test_refuses_non_loopback(tmp_path):
    out = shoal("up", "--host", "10.0.0.1", cwd=tmp_path)
    assert out.returncode != 0 and "loopback" in out.stderr
