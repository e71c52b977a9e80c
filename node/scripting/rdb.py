"""FUNCTION DUMP / RESTORE payloads, byte-compatible with Redis 7.0.

A payload is, per library, the opcode ``RDB_OPCODE_FUNCTION2`` (245) and the
library code as an RDB string -- LZF-compressed when longer than 20 bytes and
the compression saves at least 4 bytes, as ``rdbSaveRawString`` does with
``rdbcompression yes`` -- then the RDB version (10, two bytes little-endian)
and the CRC64 (Jones polynomial, reflected, little-endian) of everything
before it. ``lzf_compress`` follows liblzf 3.6 as Redis builds it (HLOG 16,
VERY_FAST, a hash table starting empty), so DUMP gives Redis's exact bytes.
"""

from __future__ import annotations

__all__ = ["crc64", "dump_payload", "lzf_compress", "lzf_decompress", "parse_payload", "PayloadError"]

RDB_VERSION = 10
RDB_OPCODE_FUNCTION_PRE_GA = 246
RDB_OPCODE_FUNCTION2 = 245
_ENC_INT8, _ENC_INT16, _ENC_INT32, _ENC_LZF = 0, 1, 2, 3


class PayloadError(Exception):
    pass


# ------------------------------------------------------------------ CRC64


def _crc64_table() -> list[int]:
    poly = 0x95AC9329AC4BC9B5  # 0xad93d23594c935a9, bit-reversed
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ poly if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC_TABLE = _crc64_table()


def crc64(data: bytes, crc: int = 0) -> int:
    table = _CRC_TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc


# ------------------------------------------------------------------ LZF

_HLOG = 16
_HSIZE = 1 << _HLOG
_MAX_LIT = 1 << 5
_MAX_OFF = 1 << 13
_MAX_REF = (1 << 8) + (1 << 3)


def _idx(hval: int) -> int:
    # VERY_FAST: ((h >> (3*8 - HLOG)) - h*5) & (HSIZE - 1), in unsigned int arithmetic
    return ((hval >> (24 - _HLOG)) - hval * 5) & (_HSIZE - 1)


def lzf_compress(data: bytes, out_len: int) -> bytes | None:
    """liblzf's lzf_compress into at most ``out_len`` bytes; None if it does not fit."""
    in_len = len(data)
    if not in_len or not out_len:
        return None
    htab: dict[int, int] = {}
    out = bytearray(b"\0")  # op points past a reserved literal-run header
    lit = 0
    ip = 0
    in_end = in_len
    hval = ((data[0] << 8) | data[1]) if in_len >= 2 else 0
    while ip < in_end - 2:
        hval = ((hval << 8) | data[ip + 2]) & 0xFFFFFFFF
        slot = _idx(hval)
        ref = htab.get(slot, 0)
        htab[slot] = ip
        off = ip - ref - 1
        if (
            0 <= off < _MAX_OFF
            and ref > 0
            and data[ref + 2] == data[ip + 2]
            and data[ref] == data[ip]
            and data[ref + 1] == data[ip + 1]
        ):
            length = 2
            maxlen = in_end - ip - length
            if maxlen > _MAX_REF:
                maxlen = _MAX_REF
            if len(out) + 3 + 1 >= out_len:
                if len(out) - (0 if lit else 1) + 3 + 1 >= out_len:
                    return None
            out[len(out) - lit - 1] = (lit - 1) & 0xFF
            if not lit:
                del out[-1]
            matched = False
            if maxlen > 16:
                for _ in range(16):
                    length += 1
                    if data[ref + length] != data[ip + length]:
                        matched = True
                        break
            if not matched:
                while True:
                    length += 1
                    if not (length < maxlen and data[ref + length] == data[ip + length]):
                        break
            length -= 2
            ip += 1
            if length < 7:
                out.append(((off >> 8) + (length << 5)) & 0xFF)
            else:
                out.append(((off >> 8) + (7 << 5)) & 0xFF)
                out.append((length - 7) & 0xFF)
            out.append(off & 0xFF)
            lit = 0
            out.append(0)  # start run
            ip += length + 1
            if ip >= in_end - 2:
                break
            ip -= 2
            hval = (data[ip] << 8) | data[ip + 1]
            hval = ((hval << 8) | data[ip + 2]) & 0xFFFFFFFF
            htab[_idx(hval)] = ip
            ip += 1
            hval = ((hval << 8) | data[ip + 2]) & 0xFFFFFFFF
            htab[_idx(hval)] = ip
            ip += 1
        else:
            if len(out) >= out_len:
                return None
            lit += 1
            out.append(data[ip])
            ip += 1
            if lit == _MAX_LIT:
                out[len(out) - lit - 1] = (lit - 1) & 0xFF
                lit = 0
                out.append(0)
    if len(out) + 3 > out_len:
        return None
    while ip < in_end:
        lit += 1
        out.append(data[ip])
        ip += 1
        if lit == _MAX_LIT:
            out[len(out) - lit - 1] = (lit - 1) & 0xFF
            lit = 0
            out.append(0)
    out[len(out) - lit - 1] = (lit - 1) & 0xFF
    if not lit:
        del out[-1]
    if len(out) > out_len:
        return None
    return bytes(out)


def lzf_decompress(data: bytes, expected_len: int) -> bytes:
    out = bytearray()
    ip = 0
    n = len(data)
    while ip < n:
        ctrl = data[ip]
        ip += 1
        if ctrl < 32:
            run = ctrl + 1
            if ip + run > n:
                raise PayloadError("lzf: literal run past the end")
            out += data[ip : ip + run]
            ip += run
        else:
            length = ctrl >> 5
            if length == 7:
                if ip >= n:
                    raise PayloadError("lzf: truncated")
                length += data[ip]
                ip += 1
            if ip >= n:
                raise PayloadError("lzf: truncated")
            ref = len(out) - ((ctrl & 0x1F) << 8) - 1 - data[ip]
            ip += 1
            if ref < 0:
                raise PayloadError("lzf: back reference before the start")
            for _ in range(length + 2):
                out.append(out[ref])
                ref += 1
        if len(out) > expected_len:
            raise PayloadError("lzf: output too long")
    if len(out) != expected_len:
        raise PayloadError("lzf: wrong length")
    return bytes(out)


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
