"""The text of INFO: Redis 7.0's sections, field names, order and number formats.

Every field Redis 7.0 prints is printed, so monitoring tools and clients that
parse INFO find what they expect (tests/test_info_fields.py compares sections,
field names, order and value formats with redis-server, standalone, cluster,
primary and replica). Values are real where Shoal has the thing they measure
and Redis's neutral value where it has not: 0 for what Shoal does not do
(active defrag, lazy-free, io-threads, client eviction, modules, Lua/function
VM memory, reply-buffer resizing, total_reads/writes_processed),
``mem_allocator:libc``, ``redis_build_id:0``.

Memory: ``used_memory`` (and the peak and startup figures) come from
``node.memory`` -- malloc'ed bytes plus CPython pool blocks in use, minus
the interpreter's own start-up footprint; see node/memory/manager.py for
how it is kept cheap and how it is compared with maxmemory.
``memory_usage()`` below is the raw malloc figure (RDB aux field used-mem).
``used_memory_rss`` is the RSS from ``/proc/self/statm``.
"""

from __future__ import annotations

import ctypes
import os
import platform
import resource
import time
from collections import deque

from node.core import SHOAL_VERSION, VERSION
from node.monitoring.histogram import latencystats

__all__ = ["DEFAULT_SECTIONS", "ALL_SECTIONS", "OpsSampler", "info_text", "memory_usage", "rss_bytes"]

# Output order of every section, as genRedisInfoString.
_ORDER = (
    "server", "clients", "memory", "persistence", "stats", "replication", "cpu", "modules",
    "commandstats", "errorstats", "latencystats", "cluster", "keyspace",
)
DEFAULT_SECTIONS = frozenset(
    ("server", "clients", "memory", "persistence", "stats", "replication", "cpu", "modules",
     "errorstats", "cluster", "keyspace")
)
ALL_SECTIONS = frozenset(_ORDER)

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


# ------------------------------------------------------------------ sampling


class OpsSampler:
    """instantaneous_ops_per_sec and the kbps figures, as Redis's trackInstantaneousMetric.

    ``sample()`` runs every 100 ms (a task next to the server loop); each
    metric is the mean rate over the last 16 samples.
    """

    SAMPLES = 16

    def __init__(self) -> None:
        self.last: dict[str, tuple[float, int]] = {}
        self.rates: dict[str, deque] = {}

    def track(self, name: str, value: int, now: float) -> None:
        prev = self.last.get(name)
        self.last[name] = (now, value)
        if prev is None:
            return
        elapsed = now - prev[0]
        if elapsed <= 0:
            return
        ring = self.rates.setdefault(name, deque(maxlen=self.SAMPLES))
        ring.append((value - prev[1]) / elapsed)

    def sample(self, node) -> None:
        now = time.monotonic()
        stats = node.stats
        self.track("ops", commands_processed(node), now)
        self.track("in", stats.total_net_input_bytes, now)
        self.track("out", stats.total_net_output_bytes, now)

    def rate(self, name: str) -> float:
        ring = self.rates.get(name)
        return sum(ring) / len(ring) if ring else 0.0

    def reset(self) -> None:
        self.last.clear()
        self.rates.clear()


def commands_processed(node) -> int:
    """Commands executed: the dispatcher counts calls per command, so the total is their sum."""
    from node.commands.table import all_commands  # late: node.commands imports this module

    total = node.stats.total_commands_processed
    for cmd in all_commands():
        total += cmd.calls
        for sub in cmd.subcommands.values():
            total += sub.calls
    return total


def sampler_of(node) -> OpsSampler:
    sampler = getattr(node, "ops_sampler", None)
    if sampler is None:
        sampler = node.ops_sampler = OpsSampler()
    return sampler


# -------------------------------------------------------------------- memory


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


def _load_mallinfo2():
    try:
        libc = ctypes.CDLL(None)
        fn = libc.mallinfo2
    except (OSError, AttributeError):
        return None
    fn.restype = _Mallinfo2
    fn.argtypes = []
    return fn


_mallinfo2 = _load_mallinfo2()


def rss_bytes() -> int:
    try:
        with open("/proc/self/statm", "rb") as fh:
            return int(fh.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def memory_usage() -> int:
    """Bytes the allocator has handed out (see the module docstring)."""
    if _mallinfo2 is not None:
        info = _mallinfo2()
        return int(info.uordblks + info.hblkhd)
    return rss_bytes()


def _total_system_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


def bytes_to_human(n: int) -> str:
    """Redis's bytesToHuman: B, then K/M/G/T/P with two decimals."""
    if n < 1024:
        return f"{n}B"
    for power, unit in ((1, "K"), (2, "M"), (3, "G"), (4, "T"), (5, "P")):
        if n < 1024 ** (power + 1) or unit == "P":
            if n >= 1024**6:
                return f"{n}B"
            return "%.2f%s" % (n / 1024**power, unit)
    return f"{n}B"


def _gcc_version() -> str:
    compiler = platform.python_compiler()  # e.g. "GCC 12.2.0"
    if compiler.startswith("GCC "):
        return compiler.split()[1]
    return "0.0.0"


def _replids(node) -> tuple[str, str]:
    """master_replid is random per run (not the run id), as Redis's changeReplicationId."""
    replid = getattr(node, "master_replid", None)
    if replid is None:
        replid = node.master_replid = "%040x" % node.rng.getrandbits(160)
    return replid, "0" * 40


# ------------------------------------------------------------------ sections


def _server(node) -> list[tuple[str, object]]:
    uname = os.uname()
    now_us = int(time.time() * 1_000_000)
    uptime = int(time.monotonic() - node.start_monotonic)
    hz = node.config["hz"]
    return [
        ("redis_version", VERSION),
        ("shoal_version", SHOAL_VERSION),
        ("redis_git_sha1", "00000000"),
        ("redis_git_dirty", 0),
        ("redis_build_id", "0"),
        ("redis_mode", "cluster" if node.cluster_enabled else "standalone"),
        ("os", f"{uname.sysname} {uname.release} {uname.machine}"),
        ("arch_bits", 64),
        ("monotonic_clock", "POSIX clock_gettime"),
        ("multiplexing_api", "epoll"),
        ("atomicvar_api", "c11-builtin"),
        ("gcc_version", _gcc_version()),
        ("process_id", os.getpid()),
        ("process_supervised", "no"),
        ("run_id", node.run_id),
        ("tcp_port", node.tcp_port),
        ("server_time_usec", now_us),
        ("uptime_in_seconds", uptime),
        ("uptime_in_days", uptime // 86400),
        ("hz", hz),
        ("configured_hz", hz),
        ("lru_clock", (now_us // 1_000_000) & ((1 << 24) - 1)),
        ("executable", node.executable),
        ("config_file", node.config_file),
        ("io_threads_active", 0),
    ]


def _clients(node) -> list[tuple[str, object]]:
    clients = list(node.clients.values())
    return [
        ("connected_clients", len(clients)),
        ("cluster_connections", 0),
        ("maxclients", node.config["maxclients"]),
        ("client_recent_max_input_buffer", max((getattr(c, "qbuf_peak", 0) for c in clients), default=0)),
        ("client_recent_max_output_buffer", max((len(getattr(c, "out", b"")) for c in clients), default=0)),
        ("blocked_clients", sum(1 for c in clients if getattr(c, "blocked", None) is not None)),
        ("tracking_clients", node.tracking.clients if node.tracking is not None else 0),
        # Blocked clients with a deadline (BLPOP 5, WAIT ... 100): Redis's clients_timeout_table.
        ("clients_in_timeout_table", sum(1 for c in clients if getattr(getattr(c, "blocked", None), "deadline_ms", 0))),
    ]


def _memory(node) -> list[tuple[str, object]]:
    used = node.memory.measure()  # node.memory: the estimate maxmemory is compared with
    rss = rss_bytes()
    startup = node.memory.startup - node.memory.offset
    peak = max(getattr(node, "used_memory_peak", 0), used)
    node.used_memory_peak = peak
    overhead = startup
    dataset = max(used - overhead, 0)
    net = used - startup
    maxmemory = node.config["maxmemory"]
    frag = rss / used if used else 0.0
    backlog = getattr(getattr(node, "replication", None), "backlog", None)
    repl_buffer = len(backlog.buf) if backlog is not None else 0  # the backlog is the replication buffer
    return [
        ("used_memory", used),
        ("used_memory_human", bytes_to_human(used)),
        ("used_memory_rss", rss),
        ("used_memory_rss_human", bytes_to_human(rss)),
        ("used_memory_peak", peak),
        ("used_memory_peak_human", bytes_to_human(peak)),
        ("used_memory_peak_perc", "%.2f%%" % (used * 100 / peak if peak else 0)),
        ("used_memory_overhead", overhead),
        ("used_memory_startup", startup),
        ("used_memory_dataset", dataset),
        ("used_memory_dataset_perc", "%.2f%%" % (dataset * 100 / net if net > 0 else 0)),
        ("allocator_allocated", used),
        ("allocator_active", used),
        ("allocator_resident", rss),
        ("total_system_memory", _total_system_memory()),
        ("total_system_memory_human", bytes_to_human(_total_system_memory())),
        ("used_memory_lua", 0),
        ("used_memory_vm_eval", 0),
        ("used_memory_lua_human", "0B"),
        ("used_memory_scripts_eval", 0),
        ("number_of_cached_scripts", 0),
        ("number_of_functions", 0),
        ("number_of_libraries", 0),
        ("used_memory_vm_functions", 0),
        ("used_memory_vm_total", 0),
        ("used_memory_vm_total_human", "0B"),
        ("used_memory_functions", 0),
        ("used_memory_scripts", 0),
        ("used_memory_scripts_human", "0B"),
        ("maxmemory", maxmemory),
        ("maxmemory_human", bytes_to_human(maxmemory)),
        ("maxmemory_policy", node.config["maxmemory-policy"]),
        ("allocator_frag_ratio", "1.00"),
        ("allocator_frag_bytes", 0),
        ("allocator_rss_ratio", "%.2f" % frag),
        ("allocator_rss_bytes", rss - used),
        ("rss_overhead_ratio", "1.00"),
        ("rss_overhead_bytes", 0),
        ("mem_fragmentation_ratio", "%.2f" % frag),
        ("mem_fragmentation_bytes", rss - used),
        ("mem_not_counted_for_evict", 0),
        ("mem_replication_backlog", repl_buffer),
        ("mem_total_replication_buffers", repl_buffer),
        ("mem_clients_slaves", 0),
        ("mem_clients_normal", sum(len(getattr(c, "out", b"")) for c in node.clients.values())),
        ("mem_cluster_links", 0),
        ("mem_aof_buffer", 0),
        ("mem_allocator", "libc"),
        ("active_defrag_running", 0),
        ("lazyfree_pending_objects", 0),
        ("lazyfreed_objects", 0),
    ]


def _persistence(node) -> list[tuple[str, object]]:
    rdb = node.rdb  # node.persistence.snapshot.Snapshots
    rdb.poll_child_info()  # fresh progress figures from a saving child's pipe
    saving = rdb.child_pid is not None
    total = rdb.save_keys_total
    return [
        ("loading", 0),
        ("async_loading", 0),
        ("current_cow_peak", rdb.current_cow_peak),
        ("current_cow_size", rdb.current_cow_size),
        ("current_cow_size_age", int(time.monotonic() - rdb.current_cow_updated) if rdb.current_cow_updated else 0),
        ("current_fork_perc", "%.2f" % (rdb.save_keys_processed * 100 / total if saving and total else 0)),
        ("current_save_keys_processed", rdb.save_keys_processed),
        ("current_save_keys_total", total),
        ("rdb_changes_since_last_save", node.dirty),
        ("rdb_bgsave_in_progress", int(saving)),
        ("rdb_last_save_time", node.lastsave),
        ("rdb_last_bgsave_status", "ok" if rdb.lastbgsave_ok else "err"),
        ("rdb_last_bgsave_time_sec", rdb.save_time_last),
        ("rdb_current_bgsave_time_sec", node.clock.wall_ms() // 1000 - rdb.save_time_start if saving else -1),
        ("rdb_saves", rdb.saves),
        ("rdb_last_cow_size", rdb.last_cow_size),
        ("rdb_last_load_keys_expired", rdb.load_keys_expired),
        ("rdb_last_load_keys_loaded", rdb.load_keys_loaded),
        *node.aof.info_fields(),  # aof_* and module_fork_* (node.persistence.aof)
    ]


def _stats(node) -> list[tuple[str, object]]:
    s = node.stats
    sampler = sampler_of(node)
    hits = s.keyspace_hits + sum(db.hits for db in node.dbs)
    misses = s.keyspace_misses + sum(db.misses for db in node.dbs)
    pubsub = node.pubsub
    return [
        ("total_connections_received", s.total_connections_received),
        ("total_commands_processed", commands_processed(node)),
        ("instantaneous_ops_per_sec", int(sampler.rate("ops"))),
        ("total_net_input_bytes", s.total_net_input_bytes),
        ("total_net_output_bytes", s.total_net_output_bytes),
        ("total_net_repl_input_bytes", 0),
        ("total_net_repl_output_bytes", 0),
        ("instantaneous_input_kbps", "%.2f" % (sampler.rate("in") / 1024)),
        ("instantaneous_output_kbps", "%.2f" % (sampler.rate("out") / 1024)),
        ("instantaneous_input_repl_kbps", "0.00"),
        ("instantaneous_output_repl_kbps", "0.00"),
        ("rejected_connections", s.rejected_connections),
        ("sync_full", node.replication.sync_full),
        ("sync_partial_ok", node.replication.sync_partial_ok),
        ("sync_partial_err", node.replication.sync_partial_err),
        ("expired_keys", s.expired_keys),
        ("expired_stale_perc", "%.2f" % (s.expired_stale_perc * 100)),
        ("expired_time_cap_reached_count", s.expired_time_cap_reached_count),
        ("expire_cycle_cpu_milliseconds", 0),
        ("evicted_keys", s.evicted_keys),
        ("evicted_clients", 0),
        ("total_eviction_exceeded_time", 0),
        ("current_eviction_exceeded_time", 0),
        ("keyspace_hits", hits),
        ("keyspace_misses", misses),
        ("pubsub_channels", len(pubsub.channels)),
        ("pubsub_patterns", len(pubsub.patterns)),
        ("pubsubshard_channels", len(pubsub.shard_channels)),
        ("latest_fork_usec", node.rdb.fork_usec),
        ("total_forks", node.rdb.total_forks),
        ("migrate_cached_sockets", 0),
        ("slave_expires_tracked_keys", 0),
        ("active_defrag_hits", 0),
        ("active_defrag_misses", 0),
        ("active_defrag_key_hits", 0),
        ("active_defrag_key_misses", 0),
        ("total_active_defrag_time", 0),
        ("current_active_defrag_time", 0),
        ("tracking_total_keys", len(node.tracking.table) if node.tracking is not None else 0),
        ("tracking_total_items", node.tracking.items if node.tracking is not None else 0),
        ("tracking_total_prefixes", len(node.tracking.prefixes) if node.tracking is not None else 0),
        ("unexpected_error_replies", s.unexpected_error_replies),
        ("total_error_replies", s.total_error_replies),
        ("dump_payload_sanitizations", 0),
        ("total_reads_processed", s.total_reads_processed),
        ("total_writes_processed", s.total_writes_processed),
        ("io_threaded_reads_processed", 0),
        ("io_threaded_writes_processed", 0),
        ("reply_buffer_shrinks", 0),
        ("reply_buffer_expands", 0),
    ]


def _replication(node) -> list[tuple[str, object]]:
    if getattr(node, "replication", None) is not None:
        from node.commands.replication_cmds import info_fields

        return info_fields(node)  # node.replication's state
    replid, replid2 = _replids(node)
    return [
        ("role", "master"),
        ("connected_slaves", 0),
        ("master_failover_state", "no-failover"),
        ("master_replid", replid),
        ("master_replid2", replid2),
        ("master_repl_offset", 0),
        ("second_repl_offset", -1),
        ("repl_backlog_active", 0),
        ("repl_backlog_size", node.config["repl-backlog-size"]),
        ("repl_backlog_first_byte_offset", 0),
        ("repl_backlog_histlen", 0),
    ]


def _cpu(node) -> list[tuple[str, object]]:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    thread = resource.getrusage(getattr(resource, "RUSAGE_THREAD", resource.RUSAGE_SELF))
    return [
        ("used_cpu_sys", "%.6f" % me.ru_stime),
        ("used_cpu_user", "%.6f" % me.ru_utime),
        ("used_cpu_sys_children", "%.6f" % kids.ru_stime),
        ("used_cpu_user_children", "%.6f" % kids.ru_utime),
        ("used_cpu_sys_main_thread", "%.6f" % thread.ru_stime),
        ("used_cpu_user_main_thread", "%.6f" % thread.ru_utime),
    ]


def _commandstats(node) -> list[tuple[str, object]]:
    from node.commands.table import all_commands  # late: node.commands imports this module

    out = []

    def add(cmd) -> None:
        if cmd.calls or cmd.failed_calls or cmd.rejected_calls:
            per_call = cmd.usec / cmd.calls if cmd.calls else 0.0
            out.append((
                "cmdstat_" + cmd.fullname,
                "calls=%d,usec=%d,usec_per_call=%.2f,rejected_calls=%d,failed_calls=%d"
                % (cmd.calls, cmd.usec, per_call, cmd.rejected_calls, cmd.failed_calls),
            ))
        for sub in cmd.subcommands.values():
            add(sub)

    for cmd in all_commands():
        add(cmd)
    return out


def _errorstats(node) -> list[tuple[str, object]]:
    return [(f"errorstat_{code}", f"count={count}") for code, count in sorted(node.stats.error_codes.items())]


def _keyspace(node) -> list[tuple[str, object]]:
    out = []
    for db in node.dbs:
        if db.size or db.volatile:
            out.append((f"db{db.index}", f"keys={db.size},expires={db.volatile},avg_ttl={db.avg_ttl}"))
    return out


_GENERATORS = {
    "server": ("Server", _server),
    "clients": ("Clients", _clients),
    "memory": ("Memory", _memory),
    "persistence": ("Persistence", _persistence),
    "stats": ("Stats", _stats),
    "replication": ("Replication", _replication),
    "cpu": ("CPU", _cpu),
    "modules": ("Modules", lambda node: []),
    "commandstats": ("Commandstats", _commandstats),
    "errorstats": ("Errorstats", _errorstats),
    "latencystats": ("Latencystats", latencystats),  # latency-tracking (node.monitoring.histogram)
    "cluster": ("Cluster", lambda node: [("cluster_enabled", int(node.cluster_enabled))]),
    "keyspace": ("Keyspace", _keyspace),
}


def requested_sections(args: list[bytes]) -> set[str]:
    """The sections INFO's arguments select, as Redis 7.0's genInfoSectionDict."""
    if not args:
        return set(DEFAULT_SECTIONS) | {"modules"}
    wanted: set[str] = set()
    for arg in args:
        name = arg.decode("utf-8", "surrogateescape").lower()
        if name == "default":
            wanted |= DEFAULT_SECTIONS | {"modules"}
        elif name in ("all", "everything"):
            wanted |= ALL_SECTIONS
        elif name == "module_list":
            wanted.add("modules")
        else:
            wanted.add(name)
    return wanted


def info_text(node, args: list[bytes]) -> bytes:
    wanted = requested_sections(args)
    parts: list[str] = []
    for name in _ORDER:
        if name not in wanted:
            continue
        title, generate = _GENERATORS[name]
        lines = [f"# {title}\r\n"]
        lines += [f"{key}:{value}\r\n" for key, value in generate(node)]
        parts.append("".join(lines))
    return "\r\n".join(parts).encode("utf-8", "surrogateescape")
