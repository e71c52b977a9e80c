"""String commands, with Redis 7.0's replies, errors and edge cases.

Storage: a string is ``bytes`` (what SET, INCR and friends store) or a
``bytearray`` once APPEND or SETRANGE has modified it in place -- which is
when Redis's encoding becomes ``raw``. Read commands look keys up with
``lookup_read`` (keyspace hits/misses), write commands with ``lookup``.

Two things need more than a line or two and live at the end of the module:

* INCRBYFLOAT computes in x87 80-bit ``long double`` in Redis, parses with
  ``strtold`` and prints with ``%.17Lf`` minus trailing zeros. Python has no
  long double, so the ``_ld_*`` helpers emulate it exactly with integers:
  a value is ``M * 2**E`` with a 64-bit significand, rounded half-to-even,
  with the format's exponent range and subnormals.
* LCS uses the bit-parallel LCS recurrence (one big-int operation per byte of
  the first string) and walks the table back exactly as Redis does, so IDX
  reports the same ranges.
"""

from __future__ import annotations

import re
from decimal import Decimal

from node.commands.args import NOT_FLOAT, NOT_INTEGER, SYNTAX_ERROR, WRONGTYPE, parse_int
from node.commands.table import command
from node.notify import GENERIC, STRING, notify
from node.propagation import rewrite
from node.resp import OK, ErrorReply
from node.resp.parser import string2ll

_LLONG_MAX = 2**63 - 1
_LLONG_MIN = -(2**63)

_OVERFLOW = ErrorReply("ERR increment or decrement would overflow")
_DECR_OVERFLOW = ErrorReply("ERR decrement would overflow")
_NAN_OR_INF = ErrorReply("ERR increment would produce NaN or Infinity")
_OFFSET_RANGE = ErrorReply("ERR offset is out of range")
_TOO_BIG = ErrorReply("ERR string exceeds maximum allowed size (proto-max-bulk-len)")
_LCS_TYPES = ErrorReply("ERR The specified keys must contain string values")
_LCS_IDX_AND_LEN = ErrorReply("ERR If you want both the length and indexes, please just use IDX.")
_LCS_TOO_LONG = ErrorReply("ERR String too long for LCS")
_LCS_NO_MEMORY = ErrorReply("ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len")
_MSET_ARITY = ErrorReply("ERR wrong number of arguments for 'mset' command")
_MSETNX_ARITY = ErrorReply("ERR wrong number of arguments for 'msetnx' command")


def keyword(arg: bytes) -> bytes:
    """An option word as Redis compares it: lower case, and cut at a NUL (C strings)."""
    word = arg.lower()
    if b"\0" in word:
        word = word[: word.index(b"\0")]
    return word


def get_string(db, key: bytes):
    """The string at ``key`` (bytes/bytearray), None if absent; WRONGTYPE otherwise.

    For read commands: counts a keyspace hit or miss.
    """
    value = db.lookup_read(key)
    if value is None:
        return None
    kind = type(value)
    if kind is bytes or kind is bytearray:
        return value
    raise WRONGTYPE


def _string_for_write(db, key: bytes):
    """Like ``get_string`` for write commands (no hit/miss accounting)."""
    value = db.lookup(key)
    if value is None:
        return None
    kind = type(value)
    if kind is bytes or kind is bytearray:
        return value
    raise WRONGTYPE


def expire_error(cmd_name: str) -> ErrorReply:
    return ErrorReply(f"ERR invalid expire time in '{cmd_name}' command")


def absolute_expire_ms(db, amount: int, unit_ms: int, relative: bool, cmd_name: str) -> int:
    """Turn an EX/PX/EXAT/PXAT argument into unix ms, with Redis's range checks."""
    if amount <= 0 or (unit_ms == 1000 and amount > _LLONG_MAX // 1000):
        raise expire_error(cmd_name)
    when = amount * unit_ms
    if relative:
        now = db.now()
        if when > _LLONG_MAX - now:
            raise expire_error(cmd_name)
        when += now
    return when


def _check_length(client, size: int) -> None:
    if size > client.node.config["proto-max-bulk-len"]:
        raise _TOO_BIG


# ---------------------------------------------------------------------- GET / SET


@command("get", 2, "readonly fast", (1, 1, 1), group="string", summary="Get the value of a key",
         since="1.0.0", complexity="O(1)")
def get(client, argv):
    value = client.db.lookup_read(argv[1])
    if value is None:
        return None
    kind = type(value)
    if kind is bytes:
        return value
    if kind is bytearray:
        return bytes(value)
    raise WRONGTYPE


# option word -> (ms per unit, relative to now)
_EXPIRE_UNITS = {b"ex": (1000, True), b"px": (1, True), b"exat": (1000, False), b"pxat": (1, False)}


@command("set", -3, "write denyoom", (1, 1, 1), group="string",
         summary="Set the string value of a key", since="1.0.0", complexity="O(1)")
def set_(client, argv):
    db = client.db
    key = argv[1]
    argc = len(argv)
    if argc == 3:
        if db.volatile:
            db.lookup(key)  # as Redis's lookupKeyWrite: an expired key goes first ("expired" event)
        db.set(key, argv[2])
        if client.node.notify_flags:
            notify(client, STRING, b"set", key)
        return OK
    nx = xx = want_get = keep_ttl = False
    expire_unit = None
    expire_arg = None
    i = 3
    while i < argc:
        opt = keyword(argv[i])
        if opt == b"nx" and not xx:
            nx = True
        elif opt == b"xx" and not nx:
            xx = True
        elif opt == b"get":
            want_get = True
        elif opt == b"keepttl" and expire_unit is None:
            keep_ttl = True
        elif (opt in _EXPIRE_UNITS and not keep_ttl and (expire_unit is None or expire_unit == opt)
              and i + 1 < argc):
            expire_unit = opt
            i += 1
            expire_arg = argv[i]
        else:
            raise SYNTAX_ERROR
        i += 1
    when = None
    if expire_unit is not None:
        unit_ms, relative = _EXPIRE_UNITS[expire_unit]
        when = absolute_expire_ms(db, parse_int(expire_arg), unit_ms, relative, "set")
    old = None
    if want_get:
        old = get_string(db, key)
        found = old is not None
    else:
        found = db.lookup(key) is not None
    if (nx and found) or (xx and not found):
        return bytes(old) if old is not None else None
    db.set(key, argv[2], keep_ttl=keep_ttl)
    notify(client, STRING, b"set", key)
    if when is not None:
        db.set_expire(key, when)
        db.dirty -= 1  # SET ... EX is one change for rdb_changes_since_last_save, as in Redis
        notify(client, GENERIC, b"expire", key)
    if not client.node.propagation.enabled:
        pass
    elif when is not None and expire_unit != b"pxat":
        # EX/PX/EXAT: the whole command becomes SET key value PXAT <absolute ms>.
        rewrite(client, b"SET", key, argv[2], b"PXAT", b"%d" % when)
    elif want_get:
        # GET changes nothing a replica needs: propagated without it (any spelling, cut at NUL).
        rewrite(client, *argv[:3], *(a for a in argv[3:] if keyword(a) != b"get"))
    if want_get:
        return None if old is None else bytes(old)
    return OK


@command("setnx", 3, "write denyoom fast", (1, 1, 1), group="string",
         summary="Set the value of a key, only if the key does not exist", since="1.0.0", complexity="O(1)")
def setnx(client, argv):
    db = client.db
    if db.lookup(argv[1]) is not None:
        return 0
    db.set(argv[1], argv[2])
    notify(client, STRING, b"set", argv[1])
    return 1


def _set_with_expire(client, argv, unit_ms: int, name: str):
    db = client.db
    when = absolute_expire_ms(db, parse_int(argv[2]), unit_ms, True, name)
    key = argv[1]
    if db.volatile:
        db.lookup(key)
    db.set(key, argv[3])
    notify(client, STRING, b"set", key)
    db.set_expire(key, when)
    db.dirty -= 1  # one change, as in Redis
    notify(client, GENERIC, b"expire", key)
    if client.node.propagation.enabled:
        rewrite(client, b"SET", key, argv[3], b"PXAT", b"%d" % when)
    return OK


@command("setex", 4, "write denyoom", (1, 1, 1), group="string",
         summary="Set the value and expiration of a key", since="2.0.0", complexity="O(1)")
def setex(client, argv):
    return _set_with_expire(client, argv, 1000, "setex")


@command("psetex", 4, "write denyoom", (1, 1, 1), group="string",
         summary="Set the value and expiration in milliseconds of a key", since="2.6.0", complexity="O(1)")
def psetex(client, argv):
    return _set_with_expire(client, argv, 1, "psetex")


@command("getset", 3, "write denyoom fast", (1, 1, 1), group="string",
         summary="Set the string value of a key and return its old value", since="1.0.0", complexity="O(1)")
def getset(client, argv):
    db = client.db
    old = get_string(db, argv[1])
    db.set(argv[1], argv[2])
    notify(client, STRING, b"set", argv[1])
    rewrite(client, b"SET", argv[1], argv[2])  # Redis 7.0 propagates GETSET as SET
    return old


@command("getdel", 2, "write fast", (1, 1, 1), group="string",
         summary="Get the value of a key and delete the key", since="6.2.0", complexity="O(1)")
def getdel(client, argv):
    db = client.db
    value = get_string(db, argv[1])
    if value is not None:
        db.delete(argv[1])
        notify(client, GENERIC, b"del", argv[1])
        if client.node.propagation.enabled:
            rewrite(client, b"UNLINK" if client.node.config["lazyfree-lazy-user-del"] else b"DEL", argv[1])
    return value


@command("getex", -2, "write fast", (1, 1, 1), group="string",
         summary="Get the value of a key and optionally set its expiration", since="6.2.0", complexity="O(1)")
def getex(client, argv):
    db = client.db
    key = argv[1]
    argc = len(argv)
    persist = False
    expire_unit = None
    expire_arg = None
    i = 2
    while i < argc:
        opt = keyword(argv[i])
        if opt == b"persist" and expire_unit is None:
            persist = True
        elif (opt in _EXPIRE_UNITS and not persist and (expire_unit is None or expire_unit == opt)
              and i + 1 < argc):
            expire_unit = opt
            i += 1
            expire_arg = argv[i]
        else:
            raise SYNTAX_ERROR
        i += 1
    value = get_string(db, key)
    if value is None:
        return None
    if expire_unit is not None:
        unit_ms, relative = _EXPIRE_UNITS[expire_unit]
        when = absolute_expire_ms(db, parse_int(expire_arg), unit_ms, relative, "getex")
        # GETEX never propagates as sent: DEL/UNLINK, PEXPIREAT or PERSIST.
        if not relative and when <= db.now():
            db.delete(key)
            notify(client, GENERIC, b"del", key)
            if client.node.propagation.enabled:
                rewrite(client, b"UNLINK" if client.node.config["lazyfree-lazy-expire"] else b"DEL", key)
        else:
            db.set_expire(key, when)
            notify(client, GENERIC, b"expire", key)
            rewrite(client, b"PEXPIREAT", key, b"%d" % when)
    elif persist:
        if db.persist(key):
            notify(client, GENERIC, b"persist", key)
            rewrite(client, b"PERSIST", key)
    return value


# ------------------------------------------------------------------- MGET / MSET


@command("mget", -2, "readonly fast", (1, -1, 1), group="string",
         summary="Get the values of all the given keys", since="1.0.0",
         complexity="O(N) where N is the number of keys to retrieve.", tips=("request_policy:multi_shard",))
def mget(client, argv):
    lookup_read = client.db.lookup_read
    out = []
    append = out.append
    for key in argv[1:]:
        value = lookup_read(key)
        kind = type(value)
        append(value if kind is bytes or kind is bytearray else None)
    return out


@command("mset", -3, "write denyoom", (1, -1, 2), group="string",
         summary="Set multiple keys to multiple values", since="1.0.1",
         complexity="O(N) where N is the number of keys to set.",
         tips=("request_policy:multi_shard", "response_policy:all_succeeded"))
def mset(client, argv):
    argc = len(argv)
    if not argc & 1:
        raise _MSET_ARITY
    db = client.db
    set_key = db.set
    notify_on = client.node.notify_flags
    for i in range(1, argc, 2):
        if db.volatile:
            db.lookup(argv[i])
        set_key(argv[i], argv[i + 1])
        if notify_on:
            notify(client, STRING, b"set", argv[i])
    return OK


@command("msetnx", -3, "write denyoom", (1, -1, 2), group="string",
         summary="Set multiple keys to multiple values, only if none of the keys exist", since="1.0.1",
         complexity="O(N) where N is the number of keys to set.",
         tips=("request_policy:multi_shard", "response_policy:agg_min"))
def msetnx(client, argv):
    argc = len(argv)
    if not argc & 1:
        raise _MSETNX_ARITY
    db = client.db
    for i in range(1, argc, 2):
        if db.lookup(argv[i]) is not None:
            return 0
    for i in range(1, argc, 2):
        db.set(argv[i], argv[i + 1])
        notify(client, STRING, b"set", argv[i])
    return 1


# ---------------------------------------------------------- APPEND, ranges, length


@command("append", 3, "write denyoom fast", (1, 1, 1), group="string",
         summary="Append a value to a key", since="2.0.0",
         complexity="O(1). The amortized time complexity is O(1) assuming the appended value is small and "
                    "the already present value is of any size, since the dynamic string library used by "
                    "Redis will double the free space available on every reallocation.")
def append(client, argv):
    db = client.db
    key = argv[1]
    tail = argv[2]
    value = _string_for_write(db, key)
    if value is None:
        db.set(key, tail)
        notify(client, STRING, b"append", key)
        return len(tail)
    _check_length(client, len(value) + len(tail))
    if type(value) is bytes:
        value = bytearray(value)
    value += tail
    db.replace(key, value)
    notify(client, STRING, b"append", key)
    return len(value)


@command("strlen", 2, "readonly fast", (1, 1, 1), group="string",
         summary="Get the length of the value stored in a key", since="2.2.0", complexity="O(1)")
def strlen(client, argv):
    value = get_string(client.db, argv[1])
    return 0 if value is None else len(value)


_GETRANGE_COMPLEXITY = (
    "O(N) where N is the length of the returned string. The complexity is ultimately determined by the "
    "returned length, but because creating a substring from an existing string is very cheap, it can be "
    "considered O(1) for small strings."
)


@command("getrange", 4, "readonly", (1, 1, 1), group="string",
         summary="Get a substring of the string stored at a key", since="2.4.0", complexity=_GETRANGE_COMPLEXITY)
def getrange(client, argv):
    start = parse_int(argv[2])
    end = parse_int(argv[3])
    value = get_string(client.db, argv[1])
    if value is None:
        return b""
    # Redis 7.0's clamping, including its quirk: a range wholly before the
    # start (e.g. -100 -50) clamps to the first byte rather than to nothing.
    if start < 0 and end < 0 and start > end:
        return b""
    size = len(value)
    if start < 0:
        start = max(size + start, 0)
    if end < 0:
        end = max(size + end, 0)
    if end >= size:
        end = size - 1
    if start > end or size == 0:
        return b""
    return value[start : end + 1]


@command("substr", 4, "readonly", (1, 1, 1), group="string",
         summary="Get a substring of the string stored at a key", since="1.0.0", complexity=_GETRANGE_COMPLEXITY)
def substr(client, argv):
    return getrange(client, argv)


@command("setrange", 4, "write denyoom", (1, 1, 1), group="string",
         summary="Overwrite part of a string at key starting at the specified offset", since="2.2.0",
         complexity="O(1), not counting the time taken to copy the new string in place. Usually, this "
                    "string is very small so the amortized complexity is O(1). Otherwise, complexity is "
                    "O(M) with M being the length of the value argument.")
def setrange(client, argv):
    offset = parse_int(argv[2])
    if offset < 0:
        raise _OFFSET_RANGE
    db = client.db
    key = argv[1]
    patch = argv[3]
    n = len(patch)
    value = _string_for_write(db, key)
    if value is None:
        if not n:
            return 0
        _check_length(client, offset + n)
        value = bytearray(offset)
        value += patch
        db.set(key, value)
        notify(client, STRING, b"setrange", key)
        return len(value)
    if not n:
        return len(value)
    end = offset + n
    _check_length(client, end)
    if type(value) is bytes:
        value = bytearray(value)
    if end > len(value):
        value.extend(bytes(end - len(value)))
    value[offset:end] = patch
    db.replace(key, value)
    notify(client, STRING, b"setrange", key)
    return len(value)


# ------------------------------------------------------------------ INCR / DECR


def _incr_by(client, key: bytes, delta: int) -> int:
    db = client.db
    value = db.lookup(key)
    if value is None:
        result = delta
    else:
        kind = type(value)
        if kind is not bytes and kind is not bytearray:
            raise WRONGTYPE
        current = string2ll(value)
        if current is None:
            raise NOT_INTEGER
        result = current + delta
        if result > _LLONG_MAX or result < _LLONG_MIN:
            raise _OVERFLOW
    db.set(key, b"%d" % result, keep_ttl=True)
    notify(client, STRING, b"incrby", key)
    return result


@command("incr", 2, "write denyoom fast", (1, 1, 1), group="string",
         summary="Increment the integer value of a key by one", since="1.0.0", complexity="O(1)")
def incr(client, argv):
    return _incr_by(client, argv[1], 1)


@command("decr", 2, "write denyoom fast", (1, 1, 1), group="string",
         summary="Decrement the integer value of a key by one", since="1.0.0", complexity="O(1)")
def decr(client, argv):
    return _incr_by(client, argv[1], -1)


@command("incrby", 3, "write denyoom fast", (1, 1, 1), group="string",
         summary="Increment the integer value of a key by the given amount", since="1.0.0", complexity="O(1)")
def incrby(client, argv):
    return _incr_by(client, argv[1], parse_int(argv[2]))


@command("decrby", 3, "write denyoom fast", (1, 1, 1), group="string",
         summary="Decrement the integer value of a key by the given number", since="1.0.0", complexity="O(1)")
def decrby(client, argv):
    amount = parse_int(argv[2])
    if amount == _LLONG_MIN:
        raise _DECR_OVERFLOW
    return _incr_by(client, argv[1], -amount)


@command("incrbyfloat", 3, "write denyoom fast", (1, 1, 1), group="string",
         summary="Increment the float value of a key by the given amount", since="2.6.0", complexity="O(1)")
def incrbyfloat(client, argv):
    db = client.db
    key = argv[1]
    value = _string_for_write(db, key)
    if value is None:
        current = (0, 0)
    else:
        current = ld_parse(value)
        if current is None:
            raise NOT_FLOAT
    increment = ld_parse(argv[2])
    if increment is None:
        raise NOT_FLOAT
    if current is _LD_INF or increment is _LD_INF:
        raise _NAN_OR_INF
    total = ld_add(current, increment)
    if total is _LD_INF:
        raise _NAN_OR_INF
    text = ld_format(total)
    db.set(key, text, keep_ttl=True)
    notify(client, STRING, b"incrbyfloat", key)
    # The result, not the increment: float formatting can never differ on replay.
    rewrite(client, b"SET", key, text, b"KEEPTTL")
    return text


# ------------------------------------------------------------------------- LCS


@command("lcs", -3, "readonly", (1, 2, 1), group="string", summary="Find longest common substring",
         since="7.0.0", complexity="O(N*M) where N and M are the lengths of s1 and s2, respectively")
def lcs(client, argv):
    db = client.db
    a = db.lookup_read(argv[1])
    b = db.lookup_read(argv[2])
    if (a is not None and type(a) is not bytes and type(a) is not bytearray) or (
        b is not None and type(b) is not bytes and type(b) is not bytearray
    ):
        raise _LCS_TYPES
    a = b"" if a is None else bytes(a)
    b = b"" if b is None else bytes(b)
    want_idx = want_len = with_match_len = False
    min_match_len = 0
    argc = len(argv)
    i = 3
    while i < argc:
        opt = keyword(argv[i])
        if opt == b"idx":
            want_idx = True
        elif opt == b"len":
            want_len = True
        elif opt == b"withmatchlen":
            with_match_len = True
        elif opt == b"minmatchlen" and i + 1 < argc:
            i += 1
            min_match_len = max(parse_int(argv[i]), 0)
        else:
            raise SYNTAX_ERROR
        i += 1
    if want_idx and want_len:
        raise _LCS_IDX_AND_LEN
    alen = len(a)
    blen = len(b)
    if alen >= 2**32 - 2 or blen >= 2**32 - 2:
        raise _LCS_TOO_LONG
    if (alen + 1) * (blen + 1) * 4 > client.node.config["proto-max-bulk-len"]:
        raise _LCS_NO_MEMORY
    if want_len:
        return _lcs_rows(a, b, keep=False)
    rows = _lcs_rows(a, b, keep=True)
    return _lcs_walk(a, b, rows, want_idx, with_match_len, min_match_len)


def _lcs_rows(a: bytes, b: bytes, keep: bool):
    """Bit-parallel LCS table, one big int per row.

    Row ``i`` (``a[:i]`` against ``b``) is ``V`` with bit ``j`` clear exactly
    when LCS(i, j+1) = LCS(i, j) + 1, so LCS(i, j) = j - popcount(V & (2**j - 1)).
    Returns every row when ``keep``, else just the LCS length.
    """
    n = len(b)
    full = (1 << n) - 1
    masks = {}
    if n:
        for ch in set(b):
            table = bytearray(b"0" * 256)
            table[ch] = 0x31  # "1"
            masks[ch] = int(b.translate(table)[::-1], 2)
    v = full
    if not keep:
        for ch in a:
            u = v & masks.get(ch, 0)
            v = ((v + u) | (v - u)) & full
        return n - v.bit_count()
    rows = [v]
    append = rows.append
    for ch in a:
        u = v & masks.get(ch, 0)
        v = ((v + u) | (v - u)) & full
        append(v)
    return rows


def _lcs_walk(a: bytes, b: bytes, rows, want_idx: bool, with_match_len: bool, min_match_len: int):
    """Walk the table back from the end, as Redis does, collecting the LCS and its ranges."""
    i = len(a)
    j = len(b)
    total = j - rows[i].bit_count()
    here = total  # LCS(i, j)
    chars = []
    matches = []
    open_range = False
    a_start = a_end = b_start = b_end = 0
    while i > 0 and j > 0:
        emit = False
        if a[i - 1] == b[j - 1]:
            chars.append(a[i - 1])
            if not open_range:
                open_range = True
                a_start = a_end = i - 1
                b_start = b_end = j - 1
            elif a_start == i and b_start == j:
                a_start -= 1
                b_start -= 1
            else:
                emit = True
            if a_start == 0 or b_start == 0:
                emit = True
            i -= 1
            j -= 1
            here -= 1
        else:
            row = rows[i]
            if (row >> (j - 1)) & 1:
                # LCS(i, j-1) == here: it can't be beaten by LCS(i-1, j).
                j -= 1
            else:
                # LCS(i, j-1) == here - 1; go up if LCS(i-1, j) is still ``here``.
                if j - (rows[i - 1] & ((1 << j) - 1)).bit_count() == here:
                    i -= 1
                else:
                    j -= 1
                    here -= 1
            if open_range:
                emit = True
        if emit:
            length = a_end - a_start + 1
            if want_idx and (min_match_len == 0 or length >= min_match_len):
                if with_match_len:
                    matches.append([[a_start, a_end], [b_start, b_end], length])
                else:
                    matches.append([[a_start, a_end], [b_start, b_end]])
            open_range = False
    if want_idx:
        return {b"matches": matches, b"len": total}
    chars.reverse()
    return bytes(chars)


# ------------------------------------------------- long double (x87) emulation
#
# A finite value is a pair (M, E) meaning M * 2**E, with |M| < 2**64; _LD_INF
# stands for either infinity (INCRBYFLOAT rejects both the same way).

_LD_INF = object()
_LD_MAX_TEXT = 5 * 1024  # Redis's MAX_LONG_DOUBLE_CHARS: longer inputs are rejected
_LD_MIN_EXP = -16445  # exponent of the smallest subnormal, 2**-16445
_LD_MAX_EXP = 16384 - 64  # largest E with a 64-bit M still finite

_LD_DECIMAL = re.compile(rb"([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?)(\d+))?")
_LD_HEX = re.compile(rb"([+-]?)0[xX]([0-9a-fA-F]*)(?:\.([0-9a-fA-F]*))?(?:[pP]([+-]?)(\d+))?")
_LD_INFINITY = re.compile(rb"[+-]?(?:inf|infinity)", re.IGNORECASE)
_TEN17 = 10**17


def _digits_to_int(digits: bytes) -> int:
    # int() refuses more than 4300 decimal digits; Decimal has no such limit.
    return int(digits) if len(digits) < 4000 else int(Decimal(digits.decode()))


def _int_to_digits(n: int) -> bytes:
    return b"%d" % n if n.bit_length() < 13000 else str(Decimal(n)).encode()


def _exponent(sign: bytes, digits: bytes) -> int:
    digits = digits.lstrip(b"0")
    value = 10**12 if len(digits) > 12 else int(digits or b"0")  # beyond any range either way
    return -value if sign == b"-" else value


def _ld_round(n: int, d: int, e2: int):
    """The long double nearest to ``n / d * 2**e2`` (n >= 0, d > 0): (M, E), or _LD_INF."""
    if n == 0:
        return 0, 0
    lb = n.bit_length() - d.bit_length()
    if (n << -lb if lb < 0 else n) < (d << lb if lb > 0 else d):
        lb -= 1
    # 2**lb <= n/d < 2**(lb+1): keep 64 significant bits, fewer if subnormal.
    exp = lb + e2 - 63
    if exp < _LD_MIN_EXP:
        exp = _LD_MIN_EXP
    shift = e2 - exp
    if shift >= 0:
        n <<= shift
    else:
        d <<= -shift
    q, r = divmod(n, d)
    r += r
    if r > d or (r == d and q & 1):
        q += 1
        if q >> 64:
            q >>= 1
            exp += 1
    if exp > _LD_MAX_EXP:
        return _LD_INF
    return q, exp


def ld_parse(text):
    """``text`` as Redis's string2ld reads it: (M, E), _LD_INF, or None if invalid.

    strtold over the whole text: decimal or hex notation, inf/infinity; no
    spaces, no NaN, and no result that overflowed or underflowed to zero.
    """
    if not text or len(text) >= _LD_MAX_TEXT:
        return None
    if type(text) is not bytes:
        text = bytes(text)
    m = _LD_DECIMAL.fullmatch(text)
    if m is not None:
        sign, whole, frac, exp_sign, exp_digits = m.groups()
        frac = frac or b""
        if not whole and not frac:
            return None
        digits = (whole + frac).lstrip(b"0")
        if not digits:
            return 0, 0
        k = -len(frac)
        if exp_digits is not None:
            k += _exponent(exp_sign, exp_digits)
        magnitude = len(digits) + k  # 10**(magnitude-1) <= value < 10**magnitude
        if magnitude > 4934:
            return None  # far beyond the largest long double: strtold overflows (ERANGE)
        if magnitude < -4952:
            return None  # far below half the smallest subnormal: underflows to zero (ERANGE)
        mantissa = _digits_to_int(digits)
        if k >= 0:
            result = _ld_round(mantissa * 10**k, 1, 0)
        else:
            result = _ld_round(mantissa, 10**-k, 0)
    else:
        m = _LD_HEX.fullmatch(text)
        if m is not None:
            sign, whole, frac, exp_sign, exp_digits = m.groups()
            frac = frac or b""
            if not whole and not frac:
                return None
            mantissa = int(whole + frac, 16)
            if not mantissa:
                return 0, 0
            e2 = -4 * len(frac)
            if exp_digits is not None:
                e2 += _exponent(exp_sign, exp_digits)
            top = mantissa.bit_length() + e2  # 2**(top-1) <= value < 2**top
            if top > 16400 or top < _LD_MIN_EXP - 8:
                return None  # far out of range either way: ERANGE
            result = _ld_round(mantissa, 1, e2)
        elif _LD_INFINITY.fullmatch(text):
            return _LD_INF
        else:
            return None
    if result is _LD_INF:
        return None  # strtold overflow: ERANGE with HUGE_VAL
    mant, exp = result
    if mant == 0:
        return None  # underflow to zero: ERANGE
    return (-mant, exp) if sign == b"-" else result


def ld_add(x, y):
    """The long double sum of two finite values: (M, E) or _LD_INF."""
    mx, ex = x
    my, ey = y
    if not mx:
        return y
    if not my:
        return x
    e = ex if ex < ey else ey
    total = (mx << (ex - e)) + (my << (ey - e))
    if total < 0:
        result = _ld_round(-total, 1, e)
        return result if result is _LD_INF else (-result[0], result[1])
    return _ld_round(total, 1, e)


def ld_format(value) -> bytes:
    """``%.17Lf`` of a finite value, trailing zeros (and a bare point) removed, ``-0`` as ``0``."""
    mant, exp = value
    negative = mant < 0
    if negative:
        mant = -mant
    if exp >= 0:
        text = _int_to_digits(mant << exp)
    else:
        shift = -exp
        scaled = mant * _TEN17
        q = scaled >> shift
        r = scaled - (q << shift)
        half = 1 << (shift - 1)
        if r > half or (r == half and q & 1):
            q += 1
        whole, frac = divmod(q, _TEN17)
        text = _int_to_digits(whole)
        if frac:
            text += (b".%017d" % frac).rstrip(b"0")
    if negative and text != b"0":
        text = b"-" + text
    return text
