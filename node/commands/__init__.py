"""Command handlers. Importing this package fills ``node.commands.table.TABLE``.

Each module declares its commands with ``@command``; the table is the single
source for dispatch, ``COMMAND`` and routing.
"""

from node.commands import (  # noqa: F401  (registration side effects)
    acl_cmds,
    aof_cmds,
    bitmaps,
    client_cmds,
    cluster_cmds,
    connection,
    dump,
    geo,
    hashes,
    hyperloglog,
    introspection,
    keys,
    lists,
    memory_cmds,
    migrate,
    monitoring_cmds,
    persistence_cmds,
    pubsub_cmds,
    replication_cmds,
    scripting,
    server,
    sets,
    sort,
    streams,
    strings,
    transactions,
    zsets,
)
from node.commands.table import TABLE, command, container, lookup

__all__ = ["TABLE", "command", "container", "lookup"]
