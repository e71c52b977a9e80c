"""CRC16 key hashing with `{hash tags}`, exactly as Redis Cluster computes it.

The checksum is CRC16/XMODEM (poly 0x1021, init 0, no reflection). crcmod's
XMODEM definition is the reference; the stdlib's ``binascii.crc_hqx`` computes
the identical function in C at less than half the cost, so the hot path uses it
and a test holds the two equal.
"""

from binascii import crc_hqx

__all__ = ["SLOT_COUNT", "crc16_xmodem", "keyslot"]

SLOT_COUNT = 16384
_SLOT_MASK = SLOT_COUNT - 1


def crc16_xmodem(data: bytes) -> int:
    """CRC16/XMODEM of ``data``."""
    return crc_hqx(data, 0)


def keyslot(key: bytes) -> int:
    """The hash slot of ``key``.

    If the key contains ``{`` followed later by ``}`` with at least one byte
    between them, only the bytes between the first ``{`` and the first ``}``
    after it are hashed, so related keys can be forced into one slot.
    """
    start = key.find(b"{")
    if start != -1:
        end = key.find(b"}", start + 1)
        if end > start + 1:
            key = key[start + 1 : end]
    return crc_hqx(key, 0) & _SLOT_MASK
