"""Every known difference between Shoal's replies and Redis 7.0's, with its reason.

This is the one place such differences live. The differential harness
(``tests/differential.py``) reads it: a command listed here has its replies
normalised on both sides before comparison (or compared only in shape) --
never silently skipped. Keep the list short; each entry needs a reason a
Redis user would accept.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from tests.resp_client import parse

__all__ = ["Difference", "KNOWN_DIFFERENCES", "normalizer_for"]


@dataclass(frozen=True)
class Difference:
    reason: str
    #: raw reply bytes -> comparable value; applied to both servers' replies.
    normalize: Callable[[bytes], object]


def _sorted_array(raw: bytes):
    value = parse(raw)
    return sorted(value) if isinstance(value, list) else value


KNOWN_DIFFERENCES: dict[str, Difference] = {
    "keys": Difference(
        "Redis lists keys in hash-table order, Shoal in hash-slot order; the set of keys is "
        "compared, not the order.",
        _sorted_array,
    ),
}


def _word(arg) -> str:
    return (arg if isinstance(arg, str) else arg.decode(errors="replace")).lower()


def normalizer_for(argv: tuple) -> Callable[[bytes], object] | None:
    """The normaliser for ``argv``: a ``cmd|sub`` entry first, then the command's own."""
    name = _word(argv[0])
    if len(argv) > 1:
        diff = KNOWN_DIFFERENCES.get(f"{name}|{_word(argv[1])}")
        if diff is not None:
            return diff.normalize
    diff = KNOWN_DIFFERENCES.get(name)
    return diff.normalize if diff else None


# ---- generic key commands (tests/test_keys.py) ----


def _scan_page_shape(raw: bytes):
    """Errors exactly; a page only as its shape: [numeric cursor, list of bulk keys]."""
    if raw.startswith(b"-"):
        return raw
    value = parse(raw)
    well_formed = (
        isinstance(value, list) and len(value) == 2 and isinstance(value[0], bytes) and value[0].isdigit()
        and isinstance(value[1], list) and all(isinstance(k, bytes) for k in value[1])
    )
    return ("scan page", well_formed)


def _any_integer(raw: bytes):
    """Errors and nil exactly; any integer reply as just 'an integer'."""
    return "integer" if raw.startswith(b":") else raw


KNOWN_DIFFERENCES["scan"] = Difference(
    "Cursors differ: Redis's walks hash-table buckets in reverse-binary order, Shoal's is the next "
    "hash slot (a slot is returned whole), so pages hold different keys. Errors compare exactly; "
    "pages only in shape. Tests compare the set of keys of completed iterations (scan_all).",
    _scan_page_shape,
)
# The two below are keyed by subcommand; normalizer_for looks up argv[0] only, so
# tests/test_keys.py applies them explicitly.
KNOWN_DIFFERENCES["object|idletime"] = Difference(
    "Shoal tracks per-key access times (node/memory, a side dict per database) only while the "
    "maxmemory-policy uses them (allkeys-lru, volatile-lru): elsewhere the store would cost ~30 ns "
    "on every GET/SET lookup (measured, ~20% of a lookup) and ~50 bytes per key. Under an LRU "
    "policy OBJECT IDLETIME is Redis's (1 s LRU clock); under other non-LFU policies it reports 0. "
    "nil for missing keys and the LFU-policy error match Redis exactly.",
    _any_integer,
)
KNOWN_DIFFERENCES["object|freq"] = Difference(
    "Under an LFU policy OBJECT FREQ is Redis's LFU counter (LFU_INIT_VAL for a new key, "
    "logarithmic increments, lfu-decay-time): equal where deterministic (a new key, its first "
    "hit), random beyond. The non-LFU error and nil match Redis exactly.",
    _any_integer,
)
KNOWN_DIFFERENCES["memory|usage"] = Difference(
    "MEMORY USAGE reports Shoal's own bytes (sys.getsizeof over the value's Python objects, sampled "
    "like Redis with SAMPLES, default 5): 1-7x Redis's figure, ~20x for small sorted sets (dict + "
    "SortedList vs a listpack). Option errors and nil match exactly; tests check the order of magnitude.",
    lambda raw: raw if raw.startswith(b"-") or raw.startswith(b"$-1") else b"integer",
)
KNOWN_DIFFERENCES["memory|stats"] = Difference(
    "MEMORY STATS has Redis 7.0's fields in Redis's order (db.N maps included); the values are "
    "Shoal's (node/memory: used_memory excludes the interpreter's start-up footprint; "
    "allocator.* and fragmentation compare the RSS with the whole process's allocation). "
    "MEMORY MALLOC-STATS answers what Redis built without jemalloc answers.",
    lambda raw: raw,
)


# --------------------------------------------------------------- COMMAND, CLIENT
# (appended by the CLIENT/COMMAND/connection work)

_DOC_FIELDS_NOT_KEPT = (b"arguments", b"history", b"doc_flags", b"deprecated_since", b"replaced_by")


def _pairs(value) -> dict:
    """A RESP3 map or its RESP2 flat-array form, as a dict."""
    if isinstance(value, dict):
        return dict(value)
    return dict(zip(value[0::2], value[1::2]))


def _is_info_entry(value) -> bool:
    return isinstance(value, list) and len(value) == 10 and isinstance(value[0], bytes) and isinstance(value[1], int)


def _key_coverage(specs) -> tuple:
    """Key specs as the argument positions they cover (index+range), plus 'movable' for any other kind."""
    fixed, open_ended, movable = set(), set(), False
    for spec in specs:
        spec = _pairs(spec)
        begin, find = _pairs(spec[b"begin_search"]), _pairs(spec[b"find_keys"])
        if begin[b"type"] != b"index" or find[b"type"] != b"range":
            movable = True
            continue
        index = _pairs(begin[b"spec"])[b"index"]
        rng = _pairs(find[b"spec"])
        last, step = rng[b"lastkey"], rng[b"keystep"]
        if last >= 0:
            fixed.update(range(index, index + last + 1, step))
        else:
            open_ended.add((index, last, step, rng[b"limit"]))
    # Redis splits e.g. SINTERSTORE's 1..-1 into a spec for 1 and one for 2..-1:
    # fold fixed positions just before an open range into it.
    folded = set()
    for index, last, step, limit in open_ended:
        while index - step in fixed:
            fixed.discard(index - step)
            index -= step
        folded.add((index, last, step, limit))
    return tuple(sorted(fixed)), tuple(sorted(folded)), movable


def _command_info_entry(entry):
    subs = sorted((_command_info_entry(sub) for sub in entry[9]), key=repr)
    return (entry[0], entry[1], tuple(entry[2]), *entry[3:6], tuple(entry[6]), tuple(sorted(entry[7])),
            _key_coverage(entry[8]), tuple(subs))


def _command_docs(docs):
    docs = _pairs(docs)
    for field in _DOC_FIELDS_NOT_KEPT:
        docs.pop(field, None)
    if b"subcommands" in docs:
        docs[b"subcommands"] = {name: _command_docs(d) for name, d in _pairs(docs[b"subcommands"]).items()}
    return docs


def _normalize_command(raw: bytes):
    """COMMAND, COMMAND INFO/DOCS/LIST/GETKEYSANDFLAGS, made comparable (see reason)."""
    if raw.startswith(b"-"):
        return raw
    value = parse(raw)
    if not isinstance(value, (list, dict)) or not value:
        return value
    if isinstance(value, list) and all(v is None or _is_info_entry(v) for v in value):
        return sorted((repr(_command_info_entry(v)) if v else "nil" for v in value))
    items = list(value.values()) if isinstance(value, dict) else value[1::2]
    if items and all(isinstance(d, (list, dict)) and b"group" in _pairs(d) for d in items):
        return {name: _command_docs(d) for name, d in _pairs(value).items()}
    if all(isinstance(v, list) and len(v) == 2 and isinstance(v[0], bytes) for v in value):
        return [v[0] for v in value]  # GETKEYSANDFLAGS: the keys, not the flags
    if all(isinstance(v, bytes) for v in value):
        return sorted(value)  # COMMAND LIST: hash order in Redis
    return value


KNOWN_DIFFERENCES["command"] = Difference(
    "Redis lists commands and subcommands in hash-table order (random seed per run); both sides "
    "are sorted. Key specifications: Shoal derives them from first/last/step (one index + range "
    "spec, plus an 'unknown' spec for movable keys) and guesses their access flags from the command "
    "flags (readonly -> RO access, write -> RW access update); Redis declares them per command "
    "(RENAME has one spec per key, ZUNIONSTORE a keynum spec...). So key specs are compared as the "
    "argument positions they cover, with any non-range spec counted as 'movable'; their flags and "
    "notes, and the flags of COMMAND GETKEYSANDFLAGS, are not compared. COMMAND DOCS has no arguments, history, doc_flags, "
    "deprecated_since or replaced_by (the command table does not keep them), and a complexity only "
    "where the declaration gives one. COMMAND COUNT, COMMAND "
    "LIST and bare COMMAND/INFO/DOCS cover only the commands Shoal implements, and a container "
    "(CLIENT) only lists the subcommands Shoal implements; Shoal adds CLIENT SETINFO (Redis 7.2).",
    _normalize_command,
)

# CLIENT LIST / CLIENT INFO fields about Redis's allocator and reply buffers.
CLIENT_MEMORY_FIELDS = ("qbuf-free", "rbs", "rbp", "obl", "oll", "omem", "tot-mem")


def _normalize_client(raw: bytes):
    """CLIENT LIST/INFO lines with the allocator fields masked; other replies as they are."""
    if raw.startswith(b"-"):
        return raw
    value = parse(raw)
    if isinstance(value, bytes) and value.startswith((b"id=", b"txt:id=")):
        lines = []
        for line in value.decode().split("\n"):
            fields = [f.split("=", 1) for f in line.split(" ")] if line else []
            lines.append(" ".join(f"{k}=*" if k in CLIENT_MEMORY_FIELDS else "=".join([k, *v]) for k, *v in fields))
        return "\n".join(lines)
    return value


KNOWN_DIFFERENCES["client"] = Difference(
    "CLIENT LIST/INFO: qbuf-free, rbs, rbp, obl, oll, omem and tot-mem describe Redis's allocator "
    "and its 16k reply buffer plus reply list; Shoal has one growable output buffer, so it prints "
    "qbuf-free/rbs/rbp/oll/omem as 0, the pending output bytes as obl, and as tot-mem the sum of "
    "the buffers it knows. The field list and order are Redis 7.0's (no 7.2 lib-name/lib-ver). "
    "CLIENT SETINFO LIB-NAME/LIB-VER exists as in Redis 7.2 (clients such as redis-py send it on "
    "connect; 7.0 answers 'unknown subcommand'). CLIENT HELP lists only what Shoal implements. "
    "CLIENT TRACKING (node.tracking): over tracking-table-max-keys Shoal invalidates the oldest "
    "table entries where Redis picks random ones, and checks the limit before the commands of "
    "tracking clients only (Redis: before every command). When two PREFIXes given after the first "
    "overlap, Redis 7.0 answers the overlap error and then +OK too (checkPrefixCollisionsOrReply "
    "returns the index) and enables tracking; Shoal answers only the error and changes nothing.",
    _normalize_client,
)


# ---- generic key commands, continued ----
KNOWN_DIFFERENCES["object|refcount"] = Difference(
    "Shoal derives REFCOUNT from the value (integers 0..9999 are 'shared', INT_MAX refs, unless an "
    "LRU/LFU policy with maxmemory disables sharing). Redis's COPY duplicates a shared integer into "
    "an unshared object (refcount 1); Shoal's copy still reports INT_MAX. Not applied by any test.",
    _any_integer,
)


# ---- protocol layer (tests/test_protocol_vs_redis.py) ----
# Not a command: this key can never match an argv[0], and the identity normaliser
# changes nothing. The entry documents a stream-level difference the protocol
# differential tests avoid (they use lines <= 60 KB or >= 300 KB).
KNOWN_DIFFERENCES["protocol: inline and header lines over 64 KB"] = Difference(
    "Redis checks PROTO_INLINE_MAX_SIZE (64 KB) only when a read leaves an inline line or a "
    "'*'/'$' header line unterminated, and its reads are 16 KB, then growing greedily: a line of "
    "64-~128 KB sent in one burst may be accepted (or fail later with 'invalid multibulk/bulk "
    "length') by Redis, while a slow sender gets 'too big inline request' / 'too big mbulk count "
    "string' / 'too big bulk count string'. Shoal's parser applies the limit to the line itself, "
    "so it always answers as Redis does for a slow sender, whatever the chunking (its 64 KB reads "
    "would otherwise accept lines of up to 128 KB that Redis always rejects).",
    lambda raw: raw,
)


# ---- server commands: INFO, CONFIG, DEBUG (tests/test_server_commands.py, tests/test_config.py) ----


def _sorted_pairs(raw: bytes):
    """CONFIG GET: errors exactly; the reply as a sorted list of (name, value) pairs."""
    if raw.startswith(b"-"):
        return raw
    value = parse(raw)
    if isinstance(value, dict):
        return sorted(value.items())
    return sorted(zip(value[0::2], value[1::2]))


KNOWN_DIFFERENCES["config|get"] = Difference(
    "Redis replies in the hash-table order of its dict of matches (random per run); the pairs are "
    "compared as a set. Names and values themselves must match.",
    _sorted_pairs,
)

#: INFO fields Shoal adds to Redis 7.0's (tests compare field names per section).
INFO_EXTRA_FIELDS = {"Server": ("shoal_version",)}
INFO_DIFFERENCES = Difference(
    "INFO: Shoal prints every field of Redis 7.0, in Redis's order, plus shoal_version in # Server. "
    "Values that describe a C process differ by nature: used_memory is node/memory's estimate "
    "(malloc'ed bytes + CPython pool bytes in use, minus the interpreter's start-up footprint, "
    "plus a nominal 1 MB), the allocator_* and fragmentation figures derive from it and the RSS, mem_allocator is libc, Lua/functions memory is 0. # Latencystats "
    "and LATENCY HISTOGRAM come from node.monitoring.histogram: exact HdrHistogram values for calls "
    "under 64 us, the level's top value for longer ones (Shoal keeps only their power-of-two level); "
    "redis_build_id is 0 (there is no C build to hash); # Commandstats and # Latencystats lines are "
    "compared as sets (Redis prints them in its command dict's hash order); total_reads_processed and "
    "total_writes_processed count client connections only (a replica's reads of its primary's stream are "
    "not counted; Redis counts them as its master client's reads). Tests compare section and field names, and values "
    "where both servers must agree (counters after a known sequence of commands).",
    lambda raw: raw,
)
KNOWN_DIFFERENCES["info: fields and values"] = INFO_DIFFERENCES

KNOWN_DIFFERENCES["debug|object"] = Difference(
    "DEBUG OBJECT: 'Value at' is a memory address, lru the clock at the last access, "
    "lru_seconds_idle is always 0 (no access time is kept, see object|idletime), and "
    "serializedlength ignores LZF compression of strings over 20 bytes. Compared as the field "
    "names plus refcount and encoding; errors exactly.",
    lambda raw: raw if raw.startswith(b"-") else tuple(
        f if f.split(":")[0] in ("refcount", "encoding") else f.split(":")[0]
        for f in parse(raw).split(" ")[1:]
    ),
)

KNOWN_DIFFERENCES["debug: help, reload, unsupported subcommands"] = Difference(
    "DEBUG HELP lists only what Shoal implements (DIGEST, DIGEST-VALUE, ERROR, LOG, OBJECT, RELOAD, "
    "SET-ACTIVE-EXPIRE, SLEEP, HELP) with Redis's wording; the others (JMAP-style unknown ones, "
    "POPULATE, PROTOCOL, crash helpers...) get Redis's unknown-subcommand error. DEBUG RELOAD saves "
    "and loads the RDB file as Redis does, except that a file that cannot be loaded leaves the "
    "dataset as it was (Redis has emptied it, or exits on a corrupt file), and the 'DB reloaded' "
    "line is logged at notice level (Redis: warning). "
    "DEBUG DIGEST/DIGEST-VALUE cover strings only for now. "
    "Shoal adds DEBUG CLUSTER-BUS DROP/DELAY/CLOSE/RESET/STATUS (test-only cluster bus faults, "
    "node/cluster/faults.py; listed in DEBUG HELP), refused with Redis's text when DEBUG is.",
    lambda raw: raw,
)

KNOWN_DIFFERENCES["config set port"] = Difference(
    "CONFIG SET port: Redis 7.0 re-binds its listeners at run time; Shoal's listening sockets "
    "belong to the server loop (node/server.py) and cannot be replaced yet, so port stays "
    "immutable: 'can't set immutable config'. At startup it is parsed and checked as in Redis.",
    lambda raw: raw,
)


# ---- pub/sub (tests/test_pubsub.py, tests/test_keyspace_events.py) ----


def _pubsub_replies(raw) -> list[bytes]:
    """A stream of pushes (raw bytes, possibly several concatenated, or a list of raw replies)."""
    if isinstance(raw, (bytes, bytearray)):
        from tests.resp_client import reply_end

        out, pos = [], 0
        while pos < len(raw):
            end = reply_end(raw, pos)
            out.append(bytes(raw[pos:end]))
            pos = end
        return out
    return list(raw)


def _unsubscribe_all(raw):
    """The channels named and the counts reported, each in order of their own; errors exactly."""
    replies = _pubsub_replies(raw)
    if any(r.startswith(b"-") for r in replies):
        return replies
    values = [parse(r) for r in replies]
    return (
        [v[0] for v in values],
        sorted((v[1] for v in values), key=lambda name: b"" if name is None else name),
        [v[2] for v in values],
    )


def _pattern_runs_sorted(raw):
    """Consecutive pmessages of one published message, sorted by pattern; everything else as is."""
    out: list = []
    run: list = []
    for r in _pubsub_replies(raw):
        value = parse(r)
        if isinstance(value, list) and len(value) == 4 and value[0] == b"pmessage":
            if run and (run[-1][2], run[-1][3]) != (value[2], value[3]):
                out += sorted(run)
                run = []
            run.append(tuple(value) + (r[:1],))
            continue
        out += sorted(run)
        run = []
        out.append(r)
    return out + sorted(run)


KNOWN_DIFFERENCES["unsubscribe"] = Difference(
    "UNSUBSCRIBE with no channel: Redis walks the client's channel hash table, so the order of "
    "the confirmations is its hash order; Shoal goes in subscription order. Compared: the "
    "channels named (as a set) and the sequence of counts. With named channels the order is the "
    "request's on both.",
    _unsubscribe_all,
)
KNOWN_DIFFERENCES["sunsubscribe"] = Difference(
    "SUNSUBSCRIBE with no shard channel: same as UNSUBSCRIBE (hash order in Redis, subscription "
    "order in Shoal).",
    _unsubscribe_all,
)
KNOWN_DIFFERENCES["pubsub|channels"] = Difference(
    "PUBSUB CHANNELS lists channels in Redis's hash-table order, Shoal's in order of first "
    "subscription; compared as sets.",
    _sorted_array,
)
KNOWN_DIFFERENCES["pubsub|shardchannels"] = Difference(
    "PUBSUB SHARDCHANNELS: hash-table order in Redis, first-subscription order in Shoal; compared "
    "as sets.",
    _sorted_array,
)
KNOWN_DIFFERENCES["pubsub: several patterns matching one message"] = Difference(
    "A client subscribed to several patterns that match one published channel gets one pmessage "
    "per pattern; Redis sends them in its pattern hash table's order (seeded at random per "
    "process), Shoal in order of first subscription to each pattern. Such runs of pmessages are "
    "compared sorted; every other message keeps its exact position and bytes.",
    _pattern_runs_sorted,
)


# ---- hashes, sets, SORT (tests/test_hashes.py, tests/test_sets.py, tests/test_sort.py) ----
# Listpack hashes and intsets are listed in exactly Redis's order (insertion order; ascending
# integers), and those tests compare such replies byte for byte (Differ.both + ==). Only the
# order of hashtable-encoded values is Redis's hash-table order, which Shoal does not reproduce.


def _sorted_collection(raw: bytes):
    """Errors exactly; an array or set reply as its type byte plus its sorted elements."""
    if raw.startswith(b"-"):
        return raw
    value = parse(raw)
    if isinstance(value, list):
        return raw[:1], sorted(value, key=repr)
    return value


def _sorted_field_pairs(raw: bytes):
    """HGETALL: errors exactly; the (field, value) pairs sorted, with the reply's type byte."""
    if raw.startswith(b"-"):
        return raw
    value = parse(raw)
    if isinstance(value, dict):
        return raw[:1], sorted(value.items())
    if isinstance(value, list):
        return raw[:1], sorted(zip(value[0::2], value[1::2]))
    return value


def _reply_shape(raw: bytes):
    """A reply's structure without the bytes of its strings: types and lengths only; errors exactly."""
    if raw.startswith(b"-"):
        return raw

    def shape(pos: int):
        kind = raw[pos : pos + 1]
        end = raw.index(b"\r\n", pos)
        head = raw[pos + 1 : end]
        nxt = end + 2
        if kind in (b"$", b"=", b"!"):
            n = int(head)
            return ("bulk" if n >= 0 else "nil"), (nxt if n < 0 else nxt + n + 2)
        if kind in (b"*", b"~", b">", b"%"):
            n = int(head)
            items = []
            for _ in range(max(n, 0) * (2 if kind == b"%" else 1)):
                item, nxt = shape(nxt)
                items.append(item)
            return (kind, n, tuple(items)), nxt
        return raw[pos:nxt], nxt

    return shape(0)[0]


_HASHTABLE_ORDER = (
    "Hashtable-encoded hashes and sets list their members in Redis's hash-table order (SipHash "
    "with a random seed); Shoal keeps insertion order (with swap-on-delete for sets). Compared as "
    "sorted collections with the same reply type. Listpack hashes and intsets are compared "
    "byte for byte by their own tests."
)
for _name in ("smembers", "sinter", "sunion", "sdiff", "hkeys", "hvals"):
    KNOWN_DIFFERENCES[_name] = Difference(_HASHTABLE_ORDER, _sorted_collection)
KNOWN_DIFFERENCES["hgetall"] = Difference(_HASHTABLE_ORDER, _sorted_field_pairs)
for _name in ("hscan", "sscan"):
    KNOWN_DIFFERENCES[_name] = Difference(
        "HSCAN/SSCAN of a hashtable-encoded value: Redis's cursor walks hash-table buckets, "
        "Shoal's is a position in a per-process hash order, so pages differ (each completed "
        "iteration returns every member present throughout, as in Redis). Listpack hashes and "
        "intsets are returned whole with cursor 0 exactly as Redis does, and their tests compare "
        "those byte for byte; here only errors compare exactly and pages by shape.",
        _scan_page_shape,
    )
for _name in ("spop", "srandmember", "hrandfield"):
    KNOWN_DIFFERENCES[_name] = Difference(
        "Random members: Shoal's random choices differ from Redis's. Compared by reply shape "
        "(types, lengths, nils); errors exactly. tests/test_sets.py and tests/test_hashes.py check "
        "the properties (counts, distinctness, membership, pairs).",
        _reply_shape,
    )
KNOWN_DIFFERENCES["sort: ties and locale"] = Difference(
    "SORT ... ALPHA compares with strcoll: Shoal compares bytes up to the first NUL, which is what "
    "glibc's strcoll does in the C and C.UTF-8 locales Redis runs under in the tests; another "
    "LC_COLLATE would order non-ASCII text differently. Elements of a hashtable-encoded set or of a "
    "sorted set enter the sort in hash-table order in Redis, so ALPHA+BY ties among them (equal or "
    "missing weights) may come out in another order, as may SORT of such a set BY a constant "
    "(no sort). Documentation only: tests/test_sort.py avoids those cases or compares them as sets.",
    lambda raw: raw,
)


# ---- sorted sets (tests/test_zsets.py, tests/test_zsets_blocking.py) ----
KNOWN_DIFFERENCES["zscan"] = Difference(
    "ZSCAN of a skiplist-encoded sorted set: Redis's cursor walks its dict's hash-table buckets, "
    "Shoal's is a 32-bit member hash (each page holds the members with the next hashes), so pages "
    "differ; every completed iteration returns each member present throughout exactly once, with "
    "the same score text as Redis. Listpack-encoded sets are returned whole with cursor 0, in "
    "score order with the scores as the listpack stores them, and tests/test_zsets.py compares "
    "those byte for byte; here only errors compare exactly and pages by shape.",
    _scan_page_shape,
)
KNOWN_DIFFERENCES["zrandmember"] = Difference(
    "Random members: Shoal's random choices differ from Redis's. Compared by reply shape (types, "
    "lengths, nils); errors exactly. tests/test_zsets.py checks the properties (counts, "
    "distinctness, membership, scores, the whole set highest-first when count >= size).",
    _reply_shape,
)
KNOWN_DIFFERENCES["zsets: lex ranges over mixed scores in a skiplist"] = Difference(
    "ZRANGEBYLEX/ZLEXCOUNT/ZREMRANGEBYLEX assume all scores are equal; with mixed scores Redis's "
    "answer for a skiplist-encoded set depends on the random levels of its skiplist nodes. Shoal "
    "binary-searches the (score, member) order, which is what Redis returns whenever scores are "
    "equal. Listpack-encoded sets follow Redis's listpack walk exactly, mixed scores included. "
    "Documentation only: tests use equal scores for lex ranges on big sets.",
    lambda raw: raw,
)


# ---- streams (tests/test_streams.py, tests/test_streams_blocking.py) ----


def _mask_stream_times(raw: bytes):
    """Stream replies with every clock-derived number replaced by "t"; errors and the rest exactly.

    Masked: XPENDING's idle (3rd of [id, consumer, idle, deliveries]), XINFO CONSUMERS' idle,
    XINFO STREAM FULL's seen-time and the delivery times in its pending lists ([id, consumer,
    time, deliveries] per group, [id, time, deliveries] per consumer).
    """
    if raw.startswith(b"-"):
        return raw

    def walk(value):
        if isinstance(value, dict):
            return {k: ("t" if k in (b"idle", b"seen-time") else walk(v)) for k, v in value.items()}
        if isinstance(value, list):
            if (len(value) == 4 and isinstance(value[0], bytes) and isinstance(value[1], bytes)
                    and isinstance(value[2], int) and isinstance(value[3], int)):
                return [value[0], value[1], "t", value[3]]
            if (len(value) == 3 and isinstance(value[0], bytes) and isinstance(value[1], int)
                    and isinstance(value[2], int)):
                return [value[0], "t", value[2]]
            out = []
            mask_next = False
            for item in value:
                out.append("t" if mask_next else walk(item))
                mask_next = item in (b"idle", b"seen-time")
            return out
        return value

    return walk(parse(raw))


_STREAM_TIMES = (
    "Delivery, seen and idle times come from each server's own clock, so they differ by the "
    "milliseconds between the two servers' executions. Masked (see _mask_stream_times); "
    "everything else -- IDs, consumers, delivery counts, order, nils -- compares exactly."
)
KNOWN_DIFFERENCES["xpending"] = Difference(_STREAM_TIMES, _mask_stream_times)
KNOWN_DIFFERENCES["xinfo|consumers"] = Difference(_STREAM_TIMES, _mask_stream_times)
KNOWN_DIFFERENCES["xinfo|stream"] = Difference(_STREAM_TIMES, _mask_stream_times)
KNOWN_DIFFERENCES["streams: XAUTOCLAIM COUNT too high"] = Difference(
    "XAUTOCLAIM allocates COUNT 16-byte slots up front; Redis answers 'Insufficient memory, failed "
    "allocating transient memory, COUNT too high.' when that malloc fails, which under Linux's "
    "overcommit heuristic depends on the machine's memory. Shoal gives the same error when COUNT*16 "
    "exceeds the machine's physical memory, so counts between the two limits may be answered "
    "differently. Documentation only: tests use a COUNT that fails everywhere.",
    lambda raw: raw,
)
KNOWN_DIFFERENCES["notify-keyspace-events: m and n classes"] = Difference(
    "The key-miss class (m: 'keymiss' on every read of a missing key) and the new-key class (n: "
    "'new' when a key is created) are accepted by CONFIG SET and printed back like Redis's, but "
    "Shoal does not publish them yet: both need a hook in node/engine/database.py "
    "(lookup_read's miss path, set's new-key path). Every other class matches Redis 7.0.",
    lambda raw: raw,
)


# ---- scripting: FUNCTION LIST (tests/test_functions.py) ----


def _function_list(raw: bytes):
    """FUNCTION LIST: errors exactly; libraries sorted by name, each one's functions sorted by name."""
    if raw.startswith(b"-"):
        return raw
    libraries = []
    for lib in parse(raw):
        lib = _pairs(lib)
        lib[b"functions"] = sorted((repr(sorted(_pairs(f).items(), key=repr)) for f in lib[b"functions"]))
        libraries.append(repr(sorted(lib.items(), key=repr)))
    return sorted(libraries)


KNOWN_DIFFERENCES["function|list"] = Difference(
    "Redis lists libraries, and the functions of each library, in the hash-table order of its dicts; "
    "Shoal in load/registration order. Both sides are sorted; every field must match. FUNCTION DUMP "
    "(same dict order) is byte-identical for one library; with several, the libraries may come in "
    "another order (tests restore payloads across servers instead).",
    _function_list,
)


# ---- HyperLogLog (tests/test_hyperloglog.py) ----
# Documentation only: no test normalises these replies.

KNOWN_DIFFERENCES["pfselftest"] = Difference(
    "PFSELFTEST runs Redis's two self-tests scaled to Python speed: the register test once (Redis: "
    "1000 rounds) and the estimate test up to 10^5 elements (Redis: 10^7), so it answers in about half "
    "a second. Its replies (+OK, or a TESTFAILED error) are Redis's.",
    lambda raw: raw,
)
KNOWN_DIFFERENCES["hll: sparse value ending in half an XZERO"] = Difference(
    "A corrupted sparse HLL whose last byte is the first half of an XZERO opcode: Redis reads the "
    "string's NUL terminator as the missing byte, and an edit that splits that opcode writes its last "
    "byte over the terminator, which later commands may then read. Shoal replays the edit exactly "
    "within the command (same reply, same stored bytes) but a later command reads the missing byte "
    "as 0, as Redis does whenever that memory still holds the terminator.",
    lambda raw: raw,
)


# ---- DUMP / RESTORE and RDB files (tests/test_dump_restore.py, tests/test_rdb.py) ----
# Documentation only: no test normalises these replies.

KNOWN_DIFFERENCES["restore: corrupt payloads that Redis accepts unchecked"] = Difference(
    "Shoal validates every payload (RESTORE, RDB files) as Redis does with sanitize-dump-payload yes: "
    "listpack, ziplist, intset and zipmap structure and back-lengths, member order, duplicates, stream "
    "counters, entry order and PEL ownership. Redis's default (no) takes some corrupt payloads that only "
    "fail -- or crash it -- later; Shoal answers 'ERR Bad data format' for those. Payloads Redis rejects "
    "get Redis's exact errors. Tests send such payloads to Shoal only.",
    lambda raw: raw,
)
KNOWN_DIFFERENCES["dump: payload bytes of streams with deleted entries, and of LZF strings"] = Difference(
    "Deleted stream entries stay in their node as tombstones; Shoal's Stream does not keep their fields "
    "and values, so DUMP and RDB files write tombstones with empty values: every read of the stream is "
    "the same, only the bytes (and the node's byte size, which decides when a later XADD opens a new "
    "node in Redis) differ. LZF: Redis compresses with an uninitialised hash table, so its compressed "
    "bytes for one value vary; Shoal's are liblzf's with a clean table (valid LZF either way, both "
    "servers load both). Tests compare DUMP bytes with rdbcompression no, and stream payloads only "
    "without deleted entries. RESTORE ... IDLETIME/FREQ are validated as in Redis but set nothing (no "
    "per-key access data, see object|idletime).",
    lambda raw: raw,
)


# ---- ACL (tests/test_acl.py) ----
# Documentation only: tests/test_acl.py applies its own normalisation (tests.test_acl._rules).

KNOWN_DIFFERENCES["acl|list: order of single-command rules"] = Difference(
    "Redis 7.0 describes a user's commands as +@all/-@all, then best-fit categories (deterministic), "
    "then single +cmd/-cmd rules in its command dict's order, which depends on the process's random "
    "hash seed (two redis-server runs print them differently). Shoal prints them in command-table "
    "order. ACL LIST, ACL GETUSER 'commands', ACL SAVE files: the category part is compared exactly, "
    "the single-command rules as a set. Rules naming commands Shoal lacks (MODULE, LOLWUT...) cannot "
    "appear in Shoal's descriptions. The best-fit category search counts each category's commands, so "
    "where Shoal's table differs from Redis's (no CLIENT TRACKING/CACHING, MODULE, LOLWUT, MEMORY DOCTOR...; "
    "7.2's CLIENT SETINFO) two categories that tie differently may be printed in the other order "
    "(e.g. -@all +@keyspace +@connection): same permissions, different text.",
    lambda raw: raw,
)
KNOWN_DIFFERENCES["acl|cat: order of commands in a category"] = Difference(
    "ACL CAT <category> lists commands in Redis's command-dict order (hash-seed dependent); Shoal in "
    "command-table order. Compared as sets.",
    lambda raw: raw,
)
KNOWN_DIFFERENCES["acl|log: client-info and age-seconds"] = Difference(
    "Each entry's client-info is the CLIENT LIST line of the client (ids, ports, buffer sizes differ "
    "between the servers) and age-seconds is timing; count, reason, context, object, username and the "
    "line's cmd/user/db fields are compared exactly.",
    lambda raw: raw,
)


# ---- CONFIG SET at run time (tests/test_config_runtime.py) ----

#: Accepted by CONFIG SET (same parsing, same CONFIG GET text, same errors as Redis) but with no
#: effect on what Shoal does, because Shoal has no such machinery: no jemalloc/defragmentation,
#: no lazy-free thread (frees are synchronous), no process title, no crash report, no
#: client-eviction (maxmemory-clients), no oom_score_adj writes, no diskless load, no compressed
#: list nodes, no cluster announce of ports/hostnames other than cluster-announce-ip.
CONFIG_ACCEPTED_WITHOUT_EFFECT = (
    "bind-source-addr", "proc-title-template", "dynamic-hz", "ignore-warnings", "crash-log-enabled",
    "crash-memcheck-enabled", "shutdown-timeout", "activerehashing", "active-defrag-ignore-bytes",
    "active-defrag-threshold-lower", "active-defrag-threshold-upper", "active-defrag-cycle-min",
    "active-defrag-cycle-max", "active-defrag-max-scan-fields", "jemalloc-bg-thread", "lazyfree-lazy-server-del",
    "lazyfree-lazy-user-flush", "replica-lazy-flush", "oom-score-adj", "oom-score-adj-values",
    "propagation-error-behavior", "maxmemory-clients", "sanitize-dump-payload", "rdb-del-sync-files",
    "replica-ignore-disk-write-errors", "repl-diskless-load", "repl-disable-tcp-nodelay",
    "cluster-link-sendbuf-limit", "cluster-announce-port", "cluster-announce-tls-port", "cluster-announce-bus-port",
    "cluster-announce-hostname", "cluster-preferred-endpoint-type", "list-compress-depth",
)
KNOWN_DIFFERENCES["config|set: parameters without effect"] = Difference(
    "activedefrag yes is refused with "
    "the text of a Redis built without Redis's jemalloc (Debian's). The parameters in "
    "CONFIG_ACCEPTED_WITHOUT_EFFECT are parsed, reported and rewritten exactly as Redis does but change "
    "nothing in Shoal. A huge maxclients (over the hard RLIMIT_NOFILE) is refused at once where "
    "redis-server loops for minutes in adjustOpenFilesLimit before refusing it the same way.",
    lambda raw: raw,
)
