"""`shoal stop` / `shoal restart`: a primary hands its slots to its replica before it goes down.

A `shoal up` cluster (3 primaries + 3 replicas) under a redis-py RedisCluster write load; one
primary is restarted with `shoal restart`: every acknowledged write is still there with its value,
the client never saw an error, the roles switched and the old primary came back as a replica.
"""

from __future__ import annotations

import os
import threading
import time

import pytest
import redis
from redis.cluster import RedisCluster

from tests.test_shoal_cli import _alive, _free_block, _pids, shoal


def _nodes(port: int) -> list[list[str]]:
    text = redis.Redis(port=port).execute_command("CLUSTER", "NODES")
    text = text.decode() if isinstance(text, bytes) else text
    return [line.split() for line in text.splitlines() if line.strip()]


def _port_of(fields: list[str]) -> int:
    return int(fields[1].split("@")[0].rsplit(":", 1)[1])


def _writer(client: RedisCluster, stop: threading.Event, acked: dict, errors: list) -> None:
    i = 0
    while not stop.is_set():
        key = f"w{i}"
        try:
            if client.set(key, i):
                acked[key] = i
        except Exception as exc:  # noqa: BLE001 - every error the application would see counts
            errors.append(f"{key}: {type(exc).__name__}: {exc}")
        i += 1


def test_restart_a_primary_under_load_loses_no_acknowledged_write(tmp_path):
    port = _free_block(6)
    var = tmp_path / "var"
    try:
        up = shoal("up", "--port", str(port), "--primaries", "3", "--replicas-per-primary", "1",
                   "--node-timeout", "2000", "--dir", str(var), cwd=tmp_path)
        assert up.returncode == 0, up.stdout + up.stderr
        client = RedisCluster(host="127.0.0.1", port=port, socket_timeout=30)
        stop = threading.Event()
        acked: dict = {}
        errors: list = []
        writer = threading.Thread(target=_writer, args=(client, stop, acked, errors))
        writer.start()
        try:
            time.sleep(1.0)
            nodes = _nodes(port)
            victim = next(f for f in nodes if "master" in f[2] and len(f) > 8)
            victim_port = _port_of(victim)
            heir = next(f for f in nodes if f[3] == victim[0])
            old_pid = int((var / str(victim_port) / "shoal.pid").read_text())
            before = len(acked)
            result = shoal("restart", "--node", f"127.0.0.1:{victim_port}", "--dir", str(var), "--wait", "60",
                           cwd=tmp_path)
            assert result.returncode == 0, result.stdout + result.stderr
            assert "coordinated failover" in result.stdout, result.stdout
            time.sleep(0.5)
            during = len(acked) - before
        finally:
            stop.set()
            writer.join(timeout=60)
        assert not errors, errors[:5]
        assert during > 0  # the load went on through the restart
        assert not _alive(old_pid)
        new_pid = int((var / str(victim_port) / "shoal.pid").read_text())
        assert new_pid != old_pid and _alive(new_pid)
        # Roles switched: the replica serves the slots, the restarted node replicates it.
        heir_port = _port_of(heir)
        assert redis.Redis(port=heir_port).execute_command("ROLE")[0] == b"master"
        role = redis.Redis(port=victim_port).execute_command("ROLE")
        assert role[0] == b"slave" and role[2] == heir_port
        # Every acknowledged write survived, with its value.
        keys = list(acked)
        for first in range(0, len(keys), 500):
            chunk = keys[first:first + 500]
            got = client.mget_nonatomic(chunk)
            lost = [(k, v) for k, v in zip(chunk, got) if v != str(acked[k]).encode()]
            assert not lost, f"{len(lost)} acknowledged writes lost, e.g. {lost[:5]}"
        print(f"\n{len(acked)} acknowledged writes ({during} during the restart), none lost, no client error")
        client.close()
    finally:
        down = shoal("down", "--dir", str(var), cwd=tmp_path)
        for pid in _pids(var):
            assert not _alive(pid), down.stdout


def test_stop_a_replica_and_bad_arguments(tmp_path):
    port = _free_block(2)
    var = tmp_path / "var"
    try:
        up = shoal("up", "--port", str(port), "--primaries", "1", "--replicas-per-primary", "1",
                   "--node-timeout", "2000", "--dir", str(var), cwd=tmp_path)
        assert up.returncode == 0, up.stdout + up.stderr
        missing = shoal("stop", "--node", f"127.0.0.1:{port + 5}", "--dir", str(var), cwd=tmp_path)
        assert missing.returncode == 1 and "No running node" in missing.stdout
        bad = shoal("stop", "--node", "127.0.0.1", "--dir", str(var), cwd=tmp_path)
        assert bad.returncode == 2
        replica = next(f for f in _nodes(port) if "slave" in f[2])
        replica_port = _port_of(replica)
        pid = int((var / str(replica_port) / "shoal.pid").read_text())
        result = shoal("stop", "--node", f"127.0.0.1:{replica_port}", "--dir", str(var), cwd=tmp_path)
        assert result.returncode == 0, result.stdout
        assert "failover" not in result.stdout  # a replica is simply stopped
        assert not _alive(pid)
        assert redis.Redis(port=port).execute_command("ROLE")[0] == b"master"
    finally:
        shoal("down", "--dir", str(var), cwd=tmp_path)
        for pid in _pids(var):
            assert not _alive(pid)


pytestmark = pytest.mark.skipif(not os.path.exists("/usr/bin/redis-server"), reason="needs redis-server")
