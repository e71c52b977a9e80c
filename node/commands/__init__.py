"""Command handlers. Importing this package fills ``node.commands.table.TABLE``.

Each module declares its commands with ``@command``; the table is the single
source for dispatch, ``COMMAND`` and routing.
"""

from node.commands import connection, server, strings  # noqa: F401  (registration side effects)
from node.commands.table import TABLE, command, container, lookup

__all__ = ["TABLE", "command", "container", "lookup"]
