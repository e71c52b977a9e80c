"""MEMORY: USAGE, STATS, DOCTOR, MALLOC-STATS, PURGE, HELP (Redis 7.0's object.c).

Figures come from ``node.memory`` (see node/memory/manager.py): ``used_memory``
is the interpreter-independent estimate maxmemory is compared with, and
MEMORY USAGE is ``sys.getsizeof`` over the value's objects, sampled like
Redis's ``objectComputeSize`` (SAMPLES, default 5, 0 = every element). The
numbers are Shoal's own (Python objects are larger than Redis's listpacks),
so they are of the same order as Redis's, not equal.
"""

from __future__ import annotations

import ctypes

from node.commands.args import SYNTAX_ERROR, parse_int
from node.commands.table import command, container
from node.memory.sizes import key_overhead, value_size
from node.resp import OK, SimpleString, Verbatim

from slots import keyslot

container("memory", -2, summary="A container for memory diagnostics commands", since="4.0.0", group="server",
          complexity="Depends on subcommand.")

_HELP = [
    b"MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    b"DOCTOR",
    b"    Return memory problems reports.",
    b"MALLOC-STATS",
    b"    Return internal statistics report from the memory allocator.",
    b"PURGE",
    b"    Attempt to purge dirty pages for reclamation by the allocator.",
    b"STATS",
    b"    Return information about the memory usage of the server.",
    b"USAGE <key> [SAMPLES <count>]",
    b"    Return memory in bytes used by <key> and its value. Nested values are",
    b"    sampled up to <count> times (default: 5, 0 means sample all).",
    b"HELP",
    b"    Prints this help.",
]

_ALL_SHARDS = ("nondeterministic_output", "request_policy:all_shards", "response_policy:special")


@command("help", 2, "loading stale", parent="memory", group="server", since="4.0.0", complexity="O(1)",
         summary="Show helpful text about the different subcommands")
def memory_help(client, argv):
    return [SimpleString(line) for line in _HELP]


@command("usage", -3, "readonly", (2, 2, 1), parent="memory", group="server", since="4.0.0",
         complexity="O(N) where N is the number of samples.", summary="Estimate the memory usage of a key")
def memory_usage(client, argv):
    samples = 5
    i = 3
    while i < len(argv):
        if argv[i].lower() == b"samples" and i + 1 < len(argv):
            samples = parse_int(argv[i + 1])
            if samples < 0:
                raise SYNTAX_ERROR
            i += 2
        else:
            raise SYNTAX_ERROR
    key = argv[2]
    db = client.db
    # Like Redis's dictFind: no expiry, no keyspace hit/miss, no LRU touch.
    value = db.dicts[keyslot(key)].get(key)
    if value is None:
        return None
    return key_overhead(key) + value_size(value, samples)


def _overhead(node) -> dict:
    """The figures of getMemoryOverheadData, from node.memory and the client list."""
    from node.info import rss_bytes

    memory = node.memory
    used = memory.measure()
    startup = memory.startup - memory.offset
    clients = sum(len(getattr(c, "out", b"")) + len(getattr(c, "qbuf", b"") or b"") for c in node.clients.values())
    dbs = []
    keys = 0
    for db in node.dbs:
        if db.size:
            # Per-key dict entries of the main table (and the access dict) and of the expires table.
            dbs.append((db.index, db.size * 2 * 40, db.volatile * 40))
            keys += db.size
    overhead = startup + clients + sum(main + exp for _, main, exp in dbs)
    dataset = max(used - overhead, 0)
    net = used - startup
    rss = rss_bytes()
    real = used + memory.offset  # the whole process's allocation, interpreter included
    return {
        "used": used, "peak": max(node.used_memory_peak, used), "startup": startup, "clients": clients,
        "dbs": dbs, "overhead": overhead, "keys": keys, "dataset": dataset, "net": net, "rss": rss, "real": real,
    }


@command("stats", 2, "", parent="memory", group="server", since="4.0.0", complexity="O(1)",
         summary="Show memory usage details", tips=_ALL_SHARDS)
def memory_stats(client, argv):
    m = _overhead(client.node)
    used, rss, real = m["used"], m["rss"], m["real"]
    reply = {
        b"peak.allocated": m["peak"],
        b"total.allocated": used,
        b"startup.allocated": m["startup"],
        b"replication.backlog": 0,
        b"clients.slaves": 0,
        b"clients.normal": m["clients"],
        b"cluster.links": 0,
        b"aof.buffer": 0,
        b"lua.caches": 0,
        b"functions.caches": 0,
    }
    for index, main, expires in m["dbs"]:
        reply[b"db.%d" % index] = {
            b"overhead.hashtable.main": main,
            b"overhead.hashtable.expires": expires,
            b"overhead.hashtable.slot-to-keys": 0,
        }
    net = m["net"]
    reply.update({
        b"overhead.total": m["overhead"],
        b"keys.count": m["keys"],
        b"keys.bytes-per-key": net // m["keys"] if m["keys"] else 0,
        b"dataset.bytes": m["dataset"],
        b"dataset.percentage": m["dataset"] * 100.0 / net if net > 0 else 0.0,
        b"peak.percentage": used * 100.0 / m["peak"] if m["peak"] else 0.0,
        b"allocator.allocated": real,
        b"allocator.active": real,
        b"allocator.resident": rss,
        b"allocator-fragmentation.ratio": 1.0,
        b"allocator-fragmentation.bytes": 0,
        b"allocator-rss.ratio": rss / real if real else 0.0,
        b"allocator-rss.bytes": rss - real,
        b"rss-overhead.ratio": 1.0,
        b"rss-overhead.bytes": 0,
        b"fragmentation": rss / real if real else 0.0,
        b"fragmentation.bytes": rss - real,
    })
    return reply


_EMPTY_REPORT = (
    "Hi Sam, this instance is empty or is using very little memory, my issues detector can't be used in these "
    "conditions. Please, leave for your mission on Earth and fill it with some data. The new Sam and I will be "
    "back to our programming as soon as I finished rebooting.\n"
)
_FINE_REPORT = "Hi Sam, I can't find any memory issue in your instance. I can only account for what occurs on this base.\n"
_PEAK = (
    " * Peak memory: In the past this instance used more than 150% the memory that is currently using. The "
    "allocator is normally not able to release memory after a peak, so you can expect to see a big fragmentation "
    "ratio, however this is actually harmless and is only due to the memory peak, and if the Redis instance "
    "Resident Set Size (RSS) is currently bigger than expected, the memory will be used as soon as you fill the "
    "Redis instance with more data. If the memory peak was only occasional and you want to try to reclaim memory, "
    "please try the MEMORY PURGE command, otherwise the only other option is to shutdown and restart the "
    "instance.\n\n"
)
_HIGH_FRAG = (
    " * High total RSS: This instance has a memory fragmentation and RSS overhead greater than 1.4 (this means "
    "that the Resident Set Size of the Redis process is much larger than the sum of the logical allocations Redis "
    "performed). This problem is usually due either to a large peak memory (check if there is a peak memory entry "
    "above in the report) or may result from a workload that causes the allocator to fragment memory a lot. If "
    "the problem is a large peak memory, then there is no issue. Otherwise, make sure you are using the Jemalloc "
    "allocator and not the default libc malloc. Note: The currently used allocator is \"libc\".\n\n"
)
_BIG_CLIENTS = (
    " * Big client buffers: The clients output buffers in this instance are greater than 200K per client (on "
    "average). This may result from different causes, like Pub/Sub clients subscribed to channels bot not "
    "receiving data fast enough, so that data piles on the Redis instance output buffer, or clients sending "
    "commands with large replies or very large sequences of commands in the same pipeline. Please use the CLIENT "
    "LIST command in order to investigate the issue if it causes problems in your instance, or to understand "
    "better why certain clients are using a big amount of memory.\n\n"
)
_MANY_SCRIPTS = (
    " * Many scripts: There seem to be many cached scripts in this instance (more than 1000). This may be because "
    "scripts are generated and `EVAL`ed, instead of being parameterized (with KEYS and ARGV), `SCRIPT LOAD`ed and "
    "`EVALSHA`ed. Unless `SCRIPT FLUSH` is called periodically, the scripts' caches may end up consuming most of "
    "your memory.\n\n"
)


def dataset_estimate(node, samples: int = 32) -> int:
    """Bytes the keys take: each database's size times the mean size of a sample of its keys."""
    from node.memory.evict import sample_keys

    total = 0
    for db in node.dbs:
        if db.size:
            picked = sample_keys(db.dicts, min(samples, db.size), node.rng)
            if picked:
                sizes = sum(key_overhead(key) + value_size(db.dicts[slot][key]) for slot, key in picked)
                total += sizes * db.size // len(picked)
    return total


def doctor_report(node) -> str:
    """getMemoryDoctorReport over Shoal's figures: "empty" judged by the data, fragmentation by
    the RSS and the allocation added since start-up (the interpreter's own is no fragmentation)."""
    m = _overhead(node)
    used = m["used"]
    # Redis: "empty" under 5 MB allocated. Shoal judges by its data (code loaded on first use --
    # Lua, TLS... -- is no data): a sampled estimate of the keyspace plus the nominal empty server.
    if dataset_estimate(node) + m["startup"] < 5 * 1024 * 1024:
        return _EMPTY_REPORT
    issues = []
    if m["peak"] / used > 1.5:
        issues.append(_PEAK)
    # Fragmentation of what was added since start-up (the interpreter's own RSS is no fragmentation).
    rss_grown = m["rss"] - node.memory.startup_rss
    allocated_grown = used - m["startup"]
    if allocated_grown > 0 and rss_grown / allocated_grown > 1.4 and rss_grown - allocated_grown > 10 << 20:
        issues.append(_HIGH_FRAG)
    clients = max(len(node.clients), 1)
    if m["clients"] / clients > 200 * 1024:
        issues.append(_BIG_CLIENTS)
    scripting = getattr(node, "_scripting", None)  # node.scripting.engine.get_scripting's cache
    if scripting is not None and len(getattr(scripting, "scripts", ())) > 1000:
        issues.append(_MANY_SCRIPTS)
    if not issues:
        return _FINE_REPORT
    return ("Sam, I detected a few issues in this Redis instance memory implants:\n\n" + "".join(issues)
            + "I'm here to keep you safe, Sam. I want to help you.\n")


@command("doctor", 2, "", parent="memory", group="server", since="4.0.0", complexity="O(1)",
         summary="Outputs memory problems report", tips=_ALL_SHARDS)
def memory_doctor(client, argv):
    return Verbatim(doctor_report(client.node).encode())


@command("malloc-stats", 2, "", parent="memory", group="server", since="4.0.0",
         complexity="Depends on how much memory is allocated, could be slow", summary="Show allocator internal stats",
         tips=_ALL_SHARDS)
def memory_malloc_stats(client, argv):
    # What Redis answers when built without jemalloc (Shoal runs on glibc malloc).
    return b"Stats not supported for the current allocator"


def _malloc_trim() -> None:
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass


@command("purge", 2, "", parent="memory", group="server", since="4.0.0",
         complexity="Depends on how much memory is allocated, could be slow",
         summary="Ask the allocator to release memory", tips=("request_policy:all_shards", "response_policy:all_succeeded"))
def memory_purge(client, argv):
    _malloc_trim()  # give free heap pages back to the OS, as jemalloc's purge does
    return OK
