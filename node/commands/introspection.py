"""COMMAND and its subcommands: the command table described to clients.

Cluster clients (redis-py's ``RedisCluster``, Lettuce, go-redis...) route by
what ``COMMAND`` says -- first/last/step and the ``movablekeys`` flag -- and
redis-cli 7 reads ``COMMAND DOCS`` at start-up for its hints, so these replies
follow Redis 7.0's shapes exactly (sets vs arrays, status vs bulk strings),
generated from the one declaration each command has in ``table.py``.

What the table does not declare is derived, not invented per command:

* key specifications come from first/last/step (``index`` + ``range``), with
  access flags guessed from the command flags (read-only -> RO access,
  write -> RW access update). Movable-key commands get one more spec of type
  ``unknown``, which tells clients to ask ``COMMAND GETKEYS``.
* ``COMMAND DOCS`` has no ``arguments``/``history``: the table keeps none.

Redis prints flags and ACL categories in fixed orders (its flag table and its
ACL category table), whatever order a declaration lists them in; so do we.
"""

from __future__ import annotations

from node.commands.args import SYNTAX_ERROR
from node.commands.table import Command, all_commands, command, container, lookup
from node.engine.glob import glob_match
from node.resp import ErrorReply, SetReply, SimpleString

# Redis 7.0's addReplyCommandFlags order. may_replicate and protected are
# real flags but Redis hides them from COMMAND output on purpose.
_FLAG_ORDER = (
    "write readonly denyoom module admin pubsub noscript blocking loading stale skip_monitor "
    "skip_slowlog asking fast no_auth no_mandatory_keys no_async_loading no_multi movablekeys "
    "allow_busy"
).split()

# Redis 7.0's ACLCommandCategories order (what ACL CAT prints).
ACL_CATEGORY_ORDER = (
    "keyspace read write set sortedset list hash string bitmap hyperloglog geo stream pubsub "
    "admin fast slow blocking dangerous connection transaction scripting"
).split()
_ACL_RANK = {name: i for i, name in enumerate(ACL_CATEGORY_ORDER)}

# COMMAND_GROUP_STR: the group names COMMAND DOCS prints.
_GROUP_NAMES = {"sorted_set": "sorted-set"}

_HELP = [
    "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "(no subcommand)",
    "    Return details about all Redis commands.",
    "COUNT",
    "    Return the total number of commands in this Redis server.",
    "LIST",
    "    Return a list of all commands in this Redis server.",
    "INFO [<command-name> ...]",
    "    Return details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "DOCS [<command-name> ...]",
    "    Return documentation details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "GETKEYS <full-command>",
    "    Return the keys from a full Redis command.",
    "GETKEYSANDFLAGS <full-command>",
    "    Return the keys and the access flags from a full Redis command.",
    "HELP",
    "    Prints this help.",
]


def help_reply(lines: list[str]) -> list[SimpleString]:
    """Redis's addReplyHelp: one status reply per line."""
    return [SimpleString(line.encode()) for line in lines]


# ------------------------------------------------------------ descriptions


def command_flags(cmd: Command) -> list[str]:
    flags = set(cmd.flags)
    return [flag for flag in _FLAG_ORDER if flag in flags]


def acl_categories(cmd: Command) -> list[str]:
    return sorted(cmd.categories, key=lambda cat: _ACL_RANK.get(cat, len(_ACL_RANK)))


def key_spec_flags(cmd: Command) -> list[str]:
    """Access flags for a key spec, derived from the command flags (see module doc)."""
    if "write" in cmd.flags:
        return ["RW", "access", "update"]
    if "readonly" in cmd.flags:
        return ["RO", "access"]
    return ["RO"]


def has_keys(cmd: Command) -> bool:
    return cmd.first_key > 0 or cmd.key_finder is not None


def key_specs(cmd: Command) -> list[dict]:
    flags = SetReply(SimpleString(f.encode()) for f in key_spec_flags(cmd))
    specs = []
    if cmd.first_key > 0:
        last = cmd.last_key
        # A key spec's lastkey is relative to the first key when not negative.
        lastkey = last - cmd.first_key if last >= 0 else last
        specs.append({
            b"flags": flags,
            b"begin_search": {b"type": b"index", b"spec": {b"index": cmd.first_key}},
            b"find_keys": {
                b"type": b"range",
                b"spec": {b"lastkey": lastkey, b"keystep": cmd.key_step, b"limit": 0},
            },
        })
    if cmd.key_finder is not None:
        specs.append({
            b"flags": flags,
            b"begin_search": {b"type": b"unknown", b"spec": {}},
            b"find_keys": {b"type": b"unknown", b"spec": {}},
        })
    return specs


def command_info(cmd: Command) -> list:
    """One command's COMMAND INFO entry (10 fields, Redis 7.0's order and types)."""
    if cmd.subcommands:
        subs: object = [command_info(sub) for sub in cmd.subcommands.values()]
    else:
        subs = SetReply()  # Redis: an empty set when there are none, an array otherwise
    first, last, step = (cmd.first_key, cmd.last_key, cmd.key_step) if cmd.first_key > 0 else (0, 0, 0)
    return [
        cmd.fullname.encode(),
        cmd.arity,
        SetReply(SimpleString(f.encode()) for f in command_flags(cmd)),
        first,
        last,
        step,
        SetReply(SimpleString(b"@" + c.encode()) for c in acl_categories(cmd)),
        SetReply(t.encode() for t in cmd.tips),
        SetReply(key_specs(cmd)),
        subs,
    ]


def command_docs(cmd: Command) -> dict:
    docs: dict = {}
    if cmd.summary:
        docs[b"summary"] = cmd.summary.encode()
    if cmd.since:
        docs[b"since"] = cmd.since.encode()
    docs[b"group"] = _GROUP_NAMES.get(cmd.group, cmd.group).encode()
    if cmd.complexity:
        docs[b"complexity"] = cmd.complexity.encode()
    if cmd.subcommands:
        docs[b"subcommands"] = {sub.fullname.encode(): command_docs(sub) for sub in cmd.subcommands.values()}
    return docs


def find_command(name: bytes) -> Command | None:
    """``name`` or ``container|sub`` (any case), as COMMAND INFO/DOCS accept them."""
    parts = name.split(b"|")
    if len(parts) > 2:
        return None
    cmd = lookup(parts[0])
    if cmd is None or len(parts) == 1:
        return cmd
    return cmd.subcommands.get(parts[1].lower())


def resolve_argv(argv: list[bytes]) -> Command | None:
    """The (sub)command a full argv runs, as Redis's lookupCommand finds it."""
    cmd = lookup(argv[0])
    if cmd is None:
        return None
    if cmd.subcommands and len(argv) >= 2:
        return cmd.subcommands.get(argv[1].lower())
    return cmd


def _walk(commands):
    for cmd in commands:
        yield cmd
        yield from _walk(cmd.subcommands.values())


# ----------------------------------------------------------------- handlers


def _command(client, argv):
    return [command_info(cmd) for cmd in all_commands()]


COMMAND = container(
    "command", -1, "loading stale", handler=_command, group="server", acl=("connection",),
    tips=("nondeterministic_output_order",), summary="Get array of Redis command details",
    since="2.8.13", complexity="O(N) where N is the total number of Redis commands",
)


@command("count", 2, "loading stale", parent="command", group="server", acl=("connection",),
         summary="Get total number of Redis commands", since="2.8.13", complexity="O(1)")
def command_count(client, argv):
    return len(all_commands())


@command("info", -2, "loading stale", parent="command", group="server", acl=("connection",),
         tips=("nondeterministic_output_order",),
         summary="Get array of specific Redis command details, or all when no argument is given.",
         since="2.8.13", complexity="O(N) where N is the number of commands to look up")
def command_info_cmd(client, argv):
    if len(argv) == 2:
        return [command_info(cmd) for cmd in all_commands()]
    reply = []
    for name in argv[2:]:
        cmd = find_command(name)
        reply.append(None if cmd is None else command_info(cmd))
    return reply


@command("docs", -2, "loading stale", parent="command", group="server", acl=("connection",),
         tips=("nondeterministic_output_order",),
         summary="Get array of specific Redis command documentation", since="7.0.0",
         complexity="O(N) where N is the number of commands to look up")
def command_docs_cmd(client, argv):
    if len(argv) == 2:
        return {cmd.fullname.encode(): command_docs(cmd) for cmd in all_commands()}
    reply = {}
    for name in argv[2:]:
        cmd = find_command(name)
        if cmd is not None:  # unknown names are left out, not nil
            reply[cmd.fullname.encode()] = command_docs(cmd)
    return reply


@command("list", -2, "loading stale", parent="command", group="server", acl=("connection",),
         tips=("nondeterministic_output_order",),
         summary="Get an array of Redis command names", since="7.0.0",
         complexity="O(N) where N is the total number of Redis commands")
def command_list(client, argv):
    match = None
    i = 2
    while i < len(argv):
        if argv[i].lower() == b"filterby" and len(argv) - 1 - i == 2:
            kind, arg = argv[i + 1].lower(), argv[i + 2]
            if kind == b"module":
                match = lambda cmd: False  # Shoal loads no modules
            elif kind == b"aclcat":
                category = arg.decode("utf-8", "surrogateescape").lower()
                match = lambda cmd, category=category: category in cmd.categories
            elif kind == b"pattern":
                match = lambda cmd, pattern=arg: glob_match(pattern, cmd.fullname.encode(), nocase=True)
            else:
                raise SYNTAX_ERROR
            i += 3
        else:
            raise SYNTAX_ERROR
    return [cmd.fullname.encode() for cmd in _walk(all_commands()) if match is None or match(cmd)]


def _keys_for(argv: list[bytes]) -> tuple[Command, list[bytes]]:
    """COMMAND GETKEYS's checks, in Redis's order, then the keys of ``argv``."""
    target = argv[2:]
    cmd = resolve_argv(target)
    if cmd is None:
        raise ErrorReply("ERR Invalid command specified")
    if not has_keys(cmd):
        raise ErrorReply("ERR The command has no key arguments")
    arity = cmd.arity
    if (arity > 0 and arity != len(target)) or len(target) < -arity:
        raise ErrorReply("ERR Invalid number of arguments specified for command")
    try:
        keys = cmd.keys_of(target)
    except (ErrorReply, IndexError, ValueError):
        keys = []  # a key finder that cannot make sense of the arguments
    if not keys and "no_mandatory_keys" not in cmd.flags:
        raise ErrorReply("ERR Invalid arguments specified for command")
    return cmd, keys


@command("getkeys", -4, "loading stale", parent="command", group="server", acl=("connection",),
         summary="Extract keys given a full Redis command", since="2.8.13",
         complexity="O(N) where N is the number of arguments to the command")
def command_getkeys(client, argv):
    return _keys_for(argv)[1]


@command("getkeysandflags", -4, "loading stale", parent="command", group="server", acl=("connection",),
         summary="Extract keys and access flags given a full Redis command", since="7.0.0",
         complexity="O(N) where N is the number of arguments to the command")
def command_getkeysandflags(client, argv):
    cmd, keys = _keys_for(argv)
    flags = key_spec_flags(cmd)
    return [[key, SetReply(SimpleString(f.encode()) for f in flags)] for key in keys]


@command("help", 2, "loading stale", parent="command", group="server", acl=("connection",),
         summary="Show helpful text about the different subcommands", since="5.0.0", complexity="O(1)")
def command_help(client, argv):
    return help_reply(_HELP)
