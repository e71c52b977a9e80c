"""Bitmap commands against real Redis 7.0, byte for byte.

SETBIT GETBIT BITCOUNT BITPOS BITOP BITFIELD BITFIELD_RO: replies (RESP2 and
RESP3), errors in Redis's order of checks, the stored strings (GET, OBJECT
ENCODING, TTL) and the keyspace events. Hypothesis drives random command
sequences through both servers for the range arithmetic (negative indexes,
BIT/BYTE units) and BITFIELD's types, offsets and overflow modes.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.commands.table import lookup
from tests.resp_client import RawClient, parse

BITMAP_COMMANDS = "setbit getbit bitcount bitpos bitop bitfield bitfield_ro".split()

GETKEYS_ARGS = {
    "setbit": ["k", "1", "1"], "getbit": ["k", "1"], "bitcount": ["k"], "bitpos": ["k", "1"],
    "bitop": ["and", "d", "a", "b"], "bitfield": ["k", "get", "u8", "0"], "bitfield_ro": ["k", "get", "u8", "0"],
}

LLONG_MAX = "9223372036854775807"
LLONG_MIN = "-9223372036854775808"


@pytest.mark.parametrize("name", BITMAP_COMMANDS)
def test_command_info_and_docs(differ, name):
    differ.check("COMMAND", "INFO", name)
    differ.check("COMMAND", "DOCS", name)
    differ.check("COMMAND", "GETKEYS", name, *GETKEYS_ARGS[name])


def test_declarations():
    for name in BITMAP_COMMANDS:
        cmd = lookup(name.encode())
        assert cmd.group == "bitmap"
        assert (cmd.first_key, cmd.last_key, cmd.key_step) == ((2, -1, 1) if name == "bitop" else (1, 1, 1))


def _stored(differ, *keys):
    for key in keys:
        differ.check("GET", key)
        differ.check("EXISTS", key)
        differ.check("OBJECT", "ENCODING", key)
        differ.check("DEBUG", "DIGEST-VALUE", key)


# ------------------------------------------------------------------ SETBIT / GETBIT


def test_setbit_getbit(differ):
    for offset in (0, 1, 7, 8, 15, 100, 1000):
        differ.check("SETBIT", "k", offset, 1)
        differ.check("GETBIT", "k", offset)
    differ.check("SETBIT", "k", 7, 1)  # unchanged
    differ.check("SETBIT", "k", 7, 0)
    differ.check("SETBIT", "k", 7, 0)
    for offset in (0, 6, 7, 8, 999, 1000, 1001, 100000, 4294967295):
        differ.check("GETBIT", "k", offset)
    _stored(differ, "k")
    differ.check("GETBIT", "missing", 3)
    differ.check("EXISTS", "missing")
    # Strings of every encoding: int, embstr, raw, empty.
    differ.check("SET", "i", "12345")
    differ.check("GETBIT", "i", 2)
    differ.check("GETBIT", "i", 39)
    differ.check("OBJECT", "ENCODING", "i")
    differ.check("SETBIT", "i", 2, 0)  # same bit: no change, but the string becomes raw
    _stored(differ, "i")
    differ.check("SET", "e", "")
    differ.check("GETBIT", "e", 0)
    differ.check("SETBIT", "e", 0, 0)
    _stored(differ, "e")
    differ.check("SET", "s", "short")
    differ.check("SETBIT", "s", 3, 1)
    _stored(differ, "s")


def test_setbit_keeps_ttl(differ):
    differ.check("SET", "k", "abc", "EX", "1000")
    differ.check("SETBIT", "k", 100, 1)
    expected, actual = differ.both("TTL", "k")
    assert parse(expected) > 0 and parse(actual) > 0


@pytest.mark.parametrize("offset", [
    "-1", "abc", "1.5", " 1", "1 ", "", "0x10", "+1", "01", "4294967296", "4294967297", LLONG_MAX, LLONG_MIN,
    "9223372036854775808", "#1", "1\x00",
])
def test_bad_offsets(differ, offset):
    differ.check("SETBIT", "k", offset, 1)
    differ.check("GETBIT", "k", offset)
    differ.check("GETBIT", "missing", offset)
    differ.check("EXISTS", "k")


@pytest.mark.parametrize("bit", ["2", "-1", "a", "", "1.0", "01", " 1", LLONG_MAX, "9223372036854775808", "3"])
def test_bad_bit_values(differ, bit):
    differ.check("SETBIT", "k", 5, bit)
    differ.check("SETBIT", "k", "-1", bit)  # the offset is checked first
    differ.check("EXISTS", "k")


def test_offset_limit_follows_proto_max_bulk_len(differ):
    try:
        differ.check("CONFIG", "SET", "proto-max-bulk-len", "1mb")
        limit = 1024 * 1024 * 8
        differ.check("SETBIT", "k", limit, 1)
        differ.check("GETBIT", "k", limit)
        differ.check("SETBIT", "k", limit - 1, 1)
        differ.check("STRLEN", "k")
        differ.check("BITCOUNT", "k")
        differ.check("BITPOS", "k", 1)
        differ.check("BITPOS", "k", 0)
        differ.check("BITFIELD", "k", "GET", "u8", limit - 8, "GET", "u8", limit - 7, "GET", "u8", limit)
        differ.check("BITFIELD", "k", "GET", "i64", "#131071", "GET", "i64", "#131072")
        differ.check("BITFIELD", "k", "SET", "u16", limit - 16, 65535)
        differ.check("BITFIELD", "k", "SET", "u16", limit - 15, 65535)
        differ.check("STRLEN", "k")
    finally:
        differ.both("CONFIG", "SET", "proto-max-bulk-len", "512mb")


def test_wrong_types_and_arity(differ):
    differ.check("RPUSH", "list", "a")
    differ.check("SETBIT", "list", 1, 1)
    differ.check("SETBIT", "list", "x", 1)
    differ.check("GETBIT", "list", 1)
    differ.check("BITCOUNT", "list")
    differ.check("BITCOUNT", "list", "a", "b")
    differ.check("BITPOS", "list", 1)
    differ.check("BITPOS", "list", 2)
    differ.check("BITOP", "AND", "d", "list")
    differ.check("BITOP", "AND", "list", "x")
    differ.check("BITOP", "OR", "d", "missing", "list")
    differ.check("BITFIELD", "list", "GET", "u8", "0")
    differ.check("BITFIELD", "list", "SET", "u8", "0", "1")
    differ.check("BITFIELD", "list")
    differ.check("BITFIELD_RO", "list", "GET", "u8", "0")
    differ.check("LLEN", "list")
    for argv in (("SETBIT", "k", 1), ("SETBIT", "k", 1, 1, 1), ("GETBIT", "k"), ("GETBIT", "k", 1, 2),
                 ("BITCOUNT",), ("BITPOS", "k"), ("BITOP", "AND", "d"), ("BITFIELD",), ("BITFIELD_RO",)):
        differ.check(*argv)


# ------------------------------------------------------------------------ BITCOUNT

RANGES = [
    ("0", "-1"), ("0", "0"), ("1", "1"), ("2", "1"), ("-1", "-1"), ("-2", "-1"), ("-1", "-2"), ("-100", "-50"),
    ("-100", "100"), ("5", "100"), ("100", "200"), ("0", LLONG_MAX), (LLONG_MIN, LLONG_MAX), (LLONG_MIN, "-1"),
    ("3", "-3"), ("-5", "2"), ("7", "9"), ("9", "23"), ("1", "30"),
]


@pytest.mark.parametrize("value", [b"foobar", b"\xff\x00\xaa\x55\x0f\xf0\x01\x80", b"\x00", b"\xff", b"12345"])
def test_bitcount_ranges(differ, value):
    differ.check("SET", "k", value)
    differ.check("BITCOUNT", "k")
    for start, end in RANGES:
        differ.check("BITCOUNT", "k", start, end)
        differ.check("BITCOUNT", "k", start, end, "BYTE")
        differ.check("BITCOUNT", "k", start, end, "BIT")
        differ.check("BITCOUNT", "k", start, end, "bit")


def test_bitcount_errors(differ):
    differ.check("SET", "k", "foobar")
    differ.check("SET", "empty", "")
    for args in (("0",), ("a", "b"), ("0", "b"), ("a", "0"), ("0", "1", "foo"), ("0", "1", "BITS"),
                 ("0", "1", "BIT", "x"), ("-1", "-2", "foo"), ("-2", "-1", "foo"), ("1.5", "2"),
                 ("0", "9223372036854775808"), ("0", "1", "bit\x00junk"), ("0", "1", "")):
        differ.check("BITCOUNT", "k", *args)
        differ.check("BITCOUNT", "missing", *args)  # 7.0 answers 0 before parsing
        differ.check("BITCOUNT", "empty", *args)
    differ.check("BITCOUNT", "empty")
    differ.check("BITCOUNT", "empty", 0, -1, "BIT")


# -------------------------------------------------------------------------- BITPOS


@pytest.mark.parametrize("value", [
    b"\x00\x00\x00", b"\xff\xff\xff", b"\x00\x0f\x00", b"\xff\xf0\xff", b"\x01", b"\x80", b"\xfe", b"\x7f", b"",
    b"\x00" * 40 + b"\x10" + b"\x00" * 40, b"\xff" * 40 + b"\xef" + b"\xff" * 40, b"foobar",
])
def test_bitpos_ranges(differ, value):
    differ.check("SET", "k", value)
    for bit in ("0", "1"):
        differ.check("BITPOS", "k", bit)
        for start, end in RANGES:
            differ.check("BITPOS", "k", bit, start)
            differ.check("BITPOS", "k", bit, start, end)
            differ.check("BITPOS", "k", bit, start, end, "BYTE")
            differ.check("BITPOS", "k", bit, start, end, "BIT")


def test_bitpos_errors(differ):
    differ.check("SET", "k", "\x00\xff")
    for args in (("2",), ("-1",), ("a",), ("",), ("1", "a"), ("1", "0", "b"), ("1", "0", "1", "foo"),
                 ("1", "a", "b", "foo"), ("1", "0", "b", "foo"), ("0", "0", "1", "BIT", "x"), ("2", "0", "1", "foo"),
                 ("1", "0", "1", "bit\x00"), ("0", "1.5")):
        differ.check("BITPOS", "k", *args)
        differ.check("BITPOS", "missing", *args)


def test_bitpos_missing_and_big(differ):
    differ.check("BITPOS", "missing", 0)
    differ.check("BITPOS", "missing", 1)
    differ.check("BITPOS", "missing", 0, 5, 10, "BIT")
    differ.check("SETBIT", "big", 8_000_000, 1)
    differ.check("BITPOS", "big", 1)
    differ.check("BITPOS", "big", 1, 1000, -1)
    differ.check("BITPOS", "big", 1, 8_000_001, -1, "BIT")
    differ.check("BITPOS", "big", 0)
    differ.check("BITCOUNT", "big")
    differ.check("BITCOUNT", "big", 999_999, 1_000_000)
    differ.check("BITCOUNT", "big", 7_999_999, 8_000_000, "BIT")
    differ.check("BITOP", "NOT", "inv", "big")
    differ.check("BITPOS", "inv", 0)
    differ.check("BITPOS", "inv", 1, 1_000_000)
    differ.check("BITCOUNT", "inv")


# --------------------------------------------------------------------------- BITOP


def test_bitop_operations(differ):
    differ.check("SET", "a", b"\x0f\xf0\xaa\x55\x01")
    differ.check("SET", "b", b"\xff\x00\x0f")
    differ.check("SET", "c", "12")
    for op in ("AND", "OR", "XOR", "and", "Or", "xOR"):
        differ.check("BITOP", op, "d", "a", "b", "c")
        _stored(differ, "d")
        differ.check("BITOP", op, "d", "a")
        differ.check("GET", "d")
        differ.check("BITOP", op, "d", "a", "missing")
        differ.check("GET", "d")
        differ.check("BITOP", op, "d", "missing", "b")
        differ.check("GET", "d")
    differ.check("BITOP", "NOT", "d", "a")
    _stored(differ, "d")
    differ.check("BITOP", "NOT", "a", "a")
    differ.check("GET", "a")
    differ.check("BITOP", "not", "d", "c")
    differ.check("GET", "d")


def test_bitop_long_strings(differ):
    rng = random.Random(5)
    a = bytes(rng.getrandbits(8) for _ in range(5000))
    b = bytes(rng.getrandbits(8) for _ in range(3333))
    differ.check("SET", "a", a)
    differ.check("SET", "b", b)
    for op in ("AND", "OR", "XOR"):
        differ.check("BITOP", op, "d", "a", "b", "a")
        differ.check("GET", "d")
    differ.check("BITOP", "NOT", "d", "b")
    differ.check("GET", "d")


def test_bitop_empty_result_and_ttl(differ):
    differ.check("SET", "d", "x", "EX", "1000")
    differ.check("SET", "a", "abc")
    differ.check("BITOP", "AND", "d", "a")
    differ.check("TTL", "d")  # the destination is replaced: no TTL
    differ.check("SET", "empty", "")
    differ.check("BITOP", "OR", "d", "missing", "empty")
    differ.check("EXISTS", "d")
    differ.check("BITOP", "OR", "d", "missing")
    differ.check("BITOP", "NOT", "d", "empty")
    differ.check("EXISTS", "d")
    differ.check("RPUSH", "l", "x")
    differ.check("BITOP", "AND", "l", "a")  # the destination's type does not matter
    differ.check("TYPE", "l")
    differ.check("GET", "l")


def test_bitop_errors(differ):
    differ.check("SET", "a", "abc")
    for args in (("NOT", "d", "a", "a"), ("NOT", "d"), ("NAND", "d", "a"), ("", "d", "a"), ("AND\x00x", "d", "a"),
                 ("an", "d", "a"), ("ANDX", "d", "a"), ("not", "d", "a", "b", "c")):
        differ.check("BITOP", *args)
    differ.check("EXISTS", "d")


# ------------------------------------------------------------------------ BITFIELD


def test_bitfield_basic(differ):
    differ.check("BITFIELD", "k", "SET", "i8", "0", "-100", "GET", "i8", "0", "GET", "u8", "0")
    differ.check("BITFIELD", "k", "INCRBY", "u2", "100", "1", "OVERFLOW", "SAT", "INCRBY", "u2", "102", "1")
    differ.check("BITFIELD", "k", "SET", "u4", "#3", "7", "GET", "u4", "#3", "GET", "i4", "#3")
    differ.check("BITFIELD", "k", "GET", "u63", "0", "GET", "i64", "0", "GET", "i64", "1", "GET", "u63", "5")
    differ.check("BITFIELD", "k", "GET", "u8", "1000", "GET", "i32", "#100")
    _stored(differ, "k")
    differ.check("BITFIELD", "k")
    differ.check("BITFIELD", "nokey")
    differ.check("BITFIELD", "nokey", "GET", "u8", "0")
    differ.check("EXISTS", "nokey")
    differ.check("BITFIELD_RO", "k", "GET", "i16", "3", "get", "U8", "0")
    differ.check("BITFIELD_RO", "k", "GET", "i16", "3", "GET", "u8", "#1")
    differ.check("BITFIELD_RO", "nokey", "GET", "i16", "3")
    differ.check("SET", "i", "123")
    differ.check("BITFIELD", "i", "GET", "u8", "0", "GET", "u16", "8")
    differ.check("OBJECT", "ENCODING", "i")
    differ.check("BITFIELD", "i", "SET", "u8", "0", "49")  # same value: no change, but raw now
    _stored(differ, "i")


@pytest.mark.parametrize("overflow", ["WRAP", "SAT", "FAIL"])
def test_bitfield_overflow(differ, overflow):
    cases = [
        ("INCRBY", "u2", "0", "1"), ("INCRBY", "u2", "0", "5"), ("INCRBY", "u2", "0", "-7"), ("SET", "u2", "0", "9"),
        ("SET", "u8", "8", "-1"), ("SET", "u8", "8", LLONG_MIN), ("SET", "i8", "8", LLONG_MIN),
        ("SET", "i8", "8", LLONG_MAX), ("INCRBY", "i8", "8", "200"), ("INCRBY", "i8", "8", "-300"),
        ("SET", "i64", "16", LLONG_MAX), ("INCRBY", "i64", "16", "1"), ("INCRBY", "i64", "16", LLONG_MIN),
        ("INCRBY", "i64", "16", LLONG_MIN), ("SET", "u63", "80", LLONG_MAX), ("INCRBY", "u63", "80", "1"),
        ("INCRBY", "u63", "80", LLONG_MIN), ("SET", "u63", "80", "-1"), ("INCRBY", "i1", "200", "1"),
        ("INCRBY", "i1", "200", "-1"), ("INCRBY", "u1", "201", "3"), ("SET", "i5", "202", "-17"),
        ("INCRBY", "i63", "300", "4611686018427387904"), ("INCRBY", "i63", "300", "4611686018427387904"),
        ("INCRBY", "i63", "300", LLONG_MIN), ("INCRBY", "u32", "400", "-1"), ("SET", "i64", "#10", LLONG_MIN),
        ("INCRBY", "i64", "#10", "-1"), ("INCRBY", "i64", "#10", LLONG_MAX),
    ]
    for case in cases:
        differ.check("BITFIELD", "k", "OVERFLOW", overflow, *case)
        differ.check("BITFIELD", "k", "GET", case[1], case[2])
    differ.check("GET", "k")
    differ.check("BITFIELD", "f", "OVERFLOW", overflow, "INCRBY", "u2", "0", "5")  # FAIL still creates the key
    differ.check("EXISTS", "f")
    differ.check("GET", "f")


def test_bitfield_errors(differ):
    differ.check("SET", "k", "abc")
    bad = [
        ("GET",), ("GET", "u8"), ("SET", "u8", "0"), ("INCRBY", "u8", "0"), ("OVERFLOW",), ("FOO", "u8", "0"),
        ("GET", "u64", "0"), ("GET", "i65", "0"), ("GET", "i0", "0"), ("GET", "u0", "0"), ("GET", "x8", "0"),
        ("GET", "U8", "0"), ("GET", "I8", "0"), ("GET", "u", "0"), ("GET", "", "0"), ("GET", "u08", "0"),
        ("GET", "u-1", "0"), ("GET", "u8\x00x", "0"), ("GET", "u 8", "0"), ("GET", "u8", "-1"),
        ("GET", "u8", "#-1"), ("GET", "u8", "#"), ("GET", "u8", "##1"), ("GET", "u8", "x"),
        ("GET", "u8", "4294967296"), ("GET", "u8", "#536870912"), ("GET", "i64", "#67108864"),
        ("GET", "i64", "#144115188075855872"), ("SET", "i64", "#9223372036854775807", "1"),
        ("SET", "u8", "0", "x"), ("SET", "u8", "0", "1.5"), ("INCRBY", "u8", "0", "9223372036854775808"),
        ("OVERFLOW", "FOO", "GET", "u8", "0"), ("OVERFLOW", "wrapx"), ("GET", "u8", "0", "OVERFLOW"),
        ("GET", "u8", "0", "SET", "u8", "1"), ("SET", "u8", "0", "1", "GET", "u65", "0"),
        ("set", "u8", "0", "1", "bogus"),
    ]
    for ops in bad:
        differ.check("BITFIELD", "k", *ops)
        differ.check("BITFIELD", "missing", *ops)
        differ.check("BITFIELD_RO", "k", *ops)
    differ.check("BITFIELD_RO", "k", "SET", "u8", "0", "1")
    differ.check("BITFIELD_RO", "k", "INCRBY", "u8", "0", "1")
    differ.check("BITFIELD_RO", "k", "OVERFLOW", "SAT", "GET", "u8", "0")
    differ.check("GET", "k")
    differ.check("EXISTS", "missing")


def test_resp3(differ3):
    differ3.check("BITFIELD", "k", "OVERFLOW", "FAIL", "INCRBY", "u2", "0", "5", "GET", "u2", "0", "SET", "i4", "2", "3")
    differ3.check("BITFIELD_RO", "k", "GET", "u8", "0")
    differ3.check("SETBIT", "k", 3, 1)
    differ3.check("GETBIT", "k", 3)
    differ3.check("BITCOUNT", "k", 0, -1, "BIT")
    differ3.check("BITPOS", "k", 0, 0, -1, "BIT")
    differ3.check("BITOP", "XOR", "d", "k", "missing")
    differ3.check("GET", "d")
    differ3.check("BITFIELD", "k", "GET", "u64", "0")
    differ3.check("BITPOS", "k", 2)
    differ3.check("SETBIT", "k", -1, 1)


# --------------------------------------------------------------- keyspace events


def _events(port: int, commands) -> list:
    """Replies to ``commands`` and the keyspace messages they caused, on one server."""
    with RawClient(port) as sub, RawClient(port) as c:
        c.call("FLUSHALL")
        c.call("CONFIG", "SET", "notify-keyspace-events", "KEA")
        try:
            sub.call("PSUBSCRIBE", "__key*__:*")
            replies = [c.call(*argv) for argv in commands]
            c.call("PUBLISH", "__keyevent@0__:zz-end", "end")
            messages = []
            while True:
                message = sub.read_reply()
                if b"zz-end" in message:
                    break
                messages.append(message)
        finally:
            c.call("CONFIG", "SET", "notify-keyspace-events", "")
        return [replies, messages]


def test_keyspace_events(redis_proc, shoal_proc):
    commands = [
        ("SETBIT", "k", 7, 1), ("SETBIT", "k", 7, 1), ("SETBIT", "k", 7, 0), ("SETBIT", "k", 100, 0),
        ("GETBIT", "k", 1), ("BITFIELD", "k", "SET", "u8", "0", "0"), ("BITFIELD", "k", "SET", "u8", "0", "3"),
        ("BITFIELD", "k", "INCRBY", "u8", "0", "0", "GET", "u8", "0"), ("BITFIELD", "k", "SET", "u8", "200", "0"),
        ("BITFIELD", "n", "OVERFLOW", "FAIL", "INCRBY", "u2", "0", "5"), ("BITFIELD", "n2", "SET", "u2", "0", "0"),
        ("BITOP", "AND", "d", "k"), ("BITOP", "AND", "d", "missing"), ("BITOP", "AND", "d", "missing"),
        ("BITCOUNT", "k"), ("BITPOS", "k", 1), ("BITFIELD_RO", "k", "GET", "u8", "0"),
    ]
    assert _events(redis_proc.port, commands) == _events(shoal_proc.port, commands)


# ------------------------------------------------------- random command sequences

_KEYS = st.sampled_from(["a", "b"])
_SMALL = st.integers(-40, 40).map(str)
_RANGE_INT = st.one_of(_SMALL, st.sampled_from([LLONG_MIN, LLONG_MAX, "-1000", "1000"]))
_UNIT = st.lists(st.sampled_from(["BIT", "BYTE", "bit", "byte"]), max_size=1)
_OFFSETS = st.one_of(st.integers(0, 130), st.integers(0, 5000)).map(str)
_BYTES = st.one_of(
    st.binary(max_size=12),
    st.lists(st.sampled_from([0x00, 0xFF, 0x0F, 0xF0, 0x80, 0x01, 0x7F, 0xFE, 0xAA]), max_size=10).map(bytes),
)


def _cmd(*parts):
    return st.tuples(*(p if isinstance(p, st.SearchStrategy) else st.just(p) for p in parts))


_bitmap_commands = st.one_of(
    _cmd("SETBIT", _KEYS, _OFFSETS, st.sampled_from(["0", "1", "1", "2"])),
    _cmd("GETBIT", _KEYS, _OFFSETS),
    _cmd("SET", _KEYS, _BYTES),
    _cmd("BITCOUNT", _KEYS),
    st.tuples(_cmd("BITCOUNT", _KEYS, _RANGE_INT, _RANGE_INT), _UNIT).map(lambda t: t[0] + tuple(t[1])),
    _cmd("BITPOS", _KEYS, st.sampled_from(["0", "1"])),
    st.tuples(_cmd("BITPOS", _KEYS, st.sampled_from(["0", "1"]), _RANGE_INT), st.lists(_RANGE_INT, max_size=1))
    .map(lambda t: t[0] + tuple(t[1])),
    st.tuples(_cmd("BITPOS", _KEYS, st.sampled_from(["0", "1"]), _RANGE_INT, _RANGE_INT), _UNIT)
    .map(lambda t: t[0] + tuple(t[1])),
    _cmd("BITPOS", _KEYS, st.sampled_from(["0", "1"]), _RANGE_INT, _RANGE_INT, "BIT"),
    _cmd("BITCOUNT", _KEYS, _RANGE_INT, _RANGE_INT, "BIT"),
    st.tuples(st.sampled_from(["AND", "OR", "XOR"]), _KEYS, st.lists(_KEYS, min_size=1, max_size=3))
    .map(lambda t: ("BITOP", t[0], t[1], *t[2])),
    _cmd("BITOP", "NOT", _KEYS, _KEYS),
    _cmd("GET", _KEYS),
    _cmd("STRLEN", _KEYS),
)


_RANGE_QUERIES = st.one_of(
    _cmd("BITPOS", _KEYS, st.sampled_from(["0", "1"]), _RANGE_INT, _RANGE_INT, st.sampled_from(["BIT", "BYTE"])),
    _cmd("BITCOUNT", _KEYS, _RANGE_INT, _RANGE_INT, st.sampled_from(["BIT", "BYTE"])),
)
_INITIAL = st.lists(st.integers(0, 255), min_size=1, max_size=10).map(bytes)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(initial=st.tuples(_INITIAL, _INITIAL),
       commands=st.lists(st.one_of(_bitmap_commands, _RANGE_QUERIES, _RANGE_QUERIES), min_size=1, max_size=25))
def test_random_bitmap_sequences(differ, initial, commands):
    differ.both("FLUSHALL")
    differ.check("SET", "a", initial[0])
    differ.check("SET", "b", initial[1])
    for argv in commands:
        differ.check(*argv)
    for key in ("a", "b"):
        differ.check("GET", key)


def _random_range_query(rng: random.Random):
    key = rng.choice("ab")
    ends = [str(rng.randint(-90, 90)) for _ in range(2)]
    unit = rng.choice(["BIT", "BYTE", "bit"])
    if rng.random() < 0.5:
        return ("BITCOUNT", key, *ends, unit)
    return ("BITPOS", key, rng.choice("01"), *ends, unit)


@pytest.mark.parametrize("seed", range(25))
def test_random_ranges_on_random_bytes(differ, seed):
    """Uniformly random bytes and ranges (hypothesis prefers small, zero-heavy values)."""
    rng = random.Random(seed)
    for key in "ab":
        differ.check("SET", key, bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 10))))
    for _ in range(60):
        differ.check(*_random_range_query(rng))
    differ.check("BITPOS", "a", rng.choice("01"), str(rng.randint(-20, 20)))
    differ.check("SETBIT", "a", str(rng.randint(0, 100)), rng.choice("01"))
    differ.check("GET", "a")


_TYPES = st.one_of(
    st.tuples(st.sampled_from("iu"), st.integers(1, 64)).map(lambda t: f"{t[0]}{t[1]}"),
    st.sampled_from(["u64", "i0", "x8", "i65"]),
)
_FIELD_OFFSETS = st.one_of(st.integers(0, 200).map(str), st.integers(0, 20).map(lambda n: f"#{n}"),
                           st.sampled_from(["-1", "#-1", "x"]))
_FIELD_VALUES = st.one_of(
    st.integers(-300, 300),
    st.integers(-(2**63), 2**63 - 1),
    st.sampled_from([2**63 - 1, -(2**63), 2**62, -(2**62), 2**32, 255, 256, -129]),
).map(str)
_FIELD_OP = st.one_of(
    st.tuples(st.just("GET"), _TYPES, _FIELD_OFFSETS),
    st.tuples(st.sampled_from(["SET", "INCRBY"]), _TYPES, _FIELD_OFFSETS, _FIELD_VALUES),
    st.tuples(st.just("OVERFLOW"), st.sampled_from(["WRAP", "SAT", "FAIL", "sat", "fail"])),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(calls=st.lists(st.tuples(st.sampled_from(["BITFIELD", "BITFIELD", "BITFIELD_RO"]), _KEYS,
                                st.lists(_FIELD_OP, max_size=6)), min_size=1, max_size=8))
def test_random_bitfield_sequences(differ, calls):
    differ.both("FLUSHALL")
    for name, key, ops in calls:
        differ.check(name, key, *(part for op in ops for part in op))
    for key in ("a", "b"):
        differ.check("GET", key)


# ------------------------------------------------------ WATCH and the change counter


def _watch_and_dirty(port: int, commands) -> list:
    """For each command: its reply, whether it aborted a WATCH on its key, and rdb_changes it added."""
    def changes(c):
        info = parse(c.call("INFO", "persistence")).decode()
        return int(info.split("rdb_changes_since_last_save:")[1].split()[0])

    out = []
    with RawClient(port) as a, RawClient(port) as b:
        a.call("FLUSHALL")
        for argv in commands:
            key = argv[1] if argv[0].upper() not in ("BITOP", "PFDEBUG") else argv[2]
            a.call("WATCH", key)
            before = changes(a)
            reply = b.call(*argv)
            after = changes(a)
            a.call("MULTI")
            a.call("PING")
            out.append((argv, reply, a.call("EXEC"), after - before))
    return out


WATCHED_COMMANDS = [
    ("SETBIT", "k", 7, 1), ("SETBIT", "k", 7, 1), ("SETBIT", "k", 70, 0), ("GETBIT", "k", 3),
    ("BITFIELD", "f", "OVERFLOW", "FAIL", "INCRBY", "u2", "0", "5"), ("EXISTS", "f"),
    ("BITFIELD", "f", "SET", "u8", "0", "0", "SET", "u8", "8", "1", "SET", "u8", "16", "1"),
    ("BITFIELD", "f", "SET", "u8", "0", "0", "SET", "u8", "8", "2", "SET", "u8", "16", "1", "INCRBY", "u4", "0", "1"),
    ("BITFIELD", "g", "SET", "u8", "0", "0", "SET", "u8", "8", "0"), ("BITFIELD", "g", "GET", "u8", "0"),
    ("BITOP", "AND", "d", "k"), ("BITOP", "OR", "d", "nothing"), ("BITOP", "OR", "d", "nothing"),
    ("SET", "s", "123"), ("SETBIT", "s", 2, 1), ("BITFIELD", "s", "GET", "u8", "0"),
    ("PFADD", "h", "a", "b", "c"), ("PFADD", "h", "a"), ("PFADD", "h2"), ("PFCOUNT", "h"), ("PFCOUNT", "h"),
    ("PFADD", "h", "d", "e"), ("PFCOUNT", "h", "h2"), ("PFMERGE", "m", "h"), ("PFMERGE", "m"),
    ("PFDEBUG", "ENCODING", "h"), ("PFDEBUG", "TODENSE", "h"), ("PFDEBUG", "TODENSE", "h"),
]


def test_watch_and_change_counter(redis_proc, shoal_proc):
    assert _watch_and_dirty(redis_proc.port, WATCHED_COMMANDS) == _watch_and_dirty(shoal_proc.port, WATCHED_COMMANDS)
