"""Generic key commands against real Redis 7.0: DEL ... OBJECT, byte for byte.

Where replies legitimately differ (SCAN pages, RANDOMKEY's choice, OBJECT
IDLETIME/FREQ) the comparison is the one ``tests/known_differences.py``
documents: SCAN iterations are compared as sets of keys once complete.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import COMMON_ARGS
from tests.differential import Differ
from tests.known_differences import KNOWN_DIFFERENCES
from tests.resp_client import RawClient, parse
from tests.servers import ServerProcess

BINARY_KEYS = [
    bytes(range(256)),
    b"a\r\nb",
    b"\r\n",
    b"\x00",
    b"nul\x00inside",
    b"",
    b"{tag}x",
    b"{tag}y",
    "ключ".encode(),
    b"\xff\xfe",
    b"*",
    b"[a-z]",
    b"x" * 1000,
]

# Far-future absolute times (seconds / ms) make EXPIREAT replies deterministic.
FAR_S = 4_000_000_000
FAR_MS = FAR_S * 1000


def scan_all(client: RawClient, *options, limit: int = 100_000) -> list[bytes]:
    """Every key a full SCAN iteration returns (in order, duplicates kept)."""
    cursor = b"0"
    keys: list[bytes] = []
    for _ in range(limit):
        reply = parse(client.call("SCAN", cursor, *options))
        assert isinstance(reply, list) and len(reply) == 2, reply
        cursor, page = reply
        assert isinstance(page, list)
        keys += page
        if cursor == b"0":
            return keys
    raise AssertionError("SCAN did not finish")


def check_scan(differ: Differ, *options) -> set[bytes]:
    """Complete SCAN iterations on both servers return the same set of keys."""
    expected = set(scan_all(differ.redis, *options))
    actual = set(scan_all(differ.shoal, *options))
    assert expected == actual, f"SCAN {options}: redis-only {expected - actual!r} shoal-only {actual - expected!r}"
    return expected


def check_keys(differ: Differ, pattern) -> None:
    """KEYS as a set; errors exactly (the 'keys' normaliser cannot compare errors)."""
    expected, actual = differ.both("KEYS", pattern)
    if expected.startswith(b"-"):
        assert expected == actual
    else:
        assert sorted(parse(expected)) == sorted(parse(actual)), (pattern, expected, actual)


def check_with(differ: Differ, difference: str, *argv) -> None:
    normalize = KNOWN_DIFFERENCES[difference].normalize
    expected, actual = differ.both(*argv)
    assert normalize(expected) == normalize(actual), (argv, expected, actual)


# ------------------------------------------------------------------ arity


@pytest.mark.parametrize(
    "argv",
    [
        ("DEL",), ("UNLINK",), ("EXISTS",), ("TOUCH",), ("TYPE",), ("TYPE", "a", "b"),
        ("RENAME", "a"), ("RENAME", "a", "b", "c"), ("RENAMENX", "a"), ("COPY", "a"), ("MOVE", "a"),
        ("MOVE", "a", "1", "2"), ("EXPIRE", "a"), ("PEXPIRE", "a"), ("EXPIREAT", "a"), ("PEXPIREAT", "a"),
        ("TTL",), ("TTL", "a", "b"), ("PTTL",), ("EXPIRETIME",), ("PEXPIRETIME", "a", "b"), ("PERSIST",),
        ("PERSIST", "a", "b"), ("SCAN",), ("RANDOMKEY", "x"), ("OBJECT",), ("OBJECT", "encoding"),
        ("OBJECT", "ENCODING", "a", "b"), ("OBJECT", "freq"), ("OBJECT", "idletime"), ("OBJECT", "refcount"),
        ("OBJECT", "help", "x"), ("OBJECT", "nosuch"), ("OBJECT", "nosuch", "k"), ("object", "\x00x"),
    ],
)
def test_wrong_arity_and_unknown_subcommands(differ, argv):
    differ.check(*argv)


def test_keys_arity(differ):
    expected, actual = differ.both("KEYS")
    assert expected == actual
    expected, actual = differ.both("KEYS", "a", "b")
    assert expected == actual


# ------------------------------------------------------- DEL EXISTS TOUCH TYPE


def test_del_unlink_exists_touch(differ):
    for key in BINARY_KEYS:
        differ.check("SET", key, b"v" + key)
    for cmd in ("EXISTS", "TOUCH"):
        differ.check(cmd, *BINARY_KEYS)
        differ.check(cmd, "nosuch", BINARY_KEYS[0], BINARY_KEYS[0], "nosuch")
    differ.check("DEL", BINARY_KEYS[0], BINARY_KEYS[0], "nosuch")
    differ.check("UNLINK", *BINARY_KEYS[1:5])
    differ.check("EXISTS", *BINARY_KEYS)
    differ.check("DEL", *BINARY_KEYS)
    differ.check("UNLINK", *BINARY_KEYS)
    differ.check("DBSIZE")


def test_many_keys(differ):
    keys = [f"many:{i}" for i in range(500)]
    for key in keys:
        differ.check("SET", key, key)
    differ.check("EXISTS", *keys)
    differ.check("DBSIZE")
    check_keys(differ, "many:*")
    check_keys(differ, "many:1?")
    differ.check("DEL", *keys[::2])
    differ.check("EXISTS", *keys)
    differ.check("UNLINK", *keys)
    differ.check("DBSIZE")


def test_type(differ, differ3):
    differ.check("TYPE", "nosuch")
    differ.check("SET", "s", "x")
    differ.check("TYPE", "s")
    differ.check("SET", "", "empty key")
    differ.check("TYPE", "")
    differ3.check("TYPE", "s")
    differ3.check("TYPE", "nosuch")


# ------------------------------------------------------------- RENAME & co


def test_rename(differ):
    differ.check("RENAME", "nosuch", "x")
    differ.check("RENAME", "nosuch", "nosuch")
    differ.check("RENAMENX", "nosuch", "nosuch")
    differ.check("SET", "a", "1")
    differ.check("RENAME", "a", "a")
    differ.check("RENAMENX", "a", "a")
    differ.check("RENAME", "a", "b")
    differ.check("EXISTS", "a", "b")
    differ.check("GET", "b")
    differ.check("SET", "c", "3", "EXAT", FAR_S)
    differ.check("RENAME", "c", "b")  # overwrites b, carries c's TTL
    differ.check("EXPIRETIME", "b")
    differ.check("GET", "b")
    differ.check("SET", "d", "4")
    differ.check("RENAME", "d", "b")  # b loses the TTL it had
    differ.check("TTL", "b")
    differ.check("SET", "e", "5")
    differ.check("RENAMENX", "e", "b")
    differ.check("RENAMENX", "e", "f")
    differ.check("GET", "f")
    for key in BINARY_KEYS:
        differ.check("RENAME", "f", key)
        differ.check("GET", key)
        differ.check("RENAME", key, "f")


def test_copy(differ):
    differ.check("COPY", "nosuch", "x")
    differ.check("SET", "src", "value", "PXAT", FAR_MS)
    differ.check("COPY", "src", "src")
    differ.check("COPY", "src", "src", "REPLACE")
    differ.check("COPY", "src", "dst")
    differ.check("PEXPIRETIME", "dst")
    differ.check("GET", "dst")
    differ.check("COPY", "src", "dst")
    differ.check("SET", "src", "other")
    differ.check("COPY", "src", "dst", "replace")
    differ.check("GET", "dst")
    differ.check("TTL", "dst")
    differ.check("COPY", "src", "src", "DB", "0")
    differ.check("COPY", "src", "src", "DB", "1")
    differ.check("COPY", "src", "src", "DB", "1")
    differ.check("COPY", "src", "src", "DB", "1", "REPLACE")
    differ.check("MOVE", "src", "1")
    for bad in (("DB",), ("DB", "x"), ("DB", "16"), ("DB", "-1"), ("DB", "4294967296"), ("DB", "-2147483649"),
                ("DB", "2147483647"), ("FOO",), ("REPLACE", "DB"), ("DB", "1", "EXTRA"), ("DB", ""), ("replace\x00x",),
                ("db\x00x", "1")):
        differ.check("COPY", "dst", "x", *bad)
    differ.check("COPY", "nosuch", "nosuch")
    differ.check("COPY", "nosuch", "nosuch", "DB", "3")
    for key in BINARY_KEYS:
        differ.check("COPY", "dst", key)
        differ.check("GET", key)
        differ.check("OBJECT", "ENCODING", key)


def test_move(differ):
    differ.check("MOVE", "nosuch", "1")
    differ.check("SET", "k", "v", "EXAT", FAR_S)
    for bad in ("x", "", "16", "-1", "0", "4294967296", "-2147483649", "1.5", " 1"):
        differ.check("MOVE", "k", bad)
    differ.check("MOVE", "k", "2")
    differ.check("EXISTS", "k")
    differ.check("SELECT", "2")
    differ.check("EXPIRETIME", "k")
    differ.check("SET", "j", "in 2")
    differ.check("SELECT", "0")
    differ.check("SET", "j", "in 0")
    differ.check("MOVE", "j", "2")  # target exists: nothing moves
    differ.check("GET", "j")
    differ.check("MOVE", "\x00bin", "3")


# ---------------------------------------------------------------- expiry


def test_ttl_family_basics(differ):
    for cmd in ("TTL", "PTTL", "EXPIRETIME", "PEXPIRETIME"):
        differ.check(cmd, "nosuch")
    differ.check("SET", "k", "v")
    for cmd in ("TTL", "PTTL", "EXPIRETIME", "PEXPIRETIME"):
        differ.check(cmd, "k")
    differ.check("EXPIRE", "k", "1000")
    differ.check("TTL", "k")
    differ.check("PERSIST", "k")
    differ.check("PERSIST", "k")
    differ.check("PERSIST", "nosuch")
    differ.check("TTL", "k")
    differ.check("EXPIREAT", "k", FAR_S)
    differ.check("EXPIRETIME", "k")
    differ.check("PEXPIRETIME", "k")
    differ.check("PEXPIREAT", "k", FAR_MS + 499)
    differ.check("EXPIRETIME", "k")  # rounds to nearest second
    differ.check("PEXPIREAT", "k", FAR_MS + 500)
    differ.check("EXPIRETIME", "k")
    differ.check("PEXPIRETIME", "k")
    differ.check("SET", "k", "v2")  # SET drops the TTL
    differ.check("TTL", "k")


def test_expire_options(differ):
    differ.check("SET", "k", "v")
    # No TTL yet: XX and GT fail, LT succeeds (no TTL = infinite), NX succeeds.
    differ.check("EXPIRE", "k", "1000", "XX")
    differ.check("EXPIRE", "k", "1000", "GT")
    differ.check("EXPIREAT", "k", FAR_S, "LT")
    differ.check("PERSIST", "k")
    differ.check("EXPIREAT", "k", FAR_S, "NX")
    differ.check("EXPIREAT", "k", FAR_S + 10, "NX")
    differ.check("EXPIRETIME", "k")
    differ.check("EXPIREAT", "k", FAR_S + 10, "XX")
    differ.check("EXPIREAT", "k", FAR_S + 5, "GT")
    differ.check("EXPIREAT", "k", FAR_S + 10, "GT")  # equal is not greater
    differ.check("EXPIREAT", "k", FAR_S + 20, "gt", "xx")
    differ.check("EXPIREAT", "k", FAR_S + 20, "LT")  # equal is not less
    differ.check("PEXPIREAT", "k", FAR_MS + 15_000, "lt")
    differ.check("PEXPIRETIME", "k")
    differ.check("EXPIREAT", "k", FAR_S + 1, "LT", "XX", "LT")
    differ.check("EXPIRETIME", "k")
    for opts in (("NX", "XX"), ("NX", "GT"), ("NX", "LT"), ("GT", "LT"), ("nx", "xx", "gt", "lt"), ("XX", "GT", "LT"),
                 ("FOO",), ("NX", "FOO"), ("nx\x00junk",), ("a\r\nb",), ("",)):
        for cmd in ("EXPIRE", "PEXPIRE", "EXPIREAT", "PEXPIREAT"):
            differ.check(cmd, "k", "100", *opts)
            differ.check(cmd, "nosuch", "100", *opts)
            differ.check(cmd, "k", "notanumber", *opts)
    differ.check("EXPIRETIME", "k")


def test_expire_numbers(differ):
    differ.check("SET", "k", "v")
    for cmd in ("EXPIRE", "PEXPIRE", "EXPIREAT", "PEXPIREAT"):
        for bad in ("x", "", "1.5", " 1", "1 ", "9223372036854775808", "-9223372036854775809", "0x10"):
            differ.check(cmd, "k", bad)
        for big in ("9223372036854775807", "9223372036854775", "9223372036854776", "-9223372036854775",
                    "-9223372036854776", "9223372036854775807000"):
            differ.check(cmd, "nosuch", big)
    differ.check("EXPIRE", "k", "9223372036854775")
    differ.check("EXPIREAT", "k", "9223372036854775")
    differ.check("PEXPIRETIME", "k")
    differ.check("PEXPIREAT", "k", "9223372036854775807")
    differ.check("PEXPIRETIME", "k")
    differ.check("EXPIRETIME", "k")
    differ.check("TTL", "k")


@pytest.mark.parametrize("cmd,amount", [
    ("EXPIRE", "0"), ("EXPIRE", "-1"), ("PEXPIRE", "-100"), ("EXPIREAT", "1"), ("PEXPIREAT", "0"),
    ("EXPIREAT", "-9223372036854775"), ("PEXPIREAT", "-9223372036854775808"),
])
def test_expire_in_the_past_deletes(differ, cmd, amount):
    differ.check("SET", "k", "v")
    differ.check(cmd, "k", amount)
    differ.check("EXISTS", "k")
    differ.check(cmd, "k", amount)
    differ.check("DBSIZE")


def test_expire_gt_lt_past_times(differ):
    differ.check("SET", "k", "v", "EXAT", FAR_S)
    differ.check("EXPIRE", "k", "-1", "GT")  # not greater: kept
    differ.check("EXISTS", "k")
    differ.check("EXPIRE", "k", "-1", "LT")  # less, and in the past: deleted
    differ.check("EXISTS", "k")
    differ.check("SET", "k", "v")
    differ.check("EXPIRE", "k", "-1", "XX")  # no TTL: XX fails, key stays
    differ.check("EXISTS", "k")
    differ.check("EXPIRE", "k", "-1", "NX")
    differ.check("EXISTS", "k")


def test_expire_binary_keys(differ):
    for key in BINARY_KEYS:
        differ.check("SET", key, "v")
        differ.check("EXPIREAT", key, FAR_S)
        differ.check("EXPIRETIME", key)
        differ.check("PERSIST", key)
        differ.check("TTL", key)
        differ.check("PEXPIRE", key, "-1")
        differ.check("TTL", key)


def test_ttl_resp3(differ3):
    differ3.check("SET", "k", "v", "EXAT", FAR_S)
    for cmd in ("TTL", "EXPIRETIME", "PEXPIRETIME"):
        differ3.check(cmd, "k")
        differ3.check(cmd, "nosuch")
    differ3.check("PERSIST", "k")
    differ3.check("EXPIRE", "k", "10", "GT", "LT")


# ------------------------------------------------------------- KEYS & SCAN


PATTERNS = ["*", "", "a*", "*a", "?", "??", "[ab]*", "[^a]*", "[a-c]?", "[c-a]*", "\\*", "*\\", "[", "[a",
            "a[", "**", "*?*", "h\\[a-z]", "\x00*", "*\r\n*", "[\\]]", "[]]*", "[!a]"]
SAMPLE_KEYS = ["a", "b", "ab", "abc", "ba", "c", "", "*", "[a-z]", "\\", "a\r\nb", "\x00x", "hello", "h[a-z]",
               "]", "!"]


def test_keys_patterns(differ):
    check_keys(differ, "*")
    for key in SAMPLE_KEYS:
        differ.check("SET", key, "v")
    for pattern in PATTERNS:
        check_keys(differ, pattern)


def test_keys_pattern_fuzz(differ):
    rng = random.Random(1234)
    alphabet = "ab*?[]^-\\!c"
    for key in SAMPLE_KEYS:
        differ.check("SET", key, "v")
    for _ in range(300):
        pattern = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 6)))
        check_keys(differ, pattern)


def test_scan_complete_iterations(differ):
    for i in range(300):
        differ.check("SET", f"key:{i}", str(i))
    for key in BINARY_KEYS:
        differ.check("SET", key, "v")
    full = check_scan(differ)
    assert len(full) == 300 + len(BINARY_KEYS)
    for count in ("1", "7", "100", "100000"):
        check_scan(differ, "COUNT", count)
    for pattern in ("key:1*", "*", "", "nomatch*", "key:?", "[", "*\r\n*"):
        check_scan(differ, "MATCH", pattern)
        check_scan(differ, "MATCH", pattern, "COUNT", "3")
    for type_name in ("string", "STRING", "String", "hash", "none", "list", "", "string\x00junk"):
        check_scan(differ, "TYPE", type_name)
        check_scan(differ, "MATCH", "key:2*", "TYPE", type_name, "COUNT", "50")
    # Every key exactly once, on Shoal, for a COUNT that splits the keyspace.
    keys = scan_all(differ.shoal, "COUNT", "5")
    assert len(keys) == len(set(keys)) == len(full)


def test_scan_empty_db(differ):
    for cursor in ("0", "1", "-1", "", "16384", "999999999999"):
        check_with(differ, "scan", "SCAN", cursor)
        assert parse(differ.shoal.call("SCAN", cursor)) == [b"0", []]


@pytest.mark.parametrize("argv", [
    ("x",), (" 0",), ("\t0",), ("+",), ("-",), ("0x1",), ("1.0",), ("18446744073709551616",),
    ("99999999999999999999999",), ("0", "COUNT"), ("0", "COUNT", "0"), ("0", "COUNT", "-1"), ("0", "COUNT", "x"),
    ("0", "COUNT", "9223372036854775808"), ("0", "MATCH"), ("0", "TYPE"), ("0", "FOO", "bar"), ("0", "FOO"),
    ("x", "COUNT", "0"), ("0", "COUNT", "0", "MATCH"), ("0", "MATCH", "*", "COUNT", "x"), ("0", "NOVALUES"),
    ("0", "count", "1", "match", "*", "type", "string", "extra"), ("0", "count\x00x", "0"),
])
def test_scan_errors(differ, argv):
    differ.check("SET", "k", "v")
    differ.check("SCAN", *argv)


@pytest.mark.parametrize("cursor", ["0", "+0", "-0", "00", "0\x00junk", "18446744073709551615", "-1", ""])
def test_scan_cursor_forms_accepted(differ, cursor):
    differ.check("SET", "k", "v")
    check_with(differ, "scan", "SCAN", cursor)


def test_scan_resp3(differ3):
    differ3.check("SET", "k", "v")
    differ3.check("SCAN", "0")  # one key, one page: identical on both
    differ3.check("SCAN", "0", "COUNT", "0")
    differ3.check("SCAN", "x")


def _scan_under_churn(client: RawClient, seed: int) -> None:
    """Keys present for the whole iteration are all returned while others come and go."""
    rng = random.Random(seed)
    stable = {b"stable:%d" % i for i in range(400)}
    for key in stable:
        client.call("SET", key, "v")
    churn = [b"churn:%d" % i for i in range(2000)]
    seen: set[bytes] = set()
    cursor = b"0"
    live_churn: set[bytes] = set()
    while True:
        cursor, page = parse(client.call("SCAN", cursor, "COUNT", rng.choice(["1", "10", "30"])))
        seen.update(page)
        for _ in range(rng.randint(0, 40)):  # grow
            key = rng.choice(churn)
            client.call("SET", key, "x")
            live_churn.add(key)
        for key in rng.sample(sorted(live_churn), min(len(live_churn), rng.randint(0, 30))):  # shrink
            client.call("DEL", key)
            live_churn.discard(key)
        if cursor == b"0":
            break
    missing = stable - seen
    assert not missing, f"{len(missing)} stable keys missed, e.g. {sorted(missing)[:3]}"
    assert seen <= stable | set(churn)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_scan_while_keyspace_changes(differ, seed):
    _scan_under_churn(differ.shoal, seed)
    _scan_under_churn(differ.redis, seed)  # the guarantee Redis gives, as a sanity check of the test


# -------------------------------------------------------------- RANDOMKEY


def test_randomkey(differ):
    differ.check("RANDOMKEY")
    differ.check("SET", "only", "v")
    differ.check("RANDOMKEY")  # one key: deterministic
    keys = {f"r:{i}".encode() for i in range(50)}
    for key in keys:
        differ.check("SET", key, "v")
    keys.add(b"only")
    seen = set()
    for _ in range(300):
        key = parse(differ.shoal.call("RANDOMKEY"))
        assert key in keys
        seen.add(key)
    assert len(seen) > 30  # not stuck on a few keys
    differ.check("FLUSHALL")
    differ.check("RANDOMKEY")


def test_randomkey_resp3(differ3):
    differ3.check("RANDOMKEY")
    differ3.check("SET", "\x00", "v")
    differ3.check("RANDOMKEY")


# ------------------------------------------------------------------ OBJECT


def test_object_help(differ, differ3):
    differ.check("OBJECT", "HELP")
    differ.check("object", "help")
    differ3.check("OBJECT", "HELP")


ENCODING_VALUES = [
    "", "0", "1", "-1", "9999", "10000", "-0", "01", "+1", " 1", "1 ", "1.5", "abc",
    "9223372036854775807", "9223372036854775808", "-9223372036854775808", "-9223372036854775809",
    "12345678901234567890", "1234567890123456789", "x" * 44, "x" * 45, "7" * 44, "7" * 45, "x" * 1000,
    "\x00", "a\r\nb", "ü" * 22, "ü" * 23, "0x10", "1e5", "inf",
]


@pytest.mark.parametrize("value", ENCODING_VALUES)
def test_object_encoding_and_refcount(differ, value):
    differ.check("SET", "k", value)
    differ.check("OBJECT", "ENCODING", "k")
    differ.check("OBJECT", "REFCOUNT", "k")
    differ.check("OBJECT", "encoding", "k")
    differ.check("SET", "k", value, "EX", "1000")
    differ.check("OBJECT", "ENCODING", "k")


def test_object_missing_keys(differ, differ3):
    for d in (differ, differ3):
        for sub in ("ENCODING", "REFCOUNT", "IDLETIME", "FREQ"):
            d.check("OBJECT", sub, "nosuch")


def test_object_idletime_and_freq_default_policy(differ):
    differ.check("SET", "k", "v")
    differ.check("OBJECT", "FREQ", "k")  # not an LFU policy: the exact error
    check_with(differ, "object|idletime", "OBJECT", "IDLETIME", "k")
    assert differ.shoal.call("OBJECT", "IDLETIME", "k") == b":0\r\n"


@pytest.fixture(scope="module")
def lfu_differ():
    """Servers started with an LFU maxmemory policy (there is no CONFIG SET to rely on)."""
    args = (*COMMON_ARGS, "--maxmemory-policy", "allkeys-lfu")
    with ServerProcess("redis", *args) as redis_proc, ServerProcess("shoal", *args) as shoal_proc:
        d = Differ(redis_proc.port, shoal_proc.port)
        yield d
        d.close()


def test_object_under_lfu_policy(lfu_differ):
    d = lfu_differ
    d.check("FLUSHALL")
    d.check("SET", "k", "v")
    d.check("OBJECT", "IDLETIME", "k")  # the exact LFU error
    d.check("OBJECT", "IDLETIME", "nosuch")
    d.check("OBJECT", "FREQ", "nosuch")
    d.check("OBJECT", "FREQ", "k")  # a fresh key: LFU_INIT_VAL on both
    check_with(d, "object|freq", "OBJECT", "FREQ", "k")
    d.check("SET", "n", "5")
    d.check("OBJECT", "REFCOUNT", "n")  # maxmemory 0: integers still shared


# -------------------------------------------------- random command sequences

KEYS_POOL = ["a", "b", "c", "{t}d", "{t}e", "\x00", "", "x\r\n"]
VALUES_POOL = ["v", "1", "42", "-7", "x" * 50, "", "9999", "10000", "abc def"]
key_st = st.sampled_from(KEYS_POOL)
expire_opts = st.lists(st.sampled_from(["NX", "XX", "GT", "LT"]), max_size=2)
# Relative TTLs far apart (whole thousands of seconds) so GT/LT never compare
# two times taken a few ms apart; absolute ones are exact.
rel_seconds = st.sampled_from(["1000", "2000", "3000", "-1", "0"])

commands = st.one_of(
    st.tuples(st.just("SET"), key_st, st.sampled_from(VALUES_POOL)),
    st.tuples(st.just("SET"), key_st, st.sampled_from(VALUES_POOL), st.just("EXAT"),
              st.sampled_from([str(FAR_S), str(FAR_S + 50)])),
    st.tuples(st.just("GET"), key_st),
    st.tuples(st.just("DEL"), key_st, key_st),
    st.tuples(st.just("UNLINK"), key_st),
    st.tuples(st.just("EXISTS"), key_st, key_st, key_st),
    st.tuples(st.just("TOUCH"), key_st, key_st),
    st.tuples(st.just("TYPE"), key_st),
    st.tuples(st.sampled_from(["RENAME", "RENAMENX"]), key_st, key_st),
    st.tuples(st.just("COPY"), key_st, key_st).map(list).flatmap(
        lambda argv: st.sampled_from([[], ["REPLACE"], ["DB", "1"], ["DB", "1", "REPLACE"]]).map(lambda o: argv + o)),
    st.tuples(st.just("MOVE"), key_st, st.sampled_from(["0", "1", "2"])),
    st.tuples(st.sampled_from(["EXPIRE"]), key_st, rel_seconds).map(list).flatmap(
        lambda argv: expire_opts.map(lambda o: argv + o)),
    st.tuples(st.sampled_from(["EXPIREAT"]), key_st,
              st.sampled_from([str(FAR_S), str(FAR_S + 10), str(FAR_S + 100), "1", "-5"])).map(list).flatmap(
        lambda argv: expire_opts.map(lambda o: argv + o)),
    st.tuples(st.just("PEXPIREAT"), key_st, st.sampled_from([str(FAR_MS + 1), str(FAR_MS + 20_000)])),
    st.tuples(st.sampled_from(["TTL", "EXPIRETIME", "PEXPIRETIME", "PERSIST"]), key_st),
    st.tuples(st.just("KEYS"), st.sampled_from(["*", "?", "{t}*", "[ab]", "*\r\n"])),
    st.tuples(st.just("SCAN"), st.sampled_from(["*", "{t}*", "?"]), st.sampled_from(["1", "3", "10"])),
    st.tuples(st.just("RANDOMKEY")),
    st.tuples(st.just("DBSIZE")),
    st.tuples(st.just("OBJECT"), st.sampled_from(["ENCODING", "REFCOUNT"]), key_st),
)

# Replies that depend on the moment a relative TTL was set: compare with a tolerance.
_TIMING = {"TTL": 1, "EXPIRETIME": 1, "PEXPIRETIME": 2000}


def _run_one(differ: Differ, argv) -> None:
    name = argv[0]
    if name == "SCAN":
        _, pattern, count = argv
        check_scan(differ, "MATCH", pattern, "COUNT", count)
    elif name == "KEYS":
        check_keys(differ, argv[1])
    elif name == "RANDOMKEY":
        expected, actual = (parse(r) for r in differ.both("RANDOMKEY"))
        assert (expected is None) == (actual is None)
        if actual is not None:
            assert differ.shoal.call("EXISTS", actual) == b":1\r\n"
    elif name in _TIMING:
        expected, actual = differ.both(*argv)
        e, a = parse(expected), parse(actual)
        if isinstance(e, int) and isinstance(a, int) and e >= 0 and a >= 0:
            assert abs(e - a) <= _TIMING[name], (argv, e, a)
        else:
            assert expected == actual, (argv, expected, actual)
    else:
        differ.check(*argv)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(commands, min_size=1, max_size=40))
def test_random_command_sequences(differ, sequence):
    for c in (differ.redis, differ.shoal):
        c.call("FLUSHALL")
    for argv in sequence:
        _run_one(differ, list(argv))
    # The end state, database by database.
    for db in ("1", "2", "0"):
        differ.check("SELECT", db)
        check_scan(differ)
        differ.check("DBSIZE")


# ------------------------------------------------------ Database.scan directly


def test_database_scan_semantics():
    from node.config import Config
    from node.core import Node
    from node.engine.glob import compile_glob
    from slots import SLOT_COUNT, keyslot

    node = Node(Config(), wall_clock=lambda: 1_700_000_000.0)
    db = node.dbs[0]
    keys = [b"s:%d" % i for i in range(1000)]
    for key in keys:
        db.set(key, b"v")
    # COUNT bounds keys examined, not keys returned: a MATCH hitting nothing gives empty pages.
    cursor, page = db.scan(0, 10, compile_glob(b"nomatch*"))
    assert page == [] and 0 < cursor < SLOT_COUNT
    # Pages end on slot boundaries, so the next cursor is one past the last slot returned.
    cursor, page = db.scan(0, 10)
    assert len(page) >= 10
    assert max(keyslot(k) for k in page) == cursor - 1
    assert db.scan(SLOT_COUNT, 10) == (0, [])
    assert db.scan(2**64 - 1, 10) == (0, [])
    assert db.scan(0, 10, None, b"hash")[1] == []
    cursor, page = db.scan(0, 10**9, None, b"string")
    assert cursor == 0 and sorted(page) == sorted(keys)
