"""Hash commands against real Redis 7.0, byte for byte.

Every test runs over RESP2 and RESP3 (the ``d`` fixture). Listpack hashes
keep insertion order in both servers, so their replies are compared exactly
(``exact``); hashtable-encoded hashes are compared as sorted collections
(tests/known_differences.py). Random commands (HRANDFIELD) are checked by
properties; encodings, digests, keyspace events, dirty counts and keyspace
hits/misses are compared with Redis too.
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

HASH_COMMANDS = (
    "hset hsetnx hget hmget hmset hgetall hdel hexists hlen hkeys hvals hincrby hincrbyfloat hstrlen "
    "hrandfield hscan"
).split()
WRONGTYPE = b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"
LLONG_MAX = "9223372036854775807"
LLONG_MIN = "-9223372036854775808"
BINARY = [b"", b"\x00", b"a\r\nb", bytes(range(256)), "ключ".encode(), b"12", b"-7", b"007", b"1e3", b" 1"]


def check_hash(d, key):
    """Contents (exactly if listpack), length, encoding, type and digest agree."""
    enc = d.check("OBJECT", "ENCODING", key)
    compare = d.exact if b"listpack" in enc else d.check
    for name in ("HGETALL", "HKEYS", "HVALS"):
        compare(name, key)
    compare("HSCAN", key, 0)
    d.check("HLEN", key)
    d.check("TYPE", key)
    d.check("DEBUG", "DIGEST-VALUE", key)


# ----------------------------------------------------------------- COMMAND table

GETKEYS_ARGS = {
    "hset": ["h", "f", "v"], "hsetnx": ["h", "f", "v"], "hget": ["h", "f"], "hmget": ["h", "f", "g"],
    "hmset": ["h", "f", "v"], "hdel": ["h", "f"], "hexists": ["h", "f"], "hincrby": ["h", "f", "1"],
    "hincrbyfloat": ["h", "f", "1"], "hstrlen": ["h", "f"], "hscan": ["h", "0"], "hrandfield": ["h", "1"],
}


@pytest.mark.parametrize("name", HASH_COMMANDS)
def test_command_info_docs_getkeys(differ, name):
    differ.check("COMMAND", "INFO", name)
    differ.check("COMMAND", "DOCS", name)
    differ.check("COMMAND", "GETKEYS", name, *GETKEYS_ARGS.get(name, ["h"]))


# ------------------------------------------------------------------- basics


def test_set_get_and_friends(d):
    check_all(
        d,
        ("HSET", "h", "a", "1"), ("HSET", "h", "b", "2", "c", "3", "a", "4"), ("HSET", "h", "b", "2", "b", "5"),
        ("HGET", "h", "a"), ("HGET", "h", "nope"), ("HGET", "nokey", "a"),
        ("HMGET", "h", "a", "nope", "c", "a"), ("HMGET", "nokey", "a", "b"),
        ("HSETNX", "h", "a", "x"), ("HSETNX", "h", "z", "x"), ("HSETNX", "new", "f", "v"),
        ("HMSET", "h", "m", "1", "n", "2"), ("HMSET", "h", "m", "1", "n"), ("HSET", "h", "m"),
        ("HLEN", "h"), ("HLEN", "nokey"), ("HEXISTS", "h", "a"), ("HEXISTS", "h", "nope"), ("HEXISTS", "nokey", "a"),
        ("HSTRLEN", "h", "a"), ("HSTRLEN", "h", "nope"), ("HSTRLEN", "nokey", "a"),
        ("HGETALL", "nokey"), ("HKEYS", "nokey"), ("HVALS", "nokey"),
    )
    check_hash(d, "h")
    check_hash(d, "new")


def test_insertion_order_is_kept(d):
    check_all(d, ("HSET", "h", "z", "1", "a", "2", "m", "3"), ("HSET", "h", "a", "9"), ("HDEL", "h", "z"),
              ("HSET", "h", "z", "0", "b", "1"), ("HINCRBY", "h", "new", 5), ("HINCRBYFLOAT", "h", "m", "0.5"))
    for name in ("HGETALL", "HKEYS", "HVALS"):
        d.exact(name, "h")
    d.exact("HSCAN", "h", 0)
    d.exact("HSCAN", "h", 12345, "COUNT", 1)


def test_hdel(d):
    check_all(
        d,
        ("HSET", "h", "a", "1", "b", "2", "c", "3"), ("HDEL", "h", "a", "a", "nope"), ("HDEL", "h", "nope"),
        ("HDEL", "nokey", "a"), ("HDEL", "h", "b", "c", "d"), ("EXISTS", "h"), ("HSET", "h", "a", "1"),
        ("HDEL", "h"), ("HDEL", "h", "a", "b"), ("EXISTS", "h"),
    )


@pytest.mark.parametrize("value", BINARY, ids=range(len(BINARY)))
def test_binary_fields_and_values(d, value):
    key = b"h" + value
    check_all(
        d, ("HSET", key, value, value, value + b"!", b""), ("HGET", key, value), ("HMGET", key, value, b"x"),
        ("HSTRLEN", key, value), ("HEXISTS", key, value), ("HSETNX", key, value, b"z"),
        ("HINCRBY", key, value, 1), ("HINCRBYFLOAT", key, value, "1.5"), ("HDEL", key, value + b"!"),
    )
    check_hash(d, key)


def test_empty_hash_is_never_kept(d):
    check_all(d, ("HSET", "h", "a", "1"), ("HDEL", "h", "a"), ("EXISTS", "h"), ("TYPE", "h"), ("HLEN", "h"),
              ("HGETALL", "h"), ("HRANDFIELD", "h"), ("HRANDFIELD", "h", 3, "WITHVALUES"), ("HSCAN", "h", 0))


# ---------------------------------------------------------------- increments


@pytest.mark.parametrize("value", ["0", "1", "-1", "10", LLONG_MAX, LLONG_MIN, "1.0", " 1", "1 ", "01", "",
                                   "-0", "+1", "abc", "9223372036854775808", "1e3", "0x10"])
@pytest.mark.parametrize("increment", ["1", "-1", "0", LLONG_MAX, LLONG_MIN, "1.5", "x", "", " 2"])
def test_hincrby(d, value, increment):
    check_all(d, ("HSET", "h", "f", value), ("HINCRBY", "h", "f", increment), ("HGET", "h", "f"),
              ("HINCRBY", "h", "new", increment), ("HINCRBY", "nokey", "f", increment), ("HGETALL", "h"))


@pytest.mark.parametrize("value", ["0", "1", "-1.5", "10.25", "1e3", "1E-3", "0x10", "0x1p-3", ".5", "5.", "inf",
                                   "-infinity", "nan", "1e4932", "1e-4950", "abc", "", " 1", "1 ", LLONG_MAX,
                                   "3.0000000000000000001", "-0", "0.1"])
@pytest.mark.parametrize("increment", ["1", "-1.5", "0.1", "1e-20", "1e4000", "-1e4932", "inf", "-inf", "nan", "x",
                                       "", "0x1p1", "1.7976931348623157e308"])
def test_hincrbyfloat(d, value, increment):
    check_all(d, ("HSET", "h", "f", value), ("HINCRBYFLOAT", "h", "f", increment), ("HGET", "h", "f"),
              ("HINCRBYFLOAT", "h", "new", increment), ("HINCRBYFLOAT", "nokey", "f", increment),
              ("OBJECT", "ENCODING", "h"))


_float_texts = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.integers(-(10**20), 10**20).map(str),
    st.tuples(st.integers(-99999, 99999), st.integers(-4960, 4940)).map(lambda t: f"{t[0]}e{t[1]}"),
    st.decimals(allow_nan=False, allow_infinity=False, places=25).map(str),
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(_float_texts, min_size=1, max_size=4), start=_float_texts)
def test_hincrbyfloat_random(differ, steps, start):
    differ.check("HSET", "h", "f", start)
    for step in steps:
        differ.check("HINCRBYFLOAT", "h", "f", step)
    differ.check("HGET", "h", "f")


# ---------------------------------------------------------------- encodings


def test_encoding_thresholds(d):
    fields = [x for i in range(512) for x in (f"f{i}", "v")]
    d.check("HSET", "h", *fields)
    assert encoding(d, "h") == b"listpack"
    check_hash(d, "h")
    d.check("HSET", "h", "one-more", "v")
    assert encoding(d, "h") == b"hashtable"
    check_hash(d, "h")
    d.check("HDEL", "h", *[f"f{i}" for i in range(500)])
    assert encoding(d, "h") == b"hashtable"  # never converted back
    check_hash(d, "h")


@pytest.mark.parametrize("length", [63, 64, 65])
def test_value_length_threshold(d, length):
    long = "x" * length
    for key, argv in (
        ("a", ("HSET", "a", "f", long)), ("b", ("HSET", "b", long, "v")), ("c", ("HSETNX", "c", long, "v")),
        ("d", ("HSETNX", "d", "f", long)), ("e", ("HINCRBY", "e", long, 1)), ("f", ("HINCRBYFLOAT", "f", long, 1)),
        ("g", ("HMSET", "g", "f", "v", "f2", long)),
    ):
        d.check("HSET", key, "first", "1")
        d.check(*argv)
        d.check("OBJECT", "ENCODING", key)
        check_hash(d, key)


def test_conversion_rules_per_command(d):
    long = "y" * 70
    check_all(
        d,
        # HSET checks every argument up front, even a value that replaces nothing new.
        ("HSET", "a", "f", "1"), ("HSET", "a", "f", long), ("OBJECT", "ENCODING", "a"),
        # HSETNX on an existing field sets nothing and converts nothing.
        ("HSET", "b", "f", "1"), ("HSETNX", "b", "f", long), ("OBJECT", "ENCODING", "b"),
        # HINCRBYFLOAT's result can be long enough to convert.
        ("HSET", "c", "f", "1e70"), ("HINCRBYFLOAT", "c", "f", "1"), ("OBJECT", "ENCODING", "c"),
        # A new key: created listpack then converted.
        ("HSET", "d", long, "1"), ("OBJECT", "ENCODING", "d"),
    )


def test_encoding_after_config_set(d):
    try:
        check_all(d, ("CONFIG", "SET", "hash-max-listpack-entries", "3"), ("CONFIG", "SET", "hash-max-listpack-value", "5"))
        check_all(
            d,
            ("HSET", "a", "1", "1", "2", "2", "3", "3"), ("OBJECT", "ENCODING", "a"),
            ("HSET", "a", "4", "4"), ("OBJECT", "ENCODING", "a"),
            ("HSET", "b", "f", "12345"), ("OBJECT", "ENCODING", "b"), ("HSET", "b", "f", "123456"),
            ("OBJECT", "ENCODING", "b"), ("HSET", "c", "f", "1"), ("HINCRBY", "c", "f", 99999),
            ("OBJECT", "ENCODING", "c"), ("HINCRBYFLOAT", "c", "f", "0.5"), ("OBJECT", "ENCODING", "c"),
            ("CONFIG", "SET", "hash-max-ziplist-entries", "0"), ("HSET", "d", "f", "v"), ("OBJECT", "ENCODING", "d"),
            ("CONFIG", "SET", "hash-max-listpack-entries", "2"),
            ("HSET", "e", "f", "v", "g", "w"), ("OBJECT", "ENCODING", "e"),
            # Lowering the limit converts a listpack hash at its next write, even an update.
            ("CONFIG", "SET", "hash-max-listpack-entries", "1"), ("HSET", "e", "f", "v2"), ("OBJECT", "ENCODING", "e"),
        )
    finally:
        check_all(d, ("CONFIG", "SET", "hash-max-listpack-entries", "512"),
                  ("CONFIG", "SET", "hash-max-listpack-value", "64"))


def test_copy_rename_keep_encoding(d):
    check_all(
        d, ("HSET", "h", "a", "1", "b", "2"), ("COPY", "h", "h2"), ("HSET", "h2", "c", "3"), ("HGETALL", "h"),
        ("RENAME", "h2", "h3"), ("HSET", "big", "f", "x" * 100), ("COPY", "big", "big2"),
        ("OBJECT", "ENCODING", "big2"), ("HDEL", "big2", "f"), ("EXISTS", "big", "big2"),
    )
    check_hash(d, "h3")
    check_hash(d, "big")
    d.check("DEBUG", "DIGEST")


# ------------------------------------------------------------------- errors


@pytest.mark.parametrize("argv", [
    ("HSET", "s", "f", "v"), ("HSETNX", "s", "f", "v"), ("HGET", "s", "f"), ("HMGET", "s", "f"),
    ("HMSET", "s", "f", "v"), ("HGETALL", "s"), ("HDEL", "s", "f"), ("HEXISTS", "s", "f"), ("HLEN", "s"),
    ("HKEYS", "s"), ("HVALS", "s"), ("HINCRBY", "s", "f", "1"), ("HINCRBYFLOAT", "s", "f", "1"),
    ("HSTRLEN", "s", "f"), ("HRANDFIELD", "s"), ("HRANDFIELD", "s", "2"), ("HRANDFIELD", "s", "-2", "WITHVALUES"),
    ("HSCAN", "s", "0"), ("HSCAN", "s", "0", "COUNT", "0"),
    # option and number errors come first where Redis checks them first
    ("HINCRBY", "s", "f", "x"), ("HINCRBYFLOAT", "s", "f", "x"), ("HINCRBYFLOAT", "s", "f", "inf"),
    ("HRANDFIELD", "s", "x"), ("HRANDFIELD", "s", "1", "WITHVALUE"), ("HSCAN", "s", "x"),
    ("HSET", "s", "f"),
])
def test_hash_commands_on_a_string(d, argv):
    d.check("SET", "s", "v")
    d.check(*argv)
    d.check("GET", "s")


@pytest.mark.parametrize("argv", [("GET", "h"), ("INCR", "h"), ("APPEND", "h", "x"), ("STRLEN", "h"),
                                  ("LPUSH", "h", "x"), ("SADD", "h", "x"), ("SETRANGE", "h", 0, "x")])
def test_other_commands_on_a_hash(d, argv):
    d.check("HSET", "h", "f", "v")
    d.check(*argv)


@pytest.mark.parametrize("name", HASH_COMMANDS)
def test_arity_errors(d, name):
    d.check(name)
    d.check(name, "h", *(["x"] if name in ("hset", "hmset", "hsetnx", "hincrby", "hincrbyfloat") else []))


def test_argument_errors(d):
    check_all(
        d, ("HSET", "h", "a", "1"),
        ("HSET", "h", "a", "1", "b"), ("HMSET", "h", "a"), ("HSETNX", "h", "a"), ("HGET", "h", "a", "b"),
        ("HINCRBY", "h", "a", "1", "2"), ("HRANDFIELD", "h", "1", "WITHVALUES", "x"),
        ("HRANDFIELD", "h", LLONG_MIN),
        ("HRANDFIELD", "h", "4611686018427387904", "WITHVALUES"),
        ("HRANDFIELD", "h", "-4611686018427387904", "withvalues"),
        ("HRANDFIELD", "h", "9223372036854775808"), ("HRANDFIELD", "nokey", "1", "WITHVALUE"),
        ("HSCAN", "h", "0", "COUNT"), ("HSCAN", "h", "0", "COUNT", "0"), ("HSCAN", "h", "0", "COUNT", "-1"),
        ("HSCAN", "h", "0", "COUNT", "x"), ("HSCAN", "h", "0", "MATCH"), ("HSCAN", "h", "0", "TYPE", "string"),
        ("HSCAN", "h", "0", "NOPE", "1"), ("HSCAN", "h", "-1"), ("HSCAN", "h", "18446744073709551616"),
        ("HSCAN", "h", "1x"), ("HSCAN", "nokey", "0", "BAD"), ("HSCAN", "nokey", "x"),
        ("HINCRBY", "h", "a", LLONG_MAX), ("HINCRBY", "h", "a", LLONG_MIN),
    )


# ---------------------------------------------------------------------- HSCAN


def test_hscan_listpack_is_one_page(d):
    check_all(d, ("HSET", "h", *[x for i in range(30) for x in (f"f{i}", f"v{i}")]))
    for argv in (("HSCAN", "h", 0), ("HSCAN", "h", 0, "COUNT", 2), ("HSCAN", "h", 7, "MATCH", "f1*"),
                 ("HSCAN", "h", 0, "MATCH", "*", "COUNT", 1000), ("HSCAN", "h", 0, "match", "nomatch"),
                 ("HSCAN", "h", "0", "COUNT", 5, "COUNT", 7, "MATCH", "f?")):
        d.exact(*argv)


def _scan_all(client: RawClient, key, *options) -> list[tuple]:
    cursor = b"0"
    seen = []
    for _ in range(10000):
        cursor, page = parse(client.call("HSCAN", key, cursor, *options))
        seen += list(zip(page[0::2], page[1::2]))
        if cursor == b"0":
            return seen
    raise AssertionError("HSCAN did not finish")


@pytest.mark.parametrize("count", [1, 7, 100, 5000])
def test_hscan_hashtable_iteration(d, count):
    d.check("HSET", "h", *[x for i in range(1000) for x in (f"f{i}", f"v{i}")])
    assert encoding(d, "h") == b"hashtable"
    expected = sorted(_scan_all(d.redis, "h", "COUNT", count))
    actual = _scan_all(d.shoal, "h", "COUNT", count)
    assert sorted(actual) == expected
    assert len(actual) == len(set(actual)) == 1000
    if count < 1000:  # really paged
        assert parse(d.shoal.call("HSCAN", "h", 0, "COUNT", count))[0] != b"0"
    expected = sorted(_scan_all(d.redis, "h", "MATCH", "f1*", "COUNT", count))
    assert sorted(_scan_all(d.shoal, "h", "MATCH", "f1*", "COUNT", count)) == expected


def test_hscan_guarantee_under_changes(shoal):
    shoal.call("HSET", "h", *[x for i in range(2000) for x in (f"keep{i}", "v")])
    cursor = b"0"
    seen = set()
    step = 0
    while True:
        cursor, page = parse(shoal.call("HSCAN", "h", cursor, "COUNT", 50))
        seen.update(page[0::2])
        step += 1
        # Churn: add and remove other fields between pages.
        shoal.call("HSET", "h", *[x for i in range(20) for x in (f"tmp{step}-{i}", "v")])
        shoal.call("HDEL", "h", *[f"tmp{step - 1}-{i}" for i in range(20)])
        if cursor == b"0":
            break
    assert {f"keep{i}".encode() for i in range(2000)} <= seen


# ----------------------------------------------------------------- HRANDFIELD


def _pairs(value, resp3: bool):
    if resp3:
        assert all(isinstance(p, list) and len(p) == 2 for p in value)
        return [tuple(p) for p in value]
    assert len(value) % 2 == 0
    return list(zip(value[0::2], value[1::2]))


@pytest.mark.parametrize("size", [1, 5, 40, 700])
def test_hrandfield_properties(d, size):
    content = {f"f{i}".encode(): f"v{i}".encode() for i in range(size)}
    d.check("HSET", "h", *[x for kv in content.items() for x in kv])
    shoal = d.shoal
    for _ in range(20):
        one = parse(shoal.call("HRANDFIELD", "h"))
        assert one in content
    for count in (1, 2, 3, size - 1, size, size + 3, 1000):
        if count <= 0:
            continue
        fields = parse(shoal.call("HRANDFIELD", "h", count))
        assert len(fields) == min(count, size)
        assert len(set(fields)) == len(fields)
        assert set(fields) <= set(content)
        pairs = _pairs(parse(shoal.call("HRANDFIELD", "h", count, "WITHVALUES")), d.resp3)
        assert len(pairs) == min(count, size) == len({f for f, _ in pairs})
        assert all(content[f] == v for f, v in pairs)
        if count >= size and size <= 512:
            # the whole listpack hash, in its order
            assert [f for f, _ in pairs] == list(content)
        # Redis samples few fields of a listpack without replacement, in listpack order.
        if size <= 512 and count * 3 <= size:
            order = list(content)
            positions = [order.index(f) for f in fields]
            assert positions == sorted(positions)
    for count in (-1, -5, -(size * 3)):
        fields = parse(shoal.call("HRANDFIELD", "h", count))
        assert len(fields) == -count
        assert set(fields) <= set(content)
        pairs = _pairs(parse(shoal.call("HRANDFIELD", "h", count, "WITHVALUES")), d.resp3)
        assert len(pairs) == -count and all(content[f] == v for f, v in pairs)
    # Reply shapes equal Redis's (types and lengths).
    for argv in (("HRANDFIELD", "h"), ("HRANDFIELD", "h", 3), ("HRANDFIELD", "h", -3, "WITHVALUES"),
                 ("HRANDFIELD", "h", size + 1, "WITHVALUES"), ("HRANDFIELD", "h", 0),
                 ("HRANDFIELD", "nokey"), ("HRANDFIELD", "nokey", 5), ("HRANDFIELD", "nokey", -5, "WITHVALUES")):
        d.check(*argv)


def test_hrandfield_covers_every_field(shoal):
    shoal.call("HSET", "h", *[x for i in range(10) for x in (f"f{i}", "v")])
    seen = set()
    for _ in range(300):
        seen.add(parse(shoal.call("HRANDFIELD", "h")))
    assert len(seen) == 10
    negative = parse(shoal.call("HRANDFIELD", "h", -2000))
    assert len(set(negative)) == 10  # with replacement, but every field shows up


# ------------------------------------------------------------- digests, events


def test_digest_value_and_dataset_digest(d):
    check_all(
        d, ("HSET", "h", "a", "1", "b", "2"), ("HSET", "h2", "b", "2", "a", "1"), ("DEBUG", "DIGEST-VALUE", "h", "h2"),
        ("HSET", "big", *[x for i in range(600) for x in (f"f{i}", str(i))]), ("DEBUG", "DIGEST-VALUE", "big"),
        ("EXPIRE", "h", 1000), ("DEBUG", "DIGEST-VALUE", "h"), ("DEBUG", "DIGEST"),
    )


EVENT_SCRIPT = [
    ("HSET", "h", "a", "1", "b", "2"), ("HSET", "h", "a", "1"), ("HMSET", "h", "c", "3"), ("HSETNX", "h", "a", "x"),
    ("HSETNX", "h", "n", "x"), ("HDEL", "h", "nope"), ("HDEL", "h", "a", "nope"), ("HINCRBY", "h", "i", "5"),
    ("HINCRBY", "h", "c", "x"), ("HINCRBY", "h", "n", "1"), ("HINCRBYFLOAT", "h", "f", "1.5"),
    ("HINCRBYFLOAT", "h", "n", "1"), ("HGET", "h", "a"), ("HDEL", "h", "b", "c", "n", "i", "f"),
    ("HSET", "x", "f", "v"), ("HDEL", "x", "f", "g"), ("HINCRBY", "y", "f", "1"), ("HINCRBYFLOAT", "z", "f", "1"),
    ("SET", "s", "v"), ("HSET", "s", "f", "v"), ("HDEL", "nokey", "f"),
]


def test_keyspace_events(redis_proc, shoal_proc, differ):
    same_keyspace_events(redis_proc, shoal_proc, EVENT_SCRIPT)


def test_dirty_and_hit_counters(redis_proc, shoal_proc, differ):
    script = EVENT_SCRIPT + [
        ("HGET", "h", "x"), ("HGET", "nokey", "x"), ("HMGET", "h", "a"), ("HGETALL", "nokey"), ("HLEN", "h"),
        ("HSTRLEN", "h", "a"), ("HEXISTS", "nokey", "a"), ("HRANDFIELD", "nokey"), ("HSCAN", "nokey", "0"),
        ("HKEYS", "h"), ("HVALS", "h"),
    ]
    same_counter_deltas(redis_proc, shoal_proc, script)


# --------------------------------------------------- random command sequences

KEYS = ["h1", "h2", "s"]
_keys = st.sampled_from(KEYS)
_fields = st.sampled_from(["a", "b", "c", "", "1", "a\r\n", "x" * 70])
_values = st.sampled_from(["1", "-2", "1.5", "", "v", "9223372036854775807", "x" * 70, "0x10"])
_ints = st.sampled_from(["1", "-1", "0", "x", "1.5", LLONG_MAX, LLONG_MIN])
_floats = st.sampled_from(["1", "-1.5", "0.1", "1e-5", "x", "inf", "1e4932"])


_pairs_st = st.lists(st.tuples(_fields, _values), min_size=1, max_size=3).map(lambda ps: [x for p in ps for x in p])
_commands = st.one_of(
    st.tuples(_keys, _pairs_st).map(lambda t: ("HSET", t[0], *t[1])),
    st.tuples(_keys, _pairs_st).map(lambda t: ("HMSET", t[0], *t[1])),
    _cmd("HSETNX", _keys, _fields, _values), _cmd("HGET", _keys, _fields),
    st.tuples(_keys, st.lists(_fields, min_size=1, max_size=3)).map(lambda t: ("HMGET", t[0], *t[1])),
    st.tuples(_keys, st.lists(_fields, min_size=1, max_size=3)).map(lambda t: ("HDEL", t[0], *t[1])),
    _cmd("HEXISTS", _keys, _fields), _cmd("HLEN", _keys), _cmd("HSTRLEN", _keys, _fields),
    _cmd("HINCRBY", _keys, _fields, _ints), _cmd("HINCRBYFLOAT", _keys, _fields, _floats),
    _cmd("HRANDFIELD", _keys), _cmd("HRANDFIELD", _keys, st.sampled_from(["0", "-3", "3", "x"])),
    _cmd("SET", _keys, _values), _cmd("DEL", _keys), _cmd("TYPE", _keys), _cmd("OBJECT", st.just("ENCODING"), _keys),
    _cmd("DEBUG", st.just("DIGEST-VALUE"), _keys), _cmd("COPY", _keys, _keys),
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
        if parse(d.redis.call("TYPE", key)) == "hash":
            check_hash(d, key)


def test_state_machine(redis_proc, shoal_proc):
    """A RuleBasedStateMachine driving both servers; the hashes must stay identical."""

    class HashMachine(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            self.d = ArgsDiffer(Differ(redis_proc.port, shoal_proc.port))
            self.d.both("FLUSHALL")

        def teardown(self):
            self.d.differ.close()

        @rule(key=_keys, pairs=_pairs_st)
        def hset(self, key, pairs):
            self.d.check("HSET", key, *pairs)

        @rule(key=_keys, field=_fields, value=_values)
        def hsetnx(self, key, field, value):
            self.d.check("HSETNX", key, field, value)

        @rule(key=_keys, fields=st.lists(_fields, min_size=1, max_size=3))
        def hdel(self, key, fields):
            self.d.check("HDEL", key, *fields)

        @rule(key=_keys, field=_fields, amount=_ints)
        def hincrby(self, key, field, amount):
            self.d.check("HINCRBY", key, field, amount)

        @rule(key=_keys, field=_fields, amount=_floats)
        def hincrbyfloat(self, key, field, amount):
            self.d.check("HINCRBYFLOAT", key, field, amount)

        @rule(key=_keys, many=st.integers(100, 600))
        def grow(self, key, many):
            self.d.check("HSET", key, *[x for i in range(many) for x in (f"g{i}", str(i))])

        @rule(key=_keys)
        def drop(self, key):
            self.d.check("DEL", key)

        @invariant()
        def same_hashes(self):
            for key in KEYS:
                self.d.check("HLEN", key)
                if check_introspection(self.d, key) == b"listpack":
                    self.d.exact("HGETALL", key)

    run_state_machine_as_test(
        HashMachine, settings=settings(max_examples=40, stateful_step_count=15, deadline=None)
    )
