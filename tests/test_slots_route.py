"""slots/: ranges and the pure routing decision, checked against the spec's verified scenario table."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from slots import SLOT_COUNT, SlotMap, keyslot
from slots.ranges import (
    bits_from_bytes, bits_from_ranges, bits_from_slots, bits_to_bytes, format_ranges, iter_slots, ranges_from_bits,
)
from slots.route import CROSSSLOT, DOWN, DOWN_READONLY, NOT_SERVED, SERVE, TRYAGAIN, Ask, Moved, route

A, B, C, R = "a" * 40, "b" * 40, "c" * 40, "r" * 40  # three primaries and a replica of A


@settings(max_examples=200, deadline=None)
@given(st.sets(st.integers(0, SLOT_COUNT - 1), max_size=400))
def test_ranges_round_trip(slots):
    bits = bits_from_slots(slots)
    assert list(iter_slots(bits)) == sorted(slots)
    ranges = ranges_from_bits(bits)
    assert bits_from_ranges(ranges) == bits
    assert all(e >= s for s, e in ranges)
    assert all(ranges[i][1] + 1 < ranges[i + 1][0] for i in range(len(ranges) - 1))  # maximal runs
    assert bits_from_bytes(bits_to_bytes(bits)) == bits


def test_format_ranges():
    assert format_ranges([(0, 5460), (5462, 5462)]) == "0-5460 5462"


def three_primaries() -> SlotMap:
    m = SlotMap()
    for slot in range(SLOT_COUNT):
        m.assign(slot, A if slot <= 5460 else B if slot <= 10922 else C)
    return m


def test_by_owner_groups_ranges():
    m = three_primaries()
    m.assign(100, None)
    assert m.by_owner() == {A: [(0, 99), (101, 5460)], B: [(5461, 10922)], C: [(10923, 16383)]}
    assert not m.covered() and m.unbound_count() == 1


def endpoints(node_id: str) -> str:
    return {A: "127.0.0.1:21001", B: "127.0.0.1:21002", C: "127.0.0.1:21003"}[node_id]


def test_moved_and_crossslot():
    m = three_primaries()
    assert keyslot(b"foo") == 12182 and keyslot(b"bar") == 5061
    assert route([b"foo"], m, A).error(endpoints) == "MOVED 12182 127.0.0.1:21003"
    assert route([b"bar"], m, A) is SERVE
    assert route([b"a", b"b"], m, A) is CROSSSLOT
    assert route([], m, A) is SERVE


def test_unbound_first_key_wins_over_crossslot():
    m = SlotMap()
    assert route([b"foo"], m, A) is NOT_SERVED
    m.assign(keyslot(b"b"), A)
    assert route([b"a", b"b"], m, A) is NOT_SERVED  # first key unbound
    assert route([b"b", b"a"], m, A) is CROSSSLOT


def test_replica_and_readonly():
    m = three_primaries()
    assert route([b"bar"], m, R, my_master=A) == Moved(5061, A)
    assert route([b"bar"], m, R, my_master=A, client_readonly=True) is SERVE
    assert route([b"bar"], m, R, my_master=A, client_readonly=True, is_write=True) == Moved(5061, A)
    assert route([b"foo"], m, R, my_master=A, client_readonly=True) == Moved(12182, C)
    assert route([b"bar"], m, R, my_master=A, shard_pubsub=True) is SERVE


def migrating_bar():
    """Slot 5061 (``bar``) migrating from A to B; ``bar`` itself is still on A."""
    source = three_primaries()
    source.migrating_to[5061] = B
    target = three_primaries()
    target.importing_from[5061] = A
    return source, target


def test_source_side_of_a_migration():
    source, _ = migrating_bar()
    here = {b"bar"}.__contains__
    assert route([b"bar"], source, A, key_exists=here) is SERVE
    for key in (b"{bar}missing", b"{bar}new"):
        assert route([key], source, A, key_exists=here) == Ask(5061, B)
    assert route([b"bar", b"{bar}missing"], source, A, key_exists=here) is TRYAGAIN
    assert route([b"{bar}m1", b"{bar}m2"], source, A, key_exists=here) == Ask(5061, B)
    assert route([b"{bar}m1"], source, A, key_exists=here, is_migrate=True) is SERVE


def test_target_side_of_a_migration():
    _, target = migrating_bar()
    here = {b"{bar}new"}.__contains__
    assert route([b"{bar}missing"], target, B, key_exists=here) == Moved(5061, A)
    assert route([b"{bar}missing"], target, B, key_exists=here, client_asking=True) is SERVE
    assert route([b"{bar}new", b"{bar}zz"], target, B, key_exists=here, client_asking=True) is TRYAGAIN
    assert route([b"{bar}new", b"{bar}new"], target, B, key_exists=here, client_asking=True) is SERVE
    assert route([b"{bar}x"], target, B, key_exists=here, command_asking=True) is SERVE


def test_cluster_down_variants():
    m = three_primaries()
    assert route([b"bar"], m, A, state_ok=False) is DOWN
    assert route([b"bar"], m, A, state_ok=False, allow_reads_when_down=True) is SERVE
    assert route([b"bar"], m, A, state_ok=False, allow_reads_when_down=True, is_write=True) is DOWN_READONLY
    assert route([b"bar"], m, A, state_ok=False, shard_pubsub=True) is SERVE
    assert route([b"bar"], m, A, state_ok=False, shard_pubsub=True, allow_pubsubshard_when_down=False) is DOWN
    m.assign(12182, None)
    assert route([b"foo"], m, A, state_ok=False, allow_reads_when_down=True) is NOT_SERVED


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=12), max_size=6), st.sampled_from([A, B, C]))
def test_stable_cluster_verdicts(keys, me):
    """Without migrations: serve iff all keys share one slot that I own; else MOVED to the owner or CROSSSLOT."""
    m = three_primaries()
    verdict = route(keys, m, me)
    slots = [keyslot(k) for k in keys]
    if not keys:
        assert verdict is SERVE
    elif len(set(slots)) > 1:
        assert verdict is CROSSSLOT
    elif m.owner(slots[0]) == me:
        assert verdict is SERVE
    else:
        assert verdict == Moved(slots[0], m.owner(slots[0]))
