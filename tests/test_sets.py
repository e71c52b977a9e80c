"""Set commands against real Redis 7.0, byte for byte.

Every test runs over RESP2 and RESP3 (the ``d`` fixture). Intsets list their
members in ascending order in both servers, so replies that come from an
intset are compared exactly (``exact``, ``check_members``); hashtable sets are
compared as sorted collections (tests/known_differences.py). Random commands
(SPOP, SRANDMEMBER) are checked by properties, and differentially only where
Redis's reply is deterministic (count >= size).
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from tests.differential import Differ
from tests.resp_client import RawClient, parse
from tests.type_helpers import ArgsDiffer, check_all, check_introspection, d, encoding  # noqa: F401
from tests.type_helpers import cmd as _cmd
from tests.type_helpers import same_counter_deltas, same_keyspace_events

SET_COMMANDS = (
    "sadd srem smembers sismember smismember scard spop srandmember smove sinter sintercard sinterstore "
    "sunion sunionstore sdiff sdiffstore sscan"
).split()
LLONG_MAX = "9223372036854775807"
LLONG_MIN = "-9223372036854775808"


def check_set(d, key):
    """Members (exactly, in ascending order, if an intset), size, encoding, type and digest agree."""
    enc = d.check("OBJECT", "ENCODING", key)
    compare = d.exact if b"intset" in enc else d.check
    compare("SMEMBERS", key)
    compare("SSCAN", key, 0)
    compare("SSCAN", key, 0, "MATCH", "*1*")
    compare("SUNION", key)
    d.check("SCARD", key)
    d.check("TYPE", key)
    d.check("DEBUG", "DIGEST-VALUE", key)


def _deterministic_algebra(d, op: str, keys) -> bool:
    """Is Redis's reply order for SINTER/SUNION/SDIFF of ``keys`` fixed (an intset drives it)?"""
    if op == "SINTER":
        sizes = []
        for key in keys:
            kind = parse(d.redis.call("TYPE", key))
            if kind == "none":
                return True  # empty reply
            if kind != "set":
                return True  # an error
            sizes.append((parse(d.redis.call("SCARD", key)), key))
        smallest = min(sizes, key=lambda t: t[0])[1]  # min() keeps the first of equals, like a stable sort
        return encoding(d, smallest) == b"intset"
    d.both(op + "STORE", "__tmp__", *keys)
    deterministic = parse(d.redis.call("TYPE", "__tmp__")) in ("none",) or encoding(d, "__tmp__") == b"intset"
    d.both("DEL", "__tmp__")
    return deterministic


def check_algebra(d, op: str, *keys):
    if _deterministic_algebra(d, op, keys):
        d.exact(op, *keys)
    else:
        d.check(op, *keys)
    d.check(op + "STORE", "__dst__", *keys)
    d.check("EXISTS", "__dst__")
    if parse(d.redis.call("EXISTS", "__dst__")):
        check_set(d, "__dst__")
    d.both("DEL", "__dst__")


# ----------------------------------------------------------------- COMMAND table

GETKEYS_ARGS = {
    "sadd": ["s", "m"], "srem": ["s", "m"], "sismember": ["s", "m"], "smismember": ["s", "m"], "spop": ["s", "2"],
    "srandmember": ["s", "2"], "smove": ["a", "b", "m"], "sinter": ["a", "b"], "sintercard": ["2", "a", "b"],
    "sinterstore": ["d", "a", "b"], "sunion": ["a", "b", "c"], "sunionstore": ["d", "a"], "sdiff": ["a", "b"],
    "sdiffstore": ["d", "a", "b"], "sscan": ["s", "0"],
}


@pytest.mark.parametrize("name", SET_COMMANDS)
def test_command_info_docs_getkeys(differ, name):
    differ.check("COMMAND", "INFO", name)
    differ.check("COMMAND", "DOCS", name)
    differ.check("COMMAND", "GETKEYS", name, *GETKEYS_ARGS.get(name, ["s"]))


def test_getkeys_for_sintercard(differ):
    for argv in (("sintercard", "3", "a", "b"), ("sintercard", "0", "a"), ("sintercard", "x", "a", "b"),
                 ("sintercard", "-1", "a"), ("sintercard", "1", "a", "LIMIT", "2"), ("sintercard", "2", "a", "b", "c")):
        differ.check("COMMAND", "GETKEYS", *argv)


# ------------------------------------------------------------------- basics


def test_add_remove_and_reads(d):
    check_all(
        d,
        ("SADD", "s", "3", "1", "2", "1"), ("SADD", "s", "-5", "100"), ("SADD", "s", "1"), ("SCARD", "s"),
        ("SISMEMBER", "s", "1"), ("SISMEMBER", "s", "01"), ("SISMEMBER", "s", "x"), ("SISMEMBER", "nokey", "1"),
        ("SMISMEMBER", "s", "1", "2", "x", "1"), ("SMISMEMBER", "nokey", "1", "2"), ("SCARD", "nokey"),
        ("SREM", "s", "1", "1", "x", "01"), ("SREM", "nokey", "1"), ("SMEMBERS", "nokey"),
        ("SADD", "w", "b", "a", "c"), ("SISMEMBER", "w", "a"), ("SREM", "w", "a", "z"), ("SMISMEMBER", "w", "a", "b"),
    )
    check_set(d, "s")
    check_set(d, "w")


def test_srem_empties(d):
    check_all(d, ("SADD", "s", "1", "2"), ("SREM", "s", "1", "2", "3"), ("EXISTS", "s"), ("SADD", "t", "a"),
              ("SREM", "t", "a"), ("TYPE", "t"), ("SMEMBERS", "t"))


@pytest.mark.parametrize("member", ["0", "-0", "01", "+1", " 1", "1 ", "1.0", "", LLONG_MAX, LLONG_MIN,
                                    "9223372036854775808", "-9223372036854775809", "1e3", "0x10", "abc", "\x00"])
def test_integer_members(d, member):
    check_all(d, ("SADD", "s", "5", "-3"), ("SADD", "s", member), ("SISMEMBER", "s", member), ("SADD", "t", member),
              ("SMISMEMBER", "s", member, "5"))
    check_set(d, "s")
    check_set(d, "t")
    check_all(d, ("SREM", "s", member), ("SREM", "t", member))
    check_set(d, "s")


def test_intset_order_is_numeric(d):
    values = ["100", "-1", "7", "-9223372036854775808", "9223372036854775807", "0", "20", "3", "-44"]
    d.check("SADD", "s", *values)
    assert encoding(d, "s") == b"intset"
    check_set(d, "s")
    d.exact("SPOP", "s", 100)
    d.check("SADD", "s", *values)
    d.exact("SRANDMEMBER", "s", 100)
    d.exact("SRANDMEMBER", "s", 9)


# ---------------------------------------------------------------- encodings


def test_intset_size_threshold(d):
    d.check("SADD", "s", *[str(i) for i in range(512)])
    assert encoding(d, "s") == b"intset"
    check_set(d, "s")
    d.check("SADD", "s", "512")
    assert encoding(d, "s") == b"hashtable"
    check_set(d, "s")
    d.check("SREM", "s", *[str(i) for i in range(500)])
    assert encoding(d, "s") == b"hashtable"  # never converted back
    check_set(d, "s")
    # ... but results built from it start over as intsets
    check_algebra(d, "SUNION", "s")
    check_algebra(d, "SINTER", "s", "s")
    check_algebra(d, "SDIFF", "s", "nokey")


def test_encoding_after_config_set(d):
    try:
        check_all(
            d, ("CONFIG", "SET", "set-max-intset-entries", "3"), ("SADD", "a", "1", "2", "3"), ("OBJECT", "ENCODING", "a"),
            ("SADD", "a", "3"), ("OBJECT", "ENCODING", "a"), ("SADD", "a", "4"), ("OBJECT", "ENCODING", "a"),
            ("SADD", "b", "1", "2"), ("CONFIG", "SET", "set-max-intset-entries", "1"), ("SADD", "b", "2"),
            ("OBJECT", "ENCODING", "b"), ("SADD", "b", "9"), ("OBJECT", "ENCODING", "b"),
            ("CONFIG", "SET", "set-max-intset-entries", "0"), ("SADD", "c", "1"), ("OBJECT", "ENCODING", "c"),
            ("SMOVE", "b", "d", "1"), ("OBJECT", "ENCODING", "d"),
            ("CONFIG", "SET", "set-max-intset-entries", "2"), ("SINTERSTORE", "e", "a", "a"),
            ("OBJECT", "ENCODING", "e"), ("SUNIONSTORE", "f", "c"), ("OBJECT", "ENCODING", "f"),
        )
    finally:
        d.check("CONFIG", "SET", "set-max-intset-entries", "512")


def test_sdiff_algorithm_decides_encoding(d):
    """Redis's SDIFF algorithm 2 builds the result from the whole first set (so it converts)."""
    d.check("SADD", "big", *[str(i) for i in range(600)])
    for j in range(4):
        d.check("SADD", f"cut{j}", *[str(i) for i in range(j * 100, j * 100 + 100)])
    check_algebra(d, "SDIFF", "big", "cut0", "cut1", "cut2", "cut3")  # algorithm 2: 200 left, hashtable
    check_algebra(d, "SDIFF", "big", "cut0")  # algorithm 1
    d.check("SADD", "small", *[str(i) for i in range(595)])
    check_algebra(d, "SDIFF", "big", "small")  # 5 left, intset
    check_algebra(d, "SDIFF", "big", "small", "big")
    check_algebra(d, "SDIFF", "big", "nokey", "cut1")


def test_spop_rebuilds_the_rest(d):
    """SPOP taking most of a set rebuilds it from the members left: back to an intset."""
    d.check("SADD", "s", *[str(i) for i in range(600)])
    assert encoding(d, "s") == b"hashtable"
    d.check("SPOP", "s", 590)  # shape only: random members
    d.check("SCARD", "s")
    d.check("OBJECT", "ENCODING", "s")
    d.check("SADD", "t", *[str(i) for i in range(600)])
    d.check("SPOP", "t", 100)  # few popped: the set is kept
    d.check("OBJECT", "ENCODING", "t")


def test_copy_rename_digest(d):
    check_all(
        d, ("SADD", "s", "1", "2", "x"), ("COPY", "s", "s2"), ("SADD", "s2", "3"), ("SMISMEMBER", "s", "3"),
        ("RENAME", "s2", "s3"), ("SADD", "i", "5", "6"), ("COPY", "i", "i2"), ("DEBUG", "DIGEST-VALUE", "s", "s3", "i2"),
        ("EXPIRE", "i", 100), ("DEBUG", "DIGEST-VALUE", "i"), ("DEBUG", "DIGEST"),
    )
    check_set(d, "s3")
    check_set(d, "i2")


# ------------------------------------------------------------ set algebra


def test_algebra_small(d):
    check_all(d, ("SADD", "a", "1", "2", "3", "4"), ("SADD", "b", "3", "4", "5"), ("SADD", "c", "4", "x"),
              ("SADD", "e", "9"), ("SET", "str", "v"))
    for keys in (("a", "b"), ("a", "b", "c"), ("b", "a"), ("a",), ("a", "nokey"), ("nokey", "a"), ("c", "a", "b"),
                 ("a", "a"), ("e", "a"), ("a", "e", "b"), ("nokey",)):
        for op in ("SINTER", "SUNION", "SDIFF"):
            check_algebra(d, op, *keys)
        d.check("SINTERCARD", len(keys), *keys)
        d.check("SINTERCARD", len(keys), *keys, "LIMIT", 1)


def test_sinter_walks_the_smallest_set(d):
    """SINTER lists the members in the order of its smallest set: ascending if that is an intset."""
    check_all(d, ("SADD", "big", "x", "50", "30", "10", "20", "40"), ("SADD", "small", "30", "10", "50"),
              ("SADD", "same", "50", "10", "30"))
    for keys in (("big", "small"), ("small", "big"), ("big", "same", "small"), ("big", "big", "small")):
        d.exact("SINTER", *keys)
        check_algebra(d, "SINTER", *keys)
    d.check("SUNION", "big", "small")  # hashtable result: compared as a set
    d.check("SREM", "big", "x")
    d.exact("SUNION", "big")  # a union of integers is an intset again: ascending


def test_algebra_wrongtype(d):
    check_all(d, ("SADD", "a", "1"), ("SET", "str", "v"))
    for op in ("SINTER", "SUNION", "SDIFF"):
        for keys in (("a", "str"), ("str", "a"), ("nokey", "str"), ("str", "nokey"), ("str",)):
            d.check(op, *keys)
            d.check(op + "STORE", "dst", *keys)
            d.check(op + "STORE", "a", *keys)
    d.check("SMEMBERS", "a")
    d.check("SINTERCARD", 2, "nokey", "str")
    d.check("SINTERCARD", 1, "nokey", "str")


def test_store_overwrites_and_deletes(d):
    check_all(
        d, ("SADD", "a", "1", "2"), ("SADD", "b", "3"), ("SET", "dst", "string"), ("EXPIRE", "dst", 1000),
        ("SUNIONSTORE", "dst", "a", "b"), ("TTL", "dst"), ("TYPE", "dst"), ("SINTERSTORE", "dst", "a", "b"),
        ("EXISTS", "dst"), ("SINTERSTORE", "dst", "a", "b"), ("SDIFFSTORE", "a", "a", "b"), ("SMEMBERS", "a"),
        ("SINTERSTORE", "a", "nokey", "a"), ("EXISTS", "a"), ("SDIFFSTORE", "b", "b", "b"), ("EXISTS", "b"),
        ("SUNIONSTORE", "x", "nokey"), ("EXISTS", "x"),
    )


def test_sintercard(d):
    check_all(
        d, ("SADD", "a", *[str(i) for i in range(20)]), ("SADD", "b", *[str(i) for i in range(10, 40)], "z"),
        ("SINTERCARD", 2, "a", "b"), ("SINTERCARD", 2, "a", "b", "LIMIT", 0), ("SINTERCARD", 2, "a", "b", "LIMIT", 3),
        ("SINTERCARD", 2, "a", "b", "limit", 100), ("SINTERCARD", 2, "a", "b", "LIMIT", 3, "LIMIT", 4),
        ("SINTERCARD", 1, "a"), ("SINTERCARD", 2, "a", "nokey"), ("SINTERCARD", 3, "a", "b", "a"),
        ("SINTERCARD", 0, "a"), ("SINTERCARD", -1, "a"), ("SINTERCARD", "x", "a"), ("SINTERCARD", 3, "a", "b"),
        ("SINTERCARD", 2, "a", "b", "LIMIT"), ("SINTERCARD", 2, "a", "b", "LIMIT", -1),
        ("SINTERCARD", 2, "a", "b", "LIMIT", "x"), ("SINTERCARD", 2, "a", "b", "NOPE"),
        ("SINTERCARD", 1, "a", "b"), ("SINTERCARD", LLONG_MAX, "a"), ("SINTERCARD", 1),
    )


def test_algebra_large(d):
    d.check("SADD", "a", *[str(i) for i in range(0, 3000, 2)])
    d.check("SADD", "b", *[str(i) for i in range(0, 3000, 3)], "x", "y")
    d.check("SADD", "c", *[f"m{i}" for i in range(100)], *[str(i) for i in range(0, 300, 6)])
    for op in ("SINTER", "SUNION", "SDIFF"):
        for keys in (("a", "b"), ("b", "c"), ("a", "b", "c"), ("c", "a")):
            check_algebra(d, op, *keys)
    d.check("SINTERCARD", 3, "a", "b", "c")
    d.check("SINTERCARD", 2, "a", "b", "LIMIT", 7)


# ---------------------------------------------------------------------- SMOVE


def test_smove(d):
    check_all(
        d, ("SADD", "a", "1", "2", "x"), ("SADD", "b", "3"), ("SET", "str", "v"),
        ("SMOVE", "a", "b", "1"), ("SMOVE", "a", "b", "nope"), ("SMOVE", "a", "a", "2"), ("SMOVE", "a", "a", "nope"),
        ("SMOVE", "nokey", "str", "1"), ("SMOVE", "nokey", "b", "1"), ("SMOVE", "str", "b", "1"),
        ("SMOVE", "a", "str", "2"), ("SMOVE", "a", "str", "nope"), ("SMOVE", "a", "new", "x"),
        ("OBJECT", "ENCODING", "new"), ("SMOVE", "a", "new", "2"), ("EXISTS", "a"), ("SMOVE", "new", "b", "3"),
        ("SMEMBERS", "new"), ("SMOVE", "b", "c", "3"), ("OBJECT", "ENCODING", "c"),
    )
    check_set(d, "b")
    check_set(d, "c")


# ---------------------------------------------------- SPOP and SRANDMEMBER


def test_spop_and_srandmember_deterministic_parts(d):
    check_all(
        d, ("SADD", "s", "1", "2", "3"), ("SPOP", "nokey"), ("SPOP", "nokey", 3), ("SPOP", "s", 0),
        ("SPOP", "s", -1), ("SPOP", "s", "x"), ("SPOP", "s", 1, 2), ("SRANDMEMBER", "nokey"),
        ("SRANDMEMBER", "nokey", 2), ("SRANDMEMBER", "s", 0), ("SRANDMEMBER", "s", "x"), ("SRANDMEMBER", "s", 1, 2),
        ("SRANDMEMBER", "s", LLONG_MIN), ("SRANDMEMBER", "s", "9223372036854775808"), ("SPOP", "s", LLONG_MIN),
    )
    d.exact("SRANDMEMBER", "s", 3)
    d.exact("SRANDMEMBER", "s", 1000)
    d.exact("SPOP", "s", 5)
    check_all(d, ("EXISTS", "s"), ("SADD", "w", "b", "a"), ("SPOP", "w", 2), ("EXISTS", "w"),
              ("SADD", "one", "x"), ("SPOP", "one"), ("EXISTS", "one"), ("SADD", "one", "7"), ("SRANDMEMBER", "one"),
              ("SRANDMEMBER", "one", -3), ("SPOP", "one", 1), ("EXISTS", "one"))


@pytest.mark.parametrize("size", [1, 5, 30, 700])
def test_random_commands_properties(d, size):
    members = [f"m{i}" for i in range(size // 2)] + [str(i) for i in range(size - size // 2)]
    universe = {m.encode() for m in members}
    d.check("SADD", "s", *members)
    shoal = d.shoal
    for _ in range(20):
        assert parse(shoal.call("SRANDMEMBER", "s")) in universe
    for count in (1, 2, 3, size - 1, size, size + 3):
        if count <= 0:
            continue
        got = parse(shoal.call("SRANDMEMBER", "s", count))
        assert len(got) == min(count, size) == len(set(got))
        assert set(got) <= universe
    for count in (-1, -4, -3 * size):
        got = parse(shoal.call("SRANDMEMBER", "s", count))
        assert len(got) == -count and set(got) <= universe
    # Shapes as Redis's (RESP3: SRANDMEMBER count -> array, SPOP count -> set).
    for argv in (("SRANDMEMBER", "s"), ("SRANDMEMBER", "s", 2), ("SRANDMEMBER", "s", -2)):
        d.check(*argv)
    # SPOP: distinct members, removed, until the set is gone.
    left = set(universe)
    popped = parse(shoal.call("SPOP", "s"))
    assert popped in left
    left.discard(popped)
    for count in (1, 3, size // 2, size * 2):
        if not left:
            break
        raw = shoal.call("SPOP", "s", count)
        assert raw.startswith(b"~" if d.resp3 else b"*")
        got = parse(raw)
        assert len(got) == min(count, len(left)) == len(set(got))
        assert set(got) <= left
        left -= set(got)
        assert parse(shoal.call("SCARD", "s")) == len(left)
        assert {m for m in left if parse(shoal.call("SISMEMBER", "s", m))} == left
    assert parse(shoal.call("EXISTS", "s")) == (1 if left else 0)


def test_spop_most_of_a_set(shoal):
    shoal.call("SADD", "s", *[str(i) for i in range(100)], "x")
    got = parse(shoal.call("SPOP", "s", 97))
    assert len(set(got)) == 97
    rest = parse(shoal.call("SMEMBERS", "s"))
    assert len(rest) == 4 and not set(rest) & set(got)
    assert set(rest) | set(got) == {str(i).encode() for i in range(100)} | {b"x"}
    expected = b"intset" if b"x" not in rest else b"hashtable"
    assert parse(shoal.call("OBJECT", "ENCODING", "s")) == expected


def test_random_members_cover_the_set(shoal):
    shoal.call("SADD", "s", *[str(i) for i in range(8)], "a", "b")
    seen = {parse(shoal.call("SRANDMEMBER", "s")) for _ in range(300)}
    assert len(seen) == 10
    assert len(set(parse(shoal.call("SRANDMEMBER", "s", -1000)))) == 10


# ---------------------------------------------------------------------- SSCAN


def _sscan_all(client: RawClient, key, *options) -> list:
    cursor = b"0"
    seen = []
    for _ in range(10000):
        cursor, page = parse(client.call("SSCAN", key, cursor, *options))
        seen += page
        if cursor == b"0":
            return seen
    raise AssertionError("SSCAN did not finish")


def test_sscan_intset_is_one_page(d):
    d.check("SADD", "s", *[str(i * 7 % 50 - 20) for i in range(50)])
    for argv in (("SSCAN", "s", 0), ("SSCAN", "s", 0, "COUNT", 1), ("SSCAN", "s", 99, "MATCH", "-*"),
                 ("SSCAN", "s", 0, "MATCH", "1?")):
        d.exact(*argv)


@pytest.mark.parametrize("count", [1, 10, 2000])
def test_sscan_hashtable_iteration(d, count):
    d.check("SADD", "s", *[f"m{i}" for i in range(1500)])
    expected = sorted(_sscan_all(d.redis, "s", "COUNT", count))
    actual = _sscan_all(d.shoal, "s", "COUNT", count)
    assert sorted(actual) == expected and len(actual) == 1500
    assert sorted(_sscan_all(d.shoal, "s", "MATCH", "m1*", "COUNT", count)) == sorted(
        _sscan_all(d.redis, "s", "MATCH", "m1*", "COUNT", count))


def test_sscan_guarantee_under_changes(shoal):
    shoal.call("SADD", "s", *[f"keep{i}" for i in range(1000)])
    cursor, seen, step = b"0", set(), 0
    while True:
        cursor, page = parse(shoal.call("SSCAN", "s", cursor, "COUNT", 30))
        seen.update(page)
        step += 1
        shoal.call("SADD", "s", *[f"tmp{step}-{i}" for i in range(10)])
        shoal.call("SREM", "s", *[f"tmp{step - 1}-{i}" for i in range(10)])
        shoal.call("SPOP", "s")  # may take a keeper: only keepers present throughout must be seen
        if cursor == b"0":
            break
    present = {m for m in parse(shoal.call("SMEMBERS", "s")) if m.startswith(b"keep")}
    assert present <= seen


def test_sscan_errors(d):
    check_all(d, ("SADD", "s", "a"), ("SSCAN", "s", "x"), ("SSCAN", "s", 0, "COUNT", 0), ("SSCAN", "s", 0, "COUNT"),
              ("SSCAN", "s", 0, "TYPE", "set"), ("SSCAN", "nokey", 0, "BAD"), ("SSCAN", "s", "-1"))


# ------------------------------------------------------------------- errors


@pytest.mark.parametrize("argv", [
    ("SADD", "str", "m"), ("SREM", "str", "m"), ("SMEMBERS", "str"), ("SISMEMBER", "str", "m"),
    ("SMISMEMBER", "str", "m"), ("SCARD", "str"), ("SPOP", "str"), ("SPOP", "str", "2"), ("SRANDMEMBER", "str"),
    ("SRANDMEMBER", "str", "-2"), ("SSCAN", "str", "0"), ("SPOP", "str", "-1"), ("SRANDMEMBER", "str", "x"),
    ("SINTERCARD", "1", "str"), ("SINTERCARD", "1", "str", "LIMIT", "-1"),
])
def test_set_commands_on_a_string(d, argv):
    d.check("SET", "str", "v")
    d.check(*argv)
    d.check("GET", "str")


@pytest.mark.parametrize("argv", [("GET", "s"), ("HSET", "s", "f", "v"), ("LPUSH", "s", "x"), ("INCR", "s")])
def test_other_commands_on_a_set(d, argv):
    d.check("SADD", "s", "1")
    d.check(*argv)


@pytest.mark.parametrize("name", SET_COMMANDS)
def test_arity_errors(d, name):
    d.check(name)
    d.check(name, "s")


# ------------------------------------------------------------- events, counters

EVENT_SCRIPT = [
    ("SADD", "s", "1", "2", "3"), ("SADD", "s", "1"), ("SREM", "s", "9"), ("SREM", "s", "1", "9"),
    ("SMOVE", "s", "t", "2"), ("SMOVE", "s", "t", "9"), ("SMOVE", "s", "t", "3"), ("SMOVE", "t", "t", "2"),
    ("SADD", "u", "2"), ("SMOVE", "t", "u", "2"), ("SADD", "p", "a", "b", "c"), ("SPOP", "p"), ("SPOP", "p", 0),
    ("SPOP", "p", 5), ("SADD", "p", "a"), ("SPOP", "p"), ("SADD", "a", "1", "2"), ("SADD", "b", "2", "3"),
    ("SINTERSTORE", "i", "a", "b"), ("SUNIONSTORE", "i", "a", "b"), ("SDIFFSTORE", "i", "a", "b"),
    ("SINTERSTORE", "i", "a", "nokey"), ("SUNIONSTORE", "j", "a"), ("SDIFFSTORE", "j", "a", "a"),
    ("SINTERSTORE", "j", "a", "nokey"), ("SREM", "a", "1", "2"), ("SET", "str", "v"), ("SADD", "str", "x"),
    ("SREM", "nokey", "x"), ("SADD", "q", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10"), ("SPOP", "q", 2),
    ("SPOP", "q", 7),
]


def test_keyspace_events(redis_proc, shoal_proc, differ):
    same_keyspace_events(redis_proc, shoal_proc, EVENT_SCRIPT)


def test_dirty_and_hit_counters(redis_proc, shoal_proc, differ):
    script = EVENT_SCRIPT + [
        ("SISMEMBER", "u", "2"), ("SISMEMBER", "nokey", "2"), ("SMEMBERS", "u"), ("SCARD", "nokey"),
        ("SMISMEMBER", "u", "1"), ("SRANDMEMBER", "u"), ("SRANDMEMBER", "nokey", 3), ("SINTER", "u", "nokey"),
        ("SUNION", "u", "nokey"), ("SDIFF", "u", "u"), ("SINTERCARD", 2, "u", "nokey"), ("SSCAN", "u", 0),
    ]
    same_counter_deltas(redis_proc, shoal_proc, script)


# --------------------------------------------------- random command sequences

KEYS = ["s1", "s2", "s3", "str"]
_keys = st.sampled_from(KEYS)
_members = st.sampled_from(["1", "2", "3", "-1", "10", "a", "b", "", "01", "x\r\n"])


def _many(name, element, min_size=1, max_size=4):
    return st.tuples(_keys, st.lists(element, min_size=min_size, max_size=max_size)).map(lambda t: (name, t[0], *t[1]))


_key_lists = st.lists(_keys, min_size=1, max_size=3)
_commands = st.one_of(
    _many("SADD", _members), _many("SREM", _members), _cmd("SISMEMBER", _keys, _members),
    _many("SMISMEMBER", _members), _cmd("SCARD", _keys), _cmd("SMOVE", _keys, _keys, _members),
    _key_lists.map(lambda ks: ("SINTERSTORE", *ks)), _key_lists.map(lambda ks: ("SUNIONSTORE", *ks)),
    _key_lists.map(lambda ks: ("SDIFFSTORE", *ks)), _key_lists.map(lambda ks: ("SINTERCARD", str(len(ks)), *ks)),
    _cmd("SPOP", _keys, st.sampled_from(["100", "-1", "x"])), _cmd("SRANDMEMBER", _keys, st.sampled_from(["100", "0"])),
    _cmd("SET", _keys, _members), _cmd("DEL", _keys), _cmd("COPY", _keys, _keys),
    _cmd("OBJECT", st.just("ENCODING"), _keys), _cmd("DEBUG", st.just("DIGEST-VALUE"), _keys),
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(commands=st.lists(_commands, min_size=1, max_size=25), resp3=st.booleans())
def test_random_command_sequences(differ, differ3, commands, resp3):
    d = ArgsDiffer(differ3 if resp3 else differ)
    d.both("FLUSHALL")
    for argv in commands:
        d.check(*argv)
    for key in KEYS:
        d.check("TYPE", key)
        if parse(d.redis.call("TYPE", key)) == "set":
            check_set(d, key)
    for op in ("SINTER", "SUNION", "SDIFF"):
        check_algebra(d, op, "s1", "s2")


def test_state_machine(redis_proc, shoal_proc):
    """A RuleBasedStateMachine driving both servers; the sets must stay identical."""

    class SetMachine(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            self.d = ArgsDiffer(Differ(redis_proc.port, shoal_proc.port))
            self.d.both("FLUSHALL")

        def teardown(self):
            self.d.differ.close()

        @rule(key=_keys, members=st.lists(_members, min_size=1, max_size=4))
        def sadd(self, key, members):
            self.d.check("SADD", key, *members)

        @rule(key=_keys, members=st.lists(_members, min_size=1, max_size=4))
        def srem(self, key, members):
            self.d.check("SREM", key, *members)

        @rule(src=_keys, dst=_keys, member=_members)
        def smove(self, src, dst, member):
            self.d.check("SMOVE", src, dst, member)

        @rule(op=st.sampled_from(["SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE"]), dst=_keys, keys=_key_lists)
        def store(self, op, dst, keys):
            self.d.check(op, dst, *keys)

        @rule(key=_keys, start=st.integers(-100, 100), many=st.integers(1, 600))
        def grow(self, key, start, many):
            self.d.check("SADD", key, *[str(i) for i in range(start, start + many)])

        @rule(key=_keys)
        def pop_all(self, key):
            self.d.check("SPOP", key, 10000)

        @invariant()
        def same_sets(self):
            for key in KEYS:
                self.d.check("SCARD", key)
                if check_introspection(self.d, key) == b"intset":
                    self.d.exact("SMEMBERS", key)

    run_state_machine_as_test(
        SetMachine, settings=settings(max_examples=40, stateful_step_count=15, deadline=None)
    )
