"""Typed access to stored values: the one place that raises WRONGTYPE.

``read_value`` is for read commands (it counts keyspace hits and misses, like
Redis's ``lookupKeyRead``); ``write_value`` for write commands (no counting,
``lookupKeyWrite``). Both return None for a missing or expired key.
"""

from __future__ import annotations

from node.commands.args import WRONGTYPE
from node.notify import GENERIC, notify

__all__ = ["members_removed", "read_value", "write_value"]


def read_value(db, key: bytes, kind: type):
    value = db.lookup_read(key)
    if value is None or type(value) is kind:
        return value
    raise WRONGTYPE


def write_value(db, key: bytes, kind: type):
    value = db.lookup(key)
    if value is None or type(value) is kind:
        return value
    raise WRONGTYPE


def members_removed(client, key: bytes, container, removed: int, kind: int, event: bytes) -> None:
    """Bookkeeping after a write removed ``removed`` members of the container stored at ``key``.

    Redis counts one change per member toward dirty (the key's deletion is not
    counted on top), notifies ``event``, and when the container is left empty
    deletes the key and notifies ``del``.
    """
    db = client.db
    if len(container):
        db.touch(key, removed)
        notify(client, kind, event, key)
    else:
        db.delete(key)
        db.dirty += removed - 1
        notify(client, kind, event, key)
        notify(client, GENERIC, b"del", key)
