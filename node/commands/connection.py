"""Connection commands: PING ECHO HELLO AUTH SELECT QUIT RESET."""

from __future__ import annotations

from node.commands.args import SYNTAX_ERROR, parse_int
from node.commands.table import command
from node.dispatch import cstr
from node.core import VERSION
from node.resp import OK, PONG, ErrorReply, SimpleString

_WRONGPASS = ErrorReply("WRONGPASS invalid username-password pair or user is disabled.")
_HELLO_NOAUTH = ErrorReply(
    "NOAUTH HELLO must be called with the client already authenticated, otherwise the "
    "HELLO AUTH <user> <pass> option can be used to authenticate the client and "
    "select the RESP protocol version at the same time"
)


def valid_client_name(name: bytes) -> bool:
    """Redis allows printable ASCII without spaces in client names."""
    return all(33 <= c <= 126 for c in name)


def check_password(client, username: bytes, password: bytes) -> bool:
    """True if (username, password) would authenticate (an enabled ACL user, a matching password)."""
    user = client.node.acl.get(username)
    return user is not None and user.check_password(password)


def authenticate(client, username: bytes, password: bytes, argv0: bytes = b"auth") -> None:
    """ACLAuthenticateUser; a failure is logged in the ACL log and answered WRONGPASS."""
    if not client.node.acl.authenticate(client, username, password, argv0):
        raise _WRONGPASS


@command("ping", -1, "fast", group="connection", summary="Ping the server", since="1.0.0", complexity="O(1)",
         tips=("request_policy:all_shards", "response_policy:all_succeeded"))
def ping(client, argv):
    if len(argv) > 2:
        raise ErrorReply("ERR wrong number of arguments for 'ping' command")
    if client.pubsub_channels or client.pubsub_patterns or client.pubsub_shard_channels:
        if not client.resp3:
            return [b"pong", argv[1] if len(argv) == 2 else b""]
    if len(argv) == 2:
        return argv[1]
    return PONG


@command("echo", 2, "loading stale fast", group="connection", summary="Echo the given string", since="1.0.0",
         complexity="O(1)")
def echo(client, argv):
    return argv[1]


@command("quit", -1, "noscript loading stale fast no_auth allow_busy", group="connection",
         summary="Close the connection", since="1.0.0", complexity="O(1)")
def quit_(client, argv):
    client.close_after_reply = True
    return OK


@command("select", 2, "loading stale fast", group="connection",
         summary="Change the selected database for the current connection", since="1.0.0", complexity="O(1)")
def select(client, argv):
    index = parse_int(argv[1])
    if client.node.cluster_enabled and index != 0:
        raise ErrorReply("ERR SELECT is not allowed in cluster mode")
    if index < 0 or index >= len(client.node.dbs):
        raise ErrorReply("ERR DB index is out of range")
    client.select(index)
    return OK


@command("auth", -2, "noscript loading stale fast no_auth allow_busy", group="connection",
         summary="Authenticate to the server", since="1.0.0",
         complexity="O(N) where N is the number of passwords defined for the user")
def auth(client, argv):
    if len(argv) > 3:
        raise SYNTAX_ERROR
    if len(argv) == 2:
        if client.node.acl.default.nopass:
            raise ErrorReply(
                "ERR AUTH <password> called without any password configured for the default user. "
                "Are you sure your configuration is correct?"
            )
        username, password = b"default", argv[1]
    else:
        username, password = argv[1], argv[2]
    authenticate(client, username, password, argv[0])
    return OK


@command("hello", -1, "noscript loading stale fast no_auth allow_busy", group="connection",
         summary="Handshake with Redis", since="6.0.0", complexity="O(1)")
def hello(client, argv):
    """HELLO, with Redis 7.0's order: each option takes effect as it is parsed.

    So ``HELLO 3 AUTH u p bogus`` leaves the client authenticated although the
    reply is a syntax error, and a SETNAME before a failing option sticks;
    only the protocol switch waits until everything succeeded.
    """
    version = None
    if len(argv) >= 2:
        version = parse_int(argv[1], ErrorReply("ERR Protocol version is not an integer or out of range"))
        if version < 2 or version > 3:
            raise ErrorReply("NOPROTO unsupported protocol version")
    i = 2
    while i < len(argv):
        option = argv[i].lower()
        more = len(argv) - i - 1
        if option == b"auth" and more >= 2:
            authenticate(client, argv[i + 1], argv[i + 2], argv[0])
            i += 3
        elif option == b"setname" and more >= 1:
            name = argv[i + 1]
            if not valid_client_name(name):
                raise ErrorReply("ERR Client names cannot contain spaces, newlines or special characters.")
            client.name = name
            i += 2
        else:
            raise ErrorReply("ERR Syntax error in HELLO option '%s'" % cstr(argv[i]))
    if not client.authenticated:
        raise _HELLO_NOAUTH
    if version is not None:
        client.resp3 = version == 3
    node = client.node
    return {
        b"server": b"redis",
        b"version": VERSION.encode(),
        b"proto": 3 if client.resp3 else 2,
        b"id": client.id,
        b"mode": b"cluster" if node.cluster_enabled else b"standalone",
        b"role": b"master",
        b"modules": [],
    }


@command("reset", 1, "noscript loading stale fast no_auth allow_busy", group="connection",
         summary="Reset the connection", since="6.2.0", complexity="O(1)")
def reset(client, argv):
    node = client.node
    if node.reset_hook is not None:
        node.reset_hook(client)  # MULTI/WATCH/pub-sub state of later layers
    node.pubsub.unsubscribe_all(client)
    client.select(0)
    client.resp3 = False
    client.name = b""
    client.reply_mode = 0
    client.readonly = False
    client.asking = False
    client.no_evict = False
    client.user = b"default"
    client.acl_user = node.acl.default
    client.authenticated = not node.auth_required()
    client.refresh_gate()
    return SimpleString(b"RESET")
