"""The sorted set value: members with float scores, ordered by (score, member).

Pure data structure (no trio, no clock, no config): a ``dict`` member -> score
for O(1) lookups plus a ``sortedcontainers.SortedList`` of ``(score, member)``
tuples for log-time ranks and ranges.

Ordering is Redis's: by score, then by member bytes compared like ``memcmp``
with the shorter string first on a common prefix -- which is exactly how
Python compares ``bytes``. ``-0.0`` and ``0.0`` are equal scores (Python's
``==``), so they tie and order by member; like Redis's ``zsetAdd``, updating a
member to an equal score (``0`` -> ``-0``) keeps the stored score unchanged.
NaN scores are never stored (callers reject them, as Redis does).

API (used by the ZSET commands, GEO*, and SORT)::

    z = ZSet()                     # empty, listpack-encoded
    len(z); member in z
    z.score(member) -> float | None
    z.add(member, score) -> None   # insert or update (no-op if score == old)
    z.remove(member) -> bool
    z.rank(member, reverse=False) -> int | None
    z.range_by_rank(start, stop, reverse=False) -> [(member, score)]
        # inclusive, already normalised 0 <= start <= stop < len(z)
    z.range_by_score(min, max, min_exclusive=False, max_exclusive=False,
                     reverse=False, offset=0, count=-1) -> [(member, score)]
        # with reverse=True, elements come from max down to min
    z.count_in_score_range(min, max, min_exclusive=False, max_exclusive=False) -> int
    z.range_by_lex(lmin, lmax, reverse=False, offset=0, count=-1) -> [(member, score)]
    z.count_in_lex_range(lmin, lmax) -> int
    z.items() -> iterator of (member, score) in ascending (score, member) order
    z.reversed_items(), z.members()
    z.pop(count, reverse=False) -> [(member, score)]   # lowest (highest) first
    z.remove_range_by_rank(start, stop) / remove_range_by_score(...) /
    remove_range_by_lex(lmin, lmax) -> number removed
    z.dict                         # member -> score (treat as read-only)
    z.copy() -> ZSet
    z.insert(member, score, max_entries, max_value)
        # add() with Redis's zsetAdd encoding rule: a NEW member that would
        # make the listpack longer than max_entries, or is longer than
        # max_value bytes, converts the set to skiplist first
    ZSet.from_pairs(pairs, listpack) -> ZSet   # pairs of (member, score)

Lexicographic bounds (``lmin``/``lmax``) are what ``parse_lex_bound`` returns:
``LEX_MIN`` for ``-``, ``LEX_MAX`` for ``+``, or ``(value, exclusive)``.

``listpack`` is the flag behind OBJECT ENCODING: True while Redis would keep
the set as a listpack. The pure class does not know the config thresholds:
writers that follow Redis's encoding rules call ``z.insert(member, score,
max_entries, max_value)`` (``zset_insert(client, z, member, score)`` and
``new_zset(client, first_member)`` in ``node/commands/zsets.py`` read the
config); ``check_encoding(max_entries, max_value, member_len)`` after an
``add`` of a new member does the same. Plain ``add`` never converts. Once
False, the flag stays False, as in Redis (which converts back only when
loading a dump).

One observable effect of the listpack encoding is kept: a listpack stores a
score that is a whole number as an integer, so ``-0`` is stored as ``0``
(ZADD z -0 m; ZSCORE z m -> "0"), while a skiplist keeps ``-0``. ``add``
does the same while ``listpack`` is set.
"""

from __future__ import annotations

from sortedcontainers import SortedList

__all__ = ["LEX_MAX", "LEX_MIN", "ZSet", "lex_gte_min", "lex_lte_max", "parse_lex_bound"]


class _Top:
    """Compares greater than any bytes: ``(score, TOP)`` sorts after every ``(score, member)``."""

    __slots__ = ()

    def __gt__(self, other):
        return True

    def __ge__(self, other):
        return True

    def __lt__(self, other):
        return False

    def __le__(self, other):
        return False


_TOP = _Top()
_INF = float("inf")


class _LexEnd:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


#: The ``-`` and ``+`` lexicographic bounds (Redis's shared.minstring / maxstring).
LEX_MIN = _LexEnd("LEX_MIN")
LEX_MAX = _LexEnd("LEX_MAX")


def parse_lex_bound(arg: bytes):
    """``-``, ``+``, ``[value`` or ``(value`` as a bound; None if not valid (Redis's error is the caller's)."""
    if not arg:
        return None
    first = arg[0]
    # '+' and '-' must end the C string: "+" alone, or followed by a NUL.
    if first == 0x2B:  # '+'
        return LEX_MAX if len(arg) == 1 or arg[1] == 0 else None
    if first == 0x2D:  # '-'
        return LEX_MIN if len(arg) == 1 or arg[1] == 0 else None
    if first == 0x28:  # '('
        return (arg[1:], True)
    if first == 0x5B:  # '['
        return (arg[1:], False)
    return None


def lex_gte_min(member: bytes, lmin) -> bool:
    """Is ``member`` at or above the lower bound ``lmin``?"""
    if lmin is LEX_MIN:
        return True
    if lmin is LEX_MAX:
        return False
    value, exclusive = lmin
    return member > value if exclusive else member >= value


def lex_lte_max(member: bytes, lmax) -> bool:
    """Is ``member`` at or below the upper bound ``lmax``?"""
    if lmax is LEX_MAX:
        return True
    if lmax is LEX_MIN:
        return False
    value, exclusive = lmax
    return member < value if exclusive else member <= value


def _lex_range_empty(lmin, lmax) -> bool:
    """Redis's zslIsInLexRange pre-check: min above max, or equal with an exclusive end."""
    if lmin is lmax:
        return True  # '-' '-' or '+' '+': equal and exclusive
    if lmin is LEX_MAX or lmax is LEX_MIN:
        return True
    if lmin is LEX_MIN or lmax is LEX_MAX:
        return False
    (vmin, exmin), (vmax, exmax) = lmin, lmax
    if vmin > vmax:
        return True
    return vmin == vmax and (exmin or exmax)


class ZSet:
    """A Redis sorted set. See the module docstring for the API."""

    __slots__ = ("dict", "_sl", "listpack")

    def __init__(self, listpack: bool = True) -> None:
        self.dict: dict[bytes, float] = {}
        self._sl = SortedList()
        self.listpack = listpack

    # ------------------------------------------------------------- basics

    def __len__(self) -> int:
        return len(self.dict)

    def __contains__(self, member) -> bool:
        return member in self.dict

    def __repr__(self) -> str:
        return f"ZSet({list(self.items())!r})"

    def score(self, member: bytes):
        return self.dict.get(member)

    def add(self, member: bytes, score: float) -> None:
        """Insert ``member`` or move it to ``score`` (nothing happens if the score is equal)."""
        if score == 0.0 and self.listpack:
            score = 0.0  # a listpack stores -0 as the integer 0
        d = self.dict
        old = d.get(member)
        if old is not None:
            if old == score:
                return
            self._sl.remove((old, member))
        d[member] = score
        self._sl.add((score, member))

    def remove(self, member: bytes) -> bool:
        old = self.dict.pop(member, None)
        if old is None:
            return False
        self._sl.remove((old, member))
        return True

    def check_encoding(self, max_entries: int, max_value: int, member_len: int = 0) -> None:
        """Turn the listpack flag off if the size, or a just-added member of ``member_len`` bytes, passes the limits."""
        if self.listpack and (len(self.dict) > max_entries or member_len > max_value):
            self.listpack = False

    def insert(self, member: bytes, score: float, max_entries: int, max_value: int) -> None:
        """``add`` with zsetAdd's conversion: a new member converts first if the listpack would outgrow the limits."""
        d = self.dict
        if member in d:
            self.add(member, score)
            return
        if self.listpack:
            if len(d) + 1 > max_entries or len(member) > max_value:
                self.listpack = False
            elif score == 0.0:
                score = 0.0  # a listpack stores -0 as the integer 0
        d[member] = score
        self._sl.add((score, member))

    @classmethod
    def from_pairs(cls, pairs, listpack: bool) -> "ZSet":
        """A set holding ``(member, score)`` pairs (members unique), with the given encoding."""
        z = cls(listpack)
        d = z.dict
        if listpack:
            for member, score in pairs:
                d[member] = 0.0 if score == 0.0 else score
        else:
            for member, score in pairs:
                d[member] = score
        z._sl = SortedList((s, m) for m, s in d.items())
        return z

    def copy(self) -> "ZSet":
        new = ZSet(self.listpack)
        new.dict = dict(self.dict)
        new._sl = SortedList(self._sl)
        return new

    def items(self):
        """(member, score) pairs in ascending (score, member) order."""
        for score, member in self._sl:
            yield member, score

    def reversed_items(self):
        for score, member in reversed(self._sl):
            yield member, score

    def members(self):
        for _, member in self._sl:
            yield member

    # -------------------------------------------------------------- ranks

    def rank(self, member: bytes, reverse: bool = False):
        score = self.dict.get(member)
        if score is None:
            return None
        r = self._sl.bisect_left((score, member))
        return len(self.dict) - 1 - r if reverse else r

    def range_by_rank(self, start: int, stop: int, reverse: bool = False) -> list:
        """Elements at ranks start..stop inclusive (ranks counted from the top if ``reverse``)."""
        sl = self._sl
        n = len(sl)
        if reverse:
            it = sl.islice(n - 1 - stop, n - start, reverse=True)
        else:
            it = sl.islice(start, stop + 1)
        return [(m, s) for s, m in it]

    def remove_range_by_rank(self, start: int, stop: int) -> int:
        """Remove ascending ranks start..stop inclusive; returns how many went."""
        sl = self._sl
        d = self.dict
        doomed = list(sl.islice(start, stop + 1))
        for _, member in doomed:
            del d[member]
        del sl[start:stop + 1]
        return len(doomed)

    def pop(self, count: int, reverse: bool = False) -> list:
        """Remove and return up to ``count`` lowest (or highest) elements, in pop order."""
        sl = self._sl
        n = min(count, len(sl))
        if n <= 0:
            return []
        if reverse:
            out = [(m, s) for s, m in sl.islice(len(sl) - n, len(sl), reverse=True)]
            del sl[len(sl) - n:]
        else:
            out = [(m, s) for s, m in sl.islice(0, n)]
            del sl[:n]
        d = self.dict
        for m, _ in out:
            del d[m]
        return out

    # ------------------------------------------------------------- scores

    def _score_span(self, lo: float, hi: float, lo_ex: bool, hi_ex: bool):
        """Ascending index span [i, j) of scores within the range (i >= j if empty)."""
        sl = self._sl
        if lo_ex:
            if lo == _INF:
                return 0, 0
            i = sl.bisect_right((lo, _TOP))
        else:
            i = sl.bisect_left((lo,))
        if hi_ex:
            if hi == -_INF:
                return 0, 0
            j = sl.bisect_left((hi,))
        else:
            j = sl.bisect_right((hi, _TOP))
        return i, j

    def _score_range_empty(self, lo, hi, lo_ex, hi_ex) -> bool:
        return lo > hi or (lo == hi and (lo_ex or hi_ex))

    def count_in_score_range(self, min: float, max: float, min_exclusive: bool = False,
                             max_exclusive: bool = False) -> int:
        if self._score_range_empty(min, max, min_exclusive, max_exclusive):
            return 0
        i, j = self._score_span(min, max, min_exclusive, max_exclusive)
        return j - i if j > i else 0

    def range_by_score(self, min: float, max: float, min_exclusive: bool = False, max_exclusive: bool = False,
                       reverse: bool = False, offset: int = 0, count: int = -1) -> list:
        """(member, score) pairs with min <(=) score <(=) max, after skipping ``offset``.

        ``count < 0`` means no limit. With ``reverse`` the walk starts at the top.
        """
        if self._score_range_empty(min, max, min_exclusive, max_exclusive) or offset < 0 or count == 0:
            return []
        i, j = self._score_span(min, max, min_exclusive, max_exclusive)
        return self._slice(i, j, reverse, offset, count)

    def remove_range_by_score(self, min: float, max: float, min_exclusive: bool = False,
                              max_exclusive: bool = False) -> int:
        if self._score_range_empty(min, max, min_exclusive, max_exclusive):
            return 0
        i, j = self._score_span(min, max, min_exclusive, max_exclusive)
        if j <= i:
            return 0
        return self.remove_range_by_rank(i, j - 1)

    def _slice(self, i: int, j: int, reverse: bool, offset: int, count: int) -> list:
        if j <= i:
            return []
        if reverse:
            stop = j - offset
            start = i if count < 0 else max(i, stop - count)
            if stop <= start:
                return []
            return [(m, s) for s, m in self._sl.islice(start, stop, reverse=True)]
        start = i + offset
        stop = j if count < 0 else min(j, start + count)
        if stop <= start:
            return []
        return [(m, s) for s, m in self._sl.islice(start, stop)]

    # ---------------------------------------------------------------- lex

    def _lex_span(self, lmin, lmax, reverse: bool = False):
        """Index span [i, j) of members within the lex range, in ascending order.

        Redis defines lex ranges only when all scores are equal, and then this
        is simply the members between the bounds. With mixed scores a
        listpack-encoded set follows Redis's listpack walk exactly: give up
        unless the last member is >= min and the first <= max; forwards,
        start at the first member >= min and go on while <= max; in reverse,
        start at the last member <= max and go back while >= min. A big
        (skiplist) set uses binary searches, which agree with Redis's
        skiplist search whenever scores are equal.
        """
        sl = self._sl
        n = len(sl)
        if not n or _lex_range_empty(lmin, lmax):
            return 0, 0
        if self.listpack:
            if not lex_gte_min(sl[n - 1][1], lmin) or not lex_lte_max(sl[0][1], lmax):
                return 0, 0
            if reverse:
                j = n - 1
                while j >= 0 and not lex_lte_max(sl[j][1], lmax):
                    j -= 1
                if j < 0 or not lex_gte_min(sl[j][1], lmin):
                    return 0, 0
                i = j - 1
                while i >= 0 and lex_gte_min(sl[i][1], lmin):
                    i -= 1
                return i + 1, j + 1
            i = 0
            while i < n and not lex_gte_min(sl[i][1], lmin):
                i += 1
            if i == n or not lex_lte_max(sl[i][1], lmax):
                return 0, 0
            j = i + 1
            while j < n and lex_lte_max(sl[j][1], lmax):
                j += 1
            return i, j
        lo, hi = 0, n
        while lo < hi:
            mid = (lo + hi) // 2
            if lex_gte_min(sl[mid][1], lmin):
                hi = mid
            else:
                lo = mid + 1
        i = lo
        lo, hi = i, n
        while lo < hi:
            mid = (lo + hi) // 2
            if lex_lte_max(sl[mid][1], lmax):
                lo = mid + 1
            else:
                hi = mid
        return i, lo

    def range_by_lex(self, lmin, lmax, reverse: bool = False, offset: int = 0, count: int = -1) -> list:
        """(member, score) pairs in the lex range, after skipping ``offset``; ``count < 0`` = no limit."""
        if offset < 0 or count == 0:
            return []
        i, j = self._lex_span(lmin, lmax, reverse)
        return self._slice(i, j, reverse, offset, count)

    def count_in_lex_range(self, lmin, lmax) -> int:
        i, j = self._lex_span(lmin, lmax)
        return j - i if j > i else 0

    def remove_range_by_lex(self, lmin, lmax) -> int:
        i, j = self._lex_span(lmin, lmax)
        if j <= i:
            return 0
        return self.remove_range_by_rank(i, j - 1)
