"""MULTI / EXEC / DISCARD / WATCH / UNWATCH, with Redis 7.0's semantics.

* While a client is in MULTI, the dispatcher queues every command except
  EXEC, DISCARD, MULTI, WATCH, QUIT and RESET, answering ``+QUEUED``. A
  command rejected while queueing (unknown, wrong arity, not allowed in a
  transaction) marks the transaction failed, and EXEC then answers
  EXECABORT and runs nothing.
* Errors raised while EXEC runs the queue do not stop it: each command's
  reply, error or not, is one element of EXEC's array. Nothing is rolled
  back -- that is Redis's promise, not a shortcut.
* WATCH records (db, key) pairs on the node; any write to one of them
  (``Database.on_modify``, installed by the node while a database has
  watchers), its expiry, or a FLUSHALL/FLUSHDB/SWAPDB that touches it, sets
  the client's ``dirty_cas``; EXEC then answers a null array. A watched key
  whose time passed without anyone touching it also fails EXEC, as Redis
  7.0's ``isWatchedKeyExpired`` does.
* Blocking commands inside EXEC answer at once (``client.deny_blocking``);
  clients blocked on keys written by the transaction are served after EXEC
  returns, since the server serves ready keys after each top-level command.
"""

from __future__ import annotations

from node.commands.table import command
from node.resp import NULL_ARRAY, OK, ErrorReply

__all__ = ["queue_command", "discard_transaction"]

_NESTED = ErrorReply("ERR MULTI calls can not be nested")
_EXEC_WITHOUT = ErrorReply("ERR EXEC without MULTI")
_DISCARD_WITHOUT = ErrorReply("ERR DISCARD without MULTI")
_WATCH_IN_MULTI = ErrorReply("ERR WATCH inside MULTI is not allowed")
_EXECABORT = ErrorReply("EXECABORT Transaction discarded because of previous errors.")
_QUEUED = b"+QUEUED\r\n"


def queue_command(client, cmd, argv) -> None:
    """Queue one command of an open transaction (called by the dispatcher)."""
    client.multi.append((cmd, argv))
    client.out += _QUEUED


def discard_transaction(client) -> None:
    client.multi = None
    client.multi_failed = False
    client.node.unwatch_all(client)
    client.refresh_gate()


def reset_transaction_state(client) -> None:
    """RESET and disconnects: leave MULTI and forget WATCHes."""
    if client.multi is not None:
        discard_transaction(client)
    else:
        client.node.unwatch_all(client)


@command("multi", 1, "noscript loading stale fast allow_busy", group="transactions",
         summary="Mark the start of a transaction block", since="1.2.0", complexity="O(1)")
def multi(client, argv):
    if client.multi is not None:
        raise _NESTED
    client.multi = []
    client.multi_failed = False
    client.refresh_gate()
    return OK


@command("discard", 1, "noscript loading stale fast allow_busy", group="transactions",
         summary="Discard all commands issued after MULTI", since="2.0.0",
         complexity="O(N), when N is the number of queued commands")
def discard(client, argv):
    if client.multi is None:
        raise _DISCARD_WITHOUT
    discard_transaction(client)
    return OK


@command("exec", 1, "noscript loading stale skip_slowlog", group="transactions",
         summary="Execute all commands issued after MULTI", since="1.2.0",
         complexity="Depends on commands in the transaction")
def exec_(client, argv):
    from node.dispatch import call

    queued = client.multi
    if queued is None:
        raise _EXEC_WITHOUT
    node = client.node
    if client.multi_failed:
        discard_transaction(client)
        raise _EXECABORT
    if client.dirty_cas or _watched_key_expired(client):
        discard_transaction(client)
        return NULL_ARRAY
    client.multi = None
    client.multi_failed = False
    client.refresh_gate()
    # The watches have done their job; dropping them first means the
    # transaction's own writes do not mark this client dirty.
    node.unwatch_all(client)
    client.out += b"*%d\r\n" % len(queued)
    client.deny_blocking = True
    try:
        for cmd, args in queued:
            user = client.acl_user
            if user is not None and not user.unrestricted:  # rules may have changed since queueing
                denied = node.acl.exec_denial(client, cmd, args)
                if denied is not None:
                    from node.dispatch import reply_error

                    reply_error(client, denied)
                    continue
            call(client, cmd, args)
    finally:
        client.deny_blocking = False
    from node.resp import NO_REPLY

    return NO_REPLY


def _watched_key_expired(client) -> bool:
    watched = client.watched
    if not watched:
        return False
    dbs = client.node.dbs
    for db_index, key in watched:
        db = dbs[db_index]
        when = db.get_expire(key)
        if when is not None and when < db.now():
            return True
    return False


@command("watch", -2, "noscript loading stale fast allow_busy", (1, -1, 1), group="transactions",
         summary="Watch the given keys to determine execution of the MULTI/EXEC block", since="2.2.0",
         complexity="O(1) for every key.")
def watch(client, argv):
    if client.multi is not None:
        raise _WATCH_IN_MULTI
    node = client.node
    for key in argv[1:]:
        node.watch(client, key)
    return OK


@command("unwatch", 1, "noscript loading stale fast allow_busy", group="transactions",
         summary="Forget about all watched keys", since="2.2.0", complexity="O(1)")
def unwatch(client, argv):
    client.node.unwatch_all(client)
    return OK
