"""HyperLogLog against real Redis 7.0: the same replies and the very same stored bytes.

An HLL is a string in Redis's own representation, so every scenario compares
GET of the key -- header, cached cardinality and its stale flag, sparse
opcodes, dense registers -- as well as the replies. Elements are random; the
sparse form is followed through its promotion to dense, through PFMERGE in
all its shapes, through corruption (as Redis's own tests do it, plus random
byte damage), and values are carried from Redis to Shoal with GET/SET.
The pure engine (``node/engine/hll.py``) is also checked on its own: its
fast sparse editor against a line-by-line rendering of Redis's algorithm.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.commands.table import lookup
from node.engine import hll
from tests.resp_client import RawClient, parse
from tests.test_bitmaps import _events

HLL_COMMANDS = "pfadd pfcount pfmerge pfdebug pfselftest".split()

GETKEYS_ARGS = {
    "pfadd": ["k", "a"], "pfcount": ["a", "b"], "pfmerge": ["d", "a", "b"], "pfdebug": ["getreg", "k"],
}


@pytest.mark.parametrize("name", HLL_COMMANDS)
def test_command_info_and_docs(differ, name):
    differ.check("COMMAND", "INFO", name)
    differ.check("COMMAND", "DOCS", name)
    if name in GETKEYS_ARGS:
        differ.check("COMMAND", "GETKEYS", name, *GETKEYS_ARGS[name])


def test_declarations():
    keys = {"pfadd": (1, 1, 1), "pfcount": (1, -1, 1), "pfmerge": (1, -1, 1), "pfdebug": (2, 2, 1),
            "pfselftest": (0, 0, 0)}
    for name in HLL_COMMANDS:
        cmd = lookup(name.encode())
        assert cmd.group == "hyperloglog"
        assert (cmd.first_key, cmd.last_key, cmd.key_step) == keys[name]


def _elements(rng: random.Random, n: int) -> list[bytes]:
    return [b"el:%d" % rng.getrandbits(48) for _ in range(n)]


def _same_value(differ, key):
    differ.check("GET", key)
    differ.check("EXISTS", key)
    differ.check("DEBUG", "DIGEST-VALUE", key)


# -------------------------------------------------------------------------- PFADD


def test_pfadd_through_promotion_to_dense(differ):
    rng = random.Random(11)
    elements = _elements(rng, 6500)
    pos = 0
    while pos < len(elements):
        n = rng.choice([1, 1, 2, 5, 20, 100, 300])
        differ.check("PFADD", "h", *elements[pos:pos + n])
        pos += n
        _same_value(differ, "h")
        if rng.random() < 0.3:
            differ.check("PFCOUNT", "h")
            differ.check("GET", "h")  # the cached cardinality
        if rng.random() < 0.2:
            differ.check("PFADD", "h", *rng.sample(elements[:pos], min(pos, 3)))  # nothing new
            differ.check("PFDEBUG", "ENCODING", "h")
    differ.check("PFDEBUG", "ENCODING", "h")
    differ.check("PFCOUNT", "h")
    differ.check("OBJECT", "ENCODING", "h")
    differ.check("STRLEN", "h")


def test_pfadd_edge_elements(differ):
    differ.check("PFADD", "h")
    _same_value(differ, "h")
    differ.check("PFADD", "h")
    differ.check("PFADD", "h", "")
    differ.check("PFADD", "h", "", "a", "a", "a")
    differ.check("PFADD", "h", bytes(range(256)), b"x" * 1000, b"\x00", "a\r\nb", "1234567", "12345678")
    _same_value(differ, "h")
    differ.check("PFCOUNT", "h")
    differ.check("PFCOUNT", "h")
    _same_value(differ, "h")
    differ.check("OBJECT", "ENCODING", "h")
    differ.check("PFADD", "h", *[str(i) for i in range(64)])  # every tail length of MurmurHash
    _same_value(differ, "h")


def test_pfadd_keeps_ttl(differ):
    differ.check("PFADD", "h", "a")
    differ.check("EXPIRE", "h", "1000")
    differ.check("PFADD", "h", "b", "c")
    expected, actual = differ.both("TTL", "h")
    assert parse(expected) > 0 and parse(actual) > 0


@pytest.mark.parametrize("sparse_max", ["0", "20", "100", "1000", "12000"])
def test_sparse_max_bytes(differ, sparse_max):
    rng = random.Random(int(sparse_max) + 3)
    try:
        differ.check("CONFIG", "SET", "hll-sparse-max-bytes", sparse_max)
        elements = _elements(rng, 2500)
        for i in range(0, len(elements), 250):
            differ.check("PFADD", "h", *elements[i:i + 250])
            differ.check("PFDEBUG", "ENCODING", "h")
            differ.check("GET", "h")
        differ.check("PFADD", "small", "a", "b")
        differ.check("GET", "small")
        differ.check("PFMERGE", "m", "small", "missing")
        differ.check("GET", "m")
    finally:
        differ.both("CONFIG", "SET", "hll-sparse-max-bytes", "3000")


# ------------------------------------------------------------------------- PFCOUNT


def test_pfcount_cache(differ):
    differ.check("PFCOUNT", "missing")
    differ.check("PFADD", "h", "a", "b", "c")
    differ.check("GET", "h")
    differ.check("PFCOUNT", "h")
    differ.check("GET", "h")
    differ.check("PFADD", "h", "a")  # no change: the cache stays valid
    differ.check("GET", "h")
    differ.check("PFADD", "h", "d")  # change: the stale flag is set, the old count stays
    differ.check("GET", "h")
    differ.check("PFCOUNT", "h")
    differ.check("GET", "h")
    # A cache written by someone else is believed as long as its flag is clear.
    differ.check("SETRANGE", "h", "8", b"\x39\x05\x00\x00\x00\x00\x00\x00")
    differ.check("PFCOUNT", "h")
    differ.check("SETRANGE", "h", "15", b"\x80")
    differ.check("PFCOUNT", "h")
    differ.check("GET", "h")


def test_pfcount_several_keys(differ):
    rng = random.Random(5)
    differ.check("PFADD", "s1", *_elements(rng, 50))
    differ.check("PFADD", "s2", *_elements(rng, 300))
    differ.check("PFADD", "d1", *_elements(rng, 5000))
    differ.check("PFADD", "d2", *_elements(rng, 4000))
    for keys in (("s1", "s2"), ("s1", "d1"), ("d1", "d2"), ("s1", "s2", "d1", "d2", "missing"), ("missing", "nope"),
                 ("s1", "s1"), ("d1", "missing")):
        differ.check("PFCOUNT", *keys)
    for key in ("s1", "s2", "d1", "d2"):
        differ.check("GET", key)  # several keys: nothing cached
        differ.check("PFCOUNT", key)


def test_cardinality_estimates(differ):
    rng = random.Random(99)
    for n in (1, 10, 100, 1000, 10_000, 30_000):
        differ.check("DEL", "h")
        elements = _elements(rng, n)
        for i in range(0, n, 1000):
            differ.check("PFADD", "h", *elements[i:i + 1000])
        reply = differ.check("PFCOUNT", "h")
        assert abs(parse(reply) - n) <= max(2, n * 0.05)
        differ.check("GET", "h")


# ------------------------------------------------------------------------- PFMERGE


def test_pfmerge_shapes(differ):
    rng = random.Random(3)
    differ.check("PFADD", "s1", *_elements(rng, 40))
    differ.check("PFADD", "s2", *_elements(rng, 60))
    differ.check("PFADD", "s3", *_elements(rng, 700))
    differ.check("PFADD", "d1", *_elements(rng, 4000))
    cases = [
        ("m1", "s1", "s2"), ("m2", "s1", "d1"), ("m3", "missing"), ("m4",), ("s1", "s2"), ("s2", "d1"),
        ("d1", "s3"), ("m5", "s1", "s2", "s3"), ("m6", "s3", "s3"), ("m1", "s3"), ("m7", "missing", "d1"),
    ]
    for case in cases:
        differ.check("PFMERGE", *case)
        differ.check("GET", case[0])
        differ.check("PFDEBUG", "ENCODING", case[0])
        differ.check("PFCOUNT", case[0])
        differ.check("GET", case[0])
    differ.check("OBJECT", "ENCODING", "m3")


def test_pfmerge_promotes_a_large_sparse_result(differ):
    rng = random.Random(8)
    for key in ("a", "b", "c", "e"):
        differ.check("PFADD", key, *_elements(rng, 900))
        differ.check("PFDEBUG", "ENCODING", key)
    differ.check("PFMERGE", "m", "a", "b", "c", "e")
    differ.check("PFDEBUG", "ENCODING", "m")
    differ.check("GET", "m")
    differ.check("PFMERGE", "a", "b")
    differ.check("GET", "a")


def test_pfmerge_existing_destination_with_ttl(differ):
    differ.check("PFADD", "d", "x")
    differ.check("EXPIRE", "d", "1000")
    differ.check("PFADD", "s", "y", "z")
    differ.check("PFMERGE", "d", "s")
    differ.check("GET", "d")
    expected, actual = differ.both("TTL", "d")
    assert parse(expected) > 0 and parse(actual) > 0


# -------------------------------------------------------------- types, corruption


def test_wrong_types_and_invalid_strings(differ):
    differ.check("RPUSH", "list", "a")
    differ.check("PFADD", "h", "a")
    differ.check("SET", "str", "foo")
    differ.check("SET", "magic", "HYLL")
    differ.check("SET", "num", "12345678901234567")
    differ.check("SET", "enc2", b"HYLL\x02" + bytes(11) + b"\x7f\xff")
    differ.check("SET", "shortdense", b"HYLL\x00" + bytes(100))
    differ.check("SET", "lower", b"hyll\x01" + bytes(11) + b"\x7f\xff")
    for key in ("list", "str", "magic", "num", "enc2", "shortdense", "lower"):
        differ.check("PFADD", key, "x")
        differ.check("PFCOUNT", key)
        differ.check("PFCOUNT", "h", key)
        differ.check("PFCOUNT", key, "h")
        differ.check("PFMERGE", key, "h")
        differ.check("PFMERGE", "dest", "h", key)
        differ.check("PFDEBUG", "GETREG", key)
        differ.check("PFDEBUG", "ENCODING", key)
        differ.check("GET", key)
    differ.check("EXISTS", "dest")
    differ.check("PFADD")
    differ.check("PFCOUNT")
    differ.check("PFMERGE")


def test_corruptions_from_redis_test_suite(differ):
    differ.check("PFADD", "hll", "a", "b", "c")
    differ.check("APPEND", "hll", "hello")  # additional bytes at the tail
    differ.check("PFCOUNT", "hll")
    differ.check("PFADD", "hll", "d", "e")
    differ.check("PFMERGE", "m", "hll")
    differ.check("GET", "hll")
    differ.check("DEL", "hll")
    differ.check("PFADD", "hll", "a", "b", "c")
    differ.check("SETRANGE", "hll", "0", "0123")  # broken magic
    differ.check("PFCOUNT", "hll")
    differ.check("DEL", "hll")
    differ.check("PFADD", "hll", "a", "b", "c")
    differ.check("SETRANGE", "hll", "4", "x")  # invalid encoding
    differ.check("PFCOUNT", "hll")
    differ.check("DEL", "hll")
    differ.check("PFADD", "hll", *[str(i) for i in range(3000)])
    differ.check("PFDEBUG", "ENCODING", "hll")
    differ.check("APPEND", "hll", "hello")  # dense of the wrong length
    differ.check("PFCOUNT", "hll")
    differ.check("PFADD", "hll", "x")


def test_sparse_runs_that_do_not_add_up(differ):
    header = b"HYLL\x01" + bytes(11)
    values = {
        "short": header + b"\x7f\xfe",  # 16383 registers
        "long": header + b"\x7f\xff\x00",  # 16385
        "val_overflow": header + b"\x7f\xfe\x83",  # a VAL run past the end
        "empty": header,
        "exact_with_vals": header + b"\x83\x7f\xfb",  # 4 + 16380
        "zero_runs": header + b"\x3f" * 256,  # 256 ZERO:64 opcodes, exactly 16384
    }
    for key, value in values.items():
        differ.check("SET", key, value)
        differ.check("PFCOUNT", key)
        differ.check("PFCOUNT", key, "missing")
        differ.check("PFADD", key, "a", "b", "c", "d", "e", "f", "g")
        differ.check("GET", key)
        differ.check("PFMERGE", "m_" + key, key)
        differ.check("PFDEBUG", "DECODE", key)
        differ.check("PFDEBUG", "TODENSE", key)
        differ.check("GET", key)


def test_sparse_value_ending_in_half_an_xzero(differ):
    # XZERO's second byte is missing: Redis reads the NUL terminator in its place,
    # so these runs do add up to 16384 (255 + 16129).
    value = b"HYLL\x01" + bytes(11) + b"\x40\xfe\x7f"
    differ.check("SET", "h", value)
    differ.check("PFCOUNT", "h")
    differ.check("PFDEBUG", "DECODE", "h")
    differ.check("SET", "h2", value)
    differ.check("PFADD", "h2", *[str(i) for i in range(40)])
    differ.check("GET", "h2")
    differ.check("SET", "h3", value)
    differ.check("PFMERGE", "h3", "h3")
    differ.check("GET", "h3")
    differ.check("SET", "h4", value)
    differ.check("PFDEBUG", "GETREG", "h4")
    differ.check("GET", "h4")


@pytest.mark.parametrize("seed", range(12))
def test_random_damage(differ, seed):
    """Random bytes written over the registers (Redis's 'Fuzzing dense/sparse encoding')."""
    rng = random.Random(seed)
    n = rng.choice([5, 50, 300, 3000])
    differ.check("PFADD", "hll", *_elements(rng, n))
    length = parse(differ.check("STRLEN", "hll"))
    for _ in range(rng.randint(1, 4)):
        offset = rng.randrange(16, length)
        differ.check("SETRANGE", "hll", offset, bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 3))))
    differ.check("GET", "hll")
    differ.check("PFCOUNT", "hll")
    differ.check("PFCOUNT", "hll", "missing")
    differ.check("PFADD", "hll", *_elements(rng, rng.choice([1, 20])))
    differ.check("GET", "hll")
    differ.check("PFMERGE", "m", "hll")
    differ.check("GET", "m")
    differ.check("PFDEBUG", "DECODE", "hll")
    differ.check("PFDEBUG", "GETREG", "hll")
    differ.check("GET", "hll")


# ---------------------------------------------------------------------- interop


def test_values_copied_from_redis(differ):
    rng = random.Random(21)
    for n, count_first in ((3, False), (3, True), (200, True), (1500, False), (9000, True)):
        elements = _elements(rng, n)
        for i in range(0, n, 1000):
            differ.redis.call("PFADD", "src", *elements[i:i + 1000])
        if count_first:
            differ.redis.call("PFCOUNT", "src")
        value = parse(differ.redis.call("GET", "src"))
        differ.redis.call("DEL", "src")
        differ.check("SET", "h", value)
        differ.check("PFCOUNT", "h")
        differ.check("GET", "h")
        differ.check("PFADD", "h", *_elements(rng, 30))
        differ.check("GET", "h")
        differ.check("PFCOUNT", "h")
        differ.check("PFMERGE", "m", "h")
        differ.check("GET", "m")
        differ.check("OBJECT", "ENCODING", "h")
        differ.check("DEL", "h", "m")


def test_value_built_by_shoal_works_in_redis(differ):
    rng = random.Random(4)
    for n in (10, 5000):
        elements = _elements(rng, n)
        differ.shoal.call("PFADD", "h", *elements)
        value = parse(differ.shoal.call("GET", "h"))
        differ.redis.call("PFADD", "h", *elements)
        assert parse(differ.redis.call("GET", "h")) == value
        differ.check("DEL", "h")


# ------------------------------------------------------------------------- PFDEBUG


def test_pfdebug(differ):
    differ.check("PFADD", "h", "a", "b", "c")
    differ.check("PFDEBUG", "DECODE", "h")
    differ.check("PFDEBUG", "decode", "h")
    differ.check("PFDEBUG", "ENCODING", "h")
    differ.check("PFDEBUG", "GETREG", "h")  # converts to dense
    differ.check("PFDEBUG", "ENCODING", "h")
    differ.check("GET", "h")
    differ.check("PFDEBUG", "DECODE", "h")
    differ.check("PFDEBUG", "TODENSE", "h")
    differ.check("PFADD", "h2", "x")
    differ.check("PFDEBUG", "TODENSE", "h2")
    differ.check("GET", "h2")
    differ.check("PFDEBUG", "BOGUS", "h2")
    differ.check("PFDEBUG", "BOGUS\x00x", "h2")
    differ.check("PFDEBUG", "GETREG", "missing")
    differ.check("PFDEBUG", "BOGUS", "missing")
    differ.check("PFDEBUG", "GETREG")
    differ.check("PFDEBUG", "GETREG", "h", "extra")
    differ.check("SET", "s", "not an hll at all")
    differ.check("PFDEBUG", "GETREG", "s")


def test_resp3(differ3):
    differ3.check("PFADD", "h", "a", "b")
    differ3.check("PFCOUNT", "h")
    differ3.check("PFCOUNT", "h", "missing")
    differ3.check("PFMERGE", "m", "h")
    differ3.check("PFDEBUG", "ENCODING", "m")
    differ3.check("PFDEBUG", "DECODE", "m")
    differ3.check("PFDEBUG", "GETREG", "m")
    differ3.check("SET", "bad", "x")
    differ3.check("PFCOUNT", "bad")
    differ3.check("APPEND", "m", "junk")
    differ3.check("PFCOUNT", "m")


def test_pfselftest(shoal):
    assert shoal.call("PFSELFTEST") == b"+OK\r\n"
    assert shoal.call("PFSELFTEST", "x").startswith(b"-ERR wrong number of arguments")


# ------------------------------------------------------------ events and WATCH


def test_keyspace_events(redis_proc, shoal_proc):
    commands = [
        ("PFADD", "h", "a"), ("PFADD", "h", "a"), ("PFADD", "h"), ("PFADD", "new"), ("PFCOUNT", "h"),
        ("PFCOUNT", "h", "new"), ("PFMERGE", "m", "h"), ("PFMERGE", "m"), ("PFDEBUG", "TODENSE", "h"),
        ("SET", "bad", "x"), ("PFADD", "bad", "a"), ("PFMERGE", "bad", "h"),
    ]
    assert _events(redis_proc.port, commands) == _events(shoal_proc.port, commands)


def _watch_run(port: int) -> list[bytes]:
    with RawClient(port) as a, RawClient(port) as b:
        out = [a.call("FLUSHALL"), a.call("PFADD", "h", "x", "y"), a.call("PFCOUNT", "h")]
        # A PFCOUNT answered from the cache changes nothing: EXEC runs.
        out += [a.call("WATCH", "h"), b.call("PFCOUNT", "h"), a.call("MULTI"), a.call("PING"), a.call("EXEC")]
        # A PFCOUNT that refreshes a stale cache writes the key: EXEC aborts.
        out += [b.call("PFADD", "h", "z"), a.call("WATCH", "h"), b.call("PFCOUNT", "h"), a.call("MULTI"),
                a.call("PING"), a.call("EXEC")]
        # A PFADD that adds nothing new leaves the key alone.
        out += [a.call("WATCH", "h"), b.call("PFADD", "h", "x"), a.call("MULTI"), a.call("PING"), a.call("EXEC")]
        return out


def test_watch(redis_proc, shoal_proc):
    assert _watch_run(redis_proc.port) == _watch_run(shoal_proc.port)


# ------------------------------------------------------------------ pure engine

_INDEXES = st.one_of(st.integers(0, hll.REGISTERS - 1), st.integers(0, 80), st.integers(16300, 16383),
                     st.integers(8000, 8100))
_COUNTS = st.one_of(st.integers(1, 3), st.integers(1, 33))


@settings(max_examples=150, deadline=None)
@given(steps=st.lists(st.tuples(_INDEXES, _COUNTS), max_size=120), sparse_max=st.sampled_from([40, 300, 3000]))
def test_sparse_editor_matches_the_byte_algorithm(steps, sparse_max):
    value = hll.new_sparse()
    editor = hll.SparseEditor(value, sparse_max)
    work = bytearray(value) + b"\0"
    for index, count in steps:
        expected = hll.sparse_set_bytes(work, index, count, sparse_max)
        assert editor.set(index, count) == expected
        if expected == hll.PROMOTE:
            break
        assert bytes(editor.value()) == bytes(work[:-1])
        assert len(editor.value()) == editor.size
        assert work[-1] == 0


def test_register_packing_roundtrip():
    rng = random.Random(1)
    raw = bytes(rng.randrange(64) for _ in range(hll.REGISTERS))
    value = bytearray(b"HYLL" + bytes(12)) + hll.raw_to_dense(raw)
    assert len(value) == hll.DENSE_SIZE
    assert hll.dense_to_raw(value) == raw
    assert all(hll.dense_get(value, i) == raw[i] for i in range(0, hll.REGISTERS, 7))
    other = bytes(rng.randrange(64) for _ in range(hll.REGISTERS))
    assert hll.merge_raw(raw, other) == bytes(max(x, y) for x, y in zip(raw, other))
    for i in range(0, hll.REGISTERS, 97):
        before = hll.dense_get(value, i)
        assert hll.dense_set(value, i, 63) == (before < 63)
        assert hll.dense_get(value, i) == 63
    assert hll.count_raw(bytes(hll.REGISTERS)) == 0


def test_pattern_uses_redis_hash():
    # Redis 7.0: PFADD h a b c; PFDEBUG DECODE h -> "Z:8436 v:1,1 Z:4274 v:2,1 Z:3068 v:1,1 Z:603"
    assert sorted(hll.pattern(e) for e in (b"a", b"b", b"c")) == [(8436, 1), (12711, 2), (15780, 1)]
