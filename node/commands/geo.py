"""Geo commands: GEOADD GEOPOS GEODIST GEOHASH GEOSEARCH GEOSEARCHSTORE GEORADIUS[BYMEMBER][_RO].

A geo index is a sorted set (``node.engine.zset.ZSet``) whose scores are
52-bit geohashes; the arithmetic lives in ``node.engine.geohash``. The
handlers follow Redis 7.0's ``src/geo.c`` step by step, because the order of
its checks decides which error a bad request gets: GEOADD validates every
coordinate before it looks at the key, GEORADIUS parses its centre before its
options, GEORADIUSBYMEMBER and GEOSEARCH FROMMEMBER skip the member (and
GEORADIUSBYMEMBER the radius) when the key does not exist...

Search results come in Redis's order: unsorted replies list points in the
order Redis finds them (the 9 cells in Redis's order, each in score order);
ASC/DESC sort stably by distance like glibc's merge-sort ``qsort``; under
COUNT, when equal distances make the order depend on the algorithm, Redis's
own partial quicksort (``pqsort``) is replayed.

Coordinates are printed like Redis's ``addReplyHumanLongDouble`` (``%.17Lf``
without trailing zeros), as a bulk string in RESP2 and a double in RESP3;
distances with ``%.4f`` as bulk strings in both.
"""

from __future__ import annotations

import math
import re

from node.commands.access import read_value, write_value
from node.commands.args import NOT_FLOAT, SYNTAX_ERROR, parse_int
from node.commands.table import command
from node.engine import geohash as gh
from node.engine.zset import ZSet
from node.notify import GENERIC, ZSET, notify
from node.propagation import rewrite
from node.resp import NULL_ARRAY, ErrorReply, Raw

_COMPLEXITY_RADIUS = (
    "O(N+log(M)) where N is the number of elements inside the bounding box of the circular area delimited "
    "by center and radius and M is the number of items inside the index."
)
_COMPLEXITY_SEARCH = (
    "O(N+log(M)) where N is the number of elements in the grid-aligned bounding box area around the shape "
    "provided as the filter and M is the number of items inside the shape"
)

_BAD_UNIT = ErrorReply("ERR unsupported unit provided. please use M, KM, FT, MI")
_NEED_RADIUS = ErrorReply("ERR need numeric radius")
_NEED_WIDTH = ErrorReply("ERR need numeric width")
_NEED_HEIGHT = ErrorReply("ERR need numeric height")
_NEGATIVE_RADIUS = ErrorReply("ERR radius cannot be negative")
_NEGATIVE_BOX = ErrorReply("ERR height or width cannot be negative")
_NO_MEMBER = ErrorReply("ERR could not decode requested zset member")
_BAD_COUNT = ErrorReply("ERR COUNT must be > 0")
_ANY_NEEDS_COUNT = ErrorReply("ERR the ANY argument requires COUNT argument")
_STORE_WITH = ErrorReply(
    "ERR STORE option in GEORADIUS is not compatible with WITHDIST, WITHHASH and WITHCOORD options")
_SEARCHSTORE_WITH = ErrorReply("ERR GEOSEARCHSTORE is not compatible with WITHDIST, WITHHASH and WITHCOORD options")

_LLONG_MIN = -(2**63)
_TWO63 = float(2**63)


def _word(arg: bytes) -> bytes:
    """An option word as ``strcasecmp`` sees it: lower case, cut at the first NUL."""
    nul = arg.find(b"\0")
    return (arg if nul == -1 else arg[:nul]).lower()


# ------------------------------------------------------------------ parsing

# What glibc's strtod accepts (Redis's string2d has already refused leading space).
_STRTOD = re.compile(
    rb"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)"
    rb"(?:[pP][+-]?\d+)?|inf(?:inity)?|nan(?:\([0-9A-Za-z_]*\))?)",
    re.IGNORECASE,
)
_NONZERO_DEC = re.compile(rb"[1-9]")
_NONZERO_HEX = re.compile(rb"[1-9a-fA-F]")


def parse_double(arg: bytes, error: ErrorReply = NOT_FLOAT) -> float:
    """Redis's ``getDoubleFromObject`` (``string2d``): strtod over the whole text, in double.

    Refused: empty, leading space, trailing garbage, NaN, overflow to
    +-HUGE_VAL and underflow to zero (both ERANGE); ``inf`` is accepted.
    """
    # Fast path: a finite non-zero value from Python's parser, which rounds like
    # strtod; what it accepts beyond strtod (underscores, surrounding space)
    # is ruled out, and the zero/infinite/NaN cases take the exact path below.
    try:
        value = float(arg)
    except ValueError:
        value = 0.0
    if (value != 0.0 and value - value == 0.0 and b"_" not in arg
            and not arg[:1].isspace() and not arg[-1:].isspace()):
        return value
    if not arg or not _STRTOD.fullmatch(arg):
        raise error
    text = arg.decode("ascii")
    low = text.lower()
    if "n" in low and "inf" not in low:  # nan, nan(...)
        raise error
    try:
        if "x" in low:
            value = float.fromhex(text)
            mantissa = low.split("p")[0][low.index("x") + 1:]
            nonzero = _NONZERO_HEX.search(mantissa.encode()) is not None
        else:
            value = float(text)
            nonzero = _NONZERO_DEC.search(low.split("e")[0].encode()) is not None
    except (ValueError, OverflowError):
        raise error from None
    if math.isinf(value) and "inf" not in low:
        raise error  # overflow: ERANGE with HUGE_VAL
    if value == 0.0 and nonzero:
        raise error  # underflow to zero: ERANGE
    return value


def _lonlat(argv, i: int) -> tuple[float, float]:
    """``extractLongLatOrReply``: two doubles within Redis's limits."""
    lon = parse_double(argv[i])
    lat = parse_double(argv[i + 1])
    if lon < gh.GEO_LONG_MIN or lon > gh.GEO_LONG_MAX or lat < gh.GEO_LAT_MIN or lat > gh.GEO_LAT_MAX:
        raise ErrorReply("ERR invalid longitude,latitude pair %f,%f" % (lon, lat))
    return lon, lat


def _unit(arg: bytes) -> float:
    """``extractUnitOrReply``: metres per unit."""
    factor = gh.UNITS.get(_word(arg))
    if factor is None:
        raise _BAD_UNIT
    return factor


def _radius(argv, i: int) -> tuple[float, float]:
    """``extractDistanceOrReply``: (radius in the user's unit, metres per unit)."""
    radius = parse_double(argv[i], _NEED_RADIUS)
    if radius < 0:
        raise _NEGATIVE_RADIUS
    return radius, _unit(argv[i + 1])


def _box(argv, i: int) -> tuple[float, float, float]:
    """``extractBoxOrReply``: (width, height, metres per unit)."""
    width = parse_double(argv[i], _NEED_WIDTH)
    height = parse_double(argv[i + 1], _NEED_HEIGHT)
    if height < 0 or width < 0:
        raise _NEGATIVE_BOX
    return width, height, _unit(argv[i + 2])


# ------------------------------------------------------------------ replies

def _coordinate(value: float, resp3: bool) -> Raw:
    """``addReplyHumanLongDouble``: bulk string in RESP2, double in RESP3."""
    text = gh.format_coordinate(value)
    if resp3:
        return Raw(b",%b\r\n" % text)
    return Raw(b"$%d\r\n%b\r\n" % (len(text), text))


def _long_long(score: float) -> int:
    """C's ``(long long)score`` on x86-64: truncation, LLONG_MIN when out of range or NaN."""
    if score != score or score >= _TWO63 or score < -_TWO63:
        return _LLONG_MIN
    return int(score)


def _listpack_fits(client, entries: int, max_member_len: int) -> bool:
    config = client.node.config
    return entries <= config["zset-max-listpack-entries"] and max_member_len <= config["zset-max-listpack-value"]


# ------------------------------------------------------------------ GEOADD

@command("geoadd", -5, "write denyoom", (1, 1, 1), group="geo",
         summary="Add one or more geospatial items in the geospatial index represented using a sorted set",
         since="3.2.0",
         complexity="O(log(N)) for each item added, where N is the number of elements in the sorted set.")
def geoadd(client, argv):
    nx = xx = ch = False
    n = len(argv)
    first = 2
    while first < n:
        opt = _word(argv[first])
        if opt == b"nx":
            nx = True
        elif opt == b"xx":
            xx = True
        elif opt == b"ch":
            ch = True
        else:
            break
        first += 1
    if (n - first) % 3 or (xx and nx):
        raise SYNTAX_ERROR
    points = []
    for i in range(first, n, 3):
        lon, lat = _lonlat(argv, i)
        points.append((float(gh.align52(gh.encode(lon, lat), gh.GEO_STEP_MAX)), argv[i + 2]))
    if not points:  # what ZADD, which Redis hands the rest to, says to no elements
        raise SYNTAX_ERROR

    # From here on this is ZADD [NX|XX] [CH] score member ...
    db = client.db
    key = argv[1]
    zset = write_value(db, key, ZSet)
    config = client.node.config
    max_entries = config["zset-max-listpack-entries"]
    max_value = config["zset-max-listpack-value"]
    created = False
    if zset is None:
        if xx:
            return 0
        zset = ZSet(listpack=not (max_entries == 0 or max_value < len(points[0][1])))
        created = True
    added = updated = 0
    for score, member in points:
        current = zset.score(member)
        if current is not None:
            if nx:
                continue
            if current != score:
                zset.add(member, score)
                updated += 1
        elif not xx:
            zset.add(member, score)
            added += 1
            zset.check_encoding(max_entries, max_value, len(member))
    changes = added + updated
    if created:
        db.set(key, zset)
        if changes > 1:
            db.dirty += changes - 1
    elif changes:
        db.touch(key, changes)
    if changes:
        notify(client, ZSET, b"zadd", key)
        if client.node.propagation.enabled:
            # Redis hands GEOADD to ZADD: "zadd key [options] <52-bit hash> member ..." is what replicates.
            args = [b"zadd", key, *argv[2:first]]
            for score, member in points:
                args.append(b"%d" % int(score))
                args.append(member)
            rewrite(client, *args)
    return changes if ch else added


# ------------------------------------------------------- GEOPOS GEOHASH GEODIST

@command("geopos", -2, "readonly", (1, 1, 1), group="geo",
         summary="Returns longitude and latitude of members of a geospatial index", since="3.2.0",
         complexity="O(N) where N is the number of members requested.")
def geopos(client, argv):
    zset = read_value(client.db, argv[1], ZSet)
    resp3 = client.resp3
    out = []
    for member in argv[2:]:
        score = zset.score(member) if zset is not None else None
        if score is None:
            out.append(NULL_ARRAY)
        else:
            lon, lat = gh.score_to_lonlat(score)
            out.append([_coordinate(lon, resp3), _coordinate(lat, resp3)])
    return out


@command("geohash", -2, "readonly", (1, 1, 1), group="geo",
         summary="Returns members of a geospatial index as standard geohash strings", since="3.2.0",
         complexity="O(log(N)) for each member requested, where N is the number of elements in the sorted set.")
def geohash(client, argv):
    zset = read_value(client.db, argv[1], ZSet)
    out = []
    for member in argv[2:]:
        score = zset.score(member) if zset is not None else None
        out.append(None if score is None else gh.geohash_string(score))
    return out


@command("geodist", -4, "readonly", (1, 1, 1), group="geo",
         summary="Returns the distance between two members of a geospatial index", since="3.2.0",
         complexity="O(log(N))")
def geodist(client, argv):
    to_meter = 1.0
    if len(argv) == 5:
        to_meter = _unit(argv[4])
    elif len(argv) > 5:
        raise SYNTAX_ERROR
    zset = read_value(client.db, argv[1], ZSet)
    if zset is None:
        return None
    score1 = zset.score(argv[2])
    score2 = zset.score(argv[3]) if score1 is not None else None
    if score2 is None:
        return None
    lon1, lat1 = gh.score_to_lonlat(score1)
    lon2, lat2 = gh.score_to_lonlat(score2)
    return gh.format_distance(gh.distance(lon1, lat1, lon2, lat2) / to_meter)


# ------------------------------------------------------------------ searches

_COORDS = 1  # GEORADIUS: centre given as longitude latitude
_MEMBER = 2  # GEORADIUSBYMEMBER: centre is a member
_NOSTORE = 4  # the _RO variants: no STORE/STOREDIST
_SEARCH = 8  # GEOSEARCH syntax
_SEARCHSTORE = 16  # GEOSEARCHSTORE: STOREDIST is a flag

_ASC, _DESC = 1, 2


def _find_points(zset: ZSet, lon: float, lat: float, conversion: float, radius, width, height,
                 limit: int) -> list:
    """Points of ``zset`` inside the shape, in the order Redis finds them.

    Each is [distance in metres, score, member, longitude, latitude]. With a
    ``limit`` (COUNT ... ANY), the scan stops as soon as that many are found.
    """
    found: list = []
    if radius is not None:
        shape = {"radius_m": radius * conversion}
    else:
        shape = {"width_m": width * conversion, "height_m": height * conversion}
    for lo, hi in gh.search_areas(lon, lat, conversion, radius, width, height):
        if found and limit and len(found) >= limit:
            break
        pairs = zset.range_by_score(float(lo), float(hi), max_exclusive=True)
        if gh.collect_points(pairs, found, limit, lon, lat, **shape):
            break
    return found


def _order(found: list, sort: int, returned: int) -> list:
    """Sort by distance as Redis does: glibc's stable qsort, or pqsort when only a prefix is wanted."""
    reverse = sort == _DESC
    if returned == len(found):
        found.sort(key=lambda p: p[0], reverse=reverse)
        return found
    dists = [p[0] for p in found]
    if len(set(dists)) == len(dists) and not any(d != d for d in dists):
        # No ties: the wanted prefix is the same whatever the algorithm.
        return sorted(found, key=lambda p: p[0], reverse=reverse)[:returned]
    gh.partial_sort(found, dists, 0, returned - 1, reverse)
    return found


def _search(client, argv, src_index: int, flags: int):
    """``georadiusGeneric``: every search command."""
    db = client.db
    zset = read_value(db, argv[src_index], ZSet)
    n = len(argv)
    storekey = None
    storedist = False
    lon = lat = 0.0
    radius = width = height = None
    conversion = 1.0

    if flags & _COORDS:
        base = 6
        lon, lat = _lonlat(argv, 2)
        radius, conversion = _radius(argv, 4)
    elif flags & _MEMBER:
        base = 5
        if zset is not None:  # without a key Redis still parses the options, to pick its reply
            score = zset.score(argv[2])
            if score is None:
                raise _NO_MEMBER
            lon, lat = gh.score_to_lonlat(score)
            radius, conversion = _radius(argv, 3)
    else:
        base = 2
        if flags & _SEARCHSTORE:
            base = 3
            storekey = argv[1]

    withdist = withhash = withcoord = any_ = False
    frommember = fromloc = byradius = bybox = False
    sort = 0
    count = 0
    search = flags & _SEARCH
    can_store = not (flags & _NOSTORE) and not search
    j = base
    while j < n:
        arg = _word(argv[j])
        if arg == b"withdist":
            withdist = True
        elif arg == b"withhash":
            withhash = True
        elif arg == b"withcoord":
            withcoord = True
        elif arg == b"any":
            any_ = True
        elif arg == b"asc":
            sort = _ASC
        elif arg == b"desc":
            sort = _DESC
        elif arg == b"count" and j + 1 < n:
            count = parse_int(argv[j + 1])
            if count <= 0:
                raise _BAD_COUNT
            j += 1
        elif arg == b"store" and j + 1 < n and can_store:
            storekey = argv[j + 1]
            storedist = False
            j += 1
        elif arg == b"storedist" and j + 1 < n and can_store:
            storekey = argv[j + 1]
            storedist = True
            j += 1
        elif arg == b"storedist" and search and flags & _SEARCHSTORE:
            storedist = True
        elif arg == b"frommember" and j + 1 < n and search and not fromloc:
            if zset is not None:
                score = zset.score(argv[j + 1])
                if score is None:
                    raise _NO_MEMBER
                lon, lat = gh.score_to_lonlat(score)
            frommember = True
            j += 1
        elif arg == b"fromlonlat" and j + 2 < n and search and not frommember:
            lon, lat = _lonlat(argv, j + 1)
            fromloc = True
            j += 2
        elif arg == b"byradius" and j + 2 < n and search and not bybox:
            radius, conversion = _radius(argv, j + 1)
            byradius = True
            j += 2
        elif arg == b"bybox" and j + 3 < n and search and not byradius:
            width, height, conversion = _box(argv, j + 1)
            bybox = True
            j += 3
        else:
            raise SYNTAX_ERROR
        j += 1

    if storekey is not None and (withdist or withhash or withcoord):
        raise _SEARCHSTORE_WITH if flags & _SEARCHSTORE else _STORE_WITH
    name = argv[0].decode("utf-8", "surrogateescape")
    if search and not (frommember or fromloc):
        raise ErrorReply(f"ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for {name}")
    if search and not (byradius or bybox):
        raise ErrorReply(f"ERR exactly one of BYRADIUS and BYBOX can be specified for {name}")
    if any_ and not count:
        raise _ANY_NEEDS_COUNT

    if zset is None:
        if storekey is not None:
            if db.delete(storekey):
                notify(client, GENERIC, b"del", storekey)
            return 0
        return []

    if count and not sort and not any_:
        sort = _ASC  # COUNT means "the closest N"

    found = _find_points(zset, lon, lat, conversion, radius, width, height, count if any_ else 0)
    if not found and storekey is None:
        return []
    total = len(found)
    returned = total if count == 0 or total < count else count
    if sort:
        found = _order(found, sort, returned)

    if storekey is None:
        resp3 = client.resp3
        options = withdist or withhash or withcoord
        out = []
        for i in range(returned):
            d, score, member, x, y = found[i]
            if not options:
                out.append(member)
                continue
            item = [member]
            if withdist:
                item.append(gh.format_distance(d / conversion))
            if withhash:
                item.append(_long_long(score))
            if withcoord:
                item.append([_coordinate(x, resp3), _coordinate(y, resp3)])
            out.append(item)
        return out

    if returned:
        target = ZSet(listpack=False)
        longest = 0
        for i in range(returned):
            d, score, member, _, _ = found[i]
            target.add(member, d / conversion if storedist else score)
            if len(member) > longest:
                longest = len(member)
        target.listpack = _listpack_fits(client, returned, longest)
        db.set(storekey, target)
        notify(client, ZSET, b"geosearchstore" if search else b"georadiusstore", storekey)
        if returned > 1:
            db.dirty += returned - 1
    elif db.delete(storekey):
        notify(client, GENERIC, b"del", storekey)
    return returned


def _store_key_finder(start: int):
    """COMMAND GETKEYS for GEORADIUS[BYMEMBER]: the key, then the STORE key, then the STOREDIST key.

    Redis 7.0 finds them with its key specs: the first STORE (and the first
    STOREDIST) keyword from argument ``start`` on, followed by a key.
    """

    def finder(argv):
        keys = [argv[1]]
        last = len(argv) - 1
        for keyword in (b"store", b"storedist"):
            for i in range(start, last):
                if _word(argv[i]) == keyword:
                    keys.append(argv[i + 1])
                    break
        return keys

    return finder


@command("georadius", -6, "write denyoom", (1, 1, 1), group="geo", key_finder=_store_key_finder(6),
         summary="Query a sorted set representing a geospatial index to fetch members matching a given "
                 "maximum distance from a point",
         since="3.2.0", complexity=_COMPLEXITY_RADIUS)
def georadius(client, argv):
    return _search(client, argv, 1, _COORDS)


@command("georadius_ro", -6, "readonly", (1, 1, 1), group="geo",
         summary="A read-only variant for GEORADIUS", since="3.2.10", complexity=_COMPLEXITY_RADIUS)
def georadius_ro(client, argv):
    return _search(client, argv, 1, _COORDS | _NOSTORE)


@command("georadiusbymember", -5, "write denyoom", (1, 1, 1), group="geo", key_finder=_store_key_finder(5),
         summary="Query a sorted set representing a geospatial index to fetch members matching a given "
                 "maximum distance from a member",
         since="3.2.0", complexity=_COMPLEXITY_RADIUS)
def georadiusbymember(client, argv):
    return _search(client, argv, 1, _MEMBER)


@command("georadiusbymember_ro", -5, "readonly", (1, 1, 1), group="geo",
         summary="A read-only variant for GEORADIUSBYMEMBER", since="3.2.10", complexity=_COMPLEXITY_RADIUS)
def georadiusbymember_ro(client, argv):
    return _search(client, argv, 1, _MEMBER | _NOSTORE)


@command("geosearch", -7, "readonly", (1, 1, 1), group="geo",
         summary="Query a sorted set representing a geospatial index to fetch members inside an area of a "
                 "box or a circle.",
         since="6.2.0", complexity=_COMPLEXITY_SEARCH)
def geosearch(client, argv):
    return _search(client, argv, 1, _SEARCH)


@command("geosearchstore", -8, "write denyoom", (1, 2, 1), group="geo",
         summary="Query a sorted set representing a geospatial index to fetch members inside an area of a "
                 "box or a circle, and store the result in another key.",
         since="6.2.0", complexity=_COMPLEXITY_SEARCH)
def geosearchstore(client, argv):
    return _search(client, argv, 2, _SEARCH | _SEARCHSTORE)
