"""Keyspace notifications against real Redis: the same commands, the same event stream.

A listener pattern-subscribes to ``__key*__:*`` on both servers with
``notify-keyspace-events KEA``; each scenario runs its commands on both
(replies compared too) and then the sequences of pmessages the listeners got
must be byte-for-byte equal. Keyspace (K) and keyevent (E) messages of one
event are two publishes, so their order is fixed: no normalisation needed.
"""

from __future__ import annotations

import socket
import time

import pytest

from tests.resp_client import parse
from tests.test_pubsub import Pair, pairs  # noqa: F401  (fixture)


@pytest.fixture
def admin(pairs):  # noqa: F811
    c = pairs(2)
    c.check("FLUSHALL")
    c.check("CONFIG", "SET", "notify-keyspace-events", "KEA")
    yield c
    c.check("CONFIG", "SET", "notify-keyspace-events", "")
    c.both("DEBUG", "SET-ACTIVE-EXPIRE", "1")
    c.check("FLUSHALL")


@pytest.fixture
def listener(admin, pairs):  # noqa: F811
    sub = pairs(2)
    sub.send("PSUBSCRIBE", "__key*__:*")
    sub.expect()
    return sub


FAR = "4102444800"  # 2100-01-01, in seconds

SCENARIOS = {
    "set": [
        ("SET", "k", "v"),
        ("SET", "k", "v2", "EX", "100"),
        ("SET", "k", "v3", "KEEPTTL"),
        ("SET", "k", "v", "NX"),
        ("SET", "k", "v4", "XX", "GET"),
        ("SET", "k2", "v", "PX", "100000", "GET"),
        ("SET", "k3", "v", "EXAT", FAR),
        ("SET", "k3", "v", "PXAT", FAR + "000"),
        ("SET", "nope", "v", "XX"),
        ("SET", "k", "v", "EX", "0"),
        ("SET", "k", "v", "BAD"),
        ("SETNX", "k", "v"),
        ("SETNX", "n", "v"),
    ],
    "setex": [
        ("SETEX", "k", "10", "v"),
        ("PSETEX", "k", "10000", "v"),
        ("SETEX", "k", "0", "v"),
        ("PSETEX", "k", "abc", "v"),
    ],
    "getset-getdel-getex": [
        ("SET", "k", "v"),
        ("GETSET", "k", "v2"),
        ("GETSET", "new", "v"),
        ("GETDEL", "new"),
        ("GETDEL", "missing"),
        ("GETEX", "k"),
        ("GETEX", "k", "EX", "100"),
        ("GETEX", "k", "PERSIST"),
        ("GETEX", "k", "PERSIST"),
        ("GETEX", "k", "PXAT", FAR + "000"),
        ("GETEX", "k", "EXAT", "1"),
        ("GETEX", "missing", "EX", "10"),
        ("SET", "k", "v"),
        ("GETEX", "k", "PXAT", "1"),
    ],
    "mset": [
        ("MSET", "a", "1", "b", "2", "a", "3"),
        ("MSETNX", "a", "1", "c", "2"),
        ("MSETNX", "c", "1", "d", "2"),
        ("MSET", "a"),
    ],
    "append-setrange": [
        ("APPEND", "k", "x"),
        ("APPEND", "k", "yz"),
        ("SETRANGE", "k", "1", "QQ"),
        ("SETRANGE", "k", "0", ""),
        ("SETRANGE", "empty", "0", ""),
        ("SETRANGE", "padded", "3", "x"),
        ("SETRANGE", "k", "-1", "x"),
    ],
    "incr": [
        ("INCR", "n"),
        ("DECR", "n"),
        ("INCRBY", "n", "5"),
        ("DECRBY", "n", "3"),
        ("INCRBYFLOAT", "n", "1.5"),
        ("INCRBYFLOAT", "f", "2"),
        ("SET", "s", "abc"),
        ("INCR", "s"),
        ("INCRBYFLOAT", "s", "1"),
        ("INCRBY", "n", "x"),
        ("SET", "big", "9223372036854775807"),
        ("INCR", "big"),
    ],
    "del-unlink": [
        ("MSET", "a", "1", "b", "2", "c", "3"),
        ("DEL", "a", "missing", "b", "a"),
        ("UNLINK", "c", "missing"),
    ],
    "expire-persist": [
        ("MSET", "k", "v", "k2", "v", "k3", "v"),
        ("EXPIRE", "k", "100"),
        ("PEXPIRE", "k", "100000"),
        ("EXPIREAT", "k", FAR),
        ("PEXPIREAT", "k", FAR + "000"),
        ("EXPIRE", "k", "100", "NX"),
        ("EXPIRE", "k", "200", "GT"),
        ("EXPIRE", "k", "1", "GT"),
        ("EXPIRE", "k2", "100", "XX"),
        ("EXPIRE", "missing", "10"),
        ("EXPIRE", "k", "10", "BAD"),
        ("PERSIST", "k"),
        ("PERSIST", "k"),
        ("PERSIST", "missing"),
        ("EXPIRE", "k", "-1"),
        ("PEXPIREAT", "k2", "1"),
        ("EXPIREAT", "k3", "0"),
    ],
    "rename": [
        ("SET", "a", "1"),
        ("RENAME", "a", "b"),
        ("RENAME", "b", "b"),
        ("RENAME", "missing", "x"),
        ("SET", "c", "3", "EX", "100"),
        ("RENAMENX", "b", "c"),
        ("RENAMENX", "b", "d"),
        ("RENAME", "c", "d"),
        ("RENAMENX", "d", "d"),
    ],
    "move-copy": [
        ("SET", "k", "v", "EX", "100"),
        ("MOVE", "k", "1"),
        ("MOVE", "k", "1"),
        ("SET", "k", "v"),
        ("MOVE", "k", "1"),
        ("MOVE", "k", "0"),
        ("COPY", "k", "k2"),
        ("COPY", "k", "k2"),
        ("COPY", "k", "k2", "REPLACE"),
        ("COPY", "k", "k2", "DB", "3"),
        ("COPY", "missing", "x"),
        ("SELECT", "3"),
        ("SET", "in3", "v"),
        ("DEL", "k2"),
        ("SELECT", "0"),
    ],
    "flush": [
        ("SET", "a", "1"),
        ("SELECT", "2"),
        ("SET", "b", "1"),
        ("FLUSHDB",),
        ("SELECT", "0"),
        ("FLUSHALL",),
        ("SWAPDB", "0", "1"),
    ],
    "read-commands-send-nothing": [
        ("SET", "k", "v"),
        ("GET", "k"),
        ("GET", "missing"),
        ("MGET", "k", "missing"),
        ("STRLEN", "k"),
        ("GETRANGE", "k", "0", "-1"),
        ("EXISTS", "k", "missing"),
        ("TTL", "k"),
        ("TYPE", "k"),
    ],
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_events_match_redis(admin, listener, name):
    for argv in SCENARIOS[name]:
        admin.check(*argv)
    events = listener.expect()
    if name != "read-commands-send-nothing":
        assert events, "the scenario should have produced events"
    else:
        assert len(events) == 2  # the SET's keyspace and keyevent messages only


@pytest.mark.parametrize("flags", ["K$", "Eg", "KEg$", "Kx", "E", "Kl", "g", "AE", "KA", "EA$g"])
def test_event_classes_and_channels(admin, listener, flags):
    admin.check("CONFIG", "SET", "notify-keyspace-events", flags)
    admin.check("CONFIG", "GET", "notify-keyspace-events")
    for argv in SCENARIOS["set"] + SCENARIOS["expire-persist"] + [("SELECT", "5"), ("INCR", "n"), ("SELECT", "0")]:
        admin.check(*argv)
    listener.expect()


def test_lazy_expiry_sends_expired(admin, listener):
    admin.check("DEBUG", "SET-ACTIVE-EXPIRE", "0")
    admin.check("MSET", "a", "1", "b", "2", "c", "3", "d", "4", "e", "5")
    for key in "abcde":
        admin.check("PEXPIRE", key, "1")
    time.sleep(0.02)
    admin.check("GET", "a")  # a read: expired
    admin.check("SET", "b", "new")  # a plain SET over an expired key: expired, then set
    admin.check("DEL", "c")  # expired, and no del
    admin.check("MSET", "d", "x")  # expired, then set
    admin.check("EXPIRE", "e", "100")  # expired; EXPIRE answers 0
    events = [parse(raw)[2:] for raw in listener.expect()]
    assert [key for channel, key in events if channel == b"__keyevent@0__:expired"] == [b"a", b"b", b"c", b"d", b"e"]


def _read_until_expired(client, key: bytes) -> list[bytes]:
    client.sock.settimeout(5)
    got = []
    while True:
        try:
            raw = client.read_reply()
        except socket.timeout:
            raise AssertionError(f"no expired event (got {got!r})")
        got.append(raw)
        value = parse(raw)
        if value[-2:] == [b"__keyevent@0__:expired", key]:
            return got


def test_active_expiry_sends_expired(admin, listener):
    admin.check("SET", "gone", "v", "PX", "1")
    # Nobody touches the key: the expire cycle must find it and publish.
    r = _read_until_expired(listener.redis, b"gone")
    s = _read_until_expired(listener.shoal, b"gone")
    assert r == s
    admin.check("EXISTS", "gone")
    listener.expect()


def test_resp3_subscriber_gets_its_own_events_before_the_reply(admin, pairs):  # noqa: F811
    me = pairs(3)
    me.send("PSUBSCRIBE", "__keyevent@0__:*")
    me.send("SUBSCRIBE", "__keyspace@0__:k")
    me.expect()
    me.send("SET", "k", "v", "EX", "100")
    me.send("DEL", "k", "other")
    me.send("PERSIST", "k")
    me.expect()


def test_no_events_when_disabled(admin, listener):
    admin.check("CONFIG", "SET", "notify-keyspace-events", "")
    admin.check("SET", "k", "v")
    admin.check("DEL", "k")
    assert listener.expect() == []
    admin.check("CONFIG", "SET", "notify-keyspace-events", "A")  # classes but neither K nor E
    admin.check("SET", "k", "v")
    assert listener.expect() == []
