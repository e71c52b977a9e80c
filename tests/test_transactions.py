"""MULTI/EXEC/DISCARD/WATCH/UNWATCH against real Redis, including the two-client WATCH races."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.resp_client import RawClient


@pytest.fixture
def others(differ, redis_proc, shoal_proc):
    """A second connection to each server: (redis, shoal)."""
    r = RawClient(redis_proc.port)
    s = RawClient(shoal_proc.port)
    yield r, s
    r.close()
    s.close()


def on_both_others(others, *argv):
    r, s = others
    return r.call(*argv), s.call(*argv)


def test_exec_runs_queue_and_returns_every_reply(differ):
    differ.check("MULTI")
    differ.check("SET", "a", "1")
    differ.check("INCR", "a")
    differ.check("INCRBY", "a", "notanumber")  # runtime error inside EXEC does not stop the rest
    differ.check("GET", "a")
    differ.check("APPEND", "a", "x")
    differ.check("EXEC")
    differ.check("GET", "a")


def test_empty_transaction(differ):
    differ.check("MULTI")
    differ.check("EXEC")


@pytest.mark.parametrize(
    "bad",
    [("NOSUCHCOMMAND", "x"), ("GET",), ("SET", "k"), ("CONFIG", "NOSUCHSUB"), ("SHUTDOWN",)],
)
def test_queue_time_errors_abort_exec(differ, bad):
    differ.check("MULTI")
    differ.check("SET", "a", "1")
    differ.check(*bad)
    differ.check("SET", "b", "2")
    differ.check("EXEC")
    differ.check("EXISTS", "a", "b")


def test_control_errors(differ):
    differ.check("EXEC")
    differ.check("DISCARD")
    differ.check("MULTI")
    differ.check("MULTI")  # nested: an error, but the transaction goes on
    differ.check("WATCH", "x")  # not allowed inside MULTI, does not abort either
    differ.check("SET", "x", "1")
    differ.check("EXEC")
    differ.check("GET", "x")


def test_discard_drops_queue_and_watches(differ, others):
    differ.check("SET", "w", "0")
    differ.check("WATCH", "w")
    differ.check("MULTI")
    differ.check("SET", "a", "1")
    differ.check("DISCARD")
    differ.check("EXISTS", "a")
    on_both_others(others, "SET", "w", "changed")
    differ.check("MULTI")
    differ.check("SET", "a", "2")
    differ.check("EXEC")  # DISCARD forgot the WATCH, so this runs
    differ.check("GET", "a")


def test_watch_invalidated_by_other_client_write(differ, others):
    differ.check("SET", "w", "0")
    differ.check("WATCH", "w")
    assert on_both_others(others, "INCR", "w")[0] == b":1\r\n"
    differ.check("MULTI")
    differ.check("SET", "w", "mine")
    differ.check("EXEC")  # null: the watched key changed
    differ.check("GET", "w")
    # The failed EXEC unwatched everything: a new transaction runs.
    differ.check("MULTI")
    differ.check("SET", "w", "mine")
    differ.check("EXEC")


def test_watch_of_missing_key_invalidated_by_creation(differ, others):
    differ.check("WATCH", "nothing")
    on_both_others(others, "SET", "nothing", "now")
    differ.check("MULTI")
    differ.check("PING")
    differ.check("EXEC")


def test_own_writes_before_multi_invalidate(differ):
    differ.check("WATCH", "k")
    differ.check("SET", "k", "1")
    differ.check("MULTI")
    differ.check("GET", "k")
    differ.check("EXEC")


def test_unwatch_and_multiple_keys(differ, others):
    differ.check("WATCH", "a", "b", "c")
    differ.check("UNWATCH")
    on_both_others(others, "SET", "b", "1")
    differ.check("MULTI")
    differ.check("GET", "b")
    differ.check("EXEC")
    differ.check("WATCH", "a", "b", "c")
    on_both_others(others, "DEL", "b")
    differ.check("MULTI")
    differ.check("GET", "b")
    differ.check("EXEC")


def test_watch_other_database(differ, others):
    differ.check("SELECT", "2")
    differ.check("WATCH", "k")
    on_both_others(others, "SET", "k", "db0 write")  # a different database: no effect
    differ.check("MULTI")
    differ.check("SET", "k", "x")
    differ.check("EXEC")
    differ.check("WATCH", "k")
    on_both_others(others, "SELECT", "2")
    on_both_others(others, "SET", "k", "db2 write")
    differ.check("MULTI")
    differ.check("SET", "k", "y")
    differ.check("EXEC")
    differ.check("GET", "k")
    differ.check("FLUSHALL")


def test_flushall_invalidates_only_existing_watched_keys(differ, others):
    differ.check("WATCH", "missing")
    on_both_others(others, "FLUSHALL")
    differ.check("MULTI")
    differ.check("PING")
    differ.check("EXEC")  # runs: the watched key did not exist
    differ.check("SET", "present", "1")
    differ.check("WATCH", "present")
    on_both_others(others, "FLUSHDB")
    differ.check("MULTI")
    differ.check("PING")
    differ.check("EXEC")  # null: the flush deleted it


def test_swapdb_invalidates(differ, others):
    differ.check("SELECT", "1")
    differ.check("SET", "k", "in db1")
    differ.check("SELECT", "0")
    differ.check("WATCH", "k")
    on_both_others(others, "SWAPDB", "0", "1")
    differ.check("MULTI")
    differ.check("GET", "k")
    differ.check("EXEC")
    differ.check("FLUSHALL")


def test_watched_key_expiring_fails_exec(differ):
    differ.check("SET", "k", "v", "PX", "30")
    differ.check("WATCH", "k")
    time.sleep(0.08)
    differ.check("MULTI")
    differ.check("PING")
    differ.check("EXEC")


def test_watched_key_expire_command_invalidates(differ, others):
    differ.check("SET", "k", "v")
    differ.check("WATCH", "k")
    on_both_others(others, "EXPIRE", "k", "100")
    differ.check("MULTI")
    differ.check("TTL", "k")
    differ.check("EXEC")


def test_reset_leaves_transaction(differ):
    differ.check("MULTI")
    differ.check("SET", "a", "1")
    differ.check("RESET")
    differ.check("EXEC")
    differ.check("EXISTS", "a")


def test_select_inside_transaction(differ):
    differ.check("MULTI")
    differ.check("SELECT", "3")
    differ.check("SET", "in3", "x")
    differ.check("SELECT", "99")
    differ.check("EXEC")
    differ.check("GET", "in3")
    differ.check("SELECT", "0")
    differ.check("FLUSHALL")


def test_resp3_transaction(differ3):
    differ3.check("MULTI")
    differ3.check("SET", "a", "1.5")
    differ3.check("INCRBYFLOAT", "a", "1")
    differ3.check("GET", "nothing")
    differ3.check("ECHO", "inside")
    differ3.check("EXEC")
    differ3.check("WATCH", "a")
    differ3.check("SET", "a", "2")
    differ3.check("MULTI")
    differ3.check("EXEC")


def test_pipelined_transaction_in_one_write(differ):
    """The whole MULTI ... EXEC pipeline in one packet gives the same byte stream."""
    commands = [("MULTI",), ("SET", "p", "1"), ("INCR", "p"), ("EXEC",), ("GET", "p")]
    assert differ.redis.pipeline(commands) == differ.shoal.pipeline(commands)


def test_client_reply_skip_before_multi(differ):
    """CLIENT REPLY SKIP swallows MULTI's reply; the queue and EXEC answer normally."""
    from tests.resp_client import encode_command

    commands = [("CLIENT", "REPLY", "SKIP"), ("MULTI",), ("SET", "a", "1"), ("EXEC",), ("GET", "a")]
    replies = []
    for conn in (differ.redis, differ.shoal):
        conn.send_raw(b"".join(encode_command(*c) for c in commands))
        replies.append([conn.read_reply() for _ in range(3)])
    assert replies[0] == replies[1]


def test_commandstats_count_executed_commands(shoal):
    shoal.call("CONFIG", "RESETSTAT")
    for cmd in (("MULTI",), ("SET", "a", "1"), ("SET", "b", "2"), ("EXEC",)):
        shoal.call(*cmd)
    info = shoal.call("INFO", "commandstats").decode()
    assert "cmdstat_set:calls=2," in info
    assert "cmdstat_exec:calls=1," in info
    assert "cmdstat_multi:calls=1," in info


_COMMANDS = st.sampled_from(
    [
        ("MULTI",), ("EXEC",), ("DISCARD",), ("WATCH", "a"), ("WATCH", "b", "c"), ("UNWATCH",),
        ("SET", "a", "1"), ("INCR", "a"), ("GET", "b"), ("DEL", "a", "b"), ("SET", "b", "x"),
        ("APPEND", "c", "y"), ("INCR", "c"), ("GET",), ("NOPE",), ("SELECT", "1"), ("SELECT", "0"),
    ]
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.booleans(), _COMMANDS), min_size=1, max_size=25))
def test_random_transaction_sequences(differ, others, steps):
    """Random interleavings of a transaction client and a second writer give Redis's replies."""
    differ.check("RESET")
    differ.check("FLUSHALL")
    for from_other, argv in steps:
        if from_other:
            r, s = on_both_others(others, *argv)
            assert r == s, (argv, r, s)
        else:
            differ.check(*argv)
    differ.check("RESET")
    on_both_others(others, "RESET")
