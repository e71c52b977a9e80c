"""The list value: a ``deque`` of byte strings with Redis's index arithmetic.

Why a ``deque``: pushes and pops at either end are O(1), and indexing walks
64-element blocks from the nearer end, so LINDEX/LSET near either end are
cheap, as they are on Redis's quicklist. The methods below add what the
commands need on top, each with Redis 7.0's rules for negative and
out-of-range indexes, and each choosing the cheaper end to walk from.

Elements are always ``bytes``. An empty list is never stored: the commands
delete the key when a list becomes empty, as Redis does.

Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections import deque
from itertools import islice

__all__ = ["ListValue"]

_LLONG_MIN = -(2**63)



def rank_range(start: int, end: int, n: int) -> tuple[int, int] | None:
    """Redis's rank range clamping (LRANGE, LTRIM, ZRANGE, ZREMRANGEBYRANK): negative ranks count from
    the end; the inclusive range within ``0..n-1``, or None when it is empty."""
    if start < 0:
        start += n
    if end < 0:
        end += n
    if start < 0:
        start = 0
    if start > end or start >= n:
        return None
    if end >= n:
        end = n - 1
    return start, end

class ListValue(deque):
    __slots__ = ()

    # --------------------------------------------------------------- reads

    def get(self, index: int):
        """LINDEX: the element at ``index`` (negative counts from the tail), or None."""
        n = len(self)
        if index < 0:
            index += n
            if index < 0:
                return None
        elif index >= n:
            return None
        return self[index]

    def range(self, start: int, end: int) -> list:
        """LRANGE: elements ``start..end`` inclusive, Redis's clamping of out-of-range ends."""
        n = len(self)
        bounds = rank_range(start, end, n)
        if bounds is None:
            return []
        start, end = bounds
        if start == 0 and end == n - 1:
            return list(self)
        if start <= n - 1 - end:
            return list(islice(self, start, end + 1))
        # Nearer the tail: walk from there and turn the slice around.
        out = list(islice(reversed(self), n - 1 - end, n - start))
        out.reverse()
        return out

    def positions(self, element: bytes, rank: int, count: int, maxlen: int) -> list[int]:
        """LPOS: indexes of matches of ``element`` (``count`` -1 means "just the first").

        ``rank`` is never 0 here (the command rejects it). Negative ranks scan
        from the tail. ``count`` 0 means all matches; ``maxlen`` 0 means scan
        the whole list. A rank of LLONG_MIN behaves as in Redis, where negating
        it overflows: a scan from the tail that takes the first match and,
        with COUNT, every match after it.
        """
        n = len(self)
        from_tail = rank < 0
        unlimited = rank == _LLONG_MIN
        if from_tail:
            rank = 1 if unlimited else -rank
        limit = n if maxlen == 0 or maxlen > n else maxlen
        it = islice(reversed(self) if from_tail else iter(self), limit)
        out: list[int] = []
        matches = 0
        for i, item in enumerate(it):
            if item == element:
                matches += 1
                if matches >= rank:
                    out.append(n - 1 - i if from_tail else i)
                    if count == -1:
                        break
                    if count and not unlimited and matches - rank + 1 >= count:
                        break
        return out

    # -------------------------------------------------------------- writes

    def set_at(self, index: int, element: bytes) -> bool:
        """LSET: replace the element at ``index``; False if out of range."""
        n = len(self)
        if index < 0:
            index += n
            if index < 0:
                return False
        elif index >= n:
            return False
        self[index] = element
        return True

    def insert_at_pivot(self, pivot: bytes, element: bytes, after: bool) -> bool:
        """LINSERT: put ``element`` before/after the first ``pivot`` from the head."""
        try:
            index = self.index(pivot)
        except ValueError:
            return False
        self.insert(index + 1 if after else index, element)
        return True

    def remove_matches(self, element: bytes, count: int) -> int:
        """LREM: remove up to ``|count|`` matches from the head (count > 0) or tail (< 0), all if 0."""
        if element not in self:
            return 0
        if count < 0:
            limit = -count
            source = reversed(self)
        else:
            limit = count or len(self)
            source = iter(self)
        kept = []
        removed = 0
        for item in source:
            if removed < limit and item == element:
                removed += 1
            else:
                kept.append(item)
        if count < 0:
            kept.reverse()
        self.clear()
        self.extend(kept)
        return removed

    def trim(self, start: int, end: int) -> int:
        """LTRIM: keep ``start..end`` (Redis's clamping); returns how many elements went."""
        n = len(self)
        bounds = rank_range(start, end, n)
        if bounds is None:
            self.clear()
            return n
        start, end = bounds
        left, right = start, n - 1 - end
        removed = left + right
        if removed > end - start + 1:
            # Keeping fewer than we drop: copy the survivors instead.
            kept = self.range(start, end)
            self.clear()
            self.extend(kept)
            return removed
        pop, popleft = self.pop, self.popleft
        for _ in range(left):
            popleft()
        for _ in range(right):
            pop()
        return removed

    def pop_many(self, count: int, left: bool) -> list:
        """Pop up to ``count`` elements from one end, in the order they come off."""
        if count >= len(self):
            out = list(self)
            if not left:
                out.reverse()
            self.clear()
            return out
        pop = self.popleft if left else self.pop
        return [pop() for _ in range(count)]

