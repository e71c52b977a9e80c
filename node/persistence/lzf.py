"""LZF, the compression RDB files and DUMP payloads use for strings (Redis's ``lzf_c.c``/``lzf_d.c``).

The format is a sequence of chunks, each starting with a control byte:

* ``000LLLLL`` then ``L + 1`` literal bytes (1..32);
* ``LLLooooo oooooooo``: copy ``L + 2`` bytes (L in 1..6) from ``o + 1``
  bytes back in the output;
* ``111ooooo LLLLLLLL oooooooo``: the same with length ``L + 9`` (up to 264).

A back reference may overlap the bytes it produces (a run of one byte is a
literal followed by a reference one byte back).

``compress`` follows liblzf 3.6 as Redis builds it (``HLOG`` 16,
``VERY_FAST``, its 4-byte rolling hash, the same matching and the same "does
it fit" tests), so for the same input it produces the same bytes as Redis
whenever Redis's hash table starts clean; Redis leaves that table
uninitialised, which can only make it find other (equally valid) matches.
``decompress`` accepts any well-formed LZF stream and rejects truncated or
out-of-range ones with ``LzfError``.

Pure Python: compressing costs roughly a microsecond per input byte, which is
why callers may choose not to compress very large strings (plain strings are
always valid in RDB).
"""

from __future__ import annotations

__all__ = ["LzfError", "compress", "decompress", "may_fit"]

_MAX_LIT = 1 << 5
_MAX_OFF = 1 << 13
_MAX_REF = (1 << 8) + (1 << 3)


class LzfError(ValueError):
    """The compressed data is malformed, or does not expand to the announced size."""


def compress(data, out_len: int | None = None) -> bytes | None:
    """LZF-compress ``data`` into at most ``out_len`` bytes; None if it does not fit.

    ``out_len`` defaults to ``len(data) - 1``. Redis asks for ``len - 4``
    ("at least four bytes saved") and stores the string plainly otherwise.
    """
    in_len = len(data)
    if out_len is None:
        out_len = in_len - 1
    if in_len < 2 or out_len <= 0:
        # liblzf would read one byte past a 1-byte input; Redis never calls it below 21 bytes.
        return None
    if type(data) is not bytes:
        data = bytes(data)
    out = bytearray(out_len + 4)
    htab: dict[int, int] = {}
    get = htab.get
    ip = 0
    op = 1  # a literal run starts: its header byte is out[0]
    lit = 0
    last = in_len - 2
    hval = (data[0] << 8) | data[1]
    while ip < last:
        hval = ((hval << 8) | data[ip + 2]) & 0xFFFFFFFF
        slot = ((hval >> 8) - hval * 5) & 0xFFFF
        ref = get(slot, 0)
        htab[slot] = ip
        off = ip - ref - 1
        # ``ref > 0``: liblzf never matches the first input byte (its "ref > in_data").
        if (
            off < _MAX_OFF
            and ref > 0
            and ip + 4 < in_len
            and data[ref] == data[ip]
            and data[ref + 1] == data[ip + 1]
            and data[ref + 2] == data[ip + 2]
        ):
            maxlen = in_len - ip - 2
            if maxlen > _MAX_REF:
                maxlen = _MAX_REF
            out[op - lit - 1] = (lit - 1) & 0xFF  # close the literal run
            if not lit:
                op -= 1  # ... or drop its empty header
            if op + 4 >= out_len:
                return None
            # The match length: the first index where the bytes differ. liblzf
            # unrolls the first 16 comparisons without looking at maxlen, so a
            # match that starts 19 or 20 bytes before the end may run to 19.
            limit = maxlen if maxlen <= 16 or maxlen >= 19 else 19
            n = 3
            while n < limit and data[ref + n] == data[ip + n]:
                n += 1
            n -= 2  # the encoded length: octets - 2
            ip += 1
            if n < 7:
                out[op] = (off >> 8) + (n << 5)
                op += 1
            else:
                out[op] = (off >> 8) + (7 << 5)
                out[op + 1] = n - 7
                op += 2
            out[op] = off & 0xFF
            op += 2  # the offset byte, then the header slot of the next literal run
            lit = 0
            ip += n + 1
            if ip >= last:
                break
            # VERY_FAST: hash the last two positions of the match.
            ip -= 2
            hval = (data[ip] << 8) | data[ip + 1]
            hval = ((hval << 8) | data[ip + 2]) & 0xFFFFFFFF
            htab[((hval >> 8) - hval * 5) & 0xFFFF] = ip
            ip += 1
            hval = ((hval << 8) | data[ip + 2]) & 0xFFFFFFFF
            htab[((hval >> 8) - hval * 5) & 0xFFFF] = ip
            ip += 1
        else:
            if op >= out_len:
                return None
            lit += 1
            out[op] = data[ip]
            op += 1
            ip += 1
            if lit == _MAX_LIT:
                out[op - lit - 1] = lit - 1
                lit = 0
                op += 1
    if op + 3 > out_len:
        return None
    while ip < in_len:
        lit += 1
        out[op] = data[ip]
        op += 1
        ip += 1
        if lit == _MAX_LIT:
            out[op - lit - 1] = lit - 1
            lit = 0
            op += 1
    out[op - lit - 1] = (lit - 1) & 0xFF
    if not lit:
        op -= 1
    return bytes(out[:op])


def may_fit(data, out_len: int) -> bool:
    """False when ``compress(data, out_len)`` is sure to give None; about ten times cheaper.

    LZF saves bytes only with back references. A reference of L bytes costs
    at least 2, and the L - 2 positions where it starts a 3-byte sequence all
    repeat a sequence seen earlier (never at position 0, which liblzf does not
    use as a source), and one literal run header is always paid. So the
    output is at least ``len - (repeats - 1)`` bytes, where ``repeats``
    counts the positions from 1 on whose 3 bytes occurred at an earlier
    position from 1 on. Incompressible data (random bytes, short values)
    is recognised without running the byte-by-byte matcher.
    """
    n = len(data)
    if n < 5:
        return True
    # the 3-byte sequences at positions 1..n-3, as tuples built in C
    repeats = (n - 3) - len(set(zip(data[1:], data[2:], data[3:])))
    return repeats - 1 >= n - out_len


def decompress(data, out_len: int) -> bytes:
    """Expand ``data``, which must produce exactly ``out_len`` bytes (LzfError otherwise)."""
    out = bytearray()
    n = len(data)
    ip = 0
    while ip < n:
        ctrl = data[ip]
        ip += 1
        if ctrl < 32:
            ctrl += 1
            if len(out) + ctrl > out_len:
                raise LzfError("LZF output larger than announced")
            if ip + ctrl > n:
                raise LzfError("LZF literal run past the end of the input")
            out += data[ip : ip + ctrl]
            ip += ctrl
            continue
        length = ctrl >> 5
        if length == 7:
            if ip >= n:
                raise LzfError("LZF back reference cut short")
            length += data[ip]
            ip += 1
        if ip >= n:
            raise LzfError("LZF back reference cut short")
        size = len(out)
        ref = size - ((ctrl & 0x1F) << 8) - 1 - data[ip]
        ip += 1
        length += 2
        if size + length > out_len:
            raise LzfError("LZF output larger than announced")
        if ref < 0:
            raise LzfError("LZF back reference before the start of the output")
        distance = size - ref
        if distance >= length:
            out += out[ref : ref + length]
        else:
            # Overlapping copy: the last ``distance`` bytes repeat.
            pattern = bytes(out[ref:])
            reps, rest = divmod(length, distance)
            out += pattern * reps + pattern[:rest]
    if len(out) != out_len:
        raise LzfError(f"LZF data expands to {len(out)} bytes, {out_len} announced")
    return bytes(out)
