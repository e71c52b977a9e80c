"""Blocking sorted set commands (BZPOPMIN, BZPOPMAX, BZMPOP) with several real clients, Shoal against Redis 7.0.

Each scenario drives a few connections to one server and returns what it
observed (raw replies, in order); it runs against redis-server and against
shoal-server and the observations must be identical. Most scenarios also
assert the outcome they exist for, so a test cannot pass by both servers
doing nothing.

No timing assertions: a client is known to be blocked when INFO clients says
so (``wait_blocked``); a server runs commands in order, so once a writer's
reply is back the waiters it woke have been served. Timeouts are small and
only their outcome is checked.
"""

from __future__ import annotations

import pytest

from tests.blocking_helpers import NIL2, NIL3, blocked_clients, both, protocol  # noqa: F401
from tests.resp_client import parse


def _p(raw):
    return parse(raw)


# ----------------------------------------------------------------- wake-ups


def test_bzpopmin_woken_by_zadd_from_another_client(both):
    def scenario(r):
        a, b = r.conn(), r.conn()
        a.send("BZPOPMIN", "z", "0")
        r.blocked(1)
        added = b.call("ZADD", "z", "2", "b", "1", "a")
        return [added, a.read_reply(), b.call("ZRANGE", "z", "0", "-1", "WITHSCORES"), blocked_clients(r.ctl)]

    obs = both(scenario)
    assert _p(obs[1])[:2] == [b"z", b"a"] and obs[3] == 0


@pytest.mark.parametrize("argv,write", [
    (("BZPOPMAX", "a", "b", "0"), ("ZADD", "b", "1", "x", "2", "y")),
    (("BZPOPMIN", "a", "b", "0"), ("ZINCRBY", "a", "5", "x")),
    (("BZMPOP", "0", "2", "a", "b", "MAX", "COUNT", "2"), ("ZADD", "b", "1", "x", "2", "y", "3", "z")),
    (("BZMPOP", "0", "1", "b", "MIN"), ("ZADD", "b", "1", "x", "2", "y")),
    (("BZMPOP", "0", "1", "b", "MIN", "COUNT", "10"), ("ZADD", "b", "1", "x", "2", "y")),
    (("BZPOPMIN", "b", "0"), ("ZADD", "b", "-inf", "neg", "inf", "pos")),
    (("BZPOPMAX", "b", "0"), ("ZADD", "b", "INCR", "1.5", "m")),
])
def test_each_blocking_command_woken(both, argv, write):
    def scenario(r):
        a, b = r.conn(), r.conn()
        a.send(*argv)
        r.blocked(1)
        return [b.call(*write), a.read_reply(), b.call("ZRANGE", "a", "0", "-1"), b.call("ZRANGE", "b", "0", "-1")]

    obs = both(scenario)
    assert _p(obs[1]) is not None


@pytest.mark.parametrize("setup,write", [
    ((("ZADD", "src", "1", "a", "2", "b"),), ("ZUNIONSTORE", "k", "1", "src")),
    ((("ZADD", "src", "1", "a", "2", "b"),), ("ZRANGESTORE", "k", "src", "0", "0")),
    ((("ZADD", "src", "1", "a", "2", "b"),), ("ZDIFFSTORE", "k", "1", "src")),
    ((("ZADD", "src", "1", "a", "2", "b"),), ("RENAME", "src", "k")),
    ((("ZADD", "src", "1", "a", "2", "b"),), ("COPY", "src", "k")),
    ((("SADD", "src", "a", "b"),), ("ZUNIONSTORE", "k", "1", "src")),
])
def test_woken_by_other_writers(both, setup, write):
    def scenario(r):
        a, b = r.conn(), r.conn()
        for argv in setup:
            b.call(*argv)
        a.send("BZPOPMAX", "k", "0")
        r.blocked(1)
        return [b.call(*write), a.read_reply(), b.call("ZRANGE", "k", "0", "-1", "WITHSCORES")]

    obs = both(scenario)
    assert _p(obs[1])[0] == b"k"


def test_fairness_first_blocked_first_served(both):
    def scenario(r):
        waiters = []
        for i in range(3):
            c = r.conn()
            c.send("BZPOPMIN", "z", "0")
            r.blocked(i + 1)
            waiters.append(c)
        w = r.conn()
        out = [w.call("ZADD", "z", "3", "c", "1", "a", "2", "b", "4", "d")]
        out += [c.read_reply() for c in waiters]
        out.append(w.call("ZRANGE", "z", "0", "-1"))
        return out

    obs = both(scenario)
    assert [_p(x)[1] for x in obs[1:4]] == [b"a", b"b", b"c"]
    assert _p(obs[4]) == [b"d"]


def test_fewer_elements_than_waiters(both):
    def scenario(r):
        a, b, c = r.conn(), r.conn(), r.conn()
        a.send("BZPOPMAX", "z", "0")
        r.blocked(1)
        b.send("BZMPOP", "0", "1", "z", "MIN", "COUNT", "5")
        r.blocked(2)
        w = r.conn()
        out = [w.call("ZADD", "z", "1", "only"), a.read_reply(), blocked_clients(r.ctl)]
        out += [w.call("ZADD", "z", "1", "x", "2", "y"), b.read_reply(), blocked_clients(r.ctl)]
        out.append(w.call("EXISTS", "z"))
        return out

    obs = both(scenario)
    assert _p(obs[1])[1] == b"only"
    assert obs[2] == 1 and obs[5] == 0


def test_waiters_on_different_keys(both):
    def scenario(r):
        a, b = r.conn(), r.conn()
        a.send("BZPOPMIN", "k1", "k2", "0")
        r.blocked(1)
        b.send("BZPOPMIN", "k2", "0")
        r.blocked(2)
        w = r.conn()
        out = [w.call("ZADD", "k2", "1", "x"), a.read_reply(), blocked_clients(r.ctl)]
        out += [w.call("ZADD", "k2", "2", "y"), b.read_reply(), blocked_clients(r.ctl)]
        return out

    obs = both(scenario)
    assert _p(obs[1])[:2] == [b"k2", b"x"] and obs[5] == 0


# ----------------------------------------------------------------- timeouts, MULTI


@pytest.mark.parametrize("argv", [("BZPOPMIN", "z", "0.05"), ("BZPOPMAX", "z", "y", "0.05"),
                                  ("BZMPOP", "0.05", "2", "z", "y", "MIN", "COUNT", "3")])
def test_timeout_replies_null_array(both, protocol, argv):
    def scenario(r):
        a = r.conn()
        return [a.call(*argv), blocked_clients(r.ctl), a.call("PING")]

    obs = both(scenario)
    assert obs[0] == (NIL2 if protocol == 2 else NIL3)


def test_blocking_inside_multi_replies_at_once(both, protocol):
    def scenario(r):
        a = r.conn()
        out = [a.call("MULTI"), a.call("BZPOPMIN", "z", "0"), a.call("BZMPOP", "0", "1", "z", "MAX"),
               a.call("BZPOPMAX", "z", "0"), a.call("EXEC"), blocked_clients(r.ctl)]
        return out

    obs = both(scenario)
    nil = NIL2 if protocol == 2 else NIL3
    assert obs[4] == b"*3\r\n" + nil * 3


def test_multi_that_adds_then_removes_keeps_waiter_blocked(both):
    def scenario(r):
        a, b = r.conn(), r.conn()
        a.send("BZPOPMIN", "z", "0")
        r.blocked(1)
        out = [b.call("MULTI"), b.call("ZADD", "z", "1", "a"), b.call("ZREM", "z", "a"), b.call("EXEC"),
               blocked_clients(r.ctl)]
        out += [b.call("MULTI"), b.call("ZADD", "z", "1", "a", "2", "b"), b.call("ZPOPMIN", "z"), b.call("EXEC"),
                a.read_reply(), b.call("ZRANGE", "z", "0", "-1")]
        return out

    obs = both(scenario)
    assert obs[4] == 1 and _p(obs[9])[1] == b"b" and _p(obs[10]) == []


def test_key_of_another_type_keeps_waiter_blocked(both):
    def scenario(r):
        a, b = r.conn(), r.conn()
        a.send("BZPOPMIN", "z", "0")
        r.blocked(1)
        out = [b.call("SET", "z", "string"), blocked_clients(r.ctl), b.call("DEL", "z"),
               b.call("ZADD", "z", "1", "a"), a.read_reply(), blocked_clients(r.ctl)]
        return out

    obs = both(scenario)
    assert obs[1] == 1 and _p(obs[4])[1] == b"a"


def test_waiter_on_two_keys_served_from_the_ready_one(both):
    def scenario(r):
        a, b = r.conn(), r.conn()
        a.send("BZPOPMIN", "k1", "k2", "0")
        r.blocked(1)
        out = [b.call("MULTI"), b.call("ZADD", "k2", "1", "two"), b.call("ZADD", "k1", "1", "one"), b.call("EXEC"),
               a.read_reply(), b.call("ZRANGE", "k1", "0", "-1"), b.call("ZRANGE", "k2", "0", "-1")]
        return out

    both(scenario)


def test_waiter_in_another_database(both):
    def scenario(r):
        a, b = r.conn(), r.conn()
        a.call("SELECT", "3")
        a.send("BZPOPMIN", "z", "0")
        r.blocked(1)
        out = [b.call("ZADD", "z", "1", "db0"), blocked_clients(r.ctl), b.call("SELECT", "3"),
               b.call("ZADD", "z", "2", "db3"), a.read_reply(), b.call("SELECT", "0"), b.call("ZCARD", "z")]
        return out

    obs = both(scenario)
    assert obs[1] == 1 and _p(obs[4])[1] == b"db3"


def test_many_waiters_and_many_writers(both):
    def scenario(r):
        waiters = []
        for i in range(6):
            c = r.conn()
            c.send("BZMPOP", "0", "2", "k1", "k2", "MIN" if i % 2 else "MAX", "COUNT", "2")
            r.blocked(i + 1)
            waiters.append(c)
        w = r.conn()
        out = [w.call("ZADD", "k2", "1", "a", "2", "b", "3", "c"), w.call("ZADD", "k1", "5", "x"),
               w.call("ZADD", "k1", *[x for i in range(10) for x in (str(i), f"m{i}")])]
        out += [c.read_reply() for c in waiters]
        out += [w.call("ZRANGE", "k1", "0", "-1"), w.call("ZRANGE", "k2", "0", "-1"), blocked_clients(r.ctl)]
        return out

    obs = both(scenario)
    assert obs[-1] == 0
