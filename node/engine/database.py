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
is never returned: every read goes through ``lookup``, which deletes it, and
the listing methods (``keys``, ``scan``, ``random_key``) skip it.
``volatile_slots`` is the set of slots whose side dict is not empty, kept in
step by ``set_expire``/``_drop_expire`` (the only writers of ``expires``) and
changed only when a slot gains its first or loses its last TTL, so the active
expiry cycle can visit just those slots instead of all 16384.

Time is injected: ``clock.now()`` returns unix milliseconds, pinned once per
command by the dispatcher, as Redis does, so one command sees one "now"
throughout.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Callable, Iterator

from node.engine.values import TYPE_NAMES
from binascii import crc_hqx

from slots import SLOT_COUNT, keyslot

_SLOT_MASK = SLOT_COUNT - 1
_OPEN_BRACE = 0x7B  # b"{": only keys containing it can have a hash tag

__all__ = ["Database", "EMPTY"]

_SLOT_MASK = SLOT_COUNT - 1
# Below this many slots with TTLs, active expiry sorts them instead of walking all slots.
_SPARSE_SLOTS = 1024


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
        "volatile_slots",
        "clock",
        "on_expire",
        "on_modify",
        "dirty",
        "avg_ttl",
        "hits",
        "misses",
        "expire_policy",
        "access",
        "lru_now",
        "lfu",
    )

    def __init__(self, index: int, clock) -> None:
        self.index = index
        self.dicts: list[dict] = [EMPTY] * SLOT_COUNT
        self.expires: list[dict] = [EMPTY] * SLOT_COUNT
        self.size = 0
        self.volatile = 0
        self.volatile_slots: set[int] = set()
        self.clock = clock  # has now() -> unix ms, pinned per command
        #: Called with (db, key) when a key is removed because its time passed.
        self.on_expire: Callable[[Database, bytes], None] | None = None
        #: Called with (db, key) whenever a key is written or deleted, when set
        #: (WATCH, keyspace events). None costs the hot path one test.
        self.on_modify: Callable[[Database, bytes], None] | None = None
        #: Writes to this database (INFO rdb_changes_since_last_save sums them).
        self.dirty = 0
        #: Running estimate of the average TTL (ms) of volatile keys, for INFO keyspace.
        self.avg_ttl = 0
        #: Read lookups that found / did not find a key (INFO keyspace_hits/misses).
        self.hits = 0
        self.misses = 0
        #: What finding an expired key does (node.replication sets it on a replica):
        #: 0 delete it (a primary); 1 report it missing but keep it (a replica's
        #: clients: the primary's DEL will come); 2 see it (the replica's master client).
        self.expire_policy = 0
        #: Per-key access metadata (node.memory.lfu): key -> LRU stamp, or LFU
        #: stamp when ``lfu`` (the LFU update function) is set. None while
        #: not tracked: then the hot path pays one attribute test.
        self.access: dict | None = None
        self.lru_now = 0  # the LRU clock, refreshed by the cron (node.memory)
        self.lfu = None

    # ------------------------------------------------------------------ time

    def now(self) -> int:
        """Unix time in ms, as pinned for the current command by the clock."""
        return self.clock.now()

    # ----------------------------------------------------------------- reads

    def lookup(self, key: bytes):
        """The value at ``key``, or None if absent or expired (then deleted)."""
        slot = crc_hqx(key, 0) & _SLOT_MASK if _OPEN_BRACE not in key else keyslot(key)
        value = self.dicts[slot].get(key)
        if value is not None and self.volatile:
            when = self.expires[slot].get(key)
            if when is not None and when < self.now() and self._expire(slot, key):
                return None
        if self.access is not None and value is not None:
            if self.lfu is None:
                self.access[key] = self.lru_now
            else:
                self.lfu(self.access, key, False)
        return value

    def lookup_read(self, key: bytes):
        """``lookup`` for read commands: also counts keyspace hits and misses.

        The body of ``lookup`` is repeated here on purpose: this is the path
        of every GET, and a nested call costs more than the lookup itself.
        """
        slot = crc_hqx(key, 0) & _SLOT_MASK if _OPEN_BRACE not in key else keyslot(key)
        value = self.dicts[slot].get(key)
        if value is None:
            self.misses += 1
            return None
        if self.volatile:
            when = self.expires[slot].get(key)
            if when is not None and when < self.clock.now() and self._expire(slot, key):
                self.misses += 1
                return None
        self.hits += 1
        if self.access is not None:
            if self.lfu is None:
                self.access[key] = self.lru_now
            else:
                self.lfu(self.access, key, False)
        return value

    def exists(self, key: bytes) -> bool:
        return self.lookup(key) is not None

    def get_expire(self, key: bytes) -> int | None:
        """Absolute expiry time in unix ms of a live key, or None if it has none."""
        if not self.volatile:
            return None
        return self.expires[keyslot(key)].get(key)

    # ---------------------------------------------------------------- writes

    def set(self, key: bytes, value, *, keep_ttl: bool = False) -> None:
        """Store ``value`` at ``key``; drops any TTL unless ``keep_ttl``."""
        slot = crc_hqx(key, 0) & _SLOT_MASK if _OPEN_BRACE not in key else keyslot(key)
        d = self.dicts[slot]
        if d is EMPTY:
            d = self.dicts[slot] = {}
        before = len(d)
        d[key] = value
        self.size += len(d) - before
        if self.access is not None:
            if self.lfu is None:
                self.access[key] = self.lru_now
            else:
                self.lfu(self.access, key, len(d) != before)
        if self.volatile and not keep_ttl:
            exp = self.expires[slot]
            if key in exp:
                self._drop_expire(slot, key)
        self.dirty += 1
        if self.on_modify is not None:
            self.on_modify(self, key)

    def replace(self, key: bytes, value) -> None:
        """Overwrite the value of an existing key in place, keeping its TTL."""
        self.set(key, value, keep_ttl=True)

    def store_quietly(self, key: bytes, value) -> None:
        """Put ``value`` at ``key`` recording no change: no dirty count, no WATCH hook, TTL kept.

        For what Redis does without signalling the key: dbUnshareStringValue (a
        string about to be edited in place becomes ``raw``) and the dbAdd of a
        string BITFIELD creates even when no field gets written.
        """
        slot = crc_hqx(key, 0) & _SLOT_MASK if _OPEN_BRACE not in key else keyslot(key)
        d = self.dicts[slot]
        if d is EMPTY:
            d = self.dicts[slot] = {}
        before = len(d)
        d[key] = value
        self.size += len(d) - before

    def delete(self, key: bytes) -> bool:
        """Remove ``key``; True if it existed (expired keys count as absent)."""
        slot = crc_hqx(key, 0) & _SLOT_MASK if _OPEN_BRACE not in key else keyslot(key)
        d = self.dicts[slot]
        if key not in d:
            return False
        if self.volatile:
            when = self.expires[slot].get(key)
            if when is not None and when < self.now() and self._expire(slot, key):
                return False
        self._remove(slot, key)
        self.dirty += 1
        if self.on_modify is not None:
            self.on_modify(self, key)
        return True

    def touch(self, key: bytes, changes: int = 1) -> None:
        """Record an in-place change to the value at ``key`` (LPUSH onto a list, HSET...).

        Containers are mutated where they live, so ``set`` never sees those
        writes: every handler that changes a value in place calls this, which
        is what WATCH, blocked clients and the change counter rely on.
        A container left empty must be removed with ``delete`` instead.
        """
        self.dirty += changes
        if self.on_modify is not None:
            self.on_modify(self, key)

    def set_expire(self, key: bytes, when_ms: int) -> None:
        """Give an existing key an absolute expiry time (unix ms)."""
        slot = keyslot(key)
        exp = self.expires[slot]
        if exp is EMPTY:
            exp = self.expires[slot] = {}
            self.volatile_slots.add(slot)
        if key not in exp:
            self.volatile += 1
        exp[key] = when_ms
        self.dirty += 1
        if self.on_modify is not None:
            self.on_modify(self, key)

    def persist(self, key: bytes) -> bool:
        """Drop the TTL of ``key``; True if it had one."""
        slot = keyslot(key)
        if key not in self.expires[slot]:
            return False
        self._drop_expire(slot, key)
        self.dirty += 1
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
        self.volatile_slots = set()
        self.avg_ttl = 0
        if self.access is not None:
            self.access = {}
        return removed

    def swap_contents(self, other: "Database") -> None:
        """Exchange all keys with ``other`` (SWAPDB); indexes stay put."""
        tracked = (self.access is not None, other.access is not None)
        for name in ("dicts", "expires", "size", "volatile", "volatile_slots", "avg_ttl", "access"):
            mine, theirs = getattr(self, name), getattr(other, name)
            setattr(self, name, theirs)
            setattr(other, name, mine)
        # Access stamps follow the keys; whether they are tracked stays with the database.
        if tracked[0] and self.access is None:
            self.access = {}
        if tracked[1] and other.access is None:
            other.access = {}

    # -------------------------------------------------------------- internals

    def _remove(self, slot: int, key: bytes) -> None:
        d = self.dicts[slot]
        del d[key]
        self.size -= 1
        if not d:
            self.dicts[slot] = EMPTY
        if self.access is not None:
            self.access.pop(key, None)
        if self.volatile and key in self.expires[slot]:
            self._drop_expire(slot, key)

    def _drop_expire(self, slot: int, key: bytes) -> None:
        exp = self.expires[slot]
        del exp[key]
        self.volatile -= 1
        if not exp:
            self.expires[slot] = EMPTY
            self.volatile_slots.discard(slot)

    def _expire(self, slot: int, key: bytes) -> bool:
        """An expired key was found: delete it; True if it now counts as missing (see ``expire_policy``)."""
        policy = self.expire_policy
        if policy:
            return policy == 1
        self._remove(slot, key)
        if self.on_expire is not None:
            self.on_expire(self, key)
        if self.on_modify is not None:
            self.on_modify(self, key)
        return True

    # ------------------------------------------------------------- iteration

    def keys(self, match: Callable[[bytes], bool] | None = None) -> list[bytes]:
        """Every live key (KEYS), filtered by ``match`` if given. Deletes nothing, like Redis."""
        now = self.now() if self.volatile else 0
        out: list[bytes] = []
        append = out.append
        for slot, d in enumerate(self.dicts):
            if not d:
                continue
            exp = self.expires[slot]
            if match is None and not exp:
                out += d
                continue
            for key in d:
                if match is not None and not match(key):
                    continue
                if exp:
                    when = exp.get(key)
                    if when is not None and when < now:
                        continue
                append(key)
        return out

    def scan(
        self,
        cursor: int,
        count: int,
        match: Callable[[bytes], bool] | None = None,
        type_name: bytes | None = None,
    ) -> tuple[int, list[bytes]]:
        """One SCAN step: ``(next_cursor, keys)``; the cursor is the next slot to visit.

        Whole slots are returned, so a key present from the first call to the
        last is reported however the keyspace changes in between (it may be
        reported twice only if it moves slot, which a key never does). Like
        Redis, ``count`` bounds the keys *examined* before filtering, so a
        selective MATCH can yield empty pages with a non-zero cursor. Expired
        keys met on the way are deleted (Redis's ``expireIfNeeded``).
        ``type_name`` must be lower case.
        """
        if cursor >= SLOT_COUNT:
            return 0, []
        dicts = self.dicts
        expires = self.expires
        now = self.now() if self.volatile else 0
        names = TYPE_NAMES
        out: list[bytes] = []
        examined = 0
        for slot in range(cursor, SLOT_COUNT):
            d = dicts[slot]
            if not d:
                continue
            examined += len(d)
            exp = expires[slot]
            if exp:
                for key, when in [(k, exp.get(k)) for k in d]:
                    if when is not None and when < now:
                        self._expire(slot, key)
                        continue
                    if match is not None and not match(key):
                        continue
                    if type_name is not None and names.get(type(d[key])) != type_name:
                        continue
                    out.append(key)
            elif match is None and type_name is None:
                out += d
            else:
                for key, value in d.items():
                    if match is not None and not match(key):
                        continue
                    if type_name is not None and names.get(type(value)) != type_name:
                        continue
                    out.append(key)
            if examined >= count:
                slot += 1
                return (slot if slot < SLOT_COUNT else 0), out
        return 0, out

    def random_key(self, rng) -> bytes | None:
        """A uniformly random live key, or None if there are none.

        Expired keys met on the way are deleted, as RANDOMKEY does in Redis.
        """
        tries = 100 if self.expire_policy else -1  # a replica keeps expired keys: do not spin forever
        while self.size:
            tries -= 1
            target = rng.randrange(self.size)
            for slot, d in enumerate(self.dicts):
                n = len(d)
                if target < n:
                    for i, key in enumerate(d):
                        if i == target:
                            break
                    when = self.expires[slot].get(key) if self.volatile else None
                    if when is not None and when < self.now() and tries != 0 and self._expire(slot, key):
                        break
                    return key
                target -= n
        return None

    # ----------------------------------------------------------- active expiry

    def expire_slots(self, start_slot: int, max_keys: int, now_ms: int) -> tuple[int, int, int]:
        """Check the volatile keys of slots from ``start_slot`` on, deleting expired ones.

        Visits only slots holding volatile keys, in slot order and wrapping
        around, whole slots at a time, until about ``max_keys`` keys were
        checked or every volatile slot was seen once. Returns ``(next_slot,
        checked, expired)`` so the caller keeps a cursor and decides, like
        Redis's cycle, whether the expired fraction calls for another round.
        """
        checked = expired = 0
        ttl_sum = ttl_count = 0
        slot = start_slot
        volatile_slots = self.volatile_slots
        if not volatile_slots:
            return slot, 0, 0
        if len(volatile_slots) < _SPARSE_SLOTS:
            # Few volatile slots: jump between them rather than walk the empty ones.
            ordered = sorted(volatile_slots)
            first = bisect_left(ordered, start_slot)
            visit = ordered[first:] + ordered[:first]
        else:
            # Most slots are volatile: walking the list is cheaper than sorting.
            visit = range(start_slot, start_slot + SLOT_COUNT)
        expires = self.expires
        for slot in visit:
            slot &= _SLOT_MASK
            exp = expires[slot]
            if not exp:
                continue
            for key, when in list(exp.items()):
                checked += 1
                if when < now_ms:
                    self._expire(slot, key)
                    expired += 1
                else:
                    ttl_sum += when - now_ms
                    ttl_count += 1
            if checked >= max_keys:
                break
        slot = (slot + 1) & _SLOT_MASK
        if ttl_count:
            # Same smoothing as Redis: mostly the old estimate, some of the sample.
            sample = ttl_sum // ttl_count
            self.avg_ttl = sample if self.avg_ttl == 0 else (self.avg_ttl // 50) * 49 + sample // 50
        return slot, checked, expired
