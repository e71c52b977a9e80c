"""ACL and its subcommands (Redis 7.0 replies and error texts).

The users, their rules and the checks live in ``node.security.acl``; these
handlers parse arguments and shape replies. AUTH and HELLO's AUTH option are
in ``node.commands.connection`` (they call ``node.acl.authenticate``).
"""

from __future__ import annotations

import os

from node.commands.args import parse_int
from node.commands.introspection import help_reply
from node.commands.table import command, container, lookup
from node.resp import OK, ErrorReply, SetReply
from node.security.acl import (
    ACL_OK, CATEGORIES, DENIED_CHANNEL, DENIED_CMD, DENIED_KEY, AclError,
)

_NOT_INTEGER = ErrorReply("ERR value is not an integer or out of range")
_NO_ACLFILE = ErrorReply(
    "ERR This Redis instance is not configured to use an ACL file. You may want to specify users via the "
    "ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) "
    "in order to store users in the Redis configuration."
)

_HELP = [
    "ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CAT [<category>]",
    "    List all commands that belong to <category>, or all command categories",
    "    when no category is specified.",
    "DELUSER <username> [<username> ...]",
    "    Delete a list of users.",
    "DRYRUN <username> <command> [<arg> ...]",
    "    Returns whether the user can execute the given command without executing the command.",
    "GETUSER <username>",
    "    Get the user's details.",
    "GENPASS [<bits>]",
    "    Generate a secure 256-bit user password. The optional `bits` argument can",
    "    be used to specify a different size.",
    "LIST",
    "    Show users details in config file format.",
    "LOAD",
    "    Reload users from the ACL file.",
    "LOG [<count> | RESET]",
    "    Show the ACL log entries.",
    "SAVE",
    "    Save the current config to the ACL file.",
    "SETUSER <username> <attribute> [<attribute> ...]",
    "    Create or modify a user with the specified attributes.",
    "USERS",
    "    List all the registered usernames.",
    "WHOAMI",
    "    Return the current connection username.",
    "HELP",
    "    Prints this help.",
]

container("acl", -2, group="server", summary="A container for Access List Control commands ", since="6.0.0",
          complexity="Depends on subcommand.")

_ADMIN = "admin noscript loading stale"


def _sub(name: str, arity: int, flags: str, **info):
    return command(name, arity, flags, parent="acl", group="server", **info)


def _syntax_error(argv) -> ErrorReply:
    """addReplySubcommandSyntaxError."""
    return ErrorReply(
        "ERR unknown subcommand or wrong number of arguments for '%s'. Try %s HELP."
        % (_text(argv[1].split(b"\0", 1)[0][:128]), _text(argv[0]).upper())
    )


def _text(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


@_sub("setuser", -3, _ADMIN, summary="Modify or create the rules for a specific ACL user", since="6.0.0",
      complexity="O(N). Where N is the number of rules provided.")
def acl_setuser(client, argv):
    try:
        client.node.acl.setuser(argv[2], argv[3:])
    except AclError as exc:
        raise ErrorReply("ERR " + exc.message) from None
    return OK


@_sub("deluser", -3, _ADMIN, summary="Remove the specified ACL users and the associated rules", since="6.0.0",
      complexity="O(1) amortized time considering the typical user.")
def acl_deluser(client, argv):
    try:
        return client.node.acl.deluser(argv[2:], client)
    except AclError as exc:
        raise ErrorReply("ERR " + exc.message) from None


def _selector_fields(selector, index) -> dict:
    return {
        b"commands": selector.describe_commands(index),
        b"keys": selector.describe_keys(),
        b"channels": selector.describe_channels(),
    }


@_sub("getuser", 3, _ADMIN, summary="Get the rules for a specific ACL user", since="6.0.0",
      complexity="O(N). Where N is the number of password, command and pattern rules that the user has.")
def acl_getuser(client, argv):
    registry = client.node.acl
    user = registry.get(argv[2])
    if user is None:
        return None
    reply = {
        b"flags": SetReply(user.flag_names()),
        b"passwords": list(user.passwords),
    }
    reply.update(_selector_fields(user.root, registry.index))
    reply[b"selectors"] = [_selector_fields(s, registry.index) for s in user.selectors[1:]]
    return reply


@_sub("list", 2, _ADMIN, summary="List the current ACL rules in ACL config file format", since="6.0.0",
      complexity="O(N). Where N is the number of configured users.")
def acl_list(client, argv):
    registry = client.node.acl
    return [registry.describe_line(user) for user in registry.sorted_users()]


@_sub("users", 2, _ADMIN, summary="List the username of all the configured ACL rules", since="6.0.0",
      complexity="O(N). Where N is the number of configured users.")
def acl_users(client, argv):
    return [user.name for user in client.node.acl.sorted_users()]


@_sub("whoami", 2, "noscript loading stale", summary="Return the name of the user associated to the current "
      "connection", since="6.0.0", complexity="O(1)")
def acl_whoami(client, argv):
    user = client.acl_user
    return user.name if user is not None else None  # a user-less client (the master link)


@_sub("cat", -2, "noscript loading stale", summary="List the ACL categories or the commands inside a category",
      since="6.0.0", complexity="O(1) since the categories and commands are a fixed set.")
def acl_cat(client, argv):
    if len(argv) > 3:
        raise _syntax_error(argv)
    if len(argv) == 2:
        return [cat.encode() for cat in CATEGORIES]
    name = _text(argv[2]).lower()
    if name not in CATEGORIES:
        raise ErrorReply("ERR Unknown category '%s'" % _text(argv[2].split(b"\0", 1)[0][:128]))
    index = client.node.acl.index
    return [cmd.fullname.encode() for cmd in index.by_category[name]]


@_sub("genpass", -2, "noscript loading stale", summary="Generate a pseudorandom secure password to use for ACL "
      "users", since="6.0.0", complexity="O(1)")
def acl_genpass(client, argv):
    if len(argv) > 3:
        raise _syntax_error(argv)
    bits = 256
    if len(argv) == 3:
        bits = parse_int(argv[2], _NOT_INTEGER)
    if bits <= 0 or bits > 4096:
        raise ErrorReply(
            "ERR ACL GENPASS argument must be the number of bits for the output password, "
            "a positive number up to 4096"
        )
    chars = (bits + 3) // 4
    return os.urandom((chars + 1) // 2).hex()[:chars].encode()


@_sub("log", -2, _ADMIN, summary="List latest events denied because of ACLs in place", since="6.0.0",
      complexity="O(N) with N being the number of entries shown.")
def acl_log(client, argv):
    if len(argv) > 3:
        raise _syntax_error(argv)
    log = client.node.acl.log
    count = 10
    if len(argv) == 3:
        if argv[2].lower() == b"reset":
            log.reset()
            return OK
        count = parse_int(argv[2], _NOT_INTEGER)
    return log.reply(count)


@_sub("dryrun", -4, _ADMIN, summary="Returns whether the user can execute the given command without executing "
      "the command.", since="7.0.0", complexity="O(1).")
def acl_dryrun(client, argv):
    registry = client.node.acl
    user = registry.get(argv[2])
    if user is None:
        raise ErrorReply("ERR User '%s' not found" % _text(argv[2]))
    args = argv[3:]
    cmd = lookup(args[0])
    if cmd is not None and cmd.subcommands and len(args) >= 2:
        cmd = cmd.subcommands.get(args[1].lower())
    if cmd is None:
        raise ErrorReply("ERR Command '%s' not found" % _text(args[0]))
    arity = cmd.arity
    if (arity > 0 and arity != len(args)) or len(args) < -arity:
        raise ErrorReply(f"ERR wrong number of arguments for '{cmd.fullname}' command")
    result, pos = user.check(cmd, args)
    if result == ACL_OK:
        return OK
    if result == DENIED_CMD:
        return f"This user has no permissions to run the '{cmd.fullname}' command".encode()
    if result == DENIED_KEY:
        return b"This user has no permissions to access the '" + args[pos] + b"' key"
    if result == DENIED_CHANNEL:
        return b"This user has no permissions to access the '" + args[pos] + b"' channel"
    raise ErrorReply("ERR Invalid permission result")


@_sub("load", 2, _ADMIN, summary="Reload the ACLs from the configured ACL file", since="6.0.0",
      complexity="O(N). Where N is the number of configured users.")
def acl_load(client, argv):
    path = client.node.config["aclfile"]
    if not path:
        raise _NO_ACLFILE
    errors = client.node.acl.load_file(path, client)
    if errors is not None:
        raise ErrorReply("ERR " + errors)
    return OK


@_sub("save", 2, _ADMIN, summary="Save the current ACL rules in the configured ACL file", since="6.0.0",
      complexity="O(N). Where N is the number of configured users.")
def acl_save(client, argv):
    path = client.node.config["aclfile"]
    if not path:
        raise _NO_ACLFILE
    if not client.node.acl.save_file(path):
        raise ErrorReply(
            "ERR There was an error trying to save the ACLs. Please check the server logs for more information"
        )
    return OK


@_sub("help", 2, "loading stale", summary="Show helpful text about the different subcommands", since="6.0.0",
      complexity="O(1)")
def acl_help(client, argv):
    return help_reply(_HELP)
