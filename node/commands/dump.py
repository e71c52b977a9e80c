"""DUMP, RESTORE and RESTORE-ASKING (Redis 7.0's ``cluster.c``), on ``node.persistence.rdb``.

DUMP serialises a value in the RDB-10 payload format (type byte, value body,
version, CRC-64), honouring ``rdbcompression`` and ``list-max-listpack-size``
as Redis does; the TTL is not part of it.

RESTORE checks in Redis's order: options (IDLETIME/FREQ values, syntax),
then BUSYKEY, then the TTL, then the payload footer (``DUMP payload version
or checksum are wrong``) and the body (``Bad data format``). A TTL already in
the past creates nothing (with REPLACE the old key is deleted, keyspace
event ``del``) and still replies +OK. Otherwise the key is stored with
``db.set``/``db.set_expire`` (WATCH, blocked clients) and the ``restore``
event fires.

IDLETIME and FREQ are validated exactly as Redis validates them; Shoal keeps
no per-key LRU/LFU data (see OBJECT IDLETIME/FREQ), so their values have no
further effect.

RESTORE-ASKING is RESTORE with the ``asking`` flag: cluster routing accepts it
on an importing node without a preceding ASKING (what MIGRATE sends).
"""

from __future__ import annotations

from node.commands.args import SYNTAX_ERROR, parse_int
from node.commands.strings import keyword
from node.commands.table import command
from node.notify import GENERIC, notify
from node.propagation import rewrite
from node.persistence.rdb import dump_payload, restore_payload
from node.resp import OK, ErrorReply

_BUSYKEY = ErrorReply("BUSYKEY Target key name already exists.")
_BAD_TTL = ErrorReply("ERR Invalid TTL value, must be >= 0")
_BAD_IDLETIME = ErrorReply("ERR Invalid IDLETIME value, must be >= 0")
_BAD_FREQ = ErrorReply("ERR Invalid FREQ value, must be >= 0 and <= 255")

_LLONG_MAX = 2**63 - 1

_DUMP_COMPLEXITY = (
    "O(1) to access the key and additional O(N*M) to serialize it, where N is the number of Redis objects "
    "composing the value and M their average size. For small string values the time complexity is thus "
    "O(1)+O(1*M) where M is small, so simply O(1)."
)
_RESTORE_COMPLEXITY = (
    "O(1) to create the new key and additional O(N*M) to reconstruct the serialized value, where N is the "
    "number of Redis objects composing the value and M their average size. For small string values the time "
    "complexity is thus O(1)+O(1*M) where M is small, so simply O(1). However for sorted set values the "
    "complexity is O(N*M*log(N)) because inserting values into sorted sets is O(log(N))."
)


@command("dump", 2, "readonly", (1, 1, 1), group="generic", since="2.6.0",
         summary="Return a serialized version of the value stored at the specified key.",
         complexity=_DUMP_COMPLEXITY, tips=("nondeterministic_output",))
def dump(client, argv):
    value = client.db.lookup_read(argv[1])
    if value is None:
        return None
    config = client.node.config
    return dump_payload(value, compress=bool(config["rdbcompression"]), list_fill=config["list-max-listpack-size"])


def _restore(client, argv):
    replace = absttl = False
    idletime = freq = None
    argc = len(argv)
    j = 4
    while j < argc:
        option = keyword(argv[j])
        more = argc - j - 1
        if option == b"replace":
            replace = True
        elif option == b"absttl":
            absttl = True
        elif option == b"idletime" and more >= 1 and freq is None:
            idletime = parse_int(argv[j + 1])
            if idletime < 0:
                raise _BAD_IDLETIME
            j += 1
        elif option == b"freq" and more >= 1 and idletime is None:
            freq = parse_int(argv[j + 1])
            if freq < 0 or freq > 255:
                raise _BAD_FREQ
            j += 1
        else:
            raise SYNTAX_ERROR
        j += 1

    db = client.db
    key = argv[1]
    if not replace and db.lookup(key) is not None:
        raise _BUSYKEY
    ttl = parse_int(argv[2])
    if ttl < 0:
        raise _BAD_TTL
    value = restore_payload(argv[3], client.node.config)

    deleted = db.delete(key) if replace else False
    now = db.now()
    if ttl and not absttl:
        ttl += now
        if ttl > _LLONG_MAX:  # C's signed overflow: the time wraps negative, i.e. already past
            ttl -= 2**64
    if ttl and ttl <= now:
        if deleted:
            notify(client, GENERIC, b"del", key)
            rewrite(client, b"DEL", key)  # REPLACE of a key with a TTL already past: a deletion
        return OK
    db.set(key, value)
    if ttl:
        db.set_expire(key, ttl)
        if not absttl:
            # Propagated with the absolute time: RESTORE key <unix ms> payload [options] ABSTTL.
            rewrite(client, argv[0], key, b"%d" % ttl, *argv[3:], b"ABSTTL")
    notify(client, GENERIC, b"restore", key)
    return OK


@command("restore", -4, "write denyoom", (1, 1, 1), group="generic", since="2.6.0",
         acl=("keyspace", "dangerous"),
         summary="Create a key using the provided serialized value, previously obtained using DUMP.",
         complexity=_RESTORE_COMPLEXITY)
def restore(client, argv):
    return _restore(client, argv)


@command("restore-asking", -4, "write denyoom asking", (1, 1, 1), group="server", since="3.0.0",
         acl=("keyspace", "dangerous"), summary="An internal command for migrating keys in a cluster",
         complexity=_RESTORE_COMPLEXITY)
def restore_asking(client, argv):
    return _restore(client, argv)
