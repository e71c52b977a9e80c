"""XREAD BLOCK and XREADGROUP BLOCK with several real clients, Shoal against Redis 7.0.

Each scenario drives a few connections to one server and returns what it
observed (raw replies, in order); it runs against redis-server and against
shoal-server and the observations must be identical. Most scenarios also
assert the outcome they exist for, so both servers doing nothing cannot pass.

No timing assertions: a client is known to be blocked when INFO clients says
so (``wait_blocked``); a server runs commands in order, so once a writer's
reply is back the waiters it woke have been served. Timeouts are short and
only their outcome is checked. Entry IDs are explicit.

The last test is a usecase with redis-py: an event stream consumed by a
consumer group of workers, with a crashed worker's messages reclaimed.
"""

from __future__ import annotations

import threading

import redis

from tests.blocking_helpers import NULLS, blocked_clients, both, protocol, wait_blocked  # noqa: F401
from tests.resp_client import RawClient, parse


def entries(reply):
    """The (key, [ids]) pairs of an XREAD/XREADGROUP reply in either protocol."""
    value = parse(reply)
    pairs = value.items() if isinstance(value, dict) else value
    return [(key, [e[0] for e in items]) for key, items in pairs]


# ---------------------------------------------------------------------- XREAD


def test_xread_block_woken_by_xadd(both):
    def scenario(r):
        a, w = r.conn(), r.conn()
        a.send("XREAD", "BLOCK", "0", "STREAMS", "s", "$")
        wait_blocked(r.ctl, 1)
        added = w.call("XADD", "s", "1-1", "f", "v")
        return [added, a.read_reply(), blocked_clients(r.ctl)]

    obs = both(scenario)
    assert entries(obs[1]) == [(b"s", [b"1-1"])] and obs[2] == 0


def test_dollar_means_the_last_id_at_blocking_time(both):
    def scenario(r):
        a, b, w = r.conn(), r.conn(), r.conn()
        w.call("XADD", "s", "1-1", "f", "v")
        a.send("XREAD", "BLOCK", "0", "STREAMS", "s", "$")
        wait_blocked(r.ctl, 1)
        # Entries that arrive while a waits, then b blocks with a later '$'.
        w.call("MULTI")
        w.call("XADD", "s", "2-1", "f", "v")
        w.call("XADD", "s", "2-2", "f", "v")
        w.call("EXEC")
        got_a = a.read_reply()
        b.send("XREAD", "BLOCK", "0", "STREAMS", "s", "$")
        wait_blocked(r.ctl, 1)
        a.send("XREAD", "BLOCK", "0", "STREAMS", "s", "1-1")  # explicit: served at once
        got_a2 = a.read_reply()
        w.call("XADD", "s", "3-0", "f", "v")
        return [got_a, got_a2, b.read_reply()]

    obs = both(scenario)
    assert entries(obs[0]) == [(b"s", [b"2-1", b"2-2"])]
    assert entries(obs[1]) == [(b"s", [b"2-1", b"2-2", b"3-0"][:2])]
    assert entries(obs[2]) == [(b"s", [b"3-0"])]


def test_xread_block_on_missing_key_and_explicit_id(both):
    def scenario(r):
        a, w = r.conn(), r.conn()
        a.send("XREAD", "BLOCK", "0", "STREAMS", "s", "5-0")
        wait_blocked(r.ctl, 1)
        obs = [w.call("XADD", "s", "4-0", "f", "v")]  # not after 5-0: still blocked
        obs.append(blocked_clients(r.ctl))
        obs.append(w.call("XADD", "s", "6-0", "f", "v"))
        obs.append(a.read_reply())
        return obs

    obs = both(scenario)
    assert obs[1] == 1 and entries(obs[3]) == [(b"s", [b"6-0"])]


def test_xread_several_keys_served_from_the_key_that_got_data(both):
    def scenario(r):
        a, w = r.conn(), r.conn()
        w.call("XADD", "t", "1-0", "f", "v")
        a.send("XREAD", "BLOCK", "0", "STREAMS", "s", "t", "$", "$")
        wait_blocked(r.ctl, 1)
        w.call("XADD", "t", "2-0", "f", "v")
        first = a.read_reply()
        a.send("XREAD", "BLOCK", "0", "STREAMS", "s", "t", "$", "$")
        wait_blocked(r.ctl, 1)
        # Both keys get data in one transaction: served from the first key written.
        w.call("MULTI")
        w.call("XADD", "t", "3-0", "f", "v")
        w.call("XADD", "s", "3-0", "f", "v")
        w.call("EXEC")
        return [first, a.read_reply()]

    obs = both(scenario)
    assert entries(obs[0]) == [(b"t", [b"2-0"])]
    assert entries(obs[1]) == [(b"t", [b"3-0"])]


def test_xread_blocked_count_and_deleted_entries(both):
    def scenario(r):
        a, w = r.conn(), r.conn()
        w.call("XADD", "s", "1-0", "f", "v")
        a.send("XREAD", "COUNT", "2", "BLOCK", "0", "STREAMS", "s", "$")
        wait_blocked(r.ctl, 1)
        w.call("MULTI")
        for i in range(2, 6):
            w.call("XADD", "s", f"{i}-0", "f", "v")
        w.call("EXEC")
        served = a.read_reply()
        # The new entry is deleted before the waiter is served: an empty list.
        a.send("XREAD", "BLOCK", "0", "STREAMS", "s", "$")
        wait_blocked(r.ctl, 1)
        w.call("MULTI")
        w.call("XADD", "s", "9-0", "f", "v")
        w.call("XDEL", "s", "9-0")
        w.call("EXEC")
        return [served, a.read_reply()]

    obs = both(scenario)
    assert entries(obs[0]) == [(b"s", [b"2-0", b"3-0"])]
    assert entries(obs[1]) == [(b"s", [])]


def test_xread_waiter_survives_key_deletion_and_type_change(both):
    def scenario(r):
        a, w = r.conn(), r.conn()
        w.call("XADD", "s", "1-0", "f", "v")
        a.send("XREAD", "BLOCK", "0", "STREAMS", "s", "$")
        wait_blocked(r.ctl, 1)
        obs = [w.call("DEL", "s"), w.call("SET", "s", "x"), blocked_clients(r.ctl), w.call("DEL", "s")]
        obs.append(w.call("XADD", "s", "0-5", "f", "v"))  # a new stream; 0-5 is not after 1-0
        obs.append(blocked_clients(r.ctl))
        obs.append(w.call("XADD", "s", "2-0", "f", "v"))
        obs.append(a.read_reply())
        return obs

    obs = both(scenario)
    assert obs[2] == 1 and obs[5] == 1 and entries(obs[7]) == [(b"s", [b"2-0"])]


def test_xread_timeout(both):
    def scenario(r):
        a = r.conn()
        a.send("XREAD", "BLOCK", "50", "STREAMS", "s", "$")
        reply = a.read_reply()
        a.send("XREADGROUP", "GROUP", "g", "c", "BLOCK", "50", "STREAMS", "s", ">")
        return [reply, a.read_reply(), blocked_clients(r.ctl)]

    obs = both(scenario)
    assert obs[0] in NULLS and obs[1].startswith(b"-NOGROUP") and obs[2] == 0


def test_xreadgroup_timeout_and_in_multi(both):
    def scenario(r):
        a = r.conn()
        a.call("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM")
        a.send("XREADGROUP", "GROUP", "g", "c", "BLOCK", "30", "STREAMS", "s", ">")
        timed_out = a.read_reply()
        info = a.call("XINFO", "GROUPS", "s")
        a.call("MULTI")
        a.call("XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">")
        a.call("XREAD", "BLOCK", "0", "STREAMS", "s", "$")
        return [timed_out, info, a.call("EXEC")]

    obs = both(scenario)
    assert obs[0] in NULLS


# ----------------------------------------------------------------- XREADGROUP


def test_xreadgroup_fairness_between_consumers(both):
    def scenario(r):
        w = r.conn()
        w.call("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM")
        consumers = [r.conn() for _ in range(3)]
        for i, c in enumerate(consumers):
            c.send("XREADGROUP", "GROUP", "g", f"c{i}", "BLOCK", "0", "STREAMS", "s", ">")
            wait_blocked(r.ctl, i + 1)
        obs = [w.call("XINFO", "GROUPS", "s")]  # consumers are created when first served
        for i in range(3):
            obs.append(w.call("XADD", "s", f"{i + 1}-0", "f", "v"))
            obs.append(consumers[i].read_reply())
            obs.append(blocked_clients(r.ctl))
        obs.append(w.call("XPENDING", "s", "g"))
        obs.append(w.call("XINFO", "GROUPS", "s"))
        return obs

    obs = both(scenario)
    got = [entries(obs[2]), entries(obs[5]), entries(obs[8])]
    assert got == [[(b"s", [b"1-0"])], [(b"s", [b"2-0"])], [(b"s", [b"3-0"])]]
    assert [obs[3], obs[6], obs[9]] == [2, 1, 0]


def test_xreadgroup_one_batch_goes_to_the_first_waiter(both):
    def scenario(r):
        w = r.conn()
        w.call("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM")
        a, b = r.conn(), r.conn()
        a.send("XREADGROUP", "GROUP", "g", "a", "COUNT", "2", "BLOCK", "0", "STREAMS", "s", ">")
        wait_blocked(r.ctl, 1)
        b.send("XREADGROUP", "GROUP", "g", "b", "BLOCK", "0", "STREAMS", "s", ">")
        wait_blocked(r.ctl, 2)
        w.call("MULTI")
        for i in range(1, 4):
            w.call("XADD", "s", f"{i}-0", "f", "v")
        w.call("EXEC")
        return [a.read_reply(), b.read_reply(), w.call("XPENDING", "s", "g"), w.call("XINFO", "GROUPS", "s")]

    obs = both(scenario)
    assert entries(obs[0]) == [(b"s", [b"1-0", b"2-0"])] and entries(obs[1]) == [(b"s", [b"3-0"])]


def test_xreadgroup_noack_blocked(both):
    def scenario(r):
        w, a = r.conn(), r.conn()
        w.call("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM")
        a.send("XREADGROUP", "GROUP", "g", "a", "NOACK", "BLOCK", "0", "STREAMS", "s", ">")
        wait_blocked(r.ctl, 1)
        w.call("XADD", "s", "1-0", "f", "v")
        return [a.read_reply(), w.call("XPENDING", "s", "g"), w.call("XINFO", "GROUPS", "s")]

    obs = both(scenario)
    assert entries(obs[0]) == [(b"s", [b"1-0"])] and parse(obs[1])[0] == 0


def test_xreadgroup_waiters_get_errors_when_group_or_key_goes(both):
    def scenario(r):
        w = r.conn()
        obs = []
        kills = (("XGROUP", "DESTROY", "s", "g"), ("DEL", "s"), ("SET", "s", "x"), ("FLUSHALL",), ("FLUSHDB",),
                 ("SWAPDB", "0", "1"), ("RENAME", "s", "t"))
        for kill in kills:
            w.call("DEL", "s")
            w.call("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM")
            a = r.conn()
            a.send("XREADGROUP", "GROUP", "g", "a", "BLOCK", "0", "STREAMS", "s", ">")
            wait_blocked(r.ctl, 1)
            obs.append(w.call(*kill))
            obs.append(a.read_reply())
            obs.append(blocked_clients(r.ctl))
            w.call("FLUSHALL")
        # The key is replaced by a new stream without the group in one transaction.
        w.call("DEL", "s")
        w.call("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM")
        a = r.conn()
        a.send("XREADGROUP", "GROUP", "g", "a", "BLOCK", "0", "STREAMS", "s", ">")
        wait_blocked(r.ctl, 1)
        w.call("MULTI")
        w.call("DEL", "s")
        w.call("XADD", "s", "1-0", "f", "v")
        obs.append(w.call("EXEC"))
        obs.append(a.read_reply())
        return obs

    obs = both(scenario)
    assert obs[1] == b"-NOGROUP the consumer group this client was blocked on no longer exists\r\n"
    assert obs[4] == obs[7] == obs[10] == obs[13] == b"-UNBLOCKED the stream key no longer exists\r\n"
    assert obs[-1].startswith(b"-NOGROUP")


def test_xreadgroup_waiter_after_swapdb(both):
    def scenario(r):
        w, a = r.conn(), r.conn()
        w.call("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM")
        w.call("SELECT", "1")
        w.call("XADD", "s", "1-0", "f", "v")
        w.call("XGROUP", "CREATE", "s", "g", "0")
        a.send("XREADGROUP", "GROUP", "g", "a", "BLOCK", "0", "STREAMS", "s", ">")
        wait_blocked(r.ctl, 1)
        obs = [w.call("SWAPDB", "0", "1"), a.read_reply()]
        a.send("XREAD", "BLOCK", "0", "STREAMS", "s", "$")
        wait_blocked(r.ctl, 1)
        obs += [w.call("SWAPDB", "0", "1"), blocked_clients(r.ctl), w.call("SELECT", "0")]
        obs += [w.call("XADD", "s", "7-0", "f", "v"), a.read_reply()]
        return obs

    obs = both(scenario)
    assert entries(obs[1]) == [(b"s", [b"1-0"])] and obs[3] == 1 and entries(obs[6]) == [(b"s", [b"7-0"])]


def test_xreadgroup_setid_does_not_wake_but_moves_the_start(both):
    def scenario(r):
        w, a = r.conn(), r.conn()
        w.call("XADD", "s", "1-0", "f", "v")
        w.call("XGROUP", "CREATE", "s", "g", "$")
        a.send("XREADGROUP", "GROUP", "g", "a", "BLOCK", "0", "STREAMS", "s", ">")
        wait_blocked(r.ctl, 1)
        obs = [w.call("XGROUP", "SETID", "s", "g", "0"), blocked_clients(r.ctl)]
        obs.append(w.call("XADD", "s", "2-0", "f", "v"))
        obs.append(a.read_reply())
        obs.append(w.call("XINFO", "GROUPS", "s"))
        return obs

    obs = both(scenario)
    assert obs[1] == 1 and entries(obs[3]) == [(b"s", [b"1-0", b"2-0"])]


def test_xreadgroup_blocked_on_two_streams(both):
    def scenario(r):
        w, a = r.conn(), r.conn()
        for key in ("s", "t"):
            w.call("XGROUP", "CREATE", key, "g", "$", "MKSTREAM")
        a.send("XREADGROUP", "GROUP", "g", "a", "BLOCK", "0", "STREAMS", "s", "t", ">", ">")
        wait_blocked(r.ctl, 1)
        w.call("XADD", "t", "1-0", "f", "v")
        return [a.read_reply(), w.call("XPENDING", "t", "g"), w.call("XPENDING", "s", "g")]

    obs = both(scenario)
    assert entries(obs[0]) == [(b"t", [b"1-0"])]


def test_blocked_xread_with_timeout_served_in_time(both):
    def scenario(r):
        w, a, b = r.conn(), r.conn(), r.conn()
        a.send("XREAD", "BLOCK", "100000", "STREAMS", "s", "0")
        b.send("XREAD", "BLOCK", "100000", "STREAMS", "s", "0")
        wait_blocked(r.ctl, 2)
        w.call("XADD", "s", "1-0", "f", "v")
        return [a.read_reply(), b.read_reply(), blocked_clients(r.ctl)]

    obs = both(scenario)
    assert entries(obs[0]) == entries(obs[1]) == [(b"s", [b"1-0"])]


# ------------------------------------------------------------------ usecase


def test_event_stream_with_a_consumer_group(shoal_proc):
    """Orders flow through a stream; three workers share them; a crashed worker's are reclaimed."""
    r = redis.Redis(port=shoal_proc.port, decode_responses=True)
    r.flushall()
    r.xgroup_create("orders", "billing", id="$", mkstream=True)
    done: dict[str, list[str]] = {}
    lock = threading.Lock()
    produced = threading.Event()

    def worker(name: str, crash_after: int | None) -> None:
        conn = redis.Redis(port=shoal_proc.port, decode_responses=True)
        handled = 0
        while True:
            reply = conn.xreadgroup("billing", name, {"orders": ">"}, count=2, block=300)
            if not reply:
                if produced.is_set():
                    return
                continue
            for _stream, messages in reply:
                for msg_id, fields in messages:
                    if crash_after is not None and handled >= crash_after:
                        return  # dies with this batch's messages pending
                    with lock:
                        done.setdefault(name, []).append(fields["order"])
                    conn.xack("orders", "billing", msg_id)
                    handled += 1

    threads = [threading.Thread(target=worker, args=(f"w{i}", 3 if i == 0 else None)) for i in range(3)]
    for t in threads:
        t.start()
    with RawClient(shoal_proc.port) as ctl:
        wait_blocked(ctl, 3)
    for i in range(60):
        r.xadd("orders", {"order": str(i)})
    produced.set()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads)

    # Whatever the crashed worker left pending is reclaimed by a rescuer, a few at a time.
    left = r.xpending("orders", "billing")
    assert {c["name"] for c in left["consumers"]} <= {"w0"}
    rescued = []
    cursor = "0-0"
    while True:
        cursor, claimed, deleted = r.xautoclaim("orders", "billing", "rescuer", 0, cursor, count=1)
        for msg_id, fields in claimed:
            rescued.append(fields["order"])
            r.xack("orders", "billing", msg_id)
        assert deleted == []
        if cursor == "0-0":
            break
    assert len(rescued) == left["pending"]
    handled = [int(o) for orders in done.values() for o in orders] + [int(o) for o in rescued]
    assert sorted(handled) == list(range(60)), (done, rescued)
    assert len(done.get("w0", [])) == 3
    assert r.xpending("orders", "billing")["pending"] == 0
    info = r.xinfo_groups("orders")[0]
    assert info["pending"] == 0 and info["last-delivered-id"] == r.xinfo_stream("orders")["last-generated-id"]
    assert info["lag"] == 0 and info["entries-read"] == 60
    consumers = {c["name"]: c["pending"] for c in r.xinfo_consumers("orders", "billing")}
    assert consumers["rescuer"] == 0 and set(consumers) >= {"w0", "w1", "w2"}
    # Auto-generated IDs are increasing.
    ids = [tuple(map(int, m[0].split("-"))) for m in r.xrange("orders")]
    assert ids == sorted(ids) and len(ids) == 60
