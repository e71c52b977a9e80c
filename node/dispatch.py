"""From a parsed request to a reply in the client's output buffer.

The order of checks is Redis 7's ``processCommand``: lookup (unknown command
or subcommand), arity, protected commands, authentication, transaction and
pub/sub context, then the call. Rejections use Redis's exact texts and are
counted as ``rejected_calls``; errors raised by handlers count as
``failed_calls``. Both feed INFO errorstats.

The hot path -- a known command from an ordinary client -- costs one dict
lookup, one arity comparison and one flag test (``client.gated``) before the
handler runs.
"""

from __future__ import annotations

from time import perf_counter_ns

from node.client import REPLY_OFF, REPLY_ON, REPLY_SKIP, REPLY_SKIP_NEXT
from node.commands.table import _FAST_LOOKUP, Command, lookup
from node.commands.transactions import queue_command
from node.monitoring import after_command
from node.monitoring.histogram import record_latency
from node.propagation import SELF_PROPAGATING
from node.resp import ErrorReply, Raw, write_reply
from node.tracking import remember_keys, tracked_execute

__all__ = ["call", "cstr", "execute", "reply_error", "resolve"]

#: Commands that ran at least this many microseconds go to
#: node.monitoring.after_command (slow log, latency monitor, MONITOR feed);
#: kept current by node.monitoring (0 while a MONITOR client is connected).
WATCH_US = 1 << 62

#: True while node.propagation has a sink (AOF, replicas): every request then
#: takes the gated path, and call() records what to propagate. Kept current
#: by set_propagating (installed as the Propagator's on_enabled_change).
PROPAGATING = False

#: True while CLIENT PAUSE (or a manual failover) holds some commands back:
#: every request then takes the gated path, where the pause is checked.
PAUSED = False

#: True while maxmemory is set: node.memory then evicts and refuses denyoom
#: commands before each request (Redis's processCommand), on the fast path
#: as on the gated one. Kept current by set_maxmemory (node.memory's CONFIG SET hook).
MAXMEMORY = False

#: True while node.replication has checks to make (this node is a replica, or
#: min-replicas-to-write is on): READONLY, MASTERDOWN, NOREPLICAS in the gated path.
REPLICATION = False

#: PROPAGATING or PAUSED or REPLICATION, kept by their setters: one test on the fast path.
SLOW_PATH = False

#: The ``latency-tracking`` config: per-command latency histograms (LATENCY HISTOGRAM), kept by
#: node.monitoring.histogram. A call under 1 us costs nothing more, one under 64 us a list increment.
LATENCY_TRACKING = True

#: Commands that can change a database other than the client's: call() compares the whole
#: node's dirty counter for these, and only the client's database for the rest.
_CROSS_DB = frozenset(("move", "copy", "swapdb", "flushall", "select"))

_NO_AUTH_OK = ErrorReply("NOAUTH Authentication required.")
_NOT_IN_MULTI = ErrorReply("ERR Command not allowed inside a transaction")
# Commands that run even while a MULTI is being queued.
_MULTI_PASSTHROUGH = frozenset((b"exec", b"discard", b"multi", b"watch", b"quit", b"reset"))
# Commands allowed while a RESP2 client is subscribed.
_PUBSUB_ALLOWED = frozenset(
    (b"subscribe", b"ssubscribe", b"unsubscribe", b"sunsubscribe", b"psubscribe", b"punsubscribe",
     b"ping", b"quit", b"reset")
)


def cstr(data: bytes, limit: int | None = None) -> str:
    """``data`` as C's ``%.Ns`` would print it: cut at NUL, then at ``limit`` bytes."""
    nul = data.find(b"\0")
    if nul != -1:
        data = data[:nul]
    if limit is not None:
        data = data[:limit]
    return data.decode("utf-8", "surrogateescape")


def unknown_command_error(argv: list[bytes]) -> ErrorReply:
    args = ""
    for arg in argv[1:]:
        if len(args.encode("utf-8", "surrogateescape")) >= 128:
            break
        room = 128 - len(args.encode("utf-8", "surrogateescape"))
        args += "'%s' " % cstr(arg, room)
    return ErrorReply(f"ERR unknown command '{cstr(argv[0], 128)}', with args beginning with: {args}")


def arity_error(cmd: Command) -> ErrorReply:
    return ErrorReply(f"ERR wrong number of arguments for '{cmd.fullname}' command")


def internal_error(client, cmd: Command, exc: Exception) -> ErrorReply:
    """A bug in a handler must cost one error reply, never the node: log it, answer ERR."""
    import traceback

    client.node.logger.warning(
        f"Internal error in '{cmd.fullname}': "
        + "".join(traceback.format_exception(exc)).replace("\n", " | ")
    )
    return ErrorReply(f"ERR internal error in '{cmd.fullname}': {type(exc).__name__}")


def reply_error(client, error: ErrorReply) -> None:
    """Write an error reply and count it in INFO errorstats."""
    stats = client.node.stats
    stats.total_error_replies += 1
    code = error.code
    stats.error_codes[code] = stats.error_codes.get(code, 0) + 1
    write_reply(client.out, error, client.resp3)


def resolve(argv: list[bytes]) -> Command | ErrorReply:
    """The command ``argv`` names, or the error Redis gives for it (lookup and arity)."""
    cmd = _FAST_LOOKUP.get(argv[0])
    if cmd is None:
        cmd = lookup(argv[0])
        if cmd is None:
            return unknown_command_error(argv)
    if cmd.subcommands and len(argv) >= 2:
        sub = cmd.subcommands.get(argv[1].lower())
        if sub is None:
            return ErrorReply(
                f"ERR unknown subcommand '{cstr(argv[1], 128)}'. Try {cstr(argv[0]).upper()} HELP."
            )
        cmd = sub
    arity = cmd.arity
    argc = len(argv)
    if (argc != arity) if arity > 0 else (argc < -arity):
        return arity_error(cmd)
    return cmd


def execute(client, argv: list[bytes]) -> None:
    """Run one request and append its reply (if any) to ``client.out``."""
    cmd = _FAST_LOOKUP.get(argv[0])
    if cmd is None or cmd.subcommands:
        cmd = resolve(argv)
        if type(cmd) is ErrorReply:
            _reject(client, None, cmd)
            return
    else:
        arity = cmd.arity
        if (len(argv) != arity) if arity > 0 else (len(argv) < -arity):
            _reject(client, cmd, arity_error(cmd))
            return
    if client.gated or SLOW_PATH:
        if client.tracking is None:
            _execute_gated(client, cmd, argv)
        else:
            tracked_execute(client, cmd, argv)  # CLIENT TRACKING (node.tracking)
        return
    if client.routed and _gate(client, cmd, argv):
        return  # redirected (MOVED, ASK, CROSSSLOT...)
    if MAXMEMORY:
        oom = client.node.memory.check(client, cmd, argv)
        if oom is not None:
            _reject(client, cmd, oom)
            return
    # The body of call(), inlined: this is the path of nearly every command.
    client.clock.pinned = None
    start = perf_counter_ns()
    try:
        reply = cmd.handler(client, argv)
    except Exception as exc:
        error = exc if isinstance(exc, ErrorReply) else internal_error(client, cmd, exc)
        elapsed = (perf_counter_ns() - start) // 1000
        cmd.usec += elapsed
        cmd.calls += 1
        if elapsed and LATENCY_TRACKING:
            record_latency(cmd, elapsed)
        cmd.failed_calls += 1
        client.last_command = cmd
        reply_error(client, error)
        if elapsed >= WATCH_US:
            after_command(client, cmd, argv, elapsed)
        return
    elapsed = (perf_counter_ns() - start) // 1000
    cmd.usec += elapsed
    cmd.calls += 1
    if elapsed and LATENCY_TRACKING:  # calls under 1 us need nothing (node.monitoring.histogram)
        try:
            cmd.latency[elapsed] += 1  # 1..63 us
        except (TypeError, IndexError):  # no histogram list yet (None), or 64 us and more
            record_latency(cmd, elapsed)
    client.last_command = cmd
    kind = type(reply)
    if kind is Raw:
        client.out += reply.data
    elif kind is bytes:
        client.out += b"$%d\r\n%b\r\n" % (len(reply), reply)
    elif kind is ErrorReply:
        cmd.failed_calls += 1
        reply_error(client, reply)
    else:
        write_reply(client.out, reply, client.resp3)
    if elapsed >= WATCH_US:
        after_command(client, cmd, argv, elapsed)


def _refresh_slow_path() -> None:
    global SLOW_PATH
    SLOW_PATH = PROPAGATING or PAUSED or REPLICATION


def set_propagating(enabled: bool) -> None:
    global PROPAGATING
    PROPAGATING = enabled
    _refresh_slow_path()


def set_paused(paused: bool) -> None:
    global PAUSED
    PAUSED = paused
    _refresh_slow_path()


def set_replication_checks(enabled: bool) -> None:
    global REPLICATION
    REPLICATION = enabled
    _refresh_slow_path()


def set_maxmemory(enabled: bool) -> None:
    global MAXMEMORY
    MAXMEMORY = enabled


def call(client, cmd: Command, argv: list[bytes]) -> None:
    """Invoke the handler, time it, and write its reply. No policy checks here."""
    if PROPAGATING:
        _call_propagating(client, cmd, argv)
        return
    client.clock.pinned = None
    start = perf_counter_ns()
    try:
        reply = cmd.handler(client, argv)
    except Exception as exc:
        reply = exc if isinstance(exc, ErrorReply) else internal_error(client, cmd, exc)
    _finish_call(client, cmd, argv, reply, (perf_counter_ns() - start) // 1000)


def _finish_call(client, cmd: Command, argv: list[bytes], reply, elapsed: int) -> None:
    """The bookkeeping after a handler: command stats, the reply, the slow log / latency / MONITOR feed."""
    cmd.usec += elapsed
    cmd.calls += 1
    if elapsed and LATENCY_TRACKING:  # calls under 1 us need nothing (node.monitoring.histogram)
        try:
            cmd.latency[elapsed] += 1  # 1..63 us
        except (TypeError, IndexError):  # no histogram list yet (None), or 64 us and more
            record_latency(cmd, elapsed)
    client.last_command = cmd
    if type(reply) is Raw:
        client.out += reply.data
    elif isinstance(reply, ErrorReply):
        cmd.failed_calls += 1
        reply_error(client, reply)
    else:
        write_reply(client.out, reply, client.resp3)
    if client.tracking is not None and "readonly" in cmd.flags:
        remember_keys(client, cmd, argv)  # CLIENT TRACKING (node.tracking)
    if elapsed >= WATCH_US:
        after_command(client, cmd, argv, elapsed)


def _call_propagating(client, cmd: Command, argv: list[bytes]) -> None:
    """call() while replicas or the AOF listen: also hand the command's effects to node.propagation.

    A write command that changed something is propagated as sent, or as its
    handler rewrote it (``client.propagate_as``). The unit is flushed when the
    outermost call ends, so EXEC and scripts send one MULTI/EXEC block.
    """
    node = client.node
    propagation = node.propagation
    # Only the client's database (and the node-wide counter) can move, except for _CROSS_DB commands.
    cross_db = cmd.name in _CROSS_DB
    db = client.db
    before = node.dirty if cross_db else db.dirty + node._dirty
    client.propagate_as = None
    propagation.depth += 1
    try:
        client.clock.pinned = None
        start = perf_counter_ns()
        try:
            reply = cmd.handler(client, argv)
        except Exception as exc:
            reply = exc if isinstance(exc, ErrorReply) else internal_error(client, cmd, exc)
        elapsed = (perf_counter_ns() - start) // 1000
        rewritten = client.propagate_as
        client.propagate_as = None
        changed = (node.dirty if cross_db else db.dirty + node._dirty) != before
        if cmd.is_write and changed and (cmd.parent or cmd).name not in SELF_PROPAGATING:
            if rewritten is None:
                propagation.ops.append((client.db_index, argv))
            elif rewritten:
                propagation.ops.append((client.db_index, rewritten))
    finally:
        propagation.depth -= 1
        if propagation.depth == 0:
            propagation.flush()
    _finish_call(client, cmd, argv, reply, elapsed)


def _gate(client, cmd: Command, argv: list[bytes]) -> bool:
    """Run ``node.gate_hook`` (cluster routing); True if it answered the request itself.

    A bug in the hook costs this request an error reply, never the node.
    """
    hook = client.node.gate_hook
    if hook is None:
        return False
    try:
        return hook(client, cmd, argv)
    except Exception as exc:
        reply_error(client, internal_error(client, cmd, exc))
        return True


def _reject(client, cmd: Command | None, error: ErrorReply) -> None:
    if cmd is not None:
        cmd.rejected_calls += 1
    if client.multi is not None:
        client.multi_failed = True  # Redis's flagTransaction: EXEC will answer EXECABORT
    hook = client.node.reject_hook
    if hook is not None:
        hook(client, cmd, error)  # e.g. MULTI marks the transaction as failed
    if client.reply_mode == REPLY_ON:
        reply_error(client, error)


def _execute_gated(client, cmd: Command, argv: list[bytes]) -> None:
    """The slow path: authentication, reply modes, MULTI and pub/sub context."""
    if not client.authenticated and "no_auth" not in cmd.flags and client.node.auth_required():
        _reject(client, cmd, _NO_AUTH_OK)
        return
    in_multi = client.multi is not None
    if in_multi and "no_multi" in cmd.flags:
        _reject(client, cmd, _NOT_IN_MULTI)
        return
    user = client.acl_user
    if user is not None and not user.unrestricted and user.permits(cmd, argv)[0]:
        _reject(client, cmd, client.node.acl.check_command(client, cmd, argv))  # NOPERM, logged
        return
    if client.pubsub_channels or client.pubsub_patterns or client.pubsub_shard_channels:
        if not client.resp3 and (cmd.parent or cmd).name.encode() not in _PUBSUB_ALLOWED:
            _reject(
                client,
                cmd,
                ErrorReply(
                    f"ERR Can't execute '{cmd.fullname}': only (P|S)SUBSCRIBE / "
                    "(P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
                ),
            )
            return
    if "M" not in client.flags and _gate(client, cmd, argv):  # (our primary's link is never refused)
        return
    if REPLICATION:
        refused = client.node.replication.check(client, cmd)  # NOREPLICAS, READONLY, MASTERDOWN
        if refused is not None:
            _reject(client, cmd, refused)
            return
    if PAUSED:
        pause = client.node.pause
        if pause.holds(client, cmd, argv):
            pause.postpone(client, argv)  # runs again, from the top, when the pause ends
            return
    if MAXMEMORY:
        oom = client.node.memory.check(client, cmd, argv)
        if oom is not None:
            _reject(client, cmd, oom)
            return
    queue = in_multi and (cmd.parent or cmd).name.encode() not in _MULTI_PASSTHROUGH
    mode = client.reply_mode
    if mode == REPLY_ON:
        if queue:
            queue_command(client, cmd, argv)
        else:
            call(client, cmd, argv)
        return
    # CLIENT REPLY SKIP leaves REPLY_SKIP_NEXT; this is the command it skips.
    if mode == REPLY_SKIP_NEXT:
        client.reply_mode = mode = REPLY_SKIP
    mark = len(client.out)
    pubsub = client.node.pubsub
    pubsub.hold_pushes(client)  # pub/sub pushes are sent even with replies off
    if queue:
        queue_command(client, cmd, argv)
    else:
        call(client, cmd, argv)
    pushes = pubsub.release_pushes()
    # A handler that turned replies back ON (CLIENT REPLY ON) keeps its reply.
    if (mode == REPLY_OFF or mode == REPLY_SKIP) and client.reply_mode != REPLY_ON:
        del client.out[mark:]
        if pushes:
            client.out += pushes
    if mode == REPLY_SKIP and client.reply_mode == REPLY_SKIP:
        client.reply_mode = REPLY_ON
    client.refresh_gate()
