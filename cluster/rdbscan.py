"""Split an RDB file into DUMP payloads without decoding the values (for ``shoal backup restore``).

``cluster/`` may not import ``node/`` (see the import-linter contracts), so this
module walks the RDB format on its own -- but only as far as it needs to find
where each value's body starts and ends. A value's body in an RDB file is
byte for byte what DUMP puts between the type byte and the footer, so

    payload = type byte + body + RDB version (u16 LE) + CRC-64/Jones (u64 LE)

is a valid RESTORE payload for Redis and Shoal, and the server that receives
it does the full validation (listpack contents, stream consistency...).

``scan_rdb(data)`` returns an ``RdbScan`` with the version, aux fields,
function libraries and ``records``: ``(db, key, type, body_start, body_end,
expire_ms | None)`` tuples, offsets into ``data``. It checks the framing: the
header, every opcode and type, lengths that stay inside the file, the EOF
marker and the CRC-64 trailer (RDB version >= 5). Errors are ``RdbScanError``
with the byte offset. Module values and module AUX data are refused (Shoal
has no modules).

Record layout of the value types, as ``rdbSaveObject`` writes them in Redis
7.0 (RDB version 10) and older versions wrote them:

====  ======================================================================
0     string
1 2   list / set: count, then that many strings
3     zset (old): count x (member string, text double: 1 length byte or
      253/254/255 for nan/+inf/-inf)
4     hash: count x (field, value)
5     zset: count x (member, 8-byte binary double)
9-13  zipmap, ziplist list, intset, ziplist zset, ziplist hash: one string
14    quicklist: count ziplist strings
15 19 stream: nodes (key string, listpack string); length; last id; (19:
      first id, max deleted id, entries added); groups (name, last id, (19:
      entries read), PEL (16-byte id, 8-byte time, count), consumers (name,
      8-byte seen time, PEL ids))
16 17 listpack hash / zset: one string
18    quicklist 2: count x (container kind length, listpack or plain string)
====  ======================================================================
"""

from __future__ import annotations

import struct
from typing import NamedTuple

__all__ = ["RDB_MAX_VERSION", "RdbScan", "RdbScanError", "crc64", "dump_payload", "lzf_decompress", "scan_rdb"]

RDB_MAX_VERSION = 10  # Redis 7.0; RESTORE on 7.0 refuses payloads from newer versions

OP_FUNCTION2, OP_FUNCTION, OP_MODULE_AUX, OP_IDLE, OP_FREQ = 245, 246, 247, 248, 249
OP_AUX, OP_RESIZEDB, OP_EXPIRETIME_MS, OP_EXPIRETIME, OP_SELECTDB, OP_EOF = 250, 251, 252, 253, 254, 255

TYPE_NAMES = {0: "string", 1: "list", 2: "set", 3: "zset", 4: "hash", 5: "zset", 9: "hash", 10: "list",
              11: "set", 12: "zset", 13: "hash", 14: "list", 15: "stream", 16: "hash", 17: "zset",
              18: "list", 19: "stream"}


class RdbScanError(Exception):
    def __init__(self, message: str, offset: int) -> None:
        super().__init__(f"{message} (at byte {offset})")
        self.offset = offset


class _Eof(Exception):
    pass


# --------------------------------------------------------------------------- CRC-64 (Redis's "Jones")

_POLY_REFLECTED = 0x95AC9329AC4BC9B5  # 0xad93d23594c935a9 bit-reversed


def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ _POLY_REFLECTED if crc & 1 else crc >> 1
        table.append(crc)
    return table


def _crc64_py(data, crc: int = 0) -> int:
    table = _crc_table.table  # type: ignore[attr-defined]
    for byte in bytes(data):
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc


_crc_table.table = _crc_table()  # type: ignore[attr-defined]


def _make_crc64():
    try:
        import crcmod
        from crcmod import _crcfunext  # noqa: F401  (the C extension; the pure version is slower than ours)
    except ImportError:  # pragma: no cover - crcmod is a declared dependency
        return _crc64_py
    fn = crcmod.mkCrcFun(0x1AD93D23594C935A9, initCrc=0, rev=True, xorOut=0)
    return fn if fn(b"123456789") == 0xE9C6D914C4B8D9CA else _crc64_py


crc64 = _make_crc64()


# --------------------------------------------------------------------------- LZF (keys and function code)

def lzf_decompress(data: bytes, out_len: int) -> bytes:
    """LZF as liblzf writes it: literal runs (ctrl < 32) and back references (len = ctrl >> 5)."""
    out = bytearray()
    i, n = 0, len(data)
    while i < n:
        ctrl = data[i]
        i += 1
        if ctrl < 32:
            run = ctrl + 1
            if i + run > n:
                raise ValueError("LZF literal run past the end")
            out += data[i:i + run]
            i += run
        else:
            length = ctrl >> 5
            if length == 7:
                if i >= n:
                    raise ValueError("LZF truncated length")
                length += data[i]
                i += 1
            if i >= n:
                raise ValueError("LZF truncated reference")
            ref = len(out) - ((ctrl & 0x1F) << 8) - data[i] - 1
            i += 1
            if ref < 0:
                raise ValueError("LZF reference before the start")
            for _ in range(length + 2):  # may overlap what it produces
                out.append(out[ref])
                ref += 1
    if len(out) != out_len:
        raise ValueError(f"LZF produced {len(out)} bytes, expected {out_len}")
    return bytes(out)


# --------------------------------------------------------------------------- scanning

class RdbScan(NamedTuple):
    version: int
    aux: dict
    functions: list
    records: list  # (db, key, type, body_start, body_end, expire_ms | None)
    size: int      # bytes up to and including the checksum


class _Cursor:
    __slots__ = ("d", "p", "n")

    def __init__(self, data: bytes) -> None:
        self.d = data
        self.p = 0
        self.n = len(data)

    def take(self, k: int) -> int:
        """Skip ``k`` bytes; return where they started."""
        start = self.p
        if k < 0 or start + k > self.n:
            raise _Eof()
        self.p = start + k
        return start

    def byte(self) -> int:
        if self.p >= self.n:
            raise _Eof()
        b = self.d[self.p]
        self.p += 1
        return b

    def length(self) -> tuple[int, bool]:
        """(value, is_special_encoding)."""
        b = self.byte()
        kind = b >> 6
        if kind == 0:
            return b & 0x3F, False
        if kind == 1:
            return ((b & 0x3F) << 8) | self.byte(), False
        if kind == 3:
            return b & 0x3F, True
        if b == 0x80:
            return struct.unpack_from(">I", self.d, self.take(4))[0], False
        if b == 0x81:
            return struct.unpack_from(">Q", self.d, self.take(8))[0], False
        raise RdbScanError(f"bad length byte 0x{b:02x}", self.p - 1)

    def count(self) -> int:
        value, special = self.length()
        if special:
            raise RdbScanError("a count uses a string encoding", self.p - 1)
        return value

    def skip_string(self) -> None:
        value, special = self.length()
        if not special:
            self.take(value)
        elif value == 0:
            self.take(1)
        elif value == 1:
            self.take(2)
        elif value == 2:
            self.take(4)
        elif value == 3:
            clen = self.count()
            self.count()
            self.take(clen)
        else:
            raise RdbScanError(f"unknown string encoding {value}", self.p - 1)

    def string(self) -> bytes:
        value, special = self.length()
        if not special:
            return self.d[self.take(value):self.p]
        if value == 0:
            return b"%d" % struct.unpack_from("<b", self.d, self.take(1))[0]
        if value == 1:
            return b"%d" % struct.unpack_from("<h", self.d, self.take(2))[0]
        if value == 2:
            return b"%d" % struct.unpack_from("<i", self.d, self.take(4))[0]
        if value == 3:
            clen, ulen = self.count(), self.count()
            start = self.take(clen)
            try:
                return lzf_decompress(self.d[start:self.p], ulen)
            except ValueError as exc:
                raise RdbScanError(f"bad LZF string: {exc}", start) from None
        raise RdbScanError(f"unknown string encoding {value}", self.p - 1)


def _skip_value(c: _Cursor, t: int) -> None:
    if t == 0 or 9 <= t <= 13 or t == 16 or t == 17:
        c.skip_string()
    elif t in (1, 2, 14):
        for _ in range(c.count()):
            c.skip_string()
    elif t == 3:
        for _ in range(c.count()):
            c.skip_string()
            k = c.byte()
            if k < 253:
                c.take(k)
    elif t == 4:
        for _ in range(2 * c.count()):
            c.skip_string()
    elif t == 5:
        for _ in range(c.count()):
            c.skip_string()
            c.take(8)
    elif t == 18:
        for _ in range(c.count()):
            c.count()
            c.skip_string()
    elif t in (15, 19):
        for _ in range(c.count()):
            c.skip_string()
            c.skip_string()
        for _ in range(3 if t == 15 else 8):  # length, last id (, first id, max deleted id, entries added)
            c.count()
        for _ in range(c.count()):  # consumer groups
            c.skip_string()
            for _ in range(2 if t == 15 else 3):  # last id (, entries read)
                c.count()
            for _ in range(c.count()):  # group PEL
                c.take(24)
                c.count()
            for _ in range(c.count()):  # consumers
                c.skip_string()
                c.take(8)
                c.take(16 * c.count())
    elif t in (6, 7):
        raise RdbScanError("the file holds a module value (Shoal has no modules)", c.p - 1)
    else:
        raise RdbScanError(f"unknown object type {t}", c.p - 1)


def scan_rdb(data: bytes) -> RdbScan:
    """Find every key's record in a whole RDB file; see the module docstring."""
    c = _Cursor(data)
    try:
        if data[:5] != b"REDIS" or not data[5:9].isdigit():
            raise RdbScanError("not an RDB file (no REDIS signature)", 0)
        version = int(data[5:9])
        if not 1 <= version <= RDB_MAX_VERSION:
            raise RdbScanError(f"RDB format version {version} is not supported (1..{RDB_MAX_VERSION})", 5)
        c.p = 9
        aux: dict = {}
        functions: list = []
        records: list = []
        db = 0
        expire = None
        n = len(data)
        append = records.append
        while True:
            op_at = c.p
            t = c.byte()
            if t == OP_EOF:
                break
            if t == OP_EXPIRETIME_MS:
                expire = struct.unpack_from("<q", data, c.take(8))[0]
            elif t == OP_EXPIRETIME:
                expire = struct.unpack_from("<i", data, c.take(4))[0] * 1000
            elif t == OP_FREQ:
                c.take(1)
            elif t == OP_IDLE:
                c.count()
            elif t == OP_SELECTDB:
                db = c.count()
            elif t == OP_RESIZEDB:
                c.count()
                c.count()
            elif t == OP_AUX:
                name = c.string()
                aux[name] = c.string()
            elif t == OP_FUNCTION2:
                functions.append(c.string())
            elif t == OP_FUNCTION:
                name, engine = c.string(), c.string()
                if c.count():
                    c.skip_string()
                functions.append(b"#!%s name=%s\n%s" % (engine, name, c.string()))
            elif t == OP_MODULE_AUX:
                raise RdbScanError("the file holds module AUX data (Shoal has no modules)", op_at)
            else:
                p = c.p
                b = data[p] if p < n else 256
                if b < 0x40 and p + 1 + b <= n:  # fast path: a short plain key (the common case)
                    key = data[p + 1:p + 1 + b]
                    c.p = start = p + 1 + b
                else:
                    key = c.string()
                    start = c.p
                if t == 0 and start < n and data[start] < 0x40:  # ... and a short plain string value
                    c.p = start + 1 + data[start]
                    if c.p > n:
                        raise _Eof()
                else:
                    _skip_value(c, t)
                append((db, key, t, start, c.p, expire))
                expire = None
        if version >= 5:
            body_end = c.p
            stored = struct.unpack_from("<Q", data, c.take(8))[0]
            if stored and crc64(memoryview(data)[:body_end]) != stored:
                raise RdbScanError("RDB checksum mismatch (the file is corrupt)", body_end)
        return RdbScan(version, aux, functions, records, c.p)
    except _Eof:
        raise RdbScanError("the file ends in the middle of a record (truncated)", c.p) from None


def dump_payload(data: bytes, rtype: int, start: int, end: int, version: int) -> bytes:
    """The RESTORE payload of one record found by ``scan_rdb``."""
    head = bytes((rtype,)) + data[start:end] + struct.pack("<H", version)
    return head + struct.pack("<Q", crc64(head))
