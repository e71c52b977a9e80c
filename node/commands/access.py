"""Typed access to stored values: the one place that raises WRONGTYPE.

``read_value`` is for read commands (it counts keyspace hits and misses, like
Redis's ``lookupKeyRead``); ``write_value`` for write commands (no counting,
``lookupKeyWrite``). Both return None for a missing or expired key.
"""

from __future__ import annotations

from node.commands.args import WRONGTYPE

__all__ = ["read_value", "write_value"]


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
