"""Per-key access metadata: Redis's 24-bit LRU clock and 8-bit logarithmic LFU counter.

Shoal keeps no object header per value (strings are plain ``bytes``), so the
metadata Redis stores in ``robj->lru`` lives in one side dict per database,
``Database.access`` (key -> int), filled only while tracking is on:

* LRU mode: the value is the LRU clock (unix seconds, 24 bits) of the last
  access. The clock is one shared ``int`` refreshed by the cron (Redis also
  reads a cached ``server.lruclock``), so an access stores a reference to an
  existing object and allocates nothing.
* LFU mode: the value is ``(last decrement time in minutes, 16 bits) << 8 |
  counter`` exactly like Redis's ``o->lru`` under an LFU policy; the counter
  is incremented logarithmically (``lfu-log-factor``) and decays by one per
  ``lfu-decay-time`` minutes.

A key without an entry (written while tracking was off, or loaded) counts
as last accessed when tracking began (``Memory.tracking_since``).
"""

from __future__ import annotations

import random

__all__ = [
    "LFU_INIT_VAL", "LRU_CLOCK_MAX", "lfu_decr_and_return", "lfu_log_incr", "lfu_time_elapsed", "lru_clock",
    "idle_ms",
]

LFU_INIT_VAL = 5
LRU_CLOCK_MAX = (1 << 24) - 1
LRU_CLOCK_RESOLUTION = 1000  # ms


def lru_clock(now_ms: int) -> int:
    """Redis's getLRUClock: seconds, wrapped to 24 bits."""
    return (now_ms // LRU_CLOCK_RESOLUTION) & LRU_CLOCK_MAX


def idle_ms(clock_now: int, stamp: int) -> int:
    """estimateObjectIdleTime: milliseconds between an LRU stamp and the clock, handling wrap-around."""
    if clock_now >= stamp:
        return (clock_now - stamp) * LRU_CLOCK_RESOLUTION
    return (clock_now + (LRU_CLOCK_MAX - stamp)) * LRU_CLOCK_RESOLUTION


def lfu_minutes(now_ms: int) -> int:
    """LFUGetTimeInMinutes: unix minutes, 16 bits."""
    return (now_ms // 60000) & 65535


def lfu_time_elapsed(now_min: int, ldt: int) -> int:
    if now_min >= ldt:
        return now_min - ldt
    return 65535 - ldt + now_min


def lfu_log_incr(counter: int, log_factor: int, rand=random.random) -> int:
    """LFULogIncr: the higher the counter, the less likely an access increments it (saturates at 255)."""
    if counter == 255:
        return 255
    baseval = counter - LFU_INIT_VAL
    if baseval < 0:
        baseval = 0
    if rand() < 1.0 / (baseval * log_factor + 1):
        counter += 1
    return counter


def lfu_decr_and_return(stamp: int, now_min: int, decay_time: int) -> int:
    """LFUDecrAndReturn: the counter after the decay periods elapsed since the stamp's time."""
    counter = stamp & 255
    if decay_time:
        periods = lfu_time_elapsed(now_min, stamp >> 8) // decay_time
        if periods:
            counter = 0 if periods > counter else counter - periods
    return counter
