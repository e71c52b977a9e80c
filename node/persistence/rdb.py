"""RDB version 10 (Redis 7.0): values, DUMP payloads and whole files, both directions.

Pure code: no trio, no clock. Callers pass file objects, times and the
encoding thresholds in.

What is where
-------------
* ``dump_payload(value)`` / ``restore_payload(payload)``: the DUMP format
  (type byte, value body, RDB version as u16 LE, CRC-64 LE of all before it).
* ``RdbWriter(fileobj)``: streams a whole RDB file (header and aux fields,
  functions, databases, keys, EOF and checksum) through a 64 KiB buffer.
* ``load_rdb(data_or_fileobj)``: an iterator of ``(db, key, value,
  expire_ms)``; the aux fields, functions and the offset where the file ended
  are on the returned object. Errors are ``RdbError(message, offset)``.

The value body ("RDB object") format
-------------------------------------
Lengths: ``00xxxxxx`` (6 bits), ``01xxxxxx xxxxxxxx`` (14 bits, big-endian),
``0x80`` + u32 BE, ``0x81`` + u64 BE; ``11xxxxxx`` announces a special string
encoding: 0/1/2 = an 8/16/32-bit little-endian integer printed as decimal
text, 3 = LZF (compressed length, plain length, data).

What the writer emits is what Redis 7.0 emits for the same value, so real
Redis loads it with the same OBJECT ENCODING:

==========  ===========================================================
string      type 0; integers that fit 32 bits in the integer forms; LZF
            above 20 bytes when it saves at least 4 bytes (``compress``)
list        type 18 (quicklist 2): listpack nodes filled as Redis's
            ``quicklistPushTail`` fills them for ``list-max-listpack-size``
set         type 11 (intset blob) or 2 (members)
zset        type 17 (listpack) or 5 (members with binary doubles, highest
            score first, as Redis walks its skiplist)
hash        type 16 (listpack) or 4 (field/value pairs)
stream      type 19 (listpacks 2): one listpack per node of the Stream,
            then length, last/first/max-deleted IDs, entries-added, and the
            consumer groups with their PEL and consumers
==========  ===========================================================

The reader also takes what older versions wrote: plain list/zset (types 1
and 3, text doubles), zipmap hashes (9), ziplists (10, 12, 13), quicklist 1
(14, nodes are ziplists), streams type 15, plain (huge) quicklist nodes, and
the old EXPIRETIME (seconds) and FUNCTION (7.0 release candidates) opcodes.

Loaded values are the classes the commands use, with the encoding Redis 7.0
gives a value after loading it (``rdbLoadObject``): e.g. a listpack hash with
more than ``hash-max-listpack-entries`` fields becomes a hashtable, a plain
set of integers no longer than ``set-max-intset-entries`` becomes an intset.

Known difference: a stream keeps deleted entries as tombstones inside its
nodes, and Shoal's ``Stream`` does not keep their fields and values, so the
writer fills a tombstone with empty values. Readers skip tombstones, so the
stream reads the same everywhere; only the node's byte size (which decides
when Redis starts a new node on a later XADD) can differ a little.

Bad input never raises anything but ``RdbError`` (files) or the two
``ErrorReply`` texts Redis uses for RESTORE. The reader validates listpacks,
ziplists, intsets and zipmaps fully (sizes, counts, back-lengths, order,
duplicate members) and the consistency of stream metadata, i.e. what Redis
checks with ``sanitize-dump-payload yes``, always.
"""

from __future__ import annotations

import re
import struct

from node.engine.hashvalue import HashValue
from node.engine.listvalue import ListValue
from node.engine.setvalue import SetValue
from node.engine.stream import ID_MAX, MASK64, Nack, Stream, _Node
from node.engine.zset import ZSet
from node.persistence import lzf
from node.persistence.crc64 import crc64
from node.resp.parser import string2ll
from node.resp.replies import ErrorReply

__all__ = [
    "BAD_DATA_FORMAT", "DEFAULT_LIMITS", "RDB_VERSION", "BAD_PAYLOAD", "RdbError", "RdbLoader", "RdbWriter",
    "dump_payload", "load_rdb", "restore_payload", "value_type",
]

RDB_VERSION = 10

# Object types (rdb.h).
T_STRING = 0
T_LIST = 1
T_SET = 2
T_ZSET = 3
T_HASH = 4
T_ZSET_2 = 5
T_MODULE = 6
T_MODULE_2 = 7
T_HASH_ZIPMAP = 9
T_LIST_ZIPLIST = 10
T_SET_INTSET = 11
T_ZSET_ZIPLIST = 12
T_HASH_ZIPLIST = 13
T_LIST_QUICKLIST = 14
T_STREAM_LISTPACKS = 15
T_HASH_LISTPACK = 16
T_ZSET_LISTPACK = 17
T_LIST_QUICKLIST_2 = 18
T_STREAM_LISTPACKS_2 = 19

# Opcodes.
OP_FUNCTION2 = 245
OP_FUNCTION = 246
OP_MODULE_AUX = 247
OP_IDLE = 248
OP_FREQ = 249
OP_AUX = 250
OP_RESIZEDB = 251
OP_EXPIRETIME_MS = 252
OP_EXPIRETIME = 253
OP_SELECTDB = 254
OP_EOF = 255

_QUICKLIST_PLAIN = 1
_QUICKLIST_PACKED = 2

_STREAM_DELETED = 1
_STREAM_SAMEFIELDS = 2

BAD_PAYLOAD = ErrorReply("ERR DUMP payload version or checksum are wrong")
BAD_DATA_FORMAT = ErrorReply("ERR Bad data format")

#: Encoding thresholds used when a caller gives none (Redis 7.0's defaults).
DEFAULT_LIMITS = {
    "hash-max-listpack-entries": 512,
    "hash-max-listpack-value": 64,
    "set-max-intset-entries": 512,
    "zset-max-listpack-entries": 128,
    "zset-max-listpack-value": 64,
}

#: Strings longer than this are stored plainly even with compression on:
#: pure-Python LZF costs about a microsecond per byte (Redis loads both forms).
LZF_MAX_INPUT = 1 << 20

_LISTPACK_SAFETY = 1 << 30  # LISTPACK_MAX_SAFETY_SIZE
_PACKED_THRESHOLD = 1 << 30  # quicklist packed_threshold: bigger elements get a plain node
_SIZE_SAFETY_LIMIT = 8192
_FILL_SIZES = (4096, 8192, 16384, 32768, 65536)
_LLONG_HALF = float((2**63 - 1) // 2)  # double2ll's range test
_FLUSH_AT = 1 << 16

_pack_double = struct.Struct("<d").pack
_unpack_double = struct.Struct("<d").unpack
_pack_millis = struct.Struct("<q").pack
_unpack_millis = struct.Struct("<q").unpack


class RdbError(Exception):
    """A file that cannot be loaded: ``message`` says what was expected, ``offset`` where."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(f"{message} (at offset {offset})")
        self.message = message
        self.offset = offset


class _Corrupt(Exception):
    """Internal: the data is not what it should be. Carries the reader offset."""

    def __init__(self, message: str, offset: int = -1) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset


class _EmptyKey(Exception):
    """Internal: a container with no elements (Redis skips these in files, rejects them in RESTORE)."""


# =====================================================================
# Writing
# =====================================================================

_LEN_CACHE = [bytes((n,)) if n < 64 else bytes((0x40 | (n >> 8), n & 0xFF)) for n in range(16384)]


def _enc_len(n: int) -> bytes:
    if n < 16384:
        return _LEN_CACHE[n]
    if n <= 0xFFFFFFFF:
        return b"\x80" + n.to_bytes(4, "big")
    return b"\x81" + n.to_bytes(8, "big")


def _int_string(v: int) -> bytes | None:
    """The RDB integer encoding of ``v`` (rdbEncodeInteger), or None if it needs more than 32 bits."""
    if -128 <= v <= 127:
        return bytes((0xC0, v & 0xFF))
    if -32768 <= v <= 32767:
        return b"\xc1" + (v & 0xFFFF).to_bytes(2, "little")
    if -(2**31) <= v < 2**31:
        return b"\xc2" + (v & 0xFFFFFFFF).to_bytes(4, "little")
    return None


def _put_string(out: bytearray, s, compress: bool) -> None:
    """rdbSaveRawString: integer form, LZF, or length + bytes."""
    n = len(s)
    if n <= 11 and n:
        c = s[0]
        if 48 <= c <= 57 or c == 45:
            v = string2ll(s)
            if v is not None:
                enc = _int_string(v)
                if enc is not None:
                    out += enc
                    return
    if compress and 20 < n <= LZF_MAX_INPUT and lzf.may_fit(s, n - 4):
        packed = lzf.compress(s, n - 4)
        if packed is not None:
            out += b"\xc3"
            out += _enc_len(len(packed))
            out += _enc_len(n)
            out += packed
            return
    out += _LEN_CACHE[n] if n < 16384 else _enc_len(n)
    out += s


# ------------------------------------------------------------ listpacks


def _backlen(n: int) -> bytes:
    """A listpack entry's back-length: its encoded size, 7 bits a byte, readable from the end."""
    if n <= 127:
        return bytes((n,))
    if n < 16383:
        return bytes((n >> 7, (n & 127) | 128))
    if n < 2097151:
        return bytes((n >> 14, ((n >> 7) & 127) | 128, (n & 127) | 128))
    if n < 268435455:
        return bytes((n >> 21, ((n >> 14) & 127) | 128, ((n >> 7) & 127) | 128, (n & 127) | 128))
    return bytes((n >> 28, ((n >> 21) & 127) | 128, ((n >> 14) & 127) | 128, ((n >> 7) & 127) | 128,
                  (n & 127) | 128))


_LP_SMALL_INTS = [bytes((v, 1)) for v in range(128)]


def _lp_int(v: int) -> bytes:
    """One listpack entry holding the integer ``v`` (the smallest encoding, as lpEncodeIntegerGetType)."""
    if 0 <= v <= 127:
        return _LP_SMALL_INTS[v]
    if -4096 <= v <= 4095:
        u = v & 0x1FFF
        return bytes((0xC0 | (u >> 8), u & 0xFF, 2))
    if -32768 <= v <= 32767:
        return b"\xf1" + (v & 0xFFFF).to_bytes(2, "little") + b"\x03"
    if -8388608 <= v <= 8388607:
        return b"\xf2" + (v & 0xFFFFFF).to_bytes(3, "little") + b"\x04"
    if -(2**31) <= v < 2**31:
        return b"\xf3" + (v & 0xFFFFFFFF).to_bytes(4, "little") + b"\x05"
    return b"\xf4" + (v & MASK64).to_bytes(8, "little") + b"\x09"


def _lp_str(s) -> bytes:
    """One listpack entry for the string ``s`` (integer-encoded when it is a canonical integer)."""
    n = len(s)
    if n <= 20 and n:
        c = s[0]
        if 48 <= c <= 57 or c == 45:
            v = string2ll(s)
            if v is not None:
                return _lp_int(v)
    if n < 64:
        return bytes((0x80 | n,)) + s + (bytes((n + 1,)) if n + 1 <= 127 else _backlen(n + 1))
    if n < 4096:
        return bytes((0xE0 | (n >> 8), n & 0xFF)) + s + _backlen(n + 2)
    return b"\xf0" + n.to_bytes(4, "little") + s + _backlen(n + 5)


def _lp_item(item) -> bytes:
    return _lp_int(item) if type(item) is int else _lp_str(item)


def _lp_build(entries: list, count: int) -> bytes:
    """A listpack from already encoded entries."""
    body = b"".join(entries)
    total = 7 + len(body)
    return total.to_bytes(4, "little") + (count if count < 65535 else 65535).to_bytes(2, "little") + body + b"\xff"


def _lp_from_items(items) -> bytes:
    entries = [_lp_item(item) for item in items]
    return _lp_build(entries, len(entries))


def _score_item(score: float):
    """How a zset listpack stores a score: an integer when double2ll allows it, else %.17g text."""
    if -_LLONG_HALF <= score <= _LLONG_HALF:
        as_int = int(score)
        if as_int == score:
            return as_int
    return (b"%.17g" % score)


# ------------------------------------------------------------ value bodies


def value_type(value) -> int:
    """The RDB type byte Redis 7.0 writes for ``value``."""
    kind = type(value)
    if kind is bytes or kind is bytearray:
        return T_STRING
    if kind is ListValue:
        return T_LIST_QUICKLIST_2
    if kind is HashValue:
        return T_HASH if value.hashtable else T_HASH_LISTPACK
    if kind is SetValue:
        return T_SET_INTSET if value.is_intset else T_SET
    if kind is ZSet:
        return T_ZSET_LISTPACK if value.listpack else T_ZSET_2
    if kind is Stream:
        return T_STREAM_LISTPACKS_2
    raise TypeError(f"no RDB encoding for {kind.__name__} values")


def _list_nodes(items, fill: int) -> list:
    """Split a list into quicklist nodes as ``quicklistPushTail`` would for ``fill``.

    Redis 7.0.15's rule (``_quicklistNodeAllowInsert``): an element joins the
    tail node unless node size + element length + 8 passes the size limit
    (negative fill: 4/8/16/32/64 KiB), or, for a count limit (positive fill),
    passes 8 KiB or the count would. Returns ``(container, data)`` pairs:
    packed listpacks, or plain nodes for elements of 1 GiB and more.
    """
    if fill > 32767:
        fill = 32767
    if fill >= 0:
        size_limit = 0
        count_limit = fill or 1
    else:
        size_limit = _FILL_SIZES[min(-fill - 1, len(_FILL_SIZES) - 1)]
        count_limit = 0
    nodes = []
    entries: list = []
    node_bytes = 0
    for s in items:
        sz = len(s)
        if sz >= _PACKED_THRESHOLD:
            if entries:
                nodes.append((_QUICKLIST_PACKED, _lp_build(entries, len(entries))))
                entries = []
            nodes.append((_QUICKLIST_PLAIN, s))
            continue
        entry = _lp_str(s)
        if entries:
            new_sz = node_bytes + sz + 8
            if size_limit:
                fits = new_sz <= size_limit
            else:
                fits = new_sz <= _SIZE_SAFETY_LIMIT and len(entries) + 1 <= count_limit
            if fits:
                entries.append(entry)
                node_bytes += len(entry)
                continue
            nodes.append((_QUICKLIST_PACKED, _lp_build(entries, len(entries))))
        entries = [entry]
        node_bytes = 7 + len(entry)
    if entries:
        nodes.append((_QUICKLIST_PACKED, _lp_build(entries, len(entries))))
    return nodes


def _intset_blob(ints: list) -> bytes:
    lo, hi = ints[0], ints[-1]
    n = len(ints)
    if lo >= -32768 and hi <= 32767:
        return b"\x02\x00\x00\x00" + n.to_bytes(4, "little") + struct.pack("<%dh" % n, *ints)
    if lo >= -(2**31) and hi < 2**31:
        return b"\x04\x00\x00\x00" + n.to_bytes(4, "little") + struct.pack("<%di" % n, *ints)
    return b"\x08\x00\x00\x00" + n.to_bytes(4, "little") + struct.pack("<%dq" % n, *ints)


def _signed64(v: int) -> int:
    v &= MASK64
    return v - (1 << 64) if v >> 63 else v


def _stream_node_listpack(node) -> bytes:
    mfields = node.mfields
    nfields = len(mfields)
    master = node.master
    mms, mseq = master >> 64, master & MASK64
    entries = [_lp_int(node.live), _lp_int(node.dead), _lp_int(nfields)]
    entries += [_lp_str(f) for f in mfields]
    entries.append(_LP_SMALL_INTS[0])
    count = 4 + nfields
    blank = None
    for sid, fv in zip(node.ids, node.values):
        ms_diff = _lp_int(_signed64((sid >> 64) - mms))
        seq_diff = _lp_int(_signed64((sid & MASK64) - mseq))
        if fv is None:
            # A tombstone: its fields and values are gone; empty values keep the shape.
            if blank is None:
                blank = [_lp_str(b"")] * nfields
            entries += (_lp_int(_STREAM_DELETED | _STREAM_SAMEFIELDS), ms_diff, seq_diff)
            entries += blank
            entries.append(_lp_int(nfields + 3))
            count += nfields + 4
        elif fv[0::2] == mfields:
            entries += (_LP_SMALL_INTS[_STREAM_SAMEFIELDS], ms_diff, seq_diff)
            entries += [_lp_str(v) for v in fv[1::2]]
            entries.append(_lp_int(nfields + 3))
            count += nfields + 4
        else:
            n = len(fv) // 2
            entries += (_LP_SMALL_INTS[0], ms_diff, seq_diff, _lp_int(n))
            entries += [_lp_str(x) for x in fv]
            entries.append(_lp_int(2 * n + 4))
            count += 2 * n + 5
    return _lp_build(entries, count)


def _put_id(out: bytearray, sid: int) -> None:
    out += _enc_len(sid >> 64)
    out += _enc_len(sid & MASK64)


def _put_stream(out: bytearray, s: Stream, compress: bool) -> None:
    out += _enc_len(len(s.nodes))
    for node in s.nodes:
        _put_string(out, node.master.to_bytes(16, "big"), compress)
        _put_string(out, _stream_node_listpack(node), compress)
    out += _enc_len(s.length)
    _put_id(out, s.last_id)
    _put_id(out, s.first_id)
    _put_id(out, s.max_deleted)
    out += _enc_len(s.entries_added)
    groups = s.sorted_groups()
    out += _enc_len(len(groups))
    for name, group in groups:
        _put_string(out, name, compress)
        _put_id(out, group.last_id)
        out += _enc_len(group.entries_read & MASK64)
        out += _enc_len(len(group.pel))
        for sid, nack in group.pel.items():
            out += sid.to_bytes(16, "big")
            out += _pack_millis(nack.delivery_time)
            out += _enc_len(nack.delivery_count)
        consumers = group.sorted_consumers()
        out += _enc_len(len(consumers))
        for consumer in consumers:
            _put_string(out, consumer.name, compress)
            out += _pack_millis(consumer.seen_time)
            out += _enc_len(len(consumer.pel))
            for sid in consumer.pel:
                out += sid.to_bytes(16, "big")


def _put_body(out: bytearray, value, rtype: int, compress: bool, fill: int) -> None:
    """rdbSaveObject: the body of ``value`` written as ``rtype`` (from ``value_type``)."""
    if rtype == T_STRING:
        _put_string(out, value, compress)
    elif rtype == T_LIST_QUICKLIST_2:
        nodes = _list_nodes(value, fill)
        out += _enc_len(len(nodes))
        for container, data in nodes:
            out += _LEN_CACHE[container]
            _put_string(out, data, compress)
    elif rtype == T_HASH_LISTPACK:
        entries = []
        for field, val in value.items():
            entries.append(_lp_str(field))
            entries.append(_lp_str(val))
        _put_string(out, _lp_build(entries, len(entries)), compress)
    elif rtype == T_HASH:
        out += _enc_len(len(value))
        for field, val in value.items():
            _put_string(out, field, compress)
            _put_string(out, val, compress)
    elif rtype == T_SET_INTSET:
        _put_string(out, _intset_blob(value.ints), compress)
    elif rtype == T_SET:
        out += _enc_len(len(value))
        for member in value:
            _put_string(out, member, compress)
    elif rtype == T_ZSET_LISTPACK:
        entries = []
        for member, score in value.items():
            entries.append(_lp_str(member))
            entries.append(_lp_item(_score_item(score)))
        _put_string(out, _lp_build(entries, len(entries)), compress)
    elif rtype == T_ZSET_2:
        out += _enc_len(len(value))
        for member, score in value.reversed_items():
            _put_string(out, member, compress)
            out += _pack_double(score)
    elif rtype == T_STREAM_LISTPACKS_2:
        _put_stream(out, value, compress)
    else:  # pragma: no cover - value_type returns only the above
        raise TypeError(f"cannot write RDB type {rtype}")


def dump_payload(value, *, compress: bool = True, list_fill: int = -2) -> bytes:
    """The DUMP payload of ``value``: type, body, RDB version 10 (u16 LE), CRC-64 (u64 LE).

    ``compress`` is ``rdbcompression``; ``list_fill`` is ``list-max-listpack-size``.
    """
    rtype = value_type(value)
    out = bytearray((rtype,))
    _put_body(out, value, rtype, compress, list_fill)
    out += b"\x0a\x00"
    out += crc64(out).to_bytes(8, "little")
    return bytes(out)


class RdbWriter:
    """Writes an RDB file to ``fileobj`` (anything with ``write``), in pieces of about 64 KiB.

    Usage::

        w = RdbWriter(f)
        w.header({"ctime": now_s, "used-mem": used})
        w.function(library_code)              # optional, before the databases
        w.select_db(0, size, expires_size)
        w.key(b"k", value, expire_ms=None)
        w.finish()                            # EOF opcode and checksum; flushes

    ``checksum=False`` writes a zero checksum, which loaders accept without
    checking (``rdbchecksum no``). ``bytes_written`` counts what went out.
    """

    def __init__(self, fileobj, *, compress: bool = True, checksum: bool = True, list_fill: int = -2) -> None:
        self._file = fileobj
        self._buf = bytearray()
        self._compress = compress
        self._checksum = checksum
        self._fill = list_fill
        self._crc = 0
        self.bytes_written = 0
        self.keys_written = 0

    def _flush(self) -> None:
        buf = self._buf
        if buf:
            if self._checksum:
                self._crc = crc64(buf, self._crc)
            self._file.write(buf)
            self.bytes_written += len(buf)
            self._buf = bytearray()

    def header(self, aux: dict | None = None) -> None:
        """``REDIS0010`` and the aux fields, in Redis's order, then any other given fields.

        Redis writes redis-ver, redis-bits, ctime, used-mem, (repl-stream-db,
        repl-id, repl-offset when saving for replication), aof-base. Missing
        ones get defaults except ``ctime`` and the repl fields, written only
        when given (this module does not read the clock).
        """
        aux = dict(aux or {})
        self._buf += b"REDIS%04d" % RDB_VERSION
        defaults = {"redis-ver": "7.0.15", "redis-bits": 64, "used-mem": 0, "aof-base": 0}
        order = ("redis-ver", "redis-bits", "ctime", "used-mem", "repl-stream-db", "repl-id", "repl-offset",
                 "aof-base")
        for name in order:
            if name in aux:
                self.aux(name, aux.pop(name))
            elif name in defaults:
                self.aux(name, defaults[name])
        for name, value in aux.items():
            self.aux(name, value)

    def aux(self, name, value) -> None:
        """One AUX field (name and value as str, bytes or int)."""
        buf = self._buf
        buf.append(OP_AUX)
        for item in (name, value):
            if isinstance(item, str):
                item = item.encode()
            elif isinstance(item, int):
                item = b"%d" % item
            _put_string(buf, item, self._compress)

    def function(self, code) -> None:
        """A function library (FUNCTION2 opcode with the library's source)."""
        if isinstance(code, str):
            code = code.encode()
        self._buf.append(OP_FUNCTION2)
        _put_string(self._buf, code, self._compress)

    def select_db(self, index: int, size: int, expires_size: int) -> None:
        """SELECTDB then RESIZEDB (Redis writes a database only when it has keys)."""
        buf = self._buf
        buf.append(OP_SELECTDB)
        buf += _enc_len(index)
        buf.append(OP_RESIZEDB)
        buf += _enc_len(size)
        buf += _enc_len(expires_size)

    def key(self, key, value, expire_ms: int | None = None, *, idle_s: int | None = None,
            freq: int | None = None) -> None:
        """One key: optional EXPIRETIME_MS (absolute unix ms), IDLE, FREQ, then type, key, value."""
        buf = self._buf
        if expire_ms is not None:
            buf.append(OP_EXPIRETIME_MS)
            buf += _pack_millis(expire_ms)
        if idle_s is not None:
            buf.append(OP_IDLE)
            buf += _enc_len(idle_s)
        if freq is not None:
            buf.append(OP_FREQ)
            buf.append(freq & 0xFF)
        rtype = value_type(value)
        buf.append(rtype)
        _put_string(buf, key, self._compress)
        if rtype == T_STRING:
            _put_string(buf, value, self._compress)
        else:
            _put_body(buf, value, rtype, self._compress, self._fill)
        self.keys_written += 1
        if len(buf) >= _FLUSH_AT:
            self._flush()

    def finish(self) -> None:
        """EOF opcode, then the CRC-64 of everything before (or 0), and flush."""
        self._buf.append(OP_EOF)
        self._flush()
        self._buf += (self._crc if self._checksum else 0).to_bytes(8, "little")
        self._file.write(self._buf)
        self.bytes_written += len(self._buf)
        self._buf = bytearray()


# =====================================================================
# Reading
# =====================================================================

_CHUNK = 1 << 16


class _Reader:
    """Bytes from a buffer, refilled from a file object when there is one.

    ``offset()`` is the absolute position. With ``file``, the CRC of consumed
    bytes is kept up to date each time the buffer is refilled.
    """

    __slots__ = ("buf", "pos", "base", "file", "crc", "summed", "track_crc")

    def __init__(self, data: bytes, file=None, track_crc: bool = False) -> None:
        self.buf = data
        self.pos = 0
        self.base = 0
        self.file = file
        self.crc = 0
        self.summed = 0
        self.track_crc = track_crc

    def offset(self) -> int:
        return self.base + self.pos

    def _fill(self, n: int) -> None:
        buf = self.buf
        pos = self.pos
        if self.file is None:
            raise _Corrupt("unexpected end of data", self.base + len(buf))
        if self.track_crc and pos > self.summed:
            self.crc = crc64(memoryview(buf)[self.summed:pos], self.crc)
        chunks = [buf[pos:]]
        have = len(chunks[0])
        while have < n:
            chunk = self.file.read(max(_CHUNK, min(n - have, 1 << 26)))
            if not chunk:
                self.buf = b"".join(chunks)
                self.base += pos
                self.pos = 0
                self.summed = 0
                raise _Corrupt("unexpected end of file", self.base + have)
            chunks.append(chunk)
            have += len(chunk)
        self.buf = b"".join(chunks)
        self.base += pos
        self.pos = 0
        self.summed = 0

    def checksum_here(self) -> int:
        """CRC-64 of every byte consumed so far (file mode with ``track_crc``)."""
        if self.pos > self.summed:
            self.crc = crc64(memoryview(self.buf)[self.summed:self.pos], self.crc)
            self.summed = self.pos
        return self.crc

    def read(self, n: int) -> bytes:
        pos = self.pos
        end = pos + n
        if end > len(self.buf):
            self._fill(n)
            pos = 0
            end = n
        self.pos = end
        return self.buf[pos:end]

    def byte(self) -> int:
        pos = self.pos
        if pos >= len(self.buf):
            self._fill(1)
            pos = 0
        self.pos = pos + 1
        return self.buf[pos]

    def length(self) -> int:
        """rdbLoadLen for a plain length (an encoded-string marker here is corrupt)."""
        b = self.byte()
        kind = b >> 6
        if kind == 0:
            return b
        if kind == 1:
            return ((b & 0x3F) << 8) | self.byte()
        if b == 0x80:
            return int.from_bytes(self.read(4), "big")
        if b == 0x81:
            return int.from_bytes(self.read(8), "big")
        if kind == 3:
            return b & 0x3F  # rdbLoadLen(rdb, NULL) takes an encoded-string marker as its 6-bit value
        raise _Corrupt(f"unknown length encoding 0x{b:02x}", self.offset() - 1)

    def string(self) -> bytes:
        """rdbGenericLoadStringObject: plain, integer-encoded or LZF-compressed."""
        b = self.byte()
        kind = b >> 6
        if kind == 0:
            n = b
        elif kind == 1:
            n = ((b & 0x3F) << 8) | self.byte()
        elif kind == 3:
            enc = b & 0x3F
            if enc == 0:
                v = self.byte()
                return b"%d" % (v - 256 if v > 127 else v)
            if enc == 1:
                return b"%d" % int.from_bytes(self.read(2), "little", signed=True)
            if enc == 2:
                return b"%d" % int.from_bytes(self.read(4), "little", signed=True)
            if enc == 3:
                start = self.offset() - 1
                clen = self.length()
                ulen = self.length()
                packed = self.read(clen)
                if not ulen:
                    # lzf_decompress answers 0 for "error" and Redis compares that with the length.
                    return b""
                try:
                    return lzf.decompress(packed, ulen)
                except lzf.LzfError as exc:
                    raise _Corrupt(f"invalid LZF compressed string ({exc})", start) from None
            raise _Corrupt(f"unknown string encoding {enc}", self.offset() - 1)
        elif b == 0x80:
            n = int.from_bytes(self.read(4), "big")
        elif b == 0x81:
            n = int.from_bytes(self.read(8), "big")
        else:
            raise _Corrupt(f"unknown length encoding 0x{b:02x}", self.offset() - 1)
        return self.read(n)

    def millis(self) -> int:
        return _unpack_millis(self.read(8))[0]

    def binary_double(self) -> float:
        return _unpack_double(self.read(8))[0]

    def text_double(self) -> float:
        """rdbLoadDoubleValue (RDB < 8 zsets): a length byte, 253/254/255 for nan/+inf/-inf."""
        n = self.byte()
        if n == 255:
            return float("-inf")
        if n == 254:
            return float("inf")
        if n == 253:
            return float("nan")
        start = self.offset()
        value = _strtod(self.read(n))
        if value is None:  # sscanf("%lg") converted nothing
            raise _Corrupt("invalid double", start)
        return value


_STRTOD = re.compile(
    rb"[ \t\n\v\f\r]*([+-]?)(?:(infinity|inf)|(nan)|0x((?:[0-9a-f]+\.?[0-9a-f]*|\.[0-9a-f]+)(?:p[+-]?[0-9]+)?)"
    rb"|((?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:e[+-]?[0-9]+)?))",
    re.IGNORECASE,
)


def _strtod(text: bytes) -> float | None:
    """C's strtod on ``text`` as a C string: the longest valid prefix, None if there is none."""
    nul = text.find(b"\0")
    if nul != -1:
        text = text[:nul]
    m = _STRTOD.match(text)
    if m is None:
        return None
    sign, inf, nan, hexa, dec = m.groups()
    negative = sign == b"-"
    if inf:
        return float("-inf") if negative else float("inf")
    if nan:
        return float("nan")
    if hexa is not None:
        try:
            value = float.fromhex("0x" + hexa.decode())
        except OverflowError:
            value = float("inf")
        return -value if negative else value
    value = float(dec)
    return -value if negative else value


def _listpack_score(item) -> float:
    """zzlGetScore: an integer entry, or strtod of the first 127 bytes of a string entry (0 if none)."""
    if type(item) is int:
        return float(item)
    value = _strtod(item[:127])
    return 0.0 if value is None else value


# ------------------------------------------------------------ blob parsers


def _lp_parse(blob: bytes, offset: int = -1) -> list:
    """Every element of a listpack (ints for integer entries, bytes for strings), fully validated."""
    n = len(blob)
    if n < 7:
        raise _Corrupt("listpack too short", offset)
    if int.from_bytes(blob[0:4], "little") != n:
        raise _Corrupt("listpack size header does not match its length", offset)
    if blob[-1] != 0xFF:
        raise _Corrupt("listpack does not end with 0xFF", offset)
    count = blob[4] | (blob[5] << 8)
    items: list = []
    append = items.append
    pos = 6
    end = n - 1
    while pos < end:
        b = blob[pos]
        if b < 0x80:
            append(b)
            size = 1
        elif b < 0xC0:
            size = 1 + (b & 0x3F)
            append(blob[pos + 1 : pos + size])
        elif b < 0xE0:
            if pos + 2 > end:
                break
            u = ((b & 0x1F) << 8) | blob[pos + 1]
            append(u - 0x2000 if u & 0x1000 else u)
            size = 2
        elif b < 0xF0:
            if pos + 2 > end:
                break
            size = 2 + (((b & 0x0F) << 8) | blob[pos + 1])
            append(blob[pos + 2 : pos + size])
        elif b == 0xF0:
            if pos + 5 > end:
                break
            size = 5 + int.from_bytes(blob[pos + 1 : pos + 5], "little")
            append(blob[pos + 5 : pos + size])
        elif b <= 0xF4:
            width = (2, 3, 4, 8)[b - 0xF1]
            size = 1 + width
            append(int.from_bytes(blob[pos + 1 : pos + size], "little", signed=True))
        else:
            raise _Corrupt(f"invalid listpack entry encoding 0x{b:02x}", offset)
        if size <= 127:
            if pos + size + 1 > end or blob[pos + size] != size:
                raise _Corrupt("listpack entry with a wrong back-length or past the end", offset)
            pos += size + 1
        else:
            back = _backlen(size)
            stop = pos + size + len(back)
            if stop > end or blob[pos + size : stop] != back:
                raise _Corrupt("listpack entry with a wrong back-length or past the end", offset)
            pos = stop
    if pos != end:
        raise _Corrupt("listpack entry runs past the end", offset)
    if count != 65535 and count != len(items):
        raise _Corrupt("listpack element count does not match its header", offset)
    return items


def _zl_parse(blob: bytes, offset: int = -1) -> list:
    """Every element of a ziplist (RDB < 10), fully validated."""
    n = len(blob)
    if n < 11:
        raise _Corrupt("ziplist too short", offset)
    if int.from_bytes(blob[0:4], "little") != n or blob[-1] != 0xFF:
        raise _Corrupt("ziplist header does not match its length", offset)
    tail = int.from_bytes(blob[4:8], "little")
    count = blob[8] | (blob[9] << 8)
    items: list = []
    append = items.append
    pos = 10
    end = n - 1
    prev_size = 0
    last = 10
    while pos < end:
        start = pos
        b = blob[pos]
        if b < 254:
            prevlen = b
            pos += 1
        elif b == 254:
            if pos + 5 > end:
                raise _Corrupt("ziplist entry runs past the end", offset)
            prevlen = int.from_bytes(blob[pos + 1 : pos + 5], "little")
            pos += 5
        else:
            raise _Corrupt("ziplist entry with an invalid prevlen", offset)
        if prevlen != prev_size:
            raise _Corrupt("ziplist entry prevlen does not match the previous entry", offset)
        if pos >= end:
            raise _Corrupt("ziplist entry runs past the end", offset)
        e = blob[pos]
        kind = e >> 6
        if kind == 0:
            size = e & 0x3F
            pos += 1
            item = None
        elif kind == 1:
            if pos + 2 > end:
                raise _Corrupt("ziplist entry runs past the end", offset)
            size = ((e & 0x3F) << 8) | blob[pos + 1]
            pos += 2
            item = None
        elif e == 0x80:
            if pos + 5 > end:
                raise _Corrupt("ziplist entry runs past the end", offset)
            size = int.from_bytes(blob[pos + 1 : pos + 5], "big")
            pos += 5
            item = None
        elif e == 0xC0 or e == 0xD0 or e == 0xE0 or e == 0xF0 or e == 0xFE:
            size = {0xC0: 2, 0xD0: 4, 0xE0: 8, 0xF0: 3, 0xFE: 1}[e]
            pos += 1
            item = int.from_bytes(blob[pos : pos + size], "little", signed=True)
        elif 0xF1 <= e <= 0xFD:
            size = 0
            pos += 1
            item = (e & 0x0F) - 1
        else:
            raise _Corrupt(f"invalid ziplist entry encoding 0x{e:02x}", offset)
        if pos + size > end:
            raise _Corrupt("ziplist entry runs past the end", offset)
        append(blob[pos : pos + size] if item is None else item)
        pos += size
        prev_size = pos - start
        last = start
    if tail != last:
        raise _Corrupt("ziplist tail offset is wrong", offset)
    if count != 65535 and count != len(items):
        raise _Corrupt("ziplist element count does not match its header", offset)
    return items


def _intset_parse(blob: bytes, offset: int = -1) -> list:
    n = len(blob)
    if n < 8:
        raise _Corrupt("intset too short", offset)
    enc = int.from_bytes(blob[0:4], "little")
    length = int.from_bytes(blob[4:8], "little")
    if enc not in (2, 4, 8):
        raise _Corrupt(f"intset with an invalid encoding {enc}", offset)
    if 8 + enc * length != n:
        raise _Corrupt("intset length does not match its size", offset)
    if not length:
        raise _Corrupt("empty intset", offset)
    ints = list(struct.unpack("<%d%s" % (length, "h" if enc == 2 else "i" if enc == 4 else "q"), blob[8:]))
    prev = ints[0]
    for v in ints[1:]:
        if v <= prev:
            raise _Corrupt("intset members not in ascending order or duplicated", offset)
        prev = v
    return ints


def _zipmap_parse(blob: bytes, offset: int = -1) -> list:
    n = len(blob)
    if n < 2:
        raise _Corrupt("zipmap too short", offset)
    declared = blob[0]
    pos = 1
    items: list = []

    def zlen(p: int) -> tuple[int, int]:
        if p >= n:
            raise _Corrupt("zipmap runs past the end", offset)
        b = blob[p]
        if b < 254:
            return b, p + 1
        if b == 254:
            if p + 5 > n:
                raise _Corrupt("zipmap runs past the end", offset)
            return int.from_bytes(blob[p + 1 : p + 5], "little"), p + 5
        raise _Corrupt("zipmap entry with an invalid length", offset)

    while True:
        if pos >= n:
            raise _Corrupt("zipmap without its end marker", offset)
        if blob[pos] == 255:
            pos += 1
            break
        klen, pos = zlen(pos)
        if pos + klen > n:
            raise _Corrupt("zipmap runs past the end", offset)
        items.append(blob[pos : pos + klen])
        pos += klen
        vlen, pos = zlen(pos)
        if pos >= n:
            raise _Corrupt("zipmap runs past the end", offset)
        free = blob[pos]
        pos += 1
        if pos + vlen + free > n:
            raise _Corrupt("zipmap runs past the end", offset)
        items.append(blob[pos : pos + vlen])
        pos += vlen + free
    if pos != n:
        raise _Corrupt("zipmap has bytes after its end marker", offset)
    if declared < 254 and declared != len(items) // 2:
        raise _Corrupt("zipmap element count does not match its header", offset)
    return items


def _as_bytes(item) -> bytes:
    return b"%d" % item if type(item) is int else item


# ------------------------------------------------------------ value builders


class _Limits:
    __slots__ = ("hash_entries", "hash_value", "set_intset", "zset_entries", "zset_value")

    def __init__(self, config) -> None:
        def get(name):
            try:
                return int(config[name])
            except (KeyError, TypeError, ValueError):
                return DEFAULT_LIMITS[name]

        self.hash_entries = get("hash-max-listpack-entries")
        self.hash_value = get("hash-max-listpack-value")
        self.set_intset = get("set-max-intset-entries")
        self.zset_entries = get("zset-max-listpack-entries")
        self.zset_value = get("zset-max-listpack-value")


_DEFAULT = _Limits(DEFAULT_LIMITS)


def _limits(config) -> _Limits:
    return _DEFAULT if config is None else _Limits(config)


def _build_list(items: list, off: int) -> ListValue:
    if not items:
        raise _EmptyKey()
    return ListValue(items)


def _build_set_members(members, count: int, lim: _Limits, off: int) -> SetValue:
    s = SetValue()
    max_intset = lim.set_intset
    if count > min(max_intset, 1 << 30):
        s.convert()
    add = s.add
    for m in members:
        if not add(m, max_intset):
            raise _Corrupt("duplicate set members", off)
    return s


def _build_zset(pairs: list, listpack: bool, off: int) -> ZSet:
    seen = set()
    for member, score in pairs:
        if score != score:
            raise _Corrupt("zset with a NaN score", off)
        if member in seen:
            raise _Corrupt("duplicate zset members", off)
        seen.add(member)
    return ZSet.from_pairs(pairs, listpack)


def _pairs_from_flat(items: list, off: int, what: str) -> list:
    if len(items) % 2:
        raise _Corrupt(f"{what} with an odd number of elements", off)
    return list(zip(items[0::2], items[1::2]))


def _zset_from_flat(items: list, lim: _Limits, off: int) -> ZSet:
    if not items:
        raise _EmptyKey()
    pairs = []
    flat = _pairs_from_flat(items, off, "zset listpack")
    for member, score in flat:
        pairs.append((_as_bytes(member), _listpack_score(score)))
    return _build_zset(pairs, len(pairs) <= lim.zset_entries, off)


def _hash_from_flat(items: list, lim: _Limits, off: int, hashtable: bool | None = None) -> HashValue:
    if not items:
        raise _EmptyKey()
    if len(items) % 2:
        raise _Corrupt("hash with an odd number of elements", off)
    h = HashValue()
    for i in range(0, len(items), 2):
        field = _as_bytes(items[i])
        if field in h:
            raise _Corrupt("duplicate hash fields", off)
        h[field] = _as_bytes(items[i + 1])
    h.hashtable = len(h) > lim.hash_entries if hashtable is None else hashtable
    return h


def _read_stream(r: _Reader, rtype: int, start: int) -> Stream:
    s = Stream()
    nodes = s.nodes
    firsts = s.firsts
    prev_id = -1
    live_total = 0
    for _ in range(r.length()):
        key_off = r.offset()
        nodekey = r.string()
        if len(nodekey) != 16:
            raise _Corrupt("stream node key is not the size of a stream ID", key_off)
        master = int.from_bytes(nodekey, "big")
        lp_off = r.offset()
        blob = r.string()
        node = _stream_node(_lp_parse(blob, lp_off), master, lp_off)
        node.nbytes = len(blob)  # lpBytes: decides when a later XADD starts a new node
        if master <= prev_id or (node.ids and node.ids[0] <= prev_id):
            raise _Corrupt("stream nodes out of order", key_off)
        if node.ids:
            prev_id = node.ids[-1]
        elif master > prev_id:
            prev_id = master
        nodes.append(node)
        firsts.append(master)
        live_total += node.live
    s.length = r.length()
    if s.length != live_total:
        raise _Corrupt("stream length does not match its entries", r.offset())
    ms = r.length()
    s.last_id = (ms << 64) | r.length()
    if s.last_id > ID_MAX or (nodes and s.last_id < max(prev_id, 0)):
        raise _Corrupt("stream last ID smaller than its entries", r.offset())
    if rtype == T_STREAM_LISTPACKS_2:
        ms = r.length()
        s.first_id = (ms << 64) | r.length()
        ms = r.length()
        s.max_deleted = (ms << 64) | r.length()
        s.entries_added = r.length()
        if s.first_id > ID_MAX or s.max_deleted > ID_MAX:
            raise _Corrupt("stream ID out of range", r.offset())
    else:
        s.max_deleted = 0
        s.entries_added = s.length
        first = s.first_valid_id()
        s.first_id = ID_MAX if first is None else first
    ngroups = r.length()
    for _ in range(ngroups):
        goff = r.offset()
        name = r.string()
        ms = r.length()
        last_id = (ms << 64) | r.length()
        if last_id > ID_MAX:
            raise _Corrupt("stream group ID out of range", goff)
        if rtype == T_STREAM_LISTPACKS_2:
            entries_read = r.length()
            if entries_read >> 63:
                entries_read -= 1 << 64
        else:
            entries_read = s.estimate_distance(last_id)
        group = s.create_group(name, last_id, entries_read)
        if group is None:
            raise _Corrupt("duplicate consumer group name", goff)
        pel = {}
        for _ in range(r.length()):
            sid = int.from_bytes(r.read(16), "big")
            nack = Nack(None, r.millis())
            nack.delivery_count = r.length()
            if sid in pel:
                raise _Corrupt("duplicate entry in a group PEL", r.offset())
            pel[sid] = nack
        group.pel.update(pel)
        for _ in range(r.length()):
            coff = r.offset()
            cname = r.string()
            consumer = group.create_consumer(cname, 0)
            if consumer is None:
                raise _Corrupt("duplicate consumer in a group", coff)
            consumer.seen_time = r.millis()
            own = {}
            for _ in range(r.length()):
                sid = int.from_bytes(r.read(16), "big")
                nack = pel.get(sid)
                if nack is None:
                    raise _Corrupt("consumer PEL entry not found in the group PEL", r.offset())
                if nack.consumer is not None:
                    raise _Corrupt("PEL entry owned by two consumers", r.offset())
                nack.consumer = consumer
                own[sid] = nack
            consumer.pel.update(own)
        for nack in pel.values():
            if nack.consumer is None:
                raise _Corrupt("group PEL entry without a consumer", goff)
    return s


def _stream_node(items: list, master: int, off: int) -> _Node:
    """A ``_Node`` from the elements of one stream listpack (see t_stream.c's layout)."""
    n = len(items)
    if n < 4:
        raise _Corrupt("stream listpack without a master entry", off)
    live, dead, nfields = items[0], items[1], items[2]
    if type(live) is not int or type(dead) is not int or type(nfields) is not int or nfields < 0 or \
            live < 0 or dead < 0 or 3 + nfields + 1 > n:
        raise _Corrupt("stream listpack with a bad master entry", off)
    mfields = tuple(_as_bytes(x) for x in items[3 : 3 + nfields])
    if items[3 + nfields] != 0:
        raise _Corrupt("stream master entry not terminated", off)
    node = _Node.__new__(_Node)
    node.master = master
    node.mfields = mfields
    ids: list = []
    values: list = []
    mms, mseq = master >> 64, master & MASK64
    i = 4 + nfields
    seen_live = seen_dead = 0
    prev = -1
    while i < n:
        if i + 3 > n:
            raise _Corrupt("stream entry cut short", off)
        flags, ms_diff, seq_diff = items[i], items[i + 1], items[i + 2]
        if type(flags) is not int or type(ms_diff) is not int or type(seq_diff) is not int:
            raise _Corrupt("stream entry with a bad header", off)
        i += 3
        if flags & _STREAM_SAMEFIELDS:
            if i + nfields + 1 > n:
                raise _Corrupt("stream entry cut short", off)
            vals = items[i : i + nfields]
            fv = []
            for f, v in zip(mfields, vals):
                fv.append(f)
                fv.append(_as_bytes(v))
            i += nfields
            expect = nfields + 3
        else:
            count = items[i]
            if type(count) is not int or count < 0 or i + 1 + 2 * count + 1 > n:
                raise _Corrupt("stream entry with a bad field count", off)
            fv = [_as_bytes(x) for x in items[i + 1 : i + 1 + 2 * count]]
            i += 1 + 2 * count
            expect = 2 * count + 4
        if items[i] != expect:
            raise _Corrupt("stream entry with a wrong lp-count", off)
        i += 1
        sid = (((mms + ms_diff) & MASK64) << 64) | ((mseq + seq_diff) & MASK64)
        if sid <= prev or sid < master:
            raise _Corrupt("stream entries out of order", off)
        prev = sid
        ids.append(sid)
        if flags & _STREAM_DELETED:
            values.append(None)
            seen_dead += 1
        else:
            values.append(tuple(fv))
            seen_live += 1
    if seen_live != live or seen_dead != dead:
        raise _Corrupt("stream listpack counters do not match its entries", off)
    node.ids = ids
    node.values = values
    node.live = live
    node.dead = dead
    node.nbytes = 0
    return node


def _read_object(r: _Reader, rtype: int, lim: _Limits):
    """rdbLoadObject: the value of type ``rtype`` at the reader's position."""
    start = r.offset()
    if rtype == T_STRING:
        return r.string()
    if rtype == T_LIST_QUICKLIST_2 or rtype == T_LIST_QUICKLIST:
        items: list = []
        for _ in range(r.length()):
            container = _QUICKLIST_PACKED
            if rtype == T_LIST_QUICKLIST_2:
                container = r.length()
                if container != _QUICKLIST_PACKED and container != _QUICKLIST_PLAIN:
                    raise _Corrupt(f"quicklist node with an unknown container {container}", r.offset())
            off = r.offset()
            data = r.string()
            if not data:
                raise _Corrupt("empty quicklist node", off)
            if container == _QUICKLIST_PLAIN:
                items.append(data)
                continue
            elements = _lp_parse(data, off) if rtype == T_LIST_QUICKLIST_2 else _zl_parse(data, off)
            items += [b"%d" % x if type(x) is int else x for x in elements]
        return _build_list(items, start)
    if rtype == T_LIST:
        items = [r.string() for _ in range(r.length())]
        return _build_list(items, start)
    if rtype == T_LIST_ZIPLIST:
        off = r.offset()
        elements = _zl_parse(r.string(), off)
        return _build_list([_as_bytes(x) for x in elements], start)
    if rtype == T_SET:
        count = r.length()
        if not count:
            raise _EmptyKey()
        members = (r.string() for _ in range(count))
        return _build_set_members(members, count, lim, start)
    if rtype == T_SET_INTSET:
        off = r.offset()
        ints = _intset_parse(r.string(), off)
        s = SetValue()
        s.ints = ints
        if len(ints) > lim.set_intset:
            s.convert()
        return s
    if rtype == T_ZSET_2 or rtype == T_ZSET:
        count = r.length()
        if not count:
            raise _EmptyKey()
        pairs = []
        maxlen = total = 0
        read_score = r.binary_double if rtype == T_ZSET_2 else r.text_double
        for _ in range(count):
            member = r.string()
            pairs.append((member, read_score()))
            n = len(member)
            total += n
            if n > maxlen:
                maxlen = n
        listpack = count <= lim.zset_entries and maxlen <= lim.zset_value and total <= _LISTPACK_SAFETY
        return _build_zset(pairs, listpack, start)
    if rtype == T_ZSET_LISTPACK or rtype == T_ZSET_ZIPLIST:
        off = r.offset()
        blob = r.string()
        elements = _lp_parse(blob, off) if rtype == T_ZSET_LISTPACK else _zl_parse(blob, off)
        return _zset_from_flat(elements, lim, start)
    if rtype == T_HASH:
        count = r.length()
        if not count:
            raise _EmptyKey()
        h = HashValue()
        hashtable = count > lim.hash_entries
        max_value = lim.hash_value
        size = 0
        for _ in range(count):
            field = r.string()
            value = r.string()
            if field in h:
                raise _Corrupt("duplicate hash fields", start)
            h[field] = value
            if not hashtable:
                size += len(field) + len(value)
                if len(field) > max_value or len(value) > max_value or size > _LISTPACK_SAFETY:
                    hashtable = True
        h.hashtable = hashtable
        return h
    if rtype == T_HASH_LISTPACK or rtype == T_HASH_ZIPLIST:
        off = r.offset()
        blob = r.string()
        elements = _lp_parse(blob, off) if rtype == T_HASH_LISTPACK else _zl_parse(blob, off)
        return _hash_from_flat(elements, lim, start)
    if rtype == T_HASH_ZIPMAP:
        off = r.offset()
        elements = _zipmap_parse(r.string(), off)
        longest = max((len(x) for x in elements), default=0)
        h = _hash_from_flat(elements, lim, start)
        h.hashtable = len(h) > lim.hash_entries or longest > lim.hash_value
        return h
    if rtype == T_STREAM_LISTPACKS_2 or rtype == T_STREAM_LISTPACKS:
        return _read_stream(r, rtype, start)
    if rtype == T_MODULE or rtype == T_MODULE_2:
        raise _Corrupt("module values cannot be loaded (no modules in Shoal)", start)
    raise _Corrupt(f"unknown RDB object type {rtype}", start - 1)


def _is_object_type(t: int) -> bool:
    return 0 <= t <= 7 or 9 <= t <= 19


# ------------------------------------------------------------ DUMP payloads


def _decode_payload(payload: bytes, limits=None, verify_checksum: bool = True):
    """restore_payload without the catch-all: raises ErrorReply, _Corrupt or _EmptyKey (tests use it)."""
    n = len(payload)
    if n < 10:
        raise BAD_PAYLOAD
    version = payload[n - 10] | (payload[n - 9] << 8)
    if version > RDB_VERSION:
        raise BAD_PAYLOAD
    if verify_checksum and crc64(payload[: n - 8]) != int.from_bytes(payload[n - 8 :], "little"):
        raise BAD_PAYLOAD
    if type(payload) is not bytes:
        payload = bytes(payload)
    if payload[0] == T_STRING and payload[1] < 0x80:
        # A plain string (6- or 14-bit length), the bulk of what a reshard moves: sliced
        # straight out, without a reader and the limits, when it ends before the footer.
        b = payload[1]
        start, size = (2, b) if b < 0x40 else (3, ((b & 0x3F) << 8) | payload[2])
        if start + size <= n - 10:
            return payload[start:start + size]
    # Like Redis, the body is read from the whole payload: the footer is not a hard stop.
    r = _Reader(payload)
    rtype = r.byte()
    if not _is_object_type(rtype):
        raise _Corrupt(f"unknown RDB object type {rtype}", 0)
    return _read_object(r, rtype, _limits(limits))


def restore_payload(payload, limits=None, *, verify_checksum: bool = True):
    """The value a DUMP payload holds, encoded as Redis 7.0 would after loading it.

    ``limits``: the node's config (``hash-max-listpack-entries`` ...), or None
    for Redis's defaults. Raises ``ErrorReply`` with Redis's texts only:
    ``ERR DUMP payload version or checksum are wrong`` for a bad footer,
    ``ERR Bad data format`` for a body that does not decode.
    """
    try:
        return _decode_payload(payload, limits, verify_checksum)
    except ErrorReply:
        raise
    except (_Corrupt, _EmptyKey):
        raise BAD_DATA_FORMAT from None
    except (ValueError, IndexError, KeyError, TypeError, OverflowError, MemoryError, RecursionError,
            struct.error):  # pragma: no cover - a decoder bug must not escape as a crash
        raise BAD_DATA_FORMAT from None


# ------------------------------------------------------------ whole files


class RdbLoader:
    """An RDB file being read. Iterate it for ``(db_index, key, value, expire_ms_or_None)``.

    Attributes filled while iterating: ``version``, ``aux`` (name -> value,
    bytes), ``functions`` (library sources, bytes), ``resize_hints`` (db ->
    (size, expires)), ``empty_keys_skipped``, and at the end ``checksum``
    (as stored; 0 = not checked) and ``end_offset`` (the offset just after
    the checksum: an AOF with an RDB preamble continues there).

    Errors: ``RdbError(message, offset)``.
    """

    def __init__(self, source, limits=None, *, verify_checksum: bool = True) -> None:
        if isinstance(source, (bytes, bytearray, memoryview)):
            self._reader = _Reader(bytes(source), track_crc=False)
            self._whole = True
        else:
            self._reader = _Reader(b"", file=source, track_crc=True)
            self._whole = False
        self._limits = _limits(limits)
        self._verify = verify_checksum
        self.version = 0
        self.aux: dict[bytes, bytes] = {}
        self.functions: list[bytes] = []
        self.resize_hints: dict[int, tuple[int, int]] = {}
        self.empty_keys_skipped = 0
        self.checksum: int | None = None
        self.end_offset: int | None = None
        self._started = False

    def __iter__(self):
        if self._started:
            raise RuntimeError("an RdbLoader can be iterated once")
        self._started = True
        r = self._reader
        try:
            yield from self._records(r)
        except _Corrupt as exc:
            offset = exc.offset if exc.offset >= 0 else r.offset()
            raise RdbError(exc.message, offset) from None
        except RdbError:
            raise
        except (ValueError, IndexError, KeyError, TypeError, OverflowError, struct.error) as exc:
            # pragma: no cover - a decoder bug still reports where it happened
            raise RdbError(f"invalid data ({type(exc).__name__}: {exc})", r.offset()) from None

    def _records(self, r: _Reader):
        try:
            magic = r.read(9)
        except _Corrupt:
            raise _Corrupt("file too short for an RDB header", 0) from None
        if magic[:5] != b"REDIS":
            raise _Corrupt("wrong signature: not an RDB file (expected 'REDIS')", 0)
        digits = magic[5:9]
        if not digits.isdigit():
            raise _Corrupt(f"bad RDB version field {digits!r}", 5)
        version = int(digits)
        if version < 1 or version > RDB_VERSION:
            raise _Corrupt(f"can't handle RDB format version {version} (this loader reads 1..{RDB_VERSION})", 5)
        self.version = version
        lim = self._limits
        db = 0
        expire = None
        read_object = _read_object
        while True:
            op_off = r.offset()
            t = r.byte()
            if t == OP_EXPIRETIME_MS:
                expire = r.millis()
                continue
            if t == OP_EXPIRETIME:
                expire = int.from_bytes(r.read(4), "little", signed=True) * 1000
                continue
            if t == OP_FREQ:
                r.byte()
                continue
            if t == OP_IDLE:
                r.length()
                continue
            if t == OP_EOF:
                break
            if t == OP_SELECTDB:
                db = r.length()
                continue
            if t == OP_RESIZEDB:
                self.resize_hints[db] = (r.length(), r.length())
                continue
            if t == OP_AUX:
                name = r.string()
                self.aux[name] = r.string()
                continue
            if t == OP_FUNCTION2:
                self.functions.append(r.string())
                continue
            if t == OP_FUNCTION:
                name = r.string()
                engine = r.string()
                if r.length():
                    r.string()
                body = r.string()
                self.functions.append(b"#!%s name=%s\n%s" % (engine, name, body))
                continue
            if t == OP_MODULE_AUX:
                raise _Corrupt("the file contains module AUX data (no modules in Shoal)", op_off)
            if not _is_object_type(t):
                raise _Corrupt(f"unknown opcode or object type {t} (expected a key type or an opcode)", op_off)
            key = r.string()
            try:
                value = read_object(r, t, lim)
            except _EmptyKey:
                self.empty_keys_skipped += 1
                expire = None
                continue
            yield db, key, value, expire
            expire = None
        # The checksum covers everything up to and including the EOF opcode.
        if self._whole:
            computed = crc64(memoryview(r.buf)[: r.pos]) if self._verify and version >= 5 else 0
        else:
            computed = r.checksum_here() if self._verify and version >= 5 else 0
        if version >= 5:
            crc_off = r.offset()
            try:
                stored = int.from_bytes(r.read(8), "little")
            except _Corrupt:
                raise _Corrupt("file ends before its checksum", crc_off) from None
            self.checksum = stored
            if self._verify and stored != 0 and stored != computed:
                raise _Corrupt(f"RDB CRC error: file says {stored:016x}, contents give {computed:016x}", crc_off)
        self.end_offset = r.offset()


def load_rdb(source, limits=None, *, verify_checksum: bool = True) -> RdbLoader:
    """Read an RDB file from bytes or a binary file object; see ``RdbLoader``."""
    return RdbLoader(source, limits, verify_checksum=verify_checksum)
