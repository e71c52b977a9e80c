"""The append-only file in Redis 7.0's multi-part format (node.persistence.aof).

Checked against the format and behaviour of real redis-server 7.0: the
directory layout and manifest lines, what the INCR file holds, reloading at
start-up (BASE as RDB or as AOF commands, then INCR files), truncated and
corrupt files, BGREWRITEAOF and its replies, CONFIG SET appendonly, INFO
persistence, write errors (MISCONF), and interop both ways: an AOF directory
written by Shoal loads in real Redis, and one written by real Redis loads in
Shoal, with the same DEBUG DIGEST and the same value per key.
"""

from __future__ import annotations

import os
import resource
import signal
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.resp_client import RawClient, parse
from tests.servers import ServerProcess

AOF = ("--appendonly", "yes", "--enable-debug-command", "yes")


def info(c: RawClient, section: str = "persistence") -> dict[str, str]:
    text = parse(c.call("INFO", section))
    text = text.decode() if isinstance(text, bytes) else text
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


def wait_for(predicate, timeout: float = 15.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def wait_rewrite_done(c: RawClient) -> dict[str, str]:
    return wait_for(lambda: (lambda i: i if i["aof_rewrite_in_progress"] == "0" and i["aof_rewrite_scheduled"] == "0"
                             else None)(info(c)), what="the AOF rewrite to finish")


def aof_dir(proc: ServerProcess) -> str:
    return os.path.join(proc.dir, "appendonlydir")


def manifest(proc: ServerProcess) -> str:
    with open(os.path.join(aof_dir(proc), "appendonly.aof.manifest")) as fh:
        return fh.read()


def read(path: str) -> bytes:
    with open(path, "rb") as fh:
        return fh.read()


def ready(port: int) -> None:
    """Wait until the server has finished loading (ServerProcess.start returns on any reply to PING)."""
    with RawClient(port) as c:
        wait_for(lambda: info(c).get("loading") == "0", what="the dataset to load")


def start(proc: ServerProcess) -> ServerProcess:
    proc.start()
    ready(proc.port)
    return proc


def kill9(proc: ServerProcess) -> None:
    os.kill(proc.proc.pid, signal.SIGKILL)
    proc.proc.wait()
    proc.stop(keep_dir=True)


def dataset(port: int) -> dict:
    """DEBUG DIGEST plus, per key of every db: type, DEBUG DIGEST-VALUE, absolute expire time, and the
    DUMP payload where it does not depend on hash-table iteration order (strings, lists, streams)."""
    out = {}
    with RawClient(port) as c:
        out["digest"] = parse(c.call("DEBUG", "DIGEST"))
        for db in range(16):
            c.call("SELECT", db)
            for key in sorted(parse(c.call("KEYS", "*"))):
                kind = parse(c.call("TYPE", key))
                dump = parse(c.call("DUMP", key)) if kind in (b"string", b"list", b"stream", "string", "list",
                                                               "stream") else None
                out[(db, key)] = (kind, parse(c.call("DEBUG", "DIGEST-VALUE", key)),
                                  parse(c.call("PEXPIRETIME", key)), dump)
    return out


def _populate(c: RawClient) -> None:
    cmds = [
        ("SET", "s", "hello"), ("APPEND", "s", " world"), ("INCRBY", "n", "41"), ("INCR", "n"),
        ("RPUSH", "l", "a", "b", "c"), ("LPUSH", "l", "z"), ("SADD", "set", "x", "y", "1"),
        ("SADD", "iset", "1", "2", "3"), ("ZADD", "z", "1.5", "m1", "-2", "m2", "inf", "m3"),
        ("HSET", "h", "f1", "v1", "f2", "v2"), ("XADD", "st", "1-1", "a", "1"), ("XADD", "st", "2-1", "b", "2"),
        ("XGROUP", "CREATE", "st", "g", "0"), ("SET", "ttl", "v", "EX", "1000"), ("SELECT", "5"),
        ("SET", "in5", "five"), ("SELECT", "0"), ("PFADD", "hll", "a", "b", "c"),
    ]
    for cmd in cmds:
        reply = c.call(*cmd)
        assert not reply.startswith(b"-"), (cmd, reply)


# ------------------------------------------------------------------ layout


def test_layout_manifest_and_incr_contents_match_redis():
    # (always: with everysec a write may wait up to 2 s behind a slow background fsync, in both servers)
    always = ("--appendfsync", "always")
    with ServerProcess("shoal", *AOF, *always) as shoal, ServerProcess("redis", *AOF, *always) as redis:
        for proc in (shoal, redis):
            with RawClient(proc.port) as c:
                c.call("SET", "a", "1")
                c.call("SELECT", "3")
                c.call("RPUSH", "l", "x", "y")
                c.call("PEXPIREAT", "l", "9999999999999")
                c.call("SELECT", "0")
                c.call("DEL", "nothing")  # changes nothing: not propagated
                c.call("INCR", "a")
        assert sorted(os.listdir(aof_dir(shoal))) == sorted(os.listdir(aof_dir(redis))) == [
            "appendonly.aof.1.base.rdb", "appendonly.aof.1.incr.aof", "appendonly.aof.manifest"]
        assert manifest(shoal) == manifest(redis) == (
            "file appendonly.aof.1.base.rdb seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n")
        incr = "appendonly.aof.1.incr.aof"
        ours, theirs = read(os.path.join(aof_dir(shoal), incr)), read(os.path.join(aof_dir(redis), incr))
        assert ours == theirs, f"shoal {ours!r}\nredis {theirs!r}"
        base = read(os.path.join(aof_dir(shoal), "appendonly.aof.1.base.rdb"))
        assert base.startswith(b"REDIS0010") and b"aof-base" in base
        with RawClient(shoal.port) as c:
            fields = info(c)
        assert fields["aof_enabled"] == "1"
        assert int(fields["aof_current_size"]) == os.path.getsize(os.path.join(aof_dir(shoal), incr))
        assert fields["aof_base_size"] == "0" and fields["aof_last_write_status"] == "ok"
        assert fields["aof_buffer_length"] == "0"


def test_info_without_aof_matches_redis_keys():
    with ServerProcess("shoal") as shoal, ServerProcess("redis") as redis:
        with RawClient(shoal.port) as a, RawClient(redis.port) as b:
            fa, fb = info(a), info(b)
    assert [k for k in fa if k.startswith(("aof_", "module_fork"))] == \
        [k for k in fb if k.startswith(("aof_", "module_fork"))]
    assert fa["aof_enabled"] == "0"


# ------------------------------------------------------------------ reload


@pytest.mark.parametrize("fsync", ["always", "everysec"])
def test_restart_reloads_everything(fsync):
    proc = ServerProcess("shoal", *AOF, "--appendfsync", fsync).start()
    try:
        with RawClient(proc.port) as c:
            _populate(c)
            c.call("SPOP", "set")  # propagated as SREM of the popped member
            c.call("MULTI")
            c.call("SET", "m1", "1")
            c.call("SET", "m2", "2")
            c.call("EXEC")
            assert c.call("FUNCTION", "LOAD", "#!lua name=lib\nredis.register_function('f', function() return 1 end)"
                          ).startswith(b"$")
            before = dataset(proc.port)
        proc.stop(keep_dir=True)
        proc.start()
        assert dataset(proc.port) == before
        with RawClient(proc.port) as c:
            assert c.call("FCALL", "f", "0") == b":1\r\n"
            assert int(info(c)["aof_current_size"]) > 0
        kill9(proc)  # and once more after SIGKILL: nothing relies on a clean shutdown
        proc.start()
        assert dataset(proc.port) == before
        assert "DB loaded from append only file" in proc.log()
    finally:
        proc.stop()


def test_empty_incr_and_missing_files():
    proc = ServerProcess("shoal", *AOF).start()
    try:
        proc.stop(keep_dir=True)
        proc.start()  # base + empty incr: loads fine
        with RawClient(proc.port) as c:
            assert c.call("DBSIZE") == b":0\r\n"
        proc.stop(keep_dir=True)
        os.unlink(os.path.join(aof_dir(proc), "appendonly.aof.1.base.rdb"))
        with pytest.raises(RuntimeError):
            proc.start()
        assert "appendonly.aof.1.base.rdb" in proc.log()
    finally:
        proc.stop()


def test_replay_never_resurrects_an_expired_key():
    proc = ServerProcess("shoal", *AOF).start()
    try:
        with RawClient(proc.port) as c:
            assert c.call("DEBUG", "SET-ACTIVE-EXPIRE", "0") == b"+OK\r\n"
            at = int(time.time() * 1000) + 400
            c.call("RPUSH", "l1", "a")
            c.call("PEXPIREAT", "l1", at)
            c.call("RPUSH", "l1", "b")  # keeps the TTL: replayed after expiry it must not create a new key
            c.call("RPUSH", "l2", "a")
            c.call("PEXPIRE", "l2", "300")  # propagated as PEXPIREAT <absolute ms>
            c.call("RPUSH", "l2", "b")
            c.call("SET", "s", "v", "PX", "300")  # propagated as SET ... PXAT <absolute ms>
            c.call("APPEND", "s", "w")
            c.call("HSET", "h", "f", "v")
            c.call("EXPIRE", "h", "1")  # (seconds)
            c.call("HSET", "h", "g", "w")
            c.call("SET", "keep", "1")
        time.sleep(1.2)
        kill9(proc)
        proc.start()
        with RawClient(proc.port) as c:
            assert c.call("EXISTS", "l1") == b":0\r\n"
            assert c.call("EXISTS", "s") == b":0\r\n"
            assert c.call("EXISTS", "l2") == b":0\r\n", "PEXPIRE must be propagated as PEXPIREAT"
            assert c.call("EXISTS", "h") == b":0\r\n", "EXPIRE must be propagated as PEXPIREAT"
            assert c.call("GET", "keep") == b"$1\r\n1\r\n"
    finally:
        proc.stop()


# ------------------------------------------------------------- bad files


def _incr_path(proc) -> str:
    return os.path.join(aof_dir(proc), "appendonly.aof.1.incr.aof")


@pytest.mark.parametrize("tail", [
    b"*3\r\n$3\r\nSET\r\n$1\r\nb\r\n$5\r\nab",  # inside an argument
    b"*1\r\n$5\r\nMULTI\r\n*3\r\n$3\r\nSET\r\n$1\r\nb\r\n$1\r\n2\r\n",  # an unfinished transaction
])
def test_truncated_tail(tail):
    proc = ServerProcess("shoal", *AOF).start()
    try:
        with RawClient(proc.port) as c:
            c.call("SET", "a", "1")
        kill9(proc)
        path = _incr_path(proc)
        good = read(path)
        with open(path, "ab") as fh:
            fh.write(tail)
        proc.argv += ["--aof-load-truncated", "no"]
        with pytest.raises(RuntimeError):
            proc.start()
        assert "Unexpected end of file reading the append only file appendonly.aof.1.incr.aof" in proc.log()
        assert read(path) == good + tail  # refused: the file is left alone
        proc.argv += ["--aof-load-truncated", "yes"]
        proc.start()
        log = proc.log()
        assert "!!! Warning: short read while loading the AOF file appendonly.aof.1.incr.aof!!!" in log
        assert f"!!! Truncating the AOF appendonly.aof.1.incr.aof at offset {len(good)} !!!" in log
        assert read(path) == good
        with RawClient(proc.port) as c:
            assert c.call("GET", "a") == b"$1\r\n1\r\n"
            assert c.call("EXISTS", "b") == b":0\r\n"
            c.call("SET", "c", "3")  # appended after the cut
        proc.stop(keep_dir=True)
        proc.start()
        with RawClient(proc.port) as c:
            assert c.call("MGET", "a", "c") == b"*2\r\n$1\r\n1\r\n$1\r\n3\r\n"
    finally:
        proc.stop()


@pytest.mark.parametrize("tail", [
    # Cut inside a command of a transaction: Redis keeps the complete commands (MULTI included) and
    # reverts the unfinished transaction only at the next load, when the file ends cleanly inside it.
    b"*1\r\n$5\r\nMULTI\r\n*2\r\n$4\r\nINCR\r\n$1\r\na\r\n*1\r\n$4\r",
    b"*2\r\n$4\r\nINCR\r\n$1\r\na\r\n*2\r\n$4\r\nINCR\r\n$1\r\na\r\n*2\r\n$4\r\nIN",
])
def test_truncation_matches_redis(tail):
    """The same truncated tail in real Redis and in Shoal: the same file afterwards, the same data."""
    results = {}
    for kind in ("redis", "shoal"):
        proc = start(ServerProcess(kind, *AOF))
        try:
            with RawClient(proc.port) as c:
                c.call("SET", "a", "1")
            kill9(proc)
            path = _incr_path(proc)
            with open(path, "ab") as fh:
                fh.write(tail)
            start(proc)
            with RawClient(proc.port) as c:
                first = c.call("GET", "a")
            kill9(proc)
            after_first = read(path)
            start(proc)
            with RawClient(proc.port) as c:
                second = c.call("GET", "a")
            results[kind] = (after_first, read(path), first, second)
        finally:
            proc.stop()
    assert results["shoal"] == results["redis"]


def test_corrupt_middle_stops_startup_naming_file_and_offset():
    proc = ServerProcess("shoal", *AOF).start()
    try:
        with RawClient(proc.port) as c:
            c.call("SET", "a", "1")
        kill9(proc)
        path = _incr_path(proc)
        good = read(path)
        with open(path, "ab") as fh:
            fh.write(b"GARBAGE\r\n*3\r\n$3\r\nSET\r\n$1\r\nb\r\n$1\r\n2\r\n")
        with pytest.raises(RuntimeError):
            proc.start()
        log = proc.log()
        assert "Bad file format reading the append only file appendonly.aof.1.incr.aof" in log
        assert f"offset {len(good)} of appendonly.aof.1.incr.aof" in log
        assert read(path).startswith(good + b"GARBAGE")
    finally:
        proc.stop()


def test_unknown_command_and_bad_manifest():
    proc = ServerProcess("shoal", *AOF).start()
    try:
        kill9(proc)
        with open(_incr_path(proc), "ab") as fh:
            fh.write(b"*1\r\n$7\r\nNOSUCHC\r\n")
        with pytest.raises(RuntimeError):
            proc.start()
        assert "Unknown command 'NOSUCHC' reading the append only file appendonly.aof.1.incr.aof" in proc.log()
        with open(os.path.join(aof_dir(proc), "appendonly.aof.manifest"), "w") as fh:
            fh.write("file appendonly.aof.1.base.rdb seq 1 type b\nfile x seq 1 type q\n")
        with pytest.raises(RuntimeError):
            proc.start()
        log = proc.log()
        assert "*** FATAL AOF MANIFEST FILE ERROR ***" in log and "Unknown AOF file type" in log
    finally:
        proc.stop()


# --------------------------------------------------------------- rewrite


def test_bgrewriteaof_replies_files_and_info():
    proc = ServerProcess("shoal", *AOF, "--rdb-key-save-delay", "200").start()
    try:
        with RawClient(proc.port) as c:
            for i in range(300):
                c.call("SET", f"k{i}", i)
            assert c.call("BGREWRITEAOF") == b"+Background append only file rewriting started\r\n"
            assert c.call("BGREWRITEAOF") == b"-ERR Background append only file rewriting already in progress\r\n"
            assert c.call("BGSAVE") == (b"-ERR Another child process is active (AOF?): can't BGSAVE right now. "
                                        b"Use BGSAVE SCHEDULE in order to schedule a BGSAVE whenever possible.\r\n")
            fields = info(c)
            assert fields["aof_rewrite_in_progress"] == "1" and fields["aof_rewrites"] == "1"
            assert manifest(proc) == ("file appendonly.aof.1.base.rdb seq 1 type b\n"
                                      "file appendonly.aof.1.incr.aof seq 1 type i\n"
                                      "file appendonly.aof.2.incr.aof seq 2 type i\n")
            c.call("SET", "during", "rewrite")  # goes to the new INCR file
            fields = wait_rewrite_done(c)
            assert fields["aof_last_bgrewrite_status"] == "ok"
            # As Redis: right after a rewrite both sizes are BASE + the INCR written meanwhile.
            sizes = sum(os.path.getsize(os.path.join(aof_dir(proc), f"appendonly.aof.2.{kind}"))
                        for kind in ("base.rdb", "incr.aof"))
            assert int(fields["aof_base_size"]) == int(fields["aof_current_size"]) == sizes
            assert manifest(proc) == ("file appendonly.aof.2.base.rdb seq 2 type b\n"
                                      "file appendonly.aof.2.incr.aof seq 2 type i\n")
            assert sorted(os.listdir(aof_dir(proc))) == [
                "appendonly.aof.2.base.rdb", "appendonly.aof.2.incr.aof", "appendonly.aof.manifest"]
            assert b"during" in read(os.path.join(aof_dir(proc), "appendonly.aof.2.incr.aof"))
            assert not [n for n in os.listdir(proc.dir) if n.startswith("temp-")]
            # While a BGSAVE runs the rewrite is scheduled, then runs by itself.
            assert c.call("BGSAVE") == b"+Background saving started\r\n"
            assert c.call("BGREWRITEAOF") == b"+Background append only file rewriting scheduled\r\n"
            assert info(c)["aof_rewrite_scheduled"] == "1"
            wait_for(lambda: info(c)["aof_rewrites"] == "2", what="the scheduled rewrite")
            wait_rewrite_done(c)
            # Inside MULTI: scheduled.
            c.call("MULTI")
            c.call("BGREWRITEAOF")
            assert c.call("EXEC") == b"*1\r\n+Background append only file rewriting scheduled\r\n"
            wait_for(lambda: info(c)["aof_rewrites"] == "3", what="the rewrite scheduled in EXEC")
            fields = wait_rewrite_done(c)
            assert manifest(proc) == ("file appendonly.aof.4.base.rdb seq 4 type b\n"
                                      "file appendonly.aof.4.incr.aof seq 4 type i\n")
            digest = parse(c.call("DEBUG", "DIGEST"))
        log = proc.log()
        assert "Background append only file rewriting started by pid" in log
        assert "Background AOF rewrite finished successfully" in log
        proc.stop(keep_dir=True)
        proc.start()
        with RawClient(proc.port) as c:
            assert parse(c.call("DEBUG", "DIGEST")) == digest
            assert c.call("GET", "during") == b"$7\r\nrewrite\r\n"
    finally:
        proc.stop()


def test_rewrite_and_bgsave_replies_match_redis_while_a_rewrite_runs():
    out = {}
    for kind in ("redis", "shoal"):
        with ServerProcess(kind, *AOF, "--rdb-key-save-delay", "1000") as proc, RawClient(proc.port) as c:
            assert set(c.pipeline([("SET", f"k{i}", i) for i in range(500)])) == {b"+OK\r\n"}
            replies = [c.call("BGREWRITEAOF"), c.call("BGREWRITEAOF"), c.call("BGSAVE"),
                       c.call("BGSAVE", "SCHEDULE"), c.call("BGSAVE", "x")]
            c.call("MULTI")
            c.call("BGREWRITEAOF")
            replies.append(c.call("EXEC"))
            out[kind] = replies
    assert out["shoal"] == out["redis"]
    assert out["shoal"][0] == b"+Background append only file rewriting started\r\n"


def test_bgrewriteaof_without_preamble_and_with_appendonly_off():
    proc = ServerProcess("shoal", "--enable-debug-command", "yes", "--aof-use-rdb-preamble", "no").start()
    try:
        with RawClient(proc.port) as c:
            _populate(c)
            for i in range(150):  # more than 64 items: several RPUSH/SADD/ZADD/HMSET commands
                c.call("RPUSH", "big:l", i)
                c.call("SADD", "big:s", f"m{i}")
                c.call("ZADD", "big:z", repr(i / 7), f"m{i}")
                c.call("HSET", "big:h", f"f{i}", i)
            assert c.call("BGREWRITEAOF") == b"+Background append only file rewriting started\r\n"
            wait_rewrite_done(c)
            assert info(c)["aof_enabled"] == "0"
            expected = dataset(proc.port)
        assert manifest(proc) == "file appendonly.aof.1.base.aof seq 1 type b\n"
        base = read(os.path.join(aof_dir(proc), "appendonly.aof.1.base.aof"))
        assert base.startswith(b"*2\r\n$6\r\nSELECT\r\n") or base.startswith(b"*3\r\n$8\r\nFUNCTION")
        assert base.count(b"$5\r\nRPUSH\r\n") == 4 and b"$5\r\nHMSET\r\n" in base
        assert b"$9\r\nPEXPIREAT\r\n$3\r\nttl\r\n" in base
        proc.stop(keep_dir=True)
        # Both servers load this directory (with appendonly yes) to the same dataset.
        with ServerProcess("redis", *AOF, "--dir", proc.dir) as redis:
            ready(redis.port)
            assert dataset(redis.port) == expected
        proc.argv += list(AOF)
        proc.start()
        assert dataset(proc.port) == expected
    finally:
        proc.stop()


def _stream_state(port: int) -> dict:
    """Digest and XINFO STREAM FULL of every stream, consumers' seen-time left out (it is the load time)."""
    def scrub(value):
        if isinstance(value, list):
            out, skip = [], False
            for item in value:
                if skip:
                    skip = False
                    continue
                if item in (b"seen-time", "seen-time"):
                    skip = True
                    continue
                out.append(scrub(item))
            return out
        return value

    with RawClient(port) as c:
        state = {"digest": parse(c.call("DEBUG", "DIGEST"))}
        for key in sorted(parse(c.call("KEYS", "*"))):
            state[key] = (parse(c.call("DEBUG", "DIGEST-VALUE", key)),
                          scrub(parse(c.call("XINFO", "STREAM", key, "FULL"))))
    return state


@pytest.mark.parametrize("preamble", ["yes", "no"])
def test_streams_with_groups_load_the_same_in_both(preamble):
    """Streams (entries, last id, groups, PELs with delivery times and counts, empty consumers). Redis's
    rewrite without preamble writes XADD/XSETID/XGROUP CREATE ... ENTRIESREAD/XCLAIM ... JUSTID FORCE/XGROUP
    CREATECONSUMER, and XREADGROUP is propagated as XCLAIM ... LASTID: each server's AOF directory is
    loaded by both servers, which must then hold the same streams."""
    extra = ("--aof-use-rdb-preamble", preamble)
    for writer in ("redis", "shoal"):
        proc = ServerProcess(writer, *AOF, *extra).start()
        try:
            with RawClient(proc.port) as c:
                for i in range(1, 6):
                    c.call("XADD", "st", f"{i}-1", "f", f"v{i}")
                c.call("XADD", "empty", "MAXLEN", "0", "1-1", "x", "y")
                c.call("XGROUP", "CREATE", "st", "g1", "0")
                c.call("XGROUP", "CREATE", "st", "g2", "$")
                c.call("XREADGROUP", "GROUP", "g1", "alice", "COUNT", "2", "STREAMS", "st", ">")
                c.call("XGROUP", "CREATECONSUMER", "st", "g1", "bob")
                c.call("XACK", "st", "g1", "1-1")
                c.call("XDEL", "st", "5-1")
                c.call("BGREWRITEAOF")
                wait_rewrite_done(c)
                c.call("XADD", "st", "9-1", "after", "rewrite")
                c.call("XREADGROUP", "GROUP", "g2", "carol", "STREAMS", "st", ">")
            proc.stop(keep_dir=True)
            states = {}
            for loader in ("redis", "shoal"):
                with ServerProcess(loader, *AOF, *extra, "--dir", proc.dir) as loaded:
                    ready(loaded.port)
                    states[loader] = _stream_state(loaded.port)
                    with RawClient(loaded.port) as c:
                        assert parse(c.call("XPENDING", "st", "g1"))[0] == 1
                        assert parse(c.call("XPENDING", "st", "g2"))[0] == 1
            assert states["shoal"] == states["redis"], f"{writer}'s AOF"
        finally:
            proc.stop()


def test_config_set_appendonly_at_runtime():
    proc = ServerProcess("shoal", "--enable-debug-command", "yes").start()
    try:
        with RawClient(proc.port) as c:
            _populate(c)
            assert c.call("CONFIG", "SET", "appendonly", "yes") == b"+OK\r\n"
            assert info(c)["aof_enabled"] == "1"
            c.call("SET", "after", "on")
            wait_rewrite_done(c)
            c.call("SET", "after2", "on")
            expected = dataset(proc.port)
            assert manifest(proc) == ("file appendonly.aof.1.base.rdb seq 1 type b\n"
                                      "file appendonly.aof.1.incr.aof seq 1 type i\n")
            assert c.call("CONFIG", "SET", "appendonly", "no") == b"+OK\r\n"
            assert info(c)["aof_enabled"] == "0"
            c.call("SET", "not", "logged")
        assert b"not" not in read(os.path.join(aof_dir(proc), "appendonly.aof.1.incr.aof"))
        proc.stop(keep_dir=True)
        proc.argv += ["--appendonly", "yes"]
        proc.start()
        assert dataset(proc.port) == expected
    finally:
        proc.stop()


def test_auto_rewrite_on_growth():
    proc = ServerProcess("shoal", *AOF, "--auto-aof-rewrite-min-size", "64kb",
                         "--auto-aof-rewrite-percentage", "100").start()
    try:
        with RawClient(proc.port) as c:
            value = "x" * 1000
            for i in range(100):
                c.call("SET", "k", f"{i}{value}")
            wait_for(lambda: int(info(c)["aof_rewrites"]) >= 1, what="an automatic rewrite")
            wait_rewrite_done(c)
            assert c.call("GET", "k") == b"$1002\r\n99" + value.encode() + b"\r\n"
        assert "Starting automatic rewriting of AOF on" in proc.log()
    finally:
        proc.stop()


def test_write_error_refuses_writes_with_misconf():
    # (appendfsync no: never a write postponed behind a background fsync, so the file size is known)
    proc = ServerProcess("shoal", *AOF, "--appendfsync", "no").start()
    try:
        with RawClient(proc.port) as c:
            c.call("SET", "a", "1")
            c.call("SET", "big", "x" * 100_000)  # the limit must stay above the log file's size
            size = os.path.getsize(_incr_path(proc))
            _, hard = resource.prlimit(proc.proc.pid, resource.RLIMIT_FSIZE)
            resource.prlimit(proc.proc.pid, resource.RLIMIT_FSIZE, (size, hard))
            c.call("SET", "b", "2")  # executed, but its AOF write fails: later writes are refused
            assert c.call("SET", "c", "3") == b"-MISCONF Errors writing to the AOF file: File too large\r\n"
            assert c.call("GET", "a") == b"$1\r\n1\r\n"  # reads still work
            assert info(c)["aof_last_write_status"] == "err"
            resource.prlimit(proc.proc.pid, resource.RLIMIT_FSIZE, (hard, hard))
            wait_for(lambda: info(c)["aof_last_write_status"] == "ok", what="the retried write")
            assert c.call("SET", "c", "3") == b"+OK\r\n"
        assert "AOF write error looks solved" in proc.log()
        proc.stop(keep_dir=True)
        proc.start()
        with RawClient(proc.port) as c:
            assert c.call("MGET", "a", "b", "c") == b"*3\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n"
    finally:
        proc.stop()


# ------------------------------------------------------------------ interop

_KEYS = st.sampled_from(["k1", "k2", "k3", "k4"])
_VALS = st.sampled_from(["1", "2", "-7", "abc", "x" * 50, "3.5", ""])
_COMMAND = st.one_of(
    st.tuples(st.just("SET"), _KEYS, _VALS),
    st.tuples(st.just("APPEND"), _KEYS, _VALS),
    st.tuples(st.just("INCRBY"), _KEYS, st.integers(-5, 5).map(str)),
    st.tuples(st.just("DEL"), _KEYS),
    st.tuples(st.just("RPUSH"), _KEYS, _VALS, _VALS),
    st.tuples(st.just("LPOP"), _KEYS),
    st.tuples(st.just("SADD"), _KEYS, _VALS, _VALS),
    st.tuples(st.just("SREM"), _KEYS, _VALS),
    st.tuples(st.just("ZADD"), _KEYS, st.integers(-3, 3).map(str), _VALS),
    st.tuples(st.just("ZINCRBY"), _KEYS, st.sampled_from(["1.5", "-2", "0.1"]), _VALS),
    st.tuples(st.just("HSET"), _KEYS, _VALS, _VALS),
    st.tuples(st.just("HINCRBY"), _KEYS, _VALS, st.integers(-3, 3).map(str)),
    st.tuples(st.just("EXPIRE"), _KEYS, st.integers(1000, 100000).map(str)),
    st.tuples(st.just("PEXPIREAT"), _KEYS, st.integers(4102444800000, 4102444900000).map(str)),
    st.tuples(st.just("PERSIST"), _KEYS),
    st.tuples(st.just("SELECT"), st.sampled_from(["0", "1", "9"])),
    st.tuples(st.just("MSET"), _KEYS, _VALS, _KEYS, _VALS),
    st.tuples(st.just("RENAME"), _KEYS, _KEYS),
    st.tuples(st.just("BGREWRITEAOF")),
    st.tuples(st.just("MULTI_BLOCK"), _KEYS, _VALS),
)


def _apply(c: RawClient, workload) -> None:
    for cmd in workload:
        if cmd[0] == "MULTI_BLOCK":
            c.call("MULTI")
            c.call("SET", cmd[1], cmd[2])
            c.call("RPUSH", cmd[1] + "l", cmd[2])
            c.call("EXEC")
        elif cmd[0] == "BGREWRITEAOF":
            c.call("BGREWRITEAOF")
            wait_rewrite_done(c)
        else:
            c.call(*cmd)


@settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck))
@given(workload=st.lists(_COMMAND, min_size=1, max_size=40),
       preamble=st.booleans())
def test_interop_both_ways(workload, preamble):
    extra = ("--aof-use-rdb-preamble", "yes" if preamble else "no")
    shoal = ServerProcess("shoal", *AOF, *extra)
    redis = ServerProcess("redis", *AOF, *extra)
    try:
        shoal.start()
        start(redis)
        for proc in (shoal, redis):
            with RawClient(proc.port) as c:
                _apply(c, workload)
        expected = dataset(redis.port)
        shoal_expected = dataset(shoal.port)
        # Relative EXPIREs ran a few ms apart on the two servers: their absolute times may differ a little.
        assert shoal_expected.keys() == expected.keys()
        for key, value in shoal_expected.items():
            other = expected[key]
            if key == "digest" or value[2] == other[2]:
                assert value == other, key
            else:
                assert value[:2] + value[3:] == other[:2] + other[3:], key
                assert min(value[2], other[2]) > 0 and abs(value[2] - other[2]) < 5000, (key, value, other)
        shoal.stop(keep_dir=True)
        redis.stop(keep_dir=True)
        # Swap the directories: each server loads the other's AOF.
        with ServerProcess("redis", *AOF, *extra, "--dir", shoal.dir) as other:
            ready(other.port)
            assert dataset(other.port) == shoal_expected
        with ServerProcess("shoal", *AOF, *extra, "--dir", redis.dir) as other:
            assert dataset(other.port) == expected
    finally:
        shoal.stop()
        redis.stop()
