"""CLIENT and its subcommands: connection introspection and control.

CLIENT LIST/INFO print Redis 7.0's exact field list and order, because tools
parse it (redis-py's ``client_list``, monitoring agents splitting on spaces).
Fields Shoal knows are real: ids, addresses, fd, name, ages, flags, db,
subscription counts, MULTI depth, query buffer (``parser.pending_bytes()``),
argument memory of the running command, output buffer bytes, last command,
user, protocol. Fields about Redis's allocator have no Shoal equivalent
(``qbuf-free``, ``rbs``, ``rbp``, ``oll``, ``omem``) and print 0; ``tot-mem``
is the sum of the buffers we do know. tests/known_differences.py lists this.

CLIENT KILL never closes a socket here: the server loop owns sockets, so other
clients are marked and queued on ``node.pending_close`` (and stop running
commands at once, as Redis's freeClient would make them), while a client that
kills itself gets its reply first (``close_after_reply``).
"""

from __future__ import annotations

from node.client import REPLY_OFF, REPLY_ON, REPLY_SKIP_NEXT
from node.commands.args import SYNTAX_ERROR, to_int_or_none
from node.commands.connection import valid_client_name
from node.commands.introspection import help_reply
from node.commands.table import command, container
from node.pause import Postponed
from node.resp import NO_REPLY, OK, ErrorReply, SetReply, Verbatim, write_reply

_LONG_MAX = 2**63 - 1

_HELP = [
    "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CACHING (YES|NO)",
    "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
    "GETREDIR",
    "    Return the client ID we are redirecting to when tracking is enabled.",
    "GETNAME",
    "    Return the name of the current connection.",
    "ID",
    "    Return the ID of the current connection.",
    "INFO",
    "    Return information about the current client connection.",
    "KILL <ip:port>",
    "    Kill connection made from <ip:port>.",
    "KILL <option> <value> [<option> <value> [...]]",
    "    Kill connections. Options are:",
    "    * ADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made from the specified address",
    "    * LADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made to specified local address",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Kill connections by type.",
    "    * USER <username>",
    "      Kill connections authenticated by <username>.",
    "    * SKIPME (YES|NO)",
    "      Skip killing current connection (default: yes).",
    "LIST [options ...]",
    "    Return information about client connections. Options:",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Return clients of specified type.",
    "UNPAUSE",
    "    Stop the current client pause, resuming traffic.",
    "REPLY (ON|OFF|SKIP)",
    "    Control the replies sent to the current connection.",
    "SETNAME <name>",
    "    Assign the name <name> to the current connection.",
    "SETINFO <option> <value>",
    "    Set client meta attr. Options are:",
    "    * LIB-NAME: the client lib name.",
    "    * LIB-VER: the client lib version.",
    "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
    "         [OPTIN] [OPTOUT] [NOLOOP]",
    "    Control server assisted client side caching.",
    "TRACKINGINFO",
    "    Report tracking status for the current connection.",
    "NO-EVICT (ON|OFF)",
    "    Protect current client connection from eviction.",
    "HELP",
    "    Prints this help.",
]

# getClientTypeByName: the names TYPE accepts ("slave" is the old "replica").
_TYPES = {b"normal": "normal", b"slave": "replica", b"replica": "replica", b"pubsub": "pubsub", b"master": "master"}

_NAME_ERROR = ErrorReply("ERR Client names cannot contain spaces, newlines or special characters.")

CLIENT = container(
    "client", -2, group="connection", summary="A container for client connection commands",
    since="2.4.0", complexity="Depends on subcommand.",
)


def _sub(name: str, arity: int, flags: str = "noscript loading stale", **info):
    return command(name, arity, flags, parent="client", group="connection", **info)


# ------------------------------------------------------------- client info


def client_type(client) -> str:
    """getClientType: master, replica, pubsub or normal."""
    extra = client.flags
    if "M" in extra:
        return "master"
    if "S" in extra:
        return "replica"
    if _subscriptions(client):
        return "pubsub"
    return "normal"


def _shard_channels(client):
    return getattr(client, "pubsub_shard_channels", None) or ()


def _subscriptions(client) -> int:
    return len(client.pubsub_channels) + len(client.pubsub_patterns) + len(_shard_channels(client))


def flag_letters(client) -> str:
    """CLIENT LIST flags in Redis's order (catClientInfoString)."""
    letters = ""
    extra = client.flags  # role letters set by replication: S (replica), O (monitor), M (master)
    for letter in "SOM":
        if letter in extra:
            letters += letter
    if _subscriptions(client):
        letters += "P"
    if client.multi is not None:
        letters += "x"
    if client.blocked is not None:
        letters += "b"
    tracking = client.tracking
    if tracking is not None:
        letters += "t"
        if tracking.broken:
            letters += "R"
        if tracking.bcast:
            letters += "B"
    if client.dirty_cas:
        letters += "d"
    if client.close_after_reply and not client.killed:
        letters += "c"
    if client.killed:
        letters += "A"
    if client.is_unix:
        letters += "U"
    if client.readonly:
        letters += "r"
    if client.no_evict:
        letters += "e"
    return letters or "N"


def _multi_mem(client) -> int:
    """Bytes of queued MULTI arguments plus a pointer each (Redis's argv_len_sums).

    A queued entry is an argv list, or a tuple holding one (command, argv).
    """
    total = 0
    for entry in client.multi or ():
        argv = entry if isinstance(entry, list) else next((p for p in entry if isinstance(p, list)), [])
        total += sum(len(a) for a in argv) + 8 * len(argv)
    return total


def _request_size(argv) -> int:
    """Bytes ``argv`` takes as a RESP multibulk request."""
    size = len(b"*%d\r\n" % len(argv))
    for arg in argv:
        size += len(b"$%d\r\n" % len(arg)) + len(arg) + 2
    return size


def info_line(client, current, current_argv, current_cmd: str) -> str:
    """One CLIENT LIST line for ``client``; ``current`` is the client asking."""
    now_s = client.node.clock.wall_ms() // 1000
    is_current = client is current
    if is_current:
        cmd = current_cmd
        argv_mem = sum(len(a) for a in current_argv)
        events = "r"
    else:
        last = client.last_command
        cmd = last.fullname if last is not None else "NULL"
        argv_mem = 0
        events = "rw" if client.out else "r"
    qbuf = client.parser.pending_bytes()
    if is_current:
        # Redis still holds the running request in its query buffer.
        qbuf += _request_size(current_argv)
    multi_mem = _multi_mem(client)
    obl = len(client.out)
    name = client.name.decode("ascii", "replace")
    redir = client.tracking.redirect if client.tracking is not None else -1
    return (
        f"id={client.id} addr={client.addr} laddr={client.laddr} fd={client.fd} name={name} "
        f"age={now_s - client.created_ms // 1000} idle={now_s - client.last_interaction_ms // 1000} "
        f"flags={flag_letters(client)} db={client.db_index} sub={len(client.pubsub_channels)} "
        f"psub={len(client.pubsub_patterns)} ssub={len(_shard_channels(client))} "
        f"multi={len(client.multi) if client.multi is not None else -1} qbuf={qbuf} qbuf-free=0 "
        f"argv-mem={argv_mem} multi-mem={multi_mem} rbs=0 rbp=0 obl={obl} oll=0 omem=0 "
        f"tot-mem={qbuf + argv_mem + multi_mem + obl} events={events} cmd={cmd} "
        f"user={client.user.decode('utf-8', 'replace')} redir={redir} resp={3 if client.resp3 else 2}"
    )


def _live_clients(client):
    """Connected clients in id order, without those already killed this pass."""
    return [c for c in client.node.clients.values() if not c.killed]


def _parse_type(name: bytes) -> str:
    kind = _TYPES.get(name.lower())
    if kind is None:
        raise ErrorReply("ERR Unknown client type '%s'" % name.decode("utf-8", "surrogateescape"))
    return kind


# ----------------------------------------------------------------- commands


@_sub("id", 2, summary="Returns the client ID for the current connection", since="5.0.0", complexity="O(1)")
def client_id(client, argv):
    return client.id


@_sub("setname", 3, summary="Set the current connection name", since="2.6.9", complexity="O(1)")
def client_setname(client, argv):
    name = argv[2]
    if not valid_client_name(name):
        raise _NAME_ERROR
    client.name = name  # the empty name removes the name
    return OK


@_sub("getname", 2, summary="Get the current connection name", since="2.6.9", complexity="O(1)")
def client_getname(client, argv):
    return client.name or None


@_sub("setinfo", 4, summary="Sets information specific to the client or connection.", since="7.2.0",
      complexity="O(1)")
def client_setinfo(client, argv):
    """Redis 7.2's CLIENT SETINFO (7.0 lacks it; clients send it on connect)."""
    attr = argv[2].lower()
    if attr not in (b"lib-name", b"lib-ver"):
        raise ErrorReply("ERR Unrecognized option '%s'" % argv[2].decode("utf-8", "surrogateescape"))
    value = argv[3]
    if not valid_client_name(value):
        raise ErrorReply(
            "ERR %s cannot contain spaces, newlines or special characters."
            % argv[2].decode("utf-8", "surrogateescape")
        )
    if attr == b"lib-name":
        client.lib_name = value
    else:
        client.lib_ver = value
    return OK


@_sub("list", -2, "admin noscript loading stale", tips=("nondeterministic_output",),
      summary="Get the list of client connections", since="2.4.0",
      complexity="O(N) where N is the number of client connections")
def client_list(client, argv):
    clients = None
    kind = None
    if len(argv) == 4 and argv[2].lower() == b"type":
        kind = _parse_type(argv[3])
    elif len(argv) > 3 and argv[2].lower() == b"id":
        by_id = client.node.clients
        clients = []
        for arg in argv[3:]:
            cid = to_int_or_none(arg)
            if cid is None:
                raise ErrorReply("ERR Invalid client ID")
            found = by_id.get(cid)
            if found is not None and not found.killed:
                clients.append(found)
    elif len(argv) != 2:
        raise SYNTAX_ERROR
    if clients is None:
        clients = [c for c in _live_clients(client) if kind is None or client_type(c) == kind]
    text = "".join(info_line(c, client, argv, "client|list") + "\n" for c in clients)
    return Verbatim(text.encode())


@_sub("info", 2, tips=("nondeterministic_output",),
      summary="Returns information about the current client connection.", since="6.2.0", complexity="O(1)")
def client_info(client, argv):
    return Verbatim((info_line(client, client, argv, "client|info") + "\n").encode())


@_sub("kill", -3, "admin noscript loading stale", summary="Kill the connection of a client", since="2.4.0",
      complexity="O(N) where N is the number of client connections")
def client_kill(client, argv):
    addr = laddr = user = kind = None
    cid = 0
    if len(argv) == 3:
        addr = argv[2]
        skipme = False  # the old form may kill the caller itself
    else:
        skipme = True
        i = 2
        while i < len(argv):
            option = argv[i].lower()
            if i + 1 >= len(argv):
                raise SYNTAX_ERROR
            value = argv[i + 1]
            if option == b"id":
                cid = to_int_or_none(value)
                if cid is None or cid < 1 or cid > _LONG_MAX:
                    raise ErrorReply("ERR client-id should be greater than 0")
            elif option == b"type":
                kind = _parse_type(value)
            elif option == b"addr":
                addr = value
            elif option == b"laddr":
                laddr = value
            elif option == b"user":
                if client.node.acl.get(value) is None:
                    raise ErrorReply("ERR No such user '%s'" % value.decode("utf-8", "surrogateescape"))
                user = value
            elif option == b"skipme":
                lowered = value.lower()
                if lowered == b"yes":
                    skipme = True
                elif lowered == b"no":
                    skipme = False
                else:
                    raise SYNTAX_ERROR
            else:
                raise SYNTAX_ERROR
            i += 2
    node = client.node
    killed = 0
    close_self = False
    for other in _live_clients(client):
        if addr is not None and other.addr.encode() != addr:
            continue
        if laddr is not None and other.laddr.encode() != laddr:
            continue
        if kind is not None and client_type(other) != kind:
            continue
        if cid and other.id != cid:
            continue
        if user is not None and other.user != user:
            continue
        if other is client:
            if skipme:
                continue
            close_self = True
        else:
            other.killed = True
            other.close_after_reply = True  # runs no more commands, like a freed client
            node.pending_close.append(other)
        killed += 1
    if close_self:
        client.close_after_reply = True  # the reply below goes out first
    if len(argv) == 3:
        if killed == 0:
            raise ErrorReply("ERR No such client")
        return OK
    return killed


@_sub("reply", 3, summary="Instruct the server whether to reply to commands", since="3.2.0", complexity="O(1)")
def client_reply(client, argv):
    mode = argv[2].lower()
    if mode == b"on":
        client.reply_mode = REPLY_ON
        reply = OK
    elif mode == b"off":
        client.reply_mode = REPLY_OFF
        reply = NO_REPLY
    elif mode == b"skip":
        if client.reply_mode != REPLY_OFF:
            client.reply_mode = REPLY_SKIP_NEXT
        reply = NO_REPLY
    else:
        raise SYNTAX_ERROR
    client.refresh_gate()
    return reply


@_sub("no-evict", 3, "admin noscript loading stale", summary="Set client eviction mode for the current connection",
      since="7.0.0", complexity="O(1)")
def client_no_evict(client, argv):
    mode = argv[2].lower()
    if mode == b"on":
        client.no_evict = True
    elif mode == b"off":
        client.no_evict = False
    else:
        raise SYNTAX_ERROR
    return OK


@_sub("getredir", 2, summary="Get tracking notifications redirection client ID if any", since="6.0.0",
      complexity="O(1)")
def client_getredir(client, argv):
    tracking = client.tracking
    return tracking.redirect if tracking is not None else -1


@_sub("trackinginfo", 2,
      summary="Return information about server assisted client side caching for the current connection",
      since="6.2.0", complexity="O(1)")
def client_trackinginfo(client, argv):
    tracking = client.tracking
    if tracking is None:
        return {b"flags": SetReply([b"off"]), b"redirect": -1, b"prefixes": []}
    return {
        b"flags": SetReply([b"on", *tracking.flags()]),
        b"redirect": tracking.redirect,
        b"prefixes": sorted(tracking.prefixes),  # a radix tree: byte order
    }


_SINGLE_REDIRECT = ErrorReply("ERR A client can only redirect to a single other client")
_NO_REDIRECT_CLIENT = ErrorReply("ERR The client ID you want redirect to does not exist")


def _c_string(data: bytes) -> str:
    nul = data.find(b"\0")
    return (data if nul == -1 else data[:nul]).decode("utf-8", "surrogateescape")


def _overlap(a: bytes, b: bytes) -> bool:
    """stringCheckPrefix: one is a prefix of the other."""
    n = min(len(a), len(b))
    return a[:n] == b[:n]


@_sub("tracking", -3, summary="Enable or disable server assisted client side caching support", since="6.0.0",
      complexity="O(1). Some options may introduce additional complexity.")
def client_tracking(client, argv):
    """CLIENT TRACKING ON|OFF [REDIRECT id] [PREFIX p ...] [BCAST] [OPTIN] [OPTOUT] [NOLOOP]."""
    from node.tracking import get

    redirect = 0
    bcast = optin = optout = noloop = False
    prefixes: list[bytes] = []
    argc = len(argv)
    j = 3
    while j < argc:
        option = argv[j].lower()
        more = j < argc - 1
        if option == b"redirect" and more:
            j += 1
            if redirect != 0:
                raise _SINGLE_REDIRECT
            value = to_int_or_none(argv[j])
            if value is None:
                raise ErrorReply("ERR value is not an integer or out of range")
            redirect = value
            target = client.node.clients.get(redirect)
            if target is None or target.killed:  # a killed client is already gone for Redis
                raise _NO_REDIRECT_CLIENT
        elif option == b"bcast":
            bcast = True
        elif option == b"optin":
            optin = True
        elif option == b"optout":
            optout = True
        elif option == b"noloop":
            noloop = True
        elif option == b"prefix" and more:
            j += 1
            prefixes.append(argv[j])
        else:
            raise SYNTAX_ERROR
        j += 1
    mode = argv[2].lower()
    if mode == b"on":
        state = client.tracking
        if prefixes and not bcast:
            raise ErrorReply("ERR PREFIX option requires BCAST mode to be enabled")
        if state is not None and state.bcast != bcast:
            raise ErrorReply(
                "ERR You can't switch BCAST mode on/off before disabling tracking for this client, "
                "and then re-enabling it with a different mode."
            )
        if bcast and (optin or optout):
            raise ErrorReply("ERR OPTIN and OPTOUT are not compatible with BCAST")
        if optin and optout:
            raise ErrorReply("ERR You can't specify both OPTIN mode and OPTOUT mode")
        if state is not None and ((optin and state.optout) or (optout and state.optin)):
            raise ErrorReply(
                "ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, "
                "and then re-enabling it with a different mode."
            )
        if bcast:
            existing = sorted(state.prefixes) if state is not None else []
            for i, prefix in enumerate(prefixes):
                for old in existing:
                    if _overlap(old, prefix):
                        raise ErrorReply(
                            f"ERR Prefix '{_c_string(prefix)}' overlaps with an existing prefix "
                            f"'{_c_string(old)}'. Prefixes for a single client must not overlap."
                        )
                for other in prefixes[i + 1:]:
                    if _overlap(prefix, other):
                        raise ErrorReply(
                            f"ERR Prefix '{_c_string(prefix)}' overlaps with another provided prefix "
                            f"'{_c_string(other)}'. Prefixes for a single client must not overlap."
                        )
        get(client.node).enable(client, redirect, bcast, optin, optout, noloop, prefixes)
    elif mode == b"off":
        if client.tracking is not None:
            client.node.tracking.disable(client)
    else:
        raise SYNTAX_ERROR
    return OK


@_sub("caching", 3, summary="Instruct the server about tracking or not keys in the next request", since="6.0.0",
      complexity="O(1)")
def client_caching(client, argv):
    tracking = client.tracking
    if tracking is None:
        raise ErrorReply(
            "ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or "
            "OPTOUT mode enabled"
        )
    option = argv[2].lower()
    if option == b"yes":
        if not tracking.optin:
            raise ErrorReply("ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.")
    elif option == b"no":
        if not tracking.optout:
            raise ErrorReply("ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.")
    else:
        raise SYNTAX_ERROR
    tracking.caching = True
    return OK


@_sub("unpause", 2, "admin noscript loading stale", summary="Resume processing of clients that were paused",
      since="6.2.0", complexity="O(N) Where N is the number of paused clients")
def client_unpause(client, argv):
    client.node.pause.unpause("client")
    return OK


@_sub("pause", -3, "admin noscript loading stale", summary="Stop processing commands from clients for some time",
      since="2.9.50", complexity="O(1)")
def client_pause(client, argv):
    timeout = to_int_or_none(argv[2])
    if timeout is None:
        raise ErrorReply("ERR timeout is not an integer or out of range")
    if timeout < 0:
        raise ErrorReply("ERR timeout is negative")
    mode = "all"
    if len(argv) == 4:
        word = argv[3].lower()
        if word == b"write":
            mode = "write"
        elif word != b"all":
            raise ErrorReply("ERR CLIENT PAUSE mode must be WRITE or ALL")
    elif len(argv) > 4:
        raise SYNTAX_ERROR
    node = client.node
    node.pause.pause("client", mode, node.clock.wall_ms() + timeout)
    return OK


@_sub("help", 2, "loading stale", summary="Show helpful text about the different subcommands", since="5.0.0",
      complexity="O(1)")
def client_help(client, argv):
    return help_reply(_HELP)


_UNBLOCKED_BY_ERROR = ErrorReply("UNBLOCKED client unblocked via CLIENT UNBLOCK")


@_sub("unblock", -3, "admin noscript loading stale",
      summary="Unblock a client blocked in a blocking command from a different connection", since="5.0.0",
      complexity="O(log N) where N is the number of client connections")
def client_unblock(client, argv):
    cid = to_int_or_none(argv[2])
    if cid is None:
        raise ErrorReply("ERR value is not an integer or out of range")
    as_error = False
    if len(argv) == 4:
        mode = argv[3].lower()
        if mode == b"error":
            as_error = True
        elif mode != b"timeout":
            raise ErrorReply("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR")
    elif len(argv) > 4:
        raise SYNTAX_ERROR
    node = client.node
    target = node.clients.get(cid)
    if (target is None or target.blocked is None or type(target.blocked) is Postponed
            or getattr(target.blocked, "external", False)):
        return 0  # a client held by CLIENT PAUSE cannot be unblocked, as in Redis
    state = target.blocked
    node.blocking.unblock(target)
    reply = _UNBLOCKED_BY_ERROR if as_error else state.timeout_reply
    if as_error:
        from node.dispatch import reply_error

        reply_error(target, reply)
    else:
        write_reply(target.out, reply, target.resp3)
    node.pending_write.add(target)
    node.unblocked.append(target)
    return 1
