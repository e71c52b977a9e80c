"""MEMORY USAGE/STATS/DOCTOR/MALLOC-STATS/PURGE/HELP and INFO's memory fields, against real Redis.

Replies Redis defines exactly (help, errors, nil, OK, the doctor's verdict on
a small instance) are compared byte for byte. Sizes are Shoal's own (Python
objects are not Redis's listpacks), so MEMORY USAGE is checked to be of the
same order of magnitude as Redis's, and MEMORY STATS to have Redis's shape.
"""

from __future__ import annotations

import pytest

from tests.resp_client import parse


def _int(raw: bytes) -> int:
    return parse(raw)


def test_memory_help_and_errors(differ):
    differ.check("MEMORY", "HELP")
    differ.check("memory", "help")
    differ.check("MEMORY")
    differ.check("MEMORY", "NOSUCH")
    differ.check("MEMORY", "HELP", "extra")
    differ.check("MEMORY", "USAGE")
    differ.check("MEMORY", "STATS", "extra")
    differ.check("MEMORY", "DOCTOR", "extra")
    differ.check("MEMORY", "PURGE", "extra")
    differ.check("MEMORY", "MALLOC-STATS", "extra")


def test_memory_usage_options(differ):
    differ.check("SET", "foo", "bar")
    differ.check("MEMORY", "USAGE", "nokey")
    differ.check("MEMORY", "USAGE", "nokey", "SAMPLES", "5")
    # Options are checked before the key is looked up.
    for args in (("SAMPLES",), ("SAMPLES", "x"), ("SAMPLES", "-1"), ("bar", "1"), ("SAMPLES", "0", "extra"),
                 ("SAMPLES", "99999999999999999999"), ("samples", "1", "SAMPLES")):
        differ.check("MEMORY", "USAGE", "foo", *args)
        differ.check("MEMORY", "USAGE", "nokey", *args)
    for args in ((), ("SAMPLES", "0"), ("samples", "3"), ("SAMPLES", "1", "SAMPLES", "2")):
        real, shoal = differ.both("MEMORY", "USAGE", "foo", *args)
        assert real.startswith(b":") and shoal.startswith(b":")


def test_memory_usage_ignores_expiry_and_counts_no_hit(differ):
    differ.check("DEBUG", "SET-ACTIVE-EXPIRE", "0")  # else the cron may delete the key first (timing)
    try:
        differ.check("SET", "k", "v", "PX", "1")
        differ.check("DEBUG", "SLEEP", "0.01")
        real, shoal = differ.both("MEMORY", "USAGE", "k")  # dictFind: no expiry check
        assert real.startswith(b":") and shoal.startswith(b":")
    finally:
        differ.check("DEBUG", "SET-ACTIVE-EXPIRE", "1")
    differ.check("CONFIG", "RESETSTAT")
    differ.check("SET", "k2", "v")
    differ.both("MEMORY", "USAGE", "k2")
    real, shoal = differ.both("INFO", "stats")
    for field in (b"keyspace_hits:", b"keyspace_misses:"):
        pick = lambda raw: [line for line in raw.split(b"\r\n") if line.startswith(field)]  # noqa: E731
        assert pick(real) == pick(shoal)


_VALUES = {
    "small string": [("SET", "k", "hello")],
    "int string": [("SET", "k", "12345")],
    "big string": [("SET", "k", "x" * 5000)],
    "small list": [("RPUSH", "k", *[f"e{i}" for i in range(10)])],
    "big list": [("RPUSH", "k", *[f"element-{i}" for i in range(2000)])],
    "small hash": [("HSET", "k", *[f"f{i // 2}" if i % 2 == 0 else "v" for i in range(20)])],
    "big hash": [("HSET", "k", *[f"field-{i // 2}" if i % 2 == 0 else f"value-{i}" for i in range(4000)])],
    "intset": [("SADD", "k", *[str(i) for i in range(100)])],
    "big set": [("SADD", "k", *[f"member-{i}" for i in range(2000)])],
    "small zset": [("ZADD", "k", *[x for i in range(10) for x in (str(i), f"m{i}")])],
    "big zset": [("ZADD", "k", *[x for i in range(2000) for x in (str(i), f"member-{i}")])],
    "stream": [("XADD", "k", "*", "field", f"value-{i}") for i in range(200)],
}


#: A small zset is a dict plus a sortedcontainers.SortedList in Shoal (~2.5 KB
#: for a handful of members) where Redis has a 128-byte listpack.
_FACTOR = {"small zset": 30}


@pytest.mark.parametrize("kind", list(_VALUES))
def test_memory_usage_is_of_redis_order_of_magnitude(differ, kind):
    for argv in _VALUES[kind]:
        differ.both(*argv)
    factor = _FACTOR.get(kind, 10)
    for samples in ("5", "0"):
        real, shoal = (_int(r) for r in differ.both("MEMORY", "USAGE", "k", "SAMPLES", samples))
        assert real > 0 and shoal > 0
        assert real / factor <= shoal <= real * factor, (kind, samples, real, shoal)


def test_memory_usage_sampling_extrapolates(shoal):
    shoal.call("HSET", "h", *[x for i in range(5000) for x in (f"field-{i:05}", f"value-{i:05}")])
    exact = _int(shoal.call("MEMORY", "USAGE", "h", "SAMPLES", "0"))
    sampled = _int(shoal.call("MEMORY", "USAGE", "h"))
    assert abs(sampled - exact) / exact < 0.2, (sampled, exact)
    bigger = _int(shoal.call("MEMORY", "USAGE", "h", "SAMPLES", "0"))
    shoal.call("HSET", "h", *[x for i in range(5000) for x in (f"more-{i:05}", f"value-{i:05}")])
    assert _int(shoal.call("MEMORY", "USAGE", "h", "SAMPLES", "0")) > bigger * 1.5


def _stats_shape(value):
    if isinstance(value, dict):
        return [(k, _stats_shape(v)) for k, v in value.items()]
    if isinstance(value, list):  # RESP2: flat pairs
        return [(value[i], _stats_shape(value[i + 1])) for i in range(0, len(value), 2)]
    return type(value).__name__


@pytest.mark.parametrize("with_keys", [False, True])
def test_memory_stats_has_redis_shape(differ, differ3, with_keys):
    if with_keys:
        differ.both("SET", "a", "1")
        differ.both("SET", "b", "2", "EX", "100")
    for d in (differ, differ3):
        real, shoal = d.both("MEMORY", "STATS")
        real_shape, shoal_shape = _stats_shape(parse(real)), _stats_shape(parse(shoal))
        if d is differ:
            # RESP2 sends the ratios as bulk strings: compare names, and values' kinds loosely.
            assert [k for k, _ in real_shape] == [k for k, _ in shoal_shape]
        else:
            assert real_shape == shoal_shape
    stats = parse(differ3.shoal.call("MEMORY", "STATS"))
    assert stats[b"keys.count"] == (2 if with_keys else 0)
    assert stats[b"total.allocated"] >= stats[b"startup.allocated"] > 0
    assert stats[b"peak.allocated"] >= stats[b"total.allocated"]


def test_memory_doctor_on_a_small_instance(differ, differ3):
    differ.check("SET", "a", "1")
    differ.check("MEMORY", "DOCTOR")
    differ3.check("MEMORY", "DOCTOR")


def test_memory_malloc_stats_and_purge(differ):
    real, shoal = differ.both("MEMORY", "MALLOC-STATS")
    assert real.startswith(b"$") and shoal.startswith(b"$")
    assert parse(shoal) == b"Stats not supported for the current allocator"
    differ.check("MEMORY", "PURGE")


def _info_fields(raw: bytes, names) -> dict:
    fields = dict(line.split(":", 1) for line in parse(raw).decode().split("\r\n") if ":" in line)
    return {name: fields.get(name) for name in names}


def test_info_memory_reflects_maxmemory_settings(differ):
    names = ("maxmemory", "maxmemory_human", "maxmemory_policy")
    try:
        differ.check("CONFIG", "SET", "maxmemory", "100mb", "maxmemory-policy", "allkeys-lfu")
        real, shoal = differ.both("INFO", "memory")
        assert _info_fields(real, names) == _info_fields(shoal, names)
        assert _info_fields(shoal, names)["maxmemory_human"] == "100.00M"
        fields = _info_fields(shoal, ("used_memory", "used_memory_peak", "used_memory_startup"))
        assert int(fields["used_memory_peak"]) >= int(fields["used_memory"]) > 0
    finally:
        differ.check("CONFIG", "SET", "maxmemory", "0", "maxmemory-policy", "noeviction")
    real, shoal = differ.both("INFO", "memory")
    assert _info_fields(real, names) == _info_fields(shoal, names)


def test_used_memory_grows_and_shrinks_with_the_data(shoal):
    def used():
        return int(_info_fields(shoal.call("INFO", "memory"), ("used_memory",))["used_memory"])

    before = used()
    for i in range(20):
        shoal.call("RPUSH", f"l{i}", *[f"element-{j:06}" * 3 for j in range(2000)])
    grown = used()
    assert grown - before > 20 * 2000 * 40  # at least the payload
    shoal.call("FLUSHALL")
    assert used() - before < (grown - before) * 0.2
