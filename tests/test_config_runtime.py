"""CONFIG SET of every parameter Redis 7.0 lets you change at run time, against real redis-server.

The list of parameters and their kinds is taken from the oracle, not from
Shoal's registry: ``CONFIG GET *`` on redis-server names every parameter;
``CONFIG SET p <its current value>`` tells the mutable ones from the
immutable/protected ones (Redis's refusal text is compared too); and the
error Redis gives for ``abc`` tells the kind of a mutable one (bool, enum and
its choices, integer and its range, memory, memory-or-percent, or other). Each
parameter then gets the same list of values -- valid ones of its kind (both
bool words, every enum choice in two cases, range ends, memory units, ...),
invalid ones, and hand-written ones for the special formats (save,
client-output-buffer-limit, notify-keyspace-events, oom-score-adj-values, ...)
-- and the CONFIG SET reply and the CONFIG GET after it must be byte-for-byte
Redis's. Both servers are fresh processes of this module (nothing leaks into
the session servers) and every value is put back after each try.

``port`` and ``bind`` (the server listens anew) are tried separately with
free loopback ports and addresses only, so the two servers never compete for
one port. Known differences (tests/known_differences.py, "config|set: ..."):
a number of parameters are accepted and reported but change nothing in Shoal
(``CONFIG_ACCEPTED_WITHOUT_EFFECT`` there).
"""

from __future__ import annotations

import re
import resource
import socket

import pytest

from tests.known_differences import CONFIG_ACCEPTED_WITHOUT_EFFECT
from tests.resp_client import RawClient, parse
from tests.servers import ServerProcess, free_port

IMMUTABLE = "can't set immutable config"
PROTECTED = "can't set protected config"

SPECIAL_VALUES = {
    "save": ["", "100 10", "3600 1 300 100", "100", "abc 1", "1 -1", "0 5", "100 10 200"],
    "client-output-buffer-limit": [
        "normal 1mb 2mb 60", "slave 0 0 0", "replica 256mb 64mb 60", "pubsub 1 2 3 normal 4 5 6", "master 1 2 3",
        "normal 1 2", "normal 1x 2 3", "normal 1 2 -1", "NORMAL 1gb 1GB 0", "pubsub 32mb 8mb 60", "",
    ],
    "notify-keyspace-events": ["KEA", "Ex", "Kg$", "A", "AKE", "x", "Q", "", "KEAn", "Elshzxetdg$", "m", "KEm"],
    "oom-score-adj-values": ["0 200 800", "-2000 0 2000", "1 2", "0 0 2001", "a b c", "10 20 30 40"],
    "latency-tracking-info-percentiles": ["50 99 99.9", "", "0 100", "abc", "101", "50.55 99.123456", "-1"],
    "shutdown-on-sigint": ["default", "save", "nosave now", "force", "save nosave", "bogus", "now force"],
    "shutdown-on-sigterm": ["default", "nosave", "save now force", "x"],
    "proc-title-template": ["{title}", "{nosuch}", "", "x {port} {server-mode}", "{title", "}", "{{", "a{", "{{title}",
                            " {title} ", "{server-mode}", "{port}"],
    "cluster-announce-hostname": ["host-1.example", "bad host", "a_b", "", "h" * 256, "h" * 255],
    "dbfilename": ["x.rdb"],
    "dir": ["/tmp"],
}
GENERIC_VALUES = ["abc", "", "0", "1", "-1", "100", "yes", "no", "YES", "1mb", "1gb", "5k", "10%", "101%", "1.5",
                  "2147483648", "-2147483649", "4294967296", "9223372036854775807", "a b", "0 0 0"]
BOOL_VALUES = ["yes", "no", "YES", "No", "maybe", "1", ""]
INT_VALUES = ["0", "1", "-1", "100", "abc", "1.5", " 5", "+5", "05", "", "99999999999999999999", "0x10"]
MEMORY_VALUES = ["0", "1", "100", "1k", "1kb", "1mb", "1MB", "1gb", "1g", "5k", "1.5mb", "-1", "abc", "", "10%",
                 "101%", "16383", "16384", "20mb"]


def _pairs(raw: bytes) -> dict[str, str]:
    value = parse(raw)
    return {k.decode(): v.decode() for k, v in zip(value[0::2], value[1::2])}


@pytest.fixture(scope="module")
def servers():
    with ServerProcess("redis") as real, ServerProcess("shoal") as shoal:
        with RawClient(real.port) as r, RawClient(shoal.port) as s:
            yield r, s, real, shoal
        assert real.alive() and shoal.alive(), shoal.log()


@pytest.fixture(scope="module")
def redis_params(servers):
    r, _, _, _ = servers
    return _pairs(r.call("CONFIG", "GET", "*"))


def _kind(r: RawClient, name: str, current: str) -> tuple[str, list[str]]:
    """(kind, extra values) from Redis's answers: its error for 'abc' and for '-99999'."""
    probe = parse(r.call("CONFIG", "SET", name, "abc"))
    r.call("CONFIG", "SET", name, current)
    text = str(probe)
    if "'yes' or 'no'" in text:
        return "bool", []
    m = re.search(r"one of the following: (.*)$", text)
    if m:
        choices = m.group(1).split(", ")
        return "enum", choices + [c.upper() for c in choices] + ["bogus"]
    if "memory or percent" in text:
        return "percent", []
    if "memory value" in text:
        kind = "memory"
    elif "parsed into an integer" in text:
        kind = "int"
    else:
        return "other", []
    low = parse(r.call("CONFIG", "SET", name, "-99999"))
    r.call("CONFIG", "SET", name, current)
    m = re.search(r"between (-?\d+) and (-?\d+)", str(low))
    if m is None:
        return kind, []
    lo, hi = int(m.group(1)), int(m.group(2))
    return kind, [str(v) for v in (lo, hi, lo - 1, hi + 1, lo + (hi - lo) // 3)]


def _values_for(name: str, kind: str, extra: list[str]) -> list[str]:
    if name == "maxclients":
        # Redis raises RLIMIT_NOFILE up to maxclients + 32 or names the most it can have. (Not a huge
        # value under a low hard limit: redis-server then loops for minutes in adjustOpenFilesLimit.)
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        return ["1", "100", "10000", str(soft - 32), str(soft - 31), "0", "abc", "4294967295"]
    if name in SPECIAL_VALUES:
        return SPECIAL_VALUES[name] + ["abc"]
    table = {"bool": BOOL_VALUES, "enum": ["", "a b"], "int": INT_VALUES, "memory": MEMORY_VALUES,
             "percent": MEMORY_VALUES + ["0%", "100%", "50%", "-5%"], "other": GENERIC_VALUES}
    return list(dict.fromkeys(table[kind] + extra))


def test_every_parameter_is_known_to_both(servers, redis_params):
    _, s, _, _ = servers
    assert set(_pairs(s.call("CONFIG", "GET", "*"))) == set(redis_params)
    assert len(redis_params) > 180


def test_mutable_and_immutable_are_redis_s(servers, redis_params):
    """CONFIG SET p <current value>: OK for the mutable ones, Redis's refusal text for the others."""
    r, s, _, _ = servers
    shoal_params = _pairs(s.call("CONFIG", "GET", "*"))
    immutable, mutable = [], []
    for name in sorted(redis_params):
        real = r.call("CONFIG", "SET", name, redis_params[name])
        ours = s.call("CONFIG", "SET", name, shoal_params[name])
        assert ours == real, name
        (mutable if real == b"+OK\r\n" else immutable).append(name)
        if real != b"+OK\r\n":
            assert IMMUTABLE.encode() in real or PROTECTED.encode() in real, real
    # A sample of both kinds, so a broken probe cannot pass by finding none.
    assert {"daemonize", "databases", "cluster-enabled", "io-threads", "appendfilename"} <= set(immutable)
    assert {"maxmemory", "hz", "save", "notify-keyspace-events", "timeout", "maxclients"} <= set(mutable)
    assert len(mutable) > 130


def _mutable(redis_params: dict[str, str]) -> list[str]:
    # protected ones are refused (tested above); port and bind: test_port_and_bind_listen_anew
    skip = {"dir", "dbfilename", "port", "bind"}
    return sorted(name for name in redis_params if name not in skip)


@pytest.mark.parametrize("group", range(8))
def test_config_set_values_like_redis(servers, redis_params, group):
    """Every mutable parameter, in 8 groups: each value's SET reply and the GET after it equal Redis's."""
    r, s, _, _ = servers
    names = _mutable(redis_params)[group::8]
    tried = 0
    for name in names:
        current_r = _pairs(r.call("CONFIG", "GET", name))[name]
        current_s = _pairs(s.call("CONFIG", "GET", name))[name]
        if r.call("CONFIG", "SET", name, current_r) != b"+OK\r\n":
            continue  # immutable or protected: test_mutable_and_immutable_are_redis_s
        kind, extra = _kind(r, name, current_r)
        for value in _values_for(name, kind, extra):
            try:
                real = r.call("CONFIG", "SET", name, value)
                ours = s.call("CONFIG", "SET", name, value)
                assert ours == real, (name, value)
                assert s.call("CONFIG", "GET", name) == r.call("CONFIG", "GET", name), (name, value)
                tried += 1
            finally:
                assert r.call("CONFIG", "SET", name, current_r) == b"+OK\r\n", (name, value)
                assert s.call("CONFIG", "SET", name, current_s) == b"+OK\r\n", (name, value)
    assert tried > 100


def _answers(port: int) -> bool:
    try:
        with RawClient(port) as c:
            return c.call("PING") == b"+PONG\r\n"
    except OSError:
        return False


def test_port_and_bind_listen_anew():
    """CONFIG SET port/bind as Redis 7.0: new sockets, old ones closed, clients kept; failures change nothing."""
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    taken = str(busy.getsockname()[1])
    try:
        for kind in ("redis", "shoal"):
            with ServerProcess(kind) as proc, RawClient(proc.port) as c:
                old = proc.port
                fail = b"-ERR CONFIG SET failed (possibly related to argument '%s') - %s\r\n"
                assert c.call("CONFIG", "SET", "port", taken) == fail % (
                    b"port", b"Unable to listen on this port. Check server logs.")
                assert c.call("CONFIG", "SET", "bind", "192.0.2.1") == fail % (
                    b"bind", b"Failed to bind to specified addresses.")
                assert c.call("CONFIG", "SET", "bind", " ".join(["127.0.0.1"] * 17)) == fail % (
                    b"bind", b"Too many bind addresses specified.")
                assert c.call("CONFIG", "GET", "port", "bind") in (
                    b"*4\r\n$4\r\nport\r\n$%d\r\n%d\r\n$4\r\nbind\r\n$9\r\n127.0.0.1\r\n" % (len(str(old)), old),
                    b"*4\r\n$4\r\nbind\r\n$9\r\n127.0.0.1\r\n$4\r\nport\r\n$%d\r\n%d\r\n" % (len(str(old)), old))
                assert _answers(old), kind
                # An optional address that does not exist is skipped; the same port is bound again.
                assert c.call("CONFIG", "SET", "bind", "-192.0.2.1 127.0.0.1") == b"+OK\r\n"
                assert _answers(old) and c.call("PING") == b"+PONG\r\n"
                new = free_port()
                assert c.call("CONFIG", "SET", "port", str(new), "bind", "127.0.0.1") == b"+OK\r\n"
                assert _answers(new) and not _answers(old), kind
                assert c.call("PING") == b"+PONG\r\n"  # this connection, made to the old port, stays
                info = parse(c.call("INFO", "server")).decode()
                assert f"tcp_port:{new}\r\n" in info, kind
                assert c.call("CONFIG", "SET", "port", "0") == b"+OK\r\n"  # no TCP listener at all
                assert not _answers(new) and c.call("PING") == b"+PONG\r\n"
                assert c.call("CONFIG", "SET", "port", str(new)) == b"+OK\r\n" and _answers(new)
    finally:
        busy.close()


def test_accepted_without_effect_are_accepted(servers, redis_params):
    """Every parameter listed as having no effect in Shoal is a real, mutable Redis parameter."""
    r, s, _, _ = servers
    for name in CONFIG_ACCEPTED_WITHOUT_EFFECT:
        assert name in redis_params, name
        current = _pairs(s.call("CONFIG", "GET", name))[name]
        assert s.call("CONFIG", "SET", name, current) == b"+OK\r\n", name


def test_maxclients_over_the_descriptor_limit_at_start():
    """As Redis's adjustOpenFilesLimit at start: maxclients is lowered to what RLIMIT_NOFILE allows, with a warning."""
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    wanted = str(soft + 1000) if soft < 1_000_000 else "10000"
    replies = {}
    for kind in ("redis", "shoal"):
        with ServerProcess(kind, "--maxclients", wanted) as proc, RawClient(proc.port) as c:
            replies[kind] = (c.call("CONFIG", "GET", "maxclients"), c.call("CONFIG", "SET", "maxclients", wanted))
            lowered = _pairs(replies[kind][0])["maxclients"] != wanted
            assert ("maxclients has been reduced to" in proc.log()) == lowered
    assert replies["shoal"] == replies["redis"]
