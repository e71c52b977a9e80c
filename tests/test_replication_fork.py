"""The primary's full-sync snapshot comes from a fork child (node.replication.fork), as Redis's.

Real processes: Shoal primaries synced to Shoal and to redis-server 7 replicas in both targets
(disk: ``repl-diskless-sync no``; socket: ``yes``), replicas sharing one fork, another client
served while a large dataset is transferred, and a replica killed mid-transfer.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time

import pytest
import redis

from node.propagation import encode_command
from tests.replication_helpers import DEBUG, digest, stat, wait_caught_up, wait_link_up
from tests.servers import ServerProcess
from tests.test_aof import wait_for as _wait


def _mixed_dataset(p: redis.Redis, n: int = 300) -> None:
    pipe = p.pipeline(transaction=False)
    for i in range(n):
        pipe.set(f"s{i}", f"v{i}" * (i % 7 + 1))
        pipe.hset(f"h{i % 40}", f"f{i}", i)
        pipe.rpush(f"l{i % 30}", i)
        pipe.zadd(f"z{i % 20}", {f"m{i}": i / 3})
        pipe.sadd(f"set{i % 25}", i)
        if i % 9 == 0:
            pipe.expire(f"s{i}", 10_000)
    pipe.execute_command("SELECT", 3)
    pipe.set("in-db-3", "yes")
    pipe.execute_command("SELECT", 0)
    pipe.execute()


def _persistence(c: redis.Redis) -> dict:
    return c.info("persistence")


def _log_count(server: ServerProcess, text: str) -> int:
    return server.log().count(text)


def _children(pid: int) -> list[tuple[int, str]]:
    """Every process whose parent is ``pid`` (zombies included): (pid, state)."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as fh:
                stat_line = fh.read()
        except OSError:
            continue
        fields = stat_line[stat_line.rindex(")") + 2:].split()
        if int(fields[1]) == pid:
            found.append((int(name), fields[0]))
    return found


@pytest.mark.parametrize("replica_kind", ["shoal", "redis"])
@pytest.mark.parametrize("diskless", ["yes", "no"])
def test_full_sync_from_a_fork_ends_identical(replica_kind, diskless):
    target = "replicas sockets" if diskless == "yes" else "disk"
    with ServerProcess("shoal", *DEBUG, "--repl-diskless-sync", diskless) as primary, \
            ServerProcess(replica_kind, *DEBUG) as replica:
        p = redis.Redis(port=primary.port)
        r = redis.Redis(port=replica.port)
        _mixed_dataset(p)
        forks_before = int(p.info("stats")["total_forks"])
        r.execute_command("REPLICAOF", "127.0.0.1", primary.port)
        wait_link_up(r)
        p.set("after-sync", "1")
        p.lpush("l0", "after")
        wait_caught_up(p, r)
        assert digest(p) == digest(r)
        assert r.get("after-sync") == b"1"
        assert stat(p, "sync_full") == 1
        assert int(p.info("stats")["total_forks"]) == forks_before + 1
        log = primary.log()
        assert f"Starting BGSAVE for SYNC with target: {target}" in log
        if diskless == "yes":
            assert "Background RDB transfer terminated with success" in log
            assert "succeeded (socket)" in log
        else:
            assert "Background saving terminated with success" in log
            assert "Synchronization with replica 127.0.0.1:%d succeeded" % replica.port in log
            assert os.path.exists(os.path.join(primary.dir, "dump.rdb"))  # Redis's disk target is the RDB file
        assert _persistence(p)["rdb_bgsave_in_progress"] == 0
        assert _children(primary.proc.pid) == []


def test_writes_during_the_fork_reach_the_replica_after_the_snapshot():
    """The offset +FULLRESYNC names is the one at the fork; what is written while the child works is
    held for the replica and sent after the snapshot (a slowed child: rdb-key-save-delay)."""
    with ServerProcess("shoal", *DEBUG, "--rdb-key-save-delay", "2000") as primary, \
            ServerProcess("redis", *DEBUG) as replica:
        p = redis.Redis(port=primary.port)
        r = redis.Redis(port=replica.port)
        for i in range(300):
            p.set(f"k{i}", i)
        r.execute_command("REPLICAOF", "127.0.0.1", primary.port)
        _wait(lambda: _persistence(p)["rdb_bgsave_in_progress"] == 1, 10, "the fork")
        slave = p.info("replication")["slave0"]
        assert slave["state"] == "wait_bgsave"
        assert p.info("replication")["connected_slaves"] == 1
        assert p.execute_command("ROLE")[2] == []  # ROLE lists online replicas only, as Redis
        with pytest.raises(redis.ResponseError, match="Background save already in progress"):
            p.bgsave()
        written = 0
        while _persistence(p)["rdb_bgsave_in_progress"] == 1:
            p.incr("counter")
            p.set(f"late{written}", written)
            written += 1
            time.sleep(0.005)
        assert written > 10  # the child took ~0.6 s: these all came after the fork
        wait_link_up(r)
        wait_caught_up(p, r)
        assert digest(p) == digest(r)
        assert int(r.get("counter")) == written


def test_two_replicas_asking_together_share_one_fork():
    """repl-diskless-sync-max-replicas 2: the fork starts when both wait, one child serves both."""
    with ServerProcess("shoal", *DEBUG, "--repl-diskless-sync-delay", "30",
                       "--repl-diskless-sync-max-replicas", "2") as primary, \
            ServerProcess("shoal", *DEBUG) as a, ServerProcess("redis", *DEBUG) as b:
        p = redis.Redis(port=primary.port)
        _mixed_dataset(p, 100)
        forks = int(p.info("stats")["total_forks"])
        ra, rb = redis.Redis(port=a.port), redis.Redis(port=b.port)
        ra.execute_command("REPLICAOF", "127.0.0.1", primary.port)
        _wait(lambda: "Delay next BGSAVE for diskless SYNC" in primary.log(), 10, "the first replica to wait")
        time.sleep(0.3)
        assert p.info("replication")["slave0"]["state"] == "wait_bgsave"  # still waiting for company
        assert int(p.info("stats")["total_forks"]) == forks
        rb.execute_command("REPLICAOF", "127.0.0.1", primary.port)
        wait_link_up(ra)
        wait_link_up(rb)
        wait_caught_up(p, ra)
        wait_caught_up(p, rb)
        assert digest(p) == digest(ra) == digest(rb)
        assert stat(p, "sync_full") == 2
        assert int(p.info("stats")["total_forks"]) == forks + 1
        assert _log_count(primary, "Starting BGSAVE for SYNC with target: replicas sockets (2 replicas") == 1


def test_disk_target_second_replica_attaches_to_the_running_bgsave():
    with ServerProcess("shoal", *DEBUG, "--repl-diskless-sync", "no", "--rdb-key-save-delay", "2000") as primary, \
            ServerProcess("shoal", *DEBUG) as a, ServerProcess("redis", *DEBUG) as b:
        p = redis.Redis(port=primary.port)
        for i in range(300):
            p.set(f"k{i}", i)
        ra, rb = redis.Redis(port=a.port), redis.Redis(port=b.port)
        forks = int(p.info("stats")["total_forks"])
        ra.execute_command("REPLICAOF", "127.0.0.1", primary.port)
        _wait(lambda: _persistence(p)["rdb_bgsave_in_progress"] == 1, 10, "the BGSAVE")
        p.set("between", "1")
        rb.execute_command("REPLICAOF", "127.0.0.1", primary.port)
        _wait(lambda: "Waiting for end of BGSAVE for SYNC" in primary.log(), 10, "the second replica to attach")
        p.set("after-both", "1")
        wait_link_up(ra, 30)
        wait_link_up(rb, 30)
        wait_caught_up(p, ra)
        wait_caught_up(p, rb)
        assert digest(p) == digest(ra) == digest(rb)
        assert int(p.info("stats")["total_forks"]) == forks + 1
        assert stat(p, "sync_full") == 2


def test_a_replica_asking_during_a_socket_transfer_waits_for_the_next_fork():
    with ServerProcess("shoal", *DEBUG, "--rdb-key-save-delay", "2000") as primary, \
            ServerProcess("redis", *DEBUG) as a, ServerProcess("shoal", *DEBUG) as b:
        p = redis.Redis(port=primary.port)
        for i in range(300):
            p.set(f"k{i}", i)
        ra, rb = redis.Redis(port=a.port), redis.Redis(port=b.port)
        forks = int(p.info("stats")["total_forks"])
        ra.execute_command("REPLICAOF", "127.0.0.1", primary.port)
        _wait(lambda: _persistence(p)["rdb_bgsave_in_progress"] == 1, 10, "the first fork")
        rb.execute_command("REPLICAOF", "127.0.0.1", primary.port)
        _wait(lambda: "Current BGSAVE has socket target. Waiting for next BGSAVE for SYNC" in primary.log(), 10,
              "the second replica to wait")
        wait_link_up(ra, 30)
        wait_link_up(rb, 30)
        p.set("end", "1")
        wait_caught_up(p, ra)
        wait_caught_up(p, rb)
        assert digest(p) == digest(ra) == digest(rb)
        assert int(p.info("stats")["total_forks"]) == forks + 2


def _big_rdb(directory: str, nkeys: int) -> None:
    """A dump.rdb of ``key:<n>`` -> 16 bytes for a primary to load at start (much faster than SETs)."""
    from node.persistence.rdb import RdbWriter

    with open(os.path.join(directory, "dump.rdb"), "wb") as fh:
        writer = RdbWriter(fh)
        writer.header({"redis-ver": "7.0.15", "redis-bits": 64})
        writer.select_db(0, nkeys, 0)
        for n in range(nkeys):
            writer.key(b"key:%d" % n, b"%016d" % n)
        writer.finish()


def _primary_with_keys(nkeys: int, *args: str) -> ServerProcess:
    primary = ServerProcess("shoal", *DEBUG, *args)
    _big_rdb(primary.dir, nkeys)
    return primary.start(timeout=60)


def _assert_sample(c: redis.Redis, nkeys: int) -> None:
    """(DEBUG DIGEST of 300k keys takes far too long here.) Every 997th key has its exact value."""
    numbers = list(range(0, nkeys, 997)) + [nkeys - 1]
    assert c.mget([f"key:{n}" for n in numbers]) == [b"%016d" % n for n in numbers]


def _ping_loop(port: int, stop: threading.Event, latencies: list, errors: list) -> None:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            ping = encode_command([b"PING"])
            while not stop.is_set():
                start = time.perf_counter()
                s.sendall(ping)
                got = b""
                while not got.endswith(b"\r\n"):
                    chunk = s.recv(64)
                    if not chunk:
                        raise ConnectionError("closed")
                    got += chunk
                if got != b"+PONG\r\n":
                    raise AssertionError(got)
                latencies.append(time.perf_counter() - start)
                time.sleep(0.001)
    except Exception as exc:  # noqa: BLE001 - reported by the test
        errors.append(exc)


def test_other_clients_are_served_while_a_large_dataset_syncs():
    nkeys = 300_000
    with _primary_with_keys(nkeys) as primary, ServerProcess("shoal", *DEBUG) as replica:
        p = redis.Redis(port=primary.port)
        r = redis.Redis(port=replica.port)
        stop = threading.Event()
        latencies: list = []
        errors: list = []
        pinger = threading.Thread(target=_ping_loop, args=(primary.port, stop, latencies, errors))
        pinger.start()
        try:
            time.sleep(0.2)
            before = len(latencies)
            start = time.monotonic()
            r.execute_command("REPLICAOF", "127.0.0.1", primary.port)
            wait_link_up(r, 60)
            sync_s = time.monotonic() - start
            during = latencies[before:]
        finally:
            stop.set()
            pinger.join()
        assert not errors, errors
        assert during, "no PING was answered during the sync"
        during_sorted = sorted(during)
        print(f"\nfull sync of {nkeys} keys: {sync_s:.2f} s; {len(during)} PINGs during it, max latency "
              f"{max(during) * 1000:.1f} ms, p99 {during_sorted[int(len(during_sorted) * 0.99)] * 1000:.1f} ms")
        assert r.dbsize() == p.dbsize() == nkeys
        _assert_sample(r, nkeys)


def test_replica_killed_mid_transfer_leaves_the_primary_healthy_and_the_child_reaped():
    nkeys = 200_000
    with _primary_with_keys(nkeys) as primary:
        p = redis.Redis(port=primary.port)
        p.config_set("rdb-key-save-delay", 10)  # the child needs 2 s at least: the kill lands mid-transfer
        # A "replica" that asks for a full sync in the socket form and never reads: the primary's
        # buffer fills, it stops reading the pipe, and the child blocks -- a transfer stuck midway.
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", primary.port))
        s.sendall(encode_command([b"REPLCONF", b"capa", b"eof"]))
        assert s.recv(5) == b"+OK\r\n"
        s.sendall(encode_command([b"PSYNC", b"?", b"-1"]))
        _wait(lambda: _persistence(p)["rdb_bgsave_in_progress"] == 1, 10, "the fork")
        pid = primary.proc.pid
        child = _wait(lambda: _children(pid), 10, "the child process")
        time.sleep(1.0)
        assert _persistence(p)["rdb_bgsave_in_progress"] == 1  # stuck behind the replica that does not read
        assert p.ping()
        # Backpressure: what waits for that replica in the primary stays bounded (~1 MB, not the RDB).
        replica_line = [line for line in p.execute_command("CLIENT", "LIST", "TYPE", "replica").decode()
                        .splitlines() if line]
        assert len(replica_line) == 1
        omem = int(dict(f.split("=", 1) for f in replica_line[0].split())["omem"])
        assert omem < 3 << 20, replica_line
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()  # RST: the replica is gone
        _wait(lambda: _persistence(p)["rdb_bgsave_in_progress"] == 0, 10, "the child to be reaped")
        _wait(lambda: not _children(pid), 10, f"no child left (had {child})")
        assert "last replica dropped, killing fork child" in primary.log()
        assert p.info("replication")["connected_slaves"] == 0
        assert p.dbsize() == nkeys
        _assert_sample(p, nkeys)
        assert p.ping()
        # And a real replica killed with SIGKILL in the middle of its transfer (a slowed child: it writes
        # RDB for a redis-server replica, 20 us a key, so the transfer takes seconds).
        p.config_set("rdb-key-save-delay", 20)
        with ServerProcess("redis") as replica:
            r = redis.Redis(port=replica.port)
            r.execute_command("REPLICAOF", "127.0.0.1", primary.port)
            _wait(lambda: _persistence(p)["rdb_bgsave_in_progress"] == 1, 10, "the second fork")
            _wait(lambda: r.info("replication").get("master_sync_in_progress") == 1, 10, "the transfer")
            time.sleep(0.3)
            assert _persistence(p)["rdb_bgsave_in_progress"] == 1
            os.kill(replica.proc.pid, signal.SIGKILL)
            replica.proc.wait()
        _wait(lambda: p.info("replication")["connected_slaves"] == 0, 20, "the replica to be dropped")
        _wait(lambda: _persistence(p)["rdb_bgsave_in_progress"] == 0, 20, "the child to be reaped")
        _wait(lambda: not _children(pid), 10, "no child left")
        assert _log_count(primary, "last replica dropped, killing fork child") == 2
        assert p.dbsize() == nkeys
        assert p.set("still", "writable")
