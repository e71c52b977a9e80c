"""EVAL, EVALSHA, EVAL_RO, EVALSHA_RO, SCRIPT, FCALL, FCALL_RO, FUNCTION (Redis 7.0).

The Lua side lives in ``node.scripting``; this module parses arguments and
answers with Redis's exact texts.
"""

from __future__ import annotations

import time

from node.commands.args import NOT_INTEGER
from node.commands.introspection import help_reply
from node.commands.table import command, container
from node.dispatch import cstr
from node.engine.glob import compile_glob
from node.resp import OK, ErrorReply, SetReply, SimpleString
from node.resp.parser import string2ll
from node.scripting import get_scripting
from node.scripting.engine import FLAG_NAMES, NOSCRIPT

_SCRIPT_HELP = [
    "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DEBUG (YES|SYNC|NO)",
    "    Set the debug mode for subsequent scripts executed.",
    "EXISTS <sha1> [<sha1> ...]",
    "    Return information about the existence of the scripts in the script cache.",
    "FLUSH [ASYNC|SYNC]",
    "    Flush the Lua scripts cache. Very dangerous on replicas.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the scripts cache.",
    "    * SYNC: Synchronously flush the scripts cache.",
    "KILL",
    "    Kill the currently executing Lua script.",
    "LOAD <script>",
    "    Load a script into the scripts cache without executing it.",
    "HELP",
    "    Prints this help.",
]

_FUNCTION_HELP = [
    "FUNCTION <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "LOAD [REPLACE] <FUNCTION CODE>",
    "    Create a new library with the given library name and code.",
    "DELETE <LIBRARY NAME>",
    "    Delete the given library.",
    "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
    "    Return general information on all the libraries:",
    "    * Library name",
    "    * The engine used to run the Library",
    "    * Library description",
    "    * Functions list",
    "    * Library code (if WITHCODE is given)",
    "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
    "STATS",
    "    Return information about the current function running:",
    "    * Function name",
    "    * Command used to run the function",
    "    * Duration in MS that the function is running",
    "    If no function is running, return nil",
    "    In addition, returns a list of available engines.",
    "KILL",
    "    Kill the current running function.",
    "FLUSH [ASYNC|SYNC]",
    "    Delete all the libraries.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the libraries.",
    "    * SYNC: Synchronously flush the libraries.",
    "DUMP",
    "    Return a serialized payload representing the current libraries, can be restored using FUNCTION "
    "RESTORE command",
    "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
    "    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
    "    control how to handle existing libraries (default APPEND):",
    "    * FLUSH: delete all existing libraries.",
    "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
    "    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
    "      libraries with the new libraries (notice that even on this option there is a chance of failure",
    "      in case of functions name collision with another library).",
    "HELP",
    "    Prints this help.",
]


def _script_keys(argv: list[bytes]) -> list[bytes]:
    """EVAL/FCALL keys: argv[3 : 3 + numkeys] (nothing when numkeys is unusable)."""
    numkeys = string2ll(argv[2]) if len(argv) > 2 else None
    if numkeys is None or numkeys < 0 or numkeys > len(argv) - 3:
        return []
    return argv[3 : 3 + numkeys]


def _numkeys(argv: list[bytes], error: ErrorReply = NOT_INTEGER) -> int:
    numkeys = string2ll(argv[2])
    if numkeys is None:
        raise error
    if numkeys > len(argv) - 3:
        raise ErrorReply("ERR Number of keys can't be greater than number of args")
    if numkeys < 0:
        raise ErrorReply("ERR Number of keys can't be negative")
    return numkeys


def _eval(client, argv, evalsha: bool, ro: bool):
    scripting = get_scripting(client.node)
    if evalsha and len(argv[1]) != 40:
        return NOSCRIPT
    numkeys = _numkeys(argv)
    if evalsha:
        sha = argv[1].lower()
        script = scripting.scripts.get(sha)
        if script is None:
            return NOSCRIPT
    else:
        sha, script = scripting.create_script(argv[1])
    read_only = scripting.prepare(script.flags, script.compat, ro)
    keys = argv[3 : 3 + numkeys]
    args = argv[3 + numkeys :]
    return scripting.run(client, argv, script.fn, keys, args, sha, True, read_only)


_EVAL_INFO = dict(group="scripting", since="2.6.0", complexity="Depends on the script that is executed.",
                  key_finder=_script_keys)


@command("eval", -3, "noscript stale skip_monitor no_mandatory_keys", summary="Execute a Lua script server side",
         **_EVAL_INFO)
def eval_(client, argv):
    return _eval(client, argv, False, False)


@command("evalsha", -3, "noscript stale skip_monitor no_mandatory_keys", summary="Execute a Lua script server side",
         **_EVAL_INFO)
def evalsha(client, argv):
    return _eval(client, argv, True, False)


_EVAL_RO_INFO = dict(_EVAL_INFO, since="7.0.0")


@command("eval_ro", -3, "readonly noscript stale skip_monitor no_mandatory_keys",
         summary="Execute a read-only Lua script server side", **_EVAL_RO_INFO)
def eval_ro(client, argv):
    return _eval(client, argv, False, True)


@command("evalsha_ro", -3, "readonly noscript stale skip_monitor no_mandatory_keys",
         summary="Execute a read-only Lua script server side", **_EVAL_RO_INFO)
def evalsha_ro(client, argv):
    return _eval(client, argv, True, True)


# ------------------------------------------------------------------ SCRIPT

container("script", -2, group="scripting", summary="A container for Lua scripts management commands",
          since="2.6.0", complexity="Depends on subcommand.")


@command("help", 2, "loading stale", parent="script", group="scripting",
         summary="Show helpful text about the different subcommands", since="5.0.0", complexity="O(1)")
def script_help(client, argv):
    return help_reply(_SCRIPT_HELP)


@command("flush", -2, "noscript", parent="script", group="scripting",
         summary="Remove all the scripts from the script cache.", since="2.6.0",
         complexity="O(N) with N being the number of scripts in cache",
         tips=("request_policy:all_nodes", "response_policy:all_succeeded"))
def script_flush(client, argv):
    if not (len(argv) == 2 or (len(argv) == 3 and argv[2].lower() in (b"sync", b"async"))):
        raise ErrorReply("ERR SCRIPT FLUSH only support SYNC|ASYNC option")
    get_scripting(client.node).flush_scripts()
    return OK


@command("load", 3, "noscript stale", parent="script", group="scripting",
         summary="Load the specified Lua script into the script cache.", since="2.6.0",
         complexity="O(N) with N being the length in bytes of the script body.",
         tips=("request_policy:all_nodes", "response_policy:all_succeeded"))
def script_load(client, argv):
    sha, _ = get_scripting(client.node).create_script(argv[2])
    return sha


@command("exists", -3, "noscript", parent="script", group="scripting",
         summary="Check existence of scripts in the script cache.", since="2.6.0",
         complexity="O(N) with N being the number of scripts to check (so checking a single script is an O(1) "
                    "operation).",
         tips=("request_policy:all_shards", "response_policy:agg_logical_and"))
def script_exists(client, argv):
    scripts = get_scripting(client.node).scripts
    return [1 if sha.lower() in scripts else 0 for sha in argv[2:]]


@command("kill", 2, "noscript allow_busy", parent="script", group="scripting",
         summary="Kill the script currently in execution.", since="2.6.0", complexity="O(1)",
         tips=("request_policy:all_shards", "response_policy:one_succeeded"))
def script_kill(client, argv):
    return get_scripting(client.node).kill(True) or OK


@command("debug", 3, "noscript", parent="script", group="scripting",
         summary="Set the debug mode for executed scripts.", since="3.2.0", complexity="O(1)")
def script_debug(client, argv):
    mode = argv[2].lower()
    if mode == b"no":
        return OK
    if mode in (b"yes", b"sync"):
        raise ErrorReply("ERR SCRIPT DEBUG (the Lua debugger) is not supported by Shoal")
    raise ErrorReply("ERR Use SCRIPT DEBUG YES/SYNC/NO")


# ------------------------------------------------------------------ FCALL


def _fcall(client, argv, ro: bool):
    scripting = get_scripting(client.node)
    fn = scripting.functions.get(argv[1].lower())
    if fn is None:
        raise ErrorReply("ERR Function not found")
    numkeys = _numkeys(argv, ErrorReply("ERR Bad number of keys provided"))
    read_only = scripting.prepare(fn.flags, False, ro)
    keys = argv[3 : 3 + numkeys]
    args = argv[3 + numkeys :]
    return scripting.run(client, argv, fn.fn, keys, args, fn.name, False, read_only)


_FCALL_INFO = dict(group="scripting", since="7.0.0", complexity="Depends on the function that is executed.",
                   key_finder=_script_keys)


@command("fcall", -3, "noscript stale skip_monitor no_mandatory_keys", summary="Invoke a function", **_FCALL_INFO)
def fcall(client, argv):
    return _fcall(client, argv, False)


@command("fcall_ro", -3, "readonly noscript stale skip_monitor no_mandatory_keys",
         summary="Invoke a read-only function", **_FCALL_INFO)
def fcall_ro(client, argv):
    return _fcall(client, argv, True)


# ------------------------------------------------------------------ FUNCTION

container("function", -2, group="scripting", summary="A container for function commands", since="7.0.0",
          complexity="Depends on subcommand.")


def _subcommand_syntax_error(argv) -> ErrorReply:
    return ErrorReply(
        f"ERR unknown subcommand or wrong number of arguments for '{cstr(argv[1], 128)}'. Try FUNCTION HELP."
    )


@command("help", 2, "loading stale", parent="function", group="scripting",
         summary="Show helpful text about the different subcommands", since="7.0.0", complexity="O(1)")
def function_help(client, argv):
    return help_reply(_FUNCTION_HELP)


@command("load", -3, "write denyoom noscript", parent="function", group="scripting",
         summary="Create a function with the given arguments (name, code, description)", since="7.0.0",
         complexity="O(1) (considering compilation time is redundant)",
         tips=("request_policy:all_shards", "response_policy:all_succeeded"))
def function_load(client, argv):
    replace = False
    pos = 2
    while pos < len(argv) - 1:
        word = argv[pos]
        pos += 1
        if word.lower() == b"replace":
            replace = True
            continue
        raise ErrorReply("ERR Unknown option given: %s" % cstr(word))
    if pos >= len(argv):
        raise ErrorReply("ERR Function code is missing")
    name = get_scripting(client.node).load_library(argv[pos], replace)
    client.node.dirty += 1
    return name


@command("delete", 3, "write noscript", parent="function", group="scripting", summary="Delete a function by name",
         since="7.0.0", complexity="O(1)", tips=("request_policy:all_shards", "response_policy:all_succeeded"))
def function_delete(client, argv):
    scripting = get_scripting(client.node)
    library = scripting.libraries.get(argv[2])
    if library is None:
        raise ErrorReply("ERR Library not found")
    from node.scripting.engine import _unlink

    _unlink(scripting.libraries, scripting.functions, library)
    client.node.dirty += 1
    return OK


@command("flush", -2, "write noscript", parent="function", group="scripting", summary="Deleting all functions",
         since="7.0.0", complexity="O(N) where N is the number of functions deleted",
         tips=("request_policy:all_shards", "response_policy:all_succeeded"))
def function_flush(client, argv):
    if len(argv) > 3:
        raise _subcommand_syntax_error(argv)
    if len(argv) == 3 and argv[2].lower() not in (b"sync", b"async"):
        raise ErrorReply("ERR FUNCTION FLUSH only supports SYNC|ASYNC option")
    get_scripting(client.node).flush_functions()
    client.node.dirty += 1
    return OK


@command("kill", 2, "noscript allow_busy", parent="function", group="scripting",
         summary="Kill the function currently in execution.", since="7.0.0", complexity="O(1)",
         tips=("request_policy:all_shards", "response_policy:one_succeeded"))
def function_kill(client, argv):
    return get_scripting(client.node).kill(False) or OK


def _flags_reply(flags: frozenset) -> SetReply:
    return SetReply(SimpleString(name) for name in FLAG_NAMES if name in flags)


@command("list", -2, "noscript", parent="function", group="scripting",
         summary="List information about all the functions", since="7.0.0",
         complexity="O(N) where N is the number of functions", tips=("nondeterministic_output_order",))
def function_list(client, argv):
    with_code = False
    pattern = None
    i = 2
    while i < len(argv):
        word = argv[i]
        if not with_code and word.lower() == b"withcode":
            with_code = True
            i += 1
            continue
        if pattern is None and word.lower() == b"libraryname":
            if i >= len(argv) - 1:
                raise ErrorReply("ERR library name argument was not given")
            pattern = argv[i + 1]
            i += 2
            continue
        raise ErrorReply("ERR Unknown argument %s" % cstr(word))
    matches = compile_glob(pattern, nocase=True) if pattern is not None else None
    reply = []
    for library in get_scripting(client.node).libraries.values():
        if matches is not None and not matches(library.name):
            continue
        entry = {
            b"library_name": library.name,
            b"engine": b"LUA",
            b"functions": [
                {b"name": fn.name, b"description": fn.desc, b"flags": _flags_reply(fn.flags)}
                for fn in library.functions.values()
            ],
        }
        if with_code:
            entry[b"library_code"] = library.code
        reply.append(entry)
    return reply


@command("stats", 2, "noscript allow_busy", parent="function", group="scripting",
         summary="Return information about the function currently running (name, description, duration)",
         since="7.0.0", complexity="O(1)",
         tips=("nondeterministic_output", "request_policy:all_shards", "response_policy:special"))
def function_stats(client, argv):
    scripting = get_scripting(client.node)
    ctx = scripting.running
    if ctx is not None and ctx.is_eval:
        return scripting.busy_error()
    running = None
    if ctx is not None:
        running = {
            b"name": ctx.name,
            b"command": list(ctx.argv),
            b"duration_ms": int((time.monotonic() - ctx.start) * 1000),
        }
    functions = sum(len(lib.functions) for lib in scripting.libraries.values())
    return {
        b"running_script": running,
        b"engines": {b"LUA": {b"libraries_count": len(scripting.libraries), b"functions_count": functions}},
    }


@command("dump", 2, "noscript", parent="function", group="scripting",
         summary="Dump all functions into a serialized binary payload", since="7.0.0",
         complexity="O(N) where N is the number of functions")
def function_dump(client, argv):
    return get_scripting(client.node).dump_functions()


@command("restore", -3, "write denyoom noscript", parent="function", group="scripting",
         summary="Restore all the functions on the given payload", since="7.0.0",
         complexity="O(N) where N is the number of functions on the payload",
         tips=("request_policy:all_shards", "response_policy:all_succeeded"))
def function_restore(client, argv):
    if len(argv) > 4:
        raise _subcommand_syntax_error(argv)
    policy = b"append"
    if len(argv) == 4:
        policy = argv[3].lower()
        if policy not in (b"append", b"replace", b"flush"):
            raise ErrorReply("ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.")
    get_scripting(client.node).restore_functions(argv[2], policy)
    client.node.dirty += 1
    return OK

