"""SLOWLOG and LATENCY against Redis 7.0 (ids, times, durations and addresses masked)."""

from __future__ import annotations

import re

import pytest

from tests.resp_client import parse


@pytest.fixture
def slow(differ):
    """Both servers log every command; the slow log and latency data start empty."""
    differ.check("CONFIG", "SET", "slowlog-log-slower-than", "0", "slowlog-max-len", "128")
    differ.check("LATENCY", "RESET")
    differ.check("SLOWLOG", "RESET")
    yield differ
    differ.check("CONFIG", "SET", "slowlog-log-slower-than", "10000", "slowlog-max-len", "128",
                 "latency-monitor-threshold", "0")
    differ.check("SLOWLOG", "RESET")
    differ.check("LATENCY", "RESET")


def _masked(raw: bytes):
    """SLOWLOG GET without what differs by nature: [argv, client name] per entry; checks the rest's shape."""
    entries = parse(raw)
    assert isinstance(entries, list), raw
    out = []
    ids = []
    for entry in entries:
        ident, when, duration, argv, addr, name = entry
        assert isinstance(ident, int) and isinstance(when, int) and isinstance(duration, int)
        assert duration >= 0 and when > 1_600_000_000
        assert re.fullmatch(rb"127\.0\.0\.1:\d+", addr), addr
        ids.append(ident)
        out.append((argv, name))
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == len(ids)
    return out


def _compare_log(d, *args):
    expected, actual = d.both("SLOWLOG", "GET", *args)
    assert _masked(expected) == _masked(actual)
    return _masked(actual)


def test_slowlog_logs_commands_with_names_and_order(slow):
    slow.check("SET", "k", "v")
    slow.check("CLIENT", "SETNAME", "worker-1")
    slow.check("GET", "k")
    slow.check("GET", "nosuch", "extra")  # an arity error is not run, so not logged
    entries = _compare_log(slow, "-1")
    assert entries[0] == ([b"GET", b"k"], b"worker-1")
    assert entries[-1] == ([b"SLOWLOG", b"RESET"], b"")
    slow.check("SLOWLOG", "LEN")
    slow.check("CLIENT", "SETNAME", "")


def test_slowlog_truncates_arguments_like_redis(slow):
    slow.check("DEL", *[f"key{i}" for i in range(40)])
    slow.check("SET", "big", "x" * 200)
    slow.check("SET", "edge", "y" * 128)
    slow.check("SET", "edge2", "z" * 129)
    slow.check("RPUSH", "l", *["a" * 300] * 31)
    entries = _compare_log(slow, "5")
    assert entries[4][0][-1] == b"... (10 more arguments)" and len(entries[4][0]) == 32
    assert entries[3][0][2] == b"x" * 128 + b"... (72 more bytes)"


def test_slowlog_get_counts_and_errors(slow):
    for i in range(12):
        slow.check("INCR", "n")
    for args in ((), ("0",), ("1",), ("3",), ("-1",), ("100",)):
        _compare_log(slow, *args)
    for bad in ("-2", "abc", "99999999999999999999", "1.5", ""):
        slow.check("SLOWLOG", "GET", bad)
    slow.check("SLOWLOG", "GET", "1", "2")
    slow.check("SLOWLOG", "LEN", "x")
    slow.check("SLOWLOG", "RESET", "x")
    slow.check("SLOWLOG", "NOSUCH")
    slow.check("SLOWLOG")
    slow.check("SLOWLOG", "HELP")
    slow.check("slowlog", "help")


def test_slowlog_exec_logs_inner_commands_not_exec(slow):
    slow.check("MULTI")
    slow.check("SET", "a", "1")
    slow.check("INCR", "a")
    slow.check("EXEC")
    entries = _compare_log(slow)
    names = [argv[0] for argv, _ in entries]
    assert b"EXEC" not in names and names[:3] == [b"INCR", b"SET", b"MULTI"]


def test_slowlog_redacts_secrets(slow):
    slow.check("AUTH", "secret")
    slow.check("AUTH", "user", "secret")
    slow.both("HELLO", "2", "AUTH", "default", "secret")  # (replies carry client ids)
    slow.check("CONFIG", "SET", "masterauth", "hunter2")
    entries = _compare_log(slow, "4")
    assert all(b"secret" not in argv and b"hunter2" not in argv for argv, _ in entries)
    slow.check("CONFIG", "SET", "masterauth", "")


def test_slowlog_max_len_threshold_and_disable(slow):
    slow.check("CONFIG", "SET", "slowlog-max-len", "3")
    for i in range(6):
        slow.check("SET", f"k{i}", "v")
    slow.check("SLOWLOG", "LEN")
    _compare_log(slow, "-1")
    slow.check("CONFIG", "SET", "slowlog-max-len", "128", "slowlog-log-slower-than", "-1")
    slow.check("SLOWLOG", "RESET")
    slow.check("SET", "x", "y")
    slow.check("SLOWLOG", "LEN")  # disabled: nothing logged
    slow.check("CONFIG", "SET", "slowlog-log-slower-than", "1000000")
    slow.check("SET", "x", "y")
    slow.check("SLOWLOG", "LEN")  # nothing that slow
    slow.check("CONFIG", "SET", "slowlog-log-slower-than", "10000")
    slow.check("DEBUG", "SLEEP", "0.02")
    entries = _compare_log(slow)
    assert entries[0][0] == [b"DEBUG", b"SLEEP", b"0.02"]


def test_slowlog_resp3(differ3):
    d = differ3
    d.check("CONFIG", "SET", "slowlog-log-slower-than", "0")
    try:
        d.check("SLOWLOG", "RESET")
        d.check("SET", "a", "b")
        expected, actual = d.both("SLOWLOG", "GET", "1")
        assert expected.startswith(b"*1\r\n*6\r\n:") and actual.startswith(b"*1\r\n*6\r\n:")
        d.check("SLOWLOG", "HELP")
    finally:
        d.check("CONFIG", "SET", "slowlog-log-slower-than", "10000")


# ------------------------------------------------------------------- LATENCY


def _latest_shape(raw: bytes):
    value = parse(raw)
    out = []
    for event, when, latest, worst in value:
        assert when > 1_600_000_000 and latest >= 0 and worst >= latest
        out.append(event)
    return sorted(out)


def test_latency_disabled_doctor_and_empty_replies(slow):
    slow.check("LATENCY", "DOCTOR")
    slow.check("LATENCY", "LATEST")
    slow.check("LATENCY", "HISTORY", "command")
    slow.check("LATENCY", "GRAPH", "command")
    slow.check("LATENCY", "RESET")
    slow.check("LATENCY", "RESET", "a", "b")
    slow.check("LATENCY", "HELP")
    slow.check("LATENCY", "NOSUCH")
    slow.check("LATENCY", "HISTORY")
    slow.check("LATENCY", "LATEST", "x")
    slow.check("LATENCY", "GRAPH")


def test_latency_records_slow_commands(slow):
    slow.check("CONFIG", "SET", "latency-monitor-threshold", "10")
    slow.check("SET", "fast", "1")  # far below 10 ms: no event
    slow.check("LATENCY", "LATEST")
    slow.check("DEBUG", "SLEEP", "0.03")
    expected, actual = slow.both("LATENCY", "LATEST")
    assert _latest_shape(expected) == _latest_shape(actual) == [b"command"]
    event, _, latest, worst = parse(actual)[0]
    assert 30 <= latest <= worst
    history_r, history_s = slow.both("LATENCY", "HISTORY", "command")
    assert len(parse(history_r)) == len(parse(history_s)) == 1
    assert parse(history_s)[0][1] >= 30
    slow.check("LATENCY", "HISTORY", "Command")  # exact-case lookup
    graph_r, graph_s = slow.both("LATENCY", "GRAPH", "command")
    text = parse(graph_s).decode()
    assert text.startswith("command - high ") and "\n" + "-" * 80 + "\n" in text
    assert parse(graph_r).decode().count("\n") == text.count("\n")
    doc_r, doc_s = slow.both("LATENCY", "DOCTOR")
    first = lambda raw: re.sub(rb"\d+(\.\d+)?", b"N", parse(raw).split(b"\n\n")[1].split(b"\n")[0])  # noqa: E731
    assert first(doc_r) == first(doc_s)
    assert b"- Check your Slow Log" in parse(doc_s)
    slow.check("LATENCY", "RESET", "COMMAND")  # case-insensitive reset: 1
    slow.check("LATENCY", "LATEST")


def test_latency_fast_command_event(slow, shoal):
    """A command flagged fast that is slow lands in "fast-command" (Shoal only: Redis's fast commands are never this slow)."""
    shoal.call("CONFIG", "SET", "latency-monitor-threshold", "1")
    try:
        big = ["m%d" % i for i in range(50000)]
        shoal.call("SADD", "s", *big)  # SADD is fast-flagged; 50000 members take well over 1 ms
        events = _latest_shape(shoal.call("LATENCY", "LATEST"))
        assert b"fast-command" in events
        assert parse(shoal.call("LATENCY", "RESET", "fast-command")) == 1
    finally:
        shoal.call("CONFIG", "SET", "latency-monitor-threshold", "0")
        shoal.call("LATENCY", "RESET")


def test_expire_cycle_event_and_doctor_advice_in_process():
    """A slow active-expire cycle is an "expire-cycle" spike; DOCTOR then suggests a higher hz."""
    import itertools

    import node.commands  # noqa: F401
    from node.config import Config
    from node.core import Node
    from node.monitoring.latency import doctor_report

    config = Config()
    config.apply("latency-monitor-threshold", ["5"])
    node = Node(config, wall_clock=lambda: 1_700_000_000.0)
    ticks = itertools.count(0.0, 0.01)  # every timer read is 10 ms later
    node.active_expire_cycle(1_700_000_000_000, 1.0, timer=lambda: next(ticks))
    series = node.monitoring.latency.events["expire-cycle"]
    assert series.max >= 10 and series.latest()[0] == 1_700_000_000
    report = doctor_report(node.monitoring.latency, config)
    assert report.startswith("Dave, I have observed latency spikes")
    assert "1. expire-cycle: 1 latency spikes" in report and "'CONFIG SET hz 100'" in report
    config.apply("latency-monitor-threshold", ["0"])
    node.active_expire_cycle(1_700_000_000_000, 1.0, timer=lambda: next(ticks))
    assert len(series.in_order()) == 1  # monitoring off: no new sample
