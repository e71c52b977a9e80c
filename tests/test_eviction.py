"""maxmemory, eviction policies, OOM refusals and the used_memory estimate (node/memory).

These tests change maxmemory, so they run on their own servers (module
scoped) rather than the session ones, and put the limits back after each
test. Deterministic behaviour (OOM refusals, replies under ``maxmemory 1``)
is compared with real Redis; what eviction keeps is checked statistically:
the survivors must have the shape the policy promises.
"""

from __future__ import annotations

import random
import time

import pytest
import redis

from tests.differential import Differ
from tests.servers import ServerProcess

OOM = "command not allowed when used memory > 'maxmemory'."


@pytest.fixture(scope="module")
def servers():
    with ServerProcess("redis") as real, ServerProcess("shoal") as shoal:
        yield real, shoal


def _reset(r: redis.Redis) -> None:
    r.config_set("maxmemory", 0)
    r.config_set("maxmemory-policy", "noeviction")
    r.config_set("maxmemory-samples", 5)
    r.config_set("maxmemory-eviction-tenacity", 10)
    r.config_set("notify-keyspace-events", "")
    r.flushall()
    r.config_resetstat()


@pytest.fixture
def shoal(servers):
    r = redis.Redis(port=servers[1].port)
    _reset(r)
    yield r
    _reset(r)
    r.close()
    assert servers[1].alive(), servers[1].log()


@pytest.fixture
def differ(servers):
    real, shoal = servers
    for port in (real.port, shoal.port):
        _reset(redis.Redis(port=port))
    d = Differ(real.port, shoal.port)
    yield d
    d.close()
    for port in (real.port, shoal.port):
        _reset(redis.Redis(port=port))
    assert shoal.alive(), shoal.log()


def _fill(r: redis.Redis, prefix: str, count: int, size: int = 200, ttl: int | None = None, start: int = 0) -> None:
    pipe = r.pipeline(transaction=False)
    for i in range(start, start + count):
        pipe.set(f"{prefix}:{i}", b"v" * size, ex=ttl)
        if i % 500 == 499:
            pipe.execute()
    pipe.execute()


def _alive(r: redis.Redis, names: list[str]) -> int:
    pipe = r.pipeline(transaction=False)
    for name in names:
        pipe.exists(name)
    return sum(pipe.execute())


def _limit_above_now(r: redis.Redis, extra: int) -> int:
    used = r.info("memory")["used_memory"]
    r.config_set("maxmemory", used + extra)
    return used + extra


# ------------------------------------------------------------------ OOM (differential)


def test_oom_under_noeviction_matches_redis(differ):
    differ.check("SET", "a", "1")
    differ.check("RPUSH", "l", "x")
    differ.check("CONFIG", "SET", "maxmemory", "1")
    differ.check("SET", "b", "1")  # denyoom: refused
    differ.check("INCR", "a")
    differ.check("LPUSH", "l", "y")
    differ.check("APPEND", "a", "x")
    differ.check("GET", "a")  # reads go on
    differ.check("LRANGE", "l", "0", "-1")
    differ.check("EXPIRE", "a", "100")  # write but not denyoom
    differ.check("PERSIST", "a")
    differ.check("DEL", "l")  # deletes are allowed
    differ.check("DBSIZE")
    differ.check("CONFIG", "SET", "maxmemory", "0")
    differ.check("SET", "b", "2")


def test_oom_in_transactions_matches_redis(differ):
    differ.check("SET", "a", "1")
    differ.check("MULTI")
    differ.check("GET", "a")
    differ.check("SET", "a", "2")
    differ.check("CONFIG", "SET", "maxmemory", "1")
    differ.check("GET", "a")  # under OOM every queued command is refused
    differ.check("EXEC")  # EXECABORT: the transaction was flagged
    differ.check("MULTI")
    differ.check("DISCARD")
    differ.check("GET", "a")
    differ.check("CONFIG", "SET", "maxmemory", "0")


def test_oom_in_scripts_matches_redis(differ):
    differ.check("SET", "a", "1")
    differ.check("CONFIG", "SET", "maxmemory", "1")
    differ.check("EVAL", "return redis.call('set','x','1')", "0")  # first write denied
    differ.check("EVAL", "return redis.call('get','a')", "0")
    differ.check("EVAL", "return redis.pcall('set','x','1')", "0")
    differ.check("EVAL", "#!lua\nreturn redis.call('get','a')", "0")  # flags: denyoom
    differ.check("EVAL", "#!lua flags=no-writes\nreturn redis.call('get','a')", "0")
    differ.check("EVAL", "#!lua flags=allow-oom\nreturn redis.call('set','x','1')", "0")
    # Once the script wrote something it cannot be stopped half-way.
    differ.check("EVAL", "redis.call('del','a'); return redis.call('set','y','1')", "0")
    differ.check("CONFIG", "SET", "maxmemory", "0")
    differ.check("MGET", "x", "y", "a")


def test_oom_counts_in_errorstats(servers):
    r = redis.Redis(port=servers[1].port, decode_responses=True)
    _reset(r)
    try:
        r.config_set("maxmemory", 1)
        for _ in range(3):
            with pytest.raises(redis.exceptions.OutOfMemoryError):
                r.set("k", "v")
        stats = r.info("errorstats")
        assert stats["errorstat_OOM"]["count"] == 3
        assert r.info("commandstats")["cmdstat_set"]["rejected_calls"] == 3
    finally:
        _reset(r)


def test_policies_that_cannot_free_enough_refuse_writes(differ):
    """allkeys-*: every key goes and the node is still over; volatile-*: nothing volatile to evict."""
    differ.check("SET", "a", "1")
    differ.check("CONFIG", "SET", "maxmemory-policy", "volatile-lru")
    differ.check("CONFIG", "SET", "maxmemory", "1")
    differ.check("SET", "b", "1")
    differ.check("GET", "a")  # not volatile: never evicted
    differ.check("CONFIG", "SET", "maxmemory-policy", "allkeys-random")
    differ.check("SET", "b", "1")
    differ.check("DBSIZE")


# ------------------------------------------------------------------ what survives


def _fill_then_limit(r: redis.Redis, prefix: str, count: int, room: int) -> None:
    """Write ``count`` keys, then set maxmemory so that about ``room`` more of them fit."""
    before = r.info("memory")["used_memory"]
    _fill(r, prefix, count)
    after = r.info("memory")["used_memory"]
    per_key = (after - before) // count
    r.config_set("maxmemory", after + room * per_key)


def test_allkeys_lru_keeps_recently_used_keys(shoal):
    shoal.config_set("maxmemory-policy", "allkeys-lru")
    shoal.config_set("maxmemory-samples", 10)
    _fill_then_limit(shoal, "old", 6000, room=2500)
    time.sleep(2.2)  # the LRU clock has a one-second resolution, as in Redis
    hot = [f"old:{i}" for i in range(0, 6000, 4)]
    cold = [f"old:{i}" for i in range(6000) if i % 4]
    pipe = shoal.pipeline(transaction=False)
    for name in hot:
        pipe.get(name)
    pipe.execute()
    _fill(shoal, "new", 4500)
    evicted = shoal.info("stats")["evicted_keys"]
    assert evicted > 300
    assert evicted < len(cold)  # so a perfect LRU would have kept every hot key
    hot_alive = _alive(shoal, hot) / len(hot)
    cold_lost = len(cold) - _alive(shoal, cold)
    # The evictions fell on the keys idle for two seconds, not on the hot or the new ones.
    assert hot_alive > 0.95, (hot_alive, cold_lost, evicted)
    assert cold_lost > 0.85 * evicted, (hot_alive, cold_lost, evicted)


def test_allkeys_lfu_keeps_frequently_used_keys(shoal):
    shoal.config_set("maxmemory-policy", "allkeys-lfu")
    shoal.config_set("maxmemory-samples", 10)
    _fill_then_limit(shoal, "k", 6000, room=2500)
    hot = [f"k:{i}" for i in range(0, 6000, 4)]
    cold = [f"k:{i}" for i in range(6000) if i % 4]
    pipe = shoal.pipeline(transaction=False)
    for _ in range(8):
        for name in hot:
            pipe.get(name)
        pipe.execute()
    assert shoal.object("freq", hot[0]) > 5 and shoal.object("freq", cold[0]) == 5
    _fill(shoal, "new", 5000)
    evicted = shoal.info("stats")["evicted_keys"]
    assert 500 < evicted < len(cold)
    hot_alive = _alive(shoal, hot) / len(hot)
    cold_alive = _alive(shoal, cold) / len(cold)
    # New keys start at the same counter as the cold ones, so they share the evictions.
    assert hot_alive > 0.95, (hot_alive, cold_alive, evicted)
    assert cold_alive < hot_alive - 0.15, (hot_alive, cold_alive, evicted)


@pytest.mark.parametrize("policy", ["volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl"])
def test_volatile_policies_never_evict_persistent_keys(shoal, policy):
    shoal.config_set("maxmemory-policy", policy)
    _limit_above_now(shoal, 2 << 20)
    _fill(shoal, "persistent", 2000)
    _fill(shoal, "volatile", 6000, ttl=1000)
    assert shoal.info("stats")["evicted_keys"] > 500
    assert _alive(shoal, [f"persistent:{i}" for i in range(2000)]) == 2000


def test_volatile_policy_refuses_writes_when_nothing_volatile_is_left(shoal):
    shoal.config_set("maxmemory-policy", "volatile-lru")
    _limit_above_now(shoal, 1 << 20)
    with pytest.raises(redis.exceptions.OutOfMemoryError):
        for i in range(20000):
            shoal.set(f"p:{i}", b"v" * 200)
    assert shoal.info("stats")["evicted_keys"] == 0
    assert shoal.get("p:0") is not None


def _shrink_to(r: redis.Redis, fraction: float) -> int:
    """Lower maxmemory to ``fraction`` of the data now held; wait for the eviction to finish."""
    empty = r.info("memory")["used_memory_startup"]
    used = r.info("memory")["used_memory"]
    limit = int(empty + (used - empty) * fraction)
    r.config_set("maxmemory", limit)
    deadline = time.monotonic() + 30
    while r.info("memory")["used_memory"] > limit and time.monotonic() < deadline:
        time.sleep(0.05)
    return r.info("stats")["evicted_keys"]


def test_volatile_ttl_evicts_shortest_ttl_first(shoal):
    shoal.config_set("maxmemory-policy", "volatile-ttl")
    shoal.config_set("maxmemory-samples", 10)
    names = [f"t:{i}" for i in range(6000)]
    order = list(range(6000))
    random.Random(7).shuffle(order)  # TTLs not in insertion order
    pipe = shoal.pipeline(transaction=False)
    for i in order:
        pipe.set(names[i], b"v" * 200, ex=10_000 + i * 10)  # t:i lives 10000 + 10*i seconds
        if len(pipe) >= 500:
            pipe.execute()
    pipe.execute()
    evicted = _shrink_to(shoal, 0.6)
    # How many go depends on how used_memory settles (allocator reuse); which ones go is the point.
    assert 1000 < evicted < 5500
    alive = [shoal.exists(n) for n in names]
    short = sum(alive[:evicted])  # survivors among the `evicted` shortest TTLs
    long = sum(alive[evicted:])
    # A perfect volatile-ttl evicts exactly the shortest ones; the sampled one nearly.
    assert long / (6000 - evicted) > 0.85, (evicted, short, long)
    assert short / evicted < 0.15, (evicted, short, long)


def test_allkeys_random_evicts_evenly(shoal):
    shoal.config_set("maxmemory-policy", "allkeys-random")
    _fill(shoal, "a", 3000)
    _fill(shoal, "b", 3000)
    evicted = _shrink_to(shoal, 0.6)
    assert evicted > 1000
    a_alive = _alive(shoal, [f"a:{i}" for i in range(3000)]) / 3000
    b_alive = _alive(shoal, [f"b:{i}" for i in range(3000)]) / 3000
    assert abs(a_alive - b_alive) < 0.1, (a_alive, b_alive)
    halves = [_alive(shoal, [f"a:{i}" for i in range(k, 3000, 2)]) for k in (0, 1)]
    assert abs(halves[0] - halves[1]) < 150, halves


# ------------------------------------------------------------------ mechanics


def test_memory_stays_bounded_under_allkeys_lru(shoal):
    shoal.config_set("maxmemory-policy", "allkeys-lru")
    limit = _limit_above_now(shoal, 4 << 20)
    rss_before = shoal.info("memory")["used_memory_rss"]
    _fill(shoal, "k", 60000, size=150)  # ~18 MB of data through a 4 MB budget
    info = shoal.info()
    assert info["evicted_keys"] > 30000
    assert info["used_memory"] <= limit * 1.05
    assert info["used_memory_rss"] - rss_before < 16 << 20, (rss_before, info["used_memory_rss"])
    assert 0 < shoal.dbsize() < 30000


def test_evictions_notify_and_count(shoal):
    shoal.config_set("notify-keyspace-events", "Ee")
    shoal.config_set("maxmemory-policy", "allkeys-random")
    sub = shoal.pubsub()
    sub.subscribe("__keyevent@0__:evicted")
    try:
        assert sub.get_message(timeout=2)["type"] == "subscribe"
        _limit_above_now(shoal, 1 << 20)
        _fill(shoal, "k", 8000)
        shoal.config_set("maxmemory", 0)  # no more evictions (the cron may still be at it)
        evicted = shoal.info("stats")["evicted_keys"]
        assert evicted > 100
        seen = set()
        while len(seen) < evicted:
            msg = sub.get_message(timeout=5)
            assert msg is not None, f"{len(seen)} of {evicted} evicted events"
            seen.add(msg["data"])
        assert shoal.dbsize() + len(seen) == 8000
        assert not any(shoal.exists(name) for name in list(seen)[:200])
    finally:
        sub.close()


def test_eviction_touches_watched_keys(shoal):
    shoal.config_set("maxmemory-policy", "allkeys-lru")
    shoal.set("watched", "1")
    time.sleep(1.2)  # the oldest key by LRU
    with shoal.pipeline() as pipe:
        pipe.watch("watched")
        _limit_above_now(shoal, 1 << 20)
        _fill(shoal, "k", 8000)
        assert shoal.exists("watched") == 0
        pipe.multi()
        pipe.set("other", "1")
        with pytest.raises(redis.exceptions.WatchError):
            pipe.execute()


def test_lowering_maxmemory_evicts_in_steps_and_the_cron_finishes(shoal):
    """Tenacity 0: each command evicts a few keys and returns; the cron carries on to the limit."""
    _fill(shoal, "k", 20000)
    shoal.config_set("maxmemory-eviction-tenacity", 0)
    shoal.config_set("maxmemory-policy", "allkeys-random")
    used = shoal.info("memory")["used_memory"]
    shoal.config_set("maxmemory", used // 3)  # must not block until the whole excess is gone
    assert shoal.dbsize() > 0
    deadline = time.monotonic() + 30
    while shoal.info("memory")["used_memory"] > used // 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert shoal.info("memory")["used_memory"] <= used // 3
    assert 0 < shoal.dbsize() < 20000 * 2 // 3


def test_replica_ignore_maxmemory_hook(shoal, servers):
    """The replication layer tells node.memory it is a replica; eviction then stops (checked in-process)."""
    from node.config import Config
    from node.core import Node
    from node.memory import EVICT_OK

    node = Node(Config())
    memory = node.memory
    node.config.values["maxmemory"] = 1
    memory.maxmemory = 1
    node.dbs[0].set(b"k", b"v")
    memory.is_replica = lambda: True
    assert memory.perform_evictions() == EVICT_OK
    assert node.dbs[0].size == 1
    memory.is_replica = lambda: False
    node.config.values["maxmemory-policy"] = "allkeys-random"
    memory.policy = "allkeys-random"
    memory.perform_evictions()
    assert node.dbs[0].size == 0 and node.stats.evicted_keys == 1


# ------------------------------------------------------------------ OBJECT FREQ / IDLETIME


def test_object_freq_matches_redis_where_deterministic(differ):
    differ.check("OBJECT", "FREQ", "k")
    differ.check("SET", "k", "v")
    differ.check("OBJECT", "FREQ", "k")  # error: no LFU policy
    differ.check("CONFIG", "SET", "maxmemory-policy", "allkeys-lfu")
    differ.check("SET", "k2", "v")
    differ.check("OBJECT", "FREQ", "k2")  # a new key starts at LFU_INIT_VAL
    differ.check("GET", "k2")
    differ.check("OBJECT", "FREQ", "k2")  # the first hit always counts
    differ.check("OBJECT", "FREQ", "k2")  # OBJECT does not touch
    differ.check("OBJECT", "IDLETIME", "k2")  # error under LFU


def test_object_idletime_tracks_access_under_lru(shoal):
    shoal.config_set("maxmemory-policy", "allkeys-lru")
    shoal.set("a", "1")
    shoal.set("b", "1")
    time.sleep(2.3)
    shoal.get("b")
    assert shoal.object("idletime", "a") >= 2
    assert shoal.object("idletime", "b") <= 1
    assert shoal.object("idletime", "a") >= 2  # OBJECT itself does not touch the key


# ------------------------------------------------------------------ accounting


def _load_mixed(r: redis.Redis, rng: random.Random, n: int) -> None:
    pipe = r.pipeline(transaction=False)
    for i in range(n):
        kind = i % 7
        if kind == 0:
            pipe.set(f"s:{i}", b"x" * rng.randint(1, 300))
        elif kind == 1:
            pipe.set(f"b:{i}", b"y" * rng.randint(600, 4000))
        elif kind == 2:
            pipe.rpush(f"l:{i}", *[b"e%d" % j * rng.randint(1, 4) for j in range(rng.randint(1, 150))])
        elif kind == 3:
            pipe.hset(f"h:{i}", mapping={b"f%d" % j: b"v" * rng.randint(1, 30) for j in range(rng.randint(1, 200))})
        elif kind == 4:
            pipe.sadd(f"t:{i}", *[b"m%d" % rng.randint(0, 10**6) for _ in range(rng.randint(1, 200))])
        elif kind == 5:
            pipe.zadd(f"z:{i}", {b"m%d" % j: rng.random() for j in range(rng.randint(1, 200))})
        else:
            for _ in range(rng.randint(1, 30)):
                pipe.xadd(f"x:{i}", {"a": rng.randint(0, 1000), "b": "v" * rng.randint(1, 20)})
        if i % 100 == 99:
            pipe.execute()
    pipe.execute()


def test_used_memory_tracks_real_growth_within_15_percent():
    with ServerProcess("shoal") as proc:
        r = redis.Redis(port=proc.port)
        before = r.info("memory")
        _load_mixed(r, random.Random(3), 4000)
        after = r.info("memory")
        used = after["used_memory"] - before["used_memory"]
        rss = after["used_memory_rss"] - before["used_memory_rss"]
        assert rss > 20 << 20  # a dataset big enough to measure
        assert abs(used - rss) / rss < 0.15, (used, rss)
        # Deleting the data gives the estimate back (RSS need not shrink: the allocator keeps pages).
        r.flushall()
        assert r.info("memory")["used_memory"] - before["used_memory"] < used * 0.2
