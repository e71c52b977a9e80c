"""maxmemory: the used-memory figure, eviction before commands, OOM refusals.

Accounting (why it is cheap)
----------------------------
Redis compares ``zmalloc_used_memory()`` -- an exact counter its allocator
wrapper keeps -- with ``maxmemory`` before every command. Python has no such
counter at a price the hot path can pay (tracemalloc costs on every
allocation), so Shoal keeps an *incrementally maintained estimate*:

* ``base`` is a real measurement, ``node.memory.sizes.allocated_bytes()``:
  malloc'ed bytes (mallinfo2) + the bytes of CPython's object pools in use
  (read from CPython's allocator statistics; ~0.5 ms on a small heap, ~2 ms
  per 400 MB of small objects). It is taken by the cron (``hz`` times a
  second while maxmemory is set, spaced out so it costs at most 2% of the
  time on a big heap), by INFO and MEMORY STATS, before
  refusing a write under ``noeviction`` if the data changed since, and when
  the running estimate has moved more than 1/16 of maxmemory (at least
  256 KB) away from it;
* ``pending`` is what happened since: each ``denyoom`` command that ran adds
  the size of its arguments plus a per-argument overhead (what it can have
  stored), each evicted key subtracts what ``value_size`` credits it with.

So a command pays a dictionary lookup and an addition while maxmemory is
set, and nothing at all while it is 0: the dispatcher only calls
``check`` when ``node.dispatch.MAXMEMORY`` is set (like PROPAGATING, it
routes requests to the gated path).

The CPython interpreter itself (code, modules, ~14 MB allocated) is not
counted against maxmemory: ``used_memory`` is the measurement minus what the
process had allocated at start-up, plus a nominal 1 MB for an empty
server -- about what an empty Redis reports -- so ``maxmemory 100mb``
bounds the data as it does in Redis. ``used_memory_rss`` stays the real
process size. On mixed datasets of every type (tests/test_eviction.py)
the growth of ``used_memory`` tracks the growth of the RSS within 15%.

Eviction follows evict.c's ``performEvictions``: compute how much must be
freed, evict the policy's best candidates until that much was credited,
check the time every 16 keys and stop after the ``maxmemory-eviction-
tenacity`` limit (50 us x tenacity up to 10, then 15% more per step); the
cron carries on where a command stopped (Redis's evictionTimeProc), so
no client stalls behind a large eviction. Evicted keys are deleted like
DEL (WATCH, blocked clients), counted in ``evicted_keys``, announced with
the ``evicted`` keyspace event and propagated as DEL/UNLINK.

Replicas ignore maxmemory while ``replica-ignore-maxmemory`` is yes:
``Memory.is_replica`` is the hook (a callable, by default asking
``node.replication.is_replica``); eviction then stands still, as it does
while clients are paused (``node.pause.writes_paused``).
"""

from __future__ import annotations

import time

from node.memory.lfu import idle_ms as lfu_idle_ms
from node.memory.evict import EvictionPool, random_key, sample_keys
from node.memory.lfu import (
    LFU_INIT_VAL, LRU_CLOCK_MAX, lfu_decr_and_return, lfu_log_incr, lfu_minutes, lru_clock,
)
from node.memory.sizes import allocated_bytes, key_overhead, value_size
from node.resp import ErrorReply

from slots import keyslot

__all__ = ["EVICT_FAIL", "EVICT_OK", "EVICT_RUNNING", "Memory", "OOM_ERROR", "install"]

EVICT_OK, EVICT_RUNNING, EVICT_FAIL = 0, 1, 2

OOM_ERROR = ErrorReply("OOM command not allowed when used memory > 'maxmemory'.")

LRU_POLICIES = frozenset(("allkeys-lru", "volatile-lru"))
LFU_POLICIES = frozenset(("allkeys-lfu", "volatile-lfu"))
_POOL_POLICIES = LRU_POLICIES | LFU_POLICIES | {"volatile-ttl"}

#: What an empty server is reported to use (an empty Redis 7.0 reports ~0.9 MB).
NOMINAL_BASE = 1 << 20

#: Track LRU access times under every policy, as Redis does (OBJECT IDLETIME
#: then works under noeviction too). Off: under policies that do not use them
#: (noeviction, *-random, volatile-ttl) the hot path pays one attribute test
#: instead of a dict store (~25 ns) and keys no ~50-byte access-dict entry.
TRACK_LRU_ALWAYS = False

# Commands a client in MULTI may still send under OOM (processCommand).
_MULTI_OK_UNDER_OOM = frozenset(("exec", "discard", "quit", "reset"))
_ARG_OVERHEAD = 48  # bytes an argument costs once stored (object header, dict/list slot)
_CRON_BUDGET = 0.25  # share of a cron period eviction may use


def time_limit_us(tenacity: int) -> float:
    """evictionTimeLimitUs."""
    if tenacity <= 10:
        return 50.0 * tenacity
    if tenacity < 100:
        return 500.0 * 1.15 ** (tenacity - 10)
    return float("inf")


class Memory:
    """The node's memory bookkeeping and eviction (``node.memory``)."""

    def __init__(self, node) -> None:
        self.node = node
        config = node.config
        self.pool = EvictionPool()
        self.next_db = 0
        self.pending = 0
        self.measured_at = 0.0
        self.measure_cost = 0.0  # seconds the last measurement took (the cron keeps it under 2%)
        self.base = allocated_bytes()
        #: What the interpreter had allocated before any data: not counted.
        self.startup = self.base
        self.offset = max(0, self.startup - NOMINAL_BASE)
        #: used_memory_peak lives on the node: CONFIG RESETSTAT zeroes it there.
        node.used_memory_peak = self.used()
        self.measured_dirty = -1
        from node.info import rss_bytes

        #: The RSS before any data (the interpreter's code and libraries): MEMORY DOCTOR.
        self.startup_rss = rss_bytes()
        #: Redis's pre_command_oom_state: was the node out of memory when the current command began?
        self.oom = False
        #: True while an eviction that hit its time limit has to be carried on by the cron.
        self.evicting = False
        #: Replication hook: returns True while this node is a replica (then, with
        #: replica-ignore-maxmemory yes, it neither evicts nor refuses writes).
        self.is_replica = self._replicates
        self._denyoom: dict = {}
        self.tracking_since = lru_clock(node.clock.wall_ms())
        self.lfu_now_min = lfu_minutes(node.clock.wall_ms())
        self.maxmemory = config["maxmemory"]
        self.policy = config["maxmemory-policy"]
        for name in ("maxmemory", "maxmemory-policy"):
            config.on_change(name, self._limits_changed)
        self._limits_changed(None)
        self.tick(node.clock.wall_ms())

    def _replicates(self) -> bool:
        replication = getattr(self.node, "replication", None)
        if replication is None:
            return False
        flag = replication.is_replica  # node.replication: a property (a method in early versions)
        return bool(flag() if callable(flag) else flag)

    # ----------------------------------------------------------- figures

    def measure(self) -> int:
        """Take a real measurement now (see the module docstring); returns used_memory."""
        start = time.perf_counter()
        self.base = allocated_bytes()
        self.measured_at = now = time.perf_counter()
        self.measure_cost = now - start
        self.pending = 0
        self.measured_dirty = self.node.dirty
        used = self.base - self.offset
        if used > self.node.used_memory_peak:
            self.node.used_memory_peak = used
        return used

    def used(self) -> int:
        """used_memory as last measured plus the estimated change since."""
        return self.base + self.pending - self.offset

    def not_counted(self) -> int:
        return self.offset

    # ----------------------------------------------------------- config

    def _limits_changed(self, _value) -> None:
        config = self.node.config
        self.maxmemory = config["maxmemory"]
        policy = config["maxmemory-policy"]
        if policy != self.policy:
            self.pool.clear()
        self.policy = policy
        self.refresh_tracking()
        from node import dispatch

        dispatch.set_maxmemory(self.maxmemory > 0)
        self.resample_every = max(256 << 10, self.maxmemory >> 4)
        if not self.maxmemory:
            self.oom = False
            self.evicting = False
        else:
            # CONFIG SET maxmemory evicts at once (Redis calls performEvictions from the setter).
            self.measure()
            self.perform_evictions()

    def refresh_tracking(self) -> None:
        """Turn per-key access tracking on (LRU or LFU stamps) or off to suit the policy."""
        lfu = self.policy in LFU_POLICIES
        track = lfu or self.policy in LRU_POLICIES or TRACK_LRU_ALWAYS
        now_ms = self.node.clock.wall_ms()
        hook = self.lfu_hit if lfu else None
        for db in self.node.dbs:
            if not track:
                db.access = None
                db.lfu = None
                continue
            if db.access is None or (db.lfu is None) != (hook is None):
                db.access = {}
                self.tracking_since = lru_clock(now_ms)
            db.lfu = hook
            db.lru_now = lru_clock(now_ms)

    # ------------------------------------------------------- LFU updates

    def lfu_hit(self, access: dict, key: bytes, new: bool) -> None:
        """updateLFU on an access; a key just created starts at LFU_INIT_VAL (createObject)."""
        now_min = self.lfu_now_min
        stamp = access.get(key)
        if new:
            counter = LFU_INIT_VAL
        else:
            if stamp is None:
                stamp = (now_min << 8) | LFU_INIT_VAL
            config = self.node.config.values
            counter = lfu_decr_and_return(stamp, now_min, config["lfu-decay-time"])
            counter = lfu_log_incr(counter, config["lfu-log-factor"], self.node.rng.random)
        access[key] = (now_min << 8) | counter

    def frequency(self, db, key: bytes) -> int:
        """OBJECT FREQ: the decayed counter (LFUDecrAndReturn), without touching the key."""
        stamp = db.access.get(key) if db.access is not None else None
        if stamp is None:
            return LFU_INIT_VAL
        return lfu_decr_and_return(stamp, self.lfu_now_min, self.node.config["lfu-decay-time"])

    def idle_seconds(self, db, key: bytes, now_ms: int) -> int:
        """OBJECT IDLETIME: seconds since the last access, without touching the key.

        0 while access times are not tracked (no LRU policy, TRACK_LRU_ALWAYS off).
        """
        if db.access is None:
            return 0
        stamp = db.access.get(key)
        if stamp is None:
            stamp = self.tracking_since
        return lfu_idle_ms(lru_clock(now_ms), stamp) // 1000

    # ----------------------------------------------------------- per command

    def check(self, client, cmd, argv):
        """processCommand's maxmemory step: evict, then refuse if still out of memory.

        Returns the OOM ErrorReply to reject the request with, or None.
        """
        denyoom = self._denyoom.get(cmd)
        if denyoom is None:
            denyoom = self._denyoom[cmd] = "denyoom" in cmd.flags
        if self.base + self.pending - self.offset <= self.maxmemory:
            # Under the limit (nearly always): nothing to evict, nothing to refuse.
            self.oom = False
            if denyoom:
                self.pending += sum(map(len, argv)) + _ARG_OVERHEAD * len(argv)
                if self.pending > self.resample_every:
                    self.measure()
            return None
        result = self.perform_evictions()
        oom = result == EVICT_FAIL
        name = (cmd.parent or cmd).name
        if oom and "M" not in client.flags:  # our primary's link must be obeyed
            reject = denyoom
            if name == "exec" and client.multi:
                reject = any("denyoom" in queued.flags for queued, _ in client.multi)
            if client.multi is not None and name not in _MULTI_OK_UNDER_OOM:
                reject = True
            if reject:
                return OOM_ERROR
        if name != "multi":
            self.oom = oom
        if denyoom:
            self.pending += sum(map(len, argv)) + _ARG_OVERHEAD * len(argv)
            if self.pending > self.resample_every:
                self.measure()
        return None

    # ------------------------------------------------------------ eviction

    def can_evict(self) -> bool:
        """isPerformEvictions: not on a replica ignoring maxmemory, not while clients are paused."""
        node = self.node
        if self.is_replica() and node.config.values["replica-ignore-maxmemory"]:
            return False
        pause = getattr(node, "pause", None)
        if pause is not None and pause.writes_paused:
            return False
        return True

    def perform_evictions(self) -> int:
        """performEvictions: EVICT_OK, EVICT_RUNNING (time limit hit, cron continues) or EVICT_FAIL."""
        maxmemory = self.maxmemory
        if not maxmemory:
            return EVICT_OK
        to_free = self.base + self.pending - self.offset - maxmemory
        if to_free <= 0:
            self.evicting = False
            return EVICT_OK
        if not self.can_evict():
            return EVICT_OK
        if self.policy == "noeviction":
            return EVICT_FAIL if self._still_over() else EVICT_OK
        config = self.node.config.values
        limit_s = time_limit_us(config["maxmemory-eviction-tenacity"]) / 1e6
        start = time.perf_counter()
        freed = 0
        keys_freed = 0
        result = EVICT_OK
        while freed < to_free:
            picked = self._pick()
            if picked is None:
                self.evicting = False
                self.pending -= freed
                freed = 0
                result = EVICT_FAIL if self._still_over() else EVICT_OK
                break
            db, slot, key = picked
            freed += key_overhead(key) + value_size(db.dicts[slot][key], 5)
            self._evict(db, key)
            keys_freed += 1
            if keys_freed % 16 == 0 and time.perf_counter() - start > limit_s:
                self.evicting = True
                result = EVICT_RUNNING
                break
        else:
            self.evicting = False
        self.pending -= freed
        elapsed_ms = int((time.perf_counter() - start) * 1000)
        threshold = config["latency-monitor-threshold"]
        if threshold and elapsed_ms >= threshold:
            self.node.monitoring.latency.add("eviction-cycle", elapsed_ms)
        return result

    def _still_over(self) -> bool:
        """Before refusing writes: deletes since the last measurement do not show in the
        estimate, so re-measure if the data changed since (DEL, FLUSHALL...)."""
        if self.node.dirty != self.measured_dirty:
            return self.measure() > self.maxmemory
        return self.used() > self.maxmemory

    def _evict(self, db, key: bytes) -> None:
        node = self.node
        dirty = db.dirty
        db.delete(key)
        db.dirty = dirty  # an eviction is not a change of the dataset's "dirty" count in Redis
        node.stats.evicted_keys += 1
        from node.notify import EVICTED, notify_db

        notify_db(node, EVICTED, b"evicted", key, db.index)
        propagation = getattr(node, "propagation", None)
        if propagation is not None and propagation.enabled:
            propagation.propagate_deletion(db.index, key, node.config.values["lazyfree-lazy-eviction"])

    def _pick(self):
        """The next victim as (db, slot, key), or None if nothing can be evicted."""
        policy = self.policy
        dbs = self.node.dbs
        allkeys = policy.startswith("allkeys")
        rng = self.node.rng
        if policy in _POOL_POLICIES:
            pool = self.pool
            while True:
                total = 0
                for db in dbs:
                    n = db.size if allkeys else db.volatile
                    if n:
                        self._populate(db, allkeys)
                        total += n
                if not total:
                    return None
                while len(pool):
                    db_index, key = pool.pop_best()
                    db = dbs[db_index]
                    slot = keyslot(key)
                    if key in (db.dicts if allkeys else db.expires)[slot]:
                        return db, slot, key
                # Every pooled key was a ghost: sample again.
        count = len(dbs)
        for _ in range(count):
            self.next_db = (self.next_db + 1) % count
            db = dbs[self.next_db]
            if db.size if allkeys else db.volatile:
                found = random_key(db.dicts if allkeys else db.expires, rng)
                if found is not None:
                    return db, found[0], found[1]
        return None

    def _populate(self, db, allkeys: bool) -> None:
        """evictionPoolPopulate: score ``maxmemory-samples`` keys of ``db`` into the pool."""
        policy = self.policy
        samples = sample_keys(db.dicts if allkeys else db.expires, self.node.config.values["maxmemory-samples"],
                              self.node.rng)
        offer = self.pool.offer
        index = db.index
        if policy == "volatile-ttl":
            expires = db.expires
            for slot, key in samples:
                offer(-expires[slot][key], index, key)
            return
        access = db.access or {}
        if policy in LFU_POLICIES:
            now_min = self.lfu_now_min
            decay = self.node.config.values["lfu-decay-time"]
            default = (now_min << 8) | LFU_INIT_VAL
            for slot, key in samples:
                offer(255 - lfu_decr_and_return(access.get(key, default), now_min, decay), index, key)
            return
        clock = db.lru_now
        get = access.get
        since = self.tracking_since
        for slot, key in samples:
            stamp = get(key, since)
            # estimateObjectIdleTime, in clock units (seconds), wrap-around included
            offer(clock - stamp if clock >= stamp else clock + LRU_CLOCK_MAX - stamp, index, key)

    # ---------------------------------------------------------------- cron

    def tick(self, now_ms: int) -> None:
        """The cron's share: refresh the clocks, re-measure, carry on an unfinished eviction."""
        clock = lru_clock(now_ms)
        if self.node.dbs and self.node.dbs[0].lru_now != clock:
            for db in self.node.dbs:
                db.lru_now = clock
        self.lfu_now_min = lfu_minutes(now_ms)
        if self.maxmemory:
            # On a big heap a measurement takes milliseconds: space them to cost <= 2% of the time.
            if time.perf_counter() - self.measured_at >= 50 * self.measure_cost:
                self.measure()
            if self.used() > self.maxmemory and self.policy != "noeviction":
                deadline = time.perf_counter() + self.node.expire_period_s() * _CRON_BUDGET
                while self.perform_evictions() == EVICT_RUNNING and time.perf_counter() < deadline:
                    pass
        elif self.used() > self.node.used_memory_peak:
            self.node.used_memory_peak = self.used()


def install(node) -> Memory:
    memory = node.memory = Memory(node)
    return memory
