"""A Prometheus ``/metrics`` endpoint per node, with redis_exporter's metric names.

Enabled by the (Shoal-only) ``metrics-port`` directive; 0, the default,
serves nothing. The text exposition format (version 0.0.4) is generated here
directly -- ``prometheus_client`` is not a dependency -- from the same numbers
INFO reports, so a dashboard or alert written for redis_exporter works
unchanged: ``redis_up``, ``redis_memory_used_bytes``, ``redis_commands_total{cmd=...}``...

The HTTP side is a minimal trio server: one request per connection, ``GET
/metrics`` (or ``/``) answers 200, anything else 404.
"""

from __future__ import annotations

import math

__all__ = ["render", "serve_metrics", "metric_names", "metrics_hosts"]

_CLUSTER_KEYS = {
    "cluster_slots_assigned": "redis_cluster_slots_assigned",
    "cluster_slots_ok": "redis_cluster_slots_ok",
    "cluster_slots_pfail": "redis_cluster_slots_pfail",
    "cluster_slots_fail": "redis_cluster_slots_fail",
    "cluster_known_nodes": "redis_cluster_known_nodes",
    "cluster_size": "redis_cluster_size",
    "cluster_current_epoch": "redis_cluster_current_epoch",
    "cluster_my_epoch": "redis_cluster_my_epoch",
}


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value)


class _Writer:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str, samples) -> None:
        """``samples``: a single value, or a list of (labels dict, value)."""
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")
        if not isinstance(samples, list):
            samples = [({}, samples)]
        for labels, value in samples:
            if labels:
                text = ",".join(f'{k}="{_escape(str(v))}"' for k, v in labels.items())
                self.lines.append(f"{name}{{{text}}} {_number(value)}")
            else:
                self.lines.append(f"{name} {_number(value)}")

    def text(self) -> bytes:
        return ("\n".join(self.lines) + "\n").encode()


def _cluster_info(node) -> dict[str, str]:
    if node.cluster is None:
        return {}
    from types import SimpleNamespace

    from node.commands.cluster_cmds import cluster_info

    try:
        reply = cluster_info(SimpleNamespace(node=node), [b"cluster", b"info"])
    except Exception:  # noqa: BLE001 -- a scrape must not fail because the bus is mid-change
        return {}
    out = {}
    for line in reply.data.decode().split("\r\n"):
        if ":" in line:
            key, value = line.split(":", 1)
            out[key] = value
    return out


def render(node) -> bytes:
    """The whole scrape, as text."""
    from node import info
    from node.commands.table import all_commands

    server = dict(info._server(node))
    clients = dict(info._clients(node))
    memory = dict(info._memory(node))
    stats = dict(info._stats(node))
    replication = dict(info._replication(node))
    cpu = dict(info._cpu(node))
    persistence = dict(info._persistence(node))
    w = _Writer()
    w.family("redis_up", "gauge", "Information about the Redis instance", 1)
    w.family("redis_instance_info", "gauge", "Information about the Redis instance", [({
        "role": replication["role"],
        "redis_version": server["redis_version"],
        "redis_build_id": server["redis_build_id"],
        "redis_mode": server["redis_mode"],
        "os": server["os"],
        "maxmemory_policy": memory["maxmemory_policy"],
        "tcp_port": server["tcp_port"],
        "run_id": server["run_id"],
        "process_id": server["process_id"],
        "master_replid": replication["master_replid"],
    }, 1)])
    w.family("redis_uptime_in_seconds", "gauge", "uptime_in_seconds metric", server["uptime_in_seconds"])
    w.family("redis_start_time_seconds", "gauge", "Start time of the Redis instance since unix epoch in seconds.",
             server["server_time_usec"] // 1_000_000 - server["uptime_in_seconds"])
    w.family("redis_connected_clients", "gauge", "connected_clients metric", clients["connected_clients"])
    w.family("redis_blocked_clients", "gauge", "blocked_clients metric", clients["blocked_clients"])
    w.family("redis_config_maxclients", "gauge", "config_maxclients metric", clients["maxclients"])
    w.family("redis_memory_used_bytes", "gauge", "memory_used_bytes metric", memory["used_memory"])
    w.family("redis_memory_used_rss_bytes", "gauge", "memory_used_rss_bytes metric", memory["used_memory_rss"])
    w.family("redis_memory_used_peak_bytes", "gauge", "memory_used_peak_bytes metric", memory["used_memory_peak"])
    w.family("redis_memory_max_bytes", "gauge", "memory_max_bytes metric", memory["maxmemory"])
    w.family("redis_mem_fragmentation_ratio", "gauge", "mem_fragmentation_ratio metric",
             float(memory["mem_fragmentation_ratio"]))
    w.family("redis_commands_processed_total", "counter", "commands_processed_total metric",
             stats["total_commands_processed"])
    w.family("redis_connections_received_total", "counter", "connections_received_total metric",
             stats["total_connections_received"])
    w.family("redis_rejected_connections_total", "counter", "rejected_connections_total metric",
             stats["rejected_connections"])
    w.family("redis_net_input_bytes_total", "counter", "net_input_bytes_total metric", stats["total_net_input_bytes"])
    w.family("redis_net_output_bytes_total", "counter", "net_output_bytes_total metric",
             stats["total_net_output_bytes"])
    w.family("redis_instantaneous_ops_per_sec", "gauge", "instantaneous_ops_per_sec metric",
             stats["instantaneous_ops_per_sec"])
    w.family("redis_keyspace_hits_total", "counter", "keyspace_hits_total metric", stats["keyspace_hits"])
    w.family("redis_keyspace_misses_total", "counter", "keyspace_misses_total metric", stats["keyspace_misses"])
    w.family("redis_evicted_keys_total", "counter", "evicted_keys_total metric", stats["evicted_keys"])
    w.family("redis_expired_keys_total", "counter", "expired_keys_total metric", stats["expired_keys"])
    w.family("redis_errors_total", "counter", "Total number of errors per error type",
             [({"err": code}, count) for code, count in sorted(node.stats.error_codes.items())])
    w.family("redis_cpu_sys_seconds_total", "counter", "cpu_sys_seconds_total metric", float(cpu["used_cpu_sys"]))
    w.family("redis_cpu_user_seconds_total", "counter", "cpu_user_seconds_total metric",
             float(cpu["used_cpu_user"]))
    w.family("redis_cpu_sys_children_seconds_total", "counter", "cpu_sys_children_seconds_total metric",
             float(cpu["used_cpu_sys_children"]))
    w.family("redis_cpu_user_children_seconds_total", "counter", "cpu_user_children_seconds_total metric",
             float(cpu["used_cpu_user_children"]))
    w.family("redis_cpu_sys_main_thread_seconds_total", "counter", "cpu_sys_main_thread_seconds_total metric",
             float(cpu["used_cpu_sys_main_thread"]))
    w.family("redis_cpu_user_main_thread_seconds_total", "counter", "cpu_user_main_thread_seconds_total metric",
             float(cpu["used_cpu_user_main_thread"]))
    w.family("redis_rdb_last_bgsave_status", "gauge", "rdb_last_bgsave_status metric",
             1 if persistence["rdb_last_bgsave_status"] == "ok" else 0)
    w.family("redis_rdb_changes_since_last_save", "gauge", "rdb_changes_since_last_save metric",
             persistence["rdb_changes_since_last_save"])
    w.family("redis_rdb_last_save_timestamp_seconds", "gauge", "rdb_last_save_timestamp_seconds metric",
             persistence["rdb_last_save_time"])
    w.family("redis_rdb_bgsave_in_progress", "gauge", "rdb_bgsave_in_progress metric",
             persistence["rdb_bgsave_in_progress"])
    w.family("redis_aof_enabled", "gauge", "aof_enabled metric", persistence.get("aof_enabled", 0))
    w.family("redis_aof_last_write_status", "gauge", "aof_last_write_status metric",
             1 if persistence.get("aof_last_write_status", "ok") == "ok" else 0)
    w.family("redis_db_keys", "gauge", "Total number of keys by DB",
             [({"db": f"db{db.index}"}, db.size) for db in node.dbs])
    w.family("redis_db_keys_expiring", "gauge", "Total number of expiring keys by DB",
             [({"db": f"db{db.index}"}, db.volatile) for db in node.dbs])
    w.family("redis_db_avg_ttl_seconds", "gauge", "Avg TTL in seconds",
             [({"db": f"db{db.index}"}, db.avg_ttl / 1000) for db in node.dbs if db.size or db.volatile])
    calls, usec, failed, rejected = [], [], [], []

    def add(cmd) -> None:
        if cmd.calls or cmd.failed_calls or cmd.rejected_calls:
            label = {"cmd": cmd.fullname}
            calls.append((label, cmd.calls))
            usec.append((label, cmd.usec / 1e6))
            failed.append((label, cmd.failed_calls))
            rejected.append((label, cmd.rejected_calls))
        for sub in cmd.subcommands.values():
            add(sub)

    for cmd in all_commands():
        add(cmd)
    w.family("redis_commands_total", "counter", "Total number of calls per command", calls)
    w.family("redis_commands_duration_seconds_total", "counter", "Total amount of time in seconds spent per command",
             usec)
    w.family("redis_commands_failed_calls_total", "counter", "Total number of errors within command execution",
             failed)
    w.family("redis_commands_rejected_calls_total", "counter", "Total number of errors prior command execution",
             rejected)
    w.family("redis_connected_slaves", "gauge", "connected_slaves metric", replication["connected_slaves"])
    w.family("redis_master_repl_offset", "gauge", "master_repl_offset metric", replication["master_repl_offset"])
    # One sample per connected replica (INFO's slaveN lines), labelled as redis_exporter does.
    lags, offsets = [], []
    for key, text in replication.items():
        if key.startswith("slave") and key[5:].isdigit():
            fields = dict(part.split("=", 1) for part in str(text).split(",") if "=" in part)
            labels = {"slave_ip": fields.get("ip", ""), "slave_port": fields.get("port", ""),
                      "slave_state": fields.get("state", "")}
            lags.append((labels, int(fields.get("lag", 0))))
            offsets.append((labels, int(fields.get("offset", 0))))
    w.family("redis_connected_slave_lag_seconds", "gauge", "Lag of connected slave", lags)
    w.family("redis_connected_slave_offset_bytes", "gauge", "Offset of connected slave", offsets)
    # The replica side of the link: a sample on a replica only (a primary declares the families, empty).
    replica = replication["role"] == "slave"
    w.family("redis_master_link_up", "gauge", "master_link_up metric",
             1 if replication.get("master_link_status") == "up" else 0 if replica else [])
    w.family("redis_master_last_io_seconds_ago", "gauge", "master_last_io_seconds_ago metric",
             replication.get("master_last_io_seconds_ago", -1) if replica else [])
    w.family("redis_master_sync_in_progress", "gauge", "master_sync_in_progress metric",
             replication.get("master_sync_in_progress", 0) if replica else [])
    w.family("redis_slave_repl_offset", "gauge", "slave_repl_offset metric",
             replication.get("slave_repl_offset", 0) if replica else [])
    slowlog = node.monitoring.slowlog
    w.family("redis_slowlog_length", "gauge", "Total slowlog", len(slowlog.entries))
    newest = slowlog.entries[0] if slowlog.entries else (0, 0, 0)
    w.family("redis_slowlog_last_id", "gauge", "Last id of slowlog", newest[0])
    w.family("redis_last_slow_execution_duration_seconds", "gauge",
             "The amount of time needed for last slow execution, "
             "in seconds", newest[2] / 1e6)
    spikes = [(event, series.latest()) for event, series in sorted(node.monitoring.latency.events.items())]
    w.family("redis_latency_spike_last", "gauge", "When the latency spike last occurred",
             [({"event_name": event}, when) for event, (when, _) in spikes])
    w.family("redis_latency_spike_duration_seconds", "gauge", "Length of the last latency spike in seconds",
             [({"event_name": event}, ms / 1e3) for event, (_, ms) in spikes])
    w.family("redis_cluster_enabled", "gauge", "cluster_enabled metric", int(node.cluster_enabled))
    cluster = _cluster_info(node)
    w.family("redis_cluster_state", "gauge", "cluster_state metric",
             1 if cluster.get("cluster_state") == "ok" else 0)
    for key, name in _CLUSTER_KEYS.items():
        w.family(name, "gauge", f"{key} metric", int(cluster.get(key, 0)))
    w.family("redis_cluster_messages_sent_total", "counter", "cluster_stats_messages_sent metric",
             int(cluster.get("cluster_stats_messages_sent", 0)))
    w.family("redis_cluster_messages_received_total", "counter", "cluster_stats_messages_received metric",
             int(cluster.get("cluster_stats_messages_received", 0)))
    return w.text()


def metric_names(text: bytes) -> set[str]:
    """The metric families a scrape declares (``# TYPE`` lines)."""
    names = set()
    for line in text.decode().splitlines():
        if line.startswith("# TYPE "):
            names.add(line.split()[2])
    return names


# ------------------------------------------------------------------- HTTP

_MAX_REQUEST = 16384


def _response(status: str, body: bytes, content_type: str) -> bytes:
    head = (f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n").encode()
    return head + body


async def _handle(node, stream) -> None:
    import trio

    data = b""
    try:
        with trio.move_on_after(10):
            while b"\r\n\r\n" not in data and len(data) < _MAX_REQUEST:
                chunk = await stream.receive_some(4096)
                if not chunk:
                    break
                data += chunk
        line = data.split(b"\r\n", 1)[0].split()
        if len(line) >= 2 and line[0] in (b"GET", b"HEAD") and line[1].split(b"?")[0] in (b"/metrics", b"/"):
            body = render(node)
            reply = _response("200 OK", body if line[0] == b"GET" else b"",
                              "text/plain; version=0.0.4; charset=utf-8")
        else:
            reply = _response("404 Not Found", b"Not Found\n", "text/plain; charset=utf-8")
        await stream.send_all(reply)
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        pass
    finally:
        await stream.aclose()


async def serve_metrics(node, port: int, hosts: list[str], *, task_status=None) -> None:
    """Serve ``/metrics`` on ``port`` at each of ``hosts`` until cancelled."""
    import functools

    import trio

    listeners = []
    for host in hosts:
        listeners.extend(await trio.open_tcp_listeners(port, host=host))
    node.logger.notice(f"Metrics endpoint listening on port {port}")
    status = task_status if task_status is not None else trio.TASK_STATUS_IGNORED
    await trio.serve_listeners(functools.partial(_handle, node), listeners, task_status=status)


def metrics_hosts(binds: list[str]) -> list[str]:
    """The addresses to listen on, from redis.conf ``bind`` (``*`` = all IPv4, optional ``-`` ignored)."""
    hosts = []
    for entry in binds:
        addr = entry.lstrip("-")
        if addr == "::*":
            continue
        hosts.append("0.0.0.0" if addr == "*" else addr)
    return hosts or ["127.0.0.1"]

