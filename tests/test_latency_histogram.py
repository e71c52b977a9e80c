"""LATENCY HISTOGRAM (Redis 7.0): per-command latency histograms, differentially against Redis.

Durations differ between the servers, so the differential checks compare what
is deterministic -- which commands are listed, in which shape, and their call
counts -- and check the histogram itself structurally (labels are the power-of-
two levels Redis's HdrHistogram walk reports, cumulative counts grow and end at
the call count). The bucket arithmetic is checked exactly by unit tests.
"""

from __future__ import annotations

import re

import pytest

from node.monitoring.histogram import LEVELS_US, cdf, record_latency
from tests.resp_client import RawClient, parse


class _Cmd:
    def __init__(self, values=()) -> None:
        self.latency = None
        self.calls = 0
        for value in values:  # as the dispatcher: every call counted, calls of 1 us and more recorded
            self.calls += 1
            if value:
                record_latency(self, value)


def _histogram(values):
    return cdf(_Cmd(values))


def test_levels_are_redis_labels():
    # 1024 ns << k, reported as its highest equivalent value (2 significant digits) in us.
    assert LEVELS_US[:12] == [1, 2, 4, 8, 16, 33, 66, 132, 264, 528, 1056, 2113]
    assert LEVELS_US[-1] == 541065


def test_calls_under_a_microsecond_cost_no_list():
    cmd = _Cmd((0, 0, 0))
    assert cmd.latency is None
    assert cdf(cmd) == {b"calls": 3, b"histogram_usec": {1: 3}}
    assert cdf(_Cmd()) == {b"calls": 0, b"histogram_usec": {}}


def test_cdf_matches_redis_walk():
    # Redis's own example: 0-1 us in the first bucket, then cumulative counts per level that grew.
    got = _histogram([0, 1, 1, 2, 3, 4, 17, 33, 34])
    assert got == {b"calls": 9, b"histogram_usec": {1: 3, 2: 4, 4: 6, 33: 8, 66: 9}}
    assert _histogram([63, 64, 66, 67, 132, 133, 1000, 1056, 1057]) == {
        b"calls": 9, b"histogram_usec": {66: 3, 132: 5, 264: 6, 1056: 8, 2113: 9}}
    # Past the last level Redis's walk stops: counted as calls, in no bucket.
    assert _histogram([5, 541065, 541066, 10**7]) == {b"calls": 4, b"histogram_usec": {8: 1, 541065: 2}}


def _as_entries(raw: bytes) -> list:
    """The reply as [(name, calls, [(level, cumulative), ...])] in reply order (RESP2 or RESP3)."""
    value = parse(raw)
    if isinstance(value, dict):
        pairs = list(value.items())
    else:
        pairs = list(zip(value[0::2], value[1::2]))
    out = []
    for name, body in pairs:
        body = body if isinstance(body, dict) else dict(zip(body[0::2], body[1::2]))
        histo = body[b"histogram_usec"]
        histo = list(histo.items()) if isinstance(histo, dict) else list(zip(histo[0::2], histo[1::2]))
        out.append((name, body[b"calls"], histo))
    return out


def _check_shape(entries) -> None:
    for name, calls, histo in entries:
        assert histo, name
        levels = [level for level, _ in histo]
        counts = [count for _, count in histo]
        assert all(level in LEVELS_US for level in levels) and levels == sorted(levels), name
        assert counts == sorted(counts) and len(set(counts)) == len(counts) and counts[-1] == calls, name


def _calls(entries) -> list:
    return sorted((name, calls) for name, calls, _ in entries)


def _workload(c: RawClient) -> None:
    for i in range(7):
        c.call("SET", f"k{i}", "v")
    for i in range(3):
        c.call("GET", f"k{i}")
    c.call("CONFIG", "GET", "maxmemory")
    c.call("CONFIG", "GET", "port")
    c.call("MULTI")
    c.call("INCR", "n")
    c.call("GET", "n")
    c.call("EXEC")
    c.call("EVAL", "redis.call('set', 'viascript', '1'); return redis.call('get', 'viascript')", "0")
    c.call("LPUSH", "nonempty", "x")
    c.call("BLPOP", "nonempty", "0")  # served at once
    c.call("GET", "a", "b")  # wrong arity: rejected, no call


@pytest.mark.parametrize("protocol", [2, 3])
def test_histograms_after_a_workload(redis_proc, shoal_proc, protocol):
    results = []
    for port in (redis_proc.port, shoal_proc.port):
        with RawClient(port) as c:
            if protocol == 3:
                c.call("HELLO", "3")
            c.call("CONFIG", "RESETSTAT")
            _workload(c)
            everything = _as_entries(c.call("LATENCY", "HISTOGRAM"))
            chosen = _as_entries(c.call("LATENCY", "HISTOGRAM", "set", "GET", "config", "nosuch", "exec",
                                        "config|get", "set", "set|x", "a|b|c", "blpop"))
            results.append((everything, chosen))
    for everything, chosen in results:
        _check_shape(everything)
        _check_shape(chosen)
    (r_all, r_chosen), (s_all, s_chosen) = results
    assert _calls(s_all) == _calls(r_all)
    # Duplicates as Redis (a container's subcommands come in Redis's hash order: compared sorted).
    assert sorted(n for n, _, _ in s_chosen) == sorted(n for n, _, _ in r_chosen)
    assert [n for n, _, _ in s_chosen][:2] == [n for n, _, _ in r_chosen][:2] == [b"set", b"get"]
    assert _calls(s_chosen) == _calls(r_chosen)
    assert (b"set", 8) in _calls(r_chosen)  # 7 SETs and the script's


@pytest.mark.parametrize("args", [(), ("nosuch",), ("set|get",), ("",), ("config|nosuch",)])
def test_empty_and_unknown(differ, args):
    differ.check("CONFIG", "RESETSTAT")
    differ.check("LATENCY", "HISTOGRAM", "get", *args)
    differ.check("LATENCY", "HISTOGRAM", "lpush", *args)


def test_command_info_and_help(differ):
    differ.check("COMMAND", "INFO", "latency|histogram")
    differ.check("LATENCY", "HELP")


def test_latency_tracking_config(redis_proc, shoal_proc):
    results = []
    for port in (redis_proc.port, shoal_proc.port):
        with RawClient(port) as c:
            try:
                c.call("CONFIG", "RESETSTAT")
                c.call("SET", "a", "1")
                assert c.call("CONFIG", "SET", "latency-tracking", "no") == b"+OK\r\n"
                c.call("SET", "a", "2")
                c.call("GET", "a")
                off = _as_entries(c.call("LATENCY", "HISTOGRAM", "set", "get"))
                c.call("CONFIG", "SET", "latency-tracking", "yes")
                c.call("SET", "a", "3")
                c.call("GET", "a")
                on = _as_entries(c.call("LATENCY", "HISTOGRAM", "set", "get"))
                info = parse(c.call("CONFIG", "GET", "latency-tracking"))
            finally:
                c.call("CONFIG", "SET", "latency-tracking", "yes")
            results.append((_calls(off), _calls(on), info))
    assert results[0] == results[1]
    assert results[0][0] == [(b"set", 1)]  # GET never ran while tracking: no histogram at all


def test_resetstat_clears(differ3):
    differ3.both("SET", "x", "1")
    differ3.check("CONFIG", "RESETSTAT")
    differ3.check("LATENCY", "HISTOGRAM", "set")


def test_percentiles_match_hdr_histogram():
    from node.monitoring.histogram import value_at_percentile

    cmd = _Cmd((9, 9, 10, 0, 40))
    # 9 us = 9000 ns lies in the HdrHistogram bucket 8960..9023 (what Redis prints: p50=9.023, p0=8.960).
    assert value_at_percentile(cmd, 50.0) == 9023
    assert value_at_percentile(cmd, 0.0) == 1  # 0 us is recorded as 1 ns
    assert value_at_percentile(cmd, 100.0) == 40191
    assert value_at_percentile(cmd, 70.0) == 10047
    assert value_at_percentile(_Cmd((1, 1, 2)), 50.0) == 1003  # 1000 ns: bucket 1000..1003
    assert value_at_percentile(_Cmd((0, 0, 0)), 99.0) == 1


def _latency_fields(raw: bytes) -> dict:
    out = {}
    for line in parse(raw).decode().split("\r\n"):
        if line.startswith("latency_percentiles_usec_"):
            name, value = line.split(":", 1)
            out[name] = [part.split("=")[0] for part in value.split(",")]
            assert all(re.fullmatch(r"\d+\.\d{3}", part.split("=")[1]) for part in value.split(",")), line
    return out


def test_info_latencystats(redis_proc, shoal_proc):
    results = []
    for port in (redis_proc.port, shoal_proc.port):
        with RawClient(port) as c:
            try:
                c.call("CONFIG", "RESETSTAT")
                c.call("SET", "a", "1")
                c.call("GET", "a")
                c.call("CONFIG", "SET", "latency-tracking-info-percentiles", "50 99.9 0 12.5 100")
                with_all = _latency_fields(c.call("INFO", "latencystats"))
                default = parse(c.call("INFO"))
                c.call("CONFIG", "SET", "latency-tracking", "no")
                off = parse(c.call("INFO", "latencystats"))
            finally:
                c.call("CONFIG", "SET", "latency-tracking", "yes")
                c.call("CONFIG", "SET", "latency-tracking-info-percentiles", "50 99 99.9")
            results.append((with_all, b"latency_percentiles" in default, off))
    assert results[0] == results[1]
    assert results[0][0]["latency_percentiles_usec_set"] == ["p50", "p99.9", "p0", "p12.5", "p100"]


def test_tracking_toggles_and_resetstat_while_off(redis_proc, shoal_proc):
    results = []
    for port in (redis_proc.port, shoal_proc.port):
        with RawClient(port) as c:
            seen = []
            try:
                c.call("CONFIG", "RESETSTAT")
                for step in ("on", "off", "on", "off", "reset", "on"):
                    if step == "reset":
                        c.call("CONFIG", "RESETSTAT")
                    else:
                        c.call("CONFIG", "SET", "latency-tracking", "yes" if step == "on" else "no")
                    for _ in range(3):
                        c.call("INCR", "n")
                    c.call("PING")
                    seen.append(_calls(_as_entries(c.call("LATENCY", "HISTOGRAM", "incr", "ping", "config"))))
            finally:
                c.call("CONFIG", "SET", "latency-tracking", "yes")
            results.append(seen)
    assert results[0] == results[1]
    assert (b"incr", 6) in results[0][2] and (b"incr", 3) in results[0][5]
