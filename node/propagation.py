"""Command propagation: the stream of writes that replicas and the AOF receive.

Redis does not replicate what clients *sent*; it replicates what *happened*,
as commands that reproduce the same data when replayed anywhere, at any
later time. This module collects those commands and hands them, one
execution unit at a time, to the sinks (the AOF, the replication backlog).

The rules, as Redis 7.0's ``call()`` / ``alsoPropagate`` /
``propagatePendingCommands`` apply them:

* A write command that changed something (the node's dirty counter moved)
  is propagated as sent -- unless its handler rewrote it (``rewrite``), for
  example ``EXPIRE k 10`` → ``PEXPIREAT k <abs ms>``, ``SPOP`` → ``SREM``,
  a served ``BLPOP`` → ``LPOP``, or asked for nothing (``prevent``).
* Side effects found while a command runs are added before it: keys found
  expired on access (``DEL``), evicted keys, the ``also_propagate`` extras a
  handler adds.
* EXEC, EVAL and FCALL never propagate themselves: the commands they ran do
  (script effects replication).
* Everything one client request produced is one unit. A unit of more than one
  command is wrapped in MULTI/EXEC so a replica applies it atomically.
* Work outside a request (active expiry, eviction in the cron) is a unit of
  its own, sent at once.

When no sink is attached nothing is collected: ``enabled`` is False, the
dispatcher does not take the propagating path, and the helpers below return
after one attribute test. Sinks see ``(db_index, encoded_command)`` pairs
and emit their own SELECTs, since the AOF and each replica stream track
their selected database separately.
"""

from __future__ import annotations

__all__ = [
    "Propagator",
    "also_propagate",
    "propagate_to_replicas",
    "encode_command",
    "prevent",
    "rewrite",
    "SELF_PROPAGATING",
]

#: Commands whose effects are propagated by the commands they run, never themselves.
SELF_PROPAGATING = frozenset(
    ("exec", "eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro")
)

_MULTI = b"*1\r\n$5\r\nMULTI\r\n"
_EXEC = b"*1\r\n$4\r\nEXEC\r\n"


def encode_command(argv) -> bytes:
    """``argv`` as a RESP array of bulk strings, the form every propagated command takes."""
    try:  # every argument bytes-like: one pass, no per-argument type test
        n = len(argv)
        if n == 3:  # SET k v, HDEL k f, ...: the bulk of a replication stream, in one format operation
            a, b, c = argv
            return b"*3\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n" % (len(a), a, len(b), b, len(c), c)
        if n == 2:
            a, b = argv
            return b"*2\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n" % (len(a), a, len(b), b)
        return b"*%d\r\n" % n + b"".join([b"$%d\r\n%b\r\n" % (len(arg), arg) for arg in argv])
    except TypeError:
        pass
    parts = [b"*%d\r\n" % len(argv)]
    for arg in argv:
        if type(arg) is not bytes:
            arg = bytes(arg) if not isinstance(arg, (int, float)) else str(arg).encode()
        parts.append(b"$%d\r\n%b\r\n" % (len(arg), arg))
    return b"".join(parts)


def encode_select(db_index: int) -> bytes:
    text = b"%d" % db_index
    return b"*2\r\n$6\r\nSELECT\r\n$%d\r\n%b\r\n" % (len(text), text)


class Propagator:
    """Collects the propagated commands of the running execution unit and feeds the sinks.

    A sink is any object with ``feed(unit)``, where ``unit`` is a list of
    ``(db_index, encoded_command)``; ``db_index`` is None for MULTI and EXEC,
    which need no SELECT. A sink keeps its own "selected database" and writes
    ``encode_select(db)`` when a command's database differs from it.
    """

    __slots__ = ("node", "sinks", "enabled", "ops", "depth", "on_enabled_change")

    def __init__(self, node) -> None:
        self.node = node
        self.sinks: list = []
        self.enabled = False
        #: Pending (db_index, argv) of the unit being executed.
        self.ops: list = []
        #: Nesting of call(): the unit is flushed when the outermost call ends.
        self.depth = 0
        #: Called with the new ``enabled`` value (the dispatcher switches paths).
        self.on_enabled_change = None

    # ------------------------------------------------------------- sinks

    def add_sink(self, sink) -> None:
        if sink not in self.sinks:
            self.sinks.append(sink)
        self._refresh()

    def remove_sink(self, sink) -> None:
        if sink in self.sinks:
            self.sinks.remove(sink)
        self._refresh()

    def _refresh(self) -> None:
        enabled = bool(self.sinks)
        if enabled != self.enabled:
            self.enabled = enabled
            if not enabled:
                self.ops.clear()
            if self.on_enabled_change is not None:
                self.on_enabled_change(enabled)

    # ------------------------------------------------------------ collect

    def add(self, db_index: int, argv) -> None:
        """Queue one command of the current unit (sent now if no command is running)."""
        if not self.enabled:
            return
        self.ops.append((db_index, argv))
        if self.depth == 0:
            self.flush()

    def propagate_deletion(self, db_index: int, key: bytes, lazy: bool = False) -> None:
        """An expired or evicted key: replicas and the AOF delete it too (UNLINK when lazy)."""
        if not self.enabled:
            return
        self.ops.append((db_index, [b"UNLINK" if lazy else b"DEL", key]))
        if self.depth == 0:
            self.flush()

    def flush(self) -> None:
        """Send the collected unit to every sink, wrapped in MULTI/EXEC if it has several commands.

        Ops tagged for replicas only (PUBLISH in standalone mode, as Redis's
        PROPAGATE_REPL) reach sinks with ``replication_stream = True`` and
        not the AOF.
        """
        ops = self.ops
        if not ops:
            return
        self.ops = []
        if not self.sinks:
            return
        if len(ops) == 1 and len(ops[0]) == 2:  # one plain command: most units
            db, argv = ops[0]
            unit = [(db, encode_command(argv))]
            for sink in self.sinks if len(self.sinks) == 1 else list(self.sinks):
                sink.feed(unit)
            return
        if all(len(op) == 2 for op in ops):
            unit = _wrap([(db, encode_command(argv)) for db, argv in ops])
            for sink in list(self.sinks):
                sink.feed(unit)
            return
        encoded = [(op[0], encode_command(op[1]), len(op) > 2) for op in ops]
        for sink in list(self.sinks):
            everything = getattr(sink, "replication_stream", False)
            unit = [(db, data) for db, data, repl_only in encoded if everything or not repl_only]
            if unit:
                sink.feed(_wrap(unit))


def _wrap(unit: list) -> list:
    if len(unit) > 1:
        unit.insert(0, (None, _MULTI))
        unit.append((None, _EXEC))
    return unit


# ------------------------------------------------------------------ handler API


def rewrite(client, *argv) -> None:
    """Propagate ``argv`` instead of the command as sent (``EXPIRE`` → ``PEXPIREAT``...)."""
    if client.node.propagation.enabled:
        client.propagate_as = list(argv)


def prevent(client) -> None:
    """Propagate nothing for this command itself (its ``also_propagate`` extras still go)."""
    if client.node.propagation.enabled:
        client.propagate_as = ()


def propagate_to_replicas(client, *argv) -> None:
    """Send ``argv`` to replicas but not to the AOF (PUBLISH: subscribers on replicas hear it too)."""
    propagation = client.node.propagation
    if propagation.enabled:
        propagation.ops.append((client.db_index, list(argv), "replicas-only"))


def also_propagate(client, *argv, db_index: int | None = None) -> None:
    """Add a command to the unit, before the command itself (``SPOP`` sends one ``SREM`` per member)."""
    propagation = client.node.propagation
    if propagation.enabled:
        propagation.ops.append((client.db_index if db_index is None else db_index, list(argv)))
