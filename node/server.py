"""The trio shell of a node: sockets in, sockets out, timers, signals.

Why one task for all clients instead of a task per connection: trio's cost
per task wake-up (about 10 microseconds here) is larger than Redis's whole
cost per command. So, like Redis's own event loop, a single task waits on an
epoll descriptor of our own (``trio.lowlevel.wait_readable`` on its fd) and,
each time it wakes, serves every ready client socket in one pass: read what is
there, run every complete command, and write all the replies with one send.
Measured on this class of machine, this halves the CPU per command compared
with one task per connection.

The pass is synchronous, so the keyspace has one owner at a time and needs no
locks; other trio tasks (the expiry cron, signal handling, and later the
cluster bus) run between passes.

Policy, as Redis: a protocol error gets its error reply and the connection is
closed; a query buffer over ``client-query-buffer-limit`` closes that client
without a reply; replies that do not fit the socket buffer wait for EPOLLOUT
while the client's input keeps being served.

TLS clients (``tls-port``, node.tls) are served by the same loop: each holds a
``TLSConnection`` (an ``ssl.SSLObject`` over a pair of memory BIOs); ``_read`` and
``_flush`` hand them to ``_recv_tls``/``_flush_tls`` (decrypt before the parser,
encrypt the output in bounded steps), so a plain client pays one attribute test.
"""

from __future__ import annotations

import errno
import os
import select
import signal
import socket
import ssl
from typing import Iterable

import trio

from node.client import Client
from node.core import Node
import node.commands  # noqa: F401  (fills the command table)
from node.dispatch import execute
from node.resp import NEED_DATA, ErrorReply, ProtocolError, write_reply
from node.security.protected import check_new_connection
from node.tls import TLSClosed, TLSConnection

__all__ = ["ShoalServer", "open_listeners"]

_READ_SIZE = 16384  # as Redis's PROTO_IOBUF_LEN: measured slightly less kernel time than 64 KB
_EPOLLIN = select.EPOLLIN
_EPOLLOUT = select.EPOLLOUT
_EPOLLERR = select.EPOLLERR | select.EPOLLHUP


def open_listeners(binds: Iterable[str], port: int, backlog: int, logger=None) -> list[socket.socket]:
    """Listening sockets for redis.conf ``bind`` entries (``-addr`` = optional)."""
    sockets = []
    for entry in binds:
        optional = entry.startswith("-")
        addr = entry[1:] if optional else entry
        if addr == "*":
            addr = "0.0.0.0"
        elif addr == "::*":
            addr = "::"
        family = socket.AF_INET6 if ":" in addr else socket.AF_INET
        try:
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind((addr, port))
            sock.listen(backlog)
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            if optional and exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT, errno.EPROTONOSUPPORT):
                continue
            for opened in sockets:  # none of this call's sockets outlive its failure
                opened.close()
            raise OSError(exc.errno, f"Could not create server TCP listening socket {addr}:{port}: {exc.strerror}") from None
        sockets.append(sock)
    return sockets


class ShoalServer:
    """Runs one node: the client event loop, the cron, and signal handling."""

    def __init__(
        self, node: Node, listeners: list[socket.socket], *, use_hiredis: bool = True,
        tls_listeners: Iterable[socket.socket] = (),
    ) -> None:
        self.node = node
        self.listeners = {sock.fileno(): sock for sock in listeners}
        #: tls-port listeners (node.tls): their clients get a TLSConnection, served in the same loop.
        self.tls_fds = {sock.fileno() for sock in tls_listeners}
        self.listeners.update((sock.fileno(), sock) for sock in tls_listeners)
        self.use_hiredis = use_hiredis
        self.epoll = select.epoll()
        self.sockets: dict[int, socket.socket] = {}
        self.clients: dict[int, Client] = {}
        self.writers: set[int] = set()  # fds registered for EPOLLOUT
        self._serve_scope = trio.CancelScope()
        node.busy_poll = self.serve_while_busy

    # ------------------------------------------------------------ lifecycle

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        node = self.node
        for fd in self.listeners:
            self.epoll.register(fd, _EPOLLIN)
        try:
            async with trio.open_nursery() as nursery:
                node.spawn = nursery.start_soon
                node.flush_clients = self.flush_pending
                nursery.start_soon(node.replication.run)  # replication cron, link to a primary (node.replication)
                nursery.start_soon(self._cron)
                await nursery.start(self._signals)  # handlers in place before the first client is served
                nursery.start_soon(self._block_timeouts)
                task_status.started(self)
                with self._serve_scope:
                    await self._serve_clients()
                nursery.cancel_scope.cancel()
        finally:
            self.close_all()

    def close_all(self) -> None:
        for fd in list(self.clients):
            self._close(self.clients[fd])
        for sock in self.listeners.values():
            sock.close()
        self.listeners.clear()
        self.epoll.close()

    def request_shutdown(self) -> None:
        """Stop serving after the current pass (safe from any task)."""
        self.node.shutdown_requested = True
        self._serve_scope.cancel()

    async def _signals(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            task_status.started()
            async for signum in signals:
                name = "SIGTERM" if signum == signal.SIGTERM else "SIGINT"
                self.node.logger.warning(f"Received {name} scheduling shutdown...")
                # shutdown-on-sigterm/-sigint flags; a failed final save keeps the server running, as Redis.
                flags = self.node.config["shutdown-on-sigterm" if signum == signal.SIGTERM else "shutdown-on-sigint"]
                if not self.node.rdb.prepare_shutdown(set(flags.split())):
                    continue
                self.request_shutdown()
                return

    async def _cron(self) -> None:
        """Background work, ``hz`` times a second: active expiry, idle timeouts."""
        node = self.node
        while True:
            await trio.sleep(node.expire_period_s())
            node.active_expire_cycle(node.clock.wall_ms(), node.expire_budget_s())
            node.memory.tick(node.clock.wall_ms())  # LRU clock, used_memory, unfinished eviction
            node.rdb.cron()  # reap a BGSAVE child, fire save points (node.persistence.snapshot)
            node.aof.cron()  # AOF: reap a rewrite child, auto rewrites, deferred writes, everysec fsync
            node.pause.cron(node.clock.wall_ms())  # end CLIENT PAUSEs whose time is up
            if node.blocking.ready:
                node.serve_blocked()
            self._after_pass()
            timeout = node.config["timeout"]
            if timeout:
                limit = node.clock.wall_ms() - timeout * 1000
                for client in list(self.clients.values()):
                    # As Redis's clientsCronHandleTimeout: replicas, monitors, the primary's link,
                    # blocked and subscribed clients never time out.
                    if (client.last_interaction_ms < limit and client.blocked is None
                            and not (client.flags and ("S" in client.flags or "O" in client.flags
                                                       or "M" in client.flags))
                            and not (client.pubsub_channels or client.pubsub_patterns
                                     or client.pubsub_shard_channels)):
                        node.logger.verbose("Closing idle client")
                        self._close(client)

    async def _block_timeouts(self) -> None:
        """Answer blocked clients when their timeout passes; sleeps until the earliest deadline."""
        node = self.node
        wakeup = trio.Event()

        def new_deadline() -> None:
            wakeup.set()

        node.blocking.on_new_deadline = new_deadline
        while True:
            deadline = node.blocking.next_deadline()
            if deadline is None:
                await wakeup.wait()
            else:
                delay = (deadline - node.clock.wall_ms()) / 1000
                if delay > 0:
                    with trio.move_on_after(delay):
                        await wakeup.wait()
            if wakeup.is_set():
                wakeup = trio.Event()
            node.clock.unpin()
            node.expire_blocked(node.clock.wall_ms())
            self._after_pass()

    # ----------------------------------------------------------- event loop

    async def _serve_clients(self) -> None:
        epoll = self.epoll
        epfd = epoll.fileno()
        node = self.node
        clients = self.clients
        listeners = self.listeners
        poll = epoll.poll
        checkpoint = trio.lowlevel.checkpoint
        while not node.shutdown_requested:
            events = poll(0)
            if not events:
                # Idle: sleep in trio until some socket is ready.
                await trio.lowlevel.wait_readable(epfd)
                continue
            for fd, mask in events:
                client = clients.get(fd)
                if client is None:
                    if fd in listeners:
                        self._accept(listeners[fd])
                    continue
                if mask & _EPOLLOUT:
                    self._flush(client)
                if mask & (_EPOLLIN | _EPOLLERR) and fd in clients:
                    self._read(client)
            if node.pending_write or node.unblocked or node.pending_close:
                self._after_pass()
            # Busy: let other tasks run, then look again without re-arming trio's
            # own epoll (cheaper than wait_readable while work keeps arriving).
            await checkpoint()

    def serve_while_busy(self, running_client: Client) -> None:
        """One non-blocking pass over ready sockets while a script runs past busy-reply-threshold.

        Called from the script's Lua hook. The client running the script is
        left alone (its input waits until the script ends); every other client
        is read and answered: commands flagged ``allow_busy`` (SCRIPT KILL,
        FUNCTION KILL, SHUTDOWN NOSAVE, AUTH, HELLO, MULTI...) run, everything
        else gets Redis's BUSY error. Nothing is served to blocked clients
        until the script is over.
        """
        from node.dispatch import reply_error, resolve
        from node.scripting import get_scripting

        node = self.node
        busy = get_scripting(node).busy_error()
        for fd, mask in self.epoll.poll(0):
            client = self.clients.get(fd)
            if client is None:
                if fd in self.listeners:
                    self._accept(self.listeners[fd])
                continue
            if client is running_client:
                continue
            if mask & _EPOLLOUT:
                self._flush(client)
            if not mask & (_EPOLLIN | _EPOLLERR) or fd not in self.clients:
                continue
            if client.tls is not None:
                data = self._recv_tls(client)
                if not data:
                    continue
            else:
                try:
                    data = os.read(fd, _READ_SIZE)
                except BlockingIOError:
                    continue
                except OSError:
                    self._close(client)
                    continue
                if not data:
                    self._close(client)
                    continue
            stats = node.stats
            stats.total_reads_processed += 1
            stats.total_net_input_bytes += len(data)
            client.last_interaction_ms = node.clock.wall_ms()
            client.parser.feed(data)
            try:
                while client.blocked is None and not client.close_after_reply:
                    argv = client.parser.next_command()
                    if argv is NEED_DATA:
                        break
                    cmd = resolve(argv)
                    if (
                        type(cmd) is not ErrorReply
                        and "allow_busy" not in cmd.flags
                        and (client.authenticated or "no_auth" in cmd.flags)
                    ):
                        cmd.rejected_calls += 1
                        reply_error(client, busy)
                        continue
                    execute(client, argv)
            except ProtocolError as exc:
                node.stats.total_error_replies += 1
                write_reply(client.out, ErrorReply("ERR " + exc.message), client.resp3)
                client.close_after_reply = True
            if client.out:
                self._flush(client)
            elif client.close_after_reply:
                self._close(client)

    def _accept(self, listener: socket.socket) -> None:
        node = self.node
        while True:
            try:
                sock, peer = listener.accept()
            except BlockingIOError:
                return
            except OSError as exc:
                node.logger.warning(f"Accepting client connection: {exc}")
                return
            node.stats.total_connections_received += 1
            if len(self.clients) >= node.config["maxclients"]:
                node.stats.rejected_connections += 1
                try:
                    sock.send(b"-ERR max number of clients reached\r\n")
                finally:
                    sock.close()
                continue
            refusal = check_new_connection(node, sock, peer)  # protected mode (node.security.protected)
            if refusal is not None:
                node.stats.rejected_connections += 1
                node.logger.notice(f"Protected mode: refused a connection from {peer[0]}:{peer[1]}")
                try:
                    sock.send(refusal)
                except OSError:
                    pass
                finally:
                    sock.close()
                continue
            sock.setblocking(False)
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                keepalive = node.config["tcp-keepalive"]
                if keepalive:  # as Redis's anetKeepAlive: probes after <n> s idle, every n/3 s, 3 of them
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, keepalive)
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, max(keepalive // 3, 1))
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3)
            fd = sock.fileno()
            local = sock.getsockname()
            client = Client(
                node, node.new_client_id(), fd, _format_addr(peer), _format_addr(local), use_hiredis=self.use_hiredis
            )
            if listener.fileno() in self.tls_fds:
                client.tls = TLSConnection(node.tls.server)
            self.sockets[fd] = sock
            self.clients[fd] = client
            node.clients[client.id] = client
            self.epoll.register(fd, _EPOLLIN)
            node.logger.verbose(f"Accepted {client.addr}")

    def _read(self, client: Client) -> None:
        if client.tls is not None:
            data = self._recv_tls(client)
            if not data:
                return
        else:
            try:
                data = os.read(client.fd, _READ_SIZE)
            except BlockingIOError:
                return
            except OSError:
                self._close(client)
                return
            if not data:
                self._close(client)
                return
        node = self.node
        stats = node.stats
        stats.total_reads_processed += 1
        stats.total_net_input_bytes += len(data)
        client.last_interaction_ms = node.clock.wall_ms()
        client.parser.feed(data)
        self._process_input(client)

    def _process_input(self, client: Client) -> None:
        """Run every complete command buffered for ``client`` (stops while it is blocked)."""
        node = self.node
        parser = client.parser
        blocking = node.blocking
        try:
            while client.blocked is None and not client.close_after_reply:
                argv = parser.next_command()
                if argv is NEED_DATA:
                    break
                execute(client, argv)
                if blocking.ready:
                    node.serve_blocked()
        except ProtocolError as exc:
            node.logger.verbose(f"Protocol error ({exc.message}) from client: {client.addr}")
            node.stats.total_error_replies += 1
            write_reply(client.out, ErrorReply("ERR " + exc.message), client.resp3)
            client.close_after_reply = True
        if len(client.out) > 16384 and not client.killed and "S" not in client.flags:
            # client-output-buffer-limit normal/pubsub for replies, as Redis's check on each reply past
            # its 16 KB buffer (replicas: node.replication; messages to subscribers: node.pubsub).
            node.pubsub.check_output_limit(client)
        pending = parser.pending_bytes()
        if pending > client.qbuf_peak:
            client.qbuf_peak = pending
        if pending > node.config["client-query-buffer-limit"]:
            node.logger.warning(f"Closing client that reached max query buffer length: addr={client.addr}")
            node.stats.client_query_buffer_limit_disconnections += 1
            self._close(client)
            return
        if client.out:
            self._flush(client)
        elif client.close_after_reply:
            self._close(client)

    def flush_pending(self) -> None:
        """For other tasks (the cluster bus) that wrote to clients: deliver it now."""
        self._after_pass()

    def _after_pass(self) -> None:
        """Deliver what commands wrote to other clients, and resume unblocked pipelines."""
        node = self.node
        clients = self.clients
        while node.unblocked:
            resumed = node.unblocked
            node.unblocked = []
            for client in resumed:
                if client.fd in clients and clients[client.fd] is client and client.blocked is None:
                    self._process_input(client)
        if node.aof.buf:
            node.aof.flush()  # one AOF write (and fsync under 'always') for all the replies of this pass
        if node.tracking is not None and node.tracking.bcast_pending:
            node.tracking.broadcast()  # CLIENT TRACKING BCAST: the keys changed this pass (node.tracking)
        if node.pending_write:
            pending = node.pending_write
            node.pending_write = set()
            now_ms = node.clock.wall_ms()  # Redis counts a write to a client as interaction (timeout, idle)
            for client in pending:
                if clients.get(client.fd) is client:
                    client.last_interaction_ms = now_ms
                    self._flush(client)
        if node.pending_close:
            for client in node.pending_close:
                if clients.get(client.fd) is client:
                    self._flush(client)
                    self._close(client)
            node.pending_close.clear()

    def _flush(self, client: Client) -> None:
        if self.node.aof.buf and self.node.aof.hold_reply(client):
            return  # sent by _after_pass, after this pass's one AOF write (node.persistence.aof)
        if client.tls is not None:
            self._flush_tls(client)
            return
        out = client.out
        fd = client.fd
        if out:
            self.node.stats.total_writes_processed += 1
            try:
                sent = os.write(fd, out)
            except BlockingIOError:
                sent = 0
            except OSError:
                self._close(client)
                return
            self.node.stats.total_net_output_bytes += sent
            if sent == len(out):
                out.clear()
            else:
                del out[:sent]
        if out:
            if fd not in self.writers:
                self.writers.add(fd)
                self.epoll.modify(fd, _EPOLLIN | _EPOLLOUT)
        else:
            if fd in self.writers:
                self.writers.discard(fd)
                self.epoll.modify(fd, _EPOLLIN)
            if client.close_after_reply:
                self._close(client)

    def _close(self, client: Client) -> None:
        fd = client.fd
        if self.clients.pop(fd, None) is None:
            return
        self.writers.discard(fd)
        try:
            self.epoll.unregister(fd)
        except (OSError, ValueError):
            pass
        sock = self.sockets.pop(fd)
        if client.tls is not None:
            try:
                sock.send(client.tls.close_notify())  # best effort; the socket closes either way
            except OSError:
                pass
        sock.close()
        self.node.clients.pop(client.id, None)
        self.node.client_closed(client)


    # ------------------------------------------------------------ TLS clients (tls-port)

    def replace_listeners(self, sockets: Iterable[socket.socket]) -> None:
        """CONFIG SET port/bind: serve ``sockets`` as the plain listeners, close the old ones (clients stay)."""
        for fd in [fd for fd in self.listeners if fd not in self.tls_fds]:
            sock = self.listeners.pop(fd)
            try:
                self.epoll.unregister(fd)
            except (OSError, ValueError):
                pass
            sock.close()
        for sock in sockets:
            self.listeners[sock.fileno()] = sock
            self.epoll.register(sock.fileno(), _EPOLLIN)

    def replace_tls_listeners(self, sockets: Iterable[socket.socket]) -> None:
        """CONFIG SET tls-port: serve ``sockets`` as the TLS listeners, close the old ones (clients stay)."""
        for fd in list(self.tls_fds):
            sock = self.listeners.pop(fd, None)
            try:
                self.epoll.unregister(fd)
            except (OSError, ValueError):
                pass
            if sock is not None:
                sock.close()
        self.tls_fds = set()
        for sock in sockets:
            fd = sock.fileno()
            self.tls_fds.add(fd)
            self.listeners[fd] = sock
            self.epoll.register(fd, _EPOLLIN)

    def _recv_tls(self, client: Client) -> bytes | None:
        """Read the socket, advance the TLS session, return the plaintext (None/b"" if none yet).

        Records TLS itself must send (handshake, tickets) are written at once.
        A failed handshake (a plain-text client on the TLS port, an untrusted
        or missing client certificate) is logged and the connection closed.
        """
        try:
            raw = os.read(client.fd, _READ_SIZE)
        except BlockingIOError:
            return None
        except OSError:
            self._close(client)
            return None
        if not raw:
            self._close(client)
            return None
        tls = client.tls
        try:
            data = tls.receive(raw)
        except TLSClosed:
            self._close(client)
            return None
        except ssl.SSLError as exc:
            what = "accepting a client connection" if not tls.ready else "reading from a TLS client"
            self.node.logger.warning(
                f"Error {what}: {exc.reason or exc} (addr={client.addr} laddr={client.laddr})")
            if tls.raw_out:  # the alert, so the peer learns why (best effort)
                try:
                    os.write(client.fd, tls.raw_out)
                except OSError:
                    pass
                tls.raw_out.clear()
            self._close(client)
            return None
        if tls.raw_out:
            self._flush_tls(client)
            if self.clients.get(client.fd) is not client:
                return None
        return data

    def _flush_tls(self, client: Client) -> None:
        """``_flush`` for a TLS client: encrypt the output in bounded steps, write the records."""
        tls = client.tls
        out = client.out
        fd = client.fd
        raw = tls.raw_out
        stats = self.node.stats
        if out or raw:
            stats.total_writes_processed += 1
        while True:
            if out and tls.ready and len(raw) < _READ_SIZE:
                stats.total_net_output_bytes += tls.encrypt(out)
            if not raw:
                break
            try:
                sent = os.write(fd, raw)
            except BlockingIOError:
                break
            except OSError:
                self._close(client)
                return
            if sent == len(raw):
                raw.clear()
            else:
                del raw[:sent]
                break
        if raw or (out and tls.ready):
            if fd not in self.writers:
                self.writers.add(fd)
                self.epoll.modify(fd, _EPOLLIN | _EPOLLOUT)
        else:
            if fd in self.writers:
                self.writers.discard(fd)
                self.epoll.modify(fd, _EPOLLIN)
            if client.close_after_reply and not out:
                self._close(client)


def _format_addr(addr) -> str:
    if isinstance(addr, tuple):
        host, port = addr[0], addr[1]
        if ":" in host:
            return f"[{host}]:{port}"  # IPv6, bracketed as Redis prints it
        return f"{host}:{port}"
    return f"{addr}:0"
