"""Geo commands against real Redis 7.0, byte for byte (RESP2 and RESP3).

Two layers:

* the pure geohash module (``node.engine.geohash``) on its own, and against
  what real Redis stores and prints (GEOADD then ZSCORE/GEOPOS/GEOHASH/
  GEODIST) -- the encoding, the decoding, the distance and the texts must
  be bit-exact;
* every command differentially, in both protocols: replies, error texts and
  which error wins, the order of search results (including the unsorted
  order and the order of equal distances under COUNT), stored results
  (scores, encoding, TTL), keyspace events, the dirty counter, keyspace
  hits/misses, COMMAND GETKEYS; then hypothesis searches over random points,
  shapes, units and options.
"""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from node.engine import geohash as gh
from tests.resp_client import RawClient, parse
from tests.type_helpers import ArgsDiffer, check_introspection, d, same_counter_deltas, same_keyspace_events  # noqa: F401

LAT_MAX = "85.05112878"
LAT_MIN = "-85.05112878"

SICILY = [
    ("13.361389", "38.115556", "Palermo"),
    ("15.087269", "37.502669", "Catania"),
    ("12.758489", "38.788135", "edge1"),
    ("17.241510", "38.788135", "edge2"),
    ("14.5", "37.5", "middle"),
    ("-73.9454966", "40.747533", "NYC"),
    ("2.349014", "48.864716", "Paris"),
]


def load(d, key="k", places=SICILY):
    argv = ["GEOADD", key]
    for lon, lat, name in places:
        argv += [lon, lat, name]
    d.check(*argv)


def check_zset(d, key):
    d.check("ZRANGE", key, 0, -1, "WITHSCORES")
    check_introspection(d, key)


# ======================================================= the pure geohash module


def test_interleave_known_values():
    assert gh.interleave(0, 0) == 0
    assert gh.interleave(1, 0) == 1
    assert gh.interleave(0, 1) == 2
    assert gh.interleave(0xFFFFFFFF, 0) == 0x5555555555555555
    assert gh.interleave(0, 0xFFFFFFFF) == 0xAAAAAAAAAAAAAAAA
    assert gh.deinterleave(0xAAAAAAAAAAAAAAAA) == (0, 0xFFFFFFFF)


@given(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1))
@settings(max_examples=100, deadline=None)
def test_interleave_roundtrip(x, y):
    bits = gh.interleave(x, y)
    assert bits < 2**64
    assert gh.deinterleave(bits) == (x, y)


def test_encode_known_points():
    # Values real Redis stores for these points (ZSCORE after GEOADD).
    assert gh.encode(13.361389, 38.115556) == 3479099956230698
    assert gh.encode(15.087269, 37.502669) == 3479447370796909
    assert gh.encode(-180.0, -85.05112878) == 0
    # The top edges give an index of 2**26: one bit past the 52 (Redis does the same).
    assert gh.encode(180.0, 0.0) >> 52 == 2
    assert gh.encode(181.0, 0.0) is None
    assert gh.encode(0.0, 85.06) is None
    assert gh.encode(0.0, 0.0, step=0) is None


def test_decode_and_format():
    lon, lat = gh.score_to_lonlat(3479099956230698.0)
    assert gh.format_coordinate(lon) == b"13.36138933897018433"
    assert gh.format_coordinate(lat) == b"38.11555639549629859"
    assert gh.geohash_string(3479099956230698.0) == b"sqc8b49rny0"
    assert gh.format_coordinate(-0.0) == b"0"
    assert gh.format_coordinate(180.0) == b"180"
    assert gh.format_coordinate(-1.5) == b"-1.5"
    assert gh.format_distance(166274.15156960033) == b"166274.1516"
    assert gh.format_distance(float("inf")) == b"inf"


def test_score_to_bits_like_x86_conversion():
    assert gh.score_to_bits(5.9) == 5
    assert gh.score_to_bits(-5.0) == 2**64 - 5
    assert gh.score_to_bits(float("inf")) == 0
    assert gh.score_to_bits(float("-inf")) == 2**63
    assert gh.score_to_bits(-1e19) == 2**63
    assert gh.score_to_bits(1e30) == 0
    assert gh.score_to_bits(1.8e19) == int(1.8e19)
    assert gh.score_to_bits(float(2**63)) == 2**63


def test_distance_basics():
    assert gh.distance(0.0, 0.0, 0.0, 0.0) == 0.0
    # A quarter of the equator.
    assert math.isclose(gh.distance(0.0, 0.0, 90.0, 0.0), math.pi / 2 * gh.EARTH_RADIUS_IN_METERS)
    assert gh.in_radius(0.0, 0.0, 0.0, 1.0, 1000.0) is None
    assert gh.in_radius(0.0, 0.0, 0.0, 0.001, 1000.0) is not None
    assert gh.in_box(2000.0, 2000.0, 0.0, 0.0, 0.005, 0.005) is not None
    assert gh.in_box(2000.0, 2000.0, 0.0, 0.0, 0.02, 0.0) is None


def test_search_areas_shapes():
    # A small radius: fine cells, some neighbours dropped; a huge one: step 1, whole world.
    small = gh.search_areas(13.36, 38.11, 1000.0, radius=1.0)
    assert 1 <= len(small) <= 9
    assert all(0 <= lo < hi <= 2**53 for lo, hi in small)
    world = gh.search_areas(0.0, 0.0, 1000.0, radius=20000.0)
    assert sorted(world) == [(0, 2**50), (2**50, 2**51), (2**51, 3 * 2**50), (3 * 2**50, 2**52)]
    assert gh.estimate_steps(0.0, 0.0) == 26
    assert gh.estimate_steps(1.0, 0.0) == 24
    assert gh.estimate_steps(1.0, 70.0) == 23
    assert gh.estimate_steps(1.0, -81.0) == 22
    assert gh.estimate_steps(float("inf"), 0.0) == 1


@given(st.lists(st.integers(0, 6), min_size=0, max_size=120), st.data(), st.booleans())
@settings(max_examples=150, deadline=None)
def test_partial_sort_orders_the_wanted_prefix(keys, data, reverse):
    n = len(keys)
    if n == 0:
        return
    hi = data.draw(st.integers(0, n - 1))
    items = list(range(n))
    ks = [float(k) for k in keys]
    gh.partial_sort(items, ks, 0, hi, reverse)
    assert sorted(items) == list(range(n))  # a permutation
    assert [keys[i] for i in items] == [float(k) for k in ks]  # keys moved with items
    expected = sorted(keys, reverse=reverse)[: hi + 1]
    assert [keys[i] for i in items[: hi + 1]] == expected


def test_parse_double_like_string2d():
    from node.commands.geo import parse_double
    from node.resp import ErrorReply

    assert parse_double(b"1.5") == 1.5
    assert parse_double(b"-inf") == float("-inf")
    assert parse_double(b"0x10") == 16.0
    assert parse_double(b"3e-324") == 5e-324  # subnormal: ERANGE but not zero, accepted
    assert parse_double(b"0e-999") == 0.0
    for bad in (b"", b" 1", b"1 ", b"nan", b"1e400", b"-1e400", b"1e-400", b"0x1p-2000", b"1_0", b"1e", b"0x",
                b"1\x002", b"abc"):
        with pytest.raises(ErrorReply):
            parse_double(bad)


def _string2d(data: bytes):
    """Redis's string2d through the real libc strtod (ctypes): the value, or None if refused."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.strtod.restype = ctypes.c_double
    libc.strtod.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_char_p)]
    buf = ctypes.create_string_buffer(data)
    end = ctypes.c_char_p()
    ctypes.set_errno(0)
    value = libc.strtod(buf, ctypes.byref(end))
    errno = ctypes.get_errno()
    consumed = ctypes.cast(end, ctypes.c_void_p).value - ctypes.addressof(buf)
    if (not data or data[:1].isspace() or consumed != len(data) or b"\0" in data
            or (errno == 34 and (math.isinf(value) or value == 0.0)) or value != value):
        return None
    return value


@given(st.one_of(
    st.text(alphabet="0123456789.eE+-xXpPabcdfinINFty_ \t", max_size=14).map(str.encode),
    st.floats(allow_nan=True).map(lambda f: repr(f).encode()),
    st.floats().map(lambda f: f.hex().encode()),
))
@settings(max_examples=400, deadline=None)
def test_parse_double_matches_libc_strtod(data):
    from node.commands.geo import parse_double
    from node.resp import ErrorReply

    expected = _string2d(data)
    try:
        got = parse_double(data)
    except ErrorReply:
        got = None
    if expected is None or got is None:
        assert got == expected, data
    else:
        assert got == expected and math.copysign(1, got) == math.copysign(1, expected), data


# ------------------------------------------------- pure module vs real Redis


def _random_point(rng: random.Random) -> tuple[float, float]:
    kind = rng.random()
    if kind < 0.1:
        return rng.choice([-180.0, 180.0, 0.0]), rng.choice([-85.05112878, 85.05112878, 0.0])
    return rng.uniform(-180, 180), rng.uniform(-85.05112878, 85.05112878)


def test_pure_math_matches_redis(redis_proc):
    """Scores, GEOPOS, GEOHASH and GEODIST computed by the module equal real Redis's replies."""
    rng = random.Random(7)
    with RawClient(redis_proc.port) as r:
        r.call("FLUSHALL")
        points = [_random_point(rng) for _ in range(300)]
        argv = ["GEOADD", "pts"]
        for i, (lon, lat) in enumerate(points):
            argv += [repr(lon), repr(lat), f"m{i}"]
        r.call(*argv)
        names = [f"m{i}" for i in range(len(points))]
        scores = parse(r.call("ZMSCORE", "pts", *names))
        positions = parse(r.call("GEOPOS", "pts", *names))
        hashes = parse(r.call("GEOHASH", "pts", *names))
        for i, (lon, lat) in enumerate(points):
            bits = gh.encode(lon, lat)
            assert float(scores[i]) == float(bits), (lon, lat)
            x, y = gh.score_to_lonlat(float(bits))
            assert positions[i] == [gh.format_coordinate(x), gh.format_coordinate(y)]
            assert hashes[i] == gh.geohash_string(float(bits))
        for _ in range(300):
            a, b = rng.randrange(len(points)), rng.randrange(len(points))
            unit = rng.choice(["m", "km", "ft", "mi"])
            got = parse(r.call("GEODIST", "pts", f"m{a}", f"m{b}", unit))
            xa, ya = gh.score_to_lonlat(float(gh.encode(*points[a])))
            xb, yb = gh.score_to_lonlat(float(gh.encode(*points[b])))
            assert got == gh.format_distance(gh.distance(xa, ya, xb, yb) / gh.UNITS[unit.encode()])


def test_pure_decode_of_foreign_scores_matches_redis(redis_proc):
    """Scores not written by GEOADD decode as Redis's (uint64_t) cast makes them."""
    scores = ["-5", "1e30", "inf", "-inf", "0.5", "4503599627370496", "9.3e18", "-1e19", "1.8e19", "3e19",
              "123456.75", "9007199254740993", "18014398509481983"]
    with RawClient(redis_proc.port) as r:
        r.call("FLUSHALL")
        for i, s in enumerate(scores):
            r.call("ZADD", "z", s, f"m{i}")
        for i, s in enumerate(scores):
            score = float(s)
            x, y = gh.score_to_lonlat(score)
            assert parse(r.call("GEOPOS", "z", f"m{i}")) == [[gh.format_coordinate(x), gh.format_coordinate(y)]], s
            assert parse(r.call("GEOHASH", "z", f"m{i}")) == [gh.geohash_string(score)], s


# ============================================================ command table


GEO_COMMANDS = ("geoadd geopos geodist geohash geosearch geosearchstore georadius georadius_ro "
                "georadiusbymember georadiusbymember_ro").split()


def test_command_info_and_docs(differ):
    for name in GEO_COMMANDS:
        differ.check("COMMAND", "INFO", name)
        differ.check("COMMAND", "DOCS", name)


def test_command_getkeys(differ):
    cases = [
        ("geoadd", "k", "1", "2", "m"), ("geopos", "k", "m"), ("geodist", "k", "a", "b"), ("geohash", "k"),
        ("geosearch", "k", "frommember", "m", "byradius", "1", "km"),
        ("geosearchstore", "d", "s", "frommember", "m", "byradius", "1", "km"),
        ("georadius", "k", "0", "0", "1", "km"),
        ("georadius", "k", "0", "0", "1", "km", "store", "a"),
        ("georadius", "k", "0", "0", "1", "km", "STOREDIST", "b", "STORE", "a"),
        ("georadius", "k", "0", "0", "1", "km", "store", "a", "store", "b"),
        ("georadius", "k", "0", "0", "1", "km", "withdist", "store"),
        ("georadius", "k", "0", "0", "1", "store", "km"),
        ("georadius", "k", "0", "0", "1", "km", "count", "store", "x"),
        ("georadius_ro", "k", "0", "0", "1", "km", "store", "a"),
        ("georadiusbymember", "k", "m", "1", "km", "store", "a"),
        ("georadiusbymember", "k", "m", "store", "km", "stOredist", "a"),
        ("georadiusbymember_ro", "k", "m", "1", "km"),
    ]
    for argv in cases:
        differ.check("COMMAND", "GETKEYS", *argv)


# ================================================================== GEOADD


def test_geoadd_basic_and_options(d):
    load(d)
    check_zset(d, "k")
    d.check("GEOADD", "k", "13.361389", "38.115556", "Palermo")  # same place: 0, nothing changed
    d.check("GEOADD", "k", "CH", "13.361389", "38.115556", "Palermo")
    d.check("GEOADD", "k", "CH", "13.4", "38.1", "Palermo", "1", "1", "new1")
    d.check("GEOADD", "k", "NX", "0", "0", "Palermo", "2", "2", "new2")
    d.check("GEOADD", "k", "NX", "CH", "0", "0", "Palermo", "3", "3", "new3")
    d.check("GEOADD", "k", "XX", "0", "0", "Palermo", "4", "4", "new4")
    d.check("GEOADD", "k", "XX", "CH", "1", "0", "Palermo", "4", "4", "new4")
    d.check("GEOADD", "k", "ch", "xx", "ch", "2", "0", "Palermo")
    d.check("GEOADD", "k", "1", "1", "dup", "2", "2", "dup")  # the second wins, counted once as added
    d.check("GEOADD", "k", "CH", "5", "5", "dup2", "6", "6", "dup2")
    check_zset(d, "k")
    d.check("GEOADD", "nokey", "XX", "1", "1", "a")
    d.check("EXISTS", "nokey")
    d.check("GEOADD", "nokey", "NX", "1", "1", "a")
    check_zset(d, "nokey")


def test_geoadd_edges_of_the_range(d):
    d.check("GEOADD", "e", "180", LAT_MAX, "ne", "-180", LAT_MIN, "sw", "180", LAT_MIN, "se", "-180", LAT_MAX, "nw",
            "0", "0", "origin", "-0", "-0", "negzero", "0x1p3", "1e1", "hex", "179.99999999", "85.0511287", "almost")
    check_zset(d, "e")
    d.check("GEOPOS", "e", "ne", "sw", "se", "nw", "origin", "negzero", "hex", "almost")
    d.check("GEOHASH", "e", "ne", "sw", "se", "nw", "origin", "negzero", "hex", "almost")
    d.check("GEODIST", "e", "ne", "sw")
    d.check("GEODIST", "e", "ne", "se", "km")
    d.check("GEODIST", "e", "origin", "negzero")


def test_geoadd_errors(d):
    d.check("GEOADD", "k", "200", "100", "a")
    d.check("GEOADD", "k", "-180.0001", "0", "a")
    d.check("GEOADD", "k", "0", "85.05112879", "a")
    d.check("GEOADD", "k", "0", "-85.05112879", "a")
    d.check("GEOADD", "k", "inf", "0", "a")
    d.check("GEOADD", "k", "0", "-inf", "a")
    d.check("GEOADD", "k", "1e300", "1e-300", "a")
    d.check("GEOADD", "k", "nan", "0", "a")
    d.check("GEOADD", "k", "0", "nan", "a")
    d.check("GEOADD", "k", "1e400", "0", "a")
    d.check("GEOADD", "k", "0", "1e-400", "a")
    d.check("GEOADD", "k", " 1", "0", "a")
    d.check("GEOADD", "k", "1 ", "0", "a")
    d.check("GEOADD", "k", "", "0", "a")
    d.check("GEOADD", "k", "abc", "0", "a")
    d.check("GEOADD", "k", "1", "2", "a", "3")  # not a multiple of 3
    d.check("GEOADD", "k", "1", "2", "a", "3", "4")
    d.check("GEOADD", "k", "NX", "XX", "1", "2", "a")
    d.check("GEOADD", "k", "CH", "CH", "CH")  # options only: ZADD's syntax error
    d.check("GEOADD", "k", "NX", "CH", "XX")
    d.check("GEOADD", "k", "GT", "1", "2", "a")  # not a GEOADD option
    d.check("GEOADD", "k", "INCR", "1", "2")
    d.check("GEOADD", "k", "1", "2")
    d.check("GEOADD", "k", "1")
    # A valid point then an invalid one: nothing added.
    d.check("GEOADD", "k", "1", "2", "a", "500", "2", "b")
    d.check("EXISTS", "k")
    d.check("SET", "str", "v")
    d.check("GEOADD", "str", "1", "2", "a")
    d.check("GEOADD", "str", "500", "2", "a")  # the coordinates are checked before the type
    d.check("GEOADD", "str", "XX", "1", "2", "a")


def test_geoadd_encoding_thresholds(d):
    try:
        d.check("CONFIG", "SET", "zset-max-listpack-entries", "4")
        d.check("CONFIG", "SET", "zset-max-listpack-value", "8")
        d.check("GEOADD", "a", "1", "1", "m1", "2", "2", "m2", "3", "3", "m3", "4", "4", "m4")
        check_zset(d, "a")
        d.check("GEOADD", "a", "5", "5", "m5")
        check_zset(d, "a")
        d.check("GEOADD", "b", "1", "1", "short", "2", "2", "a-long-member-name")
        check_zset(d, "b")
        d.check("GEOADD", "c", "1", "1", "a-long-member-name", "2", "2", "x")
        check_zset(d, "c")
        d.check("GEOADD", "e", "XX", "1", "1", "a-long-member-name")
        d.check("CONFIG", "SET", "zset-max-listpack-entries", "0")
        d.check("GEOADD", "f", "1", "1", "x")
        check_zset(d, "f")
    finally:
        d.both("CONFIG", "SET", "zset-max-listpack-entries", "128")
        d.both("CONFIG", "SET", "zset-max-listpack-value", "64")


# =========================================================== GEOPOS GEOHASH GEODIST


def test_geopos_geohash(d):
    load(d)
    d.check("GEOPOS", "k", "Palermo", "nope", "Catania", "NYC", "Paris", "Palermo")
    d.check("GEOPOS", "k")
    d.check("GEOPOS", "nokey", "a", "b")
    d.check("GEOPOS", "nokey")
    d.check("GEOHASH", "k", "Palermo", "nope", "Catania", "NYC", "Paris", "edge1", "edge2")
    d.check("GEOHASH", "k")
    d.check("GEOHASH", "nokey", "a")
    d.check("SET", "str", "v")
    d.check("GEOPOS", "str", "a")
    d.check("GEOHASH", "str")
    d.check("GEOPOS")
    d.check("GEOHASH")


def test_geodist(d):
    load(d)
    for unit in ("m", "km", "ft", "mi", "M", "KM", "Ft", "mI", "km\0junk"):
        d.check("GEODIST", "k", "Palermo", "Catania", unit)
        d.check("GEODIST", "k", "NYC", "Paris", unit)
    d.check("GEODIST", "k", "Palermo", "Palermo")
    d.check("GEODIST", "k", "Palermo", "nope")
    d.check("GEODIST", "k", "nope", "Palermo", "km")
    d.check("GEODIST", "nokey", "a", "b")
    d.check("GEODIST", "nokey", "a", "b", "furlong")  # the unit is checked first
    d.check("GEODIST", "k", "Palermo", "Catania", "furlong")
    d.check("GEODIST", "k", "Palermo", "Catania", "")
    d.check("GEODIST", "k", "Palermo", "Catania", "km", "extra")
    d.check("GEODIST", "k", "Palermo")
    d.check("SET", "str", "v")
    d.check("GEODIST", "str", "a", "b")
    d.check("GEODIST", "str", "a", "b", "parsec")


def test_foreign_scores(d):
    """A sorted set written by ZADD: scores decode as Redis's casts make them."""
    d.check("ZADD", "z", "-5", "neg", "1e30", "huge", "inf", "inf", "-inf", "ninf", "0.5", "half",
            "4503599627370496", "p52", "9.3e18", "big", "-1e19", "nbig", "1000.7", "frac", "3e19", "over")
    members = ["neg", "huge", "inf", "ninf", "half", "p52", "big", "nbig", "frac", "over"]
    d.check("GEOPOS", "z", *members)
    d.check("GEOHASH", "z", *members)
    d.check("GEODIST", "z", "neg", "frac")
    d.check("GEODIST", "z", "half", "frac", "km")
    d.check("GEOSEARCH", "z", "FROMLONLAT", "-180", LAT_MIN, "BYRADIUS", "100", "km", "WITHHASH", "WITHCOORD",
            "WITHDIST", "ASC")
    d.check("GEOSEARCH", "z", "FROMMEMBER", "frac", "BYBOX", "500", "500", "km", "WITHHASH")
    d.check("GEORADIUSBYMEMBER", "z", "neg", "10", "km", "WITHHASH", "WITHCOORD")


# ================================================================= searches


def test_geosearch_options(d):
    load(d)
    base = ("GEOSEARCH", "k", "FROMLONLAT", "15", "37")
    for shape in (("BYRADIUS", "200", "km"), ("BYRADIUS", "200000", "M"), ("BYBOX", "400", "400", "km"),
                  ("BYBOX", "1", "1", "km"), ("BYRADIUS", "0", "m"), ("BYRADIUS", "1000", "mi"),
                  ("BYRADIUS", "inf", "ft"), ("BYBOX", "inf", "10", "km"), ("BYRADIUS", "20000", "km")):
        for opts in ((), ("ASC",), ("DESC",), ("WITHDIST",), ("WITHCOORD", "WITHHASH"),
                     ("WITHDIST", "WITHHASH", "WITHCOORD", "DESC"), ("COUNT", "1"), ("COUNT", "2", "DESC"),
                     ("COUNT", "1", "ANY"), ("COUNT", "100", "ANY", "ASC", "WITHDIST"), ("asc", "desc"),
                     ("withdist", "WithDist", "count", "3", "count", "2")):
            d.check(*base, *shape, *opts)
    d.check("GEOSEARCH", "k", "FROMMEMBER", "Palermo", "BYRADIUS", "200", "km", "WITHDIST")
    d.check("GEOSEARCH", "k", "FROMMEMBER", "NYC", "BYBOX", "12000", "12000", "km", "WITHDIST", "ASC")
    d.check("GEOSEARCH", "k", "BYRADIUS", "200", "km", "FROMMEMBER", "Catania")
    d.check("GEOSEARCH", "k", "FROMMEMBER", "Palermo", "FROMMEMBER", "Catania", "BYRADIUS", "100", "km")
    d.check("GEOSEARCH", "k", "BYRADIUS", "1", "km", "BYRADIUS", "300", "km", "FROMLONLAT", "15", "37")
    d.check("GEOSEARCH", "k", "frommember", "Palermo", "bybox", "1", "1", "KM")
    d.check("GEOSEARCH", "k", "FROMLONLAT", "180", LAT_MAX, "BYRADIUS", "20000", "km")
    d.check("GEOSEARCH", "k", "FROMLONLAT", "-180", LAT_MIN, "BYBOX", "40000", "40000", "km", "DESC")
    d.check("GEOSEARCH", "nokey", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km")
    d.check("GEOSEARCH", "nokey", "FROMMEMBER", "nope", "BYRADIUS", "200", "km")


def test_geosearch_errors(d):
    load(d)
    d.check("SET", "str", "v")
    cases = [
        ("GEOSEARCH", "k", "FROMLONLAT", "15", "37"),
        ("GEOSEARCH", "k", "FROMLONLAT", "15", "37", "WITHDIST"),
        ("GeoSearch", "k", "FROMLONLAT", "15", "37", "WITHDIST", "ASC"),
        ("GEOSEARCH", "k", "BYRADIUS", "1", "km", "ASC"),
        ("GeoSearch", "k", "BYRADIUS", "1", "km", "WITHHASH"),
        ("GEOSEARCH", "k", "FROMLONLAT", "200", "37", "BYRADIUS", "1", "km"),
        ("GEOSEARCH", "k", "FROMLONLAT", "x", "37", "BYRADIUS", "1", "km"),
        ("GEOSEARCH", "k", "FROMMEMBER", "nope", "BYRADIUS", "1", "km"),
        ("GEOSEARCH", "k", "FROMMEMBER", "Palermo", "FROMLONLAT", "1", "2", "BYRADIUS", "1", "km"),
        ("GEOSEARCH", "k", "FROMLONLAT", "1", "2", "FROMMEMBER", "Palermo", "BYRADIUS", "1", "km"),
        ("GEOSEARCH", "k", "FROMLONLAT", "1", "2", "BYRADIUS", "1", "km", "BYBOX", "1", "1", "km"),
        ("GEOSEARCH", "k", "FROMLONLAT", "1", "2", "BYBOX", "1", "1", "km", "BYRADIUS", "1", "km"),
        ("GEOSEARCH", "k", "FROMLONLAT", "1", "2", "BYRADIUS", "-1", "km"),
        ("GEOSEARCH", "k", "FROMLONLAT", "1", "2", "BYRADIUS", "x", "km"),
        ("GEOSEARCH", "k", "FROMLONLAT", "1", "2", "BYRADIUS", "nan", "km"),
        ("GEOSEARCH", "k", "FROMLONLAT", "1", "2", "BYRADIUS", "1", "yards"),
        ("GEOSEARCH", "k", "FROMLONLAT", "1", "2", "BYBOX", "-1", "1", "km"),
        ("GEOSEARCH", "k", "FROMLONLAT", "1", "2", "BYBOX", "1", "-1", "km"),
        ("GEOSEARCH", "k", "FROMLONLAT", "1", "2", "BYBOX", "x", "-1", "km"),
        ("GEOSEARCH", "k", "FROMLONLAT", "1", "2", "BYBOX", "-1", "x", "km"),
        ("GEOSEARCH", "k", "FROMLONLAT", "1", "2", "BYBOX", "1", "1", "yards"),
        ("GEOSEARCH", "k", "FROMLONLAT", "1", "2", "BYBOX", "1", "1"),
        ("GEOSEARCH", "k", "FROMLONLAT", "1", "2", "BYRADIUS", "1"),
        ("GEOSEARCH", "k", "FROMLONLAT", "1", "2", "BYRADIUS", "1", "km", "COUNT", "0"),
        ("GEOSEARCH", "k", "FROMLONLAT", "1", "2", "BYRADIUS", "1", "km", "COUNT", "-3"),
        ("GEOSEARCH", "k", "FROMLONLAT", "1", "2", "BYRADIUS", "1", "km", "COUNT", "x"),
        ("GEOSEARCH", "k", "FROMLONLAT", "1", "2", "BYRADIUS", "1", "km", "COUNT"),
        ("GEOSEARCH", "k", "FROMLONLAT", "1", "2", "BYRADIUS", "1", "km", "ANY"),
        ("GEOSEARCH", "k", "FROMLONLAT", "1", "2", "BYRADIUS", "1", "km", "STORE", "x"),
        ("GEOSEARCH", "k", "FROMLONLAT", "1", "2", "BYRADIUS", "1", "km", "STOREDIST"),
        ("GEOSEARCH", "k", "FROMLONLAT", "1", "2", "BYRADIUS", "1", "km", "bogus"),
        ("GEOSEARCH", "k", "FROMLONLAT", "1", "2", "BYRADIUS", "1", "km", "FROMMEMBER"),
        ("GEOSEARCH", "str", "FROMLONLAT", "200", "2", "BYRADIUS", "1", "km"),  # WRONGTYPE wins
        ("GEOSEARCH", "nokey", "FROMLONLAT", "200", "2", "BYRADIUS", "1", "km"),
        ("GEOSEARCH", "nokey", "FROMLONLAT", "1", "2", "BYRADIUS", "-1", "km"),
        ("GEOSEARCH", "nokey", "FROMMEMBER", "x", "BYRADIUS", "1", "km", "ANY"),
        ("GEOSEARCH", "nokey", "FROMMEMBER", "x", "WITHDIST", "COUNT", "2"),
        ("GEOSEARCH", "k", "FROMLONLAT", "1", "2", "BYRADIUS"),
    ]
    for argv in cases:
        d.check(*argv)


def test_geosearchstore(d):
    load(d)
    d.check("GEOSEARCHSTORE", "dst", "k", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km")
    check_zset(d, "dst")
    d.check("GEOSEARCHSTORE", "dst", "k", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km", "STOREDIST")
    check_zset(d, "dst")
    d.check("GEOSEARCHSTORE", "dst", "k", "FROMLONLAT", "15", "37", "BYBOX", "1000", "1000", "mi", "STOREDIST",
            "COUNT", "2", "DESC")
    check_zset(d, "dst")
    d.check("GEOSEARCHSTORE", "dst", "k", "FROMMEMBER", "Paris", "BYRADIUS", "3000", "km", "COUNT", "1", "ANY")
    check_zset(d, "dst")
    # The destination loses its TTL, and any type is overwritten.
    d.check("SET", "str", "v", "EX", "100")
    d.check("GEOSEARCHSTORE", "str", "k", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km")
    d.check("TTL", "str")
    check_zset(d, "str")
    # No result: the destination is deleted.
    d.check("GEOSEARCHSTORE", "str", "k", "FROMLONLAT", "0", "0", "BYRADIUS", "1", "km")
    d.check("EXISTS", "str")
    d.check("SET", "str2", "v")
    d.check("GEOSEARCHSTORE", "str2", "nokey", "FROMLONLAT", "0", "0", "BYRADIUS", "1", "km")
    d.check("EXISTS", "str2")
    d.check("GEOSEARCHSTORE", "str2", "nokey", "FROMMEMBER", "x", "BYRADIUS", "1", "km")
    # The source itself as destination.
    d.check("GEOSEARCHSTORE", "k", "k", "FROMMEMBER", "Palermo", "BYRADIUS", "100", "km")
    check_zset(d, "k")
    d.check("SET", "s", "v")
    for argv in [
        ("GEOSEARCHSTORE", "dst", "s", "FROMLONLAT", "0", "0", "BYRADIUS", "1", "km"),
        ("GEOSEARCHSTORE", "dst", "k", "FROMLONLAT", "0", "0", "BYRADIUS", "1", "km", "WITHDIST"),
        ("GEOSEARCHSTORE", "dst", "k", "FROMLONLAT", "0", "0", "BYRADIUS", "1", "km", "WITHHASH", "STOREDIST"),
        ("GEOSEARCHSTORE", "dst", "nokey", "FROMLONLAT", "0", "0", "BYRADIUS", "1", "km", "WITHCOORD"),
        ("GEOSEARCHSTORE", "dst", "k", "FROMLONLAT", "0", "0", "BYRADIUS", "1", "km", "STORE", "x"),
        ("GEOSEARCHSTORE", "dst", "k", "FROMLONLAT", "0", "0", "STOREDIST"),
        ("geosearchSTORE", "dst", "k", "BYRADIUS", "1", "km", "STOREDIST"),
        ("GEOSEARCHSTORE", "dst", "k", "FROMLONLAT", "0", "0", "BYRADIUS", "1", "km", "ANY"),
        ("GEOSEARCHSTORE", "dst", "k", "FROMLONLAT", "0", "0", "BYRADIUS", "1"),
    ]:
        d.check(*argv)


def test_georadius_family(d):
    load(d)
    for cmd, center in (("GEORADIUS", ("15", "37")), ("GEORADIUS_RO", ("15", "37")),
                        ("GEORADIUSBYMEMBER", ("Palermo",)), ("GEORADIUSBYMEMBER_RO", ("Palermo",))):
        for opts in ((), ("WITHDIST",), ("WITHDIST", "WITHHASH", "WITHCOORD", "ASC"), ("DESC", "COUNT", "2"),
                     ("COUNT", "1", "ANY"), ("COUNT", "2", "ANY", "DESC")):
            d.check(cmd, "k", *center, "200", "km", *opts)
            d.check(cmd, "k", *center, "6000", "mi", *opts)
        d.check(cmd, "k", *center, "-1", "km")
        d.check(cmd, "k", *center, "x", "km")
        d.check(cmd, "k", *center, "1", "lightyear")
        d.check(cmd, "k", *center, "1", "km", "COUNT", "0")
        d.check(cmd, "k", *center, "1", "km", "ANY")
        d.check(cmd, "k", *center, "1", "km", "FROMLONLAT", "1", "2")
        d.check(cmd, "k", *center, "1", "km", "BYRADIUS", "1", "km")
        d.check(cmd, "k", *center, "1", "km", "STORE")
        d.check(cmd, "nokey", *center, "1", "km")
    d.check("GEORADIUSBYMEMBER", "k", "nope", "1", "km")
    d.check("GEORADIUSBYMEMBER", "k", "nope", "-1", "km")
    d.check("GEORADIUSBYMEMBER", "nokey", "nope", "-1", "furlong")  # nothing to decode: the options only
    d.check("GEORADIUSBYMEMBER", "nokey", "nope", "-1", "furlong", "bogus")
    d.check("GEORADIUSBYMEMBER", "nokey", "nope", "-1", "furlong", "STORE", "dst")
    d.check("GEORADIUS", "k", "200", "37", "1", "km")
    d.check("GEORADIUS", "nokey", "200", "37", "1", "km")
    d.check("GEORADIUS", "nokey", "15", "37", "-1", "km")
    d.check("SET", "str", "v")
    d.check("GEORADIUS", "str", "200", "37", "1", "km")
    d.check("GEORADIUSBYMEMBER", "str", "x", "1", "km")
    d.check("GEORADIUS_RO", "str", "15", "37", "1", "km")


def test_georadius_store(d):
    load(d)
    d.check("GEORADIUS", "k", "15", "37", "200", "km", "STORE", "dst")
    check_zset(d, "dst")
    d.check("GEORADIUS", "k", "15", "37", "200", "km", "STOREDIST", "dst")
    check_zset(d, "dst")
    d.check("GEORADIUS", "k", "15", "37", "200", "km", "STOREDIST", "a", "STORE", "b")  # the last one wins
    d.check("EXISTS", "a", "b")
    check_zset(d, "b")
    d.check("GEORADIUS", "k", "15", "37", "200", "km", "STORE", "a", "STOREDIST", "c", "COUNT", "1")
    check_zset(d, "c")
    d.check("GEORADIUSBYMEMBER", "k", "Paris", "10000", "km", "STORE", "dst", "DESC", "COUNT", "3")
    check_zset(d, "dst")
    d.check("GEORADIUSBYMEMBER", "k", "Paris", "1", "km", "STOREDIST", "dst")
    d.check("GEORADIUSBYMEMBER", "k", "Paris", "0", "km", "STOREDIST", "dst")
    check_zset(d, "dst")
    d.check("GEORADIUS", "k", "0", "0", "1", "km", "STORE", "dst")  # no result: deleted
    d.check("EXISTS", "dst")
    d.check("GEORADIUS", "nokey", "0", "0", "1", "km", "STORE", "dst")
    d.check("GEORADIUS", "k", "15", "37", "200", "km", "STORE", "dst", "WITHDIST")
    d.check("GEORADIUS", "k", "15", "37", "200", "km", "WITHCOORD", "STOREDIST", "dst")
    d.check("GEORADIUS", "nokey", "15", "37", "200", "km", "WITHHASH", "STORE", "dst")
    d.check("GEORADIUS_RO", "k", "15", "37", "200", "km", "STORE", "dst")
    d.check("GEORADIUSBYMEMBER_RO", "k", "Palermo", "200", "km", "STOREDIST", "dst")


def test_arity(d):
    for argv in [("GEOADD", "k", "1", "2"), ("GEOPOS",), ("GEODIST", "k", "a"), ("GEOHASH",),
                 ("GEOSEARCH", "k", "FROMLONLAT", "1", "2", "BYRADIUS"),
                 ("GEOSEARCHSTORE", "d", "k", "FROMLONLAT", "1", "2", "BYRADIUS"),
                 ("GEORADIUS", "k", "1", "2", "3"), ("GEORADIUS_RO", "k", "1", "2", "3"),
                 ("GEORADIUSBYMEMBER", "k", "m", "3"), ("GEORADIUSBYMEMBER_RO", "k", "m", "3")]:
        d.check(*argv)


def test_stored_result_encodings(d):
    many = [(str(10 + i * 0.001), str(10 + (i % 7) * 0.001), f"p{i}") for i in range(140)]
    load(d, "many", many)
    check_zset(d, "many")
    d.check("GEOSEARCHSTORE", "big", "many", "FROMLONLAT", "10", "10", "BYRADIUS", "500", "km")
    check_zset(d, "big")
    d.check("GEOSEARCHSTORE", "small", "many", "FROMLONLAT", "10", "10", "BYRADIUS", "500", "km", "COUNT", "128")
    check_zset(d, "small")
    d.check("GEOADD", "long", "1", "1", "m" * 65, "1.001", "1", "short")
    d.check("GEORADIUS", "long", "1", "1", "100", "km", "STORE", "dst")
    check_zset(d, "dst")
    d.check("GEORADIUS", "long", "1.001", "1", "10", "m", "STORE", "dst")
    check_zset(d, "dst")


def test_equal_distances_under_count(d):
    """Ties in distance under COUNT: Redis's partial quicksort decides their order."""
    places = []
    for i in range(60):
        # Few distinct positions, many members on each: many equal distances.
        spot = i % 4
        places.append((str(5 + spot * 0.01), str(5 + spot * 0.01), f"t{i:02d}"))
    load(d, "ties", places)
    for count in (1, 2, 3, 5, 6, 7, 8, 10, 20, 39, 41, 59, 60, 61):
        for order in ("ASC", "DESC"):
            d.check("GEOSEARCH", "ties", "FROMLONLAT", "5", "5", "BYRADIUS", "100", "km", "COUNT", count, order,
                    "WITHDIST")
            d.check("GEOSEARCH", "ties", "FROMMEMBER", "t03", "BYBOX", "100", "100", "km", "COUNT", count, order)
        d.check("GEORADIUS", "ties", "5", "5", "100", "km", "COUNT", count)
    # Found by hypothesis: a partition pass that swaps nothing. Redis 7.0's pqsort
    # no longer switches to insertion sort there, which picks p36, not p11.
    spots = {11: "2", 14: "2", 23: "3", 29: "2", 32: "2", 33: "2", 34: "1", 36: "2"}
    load(d, "nosw", [("0", spots.get(i, "0"), f"p{i}") for i in range(39)])
    for count in (1, 2, 6, 7, 30):
        d.check("GEOSEARCH", "nosw", "FROMLONLAT", "0", "2", "BYRADIUS", "1000", "km", "COUNT", count)
        d.check("GEOSEARCH", "nosw", "FROMLONLAT", "0", "2", "BYRADIUS", "1000", "km", "COUNT", count, "DESC")
    small = [("1", "1", f"s{i}") for i in range(6)] + [("1.001", "1", "x")]
    load(d, "small", small)
    for count in range(1, 8):
        d.check("GEOSEARCH", "small", "FROMLONLAT", "1", "1", "BYRADIUS", "10", "km", "COUNT", count, "DESC")
        d.check("GEOSEARCH", "small", "FROMLONLAT", "1.001", "1", "BYRADIUS", "10", "km", "COUNT", count)


def test_unsorted_order_is_redis_scan_order(d):
    """Without ASC/DESC the reply lists points as Redis finds them, cell by cell."""
    rng = random.Random(3)
    places = [(repr(rng.uniform(-1, 1)), repr(rng.uniform(-1, 1)), f"u{i}") for i in range(200)]
    load(d, "u", places)
    for radius in ("1", "10", "50", "100", "150", "500"):
        d.check("GEOSEARCH", "u", "FROMLONLAT", "0.1", "-0.2", "BYRADIUS", radius, "km")
        d.check("GEOSEARCH", "u", "FROMLONLAT", "0.1", "-0.2", "BYBOX", radius, radius, "km", "WITHHASH")
        d.check("GEOSEARCH", "u", "FROMLONLAT", "0.1", "-0.2", "BYRADIUS", radius, "km", "COUNT", "5", "ANY")


def test_around_the_antimeridian_and_poles(d):
    places = [("179.9", "0", "e1"), ("-179.9", "0", "w1"), ("180", "0.1", "e2"), ("-180", "-0.1", "w2"),
              ("0", LAT_MAX, "n1"), ("90", "85", "n2"), ("-90", "84.9", "n3"), ("0", LAT_MIN, "s1"),
              ("120", "-85", "s2")]
    load(d, "w", places)
    for center in (("180", "0"), ("-180", "0"), ("0", LAT_MAX), ("0", LAT_MIN), ("179.99", "0.05")):
        for shape in (("BYRADIUS", "50", "km"), ("BYRADIUS", "1000", "km"), ("BYBOX", "100", "100", "km"),
                      ("BYBOX", "5000", "300", "km")):
            d.check("GEOSEARCH", "w", "FROMLONLAT", *center, *shape, "WITHDIST", "WITHCOORD")
            d.check("GEOSEARCH", "w", "FROMLONLAT", *center, *shape, "DESC", "COUNT", "3")


# ======================================== events, dirty counter, hits/misses


EVENT_SCRIPT = [
    ("GEOADD", "k", "13.361389", "38.115556", "Palermo", "15.087269", "37.502669", "Catania"),
    ("GEOADD", "k", "13.361389", "38.115556", "Palermo"),
    ("GEOADD", "k", "XX", "1", "1", "nope"),
    ("GEOADD", "k", "CH", "1", "1", "Palermo", "2", "2", "new"),
    ("GEOADD", "k", "500", "1", "bad"),
    ("GEOADD", "nokey", "XX", "1", "1", "a"),
    ("GEORADIUS", "k", "15", "37", "200", "km", "STORE", "d1"),
    ("GEORADIUS", "k", "15", "37", "200", "km", "STOREDIST", "d1"),
    ("GEORADIUSBYMEMBER", "k", "Catania", "1", "km", "STORE", "d1"),
    ("GEORADIUSBYMEMBER", "k", "Catania", "0", "km", "STORE", "d1"),
    ("GEOSEARCHSTORE", "d2", "k", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km"),
    ("GEOSEARCHSTORE", "d2", "k", "FROMLONLAT", "0", "0", "BYRADIUS", "1", "km"),
    ("GEOSEARCHSTORE", "d2", "k", "FROMLONLAT", "0", "0", "BYRADIUS", "1", "km"),
    ("SET", "str", "v"),
    ("GEOSEARCHSTORE", "str", "nokey", "FROMLONLAT", "0", "0", "BYRADIUS", "1", "km"),
    ("GEORADIUS", "nokey", "0", "0", "1", "km", "STORE", "k"),
    ("GEOSEARCH", "k", "FROMLONLAT", "0", "0", "BYRADIUS", "1", "km"),
    ("GEOPOS", "k", "Palermo"),
]


def test_keyspace_events(redis_proc, shoal_proc, differ):
    same_keyspace_events(redis_proc, shoal_proc, EVENT_SCRIPT)


def test_dirty_counts(redis_proc, shoal_proc, differ):
    same_counter_deltas(redis_proc, shoal_proc, EVENT_SCRIPT)


def test_keyspace_hits_and_misses(redis_proc, shoal_proc, differ):
    commands = EVENT_SCRIPT + [
        ("GEOHASH", "k", "a"), ("GEOHASH", "nokey", "a"), ("GEODIST", "k", "a", "b"), ("GEODIST", "nokey", "a", "b"),
        ("GEOPOS", "nokey", "a"), ("GEORADIUS_RO", "k", "0", "0", "1", "km"),
        ("GEORADIUSBYMEMBER_RO", "nokey", "a", "1", "km"),
    ]
    same_counter_deltas(redis_proc, shoal_proc, commands)


def test_inside_multi(d):
    load(d)
    d.check("MULTI")
    d.check("GEOADD", "k", "1", "1", "m")
    d.check("GEOSEARCH", "k", "FROMMEMBER", "m", "BYRADIUS", "10", "km", "WITHCOORD")
    d.check("GEOADD", "k", "500", "1", "bad")
    d.check("EXEC")


def test_from_lua(d):
    """Scripts see coordinates as bulk strings (RESP2) or doubles (RESP3), distances as strings."""
    load(d)
    for resp in ("2", "3"):
        script = (f"redis.setresp({resp}); return {{redis.call('GEOPOS', KEYS[1], 'Palermo', 'nope'), "
                  "redis.call('GEODIST', KEYS[1], 'Palermo', 'Catania'), "
                  "redis.call('GEOSEARCH', KEYS[1], 'FROMMEMBER', 'Palermo', 'BYRADIUS', 200, 'km', "
                  "'WITHCOORD', 'WITHDIST', 'WITHHASH', 'ASC')}")
        d.check("EVAL", script, 1, "k")


# ==================================================== hypothesis: random searches


_lon = st.floats(min_value=-180, max_value=180, allow_nan=False)
_lat = st.floats(min_value=-85.05112878, max_value=85.05112878, allow_nan=False)
_unit = st.sampled_from(["m", "km", "ft", "mi", "KM", "Mi"])


@st.composite
def _scenario(draw):
    center = (draw(_lon), draw(_lat))
    spread = 10 ** draw(st.floats(min_value=-4, max_value=2.5))
    n = draw(st.integers(1, 40))
    rnd = draw(st.randoms(use_true_random=False))
    points = []
    for i in range(n):
        if points and rnd.random() < 0.15:
            lon, lat = rnd.choice(points)[:2]  # same spot as another member: equal distances
        elif rnd.random() < 0.1:
            lon, lat = draw(_lon), draw(_lat)
        else:
            lon = min(180.0, max(-180.0, center[0] + rnd.uniform(-spread, spread)))
            lat = min(85.05112878, max(-85.05112878, center[1] + rnd.uniform(-spread, spread)))
        points.append((lon, lat, f"p{i}"))
    unit = draw(_unit)
    factor = gh.UNITS[unit.lower().encode()]
    size_m = 10 ** draw(st.floats(min_value=-1, max_value=7.3))
    if draw(st.booleans()):
        shape = ("BYRADIUS", repr(size_m / factor), unit)
    else:
        ratio = 10 ** draw(st.floats(min_value=-1.5, max_value=1.5))
        shape = ("BYBOX", repr(size_m / factor), repr(size_m * ratio / factor), unit)
    if draw(st.booleans()):
        origin = ("FROMMEMBER", draw(st.sampled_from(points))[2])
    else:
        jitter = spread * draw(st.floats(min_value=-1, max_value=1))
        lon = min(180.0, max(-180.0, center[0] + jitter))
        origin = ("FROMLONLAT", repr(lon), repr(center[1]))
    opts = []
    order = draw(st.sampled_from([None, "ASC", "DESC"]))
    if order:
        opts.append(order)
    if draw(st.booleans()):
        opts += ["COUNT", str(draw(st.integers(1, 45)))]
        if draw(st.booleans()):
            opts.append("ANY")
    withs = draw(st.lists(st.sampled_from(["WITHDIST", "WITHHASH", "WITHCOORD"]), unique=True, max_size=3))
    return points, origin, shape, opts, withs


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(scenario=_scenario(), resp3=st.booleans())
def test_random_searches(differ, differ3, scenario, resp3):
    d = ArgsDiffer(differ3 if resp3 else differ)
    points, origin, shape, opts, withs = scenario
    d.both("FLUSHALL")
    argv = ["GEOADD", "g"]
    for lon, lat, name in points:
        argv += [repr(lon), repr(lat), name]
    d.check(*argv)
    found = parse(d.check("GEOSEARCH", "g", *origin, *shape, *opts, *withs))
    event("results: none" if not found else "results: all" if len(found) == len(points) else "results: some")
    d.check("GEOSEARCHSTORE", "dst", "g", *origin, *shape, *opts, "STOREDIST")
    d.check("ZRANGE", "dst", 0, -1, "WITHSCORES")
    d.check("GEOSEARCHSTORE", "dst", "g", *origin, *shape, *opts)
    d.check("ZRANGE", "dst", 0, -1, "WITHSCORES")
    if shape[0] == "BYRADIUS":
        if origin[0] == "FROMMEMBER":
            d.check("GEORADIUSBYMEMBER", "g", origin[1], *shape[1:], *opts, *withs)
        else:
            d.check("GEORADIUS_RO", "g", *origin[1:], *shape[1:], *opts, *withs)
    a, b = points[0][2], points[-1][2]
    d.check("GEODIST", "g", a, b, shape[-1])
    d.check("GEOPOS", "g", a, b)
    d.check("GEOHASH", "g", a, b)
