"""Choosing keys to evict: Redis's sampled approximations (evict.c).

``EvictionPool`` is Redis's pool of 16 candidates kept across calls, sorted
by ascending score ("idle" in Redis's words: LRU idle time, 255 minus the
LFU counter, or how soon the TTL ends for volatile-ttl), best candidate
last. Each round samples ``maxmemory-samples`` keys from every database
(``sample_keys``: random slots, a random key within each slot, like
``dictGetSomeKeys`` picking random buckets) and merges them in; the best
entry that still exists is evicted. Entries are not removed when their key
is deleted elsewhere: such ghosts are skipped when met, as in Redis.
"""

from __future__ import annotations

from bisect import bisect_left
from itertools import islice

from slots import SLOT_COUNT

__all__ = ["EVPOOL_SIZE", "EvictionPool", "sample_keys", "random_key"]

EVPOOL_SIZE = 16
_MASK = SLOT_COUNT - 1


def sample_keys(dicts: list, count: int, rng) -> list:
    """Up to ``count`` (slot, key) pairs drawn from the per-slot dicts ``dicts``.

    Each draw starts at a random slot and walks to the next non-empty one, then
    takes the key at a random position of that slot. The caller knows the dicts
    hold keys. ``rng.random`` is used rather than ``randrange``: ~8x cheaper.
    """
    out = []
    rand = rng.random
    for _ in range(count):
        slot = int(rand() * SLOT_COUNT)
        d = dicts[slot]
        if not d:
            for _ in range(SLOT_COUNT):
                slot = (slot + 1) & _MASK
                d = dicts[slot]
                if d:
                    break
            else:
                break
        n = len(d)
        if n == 1:
            out.append((slot, next(iter(d))))
        else:
            out.append((slot, next(islice(d, int(rand() * n), None))))
    return out


def random_key(dicts: list, rng):
    found = sample_keys(dicts, 1, rng)
    return found[0] if found else None


class EvictionPool:
    """Up to 16 (score, db index, key), ascending by score: the best candidate is last."""

    __slots__ = ("scores", "entries")

    def __init__(self) -> None:
        self.scores: list = []
        self.entries: list = []

    def __len__(self) -> int:
        return len(self.entries)

    def clear(self) -> None:
        self.scores.clear()
        self.entries.clear()

    def offer(self, score, db_index: int, key: bytes) -> None:
        """evictionPoolPopulate's insertion: keep the 16 best, dropping the worst when full."""
        scores = self.scores
        k = bisect_left(scores, score)
        if len(scores) >= EVPOOL_SIZE:
            if k == 0:
                return  # worse than everything in a full pool
            # Full: the worst (leftmost) goes, the new one lands just left of k.
            del scores[0]
            del self.entries[0]
            k -= 1
        scores.insert(k, score)
        self.entries.insert(k, (db_index, key))

    def pop_best(self):
        """Remove and return the best (db index, key), or None if empty."""
        if not self.entries:
            return None
        self.scores.pop()
        return self.entries.pop()
