"""MIGRATE between real processes, and the redis-cli --cluster subcommands built on it.

MIGRATE's replies and errors are compared with a real redis-server doing the
same move; keys travel Shoal→Shoal, Shoal→Redis and Redis→Shoal (each side
reads the other's DUMP payloads). The cluster tests script the unchanged
``redis-cli --cluster`` tool: reshard, add-node, rebalance with an empty
master, del-node, then ``check`` must be clean and every key must read back.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest
import redis
from redis.cluster import RedisCluster

from tests.servers import ServerProcess
from tests.test_cluster_mode import cluster_info, start_cluster_nodes, wait_for

pytestmark = pytest.mark.skipif(shutil.which("redis-cli") is None, reason="needs redis-cli (redis-tools)")


@pytest.fixture(scope="module")
def trio_of_servers():
    """Two Shoal nodes and one redis-server, standalone."""
    with ServerProcess("shoal", "--enable-debug-command", "yes") as a, \
            ServerProcess("shoal", "--enable-debug-command", "yes") as b, ServerProcess("redis") as r:
        yield a, b, r
        for proc in (a, b):
            assert "Traceback" not in proc.log()


def _reply(client, *args):
    try:
        return client.execute_command(*args)
    except redis.ResponseError as exc:
        return f"error: {exc}"


def test_migrate_moves_every_type_with_ttl(trio_of_servers):
    a, b, _ = trio_of_servers
    src, dst = redis.Redis(port=a.port), redis.Redis(port=b.port)
    src.flushall()
    dst.flushall()
    src.set("s", "v")
    src.rpush("l", *range(50))
    src.hset("h", mapping={f"f{i}": i for i in range(20)})
    src.sadd("set", *range(30))
    src.zadd("z", {f"m{i}": i for i in range(40)})
    src.xadd("x", {"a": "1"})
    src.set("ttl", "1", px=500_000)
    digests = {key: src.execute_command("DEBUG", "DIGEST-VALUE", key)[0] for key in src.keys()}
    assert _reply(src, "MIGRATE", "127.0.0.1", b.port, "s", 0, 5000) == b"OK"
    assert _reply(src, "MIGRATE", "127.0.0.1", b.port, "", 0, 5000, "KEYS", "l", "h", "set", "z", "x", "ttl",
                  "missing") == b"OK"
    assert src.dbsize() == 0
    for key, digest in digests.items():
        assert dst.execute_command("DEBUG", "DIGEST-VALUE", key)[0] == digest, key
    assert 400_000 < dst.pttl("ttl") <= 500_000


def test_migrate_busykey_replace_copy_and_db(trio_of_servers):
    a, b, _ = trio_of_servers
    src, dst = redis.Redis(port=a.port), redis.Redis(port=b.port)
    src.flushall()
    dst.flushall()
    src.set("k", "new")
    dst.set("k", "old")
    assert _reply(src, "MIGRATE", "127.0.0.1", b.port, "k", 0, 5000) == (
        "error: Target instance replied with error: BUSYKEY Target key name already exists.")
    assert src.get("k") == b"new" and dst.get("k") == b"old"  # nothing moved, nothing lost
    assert _reply(src, "MIGRATE", "127.0.0.1", b.port, "k", 0, 5000, "COPY", "REPLACE") == b"OK"
    assert src.get("k") == b"new" and dst.get("k") == b"new"
    assert _reply(src, "MIGRATE", "127.0.0.1", b.port, "k", 5, 5000) == b"OK"
    assert redis.Redis(port=b.port, db=5).get("k") == b"new" and src.exists("k") == 0
    assert _reply(src, "MIGRATE", "127.0.0.1", b.port, "nothing", 0, 5000) == b"NOKEY"


def test_migrate_with_redis_in_both_directions(trio_of_servers):
    a, _, r = trio_of_servers
    shoal, real = redis.Redis(port=a.port), redis.Redis(port=r.port)
    shoal.flushall()
    real.flushall()
    shoal.zadd("z", {"a": 1.5, "b": 2})
    shoal.hset("h", "f", "v")
    assert _reply(shoal, "MIGRATE", "127.0.0.1", r.port, "", 0, 5000, "KEYS", "z", "h") == b"OK"
    assert real.zrange("z", 0, -1, withscores=True) == [(b"a", 1.5), (b"b", 2.0)]
    assert real.hgetall("h") == {b"f": b"v"}
    real.rpush("l", *range(300))  # a quicklist of listpacks in Redis's encoding
    real.sadd("ints", *range(10))  # an intset
    assert _reply(real, "MIGRATE", "127.0.0.1", a.port, "", 0, 5000, "KEYS", "l", "ints") == b"OK"
    assert shoal.lrange("l", 0, -1) == [str(i).encode() for i in range(300)]
    assert shoal.smembers("ints") == {str(i).encode() for i in range(10)}


def test_migrate_auth_to_a_protected_target():
    with ServerProcess("shoal") as a, ServerProcess("shoal", "--requirepass", "sekrit") as b:
        src = redis.Redis(port=a.port)
        src.set("k", "v")
        wrong = _reply(src, "MIGRATE", "127.0.0.1", b.port, "k", 0, 5000, "AUTH", "nope")
        assert wrong.startswith("error: Target instance replied with error: WRONGPASS"), wrong
        assert src.get("k") == b"v"
        assert _reply(src, "MIGRATE", "127.0.0.1", b.port, "k", 0, 5000, "AUTH", "sekrit") == b"OK"
        assert redis.Redis(port=b.port, password="sekrit").get("k") == b"v"
        src.set("k2", "v2")
        assert _reply(src, "MIGRATE", "127.0.0.1", b.port, "k2", 0, 5000, "AUTH2", "default", "sekrit") == b"OK"


@pytest.mark.parametrize(
    "args",
    [
        ("k", 0, 1000, "KEYS", "x"),
        ("k", "x", 1000),
        ("k", 0, "soon"),
        ("k", 0, 1000, "AUTH"),
        ("k", 0, 1000, "AUTH2", "u"),
        ("k", 0, 1000, "BOGUS"),
    ],
)
def test_migrate_errors_match_redis(trio_of_servers, args):
    a, b, r = trio_of_servers
    shoal, real = redis.Redis(port=a.port), redis.Redis(port=r.port)
    for client in (shoal, real):
        client.set("k", "1")
    target = b.port
    assert _reply(shoal, "MIGRATE", "127.0.0.1", target, *args) == _reply(real, "MIGRATE", "127.0.0.1", target, *args)


def test_migrate_to_a_closed_port_matches_redis(trio_of_servers):
    a, _, r = trio_of_servers
    shoal, real = redis.Redis(port=a.port), redis.Redis(port=r.port)
    for client in (shoal, real):
        client.set("k", "1")
    dead = ServerProcess("shoal")  # reserve a port nobody listens on
    assert _reply(shoal, "MIGRATE", "127.0.0.1", dead.port, "k", 0, 500) == _reply(
        real, "MIGRATE", "127.0.0.1", dead.port, "k", 0, 500)
    assert shoal.get("k") == b"1"


def test_command_getkeys_for_migrate(trio_of_servers):
    from tests.resp_client import RawClient

    a, _, r = trio_of_servers
    replies = []
    for port in (a.port, r.port):
        with RawClient(port) as client:
            replies.append(client.call("COMMAND", "GETKEYS", "MIGRATE", "h", "1", "", "0", "5", "COPY", "KEYS",
                                       "a", "b"))
    assert replies[0] == replies[1] == b"*2\r\n$1\r\na\r\n$1\r\nb\r\n"


def _load_big_keys(client) -> None:
    """Keys over MIGRATE's chunking threshold (8000 elements), one of each chunked type."""
    pipe = client.pipeline(transaction=False)
    for start in range(0, 30_000, 1000):
        pipe.hset("big:h", mapping={f"f{i}": i for i in range(start, start + 1000)})
    pipe.rpush("big:l", *range(9000))
    pipe.sadd("big:s", *[f"m{i}" for i in range(9000)])
    pipe.zadd("big:z", {f"m{i}": i / 7 for i in range(9000)})
    pipe.zadd("big:z", {"minus-inf": float("-inf"), "plus-inf": float("inf")})
    pipe.pexpire("big:h", 900_000)
    pipe.execute()


def test_big_keys_move_in_chunks_while_others_are_served(trio_of_servers):
    import threading

    a, b, _ = trio_of_servers
    src, dst = redis.Redis(port=a.port), redis.Redis(port=b.port)
    src.flushall()
    dst.flushall()
    _load_big_keys(src)
    src.set("small", "s")
    keys = ["big:h", "big:l", "big:s", "big:z", "small"]
    digests = {key: src.execute_command("DEBUG", "DIGEST-VALUE", key)[0] for key in keys}
    outcome = {}

    def run_migrate():
        mover = redis.Redis(port=a.port)
        outcome["reply"] = mover.execute_command("MIGRATE", "127.0.0.1", b.port, "", 0, 20_000, "KEYS", *keys)

    thread = threading.Thread(target=run_migrate)
    pinger = redis.Redis(port=a.port)
    pinger.ping()
    thread.start()
    answered_meanwhile = 0
    while thread.is_alive():
        pinger.ping()
        if thread.is_alive():
            answered_meanwhile += 1
    thread.join()
    assert outcome["reply"] == b"OK"
    # A synchronous move would answer nothing until it ended.
    assert answered_meanwhile >= 5, answered_meanwhile
    assert src.exists(*keys) == 0
    for key, digest in digests.items():
        assert dst.execute_command("DEBUG", "DIGEST-VALUE", key)[0] == digest, key
    assert 800_000 < dst.pttl("big:h") <= 900_000


def test_big_key_busykey_keeps_the_source_and_replace_overwrites(trio_of_servers):
    a, b, _ = trio_of_servers
    src, dst = redis.Redis(port=a.port), redis.Redis(port=b.port)
    src.flushall()
    dst.flushall()
    _load_big_keys(src)
    dst.set("big:h", "already here")
    reply = _reply(src, "MIGRATE", "127.0.0.1", b.port, "big:h", 0, 20_000)
    assert reply == "error: Target instance replied with error: BUSYKEY Target key name already exists."
    assert src.hlen("big:h") == 30_000 and dst.get("big:h") == b"already here"
    assert _reply(src, "MIGRATE", "127.0.0.1", b.port, "big:h", 0, 20_000, "REPLACE") == b"OK"
    assert dst.hlen("big:h") == 30_000 and src.exists("big:h") == 0


def test_writes_to_a_key_in_flight_wait_for_the_move(trio_of_servers):
    """A write to a key being moved runs after the move, so it is never lost between copy and delete."""
    import threading

    a, b, _ = trio_of_servers
    src, dst = redis.Redis(port=a.port), redis.Redis(port=b.port)
    src.flushall()
    dst.flushall()
    _load_big_keys(src)
    replies = []

    def run_migrate():
        mover = redis.Redis(port=a.port, client_name="inflight-mover")
        replies.append(mover.execute_command("MIGRATE", "127.0.0.1", b.port, "big:l", 0, 20_000))

    thread = threading.Thread(target=run_migrate)
    thread.start()
    writer = redis.Redis(port=a.port)
    # Once CLIENT LIST shows the MIGRATE, the key is held (or already gone).
    def mover_started() -> bool:
        lines = writer.execute_command("CLIENT", "LIST").split(b"\n")
        return any(b"name=inflight-mover" in line and b"cmd=migrate" in line for line in lines)

    while thread.is_alive() and not mover_started():
        pass
    pushed = writer.rpush("big:l", "late")
    thread.join()
    assert replies == [b"OK"]
    # The write ran after the move: it started a new list here instead of vanishing with the old one.
    assert pushed == 1
    assert dst.llen("big:l") == 9000
    assert src.lrange("big:l", 0, -1) == [b"late"]


def _cli(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(["redis-cli", *args], capture_output=True, text=True, timeout=timeout)


def _check_clean(address: str) -> None:
    done = _cli("--cluster", "check", address)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "[OK] All nodes agree about slots configuration." in done.stdout
    assert "[OK] All 16384 slots covered." in done.stdout
    assert "[WARNING]" not in done.stdout, done.stdout


def test_redis_cli_reshard_add_node_rebalance_del_node():
    nodes = start_cluster_nodes(4)
    try:
        addresses = [f"127.0.0.1:{n.port}" for n in nodes]
        done = _cli("--cluster", "create", *addresses[:3], "--cluster-yes")
        assert done.returncode == 0, done.stdout + done.stderr
        wait_for(lambda: all(cluster_info(n.port)["cluster_state"] == "ok" for n in nodes[:3]), 30, "cluster ok")
        ids = [redis.Redis(port=n.port).execute_command("CLUSTER", "MYID").decode() for n in nodes]
        client = RedisCluster(host="127.0.0.1", port=nodes[0].port)
        expected = {f"key:{i}": str(i) for i in range(2000)}
        for key, value in expected.items():
            client.set(key, value)

        done = _cli("--cluster", "reshard", addresses[0], "--cluster-from", ids[0], "--cluster-to", ids[1],
                    "--cluster-slots", "200", "--cluster-yes")
        assert done.returncode == 0, done.stdout + done.stderr
        _check_clean(addresses[0])

        done = _cli("--cluster", "add-node", addresses[3], addresses[0])
        assert done.returncode == 0, done.stdout + done.stderr
        wait_for(lambda: all(ids[3] in redis.Redis(port=n.port).execute_command("CLUSTER", "NODES").decode()
                             for n in nodes[:3]), 30, "the new node known everywhere")
        wait_for(lambda: "[OK] All nodes agree" in _cli("--cluster", "check", addresses[0]).stdout, 30,
                 "the new node to learn the slot map")
        wait_for(lambda: cluster_info(nodes[3].port)["cluster_state"] == "ok", 30, "the new node's state ok")
        # A small weight for the new master keeps the number of slots moved (and the test) short.
        done = _cli("--cluster", "rebalance", addresses[0], "--cluster-use-empty-masters", "--cluster-weight",
                    f"{ids[3]}=0.05", "--cluster-yes")
        assert done.returncode == 0, done.stdout + done.stderr
        _check_clean(addresses[0])
        owned = {line.split()[0]: line for line in
                 redis.Redis(port=nodes[0].port).execute_command("CLUSTER", "NODES").decode().splitlines()}
        assert len(owned[ids[3]].split()) > 8, "the empty master received slots"

        # Move everything off node 3, then remove it.
        slots_of_3 = sum(int(r.split("-")[1]) - int(r.split("-")[0]) + 1 if "-" in r else 1
                         for r in owned[ids[3]].split()[8:])
        done = _cli("--cluster", "reshard", addresses[0], "--cluster-from", ids[3], "--cluster-to", ids[0],
                    "--cluster-slots", str(slots_of_3), "--cluster-yes")
        assert done.returncode == 0, done.stdout + done.stderr
        done = _cli("--cluster", "del-node", addresses[0], ids[3])
        assert done.returncode == 0, done.stdout + done.stderr
        _check_clean(addresses[0])

        client = RedisCluster(host="127.0.0.1", port=nodes[0].port)
        wrong = [key for key, value in expected.items() if client.get(key) != value.encode()]
        assert not wrong, wrong[:10]
        total = sum(redis.Redis(port=n.port).dbsize() for n in nodes[:3])
        assert total == len(expected)
    finally:
        for node in nodes:
            node.stop()
    for node in nodes:
        assert "Traceback" not in node.log(), node.log()


def test_redis_cli_import_from_redis_and_fix():
    """`--cluster import` pulls a real redis-server's keys (its DUMP payloads into our RESTORE);
    `--cluster fix` closes a half-migrated slot and covers unowned slots."""
    nodes = start_cluster_nodes(3)
    source = ServerProcess("redis").start()
    try:
        addresses = [f"127.0.0.1:{n.port}" for n in nodes]
        done = _cli("--cluster", "create", *addresses, "--cluster-yes")
        assert done.returncode == 0, done.stdout + done.stderr
        wait_for(lambda: all(cluster_info(n.port)["cluster_state"] == "ok" for n in nodes), 30, "cluster ok")
        clients = [redis.Redis(port=n.port) for n in nodes]
        ids = [c.execute_command("CLUSTER", "MYID").decode() for c in clients]

        real = redis.Redis(port=source.port)
        for i in range(300):
            real.set(f"imp:{i}", i)
        real.hset("imp:h", mapping={"a": 1, "b": 2})
        real.zadd("imp:z", {"x": 1.25})
        real.rpush("imp:l", *range(200))
        real.sadd("imp:s", *range(5))
        real.xadd("imp:x", {"f": "v"})
        done = _cli("--cluster", "import", addresses[0], "--cluster-from", f"127.0.0.1:{source.port}",
                    "--cluster-copy")
        assert done.returncode == 0, done.stdout + done.stderr
        cluster = RedisCluster(host="127.0.0.1", port=nodes[0].port)
        assert all(cluster.get(f"imp:{i}") == str(i).encode() for i in range(300))
        assert cluster.hgetall("imp:h") == {b"a": b"1", b"b": b"2"}
        assert cluster.zscore("imp:z", "x") == 1.25
        assert cluster.lrange("imp:l", 0, -1) == [str(i).encode() for i in range(200)]
        assert cluster.smembers("imp:s") == {str(i).encode() for i in range(5)}
        assert cluster.xlen("imp:x") == 1

        # A slot left half-migrated (both marks set, keys on the source).
        slot = 100
        ranges = redis.Redis(port=nodes[0].port).execute_command("CLUSTER", "SLOTS")
        owner_port = next(entry[2][1] for entry in ranges if entry[0] <= slot <= entry[1])
        owner = [n.port for n in nodes].index(owner_port)
        other = (owner + 1) % 3
        clients[owner].execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", ids[other])
        clients[other].execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", ids[owner])
        assert "[WARNING] The following slots are open: 100." in _cli("--cluster", "check", addresses[0]).stdout
        done = _cli("--cluster", "fix", addresses[0], "--cluster-yes")
        assert done.returncode == 0, done.stdout + done.stderr
        _check_clean(addresses[0])

        # Slots nobody owns any more.
        clients[2].execute_command("CLUSTER", "DELSLOTS", *range(16000, 16010))
        done = subprocess.run(["redis-cli", "--cluster", "fix", addresses[0], "--cluster-yes"], input="yes\n",
                              capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, done.stdout + done.stderr
        wait_for(lambda: "[OK] All nodes agree" in _cli("--cluster", "check", addresses[0]).stdout, 30,
                 "nodes to agree after fix")
        _check_clean(addresses[0])
        assert all(cluster.get(f"imp:{i}") == str(i).encode() for i in range(300))
    finally:
        source.stop()
        for node in nodes:
            node.stop()
    for node in nodes:
        assert "Traceback" not in node.log(), node.log()
