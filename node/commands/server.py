"""Server commands: databases, flushing, and (growing) admin commands."""

from __future__ import annotations

from node.commands.args import SYNTAX_ERROR
from node.commands.table import command
from node.resp import OK


def _flush_mode(argv) -> None:
    if len(argv) > 2:
        raise SYNTAX_ERROR
    if len(argv) == 2 and argv[1].lower() not in (b"async", b"sync"):
        raise SYNTAX_ERROR


@command("flushall", -1, "write", group="server", summary="Remove all keys from all databases",
         since="1.0.0", acl=("keyspace", "dangerous"))
def flushall(client, argv):
    _flush_mode(argv)
    node = client.node
    for db in node.dbs:
        node.dirty += db.clear()
    return OK


@command("flushdb", -1, "write", group="server", summary="Remove all keys from the current database",
         since="1.0.0", acl=("keyspace", "dangerous"))
def flushdb(client, argv):
    _flush_mode(argv)
    client.node.dirty += client.db.clear()
    return OK


@command("dbsize", 1, "readonly fast", group="server", summary="Return the number of keys in the selected database",
         since="1.0.0", acl=("keyspace",))
def dbsize(client, argv):
    return client.db.size
