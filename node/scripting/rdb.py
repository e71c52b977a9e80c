"""FUNCTION DUMP / RESTORE payloads, byte-compatible with Redis 7.0.

A payload is, per library, the opcode ``RDB_OPCODE_FUNCTION2`` (245) and the
library code as an RDB string -- LZF-compressed when longer than 20 bytes and
the compression saves at least 4 bytes, as ``rdbSaveRawString`` does with
``rdbcompression yes`` -- then the RDB version (10, two bytes little-endian)
and the CRC64 (Jones polynomial, reflected, little-endian) of everything
before it. LZF and CRC64 come from ``node.persistence``, which reproduces liblzf as Redis
builds it, so DUMP gives Redis's exact bytes.
"""

from __future__ import annotations

from node.persistence import lzf
from node.persistence.crc64 import crc64

__all__ = ["crc64", "dump_payload", "lzf_compress", "lzf_decompress", "parse_payload", "PayloadError"]

RDB_VERSION = 10
RDB_OPCODE_FUNCTION_PRE_GA = 246
RDB_OPCODE_FUNCTION2 = 245
_ENC_INT8, _ENC_INT16, _ENC_INT32, _ENC_LZF = 0, 1, 2, 3


class PayloadError(Exception):
    pass


# ------------------------------------------------------------------ CRC64 and LZF
# Shared with the RDB and DUMP code (node.persistence); only the error type differs here.


def lzf_compress(data: bytes, out_len: int) -> bytes | None:
    """liblzf's lzf_compress into at most ``out_len`` bytes; None if it does not fit."""
    return lzf.compress(data, out_len)


def lzf_decompress(data: bytes, expected_len: int) -> bytes:
    try:
        return lzf.decompress(data, expected_len)
    except lzf.LzfError as exc:
        raise PayloadError(str(exc)) from None


# ------------------------------------------------------------------ RDB strings


def _save_len(n: int) -> bytes:
    if n < 1 << 6:
        return bytes((n,))
    if n < 1 << 14:
        return bytes((0x40 | (n >> 8), n & 0xFF))
    if n <= 0xFFFFFFFF:
        return b"\x80" + n.to_bytes(4, "big")
    return b"\x81" + n.to_bytes(8, "big")


def _try_int_encoding(s: bytes) -> bytes | None:
    """rdbTryIntegerEncoding: strings that are the canonical text of an integer."""
    try:
        value = int(s)
    except ValueError:
        return None
    if str(value).encode() != s:
        return None
    if -(1 << 7) <= value < 1 << 7:
        return bytes((0xC0 | _ENC_INT8,)) + value.to_bytes(1, "little", signed=True)
    if -(1 << 15) <= value < 1 << 15:
        return bytes((0xC0 | _ENC_INT16,)) + value.to_bytes(2, "little", signed=True)
    if -(1 << 31) <= value < 1 << 31:
        return bytes((0xC0 | _ENC_INT32,)) + value.to_bytes(4, "little", signed=True)
    return None


def save_string(s: bytes, compression: bool = True) -> bytes:
    if len(s) <= 11:
        encoded = _try_int_encoding(s)
        if encoded is not None:
            return encoded
    if compression and len(s) > 20:
        compressed = lzf_compress(s, len(s) - 4)
        if compressed is not None:
            return bytes((0xC0 | _ENC_LZF,)) + _save_len(len(compressed)) + _save_len(len(s)) + compressed
    return _save_len(len(s)) + s


class _Reader:
    def __init__(self, data: bytes, end: int) -> None:
        self.data = data
        self.pos = 0
        self.end = end

    def take(self, n: int) -> bytes:
        if self.pos + n > self.end:
            raise PayloadError("short read")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def byte(self) -> int:
        return self.take(1)[0]

    def length(self) -> tuple[int, bool]:
        first = self.byte()
        kind = first >> 6
        if kind == 0:
            return first & 0x3F, False
        if kind == 1:
            return ((first & 0x3F) << 8) | self.byte(), False
        if kind == 3:
            return first & 0x3F, True
        if first == 0x80:
            return int.from_bytes(self.take(4), "big"), False
        if first == 0x81:
            return int.from_bytes(self.take(8), "big"), False
        raise PayloadError("unknown length encoding")

    def string(self) -> bytes:
        n, encoded = self.length()
        if not encoded:
            return self.take(n)
        if n == _ENC_INT8:
            return str(int.from_bytes(self.take(1), "little", signed=True)).encode()
        if n == _ENC_INT16:
            return str(int.from_bytes(self.take(2), "little", signed=True)).encode()
        if n == _ENC_INT32:
            return str(int.from_bytes(self.take(4), "little", signed=True)).encode()
        if n == _ENC_LZF:
            clen, _ = self.length()
            length, _ = self.length()
            return lzf_decompress(self.take(clen), length)
        raise PayloadError("unknown string encoding")


# ------------------------------------------------------------------ payloads


def dump_payload(codes: list[bytes], compression: bool = True) -> bytes:
    body = bytearray()
    for code in codes:
        body.append(RDB_OPCODE_FUNCTION2)
        body += save_string(code, compression)
    body += RDB_VERSION.to_bytes(2, "little")
    body += crc64(bytes(body)).to_bytes(8, "little")
    return bytes(body)


def verify_payload(data: bytes) -> bool:
    """verifyDumpPayload: the RDB version is known and the CRC64 matches."""
    if len(data) < 10:
        return False
    footer = data[-10:]
    version = footer[0] | (footer[1] << 8)
    if version > RDB_VERSION:
        return False
    return crc64(data[:-8]) == int.from_bytes(footer[2:], "little")


def parse_payload(data: bytes) -> list[bytes]:
    """The library codes in a verified payload; PayloadError carries Redis's message."""
    reader = _Reader(data, len(data) - 10)
    codes = []
    while len(data) - reader.pos > 10:
        try:
            kind = reader.byte()
        except PayloadError:
            raise PayloadError("can not read data type") from None
        if kind == RDB_OPCODE_FUNCTION_PRE_GA:
            raise PayloadError("Pre-GA function format not supported")
        if kind != RDB_OPCODE_FUNCTION2:
            raise PayloadError("given type is not a function")
        try:
            codes.append(reader.string())
        except PayloadError:
            raise PayloadError("Failed loading library payload") from None
    return codes
