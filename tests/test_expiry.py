"""Key expiry: lazy (on access), active (the cron's cycle), and TTL replies vs Redis.

The engine tests drive a Node with a fake wall clock so every expiry happens
at a chosen instant; the cron test runs the real ``ShoalServer._cron`` under
trio's MockClock; the end-to-end tests compare real servers in real time.
"""

from __future__ import annotations

import time

import pytest
import trio

from node.config import Config
from node.core import Node
from node.server import ShoalServer
from tests.resp_client import parse
from tests.test_keys import FAR_S, check_scan, scan_all

BASE_S = 1_700_000_000.0  # an arbitrary "now" for fake clocks


class FakeClock:
    """A wall clock in unix seconds that moves only when told to."""

    def __init__(self, start: float = BASE_S) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def make_node(**config) -> tuple[Node, FakeClock]:
    cfg = Config()
    for name, value in config.items():
        cfg.apply(name, [str(value)])
    clock = FakeClock()
    return Node(cfg, wall_clock=clock), clock


def now_ms(node: Node) -> int:
    node.clock.unpin()
    return node.clock.now()


def raw_present(db, key: bytes) -> bool:
    """Is ``key`` still stored, looking without the lazy-expiry of lookup()?"""
    from slots import keyslot

    return key in db.dicts[keyslot(key)]


def set_with_ttl(node: Node, db_index: int, key: bytes, ttl_ms: int) -> None:
    db = node.dbs[db_index]
    db.set(key, b"v")
    db.set_expire(key, now_ms(node) + ttl_ms)


# ------------------------------------------------------------ lazy expiry


def test_lazy_expiry_on_read():
    node, clock = make_node()
    db = node.dbs[0]
    set_with_ttl(node, 0, b"k", 1000)
    db.set(b"forever", b"v")
    clock.advance(1.0)
    node.clock.unpin()
    assert db.lookup(b"k") == b"v"  # exactly at its time a key still lives (Redis: now > when)
    clock.advance(0.001)
    node.clock.unpin()
    assert raw_present(db, b"k")
    assert db.lookup(b"k") is None
    assert not raw_present(db, b"k")
    assert node.stats.expired_keys == 1
    assert db.size == 1 and db.volatile == 0
    assert db.lookup(b"forever") == b"v"


def test_expired_keys_are_never_listed():
    node, clock = make_node()
    db = node.dbs[0]
    for i in range(100):
        set_with_ttl(node, 0, b"gone:%d" % i, 500)
        db.set(b"stay:%d" % i, b"v")
    clock.advance(1)
    node.clock.unpin()
    assert db.size == 200  # nothing collected yet
    assert sorted(db.keys()) == sorted(b"stay:%d" % i for i in range(100))
    assert all(k.startswith(b"stay") for k in db.keys(lambda k: True))
    assert node.stats.expired_keys == 0  # KEYS filters without deleting, like Redis
    for _ in range(50):
        assert db.random_key(node.rng).startswith(b"stay")
    cursor, found = 0, []
    while True:
        cursor, page = db.scan(cursor, 7)
        found += page
        if cursor == 0:
            break
    assert sorted(found) == sorted(b"stay:%d" % i for i in range(100))
    assert db.size == 100  # SCAN deleted what it met (Redis's expireIfNeeded)
    assert node.stats.expired_keys == 100


def test_delete_of_expired_key_counts_as_absent():
    node, clock = make_node()
    db = node.dbs[0]
    set_with_ttl(node, 0, b"k", 10)
    clock.advance(1)
    node.clock.unpin()
    assert db.delete(b"k") is False
    assert node.stats.expired_keys == 1


def test_time_is_pinned_for_a_command():
    node, clock = make_node()
    db = node.dbs[0]
    set_with_ttl(node, 0, b"k", 10)
    node.clock.unpin()
    assert db.lookup(b"k") == b"v"
    clock.advance(1)  # the clock moves during the "command": no effect until unpin
    assert db.lookup(b"k") == b"v"
    node.clock.unpin()
    assert db.lookup(b"k") is None


# ---------------------------------------------------------- active expiry


def test_active_cycle_removes_keys_without_reads():
    node, clock = make_node()
    for index in (0, 3, 15):
        for i in range(200):
            set_with_ttl(node, index, b"short:%d" % i, 1000)
            set_with_ttl(node, index, b"long:%d" % i, 60_000)
            node.dbs[index].set(b"plain:%d" % i, b"v")
    clock.advance(0.5)
    assert node.active_expire_cycle(now_ms(node), 10.0) == 0
    assert node.stats.expired_keys == 0
    clock.advance(1)
    # Run the cycle as the cron would until it finds nothing more to do.
    deleted = 0
    for _ in range(200):
        n = node.active_expire_cycle(now_ms(node), 10.0)
        deleted += n
        if all(not raw_present(node.dbs[i], b"short:%d" % k) for i in (0, 3, 15) for k in range(200)):
            break
    assert deleted == 600
    assert node.stats.expired_keys == 600
    for index in (0, 3, 15):
        db = node.dbs[index]
        assert db.size == 400 and db.volatile == 200
        assert all(raw_present(db, b"long:%d" % k) for k in range(200))
    assert 0 < node.stats.expired_stale_perc <= 1
    assert node.dbs[0].avg_ttl > 0


def test_active_cycle_collects_everything_eventually_under_a_tiny_budget():
    """With a budget too small for one pass, the saved cursors still make progress."""
    node, clock = make_node()
    for i in range(5000):
        set_with_ttl(node, 0, b"k:%d" % i, 100)
    clock.advance(1)
    cycles = 0
    while node.dbs[0].size:
        node.active_expire_cycle(now_ms(node), 0.0)
        cycles += 1
        assert cycles < 10_000
    assert node.stats.expired_keys == 5000
    assert cycles > 1
    assert node.stats.expired_time_cap_reached_count > 0


def test_active_cycle_stops_early_when_few_keys_are_stale():
    """Like Redis: a sample with <= 10% expired ends the round; most stale keys wait."""
    node, clock = make_node()
    for i in range(2000):
        set_with_ttl(node, 0, b"live:%d" % i, 60_000)
    for i in range(20):
        set_with_ttl(node, 0, b"dead:%d" % i, 10)
    clock.advance(1)
    node.active_expire_cycle(now_ms(node), 10.0)
    assert node.dbs[0].size > 2000  # one cycle does not walk all 2020 keys


def test_active_expire_disabled():
    node, clock = make_node()
    set_with_ttl(node, 0, b"k", 10)
    clock.advance(1)
    node.active_expire_enabled = False
    assert node.active_expire_cycle(now_ms(node), 10.0) == 0
    assert raw_present(node.dbs[0], b"k")


def test_active_cycle_cost_with_few_volatile_keys():
    """A db with one far-future TTL must not cost a walk over every slot per tick."""
    node, clock = make_node()
    set_with_ttl(node, 0, b"k", 3_600_000)
    start = time.perf_counter()
    for _ in range(100):
        node.active_expire_cycle(now_ms(node), 10.0)
    per_cycle = (time.perf_counter() - start) / 100
    assert per_cycle < 0.0005, f"{per_cycle * 1e6:.0f} us per cycle"


# ------------------------------------------------------- the cron, virtual time


async def _run_cron(hz: int, seconds: float, keys: list[tuple[bytes, int]]):
    """Run the real ShoalServer._cron on a MockClock for ``seconds`` of virtual time."""
    cfg = Config()
    cfg.apply("hz", [str(hz)])
    node = Node(cfg, wall_clock=lambda: BASE_S + trio.current_time())
    server = ShoalServer(node, [])
    calls = []
    real_cycle = node.active_expire_cycle

    def counting_cycle(now, budget, *args):
        calls.append(now)
        return real_cycle(now, budget, *args)

    node.active_expire_cycle = counting_cycle
    db = node.dbs[0]
    for key, ttl_ms in keys:
        db.set(key, b"v")
        db.set_expire(key, node.clock.wall_ms() + ttl_ms)
    timeline = []
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server._cron)
            for _ in range(int(seconds * 10)):
                await trio.sleep(0.1)
                timeline.append((round(trio.current_time(), 3), sorted(k for k, _ in keys if raw_present(db, k))))
            nursery.cancel_scope.cancel()
    finally:
        server.close_all()
    return node, calls, timeline


async def test_cron_expires_keys_as_virtual_time_passes(autojump_clock):
    keys = [(b"a", 350), (b"b", 1250), (b"c", 10_000_000)]
    node, calls, timeline = await _run_cron(10, 2.0, keys)
    present = dict(timeline)
    # Gone within one cron period (0.1 s) after their time, with no reads at all.
    assert present[0.3] == [b"a", b"b", b"c"]
    assert present[0.5] == [b"b", b"c"]
    assert present[1.2] == [b"b", b"c"]
    assert present[1.4] == [b"c"]
    assert present[2.0] == [b"c"]
    assert node.stats.expired_keys == 2


@pytest.mark.parametrize("hz,expected", [(1, 2), (10, 20), (50, 100), (500, 1000), (1000, 1000)])
async def test_cron_honours_hz(autojump_clock, hz, expected):
    _, calls, _ = await _run_cron(hz, 2.0, [])
    assert abs(len(calls) - expected) <= 1, (hz, len(calls))
    # Each cycle gets the wall time of its tick.
    assert calls == sorted(calls)


# ----------------------------------------------- TTL semantics vs real Redis


def test_ttl_replies_match_redis(differ):
    differ.check("TTL", "k")
    differ.check("PTTL", "k")
    differ.check("SET", "k", "v")
    differ.check("TTL", "k")
    differ.check("PTTL", "k")
    differ.check("EXPIRE", "k", "100000")
    differ.check("TTL", "k")
    differ.check("SET", "k", "v", "KEEPTTL")
    differ.check("TTL", "k")
    differ.check("PERSIST", "k")
    differ.check("TTL", "k")
    differ.check("PERSIST", "k")
    differ.check("EXPIRE", "k", "1000", "NX")
    differ.check("EXPIRE", "k", "5000", "NX")
    differ.check("TTL", "k")
    differ.check("EXPIRE", "k", "5000", "XX")
    differ.check("EXPIRE", "k", "3000", "GT")
    differ.check("EXPIRE", "k", "3000", "LT")
    differ.check("TTL", "k")
    differ.check("EXPIRE", "k", "9000", "XX", "GT")
    differ.check("TTL", "k")
    differ.check("EXPIRE", "k", "-10", "GT")
    differ.check("TTL", "k")
    differ.check("EXPIRE", "k", "-10", "LT")
    differ.check("TTL", "k")
    differ.check("EXISTS", "k")


def test_expire_options_on_missing_key(differ):
    for opts in ((), ("NX",), ("XX",), ("GT",), ("LT",)):
        differ.check("EXPIRE", "nosuch", "100", *opts)
        differ.check("EXPIRE", "nosuch", "-100", *opts)


def test_set_px_never_observable_after_expiry(differ):
    """Keys set with PX 50 are gone everywhere after 200 ms, on both servers."""
    keys = [f"px:{i}" for i in range(30)]
    for key in keys:
        differ.check("SET", key, "v", "PX", "50")
    differ.check("SET", "stay", "v", "EX", "1000")
    time.sleep(0.2)
    for key in keys[:10]:
        differ.check("GET", key)
        differ.check("EXISTS", key)
        differ.check("TTL", key)
        differ.check("PTTL", key)
        differ.check("TYPE", key)
        differ.check("EXPIRETIME", key)
        differ.check("OBJECT", "ENCODING", key)
        differ.check("PERSIST", key)
        differ.check("EXPIRE", key, "100")
        differ.check("RENAME", key, "x")
        differ.check("COPY", key, "x")
        differ.check("MOVE", key, "1")
        differ.check("DEL", key)
    differ.check("KEYS", "*")
    differ.check("KEYS", "px:*")
    check_scan(differ)
    for _ in range(20):
        assert parse(differ.shoal.call("RANDOMKEY")) == b"stay"
        assert parse(differ.redis.call("RANDOMKEY")) == b"stay"
    # Keys nobody read are collected by the active cycle alone (hz 10).
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        if parse(differ.shoal.call("DBSIZE")) == 1:
            break
        time.sleep(0.05)
    differ.check("DBSIZE")
    assert parse(differ.shoal.call("DBSIZE")) == 1


def test_active_expiry_without_reads_real_time(differ):
    """Only DBSIZE is asked: it drops to 0 through the active cycle, on both servers."""
    for i in range(200):
        differ.check("SET", f"k:{i}", "v", "PX", "50")
    time.sleep(0.3)
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        if differ.both("DBSIZE") == (b":0\r\n", b":0\r\n"):
            break
        time.sleep(0.05)
    differ.check("DBSIZE")
    assert scan_all(differ.shoal) == []


def test_expireat_far_future_is_stable(differ):
    differ.check("SET", "k", "v", "EXAT", FAR_S)
    differ.check("EXPIRETIME", "k")
    differ.check("PEXPIRETIME", "k")
    differ.check("PERSIST", "k")
    differ.check("EXPIRETIME", "k")


def test_expire_slots_cursor_wraps_and_visits_each_volatile_slot():
    from slots import keyslot

    node, clock = make_node()
    db = node.dbs[0]
    keys = [b"w:%d" % i for i in range(50)]
    for key in keys:
        set_with_ttl(node, 0, key, 60_000)
    slots = sorted({keyslot(k) for k in keys})
    # Starting past the last volatile slot wraps to the first one.
    nxt, checked, expired = db.expire_slots(slots[-1] + 1, 1, now_ms(node))
    assert (nxt, checked, expired) == (slots[0] + 1, 1, 0)
    # A large budget sees every volatile key exactly once per call.
    _, checked, _ = db.expire_slots(slots[3], 10_000, now_ms(node))
    assert checked == 50
    clock.advance(61)
    _, checked, expired = db.expire_slots(0, 10_000, now_ms(node))
    assert checked == expired == 50
    assert db.size == 0 and db.volatile == 0 and not db.volatile_slots
