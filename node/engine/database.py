"""One logical database: keys grouped by hash slot, with a side table of expiry times.

Why per-slot dicts, even outside cluster mode:
* cluster operations (COUNTKEYSINSLOT, GETKEYSINSLOT, migrating or dropping a
  slot) touch one slot without scanning the keyspace;
* SCAN gets a stable cursor for free: the cursor is a slot number, and a
  slot is returned whole, so a key present for the whole scan is never missed
  however the dicts grow or shrink in between;
* it costs no memory per key over one big dict. Empty slots share one
  read-only empty dict, so an idle database costs a 16384-entry list.

Expiry times live in per-slot side dicts for volatile keys only (wrapping every
value with its TTL would cost ~65 bytes per key). A key whose time has passed
is never returned: every read goes through ``lookup``, which deletes it.

Time is injected: ``clock.now()`` returns unix milliseconds, pinned once per
command by the dispatcher, as Redis does, so one command sees one "now"
throughout.
"""

from __future__ import annotations

from typing import Callable, Iterator

from slots import SLOT_COUNT, keyslot

__all__ = ["Database", "EMPTY"]


class _EmptySlot(dict):
    """The shared stand-in for a slot with no keys. Never written to."""

    __slots__ = ()

    def __setitem__(self, key, value):  # pragma: no cover - a bug guard
        raise RuntimeError("write to the shared empty slot")


EMPTY: dict = _EmptySlot()


class Database:
    __slots__ = (
        "index",
        "dicts",
        "expires",
        "size",
        "volatile",
        "clock",
        "on_expire",
        "on_modify",
        "avg_ttl",
        "hits",
        "misses",
    )

    def __init__(self, index: int, clock) -> None:
        self.index = index
        self.dicts: list[dict] = [EMPTY] * SLOT_COUNT
        self.expires: list[dict] = [EMPTY] * SLOT_COUNT
        self.size = 0
        self.volatile = 0
        self.clock = clock  # has now() -> unix ms, pinned per command
        #: Called with (db, key) when a key is removed because its time passed.
        self.on_expire: Callable[[Database, bytes], None] | None = None
        #: Called with (db, key) whenever a key is written or deleted (WATCH, keyspace events).
        self.on_modify: Callable[[Database, bytes], None] | None = None
        #: Running estimate of the average TTL (ms) of volatile keys, for INFO keyspace.
        self.avg_ttl = 0
        #: Read lookups that found / did not find a key (INFO keyspace_hits/misses).
        self.hits = 0
        self.misses = 0

    # ------------------------------------------------------------------ time

    def now(self) -> int:
        """Unix time in ms, as pinned for the current command by the clock."""
        return self.clock.now()

    # ----------------------------------------------------------------- reads

    def lookup(self, key: bytes):
        """The value at ``key``, or None if absent or expired (then deleted)."""
        slot = keyslot(key)
        value = self.dicts[slot].get(key)
        if value is not None and self.volatile:
            when = self.expires[slot].get(key)
            if when is not None and when < self.now():
                self._expire(slot, key)
                return None
        return value

    def lookup_read(self, key: bytes):
        """``lookup`` for read commands: also counts keyspace hits and misses."""
        value = self.lookup(key)
        if value is None:
            self.misses += 1
        else:
            self.hits += 1
        return value

    def exists(self, key: bytes) -> bool:
        return self.lookup(key) is not None

    def get_expire(self, key: bytes) -> int | None:
        """Absolute expiry time in unix ms of a live key, or None if it has none."""
        if not self.volatile:
            return None
        return self.expires[keyslot(key)].get(key)

    def is_expired_at(self, key: bytes, now_ms: int) -> bool:
        when = self.expires[keyslot(key)].get(key)
        return when is not None and when < now_ms

    # ---------------------------------------------------------------- writes

    def set(self, key: bytes, value, *, keep_ttl: bool = False) -> None:
        """Store ``value`` at ``key``; drops any TTL unless ``keep_ttl``."""
        slot = keyslot(key)
        d = self.dicts[slot]
        if d is EMPTY:
            d = self.dicts[slot] = {}
        before = len(d)
        d[key] = value
        self.size += len(d) - before
        if self.volatile and not keep_ttl:
            exp = self.expires[slot]
            if key in exp:
                self._drop_expire(slot, key)
        if self.on_modify is not None:
            self.on_modify(self, key)

    def replace(self, key: bytes, value) -> None:
        """Overwrite the value of an existing key in place, keeping its TTL."""
        self.set(key, value, keep_ttl=True)

    def delete(self, key: bytes) -> bool:
        """Remove ``key``; True if it existed (expired keys count as absent)."""
        slot = keyslot(key)
        d = self.dicts[slot]
        if key not in d:
            return False
        if self.volatile:
            when = self.expires[slot].get(key)
            if when is not None and when < self.now():
                self._expire(slot, key)
                return False
        self._remove(slot, key)
        if self.on_modify is not None:
            self.on_modify(self, key)
        return True

    def set_expire(self, key: bytes, when_ms: int) -> None:
        """Give an existing key an absolute expiry time (unix ms)."""
        slot = keyslot(key)
        exp = self.expires[slot]
        if exp is EMPTY:
            exp = self.expires[slot] = {}
        if key not in exp:
            self.volatile += 1
        exp[key] = when_ms
        if self.on_modify is not None:
            self.on_modify(self, key)

    def persist(self, key: bytes) -> bool:
        """Drop the TTL of ``key``; True if it had one."""
        slot = keyslot(key)
        if key not in self.expires[slot]:
            return False
        self._drop_expire(slot, key)
        if self.on_modify is not None:
            self.on_modify(self, key)
        return True

    def clear(self) -> int:
        """Delete every key; returns how many there were."""
        removed = self.size
        self.dicts = [EMPTY] * SLOT_COUNT
        self.expires = [EMPTY] * SLOT_COUNT
        self.size = 0
        self.volatile = 0
        self.avg_ttl = 0
        return removed

    def swap_contents(self, other: "Database") -> None:
        """Exchange all keys with ``other`` (SWAPDB); indexes stay put."""
        for name in ("dicts", "expires", "size", "volatile", "avg_ttl"):
            mine, theirs = getattr(self, name), getattr(other, name)
            setattr(self, name, theirs)
            setattr(other, name, mine)

    # -------------------------------------------------------------- internals

    def _remove(self, slot: int, key: bytes) -> None:
        d = self.dicts[slot]
        del d[key]
        self.size -= 1
        if not d:
            self.dicts[slot] = EMPTY
        if self.volatile and key in self.expires[slot]:
            self._drop_expire(slot, key)

    def _drop_expire(self, slot: int, key: bytes) -> None:
        exp = self.expires[slot]
        del exp[key]
        self.volatile -= 1
        if not exp:
            self.expires[slot] = EMPTY

    def _expire(self, slot: int, key: bytes) -> None:
        self._remove(slot, key)
        if self.on_expire is not None:
            self.on_expire(self, key)
        if self.on_modify is not None:
            self.on_modify(self, key)

    # ------------------------------------------------------------- iteration

    def slot_keys(self, slot: int) -> list[bytes]:
        """Live and not-yet-collected keys of one slot (callers filter expiry)."""
        return list(self.dicts[slot])

    def iter_keys(self) -> Iterator[bytes]:
        """Every key not past its expiry time, in slot order."""
        now = self.now()
        for slot, d in enumerate(self.dicts):
            if not d:
                continue
            exp = self.expires[slot]
            for key in list(d):
                if exp:
                    when = exp.get(key)
                    if when is not None and when < now:
                        continue
                yield key

    def random_key(self, rng) -> bytes | None:
        """A uniformly random live key, or None if there are none.

        Expired keys met on the way are deleted, as RANDOMKEY does in Redis.
        """
        while self.size:
            target = rng.randrange(self.size)
            for slot, d in enumerate(self.dicts):
                n = len(d)
                if target < n:
                    for i, key in enumerate(d):
                        if i == target:
                            break
                    when = self.expires[slot].get(key) if self.volatile else None
                    if when is not None and when < self.now():
                        self._expire(slot, key)
                        break
                    return key
                target -= n
        return None

    # ----------------------------------------------------------- active expiry

    def expire_slots(self, start_slot: int, max_keys: int, now_ms: int) -> tuple[int, int, int]:
        """Check the volatile keys of slots from ``start_slot`` on, deleting expired ones.

        Stops after about ``max_keys`` volatile keys or one full turn. Returns
        ``(next_slot, checked, expired)`` so the caller can keep a cursor and
        decide, like Redis's cycle, whether the expired fraction calls for
        another round.
        """
        checked = expired = 0
        slot = start_slot
        ttl_sum = ttl_count = 0
        for _ in range(SLOT_COUNT):
            exp = self.expires[slot]
            if exp:
                for key, when in list(exp.items()):
                    checked += 1
                    if when < now_ms:
                        self._expire(slot, key)
                        expired += 1
                    else:
                        ttl_sum += when - now_ms
                        ttl_count += 1
            slot = (slot + 1) % SLOT_COUNT
            if checked >= max_keys:
                break
        if ttl_count:
            # Same smoothing as Redis: mostly the old estimate, some of the sample.
            sample = ttl_sum // ttl_count
            self.avg_ttl = sample if self.avg_ttl == 0 else (self.avg_ttl // 50) * 49 + sample // 50
        return slot, checked, expired
