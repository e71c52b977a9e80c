"""Blocking list commands with several real clients, Shoal against Redis 7.0.

Each scenario is a function that drives a few connections to one server and
returns what it observed (raw replies, in order). It runs once against
redis-server and once against shoal-server, and the two observation lists
must be identical; most scenarios also assert the outcome they exist for, so
a test cannot pass by both servers doing nothing.

No timing assertions: a client is known to be blocked when INFO clients says
so (``wait_blocked``), and a server runs commands in order, so once a pusher's
reply is back the waiters it woke have been served. Timeouts are small (0.1 s)
and only their outcome is checked.
"""

from __future__ import annotations

import threading
import time

import pytest
import redis

from tests.blocking_helpers import NIL2, NIL3, blocked_clients, both, protocol, wait_blocked  # noqa: F401
from tests.resp_client import encode_command, parse


def _p(raw):
    return parse(raw)


# ----------------------------------------------------------------- wake-ups


def test_blpop_woken_by_lpush(both):
    def scenario(r):
        a, b = r.conn(), r.conn()
        a.send("BLPOP", "list", "0")
        wait_blocked(r.ctl, 1)
        pushed = b.call("LPUSH", "list", "x")
        return [pushed, a.read_reply(), b.call("EXISTS", "list"), blocked_clients(r.ctl)]

    obs = both(scenario)
    assert _p(obs[1]) == [b"list", b"x"] and obs[3] == 0


@pytest.mark.parametrize("argv,push", [
    (("BRPOP", "a", "b", "0"), ("RPUSH", "b", "1", "2")),
    (("BLMPOP", "0", "2", "a", "b", "LEFT", "COUNT", "2"), ("RPUSH", "b", "1", "2", "3")),
    (("BLMPOP", "0", "1", "b", "RIGHT"), ("RPUSH", "b", "1", "2", "3")),
    (("BLMPOP", "0", "1", "b", "RIGHT", "COUNT", "10"), ("LPUSH", "b", "1", "2", "3")),
    (("BLMOVE", "b", "dst", "RIGHT", "LEFT", "0"), ("RPUSH", "b", "1", "2")),
    (("BRPOPLPUSH", "b", "dst", "0"), ("RPUSH", "b", "1")),
    (("BRPOPLPUSH", "b", "b", "0"), ("RPUSH", "b", "1")),
    (("BLMOVE", "b", "b", "LEFT", "RIGHT", "0"), ("RPUSH", "b", "1", "2")),
])
def test_each_blocking_command_woken(both, argv, push):
    def scenario(r):
        a, b = r.conn(), r.conn()
        a.send(*argv)
        wait_blocked(r.ctl, 1)
        return [b.call(*push), a.read_reply(), b.call("LRANGE", "b", "0", "-1"), b.call("LRANGE", "dst", "0", "-1")]

    obs = both(scenario)
    assert _p(obs[1]) is not None


def test_fifo_among_waiters(both):
    def scenario(r):
        a, b, c, d = r.conn(), r.conn(), r.conn(), r.conn()
        for n, conn in enumerate((a, b, c), 1):
            conn.send("BLPOP", "k", "0")
            wait_blocked(r.ctl, n)
        obs = [d.call("RPUSH", "k", "1", "2"), a.read_reply(), b.read_reply(), blocked_clients(r.ctl)]
        obs += [d.call("RPUSH", "k", "3", "4"), c.read_reply(), d.call("LRANGE", "k", "0", "-1")]
        return obs

    obs = both(scenario)
    assert [_p(obs[i])[1] for i in (1, 2, 5)] == [b"1", b"2", b"3"] and obs[3] == 1


def test_fifo_across_commands_and_ends(both):
    def scenario(r):
        a, b, c, d = r.conn(), r.conn(), r.conn(), r.conn()
        a.send("BRPOP", "k", "0")
        wait_blocked(r.ctl, 1)
        b.send("BLMPOP", "0", "1", "k", "LEFT", "COUNT", "2")
        wait_blocked(r.ctl, 2)
        c.send("BLPOP", "k", "0")
        wait_blocked(r.ctl, 3)
        return [d.call("LPUSH", "k", "1", "2", "3", "4"), a.read_reply(), b.read_reply(), c.read_reply(),
                d.call("EXISTS", "k")]

    both(scenario)


def test_push_to_other_keys_leaves_waiter_blocked_then_wakes(both):
    def scenario(r):
        a, b = r.conn(), r.conn()
        a.send("BLPOP", "k", "0")
        wait_blocked(r.ctl, 1)
        obs = [b.call("RPUSH", "other", "x"), b.call("SET", "k2", "v"), b.call("LPUSH", "k3", "y"),
               b.call("DEL", "k"), blocked_clients(r.ctl)]
        obs += [b.call("RPUSH", "k", "z"), a.read_reply()]
        return obs

    obs = both(scenario)
    assert obs[4] == 1 and _p(obs[6]) == [b"k", b"z"]


def test_served_from_the_key_that_became_ready(both):
    """Redis 7.0 serves a waiter from the ready key, in the order keys became ready."""

    def scenario(r):
        a, b = r.conn(), r.conn()
        a.send("BLPOP", "a", "b", "0")
        wait_blocked(r.ctl, 1)
        obs = [b.call("MULTI"), b.call("RPUSH", "b", "from-b"), b.call("RPUSH", "a", "from-a"), b.call("EXEC")]
        obs.append(a.read_reply())
        a.send("BRPOP", "x", "y", "0")
        wait_blocked(r.ctl, 1)
        obs += [b.call("MSET", "z", "1"), b.call("RPUSH", "y", "1"), a.read_reply()]
        return obs

    obs = both(scenario)
    assert _p(obs[4]) == [b"b", b"from-b"]


def test_waiter_ignores_key_that_became_another_type(both):
    def scenario(r):
        a, b = r.conn(), r.conn()
        a.send("BLPOP", "k", "0")
        wait_blocked(r.ctl, 1)
        obs = [b.call("SET", "k", "string"), blocked_clients(r.ctl), b.call("APPEND", "k", "!"),
               blocked_clients(r.ctl), b.call("DEL", "k"), b.call("RPUSH", "k", "v"), a.read_reply()]
        return obs

    obs = both(scenario)
    assert obs[1] == obs[3] == 1


def test_blocked_on_several_keys_one_becomes_string(both):
    def scenario(r):
        a, b = r.conn(), r.conn()
        a.send("BLPOP", "k1", "k2", "0")
        wait_blocked(r.ctl, 1)
        return [b.call("SET", "k1", "v"), b.call("RPUSH", "k2", "x"), a.read_reply(), b.call("GET", "k1")]

    obs = both(scenario)
    assert _p(obs[2]) == [b"k2", b"x"]


def test_blmove_destination_of_wrong_type_when_served(both):
    def scenario(r):
        a, b = r.conn(), r.conn()
        a.send("BLMOVE", "src", "dst", "LEFT", "LEFT", "0")
        wait_blocked(r.ctl, 1)
        return [b.call("SET", "dst", "v"), b.call("RPUSH", "src", "x"), a.read_reply(),
                b.call("LRANGE", "src", "0", "-1"), blocked_clients(r.ctl)]

    obs = both(scenario)
    assert obs[2].startswith(b"-WRONGTYPE")


def test_blmove_chain(both):
    def scenario(r):
        a, b, c = r.conn(), r.conn(), r.conn()
        a.send("BLMOVE", "list1", "list2", "RIGHT", "LEFT", "0")
        wait_blocked(r.ctl, 1)
        c.send("BLPOP", "list2", "0")
        wait_blocked(r.ctl, 2)
        return [b.call("RPUSH", "list1", "x"), a.read_reply(), c.read_reply(), b.call("EXISTS", "list1", "list2"),
                blocked_clients(r.ctl)]

    obs = both(scenario)
    assert _p(obs[1]) == b"x" and _p(obs[2]) == [b"list2", b"x"] and _p(obs[3]) == 0


def test_brpoplpush_ring_of_waiters(both):
    def scenario(r):
        a, b, c, d = r.conn(), r.conn(), r.conn(), r.conn()
        a.send("BRPOPLPUSH", "l1", "l2", "0")
        wait_blocked(r.ctl, 1)
        b.send("BRPOPLPUSH", "l2", "l3", "0")
        wait_blocked(r.ctl, 2)
        c.send("BLMPOP", "0", "2", "l1", "l3", "LEFT")
        wait_blocked(r.ctl, 3)
        return [d.call("LPUSH", "l1", "v"), a.read_reply(), b.read_reply(), c.read_reply(),
                d.call("KEYS", "l*"), blocked_clients(r.ctl)]

    obs = both(scenario)
    assert _p(obs[3]) == [b"l3", [b"v"]]


def test_one_push_wakes_waiters_in_order_until_empty(both):
    def scenario(r):
        a, b, c = r.conn(), r.conn(), r.conn()
        a.send("BLMPOP", "0", "1", "k", "RIGHT", "COUNT", "5")
        wait_blocked(r.ctl, 1)
        b.send("BLPOP", "k", "0")
        wait_blocked(r.ctl, 2)
        return [c.call("RPUSH", "k", "1", "2", "3"), a.read_reply(), blocked_clients(r.ctl), c.call("RPUSH", "k", "4"),
                b.read_reply()]

    obs = both(scenario)
    assert obs[2] == 1


# ----------------------------------------------------------------- timeouts


@pytest.mark.parametrize("argv", [
    ("BLPOP", "k", "0.1"), ("BRPOP", "k", "k2", "0.1"), ("BLMOVE", "k", "d", "LEFT", "RIGHT", "0.1"),
    ("BRPOPLPUSH", "k", "d", "0.1"), ("BLMPOP", "0.1", "2", "k", "k2", "LEFT", "COUNT", "2"),
])
def test_timeout_replies(both, protocol, argv):
    def scenario(r):
        a = r.conn()
        return [a.call(*argv), a.call("PING"), blocked_clients(r.ctl), a.call("EXISTS", "k", "d")]

    obs = both(scenario)
    assert obs[0] == (NIL2 if protocol == 2 else NIL3)


def test_timeout_of_one_waiter_leaves_others(both):
    def scenario(r):
        a, b, c = r.conn(), r.conn(), r.conn()
        b.send("BLPOP", "k", "0")
        wait_blocked(r.ctl, 1)
        obs = [a.call("BLPOP", "k", "0.1"), blocked_clients(r.ctl), c.call("RPUSH", "k", "x"), b.read_reply()]
        return obs

    obs = both(scenario)
    assert obs[1] == 1


def test_timeout_zero_waits_forever(both):
    def scenario(r):
        a, b = r.conn(), r.conn()
        a.send("BLPOP", "k", "0")
        wait_blocked(r.ctl, 1)
        obs = [b.call("RPUSH", "x", "1"), b.call("LPUSH", "y", "1"), b.call("RPOPLPUSH", "x", "z")]
        time.sleep(0.2)  # longer than any timeout used here: a zero timeout must not fire
        obs += [blocked_clients(r.ctl), b.call("RPUSH", "k", "v"), a.read_reply()]
        return obs

    obs = both(scenario)
    assert obs[3] == 1


def test_negative_zero_and_tiny_negative_timeouts_block_forever(both):
    # Redis rounds the timeout up (ceill): -0.0005 s is 0 ms, i.e. forever.
    def scenario(r):
        a, b = r.conn(), r.conn()
        a.send("BLPOP", "k", "-0.0005")
        wait_blocked(r.ctl, 1)
        b.send("BRPOP", "k", "-0")
        wait_blocked(r.ctl, 2)
        c = r.conn()
        return [c.call("RPUSH", "k", "1", "2"), a.read_reply(), b.read_reply()]

    both(scenario)


def test_timeout_errors(both):
    def scenario(r):
        a = r.conn()
        obs = []
        for timeout in ("-1", "-0.002", "abc", "inf", "nan", "1e400", "1e5000", " 1", ""):
            obs += [a.call("BLPOP", "k", timeout), a.call("BLMOVE", "k", "d", "LEFT", "LEFT", timeout),
                    a.call("BLMPOP", timeout, "1", "k", "LEFT"), a.call("BRPOPLPUSH", "k", "d", timeout)]
        return obs

    obs = both(scenario)
    assert b"-ERR timeout is negative\r\n" in obs and b"-ERR timeout is not a float or out of range\r\n" in obs


# -------------------------------------------------------------- transactions


def test_push_inside_multi_wakes_after_exec(both):
    def scenario(r):
        a, b = r.conn(), r.conn()
        a.send("BLPOP", "k", "0")
        wait_blocked(r.ctl, 1)
        obs = [b.call("MULTI"), b.call("RPUSH", "k", "a"), blocked_clients(r.ctl), b.call("RPUSH", "k", "b"),
               b.call("EXEC"), a.read_reply(), b.call("LRANGE", "k", "0", "-1")]
        return obs

    obs = both(scenario)
    assert obs[2] == 1 and _p(obs[5]) == [b"k", b"a"]


def test_push_and_pop_inside_multi_leaves_waiter_blocked(both):
    def scenario(r):
        a, b = r.conn(), r.conn()
        a.send("BLPOP", "k", "0")
        wait_blocked(r.ctl, 1)
        obs = [b.call("MULTI"), b.call("LPUSH", "k", "x"), b.call("LPOP", "k"), b.call("EXEC"),
               blocked_clients(r.ctl), b.call("LPUSH", "k", "y"), a.read_reply()]
        return obs

    obs = both(scenario)
    assert obs[4] == 1


def test_blocking_command_inside_multi_returns_at_once(both):
    def scenario(r):
        a = r.conn()
        return [a.call("MULTI"), a.call("BLPOP", "k", "0"), a.call("BLMOVE", "k", "d", "LEFT", "LEFT", "0"),
                a.call("BRPOPLPUSH", "k", "d", "0"), a.call("BLMPOP", "0", "1", "k", "LEFT"), a.call("BRPOP", "k", "0"),
                a.call("RPUSH", "k", "v"), a.call("BLPOP", "k", "0"), a.call("EXEC"), blocked_clients(r.ctl)]

    obs = both(scenario)
    assert obs[-1] == 0 and _p(obs[-2])[0] is None


def test_blocking_command_from_lua_returns_at_once(both):
    # BLPOP/BRPOP/BLMOVE/BRPOPLPUSH are noscript; BLMPOP may run in a script and must not block there.

    def scenario(r):
        a = r.conn()
        return [a.call("EVAL", "return redis.call('BLMPOP', 0, 1, 'k', 'LEFT')", "0"),
                a.call("EVAL", "return redis.pcall('BLPOP', 'k', 0)", "0"),
                a.call("RPUSH", "k", "v"),
                a.call("EVAL", "return redis.call('BLMPOP', 0, 1, 'k', 'LEFT')", "0"), blocked_clients(r.ctl)]

    both(scenario)


# ----------------------------------------------------- disconnects, pipelines


def test_disconnect_while_blocked_leaves_no_trace(both):
    def scenario(r):
        a, b, c = r.conn(), r.conn(), r.conn()
        a.send("BLPOP", "k", "0")
        wait_blocked(r.ctl, 1)
        b.send("BLPOP", "k", "0")
        wait_blocked(r.ctl, 2)
        a.close()
        wait_blocked(r.ctl, 1)
        return [c.call("RPUSH", "k", "x"), b.read_reply(), c.call("EXISTS", "k"), blocked_clients(r.ctl)]

    obs = both(scenario)
    assert _p(obs[1]) == [b"k", b"x"] and _p(obs[2]) == 0


def test_disconnect_of_blmove_waiter(both):
    def scenario(r):
        a, c = r.conn(), r.conn()
        a.send("BLMOVE", "k", "d", "LEFT", "LEFT", "0")
        wait_blocked(r.ctl, 1)
        a.close()
        wait_blocked(r.ctl, 0)
        return [c.call("RPUSH", "k", "x"), c.call("LRANGE", "k", "0", "-1"), c.call("EXISTS", "d")]

    both(scenario)


def test_pipeline_after_blpop_runs_after_it_is_served(both):
    def scenario(r):
        a, b = r.conn(), r.conn()
        a.send_raw(b"".join(encode_command(*c) for c in (
            ("BLPOP", "k", "0"), ("RPUSH", "k2", "z"), ("LLEN", "k2"), ("BLPOP", "k", "0"), ("PING",))))
        wait_blocked(r.ctl, 1)
        obs = [b.call("LLEN", "k2"), b.call("RPUSH", "k", "x")]
        obs += [a.read_reply(), a.read_reply(), a.read_reply()]
        wait_blocked(r.ctl, 1)  # the second BLPOP of the pipeline
        obs += [b.call("LLEN", "k2"), b.call("RPUSH", "k", "y"), a.read_reply(), a.read_reply()]
        return obs

    obs = both(scenario)
    assert _p(obs[0]) == 0 and _p(obs[2]) == [b"k", b"x"] and _p(obs[5]) == 1 and _p(obs[7]) == [b"k", b"y"]


def test_waiters_in_different_databases(both):
    def scenario(r):
        a, b = r.conn(), r.conn()
        a.call("SELECT", "5")
        a.send("BLPOP", "k", "0")
        wait_blocked(r.ctl, 1)
        obs = [b.call("RPUSH", "k", "db0"), blocked_clients(r.ctl), b.call("SELECT", "5"), b.call("RPUSH", "k", "db5"),
               a.read_reply(), b.call("SELECT", "0"), b.call("LRANGE", "k", "0", "-1")]
        return obs

    obs = both(scenario)
    assert _p(obs[4]) == [b"k", b"db5"]


def test_served_by_rename_and_copy(both):
    def scenario(r):
        a, b = r.conn(), r.conn()
        a.send("BLPOP", "k", "0")
        wait_blocked(r.ctl, 1)
        obs = [b.call("RPUSH", "tmp", "1", "2"), b.call("RENAME", "tmp", "k"), a.read_reply()]
        a.send("BRPOP", "k2", "0")
        wait_blocked(r.ctl, 1)
        obs += [b.call("COPY", "k", "k2"), a.read_reply(), b.call("LRANGE", "k", "0", "-1")]
        return obs

    both(scenario)


def test_client_unblock(both):
    def scenario(r):
        a, b = r.conn(), r.conn()
        aid = _p(a.call("CLIENT", "ID"))
        obs = []
        for argv in (("BLPOP", "k", "0"), ("BLMOVE", "k", "d", "LEFT", "LEFT", "0"), ("BLMPOP", "0", "1", "k", "LEFT")):
            a.send(*argv)
            wait_blocked(r.ctl, 1)
            obs += [b.call("CLIENT", "UNBLOCK", str(aid)), a.read_reply()]
        a.send("BRPOPLPUSH", "k", "d", "0")
        wait_blocked(r.ctl, 1)
        obs += [b.call("CLIENT", "UNBLOCK", str(aid), "ERROR"), a.read_reply(), a.call("PING")]
        return obs

    both(scenario)


def test_a_blocked_command_counts_as_one_call(both):
    def scenario(r):
        a, b = r.conn(), r.conn()
        r.ctl.call("CONFIG", "RESETSTAT")
        a.send("BLPOP", "k", "0")
        wait_blocked(r.ctl, 1)
        obs = [b.call("SET", "k", "v"), b.call("DEL", "k"), b.call("RPUSH", "k", "x"), a.read_reply(),
               a.call("BLMOVE", "k2", "d", "LEFT", "LEFT", "0.01"), a.call("BLPOP", "k2", "0.01")]
        stats = parse(b.call("INFO", "commandstats")).decode()
        counts = []
        for line in stats.split("\r\n"):
            if line.startswith(("cmdstat_blpop:", "cmdstat_blmove:")):
                fields = dict(f.split("=") for f in line.split(":", 1)[1].split(","))
                counts.append((line.split(":")[0], fields["calls"], fields["failed_calls"], fields["rejected_calls"]))
        return obs + sorted(counts)  # INFO lists commands in hash-table order

    obs = both(scenario)
    assert ("cmdstat_blpop", "2", "0", "0") in obs


def test_keyspace_events_of_served_waiters(both):
    def scenario(r):
        sub, a, b, c = r.conn(), r.conn(), r.conn(), r.conn()
        r.ctl.call("CONFIG", "SET", "notify-keyspace-events", "KEA")
        try:
            sub.call("PSUBSCRIBE", "__keyevent@*")
            a.send("BLMOVE", "src", "dst", "RIGHT", "LEFT", "0")
            wait_blocked(r.ctl, 1)
            b.send("BLMPOP", "0", "1", "dst", "LEFT", "COUNT", "3")
            wait_blocked(r.ctl, 2)
            c.call("RPUSH", "src", "1", "2")
            a.read_reply()
            b.read_reply()
            c.call("SET", "end", "x")
            events = []
            while not events or events[-1] != [b"__keyevent@0__:set", b"end"]:
                events.append(_p(sub.read_reply())[2:])
            return events
        finally:
            r.ctl.call("CONFIG", "SET", "notify-keyspace-events", "")

    obs = both(scenario)
    assert [b"__keyevent@0__:lpush", b"dst"] in obs and [b"__keyevent@0__:del", b"dst"] in obs


# ------------------------------------------------------- redis-py, threads


def test_many_threads_each_get_one_element(shoal_proc, shoal):
    n = 8
    results: list = [None] * n
    ready = threading.Barrier(n + 1)

    def worker(i):
        r = redis.Redis(port=shoal_proc.port)
        ready.wait()
        results[i] = r.blpop(["jobs"], timeout=0)
        r.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    ready.wait()
    wait_blocked(shoal, n)
    main = redis.Redis(port=shoal_proc.port)
    for i in range(n):
        main.rpush("jobs", f"job{i}")
    for t in threads:
        t.join(10)
    assert sorted(v for _, v in results) == sorted(f"job{i}".encode() for i in range(n))
    assert main.exists("jobs") == 0
    main.close()


def test_redis_py_blmove_and_timeouts(shoal_proc, shoal):
    r = redis.Redis(port=shoal_proc.port)
    assert r.blpop(["nothing"], timeout=0.1) is None
    assert r.blmove("nothing", "dst", 0.1, "LEFT", "RIGHT") is None
    assert r.blmpop(0.1, 1, "nothing", direction="LEFT") is None
    out = {}

    def waiter():
        out["v"] = redis.Redis(port=shoal_proc.port).blmove("src", "dst", 0, "LEFT", "RIGHT")

    t = threading.Thread(target=waiter)
    t.start()
    wait_blocked(shoal, 1)
    r.rpush("src", "a", "b")
    t.join(10)
    assert out["v"] == b"a" and r.lrange("dst", 0, -1) == [b"a"] and r.lrange("src", 0, -1) == [b"b"]
    r.close()
