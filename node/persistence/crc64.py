"""CRC-64 as Redis computes it (``src/crc64.c``): the "Jones" polynomial.

Parameters: polynomial 0xad93d23594c935a9, reflected input and output,
initial value 0, no final xor. Check value: ``crc64(b"123456789") ==
0xe9c6d914c4b8d9ca``. RDB files end with this checksum of everything before
it, and DUMP payloads with the checksum of the type, body and version.

``crc64(data, crc)`` continues a running checksum, so a file can be summed in
pieces: ``crc64(b, crc64(a)) == crc64(a + b)``.

The table-driven loop below is the reference implementation. ``crcmod`` (a
dependency of the project) generates the same function in C, about a hundred
times faster; it is used when its extension module is there, and a test holds
the two equal.
"""

from __future__ import annotations

__all__ = ["crc64", "crc64_py"]

_POLY = 0xAD93D23594C935A9
_REFLECTED = int(f"{_POLY:064b}"[::-1], 2)  # the polynomial bit-reversed, for the LSB-first loop


def _make_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ _REFLECTED if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _make_table()


def crc64_py(data, crc: int = 0) -> int:
    """CRC-64/Jones of ``data`` continuing from ``crc`` (pure Python, one table lookup per byte)."""
    table = _TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc


def _fast():
    try:
        import crcmod
        from crcmod import _crcfunext  # noqa: F401  (only the C version is worth using)
    except ImportError:  # pragma: no cover - crcmod is a declared dependency
        return None
    fn = crcmod.mkCrcFun(0x1AD93D23594C935A9, initCrc=0, rev=True, xorOut=0)
    if fn(b"123456789") != 0xE9C6D914C4B8D9CA:  # pragma: no cover - a broken build
        return None
    return fn


_crc_c = _fast()

if _crc_c is not None:

    def crc64(data, crc: int = 0) -> int:
        """CRC-64/Jones of ``data`` (bytes-like) continuing from ``crc``."""
        return _crc_c(data, crc)

else:  # pragma: no cover
    crc64 = crc64_py
