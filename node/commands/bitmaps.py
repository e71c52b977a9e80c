"""Bitmap commands on strings: SETBIT GETBIT BITCOUNT BITPOS BITOP BITFIELD BITFIELD_RO.

Bit 0 is the most significant bit of the first byte. Commands that edit a
string in place make it a ``bytearray`` first (Redis's ``raw`` encoding) --
quietly, as Redis's dbUnshareStringValue does -- then record the change
with ``db.touch`` only when a bit actually changed or the string grew, which
is also when Redis signals the key and sends the ``setbit`` event. (A key
BITFIELD creates without writing a field -- every write failed its OVERFLOW
FAIL check -- exists unsignalled, as in Redis.)

Counting and searching never loop over bytes in Python: BITCOUNT is one
``int.bit_count`` over the range, BITPOS strips the leading run of
uninteresting bytes with ``lstrip`` and looks at the first byte left.
Argument checks run in Redis 7.0's order (BITCOUNT looks the key up before
parsing its range, BITPOS parses the bit first), so the same wrong call
fails -- or does not -- the same way.
"""

from __future__ import annotations

from node.commands.args import SYNTAX_ERROR, WRONGTYPE, parse_int
from node.commands.strings import get_string, keyword
from node.commands.table import command
from node.notify import GENERIC, STRING, notify
from node.resp import ErrorReply
from node.resp.parser import string2ll

_OFFSET_ERR = ErrorReply("ERR bit offset is not an integer or out of range")
_BIT_ERR = ErrorReply("ERR bit is not an integer or out of range")
_BITPOS_BIT = ErrorReply("ERR The bit argument must be 1 or 0.")
_BAD_TYPE = ErrorReply(
    "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is."
)
_BAD_OVERFLOW = ErrorReply("ERR Invalid OVERFLOW type specified")
_NOT_ONE_KEY = ErrorReply("ERR BITOP NOT must be called with a single source key.")
_RO_ONLY_GET = ErrorReply("ERR BITFIELD_RO only supports the GET subcommand")

_MASK64 = (1 << 64) - 1


def _int64(v: int) -> int:
    """``v`` wrapped to a C int64_t."""
    v &= _MASK64
    return v - (1 << 64) if v >> 63 else v


def _bit_offset(client, arg: bytes, bits: int = 0) -> int:
    """getBitOffsetFromArgument: a bit offset, ``#N`` meaning N*bits when ``bits`` is given."""
    use_hash = bits > 0 and arg[:1] == b"#"
    offset = string2ll(arg[1:] if use_hash else arg)
    if offset is None:
        raise _OFFSET_ERR
    if use_hash:
        offset = _int64(offset * bits)
    if offset < 0 or (offset >> 3) >= client.node.config["proto-max-bulk-len"]:
        raise _OFFSET_ERR
    return offset


def _string_for_bits(db, key: bytes, max_bit: int):
    """lookupStringForBitCommand: the string at ``key`` as a bytearray long enough for ``max_bit``.

    Returns ``(value, grown_bytes)``; a missing key is created (zero-filled)
    and stored right away, as Redis does -- without recording a change: the
    caller does that if a bit was written.
    """
    size = (max_bit >> 3) + 1
    value = db.lookup(key)
    if value is None:
        value = bytearray(size)
        db.store_quietly(key, value)
        return value, size
    kind = type(value)
    if kind is bytes:
        value = bytearray(value)
        db.store_quietly(key, value)
    elif kind is not bytearray:
        raise WRONGTYPE
    grow = size - len(value)
    if grow > 0:
        value.extend(bytes(grow))
        return value, grow
    return value, 0


def _record(client, key: bytes, changes: int) -> None:
    """Count ``changes`` writes to ``key``, signal it and send ``setbit``."""
    client.db.touch(key, changes)
    notify(client, STRING, b"setbit", key)


# ---------------------------------------------------------------- SETBIT / GETBIT


@command("setbit", 4, "write denyoom", (1, 1, 1), group="bitmap",
         summary="Sets or clears the bit at offset in the string value stored at key", since="2.2.0",
         complexity="O(1)")
def setbit(client, argv):
    offset = _bit_offset(client, argv[2])
    on = parse_int(argv[3], _BIT_ERR)
    if on & ~1:
        raise _BIT_ERR
    key = argv[1]
    value, grown = _string_for_bits(client.db, key, offset)
    byte = offset >> 3
    shift = 7 - (offset & 7)
    current = value[byte]
    old = (current >> shift) & 1
    if grown or old != on:
        value[byte] = (current & ~(1 << shift) & 0xFF) | (on << shift)
        _record(client, key, 1)
    return old


@command("getbit", 3, "readonly fast", (1, 1, 1), group="bitmap",
         summary="Returns the bit value at offset in the string value stored at key", since="2.2.0",
         complexity="O(1)")
def getbit(client, argv):
    offset = _bit_offset(client, argv[2])
    value = get_string(client.db, argv[1])
    if value is None:
        return 0
    byte = offset >> 3
    if byte >= len(value):
        return 0
    return (value[byte] >> (7 - (offset & 7))) & 1


# --------------------------------------------------------------- BITCOUNT / BITPOS


def _range_unit(arg: bytes) -> bool:
    """True for BIT, False for BYTE (any case), else a syntax error."""
    word = keyword(arg)
    if word == b"bit":
        return True
    if word == b"byte":
        return False
    raise SYNTAX_ERROR


def _clamp(start: int, end: int, total: int) -> tuple[int, int]:
    """Redis's index conversion: negatives from the end, then clamped into [0, total-1]."""
    # Not listvalue.rank_range: BITCOUNT/BITPOS also clamp a negative end to 0 and let the caller judge emptiness.
    if start < 0:
        start += total
    if end < 0:
        end += total
    if start < 0:
        start = 0
    if end < 0:
        end = 0
    if end >= total:
        end = total - 1
    return start, end


@command("bitcount", -2, "readonly", (1, 1, 1), group="bitmap", summary="Count set bits in a string",
         since="2.6.0", complexity="O(N)")
def bitcount(client, argv):
    value = get_string(client.db, argv[1])
    if value is None:
        return 0  # Redis 7.0 answers before looking at the range
    argc = len(argv)
    size = len(value)
    if argc == 4 or argc == 5:
        start = parse_int(argv[2])
        end = parse_int(argv[3])
        if start < 0 and end < 0 and start > end:
            return 0
        is_bit = argc == 5 and _range_unit(argv[4])
        start, end = _clamp(start, end, size * 8 if is_bit else size)
        if start > end:
            return 0
        if is_bit:
            chunk = int.from_bytes(value[start >> 3:(end >> 3) + 1], "big") >> (7 - (end & 7))
            return (chunk & ((1 << (end - start + 1)) - 1)).bit_count()
    elif argc == 2:
        start, end = 0, size - 1
        if not size:
            return 0
    else:
        raise SYNTAX_ERROR
    return int.from_bytes(value[start:end + 1], "big").bit_count()


def _first_bit(value, bit: int, first: int, last: int) -> int:
    """Position of the first bit equal to ``bit`` in bit positions [first, last], or -1."""
    lo = first >> 3
    segment = bytearray(value[lo:(last >> 3) + 1])
    head = first & 7  # bits of the first byte before the range
    tail = 7 - (last & 7)  # bits of the last byte after it
    if bit:
        segment[0] &= 0xFF >> head
        segment[-1] &= (0xFF << tail) & 0xFF
        rest = segment.lstrip(b"\x00")
        if not rest:
            return -1
        byte = rest[0]
    else:
        segment[0] |= (0xFF << (8 - head)) & 0xFF
        segment[-1] |= (1 << tail) - 1
        rest = segment.lstrip(b"\xff")
        if not rest:
            return -1
        byte = rest[0] ^ 0xFF
    return (lo + len(segment) - len(rest)) * 8 + 8 - byte.bit_length()


@command("bitpos", -3, "readonly", (1, 1, 1), group="bitmap", summary="Find first bit set or clear in a string",
         since="2.8.7", complexity="O(N)")
def bitpos(client, argv):
    bit = parse_int(argv[2])
    if bit != 0 and bit != 1:
        raise _BITPOS_BIT
    value = get_string(client.db, argv[1])
    if value is None:
        return -1 if bit else 0  # a missing key is an endless run of zeros
    argc = len(argv)
    size = len(value)
    end_given = False
    is_bit = False
    if 4 <= argc <= 6:
        start = parse_int(argv[3])
        if argc == 6:
            is_bit = _range_unit(argv[5])
        if argc >= 5:
            end = parse_int(argv[4])
            end_given = True
        else:
            end = size - 1
        start, end = _clamp(start, end, size * 8 if is_bit else size)
    elif argc == 3:
        start, end = 0, size - 1
    else:
        raise SYNTAX_ERROR
    if start > end:
        return -1
    if not is_bit:
        start, end = start * 8, end * 8 + 7
    pos = _first_bit(value, bit, start, end)
    if pos < 0 and bit == 0 and not end_given:
        return end + 1  # no clear bit: the string counts as zero-padded on the right
    return pos


# -------------------------------------------------------------------------- BITOP


@command("bitop", -4, "write denyoom", (2, -1, 1), group="bitmap",
         summary="Perform bitwise operations between strings", since="2.6.0", complexity="O(N)")
def bitop(client, argv):
    op = keyword(argv[1])
    if op not in (b"and", b"or", b"xor", b"not"):
        raise SYNTAX_ERROR
    if op == b"not" and len(argv) != 4:
        raise _NOT_ONE_KEY
    db = client.db
    sources = []
    for key in argv[3:]:
        value = db.lookup_read(key)
        if value is None:
            sources.append(b"")
            continue
        kind = type(value)
        if kind is not bytes and kind is not bytearray:
            raise WRONGTYPE
        sources.append(value)
    size = max(len(s) for s in sources)
    dest = argv[2]
    if not size:
        if db.delete(dest):
            notify(client, GENERIC, b"del", dest)
        return 0
    # Shorter strings count as zero-padded on the right.
    numbers = [int.from_bytes(s, "big") << (8 * (size - len(s))) for s in sources]
    result = numbers[0]
    if op == b"and":
        for n in numbers[1:]:
            result &= n
    elif op == b"or":
        for n in numbers[1:]:
            result |= n
    elif op == b"xor":
        for n in numbers[1:]:
            result ^= n
    else:
        result ^= (1 << (8 * size)) - 1
    db.set(dest, bytearray(result.to_bytes(size, "big")))
    notify(client, STRING, b"set", dest)
    return size


# ----------------------------------------------------------------------- BITFIELD

_GET, _SET, _INCRBY = 0, 1, 2
_WRAP, _SAT, _FAIL = 0, 1, 2
_OVERFLOW_TYPES = {b"wrap": _WRAP, b"sat": _SAT, b"fail": _FAIL}


def _bitfield_type(arg: bytes) -> tuple[bool, int]:
    """getBitfieldTypeFromArgument: (signed, bits) from ``i1``..``i64`` / ``u1``..``u63`` (lower case)."""
    sign = arg[:1]
    if sign != b"i" and sign != b"u":
        raise _BAD_TYPE
    signed = sign == b"i"
    bits = string2ll(arg[1:].split(b"\0", 1)[0])
    if bits is None or bits < 1 or bits > (64 if signed else 63):
        raise _BAD_TYPE
    return signed, bits


def _get_unsigned(value, offset: int, bits: int) -> int:
    """The ``bits``-bit unsigned integer at bit ``offset``; bits past the end read as zero."""
    lo = offset >> 3
    hi = (offset + bits - 1) >> 3
    width = hi - lo + 1
    chunk = value[lo:hi + 1] if value is not None else b""
    number = int.from_bytes(chunk, "big") << (8 * (width - len(chunk)))
    return (number >> (width * 8 - (offset & 7) - bits)) & ((1 << bits) - 1)


def _get_signed(value, offset: int, bits: int) -> int:
    number = _get_unsigned(value, offset, bits)
    return number - (1 << bits) if number >> (bits - 1) else number


def _set_bits(value: bytearray, offset: int, bits: int, number: int) -> None:
    lo = offset >> 3
    hi = (offset + bits - 1) >> 3
    width = hi - lo + 1
    shift = width * 8 - (offset & 7) - bits
    mask = ((1 << bits) - 1) << shift
    current = int.from_bytes(value[lo:hi + 1], "big")
    current = (current & ~mask) | ((number << shift) & mask)
    value[lo:hi + 1] = current.to_bytes(width, "big")


def _unsigned_overflow(value: int, incr: int, bits: int, owtype: int):
    """checkUnsignedBitfieldOverflow: (overflowed, value to store for WRAP/SAT)."""
    top = (1 << bits) - 1
    max_incr = _int64(top - value)
    min_incr = _int64(-value)
    if value > top or (incr > 0 and incr > max_incr):
        limit = top
    elif incr < 0 and incr < min_incr:
        limit = 0
    else:
        return False, None
    if owtype == _WRAP:
        return True, ((value + incr) & _MASK64) & top
    return True, limit


def _signed_overflow(value: int, incr: int, bits: int, owtype: int):
    """checkSignedBitfieldOverflow, with its int64 wrap-arounds: (overflowed, value to store)."""
    top = (1 << (bits - 1)) - 1
    bottom = -top - 1
    max_incr = _int64(top - value)
    min_incr = _int64(bottom - value)
    if value > top or (bits != 64 and incr > max_incr) or (value >= 0 and incr > 0 and incr > max_incr):
        limit = top
    elif value < bottom or (bits != 64 and incr < min_incr) or (value < 0 and incr < 0 and incr < min_incr):
        limit = bottom
    else:
        return False, None
    if owtype == _WRAP:
        wrapped = (value + incr) & _MASK64
        if bits < 64:
            high = (_MASK64 << bits) & _MASK64
            wrapped = wrapped | high if wrapped & (1 << (bits - 1)) else wrapped & ~high
        return True, _int64(wrapped)
    return True, limit


def _bitfield(client, argv, readonly_command: bool):
    argc = len(argv)
    ops = []
    owtype = _WRAP
    readonly = True
    highest = 0
    j = 2
    while j < argc:
        remaining = argc - j - 1
        sub = keyword(argv[j])
        if sub == b"get" and remaining >= 2:
            opcode = _GET
        elif sub == b"set" and remaining >= 3:
            opcode = _SET
        elif sub == b"incrby" and remaining >= 3:
            opcode = _INCRBY
        elif sub == b"overflow" and remaining >= 1:
            owtype = _OVERFLOW_TYPES.get(keyword(argv[j + 1]))
            if owtype is None:
                raise _BAD_OVERFLOW
            j += 2
            continue
        else:
            raise SYNTAX_ERROR
        signed, bits = _bitfield_type(argv[j + 1])
        offset = _bit_offset(client, argv[j + 2], bits)
        number = 0
        if opcode != _GET:
            readonly = False
            highest = max(highest, offset + bits - 1)
            number = parse_int(argv[j + 3])
            j += 4
        else:
            j += 3
        ops.append((opcode, offset, number, owtype, bits, signed))

    db = client.db
    key = argv[1]
    grown = 0
    if readonly:
        value = get_string(db, key)
    else:
        if readonly_command:
            raise _RO_ONLY_GET
        value, grown = _string_for_bits(db, key, highest)

    replies = []
    changes = 0
    for opcode, offset, number, owtype, bits, signed in ops:
        if opcode == _GET:
            replies.append(_get_signed(value, offset, bits) if signed else _get_unsigned(value, offset, bits))
            continue
        if signed:
            old = _get_signed(value, offset, bits)
            if opcode == _INCRBY:
                overflow, limit = _signed_overflow(old, number, bits, owtype)
                new = limit if overflow else old + number
                result = new
            else:
                overflow, limit = _signed_overflow(number, 0, bits, owtype)
                new = limit if overflow else number
                result = old
        else:
            old = _get_unsigned(value, offset, bits)
            if opcode == _INCRBY:
                overflow, limit = _unsigned_overflow(old, number, bits, owtype)
                new = limit if overflow else (old + number) & _MASK64
                result = new
            else:
                new = number & _MASK64
                overflow, limit = _unsigned_overflow(new, 0, bits, owtype)
                if overflow:
                    new = limit
                result = old
        if overflow and owtype == _FAIL:
            replies.append(None)
            continue
        replies.append(_int64(result))
        _set_bits(value, offset, bits, new)
        if grown or old != new:
            changes += 1
    if changes:
        _record(client, key, changes)
    return replies


@command("bitfield", -2, "write denyoom", (1, 1, 1), group="bitmap",
         summary="Perform arbitrary bitfield integer operations on strings", since="3.2.0",
         complexity="O(1) for each subcommand specified")
def bitfield(client, argv):
    return _bitfield(client, argv, False)


@command("bitfield_ro", -2, "readonly fast", (1, 1, 1), group="bitmap",
         summary="Perform arbitrary bitfield integer operations on strings. Read-only variant of BITFIELD",
         since="6.0.0", complexity="O(1) for each subcommand specified")
def bitfield_ro(client, argv):
    return _bitfield(client, argv, True)
