"""The trio shell around ``gossip.core.ClusterState``: bus sockets, the 100 ms tick, nodes.conf.

One ``ClusterDriver`` per node in cluster mode. It owns the state machine
(the only writer of cluster state) and does what its effects say:

* a listening socket on the bus port (``cluster-port`` or port + 10000);
* one outbound link per known node, opened from the node's own bind address
  (so loopback "hosts" 127.0.0.N keep their identity) and reopened by the
  state machine's cron with a growing backoff while it keeps failing;
* inbound links, answered on the link they came in on;
* nodes.conf written atomically (temp file, fsync, rename, directory fsync)
  before the messages produced in the same step are sent -- the order Redis
  keeps so a vote or a new epoch is never announced before it is durable.

Frames are decoded by ``gossip.codec``; a malformed one closes its link and is
logged, never more.
"""

from __future__ import annotations

import collections
import errno
import os
import random
import socket
import time

import trio

from gossip.codec import BusProtocolError, FrameDecoder, encode_message
from gossip.core import ClusterConfig, ClusterState, InboundLink, OutboundLink
from gossip.messages import SLAVE
from gossip.state import ConfigFileError, parse_nodes_conf
from node.cluster.bus_secret import BusAuthError, PrefixedStream, accept_handshake, connect_handshake
from node.cluster.faults import BusFaults

__all__ = ["ClusterDriver"]

_TICK_S = 0.1
_READ_SIZE = 65536
#: A coalesced PONG (``ClusterState._request_pong``) goes out once no SETSLOT came for this long...
_PONG_QUIET_S = 0.005
#: ...or this long after it was asked for, whichever comes first.
_PONG_MAX_DELAY_S = 0.05


class _Link:
    """A bus connection: a stream plus an output buffer drained by its writer task."""

    def __init__(self, stream, key) -> None:
        self.stream = stream
        self.key = key  # node id (outbound) or link id (inbound)
        self.out = bytearray()
        self.has_data = trio.Event()
        self.scope = trio.CancelScope()
        self.closed = False
        self.peer = None  # inbound: the node id its frames carry (DEBUG CLUSTER-BUS CLOSE)
        self.delayed = None  # DEBUG CLUSTER-BUS DELAY: deque of (due, message) while frames wait

    def queue(self, frame: bytes) -> None:
        self.out += frame
        self.has_data.set()


class ClusterDriver:
    def __init__(self, node, *, bind_ip: str, port: int) -> None:
        self.node = node
        config = node.config
        self.bind_ip = bind_ip
        self.port = port
        self.cport = config["cluster-port"] or port + 10000
        self.path = os.path.abspath(config["cluster-config-file"])
        self._conf_exists = False  # nodes.conf seen or made: later saves go straight to the in-place write
        self.rng = random.Random()
        self.state = self._load_or_create()
        self.outbound: dict[str, _Link] = {}
        self.inbound: dict[int, _Link] = {}
        self._next_link_id = 0
        self._nursery: trio.Nursery | None = None
        self._backoff: dict[str, float] = {}
        self._refusals: set = set()  # (peer host, reason) already logged at warning level
        self.faults = BusFaults()  # test-only bus faults set by DEBUG CLUSTER-BUS (node.cluster.faults)
        self.listener: trio.SocketListener | None = None
        #: Called after effects that wrote to clients (published messages) so they are flushed now.
        self.flush_clients = None
        self._pong_scheduled = False  # a _send_pong_later task is waiting
        for name in ("cluster-node-timeout", "cluster-require-full-coverage", "cluster-allow-reads-when-down",
                     "cluster-allow-replica-migration", "cluster-replica-no-failover", "cluster-announce-ip",
                     "cluster-replica-validity-factor", "repl-ping-replica-period", "cluster-migration-barrier",
                     "cluster-failover-offset-check", "cluster-write-lease-ms", "cluster-fast-failover"):
            config.on_change(name, lambda value: self._copy_config())

    # ------------------------------------------------------------ state and config

    def _cluster_config(self) -> ClusterConfig:
        c = self.node.config
        return ClusterConfig(
            node_timeout=c["cluster-node-timeout"], require_full_coverage=c["cluster-require-full-coverage"],
            allow_reads_when_down=c["cluster-allow-reads-when-down"],
            allow_replica_migration=c["cluster-allow-replica-migration"],
            replica_no_failover=c["cluster-replica-no-failover"], announce_ip=c["cluster-announce-ip"],
            replica_validity_factor=c["cluster-replica-validity-factor"],
            repl_ping_period_ms=c["repl-ping-replica-period"] * 1000,
            migration_barrier=c["cluster-migration-barrier"],
            failover_offset_check=c["cluster-failover-offset-check"], write_lease_ms=c["cluster-write-lease-ms"],
            fast_failover=c["cluster-fast-failover"],
        )

    def _copy_config(self) -> None:
        self.state.config = self._cluster_config()

    def now(self) -> int:
        return int(time.time() * 1000)

    def _load_or_create(self) -> ClusterState:
        now = self.now()
        my_id = "%040x" % self.rng.getrandbits(160)
        state = ClusterState(my_id, self.port, self.cport, self._cluster_config(), self.rng, now)
        try:
            with open(self.path, encoding="utf-8") as fh:
                text = fh.read()
        except FileNotFoundError:
            text = ""
        if text.strip():
            try:
                parsed = parse_nodes_conf(text, now)
            except (ConfigFileError, ValueError) as exc:
                raise ConfigFileError(f"Unrecoverable error: corrupted cluster config file \"{self.path}\": {exc}")
            state.load(*parsed)
            self.node.logger.notice(f"Node configuration loaded, I'm {state.myself.id}")
        else:
            self.node.logger.notice(f"No cluster configuration found, I'm {my_id}")
            self.save(fsync=True, state=state)
        return state

    def _save_in_place(self, data: bytes, fsync: bool = False) -> None:
        """Overwrite nodes.conf in one write, padded with newlines to its old length, then truncate
        (and fsync the file when asked).

        A temp file and a rename cost about 1 ms of directory metadata per
        save, paid on every CLUSTER SETSLOT of a reshard (Redis 7.0's
        clusterSaveConfig writes in place too, fsyncing the file itself when
        asked). The padding keeps the file parseable at every instant: a
        process killed between the write and the truncate leaves the new
        configuration followed by blank lines, never a mix of old and new.
        """
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            size = len(data)
            old_size = os.fstat(fd).st_size
            if size < old_size:
                data += b"\n" * (old_size - size)
            os.write(fd, data)
            if size < old_size:
                os.ftruncate(fd, size)
            if fsync:
                os.fsync(fd)  # the file's data and size are durable before the reply or the bus message
        finally:
            os.close(fd)

    def save(self, *, fsync: bool = False, state: ClusterState | None = None) -> None:
        """Write nodes.conf. An existing file is rewritten in place (see ``_save_in_place``), with an
        fsync of the file for epoch, vote and role changes, as Redis 7.0 does; the first save creates it
        through a temp file, fsync, rename and directory fsync, so the name itself is durable."""
        state = state or self.state
        text = state.config_text()
        if self._conf_exists or os.path.exists(self.path):
            # Once seen, the file is assumed to stay: no stat per SETSLOT (and if someone removes it,
            # the in-place write's O_CREAT makes it again).
            self._conf_exists = True
            self._save_in_place(text.encode("utf-8"), fsync)
            return
        directory = os.path.dirname(self.path) or "."
        tmp = f"{self.path}.tmp-{os.getpid()}-{int(time.time() * 1000)}"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        self._conf_exists = True
        if fsync:
            dir_fd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)

    # ------------------------------------------------------------ effects

    def apply(self) -> None:
        """Carry out everything the state machine asked for since the last call."""
        effects = self.state.drain()
        if not effects:
            return
        saves = [e for e in effects if e.kind == "save"]
        if saves:
            try:
                self.save(fsync=any(e.fsync for e in saves))
            except OSError as exc:
                self.node.logger.warning(f"Could not save the cluster configuration: {exc}")
        delivered = False
        for e in effects:
            kind = e.kind
            if kind == "send":
                link = self.inbound.get(e.target) if e.inbound else self.outbound.get(e.target)
                if link is not None and not link.closed:
                    link.queue(encode_message(e.msg))
            elif kind == "connect":
                self._start_outbound(e.node_id, e.ip, e.cport)
            elif kind == "drop":
                link = self.outbound.pop(e.node_id, None)
                if link is not None:
                    link.closed = True
                    link.scope.cancel()
            elif kind == "rename":
                link = self.outbound.pop(e.node_id, None)
                if link is not None:
                    link.key = e.new_id
                    self.outbound[e.new_id] = link
            elif kind == "log":
                log = getattr(self.node.logger, e.level, self.node.logger.notice)
                log(e.text)
            elif kind == "deliver":
                pubsub = self.node.pubsub
                deliver = getattr(pubsub, "deliver_shard_local" if e.shard else "deliver_local", None)
                if deliver is not None:
                    deliver(e.channel, e.payload)
                    delivered = True
            elif kind == "drop_slots":
                self.node.drop_slots(e.slots)
            elif kind == "role":
                self._follow_role(e.master_id)
            elif kind == "pause":
                pause = getattr(self.node, "pause_clients", None)
                if pause is not None:
                    pause(e.mode, e.until)
            elif kind == "unpause":
                unpause = getattr(self.node, "unpause_clients", None)
                if unpause is not None:
                    unpause()
            elif kind == "pong_later":
                if not self._pong_scheduled and self._nursery is not None:
                    self._pong_scheduled = True
                    self._nursery.start_soon(self._send_pong_later)
        if delivered and self.flush_clients is not None:
            self.flush_clients()

    async def _send_pong_later(self) -> None:
        """Send the PONG the state machine asked for once its SETSLOTs pause (see ``_request_pong``)."""
        state = self.state
        deadline = trio.current_time() + _PONG_MAX_DELAY_S
        seen = state.pong_activity
        while state.pong_pending and trio.current_time() < deadline:
            await trio.sleep(_PONG_QUIET_S)
            if state.pong_activity == seen:
                break
            seen = state.pong_activity
        self._pong_scheduled = False  # a request from here on starts a new wait
        state.flush_pong()
        self.apply()

    # ------------------------------------------------------------ tasks

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        sock = trio.socket.socket(socket.AF_INET6 if ":" in self.bind_ip else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        await sock.bind((self.bind_ip, self.cport))
        sock.listen(128)
        self.listener = trio.SocketListener(sock)
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self._accept_loop)
            nursery.start_soon(self._tick_loop)
            task_status.started()

    def _follow_role(self, master_id: str | None) -> None:
        """The state machine changed my primary: point the replication layer at it (or promote)."""
        repl = getattr(self.node, "replication", None)
        if master_id is None:
            self.node.logger.notice("Now a primary")
            if repl is not None:
                repl.promote()
            return
        rec = self.state.nodes.get(master_id)
        self.node.logger.notice("Now a replica of " + master_id)
        if repl is not None and rec is not None and rec.ip and rec.port:
            repl.replicate_from(rec.ip, rec.port)

    def feed_replication(self, now: int) -> None:
        """Give the state machine my replication offset and link-down time (elections rank by them)."""
        repl = getattr(self.node, "replication", None)
        if repl is None:
            return
        down = repl.link_down_ms(now) if self.state.myself.flags & SLAVE else 0
        self.state.set_replication(repl.repl_offset(), down)

    async def _tick_loop(self) -> None:
        me = self.state.myself
        if me.flags & SLAVE and me.master_id:
            self._follow_role(me.master_id)  # restarted as a replica (nodes.conf): replicate again
        while True:
            now = self.now()
            self.feed_replication(now)
            self.state.tick(now)
            self.apply()
            await trio.sleep(_TICK_S)

    async def _accept_loop(self) -> None:
        while True:
            try:
                stream = await self.listener.accept()
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE):
                    await trio.sleep(0.1)
                    continue
                raise
            self._next_link_id += 1
            link = _Link(stream, self._next_link_id)
            self.inbound[link.key] = link
            self._nursery.start_soon(self._serve_inbound, link)

    async def _serve_inbound(self, link: _Link) -> None:
        stream = link.stream
        try:
            peer_ip = stream.socket.getpeername()[0]
            local_ip = stream.socket.getsockname()[0]
        except OSError:
            peer_ip = local_ip = ""
        handle = InboundLink(link.key, peer_ip, local_ip)
        try:
            with link.scope:
                try:
                    with trio.fail_after(self._handshake_timeout()):
                        await self._secure_link(link, inbound=True, peer=_peer_name(stream))
                except (OSError, trio.TooSlowError):
                    return
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._writer, link)
                    await self._reader(link, lambda msg: self.state.receive(msg, handle, self.now()))
                    nursery.cancel_scope.cancel()
        finally:
            link.closed = True
            self.inbound.pop(link.key, None)
            with trio.CancelScope(shield=True):
                await stream.aclose()

    def _start_outbound(self, node_id: str, ip: str, cport: int) -> None:
        if self._nursery is None:
            return
        old = self.outbound.pop(node_id, None)
        if old is not None:
            old.closed = True
            old.scope.cancel()
        link = _Link(None, node_id)
        self.outbound[node_id] = link
        self._nursery.start_soon(self._serve_outbound, link, ip, cport)

    async def _connect(self, ip: str, cport: int):
        family = socket.AF_INET6 if ":" in ip else socket.AF_INET
        sock = trio.socket.socket(family, socket.SOCK_STREAM)
        try:
            if family == socket.AF_INET and self.bind_ip and self.bind_ip not in ("0.0.0.0", "*"):
                await sock.bind((self.bind_ip, 0))  # speak from our own loopback "host"
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            await sock.connect((ip, cport))
        except BaseException:
            sock.close()
            raise
        return trio.SocketStream(sock)

    async def _serve_outbound(self, link: _Link, ip: str, cport: int) -> None:
        connected = False
        try:
            with link.scope:
                # Back off while a peer keeps refusing, so a dead node costs little.
                delay = self._backoff.get(link.key, 0.0)
                if delay:
                    await trio.sleep(delay)
                with trio.move_on_after(max(self.state.config.node_timeout / 1000, 1.0)) as timeout:
                    link.stream = await self._connect(ip, cport)
                    await self._secure_link(link, inbound=False, peer=f"{ip}:{cport}")
                if timeout.cancelled_caught:
                    raise OSError(errno.ETIMEDOUT, "connect timed out")
                connected = True
                self._backoff.pop(link.key, None)
                self.state.link_up(link.key, self.now())
                self.apply()
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._writer, link)
                    await self._reader(link, lambda msg: self.state.receive(msg, OutboundLink(link.key), self.now()))
                    nursery.cancel_scope.cancel()
        except OSError:
            if not connected:
                self._backoff[link.key] = min(max(self._backoff.get(link.key, 0.05) * 2, 0.1), 1.0)
        finally:
            if self.outbound.get(link.key) is link:
                del self.outbound[link.key]
                self.state.link_down(link.key, self.now())
                self.apply()
            link.closed = True
            if link.stream is not None:
                with trio.CancelScope(shield=True):
                    await link.stream.aclose()

    # ------------------------------------------------------------ link security (tls-cluster, bus secret)

    def _handshake_timeout(self) -> float:
        return max(self.state.config.node_timeout / 1000, 1.0)

    async def _secure_link(self, link: _Link, *, inbound: bool, peer: str) -> None:
        """TLS when ``tls-cluster yes``, then the ``cluster-bus-secret`` handshake (node.cluster.bus_secret).

        Runs before any bus frame is read or sent on the link; a refusal is
        logged and raised as OSError, and the state machine never hears of the link.
        """
        config = self.node.config
        tls = getattr(self.node, "tls", None)
        if config["tls-cluster"] and tls is not None:
            ctx = tls.peer if inbound else tls.client
            ssl_stream = trio.SSLStream(link.stream, ctx, server_side=inbound)
            try:
                await ssl_stream.do_handshake()
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                reason = exc.__cause__ or exc
                what = "accepting cluster node connection from" if inbound else "connecting to cluster node"
                self._refused(peer, f"TLS error {what} {peer}: {getattr(reason, 'reason', None) or reason}")
                raise OSError(errno.ECONNABORTED, "TLS handshake failed") from None
            link.stream = ssl_stream
        secret = config["cluster-bus-secret"]
        if secret:
            try:
                if inbound:
                    rest = await accept_handshake(link.stream, secret.encode("utf-8", "surrogateescape"))
                else:
                    rest = await connect_handshake(link.stream, secret.encode("utf-8", "surrogateescape"))
            except BusAuthError as exc:
                if inbound:
                    self._refused(peer, f"Refused a cluster bus link from {peer}: {exc}")
                else:
                    self._refused(peer, f"Cluster bus link to {peer} refused: {exc}")
                raise OSError(errno.EACCES, str(exc)) from None
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                raise OSError(errno.ECONNRESET, "link closed during the bus secret handshake") from exc
            if rest:
                link.stream = PrefixedStream(link.stream, rest)

    def _refused(self, peer: str, text: str) -> None:
        """Log a refused link: warning the first time per peer and reason, verbose on retries."""
        logged = self._refusals
        key = (peer.rsplit(":", 1)[0], text.replace(peer, ""))
        if key in logged:
            self.node.logger.verbose(text)
        else:
            logged.add(key)
            self.node.logger.warning(text)

    async def _writer(self, link: _Link) -> None:
        while True:
            await link.has_data.wait()
            link.has_data = trio.Event()
            data = bytes(link.out)
            link.out.clear()
            try:
                await link.stream.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                link.scope.cancel()
                return

    async def _reader(self, link: _Link, handle) -> None:
        decoder = FrameDecoder()
        stream = link.stream
        while True:
            try:
                data = await stream.receive_some(_READ_SIZE)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                return
            if not data:
                return
            try:
                messages = decoder.feed(data)
            except BusProtocolError as exc:
                self.node.logger.warning(f"Dropping a cluster bus link: {exc}")
                return
            if messages:
                self.feed_replication(self.now())  # a manual failover's offsets must be exact, not a tick old
                link.peer = messages[-1].sender
                if self.faults.active:
                    self._faulty_delivery(link, messages, handle)
                    self.apply()
                    continue
            for msg in messages:
                handle(msg)
            self.apply()

    def _faulty_delivery(self, link: _Link, messages: list, handle) -> None:
        """DEBUG CLUSTER-BUS faults are set: drop frames, or queue them per link to deliver later in order."""
        faults = self.faults
        queue = link.delayed
        arrival = trio.current_time()
        for msg in messages:
            if faults.dropped(msg):
                continue
            ms = faults.delay_ms(msg.sender)
            if queue is None:
                if not ms:
                    handle(msg)
                    continue
                queue = link.delayed = collections.deque()
                faults.queue_opened()
                self._nursery.start_soon(self._deliver_delayed, link, queue, handle)
            due = arrival + ms / 1000
            if queue and queue[-1][0] > due:
                due = queue[-1][0]  # never overtake a frame queued earlier on this link
            queue.append((due, msg))

    async def _deliver_delayed(self, link: _Link, queue, handle) -> None:
        # Frames read before the peer closed the link are still delivered (TCP hands over data before
        # the FIN); closing it ourselves (CLOSE, the watchdog, a write error) discards them.
        try:
            while queue and not link.scope.cancel_called:
                await trio.sleep_until(queue[0][0])
                if link.scope.cancel_called:
                    break
                now = trio.current_time()
                self.feed_replication(self.now())
                while queue and queue[0][0] <= now:
                    handle(queue.popleft()[1])
                self.apply()
        finally:
            if link.delayed is queue:
                link.delayed = None
            self.faults.queue_drained()

    # ------------------------------------------------------------ helpers for commands

    def slot_has_keys(self, slot: int) -> bool:
        return bool(self.node.dbs[0].dicts[slot])

    def endpoint(self, node_id: str) -> str:
        rec = self.state.nodes.get(node_id)
        if rec is None:
            return ":0"
        return f"{rec.ip}:{rec.port}"


def _peer_name(stream) -> str:
    try:
        host, port = stream.socket.getpeername()[:2]
    except (OSError, AttributeError):
        return "?"
    return f"{host}:{port}"
