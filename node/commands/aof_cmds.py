"""BGREWRITEAOF: rewrite the append-only file in the background (``node.persistence.aof``).

Redis 7.0's ``bgrewriteaofCommand``: "already in progress" while a rewrite
child runs; "scheduled" while another child (a BGSAVE) runs or inside
MULTI/EXEC; else the fork, "started".
"""

from __future__ import annotations

from node.commands.table import command
from node.resp import ErrorReply, SimpleString


@command("bgrewriteaof", 1, "admin noscript no_async_loading", group="server",
         summary="Asynchronously rewrite the append-only file", since="1.0.0", complexity="O(1)")
def bgrewriteaof(client, argv):
    text = client.node.aof.bgrewriteaof(in_exec=client.deny_blocking)
    if text.startswith("ERR "):
        raise ErrorReply(text)
    return SimpleString(text.encode())
