"""List commands against real Redis 7.0, byte for byte (RESP2 and RESP3).

Every behaviour Redis defines is checked differentially: replies, error texts
and which error wins, the null shapes of each protocol, keyspace events,
DEBUG DIGEST-VALUE and OBJECT ENCODING, the dirty counter. Random command
sequences (hypothesis) and a rule-based state machine compare the two servers
on whole histories. Blocking behaviour with several clients is in
tests/test_lists_blocking.py; the non-blocking answers of the blocking
commands (data present, errors, inside MULTI) are here.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from node.commands.table import lookup
from node.engine.listvalue import ListValue
from tests.resp_client import RawClient, ReplyError, parse
from tests.type_helpers import check_all, check_introspection, d  # noqa: F401
from tests.type_helpers import same_counter_deltas, same_keyspace_events
from tests.type_helpers import cmd as _cmd

LIST_COMMANDS = (
    "lpush rpush lpushx rpushx lpop rpop llen lrange lindex lset linsert lrem ltrim lpos lmove rpoplpush "
    "lmpop blpop brpop blmove brpoplpush blmpop"
).split()

LLONG_MAX = "9223372036854775807"
LLONG_MIN = "-9223372036854775808"
WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
BINARY = [b"", b"\x00", b"a\r\nb", bytes(range(256)), "ключ".encode(), b"12", b"-7", b"007", b"1e3"]


def check_list(d, key):
    """The whole list, its type, encoding and digest agree."""
    d.check("LRANGE", key, 0, -1)
    d.check("EXISTS", key)
    check_introspection(d, key)


# ----------------------------------------------------------------- COMMAND table


GETKEYS_ARGS = {
    "lpush": ["k", "v"], "rpush": ["k", "v"], "lpushx": ["k", "v"], "rpushx": ["k", "v"], "lpop": ["k"],
    "rpop": ["k", "2"], "llen": ["k"], "lrange": ["k", "0", "1"], "lindex": ["k", "0"], "lset": ["k", "0", "v"],
    "linsert": ["k", "before", "p", "v"], "lrem": ["k", "0", "v"], "ltrim": ["k", "0", "1"], "lpos": ["k", "v"],
    "lmove": ["a", "b", "left", "right"], "rpoplpush": ["a", "b"], "lmpop": ["2", "a", "b", "left"],
    "blpop": ["a", "b", "0"], "brpop": ["a", "0"], "blmove": ["a", "b", "left", "left", "0"],
    "brpoplpush": ["a", "b", "0"], "blmpop": ["0", "2", "a", "b", "left", "count", "3"],
}


@pytest.mark.parametrize("name", LIST_COMMANDS)
def test_command_info_and_getkeys(differ, name):
    differ.check("COMMAND", "GETKEYS", name, *GETKEYS_ARGS[name])
    cmd = lookup(name.encode())
    assert cmd.group == "list"


def test_getkeys_for_mpop(differ):
    for argv in (("lmpop", "3", "a", "b", "left"), ("lmpop", "4", "a", "b", "left"), ("lmpop", "0", "a", "left"),
                 ("lmpop", "x", "a", "left"), ("lmpop", "-1", "a", "left"), ("blmpop", "0", "1", "a", "right"),
                 ("blmpop", "0", "5", "a", "b", "left"), ("blmpop", "0", "-1", "a", "b", "left"),
                 ("blmpop", "0", "x", "a", "b")):
        differ.check("COMMAND", "GETKEYS", *argv)


# ------------------------------------------------------------------ push / len


def test_push_and_len(d):
    check_all(
        d,
        ("LPUSH", "l", "a"), ("LPUSH", "l", "b", "c", "d"), ("RPUSH", "l", "x", "y"), ("LLEN", "l"),
        ("LRANGE", "l", 0, -1), ("LPUSHX", "l", "p"), ("RPUSHX", "l", "q", "r"), ("LPUSHX", "nokey", "a"),
        ("RPUSHX", "nokey", "a", "b"), ("EXISTS", "nokey"), ("LLEN", "nokey"), ("LRANGE", "l", 0, -1),
        ("LPUSH", "l"), ("RPUSH",), ("LPUSHX", "l"), ("RPUSHX", "l"), ("LLEN",), ("LLEN", "l", "x"),
    )
    check_list(d, "l")


@pytest.mark.parametrize("value", BINARY, ids=range(len(BINARY)))
def test_binary_elements(d, value):
    key = b"k" + value
    check_all(
        d, ("RPUSH", key, value, value + b"!", value), ("LPUSH", key, value), ("LRANGE", key, 0, -1),
        ("LINDEX", key, -1), ("LPOS", key, value, "COUNT", 0), ("LINSERT", key, "AFTER", value, b"<" + value),
        ("LREM", key, -1, value), ("LSET", key, 0, value * 2), ("LMOVE", key, value, "LEFT", "RIGHT"),
        ("LRANGE", value, 0, -1), ("LPOP", key, 2), ("RPOP", key),
    )
    check_list(d, key)
    check_list(d, value)


def test_large_list(d):
    values = [str(i) for i in range(3000)]
    d.check("RPUSH", "big", *values)
    d.check("LPUSH", "big", *values[:500])
    for start, end in ((0, 10), (-10, -1), (1500, 1510), (2990, 3100), (-3600, -3400), (100, 50), (0, -1)):
        d.check("LRANGE", "big", start, end)
    for index in (0, 1, 1000, 3499, 3500, -1, -3500, -3501):
        d.check("LINDEX", "big", index)
    d.check("LSET", "big", 1234, "x")
    d.check("LSET", "big", -2, "y")
    d.check("LPOS", "big", "7", "RANK", -1, "COUNT", 0)
    d.check("LPOS", "big", "x")
    d.check("LREM", "big", 2, "1")
    d.check("LTRIM", "big", 100, -100)
    d.check("LTRIM", "big", 10, 3000)
    check_list(d, "big")
    d.check("LPOP", "big", 2000)
    d.check("RPOP", "big", 50)
    check_list(d, "big")


# ------------------------------------------------------------------------- pop


def test_pop_shapes(d):
    check_all(
        d,
        ("LPOP", "nokey"), ("RPOP", "nokey"), ("LPOP", "nokey", 0), ("RPOP", "nokey", 1), ("LPOP", "nokey", -1),
        ("LPOP", "nokey", "abc"), ("LPOP", "nokey", "1", "2"), ("RPOP", "nokey", 1, 2, 3), ("LPOP",),
        ("RPUSH", "l", "a", "b", "c", "d", "e"), ("LPOP", "l", 0), ("RPOP", "l", 0), ("LPOP", "l", -1),
        ("LPOP", "l", LLONG_MIN), ("LPOP", "l", "1.5"), ("LPOP", "l", " 1"), ("LPOP", "l", 1), ("RPOP", "l", 2),
        ("LPOP", "l"), ("RPOP", "l", LLONG_MAX), ("EXISTS", "l"), ("LPOP", "l"), ("LPOP", "l", 0),
        ("RPUSH", "m", "x"), ("RPOP", "m"), ("EXISTS", "m"), ("RPUSH", "m", "x", "y"), ("LPOP", "m", 5),
        ("EXISTS", "m"),
    )


# ---------------------------------------------------------------- index / range


def test_lindex_lset(d):
    check_all(
        d,
        ("LINDEX", "nokey", 0), ("LINDEX", "nokey", "abc"), ("LSET", "nokey", 0, "x"), ("LSET", "nokey", "x", "y"),
        ("RPUSH", "l", "a", "b", "c"),
        *[("LINDEX", "l", i) for i in (0, 1, 2, 3, -1, -3, -4, LLONG_MAX, LLONG_MIN, "x", "1.0", "", "+1")],
        ("LSET", "l", 0, "A"), ("LSET", "l", -1, "C"), ("LSET", "l", 3, "x"), ("LSET", "l", -4, "x"),
        ("LSET", "l", LLONG_MIN, "x"), ("LSET", "l", "x", "y"), ("LRANGE", "l", 0, -1), ("LSET", "l", 1),
        ("LINDEX", "l"), ("LSET", "l", 1, "b", "c"),
    )


@pytest.mark.parametrize("start,end", [
    (0, -1), (0, 0), (1, 2), (-2, -1), (-100, 100), (5, 10), (3, 2), (-1, -2), (2, -3), (0, LLONG_MAX),
    (LLONG_MIN, LLONG_MAX), (LLONG_MAX, LLONG_MIN), (-6, 0), (-5, 0), (4, 4), (5, 5),
])
def test_lrange_ltrim_ranges(d, start, end):
    d.check("RPUSH", "l", "a", "b", "c", "d", "e")
    d.check("LRANGE", "l", start, end)
    d.check("LTRIM", "l", start, end)
    check_list(d, "l")


def test_range_errors(d):
    check_all(
        d,
        ("LRANGE", "nokey", 0, -1), ("LRANGE", "nokey", "x", 1), ("LRANGE", "nokey", 0, "y"),
        ("LTRIM", "nokey", 0, 1), ("LTRIM", "nokey", "x", 1), ("LTRIM", "nokey", 0, "1e1"), ("LRANGE", "k", 0),
        ("LTRIM", "k", 0), ("LTRIM", "k", 0, 1, 2),
    )


# ------------------------------------------------------------ insert / remove


def test_linsert(d):
    check_all(
        d,
        ("LINSERT", "nokey", "BEFORE", "a", "x"), ("LINSERT", "nokey", "middle", "a", "x"),
        ("RPUSH", "l", "a", "b", "a"), ("LINSERT", "l", "BEFORE", "a", "x"), ("LINSERT", "l", "after", "a", "y"),
        ("LINSERT", "l", "AfTeR", "b", "z"), ("LINSERT", "l", "before", "nope", "z"),
        ("LINSERT", "l", "inside", "a", "z"), ("LINSERT", "l", b"after\x00junk", "a", "w"),
        ("LINSERT", "l", "before", "b"), ("LRANGE", "l", 0, -1),
    )
    check_list(d, "l")


@pytest.mark.parametrize("count", [0, 1, 2, -1, -2, 10, -10, LLONG_MIN, LLONG_MAX, "x", "1.0"])
def test_lrem(d, count):
    d.check("RPUSH", "l", "a", "b", "a", "c", "a", "b", "a")
    d.check("LREM", "l", count, "a")
    check_list(d, "l")
    d.check("LREM", "l", count, "b")
    d.check("LREM", "l", count, "zz")
    d.check("LREM", "l", 0, "c")
    check_list(d, "l")
    d.check("LREM", "nokey", count, "a")


def test_lrem_empties_list(d):
    check_all(d, ("RPUSH", "l", "x", "x", "x"), ("LREM", "l", 0, "x"), ("EXISTS", "l"), ("LREM", "l", 0, "x"))


# ------------------------------------------------------------------------ LPOS


def test_lpos(d):
    d.check("RPUSH", "l", "a", "b", "a", "c", "a", "d", "a")
    for opts in (
        (), ("RANK", 1), ("RANK", 2), ("RANK", -1), ("RANK", -3), ("RANK", 5), ("RANK", -5), ("COUNT", 0),
        ("COUNT", 2), ("COUNT", 10), ("RANK", 2, "COUNT", 2), ("RANK", -2, "COUNT", 0), ("MAXLEN", 3),
        ("MAXLEN", 3, "COUNT", 0), ("RANK", -1, "MAXLEN", 2, "COUNT", 0), ("RANK", 3, "MAXLEN", 4),
        ("RANK", LLONG_MIN), ("RANK", LLONG_MIN, "COUNT", 2), ("RANK", LLONG_MIN, "COUNT", 0, "MAXLEN", 3),
        ("RANK", LLONG_MAX), ("RANK", LLONG_MAX, "COUNT", 0), ("RANK", -int(LLONG_MAX)),
        ("RANK", 1, "RANK", 2), ("COUNT", 1, "COUNT", 0), ("rank", 2, "count", 1, "maxlen", 0),
        # errors
        ("RANK", 0), ("RANK", "x"), ("RANK", 0, "FOO"), ("FOO", "RANK", 0), ("COUNT", -1), ("COUNT", "x"),
        ("MAXLEN", -1), ("MAXLEN", "x"), ("RANK",), ("COUNT",), ("FOO",), ("RANK", 1, "COUNT"),
        (b"rank\x00x", 2),
    ):
        d.check("LPOS", "l", "a", *opts)
        d.check("LPOS", "l", "zz", *opts)
        d.check("LPOS", "nokey", "a", *opts)
    d.check("LPOS", "l")


# ----------------------------------------------------------------------- move


@pytest.mark.parametrize("wherefrom", ["LEFT", "RIGHT"])
@pytest.mark.parametrize("whereto", ["LEFT", "right"])
def test_lmove(d, wherefrom, whereto):
    check_all(
        d,
        ("RPUSH", "src", "a", "b", "c"), ("RPUSH", "dst", "x"),
        ("LMOVE", "src", "dst", wherefrom, whereto), ("LMOVE", "src", "new", wherefrom, whereto),
        ("LMOVE", "src", "src", wherefrom, whereto), ("LRANGE", "src", 0, -1), ("LRANGE", "dst", 0, -1),
        ("LRANGE", "new", 0, -1), ("LMOVE", "src", "dst", wherefrom, whereto), ("EXISTS", "src"),
        ("LMOVE", "src", "dst", wherefrom, whereto), ("LMOVE", "nokey", "dst", wherefrom, whereto),
        ("RPUSH", "one", "z"), ("LMOVE", "one", "one", wherefrom, whereto), ("LRANGE", "one", 0, -1),
    )
    check_list(d, "dst")


def test_lmove_errors(d):
    check_all(
        d,
        ("SET", "str", "v"), ("RPUSH", "l", "a"),
        ("LMOVE", "l", "dst", "UP", "LEFT"), ("LMOVE", "l", "dst", "LEFT", "DOWN"), ("LMOVE", "nokey", "d", "x", "y"),
        ("LMOVE", "l", "str", "LEFT", "LEFT"), ("LMOVE", "str", "l", "LEFT", "LEFT"), ("LMOVE", "nokey", "str", "LEFT", "LEFT"),
        ("LMOVE", "l", "dst", "LEFT"), ("LMOVE", "l", "dst", b"left\x00x", "RIGHT"), ("LRANGE", "l", 0, -1),
        ("RPOPLPUSH", "l", "str"), ("RPOPLPUSH", "str", "l"), ("RPOPLPUSH", "nokey", "str"), ("RPOPLPUSH", "l"),
        ("RPOPLPUSH", "l", "l2"), ("RPOPLPUSH", "l", "l2", "x"), ("LRANGE", "l2", 0, -1), ("EXISTS", "l"),
    )


# ---------------------------------------------------------------------- LMPOP


def test_lmpop(d):
    check_all(
        d,
        ("LMPOP", 1, "nokey", "LEFT"), ("LMPOP", 2, "a", "b", "right", "COUNT", 5),
        ("RPUSH", "b", "1", "2", "3"), ("RPUSH", "c", "4", "5"),
        ("LMPOP", 3, "a", "b", "c", "LEFT"), ("LMPOP", 3, "a", "c", "b", "RIGHT", "COUNT", 1),
        ("LMPOP", 2, "b", "c", "left", "count", 10), ("LMPOP", 2, "b", "c", "left", "count", LLONG_MAX),
        ("LMPOP", 2, "b", "c", "left"), ("EXISTS", "b", "c"),
    )


def test_lmpop_errors(d):
    d.check("SET", "s", "x")
    d.check("RPUSH", "l", "a")
    for args in (
        (0, "a", "LEFT"), (-1, "a", "LEFT"), ("x", "a", "LEFT"), (LLONG_MAX, "a", "LEFT"), (2, "a", "LEFT"),
        (1, "a", "MIDDLE"), (1, "a", "LEFT", "COUNT", 0), (1, "a", "LEFT", "COUNT", -1), (1, "a", "LEFT", "COUNT", "x"),
        (1, "a", "LEFT", "COUNT", 1, "COUNT", 2), (1, "a", "LEFT", "COUNT"), (1, "a", "LEFT", "FOO"),
        (2, "s", "l", "LEFT"), (2, "l", "s", "LEFT"), (2, "nokey", "s", "LEFT"), (1, "a"), (1,), (),
        (1, "l", "LEFT", "COUNT", 0), (1, "a", b"left\x00"), (3, "a", "b", "LEFT"),
    ):
        d.check("LMPOP", *args)
    d.check("LRANGE", "l", 0, -1)


# ------------------------------------------------------------------ WRONGTYPE


LIST_ON_STRING = [
    ("LPUSH", "s", "a"), ("RPUSH", "s", "a", "b"), ("LPUSHX", "s", "a"), ("RPUSHX", "s", "a"), ("LPOP", "s"),
    ("RPOP", "s"), ("LPOP", "s", 0), ("RPOP", "s", 2), ("LPOP", "s", -1), ("LLEN", "s"), ("LRANGE", "s", 0, -1),
    ("LRANGE", "s", "x", 0), ("LINDEX", "s", 0), ("LINDEX", "s", "x"), ("LSET", "s", 0, "x"), ("LSET", "s", "x", "y"),
    ("LINSERT", "s", "BEFORE", "a", "b"), ("LINSERT", "s", "NOWHERE", "a", "b"), ("LREM", "s", 0, "a"),
    ("LREM", "s", "x", "a"), ("LTRIM", "s", 0, 1), ("LTRIM", "s", "x", 1), ("LPOS", "s", "a"),
    ("LPOS", "s", "a", "RANK", 0), ("LPOS", "s", "a", "COUNT", 0), ("LMOVE", "s", "d", "LEFT", "LEFT"),
    ("LMOVE", "s", "d", "BAD", "LEFT"), ("RPOPLPUSH", "s", "d"), ("LMPOP", 1, "s", "LEFT"),
    ("BLPOP", "s", 0), ("BRPOP", "nokey", "s", 0), ("BLPOP", "s", -1), ("BLMOVE", "s", "d", "LEFT", "LEFT", 0),
    ("BRPOPLPUSH", "s", "d", 0), ("BLMPOP", 0, 1, "s", "LEFT"),
]


@pytest.mark.parametrize("argv", LIST_ON_STRING, ids=[" ".join(map(str, a)) for a in LIST_ON_STRING])
def test_list_commands_on_a_string(d, argv):
    d.check("SET", "s", "v")
    d.check(*argv)
    d.check("GET", "s")


STRING_ON_LIST = [
    ("GET", "l"), ("SET", "l", "v", "GET"), ("SET", "l", "v", "NX", "GET"), ("SET", "l", "v", "XX", "GET"),
    ("GETSET", "l", "v"), ("GETDEL", "l"), ("GETEX", "l"), ("GETEX", "l", "EX", "abc"), ("GETEX", "l", "PERSIST"),
    ("APPEND", "l", "x"), ("APPEND", "l", ""), ("STRLEN", "l"), ("GETRANGE", "l", 0, 1), ("GETRANGE", "l", "x", 1),
    ("SUBSTR", "l", 0, 1), ("SETRANGE", "l", 0, "x"), ("SETRANGE", "l", 0, ""), ("SETRANGE", "l", -1, "x"),
    ("INCR", "l"), ("DECR", "l"), ("INCRBY", "l", 1), ("INCRBY", "l", "x"), ("DECRBY", "l", 1),
    ("DECRBY", "l", LLONG_MIN), ("INCRBYFLOAT", "l", 1), ("INCRBYFLOAT", "l", "x"), ("MGET", "l", "nokey", "l"),
    ("LCS", "l", "nokey"), ("LCS", "nokey", "l"), ("SETNX", "l", "v"), ("MSETNX", "x", "1", "l", "2"),
    ("SET", "l", "v", "NX"), ("SET", "l", "v", "XX"), ("SET", "l", "v", "GET", "EX", "x"),
]


@pytest.mark.parametrize("argv", STRING_ON_LIST, ids=[" ".join(map(str, a)) for a in STRING_ON_LIST])
def test_string_commands_on_a_list(d, argv):
    d.check("RPUSH", "l", "a", "b")
    d.check(*argv)
    d.check("TYPE", "l")
    d.check("LRANGE", "l", 0, -1)
    d.check("EXISTS", "x")


def test_string_overwrites_list(d):
    check_all(
        d, ("RPUSH", "l", "a"), ("SET", "l", "v"), ("TYPE", "l"), ("GET", "l"), ("RPUSH", "m", "a"),
        ("MSET", "m", "1"), ("GET", "m"), ("RPUSH", "n", "a"), ("SETEX", "n", 100, "v"), ("GET", "n"),
        ("RPUSH", "o", "a"), ("GETSET", "o", "v"), ("TYPE", "o"),
    )


# ------------------------------------------------- generic commands on lists


def test_generic_commands_on_lists(d):
    check_all(
        d,
        ("RPUSH", "l", "a", "b", "c"), ("TYPE", "l"), ("OBJECT", "ENCODING", "l"), ("COPY", "l", "l2"),
        ("RPUSH", "l2", "d"), ("LRANGE", "l", 0, -1), ("LRANGE", "l2", 0, -1), ("RENAME", "l2", "l3"),
        ("LRANGE", "l3", 0, -1), ("EXPIRE", "l", 1000), ("DEBUG", "DIGEST-VALUE", "l", "l3", "nokey"),
        ("PERSIST", "l"), ("DEBUG", "DIGEST-VALUE", "l"), ("DEL", "l3"), ("SCAN", 0, "TYPE", "list"),
        ("KEYS", "*"), ("DBSIZE",), ("COPY", "l", "s"), ("OBJECT", "ENCODING", "s"),
    )


def test_dataset_digest(d):
    check_all(
        d, ("DEBUG", "DIGEST"), ("RPUSH", "l", "a", "1", "", "x" * 100), ("SET", "s", "v"), ("LPUSH", "m", "z"),
        ("EXPIRE", "m", 1000), ("DEBUG", "DIGEST"), ("SELECT", 3), ("RPUSH", "l", "b"), ("DEBUG", "DIGEST"),
        ("FLUSHDB",), ("SELECT", 0), ("DEBUG", "DIGEST"),
    )


def test_encoding_of_long_lists(d):
    d.check("RPUSH", "l", *(["x" * 100] * 300))
    d.check("OBJECT", "ENCODING", "l")
    d.check("RPUSH", "k", "x" * 70000)
    d.check("OBJECT", "ENCODING", "k")
    d.check("DEBUG", "DIGEST-VALUE", "l", "k")


# --------------------------------------------- blocking commands, no blocking


def test_blocking_commands_with_data(d):
    check_all(
        d,
        ("RPUSH", "a", "1", "2", "3"), ("RPUSH", "b", "4"),
        ("BLPOP", "nokey", "a", "b", 0), ("BRPOP", "b", "a", 1), ("BRPOP", "b", "a", "0.5"),
        ("BLMOVE", "a", "c", "RIGHT", "LEFT", 0), ("RPUSH", "a", "5", "6"), ("BRPOPLPUSH", "a", "c", 0),
        ("BLMPOP", 0, 2, "nokey", "c", "RIGHT", "COUNT", 5), ("BLMPOP", 1, 1, "a", "LEFT"),
        ("EXISTS", "a", "b", "c"),
    )


def test_blocking_argument_errors(d):
    d.check("RPUSH", "l", *(str(i) for i in range(100)))  # valid timeouts pop: never block
    for timeout in ("-1", "abc", "1e400", "inf", "-inf", "nan", "0x10", LLONG_MAX, "9223372036854775.807",
                    "9223372036854775.808", "9223372036854776", "-0", "1e5000", "1e-5000", " 1", "1 ", "",
                    "-0.0001", "-0.001", "0x1p-2000", "+2"):
        d.check("BLPOP", "l", timeout)
        d.check("BRPOP", "l", timeout)
        d.check("BLMOVE", "l", "x", "LEFT", "RIGHT", timeout)
        d.check("BRPOPLPUSH", "l", "x", timeout)
        d.check("BLMPOP", timeout, 1, "l", "LEFT")
    check_all(
        d,
        ("BLPOP", "l"), ("BRPOP",), ("BLMOVE", "l", "x", "LEFT", "RIGHT"), ("BRPOPLPUSH", "l", "x"),
        ("BLMOVE", "l", "x", "UP", "RIGHT", -1), ("BLMOVE", "l", "x", "LEFT", "DOWN", "abc"),
        ("BLMPOP", 0, 1, "l"), ("BLMPOP", "x", 0, "l", "LEFT"), ("BLMPOP", "x", 1, "l", "LEFT"),
        ("BLMPOP", "x", 1, "l", "LEFT", "COUNT", 0), ("BLMPOP", "-1", 2, "l", "LEFT"), ("BLMPOP", -1, 1, "l", "UP"),
        ("BLMPOP", 0, 1, "l", "LEFT", "COUNT", 2, "X"), ("LRANGE", "l", 0, -1),
    )


def test_small_timeouts_on_missing_keys(d):
    # Timeouts that are positive after Redis's ceil(): the client times out (1 ms) with a null array.
    for timeout in ("0.0001", "0x1p-2000", "0.001"):
        d.check("BLPOP", "nokey", timeout)
        d.check("BLMOVE", "nokey", "x", "LEFT", "RIGHT", timeout)
        d.check("BRPOPLPUSH", "nokey", "x", timeout)
        d.check("BLMPOP", timeout, 2, "nokey", "other", "RIGHT", "COUNT", 3)


def test_blocking_commands_in_multi(d):
    d.check("MULTI")
    for argv in (("BLPOP", "nokey", 0), ("BRPOP", "nokey", "x", 0), ("BLMOVE", "nokey", "x", "LEFT", "LEFT", 0),
                 ("BRPOPLPUSH", "nokey", "x", 0), ("BLMPOP", 0, 1, "nokey", "LEFT"), ("RPUSH", "l", "a"),
                 ("BLPOP", "l", 0), ("BLMOVE", "l", "x", "LEFT", "LEFT", 0), ("SET", "s", "v"), ("BLPOP", "s", 0)):
        d.check(*argv)
    d.check("EXEC")


# ------------------------------------------------------------------- arity


@pytest.mark.parametrize("name", LIST_COMMANDS)
def test_arity_errors(d, name):
    d.check(name)
    d.check(name, "k")
    d.check(name, "k", "a", "b", "c", "d", "e", "f")


# --------------------------------------------------------- keyspace events


EVENT_SCRIPT = [
    ("RPUSH", "l", "a", "b", "c"), ("LPUSH", "l", "z"), ("LPUSHX", "l", "y"), ("RPUSHX", "l", "x"),
    ("LPUSHX", "nokey", "y"), ("LINSERT", "l", "BEFORE", "a", "p"), ("LINSERT", "l", "BEFORE", "nope", "p"),
    ("LSET", "l", 0, "q"), ("LSET", "l", 100, "q"), ("LREM", "l", 0, "nope"), ("LREM", "l", 1, "a"),
    ("LTRIM", "l", 0, -1), ("LTRIM", "l", 1, 3), ("LPOP", "l"), ("RPOP", "l", 0), ("RPOP", "l", 1),
    ("LMOVE", "l", "m", "LEFT", "RIGHT"), ("RPUSH", "n", "1"), ("RPOPLPUSH", "n", "m"), ("LMOVE", "m", "m", "LEFT", "LEFT"),
    ("LMPOP", 2, "nokey", "m", "LEFT", "COUNT", 10), ("RPUSH", "o", "1", "2"), ("BLPOP", "o", 0), ("BRPOP", "o", 0),
    ("RPUSH", "o", "1"), ("BLMOVE", "o", "p", "LEFT", "LEFT", 0), ("RPUSH", "o", "2"), ("BRPOPLPUSH", "o", "p", 0),
    ("BLMPOP", 0, 1, "p", "RIGHT", "COUNT", 1), ("RPUSH", "q", "1"), ("LTRIM", "q", 5, 10), ("RPUSH", "r", "1"),
    ("LREM", "r", 0, "1"), ("RPUSH", "s", "1", "2"), ("LPOP", "s", 2), ("LPOP", "nokey", 2),
    ("SET", "str", "v"), ("LPUSH", "str", "x"), ("LPOP", "s", 0), ("RPUSH", "t", "x"), ("LPOP", "t", 0),
]


def test_keyspace_events(redis_proc, shoal_proc, differ):
    same_keyspace_events(redis_proc, shoal_proc, EVENT_SCRIPT)


# ----------------------------------------------------------- dirty counter


def test_dirty_counts(redis_proc, shoal_proc, differ):
    same_counter_deltas(redis_proc, shoal_proc, EVENT_SCRIPT)


# ------------------------------------------------- keyspace hits and misses


def test_keyspace_hits_and_misses(redis_proc, shoal_proc, differ):
    commands = [
        ("LLEN", "l"), ("LLEN", "nokey"), ("LRANGE", "l", 0, 1), ("LRANGE", "nokey", 0, 1), ("LINDEX", "l", 0),
        ("LINDEX", "nokey", 0), ("LPOS", "l", "a"), ("LPOS", "nokey", "a"), ("LPUSH", "l", "x"), ("LPOP", "nokey"),
        ("LMOVE", "l", "m", "LEFT", "LEFT"), ("LMPOP", 1, "nokey", "LEFT"), ("BLPOP", "l", 0), ("LSET", "l", 0, "v"),
    ]
    same_counter_deltas(redis_proc, shoal_proc, commands, setup=[("RPUSH", "l", "a", "b")])


# --------------------------------------------------- random command sequences


KEYS = ["k1", "k2", "k3", "s"]
_keys = st.sampled_from(KEYS)
_elems = st.sampled_from(["a", "b", "c", "", "1", "a\r\n"])
_ints = st.one_of(st.integers(-6, 6).map(str), st.sampled_from(["x", LLONG_MAX, LLONG_MIN]))
_counts = st.one_of(st.integers(0, 5).map(str), st.sampled_from(["-1", "x"]))
_sides = st.sampled_from(["LEFT", "RIGHT", "left", "up"])
_lpos_opts = st.lists(
    st.one_of(st.tuples(st.just("RANK"), st.sampled_from(["1", "2", "-1", "-2", "0", LLONG_MIN])),
              st.tuples(st.just("COUNT"), _counts), st.tuples(st.just("MAXLEN"), _counts)),
    max_size=3,
).map(lambda groups: [w for g in groups for w in g])


def _many(name, element, min_size=1):
    return st.tuples(_keys, st.lists(element, min_size=min_size, max_size=4)).map(lambda t: (name, t[0], *t[1]))


_commands = st.one_of(
    _many("LPUSH", _elems), _many("RPUSH", _elems), _many("LPUSHX", _elems), _many("RPUSHX", _elems),
    _cmd("LPOP", _keys), _cmd("RPOP", _keys), _cmd("LPOP", _keys, _counts), _cmd("RPOP", _keys, _counts),
    _cmd("LLEN", _keys), _cmd("LRANGE", _keys, _ints, _ints), _cmd("LINDEX", _keys, _ints),
    _cmd("LSET", _keys, _ints, _elems), _cmd("LINSERT", _keys, st.sampled_from(["BEFORE", "after", "x"]), _elems, _elems),
    _cmd("LREM", _keys, _ints, _elems), _cmd("LTRIM", _keys, _ints, _ints),
    _cmd("LPOS", _keys, _elems).flatmap(lambda c: _lpos_opts.map(lambda o: c + tuple(o))),
    _cmd("LMOVE", _keys, _keys, _sides, _sides), _cmd("RPOPLPUSH", _keys, _keys),
    st.tuples(st.lists(_keys, min_size=1, max_size=3), _sides, st.one_of(st.just(()), st.tuples(st.just("COUNT"), _counts)))
    .map(lambda t: ("LMPOP", str(len(t[0])), *t[0], t[1], *t[2])),
    _cmd("BLPOP", _keys, _keys, st.sampled_from(["0.001", "-1", "x"])),
    _cmd("SET", _keys, _elems), _cmd("DEL", _keys), _cmd("GET", _keys), _cmd("TYPE", _keys),
    _cmd("DEBUG", st.just("DIGEST-VALUE"), _keys), _cmd("COPY", _keys, _keys),
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
        d.check("LRANGE", key, 0, -1)
    d.check("DEBUG", "DIGEST")


# --------------------------------------------------------- state machine


class ListMachine(RuleBasedStateMachine):
    """Drives both servers with list operations and checks them against each other and a model."""

    def __init__(self):
        super().__init__()
        self.model: dict[bytes, list[bytes]] = {}

    @initialize()
    def connect(self):
        self.redis = RawClient(MACHINE_PORTS["redis"])
        self.shoal = RawClient(MACHINE_PORTS["shoal"])
        for c in (self.redis, self.shoal):
            c.call("SELECT", 9)
            c.call("FLUSHDB")
            c.call("SET", "s", "v")  # the wrong-type key

    def teardown(self):
        for name in ("redis", "shoal"):
            c = getattr(self, name, None)
            if c is not None:
                c.close()

    def same(self, *argv):
        expected, actual = self.redis.call(*argv), self.shoal.call(*argv)
        assert expected == actual, (argv, expected, actual)
        return parse(expected)

    @rule(key=_keys, elems=st.lists(_elems.map(str.encode), min_size=1, max_size=5), left=st.booleans())
    def push(self, key, elems, left):
        reply = self.same("LPUSH" if left else "RPUSH", key, *elems)
        if key == "s":
            return
        lst = self.model.setdefault(key.encode(), [])
        for e in elems:
            if left:
                lst.insert(0, e)
            else:
                lst.append(e)
        assert reply == len(lst)

    @rule(key=_keys, left=st.booleans(), count=st.one_of(st.none(), st.integers(0, 4)))
    def pop(self, key, left, count):
        args = () if count is None else (count,)
        reply = self.same("LPOP" if left else "RPOP", key, *args)
        if key == "s":
            assert reply == ReplyError(WRONGTYPE)
            return
        lst = self.model.get(key.encode())
        if not lst:
            assert reply is None
            return
        n = 1 if count is None else count
        taken = [lst.pop(0) if left else lst.pop() for _ in range(min(n, len(lst)))]
        assert reply == (taken[0] if count is None else taken)
        if not lst:
            del self.model[key.encode()]

    @rule(src=_keys, dst=_keys, wherefrom=st.sampled_from(["LEFT", "RIGHT"]), whereto=st.sampled_from(["LEFT", "RIGHT"]))
    def move(self, src, dst, wherefrom, whereto):
        reply = self.same("LMOVE", src, dst, wherefrom, whereto)
        source = self.model.get(src.encode())
        if not source or dst == "s":
            return
        value = source.pop(0) if wherefrom == "LEFT" else source.pop()
        target = self.model.setdefault(dst.encode(), [])
        target.insert(0, value) if whereto == "LEFT" else target.append(value)
        if not source:
            self.model.pop(src.encode(), None)
        assert reply == value

    @rule(key=_keys, count=st.integers(-3, 3), elem=_elems)
    def lrem(self, key, count, elem):
        self.same("LREM", key, count, elem)
        lst = self.model.get(key.encode())
        if not lst:
            return
        e = elem.encode()
        order = range(len(lst)) if count >= 0 else range(len(lst) - 1, -1, -1)
        drop = [i for i in order if lst[i] == e][: abs(count) or None]
        for i in sorted(drop, reverse=True):
            del lst[i]
        if not lst:
            del self.model[key.encode()]

    @rule(key=_keys, start=st.integers(-5, 5), end=st.integers(-5, 5))
    def ltrim(self, key, start, end):
        self.same("LTRIM", key, start, end)
        lst = self.model.get(key.encode())
        if not lst:
            return
        n = len(lst)
        s = max(start + n if start < 0 else start, 0)
        e = end + n if end < 0 else end
        lst[:] = lst[s : e + 1] if s <= e else []
        if not lst:
            del self.model[key.encode()]

    @rule(key=_keys, index=st.integers(-5, 5), elem=_elems)
    def lset(self, key, index, elem):
        self.same("LSET", key, index, elem)
        lst = self.model.get(key.encode())
        if lst and -len(lst) <= index < len(lst):
            lst[index] = elem.encode()

    @rule(key=_keys, after=st.booleans(), pivot=_elems, elem=_elems)
    def linsert(self, key, after, pivot, elem):
        self.same("LINSERT", key, "AFTER" if after else "BEFORE", pivot, elem)
        lst = self.model.get(key.encode())
        if lst and pivot.encode() in lst:
            i = lst.index(pivot.encode())
            lst.insert(i + 1 if after else i, elem.encode())

    @rule(key=_keys, elem=_elems, opts=_lpos_opts)
    def lpos(self, key, elem, opts):
        self.same("LPOS", key, elem, *opts)

    @rule(key=_keys, start=st.integers(-6, 6), end=st.integers(-6, 6))
    def lrange(self, key, start, end):
        self.same("LRANGE", key, start, end)

    @invariant()
    def agree(self):
        if not hasattr(self, "redis"):
            return
        for key in KEYS:
            if key == "s":
                continue
            reply = self.same("LRANGE", key, 0, -1)
            assert reply == self.model.get(key.encode(), []), key
        self.same("DEBUG", "DIGEST")


MACHINE_PORTS: dict[str, int] = {}


def test_list_state_machine(redis_proc, shoal_proc, differ):
    MACHINE_PORTS.update(redis=redis_proc.port, shoal=shoal_proc.port)
    run_state_machine_as_test(ListMachine, settings=settings(max_examples=60, stateful_step_count=30, deadline=None))


# ----------------------------------------------------- the value class itself


def test_list_value_range_matches_slicing():
    import random

    rng = random.Random(7)
    for n in (0, 1, 5, 64, 65, 300):
        items = [str(i).encode() for i in range(n)]
        lst = ListValue(items)
        for _ in range(200):
            start, end = rng.randint(-n - 3, n + 3), rng.randint(-n - 3, n + 3)
            s = max(start + n if start < 0 else start, 0)
            e = min(end + n if end < 0 else end, n - 1)
            assert lst.range(start, end) == (items[s : e + 1] if s <= e else []), (n, start, end)
            i = rng.randint(-n - 2, n + 2)
            assert lst.get(i) == (items[i] if -n <= i < n else None)


def test_list_value_trim_and_pop_many():
    for keep in ((0, 2), (5, 95), (90, 99), (1, -2), (50, 10)):
        lst = ListValue(str(i).encode() for i in range(100))
        expected = lst.range(*keep)
        removed = lst.trim(*keep)
        assert list(lst) == expected and removed == 100 - len(expected)
    lst = ListValue([b"a", b"b", b"c"])
    assert lst.pop_many(2, False) == [b"c", b"b"] and list(lst) == [b"a"]
    assert lst.pop_many(5, True) == [b"a"] and not lst
    lst = ListValue([b"a", b"b", b"c"])
    assert lst.pop_many(3, False) == [b"c", b"b", b"a"]
