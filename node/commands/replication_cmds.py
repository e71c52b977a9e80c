"""Replication commands: REPLICAOF/SLAVEOF, ROLE, REPLCONF, PSYNC, SYNC, WAIT; INFO replication fields.

The work is in ``node.replication`` (manager, primary, replica); these are the
client-facing forms with Redis 7.0.15's replies and errors.
"""

from __future__ import annotations

from node.blocking import parse_timeout
from node.commands.args import parse_int
from node.commands.table import TABLE, command
from node.replication import primary
from node.resp import NO_REPLY, OK, ErrorReply, Raw

_ADMIN = ("admin", "dangerous")


def _replicaof(client, argv):
    node = client.node
    manager = node.replication
    if node.cluster_enabled:
        return ErrorReply("ERR REPLICAOF not allowed in cluster mode.")
    if argv[1].lower() == b"no" and argv[2].lower() == b"one":
        if manager.is_replica:
            manager.promote()
            node.logger.notice(f"MASTER MODE enabled (user request from 'id={client.id} addr={client.addr}')")
        return OK
    if "S" in client.flags:
        return ErrorReply("ERR Command is not valid when client is a replica.")
    port = _port(argv[2])
    host = argv[1].decode("utf-8", "surrogateescape")
    if manager.is_replica and manager.master_host.lower() == host.lower() and manager.master_port == port:
        node.logger.notice("REPLICAOF would result into synchronization with the master we are already "
                           "connected with. No operation performed.")
        return Raw(b"+OK Already connected to specified master\r\n")
    manager.replicate_from(host, port)
    node.logger.notice(f"REPLICAOF {host}:{port} enabled (user request from 'id={client.id} addr={client.addr}')")
    return OK


def _port(arg: bytes) -> int:
    try:
        if arg != arg.strip() or not arg:
            raise ValueError
        value = int(arg)
    except ValueError:
        raise ErrorReply("ERR Invalid master port") from None
    if value < 0 or value > 65535:
        raise ErrorReply("ERR Invalid master port")
    return value


@command("replicaof", 3, "admin noscript stale no_async_loading", group="server", acl=_ADMIN, since="5.0.0",
         summary="Make the server a replica of another instance, or promote it as master.", complexity="O(1)")
def replicaof(client, argv):
    return _replicaof(client, argv)


@command("slaveof", 3, "admin noscript stale no_async_loading", group="server", acl=_ADMIN, since="1.0.0",
         summary="Make the server a replica of another instance, or promote it as master.", complexity="O(1)")
def slaveof(client, argv):
    return _replicaof(client, argv)


@command("role", 1, "noscript loading stale fast", group="server", acl=_ADMIN, since="2.8.12",
         summary="Return the role of the instance in the context of replication", complexity="O(1)")
def role(client, argv):
    manager = client.node.replication
    if not manager.is_replica:
        replicas = [
            [info.address().encode(), b"%d" % info.port, b"%d" % info.ack_off]
            for info in manager.replicas if info.state == "online"  # (as Redis: not those still syncing)
        ]
        return [b"master", manager.master_repl_offset, replicas]
    link = manager.link
    state = link.state if link is not None else "connect"
    offset = manager.master_repl_offset if link is not None and link.state == "connected" else -1
    return [b"slave", manager.master_host.encode(), manager.master_port, state.encode(), offset]


@command("replconf", -1, "admin noscript loading stale allow_busy", group="server", acl=_ADMIN, since="3.0.0",
         summary="An internal command for configuring the replication stream", complexity="O(1)")
def replconf(client, argv):
    return primary.replconf(client.node, client, argv)


@command("psync", -3, "admin noscript no_async_loading no_multi", group="server", acl=_ADMIN, since="2.8.0",
         summary="Internal command used for replication")
def psync(client, argv):
    return primary.psync(client.node, client, argv)


@command("sync", 1, "admin noscript no_async_loading no_multi", group="server", acl=_ADMIN, since="1.0.0",
         summary="Internal command used for replication")
def sync(client, argv):
    return primary.psync(client.node, client, argv, sync=True)


@command("wait", 3, "noscript", group="generic", acl=("connection",), since="3.0.0",
         summary="Wait for the synchronous replication of all the write commands sent in the context of the "
                 "current connection", complexity="O(1)",
         tips=("request_policy:all_shards", "response_policy:agg_min"))
def wait(client, argv):
    node = client.node
    manager = node.replication
    if manager.is_replica:
        return ErrorReply(
            "ERR WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if a "
            "replica is configured to be writable (which is not the default) writes to replicas are just "
            "local and are not propagated.")
    numreplicas = parse_int(argv[1])
    deadline = parse_timeout(client, argv[2], seconds=False)
    # Shoal's target is the whole stream so far (Redis: this client's last write), a superset.
    target = manager.master_repl_offset
    acked = manager.count_acked(target)
    if client.multi is not None or acked >= numreplicas or client.deny_blocking:
        return acked
    manager.block_wait(client, target, numreplicas, deadline)
    return NO_REPLY


# Redis files WAIT under "generic" but gives it @slow @connection only (no @keyspace).
TABLE[b"wait"].categories = ("slow", "connection")


def _cached_offset(manager) -> int:
    return manager.master_repl_offset if manager.backlog is not None else 1


def info_fields(node) -> list[tuple[str, object]]:
    """INFO replication, in Redis 7.0.15's order."""
    manager = node.replication
    config = node.config
    now_ms = node.clock.wall_ms()
    fields: list[tuple[str, object]] = []
    if manager.is_replica:
        link = manager.link
        connected = link is not None and link.state == "connected"
        master_client = link.client if link is not None else None
        fields += [
            ("role", "slave"),
            ("master_host", manager.master_host),
            ("master_port", manager.master_port),
            ("master_link_status", "up" if connected else "down"),
            ("master_last_io_seconds_ago",
             (now_ms - link.last_io_ms) // 1000 if master_client is not None else -1),
            ("master_sync_in_progress", 1 if link is not None and link.sync_in_progress else 0),
            # Redis: the master client's offsets, else the cached master's, else 1.
            ("slave_read_repl_offset", link.read_offset if connected else _cached_offset(manager)),
            ("slave_repl_offset", manager.master_repl_offset if connected else _cached_offset(manager)),
        ]
        if link is not None and link.sync_in_progress:
            total = link.sync_total
            read = link.sync_read
            fields += [
                ("master_sync_total_bytes", total if total else -1),
                ("master_sync_read_bytes", read),
                ("master_sync_left_bytes", total - read if total else -1),
                ("master_sync_perc", "%.2f" % (read * 100 / total if total else 0.0)),
                ("master_sync_last_io_seconds_ago", (now_ms - link.last_io_ms) // 1000),
            ]
        if not connected:
            down = manager.link_down_since_ms
            fields.append(("master_link_down_since_seconds", (now_ms - down) // 1000 if down is not None else -1))
        fields += [
            ("slave_priority", config["replica-priority"]),
            ("slave_read_only", 1 if config["replica-read-only"] else 0),
            ("replica_announced", 1 if config["replica-announced"] else 0),
        ]
    else:
        fields.append(("role", "master"))
    fields.append(("connected_slaves", len(manager.replicas)))
    if manager.master_host is None and config["min-replicas-to-write"] and config["min-replicas-max-lag"]:
        fields.append(("min_slaves_good_slaves", manager.good_replicas))
    for i, info in enumerate(manager.replicas):
        lag = max(0, (now_ms - info.ack_time_ms) // 1000)
        fields.append((f"slave{i}", f"ip={info.address()},port={info.port},state={info.state},"
                                    f"offset={info.ack_off},lag={lag}"))
    backlog = manager.backlog
    fields += [
        ("master_failover_state", "no-failover"),
        ("master_replid", manager.replid),
        ("master_replid2", manager.replid2),
        ("master_repl_offset", manager.master_repl_offset),
        ("second_repl_offset", manager.second_replid_offset),
        ("repl_backlog_active", 1 if backlog is not None else 0),
        ("repl_backlog_size", config["repl-backlog-size"]),
        ("repl_backlog_first_byte_offset", backlog.first_byte_offset if backlog is not None else 0),
        ("repl_backlog_histlen", backlog.histlen if backlog is not None else 0),
    ]
    return fields
