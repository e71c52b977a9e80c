"""Stream commands (XADD ... XINFO), with Redis 7.0.15's replies, errors and metadata.

The value is ``node.engine.stream.Stream`` (entries in listpack-like nodes,
consumer groups, PELs). This module parses arguments in the order Redis's
``t_stream.c`` does, so the same error wins when several are present, and
keeps the 7.0 stream metadata (entries-added, max-deleted-entry-id,
recorded-first-entry-id, group entries-read and lag) exactly as Redis does.

WATCH and blocked clients: only the commands that call ``signalModifiedKey``
in Redis touch the key (XADD, XTRIM/XDEL that removed something, XGROUP
CREATE MKSTREAM creating the key); consumer-group bookkeeping (XREADGROUP,
XACK, XCLAIM, XGROUP...) only counts as a change (``db.dirty``). XGROUP
DESTROY wakes blocked XREADGROUP clients (``signalKeyAsReady``) without
touching WATCHed keys.

Blocking (XREAD/XREADGROUP BLOCK): a client that finds nothing blocks on its
keys through ``node.blocking``; ``$`` is replaced in the stored argv by the
last ID the stream had at blocking time. When a key it waits on changes, the
command is re-run and, as in Redis 7.0's ``serveClientsBlockedOnStreamKey``,
only that key is considered: an XREAD is served when the stream's last
generated ID passed the one it waits after (even if those entries were
deleted meanwhile: it then gets an empty list), an XREADGROUP is served from
its group's last delivered ID, gets ``-NOGROUP`` if the group went away and
``-UNBLOCKED`` if the key was deleted or replaced by another type.
"""

from __future__ import annotations

import os

from node.blocking import block_on_keys, parse_timeout
from node.commands.args import SYNTAX_ERROR, WRONGTYPE, parse_int
from node.commands.introspection import help_reply
from node.commands.strings import keyword
from node.commands.table import command, container
from node.debug_digest import VALUE_DIGESTERS, mix_digest
from node.dispatch import cstr
from node.engine.stream import ID_MAX, MASK64, Nack, Stream, format_id, parse_id_text
from node.engine.values import COPIERS, ENCODINGS, TYPE_NAMES
from node.notify import STREAM, notify
from node.propagation import also_propagate, prevent, rewrite
from node.resp import NULL_ARRAY, OK, ErrorReply

TYPE_NAMES[Stream] = b"stream"
ENCODINGS[Stream] = lambda value: b"stream"
COPIERS[Stream] = Stream.copy

_INVALID_READ = -1

_INVALID_ID = ErrorReply("ERR Invalid stream ID specified as stream command argument")
_ID_TOO_SMALL = ErrorReply("ERR The ID specified in XADD is equal or smaller than the target stream top item")
_ID_ZERO = ErrorReply("ERR The ID specified in XADD must be greater than 0-0")
_EXHAUSTED = ErrorReply("ERR The stream has exhausted the last possible ID, unable to add more items")
_TOO_LARGE = ErrorReply("ERR Elements are too large to be stored")
_XADD_ARITY = ErrorReply("ERR wrong number of arguments for 'xadd' command")
_MAXLEN_AND_MINID = ErrorReply("ERR syntax error, MAXLEN and MINID options at the same time are not compatible")
_MAXLEN_NEGATIVE = ErrorReply("ERR The MAXLEN argument must be >= 0.")
_LIMIT_NEGATIVE = ErrorReply("ERR The LIMIT argument must be >= 0.")
_LIMIT_NO_STRATEGY = ErrorReply("ERR syntax error, LIMIT cannot be used without specifying a trimming strategy")
_XTRIM_NO_STRATEGY = ErrorReply("ERR syntax error, XTRIM must be called with a trimming strategy")
_LIMIT_NO_TILDE = ErrorReply("ERR syntax error, LIMIT cannot be used without the special ~ option")
_BAD_START = ErrorReply("ERR invalid start ID for the interval")
_BAD_END = ErrorReply("ERR invalid end ID for the interval")
_UNBALANCED = ErrorReply(
    "ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified.")
_GROUP_ONLY_XREADGROUP = ErrorReply(
    "ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead.")
_NOACK_ONLY_XREADGROUP = ErrorReply(
    "ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead.")
_MISSING_GROUP = ErrorReply("ERR Missing GROUP option for XREADGROUP")
_DOLLAR_IN_GROUP = ErrorReply(
    "ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this "
    "consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just "
    "return an empty result set.")
_GT_WITHOUT_GROUP = ErrorReply(
    "ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option.")
_BLOCKED_GROUP_GONE = ErrorReply("NOGROUP the consumer group this client was blocked on no longer exists")
_BLOCKED_KEY_GONE = ErrorReply("UNBLOCKED the stream key no longer exists")
_XGROUP_NEEDS_KEY = ErrorReply(
    "ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the "
    "MKSTREAM option to create an empty stream automatically.")
_ENTRIESREAD_RANGE = ErrorReply("ERR value for ENTRIESREAD must be positive or -1")
_BUSYGROUP = ErrorReply("BUSYGROUP Consumer Group name already exists")
_NO_SUCH_KEY = ErrorReply("ERR no such key")
_ENTRIES_ADDED_NEGATIVE = ErrorReply("ERR entries_added must be positive")
_XSETID_BELOW_MAXDEL_ARG = ErrorReply(
    "ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id")
_XSETID_BELOW_TOP = ErrorReply("ERR The ID specified in XSETID is smaller than the target stream top item")
_XSETID_ADDED_BELOW_LEN = ErrorReply(
    "ERR The entries_added specified in XSETID is smaller than the target stream length")
_XCLAIM_MINIDLE = ErrorReply("ERR Invalid min-idle-time argument for XCLAIM")
_XCLAIM_IDLE = ErrorReply("ERR Invalid IDLE option argument for XCLAIM")
_XCLAIM_TIME = ErrorReply("ERR Invalid TIME option argument for XCLAIM")
_XCLAIM_RETRYCOUNT = ErrorReply("ERR Invalid RETRYCOUNT option argument for XCLAIM")
_XAUTOCLAIM_MINIDLE = ErrorReply("ERR Invalid min-idle-time argument for XAUTOCLAIM")
_XAUTOCLAIM_COUNT = ErrorReply("ERR COUNT must be > 0")

# XAUTOCLAIM's COUNT upper bound: LONG_MAX / max(sizeof(streamID), attempts factor 10).
_XAUTOCLAIM_MAX_COUNT = (2**63 - 1) // 16
_XAUTOCLAIM_NO_MEMORY = ErrorReply(
    "ERR Insufficient memory, failed allocating transient memory, COUNT too high.")


def _physical_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not Linux
        return 1 << 40


# Redis allocates COUNT 16-byte IDs up front (ztrymalloc) for the deleted-IDs reply; under
# Linux's overcommit heuristic that fails once the request exceeds the machine's memory.
_XAUTOCLAIM_MAX_ALLOC = _physical_memory()


def _cut(arg: bytes) -> bytes:
    """``arg`` as a C string comparison sees it (cut at the first NUL)."""
    nul = arg.find(b"\0")
    return arg if nul == -1 else arg[:nul]


def _nogroup(key: bytes, group: bytes, suffix: str = "") -> ErrorReply:
    return ErrorReply(f"NOGROUP No such key '{cstr(key)}' or consumer group '{cstr(group)}'{suffix}")


def _nogroup_for_key(group: bytes, key: bytes) -> ErrorReply:
    return ErrorReply(f"NOGROUP No such consumer group '{cstr(group)}' for key name '{cstr(key)}'")


def _subcommand_syntax(argv) -> ErrorReply:
    return ErrorReply(
        f"ERR unknown subcommand or wrong number of arguments for '{cstr(argv[1], 128)}'. "
        f"Try {cstr(argv[0]).upper()} HELP.")


def _parse_id(arg: bytes, missing_seq: int = 0) -> int:
    """A stream ID where ``-`` and ``+`` are allowed (streamParseIDOrReply)."""
    parsed = parse_id_text(arg, missing_seq, False)
    if parsed is None:
        raise _INVALID_ID
    return parsed[0]


def _parse_strict_id(arg: bytes, missing_seq: int = 0) -> int:
    """A stream ID where ``-`` and ``+`` are not allowed (streamParseStrictIDOrReply)."""
    parsed = parse_id_text(arg, missing_seq, True)
    if parsed is None:
        raise _INVALID_ID
    return parsed[0]


def _parse_interval(arg: bytes, missing_seq: int):
    """A range bound, ``(`` meaning exclusive: ``(id, exclusive)``."""
    if len(arg) > 1 and arg[0] == 0x28:
        return _parse_strict_id(arg[1:], missing_seq), True
    return _parse_id(arg, missing_seq), False


def _parse_range_start(arg: bytes) -> int:
    start, exclusive = _parse_interval(arg, 0)
    if exclusive:
        if start == ID_MAX:
            raise _BAD_START
        start += 1
    return start


def _parse_range_end(arg: bytes) -> int:
    end, exclusive = _parse_interval(arg, MASK64)
    if exclusive:
        if end == 0:
            raise _BAD_END
        end -= 1
    return end


def _entry(sid: int, fv) -> list:
    return [format_id(sid), list(fv)]


def _stream_for_read(db, key: bytes):
    value = db.lookup_read(key)
    if value is None or type(value) is Stream:
        return value
    raise WRONGTYPE


def _stream_for_write(db, key: bytes):
    value = db.lookup(key)
    if value is None or type(value) is Stream:
        return value
    raise WRONGTYPE


def _node_limits(client) -> tuple[int, int]:
    config = client.node.config
    return config["stream-node-max-bytes"], config["stream-node-max-entries"]


# ------------------------------------------------------------------ XADD, XTRIM


class _TrimArgs:
    __slots__ = ("id", "id_given", "seq_given", "no_mkstream", "strategy", "approx", "limit", "maxlen", "minid",
                 "idpos")

    def __init__(self) -> None:
        self.id = 0
        self.id_given = False
        self.seq_given = True
        self.no_mkstream = False
        self.strategy = None  # None, "maxlen" or "minid"
        self.approx = False
        self.limit = 0
        self.maxlen = 0
        self.minid = 0
        self.idpos = 0


def _trim_threshold_index(args: _TrimArgs, argv, i: int, more: int) -> int:
    """After MAXLEN/MINID at ``i``: note an optional ``~`` (approximate) or ``=``; the threshold's index."""
    if args.strategy is not None:
        raise _MAXLEN_AND_MINID
    args.approx = False
    nxt = _cut(argv[i + 1])
    if more >= 2 and nxt == b"~":
        args.approx = True
        i += 1
    elif more >= 2 and nxt == b"=":
        i += 1
    return i + 1


def _parse_add_trim(client, argv, xadd: bool) -> _TrimArgs:
    """streamParseAddOrTrimArgsOrReply: XADD/XTRIM options (and XADD's ID position)."""
    args = _TrimArgs()
    argc = len(argv)
    limit_given = False
    i = 2
    while i < argc:
        more = argc - 1 - i
        opt = keyword(argv[i])
        if xadd and opt == b"*":
            break
        if opt == b"maxlen" and more:
            i = _trim_threshold_index(args, argv, i, more)
            args.maxlen = parse_int(argv[i])
            if args.maxlen < 0:
                raise _MAXLEN_NEGATIVE
            args.strategy = "maxlen"
        elif opt == b"minid" and more:
            i = _trim_threshold_index(args, argv, i, more)
            args.minid = _parse_strict_id(argv[i])
            args.strategy = "minid"
        elif opt == b"limit" and more:
            args.limit = parse_int(argv[i + 1])
            if args.limit < 0:
                raise _LIMIT_NEGATIVE
            limit_given = True
            i += 1
        elif xadd and opt == b"nomkstream":
            args.no_mkstream = True
        elif xadd:
            parsed = parse_id_text(argv[i], 0, True, allow_seq_star=True)
            if parsed is None:
                raise _INVALID_ID
            args.id, args.seq_given = parsed
            args.id_given = True
            break
        else:
            raise SYNTAX_ERROR
        i += 1
    args.idpos = i
    if args.limit and args.strategy is None:
        raise _LIMIT_NO_STRATEGY
    if not xadd and args.strategy is None:
        raise _XTRIM_NO_STRATEGY
    if limit_given:
        if not args.approx:
            raise _LIMIT_NO_TILDE
    elif args.approx:
        args.limit = _approx_limit(client)
    else:
        args.limit = 0
    return args


def _approx_limit(client) -> int:
    """The default LIMIT of an approximate trim: 100 x stream-node-max-entries (10000 if that is 0), at most 1000000."""
    limit = 100 * client.node.config["stream-node-max-entries"]
    if limit <= 0:
        limit = 10000
    if limit > 1000000:
        limit = 1000000
    return limit


def _trim(stream: Stream, args: _TrimArgs) -> int:
    if args.strategy == "maxlen":
        return stream.trim(args.maxlen, None, args.approx, args.limit)
    return stream.trim(None, args.minid, args.approx, args.limit)


@command("xadd", -5, "write denyoom fast", (1, 1, 1), group="stream", since="5.0.0",
         summary="Appends a new entry to a stream",
         complexity="O(1) when adding a new entry, O(N) when trimming where N being the number of entries "
                    "evicted.",
         tips=("nondeterministic_output",))
def xadd(client, argv):
    # Fast path for the common shapes "XADD key * f v ..." and "XADD key MAXLEN ~ N * f v ...";
    # anything else (explicit IDs, other options, odd spellings) takes the general parser.
    argc = len(argv)
    opt = argv[2]
    if opt == b"*":
        field_pos = 3
        maxlen = -1
    elif argc > 5 and argv[5] == b"*" and argv[3] == b"~" and opt.lower() == b"maxlen":
        maxlen = parse_int(argv[4])
        if maxlen < 0:
            raise _MAXLEN_NEGATIVE
        field_pos = 6
    else:
        return _xadd_general(client, argv)
    nargs = argc - field_pos
    if nargs < 2 or nargs & 1:
        raise _XADD_ARITY
    db = client.db
    key = argv[1]
    stream = db.lookup(key)
    created = False
    if stream is None:
        stream = Stream()
        db.set(key, stream)
        created = True
    elif type(stream) is not Stream:
        raise WRONGTYPE
    last = stream.last_id
    if last == ID_MAX:
        raise _EXHAUSTED
    # stream.next_auto_id, inlined (last < ID_MAX here, so last + 1 is always a valid greater ID)
    ms = db.now()
    sid = ms << 64 if ms > last >> 64 else last + 1
    if nargs == 2:
        fv = (argv[field_pos], argv[field_pos + 1])
        if len(fv[0]) + len(fv[1]) > (1 << 30):
            raise _TOO_LARGE
    else:
        fv = tuple(argv[field_pos:])
        if sum(map(len, fv)) > (1 << 30):
            raise _TOO_LARGE
    config = client.node.config.values
    stream.append(sid, fv, config["stream-node-max-bytes"], config["stream-node-max-entries"])
    notify(client, STREAM, b"xadd", key)
    # MAXLEN ~ only ever drops the first node whole: nothing to do unless that is possible.
    if maxlen >= 0:
        length = stream.length
        if length > maxlen and length - stream.nodes[0].live >= maxlen:
            args = _TrimArgs()
            args.strategy = "maxlen"
            args.approx = True
            args.maxlen = maxlen
            args.limit = _approx_limit(client)
            if _trim(stream, args):
                notify(client, STREAM, b"xtrim", key)
    if not created:
        db.touch(key)
    reply = b"%d-%d" % (sid >> 64, sid & MASK64)
    if client.node.propagation.enabled:
        # The generated ID, and "~ N" as the exact "= <length left>" (see _rewrite_approx_trim).
        if maxlen >= 0:
            rewrite(client, *argv[:3], b"=", b"%d" % stream.length, reply, *argv[6:])
        else:
            rewrite(client, argv[0], key, reply, *argv[3:])
    return reply


def _trim_edge_arg(stream: Stream, strategy: str) -> bytes:
    """streamRewriteTrimArgument: the length left (MAXLEN), or the first ID left, tombstones included (MINID)."""
    if strategy == "maxlen":
        return b"%d" % stream.length
    if stream.nodes:
        return format_id(stream.nodes[0].ids[0])
    return format_id(ID_MAX)


def _rewrite_approx_trim(argv, new: list, stream: Stream, args: _TrimArgs) -> list:
    """An approximate trim (``~``, maybe LIMIT) becomes the exact trim of what it actually did.

    A replica's or a reloaded AOF's nodes need not split where ours did, so
    ``MAXLEN ~ 100`` is propagated as ``MAXLEN = <entries kept>`` and
    ``MINID ~ x`` as ``MINID = <first ID kept>``, as Redis does.
    """
    for p in range(2, args.idpos if args.idpos < len(argv) else len(argv)):
        if keyword(argv[p]) in (b"maxlen", b"minid") and _cut(argv[p + 1]) == b"~":
            new[p + 1] = b"="
            new[p + 2] = _trim_edge_arg(stream, args.strategy)
            break
    return new


def _xadd_general(client, argv):
    args = _parse_add_trim(client, argv, True)
    field_pos = args.idpos + 1
    nargs = len(argv) - field_pos
    if nargs < 2 or nargs % 2:
        raise _XADD_ARITY
    if args.id_given and args.seq_given and args.id == 0:
        raise _ID_ZERO
    db = client.db
    key = argv[1]
    stream = _stream_for_write(db, key)
    created = False
    if stream is None:
        if args.no_mkstream:
            return None
        stream = Stream()
        db.set(key, stream)
        created = True
    last = stream.last_id
    if last == ID_MAX:
        raise _EXHAUSTED
    if not args.id_given:
        sid = stream.next_auto_id(db.now())
    elif args.seq_given:
        sid = args.id
    elif last >> 64 == args.id >> 64:
        if last & MASK64 == MASK64:
            # Redis 7.0 fails here without setting errno, so XADD reports the size error.
            raise _TOO_LARGE
        sid = last + 1
    else:
        sid = args.id
    if sid is None or sid <= last:
        raise _ID_TOO_SMALL
    fv = tuple(argv[field_pos:])
    if sum(map(len, fv)) > (1 << 30):
        raise _TOO_LARGE
    max_bytes, max_entries = _node_limits(client)
    stream.append(sid, fv, max_bytes, max_entries)
    notify(client, STREAM, b"xadd", key)
    if args.strategy is not None and _trim(stream, args):
        notify(client, STREAM, b"xtrim", key)
    if not created:
        db.touch(key)
    reply = format_id(sid)
    if client.node.propagation.enabled and (not args.id_given or not args.seq_given or args.approx):
        new = list(argv)
        if not args.id_given or not args.seq_given:
            new[args.idpos] = reply  # "*" or "ms-*": the ID this node generated
        if args.strategy is not None and args.approx:
            _rewrite_approx_trim(argv, new, stream, args)
        rewrite(client, *new)
    return reply


@command("xtrim", -4, "write", (1, 1, 1), group="stream", since="5.0.0",
         summary="Trims the stream to (approximately if '~' is passed) a certain size",
         complexity="O(N), with N being the number of evicted entries. Constant times are very small however, "
                    "since entries are organized in macro nodes containing multiple entries that can be released "
                    "with a single deallocation.",
         tips=("nondeterministic_output",))
def xtrim(client, argv):
    args = _parse_add_trim(client, argv, False)
    db = client.db
    stream = _stream_for_write(db, argv[1])
    if stream is None:
        return 0
    deleted = _trim(stream, args)
    if deleted:
        notify(client, STREAM, b"xtrim", argv[1])
        db.touch(argv[1], deleted)
        if args.approx and client.node.propagation.enabled:
            args.idpos = len(argv)
            rewrite(client, *_rewrite_approx_trim(argv, list(argv), stream, args))
    return deleted


# ------------------------------------------------------------- XRANGE, XLEN, XDEL


def _xrange(client, argv, rev: bool):
    start_arg, end_arg = (argv[3], argv[2]) if rev else (argv[2], argv[3])
    start = _parse_range_start(start_arg)
    end = _parse_range_end(end_arg)
    count = -1
    argc = len(argv)
    j = 4
    while j < argc:
        if keyword(argv[j]) == b"count" and argc - j - 1 >= 1:
            count = parse_int(argv[j + 1])
            if count < 0:
                count = 0
            j += 2
        else:
            raise SYNTAX_ERROR
    stream = _stream_for_read(client.db, argv[1])
    if stream is None:
        return []
    if count == 0:
        return NULL_ARRAY
    if count == -1:
        count = 0
    return [_entry(sid, fv) for sid, fv in stream.range(start, end, count, rev)]


@command("xrange", -4, "readonly", (1, 1, 1), group="stream", since="5.0.0",
         summary="Return a range of elements in a stream, with IDs matching the specified IDs interval",
         complexity="O(N) with N being the number of elements being returned. If N is constant (e.g. always "
                    "asking for the first 10 elements with COUNT), you can consider it O(1).")
def xrange(client, argv):
    return _xrange(client, argv, False)


@command("xrevrange", -4, "readonly", (1, 1, 1), group="stream", since="5.0.0",
         summary="Return a range of elements in a stream, with IDs matching the specified IDs interval, in reverse "
                 "order (from greater to smaller IDs) compared to XRANGE",
         complexity="O(N) with N being the number of elements returned. If N is constant (e.g. always asking "
                    "for the first 10 elements with COUNT), you can consider it O(1).")
def xrevrange(client, argv):
    return _xrange(client, argv, True)


@command("xlen", 2, "readonly fast", (1, 1, 1), group="stream", since="5.0.0",
         summary="Return the number of entries in a stream", complexity="O(1)")
def xlen(client, argv):
    stream = _stream_for_read(client.db, argv[1])
    return 0 if stream is None else stream.length


@command("xdel", -3, "write fast", (1, 1, 1), group="stream", since="5.0.0",
         summary="Removes the specified entries from the stream. Returns the number of items actually deleted, that "
                 "may be different from the number of IDs passed in case certain IDs do not exist.",
         complexity="O(1) for each single item to delete in the stream, regardless of the stream size.")
def xdel(client, argv):
    db = client.db
    key = argv[1]
    stream = _stream_for_write(db, key)
    if stream is None:
        return 0
    ids = [_parse_strict_id(arg) for arg in argv[2:]]
    deleted = 0
    first_deleted = False
    for sid in ids:
        if stream.delete(sid):
            if sid == stream.first_id:
                first_deleted = True
            deleted += 1
    if deleted:
        stream.after_delete(first_deleted)
        db.touch(key, deleted)
        notify(client, STREAM, b"xdel", key)
    return deleted


# ------------------------------------------------------------ XREAD, XREADGROUP


def _propagate_xclaim(client, key: bytes, group, groupname: bytes, sid_arg: bytes, nack) -> None:
    """streamPropagateXCLAIM: an idempotent XCLAIM that recreates this PEL entry exactly on a replica."""
    if not client.node.propagation.enabled:
        return
    also_propagate(client, b"XCLAIM", key, groupname, nack.consumer.name, b"0", sid_arg,
                   b"TIME", b"%d" % nack.delivery_time, b"RETRYCOUNT", b"%d" % nack.delivery_count,
                   b"FORCE", b"JUSTID", b"LASTID", format_id(group.last_id))


def _propagate_group_id(client, key: bytes, group, groupname: bytes) -> None:
    """streamPropagateGroupID: XGROUP SETID with the group's last ID and read counter."""
    if not client.node.propagation.enabled:
        return
    also_propagate(client, b"XGROUP", b"SETID", key, groupname, format_id(group.last_id),
                   b"ENTRIESREAD", b"%d" % group.entries_read)


def _propagate_group_read(client, key, group, groupname, consumer, entries, noack, history, created) -> None:
    """What an XREADGROUP read of one stream replicates as (Redis 7.0.15).

    A new consumer is announced only with NOACK (otherwise the XCLAIMs create
    it); each entry delivered with ``>`` becomes an XCLAIM, or with NOACK the
    group's new last ID an XGROUP SETID. History reads replicate nothing.
    """
    if not client.node.propagation.enabled:
        return
    if created and noack:
        also_propagate(client, b"XGROUP", b"CREATECONSUMER", key, groupname, consumer.name)
    if history or not entries:
        return
    if noack:
        _propagate_group_id(client, key, group, groupname)
        return
    pel = group.pel
    for entry in entries:
        sid_text = entry[0]
        parsed = parse_id_text(sid_text, 0, True)
        also_propagate(client, b"XCLAIM", key, groupname, consumer.name, b"0", sid_text,
                       b"TIME", b"%d" % pel[parsed[0]].delivery_time,
                       b"RETRYCOUNT", b"%d" % pel[parsed[0]].delivery_count,
                       b"FORCE", b"JUSTID", b"LASTID", sid_text)


def _xread_keys(argv) -> list:
    """The keys of an XREAD/XREADGROUP call, as Redis 7.0 finds them from the key spec.

    The spec is: the keyword STREAMS searched from argument 1 (not as the
    last argument), then half of the arguments that follow it.
    """
    argc = len(argv)
    for i in range(1, argc - 1):
        if keyword(argv[i]) == b"streams":
            first = i + 1
            last = first + (argc - first) // 2 - 1
            return list(argv[first : last + 1]) if last >= first else []
    return []


def _read_from_group(client, stream: Stream, group, consumer, start: int, count: int, noack: bool,
                     history: bool) -> list:
    """streamReplyWithRange with a group: deliver entries and keep the PELs (or serve history)."""
    now = client.db.now()
    if history:
        out = []
        pel = consumer.pel
        for sid in pel.irange(minimum=start):
            if count and len(out) >= count:
                break
            fv = stream.get(sid)
            if fv is None:
                out.append([format_id(sid), NULL_ARRAY])
            else:
                nack = pel[sid]
                nack.delivery_time = now
                nack.delivery_count += 1
                out.append(_entry(sid, fv))
        return out
    out = []
    for sid, fv in stream.range(start, ID_MAX, count):
        if sid > group.last_id:
            stream.advance_group(group, sid)
        out.append(_entry(sid, fv))
        if not noack:
            group.deliver(sid, consumer, now)
    return out


def _lookup_or_create_consumer(client, group, name: bytes, key: bytes):
    consumer = group.consumer(name)
    now = client.db.now()
    if consumer is None:
        consumer = group.create_consumer(name, now)
        client.db.dirty += 1
        notify(client, STREAM, b"xgroup-createconsumer", key)
    else:
        consumer.seen_time = now
    return consumer


def _parse_xread(client, argv, xreadgroup: bool):
    block = None
    count = 0
    noack = False
    groupname = consumername = None
    streams_arg = 0
    argc = len(argv)
    i = 1
    while i < argc:
        more = argc - i - 1
        opt = keyword(argv[i])
        if opt == b"block" and more:
            i += 1
            block = parse_timeout(client, argv[i], seconds=False)
        elif opt == b"count" and more:
            i += 1
            count = parse_int(argv[i])
            if count < 0:
                count = 0
        elif opt == b"streams" and more:
            streams_arg = i + 1
            if (argc - streams_arg) % 2:
                raise _UNBALANCED
            break
        elif opt == b"group" and more >= 2:
            if not xreadgroup:
                raise _GROUP_ONLY_XREADGROUP
            groupname = argv[i + 1]
            consumername = argv[i + 2]
            i += 2
        elif opt == b"noack":
            if not xreadgroup:
                raise _NOACK_ONLY_XREADGROUP
            noack = True
        else:
            raise SYNTAX_ERROR
        i += 1
    if not streams_arg:
        raise SYNTAX_ERROR
    if xreadgroup and groupname is None:
        raise _MISSING_GROUP
    return block, count, noack, groupname, consumername, streams_arg


def _xread(client, argv, xreadgroup: bool):
    block, count, noack, groupname, consumername, streams_arg = _parse_xread(client, argv, xreadgroup)
    nstreams = (len(argv) - streams_arg) // 2
    keys = argv[streams_arg : streams_arg + nstreams]
    if client.blocked is not None:
        return _serve_blocked(client, argv, keys, streams_arg, nstreams, count, noack, groupname, consumername)
    db = client.db
    ids = []
    groups = []
    for idx in range(nstreams):
        key = keys[idx]
        stream = _stream_for_read(db, key)
        if groupname is not None:
            group = stream.group(groupname) if stream is not None else None
            if group is None:
                raise _nogroup(key, groupname, " in XREADGROUP with GROUP option")
            groups.append(group)
        arg = _cut(argv[streams_arg + nstreams + idx])
        if arg == b"$":
            if xreadgroup:
                raise _DOLLAR_IN_GROUP
            ids.append(stream.last_id if stream is not None else 0)
        elif arg == b">":
            if not xreadgroup:
                raise _GT_WITHOUT_GROUP
            ids.append(ID_MAX)
        else:
            ids.append(_parse_strict_id(argv[streams_arg + nstreams + idx]))

    results = []
    for idx in range(nstreams):
        key = keys[idx]
        stream = db.lookup_read(key)
        if stream is None:
            continue
        gt = ids[idx]
        serve = history = False
        if groups:
            group = groups[idx]
            if gt != ID_MAX:
                serve = history = True
            elif stream.length:
                if stream.last_valid_id() > group.last_id:
                    serve = True
                    gt = group.last_id
        elif stream.length and stream.last_valid_id() > gt:
            serve = True
        if serve:
            start = (gt + 1) & ID_MAX
            if groups:
                # Redis 7.0 looks the consumer up (or creates it) only when it serves it.
                created = groups[idx].consumer(consumername) is None
                consumer = _lookup_or_create_consumer(client, groups[idx], consumername, key)
                entries = _read_from_group(client, stream, groups[idx], consumer, start, count, noack, history)
                db.dirty += 1
                _propagate_group_read(client, key, groups[idx], groupname, consumer, entries, noack, history,
                                      created)
            else:
                entries = [_entry(sid, fv) for sid, fv in stream.range(start, ID_MAX, count)]
            results.append((key, entries))
    if results:
        return _streams_reply(client, results)
    if block is None:
        return NULL_ARRAY
    if client.deny_blocking:
        return NULL_ARRAY
    stored = argv
    if not xreadgroup:
        # '$' means "after the last ID the stream has now": make that explicit for the re-runs.
        stored = list(argv)
        for idx in range(nstreams):
            pos = streams_arg + nstreams + idx
            if _cut(argv[pos]) == b"$":
                stored[pos] = format_id(ids[idx])
    return block_on_keys(client, stored, keys, block, NULL_ARRAY)


def _streams_reply(client, results):
    if client.resp3:
        return {key: entries for key, entries in results}
    return [[key, entries] for key, entries in results]


def _serve_blocked(client, argv, keys, streams_arg, nstreams, count, noack, groupname, consumername):
    """A blocked XREAD/XREADGROUP re-run because one of its keys changed."""
    key = client.node.blocking.serving_key
    if key is None or key not in keys:
        return block_on_keys(client, argv, keys, 0, NULL_ARRAY)
    idx = keys.index(key)
    db = client.db
    stream = db.lookup(key)
    if groupname is not None:
        if stream is None or type(stream) is not Stream:
            return _BLOCKED_KEY_GONE
        group = stream.group(groupname)
        if group is None:
            return _BLOCKED_GROUP_GONE
        gt = group.last_id
    else:
        if stream is None or type(stream) is not Stream:
            return block_on_keys(client, argv, keys, 0, NULL_ARRAY)
        gt = _parse_strict_id(argv[streams_arg + nstreams + idx])
    if not stream.last_id > gt:
        return block_on_keys(client, argv, keys, 0, NULL_ARRAY)
    start = (gt + 1) & ID_MAX
    if groupname is not None:
        created = group.consumer(consumername) is None
        consumer = _lookup_or_create_consumer(client, group, consumername, key)
        entries = _read_from_group(client, stream, group, consumer, start, count, noack, False)
        db.dirty += 1
        _propagate_group_read(client, key, group, groupname, consumer, entries, noack, False, created)
    else:
        entries = [_entry(sid, fv) for sid, fv in stream.range(start, ID_MAX, count)]
    return _streams_reply(client, [(key, entries)])


@command("xread", -4, "readonly blocking", (0, 0, 0), group="stream", since="5.0.0",
         key_finder=_xread_keys,
         summary="Return never seen elements in multiple streams, with IDs greater than the ones reported by "
                 "the caller for each stream. Can block.",
         complexity="For each stream mentioned: O(N) with N being the number of elements being returned, it "
                    "means that XREAD-ing with a fixed COUNT is O(1). Note that when the BLOCK option is used, "
                    "XADD will pay O(M) time in order to serve the M clients blocked on the stream getting new "
                    "data.")
def xread(client, argv):
    return _xread(client, argv, False)


@command("xreadgroup", -7, "write blocking", (0, 0, 0), group="stream", since="5.0.0",
         key_finder=_xread_keys,
         summary="Return new entries from a stream using a consumer group, or access the history of the "
                 "pending entries for a given consumer. Can block.",
         complexity="For each stream mentioned: O(M) with M being the number of elements returned. If M is "
                    "constant (e.g. always asking for the first 10 elements with COUNT), you can consider it "
                    "O(1). On the other side when XREADGROUP blocks, XADD will pay the O(N) time in order to "
                    "serve the N clients blocked on the stream getting new data.")
def xreadgroup(client, argv):
    prevent(client)  # never replicated as sent: XCLAIM / XGROUP SETID / CREATECONSUMER instead
    return _xread(client, argv, True)


# ------------------------------------------------------------------------ XGROUP

container("xgroup", -2, group="stream", since="5.0.0", summary="A container for consumer groups commands",
          complexity="Depends on subcommand.")

_XGROUP_HELP = [
    "XGROUP <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CREATE <key> <groupname> <id|$> [option]",
    "    Create a new consumer group. Options are:",
    "    * MKSTREAM",
    "      Create the empty stream if it does not exist.",
    "    * ENTRIESREAD entries_read",
    "      Set the group's entries_read counter (internal use).",
    "CREATECONSUMER <key> <groupname> <consumer>",
    "    Create a new consumer in the specified group.",
    "DELCONSUMER <key> <groupname> <consumer>",
    "    Remove the specified consumer.",
    "DESTROY <key> <groupname>",
    "    Remove the specified group.",
    "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
    "    Set the current group ID and entries_read counter.",
    "HELP",
    "    Prints this help.",
]


def _xgroup_prepare(client, argv, sub: bytes):
    """The common part of xgroupCommand: options, the key, the group."""
    argc = len(argv)
    mkstream = False
    entries_read = _INVALID_READ
    i = 5
    while i < argc:
        opt = keyword(argv[i])
        if sub == b"create" and opt == b"mkstream":
            mkstream = True
            i += 1
        elif sub in (b"create", b"setid") and opt == b"entriesread" and i + 1 < argc:
            entries_read = parse_int(argv[i + 1])
            if entries_read < 0 and entries_read != _INVALID_READ:
                raise _ENTRIESREAD_RANGE
            i += 2
        else:
            raise _subcommand_syntax(argv)
    stream = _stream_for_write(client.db, argv[2])
    group = None
    if not mkstream:
        if stream is None:
            raise _XGROUP_NEEDS_KEY
        group = stream.group(argv[3])
        if group is None and sub in (b"setid", b"createconsumer", b"delconsumer"):
            raise _nogroup_for_key(argv[3], argv[2])
    return stream, group, mkstream, entries_read


@command("create", -5, "write denyoom", (2, 2, 1), parent="xgroup", group="stream", since="5.0.0",
         summary="Create a consumer group.", complexity="O(1)")
def xgroup_create(client, argv):
    stream, group, mkstream, entries_read = _xgroup_prepare(client, argv, b"create")
    if len(argv) > 8:
        raise _subcommand_syntax(argv)
    if _cut(argv[4]) == b"$":
        sid = stream.last_id if stream is not None else 0
    else:
        sid = _parse_strict_id(argv[4])
    db = client.db
    key = argv[2]
    if stream is None:
        stream = Stream()
        db.set(key, stream)
    if stream.create_group(argv[3], sid, entries_read) is None:
        return _BUSYGROUP
    db.dirty += 1
    notify(client, STREAM, b"xgroup-create", key)
    return OK


@command("setid", -5, "write", (2, 2, 1), parent="xgroup", group="stream", since="5.0.0",
         summary="Set a consumer group to an arbitrary last delivered ID value.", complexity="O(1)")
def xgroup_setid(client, argv):
    stream, group, _, entries_read = _xgroup_prepare(client, argv, b"setid")
    if len(argv) not in (5, 7):
        raise _subcommand_syntax(argv)
    if _cut(argv[4]) == b"$":
        sid = stream.last_id
    else:
        sid = _parse_id(argv[4])
    group.last_id = sid
    group.entries_read = entries_read
    client.db.dirty += 1
    notify(client, STREAM, b"xgroup-setid", argv[2])
    return OK


@command("destroy", 4, "write", (2, 2, 1), parent="xgroup", group="stream", since="5.0.0",
         summary="Destroy a consumer group.",
         complexity="O(N) where N is the number of entries in the group's pending entries list (PEL).")
def xgroup_destroy(client, argv):
    stream, group, _, _ = _xgroup_prepare(client, argv, b"destroy")
    if group is None:
        return 0
    del stream.groups[argv[3]]
    client.db.dirty += 1
    notify(client, STREAM, b"xgroup-destroy", argv[2])
    # Blocked XREADGROUP clients of this group get -NOGROUP (signalKeyAsReady, no WATCH touch).
    client.node.blocking.signal(client.db_index, argv[2])
    return 1


@command("createconsumer", 5, "write denyoom", (2, 2, 1), parent="xgroup", group="stream", since="6.2.0",
         summary="Create a consumer in a consumer group.", complexity="O(1)")
def xgroup_createconsumer(client, argv):
    _, group, _, _ = _xgroup_prepare(client, argv, b"createconsumer")
    if group.create_consumer(argv[4], client.db.now()) is None:
        return 0
    client.db.dirty += 1
    notify(client, STREAM, b"xgroup-createconsumer", argv[2])
    return 1


@command("delconsumer", 5, "write", (2, 2, 1), parent="xgroup", group="stream", since="5.0.0",
         summary="Delete a consumer from a consumer group.", complexity="O(1)")
def xgroup_delconsumer(client, argv):
    _, group, _, _ = _xgroup_prepare(client, argv, b"delconsumer")
    consumer = group.consumer(argv[4])
    if consumer is None:
        return 0
    pending = group.delete_consumer(consumer)
    client.db.dirty += 1
    notify(client, STREAM, b"xgroup-delconsumer", argv[2])
    return pending


@command("help", 2, "loading stale", parent="xgroup", group="stream", since="5.0.0",
         summary="Show helpful text about the different subcommands", complexity="O(1)")
def xgroup_help(client, argv):
    return help_reply(_XGROUP_HELP)


# ------------------------------------------------------------------------ XSETID


@command("xsetid", -3, "write denyoom fast", (1, 1, 1), group="stream", since="5.0.0",
         summary="An internal command for replicating stream values", complexity="O(1)")
def xsetid(client, argv):
    sid = _parse_strict_id(argv[2])
    entries_added = -1
    max_deleted = 0
    argc = len(argv)
    i = 3
    while i < argc:
        more = argc - 1 - i
        opt = keyword(argv[i])
        if opt == b"entriesadded" and more:
            entries_added = parse_int(argv[i + 1])
            if entries_added < 0:
                raise _ENTRIES_ADDED_NEGATIVE
            i += 2
        elif opt == b"maxdeletedid" and more:
            max_deleted = _parse_strict_id(argv[i + 1])
            if sid < max_deleted:
                raise _XSETID_BELOW_MAXDEL_ARG
            i += 2
        else:
            raise SYNTAX_ERROR
    db = client.db
    stream = db.lookup(argv[1])
    if stream is None:
        raise _NO_SUCH_KEY
    if type(stream) is not Stream:
        raise WRONGTYPE
    if stream.length:
        if sid < stream.last_valid_id():
            raise _XSETID_BELOW_TOP
        if entries_added != -1 and stream.length > entries_added:
            raise _XSETID_ADDED_BELOW_LEN
    stream.last_id = sid
    if entries_added != -1:
        stream.entries_added = entries_added
    if max_deleted:
        stream.max_deleted = max_deleted
    db.dirty += 1
    notify(client, STREAM, b"xsetid", argv[1])
    return OK


# -------------------------------------------------------------- XACK, XPENDING


@command("xack", -4, "write fast", (1, 1, 1), group="stream", since="5.0.0",
         summary="Marks a pending message as correctly processed, effectively removing it from the pending "
                 "entries list of the consumer group. Return value of the command is the number of messages "
                 "successfully acknowledged, that is, the IDs we were actually able to resolve in the PEL.",
         complexity="O(1) for each message ID processed.")
def xack(client, argv):
    db = client.db
    stream = _stream_for_read(db, argv[1])
    group = stream.group(argv[2]) if stream is not None else None
    if group is None:
        return 0
    ids = [_parse_strict_id(arg) for arg in argv[3:]]
    acknowledged = 0
    for sid in ids:
        if group.ack(sid):
            acknowledged += 1
    db.dirty += acknowledged
    return acknowledged


@command("xpending", -3, "readonly", (1, 1, 1), group="stream", since="5.0.0",
         summary="Return information and entries from a stream consumer group pending entries list, that are "
                 "messages fetched but never acknowledged.",
         complexity="O(N) with N being the number of elements returned, so asking for a small fixed number of "
                    "entries per call is O(1). O(M), where M is the total number of entries scanned when used "
                    "with the IDLE filter. When the command returns just the summary and the list of consumers "
                    "is small, it runs in O(1) time; otherwise, an additional O(N) time for iterating every "
                    "consumer.",
         tips=("nondeterministic_output",))
def xpending(client, argv):
    argc = len(argv)
    justinfo = argc == 3
    if argc != 3 and (argc < 6 or argc > 9):
        raise SYNTAX_ERROR
    minidle = 0
    consumername = None
    if argc >= 6:
        startidx = 3
        if keyword(argv[3]) == b"idle":
            minidle = parse_int(argv[4])
            if argc < 8:
                raise SYNTAX_ERROR
            startidx += 2
        count = parse_int(argv[startidx + 2])
        if count < 0:
            count = 0
        start = _parse_range_start(argv[startidx])
        end = _parse_range_end(argv[startidx + 1])
        if startidx + 3 < argc:
            consumername = argv[startidx + 3]
    db = client.db
    stream = _stream_for_read(db, argv[1])
    group = stream.group(argv[2]) if stream is not None else None
    if group is None:
        raise _nogroup(argv[1], argv[2])
    pel = group.pel
    if justinfo:
        if not pel:
            return [0, None, None, NULL_ARRAY]
        consumers = [[c.name, b"%d" % len(c.pel)] for c in group.sorted_consumers() if c.pel]
        return [len(pel), format_id(pel.keys()[0]), format_id(pel.keys()[-1]), consumers]
    if consumername is not None:
        consumer = group.consumer(consumername)
        if consumer is None:
            return []
        pel = consumer.pel
    now = db.now()
    out = []
    if not count or start > end:
        return out
    for sid in pel.irange(start, end):
        nack = pel[sid]
        idle = now - nack.delivery_time
        if minidle and idle < minidle:
            continue
        out.append([format_id(sid), nack.consumer.name, idle if idle > 0 else 0, nack.delivery_count])
        if len(out) == count:
            break
    return out


# ------------------------------------------------------------ XCLAIM, XAUTOCLAIM


@command("xclaim", -6, "write fast", (1, 1, 1), group="stream", since="5.0.0",
         summary="Changes (or acquires) ownership of a message in a consumer group, as if the message was "
                 "delivered to the specified consumer.", complexity="O(log N) with N being the number of "
                 "messages in the PEL of the consumer group.",
         tips=("nondeterministic_output",))
def xclaim(client, argv):
    db = client.db
    stream = _stream_for_read(db, argv[1])
    group = stream.group(argv[2]) if stream is not None else None
    if group is None:
        raise _nogroup(argv[1], argv[2])
    minidle = parse_int(argv[4], _XCLAIM_MINIDLE)
    if minidle < 0:
        minidle = 0
    argc = len(argv)
    ids = []
    j = 5
    while j < argc:
        parsed = parse_id_text(argv[j], 0, True)
        if parsed is None:
            break
        ids.append(parsed[0])
        j += 1
    id_args = argv[5:j]
    now = db.now()
    force = justid = False
    retrycount = -1
    deliverytime = -1
    last_id = 0
    while j < argc:
        more = argc - 1 - j
        opt = keyword(argv[j])
        if opt == b"force":
            force = True
        elif opt == b"justid":
            justid = True
        elif opt == b"idle" and more:
            j += 1
            deliverytime = now - parse_int(argv[j], _XCLAIM_IDLE)
        elif opt == b"time" and more:
            j += 1
            deliverytime = parse_int(argv[j], _XCLAIM_TIME)
        elif opt == b"retrycount" and more:
            j += 1
            retrycount = parse_int(argv[j], _XCLAIM_RETRYCOUNT)
        elif opt == b"lastid" and more:
            j += 1
            last_id = _parse_strict_id(argv[j])
        else:
            raise ErrorReply(f"ERR Unrecognized XCLAIM option '{cstr(argv[j])}'")
        j += 1
    prevent(client)  # replicated as one idempotent XCLAIM per entry, or XGROUP SETID
    propagate_last_id = False
    if last_id > group.last_id:
        group.last_id = last_id
        db.dirty += 1
        propagate_last_id = True
    if deliverytime != -1:
        if deliverytime < 0 or deliverytime > now:
            deliverytime = now
    else:
        deliverytime = now
    consumer = None  # Redis 7.0 looks it up (or creates it) only once something is claimed
    out = []
    pel = group.pel
    for sid, sid_arg in zip(ids, id_args):
        nack = pel.get(sid)
        fv = stream.get(sid)
        if fv is None:
            if nack is not None:
                # The entry is gone from the stream: drop it from the PEL too.
                _propagate_xclaim(client, argv[1], group, argv[2], sid_arg, nack)
                propagate_last_id = False
                del pel[sid]
                del nack.consumer.pel[sid]
                db.dirty += 1
            continue
        if force and nack is None:
            nack = Nack(None, now)
            pel[sid] = nack
        if nack is None:
            continue
        if nack.consumer is not None and minidle and now - nack.delivery_time < minidle:
            continue
        if consumer is None:
            consumer = _lookup_or_create_consumer(client, group, argv[3], argv[1])
        if nack.consumer is not consumer:
            if nack.consumer is not None:
                del nack.consumer.pel[sid]
            consumer.pel[sid] = nack
            nack.consumer = consumer
        nack.delivery_time = deliverytime
        if retrycount >= 0:
            nack.delivery_count = retrycount
        elif not justid:
            nack.delivery_count += 1
        out.append(format_id(sid) if justid else _entry(sid, fv))
        db.dirty += 1
        _propagate_xclaim(client, argv[1], group, argv[2], sid_arg, nack)
        propagate_last_id = False
    if propagate_last_id:
        _propagate_group_id(client, argv[1], group, argv[2])
    return out


@command("xautoclaim", -6, "write fast", (1, 1, 1), group="stream", since="6.2.0",
         summary="Changes (or acquires) ownership of messages in a consumer group, as if the messages were "
                 "delivered to the specified consumer.",
         complexity="O(1) if COUNT is small.", tips=("nondeterministic_output",))
def xautoclaim(client, argv):
    minidle = parse_int(argv[4], _XAUTOCLAIM_MINIDLE)
    if minidle < 0:
        minidle = 0
    start = _parse_range_start(argv[5])
    count = 100
    justid = False
    argc = len(argv)
    j = 6
    while j < argc:
        more = argc - 1 - j
        opt = keyword(argv[j])
        if opt == b"count" and more:
            count = parse_int(argv[j + 1], _XAUTOCLAIM_COUNT)
            if count < 1 or count > _XAUTOCLAIM_MAX_COUNT:
                raise _XAUTOCLAIM_COUNT
            j += 1
        elif opt == b"justid":
            justid = True
        else:
            raise SYNTAX_ERROR
        j += 1
    db = client.db
    stream = _stream_for_read(db, argv[1])
    group = stream.group(argv[2]) if stream is not None else None
    if group is None:
        raise _nogroup(argv[1], argv[2])
    if count * 16 > _XAUTOCLAIM_MAX_ALLOC:
        raise _XAUTOCLAIM_NO_MEMORY
    consumer = None  # as in XCLAIM, only once something is claimed
    now = db.now()
    attempts = count * 10
    pel = group.pel
    claimed = []
    deleted = []
    next_id = 0
    ids = iter(list(pel.irange(minimum=start)))
    for sid in ids:
        if not attempts or not count:
            next_id = sid
            break
        attempts -= 1
        nack = pel[sid]
        fv = stream.get(sid)
        if fv is None:
            _propagate_xclaim(client, argv[1], group, argv[2], format_id(sid), nack)
            del pel[sid]
            del nack.consumer.pel[sid]
            deleted.append(format_id(sid))
            db.dirty += 1
            count -= 1
            continue
        if minidle and now - nack.delivery_time < minidle:
            continue
        if consumer is None:
            consumer = _lookup_or_create_consumer(client, group, argv[3], argv[1])
        if nack.consumer is not consumer:
            if nack.consumer is not None:
                del nack.consumer.pel[sid]
            consumer.pel[sid] = nack
            nack.consumer = consumer
        nack.delivery_time = now
        if not justid:
            nack.delivery_count += 1
        claimed.append(format_id(sid) if justid else _entry(sid, fv))
        count -= 1
        db.dirty += 1
        _propagate_xclaim(client, argv[1], group, argv[2], format_id(sid), nack)
    prevent(client)  # replicated as the XCLAIMs above
    return [format_id(next_id), claimed, deleted]


# ------------------------------------------------------------------------- XINFO

container("xinfo", -2, group="stream", since="5.0.0", summary="A container for stream introspection commands",
          complexity="Depends on subcommand.")

_XINFO_HELP = [
    "XINFO <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CONSUMERS <key> <groupname>",
    "    Show consumers of <groupname>.",
    "GROUPS <key>",
    "    Show the stream consumer groups.",
    "STREAM <key> [FULL [COUNT <count>]",
    "    Show information about the stream.",
    "HELP",
    "    Prints this help.",
]


def _xinfo_stream_for(client, key: bytes) -> Stream:
    stream = client.db.lookup_read(key)
    if stream is None:
        raise _NO_SUCH_KEY
    if type(stream) is not Stream:
        raise WRONGTYPE
    return stream


@command("stream", -3, "readonly", (2, 2, 1), parent="xinfo", group="stream", since="5.0.0",
         summary="Get information about a stream", complexity="O(1)")
def xinfo_stream(client, argv):
    stream = _xinfo_stream_for(client, argv[2])
    opts = argv[3:]
    full = bool(opts)
    count = 10
    if opts:
        if len(opts) not in (1, 3) or keyword(opts[0]) != b"full":
            raise _subcommand_syntax(argv)
        if len(opts) == 3:
            if keyword(opts[1]) != b"count":
                raise _subcommand_syntax(argv)
            count = parse_int(opts[2])
            if count < 0:
                count = 10
    reply = {
        b"length": stream.length,
        b"radix-tree-keys": stream.rax_keys(),
        b"radix-tree-nodes": stream.rax_nodes(),
        b"last-generated-id": format_id(stream.last_id),
        b"max-deleted-entry-id": format_id(stream.max_deleted),
        b"entries-added": stream.entries_added,
        b"recorded-first-entry-id": format_id(stream.first_id),
    }
    if not full:
        reply[b"groups"] = len(stream.groups) if stream.groups else 0
        first = next(stream.range(0, ID_MAX, 1), None)
        last = next(stream.range(0, ID_MAX, 1, rev=True), None)
        reply[b"first-entry"] = _entry(*first) if first is not None else None
        reply[b"last-entry"] = _entry(*last) if last is not None else None
        return reply
    reply[b"entries"] = [_entry(sid, fv) for sid, fv in stream.range(0, ID_MAX, count)]
    groups = []
    for name, group in stream.sorted_groups():
        pending = []
        for sid, nack in group.pel.items():
            if count and len(pending) >= count:
                break
            pending.append([format_id(sid), nack.consumer.name, nack.delivery_time, nack.delivery_count])
        consumers = []
        for consumer in group.sorted_consumers():
            own = []
            for sid, nack in consumer.pel.items():
                if count and len(own) >= count:
                    break
                own.append([format_id(sid), nack.delivery_time, nack.delivery_count])
            consumers.append({
                b"name": consumer.name,
                b"seen-time": consumer.seen_time,
                b"pel-count": len(consumer.pel),
                b"pending": own,
            })
        groups.append({
            b"name": name,
            b"last-delivered-id": format_id(group.last_id),
            b"entries-read": group.entries_read if group.entries_read != _INVALID_READ else None,
            b"lag": stream.lag(group),
            b"pel-count": len(group.pel),
            b"pending": pending,
            b"consumers": consumers,
        })
    reply[b"groups"] = groups
    return reply


@command("groups", 3, "readonly", (2, 2, 1), parent="xinfo", group="stream", since="5.0.0",
         summary="List the consumer groups of a stream", complexity="O(1)")
def xinfo_groups(client, argv):
    stream = _xinfo_stream_for(client, argv[2])
    return [
        {
            b"name": name,
            b"consumers": len(group.consumers),
            b"pending": len(group.pel),
            b"last-delivered-id": format_id(group.last_id),
            b"entries-read": group.entries_read if group.entries_read != _INVALID_READ else None,
            b"lag": stream.lag(group),
        }
        for name, group in stream.sorted_groups()
    ]


@command("consumers", 4, "readonly", (2, 2, 1), parent="xinfo", group="stream", since="5.0.0",
         summary="List the consumers in a consumer group", complexity="O(1)",
         tips=("nondeterministic_output",))
def xinfo_consumers(client, argv):
    stream = _xinfo_stream_for(client, argv[2])
    group = stream.group(argv[3])
    if group is None:
        raise _nogroup_for_key(argv[3], argv[2])
    now = client.db.now()
    return [
        {b"name": c.name, b"pending": len(c.pel), b"idle": max(now - c.seen_time, 0)}
        for c in group.sorted_consumers()
    ]


@command("help", 2, "loading stale", parent="xinfo", group="stream", since="5.0.0",
         summary="Show helpful text about the different subcommands", complexity="O(1)")
def xinfo_help(client, argv):
    return help_reply(_XINFO_HELP)


# ------------------------------------------------------------------ DEBUG DIGEST


def _stream_digest(digest: bytearray, stream: Stream) -> None:
    """debug.c's xorObjectDigest for streams: each live entry's "ms.seq", fields and values, in order."""
    for sid, fv in stream.range(0, ID_MAX):
        mix_digest(digest, b"%d.%d" % (sid >> 64, sid & MASK64))
        for item in fv:
            mix_digest(digest, item)


VALUE_DIGESTERS[Stream] = (6, _stream_digest)
