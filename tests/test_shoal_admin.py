"""``shoal create|check|reshard|rebalance|add-node|del-node|fix`` against real Shoal processes.

Each step is checked twice: by our own ``shoal check --json`` and by the
unchanged ``redis-cli --cluster check``, and the data written before the
changes must read back through redis-py's RedisCluster afterwards.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
import redis
from redis.cluster import RedisCluster

from tests.test_cluster_mode import start_cluster_nodes, wait_for

pytestmark = pytest.mark.skipif(shutil.which("redis-cli") is None, reason="needs redis-cli (redis-tools)")


def shoal(*args: str) -> tuple[int, dict]:
    done = subprocess.run([sys.executable, "-m", "cluster.cli", *args, "--json"], capture_output=True, text=True,
                          timeout=300)
    try:
        data = json.loads(done.stdout)
    except json.JSONDecodeError:
        raise AssertionError(f"no JSON from shoal {args}: {done.stdout}\n{done.stderr}") from None
    if done.returncode:
        data["stderr"] = done.stderr[-2000:]
    return done.returncode, data


def redis_cli_check(address: str) -> str:
    return subprocess.run(["redis-cli", "--cluster", "check", address], capture_output=True, text=True,
                          timeout=60).stdout


def test_admin_lifecycle():
    nodes = start_cluster_nodes(5)
    try:
        addresses = [f"127.0.0.1:{n.port}" for n in nodes]
        code, created = shoal("create", *addresses[:4], "--replicas", "1")
        assert code == 0 and created["ok"], created
        assert len(created["primaries"]) == 2 and len(created["replicas"]) == 2
        wait_for(lambda: shoal("check", addresses[0])[0] == 0, 30, "a clean check")
        code, report = shoal("check", addresses[0])
        assert report["agree"] and report["covered"] and not report["open_slots"]
        assert sorted(m["replicas"] for m in report["masters"]) == [1, 1]
        assert "[OK] All 16384 slots covered." in redis_cli_check(addresses[0])

        client = RedisCluster(host="127.0.0.1", port=nodes[0].port)
        expected = {f"item:{i}": str(i) for i in range(1500)}
        for key, value in expected.items():
            client.set(key, value)

        primaries = {m["address"]: m["id"] for m in report["masters"]}
        first, second = (primaries[a] for a in created["primaries"])
        code, moved = shoal("reshard", addresses[0], "--from", first, "--to", second, "--slots", "300")
        assert code == 0 and moved["slots_moved"] == 300 and moved["keys_moved"] > 0, moved
        # reshard and rebalance return only once every node agrees: check straight away, no waiting.
        assert "agreed_after_s" in moved and shoal("check", addresses[0])[1]["agree"]

        code, added = shoal("add-node", addresses[4], addresses[0])
        assert code == 0 and added["role"] == "master", added
        wait_for(lambda: shoal("check", addresses[0])[1].get("agree"), 30, "agreement after add-node")
        wait_for(lambda: "cluster_state:ok" in redis.Redis(port=nodes[4].port).execute_command(
            "CLUSTER", "INFO").decode(), 30, "the new node's state ok")
        code, balanced = shoal("rebalance", addresses[0], "--use-empty-masters", "--weight", f"{added['id']}=0.02")
        assert code == 0 and balanced["slots_moved"] > 0, balanced
        code, report = shoal("check", addresses[0])
        assert report["agree"] and report["covered"] and not report["open_slots"], report
        new_share = next(m["slots"] for m in report["masters"] if m["id"] == added["id"])
        assert 0 < new_share < 16384 // 3

        code, back = shoal("reshard", addresses[0], "--from", added["id"], "--to", first, "--slots", str(new_share))
        assert code == 0 and back["slots_moved"] == new_share, back
        code, removed = shoal("del-node", addresses[0], added["id"])
        assert code == 0 and removed["removed"] == added["id"]
        wait_for(lambda: added["id"] not in redis.Redis(port=nodes[0].port).execute_command(
            "CLUSTER", "NODES").decode(), 30, "the node to be forgotten")

        # An open slot (a move abandoned half-way) is closed by fix.
        ids = {m["address"]: m["id"] for m in shoal("check", addresses[0])[1]["masters"]}
        owner = redis.Redis(port=nodes[0].port)
        slot = next(int(s) for s in range(16384) if owner.execute_command("CLUSTER", "COUNTKEYSINSLOT", s))
        slot_owner = next(a for a in created["primaries"]
                          if redis.Redis(port=int(a.split(":")[1])).execute_command("CLUSTER", "COUNTKEYSINSLOT",
                                                                                  slot))
        other = next(a for a in created["primaries"] if a != slot_owner)
        redis.Redis(port=int(other.split(":")[1])).execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING",
                                                                   ids[slot_owner])
        redis.Redis(port=int(slot_owner.split(":")[1])).execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING",
                                                                        ids[other])
        assert shoal("check", addresses[0])[1]["open_slots"] == [slot]
        code, fixed = shoal("fix", addresses[0])
        assert code == 0 and fixed["open_slots_fixed"] == [slot], fixed
        wait_for(lambda: shoal("check", addresses[0])[0] == 0, 30, "a clean check after fix")
        assert "[OK] All nodes agree about slots configuration." in redis_cli_check(addresses[0])

        client = RedisCluster(host="127.0.0.1", port=nodes[0].port)
        wrong = [key for key, value in expected.items() if client.get(key) != value.encode()]
        assert not wrong, wrong[:10]
    finally:
        for node in nodes:
            node.stop()


def test_admin_refuses_non_loopback_and_bad_input():
    done = subprocess.run([sys.executable, "-m", "cluster.cli", "check", "10.0.0.1:7000"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode != 0 and "loopback" in done.stderr + done.stdout
    nodes = start_cluster_nodes(1)
    try:
        code, report = shoal("create", f"127.0.0.1:{nodes[0].port}", f"127.0.0.1:{nodes[0].port + 1}",
                             "--replicas", "1")
        assert code != 0 and not report["ok"]  # the second address has no server: a clear error, no traceback
    finally:
        nodes[0].stop()
