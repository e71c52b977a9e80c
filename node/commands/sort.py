"""SORT and SORT_RO, following Redis 7.0's ``sort.c`` step by step.

What decides the reply, and how Shoal reproduces it:

* Options are parsed first (errors in argument order), then the key is looked
  up: lists, sets and sorted sets sort; a missing key is an empty list.
* ``BY`` without ``*`` means "don't sort" (lists and sorted sets keep their
  order, DESC walks from the other end; a set keeps its iteration order --
  except with STORE, or inside a script, where Redis forces an ALPHA sort so
  the result is deterministic). A sorted set is converted to ``skiplist``
  encoding by any SORT, as Redis does.
* Numeric sort parses each weight with C's ``strtod`` rules (leading spaces,
  hex, ``inf``; the text ends at a NUL; an empty string is 0; NaN, overflow
  and underflow -- a rounded subnormal, or zero from non-zero digits -- are
  errors: "One or more scores can't be converted into double"). Equal
  scores order by the element's bytes. (Redis does not clear errno before
  strtod, so a stale ERANGE from an earlier command can fail a SORT there;
  Shoal has no such state.)
* ALPHA compares with ``strcoll``, which under the C/C.UTF-8 locales Redis
  runs in is ``strcmp``: bytes up to the first NUL. With STORE Redis compares
  the whole binary strings instead. With ``BY``, elements whose weight key is
  missing sort first.
* Ties keep their input order (glibc's qsort is a merge sort) -- except when
  a ``BY`` pattern is combined with a LIMIT that does not cover everything:
  Redis then uses its partial quicksort (``pqsort.c``), whose tie order
  ``_pqsort`` below reproduces.
* ``GET``/``BY`` patterns: the first ``*`` is replaced by the element, a
  ``->field`` after it reads a hash field, ``#`` is the element itself;
  C-string rules apply (a NUL ends the pattern for finding ``*`` and ``->``).
"""

from __future__ import annotations

import math
import re
from fractions import Fraction
from itertools import islice

from node.commands.args import SYNTAX_ERROR, WRONGTYPE, parse_int
from node.commands.strings import keyword
from node.commands.table import TABLE, command
from node.engine.hashvalue import HashValue
from node.engine.listvalue import ListValue
from node.engine.setvalue import SetValue
from node.engine.values import TYPE_NAMES
from node.notify import GENERIC, LIST, notify
from node.resp import ErrorReply

_SCORES_ERROR = ErrorReply("ERR One or more scores can't be converted into double")
_BY_CLUSTER = ErrorReply("ERR BY option of SORT denied in Cluster mode.")
_GET_CLUSTER = ErrorReply("ERR GET option of SORT denied in Cluster mode.")

_DBL_MIN = 2.2250738585072014e-308

# What glibc's strtod consumes: optional spaces, sign, then a decimal or hex
# float, inf/infinity or nan(...). Anything left over is an error for SORT.
_STRTOD = re.compile(
    rb"[ \t\n\v\f\r]*([+-]?)("
    rb"0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)(?:[pP][+-]?[0-9]+)?"
    rb"|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
    rb"|[iI][nN][fF](?:[iI][nN][iI][tT][yY])?"
    rb"|[nN][aA][nN](?:\([0-9A-Za-z_]*\))?"
    rb")"
)
_ZERO_DIGITS = re.compile(rb"[0.xX]*(?:[eEpP].*)?")


def _cstr(data: bytes) -> bytes:
    """``data`` as a C string: up to the first NUL."""
    nul = data.find(b"\0")
    return data if nul == -1 else data[:nul]


def sort_score(data: bytes):
    """The weight of ``data`` as SORT's ``strtod`` check reads it, or None for a conversion error."""
    text = _cstr(data)
    if not text:
        return 0.0
    m = _STRTOD.match(text)
    if m is None or m.end() != len(text):
        return None
    sign, body = m.groups()
    first = body[:1]
    if first in (b"n", b"N"):
        return None  # NaN
    if first in (b"i", b"I"):
        return -math.inf if sign == b"-" else math.inf
    try:
        if body[1:2] in (b"x", b"X"):
            value = float.fromhex(body.decode())
        else:
            value = float(body)
    except OverflowError:
        return None
    if math.isinf(value):
        return None  # ERANGE: overflow
    if value == 0.0:
        if not _ZERO_DIGITS.fullmatch(body):
            return None  # ERANGE: underflow to zero
    elif abs(value) < _DBL_MIN and not _exact(body, value):
        return None  # ERANGE: a subnormal result that had to be rounded (underflow)
    return -value if sign == b"-" else value


def _exact(body: bytes, value: float) -> bool:
    """Is the decimal or hex text ``body`` exactly the double ``value``?"""
    if body[1:2] in (b"x", b"X"):
        m = re.fullmatch(rb"0[xX]([0-9a-fA-F]*)\.?([0-9a-fA-F]*)(?:[pP]([+-]?[0-9]+))?", body)
        digits, frac, exp = m.groups()
        exact = Fraction(int((digits + frac) or b"0", 16), 16 ** len(frac)) * Fraction(2) ** int(exp or 0)
    else:
        exact = Fraction(body.decode())
    return exact == Fraction(value)


def _lookup_by_pattern(db, pattern: bytes, subst: bytes):
    """Redis's ``lookupKeyByPattern``: the string (or hash field) named by ``pattern``, or None."""
    if pattern[:1] == b"#" and (len(pattern) == 1 or pattern[1] == 0):
        return subst
    cpat = _cstr(pattern)
    star = cpat.find(b"*")
    if star == -1:
        return None
    arrow = cpat.find(b"->", star + 1)
    field = None
    if arrow != -1 and arrow + 2 < len(cpat):
        field = pattern[arrow + 2 :]
        key = pattern[:star] + subst + pattern[star + 1 : arrow]
    else:
        key = pattern[:star] + subst + pattern[star + 1 :]
    value = db.lookup_read(key)
    if value is None:
        return None
    kind = type(value)
    if field is not None:
        if kind is not HashValue:
            return None
        return value.get(field)
    if kind is bytes:
        return value
    if kind is bytearray:
        return bytes(value)
    return None


# ------------------------------------------------------------ partial sort


def _pqsort(vec: list, cmp, lrange: int, rrange: int) -> None:
    """Redis's ``pqsort`` (NetBSD qsort, pruned to the range ``lrange..rrange``), in place.

    Only the element order matters, so pointers become indexes; the range
    test is done in bytes of 16-byte elements, as in C, so that degenerate
    ranges prune exactly as Redis's do.
    """
    es = 16
    lr = lrange * es
    rr = (rrange + 1) * es - 1
    _pqsort_part(vec, 0, len(vec), cmp, lr, rr, es)


def _insertion(vec, a, n, cmp):
    for m in range(a + 1, a + n):
        pl = m
        while pl > a and cmp(vec[pl - 1], vec[pl]) > 0:
            vec[pl], vec[pl - 1] = vec[pl - 1], vec[pl]
            pl -= 1


def _med3(vec, a, b, c, cmp):
    if cmp(vec[a], vec[b]) < 0:
        if cmp(vec[b], vec[c]) < 0:
            return b
        return c if cmp(vec[a], vec[c]) < 0 else a
    if cmp(vec[b], vec[c]) > 0:
        return b
    return a if cmp(vec[a], vec[c]) < 0 else c


def _vecswap(vec, i, j, n):
    for k in range(n):
        vec[i + k], vec[j + k] = vec[j + k], vec[i + k]


def _pqsort_part(vec, a, n, cmp, lr, rr, es):
    while True:
        swapped = False
        if n < 7:
            _insertion(vec, a, n, cmp)
            return
        pm = a + n // 2
        if n > 7:
            pl = a
            pn = a + n - 1
            if n > 40:
                d = n // 8
                pl = _med3(vec, pl, pl + d, pl + 2 * d, cmp)
                pm = _med3(vec, pm - d, pm, pm + d, cmp)
                pn = _med3(vec, pn - 2 * d, pn - d, pn, cmp)
            pm = _med3(vec, pl, pm, pn, cmp)
        vec[a], vec[pm] = vec[pm], vec[a]
        pa = pb = a + 1
        pc = pd = a + n - 1
        pivot = vec[a]
        while True:
            while pb <= pc:
                r = cmp(vec[pb], pivot)
                if r > 0:
                    break
                if r == 0:
                    swapped = True
                    vec[pa], vec[pb] = vec[pb], vec[pa]
                    pa += 1
                pb += 1
            while pb <= pc:
                r = cmp(vec[pc], pivot)
                if r < 0:
                    break
                if r == 0:
                    swapped = True
                    vec[pc], vec[pd] = vec[pd], vec[pc]
                    pd -= 1
                pc -= 1
            if pb > pc:
                break
            vec[pb], vec[pc] = vec[pc], vec[pb]
            swapped = True
            pb += 1
            pc -= 1
        if not swapped:
            _insertion(vec, a, n, cmp)
            return
        pn = a + n
        r = min(pa - a, pb - pa)
        _vecswap(vec, a, pb - r, r)
        r = min(pd - pc, pn - pd - 1)
        _vecswap(vec, pb, pn - r, r)
        r = pb - pa
        if r > 1:
            lo_b = a * es
            hi_b = (a + r) * es - 1
            if not ((lr < lo_b and rr < lo_b) or (lr > hi_b and rr > hi_b)):
                _pqsort_part(vec, a, r, cmp, lr, rr, es)
        r = pd - pc
        if r > 1:
            a = pn - r
            n = r
            lo_b = a * es
            hi_b = (a + r) * es - 1
            if not ((lr < lo_b and rr < lo_b) or (lr > hi_b and rr > hi_b)):
                continue
        return


# -------------------------------------------------------------------- SORT


def _sort_keys(argv):
    """Redis's ``sortGetKeys``: the key, plus the last STORE destination."""
    keys = [argv[1]]
    store = None
    skip = {b"limit": 2, b"get": 1, b"by": 1}
    argc = len(argv)
    i = 2
    while i < argc:
        word = keyword(argv[i])
        n = skip.get(word)
        if n is not None:
            i += n
        elif word == b"store" and i + 1 < argc:
            store = argv[i + 1]
        i += 1
    if store is not None:
        keys.append(store)
    return keys


def _in_script(client) -> bool:
    """Redis's CLIENT_SCRIPT: is this command run by a Lua script (EVAL, FCALL)?"""
    try:
        from node.scripting.engine import ScriptClient  # imported late: scripting imports the commands
    except ImportError:  # pragma: no cover - scripting not available
        return False
    return isinstance(client, ScriptClient)


def full_key_read(client, argv, readonly: bool) -> bool:
    """ACLUserCheckCmdWithUnrestrictedKeyAccess: BY/GET patterns may read any key (node.security.acl)."""
    user = getattr(client, "acl_user", None)
    if user is None or user.unrestricted:
        return True
    registry = client.node.acl
    return registry.has_full_key_read(user, registry.index.lookup(b"sort_ro" if readonly else b"sort"), argv)


def _sort_generic(client, argv, readonly: bool):
    desc = alpha = dontsort = False
    limit_start, limit_count = 0, -1
    sortby = None
    store_key = None
    gets = []
    cluster = client.node.cluster_enabled
    argc = len(argv)
    j = 2
    while j < argc:
        left = argc - j - 1
        opt = keyword(argv[j])
        if opt == b"asc":
            desc = False
        elif opt == b"desc":
            desc = True
        elif opt == b"alpha":
            alpha = True
        elif opt == b"limit" and left >= 2:
            limit_start = parse_int(argv[j + 1])
            limit_count = parse_int(argv[j + 2])
            j += 2
        elif not readonly and opt == b"store" and left >= 1:
            store_key = argv[j + 1]
            j += 1
        elif opt == b"by" and left >= 1:
            sortby = argv[j + 1]
            if b"*" not in _cstr(sortby):
                dontsort = True
            elif cluster:
                raise _BY_CLUSTER
            elif not full_key_read(client, argv, readonly):
                raise ErrorReply("ERR BY option of SORT denied due to insufficient ACL permissions.")
            j += 1
        elif opt == b"get" and left >= 1:
            if cluster:
                raise _GET_CLUSTER
            if not full_key_read(client, argv, readonly):
                raise ErrorReply("ERR GET option of SORT denied due to insufficient ACL permissions.")
            gets.append(argv[j + 1])
            j += 1
        else:
            raise SYNTAX_ERROR
        j += 1

    db = client.db
    value = db.lookup_read(argv[1])
    kind = TYPE_NAMES.get(type(value)) if value is not None else b"list"
    if kind not in (b"list", b"set", b"zset"):
        raise WRONGTYPE
    if value is None:
        value = ListValue()

    if dontsort and kind == b"set" and (store_key is not None or _in_script(client)):
        dontsort = False
        alpha = True
        sortby = None

    if kind == b"zset":
        value.listpack = False  # zsetConvert(..., OBJ_ENCODING_SKIPLIST)

    vectorlen = len(value)
    start = limit_start if limit_start > 0 else 0
    end = vectorlen - 1 if limit_count < 0 else start + limit_count - 1
    if start >= vectorlen:
        start = vectorlen - 1
        end = vectorlen - 2
    if end >= vectorlen:
        end = vectorlen - 1

    # Load the elements to sort.
    if dontsort and kind != b"set":
        if start != 0 or end != vectorlen - 1:
            vectorlen = end - start + 1
        if kind == b"list":
            if end >= start:
                vector = _list_range(value, start, vectorlen, desc)
                end -= start
                start = 0
            else:
                vector = []
        else:
            vector = _zset_range(value, start, vectorlen, desc)
            end -= start
            start = 0
    elif kind == b"zset":
        vector = list(value.dict)
    else:
        vector = list(value)

    if not dontsort:
        vector = _sorted(db, vector, sortby, alpha, desc, store_key is not None, start, end)

    if gets:
        outputlen = len(gets) * (end - start + 1)
    else:
        outputlen = end - start + 1

    if store_key is None:
        out = []
        append = out.append
        for k in range(start, end + 1):
            element = vector[k]
            if not gets:
                append(element)
            for pattern in gets:
                append(_lookup_by_pattern(db, pattern, element))
        return out

    stored = ListValue()
    push = stored.append
    for k in range(start, end + 1):
        element = vector[k]
        if not gets:
            push(element)
        for pattern in gets:
            found = _lookup_by_pattern(db, pattern, element)
            push(b"" if found is None else found)
    if outputlen > 0:
        db.set(store_key, stored)
        if outputlen > 1:
            db.dirty += outputlen - 1
        notify(client, LIST, b"sortstore", store_key)
    elif db.delete(store_key):
        notify(client, GENERIC, b"del", store_key)
    return outputlen


def _list_range(lst, start: int, count: int, desc: bool) -> list:
    """``count`` elements from index ``start`` (counted from the tail when ``desc``), walking outward."""
    if desc:
        return list(islice(reversed(lst), start, start + count))
    return list(islice(lst, start, start + count))


def _zset_range(z, start: int, count: int, desc: bool) -> list:
    if count <= 0:
        return []
    size = len(z)
    if desc:
        hi = size - 1 - start
        pairs = z.range_by_rank(max(hi - count + 1, 0), hi, reverse=False)
        return [member for member, _ in reversed(pairs)]
    pairs = z.range_by_rank(start, min(start + count, size) - 1)
    return [member for member, _ in pairs]


class _Cmp:
    """sortCompare over precomputed keys, for the partial quicksort."""

    __slots__ = ("desc",)

    def __init__(self, desc: bool) -> None:
        self.desc = desc

    def __call__(self, x, y) -> int:
        a, b = x[0], y[0]
        r = -1 if a < b else (1 if a > b else 0)
        return -r if self.desc else r


def _sorted(db, vector: list, sortby, alpha: bool, desc: bool, storing: bool, start: int, end: int) -> list:
    """The elements in SORT's order; raises the scores error after loading, as Redis replies."""
    conversion_error = False
    keyed = []
    append = keyed.append
    if alpha:
        for element in vector:
            if sortby is not None:
                weight = _lookup_by_pattern(db, sortby, element)
                if weight is None:
                    append(((0, b""), element))
                else:
                    append(((1, weight if storing else _cstr(weight)), element))
            else:
                append(((element if storing else _cstr(element)), element))
    else:
        for element in vector:
            if sortby is not None:
                weight = _lookup_by_pattern(db, sortby, element)
                score = 0.0 if weight is None else sort_score(weight)
            else:
                score = sort_score(element)
            if score is None:
                conversion_error = True
                score = 0.0
            append(((score, element), element))
    if sortby is not None and (start != 0 or end != len(vector) - 1):
        _pqsort(keyed, _Cmp(desc), start, end)
    else:
        keyed.sort(key=_first, reverse=desc)
    if conversion_error:
        raise _SCORES_ERROR
    return [element for _, element in keyed]


def _first(pair):
    return pair[0]


_SORT_COMPLEXITY = (
    "O(N+M*log(M)) where N is the number of elements in the list or set to sort, and M the number of "
    "returned elements. When the elements are not sorted, complexity is O(N)."
)


@command("sort", -2, "write denyoom", (1, 1, 1), group="generic",
         summary="Sort the elements in a list, set or sorted set", since="1.0.0",
         complexity=_SORT_COMPLEXITY, key_finder=_sort_keys)
def sort(client, argv):
    return _sort_generic(client, argv, readonly=False)


def _sort_ro_keys(argv):
    """Redis's ``sortROGetKeys``: just the key (BY/GET keys are unknowable)."""
    return [argv[1]]


@command("sort_ro", -2, "readonly", (1, 1, 1), group="generic",
         summary="Sort the elements in a list, set or sorted set. Read-only variant of SORT.", since="7.0.0",
         complexity=_SORT_COMPLEXITY, key_finder=_sort_ro_keys)
def sort_ro(client, argv):
    return _sort_generic(client, argv, readonly=True)


# Redis lists SORT under the data types it sorts, not under @keyspace.
TABLE[b"sort"].categories = ("write", "set", "sortedset", "list", "slow", "dangerous")
TABLE[b"sort_ro"].categories = ("read", "set", "sortedset", "list", "slow", "dangerous")
