"""Cluster mode with real processes and real tools: redis-cli --cluster, redis-cli -c, redis-py RedisCluster.

Six fresh ``shoal-server --cluster-enabled yes`` nodes are joined by
``redis-cli --cluster create --cluster-replicas 1`` (the tool, unchanged);
the tests then drive that cluster. CLUSTER command errors are compared with a
real redis-server started in cluster mode.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time

import pytest
import redis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.cluster import RedisCluster

from slots import keyslot
from tests.differential import Differ
from tests.resp_client import RawClient
from tests.servers import ServerProcess, created_cluster, free_cluster_port

NT = 2000

pytestmark = pytest.mark.skipif(shutil.which("redis-cli") is None, reason="needs redis-cli (redis-tools)")


def _free_pair() -> int:
    return free_cluster_port()


def start_cluster_nodes(count: int, *extra: str) -> list[ServerProcess]:
    nodes = []
    try:
        for _ in range(count):
            node = ServerProcess("shoal", "--cluster-enabled", "yes", "--cluster-node-timeout", str(NT),
                                 "--enable-debug-command", "yes", *extra, port=_free_pair())
            nodes.append(node.start(timeout=30))
    except BaseException:
        for node in nodes:
            node.stop()
        raise
    return nodes


def cluster_info(port: int) -> dict:
    with RawClient(port) as c:
        raw = c.call("CLUSTER", "INFO")
    body = raw.split(b"\r\n", 1)[1].decode()
    return dict(line.split(":", 1) for line in body.split("\r\n") if ":" in line)


def nodes_text(port: int) -> str:
    with RawClient(port) as c:
        return c.call("CLUSTER", "NODES").split(b"\r\n", 1)[1].decode()


def replica_count(port: int) -> int:
    return sum("slave" in line.split()[2].split(",") for line in nodes_text(port).splitlines() if line.strip())


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except (OSError, ConnectionError):
            pass
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def cluster():
    with created_cluster(6, "--enable-debug-command", "yes", node_timeout=NT) as nodes:
        wait_for(lambda: all(cluster_info(n.port)["cluster_state"] == "ok" for n in nodes), 30, "cluster ok")
        # Roles spread by gossip after CLUSTER REPLICATE: wait until every node has heard of all three.
        wait_for(lambda: all(replica_count(n.port) == 3 for n in nodes), 30, "replica roles known")
        yield nodes


def test_cluster_check_and_info_agree(cluster):
    first = f"127.0.0.1:{cluster[0].port}"
    check = subprocess.run(["redis-cli", "--cluster", "check", first], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout
    assert "[OK] All nodes agree about slots configuration." in check.stdout
    info = subprocess.run(["redis-cli", "--cluster", "info", first], capture_output=True, text=True, timeout=60)
    assert info.returncode == 0
    assert "3 masters." in info.stdout
    assert info.stdout.count("1 slaves.") == 3
    for node in cluster:
        ci = cluster_info(node.port)
        assert ci["cluster_known_nodes"] == "6" and ci["cluster_size"] == "3"
        assert ci["cluster_slots_assigned"] == "16384"


def test_cluster_nodes_and_slots_shapes(cluster):
    with RawClient(cluster[0].port) as c:
        nodes_text = c.call("CLUSTER", "NODES").split(b"\r\n", 1)[1]
        lines = [line.split() for line in nodes_text.decode().splitlines() if line.strip()]
        assert len(lines) == 6
        myself = [line for line in lines if "myself" in line[2]]
        assert len(myself) == 1
        masters = [line for line in lines if "master" in line[2]]
        assert sorted(" ".join(line[8:]) for line in masters) == ["0-5460", "10923-16383", "5461-10922"]
        for line in lines:
            assert len(line[0]) == 40 and line[7] == "connected"
            assert line[1].count("@") == 1
        slots = redis.Redis(port=cluster[0].port).execute_command("CLUSTER SLOTS")
        assert sorted((s[0], s[1]) for s in slots) == [(0, 5460), (5461, 10922), (10923, 16383)]
        myid = c.call("CLUSTER", "MYID")
        assert myid[myid.index(b"\r\n") + 2:-2].decode() == myself[0][0]
        assert c.call("CLUSTER", "KEYSLOT", "{user1000}.following") == b":3443\r\n"


def test_redis_cli_follows_redirections(cluster):
    port = str(cluster[0].port)
    for key in ("foo", "bar", "hello", "{user1000}.following"):
        out = subprocess.run(["redis-cli", "-c", "-p", port, "SET", key, key + "-value"], capture_output=True,
                             text=True, timeout=30)
        assert out.stdout.strip() == "OK", out
        out = subprocess.run(["redis-cli", "-c", "-p", port, "GET", key], capture_output=True, text=True, timeout=30)
        assert out.stdout.strip() == key + "-value"


def test_moved_and_crossslot_errors(cluster):
    owners = {}
    for node in cluster:
        with RawClient(node.port) as c:
            reply = c.call("GET", "foo")
            if reply.startswith(b"-MOVED"):
                assert reply.startswith(b"-MOVED 12182 127.0.0.1:")
            owners[node.port] = reply
            assert c.call("MGET", "a", "b") in (
                b"-CROSSSLOT Keys in request don't hash to the same slot\r\n",)
            assert c.call("SELECT", "1") == b"-ERR SELECT is not allowed in cluster mode\r\n"
    served = [p for p, r in owners.items() if not r.startswith(b"-")]
    assert len(served) == 1  # exactly the owner answers; replicas redirect like everyone else


def test_redis_py_all_slots_and_pipelines(cluster):
    rc = RedisCluster(host="127.0.0.1", port=cluster[0].port)
    try:
        keys = {}
        i = 0
        while len(keys) < 16384:
            key = f"key:{i}"
            keys.setdefault(keyslot(key.encode()), key)
            i += 1
        pipe = rc.pipeline()
        for slot, key in keys.items():
            pipe.set(key, slot)
        assert all(pipe.execute())
        pipe = rc.pipeline()
        for key in keys.values():
            pipe.get(key)
        values = pipe.execute()
        assert [int(v) for v in values] == list(keys)
        assert rc.mset_nonatomic({"{tag}a": 1, "{tag}b": 2})
        assert rc.mget("{tag}a", "{tag}b") == [b"1", b"2"]
        # Every key landed on the primary that owns its slot: the primaries hold them all between them.
        total = 0
        for node in cluster:
            with RawClient(node.port) as c:
                total += int(c.call("DBSIZE")[1:-2])
        assert total >= 16384 + 2
    finally:
        rc.close()


@pytest.mark.parametrize("protocol", [2, 3])
def test_redis_py_asyncio_cluster(cluster, protocol):
    async def run():
        rc = AsyncRedisCluster(host="127.0.0.1", port=cluster[0].port, protocol=protocol)
        try:
            for i in range(200):
                await rc.set(f"async:{protocol}:{i}", i)
            got = [await rc.get(f"async:{protocol}:{i}") for i in range(200)]
            assert [int(v) for v in got] == list(range(200))
            async with rc.pipeline() as pipe:
                for i in range(50):
                    pipe.incr(f"async:counter:{protocol}:{i}")
                assert await pipe.execute() == [1] * 50
        finally:
            await rc.aclose()

    asyncio.run(run())


def test_pubsub_reaches_every_node(cluster):
    """A PUBLISH on one node reaches subscribers on every node over the bus.

    Bus delivery is at-most-once, in Redis too: a message published while a link is being
    reopened (the watchdog reopens links that are slow to answer, which a loaded 2-core CI
    machine can trigger) is not queued. So each round first waits until the publisher's
    links are all up; a later round with a new payload is needed only if a link cycled,
    and every subscriber must end up with a payload that was really published.
    """
    subscribers = []
    publisher_port = cluster[2].port
    try:
        for node in cluster:
            p = redis.Redis(port=node.port).pubsub()
            p.subscribe("news")
            assert p.get_message(timeout=5)["type"] == "subscribe"
            subscribers.append(p)
        publisher = redis.Redis(port=publisher_port)
        published, received = [], {}
        deadline = time.monotonic() + 30
        while len(received) < len(subscribers) and time.monotonic() < deadline:
            wait_for(lambda: "disconnected" not in nodes_text(publisher_port), 30, "publisher's bus links up")
            payload = f"hello-{len(published)}".encode()
            published.append(payload)
            assert publisher.publish("news", payload) == 1  # counts local receivers only, as Redis
            round_end = time.monotonic() + 5
            for index, p in enumerate(subscribers):
                while index not in received and time.monotonic() < round_end:
                    msg = p.get_message(timeout=0.2)
                    if msg and msg["type"] == "message":
                        assert msg["channel"] == b"news" and msg["data"] in published, msg
                        received[index] = msg["data"]
        missing = [cluster[i].port for i in range(len(subscribers)) if i not in received]
        assert not missing, f"no message reached subscribers on {missing} after {len(published)} publishes"
    finally:
        for p in subscribers:
            p.close()


def test_redis_benchmark_cluster_runs(cluster):
    out = subprocess.run(
        ["redis-benchmark", "--cluster", "-p", str(cluster[0].port), "-t", "set,get", "-n", "3000", "-q"],
        capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SET:" in out.stdout and "GET:" in out.stdout


def test_cluster_admin_errors_match_redis(cluster):
    """CLUSTER argument errors against a real redis-server in cluster mode."""
    redis_node = ServerProcess("redis", "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                               port=_free_pair()).start()
    shoal_node = start_cluster_nodes(1)[0]
    try:
        d = Differ(redis_node.port, shoal_node.port)
        for argv in [
            ("CLUSTER", "NOSUCH"), ("CLUSTER", "KEYSLOT"), ("CLUSTER", "COUNTKEYSINSLOT", "x"),
            ("CLUSTER", "COUNTKEYSINSLOT", "16384"), ("CLUSTER", "COUNTKEYSINSLOT", "5"),
            ("CLUSTER", "GETKEYSINSLOT", "5", "-1"), ("CLUSTER", "GETKEYSINSLOT", "5", "10"),
            ("CLUSTER", "ADDSLOTS", "x"), ("CLUSTER", "ADDSLOTS", "16384"), ("CLUSTER", "ADDSLOTS", "1", "1"),
            ("CLUSTER", "ADDSLOTSRANGE", "5", "1"), ("CLUSTER", "ADDSLOTSRANGE", "1", "2", "3"),
            ("CLUSTER", "DELSLOTS", "7"), ("CLUSTER", "ADDSLOTS", "7"), ("CLUSTER", "ADDSLOTS", "7"),
            ("CLUSTER", "DELSLOTS", "7"), ("CLUSTER", "SETSLOT", "1", "BOGUS"),
            ("CLUSTER", "SETSLOT", "1", "MIGRATING", "a" * 40), ("CLUSTER", "SETSLOT", "99999", "STABLE"),
            ("CLUSTER", "SETSLOT", "1", "NODE", "b" * 40), ("CLUSTER", "FORGET", "c" * 40),
            ("CLUSTER", "REPLICATE", "d" * 40), ("CLUSTER", "COUNT-FAILURE-REPORTS", "e" * 40),
            ("CLUSTER", "MEET", "nonsense", "7000"), ("CLUSTER", "MEET", "127.0.0.1", "x"),
            ("CLUSTER", "SET-CONFIG-EPOCH", "-1"), ("CLUSTER", "RESET", "MAYBE"),
            ("CLUSTER", "REPLICAS", "f" * 40), ("GET", "foo"), ("MGET", "a", "b"), ("READONLY",), ("READWRITE",),
            ("ASKING",), ("SELECT", "2"), ("CLUSTER", "FLUSHSLOTS"), ("CLUSTER", "ADDSLOTSRANGE", "0", "16383"),
            ("SET", "foo", "1"), ("GET", "foo"), ("CLUSTER", "COUNTKEYSINSLOT", "12182"),
            ("CLUSTER", "GETKEYSINSLOT", "12182", "5"), ("CLUSTER", "FLUSHSLOTS"),
            ("CLUSTER", "RESET"), ("DEL", "foo"), ("CLUSTER", "FLUSHSLOTS"),
        ]:
            d.check(*argv)
        d.close()
        # Topology replies of a one-node cluster, byte for byte once ids and ports are masked.
        for protocol in (2, 3):
            d = Differ(redis_node.port, shoal_node.port, protocol=protocol)
            d.check("CLUSTER", "ADDSLOTSRANGE", "0", "100", "200", "16383")
            r_id, s_id = (_bulk(x) for x in d.both("CLUSTER", "MYID"))
            for argv in (("CLUSTER", "SLOTS"), ("CLUSTER", "SHARDS"), ("CLUSTER", "INFO")):
                r, s = d.both(*argv)
                masked = [x.replace(i, b"<id>").replace(b":%d\r\n" % port, b":<port>\r\n")
                          for x, i, port in ((r, r_id, redis_node.port), (s, s_id, shoal_node.port))]
                assert masked[0] == masked[1], (argv, protocol, masked)
            d.check("CLUSTER", "RESET", "HARD")
            d.close()
    finally:
        redis_node.stop()
        shoal_node.stop()


def _bulk(raw: bytes) -> bytes:
    return raw.split(b"\r\n")[1]


def test_cluster_disabled_errors(differ):
    for argv in (("CLUSTER", "INFO"), ("CLUSTER", "NODES"), ("READONLY",), ("ASKING",), ("CLUSTER", "KEYSLOT", "x")):
        differ.check(*argv)


def test_dead_primary_fails_cluster_and_restart_restores_it():
    """3 primaries, no replicas: kill one, the others say fail within 2 x NT; restart it from nodes.conf: ok."""
    nodes = start_cluster_nodes(3)
    try:
        addresses = [f"127.0.0.1:{n.port}" for n in nodes]
        done = subprocess.run(["redis-cli", "--cluster", "create", *addresses, "--cluster-yes"],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout
        wait_for(lambda: all(cluster_info(n.port)["cluster_state"] == "ok" for n in nodes), 30, "ok")
        ids_before = {n.port: cluster_info(n.port)["cluster_my_epoch"] for n in nodes}
        victim = nodes[2]
        victim.proc.kill()
        victim.proc.wait()
        killed_at = time.monotonic()
        wait_for(lambda: all(cluster_info(n.port)["cluster_state"] == "fail" for n in nodes[:2]),
                 2 * NT / 1000 + 3, "cluster_state:fail")
        # Scheduling slack aside, detection itself must take no more than 2 x NT.
        assert time.monotonic() - killed_at < 2 * NT / 1000 + 3
        victim.start(timeout=30)  # same directory: it reads its nodes.conf
        wait_for(lambda: all(cluster_info(n.port)["cluster_state"] == "ok" for n in nodes), 30, "ok again")
        assert {n.port: cluster_info(n.port)["cluster_my_epoch"] for n in nodes} == ids_before
    finally:
        for node in nodes:
            node.stop()


def test_whole_cluster_restart_keeps_ids_epochs_and_slots():
    nodes = start_cluster_nodes(3)
    try:
        addresses = [f"127.0.0.1:{n.port}" for n in nodes]
        done = subprocess.run(["redis-cli", "--cluster", "create", *addresses, "--cluster-yes"],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout
        wait_for(lambda: all(cluster_info(n.port)["cluster_state"] == "ok" for n in nodes), 30, "ok")

        def view(port):
            with RawClient(port) as c:
                text = c.call("CLUSTER", "NODES").split(b"\r\n", 1)[1].decode()
            return sorted((f[0], f[2].replace("myself,", ""), f[6], " ".join(f[8:]))
                          for f in (line.split() for line in text.splitlines() if line.strip()))

        def settled() -> dict | None:
            """Every node's view, once no node suspects another (fail? is health, not saved state)."""
            views = {n.port: view(n.port) for n in nodes}
            return None if any("fail" in row[1] for rows in views.values() for row in rows) else views

        # A suspicion that never clears on a healthy cluster is a bug (a PING once went unanswered for good).
        seen: list = []
        wait_for(lambda: seen.append(settled()) or seen[-1] is not None, 30, "no node suspects another")
        before = seen[-1]
        for node in nodes:
            node.stop(keep_dir=True)
        for node in nodes:
            node.start(timeout=30)
        wait_for(lambda: all(cluster_info(n.port)["cluster_state"] == "ok" for n in nodes), 30, "ok after restart")
        wait_for(lambda: settled() == before, 30, "the same ids, epochs and slots after the restart")
    finally:
        for node in nodes:
            node.stop()


def _owner_and_other(cluster, key: bytes):
    """(port of the primary serving ``key``, port of a primary not serving it)."""
    owner = other = None
    for node in cluster:
        with RawClient(node.port) as c:
            reply = c.call("GET", key)
        myself = next(line.split() for line in nodes_text(node.port).splitlines() if "myself" in line)
        if "master" not in myself[2]:
            continue
        if reply.startswith(b"-MOVED"):
            other = node.port
        else:
            owner = node.port
    return owner, other


def test_scripts_only_touch_local_keys(cluster):
    import hashlib

    owner, other = _owner_and_other(cluster, b"foo")
    script = "return redis.call('get', 'foo')"
    sha = hashlib.sha1(script.encode()).hexdigest()
    with RawClient(other) as c:
        assert c.call("EVAL", script, "0") == (
            b"-ERR Script attempted to access a non local key in a cluster node script: "
            + sha.encode() + b", on @user_script:1.\r\n")
        assert c.call("EVAL", script, "1", "foo").startswith(b"-MOVED 12182 ")
    with RawClient(owner) as c:
        c.call("SET", "foo", "v")
        assert c.call("EVAL", script, "1", "foo") == b"$1\r\nv\r\n"
        assert c.call("EVAL", script, "0") == b"$1\r\nv\r\n"


def test_sharded_pubsub_stays_in_the_shard(cluster):
    owner, other = _owner_and_other(cluster, b"foo")
    sub = redis.Redis(port=owner).pubsub()
    try:
        sub.ssubscribe("foo")
        assert sub.get_sharded_message(timeout=5)["type"] == "ssubscribe"
        with RawClient(other) as c:
            assert c.call("SPUBLISH", "foo", "x").startswith(b"-MOVED 12182 ")
            assert c.call("SSUBSCRIBE", "foo").startswith(b"-MOVED 12182 ")
        assert redis.Redis(port=owner).spublish("foo", "hello") == 1
        deadline = time.monotonic() + 5
        msg = None
        while time.monotonic() < deadline:
            msg = sub.get_sharded_message(timeout=0.2)
            if msg and msg["type"] == "smessage":
                break
        assert msg and msg["data"] == b"hello"
    finally:
        sub.close()


def test_myshardid_is_shared_by_a_primary_and_its_replicas(cluster):
    shards = {}
    for node in cluster:
        with RawClient(node.port) as c:
            shard = _bulk(c.call("CLUSTER", "MYSHARDID")).decode()
            myself = next(line.split() for line in nodes_text(node.port).splitlines() if "myself" in line)
        primary = myself[3] if myself[3] != "-" else myself[0]
        assert shard == primary and len(shard) == 40
        shards.setdefault(shard, []).append(node.port)
    assert sorted(len(v) for v in shards.values()) == [2, 2, 2]
