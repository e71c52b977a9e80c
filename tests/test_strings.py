"""String commands against real Redis 7.0, byte for byte.

Every test sends the same commands to redis-server and shoal-server
(``differ.check``) and requires identical replies. WRONGTYPE paths need a
non-string key, which only arrives with the other data types (issue S2, which
adds their differential WRONGTYPE tests); until then the in-process tests at
the end cover those paths against the handlers.

Expiry: only long relative TTLs and far-future (or long-past) absolute times,
so replies are deterministic; TTL is compared only where a rounding boundary
cannot fall between the two servers' clocks.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.commands import strings
from node.commands.table import lookup
from node.engine.database import Database
from node.propagation import Propagator
from node.resp import ErrorReply
from tests.resp_client import parse

STRING_COMMANDS = (
    "get set mget mset msetnx setnx setex psetex getset getdel getex append strlen getrange substr "
    "setrange incr decr incrby decrby incrbyfloat lcs"
).split()

BINARY = [
    bytes(range(256)),
    b"a\r\nb",
    b"\r\n",
    b"\x00",
    b"nul\x00inside",
    b"",
    "ключ".encode(),
    b"\xff\xfe\r\n\x00",
]

FAR_S = 4_000_000_000  # year 2096: EXAT/PXAT replies are deterministic
FAR_MS = FAR_S * 1000
LLONG_MAX = "9223372036854775807"
LLONG_MIN = "-9223372036854775808"
PROTO_MAX = 512 * 1024 * 1024


def ttl_class(raw: bytes):
    """-2/-1 exactly; a positive TTL as 'positive' (both clocks may straddle a rounding step)."""
    value = parse(raw)
    return value if not isinstance(value, int) or value < 0 else "positive"


def check_ttl_class(differ, key) -> None:
    expected, actual = differ.both("TTL", key)
    assert ttl_class(expected) == ttl_class(actual), (key, expected, actual)


# ----------------------------------------------------------------- COMMAND table


GETKEYS_ARGS = {
    "mget": ["a", "b", "c"], "mset": ["a", "1", "b", "2"], "msetnx": ["a", "1", "b", "2"], "lcs": ["a", "b"],
    "set": ["k", "v", "EX", "10"], "getex": ["k"], "get": ["k"], "getdel": ["k"], "strlen": ["k"], "incr": ["k"],
    "decr": ["k"], "setex": ["k", "10", "v"], "psetex": ["k", "10", "v"], "getrange": ["k", "0", "1"],
    "substr": ["k", "0", "1"], "setrange": ["k", "0", "v"],
}


@pytest.mark.parametrize("name", STRING_COMMANDS)
def test_command_info_and_docs(differ, name):
    differ.check("COMMAND", "INFO", name)
    differ.check("COMMAND", "DOCS", name)
    differ.check("COMMAND", "GETKEYS", name, *GETKEYS_ARGS.get(name, ["k", "v"]))


def test_declared_key_positions():
    expected = {"mset": (1, -1, 2), "msetnx": (1, -1, 2), "mget": (1, -1, 1), "lcs": (1, 2, 1)}
    for name in STRING_COMMANDS:
        cmd = lookup(name.encode())
        assert (cmd.first_key, cmd.last_key, cmd.key_step) == expected.get(name, (1, 1, 1)), name
        assert cmd.group == "string"


# --------------------------------------------------------------------- GET / SET


def test_get_set_basic(differ):
    differ.check("GET", "missing")
    differ.check("SET", "k", "v")
    differ.check("GET", "k")
    differ.check("SET", "k", "")
    differ.check("GET", "k")
    differ.check("SET", "k", "v", "extra")
    differ.check("SET", "k")
    differ.check("GET")


@pytest.mark.parametrize("value", BINARY, ids=range(len(BINARY)))
def test_binary_keys_and_values(differ, value):
    key = b"key:" + value
    differ.check("SET", key, value)
    differ.check("GET", key)
    differ.check("STRLEN", key)
    differ.check("APPEND", key, value)
    differ.check("GETRANGE", key, "1", "-2")
    differ.check("SETRANGE", key, "3", value)
    differ.check("GET", key)
    differ.check("MGET", key, value, b"key:" + value)
    differ.check("GETSET", key, value + b"!")
    differ.check("GETDEL", key)
    differ.check("MSET", value, value, key, key)
    differ.check("LCS", value, key)
    differ.check("LCS", value, key, "IDX", "WITHMATCHLEN")
    differ.check("SETNX", value, "x")
    differ.check("GETEX", value, "PERSIST")


def test_large_values(differ):
    big = bytes(random.Random(7).getrandbits(8) for _ in range(100_000))
    differ.check("SET", "big", big)
    differ.check("GET", "big")
    differ.check("STRLEN", "big")
    differ.check("APPEND", "big", big)
    differ.check("STRLEN", "big")
    differ.check("GETRANGE", "big", "99990", "100010")
    differ.check("GETRANGE", "big", "-5", "-1")
    differ.check("SETRANGE", "big", "150000", big)
    differ.check("GET", "big")
    differ.check("SETRANGE", "new", "100000", "x")
    differ.check("GET", "new")
    differ.check("MSET", "b1", big, "b2", big[::-1])
    differ.check("MGET", "b1", "b2", "big")
    differ.check("GETSET", "b1", big[:50_000])
    differ.check("GETDEL", "b2")
    # LCS over 100 KB strings would need a 40 GB table: both refuse.
    differ.check("LCS", "b1", "big")


SET_OPTION_CASES = [
    ("NX",), ("XX",), ("GET",), ("KEEPTTL",), ("NX", "NX"), ("XX", "XX"), ("GET", "GET"), ("KEEPTTL", "KEEPTTL"),
    ("NX", "XX"), ("XX", "NX"), ("NX", "GET"), ("XX", "GET"), ("GET", "NX"), ("GET", "XX"),
    ("EX", "100"), ("PX", "100000"), ("EXAT", str(FAR_S)), ("PXAT", str(FAR_MS)),
    ("EX", "100", "EX", "200"), ("PX", "100000", "PX", "5000000"), ("EX", "100", "PX", "100000"),
    ("PX", "100000", "EX", "100"), ("EXAT", str(FAR_S), "PXAT", str(FAR_MS)), ("EX", "100", "KEEPTTL"),
    ("KEEPTTL", "EX", "100"), ("KEEPTTL", "PXAT", str(FAR_MS)), ("EX",), ("PX",), ("EXAT",), ("PXAT",),
    ("EX", "abc"), ("EX", "1.5"), ("EX", "0"), ("EX", "-1"), ("PX", "0"), ("PX", "-100"), ("EXAT", "0"),
    ("PXAT", "-1"), ("EX", LLONG_MAX), ("EX", "9223372036854775"), ("EX", "9223372036854776"),
    ("PX", LLONG_MAX), ("PX", "9223372036854775"), ("EXAT", "9223372036854775"), ("EXAT", "9223372036854776"),
    ("PXAT", LLONG_MAX), ("EX", "9223372036854775808"), ("EX", " 100"), ("EX", "0100"), ("PERSIST",),
    ("BOGUS",), ("nx", "get", "ex", "100"), ("xx", "get", "keepttl"), ("Nx", "Px", "100000", "gEt"),
    ("NX\x00garbage",), ("GET\x00",), ("EX\x00zz", "100"), ("NXX",), ("N",), ("",),
    ("NX", "EX", "abc", "GET"), ("XX", "PX", "0"), ("EXAT", "1"), ("PXAT", "1", "GET"),
]


@pytest.mark.parametrize("options", SET_OPTION_CASES, ids=[" ".join(o).replace("\x00", "\\0") for o in SET_OPTION_CASES])
@pytest.mark.parametrize("initial", ["none", "plain", "volatile"])
def test_set_options(differ, options, initial):
    if initial == "plain":
        differ.check("SET", "k", "old")
    elif initial == "volatile":
        differ.check("SET", "k", "old", "EX", "1000")
    differ.check("SET", "k", "new", *options)
    differ.check("GET", "k")
    differ.check("EXISTS", "k")
    check_ttl_class(differ, "k")


def test_set_ttl_values(differ):
    differ.check("SET", "a", "v", "EX", "1000")
    differ.check("TTL", "a")
    differ.check("SET", "a", "w", "KEEPTTL")
    differ.check("TTL", "a")
    differ.check("SET", "a", "x")
    differ.check("TTL", "a")
    differ.check("SET", "a", "v", "PX", "5000000")
    differ.check("TTL", "a")
    differ.check("SET", "a", "v", "EXAT", "1")
    differ.check("GET", "a")
    differ.check("EXISTS", "a")


# -------------------------------------------------- SETNX SETEX PSETEX GETSET GETDEL


def test_setnx(differ):
    differ.check("SETNX", "k", "a")
    differ.check("SETNX", "k", "b")
    differ.check("GET", "k")
    differ.check("SET", "v", "x", "EX", "1000")
    differ.check("SETNX", "v", "y")
    differ.check("TTL", "v")
    differ.check("SETNX", "k")
    differ.check("SETNX", "k", "a", "b")


def test_setex_psetex(differ):
    for name, amount in (("SETEX", "1000"), ("PSETEX", "1000000")):
        differ.check(name, "k", amount, "v")
        differ.check("GET", "k")
        differ.check("TTL", "k")
        for bad in ("abc", "0", "-1", "1.5", "", " 1", LLONG_MAX, "9223372036854775", "9223372036854775808",
                    LLONG_MIN):
            differ.check(name, "k2", bad, "v")
        differ.check("EXISTS", "k2")
        differ.check(name, "k", amount)
        differ.check(name, "k", amount, "v", "x")
    differ.check("SET", "p", "v", "EX", "1000")
    differ.check("SETEX", "p", "2000", "w")
    differ.check("TTL", "p")


def test_getset_getdel(differ):
    differ.check("GETSET", "k", "a")
    differ.check("GETSET", "k", "b")
    differ.check("GET", "k")
    differ.check("SET", "t", "v", "EX", "1000")
    differ.check("GETSET", "t", "w")
    differ.check("TTL", "t")
    differ.check("GETDEL", "t")
    differ.check("GETDEL", "t")
    differ.check("EXISTS", "t")
    differ.check("GETDEL", "missing")
    differ.check("GETSET", "k")
    differ.check("GETDEL", "k", "x")
    differ.check("APPEND", "r", "raw")
    differ.check("APPEND", "r", "!")
    differ.check("GETSET", "r", "fresh")
    differ.check("APPEND", "r", "x")
    differ.check("GETDEL", "r")


# -------------------------------------------------------------------------- GETEX


GETEX_OPTION_CASES = [
    (), ("PERSIST",), ("PERSIST", "PERSIST"), ("EX", "1000"), ("PX", "1000000"), ("EXAT", str(FAR_S)),
    ("PXAT", str(FAR_MS)), ("EX", "1000", "EX", "2000"), ("EX", "1000", "PX", "1000"), ("PERSIST", "EX", "10"),
    ("EX", "10", "PERSIST"), ("EX",), ("NX",), ("XX",), ("GET",), ("KEEPTTL",), ("BOGUS",), ("EX", "abc"),
    ("EX", "0"), ("EX", "-5"), ("PX", "0"), ("EXAT", "0"), ("PXAT", "-1"), ("EX", "9223372036854775"),
    ("PX", LLONG_MAX), ("EXAT", "9223372036854776"), ("PXAT", LLONG_MAX), ("EXAT", "1"), ("PXAT", "1"),
    ("persist\x00x",), ("ex", "1000"), ("EX", "9223372036854775808"),
]


@pytest.mark.parametrize("options", GETEX_OPTION_CASES, ids=[" ".join(o).replace("\x00", "\\0") or "bare" for o in GETEX_OPTION_CASES])
@pytest.mark.parametrize("initial", ["none", "plain", "volatile"])
def test_getex(differ, options, initial):
    if initial == "plain":
        differ.check("SET", "k", "value")
    elif initial == "volatile":
        differ.check("SET", "k", "value", "EX", "1000")
    differ.check("GETEX", "k", *options)
    differ.check("EXISTS", "k")
    check_ttl_class(differ, "k")


def test_getex_ttls(differ):
    differ.check("SET", "k", "v")
    differ.check("GETEX", "k", "EX", "1000")
    differ.check("TTL", "k")
    differ.check("GETEX", "k")
    differ.check("TTL", "k")
    differ.check("GETEX", "k", "PERSIST")
    differ.check("TTL", "k")
    differ.check("GETEX", "k", "PERSIST")
    differ.check("GETEX")


# ----------------------------------------------------------------- MGET MSET MSETNX


def test_mget(differ):
    differ.check("MSET", "a", "1", "b", "2")
    differ.check("MGET", "a")
    differ.check("MGET", "a", "b", "missing", "a")
    differ.check("MGET", "missing")
    differ.check("MGET")


def test_mset_msetnx(differ):
    differ.check("MSET", "a", "1")
    differ.check("MSET", "a", "1", "b")
    differ.check("MSET", "a")
    differ.check("MSET", "a", "1", "b", "2", "a", "3")
    differ.check("MGET", "a", "b")
    differ.check("SET", "t", "v", "EX", "1000")
    differ.check("MSET", "t", "w")
    differ.check("TTL", "t")
    differ.check("MSETNX", "a", "1", "b")
    differ.check("MSETNX", "a", "x", "c", "y")
    differ.check("MGET", "a", "c")
    differ.check("MSETNX", "c", "1", "d", "2")
    differ.check("MSETNX", "e", "1", "e", "2")
    differ.check("MGET", "c", "d", "e")
    differ.check("MSETNX", "f")
    differ.check("MSETNX", "f", "1", "g")


# ------------------------------------------------------------------------ APPEND


def test_append(differ):
    differ.check("APPEND", "k", "hello")
    differ.check("APPEND", "k", " world")
    differ.check("GET", "k")
    differ.check("APPEND", "k", "")
    differ.check("APPEND", "empty", "")
    differ.check("EXISTS", "empty")
    differ.check("GET", "empty")
    differ.check("SET", "t", "v", "EX", "1000")
    differ.check("APPEND", "t", "w")
    differ.check("TTL", "t")
    differ.check("SET", "n", "12")
    differ.check("APPEND", "n", "34")
    differ.check("INCR", "n")
    differ.check("APPEND", "k")
    differ.check("APPEND", "k", "a", "b")


def test_append_encodings(differ):
    # APPEND to a new key stores the argument as SET would; modifying makes it raw.
    for key, value in (("i", "123"), ("e", "short"), ("r", "x" * 50)):
        differ.check("APPEND", key, value)
        differ.check("OBJECT", "ENCODING", key)
        differ.check("APPEND", key, "")
        differ.check("OBJECT", "ENCODING", key)


def test_append_size_limit(differ):
    # Over the limit via SETRANGE's offset (APPEND's own check is tested in-process).
    differ.check("SETRANGE", "k", str(PROTO_MAX), "x")
    differ.check("EXISTS", "k")


# ------------------------------------------------------------ STRLEN / GETRANGE


def test_strlen(differ):
    differ.check("STRLEN", "missing")
    differ.check("SET", "k", "hello")
    differ.check("STRLEN", "k")
    differ.check("SET", "i", "-12345")
    differ.check("STRLEN", "i")
    differ.check("SET", "e", "")
    differ.check("STRLEN", "e")
    differ.check("STRLEN")
    differ.check("STRLEN", "k", "i")


GETRANGE_CASES = [
    (0, 3), (-3, -1), (0, -1), (10, 100), (5, 3), (-100, -50), (-100, 2), (11, 11), (-1, -5), (0, 0),
    (-1, -1), (100, 200), (LLONG_MIN, LLONG_MAX), (3, -100), (-11, -11), (-12, -12), (1, 0), (-5, 5),
    (LLONG_MAX, LLONG_MAX), (LLONG_MIN, LLONG_MIN), (0, LLONG_MIN), (-2, 100),
]


@pytest.mark.parametrize("value", ["Hello World", "", "123", "x"])
def test_getrange(differ, value):
    differ.check("SET", "s", value)
    for start, end in GETRANGE_CASES:
        differ.check("GETRANGE", "s", str(start), str(end))
        differ.check("SUBSTR", "s", str(start), str(end))
        differ.check("GETRANGE", "missing", str(start), str(end))


def test_getrange_errors(differ):
    differ.check("SET", "s", "Hello")
    for bad in ("a", "1.5", "", " 1", "9223372036854775808", "01", "-0"):
        differ.check("GETRANGE", "s", bad, "1")
        differ.check("GETRANGE", "s", "1", bad)
        differ.check("GETRANGE", "missing", bad, "1")
    differ.check("GETRANGE", "s", "0")
    differ.check("GETRANGE", "s", "0", "1", "2")
    differ.check("SUBSTR", "s", "0")


# ---------------------------------------------------------------------- SETRANGE


def test_setrange(differ):
    differ.check("SET", "k", "Hello World")
    differ.check("SETRANGE", "k", "6", "Redis")
    differ.check("GET", "k")
    differ.check("SETRANGE", "k", "20", "pad")
    differ.check("GET", "k")
    differ.check("SETRANGE", "k", "0", "")
    differ.check("SETRANGE", "k", "1000", "")
    differ.check("STRLEN", "k")
    differ.check("SETRANGE", "new", "5", "x")
    differ.check("GET", "new")
    differ.check("OBJECT", "ENCODING", "new")
    differ.check("SETRANGE", "nothing", "5", "")
    differ.check("EXISTS", "nothing")
    differ.check("SETRANGE", "nothing", "0", "")
    differ.check("SET", "i", "12345")
    differ.check("SETRANGE", "i", "0", "")
    differ.check("OBJECT", "ENCODING", "i")
    differ.check("SETRANGE", "i", "1", "9")
    differ.check("GET", "i")
    differ.check("OBJECT", "ENCODING", "i")
    differ.check("INCR", "i")
    differ.check("SET", "t", "v", "EX", "1000")
    differ.check("SETRANGE", "t", "3", "w")
    differ.check("TTL", "t")


def test_setrange_errors(differ):
    differ.check("SET", "k", "v")
    for key in ("k", "missing"):
        for offset in ("-1", LLONG_MIN, "abc", "1.0", "", "9223372036854775808"):
            differ.check("SETRANGE", key, offset, "x")
            differ.check("SETRANGE", key, offset, "")
        # Beyond proto-max-bulk-len (512 MB): refused before allocating anything.
        for offset in (str(PROTO_MAX), str(PROTO_MAX + 10), LLONG_MAX):
            differ.check("SETRANGE", key, offset, "x")
        differ.check("SETRANGE", key, str(PROTO_MAX - 1), "xy")
        differ.check("SETRANGE", key, str(PROTO_MAX + 10), "")
    differ.check("GET", "k")
    differ.check("EXISTS", "missing")
    differ.check("SETRANGE", "k", "0")
    differ.check("SETRANGE", "k", "0", "x", "y")


# ----------------------------------------------------------------- INCR / DECR


def test_incr_decr(differ):
    differ.check("INCR", "n")
    differ.check("INCR", "n")
    differ.check("DECR", "n")
    differ.check("DECR", "m")
    differ.check("INCRBY", "n", "100")
    differ.check("INCRBY", "n", "-300")
    differ.check("DECRBY", "n", "-5")
    differ.check("DECRBY", "n", "5")
    differ.check("GET", "n")
    differ.check("OBJECT", "ENCODING", "n")
    differ.check("SET", "t", "5", "EX", "1000")
    differ.check("INCR", "t")
    differ.check("TTL", "t")


def test_incr_bad_values(differ):
    for value in ("abc", " 1", "1 ", "00", "-0", "01", "+1", "1.5", "1e3", "", "12345678901234567890",
                  "9223372036854775808", "-9223372036854775809", "0x10", "1\x00", "x" * 30):
        differ.check("SET", "s", value)
        differ.check("INCR", "s")
        differ.check("DECR", "s")
        differ.check("INCRBY", "s", "1")
        differ.check("DECRBY", "s", "1")
        differ.check("GET", "s")


def test_incr_bad_increments(differ):
    differ.check("SET", "n", "10")
    for amount in ("abc", " 1", "1.0", "01", "-0", "+1", "", "9223372036854775808", "-9223372036854775809"):
        differ.check("INCRBY", "n", amount)
        differ.check("DECRBY", "n", amount)
        differ.check("INCRBY", "missing", amount)
    differ.check("INCRBY", "n")
    differ.check("INCR", "n", "1")
    differ.check("DECRBY", "n", "1", "2")


def test_incr_overflow(differ):
    differ.check("SET", "max", LLONG_MAX)
    differ.check("INCR", "max")
    differ.check("INCRBY", "max", "0")
    differ.check("DECR", "max")
    differ.check("INCRBY", "max", "1")
    differ.check("SET", "min", LLONG_MIN)
    differ.check("DECR", "min")
    differ.check("INCRBY", "min", "-1")
    differ.check("DECRBY", "min", "1")
    differ.check("INCRBY", "min", LLONG_MAX)
    differ.check("SET", "n", "-5")
    differ.check("DECRBY", "n", LLONG_MAX)
    differ.check("DECRBY", "n", LLONG_MIN)
    differ.check("DECRBY", "missing", LLONG_MIN)
    differ.check("INCRBY", "n", LLONG_MIN)
    differ.check("INCRBY", "n", LLONG_MAX)
    differ.check("INCRBY", "x", LLONG_MIN)
    differ.check("DECRBY", "y", LLONG_MAX)
    differ.check("MGET", "n", "x", "y")


# ------------------------------------------------------------------- INCRBYFLOAT

FLOAT_INCREMENTS = [
    "10.5", "3.0e3", "1e-5", "0.1", "1e20", "1e308", "1e400", "1e-400", "inf", "-inf", "+inf", "infinity",
    "INF", "Infinity", "infinit", "nan", "-nan", "NaN", "nan(1)", "1e4932", "1e4933", "1.18e4932",
    "1.19e4932", "-1.18e4932", "1e-4950", "1e-4951", "1e-4952", "3.6e-4951", "1.9e-4951", "0x10",
    "0x1p-3", "0X1P4", "0x1.8p1", "0x.8", "0x", "0x1p", "0xg", " 1", "1 ", "\t1", "", "1e", "1e+", "+.5",
    ".", "-.", "-0", "0", "+0", "-0.0", "5.0000000000000000001", "\x00", "1.5\x00abc", "1.", "-.5e1",
    "3.7e-10", "123456789012345678901234567890", "0.000000000000000001", "-0.000000000000000001",
    "0.000000000000000005", "1_0", "1,5", "0.000003814697265625", "0.000011444091796875", "1e-17",
    "-1e-17", "1.5e-17", "9.999999999999999999", "0.30000000000000004", "1e99999999999999999999",
    "1e-99999999999999999999", "0e99999999999999999999", "1e00000000000000000000000005", "-123.456e-2",
    "0" * 5118 + "1", "0" * 5119 + "1", "1" * 4500 + "e-4400", "0." + "0" * 4000 + "1e4000",
    LLONG_MAX, LLONG_MIN, "18446744073709551615", "18446744073709551617", "1e19", "1e18",
]


@pytest.mark.parametrize("increment", FLOAT_INCREMENTS, ids=[repr(i[:30]) for i in FLOAT_INCREMENTS])
@pytest.mark.parametrize("start", [None, "0", "1.5", "-7", "1e300", "0.1"])
def test_incrbyfloat(differ, start, increment):
    if start is not None:
        differ.check("SET", "f", start)
    differ.check("INCRBYFLOAT", "f", increment)
    differ.check("GET", "f")


def test_incrbyfloat_sequences(differ):
    rng = random.Random(42)
    differ.check("SET", "t", "1.5", "EX", "1000")
    differ.check("INCRBYFLOAT", "t", "1")
    differ.check("TTL", "t")
    for _ in range(300):
        exponent = rng.randint(-30, 30)
        increment = "%.*e" % (rng.randint(0, 20), rng.uniform(-10, 10) * 10**exponent)
        differ.check("INCRBYFLOAT", "acc", increment)
    for _ in range(200):
        differ.check("INCRBYFLOAT", "tenth", "0.1")
    for _ in range(100):
        differ.check("INCRBYFLOAT", "third", "-0.333333333333333333333")


def test_incrbyfloat_bad_stored_values(differ):
    for value in ("abc", " 1", "1 ", "", "nan", "inf", "-inf", "1e5000", "0x", "1\x00"):
        differ.check("SET", "s", value)
        differ.check("INCRBYFLOAT", "s", "1")
        differ.check("INCRBYFLOAT", "s", "x")
    differ.check("SET", "s", "1" * 5120)
    differ.check("INCRBYFLOAT", "s", "1")
    differ.check("SET", "s", "1.18e4932")
    differ.check("INCRBYFLOAT", "s", "1.18e4932")
    differ.check("INCRBYFLOAT", "s", "-1.18e4932")
    differ.check("INCRBYFLOAT", "s")
    differ.check("INCRBYFLOAT", "s", "1", "2")


# ------------------------------------------------------------------------- LCS


def test_lcs_basic(differ):
    differ.check("MSET", "a", "ohmytext", "b", "mynewtext")
    for options in ((), ("LEN",), ("IDX",), ("IDX", "MINMATCHLEN", "4"), ("IDX", "WITHMATCHLEN"),
                    ("IDX", "MINMATCHLEN", "2", "WITHMATCHLEN"), ("MINMATCHLEN", "-5", "IDX"),
                    ("idx", "withmatchlen", "minmatchlen", "0"), ("LEN", "MINMATCHLEN", "3", "WITHMATCHLEN"),
                    ("WITHMATCHLEN",), ("MINMATCHLEN", "100"), ("IDX", "IDX"), ("LEN", "LEN"),
                    ("IDX", "LEN"), ("LEN", "IDX"), ("MINMATCHLEN",), ("MINMATCHLEN", "x"),
                    ("MINMATCHLEN", "x", "BOGUS"), ("BOGUS", "MINMATCHLEN", "x"), ("IDX", "LEN", "BOGUS"),
                    ("BOGUS",), ("IDX\x00x",), ("MINMATCHLEN", LLONG_MAX, "IDX"), ("MINMATCHLEN", "1.5")):
        differ.check("LCS", "a", "b", *options)
        differ.check("LCS", "b", "a", *options)
    differ.check("LCS", "a", "missing")
    differ.check("LCS", "missing", "a", "IDX")
    differ.check("LCS", "missing", "other", "IDX")
    differ.check("LCS", "missing", "other", "LEN")
    differ.check("LCS", "a", "a", "IDX", "WITHMATCHLEN")
    differ.check("LCS", "a")


def test_lcs_random(differ):
    rng = random.Random(5)
    for round_ in range(60):
        alphabet = [b"ab", b"abc", b"ACGT", bytes(range(256)), b"a"][round_ % 5]
        a = bytes(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
        b = bytes(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
        differ.check("MSET", "x", a, "y", b)
        differ.check("LCS", "x", "y")
        differ.check("LCS", "x", "y", "LEN")
        differ.check("LCS", "x", "y", "IDX", "WITHMATCHLEN")
        differ.check("LCS", "x", "y", "IDX", "MINMATCHLEN", str(rng.randint(0, 4)))


def test_lcs_long(differ):
    rng = random.Random(9)
    a = bytes(rng.choice(b"ACGT") for _ in range(3000))
    b = bytes(rng.choice(b"ACGT") for _ in range(2500))
    differ.check("MSET", "x", a, "y", b)
    differ.check("LCS", "x", "y")
    differ.check("LCS", "x", "y", "LEN")
    differ.check("LCS", "x", "y", "IDX", "WITHMATCHLEN", "MINMATCHLEN", "3")
    # A table over proto-max-bulk-len (here 11601 * 11601 * 4 bytes > 512 MB) is refused.
    differ.check("MSET", "p", b"p" * 11600, "q", b"q" * 11600)
    differ.check("LCS", "p", "q")
    differ.check("LCS", "p", "q", "LEN")
    differ.check("LCS", "p", "missing")


# ------------------------------------------------------------------------- RESP3


def test_resp3_replies(differ3):
    differ3.check("GET", "missing")
    differ3.check("SET", "k", "v", "GET")
    differ3.check("SET", "k", "w", "GET")
    differ3.check("SET", "k", "x", "NX")
    differ3.check("SET", "k", "x", "NX", "GET")
    differ3.check("MGET", "k", "missing")
    differ3.check("GETEX", "missing")
    differ3.check("GETEX", "k", "EX", "1000")
    differ3.check("GETDEL", "missing")
    differ3.check("GETSET", "new", "v")
    differ3.check("INCRBYFLOAT", "f", "1.5")
    differ3.check("INCRBYFLOAT", "f", "abc")
    differ3.check("INCR", "n")
    differ3.check("SETNX", "n", "1")
    differ3.check("MSETNX", "n", "1")
    differ3.check("MSET", "a", "ohmytext", "b", "mynewtext")
    differ3.check("LCS", "a", "b")
    differ3.check("LCS", "a", "b", "LEN")
    differ3.check("LCS", "a", "b", "IDX")
    differ3.check("LCS", "a", "b", "IDX", "WITHMATCHLEN", "MINMATCHLEN", "2")
    differ3.check("LCS", "missing", "other", "IDX")
    differ3.check("GETRANGE", "missing", "0", "-1")
    differ3.check("STRLEN", "a")
    differ3.check("SETRANGE", "a", "-1", "x")
    differ3.check("MSET", "a")


# ------------------------------------------------------------ random sequences

KEYS = [b"k1", b"k2", b"k3", b"\x00bin\r\n"]
_keys = st.sampled_from(KEYS)
_values = st.one_of(
    st.binary(max_size=12),
    st.integers(-(2**64), 2**64).map(lambda n: str(n).encode()),
    st.sampled_from([b"", b"10", b"-5", b"0", b"1.5", b"abc", b"3.0e3", b"9223372036854775807",
                     b"-9223372036854775808", b" 1", b"01", b"1e400", b"inf"]),
)
_ints = st.one_of(
    st.integers(-50, 50).map(str),
    st.integers(-(2**64), 2**64).map(str),
    st.sampled_from([LLONG_MAX, LLONG_MIN, "-0", "01", " 1", "abc", "", "1.5"]),
)
_floats = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6).map(lambda f: "%.12g" % f),
    st.integers(0, 25).flatmap(lambda p: st.decimals(allow_nan=False, allow_infinity=False, places=p)).map(str),
    _ints,
    st.sampled_from(["0x1p-3", "inf", "-inf", "nan", "1e4932", "1e-4950", ".5", "5.", "1e", "abc"]),
)
# Expiry arguments that keep replies deterministic: long relative times,
# far-future or long-past absolute ones, and invalid values.
_expire_opt = st.one_of(
    st.tuples(st.just("EX"), st.sampled_from(["1000", "100000", "0", "-1", "abc", "9223372036854775"])),
    st.tuples(st.just("PX"), st.sampled_from(["10000000", "0", LLONG_MAX])),
    st.tuples(st.just("EXAT"), st.sampled_from([str(FAR_S), "1", "0"])),
    st.tuples(st.just("PXAT"), st.sampled_from([str(FAR_MS), "1", LLONG_MAX])),
)
_set_opts = st.lists(
    st.one_of(st.sampled_from([("NX",), ("XX",), ("GET",), ("KEEPTTL",), ("PERSIST",), ("BOGUS",)]), _expire_opt),
    max_size=3,
).map(lambda groups: [word for group in groups for word in group])
_getex_opts = st.lists(st.one_of(st.sampled_from([("PERSIST",), ("NX",)]), _expire_opt), max_size=2).map(
    lambda groups: [word for group in groups for word in group]
)
_lcs_opts = st.lists(
    st.sampled_from([("LEN",), ("IDX",), ("WITHMATCHLEN",), ("MINMATCHLEN", "2"), ("MINMATCHLEN", "x")]),
    max_size=3,
).map(lambda groups: [word for group in groups for word in group])
_offsets = st.one_of(st.integers(0, 40).map(str), st.sampled_from(["-1", "abc", str(PROTO_MAX), LLONG_MAX]))
_pairs = st.lists(st.tuples(_keys, _values), min_size=1, max_size=3).map(lambda ps: [x for p in ps for x in p])


def _cmd(name, *parts):
    return st.tuples(st.just(name), *parts)


_commands = st.one_of(
    _cmd("SET", _keys, _values).flatmap(lambda c: _set_opts.map(lambda o: c + tuple(o))),
    _cmd("GET", _keys),
    _cmd("SETNX", _keys, _values),
    _cmd("SETEX", _keys, st.sampled_from(["1000", "0", "abc"]), _values),
    _cmd("PSETEX", _keys, st.sampled_from(["10000000", "-5"]), _values),
    _cmd("GETSET", _keys, _values),
    _cmd("GETDEL", _keys),
    _cmd("GETEX", _keys).flatmap(lambda c: _getex_opts.map(lambda o: c + tuple(o))),
    st.lists(_keys, min_size=1, max_size=4).map(lambda ks: ("MGET", *ks)),
    _pairs.map(lambda p: ("MSET", *p)),
    _pairs.map(lambda p: ("MSETNX", *p)),
    _cmd("APPEND", _keys, _values),
    _cmd("STRLEN", _keys),
    _cmd("GETRANGE", _keys, _ints, _ints),
    _cmd("SUBSTR", _keys, _ints, _ints),
    _cmd("SETRANGE", _keys, _offsets, _values),
    _cmd("INCR", _keys),
    _cmd("DECR", _keys),
    _cmd("INCRBY", _keys, _ints),
    _cmd("DECRBY", _keys, _ints),
    _cmd("INCRBYFLOAT", _keys, _floats),
    _cmd("LCS", _keys, _keys).flatmap(lambda c: _lcs_opts.map(lambda o: c + tuple(o))),
    _cmd("RPUSH", _keys, _values),  # a wrong-type key, when Shoal has lists
    _cmd("EXISTS", _keys),
    _cmd("TTL", _keys),
    _cmd("DEL", _keys),
    # wrong arity and odd argument lists
    st.tuples(st.sampled_from(STRING_COMMANDS), st.lists(st.one_of(_keys, _values), max_size=3)).map(
        lambda t: (t[0], *t[1])
    ),
)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(commands=st.lists(_commands, min_size=1, max_size=25))
def test_random_command_sequences(differ, commands):
    differ.both("FLUSHALL")
    has_lists = not differ.shoal.call("RPUSH", "__probe__", "x").startswith(b"-ERR unknown command")
    differ.both("FLUSHALL")
    for argv in commands:
        if argv[0] == "RPUSH" and not has_lists:
            continue
        if argv[0] == "TTL":
            check_ttl_class(differ, argv[1])
        else:
            differ.check(*argv)
    for key in KEYS:
        differ.check("TYPE", key)
        differ.check("GET", key)
        check_ttl_class(differ, key)


# ------------------------------------------------------- in-process handler tests
#
# Direct calls into the handlers: wrong-type values (any non-string object will
# do) and a small proto-max-bulk-len, which the servers cannot easily provide.


class _Clock:
    def __init__(self, now=1_700_000_000_000):
        self._now = now

    def now(self):
        return self._now


class _Node:
    def __init__(self, max_bulk=PROTO_MAX):
        self.config = {"proto-max-bulk-len": max_bulk}
        self.notify_flags = 0  # keyspace events off (node/notify.py reads it)
        self.propagation = Propagator(self)  # no sink: handlers' rewrite() calls do nothing


class _Client:
    def __init__(self, max_bulk=PROTO_MAX):
        self.db = Database(0, _Clock())
        self.node = _Node(max_bulk)


def run(client, *argv):
    argv = [a.encode() if isinstance(a, str) else a for a in argv]
    cmd = lookup(argv[0])
    try:
        return cmd.handler(client, argv)
    except ErrorReply as error:
        return error


WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"


@pytest.mark.parametrize("argv", [
    ("GET", "w"), ("SET", "w", "v", "GET"), ("SET", "w", "v", "NX", "GET"), ("GETSET", "w", "v"),
    ("GETDEL", "w"), ("GETEX", "w"), ("GETEX", "w", "EX", "abc"), ("APPEND", "w", "x"), ("APPEND", "w", ""),
    ("STRLEN", "w"), ("GETRANGE", "w", "0", "1"), ("SUBSTR", "w", "0", "1"), ("SETRANGE", "w", "0", "x"),
    ("SETRANGE", "w", "0", ""), ("INCR", "w"), ("DECR", "w"), ("INCRBY", "w", "1"), ("DECRBY", "w", "1"),
    ("INCRBYFLOAT", "w", "1"), ("INCRBYFLOAT", "w", "x"),
])
def test_wrongtype_in_process(argv):
    client = _Client()
    client.db.set(b"w", ["not", "a", "string"])
    reply = run(client, *argv)
    assert isinstance(reply, ErrorReply) and reply.message == WRONGTYPE, reply
    assert client.db.lookup(b"w") == ["not", "a", "string"]


def test_wrongtype_precedence_in_process():
    client = _Client()
    client.db.set(b"w", {"a": 1})
    assert run(client, "INCRBY", "w", "x").message == "ERR value is not an integer or out of range"
    assert run(client, "DECRBY", "w", LLONG_MIN).message == "ERR decrement would overflow"
    assert run(client, "SETRANGE", "w", "-1", "x").message == "ERR offset is out of range"
    assert run(client, "GETRANGE", "w", "x", "1").message == "ERR value is not an integer or out of range"
    assert run(client, "GETEX", "w", "BOGUS").message == "ERR syntax error"
    assert run(client, "SET", "w", "v", "GET", "EX", "x").message == "ERR value is not an integer or out of range"
    assert run(client, "LCS", "w", "missing", "BOGUS").message == "ERR The specified keys must contain string values"
    assert run(client, "MGET", "w", "missing") == [None, None]
    assert run(client, "SETNX", "w", "v") == 0
    assert run(client, "MSETNX", "x", "1", "w", "2") == 0
    assert run(client, "SET", "w", "v", "NX") is None
    assert client.db.lookup(b"w") == {"a": 1}
    assert run(client, "SET", "w", "v").data == b"+OK\r\n"
    assert client.db.lookup(b"w") == b"v"


def test_size_limit_in_process():
    limit = 1024 * 1024
    client = _Client(max_bulk=limit)
    too_big = "ERR string exceeds maximum allowed size (proto-max-bulk-len)"
    assert run(client, "SET", "k", b"x" * (limit - 1)).data == b"+OK\r\n"
    assert run(client, "APPEND", "k", "y") == limit
    assert run(client, "APPEND", "k", "z").message == too_big
    assert run(client, "APPEND", "k", "") == limit
    assert run(client, "SETRANGE", "k", str(limit - 1), "z") == limit
    assert run(client, "SETRANGE", "k", str(limit), "z").message == too_big
    assert run(client, "SETRANGE", "new", str(limit - 1), "z") == limit
    assert run(client, "SETRANGE", "new2", str(limit), "z").message == too_big
    assert client.db.lookup(b"new2") is None
    # APPEND to a missing key stores the argument as is, whatever its size.
    assert run(client, "APPEND", "new3", b"x" * (limit + 1)) == limit + 1
    # LCS: a table over the limit is refused.
    assert run(client, "SET", "a", b"a" * 600).data == b"+OK\r\n"
    assert run(client, "LCS", "a", "a", "LEN").message == (
        "ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len"
    )
    assert run(client, "SET", "b", b"a" * 400).data == b"+OK\r\n"
    assert run(client, "LCS", "b", "b", "LEN") == 400


def test_append_setrange_storage_in_process():
    client = _Client()
    db = client.db
    run(client, "SET", "k", "abc")
    assert type(db.lookup(b"k")) is bytes
    run(client, "APPEND", "k", "d")
    value = db.lookup(b"k")
    assert type(value) is bytearray and value == b"abcd"
    reply = run(client, "GET", "k")
    assert type(reply) is bytes and reply == b"abcd"
    run(client, "SETRANGE", "k", "6", "z")
    assert db.lookup(b"k") == b"abcd\x00\x00z"
    run(client, "INCRBYFLOAT", "f", "2")
    assert db.lookup(b"f") == b"2" and type(db.lookup(b"f")) is bytes
    run(client, "INCR", "f")
    assert db.lookup(b"f") == b"3" and type(db.lookup(b"f")) is bytes


def test_long_double_emulation():
    # Known x87 results (checked against Redis 7.0.15 on x86-64).
    cases = {
        b"0.1": b"0.1",
        b"123456789012345678901234567890": b"123456789012345678899921813504",
        b"0.000003814697265625": b"0.00000381469726562",  # exact tie: to even
        b"0.000011444091796875": b"0.00001144409179688",
        b"-0.000000000000000001": b"0",
        b"1e-4950": b"0",
        b"0x1p-3": b"0.125",
    }
    for text, expected in cases.items():
        assert strings.ld_format(strings.ld_parse(text)) == expected, text
    for text in (b"1e4933", b"1e-4951", b"nan", b" 1", b"1 ", b"", b"0x", b"1\x00", b"9" * 5120):
        assert strings.ld_parse(text) is None, text
    total = strings.ld_add(strings.ld_parse(b"0.1"), strings.ld_parse(b"0.2"))
    assert strings.ld_format(total) == b"0.3"


# (command, keyspace hits, keyspace misses) as Redis 7.0.15 counts them, with
# "nn" holding a string and "none" missing.
HIT_MISS_CASES = [
    (("GET", "none"), 0, 1), (("SET", "none", "v", "GET"), 0, 1), (("SET", "nn", "v", "NX", "GET"), 1, 0),
    (("SET", "none", "v"), 0, 0), (("SET", "nn", "v", "XX"), 0, 0), (("SETNX", "nn", "v"), 0, 0),
    (("GETSET", "none", "v"), 0, 1), (("GETSET", "nn", "v"), 1, 0), (("GETDEL", "none"), 0, 1),
    (("GETDEL", "nn"), 1, 0), (("GETEX", "nn"), 1, 0), (("GETEX", "none"), 0, 1),
    (("MGET", "nn", "none", "nn"), 2, 1), (("APPEND", "nn", "x"), 0, 0), (("STRLEN", "nn"), 1, 0),
    (("STRLEN", "none"), 0, 1), (("GETRANGE", "nn", "0", "1"), 1, 0), (("GETRANGE", "none", "0", "1"), 0, 1),
    (("SETRANGE", "nn", "0", "x"), 0, 0), (("INCR", "i"), 0, 0), (("INCRBYFLOAT", "i", "1"), 0, 0),
    (("LCS", "nn", "none"), 1, 1), (("MSETNX", "nn", "1"), 0, 0),
]


@pytest.mark.parametrize("argv,hits,misses", HIT_MISS_CASES, ids=[" ".join(c[0]) for c in HIT_MISS_CASES])
def test_keyspace_hits_and_misses_in_process(argv, hits, misses):
    client = _Client()
    client.db.set(b"nn", b"v")
    run(client, *argv)
    assert (client.db.hits, client.db.misses) == (hits, misses)
