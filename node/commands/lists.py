"""List commands, with Redis 7.0's replies, errors, keyspace events and blocking behaviour.

Storage: a list is a ``ListValue`` (``node.engine.listvalue``), a deque of
byte strings, mutated in place. An empty list is never stored: a command that
takes the last element deletes the key (and sends ``del``), as Redis does.

Argument checks run in Redis's order, which decides which error wins: LRANGE,
LTRIM and LREM parse their numbers before looking at the key, LINDEX and LSET
after; LPOP's count is checked before the key; LPOS parses all options first.

Blocking commands (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP) serve at once when
they can, answer their timeout reply at once inside MULTI or a script
(``client.deny_blocking``), and otherwise block through ``node.blocking``.
When a key they wait on changes, the same handler runs again
(``client.blocked`` is set then). Redis 7.0 serves a waiter from the key that
became ready -- not from the first non-empty key of its argument list -- and
only if that key now holds a list (a key that became a string keeps its
waiters waiting); the re-run does the same, using
``blocking.serving_key``.

``server.dirty`` is kept as Redis counts it: one per element pushed, popped or
removed (LMOVE counts one), not one per key write.
"""

from __future__ import annotations

from node.blocking import block_on_keys, parse_timeout
from node.commands.access import members_removed, read_value, write_value
from node.commands.args import SYNTAX_ERROR, parse_int
from node.commands.strings import keyword
from node.commands.table import command
from node.debug_digest import VALUE_DIGESTERS, mix_digest
from node.engine.listvalue import ListValue
from node.engine.values import COPIERS, ENCODINGS, TYPE_NAMES
from node.notify import GENERIC, LIST, notify
from node.propagation import rewrite
from node.resp import NULL_ARRAY, OK, ErrorReply
from node.resp.parser import string2ll

__all__ = ["ListValue"]

_OBJ_LIST = 1  # Redis's type number, for DEBUG DIGEST

TYPE_NAMES[ListValue] = b"list"
ENCODINGS[ListValue] = lambda value: b"quicklist"  # Redis 7.0 has no other list encoding
COPIERS[ListValue] = ListValue


def _digest(digest: bytearray, value: ListValue) -> None:
    # xorObjectDigest for a list: every element mixed in, head to tail.
    for item in value:
        mix_digest(digest, item)


VALUE_DIGESTERS[ListValue] = (_OBJ_LIST, _digest)

_NO_SUCH_KEY = ErrorReply("ERR no such key")
_INDEX_RANGE = ErrorReply("ERR index out of range")
_MUST_BE_POSITIVE = ErrorReply("ERR value is out of range, must be positive")
_RANK_ZERO = ErrorReply(
    "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... "
    "or use negative to start from the end of the list"
)
_COUNT_NEGATIVE = ErrorReply("ERR COUNT can't be negative")
_MAXLEN_NEGATIVE = ErrorReply("ERR MAXLEN can't be negative")
_NUMKEYS = ErrorReply("ERR numkeys should be greater than 0")
_MPOP_COUNT = ErrorReply("ERR count should be greater than 0")
_LLONG_MAX = 2**63 - 1


# ------------------------------------------------------------------ helpers


def _arity_error(name: str) -> ErrorReply:
    return ErrorReply(f"ERR wrong number of arguments for '{name}' command")


def _position(arg: bytes) -> bool:
    """LEFT -> True, RIGHT -> False (Redis's getListPositionFromObjectOrReply)."""
    word = keyword(arg)
    if word == b"left":
        return True
    if word == b"right":
        return False
    raise SYNTAX_ERROR


def _ranged(arg: bytes, low: int, error: ErrorReply) -> int:
    """getRangeLongFromObjectOrReply with a message: the same error for junk and out of range."""
    value = string2ll(arg)
    if value is None or value < low:
        raise error
    return value


def _served_list(client, key: bytes):
    """The list to serve from on a blocking re-run, or None (missing, or not a list any more)."""
    value = client.db.lookup(key)
    return value if type(value) is ListValue else None


def _serving_keys(client, keys):
    """Keys a blocking command may pop from: all of them, or on a re-run only the ready key."""
    key = client.node.blocking.serving_key
    return keys if key is None else (key,)


def _elements_removed(client, key: bytes, lst: ListValue, left: bool, count: int) -> None:
    """Events and bookkeeping after popping ``count`` elements (Redis's listElementsRemoved)."""
    members_removed(client, key, lst, count, LIST, b"lpop" if left else b"rpop")


def _new_list(db, key: bytes) -> ListValue:
    lst = ListValue()
    db.set(key, lst)
    return lst


# --------------------------------------------------------------------- push


def _push(client, argv, left: bool, only_existing: bool):
    db = client.db
    key = argv[1]
    lst = write_value(db, key, ListValue)
    before = db.dirty
    if lst is None:
        if only_existing:
            return 0
        lst = _new_list(db, key)
    else:
        db.touch(key, 0)
    if left:
        lst.extendleft(argv[2:])
    else:
        lst.extend(argv[2:])
    db.dirty = before + len(argv) - 2
    notify(client, LIST, b"lpush" if left else b"rpush", key)
    return len(lst)


@command("lpush", -3, "write denyoom fast", (1, 1, 1), group="list",
         summary="Prepend one or multiple elements to a list", since="1.0.0",
         complexity="O(1) for each element added, so O(N) to add N elements when the command is called "
                    "with multiple arguments.")
def lpush(client, argv):
    return _push(client, argv, True, False)


@command("rpush", -3, "write denyoom fast", (1, 1, 1), group="list",
         summary="Append one or multiple elements to a list", since="1.0.0",
         complexity="O(1) for each element added, so O(N) to add N elements when the command is called "
                    "with multiple arguments.")
def rpush(client, argv):
    return _push(client, argv, False, False)


@command("lpushx", -3, "write denyoom fast", (1, 1, 1), group="list",
         summary="Prepend an element to a list, only if the list exists", since="2.2.0",
         complexity="O(1) for each element added, so O(N) to add N elements when the command is called "
                    "with multiple arguments.")
def lpushx(client, argv):
    return _push(client, argv, True, True)


@command("rpushx", -3, "write denyoom fast", (1, 1, 1), group="list",
         summary="Append an element to a list, only if the list exists", since="2.2.0",
         complexity="O(1) for each element added, so O(N) to add N elements when the command is called "
                    "with multiple arguments.")
def rpushx(client, argv):
    return _push(client, argv, False, True)


# ---------------------------------------------------------------------- pop


def _pop(client, argv, left: bool):
    argc = len(argv)
    if argc > 3:
        return _arity_error("lpop" if left else "rpop")
    count = None
    if argc == 3:
        count = _ranged(argv[2], 0, _MUST_BE_POSITIVE)
    db = client.db
    key = argv[1]
    lst = write_value(db, key, ListValue)
    if lst is None:
        return None if count is None else NULL_ARRAY
    if count is None:
        value = lst.popleft() if left else lst.pop()
        _elements_removed(client, key, lst, left, 1)
        return value
    if count == 0:
        return []
    items = lst.pop_many(count, left)
    _elements_removed(client, key, lst, left, len(items))
    return items


@command("lpop", -2, "write fast", (1, 1, 1), group="list",
         summary="Remove and get the first elements in a list", since="1.0.0",
         complexity="O(N) where N is the number of elements returned")
def lpop(client, argv):
    return _pop(client, argv, True)


@command("rpop", -2, "write fast", (1, 1, 1), group="list",
         summary="Remove and get the last elements in a list", since="1.0.0",
         complexity="O(N) where N is the number of elements returned")
def rpop(client, argv):
    return _pop(client, argv, False)


# -------------------------------------------------------------------- reads


@command("llen", 2, "readonly fast", (1, 1, 1), group="list", summary="Get the length of a list",
         since="1.0.0", complexity="O(1)")
def llen(client, argv):
    lst = read_value(client.db, argv[1], ListValue)
    return 0 if lst is None else len(lst)


@command("lindex", 3, "readonly", (1, 1, 1), group="list", summary="Get an element from a list by its index",
         since="1.0.0",
         complexity="O(N) where N is the number of elements to traverse to get to the element at index. This "
                    "makes asking for the first or the last element of the list O(1).")
def lindex(client, argv):
    lst = read_value(client.db, argv[1], ListValue)
    if lst is None:
        return None
    return lst.get(parse_int(argv[2]))


@command("lrange", 4, "readonly", (1, 1, 1), group="list", summary="Get a range of elements from a list",
         since="1.0.0",
         complexity="O(S+N) where S is the distance of start offset from HEAD for small lists, from nearest "
                    "end (HEAD or TAIL) for large lists; and N is the number of elements in the specified range.")
def lrange(client, argv):
    start = parse_int(argv[2])
    end = parse_int(argv[3])
    lst = read_value(client.db, argv[1], ListValue)
    if lst is None:
        return []
    return lst.range(start, end)


_LPOS_OPTIONS = {b"rank", b"count", b"maxlen"}


@command("lpos", -3, "readonly", (1, 1, 1), group="list",
         summary="Return the index of matching elements on a list", since="6.0.6",
         complexity="O(N) where N is the number of elements in the list, for the average case. When searching "
                    "for elements near the head or the tail of the list, or when the MAXLEN option is provided, "
                    "the command may run in constant time.")
def lpos(client, argv):
    rank, count, maxlen = 1, -1, 0
    argc = len(argv)
    j = 3
    while j < argc:
        opt = keyword(argv[j])
        if opt not in _LPOS_OPTIONS or j + 1 >= argc:
            raise SYNTAX_ERROR
        j += 1
        if opt == b"rank":
            rank = parse_int(argv[j])
            if rank == 0:
                raise _RANK_ZERO
        elif opt == b"count":
            count = _ranged(argv[j], 0, _COUNT_NEGATIVE)
        else:
            maxlen = _ranged(argv[j], 0, _MAXLEN_NEGATIVE)
        j += 1
    lst = read_value(client.db, argv[1], ListValue)
    if lst is None:
        return [] if count != -1 else None
    found = lst.positions(argv[2], rank, count, maxlen)
    if count != -1:
        return found
    return found[0] if found else None


# ------------------------------------------------------------------- writes


@command("lset", 4, "write denyoom", (1, 1, 1), group="list",
         summary="Set the value of an element in a list by its index", since="1.0.0",
         complexity="O(N) where N is the length of the list. Setting either the first or the last element of "
                    "the list is O(1).")
def lset(client, argv):
    db = client.db
    key = argv[1]
    lst = write_value(db, key, ListValue)
    if lst is None:
        raise _NO_SUCH_KEY
    if not lst.set_at(parse_int(argv[2]), argv[3]):
        raise _INDEX_RANGE
    db.touch(key)
    notify(client, LIST, b"lset", key)
    return OK


@command("linsert", 5, "write denyoom", (1, 1, 1), group="list",
         summary="Insert an element before or after another element in a list", since="2.2.0",
         complexity="O(N) where N is the number of elements to traverse before seeing the value pivot. This "
                    "means that inserting somewhere on the left end on the list (head) can be considered O(1) and "
                    "inserting somewhere on the right end (tail) is O(N).")
def linsert(client, argv):
    where = keyword(argv[2])
    if where == b"after":
        after = True
    elif where == b"before":
        after = False
    else:
        raise SYNTAX_ERROR
    db = client.db
    key = argv[1]
    lst = write_value(db, key, ListValue)
    if lst is None:
        return 0
    if not lst.insert_at_pivot(argv[3], argv[4], after):
        return -1
    db.touch(key)
    notify(client, LIST, b"linsert", key)
    return len(lst)


@command("lrem", 4, "write", (1, 1, 1), group="list", summary="Remove elements from a list", since="1.0.0",
         complexity="O(N+M) where N is the length of the list and M is the number of elements removed.")
def lrem(client, argv):
    count = parse_int(argv[2])
    db = client.db
    key = argv[1]
    lst = write_value(db, key, ListValue)
    if lst is None:
        return 0
    removed = lst.remove_matches(argv[3], count)
    if removed:
        members_removed(client, key, lst, removed, LIST, b"lrem")
    return removed


@command("ltrim", 4, "write", (1, 1, 1), group="list", summary="Trim a list to the specified range",
         since="1.0.0", complexity="O(N) where N is the number of elements to be removed by the operation.")
def ltrim(client, argv):
    start = parse_int(argv[2])
    end = parse_int(argv[3])
    db = client.db
    key = argv[1]
    lst = write_value(db, key, ListValue)
    if lst is None:
        return OK
    removed = lst.trim(start, end)
    before = db.dirty
    notify(client, LIST, b"ltrim", key)
    if lst:
        db.touch(key, 0)
    else:
        db.delete(key)
        notify(client, GENERIC, b"del", key)
    db.dirty = before + removed
    return OK


# --------------------------------------------------------------------- move


def _move(client, src_key: bytes, dst_key: bytes, src: ListValue, from_left: bool, to_left: bool):
    """LMOVE once the source is known to hold elements (Redis's lmoveGenericCommand)."""
    db = client.db
    dst = write_value(db, dst_key, ListValue)
    before = db.dirty
    value = src.popleft() if from_left else src.pop()
    if dst is None:
        dst = _new_list(db, dst_key)
    else:
        db.touch(dst_key, 0)
    if to_left:
        dst.appendleft(value)
    else:
        dst.append(value)
    notify(client, LIST, b"lpush" if to_left else b"rpush", dst_key)
    notify(client, LIST, b"lpop" if from_left else b"rpop", src_key)
    if src:
        db.touch(src_key, 0)
    else:
        db.delete(src_key)
        notify(client, GENERIC, b"del", src_key)
    db.dirty = before + 1
    return value


def _lmove(client, argv, from_left: bool, to_left: bool):
    src = write_value(client.db, argv[1], ListValue)
    if src is None:
        return None
    return _move(client, argv[1], argv[2], src, from_left, to_left)


@command("lmove", 5, "write denyoom", (1, 2, 1), group="list",
         summary="Pop an element from a list, push it to another list and return it", since="6.2.0",
         complexity="O(1)")
def lmove(client, argv):
    from_left = _position(argv[3])
    to_left = _position(argv[4])
    return _lmove(client, argv, from_left, to_left)


@command("rpoplpush", 3, "write denyoom", (1, 2, 1), group="list",
         summary="Remove the last element in a list, prepend it to another list and return it",
         since="1.2.0", complexity="O(1)")
def rpoplpush(client, argv):
    return _lmove(client, argv, False, True)


# -------------------------------------------------------------------- LMPOP


def _mpop_keys(numkeys_index: int):
    """COMMAND GETKEYS for LMPOP/BLMPOP: the numkeys keys after the numkeys argument."""

    def finder(argv):
        numkeys = string2ll(argv[numkeys_index])
        first = numkeys_index + 1
        if numkeys is None or numkeys < 0 or first + numkeys > len(argv):
            return []
        return argv[first : first + numkeys]

    return finder


def _parse_mpop(argv, numkeys_index: int):
    """numkeys, the keys, the side and COUNT, with Redis's errors in its order."""
    numkeys = _ranged(argv[numkeys_index], 1, _NUMKEYS)
    where_index = numkeys_index + numkeys + 1
    if where_index >= len(argv):
        raise SYNTAX_ERROR
    left = _position(argv[where_index])
    count = -1
    j = where_index + 1
    argc = len(argv)
    while j < argc:
        if count == -1 and keyword(argv[j]) == b"count" and j + 1 < argc:
            j += 1
            count = _ranged(argv[j], 1, _MPOP_COUNT)
        else:
            raise SYNTAX_ERROR
        j += 1
    keys = argv[numkeys_index + 1 : where_index]
    return keys, left, 1 if count == -1 else count


def _pop_range_with_key(client, key: bytes, lst: ListValue, left: bool, count: int):
    items = lst.pop_many(count, left)
    _elements_removed(client, key, lst, left, len(items))
    # LMPOP/BLMPOP replicate as [LR]POP key <elements popped>.
    rewrite(client, b"LPOP" if left else b"RPOP", key, b"%d" % len(items))
    return [key, items]


@command("lmpop", -4, "write", group="list", key_finder=_mpop_keys(1),
         summary="Pop elements from a list", since="7.0.0",
         complexity="O(N+M) where N is the number of provided keys and M is the number of elements returned.")
def lmpop(client, argv):
    keys, left, count = _parse_mpop(argv, 1)
    db = client.db
    for key in keys:
        lst = write_value(db, key, ListValue)
        if lst is not None:
            return _pop_range_with_key(client, key, lst, left, count)
    return NULL_ARRAY


# ----------------------------------------------------------------- blocking


def _blocking_pop(client, argv, keys, left: bool, deadline: int, count: int | None):
    """BLPOP/BRPOP/BLMPOP once the arguments are parsed (Redis's blockingPopGenericCommand)."""
    db = client.db
    if client.blocked is None:
        for key in keys:
            lst = write_value(db, key, ListValue)
            if lst is not None:
                return _serve_pop(client, key, lst, left, count)
        if client.deny_blocking:
            return NULL_ARRAY
        return block_on_keys(client, argv, keys, deadline, NULL_ARRAY)
    for key in _serving_keys(client, keys):
        lst = _served_list(client, key)
        if lst is not None:
            return _serve_pop(client, key, lst, left, count)
    return block_on_keys(client, argv, keys, deadline, NULL_ARRAY)


def _serve_pop(client, key: bytes, lst: ListValue, left: bool, count: int | None):
    if count is not None:
        return _pop_range_with_key(client, key, lst, left, count)
    value = lst.popleft() if left else lst.pop()
    _elements_removed(client, key, lst, left, 1)
    rewrite(client, b"LPOP" if left else b"RPOP", key)  # BLPOP/BRPOP replicate as LPOP/RPOP
    return [key, value]


@command("blpop", -3, "write noscript blocking", (1, -2, 1), group="list",
         summary="Remove and get the first element in a list, or block until one is available", since="2.0.0",
         complexity="O(N) where N is the number of provided keys.")
def blpop(client, argv):
    deadline = parse_timeout(client, argv[-1])
    return _blocking_pop(client, argv, argv[1:-1], True, deadline, None)


@command("brpop", -3, "write noscript blocking", (1, -2, 1), group="list",
         summary="Remove and get the last element in a list, or block until one is available", since="2.0.0",
         complexity="O(N) where N is the number of provided keys.")
def brpop(client, argv):
    deadline = parse_timeout(client, argv[-1])
    return _blocking_pop(client, argv, argv[1:-1], False, deadline, None)


@command("blmpop", -5, "write blocking", group="list", key_finder=_mpop_keys(2),
         summary="Pop elements from a list, or block until one is available", since="7.0.0",
         complexity="O(N+M) where N is the number of provided keys and M is the number of elements returned.")
def blmpop(client, argv):
    keys, left, count = _parse_mpop(argv, 2)
    deadline = parse_timeout(client, argv[1])
    return _blocking_pop(client, argv, keys, left, deadline, count)


def _blocking_move(client, argv, from_left: bool, to_left: bool, deadline: int):
    """BLMOVE/BRPOPLPUSH once the arguments are parsed (Redis's blmoveGenericCommand).

    Inside MULTI the immediate answer is a null bulk, but a timeout answers a
    null array: Redis 7.0 replies to every timed-out list waiter that way.
    """
    src_key = argv[1]
    if client.blocked is None:
        src = write_value(client.db, src_key, ListValue)
        if src is None:
            if client.deny_blocking:
                return None
            return block_on_keys(client, argv, (src_key,), deadline, NULL_ARRAY)
        served = False
    else:
        src = _served_list(client, src_key)
        if src is None:
            return block_on_keys(client, argv, (src_key,), deadline, NULL_ARRAY)
        served = True
    value = _move(client, src_key, argv[2], src, from_left, to_left)
    # Replicated as the non-blocking form. Redis 7.0 keeps the client's LEFT/RIGHT words when
    # BLMOVE is served at once, and writes lower-case ones when it serves a blocked client.
    if len(argv) == 4:
        rewrite(client, b"RPOPLPUSH", src_key, argv[2])
    elif served:
        rewrite(client, b"LMOVE", src_key, argv[2], b"left" if from_left else b"right",
                b"left" if to_left else b"right")
    else:
        rewrite(client, b"LMOVE", src_key, argv[2], argv[3], argv[4])
    return value


@command("blmove", 6, "write denyoom noscript blocking", (1, 2, 1), group="list",
         summary="Pop an element from a list, push it to another list and return it; or block until one is "
                 "available", since="6.2.0", complexity="O(1)")
def blmove(client, argv):
    from_left = _position(argv[3])
    to_left = _position(argv[4])
    deadline = parse_timeout(client, argv[5])
    return _blocking_move(client, argv, from_left, to_left, deadline)


@command("brpoplpush", 4, "write denyoom noscript blocking", (1, 2, 1), group="list",
         summary="Pop an element from a list, push it to another list and return it; or block until one is "
                 "available", since="2.2.0", complexity="O(1)")
def brpoplpush(client, argv):
    deadline = parse_timeout(client, argv[3])
    return _blocking_move(client, argv, False, True, deadline)
