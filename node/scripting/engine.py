"""Lua scripting for one node: EVAL's script cache, FUNCTION libraries, and running them.

Two Lua states, as in Redis: one for EVAL scripts, one for function libraries.
Each is a stock Lua 5.1 (lupa) turned into Redis's sandbox by ``sandbox.lua``.
A script calls commands through ``redis.call``, which lands in
``Scripting.lua_call``: the command runs through the same handlers as a client
command, on a client-like ``ScriptClient`` that shares the caller's database,
and its reply is converted to Lua values (``convert``).

While a script runs, a Lua count hook calls back every 100000 VM
instructions; once the script has run longer than ``busy-reply-threshold`` the
hook lets the server answer other clients (``node.busy_poll``): SCRIPT KILL,
FUNCTION KILL and SHUTDOWN NOSAVE work, everything else gets BUSY.
"""

from __future__ import annotations

import hashlib
import time
from time import perf_counter_ns

from lupa import lua51

from node.client import REPLY_ON, Client
from node.commands.table import _FAST_LOOKUP, lookup
from node.resp import ErrorReply, Raw
from node.resp.inline import split_inline_args
from node.scripting import rdb
from node.scripting.bytecode import untail
from node.scripting.convert import ReplyConverter, error_text
from node.scripting.libs import Libraries
import node.monitoring.histogram as _histogram
from node.tracking import remember_keys

__all__ = ["Scripting", "ScriptClient", "get_scripting"]

_SANDBOX = None
REDIS_VERSION = b"7.0.15"
REDIS_VERSION_NUM = 0x07000F
LOAD_TIMEOUT_MS = 500
# A script cannot make the node allocate without bound: past this the script fails
# with Lua's 'not enough memory' (Redis has no cap).
LUA_MAX_MEMORY = 1 << 30

_OOM_EXEMPT = frozenset((b"allow-oom", b"no-writes"))
FLAG_NAMES = (b"no-writes", b"allow-oom", b"allow-stale", b"no-cluster", b"allow-cross-slot-keys")
# Shebang flags EVAL accepts (Redis's scripts_flags_def).
_EVAL_FLAGS = FLAG_NAMES

NOSCRIPT = ErrorReply("NOSCRIPT No matching script. Please use EVAL.")
BUSY_EVAL = ErrorReply("BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.")
BUSY_FUNCTION = ErrorReply(
    "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE."
)
NOTBUSY = ErrorReply("NOTBUSY No scripts in execution right now.")
UNKILLABLE = ErrorReply(
    "UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait "
    "the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command."
)
_NAME_ERROR = (
    "Library names can only contain letters, numbers, or underscores(_) and must be at least one character long"
)
_NAME_CHARS = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


def _sandbox_source() -> str:
    global _SANDBOX
    if _SANDBOX is None:
        import os

        with open(os.path.join(os.path.dirname(__file__), "sandbox.lua"), encoding="utf-8") as fh:
            _SANDBOX = fh.read()
    return _SANDBOX


def _deny_attribute(obj, name, is_setting):
    # Scripts never get Python objects, but if one ever leaked, nothing on it is reachable.
    raise AttributeError("not allowed")


def valid_name(name: bytes) -> bool:
    return bool(name) and all(c in _NAME_CHARS for c in name)


class ScriptClient(Client):
    """The client a script's commands run as: the caller's database, RESP2 by default, never blocks."""

    __slots__ = ()

    def __init__(self, node) -> None:  # noqa: D107 -- deliberately not Client.__init__: no socket, no parser
        for slot in Client.__slots__:
            setattr(self, slot, None)
        self.node = node
        self.clock = node.clock
        self.id = 0
        self.fd = -1
        self.addr = ""
        self.laddr = ""
        self.parser = None
        self.out = bytearray()
        self.resp3 = False
        self.db_index = 0
        self.db = node.dbs[0]
        self.name = b""
        self.lib_name = b""
        self.lib_ver = b""
        self.authenticated = True
        self.user = b"default"
        self.created_ms = node.clock.wall_ms()
        self.last_interaction_ms = self.created_ms
        self.last_command = None
        self.close_after_reply = False
        self.killed = False
        self.reply_mode = REPLY_ON
        self.no_evict = False
        self.multi = None
        self.watched = None
        self.dirty_cas = False
        self.pubsub_channels = {}
        self.pubsub_patterns = {}
        self.pubsub_shard_channels = {}
        if "obuf_soft_limit_reached_time" in Client.__slots__:
            self.obuf_soft_limit_reached_time = 0
        self.blocked = None
        self.deny_blocking = True
        self.multi_failed = False
        self.asking = False
        self.readonly = False
        self.gated = False
        self.flags = ""
        self.qbuf_peak = 0
        self.is_unix = False

    def refresh_gate(self) -> None:
        self.gated = False


class Script:
    __slots__ = ("body", "fn", "flags", "compat")

    def __init__(self, body: bytes, fn, flags: frozenset, compat: bool) -> None:
        self.body = body
        self.fn = fn
        self.flags = flags
        self.compat = compat


class Function:
    __slots__ = ("name", "fn", "desc", "flags", "library")

    def __init__(self, name: bytes, fn, desc, flags: frozenset, library) -> None:
        self.name = name
        self.fn = fn
        self.desc = desc
        self.flags = flags
        self.library = library


class Library:
    __slots__ = ("name", "code", "functions")

    def __init__(self, name: bytes, code: bytes) -> None:
        self.name = name
        self.code = code
        self.functions: dict[bytes, Function] = {}


class RunContext:
    """What Redis keeps in scriptRunCtx for the script being run."""

    __slots__ = ("caller", "argv", "name", "is_eval", "read_only", "write_dirty", "killed", "timed_out",
                 "start", "threshold_s", "sclient", "state")

    def __init__(self, caller, argv, name: bytes, is_eval: bool, read_only: bool, sclient) -> None:
        self.caller = caller
        self.argv = argv
        self.name = name
        self.is_eval = is_eval
        self.read_only = read_only
        self.write_dirty = False
        self.killed = False
        self.timed_out = False
        self.start = time.monotonic()
        self.threshold_s = 0.0
        self.sclient = sclient
        self.state = None  # the LuaState running the script (set by Scripting.run)


class LoadContext:
    __slots__ = ("library", "start", "timeout_s")

    def __init__(self, library: Library, timeout_ms: int) -> None:
        self.library = library
        self.start = time.monotonic()
        self.timeout_s = timeout_ms / 1000


class LuaState:
    """One sandboxed Lua interpreter and its entry points."""

    def __init__(self, scripting: "Scripting", mode: str) -> None:
        self.mode = mode
        self.lua = lua = lua51.LuaRuntime(
            encoding=None, register_eval=False, register_builtins=False, unpack_returned_tuples=True,
            attribute_filter=_deny_attribute, max_memory=LUA_MAX_MEMORY,
        )
        self.libs = Libraries(lua)
        self.sclient = ScriptClient(scripting.node)
        self.converter = ReplyConverter(lua)
        callbacks = {
            b"call": scripting.lua_call,
            b"acl_check": scripting.lua_acl_check,
            b"sha1hex": lambda s: hashlib.sha1(s).hexdigest().encode(),
            b"log": scripting.lua_log,
            b"setresp": scripting.lua_setresp,
            b"rand": scripting.rand,
            b"srand": scripting.srand,
            b"interrupt": scripting.interrupt,
            b"kill_message": lambda: b"Script killed by user with SCRIPT KILL...",
            b"register": scripting.lua_register,
            b"set_null": self.libs.set_null,
            b"untail": untail,
            b"version": REDIS_VERSION,
            b"version_num": REDIS_VERSION_NUM,
        }
        callbacks.update(self.libs.tables())
        boot = lua.execute(
            "local src, name = ... return assert(loadstring(src, name))",
            _sandbox_source().encode(), b"=shoal_sandbox",
        )
        self.api = boot(lua.table_from(callbacks), mode.encode())
        self._compile = self.api[b"compile"]
        self._run = self.api[b"run"]
        self._load_library = self.api[b"load_library"]

    def compile(self, code: bytes, chunkname: bytes):
        fn, err = self._compile(code, chunkname)
        if fn is None:
            return None, (err or b"").decode("utf-8", "surrogateescape")
        return fn, None

    def table(self, items: list[bytes]):
        return self.lua.table_from(items)


# redis.call's text for small integral Lua numbers (what "%.17g" makes of them).
_NUMBER_TEXT = {n: b"%.17g" % n for n in range(-1024, 1025)}

_RAND_A = 0x5DEECE66D
_RAND_C = 0xB
_RAND_MASK = (1 << 48) - 1


class Scripting:
    def __init__(self, node) -> None:
        self.node = node
        self.rand_state = 0x1234ABCD330E  # rand48's default seed, as redisLrand48 starts
        self.running: RunContext | None = None
        self.allow_oom = False  # the running script declared allow-oom (node.memory's OOM checks)
        self.loading: LoadContext | None = None
        self.scripts: dict[bytes, Script] = {}
        self.libraries: dict[bytes, Library] = {}
        self.functions: dict[bytes, Function] = {}  # lower-cased name -> Function
        # redis.call's command lookups: name as the script spells it -> Command, for commands
        # without subcommands that scripts may run (the table is fixed once commands are imported).
        self.call_cache: dict = {}
        self.by_body: dict[bytes, tuple[bytes, Script]] = {}  # script body -> (sha, Script), see create_script
        self.eval_state = LuaState(self, "eval")
        self.function_state = LuaState(self, "function")

    # ------------------------------------------------------------ Lua callbacks

    def rand(self) -> float:
        x = (_RAND_A * self.rand_state + _RAND_C) & _RAND_MASK
        self.rand_state = x
        value = x >> 17
        return (value % 2147483647) / 2147483647

    def srand(self, seed) -> None:
        self.rand_state = (((int(seed) & 0xFFFFFFFF) << 16) | 0x330E) & _RAND_MASK

    def lua_log(self, level, message: bytes) -> None:
        self.node.logger.log(int(level), message.decode("utf-8", "replace"))

    def lua_setresp(self, n) -> None:
        ctx = self.running
        if ctx is not None:
            ctx.sclient.resp3 = int(n) == 3

    def _error(self, state: LuaState, text: str, ignore: bool):
        return state.converter.error_table(text, ignore)

    def _count_error(self, text: str) -> None:
        stats = self.node.stats
        stats.total_error_replies += 1
        code = text.split(" ", 1)[0]
        stats.error_codes[code] = stats.error_codes.get(code, 0) + 1

    def _script_error(self, state: LuaState, message: str, cmd=None):
        """An error scriptCall raises before running the command: counted now, flagged as counted."""
        text = error_text(message)
        self._count_error(text)
        if cmd is not None:
            cmd.rejected_calls += 1
        return self._error(state, text, True), True

    def _args(self, args):
        argv = []
        for arg in args:
            kind = type(arg)
            if kind is bytes:
                argv.append(arg)
            elif kind is int or kind is float:
                argv.append(b"%.17g" % arg)
            else:
                return None
        return argv

    def _lookup(self, argv):
        cmd = lookup(argv[0])
        if cmd is not None and cmd.subcommands and len(argv) >= 2:
            cmd = cmd.subcommands.get(argv[1].lower())
        return cmd

    def lua_call(self, *args):
        ctx = self.running
        if ctx is None or not args:
            return self._lua_call_misuse(args)
        state = ctx.state
        argv = [*args]
        i = 0
        for arg in args:
            if type(arg) is not bytes:
                kind = type(arg)
                if kind is int:
                    text = _NUMBER_TEXT.get(arg)
                    argv[i] = b"%.17g" % arg if text is None else text
                elif kind is float:
                    argv[i] = b"%.17g" % arg
                else:
                    return self._error(
                        state, error_text("Lua redis lib command arguments must be strings or integers"), False
                    ), True
            i += 1
        cmd = self.call_cache.get(argv[0])
        if cmd is None:
            cmd = self._lookup(argv)
            if cmd is None:
                return self._script_error(state, "Unknown Redis command called from script")
            if "noscript" in cmd.flags:
                arity = cmd.arity
                if (len(argv) != arity) if arity > 0 else (len(argv) < -arity):
                    return self._script_error(state, "Wrong number of args calling Redis command from script", cmd)
                return self._script_error(state, "This Redis command is not allowed from script", cmd)
            if cmd.parent is None and not cmd.subcommands and len(self.call_cache) < 1024:
                self.call_cache[argv[0]] = cmd
        arity = cmd.arity
        if (len(argv) != arity) if arity > 0 else (len(argv) < -arity):
            return self._script_error(state, "Wrong number of args calling Redis command from script", cmd)
        caller_user = getattr(ctx.caller, "acl_user", None)
        if caller_user is not None and not caller_user.unrestricted:  # scriptVerifyACL
            refusal = self.node.acl.script_refusal(ctx.caller, cmd, argv, ctx.argv[0] if ctx.argv else b"eval")
            if refusal is not None:
                return self._script_error(state, refusal, cmd)
        if cmd.is_write:
            if ctx.read_only:
                return self._script_error(state, "Write commands are not allowed from read-only scripts.", cmd)
            if not ctx.write_dirty and self.node.memory.oom and "denyoom" in cmd.flags and not self.allow_oom:
                # scriptVerifyOOM: the node was out of memory when the script began (node.memory)
                return self._script_error(state, "-OOM command not allowed when used memory > 'maxmemory'.", cmd)
            ctx.write_dirty = True
        sclient = ctx.sclient
        if self.node.cluster is not None:
            refusal = self._cluster_refusal(ctx, cmd, argv)
            if refusal is not None:
                return self._script_error(state, refusal, cmd)
        propagation = self.node.propagation
        dirty_before = None
        if propagation.enabled and cmd.is_write:
            dirty_before = self.node.dirty
            sclient.propagate_as = None
        start = perf_counter_ns()
        try:
            reply = cmd.handler(sclient, argv)
        except ErrorReply as exc:
            reply = exc
        except Exception as exc:  # a handler bug costs one error, never the script engine
            from node.dispatch import internal_error

            reply = internal_error(sclient, cmd, exc)
        if dirty_before is not None and self.node.dirty != dirty_before:
            # Effects replication: the script's writes are propagated, never the script.
            rewritten = sclient.propagate_as
            sclient.propagate_as = None
            if rewritten is None:
                propagation.ops.append((sclient.db_index, argv))
            elif rewritten:
                propagation.ops.append((sclient.db_index, rewritten))
        elapsed = (perf_counter_ns() - start) // 1000
        cmd.usec += elapsed
        cmd.calls += 1
        if elapsed and _histogram.TRACKING:
            _histogram.record_latency(cmd, elapsed)  # LATENCY HISTOGRAM (node.monitoring.histogram)
        if "readonly" in cmd.flags and getattr(ctx.caller, "tracking", None) is not None:
            remember_keys(ctx.caller, cmd, argv)  # CLIENT TRACKING: the caller read these keys
        kind = type(reply)
        if kind is bytes or kind is int:
            return reply, False
        if isinstance(reply, ErrorReply):
            cmd.failed_calls += 1
            self._count_error(reply.message)
            return self._error(state, error_text("-" + reply.message), True), True
        return state.converter.to_lua(reply, sclient.resp3), False

    def _lua_call_misuse(self, args):
        """redis.call's errors before any command lookup: no arguments, bad argument types, no script running."""
        ctx = self.running
        state = self.eval_state if ctx is None or ctx.is_eval else self.function_state
        if not args:
            return self._error(state, error_text("Please specify at least one argument for this redis lib call"),
                               False), True
        if self._args(args) is None:
            return self._error(state, error_text("Lua redis lib command arguments must be strings or integers"),
                               False), True
        return self._error(state, error_text("redis.call/pcall can only be called inside a script invocation"),
                           False), True

    def _cluster_refusal(self, ctx, cmd, argv) -> str | None:
        """Redis's scriptVerifyClusterState: every command a script runs must be served by this node."""
        from node.cluster.routing import route_request
        from slots.route import DOWN, DOWN_READONLY, SERVE

        if cmd.first_key <= 0 and cmd.key_finder is None:
            return None
        # The inner command is routed as the caller's own (READONLY/ASKING carry over).
        verdict = route_request(self.node, self.node.cluster, ctx.caller, cmd.keys_of(argv),
                                name=(cmd.parent or cmd).name, is_write=cmd.is_write)
        if verdict is SERVE:
            return None
        if verdict is DOWN_READONLY:
            return "Script attempted to execute a write command while the cluster is down and readonly"
        if verdict is DOWN:
            return "Script attempted to execute a command while the cluster is down"
        return "Script attempted to access a non local key in a cluster node"

    def lua_acl_check(self, *args):
        state = self.eval_state if self.running is None or self.running.is_eval else self.function_state
        if not args:
            return self._error(state, error_text("Please specify at least one argument for this redis lib call"),
                               False), True
        argv = self._args(args)
        if argv is None:
            return self._error(state, error_text("Lua redis lib command arguments must be strings or integers"),
                               False), True
        cmd = self._lookup(argv)
        if cmd is None:
            return self._error(state, error_text("Invalid command passed to redis.acl_check_cmd()"), False), True
        caller = self.running.caller if self.running is not None else None
        user = getattr(caller, "acl_user", None)
        if user is None or user.unrestricted:
            return True, False
        from node.security.acl import ACL_OK

        return user.check(cmd, argv)[0] == ACL_OK, False

    def interrupt(self) -> bool:
        """The Lua count hook: True stops the script (killed, shut down, or FUNCTION LOAD timeout)."""
        load = self.loading
        if load is not None:
            return load.timeout_s > 0 and time.monotonic() - load.start > load.timeout_s
        ctx = self.running
        if ctx is None:
            return False
        node = self.node
        if not ctx.timed_out:
            elapsed = time.monotonic() - ctx.start
            if elapsed < ctx.threshold_s:
                return False
            ctx.timed_out = True
            node.logger.warning(
                "Slow script detected: still in execution after %d milliseconds. You can try killing the script "
                "using the %s command." % (elapsed * 1000, "SCRIPT KILL" if ctx.is_eval else "FUNCTION KILL")
            )
        poll = getattr(node, "busy_poll", None)
        if poll is not None:
            clock = node.clock
            pinned = clock.pinned
            try:
                poll(ctx.caller)
            finally:
                clock.pinned = pinned
        if ctx.killed:
            node.logger.warning("Lua script killed by user with SCRIPT KILL.")
            return True
        return bool(node.shutdown_requested)

    def busy_error(self) -> ErrorReply:
        ctx = self.running
        return BUSY_EVAL if ctx is None or ctx.is_eval else BUSY_FUNCTION

    def kill(self, is_eval: bool):
        ctx = self.running
        if ctx is None:
            return NOTBUSY
        if ctx.write_dirty:
            return UNKILLABLE
        if is_eval and not ctx.is_eval:
            return BUSY_FUNCTION
        if not is_eval and ctx.is_eval:
            return BUSY_EVAL
        ctx.killed = True
        return None

    # ------------------------------------------------------------ EVAL scripts

    def create_script(self, body: bytes) -> tuple[bytes, Script]:
        # EVAL sends the same body again and again: find it without hashing it with SHA1.
        known = self.by_body.get(body) if type(body) is bytes else None
        if known is not None and self.scripts.get(known[0]) is known[1]:
            return known
        sha = hashlib.sha1(body).hexdigest().encode()
        script = self.scripts.get(sha)
        if script is not None:
            if type(body) is bytes:
                self.by_body[script.body if type(script.body) is bytes else body] = (sha, script)
            return sha, script
        flags, shebang_len, compat = parse_shebang(body)
        fn, err = self.eval_state.compile(body[shebang_len:], b"@user_script")
        if fn is None:
            raise ErrorReply(f"ERR Error compiling script (new function): {err}")
        script = Script(body, fn, flags, compat)
        self.scripts[sha] = script
        if type(body) is bytes:
            self.by_body[body] = (sha, script)
        return sha, script

    def flush_scripts(self) -> None:
        self.scripts = {}
        self.by_body = {}
        self.eval_state = LuaState(self, "eval")

    # ------------------------------------------------------------ running

    def prepare(self, flags: frozenset, compat: bool, ro: bool) -> bool:
        """scriptPrepareForRun's checks; the run is read-only when this answers True."""
        if not compat:
            if b"no-cluster" in flags and self.node.cluster_enabled:
                raise ErrorReply("ERR Can not run script on cluster, 'no-cluster' flag is set.")
            if b"no-writes" not in flags and ro:
                raise ErrorReply("ERR Can not execute a script with write flag using *_ro command.")
            # A script with flags is denyoom unless allow-oom or no-writes (scriptFlagsToCmdFlags).
            if self.node.memory.oom and not flags & _OOM_EXEMPT:
                raise ErrorReply("OOM command not allowed when used memory > 'maxmemory'.")
        self.allow_oom = not compat and b"allow-oom" in flags
        return ro or (not compat and b"no-writes" in flags)

    def run(self, client, argv, fn, keys, args, name: bytes, is_eval: bool, read_only: bool):
        state = self.eval_state if is_eval else self.function_state
        sclient = state.sclient
        sclient.db_index = client.db_index
        sclient.db = client.db
        sclient.resp3 = False
        ctx = RunContext(client, argv, name, is_eval, read_only, sclient)
        ctx.state = state
        threshold = self.node.config.values["busy-reply-threshold"]
        ctx.threshold_s = threshold / 1000
        self.running = ctx
        table_from = state.lua.table_from
        try:
            result = state._run(fn, table_from(keys), table_from(args), bool(client.resp3), threshold > 0)
        except Exception as exc:  # lupa: memory errors, errors inside the reply conversion
            return ErrorReply("ERR Error running script %s, %.100s" % (name.decode("utf-8", "replace"), exc))
        finally:
            self.running = None
        return self._reply(client, argv, name, result)

    def _reply(self, client, argv, name: bytes, result):
        kind = result[0]
        if kind == b"R":
            errs = result[3]
            if len(errs):
                for line in errs.values():
                    self._count_error(line.decode("utf-8", "surrogateescape"))
            return Raw(result[1])
        if kind == b"E":
            text, ignore = result[1], result[2]
            for line in result[3].values():
                self._count_error(line.decode("utf-8", "surrogateescape"))
            return self._error_reply(argv, text.decode("utf-8", "surrogateescape"), ignore)
        if kind == b"F":
            msg, source, line, ignore = result[1], result[2], result[3], result[4]
            text = (msg or b"").decode("utf-8", "surrogateescape")
            if source is not None and line is not None:
                text += " script: %s, on %s:%s." % (
                    name.decode("utf-8", "surrogateescape"),
                    source.decode("utf-8", "surrogateescape"),
                    line.decode("utf-8", "surrogateescape"),
                )
            return self._error_reply(argv, text, ignore)
        msg = result[1].decode("utf-8", "surrogateescape")
        return ErrorReply("ERR Error running script %s, %.100s" % (name.decode("utf-8", "surrogateescape"), msg))

    def _error_reply(self, argv, text: str, ignore):
        if not ignore:
            return ErrorReply(text)
        # Already counted when the command inside the script failed: reply without counting again,
        # but the script command itself still failed.
        cmd = lookup(argv[0])
        if cmd is not None:
            cmd.failed_calls += 1
        line = text.strip("\r\n").replace("\r", " ").replace("\n", " ")
        return Raw(b"-" + line.encode("utf-8", "surrogateescape") + b"\r\n")

    # ------------------------------------------------------------ functions

    def lua_register(self, name, desc, fn, *flags):
        load = self.loading
        if load is None:
            return b"redis.register_function can only be called on FUNCTION LOAD command"
        set_flags = set()
        for flag in flags:
            word = flag.lower()
            if word not in FLAG_NAMES:
                return b"unknown flag given"
            set_flags.add(word)
        if not valid_name(name):
            return _NAME_ERROR.encode()
        library = load.library
        if name in library.functions:
            return b"Function already exists in the library"
        library.functions[name] = Function(name, fn, desc, frozenset(set_flags), library)
        return None

    def create_library(self, code: bytes, replace: bool, libraries: dict, functions: dict, timeout_ms: int) -> bytes:
        """functionsCreateWithLibraryCtx: compile ``code`` and link it into (libraries, functions)."""
        engine, name, body = extract_metadata(code)
        if not valid_name(name):
            raise ErrorReply("ERR " + _NAME_ERROR)
        if engine.lower() != b"lua":
            raise ErrorReply("ERR Engine '%s' not found" % engine.decode("utf-8", "surrogateescape"))
        old = libraries.get(name)
        if old is not None and not replace:
            raise ErrorReply("ERR Library '%s' already exists" % name.decode("utf-8", "surrogateescape"))
        if old is not None:
            _unlink(libraries, functions, old)
        try:
            library = Library(name, code)
            state = self.function_state
            fn, err = state.compile(body, b"@user_function")
            if fn is None:
                raise ErrorReply("ERR Error compiling function: " + err)
            self.loading = LoadContext(library, timeout_ms)
            try:
                err = state._load_library(fn)
            finally:
                self.loading = None
            if err is not None:
                raise ErrorReply("ERR Error registering functions: " + err.decode("utf-8", "surrogateescape"))
            if not library.functions:
                raise ErrorReply("ERR No functions registered")
            for fname in library.functions:
                if fname.lower() in functions:
                    raise ErrorReply("ERR Function %s already exists" % fname.decode("utf-8", "surrogateescape"))
        except ErrorReply:
            if old is not None:
                _link(libraries, functions, old)
            raise
        _link(libraries, functions, library)
        return name

    def load_library(self, code: bytes, replace: bool) -> bytes:
        return self.create_library(code, replace, self.libraries, self.functions, LOAD_TIMEOUT_MS)

    def flush_functions(self) -> None:
        self.libraries = {}
        self.functions = {}
        self.function_state = LuaState(self, "function")

    def dump_functions(self) -> bytes:
        return rdb.dump_payload([lib.code for lib in self.libraries.values()],
                                compression=self.node.config["rdbcompression"] in (True, "yes", 1))

    def restore_functions(self, payload: bytes, policy: bytes) -> None:
        if not rdb.verify_payload(payload):
            raise ErrorReply("ERR DUMP payload version or checksum are wrong")
        try:
            codes = rdb.parse_payload(payload)
        except rdb.PayloadError as exc:
            raise ErrorReply("ERR " + str(exc)) from None
        libraries: dict = {}
        functions: dict = {}
        for code in codes:
            self.create_library(code, False, libraries, functions, 0)
        if policy == b"flush":
            self.libraries, self.functions = libraries, functions
            return
        replace = policy == b"replace"
        old_libraries = []
        try:
            for lib in libraries.values():
                existing = self.libraries.get(lib.name)
                if existing is not None:
                    if not replace:
                        raise ErrorReply("ERR Library %s already exists" % lib.name.decode("utf-8", "surrogateescape"))
                    _unlink(self.libraries, self.functions, existing)
                    old_libraries.append(existing)
            for fname in functions:
                if fname in self.functions:
                    raise ErrorReply("ERR Function %s already exists"
                                     % functions[fname].name.decode("utf-8", "surrogateescape"))
        except ErrorReply:
            for lib in old_libraries:
                _link(self.libraries, self.functions, lib)
            raise
        for lib in libraries.values():
            _link(self.libraries, self.functions, lib)


def _unlink(libraries: dict, functions: dict, library: Library) -> None:
    for fname in library.functions:
        functions.pop(fname.lower(), None)
    libraries.pop(library.name, None)


def _link(libraries: dict, functions: dict, library: Library) -> None:
    for fname, fn in library.functions.items():
        functions[fname.lower()] = fn
    libraries[library.name] = library


def parse_shebang(body: bytes) -> tuple[frozenset, int, bool]:
    """evalExtractShebangFlags: (flags, shebang length, compat mode) or ErrorReply."""
    if not body.startswith(b"#!"):
        return frozenset(), 0, True
    nul = body.find(b"\0")
    end = body.find(b"\n", 0, nul if nul != -1 else len(body))
    if end == -1:
        raise ErrorReply("ERR Invalid script shebang")
    parts = split_inline_args(body[:end])
    if not parts:
        raise ErrorReply("ERR Invalid engine in script shebang")
    if parts[0] != b"#!lua":
        raise ErrorReply("ERR Unexpected engine in script shebang: %s" % parts[0].decode("utf-8", "surrogateescape"))
    flags = set()
    for part in parts[1:]:
        if part.startswith(b"flags="):
            value = part[6:]
            for flag in value.split(b",") if value else []:
                if flag not in _EVAL_FLAGS:
                    raise ErrorReply("ERR Unexpected flag in script shebang: %s"
                                     % flag.decode("utf-8", "surrogateescape"))
                flags.add(flag)
        else:
            raise ErrorReply("ERR Unknown lua shebang option: %s" % part.decode("utf-8", "surrogateescape"))
    return frozenset(flags), end, False


def extract_metadata(code: bytes) -> tuple[bytes, bytes, bytes]:
    """functionExtractLibMetaData: (engine, library name, code after the shebang line)."""
    if not code.startswith(b"#!"):
        raise ErrorReply("ERR Missing library metadata")
    nul = code.find(b"\0")
    end = code.find(b"\n", 0, nul if nul != -1 else len(code))
    if end == -1:
        raise ErrorReply("ERR Invalid library metadata")
    parts = split_inline_args(code[:end])
    if not parts:
        raise ErrorReply("ERR Invalid library metadata")
    engine = parts[0][2:]
    name = None
    for part in parts[1:]:
        if part[:5].lower() == b"name=":
            if name is not None:
                raise ErrorReply("ERR Invalid metadata value, name argument was given multiple times")
            name = part[5:]
            continue
        raise ErrorReply("ERR Invalid metadata value given: %s" % part.decode("utf-8", "surrogateescape"))
    if name is None:
        raise ErrorReply("ERR Library name was not given")
    return engine, name, code[end:]


def get_scripting(node) -> Scripting:
    scripting = getattr(node, "_scripting", None)
    if scripting is None:
        scripting = node._scripting = Scripting(node)
    return scripting
