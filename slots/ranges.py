"""Slot ranges: the compact way to write, send and compare sets of slots.

A slot set is held as a 16384-bit Python ``int`` (bit ``s`` set = slot ``s``
included): union, difference and "what changed" are single big-int
operations, and it packs into 2 KB for the bus. Humans and Redis's replies
see it as sorted, inclusive ``(start, end)`` ranges.
"""

from __future__ import annotations

from typing import Iterable, Iterator

from slots.keyslot import SLOT_COUNT

__all__ = [
    "ALL_SLOTS", "bits_from_ranges", "bits_from_slots", "bits_to_bytes", "bits_from_bytes", "format_ranges",
    "iter_slots", "ranges_from_bits", "ranges_from_slots", "slot_count",
]

ALL_SLOTS = (1 << SLOT_COUNT) - 1
_BITMAP_BYTES = SLOT_COUNT // 8


def bits_from_slots(slots: Iterable[int]) -> int:
    bits = 0
    for slot in slots:
        bits |= 1 << slot
    return bits


def bits_from_ranges(ranges: Iterable[tuple[int, int]]) -> int:
    bits = 0
    for start, end in ranges:
        bits |= ((1 << (end - start + 1)) - 1) << start
    return bits


def iter_slots(bits: int) -> Iterator[int]:
    """The slots in ``bits``, ascending."""
    for start, end in ranges_from_bits(bits):
        yield from range(start, end + 1)


def ranges_from_bits(bits: int) -> list[tuple[int, int]]:
    """Inclusive ``(start, end)`` runs of set bits, ascending.

    Jumps run to run with bit tricks (lowest set bit, then lowest clear bit
    above it), so the cost is per range, not per slot.
    """
    out = []
    base = 0
    while bits:
        low = (bits & -bits).bit_length() - 1  # first set bit
        bits >>= low
        base += low
        run = (~bits & (bits + 1)).bit_length() - 1  # length of the run of ones
        out.append((base, base + run - 1))
        bits >>= run
        base += run
    return out


def ranges_from_slots(slots: Iterable[int]) -> list[tuple[int, int]]:
    return ranges_from_bits(bits_from_slots(slots))


def slot_count(bits: int) -> int:
    return bits.bit_count()


def format_ranges(ranges: Iterable[tuple[int, int]]) -> str:
    """``0-5460 5462`` -- the CLUSTER NODES spelling (a lone slot is written once)."""
    return " ".join(str(s) if s == e else f"{s}-{e}" for s, e in ranges)


def bits_to_bytes(bits: int) -> bytes:
    """The 2048-byte little-endian bitmap (byte ``s // 8``, bit ``s % 8``), as Redis's bus sends it."""
    return bits.to_bytes(_BITMAP_BYTES, "little")


def bits_from_bytes(data: bytes) -> int:
    if len(data) != _BITMAP_BYTES:
        raise ValueError(f"slot bitmap must be {_BITMAP_BYTES} bytes, not {len(data)}")
    return int.from_bytes(data, "little")
