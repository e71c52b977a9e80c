"""Generic key commands: DEL EXISTS TYPE RENAME COPY MOVE, TTLs, KEYS SCAN RANDOMKEY, OBJECT.

Each follows the matching function of Redis 7.0's ``db.c``/``expire.c``/
``object.c`` step by step, because the order of checks decides which error a
bad request gets (EXPIRE validates its options before its number, COPY its
options before the keys...).

Which lookup a command uses matters too: read commands (EXISTS, TYPE, TTL,
OBJECT, COPY's source) go through ``lookup_read`` and count keyspace hits and
misses, write commands use ``lookup`` and count nothing, as Redis's
``lookupKeyRead``/``lookupKeyWrite`` do.
"""

from __future__ import annotations

from node.commands.args import SYNTAX_ERROR, parse_int
from node.commands.table import command, container
from node.engine.glob import compile_glob
from node.engine.values import TYPE_NAMES, copy_value, object_encoding, string_encoding
from node.notify import GENERIC, notify, notify_db
from node.propagation import rewrite
from node.resp import OK, ErrorReply, SimpleString

_LLONG_MAX = 2**63 - 1
_LLONG_MIN = -(2**63)
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1
_ULONG_MAX = 2**64 - 1

_NO_SUCH_KEY = ErrorReply("ERR no such key")
_SAME_OBJECT = ErrorReply("ERR source and destination objects are the same")
_DB_RANGE = ErrorReply("ERR DB index is out of range")
_INVALID_CURSOR = ErrorReply("ERR invalid cursor")
_INT_RANGE = ErrorReply(f"ERR value is out of range, value must between {_INT_MIN} and {_INT_MAX}")
_NONE = SimpleString(b"none")

# Redis shares the integer objects 0..9999 (OBJ_SHARED_INTEGERS) unless an LRU
# or LFU policy needs per-object access data; shared objects report INT_MAX refs.
_SHARED_INTEGERS = 10000
_PER_OBJECT_POLICIES = frozenset(("volatile-lru", "volatile-lfu", "allkeys-lru", "allkeys-lfu"))
_LFU_POLICIES = frozenset(("volatile-lfu", "allkeys-lfu"))


def _cstr(data: bytes) -> str:
    """``data`` as C's ``%s`` prints it (up to the first NUL)."""
    nul = data.find(b"\0")
    return (data if nul == -1 else data[:nul]).decode("utf-8", "surrogateescape")


def _option(arg: bytes) -> bytes:
    """An option word as Redis's ``strcasecmp`` sees it: lower case, cut at the first NUL."""
    nul = arg.find(b"\0")
    return (arg if nul == -1 else arg[:nul]).lower()


def _parse_db_index(client, data: bytes):
    """Redis's ``getIntFromObjectOrReply`` + ``selectDb``: the target Database."""
    index = parse_int(data)
    if index < _INT_MIN or index > _INT_MAX:
        raise _INT_RANGE
    dbs = client.node.dbs
    if index < 0 or index >= len(dbs):
        raise _DB_RANGE
    return dbs[index]


# --------------------------------------------------------------- existence


@command("del", -2, "write", (1, -1, 1), summary="Delete a key", since="1.0.0",
         tips=("request_policy:multi_shard", "response_policy:agg_sum"))
def del_(client, argv):
    return _delete_keys(client, argv)


def _delete_keys(client, argv) -> int:
    delete = client.db.delete
    if not client.node.notify_flags:
        return sum(1 for key in argv[1:] if delete(key))
    deleted = 0
    for key in argv[1:]:
        if delete(key):
            deleted += 1
            notify(client, GENERIC, b"del", key)
    return deleted


@command("unlink", -2, "write fast", (1, -1, 1), since="4.0.0",
         summary="Delete a key asynchronously in another thread. Otherwise it is just as DEL, but non blocking.",
         tips=("request_policy:multi_shard", "response_policy:agg_sum"))
def unlink(client, argv):
    # Values are freed by the garbage collector either way: UNLINK is DEL.
    return _delete_keys(client, argv)


@command("exists", -2, "readonly fast", (1, -1, 1), summary="Determine if a key exists", since="1.0.0",
         tips=("request_policy:multi_shard", "response_policy:agg_sum"))
def exists(client, argv):
    lookup = client.db.lookup_read
    return sum(1 for key in argv[1:] if lookup(key) is not None)


@command("touch", -2, "readonly fast", (1, -1, 1), since="3.2.1",
         summary="Alters the last access time of a key(s). Returns the number of existing keys specified.",
         tips=("request_policy:multi_shard", "response_policy:agg_sum"))
def touch(client, argv):
    lookup = client.db.lookup_read
    return sum(1 for key in argv[1:] if lookup(key) is not None)


@command("type", 2, "readonly fast", (1, 1, 1), summary="Determine the type stored at key", since="1.0.0")
def type_(client, argv):
    value = client.db.lookup_read(argv[1])
    if value is None:
        return _NONE
    return SimpleString(TYPE_NAMES[type(value)])


# ------------------------------------------------------------ moving keys


def _rename(client, argv, nx: bool):
    db = client.db
    src, dst = argv[1], argv[2]
    value = db.lookup(src)
    if value is None:
        raise _NO_SUCH_KEY
    if src == dst:
        return 0 if nx else OK
    when = db.get_expire(src)
    if db.lookup(dst) is not None:
        if nx:
            return 0
        db.delete(dst)
    db.set(dst, value)
    if when is not None:
        db.set_expire(dst, when)
    db.delete(src)
    notify(client, GENERIC, b"rename_from", src)
    notify(client, GENERIC, b"rename_to", dst)
    return 1 if nx else OK


@command("rename", 3, "write", (1, 2, 1), summary="Rename a key", since="1.0.0")
def rename(client, argv):
    return _rename(client, argv, nx=False)


@command("renamenx", 3, "write fast", (1, 2, 1), since="1.0.0",
         summary="Rename a key, only if the new key does not exist")
def renamenx(client, argv):
    return _rename(client, argv, nx=True)


@command("copy", -3, "write denyoom", (1, 2, 1), summary="Copy a key", since="6.2.0")
def copy_(client, argv):
    src_db = dst_db = client.db
    replace = False
    i = 3
    while i < len(argv):
        option = _option(argv[i])
        if option == b"replace":
            replace = True
        elif option == b"db" and i + 1 < len(argv):
            dst_db = _parse_db_index(client, argv[i + 1])
            i += 1
        else:
            raise SYNTAX_ERROR
        i += 1
    if client.node.cluster_enabled and (src_db.index != 0 or dst_db.index != 0):
        raise ErrorReply("ERR Copying to another database is not allowed in cluster mode")
    src, dst = argv[1], argv[2]
    if src_db is dst_db and src == dst:
        raise _SAME_OBJECT
    value = src_db.lookup_read(src)
    if value is None:
        return 0
    when = src_db.get_expire(src)
    if dst_db.lookup(dst) is not None:
        if not replace:
            return 0
        dst_db.delete(dst)
    dst_db.set(dst, copy_value(value))
    if when is not None:
        dst_db.set_expire(dst, when)
    notify_db(client.node, GENERIC, b"copy_to", dst, dst_db.index)
    return 1


@command("move", 3, "write fast", (1, 1, 1), summary="Move a key to another database", since="1.0.0")
def move(client, argv):
    if client.node.cluster_enabled:
        raise ErrorReply("ERR MOVE is not allowed in cluster mode")
    src_db = client.db
    dst_db = _parse_db_index(client, argv[2])
    if dst_db is src_db:
        raise _SAME_OBJECT
    key = argv[1]
    value = src_db.lookup(key)
    if value is None:
        return 0
    when = src_db.get_expire(key)
    if dst_db.lookup(key) is not None:
        return 0
    dst_db.set(key, value)
    if when is not None:
        dst_db.set_expire(key, when)
    src_db.delete(key)
    notify(client, GENERIC, b"move_from", key)
    notify_db(client.node, GENERIC, b"move_to", key, dst_db.index)
    return 1


# ----------------------------------------------------------------- expiry

_NX, _XX, _GT, _LT = 1, 2, 4, 8
_EXPIRE_FLAGS = {b"nx": _NX, b"xx": _XX, b"gt": _GT, b"lt": _LT}


def _expire_flags(argv) -> int:
    """Redis's ``parseExtendedExpireArgumentsOrReply``."""
    flags = 0
    for arg in argv[3:]:
        flag = _EXPIRE_FLAGS.get(_option(arg))
        if flag is None:
            raise ErrorReply(f"ERR Unsupported option {_cstr(arg)}")
        flags |= flag
    if flags & _NX and flags & (_XX | _GT | _LT):
        raise ErrorReply("ERR NX and XX, GT or LT options at the same time are not compatible")
    if flags & _GT and flags & _LT:
        raise ErrorReply("ERR GT and LT options at the same time are not compatible")
    return flags


def _expire_generic(client, argv, relative: bool, seconds: bool, name: str):
    """Redis's ``expireGenericCommand``: options, then the number, then the key."""
    flags = _expire_flags(argv)
    when = parse_int(argv[2])
    if seconds:
        # C's LLONG_MIN / 1000 truncates toward zero.
        if when > _LLONG_MAX // 1000 or when < -(-_LLONG_MIN // 1000):
            raise ErrorReply(f"ERR invalid expire time in '{name}' command")
        when *= 1000
    db = client.db
    now = db.now()
    base = now if relative else 0
    if when > _LLONG_MAX - base:
        raise ErrorReply(f"ERR invalid expire time in '{name}' command")
    when += base
    key = argv[1]
    if db.lookup(key) is None:
        return 0
    if flags:
        current = db.get_expire(key)
        if flags & _NX and current is not None:
            return 0
        if flags & _XX and current is None:
            return 0
        if flags & _GT and (current is None or when <= current):
            return 0
        if flags & _LT and current is not None and when >= current:
            return 0
    if when <= now:
        # Already in the past: the key goes now, as a DEL (not counted as expired).
        db.delete(key)
        notify(client, GENERIC, b"del", key)
        # Replicas and the AOF get the deletion itself, never a TTL to re-evaluate.
        if client.node.propagation.enabled:
            rewrite(client, b"UNLINK" if client.node.config["lazyfree-lazy-expire"] else b"DEL", key)
        return 1
    db.set_expire(key, when)
    notify(client, GENERIC, b"expire", key)
    if (relative or seconds) and client.node.propagation.enabled:
        # Propagated as PEXPIREAT <absolute ms>, options kept (PEXPIREAT itself goes as sent).
        rewrite(client, b"PEXPIREAT", key, b"%d" % when, *argv[3:])
    return 1


@command("expire", -3, "write fast", (1, 1, 1), summary="Set a key's time to live in seconds", since="1.0.0")
def expire(client, argv):
    return _expire_generic(client, argv, relative=True, seconds=True, name="expire")


@command("pexpire", -3, "write fast", (1, 1, 1), summary="Set a key's time to live in milliseconds",
         since="2.6.0")
def pexpire(client, argv):
    return _expire_generic(client, argv, relative=True, seconds=False, name="pexpire")


@command("expireat", -3, "write fast", (1, 1, 1), summary="Set the expiration for a key as a UNIX timestamp",
         since="1.2.0")
def expireat(client, argv):
    return _expire_generic(client, argv, relative=False, seconds=True, name="expireat")


@command("pexpireat", -3, "write fast", (1, 1, 1), since="2.6.0",
         summary="Set the expiration for a key as a UNIX timestamp specified in milliseconds")
def pexpireat(client, argv):
    return _expire_generic(client, argv, relative=False, seconds=False, name="pexpireat")


def _ttl_generic(client, argv, in_ms: bool, absolute: bool) -> int:
    """Redis's ``ttlGenericCommand``: -2 no key, -1 no TTL, seconds round to nearest."""
    db = client.db
    key = argv[1]
    if db.lookup_read(key) is None:
        return -2
    when = db.get_expire(key)
    if when is None:
        return -1
    ttl = when if absolute else when - db.now()
    if ttl < 0:
        ttl = 0
    return ttl if in_ms else (ttl + 500) // 1000


@command("ttl", 2, "readonly fast", (1, 1, 1), summary="Get the time to live for a key in seconds",
         since="1.0.0", tips=("nondeterministic_output",))
def ttl(client, argv):
    return _ttl_generic(client, argv, in_ms=False, absolute=False)


@command("pttl", 2, "readonly fast", (1, 1, 1), summary="Get the time to live for a key in milliseconds",
         since="2.6.0", tips=("nondeterministic_output",))
def pttl(client, argv):
    return _ttl_generic(client, argv, in_ms=True, absolute=False)


@command("expiretime", 2, "readonly fast", (1, 1, 1), summary="Get the expiration Unix timestamp for a key",
         since="7.0.0")
def expiretime(client, argv):
    return _ttl_generic(client, argv, in_ms=False, absolute=True)


@command("pexpiretime", 2, "readonly fast", (1, 1, 1), since="7.0.0",
         summary="Get the expiration Unix timestamp for a key in milliseconds")
def pexpiretime(client, argv):
    return _ttl_generic(client, argv, in_ms=True, absolute=True)


@command("persist", 2, "write fast", (1, 1, 1), summary="Remove the expiration from a key", since="2.2.0")
def persist(client, argv):
    db = client.db
    if db.lookup(argv[1]) is None:
        return 0
    if not db.persist(argv[1]):
        return 0
    notify(client, GENERIC, b"persist", argv[1])
    return 1


# ------------------------------------------------------------- iteration


@command("keys", 2, "readonly", acl=("dangerous",), summary="Find all keys matching the given pattern",
         since="1.0.0", tips=("request_policy:all_shards", "nondeterministic_output_order"))
def keys(client, argv):
    pattern = argv[1]
    return client.db.keys(None if pattern == b"*" else compile_glob(pattern))


def parse_scan_cursor(data: bytes) -> int:
    """Redis's ``parseScanCursorOrReply``: C ``strtoul`` over the C string.

    So: no leading space, an optional sign (``-1`` wraps to 2**64-1), digits up
    to the first NUL, and an empty string reads as cursor 0.
    """
    nul = data.find(b"\0")
    if nul != -1:
        data = data[:nul]
    if not data:
        return 0
    if data[:1] in (b" ", b"\t", b"\n", b"\v", b"\f", b"\r"):
        raise _INVALID_CURSOR
    sign = 1
    digits = data
    if data[:1] in (b"+", b"-"):
        sign = -1 if data[:1] == b"-" else 1
        digits = data[1:]
    if not digits or not digits.isdigit() or not digits.isascii():
        raise _INVALID_CURSOR
    value = int(digits)
    if value > _ULONG_MAX:
        raise _INVALID_CURSOR
    return value if sign > 0 else (-value) & _ULONG_MAX


@command("scan", -2, "readonly", summary="Incrementally iterate the keys space", since="2.8.0",
         tips=("nondeterministic_output", "request_policy:special"))
def scan(client, argv):
    cursor = parse_scan_cursor(argv[1])
    count = 10
    match = None
    type_name = None
    i = 2
    while i < len(argv):
        option = _option(argv[i])
        if i + 1 >= len(argv):
            raise SYNTAX_ERROR
        if option == b"count":
            count = parse_int(argv[i + 1])
            if count < 1:
                raise SYNTAX_ERROR
        elif option == b"match":
            pattern = argv[i + 1]
            match = None if pattern == b"*" else compile_glob(pattern)
        elif option == b"type":
            type_name = _option(argv[i + 1])
        else:
            raise SYNTAX_ERROR
        i += 2
    next_cursor, found = client.db.scan(cursor, count, match, type_name)
    return [b"%d" % next_cursor, found]


@command("randomkey", 1, "readonly", summary="Return a random key from the keyspace", since="1.0.0",
         tips=("request_policy:all_shards", "nondeterministic_output"))
def randomkey(client, argv):
    return client.db.random_key(client.node.rng)


# ------------------------------------------------------------------ OBJECT

container("object", -2, summary="A container for object introspection commands", since="2.2.3")

_OBJECT_HELP = [
    b"OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    b"ENCODING <key>",
    b"    Return the kind of internal representation used in order to store the value",
    b"    associated with a <key>.",
    b"FREQ <key>",
    b"    Return the access frequency index of the <key>. The returned integer is",
    b"    proportional to the logarithm of the recent access frequency of the key.",
    b"IDLETIME <key>",
    b"    Return the idle time of the <key>, that is the approximated number of",
    b"    seconds elapsed since the last access to the key.",
    b"REFCOUNT <key>",
    b"    Return the number of references of the value associated with the specified",
    b"    <key>.",
    b"HELP",
    b"    Prints this help.",
]

_POLICY_SWITCH_NOTE = (
    "Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust."
)


@command("help", 2, "loading stale", parent="object", summary="Show helpful text about the different subcommands",
         since="6.2.0")
def object_help(client, argv):
    return [SimpleString(line) for line in _OBJECT_HELP]


@command("encoding", 3, "readonly", (2, 2, 1), parent="object", since="2.2.3",
         summary="Inspect the internal encoding of a Redis object", tips=("nondeterministic_output",))
def object_encoding_(client, argv):
    value = client.db.lookup_read(argv[2])
    return None if value is None else object_encoding(value)


@command("freq", 3, "readonly", (2, 2, 1), parent="object", since="4.0.0",
         summary="Get the logarithmic access frequency counter of a Redis object", tips=("nondeterministic_output",))
def object_freq(client, argv):
    db = client.db
    stamp = db.access.get(argv[2]) if db.access is not None else None
    value = db.lookup_read(argv[2])
    if value is None:
        return None
    if stamp is not None:
        db.access[argv[2]] = stamp  # objectCommandLookup does not touch the key
    if client.node.config["maxmemory-policy"] not in _LFU_POLICIES:
        raise ErrorReply(
            "ERR An LFU maxmemory policy is not selected, access frequency not tracked. " + _POLICY_SWITCH_NOTE
        )
    return client.node.memory.frequency(db, argv[2])  # node.memory: LFUDecrAndReturn


@command("idletime", 3, "readonly", (2, 2, 1), parent="object", since="2.2.3",
         summary="Get the time since a Redis object was last accessed", tips=("nondeterministic_output",))
def object_idletime(client, argv):
    db = client.db
    stamp = db.access.get(argv[2]) if db.access is not None else None
    value = db.lookup_read(argv[2])
    if value is None:
        return None
    if stamp is not None:
        db.access[argv[2]] = stamp  # objectCommandLookup does not touch the key
    if client.node.config["maxmemory-policy"] in _LFU_POLICIES:
        raise ErrorReply("ERR An LFU maxmemory policy is selected, idle time not tracked. " + _POLICY_SWITCH_NOTE)
    return client.node.memory.idle_seconds(db, argv[2], db.now())  # node.memory: estimateObjectIdleTime


@command("refcount", 3, "readonly", (2, 2, 1), parent="object", since="2.2.3",
         summary="Get the number of references to the value of the key", tips=("nondeterministic_output",))
def object_refcount(client, argv):
    value = client.db.lookup_read(argv[2])
    if value is None:
        return None
    if type(value) is bytes and string_encoding(value) == b"int":
        config = client.node.config
        if config["maxmemory"] == 0 or config["maxmemory-policy"] not in _PER_OBJECT_POLICIES:
            if 0 <= int(value) < _SHARED_INTEGERS:
                return _INT_MAX  # OBJ_SHARED_REFCOUNT
    return 1
