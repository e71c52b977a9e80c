"""Sorted set commands against real Redis 7.0, byte for byte (RESP2 and RESP3).

Checked differentially: replies and error texts (and which error wins), the
null/array shapes of each protocol, score formatting (inf, -0, %.17g),
OBJECT ENCODING (listpack/skiplist thresholds, what the *STORE commands
create), DEBUG DIGEST-VALUE, keyspace events, the dirty counter and keyspace
hits/misses. Random command sequences (hypothesis) and a rule-based state
machine compare whole histories, with weird scores and lex ranges. Random
commands (ZRANDMEMBER) and ZSCAN over big sets are checked by properties.
Blocking with several clients is in tests/test_zsets_blocking.py.
"""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from node.commands.table import lookup
from node.engine.zset import LEX_MAX, LEX_MIN, ZSet, parse_lex_bound
from tests.resp_client import RawClient, ReplyError, parse
from tests.type_helpers import check_introspection, d, same_counter_deltas, same_keyspace_events  # noqa: F401
from tests.type_helpers import cmd as _cmd

ZSET_COMMANDS = (
    "zadd zincrby zrem zcard zcount zlexcount zscore zmscore zrank zrevrank zrange zrangestore zrangebyscore "
    "zrevrangebyscore zrangebylex zrevrangebylex zrevrange zremrangebyrank zremrangebyscore zremrangebylex "
    "zpopmin zpopmax zmpop zrandmember zunion zinter zdiff zunionstore zinterstore zdiffstore zintercard zscan "
    "bzpopmin bzpopmax bzmpop"
).split()

LLONG_MAX = "9223372036854775807"
LLONG_MIN = "-9223372036854775808"
WEIRD_SCORES = ["0", "-0", "1", "-1", "1.5", "inf", "-inf", "+inf", "1e308", "-1e308", "5e-324", "1e-300",
                "0.1", "123456789012345678", "4611686018427387904", "9223372036854775807", "1e20", "0x10", "3.0"]


def scan_same(d, key):
    """One ZSCAN call covering the whole set: exact for a listpack, same (member, score) pairs for a skiplist."""
    expected, actual = d.both("ZSCAN", key, 0, "COUNT", 100000)
    if parse(d.redis.call("OBJECT", "ENCODING", key)) == b"listpack":
        assert expected == actual, (key, expected, actual)
        return
    (c1, p1), (c2, p2) = parse(expected), parse(actual)
    assert c1 == c2 == b"0"
    assert sorted(zip(p1[0::2], p1[1::2])) == sorted(zip(p2[0::2], p2[1::2]))


def check_zset(d, key):
    """The whole set with scores, its type, encoding and digest agree."""
    d.check("ZRANGE", key, 0, -1, "WITHSCORES")
    d.check("ZCARD", key)
    check_introspection(d, key)


# ----------------------------------------------------------------- COMMAND table

GETKEYS_ARGS = {
    "zadd": ["k", "1", "a"], "zincrby": ["k", "1", "a"], "zrem": ["k", "a"], "zcard": ["k"],
    "zcount": ["k", "0", "1"], "zlexcount": ["k", "-", "+"], "zscore": ["k", "a"], "zmscore": ["k", "a", "b"],
    "zrank": ["k", "a"], "zrevrank": ["k", "a"], "zrange": ["k", "0", "1"], "zrangestore": ["d", "s", "0", "1"],
    "zrangebyscore": ["k", "0", "1"], "zrevrangebyscore": ["k", "1", "0"], "zrangebylex": ["k", "-", "+"],
    "zrevrangebylex": ["k", "+", "-"], "zrevrange": ["k", "0", "1"], "zremrangebyrank": ["k", "0", "1"],
    "zremrangebyscore": ["k", "0", "1"], "zremrangebylex": ["k", "-", "+"], "zpopmin": ["k"],
    "zpopmax": ["k", "2"], "zmpop": ["2", "a", "b", "min"], "zrandmember": ["k"], "zunion": ["2", "a", "b"],
    "zinter": ["2", "a", "b", "weights", "1", "2"], "zdiff": ["1", "a"], "zunionstore": ["d", "2", "a", "b"],
    "zinterstore": ["d", "1", "a"], "zdiffstore": ["d", "3", "a", "b", "c"], "zintercard": ["2", "a", "b"],
    "zscan": ["k", "0"], "bzpopmin": ["a", "b", "0"], "bzpopmax": ["a", "0"],
    "bzmpop": ["0", "2", "a", "b", "max", "count", "3"],
}


@pytest.mark.parametrize("name", ZSET_COMMANDS)
def test_command_info_and_getkeys(differ, name):
    differ.check("COMMAND", "GETKEYS", name, *GETKEYS_ARGS[name])
    differ.check("COMMAND", "INFO", name)
    assert lookup(name.encode()).group == "sorted_set"


def test_getkeys_for_numkeys_commands(differ):
    for argv in (("zmpop", "3", "a", "b", "min"), ("zmpop", "0", "a", "min"), ("zmpop", "x", "a", "min"),
                 ("bzmpop", "0", "1", "a", "max"), ("bzmpop", "0", "4", "a", "b", "max"),
                 ("zunion", "3", "a", "b"), ("zunion", "0", "a"), ("zintercard", "1", "a", "limit", "1"),
                 ("zunionstore", "d", "3", "a", "b"), ("zunionstore", "d", "1", "a", "weights", "2"),
                 ("zdiffstore", "d", "0", "a")):
        differ.check("COMMAND", "GETKEYS", *argv)


@pytest.mark.parametrize("name", ZSET_COMMANDS)
def test_arity_errors(d, name):
    arity = lookup(name.encode()).arity
    n = abs(arity) - 1
    d.check(name, *(["k"] * (n - 1)))
    if arity > 0:
        d.check(name, *(["k"] * (n + 1)))


# ------------------------------------------------------------------ ZADD / ZINCRBY


def test_zadd_options_and_replies(d):
    d.check_all(
        ("ZADD", "z", 1, "a", 2, "b", 3, "c"), ("ZADD", "z", 1, "a"), ("ZADD", "z", 5, "a"),
        ("ZADD", "z", "CH", 5, "a", 6, "b", 7, "new"), ("ZADD", "z", "NX", 100, "a", 8, "nx"),
        ("ZADD", "z", "XX", 100, "a", 8, "xxnew"), ("ZADD", "z", "XX", "CH", 101, "a", 8, "xxnew"),
        ("ZADD", "z", "GT", "CH", 1, "a", 200, "b", 3, "gtnew"), ("ZADD", "z", "LT", "CH", 1, "a", 300, "b"),
        ("ZADD", "z", "XX", "GT", 500, "a", 1, "b"), ("ZADD", "z", "xx", "lt", "ch", 0, "a", 999, "b"),
        ("ZADD", "z", "gT", "Ch", 0, "c"), ("ZADD", "z", "nx", "nx", 9, "double"),
    )
    check_zset(d, "z")


def test_zadd_errors_in_order(d):
    d.check("SET", "str", "v")
    for args in (
        (), (1,), (1, "a", 2), ("NX",), ("NX", "XX", 1, "a"), ("NX", "XX", 1), ("GT", "LT", 1, "a"),
        ("NX", "GT", 1, "a"), ("NX", "LT", 1, "a"), ("INCR", 1, "a", 2, "b"), ("INCR", "NX", "XX", 1, "a", 2, "b"),
        ("x", "a"), ("nan", "a"), ("NaN", "a"), ("1e400", "a"), ("-1e400", "a"), ("1e-400", "a"), (" 1", "a"),
        ("1 ", "a"), ("", "a"), ("1\x00", "a"), (1, "a", "x", "b"), ("0x", "a"), ("1e", "a"), ("--1", "a"),
        ("infinity", "a"), ("-Infinity", "b"), ("INF", "c"), ("0x1p3", "d"), ("1e-320", "e"), ("0e-400", "f"),
        ("+5", "g"), (".5", "h"), ("5.", "i"), ("1_000", "j"), ("0x1p-1080", "k"),
    ):
        d.check("ZADD", "z", *args)
        d.check("ZADD", "str", *args)
    check_zset(d, "z")
    d.check("ZADD", "str", 1, "a")
    d.check("ZADD", "str", "XX", 1, "a")


@pytest.mark.parametrize("score", WEIRD_SCORES)
def test_score_formatting(d, score):
    d.check("ZADD", "lp", score, "m")
    d.check("ZSCORE", "lp", "m")
    d.check("ZADD", "sk", 1, "x" * 70)  # skiplist from the start
    d.check("ZADD", "sk", score, "m")
    for key in ("lp", "sk"):
        d.check("ZSCORE", key, "m")
        d.check("ZMSCORE", key, "m", "nope")
        d.check("ZRANGE", key, 0, -1, "WITHSCORES")
        scan_same(d, key)
        d.check("ZINCRBY", key, 0, "m")
        d.check("ZINCRBY", key, "-0", "m")
        check_zset(d, key)


def test_negative_zero_per_encoding(d):
    big = "y" * 65
    d.check_all(
        ("ZADD", "lp", "-0", "a"), ("ZADD", "lp", "INCR", "-0", "b"), ("ZINCRBY", "lp", "-0", "c"),
        ("ZADD", "sk", 1, big), ("ZADD", "sk", "-0", "a"), ("ZADD", "sk", "INCR", "-0", "b"),
        ("ZINCRBY", "sk", "-0", "c"), ("ZADD", "sk", "0", "a"), ("ZINCRBY", "sk", "-0", "a"),
        ("ZADD", "sk2", 0, "a"), ("ZADD", "sk2", 1, big), ("ZADD", "sk2", "-0", "a"),
    )
    for key in ("lp", "sk", "sk2"):
        check_zset(d, key)
        scan_same(d, key)
    d.check("ZUNIONSTORE", "u", 1, "sk")
    d.check("ZUNIONSTORE", "u2", 2, "sk", "lp", "AGGREGATE", "MIN")
    d.check("ZRANGESTORE", "r", "sk", 0, -1)
    d.check("ZRANGESTORE", "r2", "sk", 0, 0)
    for key in ("u", "u2", "r", "r2"):
        check_zset(d, key)
    d.check("ZUNION", 2, "sk", "lp", "WITHSCORES")
    d.check("ZRANGEBYSCORE", "sk", "-0", "0", "WITHSCORES")
    d.check("ZRANGEBYSCORE", "sk", "(-0", "+inf", "WITHSCORES")
    d.check("ZCOUNT", "sk", "0", "(1")


def test_zincrby_and_incr(d):
    d.check_all(
        ("ZINCRBY", "z", 5, "a"), ("ZINCRBY", "z", "-2.5", "a"), ("ZINCRBY", "z", "x", "a"),
        ("ZINCRBY", "z", "nan", "a"), ("ZINCRBY", "z", "inf", "a"), ("ZINCRBY", "z", "-inf", "a"),
        ("ZINCRBY", "z", "inf", "a"), ("ZSCORE", "z", "a"), ("ZADD", "z", "INCR", "-inf", "a"),
        ("ZADD", "z", "INCR", "inf", "new"), ("ZADD", "z", "NX", "INCR", 1, "a"), ("ZADD", "z", "XX", "INCR", 1, "nope"),
        ("ZADD", "z", "GT", "INCR", -1, "b"), ("ZADD", "z", "GT", "INCR", 1, "b"), ("ZADD", "z", "LT", "INCR", 1, "b"),
        ("ZADD", "z", "LT", "INCR", -1, "b"), ("ZADD", "z", "INCR", 0, "b"), ("ZADD", "nokey", "XX", "INCR", 1, "a"),
        ("ZINCRBY", "z", "nx", "a"), ("ZINCRBY", "z", "1e308", "big"), ("ZINCRBY", "z", "1e308", "big"),
        ("ZADD", "z", "INCR", "CH", 1, "c"),
    )
    check_zset(d, "z")
    d.check("EXISTS", "nokey")


def test_xx_on_missing_key_creates_nothing(d):
    d.check("ZADD", "z", "XX", 1, "a")
    d.check("ZADD", "z", "XX", "INCR", 1, "a")
    d.check("EXISTS", "z")
    d.check("ZADD", "z", "GT", 1, "a")
    check_zset(d, "z")


# ------------------------------------------------------------------ reads


def test_basic_reads(d):
    d.check("ZADD", "z", 1, "a", 2, "b", 2, "c", 3, "d", "-inf", "m", "inf", "p")
    d.check("SET", "str", "v")
    for key in ("z", "nokey", "str"):
        d.check_all(
            ("ZCARD", key), ("ZSCORE", key, "b"), ("ZSCORE", key, "nope"), ("ZMSCORE", key, "a", "nope", "p"),
            ("ZRANK", key, "c"), ("ZREVRANK", key, "c"), ("ZRANK", key, "nope"), ("ZREVRANK", key, "nope"),
            ("ZCOUNT", key, "-inf", "+inf"), ("ZCOUNT", key, "(1", "(3"), ("ZCOUNT", key, "x", "1"),
            ("ZLEXCOUNT", key, "-", "+"), ("ZLEXCOUNT", key, "x", "+"), ("ZRANGE", key, 0, -1),
            ("ZRANGE", key, "x", 1), ("ZRANGEBYSCORE", key, "x", 1), ("ZRANGEBYLEX", key, "a", "+"),
            ("ZRANDMEMBER", key), ("ZRANDMEMBER", key, 0), ("ZSCAN", key, 0), ("ZSCAN", key, "x"),
        )


@pytest.mark.parametrize("start,stop", [(0, -1), (1, 2), (-2, -1), (-100, 100), (5, 2), (3, 3), (-1, -2),
                                        (0, 0), (100, 200), (LLONG_MIN, LLONG_MAX), (-7, 2)])
def test_rank_ranges(d, start, stop):
    d.check("ZADD", "z", *[x for i in range(6) for x in (i % 3, f"m{i}")])
    for rev in ((), ("REV",)):
        d.check("ZRANGE", "z", start, stop, *rev)
        d.check("ZRANGE", "z", start, stop, "WITHSCORES", *rev)
    d.check("ZREVRANGE", "z", start, stop, "WITHSCORES")
    d.check("ZRANGESTORE", "dst", "z", start, stop)
    check_zset(d, "dst")
    d.check("ZREMRANGEBYRANK", "z", start, stop)
    check_zset(d, "z")


SCORE_RANGES = [("-inf", "+inf"), ("1", "2"), ("(1", "2"), ("1", "(2"), ("(1", "(2"), ("(1", "(1"), ("1", "1"),
                ("2", "1"), ("-inf", "-inf"), ("+inf", "+inf"), ("(-inf", "(+inf"), ("(inf", "inf"),
                ("-1e400", "(1e400"), ("", "5"), ("(", "5"), (" 1", "2"), ("1\x00junk", "3"), ("0x1", "0x2"),
                ("nan", "1"), ("1", "(nan"), ("x", "1"), ("1", "2x"), ("((1", "2"), ("[1", "2"), ("-0", "0"),
                ("(-0", "1"), ("1.5", "2.5"), ("-1e308", "1e308"), ("1 ", "2")]


@pytest.mark.parametrize("lo,hi", SCORE_RANGES)
def test_score_ranges(d, lo, hi):
    d.check("ZADD", "z", "-inf", "ninf", 0, "zero", 1, "a", 1, "b", 1.5, "c", 2, "d", 2, "e", 3, "f", "inf", "pinf")
    d.check("ZCOUNT", "z", lo, hi)
    d.check("ZRANGEBYSCORE", "z", lo, hi, "WITHSCORES")
    d.check("ZREVRANGEBYSCORE", "z", hi, lo, "WITHSCORES")
    d.check("ZRANGE", "z", lo, hi, "BYSCORE")
    d.check("ZRANGE", "z", hi, lo, "BYSCORE", "REV", "WITHSCORES")
    for offset, count in ((0, 1), (1, 2), (2, -1), (-1, 2), (0, 0), (100, 1), (1, -5), (8, 1)):
        d.check("ZRANGEBYSCORE", "z", lo, hi, "LIMIT", offset, count)
        d.check("ZREVRANGEBYSCORE", "z", hi, lo, "WITHSCORES", "LIMIT", offset, count)
    d.check("ZRANGESTORE", "dst", "z", lo, hi, "BYSCORE", "LIMIT", 1, 3)
    check_zset(d, "dst")
    d.check("ZREMRANGEBYSCORE", "z", lo, hi)
    check_zset(d, "z")


LEX_RANGES = [("-", "+"), ("+", "-"), ("-", "-"), ("+", "+"), ("[a", "[c"), ("(a", "(c"), ("[a", "(a"),
              ("[a", "[a"), ("(a", "[a"), ("[", "+"), ("(", "+"), ("-", "[b\x00"), ("[b", "[aa"), ("a", "+"),
              ("-", "c"), ("+x", "+"), ("-x", "+"), ("", "+"), ("[aa", "+"), ("-", "(b"), ("[\xff", "+"),
              ("(ab", "[c"), ("+\x00", "-\x00")]


@pytest.mark.parametrize("lo,hi", LEX_RANGES)
@pytest.mark.parametrize("big", [False, True], ids=["listpack", "skiplist"])
def test_lex_ranges(d, lo, hi, big):
    members = ["", "a", "aa", "ab", "b", "b\x00", "ba", "c", "ca", "d", "\xff"]
    if big:
        members += [f"z{i:03d}" for i in range(130)]
    d.check("ZADD", "z", *[x for m in members for x in (0, m)])
    d.check("OBJECT", "ENCODING", "z")
    d.check("ZLEXCOUNT", "z", lo, hi)
    d.check("ZRANGEBYLEX", "z", lo, hi)
    d.check("ZREVRANGEBYLEX", "z", hi, lo)
    d.check("ZRANGE", "z", lo, hi, "BYLEX")
    d.check("ZRANGE", "z", hi, lo, "BYLEX", "REV")
    for offset, count in ((0, 1), (1, 2), (2, -1), (-1, 2), (0, 0), (3, 100), (200, 1)):
        d.check("ZRANGEBYLEX", "z", lo, hi, "LIMIT", offset, count)
        d.check("ZREVRANGEBYLEX", "z", hi, lo, "LIMIT", offset, count)
    d.check("ZRANGESTORE", "dst", "z", hi, lo, "BYLEX", "REV", "LIMIT", 1, 3)
    check_zset(d, "dst")
    d.check("ZREMRANGEBYLEX", "z", lo, hi)
    check_zset(d, "z")


@pytest.mark.parametrize("lo,hi", [("-", "+"), ("[b", "[d"), ("(b", "+"), ("-", "(c"), ("[c", "[c"), ("[a", "[b")])
def test_lex_ranges_with_mixed_scores_in_a_listpack(d, lo, hi):
    # Undefined in Redis's docs, but a listpack answers deterministically: Shoal walks it the same way.
    d.check("ZADD", "z", 1, "d", 2, "a", 3, "c", 4, "b", 5, "e", 0, "c0")
    d.check("ZLEXCOUNT", "z", lo, hi)
    d.check("ZRANGEBYLEX", "z", lo, hi)
    d.check("ZREVRANGEBYLEX", "z", hi, lo)
    d.check("ZREVRANGEBYLEX", "z", hi, lo, "LIMIT", 1, 2)
    d.check("ZREMRANGEBYLEX", "z", lo, hi)
    check_zset(d, "z")


def test_zrange_option_errors(d):
    d.check("ZADD", "z", 1, "a", 2, "b", 3, "c")
    d.check("SET", "str", "v")
    for key in ("z", "nokey", "str"):
        for args in (
            (0, -1, "LIMIT", 0, 1), (0, -1, "WITHSCORES", "LIMIT", 0, 1, "REV"), ("-", "+", "BYLEX", "WITHSCORES"),
            (0, 1, "BYSCORE", "BYLEX"), (0, 1, "BYLEX", "BYSCORE"), (0, 1, "REV", "REV"), (0, 1, "LIMIT", 0),
            (0, 1, "LIMIT", "x", 1, "BYSCORE"), (0, 1, "LIMIT", 0, "y", "BYSCORE"), (0, 1, "FOO"),
            ("(0", 1, "BYSCORE", "LIMIT", 0, 1), ("[a", "[z", "BYLEX", "LIMIT", 1, 1, "REV"), ("x", 1),
            (0, 1, "withscores", "withscores"), (0, 1, "LIMIT", 0, 1, "LIMIT", 1, 1, "BYSCORE"),
            ("a", "b", "BYLEX"), ("x", "y", "BYSCORE"), (0, -1, "LIMIT", 0, 1, "BYSCORE", "WITHSCORES", "BYLEX"),
        ):
            d.check("ZRANGE", key, *args)
            d.check("ZRANGESTORE", "dst", key, *args)
        for cmd in ("ZRANGEBYSCORE", "ZREVRANGEBYSCORE", "ZRANGEBYLEX", "ZREVRANGEBYLEX", "ZREVRANGE"):
            for args in ((0, 1, "REV"), (0, 1, "BYSCORE"), (0, 1, "BYLEX"), (0, 1, "WITHSCORES"),
                         (0, 1, "LIMIT", 0, 1), ("-", "+", "LIMIT", 0, 1), ("+", "-", "WITHSCORES")):
                d.check(cmd, key, *args)
    d.check("EXISTS", "dst")


# ------------------------------------------------------------------ writes


def test_zrem(d):
    d.check_all(
        ("ZADD", "z", 1, "a", 2, "b", 3, "c"), ("ZREM", "z", "nope"), ("ZREM", "z", "a", "a", "nope"),
        ("ZREM", "z", "b", "c", "x"), ("EXISTS", "z"), ("ZREM", "z", "a"), ("ZREM", "nokey", "a"),
        ("SET", "str", "v"), ("ZREM", "str", "a"),
    )


def test_remrange_errors(d):
    d.check("ZADD", "z", 1, "a")
    d.check("SET", "str", "v")
    for key in ("z", "nokey", "str"):
        d.check_all(
            ("ZREMRANGEBYRANK", key, "x", 1), ("ZREMRANGEBYRANK", key, 0, "1.5"), ("ZREMRANGEBYSCORE", key, "x", 1),
            ("ZREMRANGEBYSCORE", key, 0, "(x"), ("ZREMRANGEBYLEX", key, "a", "+"), ("ZREMRANGEBYLEX", key, "-", "z"),
            ("ZREMRANGEBYRANK", key, 5, 10), ("ZREMRANGEBYSCORE", key, 5, 10), ("ZREMRANGEBYLEX", key, "[x", "+"),
        )
    check_zset(d, "z")


def test_pops(d):
    d.check("ZADD", "z", *[x for i in range(8) for x in (i, f"m{i}")])
    d.check("SET", "str", "v")
    d.check_all(
        ("ZPOPMIN", "z"), ("ZPOPMAX", "z"), ("ZPOPMIN", "z", 2), ("ZPOPMAX", "z", 1), ("ZPOPMIN", "z", 0),
        ("ZPOPMIN", "z", -1), ("ZPOPMIN", "z", "x"), ("ZPOPMIN", "z", 1, 2), ("ZPOPMIN", "nokey"),
        ("ZPOPMIN", "nokey", 3), ("ZPOPMIN", "nokey", 0), ("ZPOPMIN", "nokey", -1), ("ZPOPMIN", "str"),
        ("ZPOPMIN", "str", 0), ("ZPOPMAX", "str", -1), ("ZPOPMAX", "z", LLONG_MAX), ("EXISTS", "z"),
    )


def test_zmpop(d):
    d.check("ZADD", "a", 1, "x", 2, "y", 3, "z")
    d.check("ZADD", "b", 10, "p")
    d.check("SET", "str", "v")
    d.check_all(
        ("ZMPOP", 1, "a", "MIN"), ("ZMPOP", 2, "nokey", "a", "max", "COUNT", 5), ("ZMPOP", 2, "a", "b", "MIN"),
        ("ZMPOP", 1, "nokey", "MIN"), ("ZMPOP", 2, "nokey", "str", "MIN"), ("ZMPOP", 2, "b", "str", "MIN"),
        ("ZMPOP", 0, "a", "MIN"), ("ZMPOP", -1, "a", "MIN"), ("ZMPOP", "x", "a", "MIN"), ("ZMPOP", 3, "a", "MIN"),
        ("ZMPOP", 1, "a", "LEFT"), ("ZMPOP", 1, "a", "MIN", "COUNT"), ("ZMPOP", 1, "a", "MIN", "COUNT", 0),
        ("ZMPOP", 1, "a", "MIN", "COUNT", -1), ("ZMPOP", 1, "a", "MIN", "COUNT", "x"),
        ("ZMPOP", 1, "a", "MIN", "COUNT", 1, "COUNT", 1), ("ZMPOP", 1, "a", "MIN", "FOO", 1),
        ("ZMPOP", LLONG_MAX, "a", "MIN"), ("ZMPOP", 1, "a", "MIN", "COUNT", LLONG_MAX),
    )


def test_blocking_commands_with_data(d):
    d.check("ZADD", "a", 1, "x", 2, "y", 3, "z", 4, "w")
    d.check("SET", "str", "v")
    d.check_all(
        ("BZPOPMIN", "a", 0), ("BZPOPMAX", "nokey", "a", 0), ("BZMPOP", 0, 1, "a", "MIN", "COUNT", 1),
        ("BZMPOP", "0.5", 2, "nokey", "a", "MAX", "COUNT", 10), ("EXISTS", "a"), ("ZADD", "a", 1, "x"),
        ("BZPOPMIN", "str", "a", 0), ("BZPOPMIN", "a", "str", 0),
    )


def test_blocking_argument_errors(d):
    d.check("ZADD", "a", *[x for i in range(20) for x in (i, f"m{i}")])
    for argv in (
        ("BZPOPMIN", "a", "x"), ("BZPOPMIN", "a", "-1"), ("BZPOPMIN", "a", "nan"), ("BZPOPMIN", "a", "inf"),
        ("BZPOPMAX", "a", "1e400"), ("BZPOPMIN", "a", "0x10"), ("BZPOPMIN", "a", ""), ("BZPOPMIN", "a", "1.5"),
        ("BZMPOP", "x", 1, "a", "MIN"), ("BZMPOP", -1, 1, "a", "MIN"), ("BZMPOP", 0, 0, "a", "MIN"),
        ("BZMPOP", "x", 0, "a", "MIN"), ("BZMPOP", "x", 1, "a", "MID"), ("BZMPOP", 0, 1, "a", "MIN", "COUNT", 0),
        ("BZMPOP", "x", 1, "a", "MIN", "COUNT", 0), ("BZMPOP", 0, 2, "a", "MIN"), ("BZMPOP", 0, 1, "a"),
    ):
        d.check(*argv)
    d.check("ZRANGE", "a", 0, -1)


def test_small_timeouts_on_missing_keys(d):
    d.check("BZPOPMIN", "nokey", "0.01")
    d.check("BZPOPMAX", "nokey", "other", "0.01")
    d.check("BZMPOP", "0.01", 1, "nokey", "MIN")


def test_blocking_commands_in_multi(d):
    d.check("MULTI")
    for argv in (("BZPOPMIN", "nokey", 0), ("BZPOPMAX", "nokey", 0), ("BZMPOP", 0, 1, "nokey", "MIN"),
                 ("ZADD", "k", 1, "a"), ("BZPOPMIN", "k", 0), ("BZMPOP", 0, 1, "k", "MAX")):
        d.check(*argv)
    d.check("EXEC")


# ------------------------------------------------------------------ set operations


def _setup_setops(d):
    d.check("ZADD", "z1", 1, "a", 2, "b", 3, "c", "inf", "i", "-inf", "n")
    d.check("ZADD", "z2", 10, "b", 20, "c", 30, "d", "-inf", "i", "inf", "n")
    d.check("ZADD", "z3", "1.5", "c", "2.5", "d", "3.5", "e")
    d.check("SADD", "s1", "a", "c", "x", "1", "2")
    d.check("SADD", "ints", "1", "2", "3")
    d.check("SET", "str", "v")
    d.check("RPUSH", "list", "a")


SETOP_ARGS = [
    (2, "z1", "z2"), (3, "z1", "z2", "z3"), (1, "z1"), (2, "z1", "z1"), (2, "z1", "nokey"), (2, "nokey", "z1"),
    (2, "z1", "s1"), (2, "s1", "ints"), (3, "s1", "z3", "ints"), (2, "z1", "z2", "WEIGHTS", 2, 3),
    (2, "z1", "z2", "WEIGHTS", 0, "-1"), (2, "z1", "z2", "WEIGHTS", "inf", "-inf"), (2, "z1", "z2", "AGGREGATE", "MIN"),
    (2, "z1", "z2", "AGGREGATE", "max"), (2, "z1", "z2", "AGGREGATE", "sum", "WEIGHTS", "0.5", "2"),
    (3, "z1", "z2", "s1", "WEIGHTS", 1, 2, 3, "AGGREGATE", "MAX", "AGGREGATE", "MIN"),
    (2, "z1", "z2", "WEIGHTS", 1), (2, "z1", "z2", "WEIGHTS", 1, "x"), (2, "z1", "z2", "WEIGHTS", 1, "nan"),
    (2, "z1", "z2", "AGGREGATE"), (2, "z1", "z2", "AGGREGATE", "avg"), (2, "z1", "z2", "FOO"),
    (2, "z1", "str"), (2, "str", "z1", "FOO"), (2, "list", "nokey"), (0, "z1"), (-1, "z1"), ("x", "z1"),
    (3, "z1", "z2"), (LLONG_MAX, "z1"), (2, "z1", "z2", "WITHSCORES"), (1, "z1", "LIMIT", 1),
    (2, "z1", "z2", "WEIGHTS", "1e400", 1),
]


@pytest.mark.parametrize("args", SETOP_ARGS, ids=repr)
def test_set_operations(d, args):
    _setup_setops(d)
    for cmd in ("ZUNION", "ZINTER", "ZDIFF"):
        d.check(cmd, *args)
        d.check(cmd, *args, "WITHSCORES")
    for cmd in ("ZUNIONSTORE", "ZINTERSTORE", "ZDIFFSTORE"):
        d.check(cmd, "dst", *args)
        check_zset(d, "dst")
    d.check("ZINTERCARD", *args)
    for limit in (0, 1, 2, 100, -1, "x"):
        d.check("ZINTERCARD", *args, "LIMIT", limit)


def test_store_overwrites_and_deletes(d):
    _setup_setops(d)
    d.check("SET", "dst", "old")
    d.check("EXPIRE", "dst", 100)
    d.check("ZUNIONSTORE", "dst", 1, "z1")
    d.check("TTL", "dst")
    check_zset(d, "dst")
    d.check("ZINTERSTORE", "dst", 2, "z1", "nokey")
    d.check("EXISTS", "dst")
    d.check("ZINTERSTORE", "dst", 2, "z1", "nokey")
    d.check("ZRANGESTORE", "dst", "z1", 0, 1)
    d.check("ZRANGESTORE", "dst", "z1", 10, 11)
    d.check("EXISTS", "dst")
    d.check("ZUNIONSTORE", "z1", 2, "z1", "z2")  # destination among the sources
    check_zset(d, "z1")
    d.check("ZRANGESTORE", "z2", "z2", 0, 1, "REV")
    check_zset(d, "z2")


@pytest.mark.parametrize("n,width", [(128, 1), (129, 1), (3, 64), (3, 65), (200, 1), (0, 1)])
def test_store_encodings(d, n, width):
    d.check("ZADD", "big", *[x for i in range(300) for x in (i, f"{i:0{width}d}")])
    d.check("ZADD", "small", *[x for i in range(n) for x in (i, f"{i:0{width}d}")] or [1, "z"])
    for argv in (("ZRANGESTORE", "dst", "big", 0, n - 1), ("ZRANGESTORE", "dst", "big", 0, n - 1, "REV"),
                 ("ZRANGESTORE", "dst", "big", 0, n - 1, "BYSCORE"), ("ZRANGESTORE", "dst", "big", "-", "+", "BYLEX",
                                                                     "LIMIT", 0, n),
                 ("ZUNIONSTORE", "dst", 1, "small"), ("ZINTERSTORE", "dst", 2, "small", "big"),
                 ("ZDIFFSTORE", "dst", 1, "small"), ("ZRANGESTORE", "dst", "small", 0, -1)):
        d.check(*argv)
        check_zset(d, "dst")


# ------------------------------------------------------------------ encodings


def test_encoding_thresholds(d):
    d.check("ZADD", "z", *[x for i in range(128) for x in (i, f"m{i}")])
    d.check("OBJECT", "ENCODING", "z")
    d.check("ZADD", "z", 128, "m128")
    d.check("OBJECT", "ENCODING", "z")
    d.check("ZREMRANGEBYRANK", "z", 0, -3)
    d.check("OBJECT", "ENCODING", "z")  # never back
    d.check("ZADD", "v", 1, "x" * 64)
    d.check("OBJECT", "ENCODING", "v")
    d.check("ZADD", "v", 1, "x" * 65)
    d.check("OBJECT", "ENCODING", "v")
    d.check("ZADD", "w", 1, "x" * 65)
    d.check("OBJECT", "ENCODING", "w")
    d.check("ZADD", "dup", *[x for _ in range(200) for x in (1, "a")])  # 7.0: no size hint up front
    d.check("OBJECT", "ENCODING", "dup")
    d.check("ZADD", "xx", 1, "a")
    d.check("ZADD", "xx", "XX", 1, "x" * 100)
    d.check("OBJECT", "ENCODING", "xx")
    d.check("ZINCRBY", "inc", 1, "x" * 100)
    d.check("OBJECT", "ENCODING", "inc")
    d.check("COPY", "z", "zc")
    d.check("COPY", "xx", "xxc")
    for key in ("z", "zc", "xx", "xxc", "dup"):
        check_zset(d, key)


def test_encoding_follows_config(redis_proc, shoal_proc, differ):
    try:
        for c in (differ.redis, differ.shoal):
            c.call("CONFIG", "SET", "zset-max-listpack-entries", "4")
            c.call("CONFIG", "SET", "zset-max-listpack-value", "8")
        for argv in (("ZADD", "a", 1, "a", 2, "b", 3, "c", 4, "d"), ("OBJECT", "ENCODING", "a"), ("ZADD", "a", 5, "e"),
                     ("OBJECT", "ENCODING", "a"), ("ZADD", "b", 1, "123456789"), ("OBJECT", "ENCODING", "b"),
                     ("ZADD", "c", 1, "12345678"), ("OBJECT", "ENCODING", "c"), ("ZUNIONSTORE", "u", 1, "a"),
                     ("OBJECT", "ENCODING", "u"), ("ZRANGESTORE", "r", "a", 0, 3), ("OBJECT", "ENCODING", "r"),
                     ("ZRANGESTORE", "r", "a", 0, 4), ("OBJECT", "ENCODING", "r"), ("ZRANGESTORE", "r", "a", 0, 4,
                                                                                    "BYSCORE"),
                     ("OBJECT", "ENCODING", "r")):
            differ.check(*[str(x) for x in argv])
        for c in (differ.redis, differ.shoal):
            c.call("CONFIG", "SET", "zset-max-listpack-entries", "0")
        for argv in (("ZADD", "z0", "1", "a"), ("OBJECT", "ENCODING", "z0"), ("ZRANGESTORE", "r0", "z0", "0", "-1"),
                     ("OBJECT", "ENCODING", "r0"), ("ZUNIONSTORE", "u0", "1", "z0"), ("OBJECT", "ENCODING", "u0"),
                     ("ZADD", "z1", "-0", "a"), ("ZSCORE", "z1", "a")):
            differ.check(*argv)
    finally:
        for c in (differ.redis, differ.shoal):
            c.call("CONFIG", "SET", "zset-max-listpack-entries", "128")
            c.call("CONFIG", "SET", "zset-max-listpack-value", "64")


def test_generic_commands_on_zsets(d):
    d.check("ZADD", "z", 1, "a", 2, "b")
    d.check_all(("TYPE", "z"), ("OBJECT", "ENCODING", "z"), ("RENAME", "z", "y"), ("ZRANGE", "y", 0, -1),
                ("COPY", "y", "x"), ("ZADD", "x", 3, "c"), ("ZCARD", "y"), ("ZCARD", "x"), ("DEBUG", "DIGEST"),
                ("GET", "y"), ("LPUSH", "y", "v"), ("SCAN", 0, "TYPE", "zset"), ("SET", "y", "s"), ("TYPE", "y"))


def test_digest_of_many_shapes(d):
    d.check("ZADD", "a", *[x for i, s in enumerate(WEIRD_SCORES) for x in (s, f"m{i}")])
    d.check("ZADD", "b", *[x for i in range(150) for x in (i * 0.37, f"member-{i}")])
    d.check("ZADD", "c", 1, "x" * 80, "-0", "neg", "inf", "i")
    for key in ("a", "b", "c"):
        check_zset(d, key)
    d.check("DEBUG", "DIGEST")


# ------------------------------------------------------------------ ZRANDMEMBER (properties)


def _zrandmember_props(client, key, members: dict, resp3: bool):
    size = len(members)
    assert parse(client.call("ZRANDMEMBER", key)) in members
    for count in (1, 2, size - 1, size, size + 5, 0):
        reply = parse(client.call("ZRANDMEMBER", key, str(count)))
        assert len(reply) == min(count, size)
        assert len(set(reply)) == len(reply) and set(reply) <= set(members)
        if count >= size:
            # The whole set, highest first (Redis walks it from the tail).
            assert reply == sorted(members, key=lambda m: (members[m], m), reverse=True)
        reply = parse(client.call("ZRANDMEMBER", key, str(count), "WITHSCORES"))
        pairs = reply if resp3 else [reply[i:i + 2] for i in range(0, len(reply), 2)]
        assert len(pairs) == min(count, size)
        for m, s in pairs:
            assert float(s) == members[m]
    for count in (1, 3, size * 3):
        reply = parse(client.call("ZRANDMEMBER", key, str(-count)))
        assert len(reply) == count and set(reply) <= set(members)
        reply = parse(client.call("ZRANDMEMBER", key, str(-count), "WITHSCORES"))
        pairs = reply if resp3 else [reply[i:i + 2] for i in range(0, len(reply), 2)]
        assert len(pairs) == count
        for m, s in pairs:
            assert float(s) == members[m]


@pytest.mark.parametrize("size", [1, 5, 100, 300])
@pytest.mark.parametrize("resp3", [False, True])
def test_zrandmember_properties(shoal, size, resp3):
    if resp3:
        shoal.call("HELLO", "3")
    members = {f"m{i}".encode(): float(i % 7) for i in range(size)}
    shoal.call("ZADD", "z", *[x for m, s in members.items() for x in (str(s), m)])
    _zrandmember_props(shoal, "z", members, resp3)


def test_zrandmember_covers_every_member(shoal):
    shoal.call("ZADD", "z", *[x for i in range(10) for x in (i, f"m{i}")])
    seen = set(parse(shoal.call("ZRANDMEMBER", "z", "-1000")))
    assert len(seen) == 10
    seen = set()
    for _ in range(200):
        seen.update(parse(shoal.call("ZRANDMEMBER", "z", "3")))
    assert len(seen) == 10


def test_zrandmember_shapes_and_errors(d):
    d.check("ZADD", "z", 1, "a", 2, "b", 3, "c")
    d.check_all(
        ("ZRANDMEMBER", "z", 3), ("ZRANDMEMBER", "z", 10, "WITHSCORES"), ("ZRANDMEMBER", "z", 0, "WITHSCORES"),
        ("ZRANDMEMBER", "z", "x"), ("ZRANDMEMBER", "z", 1, "FOO"), ("ZRANDMEMBER", "z", 1, "WITHSCORES", "x"),
        ("ZRANDMEMBER", "z", LLONG_MIN), ("ZRANDMEMBER", "z", LLONG_MAX, "WITHSCORES"),
        ("ZRANDMEMBER", "z", "-4611686018427387904", "WITHSCORES"), ("ZRANDMEMBER", "z", "x", "FOO"),
        ("ZRANDMEMBER", "nokey", 5, "WITHSCORES"), ("ZRANDMEMBER", "nokey", "-5"), ("ZRANDMEMBER", "nokey"),
        ("SET", "str", "v"), ("ZRANDMEMBER", "str"), ("ZRANDMEMBER", "str", 1), ("ZRANDMEMBER", "str", 0),
        ("ZRANDMEMBER", "str", "x"),
    )


# ------------------------------------------------------------------ ZSCAN


def test_zscan_listpack_exact(d):
    d.check("ZADD", "z", *[x for i, s in enumerate(WEIRD_SCORES) for x in (s, f"m{i}")])
    for args in ((0,), (0, "COUNT", 1), (0, "MATCH", "m1*"), (0, "MATCH", "*", "COUNT", 1000), (7,),
                 (0, "COUNT", 0), (0, "COUNT", "x"), (0, "TYPE", "zset"), (0, "MATCH"), (0, "FOO", 1),
                 ("-1",), ("18446744073709551616",), ("x",), ("",)):
        d.exact("ZSCAN", "z", *args)
        d.exact("ZSCAN", "nokey", *args)


def _zscan_all(client, key, *opts):
    cursor = b"0"
    seen = []
    for _ in range(10000):
        cursor, page = parse(client.call("ZSCAN", key, cursor, *opts))
        seen += [(page[i], page[i + 1]) for i in range(0, len(page), 2)]
        if cursor == b"0":
            return seen
    raise AssertionError("ZSCAN did not finish")


@pytest.mark.parametrize("count", [1, 7, 10, 1000])
def test_zscan_skiplist_full_iteration(shoal, count):
    members = {f"member:{i}".encode(): (i * 1.25 if i % 5 else -i) for i in range(400)}
    shoal.call("ZADD", "z", *[x for m, s in members.items() for x in (repr(float(s)), m)])
    assert parse(shoal.call("OBJECT", "ENCODING", "z")) == b"skiplist"
    seen = _zscan_all(shoal, "z", "COUNT", str(count))
    assert len(seen) == len(members)
    assert {m: float(s) for m, s in seen} == {m: float(s) for m, s in members.items()}
    matched = _zscan_all(shoal, "z", "MATCH", "member:1?", "COUNT", str(count))
    assert sorted(m for m, _ in matched) == sorted(m for m in members if m.startswith(b"member:1") and len(m) == 9)


def test_zscan_skiplist_under_changes(shoal):
    shoal.call("ZADD", "z", *[x for i in range(300) for x in (i, f"m{i}")])
    cursor, seen, added = b"0", set(), 0
    while True:
        cursor, page = parse(shoal.call("ZSCAN", "z", cursor))
        seen.update(page[0::2])
        shoal.call("ZADD", "z", 1, f"new{added}")
        shoal.call("ZREM", "z", f"m{added + 150}")
        added += 1
        if cursor == b"0":
            break
    # Members present from start to end are all seen (m0..m149 are never removed).
    assert {f"m{i}".encode() for i in range(150)} <= seen


# ------------------------------------------------------------------ keyspace events, dirty, hits


EVENT_SCRIPT = [
    ("ZADD", "z", 1, "a", 2, "b", 3, "c"), ("ZADD", "z", 1, "a"), ("ZADD", "z", "NX", 5, "a"), ("ZADD", "z", "CH", 9, "a"),
    ("ZINCRBY", "z", 1, "b"), ("ZINCRBY", "z", 0, "b"), ("ZADD", "z", "INCR", 1, "n"), ("ZREM", "z", "nope"),
    ("ZREM", "z", "n"), ("ZREMRANGEBYRANK", "z", 10, 20), ("ZREMRANGEBYRANK", "z", 0, 0), ("ZADD", "z", 1, "x", 1, "y"),
    ("ZREMRANGEBYSCORE", "z", 100, 200), ("ZREMRANGEBYSCORE", "z", 1, 1), ("ZREMRANGEBYLEX", "z", "[zz", "+"),
    ("ZADD", "l", 0, "a", 0, "b"), ("ZREMRANGEBYLEX", "l", "-", "+"), ("ZADD", "z", 1, "p", 2, "q"),
    ("ZPOPMIN", "z"), ("ZPOPMAX", "z", 2), ("ZPOPMIN", "z", 0), ("ZPOPMIN", "nokey"), ("ZADD", "m", 1, "a"),
    ("ZMPOP", 1, "m", "MAX"), ("ZADD", "m", 1, "a", 2, "b"), ("BZPOPMIN", "m", 0), ("BZMPOP", 0, 1, "m", "MIN"),
    ("ZADD", "u", 1, "a"), ("ZUNIONSTORE", "d", 1, "u"), ("ZINTERSTORE", "d", 1, "u"), ("ZDIFFSTORE", "d", 1, "u"),
    ("ZRANGESTORE", "d", "u", 0, -1), ("ZINTERSTORE", "d", 2, "u", "nokey"), ("ZINTERSTORE", "d", 2, "u", "nokey"),
    ("ZRANGESTORE", "d", "u", 5, 6), ("ZUNIONSTORE", "d", 1, "u"), ("ZRANGESTORE", "d", "nokey", 0, -1),
    ("ZADD", "e", 1, "a"), ("ZREM", "e", "a"), ("ZADD", "e", 1, "a"), ("ZREMRANGEBYRANK", "e", 0, -1),
    ("ZADD", "e", 1, "a"), ("ZREMRANGEBYSCORE", "e", "-inf", "inf"), ("ZADD", "e", 0, "a"), ("ZPOPMAX", "e"),
    ("ZADD", "e", "XX", 1, "a"), ("ZADD", "z", "INCR", "inf", "inf"), ("ZADD", "z", "INCR", "-inf", "inf"),
]


def test_keyspace_events(redis_proc, shoal_proc, differ):
    same_keyspace_events(redis_proc, shoal_proc, EVENT_SCRIPT)


def test_dirty_counts(redis_proc, shoal_proc, differ):
    same_counter_deltas(redis_proc, shoal_proc, EVENT_SCRIPT)


def test_keyspace_hits_and_misses(redis_proc, shoal_proc, differ):
    commands = [
        ("ZCARD", "z"), ("ZCARD", "nokey"), ("ZSCORE", "z", "a"), ("ZMSCORE", "nokey", "a"), ("ZRANGE", "z", "0", "1"),
        ("ZRANGE", "nokey", "0", "1"), ("ZRANGESTORE", "d", "z", "0", "1"), ("ZRANGESTORE", "d", "nokey", "0", "1"),
        ("ZUNION", "2", "z", "nokey"), ("ZUNIONSTORE", "d", "2", "z", "nokey"), ("ZINTERCARD", "1", "z"),
        ("ZADD", "z", "1", "c"), ("ZPOPMIN", "nokey"), ("ZRANK", "z", "a"), ("ZCOUNT", "z", "0", "1"),
        ("ZRANDMEMBER", "z"), ("ZSCAN", "z", "0"), ("ZMPOP", "1", "nokey", "MIN"), ("BZPOPMIN", "z", "0"),
        ("ZREM", "nokey", "a"), ("ZLEXCOUNT", "z", "-", "+"), ("ZREMRANGEBYRANK", "z", "0", "0"),
    ]
    same_counter_deltas(redis_proc, shoal_proc, commands, setup=[("ZADD", "z", "1", "a", "2", "b")])


# ------------------------------------------------------------------ random command sequences

KEYS = ["k1", "k2", "k3", "s"]
_keys = st.sampled_from(KEYS)
_members = st.sampled_from(["a", "b", "c", "", "1", "a\r\n", "aa", "b\x00", "-", "+"])
_scores = st.one_of(st.sampled_from(WEIRD_SCORES + ["nan", "x", "1e400"]),
                    st.floats(allow_nan=False).map(repr), st.integers(-5, 5).map(str))
_idx = st.one_of(st.integers(-6, 6).map(str), st.sampled_from(["x", LLONG_MAX, LLONG_MIN]))
_score_bound = st.one_of(_scores, _scores.map(lambda s: "(" + s))
_lex_bound = st.one_of(st.sampled_from(["-", "+", "x", "[", "("]),
                       st.tuples(st.sampled_from(["[", "("]), _members).map("".join))
_limit = st.one_of(st.just(()), st.tuples(st.just("LIMIT"), _idx, _idx))
_zadd_opts = st.lists(st.sampled_from(["NX", "XX", "GT", "LT", "CH", "INCR"]), max_size=2)
_aggr = st.one_of(st.just(()), st.tuples(st.just("AGGREGATE"), st.sampled_from(["SUM", "MIN", "MAX", "X"])))


def _pairs(min_size=1):
    return st.lists(st.tuples(_scores, _members), min_size=min_size, max_size=4).map(
        lambda ps: [x for p in ps for x in p])


_numkeys = st.lists(_keys, min_size=1, max_size=3)

_commands = st.one_of(
    st.tuples(_keys, _zadd_opts, _pairs()).map(lambda t: ("ZADD", t[0], *t[1], *t[2])),
    st.tuples(_keys, _pairs(3)).map(lambda t: ("ZADD", t[0], *t[1])),
    _cmd("ZINCRBY", _keys, _scores, _members),
    st.tuples(_keys, st.lists(_members, min_size=1, max_size=3)).map(lambda t: ("ZREM", t[0], *t[1])),
    _cmd("ZCARD", _keys), _cmd("ZSCORE", _keys, _members), _cmd("ZRANK", _keys, _members),
    _cmd("ZREVRANK", _keys, _members), _cmd("ZMSCORE", _keys, _members, _members),
    _cmd("ZCOUNT", _keys, _score_bound, _score_bound), _cmd("ZLEXCOUNT", _keys, _lex_bound, _lex_bound),
    st.tuples(_keys, _idx, _idx, st.sampled_from([(), ("WITHSCORES",), ("REV",), ("REV", "WITHSCORES")])).map(
        lambda t: ("ZRANGE", t[0], t[1], t[2], *t[3])),
    st.tuples(_keys, _score_bound, _score_bound, st.sampled_from([(), ("WITHSCORES",)]), _limit).map(
        lambda t: ("ZRANGEBYSCORE", t[0], t[1], t[2], *t[3], *t[4])),
    st.tuples(_keys, _score_bound, _score_bound, _limit).map(
        lambda t: ("ZREVRANGEBYSCORE", t[0], t[1], t[2], "WITHSCORES", *t[3])),
    st.tuples(_keys, _lex_bound, _lex_bound, _limit).map(lambda t: ("ZRANGEBYLEX", t[0], t[1], t[2], *t[3])),
    st.tuples(_keys, _lex_bound, _lex_bound, _limit).map(lambda t: ("ZREVRANGEBYLEX", t[0], t[1], t[2], *t[3])),
    st.tuples(_keys, _keys, _score_bound, _score_bound, st.sampled_from(["BYSCORE", "BYLEX"]), _limit).map(
        lambda t: ("ZRANGESTORE", t[0], t[1], t[2], t[3], t[4], *t[5])),
    _cmd("ZREMRANGEBYRANK", _keys, _idx, _idx), _cmd("ZREMRANGEBYSCORE", _keys, _score_bound, _score_bound),
    _cmd("ZREMRANGEBYLEX", _keys, _lex_bound, _lex_bound),
    _cmd("ZPOPMIN", _keys), _cmd("ZPOPMAX", _keys, st.sampled_from(["0", "1", "3", "-1"])),
    st.tuples(_numkeys, st.sampled_from(["MIN", "MAX"]), st.sampled_from([(), ("COUNT", "2")])).map(
        lambda t: ("ZMPOP", str(len(t[0])), *t[0], t[1], *t[2])),
    st.tuples(st.sampled_from(["ZUNION", "ZINTER", "ZDIFF"]), _numkeys, _aggr, st.booleans()).map(
        lambda t: (t[0], str(len(t[1])), *t[1], *(t[2] if t[0] != "ZDIFF" else ()),
                   *(("WITHSCORES",) if t[3] else ()))),
    st.tuples(st.sampled_from(["ZUNIONSTORE", "ZINTERSTORE", "ZDIFFSTORE"]), _keys, _numkeys, _aggr).map(
        lambda t: (t[0], t[1], str(len(t[2])), *t[2], *(t[3] if t[0] != "ZDIFFSTORE" else ()))),
    st.tuples(_keys, _numkeys, _scores).map(
        lambda t: ("ZUNIONSTORE", t[0], str(len(t[1])), *t[1], "WEIGHTS", *([t[2]] * len(t[1])))),
    st.tuples(_numkeys).map(lambda t: ("ZINTERCARD", str(len(t[0])), *t[0])),
    _cmd("BZPOPMIN", _keys, _keys, st.sampled_from(["0.001", "-1", "x"])),
    _cmd("SET", _keys, _members), _cmd("DEL", _keys), _cmd("TYPE", _keys), _cmd("SADD", _keys, _members),
    _cmd("DEBUG", st.just("DIGEST-VALUE"), _keys), _cmd("OBJECT", st.just("ENCODING"), _keys),
    _cmd("COPY", _keys, _keys),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(commands=st.lists(_commands, min_size=1, max_size=30), resp3=st.booleans())
def test_random_command_sequences(differ, differ3, commands, resp3):
    d = differ3 if resp3 else differ
    d.both("FLUSHALL")
    for argv in commands:
        d.check(*argv)
    for key in KEYS:
        d.check("TYPE", key)
        d.check("ZRANGE", key, "0", "-1", "WITHSCORES")
    d.check("DEBUG", "DIGEST")


_big_members = st.integers(0, 400).map(lambda i: f"mem{i:03d}")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(st.one_of(
    st.tuples(st.just("ZADD"), st.lists(st.tuples(st.integers(-3, 3).map(str), _big_members), min_size=1,
                                        max_size=60)),
    st.tuples(st.just("ZREMRANGEBYSCORE"), st.integers(-3, 3).map(str), st.integers(-3, 3).map(str)),
    st.tuples(st.just("ZREMRANGEBYRANK"), st.integers(-200, 200).map(str), st.integers(-200, 200).map(str)),
    st.tuples(st.just("ZINCRBY"), st.sampled_from(["1", "-0.5", "inf"]), _big_members),
    st.tuples(st.just("ZPOPMIN"), st.integers(0, 50).map(str)),
), min_size=1, max_size=12))
def test_random_sequences_on_big_sets(differ, ops):
    differ.both("FLUSHALL")
    differ.check("ZADD", "big", *[x for i in range(0, 400, 3) for x in ("0", f"mem{i:03d}")])
    for op in ops:
        if op[0] == "ZADD":
            differ.check("ZADD", "big", *[x for p in op[1] for x in p])
        else:
            differ.check(op[0], "big", *op[1:])
        differ.check("ZRANGE", "big", "(0", "2", "BYSCORE", "WITHSCORES", "LIMIT", "3", "20")
        differ.check("ZREVRANGE", "big", "5", "30", "WITHSCORES")
        differ.check("ZRANK", "big", "mem150")
    differ.check("ZRANGE", "big", "0", "-1", "WITHSCORES")
    differ.check("OBJECT", "ENCODING", "big")
    differ.check("DEBUG", "DIGEST-VALUE", "big")


# ------------------------------------------------------------------ state machine


_dst_keys = st.sampled_from(KEYS[:-1])


def _float(text: str) -> float:
    return float.fromhex(text) if "x" in text else float(text)


class ZSetMachine(RuleBasedStateMachine):
    """Drives both servers with sorted set writes and checks them against each other and a model."""

    def __init__(self):
        super().__init__()
        self.model: dict[bytes, dict[bytes, float]] = {}

    @initialize()
    def connect(self):
        self.redis = RawClient(MACHINE_PORTS["redis"])
        self.shoal = RawClient(MACHINE_PORTS["shoal"])
        for c in (self.redis, self.shoal):
            c.call("SELECT", 9)
            c.call("FLUSHDB")
            c.call("SET", "s", "v")

    def teardown(self):
        for name in ("redis", "shoal"):
            c = getattr(self, name, None)
            if c is not None:
                c.close()

    def same(self, *argv):
        expected, actual = self.redis.call(*argv), self.shoal.call(*argv)
        assert expected == actual, (argv, expected, actual)
        return parse(expected)

    def _zset(self, key):
        return self.model.get(key.encode())

    @rule(key=_keys, pairs=st.lists(st.tuples(st.sampled_from(WEIRD_SCORES), _members), min_size=1, max_size=5),
          opts=st.sampled_from([(), ("NX",), ("XX",), ("GT",), ("LT",), ("XX", "GT", "CH")]))
    def zadd(self, key, pairs, opts):
        reply = self.same("ZADD", key, *opts, *[x for p in pairs for x in p])
        if key == "s":
            assert isinstance(reply, ReplyError)
            return
        z = self._zset(key)
        if z is None and "XX" in opts:
            return
        z = self.model.setdefault(key.encode(), {})
        for s, m in pairs:
            m, s = m.encode(), _float(s)
            cur = z.get(m)
            if cur is None:
                if "XX" not in opts:
                    z[m] = s
            elif "NX" not in opts and not ("GT" in opts and s <= cur) and not ("LT" in opts and s >= cur):
                z[m] = s

    @rule(key=_keys, incr=st.sampled_from(["1", "-2.5", "inf", "-inf", "0"]), member=_members)
    def zincrby(self, key, incr, member):
        reply = self.same("ZINCRBY", key, incr, member)
        if key == "s" or isinstance(reply, ReplyError):
            return
        z = self.model.setdefault(key.encode(), {})
        z[member.encode()] = z.get(member.encode(), 0.0) + float(incr)
        assert float(reply) == z[member.encode()]

    @rule(key=_keys, members=st.lists(_members, min_size=1, max_size=3))
    def zrem(self, key, members):
        self.same("ZREM", key, *members)
        z = self._zset(key)
        if z:
            for m in members:
                z.pop(m.encode(), None)
            if not z:
                del self.model[key.encode()]

    @rule(key=_keys, count=st.integers(0, 3), rev=st.booleans())
    def zpop(self, key, count, rev):
        reply = self.same("ZPOPMAX" if rev else "ZPOPMIN", key, count)
        z = self._zset(key)
        if not z:
            return
        order = sorted(z.items(), key=lambda kv: (kv[1], kv[0]), reverse=rev)[:count]
        assert reply[0::2] == [m for m, _ in order]
        for m, _ in order:
            del z[m]
        if not z:
            del self.model[key.encode()]

    @rule(key=_keys, lo=_score_bound, hi=_score_bound)
    def zremrangebyscore(self, key, lo, hi):
        self.same("ZREMRANGEBYSCORE", key, lo, hi)
        self._resync(key)

    @rule(key=_keys, lo=_lex_bound, hi=_lex_bound)
    def zremrangebylex(self, key, lo, hi):
        self.same("ZREMRANGEBYLEX", key, lo, hi)
        self._resync(key)

    @rule(dst=_dst_keys, srcs=_numkeys, op=st.sampled_from(["ZUNIONSTORE", "ZINTERSTORE", "ZDIFFSTORE"]))
    def store(self, dst, srcs, op):
        self.same(op, dst, len(srcs), *srcs)
        self._resync(dst)

    @rule(dst=_dst_keys, src=_keys, start=st.integers(-4, 4), stop=st.integers(-4, 4))
    def rangestore(self, dst, src, start, stop):
        self.same("ZRANGESTORE", dst, src, start, stop)
        self._resync(dst)

    def _resync(self, key):
        """Take the set from Redis after commands whose effect the model does not compute."""
        if key == "s":
            return
        reply = parse(self.redis.call("ZRANGE", key, 0, -1, "WITHSCORES"))
        if isinstance(reply, ReplyError):
            self.model.pop(key.encode(), None)
            return
        if reply:
            self.model[key.encode()] = {reply[i]: float(reply[i + 1]) for i in range(0, len(reply), 2)}
        else:
            self.model.pop(key.encode(), None)

    @rule(key=_keys, lo=_lex_bound, hi=_lex_bound)
    def lex_reads(self, key, lo, hi):
        self.same("ZRANGEBYLEX", key, lo, hi)
        self.same("ZLEXCOUNT", key, lo, hi)

    @rule(key=_keys, lo=_score_bound, hi=_score_bound, offset=st.integers(-1, 3), count=st.integers(-1, 3))
    def score_reads(self, key, lo, hi, offset, count):
        self.same("ZRANGEBYSCORE", key, lo, hi, "WITHSCORES", "LIMIT", offset, count)
        self.same("ZREVRANGEBYSCORE", key, hi, lo, "LIMIT", offset, count)
        self.same("ZCOUNT", key, lo, hi)

    @invariant()
    def agree(self):
        if not hasattr(self, "redis"):
            return
        for key in KEYS:
            if key == "s":
                continue
            reply = self.same("ZRANGE", key, 0, -1, "WITHSCORES")
            z = self.model.get(key.encode(), {})
            expected = sorted(z.items(), key=lambda kv: (kv[1], kv[0]))
            assert reply[0::2] == [m for m, _ in expected], key
            for text, (_, s) in zip(reply[1::2], expected):
                value = float(text)
                assert value == s or (math.isnan(s) and math.isnan(value))
            self.same("OBJECT", "ENCODING", key)
            self.same("DEBUG", "DIGEST-VALUE", key)


MACHINE_PORTS: dict[str, int] = {}


def test_zset_state_machine(redis_proc, shoal_proc, differ):
    MACHINE_PORTS.update(redis=redis_proc.port, shoal=shoal_proc.port)
    run_state_machine_as_test(ZSetMachine, settings=settings(max_examples=50, stateful_step_count=30, deadline=None))


# ------------------------------------------------------------------ the value class itself


def _model_sorted(d):
    return sorted(((s, m) for m, s in d.items()))


def test_zset_value_against_a_sorted_model():
    rng = random.Random(11)
    for listpack in (True, False):
        z = ZSet(listpack)
        model: dict[bytes, float] = {}
        for step in range(3000):
            m = b"m%d" % rng.randint(0, 60)
            op = rng.random()
            if op < 0.55:
                s = float(rng.randint(-5, 5)) / 2
                z.add(m, s)
                model[m] = s
            elif op < 0.75:
                assert z.remove(m) == (model.pop(m, None) is not None)
            elif op < 0.8 and model:
                n = rng.randint(1, 4)
                rev = rng.random() < 0.5
                expected = sorted(_model_sorted(model), reverse=rev)[:n]
                assert z.pop(n, rev) == [(mm, ss) for ss, mm in expected]
                for _, mm in expected:
                    del model[mm]
            items = _model_sorted(model)
            if step % 50 == 0:
                assert list(z.items()) == [(mm, ss) for ss, mm in items]
                lo, hi = sorted(rng.uniform(-3, 3) for _ in range(2))
                lo_ex, hi_ex = rng.random() < 0.5, rng.random() < 0.5
                inside = [(mm, ss) for ss, mm in items
                          if (ss > lo if lo_ex else ss >= lo) and (ss < hi if hi_ex else ss <= hi)]
                assert z.range_by_score(lo, hi, lo_ex, hi_ex) == inside
                assert z.count_in_score_range(lo, hi, lo_ex, hi_ex) == len(inside)
                assert z.range_by_score(lo, hi, lo_ex, hi_ex, reverse=True, offset=1, count=2) == inside[::-1][1:3]
                for mm in (b"m1", b"m7", b"nope"):
                    r = z.rank(mm)
                    assert r == (next((i for i, (_, x) in enumerate(items) if x == mm), None))
            assert len(z) == len(model)


def test_zset_lex_helpers():
    assert parse_lex_bound(b"-") is LEX_MIN and parse_lex_bound(b"+") is LEX_MAX
    assert parse_lex_bound(b"[a") == (b"a", False) and parse_lex_bound(b"(a") == (b"a", True)
    assert parse_lex_bound(b"a") is None and parse_lex_bound(b"") is None and parse_lex_bound(b"+a") is None
    for listpack in (True, False):
        z = ZSet(listpack)
        for m in (b"a", b"b", b"c", b"d"):
            z.add(m, 0.0)
        assert [m for m, _ in z.range_by_lex((b"b", False), LEX_MAX)] == [b"b", b"c", b"d"]
        assert [m for m, _ in z.range_by_lex((b"b", True), (b"d", True), reverse=True)] == [b"c"]
        assert z.count_in_lex_range(LEX_MIN, (b"c", False)) == 3
        assert z.remove_range_by_lex((b"a", True), (b"c", False)) == 2 and list(z.members()) == [b"a", b"d"]


def test_zset_value_keeps_negative_zero_only_as_skiplist():
    lp, sk = ZSet(True), ZSet(False)
    lp.add(b"a", -0.0)
    sk.add(b"a", -0.0)
    assert math.copysign(1, lp.score(b"a")) == 1 and math.copysign(1, sk.score(b"a")) == -1
    c = sk.copy()
    sk.add(b"b", 1.0)
    assert len(c) == 1 and not c.listpack
