"""Resharding while applications write: clients see redirections they follow, never errors or lost writes.

Three Shoal primaries are created by ``redis-cli --cluster create``; redis-py
``RedisCluster`` clients write and read their own keys in threads while the
unchanged ``redis-cli --cluster reshard`` moves slots (and their keys, over
MIGRATE) from one primary to another. Afterwards no client saw an error,
every key holds the last value its writer was told was stored, and
``--cluster check`` is clean. (bench/migration_bench.py runs the full-size
version: 4096 slots, 200,000 keys, 8 clients.)
"""

from __future__ import annotations

import random
import shutil
import subprocess
import threading

import pytest
import redis
from redis.cluster import RedisCluster

from tests.test_cluster_mode import cluster_info, start_cluster_nodes, wait_for

pytestmark = pytest.mark.skipif(shutil.which("redis-cli") is None, reason="needs redis-cli (redis-tools)")

KEYS = 12_000
WRITERS = 4


def test_reshard_under_load_loses_nothing_and_shows_no_errors():
    nodes = start_cluster_nodes(3)
    stop = threading.Event()
    errors: list[str] = []
    last_written: list[dict[str, str]] = [{} for _ in range(WRITERS)]
    writes = [0] * WRITERS
    try:
        addresses = [f"127.0.0.1:{n.port}" for n in nodes]
        done = subprocess.run(["redis-cli", "--cluster", "create", *addresses, "--cluster-yes"],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
        wait_for(lambda: all(cluster_info(n.port)["cluster_state"] == "ok" for n in nodes), 30, "cluster ok")
        ids = [redis.Redis(port=n.port).execute_command("CLUSTER", "MYID").decode() for n in nodes]
        loader = RedisCluster(host="127.0.0.1", port=nodes[0].port)
        pipe = loader.pipeline()
        for i in range(KEYS):
            pipe.set(f"user:{i}", "0")
        pipe.execute()
        for i in range(KEYS):
            last_written[i % WRITERS][f"user:{i}"] = "0"

        def writer(index: int) -> None:
            rng = random.Random(index)
            client = RedisCluster(host="127.0.0.1", port=nodes[index % 3].port)
            mine = [f"user:{i}" for i in range(index, KEYS, WRITERS)]
            counter = 0
            try:
                while not stop.is_set():
                    key = rng.choice(mine)
                    counter += 1
                    value = f"{index}-{counter}"
                    client.set(key, value)
                    last_written[index][key] = value
                    writes[index] = counter
                    got = client.get(rng.choice(mine)).decode()
                    if not got:
                        errors.append(f"writer {index}: empty read")
            except Exception as exc:  # every exception is a client-visible error
                errors.append(f"writer {index}: {type(exc).__name__}: {exc}")

        threads = [threading.Thread(target=writer, args=(i,)) for i in range(WRITERS)]
        for thread in threads:
            thread.start()
        done = subprocess.run(
            ["redis-cli", "--cluster", "reshard", addresses[0], "--cluster-from", ids[0], "--cluster-to", ids[1],
             "--cluster-slots", "1200", "--cluster-yes"],
            capture_output=True, text=True, timeout=600,
        )
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr
        assert not errors, errors[:5]
        assert sum(writes) > 200, writes  # the clients really were writing during the move
        check = subprocess.run(["redis-cli", "--cluster", "check", addresses[0]], capture_output=True, text=True)
        assert "[OK] All nodes agree about slots configuration." in check.stdout, check.stdout
        assert "[OK] All 16384 slots covered." in check.stdout
        reader = RedisCluster(host="127.0.0.1", port=nodes[2].port)
        wrong = [(key, value) for table in last_written for key, value in table.items()
                 if reader.get(key) != value.encode()]
        assert not wrong, wrong[:10]
        assert sum(redis.Redis(port=n.port).dbsize() for n in nodes) == KEYS
    finally:
        stop.set()
        for node in nodes:
            node.stop()
    for node in nodes:
        assert "Traceback" not in node.log(), node.log()
