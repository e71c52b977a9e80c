"""String commands."""

from __future__ import annotations

from node.commands.args import SYNTAX_ERROR, WRONGTYPE, parse_int
from node.commands.table import command
from node.resp import OK, ErrorReply

_LLONG_MAX = 2**63 - 1


def get_string(db, key: bytes):
    """The string at ``key`` (bytes/bytearray), None if absent; WRONGTYPE otherwise."""
    value = db.lookup_read(key)
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


@command("get", 2, "readonly fast", (1, 1, 1), group="string", summary="Get the value of a key", since="1.0.0")
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


_SET_EXPIRE_UNITS = {b"ex": (1000, True), b"px": (1, True), b"exat": (1000, False), b"pxat": (1, False)}


@command("set", -3, "write denyoom", (1, 1, 1), group="string",
         summary="Set the string value of a key", since="1.0.0")
def set_(client, argv):
    db = client.db
    key = argv[1]
    if len(argv) == 3:
        db.set(key, argv[2])
        return OK
    nx = xx = want_get = keep_ttl = False
    expire_unit = None
    expire_arg = None
    i = 3
    while i < len(argv):
        opt = argv[i].lower()
        has_next = i + 1 < len(argv)
        if opt == b"nx" and not xx:
            nx = True
        elif opt == b"xx" and not nx:
            xx = True
        elif opt == b"get":
            want_get = True
        elif opt == b"keepttl" and expire_unit is None:
            keep_ttl = True
        elif opt in _SET_EXPIRE_UNITS and not keep_ttl and expire_unit in (None, opt) and has_next:
            expire_unit = opt
            expire_arg = argv[i + 1]
            i += 1
        else:
            raise SYNTAX_ERROR
        i += 1
    when = None
    if expire_unit is not None:
        unit_ms, relative = _SET_EXPIRE_UNITS[expire_unit]
        when = absolute_expire_ms(db, parse_int(expire_arg), unit_ms, relative, "set")
    old = None
    if want_get:
        old = get_string(db, key)
        found = old is not None
    else:
        found = db.lookup(key) is not None
    if (nx and found) or (xx and not found):
        return bytes(old) if want_get and old is not None else None
    db.set(key, argv[2], keep_ttl=keep_ttl)
    if when is not None:
        db.set_expire(key, when)
    if want_get:
        return None if old is None else bytes(old)
    return OK
