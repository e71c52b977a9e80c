"""Key-to-slot hashing and slot bookkeeping: pure functions, no I/O.

Redis Cluster splits the keyspace into 16384 hash slots. Everything that needs
to know where a key lives (the node's dispatch, the admin tools, the chaos
harness) asks this package, so the answer is the same everywhere.
"""

from slots.keyslot import SLOT_COUNT, crc16_xmodem, keyslot
from slots.ranges import bits_from_ranges, format_ranges, ranges_from_bits, ranges_from_slots
from slots.route import route
from slots.slotmap import SlotMap

__all__ = [
    "SLOT_COUNT", "SlotMap", "bits_from_ranges", "crc16_xmodem", "format_ranges", "keyslot", "ranges_from_bits",
    "ranges_from_slots", "route",
]
