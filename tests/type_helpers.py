"""Shared helpers for the per-data-type differential tests (lists, hashes, sets, sorted sets, geo, SORT).

- ``d``: a fixture giving an ``ArgsDiffer`` over RESP2 and over RESP3 (import it into a test module:
  ``from tests.type_helpers import d  # noqa: F401``).
- ``keyspace_events``: the keyspace/keyevent messages a command script causes on one server.
- ``counter_deltas``: what each command of a script adds to the dirty counter and keyspace hits/misses.
- ``cmd``: a hypothesis strategy for one command with fixed name and drawn arguments.
"""

from __future__ import annotations

import pytest
from hypothesis import strategies as st

from tests.resp_client import RawClient, parse


def as_text(argv) -> tuple:
    """Ints and floats as their decimal text (so known-difference normalisers see the same argv)."""
    return tuple(str(a) if isinstance(a, (int, float)) else a for a in argv)


class ArgsDiffer:
    """A Differ that also takes int/float arguments and has an exact (no normaliser) comparison."""

    def __init__(self, differ) -> None:
        self.differ = differ
        self.redis, self.shoal = differ.redis, differ.shoal
        self.protocol = differ.protocol
        self.resp3 = differ.protocol == 3

    def check(self, *argv):
        return self.differ.check(*as_text(argv))

    def both(self, *argv):
        return self.differ.both(*as_text(argv))

    def exact(self, *argv):
        """Byte-for-byte, with no normaliser (for orders Shoal must reproduce)."""
        expected, actual = self.differ.both(*as_text(argv))
        assert expected == actual, (argv, expected, actual)
        return expected

    def check_all(self, *commands):
        for argv in commands:
            self.check(*argv)


@pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
def d(request, differ, differ3):
    """Each test runs over RESP2 and over RESP3."""
    return ArgsDiffer(differ if request.param == 2 else differ3)


def check_all(d, *commands):
    for argv in commands:
        d.check(*argv)


def encoding(d, key) -> bytes:
    """OBJECT ENCODING of ``key`` as real Redis reports it."""
    return parse(d.redis.call("OBJECT", "ENCODING", key))


def check_introspection(d, key) -> bytes | None:
    """TYPE, OBJECT ENCODING and DEBUG DIGEST-VALUE of ``key`` agree; return the encoding (None if no key)."""
    d.check("TYPE", key)
    enc = parse(d.check("OBJECT", "ENCODING", key))
    d.check("DEBUG", "DIGEST-VALUE", key)
    return enc


def keyspace_events(port: int, commands, resp3: bool = False) -> list:
    """Run ``commands`` on one server with every keyspace event on; return the messages received."""
    with RawClient(port) as sub, RawClient(port) as c:
        c.call("CONFIG", "SET", "notify-keyspace-events", "KEA")
        try:
            if resp3:
                c.call("HELLO", "3")
            sub.call("PSUBSCRIBE", "__key*__:*")
            for argv in commands:
                c.call(*as_text(argv))
            c.call("PUBLISH", "end", "x")  # not matched by the pattern
            c.call("SET", "__end__", "1")
            out = []
            while True:
                msg = parse(sub.read_reply())
                out.append(msg[2:])
                if msg[2] == b"__keyevent@0__:set" and msg[3] == b"__end__":
                    return out
        finally:
            c.call("CONFIG", "SET", "notify-keyspace-events", "")


def same_keyspace_events(redis_proc, shoal_proc, commands) -> None:
    """Both servers (each freshly flushed) send the same keyspace messages for ``commands``."""
    for port in (redis_proc.port, shoal_proc.port):
        with RawClient(port) as c:
            c.call("FLUSHALL")
    expected = keyspace_events(redis_proc.port, commands)
    actual = keyspace_events(shoal_proc.port, commands)
    assert expected, "the script caused no keyspace events at all"
    assert actual == expected


def _info_fields(c: RawClient, section: str) -> dict[str, str]:
    info = parse(c.call("INFO", section)).decode()
    return dict(line.split(":", 1) for line in info.split("\r\n") if ":" in line)


def _counters(c: RawClient) -> list[int]:
    persistence, stats = _info_fields(c, "persistence"), _info_fields(c, "stats")
    return [int(persistence["rdb_changes_since_last_save"]),
            int(stats["keyspace_hits"]), int(stats["keyspace_misses"])]


def counter_deltas(port: int, commands, setup=()) -> list:
    """FLUSHALL, run ``setup``, then for each command: (argv, [dirty, keyspace hits, keyspace misses] it added)."""
    out = []
    with RawClient(port) as c:
        c.call("FLUSHALL")
        for argv in setup:
            c.call(*as_text(argv))
        for argv in commands:
            before = _counters(c)
            c.call(*as_text(argv))
            out.append((argv, [a - b for a, b in zip(_counters(c), before)]))
    return out


def same_counter_deltas(redis_proc, shoal_proc, commands, setup=()) -> None:
    assert counter_deltas(shoal_proc.port, commands, setup) == counter_deltas(redis_proc.port, commands, setup)


def cmd(name, *parts):
    """A hypothesis strategy for the command ``name`` with arguments drawn from ``parts``."""
    return st.tuples(st.just(name), *parts)
