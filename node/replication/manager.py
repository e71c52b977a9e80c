"""``node.replication``: the node's replication state, as a primary and as a replica.

One object per node (created by ``node.core.Node``), holding Redis's
``server.replid``/``replid2``/``master_repl_offset``, the backlog, the
replicas attached to us (``node.replication.primary``) and, on a replica, the
link to our primary (``node.replication.replica``).

Interface other layers code against:

* ``repl_offset() -> int`` -- a primary's ``master_repl_offset``; on a
  replica the offset of the primary's stream processed so far (the two are the
  same number: a replica's backlog holds the stream it applied).
* ``link_down_ms(now_ms) -> int`` -- 0 while the link to the primary is up,
  else ms since it went down (``1 << 62`` if it was never up); 0 on a primary.
* ``replicate_from(host, port)`` -- become (or stay) a replica of host:port:
  drop the current link, keep the data until the new primary's snapshot
  arrives, try a partial resync with our own replid/offset first.
* ``promote()`` -- become a primary keeping the data; the current replid
  becomes ``replid2`` valid up to ``master_repl_offset + 1``, so siblings and
  the old primary can ``PSYNC`` and get ``+CONTINUE``.
* ``is_replica`` -- True while a primary is configured.

The stream: this object is the propagation sink on a primary. It writes each
unit once, with one shared "selected db" (Redis's ``slaveseldb``), into the
backlog and every online replica's output buffer, so every replica and the
backlog see the same bytes and offsets. A replica does not re-propagate what it
applies; it proxies the primary's bytes to its own backlog and sub-replicas.
"""

from __future__ import annotations

import time

from node.propagation import encode_command, encode_select
from node.resp import ErrorReply

__all__ = ["ReplicaInfo", "ReplicationManager", "WaitState"]

NEVER_UP_MS = 1 << 62

_READONLY = ErrorReply("READONLY You can't write against a read only replica.")
_MASTERDOWN = ErrorReply("MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.")
_NOREPLICAS = ErrorReply("NOREPLICAS Not enough good replicas to write.")
_PING = encode_command([b"PING"])
_GETACK = encode_command([b"REPLCONF", b"GETACK", b"*"])


class ReplicaInfo:
    """A client that is (or is about to become) one of our replicas."""

    __slots__ = ("client", "port", "ip", "capa_eof", "capa_psync2", "capa_shoal", "state", "ack_off",
                 "ack_time_ms", "rdb_only", "snapshot_bytes", "phase", "wait_since", "pending",
                 "initial_offset", "pre_psync", "mark", "await_ack")

    def __init__(self, client) -> None:
        self.client = client
        self.port = 0
        self.ip = ""
        self.capa_eof = False
        self.capa_psync2 = False
        self.capa_shoal = False  # a Shoal replica: full syncs use node.replication.snapshot
        self.state = "wait_bgsave"
        self.ack_off = 0
        self.ack_time_ms = 0
        self.rdb_only = False
        self.snapshot_bytes = 0  # size of the full-sync payload queued (not held against the buffer limit)
        #: Full sync (node.replication.fork): "start" waiting for a fork, "end" the fork runs (its
        #: +FULLRESYNC sent), "bulk" the disk file is being sent, "online", "failed"; "" = none.
        self.phase = ""
        self.wait_since = 0.0
        #: The stream written since the fork, held until the snapshot is through (None = not held).
        self.pending: bytearray | None = None
        self.initial_offset = -1
        self.pre_psync = False  # SYNC, not PSYNC: no +FULLRESYNC line, never the socket target
        self.mark = b""
        self.await_ack = False  # online after a diskless transfer; the stream starts at the first ACK

    def address(self) -> str:
        """The IP INFO/ROLE show: the announced one, else the connection's."""
        if self.ip:
            return self.ip
        addr = self.client.addr
        host = addr.rsplit(":", 1)[0]
        return host[1:-1] if host.startswith("[") else host


class WaitState:
    """``client.blocked`` while a WAIT waits for replica acknowledgements."""

    __slots__ = ("target", "numreplicas", "deadline_ms", "keys")

    def __init__(self, target: int, numreplicas: int, deadline_ms: int) -> None:
        self.target = target
        self.numreplicas = numreplicas
        self.deadline_ms = deadline_ms
        self.keys = ()


def new_replid(rng) -> str:
    return "%040x" % rng.getrandbits(160)


class ReplicationManager:
    def __init__(self, node) -> None:
        self.node = node
        config = node.config
        self.replid = new_replid(node.rng)
        self.replid2 = "0" * 40
        self.second_replid_offset = -1
        self.master_repl_offset = 0
        self.backlog = None
        self.seldb = -1
        self._sink_attached = False
        #: client id -> ReplicaInfo for every client that sent REPLCONF or PSYNC.
        self.infos: dict[int, ReplicaInfo] = {}
        #: Our replicas, in attach order (Redis's server.slaves).
        self.replicas: list[ReplicaInfo] = []
        self.waiters: list = []
        self.good_replicas = 0
        self.sync_full = 0
        self.sync_partial_ok = 0
        self.sync_partial_err = 0
        self.no_replicas_since = time.monotonic()
        self._last_ping = time.monotonic()
        # Replica side.
        self.master_host: str | None = None
        self.master_port = 0
        self.link = None  # node.replication.replica.MasterLink
        from node.replication.fork import ForkSync

        #: Full syncs served by fork children (node.replication.fork).
        self.forks = ForkSync(self)
        #: The database selected in the applied stream at master_repl_offset (Redis keeps it in the
        #: cached master client): a partial resync continues in it.
        self.stream_db = 0
        self.link_up_since_ms: int | None = None
        self.link_down_since_ms: int | None = None
        node.master_replid = self.replid
        config.on_change("min-replicas-to-write", self._refresh_gate)
        config.on_change("min-replicas-max-lag", self._refresh_gate)
        config.on_change("repl-backlog-size", self._resize_backlog)
        replicaof = config["replicaof"]
        if replicaof:
            host, port = replicaof
            self.master_host, self.master_port = str(host), int(port)
            self.set_expire_policy(1)
        self._refresh_gate()

    def set_expire_policy(self, policy: int) -> None:
        """Database.expire_policy on every db: 0 primary, 1 replica, 2 while applying the primary's stream."""
        for db in self.node.dbs:
            db.expire_policy = policy

    # ------------------------------------------------------------ interface

    @property
    def is_replica(self) -> bool:
        return self.master_host is not None

    def repl_offset(self) -> int:
        return self.master_repl_offset

    def link_down_ms(self, now_ms: int) -> int:
        if self.master_host is None:
            return 0
        link = self.link
        if link is not None and link.state == "connected":
            return 0
        if self.link_down_since_ms is None:
            return NEVER_UP_MS
        return max(0, now_ms - self.link_down_since_ms)

    def replicate_from(self, host: str, port: int) -> None:
        """Become a replica of host:port (REPLICAOF, CLUSTER REPLICATE, start-up ``replicaof``)."""
        host = str(host)
        port = int(port)
        if self.master_host == host and self.master_port == port and self.link is not None:
            return
        was_primary = self.master_host is None
        self._stop_link()
        self.master_host, self.master_port = host, port
        self.node.config.values["replicaof"] = (host, port)  # CONFIG GET/REWRITE replicaof follow the state
        self.set_expire_policy(1)
        self._unblock_waiters(all_of_them=True)
        self.disconnect_replicas()  # they must learn about the new history
        if was_primary:
            self._detach_sink()
            self.link_down_since_ms = None
            # Our own stream's selected db is where the new primary's continuation (if any) starts.
            self.stream_db = self.seldb if self.seldb >= 0 else 0
        self.node.logger.notice(f"Connecting to MASTER {host}:{port}")
        self._refresh_gate()
        self.start_link()

    def promote(self) -> None:
        """Stop replicating and become a primary, keeping the data (REPLICAOF NO ONE, a failover)."""
        if self.master_host is None:
            return
        self._stop_link()
        self.master_host = None
        self.master_port = 0
        self.node.config.values["replicaof"] = None
        self.set_expire_policy(0)
        self.shift_replid()
        self.disconnect_replicas()
        self.seldb = -1
        self.no_replicas_since = time.monotonic()
        if self.backlog is not None:
            self._attach_sink()
        self._refresh_gate()
        self.node.logger.notice("MASTER MODE enabled")

    # ------------------------------------------------------------ ids

    def shift_replid(self) -> None:
        """shiftReplicationId: the current id becomes replid2, valid up to the next byte."""
        self.replid2 = self.replid
        self.second_replid_offset = self.master_repl_offset + 1
        self.replid = new_replid(self.node.rng)
        self.node.master_replid = self.replid
        self.node.logger.notice(
            f"Setting secondary replication ID to {self.replid2}, valid up to offset: "
            f"{self.second_replid_offset}. New replication ID is {self.replid}")

    def change_replid(self) -> None:
        self.replid = new_replid(self.node.rng)
        self.node.master_replid = self.replid

    def clear_replid2(self) -> None:
        self.replid2 = "0" * 40
        self.second_replid_offset = -1

    def set_replid(self, replid: str) -> None:
        self.replid = replid
        self.node.master_replid = replid

    # ------------------------------------------------------------ stream

    def create_backlog(self) -> None:
        from node.replication.backlog import Backlog

        self.backlog = Backlog(self.node.config["repl-backlog-size"], self.master_repl_offset)
        if self.master_host is None:
            self._attach_sink()

    def free_backlog(self) -> None:
        self.backlog = None
        self._detach_sink()

    def _resize_backlog(self, value) -> None:
        if self.backlog is not None:
            self.backlog.resize(int(value))

    def _attach_sink(self) -> None:
        if not self._sink_attached:
            self._sink_attached = True
            self.node.propagation.add_sink(self)

    def _detach_sink(self) -> None:
        if self._sink_attached:
            self._sink_attached = False
            self.node.propagation.remove_sink(self)

    #: node.propagation sends this sink the replicas-only commands too (PUBLISH).
    replication_stream = True

    def feed(self, unit) -> None:
        """Propagation sink: one execution unit of a primary, into the backlog and to every replica."""
        if self.master_host is not None or self.backlog is None:
            return
        if len(unit) == 1 and unit[0][0] in (None, self.seldb):  # one command, same database: as it is
            self.feed_stream(unit[0][1])
            return
        parts = []
        seldb = self.seldb
        for db, encoded in unit:
            if db is not None and db != seldb:
                parts.append(encode_select(db))
                seldb = db
            parts.append(encoded)
        self.seldb = seldb
        self.feed_stream(b"".join(parts))

    def feed_stream(self, data: bytes) -> None:
        """Append bytes to the replication stream: backlog, offset, online replicas."""
        if not data:
            return
        backlog = self.backlog
        if backlog is None:
            self.master_repl_offset += len(data)
            return
        backlog.append(data)
        self.master_repl_offset += len(data)
        if self.replicas:
            pending = self.node.pending_write
            for info in self.replicas:
                held = info.pending
                if held is not None:  # a full sync is under way: the stream waits behind the snapshot
                    held += data
                    if len(held) > 16384:
                        self._check_output_limit(info, held)
                elif info.state == "online":
                    out = info.client.out
                    out += data
                    pending.add(info.client)
                    if len(out) > 16384:
                        self._check_output_limit(info, out)

    # ------------------------------------------------------------ replicas

    def _check_output_limit(self, info: ReplicaInfo, out) -> None:
        """client-output-buffer-limit replica <hard> <soft> <seconds> (the snapshot still in the buffer
        does not count): over the hard limit at once, over the soft one for longer than <seconds>."""
        client = info.client
        if client.killed:
            return
        hard, soft, seconds = self.node.config["client-output-buffer-limit"]["replica"]
        if client.over_output_limit(len(out) - info.snapshot_bytes, hard, soft, seconds, self.node.clock):
            self.node.logger.warning(
                f"Client id={client.id} addr={client.addr} flags=S scheduled to be closed ASAP for "
                "overcoming of output buffer limits.")
            client.killed = True
            self.node.pending_close.append(client)

    def info_of(self, client) -> ReplicaInfo:
        info = self.infos.get(client.id)
        if info is None:
            info = self.infos[client.id] = ReplicaInfo(client)
        return info

    def add_replica(self, info: ReplicaInfo) -> None:
        client = info.client
        if "S" not in client.flags:
            client.flags += "S"
        if info not in self.replicas:
            self.replicas.append(info)
        info.ack_time_ms = self.node.clock.wall_ms()
        self.refresh_good_replicas()

    def client_closed(self, client) -> None:
        """node.core calls this for every disconnected client (before the blocking registry)."""
        if type(client.blocked) is WaitState:
            try:
                self.waiters.remove(client)
            except ValueError:
                pass
            client.blocked = None
        info = self.infos.pop(client.id, None)
        if info is not None:
            info.pending = None
        if info is not None and info in self.replicas:
            self.replicas.remove(info)
            self.node.logger.notice(f"Connection with replica {info.address()}:{info.port} lost.")
            if not self.replicas:
                self.no_replicas_since = time.monotonic()
            self.refresh_good_replicas()
        link = self.link
        if link is not None and link.client is client:
            link.client_killed()

    def disconnect_replicas(self) -> None:
        for info in list(self.replicas):
            self.node.pending_close.append(info.client)
            self.replicas.remove(info)
        self.refresh_good_replicas()

    def ack(self, client, offset: int) -> None:
        info = self.infos.get(client.id)
        if info is None or info not in self.replicas:
            return
        if offset > info.ack_off:
            info.ack_off = offset
        info.ack_time_ms = self.node.clock.wall_ms()
        if info.state == "wait_ack":
            info.state = "online"
        if info.await_ack:
            self.forks.start_stream(info)
        if self.waiters:
            self.check_waiters()

    def refresh_good_replicas(self) -> None:
        lag_s = self.node.config["min-replicas-max-lag"]
        now = self.node.clock.wall_ms()
        good = 0
        for info in self.replicas:
            if info.state == "online" and (now - info.ack_time_ms) // 1000 <= lag_s:
                good += 1
        self.good_replicas = good

    def count_acked(self, offset: int) -> int:
        return sum(1 for info in self.replicas if info.state == "online" and info.ack_off >= offset)

    # ------------------------------------------------------------ WAIT

    def block_wait(self, client, target: int, numreplicas: int, deadline_ms: int) -> None:
        client.blocked = WaitState(target, numreplicas, deadline_ms)
        self.waiters.append(client)
        self.feed_stream(_GETACK)

    def check_waiters(self, now_ms: int | None = None) -> None:
        from node.resp import write_reply

        node = self.node
        still = []
        for client in self.waiters:
            state = client.blocked
            if type(state) is not WaitState:
                continue
            count = self.count_acked(state.target)
            if count >= state.numreplicas or (now_ms is not None and state.deadline_ms
                                              and now_ms >= state.deadline_ms):
                client.blocked = None
                write_reply(client.out, count, client.resp3)
                node.pending_write.add(client)
                node.unblocked.append(client)
            else:
                still.append(client)
        self.waiters = still

    def _unblock_waiters(self, all_of_them: bool = False) -> None:
        if not self.waiters:
            return
        from node.resp import write_reply

        for client in self.waiters:
            state = client.blocked
            if type(state) is WaitState:
                client.blocked = None
                write_reply(client.out, self.count_acked(state.target), client.resp3)
                self.node.pending_write.add(client)
                self.node.unblocked.append(client)
        self.waiters = []

    # ------------------------------------------------------------ command gate

    def _refresh_gate(self, _value=None) -> None:
        from node.dispatch import set_replication_checks

        config = self.node.config
        set_replication_checks(
            self.master_host is not None
            or (config["min-replicas-to-write"] > 0 and config["min-replicas-max-lag"] > 0)
        )

    def check(self, client, cmd) -> ErrorReply | None:
        """processCommand's replication checks (NOREPLICAS, READONLY, MASTERDOWN) for one request."""
        if "M" in client.flags:
            return None
        is_write = cmd.is_write
        name = (cmd.parent or cmd).name
        queued = client.multi if name == "exec" else None
        if queued and not is_write:
            is_write = any(q.is_write for q, _ in queued)
        config = self.node.config
        if self.master_host is None:
            if is_write:
                need = config["min-replicas-to-write"]
                if need > 0 and config["min-replicas-max-lag"] > 0 and self.good_replicas < need:
                    return _NOREPLICAS
            return None
        if is_write and config["replica-read-only"]:
            return _READONLY
        link = self.link
        if (link is None or link.state != "connected") and not config["replica-serve-stale-data"]:
            deny_stale = "stale" not in cmd.flags
            if not deny_stale and queued:
                deny_stale = any("stale" not in q.flags for q, _ in queued)
            if deny_stale:
                return _MASTERDOWN
        return None

    # ------------------------------------------------------------ link

    def start_link(self) -> None:
        from node.replication.replica import MasterLink

        spawn = getattr(self.node, "spawn", None)
        self.link = MasterLink(self, self.master_host, self.master_port)
        if spawn is not None:
            spawn(self.link.run)
        # else: the server starts it when it comes up (see run()).

    def _stop_link(self) -> None:
        link = self.link
        self.link = None
        if link is not None:
            link.stop()
            if link.state == "connected" or self.link_down_since_ms is None:
                self.link_down_since_ms = self.node.clock.wall_ms()

    def link_state_changed(self, up: bool) -> None:
        now = self.node.clock.wall_ms()
        if up:
            self.link_up_since_ms = now
        else:
            self.link_down_since_ms = now

    # ------------------------------------------------------------ cron

    async def run(self) -> None:
        """The replication cron (a trio task started by the server): pings, timeouts, WAIT, backlog TTL."""
        import trio

        if self.master_host is not None and self.link is None:
            self.start_link()
        elif self.link is not None and not self.link.started:
            self.node.spawn(self.link.run)
        last_second = time.monotonic()
        while True:
            await trio.sleep(0.05 if self.waiters else 0.2)
            node = self.node
            try:
                now_ms = node.clock.wall_ms()
                if self.waiters:
                    self.check_waiters(now_ms)
                if self.replicas:
                    self.forks.cron()
                mono = time.monotonic()
                if mono - last_second >= 1.0:
                    last_second = mono
                    self.cron_second(now_ms, mono)
                if node.pending_write or node.unblocked or node.pending_close:
                    node.flush_clients()
            except Exception as exc:  # noqa: BLE001 - a bug here must not take the node down
                import traceback

                node.logger.warning("Replication cron error: " + "".join(
                    traceback.format_exception(exc)).replace("\n", " | "))

    def cron_second(self, now_ms: int, mono: float) -> None:
        config = self.node.config
        if self.replicas:
            self.forks.keepalive()
        if self.master_host is None:
            if self.replicas and mono - self._last_ping >= config["repl-ping-replica-period"]:
                if not self.node.pause.writes_paused:
                    self._last_ping = mono
                    self.feed_stream(_PING)
            timeout_ms = config["repl-timeout"] * 1000
            for info in list(self.replicas):
                if info.state == "online" and now_ms - info.ack_time_ms > timeout_ms:
                    self.node.logger.warning(f"Disconnecting timedout replica: {info.address()}:{info.port}")
                    self.node.pending_close.append(info.client)
            ttl = config["repl-backlog-ttl"]
            if self.backlog is not None and not self.replicas and ttl and mono - self.no_replicas_since > ttl:
                self.change_replid()
                self.clear_replid2()
                self.free_backlog()
                self.node.logger.notice(
                    f"Replication backlog freed after {ttl} seconds without connected replicas.")
        self.refresh_good_replicas()
