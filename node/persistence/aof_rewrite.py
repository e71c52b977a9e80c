"""A BASE file in AOF form (``aof-use-rdb-preamble no``): commands that rebuild the dataset.

Redis's ``rewriteAppendOnlyFileRio``: FUNCTION LOAD for each library, then per
database a SELECT and, per key, one command for strings (SET) or variadic
commands of at most 64 items (RPUSH, SADD, ZADD, HMSET), followed by
PEXPIREAT when the key has a time to live.

Difference from Redis, on purpose: a stream is written as ``RESTORE key 0
<DUMP payload> REPLACE`` rather than the XADD/XSETID/XGROUP/XCLAIM sequence.
Both rebuild the same stream (entries, last id, groups, PELs, consumers);
real Redis loads either.
"""

from __future__ import annotations

from typing import BinaryIO

__all__ = ["ITEMS_PER_CMD", "write_aof_dataset"]

ITEMS_PER_CMD = 64  # AOF_REWRITE_ITEMS_PER_CMD


def _bulk(data) -> bytes:
    if type(data) is not bytes:
        data = bytes(data) if not isinstance(data, int) else b"%d" % data
    return b"$%d\r\n%b\r\n" % (len(data), data)


def _variadic(out: list, name: bytes, key: bytes, items: list, width: int) -> None:
    """Emit ``name key item...`` in commands of at most 64 elements (``width`` args each)."""
    for start in range(0, len(items), ITEMS_PER_CMD):
        chunk = items[start:start + ITEMS_PER_CMD]
        out.append(b"*%d\r\n%b%b" % (2 + len(chunk) * width, _bulk(name), _bulk(key)))
        for item in chunk:
            if width == 1:
                out.append(_bulk(item))
            else:
                out.append(_bulk(item[0]))
                out.append(_bulk(item[1]))


def write_aof_dataset(fileobj: BinaryIO, dbs, functions=(), *, timestamp: int | None = None,
                      key_delay_us: int = 0, progress=None) -> int:
    """Write the dataset as AOF commands; returns the key count."""
    import time as _time

    from node.engine.hashvalue import HashValue
    from node.engine.listvalue import ListValue
    from node.engine.setvalue import SetValue
    from node.engine.zset import ZSet
    from node.persistence.rdb import dump_payload

    write = fileobj.write
    if timestamp is not None:
        write(b"#TS:%d\r\n" % timestamp)
    for code in functions:
        write(b"*3\r\n$8\r\nFUNCTION\r\n$4\r\nLOAD\r\n" + _bulk(code))
    count = 0
    delay = key_delay_us / 1_000_000 if key_delay_us > 0 else 0.0
    for db in dbs:
        if not db.size:
            continue
        write(b"*2\r\n$6\r\nSELECT\r\n" + _bulk(b"%d" % db.index))
        for slot, items in enumerate(db.dicts):
            if not items:
                continue
            expires = db.expires[slot]
            for key, value in items.items():
                kind = type(value)
                out: list = []
                if kind is bytes or kind is bytearray:
                    out.append(b"*3\r\n$3\r\nSET\r\n%b%b" % (_bulk(key), _bulk(value)))
                elif kind is ListValue:
                    _variadic(out, b"RPUSH", key, list(value), 1)
                elif kind is SetValue:
                    _variadic(out, b"SADD", key, list(value), 1)
                elif kind is ZSet:
                    _variadic(out, b"ZADD", key, [(b"%.17g" % score, member) for member, score in value.items()], 2)
                elif kind is HashValue:
                    _variadic(out, b"HMSET", key, list(value.items()), 2)
                else:  # streams (and anything else): the DUMP payload rebuilds it exactly
                    payload = dump_payload(value)
                    out.append(b"*5\r\n$7\r\nRESTORE\r\n%b$1\r\n0\r\n%b$7\r\nREPLACE\r\n"
                               % (_bulk(key), _bulk(payload)))
                expire = expires.get(key) if expires else None
                if expire is not None:
                    out.append(b"*3\r\n$9\r\nPEXPIREAT\r\n%b%b" % (_bulk(key), _bulk(b"%d" % expire)))
                write(b"".join(out))
                count += 1
                if progress is not None and not count & 1023:
                    progress(count)
                if delay:
                    _time.sleep(delay)
    return count
