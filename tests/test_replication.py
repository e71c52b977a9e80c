"""Shoal <-> Shoal replication: sync, partial resync, promote, read-only replicas, expiry, WAIT,
min-replicas, INFO/ROLE, and bad input on both sides of the link."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.persistence.rdb import load_rdb
from tests.replication_helpers import (
    DEBUG,
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
from tests.resp_client import encode_command, reply_end
from tests.servers import ServerProcess, free_port

SETTINGS = settings(max_examples=20, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _replica_of(primary: ServerProcess, *args: str) -> ServerProcess:
    return ServerProcess("shoal", *DEBUG, "--replicaof", "127.0.0.1", str(primary.port), *args)


@pytest.fixture(scope="module")
def pair():
    with ServerProcess("shoal", *DEBUG) as primary:
        with _replica_of(primary) as replica:
            p = redis.Redis(port=primary.port)
            r = redis.Redis(port=replica.port)
            wait_link_up(r)
            yield p, r


@SETTINGS
@given(workload=WORKLOADS)
def test_shoal_replica_of_shoal_ends_identical(pair, workload):
    p, r = pair
    p.flushall()
    run_workload(p, workload)
    expire_everything_due(p)
    wait_caught_up(p, r)
    if digest(p) != digest(r):
        assert dump_all(p) == dump_all(r)
    assert digest(p) == digest(r)


def test_replica_is_read_only_and_says_so(pair):
    p, r = pair
    with pytest.raises(redis.ResponseError, match="^You can't write against a read only replica.$"):
        r.set("x", "1")
    # Inside MULTI the write is refused when queued, and EXEC aborts.
    pipe = r.pipeline(transaction=True)
    pipe.set("x", "1")
    with pytest.raises(redis.ResponseError):
        pipe.execute()
    assert r.get("x") is None  # reads are fine
    assert r.execute_command("CONFIG", "SET", "replica-read-only", "no") == b"OK"
    try:
        assert r.set("local", "1")
    finally:
        r.execute_command("CONFIG", "SET", "replica-read-only", "yes")
        p.flushall()
        wait_caught_up(p, r)


def test_role_and_info_fields(pair):
    p, r = pair
    p.set("role-test", "1")
    offset = wait_caught_up(p, r)
    role = p.execute_command("ROLE")
    assert role[0] == b"master" and role[1] >= offset
    assert len(role[2]) == 1 and role[2][0][0] == b"127.0.0.1"
    assert isinstance(role[2][0][1], bytes) and isinstance(role[2][0][2], bytes)
    rrole = r.execute_command("ROLE")
    assert rrole[:2] == [b"slave", b"127.0.0.1"] and rrole[3] == b"connected" and rrole[4] == offset
    pi, ri = info(p), info(r)
    assert pi["role"] == "master" and pi["connected_slaves"] == 1
    assert pi["slave0"]["state"] == "online"
    assert pi["repl_backlog_active"] == 1
    assert pi["repl_backlog_first_byte_offset"] + pi["repl_backlog_histlen"] - 1 == pi["master_repl_offset"]
    assert ri["role"] == "slave" and ri["master_link_status"] == "up"
    assert ri["master_replid"] == pi["master_replid"]
    keys = list(ri)
    expected_order = ["role", "master_host", "master_port", "master_link_status", "master_last_io_seconds_ago",
                      "master_sync_in_progress", "slave_read_repl_offset", "slave_repl_offset", "slave_priority",
                      "slave_read_only", "replica_announced", "connected_slaves", "master_failover_state",
                      "master_replid", "master_replid2", "master_repl_offset", "second_repl_offset",
                      "repl_backlog_active", "repl_backlog_size", "repl_backlog_first_byte_offset",
                      "repl_backlog_histlen"]
    assert keys == expected_order


def test_info_replication_field_names_match_redis():
    """Same field names, in the same order, as a real Redis primary and replica."""
    def names(c):
        return list(c.info("replication"))

    with ServerProcess("redis", "--repl-diskless-sync-delay", "0") as rp, ServerProcess("shoal") as sp:
        with ServerProcess("redis", "--replicaof", "127.0.0.1", str(rp.port)) as rr, \
                _replica_of(sp) as sr:
            a, b = redis.Redis(port=rr.port), redis.Redis(port=sr.port)
            wait_link_up(a)
            wait_link_up(b)
            assert names(b) == names(a)
            assert names(redis.Redis(port=sp.port)) == names(redis.Redis(port=rp.port))


def test_wait(pair):
    p, r = pair
    p.set("w", "1")
    assert p.execute_command("WAIT", 1, 2000) == 1
    start = time.monotonic()
    assert p.execute_command("WAIT", 2, 200) == 1  # only one replica: the timeout answers with the count
    assert time.monotonic() - start >= 0.15
    assert p.execute_command("WAIT", 0, 0) == 1
    with pytest.raises(redis.ResponseError, match="timeout is negative"):
        p.execute_command("WAIT", 1, -1)
    with pytest.raises(redis.ResponseError, match="not an integer"):
        p.execute_command("WAIT", "x", 0)
    with pytest.raises(redis.ResponseError, match="^WAIT cannot be used with replica instances"):
        r.execute_command("WAIT", 0, 0)


def test_min_replicas_to_write(pair):
    p, r = pair
    try:
        p.execute_command("CONFIG", "SET", "min-replicas-to-write", 2)
        with pytest.raises(redis.ResponseError, match="Not enough good replicas to write.$"):
            p.set("m", "1")
        assert p.get("m") is None  # reads still work
        p.execute_command("CONFIG", "SET", "min-replicas-to-write", 1)
        assert p.set("m", "1")
        assert info(p)["min_slaves_good_slaves"] == 1
    finally:
        p.execute_command("CONFIG", "SET", "min-replicas-to-write", 0)


def test_replica_keeps_expired_keys_until_the_primary_deletes_them(pair):
    p, r = pair
    p.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", 0)
    try:
        p.flushall()
        p.set("soon", "v", px=30)
        wait_caught_up(p, r)
        time.sleep(0.08)
        assert r.get("soon") is None  # logically expired on the replica...
        assert r.exists("soon") == 0
        assert r.ttl("soon") == -2 and r.type("soon") == b"none"
        assert r.keys("*") == [] and r.scan(0)[1] == []
        assert r.dbsize() == 1  # ...but not deleted: only the primary decides
        assert p.get("soon") is None  # the primary deletes it on access and sends DEL
        wait_caught_up(p, r)
        assert r.dbsize() == 0
        assert stat(r, "expired_keys") == 0
    finally:
        p.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", 1)


def test_partial_resync_after_short_disconnect():
    with ServerProcess("shoal", *DEBUG) as primary, _replica_of(primary) as replica:
        p, r = redis.Redis(port=primary.port), redis.Redis(port=replica.port)
        wait_link_up(r)
        p.set("a", "1")
        wait_caught_up(p, r)
        p.execute_command("CLIENT", "KILL", "TYPE", "replica")
        p.set("b", "2")
        p.rpush("l", 1, 2)
        wait_caught_up(p, r)
        assert r.get("b") == b"2"
        assert stat(p, "sync_full") == 1
        assert stat(p, "sync_partial_ok") == 1
        assert digest(p) == digest(r)


def test_full_resync_when_offset_left_the_backlog():
    with ServerProcess("shoal", *DEBUG, "--repl-backlog-size", "16384") as primary, _replica_of(primary) as replica:
        p, r = redis.Redis(port=primary.port), redis.Redis(port=replica.port)
        wait_link_up(r)
        wait_caught_up(p, r)
        pipe = p.pipeline(transaction=False)
        pipe.execute_command("CLIENT", "KILL", "TYPE", "replica")
        pipe.set("big", "x" * 100_000)  # the replica reconnects after ~1 s: its offset is gone by then
        pipe.execute()
        wait_caught_up(p, r)
        assert r.strlen("big") == 100_000
        assert stat(p, "sync_full") == 2
        assert stat(p, "sync_partial_ok") == 0
        assert stat(p, "sync_partial_err") == 1


def test_promote_keeps_psync_continuity_for_siblings_and_old_primary():
    with ServerProcess("shoal", *DEBUG) as primary, _replica_of(primary) as ra, _replica_of(primary) as rb:
        p, a, b = (redis.Redis(port=x.port) for x in (primary, ra, rb))
        wait_link_up(a)
        wait_link_up(b)
        p.set("k", "v")
        p.zadd("z", {"m": 1})
        wait_caught_up(p, a)
        wait_caught_up(p, b)
        old_id = info(p)["master_replid"]
        assert a.execute_command("REPLICAOF", "NO", "ONE") == b"OK"
        ia = info(a)
        assert ia["role"] == "master"
        assert ia["master_replid2"] == old_id and ia["master_replid"] != old_id
        assert ia["second_repl_offset"] == ia["master_repl_offset"] + 1
        assert a.set("after-promote", "1")
        # The sibling and the old primary follow the new primary with a partial resync.
        b.execute_command("REPLICAOF", "127.0.0.1", ra.port)
        p.execute_command("REPLICAOF", "127.0.0.1", ra.port)
        wait_link_up(b)
        wait_link_up(p)
        wait_caught_up(a, b)
        wait_caught_up(a, p)
        assert stat(a, "sync_partial_ok") == 2
        assert stat(a, "sync_full") == 0
        assert b.get("after-promote") == b"1" and p.get("after-promote") == b"1"
        assert digest(a) == digest(b) == digest(p)
        assert info(b)["master_replid"] == info(a)["master_replid"]


def test_replicaof_errors_and_already_connected(pair):
    p, r = pair
    port = r.connection_pool.connection_kwargs["port"]
    with pytest.raises(redis.ResponseError, match="^Invalid master port$"):
        p.execute_command("REPLICAOF", "127.0.0.1", "70000")
    with pytest.raises(redis.ResponseError, match="^Invalid master port$"):
        p.execute_command("REPLICAOF", "127.0.0.1", "x")
    primary_port = info(r)["master_port"]
    assert r.execute_command("REPLICAOF", "127.0.0.1", primary_port) == b"OK Already connected to specified master"
    assert p.execute_command("REPLICAOF", "NO", "ONE") == b"OK"  # a primary: nothing to do
    assert port


def test_masterdown_when_stale_data_is_refused():
    dead = free_port()
    with ServerProcess("shoal", "--replicaof", "127.0.0.1", str(dead), "--replica-serve-stale-data", "no") as rp:
        r = redis.Redis(port=rp.port)
        with pytest.raises(redis.ResponseError, match="^Link with MASTER is down and replica-serve-stale-data"):
            r.get("x")
        with pytest.raises(redis.ResponseError, match="Link with MASTER is down"):
            r.ping()  # as Redis: PING is not flagged stale
        assert r.execute_command("CONFIG", "GET", "port")  # stale-flagged commands still run
        assert r.execute_command("ROLE")[3] in (b"connect", b"connecting")
        ri = info(r)
        assert ri["master_link_status"] == "down" and ri["master_link_down_since_seconds"] == -1
        assert r.config_get("replicaof") == {"replicaof": f"127.0.0.1 {dead}"}
        assert r.execute_command("REPLICAOF", "NO", "ONE") == b"OK"
        assert r.config_get("replicaof") == {"replicaof": ""}
        assert r.get("x") is None


# ------------------------------------------------------------------ bad input, primary side


def _raw(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    return s


def _read_until(s: socket.socket, predicate, limit: float = 10.0) -> bytes:
    buf = b""
    deadline = time.monotonic() + limit
    while not predicate(buf):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out; got {buf[:200]!r}")
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
    return buf


def test_fake_replica_gets_a_loadable_rdb_and_bad_requests_do_no_harm():
    with ServerProcess("shoal", *DEBUG) as primary:
        p = redis.Redis(port=primary.port)
        p.set("a", "1")
        p.hset("h", "f", "v")
        before = digest(p)
        s = _raw(primary.port)
        try:
            s.sendall(encode_command("PSYNC", "abc", "notanumber"))
            assert _read_until(s, lambda b: b.endswith(b"\r\n")) == b"-ERR value is not an integer or out of range\r\n"
            s.sendall(encode_command("REPLCONF", "listening-port"))
            assert _read_until(s, lambda b: b.endswith(b"\r\n")) == b"-ERR syntax error\r\n"
            s.sendall(encode_command("REPLCONF", "bogus", "1"))
            assert _read_until(s, lambda b: b.endswith(b"\r\n")).startswith(b"-ERR Unrecognized REPLCONF option")
            # An unknown history / offset far outside the backlog: a full resync, disk form (no capa eof).
            s.sendall(encode_command("PSYNC", "0" * 40, "999999999"))
            head = _read_until(s, lambda b: b.count(b"\r\n") >= 2)
            line, rest = head.split(b"\r\n", 1)
            assert line.startswith(b"+FULLRESYNC ")
            size_line, rest = rest.split(b"\r\n", 1)
            size = int(size_line[1:])
            rdb = rest + _read_until(s, lambda b: len(rest) + len(b) >= size)
            rows = {key: value for _, key, value, _ in load_rdb(rdb[:size])}
            assert set(rows) == {b"a", b"h"}
        finally:
            s.close()
        # Garbage from a "replica" after PSYNC is ignored or closes it; the primary is unharmed.
        s = _raw(primary.port)
        try:
            s.sendall(encode_command("REPLCONF", "capa", "eof") + encode_command("PSYNC", "?", "-1"))
            # As Redis: a PSYNC pipelined behind a reply not yet sent is refused.
            assert _read_until(s, lambda b: b.count(b"\r\n") >= 2) == (
                b"+OK\r\n-ERR SYNC and PSYNC are invalid with pending output\r\n")
            s.sendall(encode_command("PSYNC", "?", "-1"))
            assert _read_until(s, lambda b: b.count(b"\r\n") >= 2).startswith(b"+FULLRESYNC")
            s.sendall(b"*3\r\n$8\r\nREPLCONF\r\n$3\r\nACK\r\n$3\r\nxyz\r\n" + b"\x00\xff garbage\r\n*-5\r\n")
        finally:
            s.close()
        time.sleep(0.2)
        assert p.ping()
        assert digest(p) == before
        assert stat(p, "sync_full") == 2


# ------------------------------------------------------------------ bad input, replica side


class FakePrimary:
    """A socket server that answers the handshake and then sends ``payload`` after +FULLRESYNC."""

    def __init__(self, payload: bytes) -> None:
        self.payload = payload
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.attempts = 0
        self.stop = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(5)
                buf = b""
                try:
                    while True:
                        try:
                            end = reply_end(buf)
                        except IndexError:
                            data = conn.recv(4096)
                            if not data:
                                break
                            buf += data
                            continue
                        command, buf = buf[:end], buf[end:]
                        if b"PSYNC" in command:
                            self.attempts += 1
                            conn.sendall(b"+FULLRESYNC " + b"f" * 40 + b" 0\r\n" + self.payload)
                            time.sleep(0.1)
                            break
                        conn.sendall(b"+OK\r\n")
                except OSError:
                    pass

    def close(self) -> None:
        self.stop = True
        self.thread.join(2)
        self.sock.close()


@pytest.mark.parametrize("payload", [
    b"$100\r\nREDIS0010\xfa\x09redis-ver",  # truncated, then the connection closes
    b"$20\r\nREDIS0010garbagegarbag",  # complete but corrupt
    b"$EOF:" + b"a" * 40 + b"\r\nNOTANRDB" + b"a" * 40,  # diskless form, corrupt
])
def test_bad_rdb_from_the_primary_keeps_the_old_data(payload):
    fake = FakePrimary(payload)
    try:
        with ServerProcess("shoal", *DEBUG) as node:
            c = redis.Redis(port=node.port)
            c.set("mine", "1")
            c.rpush("list", "a", "b")
            before = digest(c)
            c.execute_command("REPLICAOF", "127.0.0.1", fake.port)
            deadline = time.monotonic() + 10
            while fake.attempts < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert fake.attempts >= 2  # it failed, kept going, and retried
            assert digest(c) == before
            assert c.get("mine") == b"1"
            assert info(c)["master_link_status"] == "down"
            assert "keeping the old data" in node.log() or "Bad protocol" in node.log() or \
                "closed the connection" in node.log()
    finally:
        fake.close()


# ------------------------------------------------------------------ cluster mode


def _call(port: int, *args) -> bytes:
    from tests.resp_client import RawClient

    with RawClient(port) as c:
        return c.call(*args)


def test_cluster_replicate_starts_replication_and_replicas_redirect_writes():
    from tests.resp_client import RawClient
    from tests.servers import free_cluster_port

    nodes = []
    try:
        for _ in range(2):
            nodes.append(ServerProcess("shoal", "--cluster-enabled", "yes", "--cluster-node-timeout", "2000",
                                       *DEBUG, port=free_cluster_port()).start(timeout=30))
        a, b = (redis.Redis(port=n.port) for n in nodes)
        a.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
        deadline = time.monotonic() + 20
        while b"cluster_state:ok" not in _call(nodes[0].port, "CLUSTER", "INFO"):
            assert time.monotonic() < deadline, "cluster never ok"
            time.sleep(0.05)
        a.set("{x}1", "before")  # slot owned by a
        b.execute_command("CLUSTER", "MEET", "127.0.0.1", nodes[0].port)
        a_id = a.execute_command("CLUSTER", "MYID").decode()
        while a_id.encode() not in _call(nodes[1].port, "CLUSTER", "NODES"):
            assert time.monotonic() < deadline, "b never learned about a"
            time.sleep(0.1)
        assert b.execute_command("CLUSTER", "REPLICATE", a_id) == b"OK"
        wait_link_up(b)
        with pytest.raises(redis.ResponseError, match="REPLICAOF not allowed in cluster mode"):
            b.execute_command("REPLICAOF", "127.0.0.1", nodes[0].port)
        a.set("{x}2", "after")
        wait_caught_up(a, b)
        # A node that just joined says CLUSTERDOWN until it has learnt the slot map.
        while b"cluster_state:ok" not in _call(nodes[1].port, "CLUSTER", "INFO"):
            assert time.monotonic() < deadline + 20, "the replica's cluster state never became ok"
            time.sleep(0.05)
        with RawClient(nodes[1].port) as c:
            assert c.call("SET", "{x}3", "v").startswith(b"-MOVED ")
            assert c.call("GET", "{x}1").startswith(b"-MOVED ")
            assert c.call("READONLY") == b"+OK\r\n"
            assert c.call("GET", "{x}1") == b"$6\r\nbefore\r\n"
            assert c.call("GET", "{x}2") == b"$5\r\nafter\r\n"
        assert digest(a) == digest(b)
    finally:
        for n in nodes:
            n.stop()


@pytest.mark.parametrize("primary_kind", ["shoal", "redis"])
def test_partial_resync_continues_in_the_selected_db(primary_kind):
    """The stream after +CONTINUE may carry no SELECT: the replica must still be in the right db."""
    extra = ("--repl-diskless-sync-delay", "0") if primary_kind == "redis" else ()
    with ServerProcess(primary_kind, *DEBUG, *extra) as primary, _replica_of(primary) as replica:
        p, r = redis.Redis(port=primary.port, db=3), redis.Redis(port=replica.port)
        wait_link_up(r)
        p.set("in3", "a")
        wait_caught_up(p, r)
        p.execute_command("CLIENT", "KILL", "TYPE", "replica")
        p.set("also-in3", "b")  # no SELECT in the stream: the primary's stream is still in db 3
        wait_caught_up(p, r)
        assert stat(p, "sync_partial_ok") == 1
        r.execute_command("SELECT", 3)
        assert r.get("also-in3") == b"b"
        assert digest(p) == digest(r)
        # The same after the replica drops the link itself (CLIENT KILL TYPE master on the replica).
        r.execute_command("CLIENT", "KILL", "TYPE", "master")
        p.set("third", "c")
        wait_caught_up(p, r)
        assert r.get("third") == b"c"
        assert stat(p, "sync_partial_ok") == 2


# ------------------------------------------------------------------ replies and errors, against Redis


@pytest.mark.parametrize("args", [
    ("REPLICAOF", "127.0.0.1", "70000"),
    ("REPLICAOF", "127.0.0.1", "-1"),
    ("REPLICAOF", "127.0.0.1", "x"),
    ("REPLICAOF", "127.0.0.1"),
    ("SLAVEOF", "127.0.0.1", " 1"),
    ("REPLICAOF", "no", "one"),
    ("WAIT", "x", "0"),
    ("WAIT", "0", "-1"),
    ("WAIT", "0", "1.5"),
    ("WAIT", "0", "0"),
    ("WAIT", "1", "20"),
    ("WAIT", "1"),
    ("REPLCONF", "listening-port"),
    ("REPLCONF", "listening-port", "x"),
    ("REPLCONF", "bogus", "1"),
    ("REPLCONF", "ip-address", "a" * 255),
    ("REPLCONF", "ip-address", "a" * 256),
    ("REPLCONF", "rdb-only", "x"),
    ("REPLCONF", "capa", "whatever"),
    ("REPLCONF",),
    ("REPLCONF", "rdb-only", "2"),
    ("PSYNC", "?"),
    ("PSYNC", "?", "x"),
    ("ROLE", "x"),
])
def test_replies_match_redis(differ, args):
    differ.check(*args)


def test_chained_replica_syncs_from_a_replica_and_follows_its_stream_db():
    with ServerProcess("shoal", *DEBUG) as primary, _replica_of(primary) as middle:
        p, m = redis.Redis(port=primary.port, db=2), redis.Redis(port=middle.port)
        wait_link_up(m)
        p.set("before", "1")
        wait_caught_up(p, m)
        with _replica_of(middle) as leaf:
            lf = redis.Redis(port=leaf.port)
            wait_link_up(lf)
            p.set("after", "2")  # db 2 again: no SELECT in the stream the leaf receives
            p.hset("h", "f", "v")
            wait_caught_up(p, m)
            wait_caught_up(m, lf)
            assert info(lf)["master_replid"] == info(p)["master_replid"]
            lf.execute_command("SELECT", 2)
            assert lf.get("after") == b"2"
            assert digest(p) == digest(m) == digest(lf)
            with pytest.raises(redis.ResponseError, match="WAIT cannot be used with replica"):
                m.execute_command("WAIT", 1, 10)


def _stalled_replica(port: int) -> socket.socket:
    """A replica that asks for a full sync and then never reads: the stream piles up in its buffer."""
    s = _raw(port)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.sendall(encode_command("PSYNC", "?", "-1"))
    _read_until(s, lambda b: b.count(b"\r\n") >= 2)
    return s


def test_replica_over_its_output_buffer_limit_is_dropped():
    with ServerProcess("shoal", *DEBUG, "--client-output-buffer-limit", "replica 1mb 0 0") as primary:
        p = redis.Redis(port=primary.port)
        s = _stalled_replica(primary.port)
        try:
            assert info(p)["connected_slaves"] == 1
            for i in range(24):  # a replica that never reads: the stream piles up in its buffer
                p.set(f"big{i}", "x" * (1 << 20))
            deadline = time.monotonic() + 10
            while info(p)["connected_slaves"] and time.monotonic() < deadline:
                time.sleep(0.05)
            assert info(p)["connected_slaves"] == 0
            assert "overcoming of output buffer limits" in primary.log()
            assert p.dbsize() == 24
        finally:
            s.close()


def test_replica_over_its_soft_output_limit_for_too_long_is_dropped():
    """replica <hard 0> <soft 1mb> <3 s>: a replica whose buffer stays past the soft limit is dropped once
    the limit has been passed for more than the given seconds (checked as the stream grows, as Redis)."""
    with ServerProcess("shoal", *DEBUG, "--client-output-buffer-limit", "replica 0 1mb 3") as primary:
        p = redis.Redis(port=primary.port)
        s = _stalled_replica(primary.port)
        try:
            # Past the soft limit (beyond what the kernel's socket buffers absorb), but not for long yet.
            for i in range(12):
                p.set(f"big{i}", "x" * (1 << 20))
            assert info(p)["connected_slaves"] == 1
            deadline = time.monotonic() + 20
            i = 12
            while info(p)["connected_slaves"] and time.monotonic() < deadline:
                p.set(f"big{i}", "x")  # the stream keeps growing, a little, while it stays past the limit
                i += 1
                time.sleep(0.1)
            assert info(p)["connected_slaves"] == 0
            assert "overcoming of output buffer limits" in primary.log()
        finally:
            s.close()


def test_replica_with_aof_rewrites_it_after_the_sync():
    """As restartAOFAfterSYNC: a restarted replica has the synced data, not just the stream after it."""
    with ServerProcess("shoal", *DEBUG) as primary:
        p = redis.Redis(port=primary.port)
        for i in range(50):
            p.set(f"k{i}", i)
        replica = _replica_of(primary, "--appendonly", "yes").start()
        try:
            r = redis.Redis(port=replica.port)
            wait_link_up(r)
            p.set("after", "1")
            wait_caught_up(p, r)
            deadline = time.monotonic() + 15
            while "Background AOF rewrite finished successfully" not in replica.log():
                assert time.monotonic() < deadline, "no AOF rewrite after the sync"
                time.sleep(0.05)
            replica.stop(keep_dir=True)
            at = replica.argv.index("--replicaof")
            del replica.argv[at:at + 3]  # restart standalone, on its AOF alone
            replica.start()
            assert redis.Redis(port=replica.port).dbsize() == 51
        finally:
            replica.stop()


def test_publish_reaches_subscribers_on_replicas_but_not_the_aof(tmp_path):
    """Redis propagates PUBLISH to replicas only (PROPAGATE_REPL): a replica's subscribers hear it, the AOF
    never stores it."""
    with ServerProcess("shoal", "--appendonly", "yes") as primary, ServerProcess("redis") as real:
        replica = _replica_of(primary).start()
        try:
            real_client = redis.Redis(port=real.port)
            real_client.execute_command("REPLICAOF", "127.0.0.1", primary.port)
            for port in (replica.port, real.port):
                wait_link_up(redis.Redis(port=port))
            subscribers = []
            for port in (replica.port, real.port):
                pubsub = redis.Redis(port=port).pubsub()
                pubsub.subscribe("news")
                assert pubsub.get_message(timeout=5)["type"] == "subscribe"
                subscribers.append(pubsub)
            redis.Redis(port=primary.port).publish("news", "hello")
            for pubsub in subscribers:
                message = pubsub.get_message(timeout=10)
                assert message is not None and message["data"] == b"hello", message
            incr = "".join(p.read_text(errors="replace") for p in
                           (Path(primary.dir) / "appendonlydir").glob("*.incr.aof"))
            assert "PUBLISH" not in incr.upper()
        finally:
            replica.stop()


_PIECES = st.one_of(
    st.lists(st.binary(max_size=12), min_size=1, max_size=4).map(lambda argv: encode_command(*argv)),
    st.just(b"*2\r\n$03\r\nSET\r\n$1\r\nk\r\n"),  # a non-canonical length: same command, other bytes
    st.just(b"*1\r\n$4\r\nPING\r\n"), st.just(b"\n"), st.just(b"PING\r\n"), st.just(b"*0\r\n"),
    st.just(b"*2\r\n:1\r\n$1\r\na\r\n"), st.just(b"*-1\r\n"), st.just(b"*1\r\n*1\r\n$1\r\na\r\n"),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_PIECES, max_size=12), st.integers(0, 40))
def test_stream_parser_fast_path_matches_the_exact_parser(pieces, cut):
    """The replica's stream parser (hiredis plus a canonical-bytes check) must yield the same commands and
    byte offsets as the byte-by-byte reference, and fail the same way, on any stream prefix."""
    from node.replication.replica import _parse_stream_exact, parse_stream

    data = b"".join(pieces)
    data = data[:max(0, len(data) - cut)]

    def run(parser):
        out = []
        try:
            for argv, end in parser(bytearray(data), 0):
                out.append((argv, end))
        except Exception as exc:  # noqa: BLE001 - compared, not hidden
            out.append(("error", type(exc).__name__, str(exc)))
        return out

    assert run(parse_stream) == run(_parse_stream_exact)


def test_big_values_and_small_writes_stream_to_a_replica():
    """Values larger than the replica parser's hiredis bound (1 MB) arrive over many reads and go through
    the byte parser; small writes around them take the fast path. The replica ends equal to its primary."""
    with ServerProcess("shoal", *DEBUG) as primary:
        replica = _replica_of(primary).start()
        try:
            p, r = redis.Redis(port=primary.port), redis.Redis(port=replica.port)
            wait_link_up(r)
            pipe = p.pipeline(transaction=False)
            for i in range(3):
                pipe.set(f"big{i}", bytes([65 + i]) * (3 << 20))
                for j in range(500):
                    pipe.set(f"small{i}:{j}", j)
            pipe.execute()
            wait_caught_up(p, r)
            assert digest(p) == digest(r)
            assert r.strlen("big2") == 3 << 20 and r.get("small2:499") == b"499"
        finally:
            replica.stop()
