"""Sorted set commands (ZADD ... ZSCAN, BZPOPMIN/BZPOPMAX/BZMPOP), as Redis 7.0.15 answers them.

The value is ``node.engine.zset.ZSet``. What this module adds on top:

* argument parsing with Redis's exact texts and order of checks (options,
  then scores, then the key's type);
* the two encodings' observable effects: ``listpack`` while the set is small
  (``zset-max-listpack-entries`` / ``zset-max-listpack-value``), then
  ``skiplist`` for good. Creation follows 7.0: ZADD makes a listpack unless
  the first member is already too long (or the entry limit is 0); ZADD,
  ZINCRBY and ZRANGESTORE convert when a *new* member would not fit
  (``ZSet.insert``); ZUNIONSTORE/ZINTERSTORE/ZDIFFSTORE build the result and
  then pick the encoding that fits it;
* reply shapes per protocol: scores are doubles (``float`` replies: RESP2 bulk
  ``%.17g``, RESP3 ``,``); WITHSCORES gives a flat array in RESP2 and
  ``[member, score]`` pairs in RESP3;
* keyspace notifications where t_zset.c sends them.

Helpers other modules may use (GEO*, SORT): ``new_zset(client, first_member)``
and ``zset_insert(client, z, member, score)`` apply the same encoding rules
as ZADD; ``parse_score`` parses a score as ZADD does.
"""

from __future__ import annotations

import heapq
import math
import re
import zlib

from node.blocking import block_on_keys, parse_timeout
from node.commands.access import members_removed, read_value, write_value
from node.commands.args import NOT_FLOAT, NOT_INTEGER, SYNTAX_ERROR, WRONGTYPE
from node.commands.keys import parse_scan_cursor
from node.commands.table import command
from node.commands.strings import keyword
from node.debug_digest import VALUE_DIGESTERS, mix_digest, xor_digest
from node.engine.glob import compile_glob
from node.engine.listvalue import rank_range
from node.engine.values import COPIERS, ENCODINGS, TYPE_NAMES
from node.engine.zset import ZSet, parse_lex_bound
from node.notify import GENERIC, ZSET, notify
from node.propagation import rewrite
from node.resp import NULL_ARRAY, ErrorReply
from node.resp.parser import string2ll

__all__ = ["new_zset", "parse_score", "zset_insert"]

# ------------------------------------------------------------------ registration

TYPE_NAMES[ZSet] = b"zset"
ENCODINGS[ZSet] = lambda z: b"listpack" if z.listpack else b"skiplist"
COPIERS[ZSet] = ZSet.copy


def _score_text(score: float) -> bytes:
    if math.isinf(score):
        return b"inf" if score > 0 else b"-inf"
    return b"%.17g" % score


def _zset_digest(digest: bytearray, z: ZSet) -> None:
    """debug.c: per element, mix the member then ``%.17g`` of the score into a fresh digest; xor it in."""
    for member, score in z.dict.items():
        ele = bytearray(20)
        mix_digest(ele, member)
        mix_digest(ele, _score_text(score))
        xor_digest(digest, bytes(ele))


VALUE_DIGESTERS[ZSet] = (3, _zset_digest)

# ------------------------------------------------------------------ errors

_NAN_RESULT = ErrorReply("ERR resulting score is not a number (NaN)")
_XX_NX = ErrorReply("ERR XX and NX options at the same time are not compatible")
_GT_LT_NX = ErrorReply("ERR GT, LT, and/or NX options at the same time are not compatible")
_INCR_PAIR = ErrorReply("ERR INCR option supports a single increment-element pair")
_MINMAX_FLOAT = ErrorReply("ERR min or max is not a float")
_MINMAX_LEX = ErrorReply("ERR min or max not valid string range item")
_WEIGHT_FLOAT = ErrorReply("ERR weight value is not a float")
_LIMIT_RANK = ErrorReply("ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX")
_WITHSCORES_LEX = ErrorReply("ERR syntax error, WITHSCORES not supported in combination with BYLEX")
_POSITIVE = ErrorReply("ERR value is out of range, must be positive")
_NUMKEYS = ErrorReply("ERR numkeys should be greater than 0")
_COUNT = ErrorReply("ERR count should be greater than 0")
_LIMIT_NEGATIVE = ErrorReply("ERR LIMIT can't be negative")
_OUT_OF_RANGE = ErrorReply("ERR value is out of range")
_RANDMEMBER_RANGE = ErrorReply(
    "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"
)

_LONG_MAX = 2**63 - 1

# ------------------------------------------------------------------ number parsing

_SPACE = b" \t\n\v\f\r"
_INF = math.inf
_NINF = -math.inf
_STRTOD = re.compile(
    rb"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)"
    rb"(?:[pP][+-]?\d+)?|inf(?:inity)?|nan(?:\([0-9A-Za-z_]*\))?)",
    re.IGNORECASE,
)
_NONZERO_DIGIT = re.compile(rb"[1-9a-fA-F]")


def _strtod(text: bytes):
    """C ``strtod`` over a whole (already NUL-cut) string: (value, overflowed, underflowed) or None."""
    m = _STRTOD.fullmatch(text)
    if m is None:
        return None
    lower = text.lower()
    if b"n" in lower and (b"nan" in lower):
        return math.nan, False, False
    if b"inf" in lower:
        return (-math.inf if text[:1] == b"-" else math.inf), False, False
    s = text.decode("ascii")
    try:
        value = float.fromhex(s) if "x" in s or "X" in s else float(s)
    except OverflowError:
        value = -math.inf if s[:1] == "-" else math.inf
    overflow = math.isinf(value)
    underflow = False
    if value == 0.0:
        mant = lower
        if b"x" in mant:
            mant = mant[mant.index(b"x") + 1:].split(b"p")[0]
        else:
            mant = mant.split(b"e")[0]
        underflow = _NONZERO_DIGIT.search(mant) is not None
    return value, overflow, underflow


def parse_score(data: bytes, error: ErrorReply = NOT_FLOAT) -> float:
    """A double as Redis's ``getDoubleFromObject`` reads it (string2d): whole string, no
    leading space, no NaN, no overflow, no underflow to zero."""
    if not data or data[0] in _SPACE:
        raise error
    try:
        # Fast path: Python's float() rounds decimal text exactly as strtod does;
        # what it accepts beyond strtod (underscores, trailing space) is refused below.
        value = float(data)
    except ValueError:
        parsed = _strtod(data)
        if parsed is None:
            raise error from None
        value, overflow, underflow = parsed
        if overflow or underflow or value != value:
            raise error from None
        return value
    if 0x5F in data or data[-1] in _SPACE or value != value:  # 0x5F: "_"
        raise error
    if value == 0.0:
        if not data.translate(None, b"+-0."):
            return value  # plain zero text ("0", "-0", "0.00"): strtod reads all of it, no underflow
        parsed = _strtod(data)
        if parsed is None or parsed[1] or parsed[2]:
            raise error
    elif value == _INF or value == _NINF:
        parsed = _strtod(data)
        if parsed is None or parsed[1] or parsed[2]:
            raise error
    return value


def _range_float(data: bytes) -> float | None:
    """One end of a score range as zslParseRange reads it: strtod up to the C string's end."""
    nul = data.find(b"\0")
    if nul != -1:
        data = data[:nul]
    stripped = data.lstrip(_SPACE)
    if not stripped:
        # strtod converts nothing: fine only if the string is empty (eptr at the NUL).
        return 0.0 if not data else None
    parsed = _strtod(stripped)
    if parsed is None or parsed[0] != parsed[0]:
        return None
    return parsed[0]


def _parse_score_range(min_arg: bytes, max_arg: bytes):
    """(min, max, min_exclusive, max_exclusive) or raise "min or max is not a float"."""
    out = []
    for arg in (min_arg, max_arg):
        exclusive = arg[:1] == b"("
        value = _range_float(arg[1:] if exclusive else arg)
        if value is None:
            raise _MINMAX_FLOAT
        out.append((value, exclusive))
    return out[0][0], out[1][0], out[0][1], out[1][1]


def _parse_lex_range(min_arg: bytes, max_arg: bytes):
    lmin = parse_lex_bound(min_arg)
    lmax = parse_lex_bound(max_arg)
    if lmin is None or lmax is None:
        raise _MINMAX_LEX
    return lmin, lmax


def _parse_long(data: bytes, error: ErrorReply = NOT_INTEGER) -> int:
    value = string2ll(data)
    if value is None:
        raise error
    return value


# ------------------------------------------------------------------ shared helpers


def _limits(client):
    config = client.node.config
    return config["zset-max-listpack-entries"], config["zset-max-listpack-value"]


def new_zset(client, first_member: bytes) -> ZSet:
    """An empty set with the encoding ZADD gives a new key whose first member is ``first_member``."""
    max_entries, max_value = _limits(client)
    return ZSet(listpack=not (max_entries == 0 or max_value < len(first_member)))


def zset_insert(client, z: ZSet, member: bytes, score: float) -> None:
    """Add or update ``member`` with zsetAdd's encoding rules (a new member may convert)."""
    max_entries, max_value = _limits(client)
    z.insert(member, score, max_entries, max_value)


def _fits_listpack(client, pairs) -> bool:
    max_entries, max_value = _limits(client)
    if len(pairs) > max_entries:
        return False
    for member, _ in pairs:
        if len(member) > max_value:
            return False
    return True


def _scored(client, pairs, withscores: bool) -> list:
    """A list of (member, score) as Redis replies: members only, or flat (RESP2) / pairs (RESP3)."""
    if not withscores:
        return [m for m, _ in pairs]
    if client.resp3:
        return [[m, s] for m, s in pairs]
    out = []
    for m, s in pairs:
        out.append(m)
        out.append(s)
    return out


def _store_result(client, dst: bytes, z: ZSet, event: bytes) -> int:
    """setKey the result (or delete ``dst`` if empty) with the notifications; returns the reply."""
    db = client.db
    if len(z):
        db.set(dst, z)
        notify(client, ZSET, event, dst)
        return len(z)
    if db.delete(dst):
        notify(client, GENERIC, b"del", dst)
    return 0


def _numkeys_keys(index: int):
    """A key finder for commands with ``numkeys key [key ...]`` at ``index``."""

    def find(argv):
        n = string2ll(argv[index])
        if n is None or n < 1 or index + 1 + n > len(argv):
            raise ValueError("bad numkeys")
        return argv[index + 1: index + 1 + n]

    return find


def _store_keys(argv):
    n = string2ll(argv[2])
    if n is None or n < 1 or 3 + n > len(argv):
        raise ValueError("bad numkeys")
    return [argv[1]] + argv[3: 3 + n]


# ------------------------------------------------------------------ ZADD / ZINCRBY


_ZADD_OPTIONS = {b"nx": 1, b"xx": 2, b"ch": 4, b"incr": 8, b"gt": 16, b"lt": 32}


def _zadd_generic(client, argv, incr: bool):
    argc = len(argv)
    flags = 8 if incr else 0
    i = 2
    options = _ZADD_OPTIONS
    while i < argc:
        arg = argv[i]
        if len(arg) > 4 and 0 not in arg:
            break  # not an option word (the common case: a score)
        bit = options.get(keyword(arg))
        if bit is None:
            break
        flags |= bit
        i += 1
    nx, xx, ch, incr, gt, lt = (flags & 1, flags & 2, flags & 4, flags & 8, flags & 16, flags & 32)
    elements = argc - i
    if elements % 2 or not elements:
        raise SYNTAX_ERROR
    elements //= 2
    if nx and xx:
        raise _XX_NX
    if (gt and nx) or (lt and nx) or (gt and lt):
        raise _GT_LT_NX
    if incr and elements > 1:
        raise _INCR_PAIR
    scores = [parse_score(arg) for arg in argv[i::2]]

    db = client.db
    key = argv[1]
    z = write_value(db, key, ZSet)
    created = False
    if z is None:
        if xx:
            return None if incr else 0
        z = new_zset(client, argv[i + 1])
        created = True
    max_entries, max_value = _limits(client)
    added = updated = processed = 0
    score = 0.0
    error = None
    d = z.dict
    for member, score in zip(argv[i + 1::2], scores):
        cur = d.get(member)
        if cur is not None:
            if nx:
                continue
            if incr:
                score += cur
                if score != score:
                    error = _NAN_RESULT
                    break
            if (lt and score >= cur) or (gt and score <= cur):
                continue
            processed += 1
            if score != cur:
                z.add(member, score)
                updated += 1
        elif not xx:
            z.insert(member, score, max_entries, max_value)
            added += 1
            processed += 1
    if added or updated:
        if created:
            db.set(key, z)
            db.dirty += added + updated - 1
        else:
            db.touch(key, added + updated)
        notify(client, ZSET, b"zincr" if incr else b"zadd", key)
    if error is not None:
        raise error
    if incr:
        return score if processed else None
    return added + updated if ch else added


# First bytes of the ZADD option words (either case): an argument starting otherwise is no option.
_OPTION_START = frozenset(b"nNxXcCiIgGlL")


def _zadd_one(client, key: bytes, score: float, member: bytes) -> int:
    """ZADD key score member (no options): _zadd_generic's effects for one pair, without its set-up."""
    db = client.db
    z = db.lookup(key)
    if z is None:
        config = client.node.config.values
        max_entries = config["zset-max-listpack-entries"]
        max_value = config["zset-max-listpack-value"]
        z = ZSet(listpack=not (max_entries == 0 or max_value < len(member)))
        z.insert(member, score, max_entries, max_value)
        db.set(key, z)
        notify(client, ZSET, b"zadd", key)
        return 1
    if type(z) is not ZSet:
        raise WRONGTYPE
    cur = z.dict.get(member)
    if cur is None:
        config = client.node.config.values
        z.insert(member, score, config["zset-max-listpack-entries"], config["zset-max-listpack-value"])
        db.touch(key, 1)
        notify(client, ZSET, b"zadd", key)
        return 1
    if score != cur:
        z.add(member, score)
        db.touch(key, 1)
        notify(client, ZSET, b"zadd", key)
    return 0


@command("zadd", -4, "write denyoom fast", (1, 1, 1), group="sorted_set",
         summary="Add one or more members to a sorted set, or update its score if it already exists",
         since="1.2.0", complexity="O(log(N)) for each item added, where N is the number of elements in the sorted set.")
def zadd(client, argv):
    if len(argv) == 4:
        arg = argv[2]
        # With one score/member pair there is no room for an option: a bare option word is a syntax error.
        if arg and (arg[0] not in _OPTION_START or keyword(arg) not in _ZADD_OPTIONS):
            return _zadd_one(client, argv[1], parse_score(arg), argv[3])
    return _zadd_generic(client, argv, False)


@command("zincrby", 4, "write denyoom fast", (1, 1, 1), group="sorted_set",
         summary="Increment the score of a member in a sorted set", since="1.2.0",
         complexity="O(log(N)) where N is the number of elements in the sorted set.")
def zincrby(client, argv):
    return _zadd_generic(client, argv, True)


# ------------------------------------------------------------------ ZREM / ZCARD / ZSCORE / ZRANK


@command("zrem", -3, "write fast", (1, 1, 1), group="sorted_set",
         summary="Remove one or more members from a sorted set", since="1.2.0",
         complexity="O(M*log(N)) with N being the number of elements in the sorted set and M the number of "
                    "elements to be removed.")
def zrem(client, argv):
    db = client.db
    key = argv[1]
    z = write_value(db, key, ZSet)
    if z is None:
        return 0
    deleted = 0
    for member in argv[2:]:
        if z.remove(member):
            deleted += 1
            if not len(z):
                break
    if deleted:
        members_removed(client, key, z, deleted, ZSET, b"zrem")
    return deleted


@command("zcard", 2, "readonly fast", (1, 1, 1), group="sorted_set",
         summary="Get the number of members in a sorted set", since="1.2.0", complexity="O(1)")
def zcard(client, argv):
    z = read_value(client.db, argv[1], ZSet)
    return len(z) if z is not None else 0


@command("zscore", 3, "readonly fast", (1, 1, 1), group="sorted_set",
         summary="Get the score associated with the given member in a sorted set", since="1.2.0",
         complexity="O(1)")
def zscore(client, argv):
    z = read_value(client.db, argv[1], ZSet)
    if z is None:
        return None
    return z.dict.get(argv[2])


@command("zmscore", -3, "readonly fast", (1, 1, 1), group="sorted_set",
         summary="Get the score associated with the given members in a sorted set", since="6.2.0",
         complexity="O(N) where N is the number of members being requested.")
def zmscore(client, argv):
    z = read_value(client.db, argv[1], ZSet)
    if z is None:
        return [None] * (len(argv) - 2)
    get = z.dict.get
    return [get(m) for m in argv[2:]]


def _zrank(client, argv, reverse: bool):
    z = read_value(client.db, argv[1], ZSet)
    if z is None:
        return None
    return z.rank(argv[2], reverse)


@command("zrank", 3, "readonly fast", (1, 1, 1), group="sorted_set",
         summary="Determine the index of a member in a sorted set", since="2.0.0", complexity="O(log(N))")
def zrank(client, argv):
    return _zrank(client, argv, False)


@command("zrevrank", 3, "readonly fast", (1, 1, 1), group="sorted_set",
         summary="Determine the index of a member in a sorted set, with scores ordered from high to low",
         since="2.0.0", complexity="O(log(N))")
def zrevrank(client, argv):
    return _zrank(client, argv, True)


# ------------------------------------------------------------------ ZCOUNT / ZLEXCOUNT


@command("zcount", 4, "readonly fast", (1, 1, 1), group="sorted_set",
         summary="Count the members in a sorted set with scores within the given values", since="2.0.0",
         complexity="O(log(N)) with N being the number of elements in the sorted set.")
def zcount(client, argv):
    lo, hi, lo_ex, hi_ex = _parse_score_range(argv[2], argv[3])
    z = read_value(client.db, argv[1], ZSet)
    if z is None:
        return 0
    return z.count_in_score_range(lo, hi, lo_ex, hi_ex)


@command("zlexcount", 4, "readonly fast", (1, 1, 1), group="sorted_set",
         summary="Count the number of members in a sorted set between a given lexicographical range",
         since="2.8.9", complexity="O(log(N)) with N being the number of elements in the sorted set.")
def zlexcount(client, argv):
    lmin, lmax = _parse_lex_range(argv[2], argv[3])
    z = read_value(client.db, argv[1], ZSet)
    if z is None:
        return 0
    return z.count_in_lex_range(lmin, lmax)


# ------------------------------------------------------------------ ZRANGE family

_RANK, _SCORE, _LEX = 1, 2, 3
_AUTO, _FORWARD, _REVERSE = 0, 1, 2


def _zrange_generic(client, argv, start: int, store: bool, rangetype: int, direction: int):
    """zrangeGenericCommand: ``argv[start]`` is the source key, followed by min, max and options."""
    argc = len(argv)
    minidx, maxidx = start + 1, start + 2
    withscores = False
    offset, limit = 0, -1
    j = start + 3
    while j < argc:
        left = argc - j - 1
        opt = keyword(argv[j])
        if not store and opt == b"withscores":
            withscores = True
        elif opt == b"limit" and left >= 2:
            offset = _parse_long(argv[j + 1])
            limit = _parse_long(argv[j + 2])
            j += 2
        elif direction == _AUTO and opt == b"rev":
            direction = _REVERSE
        elif rangetype == _AUTO and opt == b"bylex":
            rangetype = _LEX
        elif rangetype == _AUTO and opt == b"byscore":
            rangetype = _SCORE
        else:
            raise SYNTAX_ERROR
        j += 1
    if direction == _AUTO:
        direction = _FORWARD
    if rangetype == _AUTO:
        rangetype = _RANK
    if limit != -1 and rangetype == _RANK:
        raise _LIMIT_RANK
    if withscores and rangetype == _LEX:
        raise _WITHSCORES_LEX
    reverse = direction == _REVERSE
    if reverse and rangetype != _RANK:
        minidx, maxidx = maxidx, minidx
    if rangetype == _RANK:
        lo = _parse_long(argv[minidx])
        hi = _parse_long(argv[maxidx])
    elif rangetype == _SCORE:
        lo, hi, lo_ex, hi_ex = _parse_score_range(argv[minidx], argv[maxidx])
    else:
        lmin, lmax = _parse_lex_range(argv[minidx], argv[maxidx])

    db = client.db
    z = db.lookup_read(argv[start])
    if z is None:
        if store:
            return _store_result(client, argv[1], ZSet(), b"zrangestore")
        return []
    if type(z) is not ZSet:
        raise WRONGTYPE

    if rangetype == _RANK:
        bounds = rank_range(lo, hi, len(z))
        pairs = [] if bounds is None else z.range_by_rank(*bounds, reverse)
    elif rangetype == _SCORE:
        if offset > 0 and offset >= len(z):
            pairs = []
        else:
            pairs = z.range_by_score(lo, hi, lo_ex, hi_ex, reverse, offset, limit)
    else:
        pairs = z.range_by_lex(lmin, lmax, reverse, offset, limit)

    if store:
        max_entries, max_value = _limits(client)
        # zsetTypeCreate(length hint, 0): only a rank range knows its length up front.
        dst = ZSet(listpack=not (rangetype == _RANK and len(pairs) > max_entries))
        for member, score in pairs:
            dst.insert(member, score, max_entries, max_value)
        return _store_result(client, argv[1], dst, b"zrangestore")
    return _scored(client, pairs, withscores)


@command("zrange", -4, "readonly", (1, 1, 1), group="sorted_set",
         summary="Return a range of members in a sorted set", since="1.2.0",
         complexity="O(log(N)+M) with N being the number of elements in the sorted set and M the number of "
                    "elements returned.")
def zrange(client, argv):
    return _zrange_generic(client, argv, 1, False, _AUTO, _AUTO)


@command("zrangestore", -5, "write denyoom", (1, 2, 1), group="sorted_set",
         summary="Store a range of members from sorted set into another key", since="6.2.0",
         complexity="O(log(N)+M) with N being the number of elements in the sorted set and M the number of "
                    "elements stored into the destination key.")
def zrangestore(client, argv):
    return _zrange_generic(client, argv, 2, True, _AUTO, _AUTO)


@command("zrevrange", -4, "readonly", (1, 1, 1), group="sorted_set",
         summary="Return a range of members in a sorted set, by index, with scores ordered from high to low",
         since="1.2.0",
         complexity="O(log(N)+M) with N being the number of elements in the sorted set and M the number of "
                    "elements returned.")
def zrevrange(client, argv):
    return _zrange_generic(client, argv, 1, False, _RANK, _REVERSE)


_BY_COMPLEXITY = (
    "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements being "
    "returned. If M is constant (e.g. always asking for the first 10 elements with LIMIT), you can consider "
    "it O(log(N))."
)


@command("zrangebyscore", -4, "readonly", (1, 1, 1), group="sorted_set",
         summary="Return a range of members in a sorted set, by score", since="1.0.5",
         complexity=_BY_COMPLEXITY)
def zrangebyscore(client, argv):
    return _zrange_generic(client, argv, 1, False, _SCORE, _FORWARD)


@command("zrevrangebyscore", -4, "readonly", (1, 1, 1), group="sorted_set",
         summary="Return a range of members in a sorted set, by score, with scores ordered from high to low",
         since="2.2.0", complexity=_BY_COMPLEXITY)
def zrevrangebyscore(client, argv):
    return _zrange_generic(client, argv, 1, False, _SCORE, _REVERSE)


@command("zrangebylex", -4, "readonly", (1, 1, 1), group="sorted_set",
         summary="Return a range of members in a sorted set, by lexicographical range", since="2.8.9",
         complexity=_BY_COMPLEXITY)
def zrangebylex(client, argv):
    return _zrange_generic(client, argv, 1, False, _LEX, _FORWARD)


@command("zrevrangebylex", -4, "readonly", (1, 1, 1), group="sorted_set",
         summary="Return a range of members in a sorted set, by lexicographical range, ordered from higher to "
                 "lower strings.", since="2.8.9", complexity=_BY_COMPLEXITY)
def zrevrangebylex(client, argv):
    return _zrange_generic(client, argv, 1, False, _LEX, _REVERSE)


# ------------------------------------------------------------------ ZREMRANGEBY*

_REM_COMPLEXITY = (
    "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements removed "
    "by the operation."
)


def _zremrange(client, argv, rangetype: int):
    if rangetype == _RANK:
        lo = _parse_long(argv[2])
        hi = _parse_long(argv[3])
        event = b"zremrangebyrank"
    elif rangetype == _SCORE:
        lo, hi, lo_ex, hi_ex = _parse_score_range(argv[2], argv[3])
        event = b"zremrangebyscore"
    else:
        lmin, lmax = _parse_lex_range(argv[2], argv[3])
        event = b"zremrangebylex"
    db = client.db
    key = argv[1]
    z = write_value(db, key, ZSet)
    if z is None:
        return 0
    if rangetype == _RANK:
        bounds = rank_range(lo, hi, len(z))
        if bounds is None:
            return 0
        deleted = z.remove_range_by_rank(*bounds)
    elif rangetype == _SCORE:
        deleted = z.remove_range_by_score(lo, hi, lo_ex, hi_ex)
    else:
        deleted = z.remove_range_by_lex(lmin, lmax)
    if deleted:
        members_removed(client, key, z, deleted, ZSET, event)
    return deleted


@command("zremrangebyrank", 4, "write", (1, 1, 1), group="sorted_set",
         summary="Remove all members in a sorted set within the given indexes", since="2.0.0",
         complexity=_REM_COMPLEXITY)
def zremrangebyrank(client, argv):
    return _zremrange(client, argv, _RANK)


@command("zremrangebyscore", 4, "write", (1, 1, 1), group="sorted_set",
         summary="Remove all members in a sorted set within the given scores", since="1.2.0",
         complexity=_REM_COMPLEXITY)
def zremrangebyscore(client, argv):
    return _zremrange(client, argv, _SCORE)


@command("zremrangebylex", 4, "write", (1, 1, 1), group="sorted_set",
         summary="Remove all members in a sorted set between the given lexicographical range", since="2.8.9",
         complexity=_REM_COMPLEXITY)
def zremrangebylex(client, argv):
    return _zremrange(client, argv, _LEX)


# ------------------------------------------------------------------ pops


def _pop(client, key: bytes, z: ZSet, count: int, reverse: bool) -> list:
    """Pop up to ``count`` from ``z`` at ``key`` with the notifications; returns (member, score) pairs."""
    pairs = z.pop(count, reverse)
    members_removed(client, key, z, len(pairs), ZSET, b"zpopmax" if reverse else b"zpopmin")
    return pairs


def _first_zset(client, keys):
    """genericZpopCommand's key choice: the first existing key (WRONGTYPE if it is not a zset)."""
    db = client.db
    for key in keys:
        z = db.lookup(key)
        if z is None:
            continue
        if type(z) is not ZSet:
            raise WRONGTYPE
        return key, z
    return None, None


def _zpop_minmax(client, argv, reverse: bool):
    if len(argv) > 3:
        raise SYNTAX_ERROR
    count = -1
    if len(argv) == 3:
        count = string2ll(argv[2])
        if count is None or count < 0:
            raise _POSITIVE
    key, z = _first_zset(client, argv[1:2])
    if z is None or count == 0:
        return []
    pairs = _pop(client, key, z, 1 if count == -1 else count, reverse)
    if client.resp3 and count != -1:
        return [[m, s] for m, s in pairs]
    return _flat(pairs)


def _flat(pairs) -> list:
    out = []
    for m, s in pairs:
        out.append(m)
        out.append(s)
    return out


_POP_COMPLEXITY = (
    "O(log(N)*M) with N being the number of elements in the sorted set, and M being the number of elements "
    "popped."
)


@command("zpopmin", -2, "write fast", (1, 1, 1), group="sorted_set",
         summary="Remove and return members with the lowest scores in a sorted set", since="5.0.0",
         complexity=_POP_COMPLEXITY)
def zpopmin(client, argv):
    return _zpop_minmax(client, argv, False)


@command("zpopmax", -2, "write fast", (1, 1, 1), group="sorted_set",
         summary="Remove and return members with the highest scores in a sorted set", since="5.0.0",
         complexity=_POP_COMPLEXITY)
def zpopmax(client, argv):
    return _zpop_minmax(client, argv, True)


def _parse_zmpop(argv, numkeys_idx: int):
    """(keys, reverse, count) for ZMPOP/BZMPOP, with their errors in Redis's order."""
    numkeys = string2ll(argv[numkeys_idx])
    if numkeys is None or numkeys < 1:
        raise _NUMKEYS
    where_idx = numkeys_idx + numkeys + 1
    if where_idx >= len(argv):
        raise SYNTAX_ERROR
    where = keyword(argv[where_idx])
    if where == b"min":
        reverse = False
    elif where == b"max":
        reverse = True
    else:
        raise SYNTAX_ERROR
    count = -1
    j = where_idx + 1
    argc = len(argv)
    while j < argc:
        if count == -1 and keyword(argv[j]) == b"count" and j < argc - 1:
            j += 1
            count = string2ll(argv[j])
            if count is None or count < 1:
                raise _COUNT
        else:
            raise SYNTAX_ERROR
        j += 1
    if count == -1:
        count = 1
    return argv[numkeys_idx + 1: numkeys_idx + 1 + numkeys], reverse, count


def _mpop_reply(key: bytes, pairs) -> list:
    return [key, [[m, s] for m, s in pairs]]


@command("zmpop", -4, "write", (0, 0, 0), group="sorted_set",
         summary="Remove and return members with scores in a sorted set", since="7.0.0",
         complexity="O(K) + O(M*log(N)) where K is the number of provided keys, N being the number of elements "
                    "in the sorted set, and M being the number of elements popped.",
         key_finder=_numkeys_keys(1))
def zmpop(client, argv):
    keys, reverse, count = _parse_zmpop(argv, 1)
    key, z = _first_zset(client, keys)
    if z is None:
        return NULL_ARRAY
    pairs = _pop(client, key, z, count, reverse)
    rewrite(client, b"ZPOPMAX" if reverse else b"ZPOPMIN", key, b"%d" % len(pairs))
    return _mpop_reply(key, pairs)


def _blocking_pop(client, argv, keys, reverse: bool, count: int, deadline: int, mpop: bool):
    """blockingGenericZpopCommand, and the re-run when a key a client waits on changes.

    Redis 7.0 serves a waiter from the key that became ready (``serving_key``),
    and only if it now holds a sorted set: a key that became another type
    keeps its waiters waiting.
    """
    if client.blocked is None:
        key, z = _first_zset(client, keys)
        if z is None:
            if client.deny_blocking:
                return NULL_ARRAY
            return block_on_keys(client, argv, keys, deadline, NULL_ARRAY)
    else:
        ready = getattr(client.node.blocking, "serving_key", None)
        key = z = None
        for k in (keys if ready is None else (ready,)):
            value = client.db.lookup(k)
            if type(value) is ZSet:
                key, z = k, value
                break
        if z is None:
            return block_on_keys(client, argv, keys, deadline, NULL_ARRAY)
    pairs = _pop(client, key, z, count, reverse)
    # Replicated as the non-blocking pop: ZPOPMIN/ZPOPMAX key [<members popped> for BZMPOP].
    if mpop:
        rewrite(client, b"ZPOPMAX" if reverse else b"ZPOPMIN", key, b"%d" % len(pairs))
        return _mpop_reply(key, pairs)
    rewrite(client, b"ZPOPMAX" if reverse else b"ZPOPMIN", key)
    (member, score), = pairs
    return [key, member, score]


def _bzpop(client, argv, reverse: bool):
    deadline = parse_timeout(client, argv[-1])
    return _blocking_pop(client, argv, argv[1:-1], reverse, 1, deadline, False)


@command("bzpopmin", -3, "write noscript blocking fast", (1, -2, 1), group="sorted_set",
         summary="Remove and return the member with the lowest score from one or more sorted sets, or block "
                 "until one is available", since="5.0.0",
         complexity="O(log(N)) with N being the number of elements in the sorted set.")
def bzpopmin(client, argv):
    return _bzpop(client, argv, False)


@command("bzpopmax", -3, "write noscript blocking fast", (1, -2, 1), group="sorted_set",
         summary="Remove and return the member with the highest score from one or more sorted sets, or block "
                 "until one is available", since="5.0.0",
         complexity="O(log(N)) with N being the number of elements in the sorted set.")
def bzpopmax(client, argv):
    return _bzpop(client, argv, True)


@command("bzmpop", -5, "write blocking", (0, 0, 0), group="sorted_set",
         summary="Remove and return members with scores in a sorted set or block until one is available",
         since="7.0.0",
         complexity="O(K) + O(M*log(N)) where K is the number of provided keys, N being the number of elements "
                    "in the sorted set, and M being the number of elements popped.",
         key_finder=_numkeys_keys(2))
def bzmpop(client, argv):
    keys, reverse, count = _parse_zmpop(argv, 2)
    deadline = parse_timeout(client, argv[1])
    return _blocking_pop(client, argv, keys, reverse, count, deadline, True)


# ------------------------------------------------------------------ ZRANDMEMBER


@command("zrandmember", -2, "readonly", (1, 1, 1), group="sorted_set",
         summary="Get one or multiple random elements from a sorted set", since="6.2.0",
         complexity="O(N) where N is the number of elements returned", tips=("nondeterministic_output",))
def zrandmember(client, argv):
    argc = len(argv)
    db = client.db
    rng = client.node.rng
    if argc >= 3:
        n = string2ll(argv[2])
        if n is None:
            raise NOT_INTEGER
        if n < -_LONG_MAX:
            raise _RANDMEMBER_RANGE
        if argc > 4 or (argc == 4 and keyword(argv[3]) != b"withscores"):
            raise SYNTAX_ERROR
        withscores = argc == 4
        if withscores and (n < -(_LONG_MAX // 2) or n > _LONG_MAX // 2):
            raise _OUT_OF_RANGE
        z = read_value(db, argv[1], ZSet)
        if z is None or n == 0:
            return []
        size = len(z)
        if n < 0 or n == 1:
            count = -n if n < 0 else 1
            members = list(z.dict.items()) if count > 1 else None
            if members is None:
                pairs = [_random_pair(z, rng)]
            else:
                choice = rng.choice
                pairs = [choice(members) for _ in range(count)]
            return _scored(client, pairs, withscores)
        if n >= size:
            return _scored(client, list(z.reversed_items()), withscores)
        if z.listpack:
            ranks = sorted(rng.sample(range(size), n))
            sl = z._sl
            pairs = [(sl[r][1], sl[r][0]) for r in ranks]
        else:
            members = rng.sample(list(z.dict), n)
            d = z.dict
            pairs = [(m, d[m]) for m in members]
        return _scored(client, pairs, withscores)
    z = read_value(db, argv[1], ZSet)
    if z is None:
        return None
    return _random_pair(z, rng)[0]


def _random_pair(z: ZSet, rng):
    score, member = z._sl[rng.randrange(len(z))]
    return member, score


# ------------------------------------------------------------------ ZUNION / ZINTER / ZDIFF


_UNION, _INTER, _DIFF = 1, 2, 3
_SUM, _MIN, _MAX = 1, 2, 3


def _source_items(value):
    """(member, score) pairs of a zset, or of a set with score 1."""
    if type(value) is ZSet:
        return value.dict.items()
    return [(m, 1.0) for m in value]


def _source_score(value, member):
    if type(value) is ZSet:
        return value.dict.get(member)
    return 1.0 if member in value else None


def _aggregate(target: float, value: float, how: int) -> float:
    if how == _SUM:
        total = target + value
        return 0.0 if total != total else total
    if how == _MIN:
        return value if value < target else target
    return value if value > target else target


def _setop_generic(client, argv, dst, numkeys_idx: int, op: int, cardinality_only: bool = False):
    setnum = _parse_long(argv[numkeys_idx])
    if setnum < 1:
        raise ErrorReply(f"ERR at least 1 input key is needed for '{client_cmd_name(argv)}' command")
    argc = len(argv)
    if setnum > argc - (numkeys_idx + 1):
        raise SYNTAX_ERROR
    db = client.db
    sources = []
    j = numkeys_idx + 1
    for _ in range(setnum):
        value = db.lookup_read(argv[j])
        if value is not None:
            tname = TYPE_NAMES.get(type(value))
            if tname != b"zset" and tname != b"set":
                raise WRONGTYPE
        sources.append([value, 1.0])
        j += 1
    aggregate = _SUM
    withscores = False
    limit = 0
    remaining = argc - j
    while remaining:
        opt = keyword(argv[j])
        if op != _DIFF and not cardinality_only and remaining >= setnum + 1 and opt == b"weights":
            j += 1
            remaining -= 1
            for src in sources:
                src[1] = parse_score(argv[j], _WEIGHT_FLOAT)
                j += 1
                remaining -= 1
        elif op != _DIFF and not cardinality_only and remaining >= 2 and opt == b"aggregate":
            how = keyword(argv[j + 1])
            if how == b"sum":
                aggregate = _SUM
            elif how == b"min":
                aggregate = _MIN
            elif how == b"max":
                aggregate = _MAX
            else:
                raise SYNTAX_ERROR
            j += 2
            remaining -= 2
        elif remaining >= 1 and dst is None and not cardinality_only and opt == b"withscores":
            withscores = True
            j += 1
            remaining -= 1
        elif cardinality_only and remaining >= 2 and opt == b"limit":
            limit = string2ll(argv[j + 1])
            if limit is None or limit < 0:
                raise _LIMIT_NEGATIVE
            j += 2
            remaining -= 2
        else:
            raise SYNTAX_ERROR

    def length(src):
        v = src[0]
        return 0 if v is None else len(v)

    if op != _DIFF:
        sources.sort(key=length)  # stable, like glibc's merge-sort qsort

    result: dict[bytes, float] = {}
    if op == _INTER:
        first, w0 = sources[0]
        if first is not None and len(first):
            others = sources[1:]
            count = 0
            for member, s0 in _source_items(first):
                score = w0 * s0
                if score != score:
                    score = 0.0
                for value, weight in others:
                    if value is first:
                        v = s0 * weight
                    else:
                        found = _source_score(value, member) if value is not None else None
                        if found is None:
                            break
                        v = found * weight
                    score = _aggregate(score, v, aggregate)
                else:
                    if cardinality_only:
                        count += 1
                        if limit and count >= limit:
                            break
                    else:
                        result[member] = score
            if cardinality_only:
                return count
        elif cardinality_only:
            return 0
    elif op == _UNION:
        for value, weight in sources:
            if value is None:
                continue
            for member, s in _source_items(value):
                score = weight * s
                if score != score:
                    score = 0.0
                cur = result.get(member)
                if cur is None:
                    result[member] = score
                else:
                    result[member] = _aggregate(cur, score, aggregate)
    else:
        first = sources[0][0]
        if first is not None and len(first):
            others = [v for v, _ in sources[1:]]
            if not any(v is first for v in others):
                others = [v for v in others if v is not None]
                for member, s in _source_items(first):
                    for v in others:
                        if _source_score(v, member) is not None:
                            break
                    else:
                        result[member] = s

    if dst is not None:
        pairs = list(result.items())
        z = ZSet.from_pairs(pairs, _fits_listpack(client, pairs))
        event = b"zunionstore" if op == _UNION else (b"zinterstore" if op == _INTER else b"zdiffstore")
        return _store_result(client, dst, z, event)
    pairs = sorted(result.items(), key=_by_score)
    return _scored(client, pairs, withscores)


def _by_score(item):
    return item[1], item[0]


def client_cmd_name(argv) -> str:
    return argv[0].lower().decode(errors="replace")


_UNION_COMPLEXITY = (
    "O(N)+O(M*log(M)) with N being the sum of the sizes of the input sorted sets, and M being the number of "
    "elements in the resulting sorted set."
)
_INTER_COMPLEXITY = (
    "O(N*K)+O(M*log(M)) worst case with N being the smallest input sorted set, K being the number of input "
    "sorted sets and M being the number of elements in the resulting sorted set."
)
_DIFF_COMPLEXITY = (
    "O(L + (N-K)log(N)) worst case where L is the total number of elements in all the sets, N is the size of "
    "the first set, and K is the size of the result set."
)


@command("zunion", -3, "readonly", (0, 0, 0), group="sorted_set", summary="Add multiple sorted sets",
         since="6.2.0", complexity=_UNION_COMPLEXITY, key_finder=_numkeys_keys(1))
def zunion(client, argv):
    return _setop_generic(client, argv, None, 1, _UNION)


@command("zinter", -3, "readonly", (0, 0, 0), group="sorted_set", summary="Intersect multiple sorted sets",
         since="6.2.0", complexity=_INTER_COMPLEXITY, key_finder=_numkeys_keys(1))
def zinter(client, argv):
    return _setop_generic(client, argv, None, 1, _INTER)


@command("zdiff", -3, "readonly", (0, 0, 0), group="sorted_set", summary="Subtract multiple sorted sets",
         since="6.2.0", complexity=_DIFF_COMPLEXITY, key_finder=_numkeys_keys(1))
def zdiff(client, argv):
    return _setop_generic(client, argv, None, 1, _DIFF)


@command("zintercard", -3, "readonly", (0, 0, 0), group="sorted_set",
         summary="Intersect multiple sorted sets and return the cardinality of the result", since="7.0.0",
         complexity="O(N*K) worst case with N being the smallest input sorted set, K being the number of input "
                    "sorted sets.", key_finder=_numkeys_keys(1))
def zintercard(client, argv):
    return _setop_generic(client, argv, None, 1, _INTER, cardinality_only=True)


@command("zunionstore", -4, "write denyoom", (1, 1, 1), group="sorted_set",
         summary="Add multiple sorted sets and store the resulting sorted set in a new key", since="2.0.0",
         complexity="O(N)+O(M log(M)) with N being the sum of the sizes of the input sorted sets, and M being "
                    "the number of elements in the resulting sorted set.", key_finder=_store_keys)
def zunionstore(client, argv):
    return _setop_generic(client, argv, argv[1], 2, _UNION)


@command("zinterstore", -4, "write denyoom", (1, 1, 1), group="sorted_set",
         summary="Intersect multiple sorted sets and store the resulting sorted set in a new key", since="2.0.0",
         complexity=_INTER_COMPLEXITY, key_finder=_store_keys)
def zinterstore(client, argv):
    return _setop_generic(client, argv, argv[1], 2, _INTER)


@command("zdiffstore", -4, "write denyoom", (1, 1, 1), group="sorted_set",
         summary="Subtract multiple sorted sets and store the resulting sorted set in a new key", since="6.2.0",
         complexity=_DIFF_COMPLEXITY, key_finder=_store_keys)
def zdiffstore(client, argv):
    return _setop_generic(client, argv, argv[1], 2, _DIFF)


# ------------------------------------------------------------------ ZSCAN

_HALF_LLONG = float(_LONG_MAX // 2)


def _listpack_score_text(score: float) -> bytes:
    """A score as a listpack stores it: an integer when it is one (within +-2^62), else ``%.17g``."""
    if -_HALF_LLONG <= score <= _HALF_LLONG and score == int(score):
        return b"%d" % int(score)
    return _score_text(score)


_HASH_SPACE = 1 << 32


def _member_hash(member: bytes) -> int:
    return zlib.crc32(member)


@command("zscan", -3, "readonly", (1, 1, 1), group="sorted_set",
         summary="Incrementally iterate sorted sets elements and associated scores", since="2.8.0",
         complexity="O(1) for every call. O(N) for a complete iteration, including enough command calls for the "
                    "cursor to return back to 0. N is the number of elements inside the collection..",
         tips=("nondeterministic_output",))
def zscan(client, argv):
    cursor = parse_scan_cursor(argv[2])
    z = read_value(client.db, argv[1], ZSet)
    if z is None:
        return [b"0", []]
    count = 10
    match = None
    argc = len(argv)
    i = 3
    while i < argc:
        left = argc - i
        opt = keyword(argv[i])
        if opt == b"count" and left >= 2:
            count = _parse_long(argv[i + 1])
            if count < 1:
                raise SYNTAX_ERROR
            i += 2
        elif opt == b"match" and left >= 2:
            pattern = argv[i + 1]
            match = None if pattern == b"*" else compile_glob(pattern)
            i += 2
        else:
            raise SYNTAX_ERROR
    out = []
    if z.listpack:
        # A listpack is returned whole in one call, with the scores as stored.
        for member, score in z.items():
            if match is None or match(member):
                out.append(member)
                out.append(_listpack_score_text(score))
        return [b"0", out]
    # A hash-ordered walk: the cursor is a 32-bit member hash; each call returns
    # the members whose hash is the next ``count`` (ties kept together), so a
    # member present for the whole scan is returned exactly once.
    if cursor >= _HASH_SPACE:
        return [b"0", []]
    candidates = [(h, m) for m in z.dict if (h := _member_hash(m)) >= cursor]
    page = heapq.nsmallest(count, candidates)
    if len(page) < count or not page:
        chosen = candidates
        next_cursor = 0
    else:
        last = page[-1][0]
        chosen = [c for c in candidates if c[0] <= last]
        next_cursor = last + 1 if last + 1 < _HASH_SPACE else 0
    chosen.sort()
    d = z.dict
    for _, member in chosen:
        if match is None or match(member):
            out.append(member)
            out.append(_score_text(d[member]))
    return [b"%d" % next_cursor, out]
