"""HyperLogLog in Redis 7.0's own string representation, byte for byte.

An HLL is an ordinary string value. Its layout is Redis's:

* a 16-byte header: ``HYLL``, the encoding (0 dense, 1 sparse), 3 unused
  bytes, then the cached cardinality as a little-endian uint64 whose top bit
  (byte 15's MSB) flags the cache as stale;
* dense: 16384 registers of 6 bits, packed from the least significant bit of
  each byte up (register 0 is the low 6 bits of byte 0);
* sparse: run-length opcodes -- ZERO ``00xxxxxx`` (1..64 zero registers),
  XZERO ``01xxxxxx yyyyyyyy`` (1..16384 zero registers), VAL ``1vvvvvxx``
  (1..4 registers of value 1..32).

The sparse form is not canonical: what Redis stores depends on the order in
which registers were set (runs are split, then adjacent VALs merged within a
5-opcode window). Replaying Redis's edits exactly is the only way to end up
with the same bytes, so ``SparseEditor`` does just that -- on the opcode
bytes, with a table of the first register of each byte so that ``bisect``
replaces Redis's linear scan for the opcode to edit. Parsed editors are kept
in a small cache keyed by content, so a PFADD or PFCOUNT on the same sparse
HLL as the previous command finds its table ready. ``sparse_set_bytes`` is
the same algorithm written over the raw bytes the way the C code is, used
for the odd corrupted value whose last byte is half an XZERO opcode (and by
the tests, as the reference for the editor).

Whole-register work (histograms, merging, dense packing) converts between
the packed form and a "raw" form of one byte per register with
``bytes.translate`` and big-integer bit operations, so no Python loop runs
over the 16384 registers; dense histograms are also kept up to date across
PFADDs (``_DENSE_HISTOS``) so PFCOUNT after PFADD does not recount.
"""

from __future__ import annotations

import math
import re
import struct
from bisect import bisect_right
from collections import Counter, OrderedDict
from itertools import accumulate

__all__ = [
    "DENSE", "DENSE_SIZE", "HDR_SIZE", "REGISTERS", "SPARSE", "PROMOTE", "SparseEditor",
    "add_elements", "cached_cardinality", "count_raw", "count_value", "dense_get", "dense_set",
    "dense_to_raw", "estimate", "invalidate_cache", "is_valid", "merge_into", "merge_raw", "murmurhash64a",
    "new_sparse", "pattern", "raw_to_dense", "sparse_decode", "sparse_histogram", "sparse_set_bytes",
    "sparse_to_dense", "sparse_to_raw", "store_cardinality", "to_dense_for_merge",
]

P = 14
Q = 64 - P
REGISTERS = 1 << P
_P_MASK = REGISTERS - 1
BITS = 6
REGISTER_MAX = (1 << BITS) - 1
HDR_SIZE = 16
DENSE_BYTES = (REGISTERS * BITS + 7) // 8
DENSE_SIZE = HDR_SIZE + DENSE_BYTES
DENSE = 0
SPARSE = 1
MAX_ENCODING = 1
SEED = 0xADC83B19

SPARSE_VAL_MAX_VALUE = 32
SPARSE_VAL_MAX_LEN = 4
SPARSE_ZERO_MAX_LEN = 64
SPARSE_XZERO_MAX_LEN = 16384

ALPHA_INF = 0.721347520444481703680  # 0.5/ln(2)

#: Returned by the sparse setters when Redis would convert to dense.
PROMOTE = 2

_M = 0xC6A4A7935BD1E995
_MASK64 = (1 << 64) - 1

# ------------------------------------------------------------------- hashing

_BLOCKS = [struct.Struct(f"<{n}Q") for n in range(8)]


def murmurhash64a(data: bytes, seed: int = SEED) -> int:
    """MurmurHash64A as Redis computes it (little-endian word loads)."""
    n = len(data)
    m = _M
    mask = _MASK64
    h = (seed ^ (n * m)) & mask
    nblocks = n >> 3
    if nblocks:
        unpack = _BLOCKS[nblocks].unpack_from if nblocks < 8 else struct.Struct(f"<{nblocks}Q").unpack_from
        for k in unpack(data):
            k = (k * m) & mask
            k ^= k >> 47
            h ^= (k * m) & mask
            h = (h * m) & mask
    tail = n & 7
    if tail:
        h ^= int.from_bytes(data[n - tail:], "little")
        h = (h * m) & mask
    h ^= h >> 47
    h = (h * m) & mask
    return h ^ (h >> 47)


def pattern(element: bytes) -> tuple[int, int]:
    """(register index, length of the 000..1 run) for ``element`` (hllPatLen)."""
    h = murmurhash64a(element)
    rest = (h >> P) | (1 << Q)
    return h & _P_MASK, (rest & -rest).bit_length()


# -------------------------------------------------------------------- header


def new_sparse() -> bytearray:
    """A fresh empty HLL as PFADD/PFMERGE create it: sparse, one XZERO:16384."""
    value = bytearray(b"HYLL\x01" + bytes(11))
    aux = REGISTERS
    while aux:
        run = min(aux, SPARSE_XZERO_MAX_LEN)
        value += bytes((0x40 | ((run - 1) >> 8), (run - 1) & 0xFF))
        aux -= run
    return value


def is_valid(value) -> bool:
    """Redis's isHLLObjectOrReply for a string value: header, encoding, dense length."""
    n = len(value)
    if n < HDR_SIZE or value[:4] != b"HYLL":
        return False
    encoding = value[4]
    if encoding > MAX_ENCODING:
        return False
    return encoding != DENSE or n == DENSE_SIZE


def invalidate_cache(value: bytearray) -> None:
    value[15] |= 0x80


def cached_cardinality(value) -> int | None:
    """The cached cardinality, or None when the stale flag is set."""
    if value[15] & 0x80:
        return None
    return int.from_bytes(value[8:16], "little")


def store_cardinality(value: bytearray, card: int) -> None:
    value[8:16] = card.to_bytes(8, "little")


# --------------------------------------------------------------------- dense


def dense_get(value, index: int) -> int:
    bit = index * BITS
    pos = HDR_SIZE + (bit >> 3)
    fb = bit & 7
    if fb <= 2:
        return (value[pos] >> fb) & REGISTER_MAX
    return ((value[pos] >> fb) | (value[pos + 1] << (8 - fb))) & REGISTER_MAX


def dense_set(value: bytearray, index: int, count: int) -> bool:
    """hllDenseSet: raise register ``index`` to ``count``; True if it changed."""
    bit = index * BITS
    pos = HDR_SIZE + (bit >> 3)
    fb = bit & 7
    b0 = value[pos]
    if fb <= 2:
        if count <= (b0 >> fb) & REGISTER_MAX:
            return False
        value[pos] = (b0 & ~(REGISTER_MAX << fb) & 0xFF) | ((count << fb) & 0xFF)
        return True
    b1 = value[pos + 1]
    fb8 = 8 - fb
    if count <= ((b0 >> fb) | (b1 << fb8)) & REGISTER_MAX:
        return False
    value[pos] = (b0 & ~(REGISTER_MAX << fb) & 0xFF) | ((count << fb) & 0xFF)
    value[pos + 1] = (b1 & ~(REGISTER_MAX >> fb8) & 0xFF) | (count >> fb8)
    return True


def _table(fn) -> bytes:
    return bytes(fn(b) & 0xFF for b in range(256))


_LOW6 = _table(lambda b: b & 63)
_SHR2 = _table(lambda b: b >> 2)
_SHR4 = _table(lambda b: b >> 4)
_SHR6 = _table(lambda b: b >> 6)
_LOW4_SHL2 = _table(lambda b: (b & 15) << 2)
_LOW2_SHL4 = _table(lambda b: (b & 3) << 4)
_SHL2 = _table(lambda b: b << 2)
_SHL4 = _table(lambda b: b << 4)
_SHL6 = _table(lambda b: b << 6)


def _or_bytes(a: bytes, b: bytes) -> bytes:
    """Bytewise OR of two equal-length byte strings (through two big ints)."""
    return (int.from_bytes(a, "little") | int.from_bytes(b, "little")).to_bytes(len(a), "little")


def dense_to_raw(value) -> bytes:
    """The 16384 registers of a dense HLL value, one byte each, in order."""
    regs = bytes(value[HDR_SIZE:DENSE_SIZE])
    b0, b1, b2 = regs[0::3], regs[1::3], regs[2::3]
    raw = bytearray(REGISTERS)
    raw[0::4] = b0.translate(_LOW6)
    raw[1::4] = _or_bytes(b0.translate(_SHR6), b1.translate(_LOW4_SHL2))
    raw[2::4] = _or_bytes(b1.translate(_SHR4), b2.translate(_LOW2_SHL4))
    raw[3::4] = b2.translate(_SHR2)
    return bytes(raw)


def raw_to_dense(raw: bytes) -> bytes:
    """Pack 16384 one-byte registers (each < 64) into the 12288-byte dense layout."""
    raw = bytes(raw)
    r0, r1, r2, r3 = raw[0::4], raw[1::4], raw[2::4], raw[3::4]
    regs = bytearray(DENSE_BYTES)
    regs[0::3] = _or_bytes(r0, r1.translate(_SHL6))
    regs[1::3] = _or_bytes(r1.translate(_SHR2), r2.translate(_SHL4))
    regs[2::3] = _or_bytes(r2.translate(_SHR4), r3.translate(_SHL2))
    return bytes(regs)


_LANE_HIGH = int.from_bytes(b"\x80" * REGISTERS, "little")
_LANES_ALL = (1 << (8 * REGISTERS)) - 1


def merge_raw(a: bytes, b: bytes) -> bytes:
    """Registerwise max of two raw register arrays (values < 128), without a Python loop.

    Per 8-bit lane, ``(b | 0x80) - a`` keeps its top bit exactly when b >= a,
    and never borrows from the next lane.
    """
    x = int.from_bytes(a, "little")
    y = int.from_bytes(b, "little")
    ge = ((((y | _LANE_HIGH) - x) & _LANE_HIGH) >> 7) * 0xFF
    return ((y & ge) | (x & (_LANES_ALL ^ ge))).to_bytes(REGISTERS, "little")


# -------------------------------------------------------------------- sparse
#
# Opcode helpers take and give ints: a ZERO or VAL is its byte (0x00-0x3f,
# 0x80-0xff), an XZERO its two bytes read big-endian (0x4000-0x7fff).


def _span(op: int) -> int:
    if op < 0x40:
        return op + 1
    if op < 0x100:
        return (op & 3) + 1
    return (op & 0x3FFF) + 1


def _val(value: int, run: int) -> int:
    return 0x80 | ((value - 1) << 2) | (run - 1)


def _zeros(run: int) -> int:
    return 0x4000 | (run - 1) if run > SPARSE_ZERO_MAX_LEN else run - 1


def _zeros_bytes(run: int) -> bytes:
    op = _zeros(run)
    return bytes((op >> 8, op & 0xFF)) if op >= 0x100 else bytes((op,))


# The span of each one-byte opcode (XZERO first bytes never reach this table).
_SPANS = bytes(_span(b) if not 0x40 <= b < 0x80 else 0 for b in range(256))
# The registers a one-byte opcode stands for, one byte each.
_RUNS = [bytes(b + 1) if b < 0x40 else bytes((((b >> 2) & 0x1F) + 1,)) * ((b & 3) + 1) if b >= 0x80 else b""
         for b in range(256)]
_XZERO_FIRST = re.compile(rb"[\x40-\x7f]").search


def _xzeros(data: bytes) -> list[tuple[int, int]]:
    """(position, span) of each XZERO opcode; a missing second byte reads as 0."""
    found = []
    n = len(data)
    pos = 0
    while True:
        match = _XZERO_FIRST(data, pos)
        if match is None:
            return found
        p = match.start()
        found.append((p, (((data[p] & 0x3F) << 8) | (data[p + 1] if p + 1 < n else 0)) + 1))
        pos = p + 2


def _parse(data: bytes) -> tuple[list[int], int]:
    """The first register of each byte of the opcodes (both bytes of an XZERO get its
    opcode's), and the number of registers covered. C-level work per run of
    one-byte opcodes; only XZEROs are handled one by one."""
    starts: list[int] = []
    first = 0
    pos = 0
    for p, span in _xzeros(data):
        if p > pos:
            spans = data[pos:p].translate(_SPANS)
            starts += accumulate(spans[:-1], initial=first)
            first += sum(spans)
        starts.append(first)
        starts.append(first)
        first += span
        pos = p + 2
    if pos < len(data):
        spans = data[pos:].translate(_SPANS)
        starts += accumulate(spans[:-1], initial=first)
        first += sum(spans)
    return starts, first


class SparseEditor:
    """A sparse HLL being edited: Redis's hllSparseSet, with a faster way to find the opcode.

    ``ops`` is the opcode bytes themselves and ``starts[i]`` the first
    register of the opcode byte ``i`` belongs to (the two bytes of an XZERO
    share it). Runs are contiguous, so ``bisect`` finds the opcode covering a
    register -- what Redis's linear scan finds -- and the edits are the same
    splices Redis does with memmove. ``size`` is the value's length,
    ``total`` the registers covered (16384 unless corrupt). The register
    histogram is computed on demand, then kept up to date by ``set``.
    """

    __slots__ = ("header", "ops", "starts", "size", "sparse_max", "total", "truncated", "_histo")

    def __init__(self, value, sparse_max: int) -> None:
        self.header = bytearray(value[:HDR_SIZE])
        data = bytes(value[HDR_SIZE:])
        self.ops = bytearray(data)
        self.starts, self.total = _parse(data)
        #: The value ends in half an XZERO: edit it with ``sparse_set_bytes``.
        self.truncated = len(self.starts) > len(data)
        self.size = len(value)
        self.sparse_max = sparse_max
        self._histo: list[int] | None = None

    def registers_bytes(self) -> bytes:
        return bytes(self.ops)

    def value(self) -> bytearray:
        return self.header + self.ops

    def histogram(self) -> list[int]:
        if self._histo is None:
            data = bytes(self.ops)
            counts = Counter(data)
            histo = [0] * 64
            for p, span in _xzeros(data):
                counts[data[p]] -= 1
                if p + 1 < len(data):
                    counts[data[p + 1]] -= 1
                histo[0] += span
            for b, times in counts.items():
                if b < 0x40:
                    histo[0] += (b + 1) * times
                elif b >= 0x80:
                    histo[((b >> 2) & 0x1F) + 1] += ((b & 3) + 1) * times
            self._histo = histo
        return self._histo

    def raw(self) -> bytes | None:
        """The registers one byte each; None unless the runs cover exactly 16384 (hllMerge)."""
        if self.total != REGISTERS:
            return None
        data = bytes(self.ops)
        parts = []
        pos = 0
        for p, span in _xzeros(data):
            parts += map(_RUNS.__getitem__, data[pos:p])
            parts.append(bytes(span))
            pos = p + 2
        parts += map(_RUNS.__getitem__, data[pos:])
        return b"".join(parts)

    def set(self, index: int, count: int) -> int:
        """Raise register ``index`` to ``count``: 1 changed, 0 not, -1 corrupt, PROMOTE."""
        if count > SPARSE_VAL_MAX_VALUE:
            return PROMOTE
        ops = self.ops
        starts = self.starts
        k = bisect_right(starts, index) - 1
        if k < 0:
            return -1
        if k and starts[k - 1] == starts[k]:
            k -= 1  # the second byte of an XZERO
        b = ops[k]
        first = starts[k]
        oplen = 1
        if b < 0x40:
            span = b + 1
        elif b >= 0x80:
            span = (b & 3) + 1
        else:
            span = (((b & 0x3F) << 8) | ops[k + 1]) + 1
            oplen = 2
        if index > first + span - 1:
            return -1
        old = 0
        if b >= 0x80:
            old = ((b >> 2) & 0x1F) + 1
            if old >= count:
                return 0
            if span == 1:
                ops[k] = _val(count, 1)
                return self._merge(k, old, count)
        elif b == 0:  # ZERO of one register
            ops[k] = _val(count, 1)
            return self._merge(k, old, count)
        # General case: split the run into up to three opcodes.
        last = first + span - 1
        seq = bytearray()
        seq_starts: list[int] = []
        if old == 0:
            if index != first:
                zeros = _zeros_bytes(index - first)
                seq += zeros
                seq_starts += [first] * len(zeros)
            seq.append(_val(count, 1))
            seq_starts.append(index)
            if index != last:
                zeros = _zeros_bytes(last - index)
                seq += zeros
                seq_starts += [index + 1] * len(zeros)
        else:
            if index != first:
                seq.append(_val(old, index - first))
                seq_starts.append(first)
            seq.append(_val(count, 1))
            seq_starts.append(index)
            if index != last:
                seq.append(_val(old, last - index))
                seq_starts.append(index + 1)
        delta = len(seq) - oplen
        if delta > 0 and self.size + delta > self.sparse_max:
            return PROMOTE
        ops[k:k + oplen] = seq
        starts[k:k + oplen] = seq_starts
        self.size += delta
        return self._merge(k, old, count)

    def _merge(self, k: int, old: int, count: int) -> int:
        """Step 4 of hllSparseSet: merge adjacent equal VALs, scanning 5 opcodes from the previous one."""
        if self._histo is not None:
            self._histo[old] -= 1
            self._histo[count] += 1
        ops = self.ops
        starts = self.starts
        if k == 0:
            q = 0
        elif k >= 2 and starts[k - 2] == starts[k - 1]:
            q = k - 2  # the previous opcode is an XZERO
        else:
            q = k - 1
        n = len(ops)
        scan = 5
        while q < n and scan > 0:
            scan -= 1
            b = ops[q]
            if b < 0x80:
                q += 2 if b >= 0x40 else 1
                continue
            if q + 1 < n:
                b2 = ops[q + 1]
                if b2 >= 0x80 and (b & 0x7C) == (b2 & 0x7C):
                    run = (b & 3) + (b2 & 3) + 2
                    if run <= SPARSE_VAL_MAX_LEN:
                        ops[q + 1] = (b & 0xFC) | (run - 1)
                        del ops[q]
                        del starts[q + 1]
                        self.size -= 1
                        n -= 1
                        continue
            q += 1
        self.header[15] |= 0x80
        return 1


# Recently used editors by register bytes: a PFADD/PFCOUNT on the same sparse
# HLL finds its opcodes parsed already. Keyed by content, so never stale.
_EDITORS: OrderedDict[bytes, SparseEditor] = OrderedDict()
_EDITORS_MAX = 32


def _take_editor(value, sparse_max: int) -> SparseEditor:
    """An editor for ``value`` to modify: from the cache (removed from it) or freshly parsed."""
    editor = _EDITORS.pop(bytes(value[HDR_SIZE:]), None)
    if editor is None:
        return SparseEditor(value, sparse_max)
    editor.header = bytearray(value[:HDR_SIZE])
    editor.sparse_max = sparse_max
    return editor


def _keep_editor(editor: SparseEditor, registers: bytes) -> None:
    _EDITORS[registers] = editor
    if len(_EDITORS) > _EDITORS_MAX:
        _EDITORS.popitem(last=False)


def _read_editor(value) -> SparseEditor:
    """An editor for reading ``value`` (left in the cache)."""
    key = bytes(value[HDR_SIZE:])
    editor = _EDITORS.get(key)
    if editor is None:
        editor = SparseEditor(value, 0)
        if not editor.truncated:
            _keep_editor(editor, key)
    else:
        _EDITORS.move_to_end(key)
    return editor


def sparse_decode(value) -> bytes:
    """PFDEBUG DECODE's text for a sparse value."""
    parts = []
    data = bytes(value[HDR_SIZE:])
    n = len(data)
    p = 0
    while p < n:
        b = data[p]
        if b < 0x40:
            parts.append(b"z:%d" % (b + 1))
            p += 1
        elif b >= 0x80:
            parts.append(b"v:%d,%d" % (((b >> 2) & 0x1F) + 1, (b & 3) + 1))
            p += 1
        else:
            parts.append(b"Z:%d" % ((((b & 0x3F) << 8) | (data[p + 1] if p + 1 < n else 0)) + 1))
            p += 2
    return b" ".join(parts)


def sparse_histogram(value) -> list[int] | None:
    """hllSparseRegHisto: the register histogram, or None if the runs do not add up to 16384."""
    editor = _read_editor(value)
    return editor.histogram() if editor.total == REGISTERS else None


def sparse_to_raw(value) -> bytes | None:
    """The registers of a sparse value as one byte each, None if corrupt (hllMerge's checks)."""
    return _read_editor(value).raw()


def _editor_to_dense(editor: SparseEditor) -> bytearray | None:
    raw = editor.raw()
    if raw is None:
        return None
    dense = bytearray(editor.header)
    dense[4] = DENSE
    dense += raw_to_dense(raw)
    return dense


def sparse_to_dense(value) -> bytearray | None:
    """hllSparseToDense: the dense value (header copied, encoding 0), None if corrupt."""
    raw = sparse_to_raw(value)
    if raw is None:
        return None
    dense = bytearray(value[:HDR_SIZE])
    dense[4] = DENSE
    dense += raw_to_dense(raw)
    return dense


def sparse_set_bytes(value: bytearray, index: int, count: int, sparse_max: int) -> int:
    """hllSparseSet over the bytes themselves, as the C code does it.

    ``value`` is edited in place. It must carry one spare byte beyond the
    content, playing the SDS NUL terminator (read as half an XZERO, and
    written to as the C code does); the caller strips it at the end.
    Returns 1 changed, 0 not, -1 corrupt, or PROMOTE (value untouched).
    """
    if count > SPARSE_VAL_MAX_VALUE:
        return PROMOTE
    end = len(value) - 1  # the content's end; value[end] is the terminator
    p = HDR_SIZE
    first = 0
    prev = -1
    span = 0
    while p < end:
        b = value[p]
        oplen = 1
        if b & 0xC0 == 0:
            span = b + 1
        elif b & 0x80:
            span = (b & 3) + 1
        else:
            span = (((b & 0x3F) << 8) | value[p + 1]) + 1
            oplen = 2
        if index <= first + span - 1:
            break
        prev = p
        p += oplen
        first += span
    if span == 0 or p >= end:
        return -1
    b = value[p]
    is_xzero = b & 0xC0 == 0x40
    nxt = p + 2 if is_xzero else p + 1
    if nxt >= end:
        nxt = -1
    updated = False
    if b & 0x80:
        runlen = (b & 3) + 1
        if ((b >> 2) & 0x1F) + 1 >= count:
            return 0
        if runlen == 1:
            value[p] = _val(count, 1)
            updated = True
    elif b == 0:  # a ZERO opcode of one register
        value[p] = _val(count, 1)
        updated = True
    if not updated:
        last = first + span - 1
        seq = bytearray()
        if not b & 0x80:
            if index != first:
                seq += _zeros_bytes(index - first)
            seq.append(_val(count, 1))
            if index != last:
                seq += _zeros_bytes(last - index)
        else:
            current = ((b >> 2) & 0x1F) + 1
            if index != first:
                seq.append(_val(current, index - first))
            seq.append(_val(count, 1))
            if index != last:
                seq.append(_val(current, last - index))
        delta = len(seq) - (2 if is_xzero else 1)
        if delta > 0 and end + delta > sparse_max:
            return PROMOTE
        if delta > 0:
            value.extend(bytes(delta))
        if delta and nxt >= 0:
            value[nxt + delta:end + delta] = value[nxt:end]
        # sdsIncrLen: the content grows or shrinks, and the new end gets a NUL ...
        new_end = end + delta
        if delta < 0:
            del value[new_end + 1:]
        value[new_end] = 0
        # ... then the new opcodes are copied in (possibly over that NUL).
        value[p:p + len(seq)] = seq
        if len(value) < new_end + 1:
            value.extend(bytes(new_end + 1 - len(value)))
        end = new_end
    # Step 4: merge adjacent VAL opcodes, from the previous opcode on.
    p = prev if prev >= 0 else HDR_SIZE
    scan = 5
    while p < end and scan > 0:
        scan -= 1
        b = value[p]
        if b & 0xC0 == 0x40:
            p += 2
            continue
        if b & 0xC0 == 0:
            p += 1
            continue
        if p + 1 < end and value[p + 1] & 0x80:
            b2 = value[p + 1]
            if (b & 0x7C) == (b2 & 0x7C):
                run = (b & 3) + (b2 & 3) + 2
                if run <= SPARSE_VAL_MAX_LEN:
                    value[p + 1] = (b & 0xFC) | (run - 1)
                    # memmove(p, p+1, end-p) moves the terminator down too.
                    value[p:end] = value[p + 1:end + 1]
                    end -= 1
                    value[end] = 0
                    del value[end + 1:]
                    continue
        p += 1
    value[15] |= 0x80
    return 1


# -------------------------------------------------------------- cardinality


def _sigma(x: float) -> float:
    if x == 1.0:
        return math.inf
    y = 1.0
    z = x
    while True:
        x *= x
        z_prime = z
        z += x * y
        y += y
        if z_prime == z:
            return z


def _tau(x: float) -> float:
    if x == 0.0 or x == 1.0:
        return 0.0
    y = 1.0
    z = 1 - x
    while True:
        x = math.sqrt(x)
        z_prime = z
        y *= 0.5
        z -= math.pow(1 - x, 2) * y
        if z_prime == z:
            return z / 3


def estimate(histo: list[int]) -> int:
    """hllCount's estimator (Otmar Ertl's improved raw estimator) over a register histogram."""
    m = float(REGISTERS)
    z = m * _tau((m - histo[Q + 1]) / m)
    for j in range(Q, 0, -1):
        z += histo[j]
        z *= 0.5
    z += m * _sigma(histo[0] / m)
    e = ALPHA_INF * m * m / z
    whole = math.floor(e)
    return int(whole) + (1 if e - whole >= 0.5 else 0)  # llroundl: half away from zero


_BINARY_DIGITS = [bytes(0x31 if (b >> bit) & 1 else 0x30 for b in range(256)) for bit in range(BITS)]
_ALL_REGISTERS = (1 << REGISTERS) - 1
_ONE_BYTE = [bytes((v,)) for v in range(256)]


def _raw_histogram(raw: bytes) -> list[int]:
    """How many registers hold each value 0..63, without a Python loop over the registers.

    Each bit of the registers becomes one 16384-bit integer (parsed from a
    '0'/'1' string made by ``translate``); the registers equal to v are then
    the AND of six of those integers or their complements.
    """
    top = 63
    while _ONE_BYTE[top] not in raw:
        top -= 1
    planes = [int(raw.translate(digits), 2) for digits in _BINARY_DIGITS[:top.bit_length()]]
    inverted = [plane ^ _ALL_REGISTERS for plane in planes]
    histo = [0] * 64
    rest = REGISTERS
    for v in range(top):
        mask = _ALL_REGISTERS
        for bit, plane in enumerate(planes):
            mask &= plane if (v >> bit) & 1 else inverted[bit]
        histo[v] = mask.bit_count()
        rest -= histo[v]
    histo[top] = rest
    return histo


# Register histograms of dense values lately counted or edited, by id() of the
# bytearray, each with a copy of the registers it describes: a PFCOUNT after a
# PFADD finds the histogram kept up to date instead of recounting 16384
# registers. The copy is compared on every use, so a reused id() is harmless.
_DENSE_HISTOS: OrderedDict[int, tuple[bytes, list[int]]] = OrderedDict()
_DENSE_HISTOS_MAX = 32


def _dense_histogram(value) -> list[int]:
    key = id(value)
    entry = _DENSE_HISTOS.get(key)
    registers = bytes(value[HDR_SIZE:])
    if entry is not None and entry[0] == registers:
        _DENSE_HISTOS.move_to_end(key)
        return entry[1]
    histo = _raw_histogram(dense_to_raw(value))
    _DENSE_HISTOS[key] = (registers, histo)
    if len(_DENSE_HISTOS) > _DENSE_HISTOS_MAX:
        _DENSE_HISTOS.popitem(last=False)
    return histo


def count_raw(raw: bytes) -> int:
    return estimate(_raw_histogram(raw))


def count_value(value) -> int | None:
    """Cardinality of a valid HLL value, ignoring the cache; None if a sparse value is corrupt."""
    if value[4] == DENSE:
        return estimate(_dense_histogram(value))
    histo = sparse_histogram(value)
    return None if histo is None else estimate(histo)


def to_dense_for_merge(value) -> bytes | None:
    """Registers of any valid HLL value as raw bytes, None if corrupt (hllMerge)."""
    if value[4] == DENSE:
        return dense_to_raw(value)
    return sparse_to_raw(value)


# ------------------------------------------------------------------------ add


def add_elements(value: bytearray, elements, sparse_max: int) -> tuple[bytearray, int, bool]:
    """PFADD's loop over ``elements`` on a valid HLL ``value``.

    Returns ``(new_value, registers_changed, corrupt)``; on corruption the
    changes made before it are kept, as in Redis. ``new_value`` is ``value``
    itself when the value stayed dense.
    """
    changed = 0
    if value[4] == DENSE:
        entry = _DENSE_HISTOS.pop(id(value), None)
        histo = entry[1] if entry is not None and entry[0] == value[HDR_SIZE:] else None
        for element in elements:
            index, count = pattern(element)
            old = dense_get(value, index)
            if count > old:
                dense_set(value, index, count)
                changed += 1
                if histo is not None:
                    histo[old] -= 1
                    histo[count] += 1
        if histo is not None:
            _DENSE_HISTOS[id(value)] = (bytes(value[HDR_SIZE:]), histo)
        return value, changed, False
    editor = _take_editor(value, sparse_max)
    if not editor.truncated:
        it = iter(elements)
        for element in it:
            index, count = pattern(element)
            result = editor.set(index, count)
            if result == 1:
                changed += 1
            elif result == -1:
                return editor.value(), changed, True
            elif result == PROMOTE:
                dense = _editor_to_dense(editor)
                if dense is None:
                    return editor.value(), changed, True
                dense_set(dense, index, count)
                changed += 1
                dense, more, _ = add_elements(dense, it, sparse_max)
                return dense, changed + more, False
        registers = editor.registers_bytes()
        _keep_editor(editor, registers)
        return editor.header + registers, changed, False
    # A value ending in half an XZERO: replay the C code over the bytes.
    work = bytearray(value) + b"\0"
    it = iter(elements)
    for element in it:
        index, count = pattern(element)
        result = sparse_set_bytes(work, index, count, sparse_max)
        if result == 1:
            changed += 1
        elif result == -1:
            return work[:-1], changed, True
        elif result == PROMOTE:
            dense = sparse_to_dense(work[:-1])
            if dense is None:
                return work[:-1], changed, True
            dense_set(dense, index, count)
            changed += 1
            dense, more, _ = add_elements(dense, it, sparse_max)
            return dense, changed + more, False
    return work[:-1], changed, False


# ---------------------------------------------------------------------- merge


def merge_into(value: bytearray, registers: bytes | None, use_dense: bool, sparse_max: int) -> bytearray | None:
    """PFMERGE's write: raise each register of the valid HLL ``value`` to ``registers`` (raw).

    Like Redis: converted to dense first if ``use_dense`` (a source was
    dense), otherwise the registers are set one by one in index order on the
    sparse form, which may get promoted on the way. Returns the new value
    (``value`` itself if untouched), None if ``value`` is a corrupt sparse HLL.
    """
    if registers is None:
        return value
    if use_dense or value[4] == DENSE:
        current = to_dense_for_merge(value)
        if current is None:
            return None
        out = bytearray(value[:HDR_SIZE])
        out[4] = DENSE
        out += raw_to_dense(merge_raw(current, registers))
        return out
    editor = _take_editor(value, sparse_max)
    if editor.truncated:
        work = bytearray(value) + b"\0"
        for index, count in enumerate(registers):
            if count and sparse_set_bytes(work, index, count, sparse_max) == PROMOTE:
                return _merged_dense(work[:-1], registers)
        return work[:-1]
    for index, count in enumerate(registers):
        if count and editor.set(index, count) == PROMOTE:
            return _merged_dense(editor.value(), registers)
    out = editor.value()
    _keep_editor(editor, bytes(out[HDR_SIZE:]))
    return out


def _merged_dense(current, registers: bytes) -> bytearray | None:
    """The dense value a promotion in the middle of PFMERGE ends with: all registers raised."""
    raw = sparse_to_raw(current)
    if raw is None:
        return None
    out = bytearray(current[:HDR_SIZE])
    out[4] = DENSE
    out += raw_to_dense(merge_raw(raw, registers))
    return out
