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
    "Shoal keeps no per-key access time: a side table costs ~25 ns on every GET/SET lookup "
    "(measured, ~11% of a lookup). OBJECT IDLETIME reports 0, as for a key just used; nil for "
    "missing keys and the LFU-policy error match Redis exactly.",
    _any_integer,
)
KNOWN_DIFFERENCES["object|freq"] = Difference(
    "For the same reason no access frequency is kept: under an LFU policy OBJECT FREQ reports "
    "5 (LFU_INIT_VAL, a new key's counter). The non-LFU error and nil match Redis exactly.",
    _any_integer,
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
    return tuple(sorted(fixed)), tuple(sorted(open_ended)), movable


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
    "connect; 7.0 answers 'unknown subcommand'). CLIENT CACHING, TRACKING, PAUSE and UNBLOCK are "
    "not implemented (unknown subcommand) and CLIENT HELP lists only what Shoal implements; "
    "GETREDIR/TRACKINGINFO report tracking off, UNPAUSE has nothing to resume.",
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
    "Values that describe a C process differ by nature: used_memory is glibc mallinfo2's allocated "
    "bytes (uordblks+hblkhd, includes CPython's arenas), the allocator_* and fragmentation figures "
    "derive from it and the RSS, mem_allocator is libc, Lua/functions memory is 0. # Latencystats "
    "is empty (a per-command latency histogram would cost on every call); total_reads_processed and "
    "total_writes_processed are 0 (not counted by the event loop); aof_enabled is 0 whatever "
    "appendonly says (there is no AOF yet). Tests compare section and field names, and values "
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
    "POPULATE, PROTOCOL, crash helpers...) get Redis's unknown-subcommand error. DEBUG RELOAD keeps "
    "the data as it is and does not reset rdb_changes_since_last_save (there is no RDB to save). "
    "DEBUG DIGEST/DIGEST-VALUE cover strings only for now.",
    lambda raw: raw,
)

KNOWN_DIFFERENCES["config set port"] = Difference(
    "CONFIG SET port: Redis 7.0 re-binds its listeners at run time; Shoal's listening sockets "
    "belong to the server loop (node/server.py) and cannot be replaced yet, so port stays "
    "immutable: 'can't set immutable config'. At startup it is parsed and checked as in Redis.",
    lambda raw: raw,
)
