"""SAVE and BGSAVE (LASTSAVE lives with the other server commands in ``server.py``).

The work is ``node.persistence.snapshot``'s; these handlers are Redis 7.0's
``saveCommand`` and ``bgsaveCommand``: the same checks in the same order and
the same replies.
"""

from __future__ import annotations

from node.commands.args import SYNTAX_ERROR
from node.commands.table import command
from node.resp import OK, ErrorReply, SimpleString

_IN_PROGRESS = ErrorReply("ERR Background save already in progress")
_BARE_ERR = ErrorReply("ERR")  # shared.err: a failed save answers just "-ERR"


@command("save", 1, "admin noscript no_async_loading no_multi", group="server",
         summary="Synchronously save the dataset to disk", since="1.0.0",
         complexity="O(N) where N is the total number of keys in all databases")
def save(client, argv):
    rdb = client.node.rdb
    if rdb.in_progress:
        raise _IN_PROGRESS
    rdb.saves += 1
    return OK if rdb.save() else _BARE_ERR


@command("bgsave", -1, "admin noscript no_async_loading", group="server",
         summary="Asynchronously save the dataset to disk", since="1.0.0", complexity="O(1)")
def bgsave(client, argv):
    # SCHEDULE only matters while another kind of child (an AOF rewrite) runs; there is none yet.
    if len(argv) > 1 and not (len(argv) == 2 and argv[1].lower() == b"schedule"):
        raise SYNTAX_ERROR
    rdb = client.node.rdb
    if rdb.in_progress:
        raise _IN_PROGRESS
    if client.node.aof.child_pid is not None and not client.deny_blocking:  # an AOF rewrite runs
        if len(argv) == 1:
            raise ErrorReply("ERR Another child process is active (AOF?): can't BGSAVE right now. "
                             "Use BGSAVE SCHEDULE in order to schedule a BGSAVE whenever possible.")
        rdb.bgsave_scheduled = True
        return SimpleString(b"Background saving scheduled")
    if client.deny_blocking:
        # Inside EXEC (BGSAVE is noscript): Redis defers the fork to the cron, with or without SCHEDULE.
        rdb.bgsave_scheduled = True
        return SimpleString(b"Background saving scheduled")
    if rdb.bgsave():
        return SimpleString(b"Background saving started")
    return _BARE_ERR
