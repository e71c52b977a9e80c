"""Redis's geohash arithmetic, exactly: GEO* commands store a point as a sorted-set score.

A point is a 52-bit interleaved geohash (26 bits of longitude on the odd bit
positions, 26 bits of latitude on the even ones), computed over Redis's
ranges: longitude -180..180 and latitude -85.05112878..85.05112878 (the
limits of Web Mercator, EPSG:900913). Decoding gives the centre of the cell,
so a stored point comes back slightly moved -- by the same amount as in Redis,
since every step below performs the same IEEE double operations in the same
order as ``src/geohash.c`` / ``src/geohash_helper.c`` (and Python's ``math``
calls the same libm).

What is here:

* ``encode`` / ``decode_area`` / ``score_to_lonlat``: the hash itself;
  ``score_to_bits`` turns a sorted-set score back into the 64-bit integer the
  way C's ``(uint64_t)double`` does on x86-64, so scores that were not written
  by GEOADD (ZADD on a geo key) decode to what Redis shows;
* ``geohash_string``: GEOHASH's 11-character base32 text (re-encoded over the
  standard -90..90 latitude range, last character always '0');
* ``distance``: haversine over Redis's earth radius 6372797.560856 m;
* ``search_areas``: the centre cell plus its 8 neighbours that cover a circle
  or box search (``geohashCalculateAreasByShapeWGS84``), as score ranges, in
  Redis's scan order with the same cells dropped;
* ``in_radius`` / ``in_box``: the per-point filters, returning the distance;
  ``collect_points``: decode + filter unrolled over a run of (member, score)
  pairs, the hot loop of every search;
* ``UNITS``: the unit -> metres factors; ``format_distance`` (``%.4f``) and
  ``format_coordinate`` (``%.17Lf`` without trailing zeros, Redis's "human"
  long double text);
* ``partial_sort``: Redis's ``pqsort`` (NetBSD qsort that only finishes the
  wanted range), needed to order equal distances as Redis does under COUNT.

Pure: no I/O, no clock, no trio.
"""

from __future__ import annotations

import math

__all__ = [
    "EARTH_RADIUS_IN_METERS", "GEO_LAT_MAX", "GEO_LAT_MIN", "GEO_LONG_MAX", "GEO_LONG_MIN", "GEO_STEP_MAX",
    "UNITS", "align52", "bounding_box", "collect_points", "decode_area", "deinterleave", "distance", "encode",
    "estimate_steps", "format_coordinate", "format_distance", "geohash_string", "in_box", "in_radius",
    "interleave", "partial_sort", "score_to_bits", "score_to_lonlat", "search_areas",
]

GEO_STEP_MAX = 26
GEO_LAT_MIN = -85.05112878
GEO_LAT_MAX = 85.05112878
GEO_LONG_MIN = -180.0
GEO_LONG_MAX = 180.0

EARTH_RADIUS_IN_METERS = 6372797.560856
MERCATOR_MAX = 20037726.37
_D_R = math.pi / 180.0
_TWO_R = 2.0 * EARTH_RADIUS_IN_METERS  # C folds "2.0 * EARTH_RADIUS_IN_METERS * asin(...)" the same way
_fsin, _fcos, _fasin, _fsqrt = math.sin, math.cos, math.asin, math.sqrt

#: Unit name (lower case) -> metres per unit.
UNITS = {b"m": 1.0, b"km": 1000.0, b"ft": 0.3048, b"mi": 1609.34}

_U64 = (1 << 64) - 1
_TWO63 = float(1 << 63)
_NAN = float("nan")


# ------------------------------------------------------------ C libm, no exceptions
# Python's math raises where C returns NaN (cos(inf), asin(1+ulp), sqrt(-x)).

def _sin(x: float) -> float:
    try:
        return math.sin(x)
    except ValueError:
        return _NAN


def _cos(x: float) -> float:
    try:
        return math.cos(x)
    except ValueError:
        return _NAN


def _asin(x: float) -> float:
    try:
        return math.asin(x)
    except ValueError:
        return _NAN


def _sqrt(x: float) -> float:
    try:
        return math.sqrt(x)
    except ValueError:
        return _NAN


# ---------------------------------------------------------------- bit shuffling

def interleave(xlo: int, ylo: int) -> int:
    """Spread ``xlo`` on the even bits and ``ylo`` on the odd bits (both < 2**32)."""
    x, y = xlo, ylo
    x = (x | (x << 16)) & 0x0000FFFF0000FFFF
    y = (y | (y << 16)) & 0x0000FFFF0000FFFF
    x = (x | (x << 8)) & 0x00FF00FF00FF00FF
    y = (y | (y << 8)) & 0x00FF00FF00FF00FF
    x = (x | (x << 4)) & 0x0F0F0F0F0F0F0F0F
    y = (y | (y << 4)) & 0x0F0F0F0F0F0F0F0F
    x = (x | (x << 2)) & 0x3333333333333333
    y = (y | (y << 2)) & 0x3333333333333333
    x = (x | (x << 1)) & 0x5555555555555555
    y = (y | (y << 1)) & 0x5555555555555555
    return x | ((y << 1) & _U64)


def deinterleave(bits: int) -> tuple[int, int]:
    """Inverse of ``interleave`` over 64 bits: (even bits, odd bits) as 32-bit integers."""
    x = bits
    y = bits >> 1
    x &= 0x5555555555555555
    y &= 0x5555555555555555
    x = (x | (x >> 1)) & 0x3333333333333333
    y = (y | (y >> 1)) & 0x3333333333333333
    x = (x | (x >> 2)) & 0x0F0F0F0F0F0F0F0F
    y = (y | (y >> 2)) & 0x0F0F0F0F0F0F0F0F
    x = (x | (x >> 4)) & 0x00FF00FF00FF00FF
    y = (y | (y >> 4)) & 0x00FF00FF00FF00FF
    x = (x | (x >> 8)) & 0x0000FFFF0000FFFF
    y = (y | (y >> 8)) & 0x0000FFFF0000FFFF
    x = (x | (x >> 16)) & 0x00000000FFFFFFFF
    y = (y | (y >> 16)) & 0x00000000FFFFFFFF
    return x, y


# ------------------------------------------------------------------ encode/decode

def encode(longitude: float, latitude: float, step: int = GEO_STEP_MAX,
           lat_min: float = GEO_LAT_MIN, lat_max: float = GEO_LAT_MAX) -> int | None:
    """The ``step``-precision geohash bits of a point (``geohashEncode``); None where Redis fails.

    Longitude is always over -180..180; the latitude range defaults to Redis's
    Mercator limits (GEOHASH re-encodes over -90..90). The point must be within
    Redis's limits whatever the range.
    """
    if step > 32 or step == 0:
        return None
    if not (GEO_LONG_MIN <= longitude <= GEO_LONG_MAX and GEO_LAT_MIN <= latitude <= GEO_LAT_MAX):
        return None
    if not (lat_min <= latitude <= lat_max):
        return None
    lat_offset = (latitude - lat_min) / (lat_max - lat_min)
    long_offset = (longitude - GEO_LONG_MIN) / (GEO_LONG_MAX - GEO_LONG_MIN)
    scale = float(1 << step)
    lat_offset *= scale
    long_offset *= scale
    # C converts to uint32_t: truncation (the values are >= 0 and <= 2**step).
    return interleave(int(lat_offset), int(long_offset))


def align52(bits: int, step: int) -> int:
    """``geohashAlign52Bits``: a ``step``-precision hash shifted to the 52-bit score scale."""
    return (bits << (52 - step * 2)) & _U64


def decode_area(bits: int, step: int) -> tuple[float, float, float, float]:
    """The cell of a hash: (lon_min, lon_max, lat_min, lat_max) over Redis's ranges."""
    ilato, ilono = deinterleave(bits)
    lat_scale = GEO_LAT_MAX - GEO_LAT_MIN
    long_scale = GEO_LONG_MAX - GEO_LONG_MIN
    div = float(1 << step)
    return (
        GEO_LONG_MIN + (ilono * 1.0 / div) * long_scale,
        GEO_LONG_MIN + ((ilono + 1) * 1.0 / div) * long_scale,
        GEO_LAT_MIN + (ilato * 1.0 / div) * lat_scale,
        GEO_LAT_MIN + ((ilato + 1) * 1.0 / div) * lat_scale,
    )


def score_to_bits(score: float) -> int:
    """C's ``(uint64_t)score`` as gcc compiles it on x86-64 (cvttsd2si, with the 2**63 split).

    Out-of-range values give what the instruction gives: the "integer
    indefinite" 0x8000000000000000 below -2**63 (and for -inf / NaN), 0 from
    2**64 up (and for +inf); negatives in range wrap around.
    """
    if score != score:
        return 1 << 63
    if score < _TWO63:
        if score <= -_TWO63 - 1024.0 or score == -math.inf:
            return 1 << 63
        return int(score) & _U64
    rest = score - _TWO63
    if rest >= _TWO63:  # includes +inf
        return 0
    return int(rest) ^ (1 << 63)


def score_to_lonlat(score: float) -> tuple[float, float]:
    """GEOPOS's coordinates for a stored score: the centre of its cell, clamped to the limits."""
    lon_min, lon_max, lat_min, lat_max = decode_area(score_to_bits(score), GEO_STEP_MAX)
    lon = (lon_min + lon_max) / 2
    if lon > GEO_LONG_MAX:
        lon = GEO_LONG_MAX
    if lon < GEO_LONG_MIN:
        lon = GEO_LONG_MIN
    lat = (lat_min + lat_max) / 2
    if lat > GEO_LAT_MAX:
        lat = GEO_LAT_MAX
    if lat < GEO_LAT_MIN:
        lat = GEO_LAT_MIN
    return lon, lat


_BASE32 = b"0123456789bcdefghjkmnpqrstuvwxyz"


def geohash_string(score: float) -> bytes:
    """GEOHASH's 11-character text for a stored score (standard -90..90 latitude range)."""
    lon, lat = score_to_lonlat(score)
    bits = encode(lon, lat, GEO_STEP_MAX, -90.0, 90.0)
    if bits is None:  # cannot happen for decoded coordinates; Redis would print hash 0
        bits = 0
    out = bytearray(11)
    for i in range(10):
        out[i] = _BASE32[(bits >> (52 - (i + 1) * 5)) & 0x1F]
    out[10] = 0x30  # Redis has 52 bits only: the 11th character is always '0'
    return bytes(out)


# ------------------------------------------------------------------- distances

def distance(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Haversine great-circle distance in metres (``geohashGetDistance``)."""
    lat1r = lat1 * _D_R
    lon1r = lon1 * _D_R
    lat2r = lat2 * _D_R
    lon2r = lon2 * _D_R
    try:
        v = _fsin((lon2r - lon1r) / 2)
        if v == 0.0:
            # Same longitude: Redis 7.0 takes the plain latitude arc (geohashGetLatDistance),
            # which can differ from the haversine formula in the last digit.
            return EARTH_RADIUS_IN_METERS * abs(lat2r - lat1r)
        u = _fsin((lat2r - lat1r) / 2)
        return _TWO_R * _fasin(_fsqrt(u * u + _fcos(lat1r) * _fcos(lat2r) * v * v))
    except ValueError:  # infinities or an argument just past 1: C gives NaN where Python raises
        u = _sin((lat2r - lat1r) / 2)
        v = _sin((lon2r - lon1r) / 2)
        return _TWO_R * _asin(_sqrt(u * u + _cos(lat1r) * _cos(lat2r) * v * v))


def in_radius(lon: float, lat: float, x: float, y: float, radius_m: float) -> float | None:
    """Distance from the centre (lon, lat) to (x, y) if within ``radius_m``, else None."""
    d = distance(lon, lat, x, y)
    if d > radius_m:
        return None
    return d


def in_box(width_m: float, height_m: float, lon: float, lat: float, x: float, y: float) -> float | None:
    """Distance from the centre to (x, y) if inside the box (``geohashGetDistanceIfInRectangle``)."""
    lon_distance = distance(x, y, lon, y)
    lat_distance = distance(x, y, x, lat)
    if lon_distance > width_m / 2 or lat_distance > height_m / 2:
        return None
    return distance(lon, lat, x, y)


def collect_points(pairs, found: list, limit: int, lon: float, lat: float, radius_m: float | None = None,
                   width_m: float = 0.0, height_m: float = 0.0) -> bool:
    """Append to ``found`` the points of ``pairs`` ((member, score), in score order) inside the shape.

    The shape is a circle of ``radius_m`` metres around (lon, lat), or else a
    ``width_m`` x ``height_m`` box. Each point appended is
    ``[distance, score, member, longitude, latitude]``, the coordinates decoded
    from the score. With a ``limit`` (COUNT ... ANY) the scan stops once
    ``found`` holds that many; returns True when it stopped for that reason.

    This is ``score_to_lonlat`` plus ``in_radius``/``in_box`` unrolled: the
    hot loop of every search, with the same floating-point operations.
    """
    append = found.append
    div = float(1 << GEO_STEP_MAX)
    lat_scale = GEO_LAT_MAX - GEO_LAT_MIN
    long_scale = GEO_LONG_MAX - GEO_LONG_MIN
    circle = radius_m is not None
    if circle:
        lat1r = lat * _D_R
        lon1r = lon * _D_R
        try:
            cos1 = _fcos(lat1r)
        except ValueError:
            cos1 = _NAN
    for member, score in pairs:
        bits = int(score) if 0.0 <= score < _TWO63 else score_to_bits(score)
        # deinterleave: latitude index on the even bits, longitude on the odd ones
        ilat = bits & 0x5555555555555555
        ilon = (bits >> 1) & 0x5555555555555555
        ilat = (ilat | (ilat >> 1)) & 0x3333333333333333
        ilon = (ilon | (ilon >> 1)) & 0x3333333333333333
        ilat = (ilat | (ilat >> 2)) & 0x0F0F0F0F0F0F0F0F
        ilon = (ilon | (ilon >> 2)) & 0x0F0F0F0F0F0F0F0F
        ilat = (ilat | (ilat >> 4)) & 0x00FF00FF00FF00FF
        ilon = (ilon | (ilon >> 4)) & 0x00FF00FF00FF00FF
        ilat = (ilat | (ilat >> 8)) & 0x0000FFFF0000FFFF
        ilon = (ilon | (ilon >> 8)) & 0x0000FFFF0000FFFF
        ilat = (ilat | (ilat >> 16)) & 0x00000000FFFFFFFF
        ilon = (ilon | (ilon >> 16)) & 0x00000000FFFFFFFF
        x = ((GEO_LONG_MIN + (ilon * 1.0 / div) * long_scale)
             + (GEO_LONG_MIN + ((ilon + 1) * 1.0 / div) * long_scale)) / 2
        if x > GEO_LONG_MAX:
            x = GEO_LONG_MAX
        if x < GEO_LONG_MIN:
            x = GEO_LONG_MIN
        y = ((GEO_LAT_MIN + (ilat * 1.0 / div) * lat_scale)
             + (GEO_LAT_MIN + ((ilat + 1) * 1.0 / div) * lat_scale)) / 2
        if y > GEO_LAT_MAX:
            y = GEO_LAT_MAX
        if y < GEO_LAT_MIN:
            y = GEO_LAT_MIN
        if circle:
            lat2r = y * _D_R
            u = _fsin((lat2r - lat1r) / 2)
            v = _fsin((x * _D_R - lon1r) / 2)
            try:
                if v == 0.0:  # same longitude: the latitude arc, as distance() explains
                    d = EARTH_RADIUS_IN_METERS * abs(lat2r - lat1r)
                else:
                    d = _TWO_R * _fasin(_fsqrt(u * u + cos1 * _fcos(lat2r) * v * v))
            except ValueError:
                d = _NAN
            if d > radius_m:
                continue
        else:
            d = in_box(width_m, height_m, lon, lat, x, y)
            if d is None:
                continue
        append([d, score, member, x, y])
        if limit and len(found) >= limit:
            return True
    return False


# --------------------------------------------------------------- area search

def estimate_steps(range_meters: float, lat: float) -> int:
    """``geohashEstimateStepsByRadius``: hash precision of the 9 search cells."""
    if range_meters == 0:
        return 26
    step = 1
    while range_meters < MERCATOR_MAX:
        range_meters *= 2
        step += 1
    step -= 2
    if lat > 66 or lat < -66:
        step -= 1
        if lat > 80 or lat < -80:
            step -= 1
    if step < 1:
        step = 1
    if step > 26:
        step = 26
    return step


def bounding_box(lon: float, lat: float, width_m: float, height_m: float) -> tuple[float, float, float, float]:
    """``geohashBoundingBox`` for half-sizes in metres: (min_lon, min_lat, max_lon, max_lat)."""
    lat_delta = (height_m / EARTH_RADIUS_IN_METERS) / _D_R
    long_delta_top = (width_m / EARTH_RADIUS_IN_METERS / _cos((lat + lat_delta) * _D_R)) / _D_R
    long_delta_bottom = (width_m / EARTH_RADIUS_IN_METERS / _cos((lat - lat_delta) * _D_R)) / _D_R
    if lat < 0:
        return lon - long_delta_bottom, lat - lat_delta, lon + long_delta_bottom, lat + lat_delta
    return lon - long_delta_top, lat - lat_delta, lon + long_delta_top, lat + lat_delta


def _move_x(bits: int, step: int, d: int) -> int:
    x = bits & 0xAAAAAAAAAAAAAAAA
    y = bits & 0x5555555555555555
    zz = 0x5555555555555555 >> (64 - step * 2)
    if d > 0:
        x = x + (zz + 1)
    else:
        x = (x | zz) - (zz + 1)
    x &= 0xAAAAAAAAAAAAAAAA >> (64 - step * 2)
    return x | y


def _move_y(bits: int, step: int, d: int) -> int:
    x = bits & 0xAAAAAAAAAAAAAAAA
    y = bits & 0x5555555555555555
    zz = 0xAAAAAAAAAAAAAAAA >> (64 - step * 2)
    if d > 0:
        y = y + (zz + 1)
    else:
        y = (y | zz) - (zz + 1)
    y &= 0x5555555555555555 >> (64 - step * 2)
    return x | y


def _neighbors(bits: int, step: int) -> list[int]:
    """north, south, east, west, north_east, north_west, south_east, south_west."""
    east = _move_x(bits, step, 1)
    west = _move_x(bits, step, -1)
    return [
        _move_y(bits, step, 1),
        _move_y(bits, step, -1),
        east,
        west,
        _move_y(east, step, 1),
        _move_y(west, step, 1),
        _move_y(east, step, -1),
        _move_y(west, step, -1),
    ]


def search_areas(lon: float, lat: float, conversion: float, radius: float | None = None,
                 width: float | None = None, height: float | None = None) -> list[tuple[int, int]]:
    """The sorted-set score ranges [min, max) to scan for a circle (``radius``) or a box.

    Sizes are in the user's unit, ``conversion`` metres per unit, as Redis
    keeps them. Ranges come in Redis's order (centre, N, S, E, W, NE, NW, SE,
    SW), without the cells Redis drops as outside the search and without a
    cell equal to the one scanned just before it (huge radii) -- but, as in
    Redis, a first neighbour equal to the centre cell is scanned again.
    """
    if radius is not None:
        half_h = half_w = conversion * radius
        radius_meters = radius
    else:
        half_h = conversion * (height / 2)
        half_w = conversion * (width / 2)
        radius_meters = _sqrt((width / 2) * (width / 2) + (height / 2) * (height / 2))
    radius_meters *= conversion
    min_lon, min_lat, max_lon, max_lat = bounding_box(lon, lat, half_w, half_h)

    steps = estimate_steps(radius_meters, lat)
    bits = encode(lon, lat, steps)
    neighbors = _neighbors(bits, steps)
    area = decode_area(bits, steps)

    # Is the step fine enough at the edges of the covered area? (Near a cell
    # border one of N/S/E/W may be too close to the search area.)
    north = decode_area(neighbors[0], steps)
    south = decode_area(neighbors[1], steps)
    east = decode_area(neighbors[2], steps)
    west = decode_area(neighbors[3], steps)
    decrease = (north[3] < max_lat or south[2] > min_lat or east[1] < max_lon or west[0] > min_lon)
    if steps > 1 and decrease:
        steps -= 1
        bits = encode(lon, lat, steps)
        neighbors = _neighbors(bits, steps)
        area = decode_area(bits, steps)

    cells: list[tuple[int, int] | None] = [(bits, steps)] + [(n, steps) for n in neighbors]
    if steps >= 2:
        a_lon_min, a_lon_max, a_lat_min, a_lat_max = area
        if a_lat_min < min_lat:  # drop south, south_west, south_east
            cells[2] = cells[8] = cells[7] = None
        if a_lat_max > max_lat:  # north, north_east, north_west
            cells[1] = cells[5] = cells[6] = None
        if a_lon_min < min_lon:  # west, south_west, north_west
            cells[4] = cells[8] = cells[6] = None
        if a_lon_max > max_lon:  # east, south_east, north_east
            cells[3] = cells[7] = cells[5] = None

    ranges = []
    last = 0
    for i, cell in enumerate(cells):
        if cell is None:
            continue
        if last and cell == cells[last]:
            continue
        cbits, cstep = cell
        ranges.append((align52(cbits, cstep), align52(cbits + 1, cstep)))
        last = i
    return ranges


# ------------------------------------------------------------------ formatting

def format_distance(d: float) -> bytes:
    """``%.4f`` as glibc prints it (a NaN keeps its sign)."""
    if d != d:
        return b"-nan" if math.copysign(1.0, d) < 0 else b"nan"
    return b"%.4f" % d


def format_coordinate(value: float) -> bytes:
    """Redis's human long double text (``ld2string`` LD_STR_HUMAN): ``%.17Lf`` minus trailing zeros."""
    if math.isinf(value):
        return b"inf" if value > 0 else b"-inf"
    text = b"%.17f" % value
    text = text.rstrip(b"0")
    if text.endswith(b"."):
        text = text[:-1]
    if text == b"-0":
        text = b"0"
    return text


# ------------------------------------------------------------------- ordering

def partial_sort(a: list, keys: list, lo: int, hi: int, reverse: bool = False) -> None:
    """Redis's ``pqsort(a, n, cmp, lo, hi)``: sort ``a`` in place enough that a[lo..hi] is final.

    A port of the NetBSD/Bentley-McIlroy quicksort Redis 7.0 ships (src/pqsort.c,
    without the old switch to insertion sort when a pass swapped nothing).
    ``keys[i]`` is the sort key of ``a[i]`` (both lists are permuted together);
    ``reverse`` negates the comparison, like Redis's ``sort_gp_desc``. It is
    not stable: which of several equal keys lands where is what Redis's own
    run gives.
    """
    sign = -1 if reverse else 1

    def cmp(i: int, j: int) -> int:
        ki, kj = keys[i], keys[j]
        return sign if ki > kj else (0 if ki == kj else -sign)

    def swap(i: int, j: int) -> None:
        a[i], a[j] = a[j], a[i]
        keys[i], keys[j] = keys[j], keys[i]

    def vecswap(i: int, j: int, n: int) -> None:
        for k in range(n):
            swap(i + k, j + k)

    def med3(x: int, y: int, z: int) -> int:
        if cmp(x, y) < 0:
            return y if cmp(y, z) < 0 else (z if cmp(x, z) < 0 else x)
        return y if cmp(y, z) > 0 else (x if cmp(x, z) < 0 else z)

    def insertion(base: int, n: int) -> None:
        for m in range(base + 1, base + n):
            p = m
            while p > base and cmp(p - 1, p) > 0:
                swap(p, p - 1)
                p -= 1

    def outside(base: int, n: int) -> bool:
        # Redis skips a part when both range ends fall on the same side of it.
        last = base + n - 1
        return (lo < base and hi < base) or (lo > last and hi > last)

    stack = [(0, len(a))]
    while stack:
        base, n = stack.pop()
        while True:
            if n < 7:
                insertion(base, n)
                break
            pm = base + n // 2
            if n > 7:
                pl = base
                pn = base + n - 1
                if n > 40:
                    d = n // 8
                    pl = med3(pl, pl + d, pl + 2 * d)
                    pm = med3(pm - d, pm, pm + d)
                    pn = med3(pn - 2 * d, pn - d, pn)
                pm = med3(pl, pm, pn)
            swap(base, pm)
            pa = pb = base + 1
            pc = pd = base + n - 1
            while True:
                while pb <= pc:
                    r = cmp(pb, base)
                    if r > 0:
                        break
                    if r == 0:
                        swap(pa, pb)
                        pa += 1
                    pb += 1
                while pb <= pc:
                    r = cmp(pc, base)
                    if r < 0:
                        break
                    if r == 0:
                        swap(pc, pd)
                        pd -= 1
                    pc -= 1
                if pb > pc:
                    break
                swap(pb, pc)
                pb += 1
                pc -= 1
            pn = base + n
            r = min(pa - base, pb - pa)
            vecswap(base, pb - r, r)
            r = min(pd - pc, pn - pd - 1)
            vecswap(pb, pn - r, r)
            r = pb - pa
            if r > 1 and not outside(base, r):
                # Redis recurses here and loops on the right part; the order of
                # the two does not matter, they are disjoint.
                stack.append((base, r))
            r = pd - pc
            if r > 1:
                base, n = pn - r, r
                if not outside(base, n):
                    continue
            break
