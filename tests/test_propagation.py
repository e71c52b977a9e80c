"""What Shoal propagates to replicas and the AOF, against Redis 7.0.15's own replication stream.

The oracle: a real redis-server, read as a replica (plain SYNC), with a
PUBLISH marker after each command so everything between two markers is what
that command propagated (``tests/propagation_helpers.py``). Shoal runs in
process with a capture sink and a frozen clock. Unix-ms timestamps and
auto-generated stream IDs are normalized on both sides (the two clocks
differ); the exact values are checked separately against the frozen clock.

The end-to-end test replays a captured stream into a fresh redis-server and
compares DEBUG DIGEST, with the clock moved between capture and replay so a
relative TTL propagated as sent would resurrect keys.

Redis 7.0.15's forms (read off its replication stream):

  EXPIRE/PEXPIRE/EXPIREAT k t [opt]  -> PEXPIREAT k <abs ms> [opt]   (PEXPIREAT: as sent)
  ... any of them already past       -> DEL k  (UNLINK with lazyfree-lazy-expire)
  SET .. EX/PX/EXAT, SETEX, PSETEX   -> SET k v PXAT <abs ms>         (SET .. PXAT: as sent, minus GET)
  SET .. GET (no EX/PX/EXAT)         -> SET without the GET words
  GETEX EX/PX/EXAT/PXAT | PERSIST    -> PEXPIREAT k <abs ms> | DEL/UNLINK (past) | PERSIST k
  GETDEL k                           -> DEL k (UNLINK with lazyfree-lazy-user-del)
  GETSET k v                         -> SET k v
  INCRBYFLOAT k n / HINCRBYFLOAT     -> SET k <result> KEEPTTL / HSET k f <result>
  RESTORE k ttl payload [opts]       -> RESTORE k <abs ms> payload [opts] ABSTTL; past + REPLACE -> DEL k
  SPOP k                             -> SREM k m
  SPOP k n (n < size)                -> one SREM k m per member (MULTI/EXEC); n >= size -> DEL k
  BLPOP/BRPOP                        -> LPOP k / RPOP k    (served at once or later)
  LMPOP/BLMPOP                       -> LPOP/RPOP k <popped>
  BLMOVE / BRPOPLPUSH                -> LMOVE s d <as sent> (served later: lower-case left/right) / RPOPLPUSH
  BZPOPMIN/MAX, ZMPOP/BZMPOP         -> ZPOPMIN/ZPOPMAX k [<popped> for the MPOPs]
  XADD k [trim ~ N] *|ms-* ...       -> explicit ID; "~ N" -> "= <length left>" (MINID: "= <first ID left>")
  XTRIM k MAXLEN|MINID ~ N           -> "= <length left>" / "= <first ID left>"
  XREADGROUP >                       -> XCLAIM k g c 0 id TIME t RETRYCOUNT n FORCE JUSTID LASTID id, per entry;
                                        NOACK: XGROUP CREATECONSUMER (new consumer) + XGROUP SETID .. ENTRIESREAD
  XCLAIM / XAUTOCLAIM                -> those XCLAIMs (deleted entries too), or XGROUP SETID for LASTID alone
  GEOADD k [opts] lon lat m          -> zadd k [opts] <geohash> m
  PFCOUNT k (cache refreshed)        -> PFCOUNT k          (a readonly command that writes)
  FLUSHALL/FLUSHDB                   -> as sent, even when nothing was there
"""

from __future__ import annotations

import re
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.propagation_helpers import RedisStream, ShoalCapture, decode_commands
from tests.resp_client import RawClient, encode_command, parse
from tests.servers import ServerProcess

# ----------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def redis_server():
    with ServerProcess("redis", "--enable-debug-command", "yes") as server:
        yield server


@pytest.fixture(scope="module")
def oracle(redis_server):
    stream = RedisStream(redis_server.port)
    # No background deletions in the stream: keys expire only where a command finds them.
    assert stream.client.call("DEBUG", "SET-ACTIVE-EXPIRE", "0") == b"+OK\r\n"
    try:
        yield stream
    finally:
        stream.close()


_TS = re.compile(rb"^1[6-9]\d{11}$")
_TS_ID = re.compile(rb"^1[6-9]\d{11}-\d+$")


def _norm(cmds):
    """Drop SELECTs (markers move the oracle's db) and hide clock-dependent numbers."""
    out = []
    for cmd in cmds:
        if cmd[0].upper() == b"SELECT":
            continue
        new = []
        for arg in cmd:
            if _TS_ID.match(arg):
                new.append(b"<id>")
            elif _TS.match(arg):
                new.append(b"<ms>")
            else:
                new.append(arg)
        out.append(new)
    return out


_TS_ANY = re.compile(rb"1[6-9]\d{11}(-\d+)?")


def _norm_reply(raw: bytes) -> bytes:
    return _TS_ANY.sub(b"<t>", raw)


def _b(args):
    return [a if isinstance(a, bytes) else str(a).encode() for a in args]


def _reset(oracle, shoal_config=()):
    oracle.client.call("FLUSHALL")
    oracle.client.call("SELECT", "0")
    for name in ("lazyfree-lazy-expire", "lazyfree-lazy-user-del", "lazyfree-lazy-server-del"):
        oracle.client.call("CONFIG", "SET", name, "no")
    for name, value in shoal_config:
        oracle.client.call("CONFIG", "SET", name, value)
    oracle.sync_point()
    cap = ShoalCapture()
    for name, value in shoal_config:
        cap.run("CONFIG", "SET", name, value)
    return cap


def _compare(oracle, commands, config=(), replies=True):
    """Run ``commands`` on both; every command must propagate the same (normalized) argv lists.

    ``["<sleep>", ms]`` lets time pass: DEBUG SLEEP on Redis (its active expiry is
    off, so keys expire only where a command finds them), the frozen clock on Shoal.
    """
    cap = _reset(oracle, config)
    for args in commands:
        if args[0] == "<sleep>":
            oracle.client.call("DEBUG", "SLEEP", str(args[1] / 1000))
            cap.clock.advance(args[1])
            continue
        r_reply, r_props = oracle.run(*args)
        s_reply, s_props = cap.run(*args)
        assert _norm(s_props) == _norm(r_props), (args, s_props, r_props)
        if replies:
            _same_reply(args, s_reply, r_reply)
    return cap


_UNORDERED = {"SPOP", "SRANDMEMBER", "SMEMBERS"}


def _same_reply(args, s_reply, r_reply):
    if str(args[0]).upper() in _UNORDERED:
        # Redis's hash-table order is seeded per process: compare the members, not their order.
        s_value, r_value = parse(s_reply), parse(r_reply)
        if isinstance(r_value, list):
            s_value, r_value = sorted(s_value), sorted(r_value)
        assert s_value == r_value, (args, s_reply, r_reply)
    else:
        assert _norm_reply(s_reply) == _norm_reply(r_reply), (args, s_reply, r_reply)


# ------------------------------------------------------ exact forms vs Redis

EXPIRY_SCENARIOS = {
    "expire-family": [
        ["SET", "k", "v"],
        ["EXPIRE", "k", "100"],
        ["EXPIRE", "k", "90", "GT"],  # refused on both (100 s with the same TTL depended on Redis's ms tick)
        ["EXPIRE", "k", "200", "gt"],
        ["pexpire", "k", "5000", "xx"],
        ["EXPIREAT", "k", "4102444800"],
        ["PEXPIREAT", "k", "4102444800000", "LT"],
        ["pexpireat", "k", "4102444800123"],
        ["PERSIST", "k"],
        ["PERSIST", "k"],
        ["EXPIRE", "nokey", "10"],
        ["EXPIRE", "k", "10", "NX"],
        ["EXPIRE", "k", "-1"],
        ["SET", "k", "v"],
        ["PEXPIREAT", "k", "1"],
        ["SET", "k", "v"],
        ["EXPIREAT", "k", "1", "NX"],
        ["SET", "k", "v"],
        ["PEXPIRE", "k", "0"],
    ],
    "set-options": [
        ["SET", "k", "v", "EX", "100"],
        ["SET", "k", "v", "px", "100000", "GET"],
        ["SET", "k", "v", "EXAT", "4102444800", "NX"],
        ["SET", "k", "v", "EXAT", "4102444800", "XX"],
        ["SET", "k", "v", "PXAT", "4102444800000", "GET"],
        ["SET", "k", "w", "KEEPTTL", "GET"],
        ["SET", "k", "x", "get", "GeT"],
        ["SET", "k2", "v", "GET", "NX"],
        ["SET", "k2", "v", "GET", "NX"],
        ["SET", "k3", "v", "NX", "EX", "10"],
        ["SET", "k3", "v", "NX", "EX", "10"],
        ["SETEX", "k", "100", "v"],
        ["PSETEX", "k", "100000", "v"],
        ["SET", "old", "v", "PXAT", "1"],
        ["SET", "old", "v", "EXAT", "1", "GET"],
        ["SET", "old", "v", "XX", "EX", "100"],
    ],
    "getex-getdel": [
        ["SET", "k", "v"],
        ["GETEX", "k"],
        ["GETEX", "k", "EX", "100"],
        ["GETEX", "k", "px", "100000"],
        ["GETEX", "k", "EXAT", "4102444800"],
        ["GETEX", "k", "PXAT", "4102444800000"],
        ["GETEX", "k", "PERSIST"],
        ["GETEX", "k", "PERSIST"],
        ["GETEX", "k", "EXAT", "1"],
        ["GETEX", "nokey", "EX", "10"],
        ["SET", "k", "v"],
        ["GETEX", "k", "PXAT", "1"],
        ["SET", "k", "v"],
        ["GETDEL", "k"],
        ["GETDEL", "k"],
    ],
    "incrbyfloat": [
        ["SET", "k", "1.5"],
        ["EXPIRE", "k", "100"],
        ["INCRBYFLOAT", "k", "1.1"],
        ["INCRBYFLOAT", "k", "1e3"],
        ["INCRBYFLOAT", "new", "-0.5"],
        ["INCRBYFLOAT", "k", "abc"],
        ["HSET", "h", "f", "1"],
        ["HINCRBYFLOAT", "h", "f", "0.5"],
        ["HINCRBYFLOAT", "h", "g", "2e2"],
        ["HINCRBYFLOAT", "h2", "g", "5.0e-1"],
    ],
}


@pytest.mark.parametrize("name", sorted(EXPIRY_SCENARIOS))
def test_expiry_and_float_rewrites_match_redis(oracle, name):
    _compare(oracle, EXPIRY_SCENARIOS[name])


@pytest.mark.parametrize("config", [
    (("lazyfree-lazy-expire", "yes"),),
    (("lazyfree-lazy-user-del", "yes"),),
    (("lazyfree-lazy-server-del", "yes"),),
])
def test_deletions_follow_the_lazyfree_settings_as_redis(oracle, config):
    _compare(oracle, [
        ["SET", "k", "v"], ["EXPIRE", "k", "-5"],
        ["SET", "k", "v"], ["GETEX", "k", "EXAT", "1"],
        ["SET", "k", "v"], ["GETDEL", "k"],
        ["SADD", "s", "a", "b"], ["SPOP", "s", "2"],
    ], config=config)


RESTORE_VALUE = [["SET", "src", "value"], ["RPUSH", "srcl", "a", "b"]]


def test_restore_rewrites_match_redis(oracle):
    cap = _compare(oracle, RESTORE_VALUE)
    dump = parse(oracle.client.call("DUMP", "src"))
    assert parse(cap.run("DUMP", "src")[0]) == dump
    _compare_more(oracle, cap, [
        ["RESTORE", "r1", "0", dump],
        ["RESTORE", "r2", "100000", dump],
        ["RESTORE", "r3", "4102444800000", dump, "ABSTTL"],
        ["RESTORE", "r4", "1", dump, "ABSTTL"],
        ["RESTORE", "r2", "5000", dump, "REPLACE", "IDLETIME", "10"],
        ["RESTORE", "r2", "5000", dump, "REPLACE", "FREQ", "10", "ABSTTL"],
        ["RESTORE", "r6", "0", dump, "IDLETIME", "10"],
        ["RESTORE", "r6", "0", dump],
    ])


def _compare_more(oracle, cap, commands, replies=True):
    for args in commands:
        r_reply, r_props = oracle.run(*args)
        s_reply, s_props = cap.run(*args)
        assert _norm(s_props) == _norm(r_props), (args, s_props, r_props)
        if replies:
            _same_reply(args, s_reply, r_reply)


POP_SCENARIOS = {
    "spop-deterministic": [
        ["SADD", "s", "a"],
        ["SPOP", "s"],
        ["SADD", "s", "a", "b", "c"],
        ["SPOP", "s", "5"],
        ["SADD", "s", "1", "2", "3"],
        ["SPOP", "s", "3"],
        ["SADD", "s", "x"],
        ["SPOP", "s", "1"],
        ["SPOP", "s", "0"],
        ["SPOP", "nos"],
        ["SPOP", "nos", "3"],
        ["SRANDMEMBER", "s"],
    ],
    "list-pops-immediate": [
        ["RPUSH", "l", "a", "b", "c", "d", "e", "f"],
        ["BLPOP", "l", "0"],
        ["BRPOP", "nol", "l", "0"],
        ["LMPOP", "1", "l", "LEFT", "COUNT", "2"],
        ["LMPOP", "2", "nol", "l", "RIGHT"],
        ["BLMPOP", "0", "1", "l", "left", "COUNT", "7"],
        ["LMPOP", "1", "l", "LEFT"],
        ["RPUSH", "l", "a", "b", "c", "d"],
        ["BRPOPLPUSH", "l", "l2", "0"],
        ["BLMOVE", "l", "l2", "LEFT", "RIGHT", "0"],
        ["blmove", "l", "l2", "left", "Left", "0"],
        ["RPOPLPUSH", "l", "l2"],
        ["LPOP", "l2", "2"],
        ["RPOP", "l2"],
    ],
    "zset-pops-immediate": [
        ["ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d", "5", "e"],
        ["BZPOPMIN", "z", "0"],
        ["BZPOPMAX", "noz", "z", "0"],
        ["ZMPOP", "1", "z", "MIN", "COUNT", "5"],
        ["ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d"],
        ["BZMPOP", "0", "1", "z", "MAX", "COUNT", "2"],
        ["ZMPOP", "1", "z", "min"],
        ["ZPOPMIN", "z", "10"],
    ],
}


@pytest.mark.parametrize("name", sorted(POP_SCENARIOS))
def test_pop_rewrites_match_redis(oracle, name):
    _compare(oracle, POP_SCENARIOS[name])


def test_pops_inside_multi_and_scripts_match_redis(oracle):
    _compare(oracle, [
        ["RPUSH", "l", "a", "b", "c"],
        ["ZADD", "z", "1", "a", "2", "b"],
        ["SADD", "s", "m"],
        ["SET", "f", "1"],
        ["MULTI"],
        ["BLPOP", "l", "0"],
        ["BZMPOP", "0", "1", "z", "MIN", "COUNT", "9"],
        ["SPOP", "s"],
        ["EXPIRE", "f", "100"],
        ["INCRBYFLOAT", "f", "2"],
        ["EXEC"],
        ["EVAL", "redis.call('set','x','1'); redis.call('expire','x',100);"
                 "redis.call('incrbyfloat','x','1.5'); redis.call('sadd','s2','a');"
                 "redis.call('select', 3); redis.call('set','y','2'); return redis.call('spop','s2')", "0"],
    ])


def _redis_blocked(oracle, n):
    deadline = time.time() + 5
    while time.time() < deadline:
        info = oracle.client.call("INFO", "clients").decode()
        if f"blocked_clients:{n}" in info:
            return
        time.sleep(0.005)
    raise AssertionError("the client did not block")


BLOCKED_CASES = [
    (["BLPOP", "l", "0"], [["RPUSH", "l", "a", "b"]]),
    (["BRPOP", "x", "l", "0"], [["RPUSH", "l", "a", "b"]]),
    (["BLMPOP", "0", "2", "x", "l", "RIGHT", "COUNT", "5"], [["RPUSH", "l", "a", "b"]]),
    (["BLMPOP", "0", "1", "l", "LEFT"], [["RPUSH", "l", "a", "b"]]),
    (["BLMOVE", "l", "d", "RIGHT", "LEFT", "0"], [["RPUSH", "l", "a", "b"]]),
    (["BLMOVE", "l", "l", "left", "right", "0"], [["RPUSH", "l", "a", "b"]]),
    (["BRPOPLPUSH", "l", "d", "0"], [["RPUSH", "l", "a", "b"]]),
    (["BZPOPMIN", "z", "0"], [["ZADD", "z", "1", "a", "2", "b"]]),
    (["BZPOPMAX", "y", "z", "0"], [["ZADD", "z", "1", "a", "2", "b"]]),
    (["BZMPOP", "0", "1", "z", "MIN", "COUNT", "5"], [["ZADD", "z", "1", "a", "2", "b"]]),
    (["BZMPOP", "0", "1", "z", "MAX"], [["ZADD", "z", "1", "a", "2", "b"]]),
    (["BLPOP", "l", "0"], [["MULTI"], ["RPUSH", "l", "a"], ["RPUSH", "l", "b"], ["EXEC"]]),
    (["XREADGROUP", "GROUP", "g", "c1", "BLOCK", "0", "STREAMS", "s", ">"], [["XADD", "s", "*", "f", "v"]]),
    (["XREADGROUP", "GROUP", "g", "c2", "NOACK", "BLOCK", "0", "STREAMS", "s", ">"],
     [["XADD", "s", "*", "f", "v"]]),
]


@pytest.mark.parametrize("blocking,pushes", BLOCKED_CASES, ids=[" ".join(c[0][:2]) for c in BLOCKED_CASES])
def test_served_blocked_clients_propagate_as_redis(oracle, redis_server, blocking, pushes):
    cap = _reset(oracle)
    setup = [["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]]
    for args in setup:
        oracle.run(*args)
        cap.run(*args)
    waiter = RawClient(redis_server.port)
    try:
        waiter.send_raw(encode_command(*blocking))
        _redis_blocked(oracle, 1)
        for args in pushes:
            oracle.client.call(*args)
        r_reply = waiter.read_reply()
    finally:
        waiter.close()
    r_props = oracle.sync_point()

    other = cap.new_client()
    s_reply, s_props = cap.run(*blocking, client=other)
    assert s_reply == b"" and s_props == []
    for args in pushes:
        _, props = cap.run(*args)
        s_props += props
    s_reply = bytes(other.out)
    assert _norm(s_props) == _norm(r_props)
    assert _norm_reply(s_reply) == _norm_reply(r_reply)


STREAM_SCENARIOS = {
    "xadd-xtrim": [
        ["XADD", "s", "*", "a", "1"],
        ["XADD", "s", "MAXLEN", "~", "2", "*", "a", "1"],
        ["XADD", "s", "MAXLEN", "=", "2", "*", "a", "1"],
        ["XADD", "s", "MAXLEN", "2", "*", "a", "1"],
        ["XADD", "s", "MINID", "~", "0", "*", "a", "1"],
        ["XADD", "s", "NOMKSTREAM", "MAXLEN", "~", "1", "LIMIT", "10", "*", "a", "1"],
        ["XADD", "s9", "NOMKSTREAM", "*", "a", "1"],
        ["XADD", "s", "MINID", "5-0", "*", "a", "1"],
        ["XADD", "e", "5-*", "a", "1"],
        ["XADD", "e", "5-*", "a", "1"],
        ["XADD", "e", "6-3", "a", "1"],
        ["XADD", "e", "maxlen", "~", "1", "7", "a", "1"],
        ["XTRIM", "s", "MAXLEN", "~", "0"],
        ["XTRIM", "s", "MAXLEN", "1"],
        ["XTRIM", "e", "MAXLEN", "1"],
        ["XTRIM", "e", "MINID", "~", "9999999999999"],
    ],
    "xadd-approx-big": (
        [["XADD", "b", f"{i}-1", "f", "v" * 10] for i in range(1, 260)]
        + [["XADD", "b", "MAXLEN", "~", "120", "*", "f", "v"],
           ["XDEL", "b", "101-1", "102-1"],
           ["XTRIM", "b", "MINID", "~", "105"],
           ["XTRIM", "b", "MAXLEN", "~", "10", "LIMIT", "100"],
           ["XTRIM", "b", "MINID", "~", "999999999999999"]]
    ),
    "consumer-groups": [
        ["XADD", "s", "1-1", "a", "1"],
        ["XADD", "s", "2-1", "a", "1"],
        ["XADD", "s", "3-1", "a", "1"],
        ["XGROUP", "CREATE", "s", "g", "0"],
        ["XREADGROUP", "GROUP", "g", "c1", "COUNT", "2", "STREAMS", "s", ">"],
        ["XREADGROUP", "GROUP", "g", "c2", "NOACK", "COUNT", "1", "STREAMS", "s", ">"],
        ["XREADGROUP", "GROUP", "g", "c1", "STREAMS", "s", "0"],
        ["XREADGROUP", "GROUP", "g", "c5", "NOACK", "STREAMS", "s", "0"],
        ["XREADGROUP", "GROUP", "g", "c1", "STREAMS", "s", ">"],
        ["XDEL", "s", "1-1"],
        ["XCLAIM", "s", "g", "c2", "0", "1-1", "2-1"],
        ["XCLAIM", "s", "g", "c2", "0", "3", "LASTID", "5-0"],
        ["XCLAIM", "s", "g", "c3", "0", "2-1", "JUSTID", "IDLE", "10", "RETRYCOUNT", "7"],
        ["XCLAIM", "s", "g", "c3", "0", "2", "2-1", "LASTID", "9-0"],
        ["XADD", "s", "10-1", "a", "1"],
        ["XADD", "s", "11-1", "a", "1"],
        ["XREADGROUP", "GROUP", "g", "c1", "STREAMS", "s", ">"],
        ["XDEL", "s", "2-1"],
        ["XAUTOCLAIM", "s", "g", "c4", "0", "0", "COUNT", "2"],
        ["XAUTOCLAIM", "s", "g", "c4", "0", "0", "JUSTID"],
        ["XADD", "s", "12-1", "a", "1"],
        ["XREADGROUP", "GROUP", "g", "c1", "NOACK", "STREAMS", "s", ">"],
        ["XCLAIM", "s", "g", "c9", "0", "8-8", "FORCE"],
        ["XCLAIM", "s", "g", "c9", "0", "12-1", "FORCE"],
        ["XGROUP", "CREATECONSUMER", "s", "g", "c10"],
        ["XGROUP", "DELCONSUMER", "s", "g", "c10"],
        ["XGROUP", "SETID", "s", "g", "$"],
        ["XGROUP", "SETID", "s", "g", "0", "ENTRIESREAD", "0"],
        ["XACK", "s", "g", "3-1", "10-1"],
        ["XSETID", "s", "99-0"],
        ["XGROUP", "CREATE", "s", "g2", "$", "MKSTREAM"],
        ["XGROUP", "DESTROY", "s", "g2"],
    ],
}


@pytest.mark.parametrize("name", sorted(STREAM_SCENARIOS))
def test_stream_rewrites_match_redis(oracle, name):
    _compare(oracle, STREAM_SCENARIOS[name])


OTHER_SCENARIOS = {
    "geo": [
        ["GEOADD", "g", "13.361389", "38.115556", "a", "15.087269", "37.502669", "b"],
        ["GEOADD", "g", "NX", "CH", "13.361389", "38.115556", "a", "15", "37", "c"],
        ["GEOADD", "g", "XX", "1", "1", "a"],
        ["GEOADD", "g", "XX", "1", "1", "a"],
        ["GEORADIUS", "g", "15", "37", "200", "km", "STORE", "gs"],
        ["GEORADIUS", "g", "15", "37", "1", "m", "STORE", "gs"],
        ["GEOSEARCHSTORE", "gs2", "g", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km"],
        ["GEORADIUSBYMEMBER", "g", "b", "200", "km", "STOREDIST", "gs3"],
    ],
    "hll": [
        ["PFADD", "h", "a", "b", "c"],
        ["PFCOUNT", "h"],
        ["PFCOUNT", "h"],
        ["PFADD", "h", "d"],
        ["PFCOUNT", "h", "nokey"],
        ["PFCOUNT", "h"],
        ["PFMERGE", "h2", "h"],
    ],
    "keys-and-dbs": [
        ["SET", "a", "1"],
        ["PEXPIRE", "a", "100000"],
        ["COPY", "a", "b"],
        ["COPY", "a", "b", "DB", "2", "REPLACE"],
        ["RENAME", "b", "c"],
        ["MOVE", "a", "1"],
        ["SWAPDB", "0", "1"],
        ["RPUSH", "l", "3", "1", "2"],
        ["SORT", "l", "STORE", "d"],
        ["SORT", "nol", "STORE", "d"],
        ["SADD", "set", "c", "a", "b", "zz", "y"],
        ["SORT", "set", "BY", "nosort", "ALPHA", "STORE", "d2"],
        ["LRANGE", "d2", "0", "-1"],
        ["FLUSHDB", "ASYNC"],
        ["SET", "z", "1"],
        ["FLUSHALL"],
        ["FLUSHALL", "SYNC"],
        ["FLUSHDB"],
        ["SELECT", "3"],
        ["flushdb", "async"],
        ["SELECT", "0"],
        ["DEL", "nokey"],
        ["SINTERSTORE", "d", "nokey"],
        ["SET", "d", "x"],
        ["SUNIONSTORE", "d", "nokey"],
        ["APPEND", "ap", "x"],
        ["SETRANGE", "ap", "3", "y"],
        ["GETSET", "ap", "new"],
        ["getset", "ap2", "new"],
        ["SETNX", "ap", "x"],
        ["MSETNX", "m1", "1", "m2", "2"],
        ["HSET", "h", "f", "v"],
        ["HINCRBY", "h", "c", "5"],
        ["LPUSH", "l", "a", "b", "c"],
        ["LMOVE", "l", "l2", "LEFT", "LEFT"],
        ["SADD", "s", "a", "b", "c"],
        ["SMOVE", "s", "s2", "b"],
        ["ZADD", "z", "GT", "CH", "INCR", "5", "a"],
        ["ZUNIONSTORE", "zu", "1", "z"],
        ["ZRANGESTORE", "zr", "z", "0", "-1"],
        ["BITFIELD", "bf", "INCRBY", "u8", "0", "300", "GET", "u8", "0"],
        ["BITOP", "OR", "c", "ap", "bf"],
        ["PFADD", "p", "a"],
        ["PFDEBUG", "TODENSE", "p"],
    ],
}


OTHER_SCENARIOS["partial-failures"] = [
    ["SET", "a", "x"],
    ["MULTI"],
    ["SET", "b", "1"],
    ["INCR", "a"],
    ["EXPIRE", "b", "100"],
    ["SPOP", "a"],
    ["EXEC"],
    ["EVAL", "redis.call('set','c','1'); redis.call('pexpire','c','5000'); redis.call('incr','a')", "0"],
    ["EVAL", "redis.pcall('incr','a'); redis.call('setex','d','10','v'); return 1", "0"],
    ["MSET", "e", "1", "f", "2"],
    ["BITFIELD", "bf", "OVERFLOW", "FAIL", "INCRBY", "u2", "0", "5", "SET", "u8", "8", "255"],
]


_EXPIRING = [
    ["SET", "s1", "v"], ["SET", "s2", "v"], ["SET", "s3", "v"], ["SET", "s4", "v"],
    ["RPUSH", "l", "a"], ["SADD", "st", "a"], ["ZADD", "z", "1", "a"], ["HSET", "h", "f", "v"],
    ["XADD", "x", "1-1", "f", "v"], ["RPUSH", "l2", "a"], ["SET", "n", "1"], ["SET", "f", "1.5"],
]
OTHER_SCENARIOS["lazy-expiry"] = (
    _EXPIRING
    + [["PEXPIRE", args[1], "30"] for args in _EXPIRING]
    + [["<sleep>", 60],
       ["GET", "s1"], ["EXISTS", "s2", "nokey"], ["APPEND", "s3", "x"], ["SET", "s4", "w", "NX"],
       ["LPUSH", "l", "b"], ["SPOP", "st"], ["ZPOPMIN", "z"], ["HINCRBYFLOAT", "h", "f", "1"],
       ["XADD", "x", "*", "f", "v"], ["LMPOP", "1", "l2", "LEFT"], ["INCRBYFLOAT", "f", "1"],
       ["EXPIRE", "n", "100"]]
)


@pytest.mark.parametrize("name", sorted(OTHER_SCENARIOS))
def test_other_commands_match_redis(oracle, name):
    _compare(oracle, OTHER_SCENARIOS[name])


# ------------------------------------------------- exact values, frozen clock


T0 = 1_800_000_000_000


def _cap(**config):
    return ShoalCapture(start_ms=T0, **config)


def _strip(cmds):
    return [c for c in cmds if c[0] != b"SELECT"]


def test_relative_ttls_become_exact_absolute_times():
    cap = _cap()
    cap.run("SET", "k", "v")
    assert _strip(cap.props("EXPIRE", "k", "10")) == [_b(["PEXPIREAT", "k", T0 + 10_000])]
    assert _strip(cap.props("PEXPIRE", "k", "1234", "GT")) == []
    assert _strip(cap.props("PEXPIRE", "k", "12345", "GT")) == [_b(["PEXPIREAT", "k", T0 + 12_345, "GT"])]
    assert _strip(cap.props("EXPIREAT", "k", "1900000000")) == [_b(["PEXPIREAT", "k", 1_900_000_000_000])]
    assert _strip(cap.props("SET", "k", "v", "EX", "7")) == [_b(["SET", "k", "v", "PXAT", T0 + 7000])]
    assert _strip(cap.props("SETEX", "k", "8", "v")) == [_b(["SET", "k", "v", "PXAT", T0 + 8000])]
    assert _strip(cap.props("PSETEX", "k", "9", "v")) == [_b(["SET", "k", "v", "PXAT", T0 + 9])]
    assert _strip(cap.props("GETEX", "k", "PX", "11")) == [_b(["PEXPIREAT", "k", T0 + 11])]
    cap.clock.advance(5)
    assert _strip(cap.props("GETEX", "k", "EX", "1")) == [_b(["PEXPIREAT", "k", T0 + 1005])]
    # After the clock passes the TTL the key is gone and says so as a DEL first.
    cap.clock.advance(2000)
    assert _strip(cap.props("GET", "k")) == [[b"DEL", b"k"]]
    dump_src = cap.run("SET", "src", "x")
    dump = parse(cap.run("DUMP", "src")[0])
    assert dump_src[0] == b"+OK\r\n"
    now = T0 + 2005
    assert _strip(cap.props("RESTORE", "r", "500", dump, "IDLETIME", "3")) == [
        [b"RESTORE", b"r", b"%d" % (now + 500), dump, b"IDLETIME", b"3", b"ABSTTL"]]
    assert _strip(cap.props("RESTORE", "r", "0", dump, "REPLACE")) == [[b"RESTORE", b"r", b"0", dump, b"REPLACE"]]
    assert _strip(cap.props("RESTORE", "r", str(now), dump, "REPLACE", "ABSTTL")) == [[b"DEL", b"r"]]
    assert cap.run("EXISTS", "r")[0] == b":0\r\n"


def test_xadd_star_propagates_the_generated_id():
    cap = _cap()
    ms = T0
    assert _strip(cap.props("XADD", "s", "*", "f", "v")) == [_b(["XADD", "s", f"{ms}-0", "f", "v"])]
    assert _strip(cap.props("XADD", "s", "*", "f", "v")) == [_b(["XADD", "s", f"{ms}-1", "f", "v"])]
    assert _strip(cap.props("XADD", "s", f"{ms}-*", "f", "v")) == [_b(["XADD", "s", f"{ms}-2", "f", "v"])]
    assert _strip(cap.props("XADD", "s", "MAXLEN", "~", "1", "*", "f", "v")) == [
        _b(["XADD", "s", "MAXLEN", "=", "4", f"{ms}-3", "f", "v"])]
    assert _strip(cap.props("XADD", "s", "MAXLEN", "1", "*", "f", "v")) == [
        _b(["XADD", "s", "MAXLEN", "1", f"{ms}-4", "f", "v"])]
    cap.clock.advance(3)
    assert _strip(cap.props("XADD", "s", "*", "f", "v")) == [_b(["XADD", "s", f"{ms + 3}-0", "f", "v"])]


def test_xreadgroup_propagates_idempotent_xclaims_with_the_delivery_time():
    cap = _cap()
    cap.run("XADD", "s", "1-1", "f", "v")
    cap.run("XADD", "s", "2-1", "f", "v")
    cap.run("XGROUP", "CREATE", "s", "g", "0")
    cap.clock.advance(42)
    got = _strip(cap.props("XREADGROUP", "GROUP", "g", "alice", "STREAMS", "s", ">"))
    assert got == [[b"MULTI"]] + [
        _b(["XCLAIM", "s", "g", "alice", "0", sid, "TIME", T0 + 42, "RETRYCOUNT", "1", "FORCE", "JUSTID",
            "LASTID", sid]) for sid in ("1-1", "2-1")] + [[b"EXEC"]]


def test_spop_with_a_count_replicates_the_members_it_popped():
    for size, count in [(10, 1), (10, 3), (10, 9), (300, 250), (5, 5), (5, 6), (40, 39)]:
        for members in ([str(i) for i in range(size)], [f"m{i}" for i in range(size)]):
            cap = _cap()
            cap.run("SADD", "s", *members)
            reply, props = cap.run("SPOP", "s", str(count))
            props = _strip(props)
            popped = decode_reply_list(reply)
            assert len(popped) == min(size, count)
            if count >= size:
                assert props == [[b"DEL", b"s"]]
                continue
            srems = [c for c in props if c[0] == b"SREM"]
            assert [c[2] for c in srems] == popped
            assert all(len(c) == 3 and c[1] == b"s" for c in srems)
            assert props == ([[b"MULTI"]] + srems + [[b"EXEC"]] if count > 1 else srems)
            remaining = decode_reply_list(cap.run("SMEMBERS", "s")[0])
            assert sorted(remaining + popped) == sorted(m.encode() for m in members)


def decode_reply_list(raw: bytes):
    value = parse(raw)
    return list(value) if value is not None else []


def test_nothing_is_collected_without_a_sink():
    cap = _cap()
    cap.close()
    assert cap.node.propagation.enabled is False
    cap.run("SET", "k", "v")
    cap.run("EXPIRE", "k", "10")
    cap.run("SADD", "s", "a", "b", "c")
    reply, props = cap.run("SPOP", "s", "2")
    assert props == [] and cap.node.propagation.ops == []
    assert len(parse(reply)) == 2
    assert cap.run("PTTL", "k")[0] == b":10000\r\n"


# --------------------------------------------------------- end-to-end replay

_KEYS = ["k1", "k2", "k3", "k4"]
_key = st.sampled_from(_KEYS)
_member = st.sampled_from(["a", "b", "c", "d", "e", "1", "2", "3"])
_small = st.integers(min_value=1, max_value=5)
# TTLs either far enough in the past at replay time (< 500 s) or well in the future (> 2000 s).
_ttl_s = st.one_of(st.integers(min_value=1, max_value=400), st.integers(min_value=2500, max_value=5000))


def _cmd(draw):
    kind = draw(st.sampled_from([
        "set", "setex", "psetex", "setopt", "expire", "pexpire", "expireat", "persist", "getex", "getdel",
        "incrbyfloat", "hincrbyfloat", "hset", "sadd", "spop", "spopn", "rpush", "lpop", "blpop", "lmpop",
        "blmove", "zadd", "zpopmin", "bzpopmax", "zmpop", "xadd", "xaddtrim", "xtrim", "del", "restore",
        "pfadd", "pfcount", "geoadd", "incr", "xgroup", "xreadgroup", "xautoclaim",
    ]))
    k = draw(_key)
    m = draw(_member)
    n = draw(_small)
    ttl = draw(_ttl_s)
    return {
        "set": ["SET", k, m],
        "setex": ["SETEX", k, ttl, m],
        "psetex": ["PSETEX", k, ttl * 1000, m],
        "setopt": ["SET", k, m, draw(st.sampled_from(["EX", "PX"])), ttl if n % 2 else ttl * 1000, "GET"],
        "expire": ["EXPIRE", k, ttl],
        "pexpire": ["PEXPIRE", k, ttl * 1000],
        "expireat": ["EXPIREAT", k, ("at", ttl)],
        "persist": ["PERSIST", k],
        "getex": ["GETEX", k, "EX", ttl],
        "getdel": ["GETDEL", k],
        "incrbyfloat": ["INCRBYFLOAT", k, draw(st.sampled_from(["0.1", "1.5", "-3.25", "1e2"]))],
        "hincrbyfloat": ["HINCRBYFLOAT", k, m, draw(st.sampled_from(["0.1", "2.5", "-1e1"]))],
        "hset": ["HSET", k, m, str(n)],
        "sadd": ["SADD", k, m, *draw(st.lists(_member, max_size=4))],
        "spop": ["SPOP", k],
        "spopn": ["SPOP", k, n],
        "rpush": ["RPUSH", k, m, *draw(st.lists(_member, max_size=4))],
        "lpop": ["LPOP", k],
        "blpop": ["BLPOP", k, "0"],
        "lmpop": ["LMPOP", "2", k, draw(_key), "RIGHT", "COUNT", n],
        "blmove": ["BLMOVE", k, draw(_key), "LEFT", "RIGHT", "0"],
        "zadd": ["ZADD", k, n, m],
        "zpopmin": ["ZPOPMIN", k],
        "bzpopmax": ["BZPOPMAX", k, "0"],
        "zmpop": ["ZMPOP", "1", k, "MIN", "COUNT", n],
        "xadd": ["XADD", k, "*", "f", m],
        "xaddtrim": ["XADD", k, "MAXLEN", "~", n, "*", "f", m],
        "xtrim": ["XTRIM", k, "MAXLEN", "~", "0"],
        "del": ["DEL", k],
        "restore": ["RESTORE", k, ttl * 1000, ("dump",), "REPLACE"],
        "pfadd": ["PFADD", k, m],
        "pfcount": ["PFCOUNT", k],
        "geoadd": ["GEOADD", k, "13.36", "38.11", m],
        "incr": ["INCR", k],
        "xgroup": ["XGROUP", "CREATE", k, "g", "0", "MKSTREAM"],
        "xreadgroup": ["XREADGROUP", "GROUP", "g", m, "COUNT", n, "STREAMS", k, ">"],
        "xautoclaim": ["XAUTOCLAIM", k, "g", m, "0", "0", "COUNT", n],
    }[kind]


def _arg(arg, cap, dump):
    if type(arg) is tuple:
        if arg[0] == "at":
            return cap.clock.ms // 1000 + arg[1]
        return dump
    return arg


@st.composite
def _programs(draw):
    return [_cmd(draw) for _ in range(draw(st.integers(min_value=1, max_value=25)))]


@pytest.fixture(scope="module")
def dump_payload():
    cap = ShoalCapture()
    cap.run("SET", "src", "hello")
    return parse(cap.run("DUMP", "src")[0])


def _load_into_redis(stream: bytes, keys_dbs):
    """Start a redis-server that loads ``stream`` as its AOF (loading: nothing expires while it replays),
    then, at real time, touch the keys so expired ones go, and return its DEBUG DIGEST."""
    server = ServerProcess("redis", "--enable-debug-command", "yes", "--appendonly", "yes",
                           "--appendfilename", "appendonly.aof")
    with open(f"{server.dir}/appendonly.aof", "wb") as f:
        f.write(stream)
    with server:
        with RawClient(server.port) as client:
            for index in keys_dbs:
                client.call("SELECT", index)
                for key in _KEYS:
                    client.call("EXISTS", key)
            client.call("SELECT", keys_dbs[-1])
            return parse(client.call("DEBUG", "DIGEST"))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(program=_programs(), db=st.sampled_from([0, 0, 3]))
def test_replaying_the_stream_later_gives_the_same_data(dump_payload, program, db):
    """Capture at "now - 1000 s", load as an AOF now: TTLs must be absolute or the load would resurrect keys."""
    now_ms = int(time.time() * 1000)
    cap = ShoalCapture(start_ms=now_ms - 1_000_000)
    cap.client.deny_blocking = True  # one client: a blocking pop on an empty key answers at once
    if db:
        cap.run("SELECT", db)
    for args in program:
        args = [_arg(a, cap, dump_payload) for a in args]
        cap.run(*args)
        cap.clock.advance(7)
    stream = bytes(cap.sink.data)
    if not stream:
        return
    cap.clock.ms = int(time.time() * 1000)
    dbs = sorted({0, db})
    for index in dbs:
        cap.run("SELECT", index)
        for key in _KEYS:
            cap.run("EXISTS", key)
    s_digest = parse(cap.run("DEBUG", "DIGEST")[0])
    cap.close()
    r_digest = _load_into_redis(stream, dbs)
    assert re.fullmatch("[0-9a-f]{40}", str(r_digest)), r_digest
    assert s_digest == r_digest, (program, decode_commands(stream))


# ------------------------------------------- through the real AOF and replicas

_E2E_PROGRAM = [
    ["SET", "a", "1", "EX", "1000"], ["SADD", "s", *"abcdefghij"], ["SPOP", "s", "3"], ["SPOP", "s"],
    ["SADD", "ints", *[str(i) for i in range(40)]], ["SPOP", "ints", "35"],
    ["SET", "f", "1.5"], ["INCRBYFLOAT", "f", "0.1"], ["HSET", "h", "f", "1"], ["HINCRBYFLOAT", "h", "f", "2.5"],
    ["XADD", "x", "*", "f", "v"], ["XADD", "x", "MAXLEN", "~", "1", "*", "f", "v"],
    ["XGROUP", "CREATE", "x", "g", "0"], ["XREADGROUP", "GROUP", "g", "c", "STREAMS", "x", ">"],
    ["EXPIRE", "a", "3000"], ["SET", "soon", "v", "PX", "50"], ["GETEX", "f", "EX", "500"],
    ["RPUSH", "l", "a", "b", "c"], ["BLPOP", "l", "0"], ["LMPOP", "1", "l", "RIGHT", "COUNT", "5"],
    ["ZADD", "z", "1", "a", "2", "b"], ["BZPOPMIN", "z", "0"], ["PFADD", "p", "x", "y"], ["PFCOUNT", "p"],
    ["GEOADD", "g", "13.361389", "38.115556", "pa"], ["SELECT", "2"], ["SET", "k", "v", "PX", "100000"],
    ["EVAL", "redis.call('set','e','1'); redis.call('expire','e', 100); return redis.call('spop','s')", "0"],
    ["SELECT", "0"],
]


def _wait_equal(get_a, get_b, timeout=10.0):
    deadline = time.time() + timeout
    while True:
        a, b = get_a(), get_b()
        if a == b or time.time() > deadline:
            return a, b
        time.sleep(0.05)


def test_redis_loads_shoals_aof_to_the_same_data():
    pytest.importorskip("node.persistence.aof")
    import os
    import shutil

    with ServerProcess("shoal", "--appendonly", "yes", "--enable-debug-command", "yes") as shoal:
        with RawClient(shoal.port) as client:
            for args in _E2E_PROGRAM:
                assert not client.call(*args).startswith(b"-"), args
            time.sleep(0.1)  # "soon" expires; EXISTS deletes it on both sides
            client.call("EXISTS", "soon")
            shoal_digest = parse(client.call("DEBUG", "DIGEST"))
        shoal.stop(keep_dir=True)
        redis = ServerProcess("redis", "--appendonly", "yes", "--enable-debug-command", "yes")
        shutil.copytree(os.path.join(shoal.dir, "appendonlydir"), os.path.join(redis.dir, "appendonlydir"))
        with redis, RawClient(redis.port) as client:
            client.call("EXISTS", "soon")
            assert parse(client.call("DEBUG", "DIGEST")) == shoal_digest
            assert 2_990_000 < int(parse(client.call("PTTL", "a"))) <= 3_000_000


def test_a_redis_replica_of_shoal_holds_the_same_data():
    pytest.importorskip("node.replication")
    with ServerProcess("shoal", "--enable-debug-command", "yes") as shoal, \
            ServerProcess("redis", "--enable-debug-command", "yes") as redis, \
            RawClient(shoal.port) as primary, RawClient(redis.port) as replica:
        replica.call("REPLICAOF", "127.0.0.1", str(shoal.port))
        try:
            _wait_equal(lambda: b"master_link_status:up" in replica.call("INFO", "replication"), lambda: True)
            for args in _E2E_PROGRAM:
                assert not primary.call(*args).startswith(b"-"), args
            a, b = _wait_equal(lambda: parse(primary.call("DEBUG", "DIGEST")),
                               lambda: parse(replica.call("DEBUG", "DIGEST")))
            assert a == b
            assert parse(replica.call("SCARD", "s")) == parse(primary.call("SCARD", "s"))
            assert replica.call("SMEMBERS", "ints") == primary.call("SMEMBERS", "ints")
        finally:
            replica.call("REPLICAOF", "NO", "ONE")
