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

import errno
import os
import random
import socket
import time

import trio

from gossip.codec import BusProtocolError, FrameDecoder, encode_message
from gossip.core import ClusterConfig, ClusterState, InboundLink, OutboundLink
from gossip.state import ConfigFileError, parse_nodes_conf

__all__ = ["ClusterDriver"]

_TICK_S = 0.1
_READ_SIZE = 65536


class _Link:
    """A bus connection: a stream plus an output buffer drained by its writer task."""

    def __init__(self, stream, key) -> None:
        self.stream = stream
        self.key = key  # node id (outbound) or link id (inbound)
        self.out = bytearray()
        self.has_data = trio.Event()
        self.scope = trio.CancelScope()
        self.closed = False

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
        self.rng = random.Random()
        self.state = self._load_or_create()
        self.outbound: dict[str, _Link] = {}
        self.inbound: dict[int, _Link] = {}
        self._next_link_id = 0
        self._nursery: trio.Nursery | None = None
        self._backoff: dict[str, float] = {}
        self.listener: trio.SocketListener | None = None
        #: Called after effects that wrote to clients (published messages) so they are flushed now.
        self.flush_clients = None
        for name in ("cluster-node-timeout", "cluster-require-full-coverage", "cluster-allow-reads-when-down",
                     "cluster-allow-replica-migration", "cluster-replica-no-failover", "cluster-announce-ip"):
            config.on_change(name, lambda value: self._copy_config())

    # ------------------------------------------------------------ state and config

    def _cluster_config(self) -> ClusterConfig:
        c = self.node.config
        return ClusterConfig(
            node_timeout=c["cluster-node-timeout"], require_full_coverage=c["cluster-require-full-coverage"],
            allow_reads_when_down=c["cluster-allow-reads-when-down"],
            allow_replica_migration=c["cluster-allow-replica-migration"],
            replica_no_failover=c["cluster-replica-no-failover"], announce_ip=c["cluster-announce-ip"],
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

    def save(self, *, fsync: bool = False, state: ClusterState | None = None) -> None:
        """Write nodes.conf atomically: temp file, fsync, rename, fsync the directory."""
        state = state or self.state
        text = state.config_text()
        directory = os.path.dirname(self.path) or "."
        tmp = f"{self.path}.tmp-{os.getpid()}-{int(time.time() * 1000)}"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
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
                self.node.logger.notice(
                    "Now a replica of " + e.master_id if e.master_id else "Now a primary")
        if delivered and self.flush_clients is not None:
            self.flush_clients()

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

    async def _tick_loop(self) -> None:
        while True:
            self.state.tick(self.now())
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
            for msg in messages:
                handle(msg)
            self.apply()

    # ------------------------------------------------------------ helpers for commands

    def slot_has_keys(self, slot: int) -> bool:
        return bool(self.node.dbs[0].dicts[slot])

    def endpoint(self, node_id: str) -> str:
        rec = self.state.nodes.get(node_id)
        if rec is None:
            return ":0"
        return f"{rec.ip}:{rec.port}"

