"""Key-to-slot hashing and slot bookkeeping: pure functions, no I/O.

Redis Cluster splits the keyspace into 16384 hash slots. Everything that needs
to know where a key lives (the node's dispatch, the admin tools, the chaos
harness) asks this package, so the answer is the same everywhere.
"""

from slots.keyslot import SLOT_COUNT, crc16_xmodem, keyslot

__all__ = ["SLOT_COUNT", "crc16_xmodem", "keyslot"]
