"""The hash value: a ``dict`` field -> value (both ``bytes``), plus Redis's encoding flag.

Pure data structure (no trio, no clock, no config). A ``dict`` keeps insertion
order, which is exactly the order of a listpack-encoded hash in Redis: a new
field goes to the end, updating a field keeps its place, deleting one closes
the gap. Once Redis would have converted the hash to a real hash table
(``hashtable`` encoding) its order differs from Redis's anyway; Shoal keeps
iterating in insertion order.

``hashtable`` is the flag behind OBJECT ENCODING: False while Redis keeps the
hash as a listpack. The class does not know the config thresholds; command
code calls ``check_encoding`` (or sets the flag) as Redis's ``t_hash.c`` does,
and the flag never goes back to False, as in Redis.

``scan_cache`` serves HSCAN and HRANDFIELD on big hashes: a list of the fields
ordered by a per-process hash, built on demand. Every command that changes the
hash must call ``changed()`` (command code does it next to ``db.touch``) so a
stale list is never used.

API::

    h = HashValue()                  # empty, listpack-encoded
    h[field] = value; h.get(field); del h[field]; len(h); ...  (dict)
    h.hashtable                      # True once converted
    h.check_encoding(max_entries, max_value, *lengths)
    h.changed()                      # drop the scan cache after a write
    h.scan_order() -> [(hash, field)] sorted by hash (cached)
    h.copy() -> HashValue            # same encoding
"""

from __future__ import annotations

__all__ = ["HashValue", "scan_hash"]

_MASK64 = (1 << 64) - 1


def scan_hash(member: bytes) -> int:
    """An unsigned 64-bit hash of ``member``, stable for this process (SCAN cursors)."""
    return hash(member) & _MASK64


class HashValue(dict):
    """A Redis hash. See the module docstring."""

    __slots__ = ("hashtable", "scan_cache")

    def __init__(self, *args, hashtable: bool = False) -> None:
        super().__init__(*args)
        self.hashtable = hashtable
        self.scan_cache = None

    def __repr__(self) -> str:
        kind = "hashtable" if self.hashtable else "listpack"
        return f"HashValue({kind}, {dict.__repr__(self)})"

    def check_encoding(self, max_entries: int, max_value: int, *lengths: int) -> None:
        """Convert (flag) if too many entries or any of ``lengths`` is over ``max_value``."""
        if self.hashtable:
            return
        if len(self) > max_entries:
            self.hashtable = True
            return
        for n in lengths:
            if n > max_value:
                self.hashtable = True
                return

    def changed(self) -> None:
        self.scan_cache = None

    def scan_order(self) -> list:
        """``[(scan_hash(field), field)]`` in ascending hash order (cached until ``changed``)."""
        cache = self.scan_cache
        if cache is None:
            cache = sorted([(hash(f) & _MASK64, f) for f in self])
            self.scan_cache = cache
        return cache

    def copy(self) -> "HashValue":
        return HashValue(self, hashtable=self.hashtable)

    # dict's own methods return plain dicts from copy(); pickling/deepcopy go through copy.
    def __copy__(self) -> "HashValue":
        return self.copy()

    def __deepcopy__(self, memo) -> "HashValue":
        return self.copy()

    def __reduce__(self):
        return (_rebuild, (dict(self), self.hashtable))


def _rebuild(items: dict, hashtable: bool) -> HashValue:
    return HashValue(items, hashtable=hashtable)
