"""SORT and SORT_RO against real Redis 7.0, byte for byte.

Lists sort deterministically in Redis (ties keep list order: glibc's qsort is
a merge sort; with BY + LIMIT Redis's own partial quicksort decides, and
Shoal reproduces it), so list sorts are compared exactly, including ties.
Sets and sorted sets enter the sort in Redis's hash-table order, so only
their tie-free sorts are compared exactly (see "sort: ties and locale" in
tests/known_differences.py).
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.commands import sort as sort_module
from node.resp import ErrorReply
from tests.differential import Differ
from tests.resp_client import parse
from tests.type_helpers import ArgsDiffer, check_all, d  # noqa: F401
from tests.type_helpers import same_counter_deltas, same_keyspace_events

LLONG_MAX = "9223372036854775807"
LLONG_MIN = "-9223372036854775808"


# ----------------------------------------------------------------- COMMAND table


@pytest.mark.parametrize("name", ["sort", "sort_ro"])
def test_command_info_and_docs(differ, name):
    differ.check("COMMAND", "INFO", name)
    differ.check("COMMAND", "DOCS", name)


@pytest.mark.parametrize("args", [
    ("k",), ("k", "STORE", "d"), ("k", "store", "d", "LIMIT", "0", "1"), ("k", "STORE", "limit", "1", "2"),
    ("k", "GET", "store", "STORE", "x", "STORE"), ("k", "BY", "store", "STORE", "a", "STORE", "b"),
    ("k", "STORE"), ("k", "LIMIT", "store", "x", "STORE", "y"), ("k", "ALPHA", "DESC", "STORE", "d"),
])
def test_getkeys(differ, args):
    differ.check("COMMAND", "GETKEYS", "SORT", *args)
    differ.check("COMMAND", "GETKEYS", "SORT_RO", *args)


# ------------------------------------------------------------ numeric sorting

NUMBERS = ["3", "1", "2", "10", " 5", "", "0x10", "1\x00zz", "-1", "1.5", "+.5", "-.5e1", "5.", "\t7", "0x1p3",
           "1e5", "-inf", "infinity", "INF", "0X1P3", "0x.8", "\x0b5", "1.5e308", "2.2250738585072014e-308",
           "0.0e-999999", "-0", "0", "00", "1e-300", "3"]
BAD_NUMBERS = ["1e", "1e+", ".", "-", "0x1p", "infinit", "1.8e308", "5\n", "nan", "-nan", "nan(12)", "1,5",
               "4.9406564584124654e-324", "0x1p-1074", "2.2250738585072011e-308", "1e-400", "abc", " ", "2 ", "1_0"]


def test_numeric_sort(d):
    d.check("RPUSH", "l", *NUMBERS)
    for argv in (("SORT", "l"), ("SORT", "l", "DESC"), ("SORT", "l", "LIMIT", 2, 5), ("SORT", "l", "DESC", "LIMIT", 0, 3),
                 ("SORT_RO", "l"), ("SORT", "l", "ASC", "DESC"), ("SORT", "l", "DESC", "ASC")):
        d.exact(*argv)
    d.check("SORT", "l", "STORE", "dst")
    d.exact("LRANGE", "dst", 0, -1)


@pytest.mark.parametrize("bad", BAD_NUMBERS)
def test_numeric_sort_errors(d, bad):
    check_all(d, ("RPUSH", "l", "1", bad, "2"), ("SORT", "l"), ("SORT", "l", "STORE", "dst"), ("EXISTS", "dst"),
              ("SORT", "l", "ALPHA"), ("SORT", "l", "BY", "nosort"), ("SORT", "l", "LIMIT", 0, 1))


_number_like = st.text(alphabet="0123456789.eExXpP+-infatyINFATY \t\x00", max_size=12)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(st.one_of(_number_like, st.floats().map(repr), st.integers().map(str)), min_size=1, max_size=8))
def test_numeric_parsing_random(redis_proc, shoal_proc, differ, values):
    # Fresh connections each time: Redis does not clear errno before strtod, and
    # accepting a connection (its accept loop ends in EAGAIN) is what clears a
    # stale ERANGE left by an earlier example.
    d = Differ(redis_proc.port, shoal_proc.port)
    try:
        d.both("DEL", "l")
        d.check("RPUSH", "l", *values)
        d.check("SORT", "l")
        d.check("SORT", "l", "DESC", "LIMIT", "1", "3")
    finally:
        d.close()


# -------------------------------------------------------------- ALPHA sorting

ALPHA = [b"b", b"a", b"B", b"A", b"a\x00z", b"a\x00b", b"\xc3\xa9", b"\xff", b"", b"z", b"a", b"ab", b"a b", b"10", b"9"]


def test_alpha_sort(d):
    d.check("RPUSH", "l", *ALPHA)
    for argv in (("SORT", "l", "ALPHA"), ("SORT", "l", "ALPHA", "DESC"), ("SORT", "l", "alpha", "LIMIT", 3, 4),
                 ("SORT_RO", "l", "ALPHA", "DESC", "LIMIT", 0, 100)):
        d.exact(*argv)
    # With STORE Redis compares whole binary strings instead of C strings.
    d.check("SORT", "l", "ALPHA", "STORE", "dst")
    d.exact("LRANGE", "dst", 0, -1)
    d.check("SORT", "l", "ALPHA", "DESC", "STORE", "dst")
    d.exact("LRANGE", "dst", 0, -1)


# ------------------------------------------------------------------- LIMIT


@pytest.mark.parametrize("start", ["0", "1", "5", "-1", "-100", "14", "15", "100", LLONG_MAX, LLONG_MIN])
@pytest.mark.parametrize("count", ["0", "1", "3", "-1", "-5", "15", "100", LLONG_MAX, LLONG_MIN])
def test_limit(differ, start, count):
    d = ArgsDiffer(differ)
    d.check("RPUSH", "l", *[str(i * 7 % 15) for i in range(15)])
    d.check("ZADD", "z", *[x for i in range(15) for x in (str(i % 4), f"m{i}")])
    d.check("SADD", "s", *[str(i * 3) for i in range(15)])
    for key in ("l", "z", "s", "nokey"):
        for extra in ((), ("DESC",), ("BY", "nosort"), ("BY", "nosort", "DESC"), ("ALPHA",)):
            d.exact("SORT", key, *extra, "LIMIT", start, count)
        d.check("SORT", key, "LIMIT", start, count, "STORE", "dst")
        d.exact("LRANGE", "dst", 0, -1)


def test_limit_errors(d):
    check_all(
        d, ("RPUSH", "l", "1"), ("SORT", "l", "LIMIT"), ("SORT", "l", "LIMIT", 1), ("SORT", "l", "LIMIT", "x", 1),
        ("SORT", "l", "LIMIT", 1, "x"), ("SORT", "l", "LIMIT", "1.5", 1), ("SORT", "l", "LIMIT", "9223372036854775808", 1),
        ("SORT", "l", "LIMIT", "x", 1, "BAD"), ("SORT", "l", "BAD", "LIMIT", "x", 1),
    )


# ------------------------------------------------------------- BY and GET


def _weights(d):
    check_all(
        d, ("RPUSH", "l", "3", "1", "2", "4", "5", "x", "1"),
        ("MSET", "w_3", "30", "w_1", "10", "w_2", "-20", "w_x", "5", "a_1", "b", "a_2", "a", "a_3", "c"),
        ("HSET", "h_1", "f", "7", "g", "zz"), ("HSET", "h_2", "f", "-7", "g", "aa"), ("HSET", "h_3", "f", "x"),
        ("RPUSH", "w_4", "not a string"), ("SADD", "h_4", "not a hash"), ("SET", "h_5", "not a hash"),
    )


@pytest.mark.parametrize("by", [
    "w_*", "a_*", "h_*->f", "h_*->g", "h_*->nope", "nosort", "w_*_suffix", "*", "#", "h_*->", "*->f", "h_*-",
    "w_\x00*", "h_*->f\x00x", "h_*\x00->f", "->f*", "{w_}*", "w_*->f",
])
def test_by_patterns(d, by):
    _weights(d)
    for extra in ((), ("ALPHA",), ("DESC",), ("ALPHA", "DESC"), ("LIMIT", 1, 3), ("ALPHA", "LIMIT", 0, 2),
                  ("GET", "#", "GET", "w_*", "GET", "h_*->g")):
        d.check("SORT", "l", "BY", by, *extra)
    d.check("SORT", "l", "BY", by, "ALPHA", "STORE", "dst")
    d.exact("LRANGE", "dst", 0, -1)


@pytest.mark.parametrize("get", ["#", "w_*", "h_*->f", "h_*->g", "h_*->nope", "nope", "h_*->", "#x", "#\x00x",
                                 "w_\x00*", "*", "a_*", "h_*"])
def test_get_patterns(d, get):
    _weights(d)
    d.check("SORT", "l", "GET", get)
    d.check("SORT", "l", "GET", get, "GET", "#", "LIMIT", 1, 2)
    d.check("SORT", "l", "BY", "nosort", "GET", get, "STORE", "dst")
    d.exact("LRANGE", "dst", 0, -1)
    d.check("SORT", "l", "BY", "nosort", "GET", get, "DESC")


def test_by_overrides(d):
    _weights(d)
    check_all(
        d,
        # a constant BY stops the sorting for good, even if a pattern follows
        ("SORT", "l", "BY", "nosort", "BY", "w_*"), ("SORT", "l", "BY", "w_*", "BY", "nosort"),
        ("SORT", "l", "BY", "w_*", "BY", "a_*", "ALPHA"), ("SORT", "l", "GET", "#", "GET", "#"),
        ("SORT", "l", "BY", "h_*->f", "BY"), ("SORT", "l", "GET"), ("SORT", "l", "STORE"),
    )


_weight_values = st.sampled_from(["1", "2", "a", "b", "", None])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    elements=st.lists(st.sampled_from([f"e{i}" for i in range(12)]), min_size=0, max_size=60),
    weights=st.dictionaries(st.sampled_from([f"e{i}" for i in range(12)]), _weight_values),
    start=st.integers(-2, 70), count=st.integers(-2, 70), desc=st.booleans(), alpha=st.booleans(),
)
def test_ties_with_by_and_limit(differ, elements, weights, start, count, desc, alpha):
    """Equal weights keep list order in a full sort and follow Redis's pqsort with LIMIT."""
    differ.both("FLUSHALL")
    if elements:
        differ.check("RPUSH", "l", *elements)
    for element, weight in weights.items():
        if weight is not None:
            differ.check("SET", f"w_{element}", weight)
    options = ["BY", "w_*"] + (["ALPHA"] if alpha else []) + (["DESC"] if desc else [])
    expected, actual = differ.both("SORT", "l", *options, "LIMIT", str(start), str(count))
    assert expected == actual
    expected, actual = differ.both("SORT", "l", *options)
    assert expected == actual


# ----------------------------------------------------------- sets and zsets


def test_sort_sets(d):
    check_all(d, ("SADD", "i", "5", "-3", "100", "7", "0"), ("SADD", "h", "b", "c", "a", "10", "9"))
    for argv in (("SORT", "i"), ("SORT", "i", "DESC"), ("SORT", "i", "ALPHA"), ("SORT", "i", "BY", "nosort"),
                 ("SORT", "i", "BY", "nosort", "LIMIT", 1, 2), ("SORT", "i", "BY", "nosort", "DESC"),
                 ("SORT", "h", "ALPHA"), ("SORT", "h", "ALPHA", "DESC", "LIMIT", 1, 3), ("SORT", "h"),
                 ("SORT_RO", "h", "ALPHA", "GET", "#")):
        d.exact(*argv)
    # A set sorted BY a constant with STORE is sorted ALPHA, for a deterministic result.
    for key in ("i", "h"):
        d.check("SORT", key, "BY", "nosort", "STORE", "dst")
        d.exact("LRANGE", "dst", 0, -1)
        d.check("SORT", key, "BY", "nosort", "DESC", "LIMIT", 1, 2, "STORE", "dst")
        d.exact("LRANGE", "dst", 0, -1)
    # Without STORE a hashtable set keeps its (hash) order: compared as a set.
    expected, actual = d.both("SORT", "h", "BY", "nosort")
    assert sorted(parse(expected)) == sorted(parse(actual))


def test_sort_set_in_a_script(d):
    """Inside a script a set sorted BY a constant is sorted ALPHA, so replicas agree."""
    d.check("SADD", "h", "b", "c", "a", "10", "9", "x\x00y")
    d.check("SADD", "i", "3", "-1", "2")
    for key in ("h", "i"):
        d.exact("EVAL", "return redis.call('SORT', KEYS[1], 'BY', 'nosort')", 1, key)
        d.exact("EVAL", "return redis.call('SORT_RO', KEYS[1], 'BY', 'nosort', 'DESC', 'LIMIT', 1, 2)", 1, key)
        d.exact("EVAL", "return redis.call('SORT', KEYS[1], 'BY', 'nosort', 'GET', '#')", 1, key)


def test_sort_zsets(d):
    check_all(d, ("ZADD", "z", "3", "a", "1", "b", "2", "c", "2", "d", "-1", "10"), ("OBJECT", "ENCODING", "z"))
    for argv in (("SORT", "z", "BY", "nosort"), ("SORT", "z", "BY", "nosort", "DESC"),
                 ("SORT", "z", "BY", "nosort", "LIMIT", 1, 2), ("SORT", "z", "BY", "nosort", "DESC", "LIMIT", 1, 10),
                 ("SORT", "z", "ALPHA"), ("SORT", "z", "ALPHA", "DESC", "LIMIT", 2, 2), ("SORT", "z", "BY", "x", "GET", "#"),
                 ("SORT_RO", "z", "BY", "nosort", "DESC")):
        d.exact(*argv)
    d.check("SORT", "z")  # a member is not a number
    d.check("OBJECT", "ENCODING", "z")  # SORT converted it to a skiplist
    d.check("ZADD", "n", "1", "5", "2", "-5", "3", "10")
    d.exact("SORT", "n")
    d.exact("SORT", "n", "DESC", "LIMIT", 0, 2)
    d.check("SORT_RO", "n")
    d.check("OBJECT", "ENCODING", "n")


# ------------------------------------------------------------------- STORE


def test_store(d):
    check_all(
        d, ("RPUSH", "l", "3", "1", "2"), ("SET", "dst", "x"), ("EXPIRE", "dst", 1000), ("SORT", "l", "STORE", "dst"),
        ("TTL", "dst"), ("TYPE", "dst"), ("LRANGE", "dst", 0, -1), ("OBJECT", "ENCODING", "dst"),
        ("SORT", "l", "STORE", "dst", "STORE", "dst2"), ("LRANGE", "dst2", 0, -1),
        ("SORT", "l", "LIMIT", 0, 0, "STORE", "dst"), ("EXISTS", "dst"), ("SORT", "nokey", "STORE", "dst2"),
        ("EXISTS", "dst2"), ("SORT", "l", "STORE", "l"), ("LRANGE", "l", 0, -1), ("SORT_RO", "l", "STORE", "x"),
        ("SORT", "l", "GET", "nope", "STORE", "d3"), ("LRANGE", "d3", 0, -1),
        ("RPUSH", "bad", "1", "x"), ("SORT", "bad", "STORE", "d4"), ("EXISTS", "d4"),
        ("HSET", "h", "f", "v"), ("SORT", "l", "STORE", "h"), ("TYPE", "h"),
        ("RPUSH", "big", *[str(i) for i in range(300)]), ("SORT", "big", "DESC", "STORE", "d5"),
        ("LRANGE", "d5", 0, 5), ("OBJECT", "ENCODING", "d5"), ("DEBUG", "DIGEST-VALUE", "d5"),
    )


# ------------------------------------------------------------------- errors


def test_errors(d):
    check_all(
        d, ("SET", "str", "v"), ("HSET", "h", "f", "v"), ("RPUSH", "l", "1"),
        ("SORT", "str"), ("SORT", "h"), ("SORT_RO", "str"), ("SORT", "str", "STORE", "d"), ("EXISTS", "d"),
        ("SORT", "l", "NOPE"), ("SORT", "l", "ASC", "NOPE"), ("SORT", "l", "BY"), ("SORT", "l", "GET"),
        ("SORT", "str", "NOPE"), ("SORT", "l", "STORE"), ("SORT",), ("SORT_RO",), ("SORT", "l", "alpha\x00x"),
        ("SORT", "l", "desc", "desc", "asc"), ("SORT", "l", "LIMIT", "0", "1", "LIMIT", "1", "1"),
    )


def test_cluster_mode_rejects_patterns():
    node = SimpleNamespace(cluster_enabled=True)
    client = SimpleNamespace(node=node, db=None)
    for argv, message in (
        ([b"sort", b"k", b"BY", b"w_*"], "ERR BY option of SORT denied in Cluster mode."),
        ([b"sort", b"k", b"GET", b"#"], "ERR GET option of SORT denied in Cluster mode."),
        ([b"sort", b"k", b"GET", b"w_*"], "ERR GET option of SORT denied in Cluster mode."),
        ([b"sort_ro", b"k", b"LIMIT", b"0", b"1", b"BY", b"w_*->f"], "ERR BY option of SORT denied in Cluster mode."),
    ):
        with pytest.raises(ErrorReply) as err:
            sort_module._sort_generic(client, argv, readonly=argv[0] == b"sort_ro")
        assert err.value.message == message


# ------------------------------------------------------------- events, counters

EVENT_SCRIPT = [
    ("RPUSH", "l", "2", "1"), ("SORT", "l"), ("SORT", "l", "STORE", "d"), ("SORT", "l", "STORE", "d"),
    ("SORT", "l", "LIMIT", 0, 0, "STORE", "d"), ("SORT", "l", "LIMIT", 0, 0, "STORE", "d"),
    ("SORT", "nokey", "STORE", "e"), ("SET", "w_1", "5"), ("SORT", "l", "BY", "w_*", "GET", "w_*", "STORE", "f"),
    ("SORT", "l", "BY", "w_*", "GET", "#", "GET", "nokey_*"), ("SORT_RO", "l", "BY", "missing_*"),
    ("RPUSH", "bad", "x"), ("SORT", "bad", "STORE", "g"),
]


def test_keyspace_events(redis_proc, shoal_proc, differ):
    same_keyspace_events(redis_proc, shoal_proc, EVENT_SCRIPT)


def test_dirty_and_hit_counters(redis_proc, shoal_proc, differ):
    same_counter_deltas(redis_proc, shoal_proc, EVENT_SCRIPT)


# --------------------------------------------------- random command sequences

_elements = st.sampled_from(["1", "2", "10", "-1", "a", "b", "", "1.5", "x\x00y", "B"])
_options = st.lists(
    st.one_of(
        st.sampled_from([("ASC",), ("DESC",), ("ALPHA",), ("BY", "nosort"), ("BY", "w_*"), ("BY", "h_*->f"),
                         ("GET", "#"), ("GET", "w_*"), ("GET", "h_*->f"), ("STORE", "dst")]),
        st.tuples(st.just("LIMIT"), st.integers(-2, 8).map(str), st.integers(-2, 8).map(str)),
    ),
    max_size=4,
).map(lambda groups: [w for g in groups for w in g])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    elements=st.lists(_elements, min_size=0, max_size=10),
    weights=st.dictionaries(_elements, st.sampled_from(["1", "2", "-3", "x", "0.5"]), max_size=6),
    options=_options, resp3=st.booleans(),
)
def test_random_sorts_of_lists(differ, differ3, elements, weights, options, resp3):
    d = differ3 if resp3 else differ
    d.both("FLUSHALL")
    if elements:
        d.check("RPUSH", "l", *elements)
    for element, weight in weights.items():
        d.check("SET", "w_" + element, weight)
        d.check("HSET", "h_" + element, "f", weight)
    expected, actual = d.both("SORT", "l", *options)
    assert expected == actual, (options, expected, actual)
    d.check("EXISTS", "dst")
    expected, actual = d.both("LRANGE", "dst", "0", "-1")
    assert expected == actual
