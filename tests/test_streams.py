"""Stream commands against real Redis 7.0.15, byte for byte, in RESP2 and RESP3.

Every differential check uses explicit entry IDs: ``*`` IDs and idle times
depend on each server's clock and are checked by their properties instead
(``*`` IDs are monotonic and close to now). Replies that carry delivery or
seen times (XPENDING's extended form, XINFO CONSUMERS, XINFO STREAM FULL)
go through the normalisers declared in ``tests/known_differences.py``.

Node boundaries matter (approximate trimming drops whole listpack nodes,
XINFO STREAM reports radix-tree keys and nodes), so several tests fill
streams past ``stream-node-max-entries``/``stream-node-max-bytes`` and
compare XLEN/XINFO after ``~`` trimming.
"""

from __future__ import annotations

import random
import time

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from tests.differential import Differ
from tests.known_differences import normalizer_for
from tests.resp_client import RawClient, parse


@pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
def d(request, redis_proc, shoal_proc):
    """A Differ in each protocol, over freshly flushed servers."""
    return request.getfixturevalue("differ" if request.param == 2 else "differ3")


def run(d: Differ, script: str) -> None:
    """Check each line of ``script`` (space-separated arguments) on both servers."""
    for line in script.strip().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            d.check(*line.split())


def add_entries(d: Differ, key: str, ids, fields=("f", "v")) -> None:
    for sid in ids:
        d.check("XADD", key, sid, *fields)


# ----------------------------------------------------------------------- XADD


def test_xadd_basics_and_errors(d):
    run(d, """
        XADD s 1-1 a 1
        XADD s 1-2 a 2 b 3
        XADD s 1-2 a 1
        XADD s 1-1 a 1
        XADD s 0-5 a 1
        XADD s 2 a 1
        XADD s 2 a 1
        XADD s 2-* a 1
        XADD s 2-* a 1
        XADD s 1-* a 1
        XADD s 5-* a 1
        XADD s 0-0 a 1
        XADD t 0-0 a 1
        EXISTS t
        XADD t 0-* a 1
        XADD u 0 a 1
        XADD s 9-9 a
        XADD s 9-9 a 1 b
        XADD s 9-9
        XADD s
        XADD s foo a 1
        XADD s 1-x a 1
        XADD s -1 a 1
        XADD s - a 1
        XADD s + a 1
        XADD s 18446744073709551616-0 a 1
        XADD s 10-18446744073709551616 a 1
        XADD s 10-18446744073709551615 a 1
        XADD s 10-* a 1
        XADD s 11-* a 1
        XADD s 18446744073709551615-18446744073709551615 a 1
        XADD s * a 1
        XADD s 18446744073709551615-* a 1
        XLEN s
        XRANGE s - +
        SET str x
        XADD str 1-1 a 1
        XADD str NOMKSTREAM 1-1 a 1
        XADD nokey NOMKSTREAM 1-1 a 1
        EXISTS nokey
        XADD nokey NoMkStream MAXLEN 5 1-1 a 1
        XADD s2 +1-+2 a 1
        XADD s2 007-3 a 1
        XADD s2 8--1 a 1
        XADD s2 8--01 a 1
        XRANGE s2 - +
        TYPE s
        OBJECT ENCODING s
    """)


def test_xadd_id_edge_parsing(d):
    # strtoull fallbacks: signs, leading zeros and spaces; NUL cuts the C string.
    d.check("XADD", "s", " 5-1", "a", "1")
    d.check("XADD", "s", "6- 1", "a", "1")
    d.check("XADD", "s", "7-1\x00junk", "a", "1")
    d.check("XADD", "s", "x" * 200, "a", "1")
    d.check("XADD", "s", "8-" + "0" * 120 + "1", "a", "1")
    d.check("XRANGE", "s", "-", "+")
    d.check("XADD", "s", "", "a", "1")
    d.check("XADD", "s", "-", "a", "1")
    d.check("XADD", "s", "9-", "a", "1")
    d.check("XADD", "s", "-9", "a", "1")


def test_xadd_trim_options(d):
    run(d, """
        XADD s MAXLEN 2 1-1 a 1
        XADD s MAXLEN 2 1-2 a 1
        XADD s MAXLEN 2 1-3 a 1
        XRANGE s - +
        XADD s MAXLEN = 1 1-4 a 1
        XRANGE s - +
        XADD s MAXLEN ~ 1 1-5 a 1
        XLEN s
        XADD s MINID 1-5 1-6 a 1
        XRANGE s - +
        XADD s MINID = 1-6 1-7 a 1
        XADD s MINID ~ 1-7 1-8 a 1
        XADD s MINID 1-7 LIMIT 10 1-9 a 1
        XADD s MINID ~ 1-7 LIMIT 10 1-9 a 1
        XADD s MINID ~ 1-7 LIMIT -1 1-10 a 1
        XADD s MAXLEN -1 1-10 a 1
        XADD s MAXLEN x 1-10 a 1
        XADD s MAXLEN 1 MINID 1-1 1-10 a 1
        XADD s MINID 1-1 MAXLEN 1 1-10 a 1
        XADD s MINID - 1-10 a 1
        XADD s MINID + 1-10 a 1
        XADD s MINID bad 1-10 a 1
        XADD s LIMIT 5 1-10 a 1
        XADD s LIMIT 0 1-10 a 1
        XADD s LIMIT x 1-10 a 1
        XADD s MAXLEN
        XADD s MAXLEN 1
        XADD s MAXLEN ~ 1
        XADD s MAXLEN ~
        XADD s MAXLEN 0 1-20 a 1
        XLEN s
        XINFO STREAM s
        XADD s NOMKSTREAM MAXLEN 0 1-21 a 1
        XADD s maxlen ~ 0 nomkstream 1-22 a 1
        XINFO STREAM s
    """)


def test_xadd_dollar_is_syntax(d):
    run(d, """
        XADD s 1-1 a 1
        XADD s $ a 1
        XADD s > a 1
        XADD s MAXLEN 1 LIMIT 1 1-2 a 1
        XADD s MAXLEN ~ 1 LIMIT 1 1-2 a 1
        XADD s MAXLEN = 1 LIMIT 1 1-3 a 1
    """)


def test_xadd_auto_ids_are_monotonic_and_close_to_now(shoal):
    ids = []
    before = int(time.time() * 1000)
    for _ in range(50):
        ids.append(parse(shoal.call("XADD", "s", "*", "f", "v")))
    after = int(time.time() * 1000)
    pairs = [tuple(map(int, i.split(b"-"))) for i in ids]
    assert pairs == sorted(pairs) and len(set(pairs)) == len(pairs)
    assert all(before - 1000 <= ms <= after + 1000 for ms, _ in pairs)
    # <ms>-* and * after an explicit future ID keep counting in sequence.
    future = after + 10_000_000
    assert parse(shoal.call("XADD", "s", f"{future}-5", "f", "v")) == f"{future}-5".encode()
    assert parse(shoal.call("XADD", "s", "*", "f", "v")) == f"{future}-6".encode()
    assert parse(shoal.call("XADD", "s", f"{future}-*", "f", "v")) == f"{future}-7".encode()
    assert parse(shoal.call("XADD", "s", f"{future + 1}-*", "f", "v")) == f"{future + 1}-0".encode()
    assert parse(shoal.call("XLEN", "s")) == 54


def test_xadd_auto_id_after_max_seq_moves_to_next_ms(d):
    # last ID (ms, 2^64-1) in the far future: * gives (ms+1)-0.
    run(d, """
        XADD s 99999999999999-18446744073709551615 a 1
        XADD s * a 1
        XADD s 99999999999999-* a 1
    """)


# ------------------------------------------------------------------ XRANGE etc.


def test_xrange_xrevrange(d):
    add_entries(d, "s", ["1-1", "1-2", "2-0", "2-5", "3-0", "18446744073709551615-18446744073709551615"])
    run(d, """
        XRANGE s - +
        XREVRANGE s + -
        XRANGE s 1 2
        XRANGE s 1-2 2
        XRANGE s (1-1 (2-5
        XREVRANGE s (2-5 (1-1
        XRANGE s (1 +
        XRANGE s - (3
        XRANGE s - + COUNT 2
        XRANGE s - + COUNT 0
        XRANGE s - + COUNT -3
        XRANGE s - + count 1 COUNT 3
        XREVRANGE s + - COUNT 2
        XRANGE s - + COUNT
        XRANGE s - + COUNT x
        XRANGE s - + LIMIT 2
        XRANGE s 3 1
        XRANGE s 2-5 2-5
        XRANGE s (- +
        XRANGE s - (+
        XRANGE s ( +
        XRANGE s (18446744073709551615-18446744073709551615 +
        XRANGE s - (0-0
        XRANGE s - (0
        XRANGE s (0 +
        XRANGE s bad +
        XRANGE s - bad
        XRANGE nokey - +
        XRANGE nokey - + COUNT 0
        XREVRANGE nokey + -
        XRANGE nokey bad +
        SET str x
        XRANGE str - +
        XRANGE str bad +
        XRANGE s -
        XLEN s
        XLEN nokey
        XLEN str
    """)


def test_xdel(d):
    add_entries(d, "s", ["1-1", "1-2", "1-3", "2-0"])
    run(d, """
        XDEL s 1-2
        XDEL s 1-2
        XDEL s 1-1 2-0 9-9
        XRANGE s - +
        XINFO STREAM s
        XDEL s bad
        XDEL s 1-3 bad
        XLEN s
        XDEL s -
        XDEL s 1
        XDEL nokey bad
        XDEL nokey 1-1
        SET str x
        XDEL str 1-1
        XDEL s 1-3
        XLEN s
        EXISTS s
        XINFO STREAM s
        XADD s 1-4 a 1
        XINFO STREAM s
    """)


def test_xtrim(d):
    add_entries(d, "s", [f"1-{i}" for i in range(1, 11)])
    run(d, """
        XTRIM s MAXLEN 8
        XTRIM s MAXLEN = 6
        XTRIM s MAXLEN ~ 2
        XLEN s
        XTRIM s MINID 1-7
        XTRIM s MINID = 1-8
        XTRIM s MINID ~ 1-10
        XRANGE s - +
        XTRIM s MAXLEN 100
        XTRIM s
        XTRIM s LIMIT 1
        XTRIM s MAXLEN 1 LIMIT 1
        XTRIM s MAXLEN ~ 1 LIMIT 1
        XTRIM s MAXLEN ~ 1 LIMIT -1
        XTRIM s MAXLEN 1 MINID 1
        XTRIM s MAXLEN -1
        XTRIM s MAXLEN x
        XTRIM s MINID x
        XTRIM s FOO
        XTRIM s MAXLEN 1 FOO
        XTRIM s 1-1
        XTRIM s NOMKSTREAM MAXLEN 1
        XTRIM nokey MAXLEN 1
        XTRIM nokey MAXLEN x
        SET str x
        XTRIM str MAXLEN 1
        XTRIM s MAXLEN 0
        XLEN s
        XINFO STREAM s
    """)


# ------------------------------------------------------- listpack node boundaries


def _big_stream(d, key, n, value_len=1, fields=1, start=1):
    """n entries with explicit IDs, each with ``fields`` fields of ``value_len``-byte values."""
    pipe_r, pipe_s = [], []
    for i in range(start, start + n):
        args = ["XADD", key, f"{i}-{i % 7}"]
        for f in range(fields):
            args += [f"f{f}", ("v" * value_len) if value_len else ""]
        pipe_r.append(args)
    replies_r = d.redis.pipeline(pipe_r)
    replies_s = d.shoal.pipeline(pipe_r)
    assert replies_r == replies_s


@pytest.mark.parametrize("value_len,fields", [(1, 1), (30, 1), (70, 2), (500, 1), (1000, 3), (5000, 1)])
def test_node_boundaries_and_approx_trim(differ, value_len, fields):
    d = differ
    _big_stream(d, "s", 450, value_len, fields)
    d.check("XINFO", "STREAM", "s")
    for maxlen in (449, 400, 301, 250, 99, 1):
        d.check("XTRIM", "s", "MAXLEN", "~", maxlen)
        d.check("XLEN", "s")
        d.check("XINFO", "STREAM", "s")
    d.check("XTRIM", "s", "MAXLEN", "0")
    d.check("XINFO", "STREAM", "s")


def test_node_boundaries_mixed_fields_and_ints(differ):
    d = differ
    rng = random.Random(7)
    commands = []
    for i in range(1, 700):
        nf = rng.choice([1, 1, 2, 3])
        args = ["XADD", "s", f"{i * rng.choice([1, 1000, 10**9])}-{rng.choice([0, 1, 200, 70000])}"]
        for f in range(nf):
            field = rng.choice(["a", "b", "123", "-5", "x" * rng.choice([1, 70, 5000])])
            value = rng.choice(["1", "-4096", "4095", "32768", "9223372036854775807", "07", "v" * rng.choice(
                [0, 10, 63, 64, 200, 4095, 4096])])
            args += [field, value]
        commands.append(args)
    assert d.redis.pipeline(commands) == d.shoal.pipeline(commands)
    d.check("XINFO", "STREAM", "s")
    for maxlen in (650, 500, 300, 123, 1):
        d.check("XTRIM", "s", "MAXLEN", "~", maxlen)
        d.check("XINFO", "STREAM", "s")


def test_approx_trim_minid_and_limit(differ):
    d = differ
    _big_stream(d, "s", 1000, 3)
    run(d, """
        XTRIM s MINID ~ 150
        XLEN s
        XTRIM s MINID ~ 150-7 LIMIT 50
        XLEN s
        XTRIM s MINID ~ 450 LIMIT 150
        XLEN s
        XTRIM s MAXLEN ~ 0 LIMIT 250
        XLEN s
        XTRIM s MAXLEN ~ 0 LIMIT 0
        XLEN s
        XINFO STREAM s
    """)


def test_xdel_then_append_counts_tombstones(differ):
    d = differ
    _big_stream(d, "s", 90)
    d.check_all([("XDEL", "s", f"{i}-{i % 7}") for i in range(1, 60)])
    _big_stream(d, "s", 40, start=100)
    d.check("XINFO", "STREAM", "s")
    d.check("XTRIM", "s", "MAXLEN", "~", "10")
    d.check("XINFO", "STREAM", "s")
    # deleting every live entry of the first node drops the node
    d.check_all([("XDEL", "s", f"{i}-{i % 7}") for i in range(60, 91)])
    d.check("XINFO", "STREAM", "s")
    d.check("XRANGE", "s", "-", "+", "COUNT", "3")


def test_exact_minid_trim_can_leave_a_node_of_tombstones(differ):
    d = differ
    add_entries(d, "s", ["1-1", "1-2", "1-3"])
    run(d, """
        XDEL s 1-3
        XTRIM s MINID 1-3
        XINFO STREAM s
        XADD s 2-0 a 1
        XINFO STREAM s
        XRANGE s - +
        XREVRANGE s + -
        XDEL s 2-0
        XINFO STREAM s
        XADD s 3-0 a 1
        XTRIM s MAXLEN 0
        XINFO STREAM s
    """)


def test_node_config_limits(differ):
    d = differ
    try:
        d.check("CONFIG", "SET", "stream-node-max-entries", "5")
        _big_stream(d, "a", 23)
        d.check("XINFO", "STREAM", "a")
        d.check("XTRIM", "a", "MAXLEN", "~", "9")
        d.check("XINFO", "STREAM", "a")
        d.check("CONFIG", "SET", "stream-node-max-entries", "0")
        d.check("CONFIG", "SET", "stream-node-max-bytes", "300")
        _big_stream(d, "b", 40, 20)
        d.check("XINFO", "STREAM", "b")
        d.check("CONFIG", "SET", "stream-node-max-bytes", "0")
        _big_stream(d, "c", 300, 3)
        d.check("XINFO", "STREAM", "c")
    finally:
        d.check("CONFIG", "SET", "stream-node-max-entries", "100")
        d.check("CONFIG", "SET", "stream-node-max-bytes", "4096")


def test_radix_tree_nodes_sparse_ids(differ):
    d = differ
    d.check("CONFIG", "SET", "stream-node-max-entries", "1")
    try:
        rng = random.Random(3)
        ids = sorted({(rng.choice([1, 2, 255, 256, 65535, 65536, 10**12, 2**40, 2**63]) + rng.randrange(3),
                       rng.choice([0, 1, 255, 256, 2**32])) for _ in range(60)})
        for ms, seq in ids:
            d.check("XADD", "s", f"{ms}-{seq}", "f", "v")
            d.check("XINFO", "STREAM", "s")
        for ms, seq in rng.sample(ids, len(ids)):
            d.check("XDEL", "s", f"{ms}-{seq}")
            d.check("XINFO", "STREAM", "s")
    finally:
        d.check("CONFIG", "SET", "stream-node-max-entries", "100")


# --------------------------------------------------------------------- XREAD


def test_xread_nonblocking(d):
    add_entries(d, "s", ["1-1", "1-2", "2-0"])
    add_entries(d, "t", ["5-5"])
    run(d, """
        XREAD STREAMS s 0
        XREAD STREAMS s 1-1
        XREAD STREAMS s 1
        XREAD COUNT 1 STREAMS s 0
        XREAD COUNT 0 STREAMS s 0
        XREAD COUNT -1 STREAMS s 0
        XREAD STREAMS s t 0 0
        XREAD STREAMS s t 2 0
        XREAD STREAMS s t $ $
        XREAD STREAMS nokey 0
        XREAD STREAMS nokey s 0 0
        XREAD STREAMS s
        XREAD STREAMS s t 0
        XREAD STREAMS s >
        XREAD STREAMS s +
        XREAD STREAMS s -
        XREAD STREAMS s bad
        XREAD COUNT x STREAMS s 0
        XREAD BLOCK x STREAMS s 0
        XREAD BLOCK -1 STREAMS s 0
        XREAD BLOCK 0 STREAMS s 0
        XREAD BLOCK 9223372036854775807 STREAMS s 0
        XREAD BLOCK 1.5 STREAMS s 0
        XREAD BLOCK 0x10 STREAMS s 0
        XREAD BLOCK 10 STREAMS s $
        XREAD BLOCK 10 STREAMS nokey $
        XREAD GROUP g c STREAMS s 0
        XREAD NOACK STREAMS s 0
        XREAD FOO STREAMS s 0
        XREAD COUNT 1 s 0
        XREAD STREAMS
        xread streams s 0 streams
        XREAD STREAMS streams s 0 0
        SET str x
        XREAD STREAMS str 0
        XREAD STREAMS s str 0 0
        XREAD STREAMS s str 0 bad
        XREAD STREAMS nokey str $ $
        COMMAND GETKEYS XREAD COUNT 1 BLOCK 0 STREAMS a b 0 0
        COMMAND GETKEYS XREADGROUP GROUP g c NOACK STREAMS a b > >
        COMMAND GETKEYS XREAD STREAMS a b 0
        COMMAND GETKEYS XADD s * f v
        COMMAND GETKEYS XGROUP CREATE s g $
        COMMAND GETKEYS XINFO STREAM s
    """)


def test_xread_in_multi_does_not_block(d):
    add_entries(d, "s", ["1-1"])
    run(d, """
        MULTI
        XREAD BLOCK 0 STREAMS s $
        XREAD BLOCK 0 STREAMS s 0
        XREADGROUP GROUP g c BLOCK 0 STREAMS s >
        EXEC
        XGROUP CREATE s g $
        MULTI
        XREADGROUP GROUP g c BLOCK 0 STREAMS s >
        EXEC
    """)


# ---------------------------------------------------------------- consumer groups


def test_xgroup(d):
    add_entries(d, "s", ["1-1", "1-2", "2-0"])
    run(d, """
        XGROUP CREATE s g 0
        XGROUP CREATE s g 0
        XGROUP CREATE s g2 $
        XGROUP CREATE s g3 1-1 ENTRIESREAD 1
        XGROUP CREATE s g4 - ENTRIESREAD 0
        XGROUP CREATE s g5 + ENTRIESREAD -1
        XGROUP CREATE s g5 bad
        XGROUP CREATE s g5 0 ENTRIESREAD -2
        XGROUP CREATE s g5 0 ENTRIESREAD x
        XGROUP CREATE s g5 0 ENTRIESREAD
        XGROUP CREATE s g5 0 FOO
        XGROUP CREATE s g5 0 MKSTREAM MKSTREAM MKSTREAM MKSTREAM
        XGROUP CREATE s g5 0 MKSTREAM ENTRIESREAD 3
        XGROUP CREATE nokey g 0
        XGROUP CREATE nokey g bad
        XGROUP CREATE nokey g bad MKSTREAM
        XGROUP CREATE nokey g $ MKSTREAM
        XINFO STREAM nokey
        XINFO GROUPS nokey
        XGROUP CREATE nokey2 g 5-5 mkstream
        XINFO GROUPS nokey2
        SET str x
        XGROUP CREATE str g 0
        XGROUP CREATE str g 0 MKSTREAM
        XGROUP CREATE s
        XGROUP CREATE s g
        XGROUP SETID s g 1-1
        XGROUP SETID s g $
        XGROUP SETID s g - ENTRIESREAD 0
        XGROUP SETID s g + ENTRIESREAD 5
        XGROUP SETID s g 0 ENTRIESREAD
        XGROUP SETID s g 0 ENTRIESREAD -3
        XGROUP SETID s g 0 MKSTREAM
        XGROUP SETID s g bad
        XGROUP SETID s nogroup 0
        XGROUP SETID nokey3 g 0
        XGROUP SETID s g 0 ENTRIESREAD 1 ENTRIESREAD 2
        XINFO GROUPS s
        XGROUP CREATECONSUMER s g alice
        XGROUP CREATECONSUMER s g alice
        XGROUP CREATECONSUMER s nogroup alice
        XGROUP CREATECONSUMER nokey3 g alice
        XGROUP CREATECONSUMER s g
        XGROUP DELCONSUMER s g alice
        XGROUP DELCONSUMER s g alice
        XGROUP DELCONSUMER s nogroup alice
        XGROUP DESTROY s g2
        XGROUP DESTROY s g2
        XGROUP DESTROY nokey3 g2
        XGROUP DESTROY s g2 extra
        XGROUP DESTROY str g
        XGROUP HELP
        XGROUP help
        XGROUP HELP extra
        XGROUP FOO
        XGROUP FOO a b c
        XGROUP
        XINFO GROUPS s
    """)


def test_xreadgroup_basics(d):
    add_entries(d, "s", ["1-1", "1-2", "2-0", "3-0"])
    run(d, """
        XGROUP CREATE s g 0
        XREADGROUP GROUP g alice COUNT 1 STREAMS s >
        XREADGROUP GROUP g bob COUNT 2 STREAMS s >
        XREADGROUP GROUP g alice STREAMS s >
        XREADGROUP GROUP g alice STREAMS s >
        XREADGROUP GROUP g alice STREAMS s 0
        XREADGROUP GROUP g alice STREAMS s 1-1
        XREADGROUP GROUP g alice COUNT 1 STREAMS s 0
        XREADGROUP GROUP g bob STREAMS s 0
        XREADGROUP GROUP g carol STREAMS s 0
        XREADGROUP GROUP g carol BLOCK 10 STREAMS s 0
        XPENDING s g
        XINFO GROUPS s
        XDEL s 1-2
        XREADGROUP GROUP g bob STREAMS s 0
        XACK s g 1-2
        XREADGROUP GROUP g bob STREAMS s 0
        XADD s 4-0 a 1
        XADD s 5-0 a 1
        XREADGROUP GROUP g dave NOACK STREAMS s >
        XPENDING s g
        XINFO GROUPS s
        XREADGROUP GROUP g dave STREAMS s $
        XREADGROUP GROUP g dave STREAMS s +
        XREADGROUP GROUP g dave STREAMS s bad
        XREADGROUP GROUP nog dave STREAMS s >
        XREADGROUP GROUP g dave STREAMS nokey >
        XREADGROUP GROUP g dave STREAMS s nokey > >
        XREADGROUP GROUP g dave STREAMS s
        XREADGROUP STREAMS s >
        XREADGROUP GROUP g STREAMS s >
        XREADGROUP GROUP g dave COUNT 1 STREAMS s > extra
        XREADGROUP GROUP g dave FOO STREAMS s >
        XREADGROUP GROUP g dave COUNT x STREAMS s >
        XREADGROUP GROUP g dave BLOCK -1 STREAMS s >
        XREADGROUP NOACK GROUP g dave STREAMS s >
        SET str x
        XREADGROUP GROUP g dave STREAMS str >
        XREADGROUP GROUP g dave STREAMS s str > >
        XINFO GROUPS s
    """)


def test_xreadgroup_after_setid_reassigns_pending(d):
    add_entries(d, "s", ["1-1", "1-2", "2-0"])
    run(d, """
        XGROUP CREATE s g 0
        XREADGROUP GROUP g alice STREAMS s >
        XGROUP SETID s g 0
        XREADGROUP GROUP g bob COUNT 2 STREAMS s >
        XPENDING s g
        XPENDING s g - + 10 alice
        XINFO GROUPS s
        XGROUP SETID s g 1-1 ENTRIESREAD 1
        XINFO GROUPS s
        XREADGROUP GROUP g bob STREAMS s >
        XINFO GROUPS s
    """)


def test_group_lag_and_entries_read(d):
    add_entries(d, "s", ["1-1", "1-2", "1-3", "1-4", "1-5"])
    run(d, """
        XGROUP CREATE s g 0
        XGROUP CREATE s g2 $
        XGROUP CREATE s g3 1-2
        XGROUP CREATE s g4 1-2 ENTRIESREAD 2
        XINFO GROUPS s
        XREADGROUP GROUP g c COUNT 2 STREAMS s >
        XREADGROUP GROUP g3 c COUNT 1 STREAMS s >
        XINFO GROUPS s
        XDEL s 1-4
        XINFO GROUPS s
        XREADGROUP GROUP g c COUNT 1 STREAMS s >
        XINFO GROUPS s
        XREADGROUP GROUP g c STREAMS s >
        XINFO GROUPS s
        XDEL s 1-1
        XINFO GROUPS s
        XINFO STREAM s
        XTRIM s MAXLEN 1
        XINFO GROUPS s
        XADD s 2-0 a 1
        XINFO GROUPS s
        XREADGROUP GROUP g4 c STREAMS s >
        XINFO GROUPS s
        XTRIM s MAXLEN 0
        XINFO GROUPS s
        XINFO STREAM s
        XADD s 3-0 a 1
        XINFO GROUPS s
        XSETID s 9-9 ENTRIESADDED 100 MAXDELETEDID 9-0
        XINFO GROUPS s
        XINFO STREAM s
    """)


def test_lag_never_written_stream(d):
    run(d, """
        XGROUP CREATE s g $ MKSTREAM
        XINFO GROUPS s
        XINFO STREAM s
        XINFO STREAM s FULL
        XADD s 1-1 a 1
        XINFO GROUPS s
    """)


def test_xack(d):
    add_entries(d, "s", ["1-1", "1-2", "2-0"])
    run(d, """
        XGROUP CREATE s g 0
        XREADGROUP GROUP g c STREAMS s >
        XACK s g 1-1
        XACK s g 1-1 1-2 9-9
        XACK s g bad
        XACK s g 2-0 bad
        XACK s nog bad
        XACK nokey g bad
        XACK s g -
        XACK s g 2
        XPENDING s g
        SET str x
        XACK str g 1-1
    """)


def test_xpending(d):
    add_entries(d, "s", ["1-1", "1-2", "2-0", "3-0"])
    run(d, """
        XPENDING s g
        XGROUP CREATE s g 0
        XPENDING s g
        XPENDING s g - + 10
        XREADGROUP GROUP g alice COUNT 2 STREAMS s >
        XREADGROUP GROUP g bob STREAMS s >
        XGROUP CREATECONSUMER s g zed
        XPENDING s g
        XPENDING s g - + 10
        XPENDING s g - + 2
        XPENDING s g - + 0
        XPENDING s g - + -1
        XPENDING s g (1-1 (3-0 10
        XPENDING s g 2 + 10
        XPENDING s g - + 10 alice
        XPENDING s g - + 10 zed
        XPENDING s g - + 10 nobody
        XPENDING s g IDLE 0 - + 10
        XPENDING s g IDLE 0 - + 10 bob
        XPENDING s g IDLE 999999999 - + 10
        XPENDING s g IDLE x - + 10
        XPENDING s g IDLE 0 - +
        XPENDING s g IDLE 0 - + 10 bob extra
        XPENDING s g - + x
        XPENDING s g bad + 10
        XPENDING s g - bad 10
        XPENDING s g - + 10 a b
        XPENDING s g -
        XPENDING s g - +
        XPENDING s g (18446744073709551615-18446744073709551615 + 10
        XPENDING s g - (0 10
        XPENDING s nog
        XPENDING nokey g
        XPENDING nokey g - + 10
        XPENDING nokey g bad + 10
        SET str x
        XPENDING str g
        XACK s g 1-1 1-2 2-0 3-0
        XPENDING s g
    """)


def test_xclaim(d):
    add_entries(d, "s", ["1-1", "1-2", "2-0", "3-0"])
    run(d, """
        XCLAIM s g c 0 1-1
        XGROUP CREATE s g 0
        XREADGROUP GROUP g alice STREAMS s >
        XCLAIM s g bob 0 1-1
        XCLAIM s g bob 0 1-1 1-2 9-9 JUSTID
        XPENDING s g
        XPENDING s g - + 10 bob
        XCLAIM s g bob 999999999 2-0
        XCLAIM s g bob 0 2-0 RETRYCOUNT 7
        XCLAIM s g bob 0 2-0 RETRYCOUNT 3 JUSTID
        XPENDING s g - + 10 bob
        XCLAIM s g bob 0 2-0 IDLE 5000000 JUSTID
        XCLAIM s g carol 4000000 2-0 JUSTID
        XCLAIM s g carol 0 2-0 TIME 1 JUSTID
        XCLAIM s g carol 0 2-0 TIME 99999999999999 JUSTID
        XCLAIM s g carol 0 2-0 IDLE -5 JUSTID
        XACK s g 3-0
        XCLAIM s g carol 0 3-0
        XCLAIM s g carol 0 3-0 FORCE
        XPENDING s g - + 10
        XCLAIM s g carol 0 9-9 FORCE
        XCLAIM s g carol 0 1-1 LASTID 9-9
        XINFO GROUPS s
        XCLAIM s g carol 0 1-1 LASTID 1-1
        XINFO GROUPS s
        XCLAIM s g carol x 1-1
        XCLAIM s g carol -5 1-1 JUSTID
        XCLAIM s g carol 0 1-1 IDLE x
        XCLAIM s g carol 0 1-1 TIME x
        XCLAIM s g carol 0 1-1 RETRYCOUNT x
        XCLAIM s g carol 0 1-1 LASTID bad
        XCLAIM s g carol 0 1-1 FOO
        XCLAIM s g carol 0 1-1 IDLE
        XCLAIM s g carol 0 bad
        XCLAIM s g carol 0 1-1 bad 1-2
        XCLAIM s nog carol 0 1-1
        XCLAIM nokey g carol x 1-1
        XDEL s 1-1
        XCLAIM s g carol 0 1-1 1-2
        XPENDING s g
        XINFO CONSUMERS s g
        SET str x
        XCLAIM str g c 0 1-1
    """)


def test_xclaim_creates_consumer(d):
    add_entries(d, "s", ["1-1"])
    run(d, """
        XGROUP CREATE s g 0
        XCLAIM s g nobody 0 5-5
        XINFO GROUPS s
        XCLAIM s g nobody2 0 bad
        XINFO GROUPS s
    """)


def test_xautoclaim(d):
    add_entries(d, "s", [f"1-{i}" for i in range(1, 11)])
    run(d, """
        XAUTOCLAIM s g c 0 0
        XGROUP CREATE s g 0
        XAUTOCLAIM s g c 0 0
        XINFO GROUPS s
        XREADGROUP GROUP g alice STREAMS s >
        XAUTOCLAIM s g bob 0 0 COUNT 3
        XAUTOCLAIM s g bob 0 1-4 COUNT 3 JUSTID
        XAUTOCLAIM s g bob 0 (1-6 COUNT 100
        XAUTOCLAIM s g bob 999999999 0
        XPENDING s g
        XDEL s 1-2 1-3 1-8
        XAUTOCLAIM s g carol 0 - COUNT 2
        XAUTOCLAIM s g carol 0 - COUNT 2
        XAUTOCLAIM s g carol 0 - COUNT 5 JUSTID
        XPENDING s g
        XAUTOCLAIM s g carol x 0
        XAUTOCLAIM s g carol -3 0 JUSTID
        XAUTOCLAIM s g carol 0 bad
        XAUTOCLAIM s g carol 0 (18446744073709551615-18446744073709551615
        XAUTOCLAIM s g carol 0 0 COUNT 0
        XAUTOCLAIM s g carol 0 0 COUNT -1
        XAUTOCLAIM s g carol 0 0 COUNT x
        XAUTOCLAIM s g carol 0 0 COUNT 576460752303423487
        XAUTOCLAIM s g carol 0 0 COUNT 576460752303423488
        XAUTOCLAIM s g carol 0 0 COUNT
        XAUTOCLAIM s g carol 0 0 FOO
        XAUTOCLAIM s nog carol 0 0
        XAUTOCLAIM nokey g carol 0 0
        XAUTOCLAIM nokey g carol 0 bad
        SET str x
        XAUTOCLAIM str g carol 0 0
    """)


def test_xautoclaim_attempts_limit(d):
    add_entries(d, "s", [f"1-{i}" for i in range(1, 40)])
    run(d, """
        XGROUP CREATE s g 0
        XREADGROUP GROUP g alice STREAMS s >
        XAUTOCLAIM s g bob 999999999 0 COUNT 2
        XAUTOCLAIM s g bob 999999999 1-21 COUNT 1
        XAUTOCLAIM s g bob 0 1-35 COUNT 1
    """)


def test_xsetid(d):
    add_entries(d, "s", ["1-1", "1-2", "2-0"])
    run(d, """
        XSETID s 2-0
        XSETID s 1-9
        XSETID s 5-0
        XADD s 4-0 a 1
        XADD s 5-1 a 1
        XSETID s 5-1 ENTRIESADDED 2
        XSETID s 5-1 ENTRIESADDED 10
        XSETID s 5-1 ENTRIESADDED -1
        XSETID s 5-1 ENTRIESADDED x
        XSETID s 5-1 MAXDELETEDID 6-0
        XSETID s 6-0 MAXDELETEDID 6-0
        XSETID s 6-0 MAXDELETEDID 0-0
        XSETID s 5-9
        XSETID s 6-0 MAXDELETEDID bad
        XSETID s 6-0 FOO
        XSETID s 6-0 ENTRIESADDED
        XSETID s -
        XSETID s +
        XSETID s bad
        XSETID nokey 1-1
        XSETID nokey bad
        XINFO STREAM s
        XDEL s 1-1 1-2 2-0 5-1
        XINFO STREAM s
        XSETID s 0-0
        XSETID s 7-0
        XINFO STREAM s
        SET str x
        XSETID str 1-1
        XGROUP CREATE e g $ MKSTREAM
        XSETID e 0-0
        XSETID e 0-5 ENTRIESADDED 0
        XINFO STREAM e
    """)


# ---------------------------------------------------------------------- XINFO


def test_xinfo(d):
    add_entries(d, "s", ["1-1", "1-2", "2-0", "3-0"])
    run(d, """
        XINFO STREAM s
        XINFO STREAM s FULL
        XINFO GROUPS s
        XGROUP CREATE s g 0
        XGROUP CREATE s a 1-2
        XGROUP CREATECONSUMER s g zz
        XREADGROUP GROUP g alice COUNT 2 STREAMS s >
        XREADGROUP GROUP a bob STREAMS s >
        XINFO STREAM s
        XINFO STREAM s FULL
        XINFO STREAM s FULL COUNT 1
        XINFO STREAM s FULL COUNT 0
        XINFO STREAM s FULL COUNT -5
        XINFO STREAM s FULL COUNT x
        XINFO STREAM s FULL COUNT
        XINFO STREAM s FOO
        XINFO STREAM s FULL FOO 1
        XINFO STREAM s full count 1
        XINFO GROUPS s
        XINFO CONSUMERS s g
        XINFO CONSUMERS s a
        XINFO CONSUMERS s nog
        XINFO CONSUMERS nokey g
        XINFO STREAM nokey
        XINFO STREAM nokey FOO
        XINFO GROUPS nokey
        XINFO HELP
        XINFO help
        XINFO HELP x
        XINFO FOO
        XINFO FOO s
        XINFO
        XINFO STREAM
        XINFO GROUPS s extra
        XINFO CONSUMERS s
        SET str x
        XINFO STREAM str
        XINFO GROUPS str
        XINFO CONSUMERS str g
        OBJECT ENCODING s
        TYPE s
    """)


def test_xinfo_stream_after_deleting_ends(d):
    add_entries(d, "s", ["1-1", "1-2", "2-0", "3-0"])
    run(d, """
        XDEL s 3-0
        XINFO STREAM s
        XDEL s 1-1
        XINFO STREAM s
        XDEL s 1-2 2-0
        XINFO STREAM s
        XINFO STREAM s FULL
    """)


# ----------------------------------------------------------------- generic glue


def test_copy_type_and_del(d):
    add_entries(d, "s", ["1-1", "1-2"])
    run(d, """
        XGROUP CREATE s g 0
        XREADGROUP GROUP g alice COUNT 1 STREAMS s >
        COPY s t
        XINFO GROUPS t
        XPENDING t g
        XACK t g 1-1
        XPENDING s g
        XPENDING t g
        XADD t 3-0 a 1
        XLEN s
        XLEN t
        XINFO STREAM t
        TYPE t
        DEL s
        EXISTS s
        SCAN 0 TYPE stream
        RENAME t u
        XINFO GROUPS u
        DEBUG DIGEST-VALUE u
    """)


def test_digest(differ):
    d = differ
    add_entries(d, "s", ["1-1", "1-2", "2-0"], fields=("f", "v", "123", ""))
    d.check("DEBUG", "DIGEST-VALUE", "s")
    d.check("DEBUG", "DIGEST")
    d.check("XDEL", "s", "1-2")
    d.check("DEBUG", "DIGEST-VALUE", "s")
    d.check("XGROUP", "CREATE", "s", "g", "0")
    d.check("DEBUG", "DIGEST-VALUE", "s")
    d.check("PEXPIRE", "s", "100000")
    d.check("DEBUG", "DIGEST-VALUE", "s")
    d.check("XGROUP", "CREATE", "e", "g", "$", "MKSTREAM")
    d.check("DEBUG", "DIGEST-VALUE", "e")
    d.check("DEBUG", "DIGEST")


def test_keyspace_notifications(redis_proc, shoal_proc):
    """The same commands publish the same keyspace events on both servers."""
    events = {}
    for name, port in (("redis", redis_proc.port), ("shoal", shoal_proc.port)):
        with RawClient(port) as c, RawClient(port) as sub:
            c.call("FLUSHALL")
            c.call("CONFIG", "SET", "notify-keyspace-events", "KEA")
            try:
                sub.call("PSUBSCRIBE", "__keyevent@0__:*")
                for cmd in [
                    ("XADD", "s", "1-1", "a", "1"), ("XADD", "s", "MAXLEN", "1", "1-2", "a", "1"),
                    ("XADD", "s", "MAXLEN", "5", "1-3", "a", "1"), ("XDEL", "s", "9-9"), ("XDEL", "s", "1-2"),
                    ("XTRIM", "s", "MAXLEN", "5"), ("XTRIM", "s", "MAXLEN", "0"),
                    ("XGROUP", "CREATE", "s", "g", "0"), ("XGROUP", "CREATE", "new", "g", "0", "MKSTREAM"),
                    ("XGROUP", "CREATECONSUMER", "s", "g", "c"), ("XGROUP", "CREATECONSUMER", "s", "g", "c"),
                    ("XADD", "s", "2-1", "a", "1"), ("XREADGROUP", "GROUP", "g", "c2", "STREAMS", "s", ">"),
                    ("XCLAIM", "s", "g", "c3", "0", "2-1"), ("XAUTOCLAIM", "s", "g", "c4", "0", "0"),
                    ("XGROUP", "SETID", "s", "g", "0"), ("XGROUP", "DELCONSUMER", "s", "g", "c"),
                    ("XGROUP", "DELCONSUMER", "s", "g", "nobody"), ("XGROUP", "DESTROY", "s", "g"),
                    ("XGROUP", "DESTROY", "s", "g"), ("XSETID", "s", "9-9"), ("XACK", "s", "g", "1-1"),
                    ("DEL", "s"), ("PING",),
                ]:
                    c.call(*cmd)
                seen = []
                while True:
                    msg = parse(sub.read_reply())
                    if msg[0] == b"pmessage":
                        seen.append((msg[2], msg[3]))
                        if msg[2].endswith(b":del"):
                            break
                events[name] = seen
            finally:
                c.call("CONFIG", "SET", "notify-keyspace-events", "")
    assert events["shoal"] == events["redis"]
    assert (b"__keyevent@0__:xgroup-createconsumer", b"s") in events["redis"]


# --------------------------------------------------------- hypothesis: a model


IDS = [f"{ms}-{seq}" for ms in (1, 2, 3, 5, 8) for seq in (0, 1, 2, 7)]
GROUPS = ["g1", "g2"]
CONSUMERS = ["alice", "bob", "carol"]
id_strategy = st.sampled_from(IDS + ["-", "+", "0", "3", "(2-1", "(5-7", "(1"])


class StreamMachine(RuleBasedStateMachine):
    """Random stream/group operations with explicit IDs, compared reply by reply with Redis."""

    def __init__(self):
        super().__init__()
        self.d = StreamMachine.differ
        self.d.redis.call("FLUSHALL")
        self.d.shoal.call("FLUSHALL")
        self.next_ms = 1

    def check(self, *argv):
        self.d.check(*argv)

    @rule(n=st.integers(1, 4), fields=st.lists(st.sampled_from(["a", "b", "c", "1", "x" * 40]), min_size=1,
                                               max_size=3), jump=st.integers(0, 3), seq=st.sampled_from([0, 1, 9]))
    def xadd(self, n, fields, jump, seq):
        for _ in range(n):
            self.next_ms += jump
            args = []
            for f in fields:
                args += [f, "v"]
            self.check("XADD", "s", f"{self.next_ms}-{seq}", *args)
            seq += 1

    @rule(sid=st.sampled_from(IDS), trim=st.sampled_from(["", "MAXLEN 3", "MAXLEN ~ 2", "MINID 3", "MINID ~ 5"]))
    def xadd_explicit(self, sid, trim):
        self.check("XADD", "s", *trim.split(), sid, "k", "v")

    @rule(ids=st.lists(st.sampled_from(IDS), min_size=1, max_size=4))
    def xdel(self, ids):
        self.check("XDEL", "s", *ids)

    @rule(how=st.sampled_from(["MAXLEN", "MAXLEN ~", "MINID", "MINID ~", "MAXLEN = "]), n=st.integers(0, 12),
          limit=st.sampled_from(["", "LIMIT 1", "LIMIT 0"]))
    def xtrim(self, how, n, limit):
        arg = str(n) if how.startswith("MAXLEN") else f"{n}-1"
        if limit and "~" not in how:
            limit = ""
        self.check("XTRIM", "s", *how.split(), arg, *limit.split())

    @rule(a=id_strategy, b=id_strategy, count=st.sampled_from([None, 0, 1, 3]), rev=st.booleans())
    def xrange(self, a, b, count, rev):
        extra = ["COUNT", count] if count is not None else []
        self.check("XREVRANGE" if rev else "XRANGE", "s", a, b, *extra)

    @rule()
    def xlen(self):
        self.check("XLEN", "s")

    @rule(group=st.sampled_from(GROUPS), start=st.sampled_from(["0", "$", "2-1", "5-0"]), mk=st.booleans())
    def xgroup_create(self, group, start, mk):
        self.check("XGROUP", "CREATE", "s", group, start, *(["MKSTREAM"] if mk else []))

    @rule(group=st.sampled_from(GROUPS), start=st.sampled_from(["0", "$", "2-1", "5-0"]),
          er=st.sampled_from([None, 0, 3]))
    def xgroup_setid(self, group, start, er):
        self.check("XGROUP", "SETID", "s", group, start, *(["ENTRIESREAD", er] if er is not None else []))

    @rule(group=st.sampled_from(GROUPS))
    def xgroup_destroy(self, group):
        self.check("XGROUP", "DESTROY", "s", group)

    @rule(group=st.sampled_from(GROUPS), consumer=st.sampled_from(CONSUMERS), create=st.booleans())
    def xgroup_consumer(self, group, consumer, create):
        self.check("XGROUP", "CREATECONSUMER" if create else "DELCONSUMER", "s", group, consumer)

    @rule(group=st.sampled_from(GROUPS), consumer=st.sampled_from(CONSUMERS),
          count=st.sampled_from([None, 1, 2]), sid=st.sampled_from([">", ">", "0", "2-1"]), noack=st.booleans())
    def xreadgroup(self, group, consumer, count, sid, noack):
        extra = (["COUNT", count] if count else []) + (["NOACK"] if noack else [])
        self.check("XREADGROUP", "GROUP", group, consumer, *extra, "STREAMS", "s", sid)

    @rule(group=st.sampled_from(GROUPS), ids=st.lists(st.sampled_from(IDS), min_size=1, max_size=3))
    def xack(self, group, ids):
        self.check("XACK", "s", group, *ids)

    @rule(group=st.sampled_from(GROUPS), a=id_strategy, b=id_strategy, count=st.sampled_from([1, 5, 100]),
          consumer=st.sampled_from([None] + CONSUMERS))
    def xpending_extended(self, group, a, b, count, consumer):
        raw_r, raw_s = self.d.both("XPENDING", "s", group, a, b, count, *([consumer] if consumer else []))
        assert _mask_pending(raw_r) == _mask_pending(raw_s), (raw_r, raw_s)

    @rule(group=st.sampled_from(GROUPS))
    def xpending_summary(self, group):
        self.check("XPENDING", "s", group)

    @rule(group=st.sampled_from(GROUPS), consumer=st.sampled_from(CONSUMERS),
          ids=st.lists(st.sampled_from(IDS), min_size=1, max_size=3), justid=st.booleans())
    def xclaim(self, group, consumer, ids, justid):
        self.check("XCLAIM", "s", group, consumer, "0", *ids, *(["JUSTID"] if justid else []))

    @rule(group=st.sampled_from(GROUPS), consumer=st.sampled_from(CONSUMERS), start=st.sampled_from(IDS[:6]),
          count=st.sampled_from([1, 2, 10]))
    def xautoclaim(self, group, consumer, start, count):
        self.check("XAUTOCLAIM", "s", group, consumer, "0", start, "COUNT", count)

    @rule(full=st.booleans())
    def xinfo(self, full):
        self.check("XINFO", "STREAM", "s", *(["FULL"] if full else []))
        self.check("XINFO", "GROUPS", "s")
        for group in GROUPS:
            self.check("XINFO", "CONSUMERS", "s", group)

    @rule(ms=st.sampled_from([1, 3, 8, 9]))
    def xadd_seq_star(self, ms):
        self.check("XADD", "s", f"{ms}-*", "k", "v")

    @rule(sid=st.sampled_from(IDS + ["9-9"]), added=st.sampled_from([None, 0, 5, 50]),
          maxdel=st.sampled_from([None, "0-0", "2-1", "9-0"]))
    def xsetid_full(self, sid, added, maxdel):
        extra = (["ENTRIESADDED", added] if added is not None else []) + (
            ["MAXDELETEDID", maxdel] if maxdel is not None else [])
        self.check("XSETID", "s", sid, *extra)

    @rule(group=st.sampled_from(GROUPS), er=st.sampled_from([-1, 0, 2, 30]), start=st.sampled_from(["0", "$", "3-0"]))
    def xgroup_create_entriesread(self, group, er, start):
        self.check("XGROUP", "CREATE", "s", group, start, "ENTRIESREAD", er)

    @rule(sid=st.sampled_from(IDS + ["9-9", "0-0"]))
    def xsetid(self, sid):
        self.check("XSETID", "s", sid)

    @invariant()
    def same_length(self):
        self.check("XLEN", "s")


def _mask_pending(raw: bytes):
    value = parse(raw)
    if isinstance(value, list):
        return [e[:2] + ["idle"] + e[3:] if isinstance(e, list) and len(e) == 4 else e for e in value]
    return value


@pytest.mark.parametrize("node_entries", [100, 3])
def test_stream_state_machine(differ, node_entries):
    # With 3 entries per node, approximate trims, node removal by XDEL and the
    # radix-tree counts are exercised on small streams.
    differ.check("CONFIG", "SET", "stream-node-max-entries", node_entries)
    try:
        StreamMachine.differ = differ
        state = StreamMachine.TestCase
        state.settings = settings(max_examples=100, stateful_step_count=50, deadline=None,
                                  suppress_health_check=list(HealthCheck))
        state().runTest()
    finally:
        differ.check("CONFIG", "SET", "stream-node-max-entries", "100")


WATCH_CASES = [
    ("XADD", "s", "5-0", "f", "v"), ("XADD", "s", "1-0", "f", "v"), ("XDEL", "s", "1-1"), ("XDEL", "s", "9-9"),
    ("XTRIM", "s", "MAXLEN", "1"), ("XTRIM", "s", "MAXLEN", "10"), ("XGROUP", "CREATE", "s", "g2", "0"),
    ("XGROUP", "CREATE", "new", "g", "0", "MKSTREAM"), ("XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">"),
    ("XACK", "s", "g", "1-1"), ("XCLAIM", "s", "g", "c2", "0", "1-1"), ("XAUTOCLAIM", "s", "g", "c3", "0", "0"),
    ("XSETID", "s", "9-9"), ("XGROUP", "SETID", "s", "g", "0"), ("XGROUP", "DESTROY", "s", "g"),
    ("XGROUP", "CREATECONSUMER", "s", "g", "c9"), ("XGROUP", "DELCONSUMER", "s", "g", "c"),
    ("XREAD", "STREAMS", "s", "0"), ("XINFO", "STREAM", "s"), ("XPENDING", "s", "g"),
]


@pytest.mark.parametrize("cmd", WATCH_CASES, ids=lambda c: " ".join(c[:2]))
def test_watch_invalidation(redis_proc, shoal_proc, cmd):
    """Which stream commands make a WATCHed stream (or new key) dirty, as in Redis."""
    outcomes = []
    for port in (redis_proc.port, shoal_proc.port):
        with RawClient(port) as a, RawClient(port) as b:
            a.call("FLUSHALL")
            a.call("XADD", "s", "1-1", "f", "v")
            a.call("XADD", "s", "1-2", "f", "v")
            a.call("XGROUP", "CREATE", "s", "g", "0")
            a.call("XREADGROUP", "GROUP", "g", "c", "COUNT", "1", "STREAMS", "s", ">")
            a.call("WATCH", "s", "new")
            reply = b.call(*cmd)
            a.call("MULTI")
            a.call("PING")
            outcomes.append((reply, a.call("EXEC")))
    assert _mask_stream_reply(outcomes[1]) == _mask_stream_reply(outcomes[0])


def _mask_stream_reply(outcome):
    reply, exec_reply = outcome
    return normalizer_for(("XPENDING",))(reply), exec_reply
