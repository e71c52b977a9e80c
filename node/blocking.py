"""Clients blocked on keys (BLPOP, BZPOPMIN, XREAD BLOCK...): who waits for what, and when they give up.

How a blocking command works, in three steps:

1. Its handler finds nothing to serve and calls ``block_on_keys(client,
   keys, deadline_ms, timeout_reply)``, which queues the client on each key
   (first blocked, first served) and returns ``NO_REPLY``. The server stops
   reading that client's pipeline until it is unblocked.
2. Any write to a key someone waits on reaches ``signal`` (through
   ``Database.on_modify``, which the node installs while a database has
   blocked clients or watchers). The key goes on the ``ready`` list.
3. After each top-level command (so pushes inside MULTI/EXEC or a script are
   seen once the whole unit is done, as in Redis), the server calls
   ``serve_ready``: for every ready key, each client queued on it runs its
   command again. If the handler finds data, its reply goes out and the
   client is unblocked; if not, it calls ``block_on_keys`` again, which notices
   the re-run (``client.blocked`` is set) and keeps the client's place.

Re-running the command, rather than having each type implement a "serve the
waiter" callback, keeps the semantics in one place: the reply of a served
BLPOP is, by construction, the reply BLPOP gives when data is there. A command
whose meaning depends on the moment it blocked (XREAD with ``$``) passes the
argv to re-run with, with that moment made explicit.

Deadlines sit in a heap; the server's timeout task sleeps until the earliest
one, so a blocked client costs nothing while it waits.

No I/O and no clock here: ``now_ms`` comes in as an argument.
"""

from __future__ import annotations

import heapq
from collections import deque
from typing import Callable

from node.resp import NO_REPLY, ErrorReply

__all__ = ["BlockState", "BlockingRegistry", "block_on_keys", "parse_timeout"]

_TIMEOUT_NOT_FLOAT = ErrorReply("ERR timeout is not a float or out of range")
_TIMEOUT_NOT_INT = ErrorReply("ERR timeout is not an integer or out of range")
_TIMEOUT_NEGATIVE = ErrorReply("ERR timeout is negative")
_LLONG_MAX = 2**63 - 1


class BlockState:
    """Why and until when one client waits."""

    __slots__ = ("cmd", "argv", "db_index", "keys", "deadline_ms", "timeout_reply", "seq")

    def __init__(self, cmd, argv, db_index, keys, deadline_ms, timeout_reply, seq) -> None:
        self.cmd = cmd
        self.argv = argv
        self.db_index = db_index
        self.keys = keys
        self.deadline_ms = deadline_ms  # 0 = wait forever
        self.timeout_reply = timeout_reply
        self.seq = seq


def parse_timeout(client, arg: bytes, *, seconds: bool = True) -> int:
    """A blocking timeout as an absolute deadline in unix ms (0 = forever).

    Redis's ``getTimeoutFromObjectOrReply``: seconds as a float for BLPOP and
    friends, whole milliseconds for XREAD BLOCK, with its exact errors.
    """
    from node.resp.parser import string2ll

    if seconds:
        ms = _seconds_to_ms(arg)
        if ms is None:
            raise _TIMEOUT_NOT_FLOAT
        if ms < 0:
            raise _TIMEOUT_NEGATIVE
    else:
        ms = string2ll(arg)
        if ms is None:
            raise _TIMEOUT_NOT_INT
        if ms < 0:
            raise _TIMEOUT_NEGATIVE
    if ms > 0:
        return ms + client.db.now()
    return 0


def _seconds_to_ms(arg: bytes) -> int | None:
    """Redis 7.0's ``(long long) ceill(strtold(arg) * 1000.0)``, in x87 long double; None if unparsable.

    Rounding up means 0.0001 is a 1 ms timeout and -0.0005 is 0 (forever);
    a product beyond the long long range (inf, 1e400) casts to LLONG_MIN,
    which Redis then reports as "timeout is negative".
    """
    from node.commands.strings import _LD_INF, _ld_round, ld_parse

    value = ld_parse(arg)
    if value is None:
        return None
    if value is _LD_INF:
        return -_LLONG_MAX - 1
    mant, exp = value
    if not mant:
        return 0
    product = _ld_round(abs(mant) * 1000, 1, exp)
    if product is _LD_INF:
        return -_LLONG_MAX - 1
    q, e = product
    if mant < 0:
        q = -q
    ms = q << e if e >= 0 else -((-q) >> -e)  # ceil
    if not -_LLONG_MAX - 1 <= ms <= _LLONG_MAX:
        return -_LLONG_MAX - 1
    return ms


def block_on_keys(client, argv, keys, deadline_ms: int, timeout_reply):
    """Block ``client`` on ``keys`` and return ``NO_REPLY`` (what the handler returns).

    Call only when ``client.deny_blocking`` is false: inside MULTI or a
    script a blocking command must answer ``timeout_reply`` at once instead
    (handlers check ``client.deny_blocking`` first). ``argv`` is the request
    re-run when a key becomes ready: the handler's own argv, or a rewritten
    one (XREAD's ``$`` replaced by the id it meant when the client blocked).
    """
    registry = client.node.blocking
    state = client.blocked
    if state is not None:
        # A re-run from serve_ready that found nothing: keep the client's place.
        registry.still_blocked = True
        state.argv = argv
        return NO_REPLY
    from node.dispatch import resolve

    registry.block(client, resolve(argv), argv, keys, deadline_ms, timeout_reply)
    return NO_REPLY


class BlockingRegistry:
    """Queues of blocked clients per ``(db index, key)``, ready keys, and deadlines."""

    def __init__(self) -> None:
        self.by_key: dict[tuple[int, bytes], deque] = {}
        #: Keys written since the last serve_ready, in order, each at most once.
        self.ready: list[tuple[int, bytes]] = []
        self._ready_set: set[tuple[int, bytes]] = set()
        self._deadlines: list[tuple[int, int, object]] = []
        self._seq = 0
        self.count = 0
        #: Set by block_on_keys during a re-run that found nothing.
        self.still_blocked = False
        #: The key being served during serve_ready (Redis 7.0 serves a waiter from
        #: the ready key itself, not from the first non-empty key of its argv).
        self.serving_key: bytes | None = None
        #: Called when a deadline earlier than every other is added (wakes the timer task).
        self.on_new_deadline: Callable[[], None] | None = None
        #: Called with (db_index) when a database gains its first blocked client.
        self.on_first_block: Callable[[int], None] | None = None
        #: Called with (db_index) when a database loses its last blocked client.
        self.on_last_unblock: Callable[[int], None] | None = None
        self._per_db: dict[int, int] = {}

    # ------------------------------------------------------------- blocking

    def block(self, client, cmd, argv, keys, deadline_ms: int, timeout_reply) -> None:
        self._seq += 1
        db_index = client.db_index
        state = BlockState(cmd, argv, db_index, list(dict.fromkeys(keys)), deadline_ms, timeout_reply, self._seq)
        client.blocked = state
        for key in state.keys:
            queue = self.by_key.get((db_index, key))
            if queue is None:
                queue = self.by_key[(db_index, key)] = deque()
            queue.append(client)
        self.count += 1
        n = self._per_db.get(db_index, 0)
        self._per_db[db_index] = n + 1
        if n == 0 and self.on_first_block is not None:
            self.on_first_block(db_index)
        if deadline_ms:
            earliest = self._deadlines[0][0] if self._deadlines else None
            heapq.heappush(self._deadlines, (deadline_ms, state.seq, client))
            if (earliest is None or deadline_ms < earliest) and self.on_new_deadline is not None:
                self.on_new_deadline()

    def unblock(self, client) -> None:
        """Take ``client`` out of every queue (served, timed out, killed or gone)."""
        state = client.blocked
        if state is None:
            return
        client.blocked = None
        for key in state.keys:
            queue = self.by_key.get((state.db_index, key))
            if queue is None:
                continue
            try:
                queue.remove(client)
            except ValueError:
                pass
            if not queue:
                del self.by_key[(state.db_index, key)]
        self.count -= 1
        n = self._per_db[state.db_index] - 1
        if n:
            self._per_db[state.db_index] = n
        else:
            del self._per_db[state.db_index]
            if self.on_last_unblock is not None:
                self.on_last_unblock(state.db_index)
        # Stale heap entries are skipped lazily (their seq no longer matches).

    def has_blocked(self, db_index: int) -> bool:
        return db_index in self._per_db

    # -------------------------------------------------------------- serving

    def signal(self, db_index: int, key: bytes) -> None:
        """A write touched ``key``: if anyone waits on it, serve them after this command."""
        k = (db_index, key)
        if k in self.by_key and k not in self._ready_set:
            self._ready_set.add(k)
            self.ready.append(k)

    def serve_ready(self, run: Callable[[object, BlockState], None]) -> list:
        """Re-run the commands of clients waiting on ready keys; returns the clients unblocked.

        ``run(client, state)`` executes ``state.cmd`` with the client's argv and
        writes its reply (the dispatcher's ``call``). Keys made ready while
        serving (BLMOVE pushing to a key another client waits on) are served
        in the same pass.
        """
        served = []
        i = 0
        ready = self.ready
        while i < len(ready):
            k = ready[i]
            i += 1
            self._ready_set.discard(k)
            queue = self.by_key.get(k)
            if not queue:
                continue
            self.serving_key = k[1]
            for client in list(queue):
                state = client.blocked
                if state is None:
                    continue
                self.still_blocked = False
                run(client, state)
                if self.still_blocked:
                    # Nothing for this one; a later client may still be served
                    # (XREAD clients waiting from different ids), so go on.
                    self.still_blocked = False
                    continue
                self.unblock(client)
                served.append(client)
        self.serving_key = None
        self.ready.clear()
        self._ready_set.clear()
        return served

    # ------------------------------------------------------------- timeouts

    def next_deadline(self) -> int | None:
        heap = self._deadlines
        while heap:
            deadline, seq, client = heap[0]
            state = client.blocked
            if state is not None and state.seq == seq:
                return deadline
            heapq.heappop(heap)
        return None

    def expire(self, now_ms: int) -> list:
        """Unblock every client whose deadline has passed; returns them (reply still to write)."""
        expired = []
        heap = self._deadlines
        while heap and heap[0][0] <= now_ms:
            _, seq, client = heapq.heappop(heap)
            state = client.blocked
            if state is None or state.seq != seq:
                continue
            self.unblock(client)
            expired.append((client, state))
        return expired
