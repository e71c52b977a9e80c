"""Keyspace notifications (``notify-keyspace-events``): the event classes and the one call handlers make.

Handlers call ``notify(client, CLASS, b"event", key)`` after a successful
write, with Redis's event names (``lpush``, ``hset``, ``del``, ``expired``...).
When the class is not enabled this costs one attribute load and one AND, so
handlers call it unconditionally. The messages go out as ordinary pub/sub
messages on ``__keyspace@<db>__:<key>`` (``K``) and ``__keyevent@<db>__:<event>``
(``E``), through ``node.pubsub``.
"""

from __future__ import annotations

__all__ = [
    "GENERIC", "STRING", "LIST", "SET", "HASH", "ZSET", "EXPIRED", "EVICTED", "STREAM", "KEY_MISS",
    "MODULE", "NEW", "KEYSPACE", "KEYEVENT", "flags_from_config", "notify", "notify_db",
]

# Redis's NOTIFY_* bits (server.h).
KEYSPACE = 1 << 0  # K
KEYEVENT = 1 << 1  # E
GENERIC = 1 << 2  # g
STRING = 1 << 3  # $
LIST = 1 << 4  # l
SET = 1 << 5  # s
HASH = 1 << 6  # h
ZSET = 1 << 7  # z
EXPIRED = 1 << 8  # x
EVICTED = 1 << 9  # e
STREAM = 1 << 10  # t
KEY_MISS = 1 << 11  # m
MODULE = 1 << 12  # d
NEW = 1 << 13  # n

_LETTERS = {
    "K": KEYSPACE, "E": KEYEVENT, "g": GENERIC, "$": STRING, "l": LIST, "s": SET, "h": HASH, "z": ZSET,
    "x": EXPIRED, "e": EVICTED, "t": STREAM, "m": KEY_MISS, "d": MODULE, "n": NEW,
}
_ALL = GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE


def flags_from_config(text: str) -> int:
    """The bit set for a ``notify-keyspace-events`` value as the config stores it."""
    flags = 0
    for c in text:
        flags |= _ALL if c == "A" else _LETTERS.get(c, 0)
    # Without K or E nothing is ever published: keep 0 so the fast test fails.
    if not flags & (KEYSPACE | KEYEVENT):
        return 0
    return flags


def notify(client, kind: int, event: bytes, key: bytes) -> None:
    """Publish a keyspace event for ``key`` in the client's current database, if enabled."""
    node = client.node
    if node.notify_flags & kind:
        node.pubsub.keyspace_event(node.notify_flags, event, key, client.db_index)


def notify_db(node, kind: int, event: bytes, key: bytes, db_index: int) -> None:
    """``notify`` for callers without a client (active expiry, eviction)."""
    if node.notify_flags & kind:
        node.pubsub.keyspace_event(node.notify_flags, event, key, db_index)
