"""Hash commands, with Redis 7.0's replies, errors, encodings and keyspace events.

Each handler follows the matching function of Redis 7.0's ``t_hash.c``: the
order of its checks decides which error a bad request gets (HINCRBY parses
the increment before looking at the key; HSET checks its argument count
before the key's type...).

Encoding (OBJECT ENCODING) follows ``hashTypeTryConversion``/``hashTypeSet``:
a hash stays ``listpack`` while it has at most ``hash-max-listpack-entries``
fields and no field or value written into it was longer than
``hash-max-listpack-value`` bytes; HSET/HSETNX check every argument up front
(even the values of fields that end up unchanged), HINCRBY/HINCRBYFLOAT check
the field and the new value. Once ``hashtable``, always ``hashtable``.

Storage: ``node.engine.hashvalue.HashValue`` (a dict in insertion order, which
is a listpack's order). Every in-place change ends with ``_changed`` (drops
the scan cache, counts the change, wakes WATCH) or ``db.set`` for a new key.
"""

from __future__ import annotations

from bisect import bisect_left
from itertools import islice

from node.commands.access import members_removed, read_value, write_value
from node.commands.args import NOT_FLOAT, SYNTAX_ERROR, WRONGTYPE, parse_int
from node.commands.keys import parse_scan_cursor
from node.commands.strings import _LD_INF, keyword, ld_add, ld_format, ld_parse
from node.commands.table import command
from node.debug_digest import VALUE_DIGESTERS, mix_digest, xor_digest
from node.engine.glob import compile_glob
from node.engine.hashvalue import HashValue
from node.engine.values import COPIERS, ENCODINGS, TYPE_NAMES
from node.notify import HASH, notify
from node.propagation import rewrite
from node.resp import OK, ErrorReply
from node.resp.parser import string2ll

_LLONG_MAX = 2**63 - 1
_LLONG_MIN = -(2**63)
_LONG_MAX = _LLONG_MAX

_NOT_INTEGER_HASH = ErrorReply("ERR hash value is not an integer")
_NOT_FLOAT_HASH = ErrorReply("ERR hash value is not a float")
_OVERFLOW = ErrorReply("ERR increment or decrement would overflow")
_NAN_OR_INF_ARG = ErrorReply("ERR value is NaN or Infinity")
_NAN_OR_INF = ErrorReply("ERR increment would produce NaN or Infinity")
_COUNT_RANGE = ErrorReply(
    f"ERR value is out of range, value must between {-_LONG_MAX} and {_LONG_MAX}"
)
_OUT_OF_RANGE = ErrorReply("ERR value is out of range")

OBJ_HASH = 4
_HRANDFIELD_SUB_STRATEGY_MUL = 3

# ------------------------------------------------------------- registration

TYPE_NAMES[HashValue] = b"hash"
ENCODINGS[HashValue] = lambda h: b"hashtable" if h.hashtable else b"listpack"
COPIERS[HashValue] = HashValue.copy


def _digest(digest: bytearray, h: HashValue) -> None:
    """Redis's xorObjectDigest for a hash: xor in, per field, mix(mix(0, field), value)."""
    for field, value in h.items():
        element = bytearray(20)
        mix_digest(element, field)
        mix_digest(element, value)
        xor_digest(digest, bytes(element))


VALUE_DIGESTERS[HashValue] = (OBJ_HASH, _digest)


# ------------------------------------------------------------------ helpers


def _limits(client) -> tuple[int, int]:
    config = client.node.config
    return config["hash-max-listpack-entries"], config["hash-max-listpack-value"]


def _changed(db, key: bytes, h: HashValue, created: bool, changes: int = 1) -> None:
    """Publish an in-place change (or the creation) of the hash at ``key``."""
    h.scan_cache = None
    if created:
        db.set(key, h)
        if changes > 1:
            db.dirty += changes - 1
    else:
        db.touch(key, changes)


def _hash_for_write(db, key: bytes) -> tuple[HashValue, bool]:
    """The hash at ``key`` (WRONGTYPE for another type) or a new one not stored yet; and whether it is new."""
    h = write_value(db, key, HashValue)
    if h is None:
        return HashValue(), True
    return h, False


def _store_incremented(client, key: bytes, h: HashValue, created: bool, field: bytes, text: bytes,
                       event: bytes) -> None:
    """HINCRBY/HINCRBYFLOAT: set ``field`` to ``text`` (listpack conversion checked before and after)."""
    max_entries, max_value = _limits(client)
    h.check_encoding(max_entries, max_value, len(field), len(text))
    h[field] = text
    h.check_encoding(max_entries, max_value)
    _changed(client.db, key, h, created)
    notify(client, HASH, event, key)


# ------------------------------------------------------------- HSET & co.


def _hset_generic(client, argv, name: str):
    argc = len(argv)
    if argc & 1:
        raise ErrorReply(f"ERR wrong number of arguments for '{name}' command")
    db = client.db
    key = argv[1]
    h, created = _hash_for_write(db, key)
    max_entries, max_value = _limits(client)
    if not h.hashtable:
        for i in range(2, argc):
            if len(argv[i]) > max_value:
                h.hashtable = True
                break
    added = 0
    for i in range(2, argc, 2):
        field = argv[i]
        if field not in h:
            added += 1
        h[field] = argv[i + 1]
    if not h.hashtable and len(h) > max_entries:
        h.hashtable = True
    _changed(db, key, h, created, (argc - 2) // 2)
    notify(client, HASH, b"hset", key)
    return added


@command("hset", -4, "write denyoom fast", (1, 1, 1), group="hash",
         summary="Set the string value of a hash field", since="2.0.0",
         complexity="O(1) for each field/value pair added, so O(N) to add N field/value pairs when the "
                    "command is called with multiple field/value pairs.")
def hset(client, argv):
    if len(argv) != 4:
        return _hset_generic(client, argv, "hset")
    # One field: _hset_generic's effects without its loops.
    db = client.db
    key = argv[1]
    field = argv[2]
    value = argv[3]
    h = db.lookup(key)
    created = h is None
    if created:
        h = HashValue()
    elif type(h) is not HashValue:
        raise WRONGTYPE
    if not h.hashtable:
        config = client.node.config.values
        max_value = config["hash-max-listpack-value"]
        if len(field) > max_value or len(value) > max_value:
            h.hashtable = True
    added = field not in h
    h[field] = value
    if not h.hashtable and len(h) > config["hash-max-listpack-entries"]:
        h.hashtable = True
    h.scan_cache = None
    if created:
        db.set(key, h)
    else:
        db.touch(key, 1)
    notify(client, HASH, b"hset", key)
    return 1 if added else 0


@command("hmset", -4, "write denyoom fast", (1, 1, 1), group="hash",
         summary="Set multiple hash fields to multiple values", since="2.0.0",
         complexity="O(N) where N is the number of fields being set.")
def hmset(client, argv):
    _hset_generic(client, argv, "hmset")
    return OK


@command("hsetnx", 4, "write denyoom fast", (1, 1, 1), group="hash",
         summary="Set the value of a hash field, only if the field does not exist", since="2.0.0",
         complexity="O(1)")
def hsetnx(client, argv):
    db = client.db
    key = argv[1]
    h, created = _hash_for_write(db, key)
    field = argv[2]
    if field in h:
        return 0
    max_entries, max_value = _limits(client)
    value = argv[3]
    h[field] = value
    h.check_encoding(max_entries, max_value, len(field), len(value))
    _changed(db, key, h, created)
    notify(client, HASH, b"hset", key)
    return 1


# ------------------------------------------------------------------ reads


@command("hget", 3, "readonly fast", (1, 1, 1), group="hash", summary="Get the value of a hash field",
         since="2.0.0", complexity="O(1)")
def hget(client, argv):
    h = read_value(client.db, argv[1], HashValue)
    if h is None:
        return None
    return h.get(argv[2])


@command("hmget", -3, "readonly fast", (1, 1, 1), group="hash",
         summary="Get the values of all the given hash fields", since="2.0.0",
         complexity="O(N) where N is the number of fields being requested.")
def hmget(client, argv):
    h = read_value(client.db, argv[1], HashValue)
    if h is None:
        return [None] * (len(argv) - 2)
    get = h.get
    return [get(field) for field in argv[2:]]


@command("hgetall", 2, "readonly", (1, 1, 1), group="hash", summary="Get all the fields and values in a hash",
         since="2.0.0", complexity="O(N) where N is the size of the hash.",
         tips=("nondeterministic_output_order",))
def hgetall(client, argv):
    h = read_value(client.db, argv[1], HashValue)
    return {} if h is None else dict(h)


@command("hkeys", 2, "readonly", (1, 1, 1), group="hash", summary="Get all the fields in a hash",
         since="2.0.0", complexity="O(N) where N is the size of the hash.",
         tips=("nondeterministic_output_order",))
def hkeys(client, argv):
    h = read_value(client.db, argv[1], HashValue)
    return [] if h is None else list(h)


@command("hvals", 2, "readonly", (1, 1, 1), group="hash", summary="Get all the values in a hash",
         since="2.0.0", complexity="O(N) where N is the size of the hash.",
         tips=("nondeterministic_output_order",))
def hvals(client, argv):
    h = read_value(client.db, argv[1], HashValue)
    return [] if h is None else list(h.values())


@command("hexists", 3, "readonly fast", (1, 1, 1), group="hash", summary="Determine if a hash field exists",
         since="2.0.0", complexity="O(1)")
def hexists(client, argv):
    h = read_value(client.db, argv[1], HashValue)
    return 1 if h is not None and argv[2] in h else 0


@command("hlen", 2, "readonly fast", (1, 1, 1), group="hash", summary="Get the number of fields in a hash",
         since="2.0.0", complexity="O(1)")
def hlen(client, argv):
    h = read_value(client.db, argv[1], HashValue)
    return 0 if h is None else len(h)


@command("hstrlen", 3, "readonly fast", (1, 1, 1), group="hash",
         summary="Get the length of the value of a hash field", since="3.2.0", complexity="O(1)")
def hstrlen(client, argv):
    h = read_value(client.db, argv[1], HashValue)
    if h is None:
        return 0
    value = h.get(argv[2])
    return 0 if value is None else len(value)


# ------------------------------------------------------------------ HDEL


@command("hdel", -3, "write fast", (1, 1, 1), group="hash", summary="Delete one or more hash fields",
         since="2.0.0", complexity="O(N) where N is the number of fields to be removed.")
def hdel(client, argv):
    db = client.db
    key = argv[1]
    h = write_value(db, key, HashValue)
    if h is None:
        return 0
    deleted = 0
    for field in argv[2:]:
        if field in h:
            del h[field]
            deleted += 1
            if not h:
                break
    if deleted:
        h.scan_cache = None
        members_removed(client, key, h, deleted, HASH, b"hdel")
    return deleted


# --------------------------------------------------------------- increments


@command("hincrby", 4, "write denyoom fast", (1, 1, 1), group="hash",
         summary="Increment the integer value of a hash field by the given number", since="2.0.0",
         complexity="O(1)")
def hincrby(client, argv):
    increment = parse_int(argv[3])
    db = client.db
    key = argv[1]
    h, created = _hash_for_write(db, key)
    field = argv[2]
    current = h.get(field)
    if current is None:
        value = 0
    else:
        value = string2ll(current)
        if value is None:
            raise _NOT_INTEGER_HASH
    result = value + increment
    if result > _LLONG_MAX or result < _LLONG_MIN:
        raise _OVERFLOW
    _store_incremented(client, key, h, created, field, b"%d" % result, b"hincrby")
    return result


@command("hincrbyfloat", 4, "write denyoom fast", (1, 1, 1), group="hash",
         summary="Increment the float value of a hash field by the given amount", since="2.6.0",
         complexity="O(1)")
def hincrbyfloat(client, argv):
    increment = ld_parse(argv[3])
    if increment is None:
        raise NOT_FLOAT
    if increment is _LD_INF:
        raise _NAN_OR_INF_ARG
    db = client.db
    key = argv[1]
    h, created = _hash_for_write(db, key)
    field = argv[2]
    current = h.get(field)
    if current is None:
        value = (0, 0)
    else:
        value = ld_parse(current)
        if value is None:
            raise _NOT_FLOAT_HASH
        if value is _LD_INF:
            raise _NAN_OR_INF
    total = ld_add(value, increment)
    if total is _LD_INF:
        raise _NAN_OR_INF
    text = ld_format(total)
    _store_incremented(client, key, h, created, field, text, b"hincrbyfloat")
    # Replicated as HSET of the result, so float formatting never differs on replay.
    rewrite(client, b"HSET", key, field, text)
    return text


# -------------------------------------------------------------- HRANDFIELD


def _field_at(h: HashValue, i: int) -> bytes:
    """The ``i``-th field: walked to in a (small) listpack hash, O(1) from the scan cache otherwise."""
    if not h.hashtable:
        return next(islice(h, i, None))
    return h.scan_order()[i][1]


@command("hrandfield", -2, "readonly", (1, 1, 1), group="hash",
         summary="Get one or multiple random fields from a hash", since="6.2.0",
         complexity="O(N) where N is the number of fields returned", tips=("nondeterministic_output",))
def hrandfield(client, argv):
    argc = len(argv)
    rng = client.node.rng
    if argc >= 3:
        count = parse_int(argv[2])
        if count < -_LONG_MAX:
            raise _COUNT_RANGE
        with_values = False
        if argc > 4 or (argc == 4 and keyword(argv[3]) != b"withvalues"):
            raise SYNTAX_ERROR
        if argc == 4:
            with_values = True
            if count < -(_LONG_MAX // 2) or count > _LONG_MAX // 2:
                raise _OUT_OF_RANGE
        return _hrandfield_count(client, argv[1], count, with_values, rng)
    h = read_value(client.db, argv[1], HashValue)
    if h is None:
        return None
    return _field_at(h, rng.randrange(len(h)))


def _hrandfield_count(client, key: bytes, count: int, with_values: bool, rng):
    h = read_value(client.db, key, HashValue)
    if h is None or count == 0:
        return []
    resp3 = client.resp3
    size = len(h)
    if count < 0 or count == 1:
        # Sampling with replacement, in random order.
        randrange = rng.randrange
        n = -count if count < 0 else 1
        if h.hashtable:
            order = h.scan_order()
            picks = [order[randrange(size)][1] for _ in range(n)]
        else:
            fields = list(h)
            picks = [fields[randrange(size)] for _ in range(n)]
        return _pairs_reply(h, picks, with_values, resp3)
    if count >= size:
        return _pairs_reply(h, list(h), with_values, resp3)
    if not h.hashtable and count * _HRANDFIELD_SUB_STRATEGY_MUL <= size:
        # Few of a listpack's fields: Redis samples them with lpRandomPairsUnique,
        # distinct fields in listpack order. (More than a third: a shuffled dict.)
        positions = sorted(rng.sample(range(size), count))
        fields = list(h)
        picks = [fields[i] for i in positions]
    elif not h.hashtable:
        fields = list(h)
        picks = [fields[i] for i in rng.sample(range(size), count)]
    else:
        order = h.scan_order()
        picks = [order[i][1] for i in rng.sample(range(size), count)]
    return _pairs_reply(h, picks, with_values, resp3)


def _pairs_reply(h: HashValue, fields: list, with_values: bool, resp3: bool) -> list:
    if not with_values:
        return fields
    if resp3:
        return [[f, h[f]] for f in fields]
    out = []
    append = out.append
    for f in fields:
        append(f)
        append(h[f])
    return out


# -------------------------------------------------------------------- HSCAN


def parse_scan_options(argv, start: int):
    """``scanGenericCommand``'s option loop for HSCAN/SSCAN/ZSCAN: (count, match or None)."""
    count = 10
    match = None
    argc = len(argv)
    i = start
    while i < argc:
        more = argc - i
        option = keyword(argv[i])
        if option == b"count" and more >= 2:
            count = parse_int(argv[i + 1])
            if count < 1:
                raise SYNTAX_ERROR
        elif option == b"match" and more >= 2:
            pattern = argv[i + 1]
            match = None if pattern == b"*" else compile_glob(pattern)
        else:
            raise SYNTAX_ERROR
        i += 2
    return count, match


def scan_page(order: list, cursor: int, count: int):
    """One page of a hash-ordered container: (next cursor, members).

    ``order`` is ``[(hash, member)]`` ascending; the cursor is the smallest
    hash not yet returned, so a member present for the whole iteration is
    returned exactly once however the container changes in between. Members
    sharing a hash are never split across pages.
    """
    n = len(order)
    i = bisect_left(order, (cursor,))
    j = min(i + count, n)
    while j < n and order[j][0] == order[j - 1][0]:
        j += 1
    page = [member for _, member in order[i:j]]
    return (order[j][0] if j < n else 0), page


@command("hscan", -3, "readonly", (1, 1, 1), group="hash",
         summary="Incrementally iterate hash fields and associated values", since="2.8.0",
         complexity="O(1) for every call. O(N) for a complete iteration, including enough command calls for "
                    "the cursor to return back to 0. N is the number of elements inside the collection..",
         tips=("nondeterministic_output",))
def hscan(client, argv):
    cursor = parse_scan_cursor(argv[2])
    h = read_value(client.db, argv[1], HashValue)
    if h is None:
        return [b"0", []]
    count, match = parse_scan_options(argv, 3)
    if not h.hashtable:
        fields = list(h)
        next_cursor = 0
    else:
        next_cursor, fields = scan_page(h.scan_order(), cursor, count)
    out = []
    append = out.append
    for field in fields:
        if match is not None and not match(field):
            continue
        append(field)
        append(h[field])
    return [b"%d" % next_cursor, out]
