"""The set value, with Redis 7.0's two encodings: ``intset`` and ``hashtable``.

Pure data structure (no trio, no clock, no config: callers pass the
``set-max-intset-entries`` threshold to ``add``).

* ``intset``: every member is a canonical signed 64-bit integer (Redis's
  ``string2ll``: no ``+``, no leading zeros, no ``-0``) and there are at most
  ``set-max-intset-entries`` of them. Stored as a sorted Python list of ints,
  like Redis's sorted int array, so iteration is in ascending numeric order
  exactly as Redis replies (SMEMBERS, SSCAN, SINTER...). Lookups bisect.
* ``hashtable``: a dict member -> position plus the list of members, so a
  random member (SPOP, SRANDMEMBER) costs O(1) and removal swaps the last
  member into the hole. Iteration order is that list's order, which differs
  from Redis's hash-table order (tests compare such replies as sets).

An intset converts to a hashtable when a non-integer member is added or the
size goes over the threshold, never back -- except that, as in Redis, result
sets (SINTERSTORE, SUNIONSTORE, SMOVE's new destination, SPOP's rebuilt
remainder) are built from scratch and start as an intset again.

``scan_cache`` serves SSCAN on hashtable sets: the members ordered by a
per-process hash, built on demand and dropped by every change.

API::

    s = SetValue()                   # empty intset
    s = SetValue.from_members(iterable, max_intset)
    len(s); member in s; iter(s) -> bytes members in Redis's order
    s.add(member, max_intset) -> bool
    s.remove(member) -> bool
    s.random_member(rng) -> bytes
    s.pop_random(rng) -> bytes
    s.is_intset; s.encoding -> b"intset" | b"hashtable"
    s.members() -> list[bytes]
    s.scan_order() -> [(hash, member)] sorted by hash (hashtable only)
    s.copy() -> SetValue
"""

from __future__ import annotations

from bisect import bisect_left

from node.resp.parser import string2ll

__all__ = ["SetValue"]

_MASK64 = (1 << 64) - 1


class SetValue:
    """A Redis set. See the module docstring."""

    __slots__ = ("ints", "index", "items", "scan_cache")

    def __init__(self) -> None:
        #: Sorted ints while intset-encoded, else None.
        self.ints: list[int] | None = []
        #: member -> position in ``items`` (hashtable encoding only).
        self.index: dict[bytes, int] | None = None
        self.items: list[bytes] | None = None
        self.scan_cache = None

    @classmethod
    def from_members(cls, members, max_intset: int) -> "SetValue":
        """A new set holding ``members`` in that order, encoded as Redis would build it."""
        s = cls()
        add = s.add
        for m in members:
            add(m, max_intset)
        return s

    # ------------------------------------------------------------- basics

    def __len__(self) -> int:
        ints = self.ints
        return len(ints) if ints is not None else len(self.items)

    def __bool__(self) -> bool:
        return len(self) > 0

    def __contains__(self, member) -> bool:
        ints = self.ints
        if ints is None:
            return member in self.index
        value = string2ll(member)
        if value is None:
            return False
        i = bisect_left(ints, value)
        return i < len(ints) and ints[i] == value

    def __iter__(self):
        ints = self.ints
        if ints is None:
            return iter(self.items)
        return (b"%d" % v for v in ints)

    def __repr__(self) -> str:
        return f"SetValue({self.encoding.decode()}, {self.members()!r})"

    def __eq__(self, other) -> bool:
        if not isinstance(other, SetValue):
            return NotImplemented
        return len(self) == len(other) and all(m in other for m in self)

    __hash__ = None  # mutable

    @property
    def is_intset(self) -> bool:
        return self.ints is not None

    @property
    def encoding(self) -> bytes:
        return b"intset" if self.ints is not None else b"hashtable"

    def members(self) -> list[bytes]:
        ints = self.ints
        if ints is None:
            return list(self.items)
        return [b"%d" % v for v in ints]

    # ------------------------------------------------------------- changes

    def convert(self) -> None:
        """intset -> hashtable (no-op if already a hashtable)."""
        ints = self.ints
        if ints is None:
            return
        items = [b"%d" % v for v in ints]
        self.items = items
        self.index = {m: i for i, m in enumerate(items)}
        self.ints = None

    def add(self, member: bytes, max_intset: int) -> bool:
        """Add ``member``; True if it was new. Converts as Redis's ``setTypeAdd`` does."""
        ints = self.ints
        if ints is not None:
            value = string2ll(member)
            if value is not None:
                i = bisect_left(ints, value)
                if i < len(ints) and ints[i] == value:
                    return False
                ints.insert(i, value)
                self.scan_cache = None
                if len(ints) > max_intset:
                    self.convert()
                return True
            self.convert()
        index = self.index
        if member in index:
            return False
        index[member] = len(self.items)
        self.items.append(member)
        self.scan_cache = None
        return True

    def remove(self, member: bytes) -> bool:
        """Remove ``member``; True if it was there."""
        ints = self.ints
        if ints is not None:
            value = string2ll(member)
            if value is None:
                return False
            i = bisect_left(ints, value)
            if i < len(ints) and ints[i] == value:
                del ints[i]
                self.scan_cache = None
                return True
            return False
        index = self.index
        pos = index.pop(member, None)
        if pos is None:
            return False
        items = self.items
        last = items.pop()
        if pos < len(items):
            items[pos] = last
            index[last] = pos
        self.scan_cache = None
        return True

    def random_member(self, rng) -> bytes:
        """A uniformly random member of a non-empty set."""
        ints = self.ints
        if ints is not None:
            return b"%d" % ints[rng.randrange(len(ints))]
        items = self.items
        return items[rng.randrange(len(items))]

    def pop_random(self, rng) -> bytes:
        """Remove and return a uniformly random member of a non-empty set."""
        ints = self.ints
        self.scan_cache = None
        if ints is not None:
            return b"%d" % ints.pop(rng.randrange(len(ints)))
        items = self.items
        pos = rng.randrange(len(items))
        member = items[pos]
        last = items.pop()
        index = self.index
        del index[member]
        if pos < len(items):
            items[pos] = last
            index[last] = pos
        return member

    # ------------------------------------------------------------- iteration

    def scan_order(self) -> list:
        """``[(hash, member)]`` in ascending hash order, for SSCAN cursors (cached)."""
        cache = self.scan_cache
        if cache is None:
            cache = sorted([(hash(m) & _MASK64, m) for m in self])
            self.scan_cache = cache
        return cache

    def copy(self) -> "SetValue":
        s = SetValue()
        if self.ints is not None:
            s.ints = list(self.ints)
        else:
            s.ints = None
            s.items = list(self.items)
            s.index = dict(self.index)
        return s

    def __copy__(self) -> "SetValue":
        return self.copy()

    def __deepcopy__(self, memo) -> "SetValue":
        return self.copy()
