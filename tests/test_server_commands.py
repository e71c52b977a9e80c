"""INFO, DEBUG, SHUTDOWN, TIME, LASTSAVE, SWAPDB, FLUSHALL/FLUSHDB against Redis 7.0.

INFO values that describe the process (memory, cpu, pids) cannot match; its
sections and field names must (tests/known_differences.py lists the extra
fields), and counters must after the same sequence of commands.
"""

from __future__ import annotations

import socket
import time

import pytest

from tests.known_differences import INFO_EXTRA_FIELDS, normalizer_for
from tests.resp_client import RawClient, parse
from tests.servers import ServerProcess


def sections(raw: bytes) -> dict[str, dict[str, str]]:
    value = parse(raw)
    out: dict[str, dict[str, str]] = {}
    current = None
    for line in value.decode().split("\r\n"):
        if line.startswith("# "):
            current = out.setdefault(line[2:], {})
        elif line:
            key, _, val = line.partition(":")
            current[key] = val
    return out


def field_names(raw: bytes) -> dict[str, list[str]]:
    return {name: [k for k in fields if k not in INFO_EXTRA_FIELDS.get(name, ())]
            for name, fields in sections(raw).items()}


STATIC_SECTIONS = ("Server", "Clients", "Memory", "Persistence", "Stats", "Replication", "CPU", "Modules", "Cluster")


@pytest.mark.parametrize("args", [(), ("default",), ("all",), ("everything",), ("server", "server", "clients"),
                                  ("default", "cpu"), ("CPU",), ("bogus",), ("commandstats",), ("keyspace",),
                                  ("errorstats", "stats")])
def test_info_sections_and_field_names(differ, args):
    redis_raw, shoal_raw = differ.both("INFO", *args)
    redis_f, shoal_f = field_names(redis_raw), field_names(shoal_raw)
    assert list(redis_f) == list(shoal_f)
    for name in STATIC_SECTIONS:
        if name in redis_f:
            assert redis_f[name] == shoal_f[name], name


def test_info_format(differ):
    raw = differ.shoal.call("INFO")
    body = parse(raw)
    assert body.startswith(b"# Server\r\nredis_version:7.0.15\r\n")
    assert b"\r\n\r\n# Clients\r\n" in body and body.endswith(b"\r\n")
    assert differ.shoal.call("INFO", "bogus") == differ.redis.call("INFO", "bogus") == b"$0\r\n\r\n"


def test_info_resp3_is_verbatim(differ3):
    redis_raw, shoal_raw = differ3.both("INFO", "cluster")
    assert redis_raw == shoal_raw == b"=34\r\ntxt:# Cluster\r\ncluster_enabled:0\r\n\r\n"
    assert differ3.shoal.call("INFO", "bogus") == differ3.redis.call("INFO", "bogus") == b"=4\r\ntxt:\r\n"


def test_info_values_are_real(shoal_proc, shoal):
    info = sections(shoal.call("INFO"))
    assert info["Server"]["tcp_port"] == str(shoal_proc.port)
    assert info["Server"]["process_id"] == str(shoal_proc.proc.pid)
    assert info["Server"]["redis_mode"] == "standalone"
    assert int(info["Memory"]["used_memory"]) > 1_000_000
    assert int(info["Memory"]["used_memory_rss"]) > 1_000_000
    assert info["Replication"]["role"] == "master" and len(info["Replication"]["master_replid"]) == 40
    assert int(info["Clients"]["connected_clients"]) >= 1


def test_instantaneous_ops_per_sec(shoal):
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        shoal.call("PING")
    ops = int(sections(shoal.call("INFO", "stats"))["Stats"]["instantaneous_ops_per_sec"])
    assert ops > 50


def test_info_counters_match_redis(differ):
    differ.check("CONFIG", "RESETSTAT")
    for argv in (("SET", "a", "1"), ("SET", "b", "2", "EX", "100"), ("GET", "a"), ("GET", "nosuch"),
                 ("MGET", "a", "b", "c"), ("INCR", "a"), ("NOSUCH",), ("GET",), ("CONFIG", "GET", "hz"),
                 ("SELECT", "2"), ("SET", "x", "y"), ("SELECT", "0"), ("INCR", "b"), ("SET", "c", "notint"),
                 ("INCR", "c"), ("FLUSHDB", "bogus")):
        differ.both(*argv)
    r, s = sections(differ.redis.call("INFO", "all")), sections(differ.shoal.call("INFO", "all"))
    for key in ("keyspace_hits", "keyspace_misses", "total_error_replies", "expired_keys"):
        assert r["Stats"][key] == s["Stats"][key], key
    assert r["Errorstats"] == s["Errorstats"]
    # avg_ttl is refreshed by each server's own active-expire cron, so whether
    # it is still 0 depends on when that cron last ran: compare keys/expires.
    no_avg_ttl = lambda d: {k: v.rsplit(",avg_ttl=", 1)[0] for k, v in d.items()}
    assert no_avg_ttl(r["Keyspace"]) == no_avg_ttl(s["Keyspace"])
    strip = lambda d: {k: ",".join(p for p in v.split(",") if not p.startswith("usec")) for k, v in d.items()}
    assert strip(r["Commandstats"]) == strip(s["Commandstats"])


def test_rdb_changes_since_last_save(differ):
    def changes():
        return [int(sections(c.call("INFO", "persistence"))["Persistence"]["rdb_changes_since_last_save"])
                for c in (differ.redis, differ.shoal)]
    before = changes()
    for argv in (("SET", "a", "1"), ("SET", "b", "2"), ("DEL", "a"), ("FLUSHALL",), ("FLUSHDB",), ("SWAPDB", "0", "1"),
                 ("SET", "c", "1"), ("FLUSHDB",)):
        differ.check(*argv)
    after = changes()
    assert after[0] - before[0] == after[1] - before[1]
    assert isinstance(parse(differ.shoal.call("LASTSAVE")), int)


# ------------------------------------------------------------------- DEBUG


DATASETS = [
    [],
    [("SET", "foo", "bar")],
    [("SET", "foo", "bar"), ("SET", "n", "12345"), ("SET", "e", "x", "EX", "100"), ("SELECT", "3"),
     ("SET", "k", "v"), ("SELECT", "0")],
    [("SET", "a", "1"), ("APPEND", "a", "23"), ("SET", "big", "x" * 5000), ("SET", "neg", "-7"),
     ("SET", "{tag}x", ""), ("SETRANGE", "r", "3", "abc"), ("SELECT", "15"), ("SET", "last", "db"),
     ("SELECT", "0"), ("SET", "p", "q", "PX", "100000")],
]


@pytest.mark.parametrize("dataset", DATASETS)
def test_debug_digest_equals_redis(differ, dataset):
    differ.check_all(dataset)
    differ.check("DEBUG", "DIGEST")
    differ.check("DEBUG", "DIGEST-VALUE", "foo", "n", "e", "a", "big", "nokey", "r", "p")
    differ.check("DEBUG", "DIGEST-VALUE")


def test_debug_digest_detects_differences(differ):
    differ.check("SET", "k", "v1")
    first = differ.check("DEBUG", "DIGEST")
    differ.check("SET", "k", "v2")
    assert differ.check("DEBUG", "DIGEST") != first
    differ.check("EXPIRE", "k", "100")
    differ.check("DEBUG", "DIGEST")
    differ.check("PERSIST", "k")
    differ.check("SWAPDB", "0", "1")
    differ.check("DEBUG", "DIGEST")


def test_debug_object(differ):
    differ.check("SET", "foo", "bar")
    differ.check("SET", "n", "12345")
    differ.check("SET", "small", "7")
    differ.check("SET", "big", "x" * 300)
    differ.check("SET", "large", "123456789012")
    for key in ("foo", "n", "small", "big", "nokey"):
        expected, actual = differ.both("DEBUG", "OBJECT", key)
        normalize = normalizer_for(("debug", "object"))
        assert normalize(expected) == normalize(actual), (expected, actual)
    _, actual = differ.both("DEBUG", "OBJECT", "big")
    assert b"serializedlength:302 " in actual


@pytest.mark.parametrize("argv", [
    ("DEBUG",), ("DEBUG", "JMAP"), ("DEBUG", "object"), ("DEBUG", "OBJECT", "a", "b"), ("DEBUG", "SLEEP", "0"),
    ("DEBUG", "SLEEP", "abc"), ("DEBUG", "SET-ACTIVE-EXPIRE", "1"), ("DEBUG", "set-active-expire", "2"),
    ("DEBUG", "RELOAD"), ("DEBUG", "RELOAD", "bogus"), ("DEBUG", "RELOAD", "NOSAVE", "merge"), ("DEBUG", "DIGEST", "x"),
    ("DEBUG", "ERROR", "MYERR custom text"), ("DEBUG", "LOG", "hello"),
])
def test_debug_replies(differ, argv):
    differ.check(*argv)


def test_debug_sleep_blocks_server(shoal_proc, shoal):
    with RawClient(shoal_proc.port) as other:
        start = time.monotonic()
        shoal.sock.sendall(b"*3\r\n$5\r\nDEBUG\r\n$5\r\nSLEEP\r\n$3\r\n0.4\r\n")
        time.sleep(0.05)
        assert other.call("PING") == b"+PONG\r\n"
        assert time.monotonic() - start >= 0.35
        assert shoal.read_reply() == b"+OK\r\n" if hasattr(shoal, "read_reply") else True


def test_debug_set_active_expire(shoal):
    assert shoal.call("DEBUG", "SET-ACTIVE-EXPIRE", "0") == b"+OK\r\n"
    try:
        shoal.call("SET", "k", "v", "PX", "1")
        time.sleep(0.3)
        assert sections(shoal.call("INFO", "keyspace"))["Keyspace"]["db0"].startswith("keys=1,")
    finally:
        shoal.call("DEBUG", "SET-ACTIVE-EXPIRE", "1")
    time.sleep(0.4)
    assert "db0" not in sections(shoal.call("INFO", "keyspace"))["Keyspace"]


@pytest.mark.parametrize("setting", ["no", "local"])
def test_debug_refused_unless_enabled(setting):
    with ServerProcess("redis", "--enable-debug-command", setting) as r, \
            ServerProcess("shoal", "--enable-debug-command", setting) as s:
        with RawClient(r.port) as rc, RawClient(s.port) as sc:
            # (DEBUG HELP differs once allowed: Shoal lists only what it implements)
            for argv in (("DEBUG", "DIGEST"), ("DEBUG", "JMAP")) + ((("DEBUG", "HELP"),) if setting == "no" else ()):
                assert rc.call(*argv) == sc.call(*argv)
            stats = [sections(c.call("INFO", "commandstats"))["Commandstats"].get("cmdstat_debug", "")
                     for c in (rc, sc)]
            strip = lambda v: ",".join(p for p in v.split(",") if not p.startswith("usec"))
            assert strip(stats[0]) == strip(stats[1])


# -------------------------------------------------------- other commands


@pytest.mark.parametrize("argv", [
    ("SWAPDB", "0", "x"), ("SWAPDB", "x", "0"), ("SWAPDB", "0", "99"), ("SWAPDB", "-1", "0"), ("SWAPDB", "0"),
    ("SWAPDB", "0", "1"), ("SWAPDB", "3", "3"), ("SHUTDOWN", "ABORT"), ("SHUTDOWN", "FOO"),
    ("SHUTDOWN", "NOSAVE", "SAVE"), ("SHUTDOWN", "ABORT", "NOW"), ("FLUSHALL", "FOO"), ("FLUSHALL", "ASYNC", "SYNC"),
    ("FLUSHDB", "x"), ("FLUSHALL", "sync"), ("FLUSHDB", "ASYNC"), ("TIME", "x"), ("LASTSAVE", "x"), ("DBSIZE",),
])
def test_server_command_replies(differ, argv):
    differ.check(*argv)


def test_swapdb_moves_data(differ):
    differ.check("SET", "a", "1")
    differ.check("SELECT", "1")
    differ.check("SET", "b", "2")
    differ.check("SWAPDB", "0", "1")
    differ.check("GET", "a")
    differ.check("GET", "b")
    differ.check("DBSIZE")
    differ.check("SELECT", "0")
    differ.check("GET", "b")
    differ.check("DEBUG", "DIGEST")


def test_time(shoal):
    seconds, micros = parse(shoal.call("TIME"))
    assert abs(int(seconds) - time.time()) < 5 and 0 <= int(micros) < 1_000_000


def test_swapdb_in_cluster_mode():
    with ServerProcess("shoal", "--cluster-enabled", "yes") as s, RawClient(s.port) as c:
        assert c.call("SWAPDB", "0", "1") == b"-ERR SWAPDB is not allowed in cluster mode\r\n"
        assert parse(c.call("INFO", "server"))


@pytest.mark.parametrize("args", [(), ("NOSAVE",), ("SAVE",), ("NOW", "FORCE")])
def test_shutdown(args):
    proc = ServerProcess("shoal")
    with proc:
        with RawClient(proc.port) as c:
            c.sock.sendall(b"*%d\r\n" % (1 + len(args)) + b"$8\r\nSHUTDOWN\r\n" +
                           b"".join(b"$%d\r\n%s\r\n" % (len(a), a.encode()) for a in args))
            assert c.sock.recv(100) == b""  # no reply: the connection closes
        assert proc.proc.wait(10) == 0
        log = proc.log()
        assert "User requested shutdown..." in log
        assert "Shoal is now ready to exit, bye bye..." in log
