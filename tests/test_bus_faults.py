"""DEBUG CLUSTER-BUS (test-only bus faults, node/cluster/faults.py) and jepsen_like.bus_nemesis, on real processes.

A 6-node cluster (3 primaries, 3 replicas, node timeout 2 s) started with
``--enable-debug-command yes`` carries the fault tests in order, each
leaving it healthy for the next; a separate 3-node cluster runs every
nemesis of ``BUS_FAULTS`` through inject/undo. Assertions are about what the
nodes report (flags, roles, link sockets, message order), never wall time.
"""

from __future__ import annotations

import os
import random
import shutil
import threading
import time
from contextlib import contextmanager

import pytest
import redis

from jepsen_like.bus_nemesis import BUS_FAULTS, inject, support
from tests.resp_client import RawClient
from tests.servers import ServerProcess, created_cluster, free_cluster_port
from tests.test_failover import wait_for

NT = 2000

pytestmark = pytest.mark.skipif(shutil.which("redis-cli") is None, reason="needs redis-cli (redis-tools)")


def call(port: int, *args, timeout: float = 5):
    return redis.Redis(port=port, socket_timeout=timeout).execute_command(*args)


def text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def nodes_view(port: int) -> dict:
    """CLUSTER NODES as id -> (flags without myself, master id, slots text)."""
    view = {}
    for line in text(call(port, "CLUSTER", "NODES")).splitlines():
        f = line.split()
        if f:
            view[f[0]] = (set(f[2].split(",")) - {"myself"}, f[3], " ".join(f[8:]))
    return view


def myid(port: int) -> str:
    return text(call(port, "CLUSTER", "MYID"))


def state_ok(port: int) -> bool:
    return "cluster_state:ok" in text(call(port, "CLUSTER", "INFO"))


def healthy(nodes) -> bool:
    """Every node: cluster_state ok, no fail/fail? flag, and one common view of roles and slots."""
    views = []
    for node in nodes:
        if not state_ok(node.port):
            return False
        view = nodes_view(node.port)
        if any(v[0] & {"fail", "fail?"} for v in view.values()):
            return False
        views.append(view)
    return all(v == views[0] for v in views)


@contextmanager
def formed_cluster(count: int, replicas: int):
    with created_cluster(count, "--enable-debug-command", "yes", node_timeout=NT, replicas=replicas) as nodes:
        wait_for(lambda: healthy(nodes) and sum("slave" in v[0] for v in nodes_view(nodes[0].port).values())
                 == count // (1 + replicas) * replicas, 40, "a formed cluster")
        yield nodes


@pytest.fixture(scope="module")
def cluster():
    with formed_cluster(6, 1) as nodes:
        yield nodes


@pytest.fixture(scope="module")
def small_cluster():
    with formed_cluster(3, 0) as nodes:
        yield nodes


def bus(node, *args):
    return call(node.port, "DEBUG", "CLUSTER-BUS", *args)


def reset_all(nodes) -> None:
    for node in nodes:
        assert bus(node, "RESET") == b"OK"


def by_id(nodes, node_id: str):
    return next(n for n in nodes if myid(n.port) == node_id)


def primary_and_replica(nodes):
    view = nodes_view(nodes[0].port)
    primary = next(k for k, v in view.items() if "master" in v[0] and v[2])
    replica = next(k for k, v in view.items() if "slave" in v[0] and v[1] == primary)
    return by_id(nodes, primary), by_id(nodes, replica)


def tcp_links(pid: int) -> set[tuple[int, int]]:
    """(local port, remote port) of the process's established TCP sockets (from /proc)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    out = set()
    for name in ("tcp", "tcp6"):
        try:
            lines = open(f"/proc/{pid}/net/{name}").read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if f[3] == "01" and f[9] in inodes:  # ESTABLISHED
                out.add((int(f[1].rsplit(":", 1)[1], 16), int(f[2].rsplit(":", 1)[1], 16)))
    return out


def bus_links(node, others) -> tuple[dict, dict]:
    """The node's outbound bus sockets (peer cport -> local port) and inbound ones (remote ports)."""
    links = tcp_links(node.proc.pid)
    cports = {o.port + 10000 for o in others}
    out = {remote: local for local, remote in links if remote in cports}
    inbound = {remote for local, remote in links if local == node.port + 10000}
    return out, inbound


# ---------------------------------------------------------------------- gating and input


def test_refused_like_redis_when_debug_disabled(redis_proc):
    with ServerProcess("shoal", "--cluster-enabled", "yes", port=free_cluster_port()) as shoal, \
            ServerProcess("redis", "--cluster-enabled", "yes", port=free_cluster_port()) as real:
        for args in (("STATUS",), ("DROP", "PING"), ("DELAY", "*", "100"), ("CLOSE", "*"), ("RESET",)):
            with RawClient(shoal.port) as a, RawClient(real.port) as b:
                got = a.call("DEBUG", "CLUSTER-BUS", *args)
                assert got.startswith(b"-ERR DEBUG command not allowed")
                assert got == b.call("DEBUG", "CLUSTER-BUS", *args)
        assert "enable-debug-command" in support([shoal])  # the nemesis says why it cannot run
        assert "need Shoal" in support([redis_proc])  # real Redis, DEBUG allowed: no CLUSTER-BUS
        with RawClient(shoal.port) as a:
            assert "Traceback" not in shoal.log()
            assert a.call("PING") == b"+PONG\r\n"


def test_needs_cluster_mode(shoal):
    assert shoal.call("DEBUG", "CLUSTER-BUS", "STATUS") == b"-ERR This instance has cluster support disabled\r\n"


def test_help_status_and_bad_input(cluster):
    node = cluster[0]
    helptext = b"\n".join(call(node.port, "DEBUG", "HELP"))
    for sub in (b"CLUSTER-BUS DROP", b"CLUSTER-BUS DELAY", b"CLUSTER-BUS CLOSE", b"CLUSTER-BUS RESET",
                b"CLUSTER-BUS STATUS"):
        assert sub in helptext
    other = myid(cluster[1].port)
    bad = [
        (("DROP", "NOPE"), "Unknown cluster bus message type 'NOPE'"),
        (("DROP", "PING", "0" * 40), "Unknown node " + "0" * 40),
        (("DELAY", "*", "-1"), "delay is not an integer or out of range"),
        (("DELAY", "*", "1.5"), "delay is not an integer or out of range"),
        (("DELAY", "*", "99999999999"), "delay is not an integer or out of range"),
        (("DELAY", "nope", "10"), "Unknown node nope"),
        (("CLOSE",), "unknown subcommand or wrong number of arguments for 'CLUSTER-BUS CLOSE'"),
        (("DROP",), "unknown subcommand or wrong number of arguments"),
        (("BOGUS",), "unknown subcommand or wrong number of arguments for 'CLUSTER-BUS BOGUS'"),
        ((), "unknown subcommand or wrong number of arguments for 'CLUSTER-BUS'"),
    ]
    for args, message in bad:
        with pytest.raises(redis.ResponseError, match=message):
            bus(node, *args)
    assert bus(node, "STATUS") == []
    assert bus(node, "DROP", "ping", other) == b"OK"
    assert bus(node, "DROP", "FAILOVER_AUTH_ACK", other) == b"OK"
    assert bus(node, "DROP", "ALL") == b"OK"
    assert bus(node, "DELAY", other, "20") == b"OK"
    assert sorted(bus(node, "STATUS")) == sorted([
        b"drop ALL from *", f"drop PING,FAILOVER_AUTH_ACK from {other}".encode(), f"delay 20 ms from {other}".encode()])
    assert bus(node, "DELAY", other, "0") == b"OK"  # 0 removes the entry
    assert len(bus(node, "STATUS")) == 2
    assert bus(node, "RESET") == b"OK"
    assert bus(node, "STATUS") == []
    assert call(node.port, "PING") is True
    wait_for(lambda: healthy(cluster), 20, "healthy again after a moment of DROP ALL")


# ---------------------------------------------------------------------- faults


def test_delay_keeps_frame_order(cluster):
    """PUBLISH frames from one peer, delayed, then un-delayed mid-stream: never reordered, never lost."""
    a, b = cluster[0], cluster[1]
    sub = redis.Redis(port=a.port, socket_timeout=5).pubsub()
    sub.subscribe("ch")
    assert sub.get_message(timeout=5)["type"] == "subscribe"
    try:
        assert bus(a, "DELAY", "*", "400") == b"OK"
        publisher = redis.Redis(port=b.port, socket_timeout=5)
        for i in range(10):
            publisher.publish("ch", str(i))
        assert bus(a, "DELAY", "*", "0") == b"OK"  # later frames must still wait behind the queued ones
        for i in range(10, 20):
            publisher.publish("ch", str(i))
        got = []
        deadline = time.monotonic() + 15
        while len(got) < 20 and time.monotonic() < deadline:
            msg = sub.get_message(timeout=1)
            if msg and msg["type"] == "message":
                got.append(int(msg["data"]))
        assert got == list(range(20))
    finally:
        sub.close()
        reset_all(cluster)


def test_delay_beyond_node_timeout_marks_pfail_zero_does_not(cluster):
    primary, _ = primary_and_replica(cluster)
    pid = myid(primary.port)
    # the observer is a replica of another shard: its PFAIL is no failure report, so nothing fails over
    observer = next(n for n in cluster if "slave" in nodes_view(n.port)[myid(n.port)][0]
                    and nodes_view(n.port)[myid(n.port)][1] != pid)
    assert bus(observer, "DELAY", pid, "0") == b"OK"
    assert "fail?" not in nodes_view(observer.port)[pid][0]
    try:
        assert bus(observer, "DELAY", pid, str(3 * NT)) == b"OK"
        wait_for(lambda: "fail?" in nodes_view(observer.port)[pid][0], 25, "PFAIL from a delay > node timeout")
        # the nodes without the delay still hear it (a loaded machine may make one of them wonder too)
        assert any(not nodes_view(n.port)[pid][0] & {"fail?", "fail"} for n in cluster if n not in (observer, primary))
    finally:
        reset_all(cluster)
    wait_for(lambda: healthy(cluster), 20, "healthy after RESET")


def test_close_makes_links_redial(cluster):
    node = cluster[2]
    others = [n for n in cluster if n is not node]
    peer = others[0]

    def all_up():
        out, inbound = bus_links(node, others)
        return (out, inbound) if len(out) == 5 and len(inbound) == 5 else None

    before_out, before_in = wait_for(all_up, 15, "5 outbound and 5 inbound bus links")
    assert bus(node, "CLOSE", myid(peer.port)) in (1, 2)  # our link to it and its link to us (if both up)
    peer_cport = peer.port + 10000

    def redialled_one_peer():
        out, inbound = bus_links(node, others)
        return (peer_cport in out and out[peer_cport] != before_out[peer_cport] and len(inbound) == 5
                and inbound - before_in and len(inbound & before_in) >= 3)

    wait_for(redialled_one_peer, 15, "both links with the peer re-dialled, the others kept")
    kept = sum(out == before_out[cport] for cport, out in bus_links(node, others)[0].items() if cport != peer_cport)
    assert kept >= 3  # CLOSE <node-id> is targeted
    first_out, first_in = wait_for(all_up, 15, "every link up again")
    closed = bus(node, "CLOSE", "*")
    assert 5 <= closed <= 10

    def all_new():
        out, inbound = bus_links(node, others)
        return (len(out) == 5 and len(inbound) == 5 and not set(out.items()) & set(first_out.items())
                and not inbound & first_in)

    wait_for(all_new, 20, "every link re-dialled from new sockets")
    wait_for(lambda: healthy(cluster), 20, "healthy after closing every link")


def test_drop_pings_and_pongs_fails_over_then_reset_heals(cluster):
    primary, replica = primary_and_replica(cluster)
    pid, rid = myid(primary.port), myid(replica.port)
    others = [n for n in cluster if n is not primary]
    try:
        for node in others:
            assert bus(node, "DROP", "PING", pid) == b"OK"
            assert bus(node, "DROP", "PONG", pid) == b"OK"
        wait_for(lambda: all("fail" in nodes_view(n.port)[pid][0] for n in others), 25, "FAIL everywhere else")
        wait_for(lambda: "master" in nodes_view(replica.port)[rid][0], 25, "the replica's failover")
        assert call(primary.port, "PING") is True  # no crash: the process serves throughout
    finally:
        reset_all(cluster)
    wait_for(lambda: healthy(cluster), 30, "healthy after RESET")
    view = nodes_view(cluster[0].port)
    assert "master" in view[rid][0] and view[rid][2]
    assert "slave" in view[pid][0] and view[pid][1] == rid  # the old primary follows its successor


def test_debug_sleep_blocks_the_whole_node(cluster):
    """Another client's TIME is never answered inside the sleep (judged by the server's own clock)."""
    node = cluster[3]
    stamps = {}

    def seconds(reply) -> float:
        return reply[0] + reply[1] / 1e6

    def sleeper():
        pipe = redis.Redis(port=node.port, socket_timeout=10).pipeline(transaction=False)
        pipe.time()
        pipe.execute_command("DEBUG", "SLEEP", "2")
        pipe.time()
        before, _, after = pipe.execute()
        stamps["sleep"] = (seconds(before), seconds(after))

    t = threading.Thread(target=sleeper)
    t.start()
    time.sleep(0.5)
    other = seconds(redis.Redis(port=node.port, socket_timeout=10).time())
    t.join()
    start, end = stamps["sleep"]
    assert end - start >= 2.0
    assert other <= start + 0.25 or other >= end - 0.25, (start, other, end)


# ---------------------------------------------------------------------- the nemesis


def test_nemesis_interface(small_cluster):
    assert support(small_cluster) is None
    assert set(BUS_FAULTS) >= {"drop-pongs", "drop-auth-acks", "delay-primary", "flap-links"}
    assert all(isinstance(v, str) and v for v in BUS_FAULTS.values())
    with pytest.raises(ValueError):
        inject(small_cluster, "no-such-fault", random.Random(1))
    rng = random.Random(7)
    for name in BUS_FAULTS:
        undo = inject(small_cluster, name, rng)
        try:
            if name in ("drop-pongs", "drop-auth-acks", "delay-primary", "slow-links"):
                assert any(bus(n, "STATUS") for n in small_cluster), name
            if name == "drop-pongs":  # it does what it says: some other node sees a primary fail
                wait_for(lambda: any("fail" in v[0] for n in small_cluster for v in nodes_view(n.port).values()),
                         25, "a primary marked FAIL by drop-pongs")
        finally:
            undo()
            undo()  # idempotent
        assert all(bus(n, "STATUS") == [] for n in small_cluster), name
        wait_for(lambda: healthy(small_cluster), 30, f"healthy after undoing {name}")


# ---------------------------------------------------------------------- the fault table (no process)


def test_fault_table_rules():
    from gossip.messages import AUTH_ACK, PING, PONG, Message
    from node.cluster.faults import BusFaults

    f = BusFaults()
    assert not f.active and not f.dropped(Message(PING, "a")) and f.delay_ms("a") == 0
    f.add_drop("a", 1 << PING)
    assert f.active
    assert f.dropped(Message(PING, "a")) and not f.dropped(Message(PONG, "a")) and not f.dropped(Message(PING, "b"))
    assert not f.dropped(Message(99, "a"))  # unknown types are never dropped (the state machine ignores them)
    f.add_drop("*", 1 << AUTH_ACK)
    assert f.dropped(Message(AUTH_ACK, "b")) and f.dropped(Message(PING, "a"))
    f.set_delay("*", 30)
    f.set_delay("a", 5)
    assert f.delay_ms("a") == 5 and f.delay_ms("b") == 30  # a node's own entry wins over *
    f.set_delay("a", 0)
    assert f.delay_ms("a") == 30
    f.queue_opened()
    f.reset()
    assert f.status() == [] and f.active  # a link still holding delayed frames keeps the slow path
    f.queue_drained()
    assert not f.active
