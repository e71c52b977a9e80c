"""Server commands: INFO, CONFIG, DEBUG, SHUTDOWN, TIME, LASTSAVE, SWAPDB, FLUSHALL/FLUSHDB, DBSIZE.

Replies and error texts are Redis 7.0's, checked against a real redis-server.
SHUTDOWN, FLUSHALL and DEBUG RELOAD save and load through ``node.rdb``
(node/persistence/snapshot.py).
"""

from __future__ import annotations

import os
import re
import time

from node.commands.args import SYNTAX_ERROR
from node.commands.table import all_commands, command, container
from node.config import DIRECTIVES, ConfigError
from node.debug_digest import dataset_digest, hexdigest, key_digest
from node.dispatch import cstr, reply_error
from node.engine.glob import compile_glob
from node.info import info_text, sampler_of
from node.propagation import also_propagate, prevent
from node.resp import NO_REPLY, OK, ErrorReply, SimpleString, Verbatim
from node.tracking import invalidate_on_flush

_DEBUG_REFUSED = ErrorReply(
    'ERR DEBUG command not allowed. If the enable-debug-command option is set to "local", you can run it '
    "from a local connection, otherwise you need to set this option in the configuration file, and then "
    "restart the server."
)


def is_local_client(client) -> bool:
    """Redis's islocalClient: a unix socket, or 127.0.0.1 / ::1 as the peer address."""
    if getattr(client, "is_unix", False):
        return True
    addr = client.addr
    return addr.startswith("127.0.0.1:") or addr.startswith("[::1]:")


def protected_action_allowed(setting: str, client) -> bool:
    return setting == "yes" or (setting == "local" and is_local_client(client))


# ----------------------------------------------------------- FLUSH / DBSIZE


def _flush_mode(argv) -> None:
    if len(argv) > 2:
        raise SYNTAX_ERROR
    if len(argv) == 2 and argv[1].lower() not in (b"async", b"sync"):
        raise SYNTAX_ERROR


@command("flushall", -1, "write", group="server", summary="Remove all keys from all databases",
         since="1.0.0", acl=("keyspace", "dangerous"),
         complexity="O(N) where N is the total number of keys in all databases",
         tips=("request_policy:all_shards", "response_policy:all_succeeded"))
def flushall(client, argv):
    _flush_mode(argv)
    node = client.node
    for db in node.dbs:
        node.touch_watched_in_db(db.index)
        node.dirty += db.clear()
        node.signal_all_in_db(db.index)  # blocked XREADGROUP clients get -UNBLOCKED
    invalidate_on_flush(node)  # CLIENT TRACKING: a null invalidation to tracking clients
    # flushAllDataAndResetRDB: a running BGSAVE would write the old data back; with save points the
    # empty dataset is saved at once, so a restart cannot bring the flushed keys back.
    saving = bool(node.config["save"])
    node.rdb.kill_child(wait=saving)  # reaped before the save below, so it cannot rename after it
    if saving:
        node.rdb.save()
    _force_propagation(client, argv)
    return OK


def _force_propagation(client, argv) -> None:
    """Redis's forceCommandPropagation: FLUSHALL/FLUSHDB replicate even when nothing was there to delete."""
    if client.node.propagation.enabled:
        also_propagate(client, *argv)
        prevent(client)


@command("flushdb", -1, "write", group="server", summary="Remove all keys from the current database",
         since="1.0.0", acl=("keyspace", "dangerous"),
         complexity="O(N) where N is the number of keys in the selected database",
         tips=("request_policy:all_shards", "response_policy:all_succeeded"))
def flushdb(client, argv):
    _flush_mode(argv)
    client.node.touch_watched_in_db(client.db_index)
    client.node.dirty += client.db.clear()
    client.node.signal_all_in_db(client.db_index)  # blocked XREADGROUP clients get -UNBLOCKED
    invalidate_on_flush(client.node)  # CLIENT TRACKING: a null invalidation to tracking clients
    _force_propagation(client, argv)
    return OK


@command("dbsize", 1, "readonly fast", group="server", summary="Return the number of keys in the selected database",
         since="1.0.0", acl=("keyspace",), complexity="O(1)",
         tips=("request_policy:all_shards", "response_policy:agg_sum"))
def dbsize(client, argv):
    return client.db.size


@command("swapdb", 3, "write fast", group="server", summary="Swaps two Redis databases", since="4.0.0",
         acl=("keyspace", "dangerous"),
         complexity="O(N) where N is the count of clients watching or blocking on keys from both databases.")
def swapdb(client, argv):
    node = client.node
    if node.cluster_enabled:
        raise ErrorReply("ERR SWAPDB is not allowed in cluster mode")
    first = _long(argv[1], "ERR invalid first DB index")
    second = _long(argv[2], "ERR invalid second DB index")
    count = len(node.dbs)
    if not (0 <= first < count and 0 <= second < count):
        raise ErrorReply("ERR DB index is out of range")
    if first != second:
        # WATCHes on keys present in either database before or after are invalidated.
        for index in (first, second):
            node.touch_watched_in_db(index)
        node.dbs[first].swap_contents(node.dbs[second])
        for index in (first, second):
            node.touch_watched_in_db(index)
            node.signal_all_in_db(index)
    node.dirty += 1
    return OK


def _long(arg: bytes, message: str) -> int:
    from node.commands.args import to_int_or_none

    value = to_int_or_none(arg)
    if value is None:
        raise ErrorReply(message)
    return value


# --------------------------------------------------------- TIME / LASTSAVE


@command("time", 1, "loading stale fast", group="server", summary="Return the current server time",
         since="2.6.0", complexity="O(1)", tips=("nondeterministic_output",))
def time_(client, argv):
    now_us = time.time_ns() // 1000
    return [str(now_us // 1_000_000).encode(), str(now_us % 1_000_000).encode()]


@command("lastsave", 1, "loading stale fast", group="server",
         summary="Get the UNIX time stamp of the last successful save to disk", since="1.0.0",
         acl=("admin", "dangerous"), complexity="O(1)", tips=("nondeterministic_output",))
def lastsave(client, argv):
    return client.node.lastsave


# ---------------------------------------------------------------------- INFO


@command("info", -1, "loading stale", group="server", summary="Get information and statistics about the server",
         since="1.0.0", acl=("dangerous",), complexity="O(1)",
         tips=("nondeterministic_output", "request_policy:all_shards", "response_policy:special"))
def info(client, argv):
    """RESP3 gets a verbatim string (``=N\\r\\ntxt:...``), RESP2 a bulk string, as Redis."""
    return Verbatim(info_text(client.node, argv[1:]))


# -------------------------------------------------------------------- CONFIG

container("config", -2, group="server", summary="A container for server configuration commands", since="2.0.0",
          complexity="Depends on subcommand.")


@command("get", -3, "admin noscript loading stale", parent="config", group="server",
         summary="Get the values of configuration parameters", since="2.0.0",
         complexity="O(N) when N is the number of configuration parameters provided")
def config_get(client, argv):
    """Patterns match every name (aliases too) but hidden ones; a plain name is looked up directly.

    As Redis: a name without ``*?[`` is returned under the spelling asked for;
    a name already in the reply (compared case-insensitively) is not repeated.
    """
    config = client.node.config
    matches: dict[str, tuple[str, str]] = {}  # lower-case name -> (name to print, canonical)
    for raw in argv[2:]:
        pattern = raw.decode("utf-8", "surrogateescape")
        if not any(c in pattern for c in "*?["):
            low = pattern.lower()
            if low in matches:
                continue
            directive = DIRECTIVES.get(low)
            if directive is not None:
                matches[low] = (pattern, low)
            continue
        match = compile_glob(raw, nocase=True)
        for name, directive in DIRECTIVES.items():
            if directive.hidden or name in matches:
                continue
            if match(name.encode()):
                matches[name] = (name, name)
    reply: dict[bytes, bytes] = {}
    for shown, name in matches.values():
        reply[shown.encode("utf-8", "surrogateescape")] = config.get_text(name).encode("utf-8", "surrogateescape")
    return reply


def _config_set_error(name: str, reason: str) -> ErrorReply:
    return ErrorReply(f"ERR CONFIG SET failed (possibly related to argument '{name}') - {reason}")


@command("set", -4, "admin noscript loading stale", parent="config", group="server",
         summary="Set configuration parameters to the given values", since="2.0.0",
         complexity="O(N) when N is the number of configuration parameters provided",
         tips=("request_policy:all_nodes", "response_policy:all_succeeded"))
def config_set(client, argv):
    """All pairs are checked, then parsed, then applied: any failure leaves every value as it was."""
    if len(argv) % 2:
        raise SYNTAX_ERROR
    node = client.node
    config = node.config
    install_config_hooks(node)
    protected_ok = protected_action_allowed(config["enable-protected-configs"], client)
    pairs = [(argv[i].decode("utf-8", "surrogateescape"), argv[i + 1].decode("utf-8", "surrogateescape"))
             for i in range(2, len(argv), 2)]
    chosen = []
    error: ErrorReply | None = None
    for name, value in pairs:
        directive = DIRECTIVES.get(name.lower())
        if directive is None:
            if error is None:
                error = ErrorReply(f"ERR Unknown option or number of arguments for CONFIG SET - '{name}'")
            continue
        if error is not None:
            continue
        try:
            config.check_settable(name, protected_ok)
        except ConfigError as exc:
            error = _config_set_error(name, exc.message)
            continue
        # The same entry twice (an alias is its own entry, as in Redis) is refused.
        if any(prev_name.lower() == name.lower() for prev_name, _, _ in chosen):
            error = _config_set_error(name, "duplicate parameter")
            continue
        chosen.append((name, directive, value))
    if error is not None:
        raise error
    changes = []
    for name, directive, value in chosen:
        try:
            changes.append((directive, config.parse_set_value(directive, value)))
        except ConfigError as exc:
            raise _config_set_error(name.lower(), exc.message) from None
    try:
        config.set_many(changes)
    except ConfigError as exc:
        bad = getattr(exc, "directive", None)
        raise _config_set_error(bad.name if bad else "", exc.message) from None
    return OK


def install_config_hooks(node) -> None:
    """Side effects of CONFIG SET that Shoal acts on now (idempotent; loglevel is main.py's)."""
    if getattr(node, "_config_hooks_installed", False):
        return
    node._config_hooks_installed = True
    config = node.config

    def proto_max_bulk_len(value) -> None:
        for c in list(node.clients.values()):
            parser = getattr(c, "parser", None)
            if parser is not None:
                parser.max_bulk_len = value

    def change_dir(value) -> None:
        try:
            os.chdir(value)
        except OSError as exc:
            raise ConfigError(exc.strerror or str(exc)) from None

    config.on_change("proto-max-bulk-len", proto_max_bulk_len)
    config.on_change("dir", change_dir)


@command("resetstat", 2, "admin noscript loading stale", parent="config", group="server",
         summary="Reset the stats returned by INFO", since="2.0.0", complexity="O(1)")
def config_resetstat(client, argv):
    node = client.node
    node.stats.reset()
    for cmd in all_commands():
        cmd.reset_stats()
    for db in node.dbs:
        db.hits = db.misses = 0
    sampler_of(node).reset()
    node.used_memory_peak = 0
    return OK


@command("rewrite", 2, "admin noscript loading stale", parent="config", group="server",
         summary="Rewrite the configuration file with the in memory configuration", since="2.8.0",
         complexity="O(1)")
def config_rewrite(client, argv):
    node = client.node
    path = node.config.config_file or node.config_file
    if not path:
        raise ErrorReply("ERR The server is running without a config file")
    try:
        node.config.rewrite(path)
    except OSError as exc:
        node.logger.warning(f"CONFIG REWRITE failed: {exc.strerror}")
        raise ErrorReply(f"ERR Rewriting config file: {exc.strerror}") from None
    node.logger.notice("CONFIG REWRITE executed with success.")
    return OK


_CONFIG_HELP = [
    "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GET <pattern>",
    "    Return parameters matching the glob-like <pattern> and their values.",
    "SET <directive> <value>",
    "    Set the configuration <directive> to <value>.",
    "RESETSTAT",
    "    Reset statistics reported by the INFO command.",
    "REWRITE",
    "    Rewrite the configuration file.",
    "HELP",
    "    Prints this help.",
]


@command("help", 2, "loading stale", parent="config", group="server",
         summary="Show helpful text about the different subcommands", since="5.0.0", complexity="O(1)")
def config_help(client, argv):
    return [SimpleString(line.encode()) for line in _CONFIG_HELP]


# --------------------------------------------------------------------- DEBUG

_DEBUG_HELP = [
    "DEBUG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DIGEST",
    "    Output a hex signature representing the current DB content.",
    "DIGEST-VALUE <key> [<key> ...]",
    "    Output a hex signature of the values of all the specified keys.",
    "ERROR <string>",
    "    Return a Redis protocol error with <string> as message. Useful for clients",
    "    unit tests to simulate Redis errors.",
    "LOG <message>",
    "    Write <message> to the server log.",
    "OBJECT <key>",
    "    Show low level info about `key` and associated value.",
    "RELOAD [option ...]",
    "    Save the RDB on disk and reload it back to memory. Valid <option> values:",
    "    * MERGE: conflicting keys will be loaded from RDB.",
    "    * NOFLUSH: the existing database will not be removed before load, but",
    "      conflicting keys will generate an exception and kill the server.",
    "    * NOSAVE: the database will be loaded from an existing RDB file.",
    "    Examples:",
    "    * DEBUG RELOAD: verify that the server is able to persist, flush and reload",
    "      the database.",
    "    * DEBUG RELOAD NOSAVE: replace the current database with the contents of an",
    "      existing RDB file.",
    "    * DEBUG RELOAD NOSAVE NOFLUSH MERGE: add the contents of an existing RDB",
    "      file to the database.",
    "SET-ACTIVE-EXPIRE <0|1>",
    "    Setting it to 0 disables expiring keys in background when they are not",
    "    accessed (otherwise the Redis behavior). Setting it to 1 reenables back the",
    "    default.",
    "SLEEP <seconds>",
    "    Stop the server for <seconds>. Decimals allowed.",
    "CLUSTER-BUS DROP <type>|ALL [<node-id>|*]",
    "    (Shoal, for tests) Discard cluster bus messages of <type> (PING, PONG, MEET, FAIL,",
    "    PUBLISH, FAILOVER_AUTH_REQUEST, FAILOVER_AUTH_ACK, UPDATE, MFSTART, MODULE,",
    "    PUBLISHSHARD) received from a node, or from every node.",
    "CLUSTER-BUS DELAY <node-id>|* <ms>",
    "    (Shoal, for tests) Deliver bus messages received from a node <ms> late, in order.",
    "CLUSTER-BUS CLOSE <node-id>|*",
    "    (Shoal, for tests) Close the bus links to and from a node now; they reconnect.",
    "CLUSTER-BUS RESET",
    "    (Shoal, for tests) Remove every DROP and DELAY.",
    "CLUSTER-BUS STATUS",
    "    (Shoal, for tests) List the active DROP and DELAY faults.",
    "HELP",
    "    Prints this help.",
]

_ATOF = re.compile(rb"\s*[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?|inf(?:inity)?|nan)", re.I)
_ATOI = re.compile(rb"\s*[+-]?\d+")


def _atof(arg: bytes) -> float:
    """C's atof: the longest numeric prefix, 0 if there is none."""
    m = _ATOF.match(arg)
    return float(m.group().strip()) if m else 0.0


def _atoi(arg: bytes) -> int:
    m = _ATOI.match(arg)
    return int(m.group().strip()) if m else 0


def _refuse(client, cmd_name: str, error: ErrorReply):
    """Answer as Redis's processCommand rejection: counted as rejected, not as a call."""
    from node.commands.table import lookup

    cmd = lookup(cmd_name.encode())
    if cmd is not None:
        cmd.calls -= 1  # dispatch counts this invocation as a call afterwards; Redis does not
        cmd.rejected_calls += 1
    reply_error(client, error)
    return NO_REPLY


def _serialized_length(value) -> int:
    """rdbSavedObjectLen for a string: int encoding (32-bit) or length prefix + bytes (no LZF)."""
    data = bytes(value)
    from node.resp.parser import string2ll

    number = string2ll(data) if len(data) <= 11 else None
    if number is not None and str(number).encode() == data:
        if -(2**7) <= number < 2**7:
            return 2
        if -(2**15) <= number < 2**15:
            return 3
        if -(2**31) <= number < 2**31:
            return 5
    n = len(data)
    prefix = 1 if n < 64 else 2 if n < 16384 else 5 if n < 2**32 else 9
    return prefix + n


def _debug_object(client, key: bytes):
    from node.commands.keys import object_refcount
    from node.engine.values import object_encoding

    db = client.db
    value = db.lookup(key)
    if value is None:
        raise ErrorReply("ERR no such key")
    hits = db.hits
    refcount = object_refcount(client, [b"object", b"refcount", key])
    db.hits = hits  # DEBUG OBJECT is not a keyspace read
    encoding = object_encoding(value).decode()
    if type(value) in (bytes, bytearray):
        length = _serialized_length(value)
    else:
        length = 0
    lru = int(time.time()) & ((1 << 24) - 1)
    return SimpleString(
        (f"Value at:0x{id(value):x} refcount:{refcount} encoding:{encoding} "
         f"serializedlength:{length} lru:{lru} lru_seconds_idle:0").encode()
    )


@command("debug", -2, "admin noscript loading stale protected", group="server",
         summary="A container for debugging commands", since="1.0.0", complexity="Depends on subcommand.")
def debug(client, argv):
    node = client.node
    if not protected_action_allowed(node.config["enable-debug-command"], client):
        return _refuse(client, "debug", _DEBUG_REFUSED)
    sub = argv[1].lower()
    argc = len(argv)
    if sub == b"help" and argc == 2:
        return [SimpleString(line.encode()) for line in _DEBUG_HELP]
    if sub == b"sleep" and argc == 3:
        seconds = _atof(argv[2])
        if seconds > 0:
            time.sleep(seconds)  # the whole server stops, as in Redis
        return OK
    if sub == b"object" and argc == 3:
        return _debug_object(client, argv[2])
    if sub == b"set-active-expire" and argc == 3:
        node.active_expire_enabled = bool(_atoi(argv[2]))
        return OK
    if sub == b"reload" and argc >= 2:
        options = {option.lower() for option in argv[2:]}
        if not options <= {b"merge", b"noflush", b"nosave"}:
            raise ErrorReply("ERR DEBUG RELOAD only supports the MERGE, NOFLUSH and NOSAVE options.")
        if b"noflush" not in options:
            invalidate_on_flush(node)  # CLIENT TRACKING: the data is emptied before the reload
        error = node.rdb.debug_reload(save=b"nosave" not in options, flush=b"noflush" not in options,
                                      merge=b"merge" in options)
        return OK if error is None else error
    if sub == b"digest" and argc == 2:
        try:
            return SimpleString(hexdigest(dataset_digest(node.dbs)))
        except TypeError as exc:
            raise ErrorReply(f"ERR {exc}") from None
    if sub == b"digest-value" and argc >= 2:
        try:
            return [SimpleString(hexdigest(key_digest(client.db, key))) for key in argv[2:]]
        except TypeError as exc:
            raise ErrorReply(f"ERR {exc}") from None
    if sub == b"log" and argc == 3:
        node.logger.warning("DEBUG LOG: " + cstr(argv[2]))
        return OK
    if sub == b"error" and argc == 3:
        return ErrorReply(cstr(argv[2]))
    if sub == b"cluster-bus" and argc >= 3:  # Shoal, test only: bus faults (node.cluster.faults)
        from node.cluster.faults import debug_cluster_bus

        return debug_cluster_bus(node.cluster, argv)
    raise ErrorReply(
        f"ERR unknown subcommand or wrong number of arguments for '{cstr(argv[1], 128)}'. Try DEBUG HELP."
    )


# ------------------------------------------------------------------ SHUTDOWN


@command("shutdown", -1, "admin noscript loading stale no_multi allow_busy", group="server",
         summary="Synchronously save the dataset to disk and then shut down the server", since="1.0.0",
         complexity="O(N) when saving, where N is the total number of keys in all databases when saving "
                    "data, otherwise O(1)")
def shutdown(client, argv):
    """Save if asked or if save points are set, then stop after this pass; no reply on success.

    The save is ``node.rdb.prepare_shutdown`` (Redis's finishShutdown): a
    BGSAVE child is killed first; a failed save keeps the server running and
    answers an error unless FORCE. Without replicas there is never a shutdown
    in progress (waiting for them) for ABORT to cancel.
    """
    flags: set[bytes] = set()
    abort = False
    for arg in argv[1:]:
        word = arg.lower()
        if word in (b"nosave", b"save", b"now", b"force"):
            flags.add(word)
        elif word == b"abort":
            abort = True
        else:
            raise SYNTAX_ERROR
    if (abort and flags) or (b"save" in flags and b"nosave" in flags):
        raise SYNTAX_ERROR
    node = client.node
    if abort:
        raise ErrorReply("ERR No shutdown in progress.")
    scripting = getattr(node, "_scripting", None)
    if b"nosave" not in flags and scripting is not None and scripting.running is not None:
        raise scripting.busy_error()  # a timed-out script: only SHUTDOWN NOSAVE may stop the server
    if not node.rdb.prepare_shutdown({f.decode() for f in flags}):
        raise ErrorReply("ERR Errors trying to SHUTDOWN. Check logs.")
    node.shutdown_flags = {f.decode() for f in flags}
    node.shutdown_requested = True
    client.close_after_reply = True
    return NO_REPLY
