"""Replication against real redis-server 7.0: a Redis replica of Shoal, a Shoal replica of Redis.

Both directions end with identical data (DEBUG DIGEST) after a
hypothesis-generated workload of every type, TTLs, MULTI blocks and scripts.
"""

from __future__ import annotations

import time

import pytest
import redis
from hypothesis import HealthCheck, given, settings

from tests.replication_helpers import (
    DEBUG,
    FAST_REDIS_PRIMARY,
    WORKLOADS,
    digest,
    dump_all,
    expire_everything_due,
    info,
    run_workload,
    stat,
    wait_caught_up,
    wait_link_up,
)
from tests.servers import ServerProcess

SETTINGS = settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture(scope="module")
def shoal_primary_redis_replica():
    with ServerProcess("shoal", *DEBUG) as primary:
        with ServerProcess("redis", *DEBUG, "--replicaof", "127.0.0.1", str(primary.port)) as replica:
            p = redis.Redis(port=primary.port)
            r = redis.Redis(port=replica.port)
            wait_link_up(r)
            yield p, r, primary, replica


@pytest.fixture(scope="module")
def redis_primary_shoal_replica():
    with ServerProcess("redis", *DEBUG, *FAST_REDIS_PRIMARY) as primary:
        with ServerProcess("shoal", *DEBUG, "--replicaof", "127.0.0.1", str(primary.port)) as replica:
            p = redis.Redis(port=primary.port)
            r = redis.Redis(port=replica.port)
            wait_link_up(r)
            yield p, r, primary, replica


def _check_identical(p, r):
    expire_everything_due(p)
    wait_caught_up(p, r)
    if digest(p) != digest(r):
        assert dump_all(p) == dump_all(r)
    assert digest(p) == digest(r)


@SETTINGS
@given(workload=WORKLOADS)
def test_redis_replica_of_shoal_ends_identical(shoal_primary_redis_replica, workload):
    p, r, _, _ = shoal_primary_redis_replica
    p.flushall()
    run_workload(p, workload)
    _check_identical(p, r)


@SETTINGS
@given(workload=WORKLOADS)
def test_shoal_replica_of_redis_ends_identical(redis_primary_shoal_replica, workload):
    p, r, _, _ = redis_primary_shoal_replica
    p.flushall()
    run_workload(p, workload)
    _check_identical(p, r)


def test_full_sync_from_shoal_carries_existing_data_into_redis():
    """Data written before the replica attaches travels in the RDB (every type, TTLs, several dbs)."""
    with ServerProcess("shoal", *DEBUG) as primary:
        p = redis.Redis(port=primary.port)
        p.set("s", "v")
        p.set("ttl", "v", ex=1000)
        p.rpush("l", *range(200))
        p.sadd("set", *range(100))
        p.sadd("iset", 1, 2, 3)
        p.zadd("z", {f"m{i}": i / 3 for i in range(200)})
        p.hset("h", mapping={f"f{i}": i for i in range(300)})
        p.xadd("x", {"a": "1"})
        p.pfadd("hll", *range(50))
        p.execute_command("SELECT", 5)
        p.set("in5", "x")
        p.execute_command("SELECT", 0)
        with ServerProcess("redis", *DEBUG, "--replicaof", "127.0.0.1", str(primary.port)) as replica:
            r = redis.Redis(port=replica.port)
            wait_link_up(r)
            p.set("after", "1")
            wait_caught_up(p, r)
            assert digest(p) == digest(r)
            assert r.pttl("ttl") > 0
            assert info(p)["connected_slaves"] == 1
            assert stat(p, "sync_full") == 1


def test_shoal_replica_of_redis_full_then_partial_resync():
    with ServerProcess("redis", *DEBUG, *FAST_REDIS_PRIMARY) as primary:
        p = redis.Redis(port=primary.port)
        p.set("before", "1")
        p.zadd("z", {"a": 1, "b": 2})
        with ServerProcess("shoal", *DEBUG, "--replicaof", "127.0.0.1", str(primary.port)) as replica:
            r = redis.Redis(port=replica.port)
            wait_link_up(r)
            wait_caught_up(p, r)
            assert r.get("before") == b"1"
            assert stat(p, "sync_full") == 1
            # Drop the link from the primary's side: the replica comes back with PSYNC and gets +CONTINUE.
            p.execute_command("CLIENT", "KILL", "TYPE", "replica")
            p.set("during", "2")
            time.sleep(0.2)
            wait_caught_up(p, r)
            assert r.get("during") == b"2"
            assert stat(p, "sync_partial_ok") == 1
            assert stat(p, "sync_full") == 1
            assert digest(p) == digest(r)
            role = r.execute_command("ROLE")
            assert role[0] == b"slave" and role[3] == b"connected"


def test_redis_replica_of_shoal_partial_resync_after_kill():
    with ServerProcess("shoal", *DEBUG) as primary:
        p = redis.Redis(port=primary.port)
        with ServerProcess("redis", *DEBUG, "--replicaof", "127.0.0.1", str(primary.port)) as replica:
            r = redis.Redis(port=replica.port)
            wait_link_up(r)
            p.set("a", "1")
            wait_caught_up(p, r)
            p.execute_command("CLIENT", "KILL", "TYPE", "replica")
            p.set("b", "2")
            p.lpush("l", "x")
            wait_caught_up(p, r)
            assert r.get("b") == b"2"
            assert stat(p, "sync_partial_ok") == 1
            assert stat(p, "sync_full") == 1
            assert digest(p) == digest(r)


def test_redis_cli_rdb_snapshot_from_shoal_passes_redis_check_rdb(tmp_path):
    """redis-cli --rdb (REPLCONF rdb-only 1 + SYNC): the snapshot, then the connection closes."""
    import shutil
    import subprocess

    if shutil.which("redis-cli") is None or shutil.which("redis-check-rdb") is None:
        pytest.skip("needs redis-cli and redis-check-rdb")
    with ServerProcess("shoal", *DEBUG) as primary:
        p = redis.Redis(port=primary.port)
        p.set("a", "1")
        p.zadd("z", {"m": 1.5})
        out = tmp_path / "cli.rdb"
        done = subprocess.run(["redis-cli", "-p", str(primary.port), "--rdb", str(out)],
                              capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        assert "Transfer finished with success" in done.stdout + done.stderr
        check = subprocess.run(["redis-check-rdb", str(out)], capture_output=True, text=True, timeout=30)
        assert "RDB looks OK" in check.stdout and "2 keys read" in check.stdout
        assert info(p)["connected_slaves"] == 0
