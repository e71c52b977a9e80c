"""The replica's side: the link to our primary, as one trio task.

``MasterLink.run`` loops: connect, handshake (PING, AUTH, REPLCONF
listening-port / ip-address, REPLCONF capa eof capa psync2, PSYNC), then
either load the snapshot (full resync) or continue (partial), then apply the
stream until the connection fails, and reconnect after a second.

The snapshot is read whole, parsed into fresh databases, and swapped in only
when it loaded completely: a truncated or corrupt RDB leaves the old data and
the link retries. Applying the stream runs each command through the
dispatcher as the master client (flag ``M``, never redirected, never refused
for being on a read-only replica, replies discarded), counts the bytes
processed (the replica's offset), and hands the same bytes to our own backlog
and sub-replicas. ``REPLCONF GETACK`` is answered at once, and ``REPLCONF ACK
<offset>`` is sent every second.
"""

from __future__ import annotations

import time

import hiredis
import trio

from node.propagation import encode_command
from node.resp import ProtocolError

__all__ = ["LinkError", "MasterLink", "parse_stream"]

_ACK_EVERY_S = 1.0
_RETRY_S = 1.0
_QUICK_RETRY_S = 0.05
_FAST_MAX = 1 << 20  # parse_stream's hiredis path: buffers up to this size


class LinkError(Exception):
    pass


def parse_stream(buf, pos: int):
    """Complete commands in ``buf`` from ``pos``: yields ``(argv, end)``; stops at an incomplete one.

    The stream is RESP arrays of bulk strings; a bare newline (keep-alive) or an
    inline line is accepted too. Raises ProtocolError on anything else.

    hiredis parses in C; each command it returns is taken only if the bytes at
    ``pos`` are exactly its canonical encoding, so ``end`` (the replica's offset)
    is exact. Anything else -- an incomplete command, an inline line, a
    non-canonical length -- hands over to the byte-by-byte parser from there.
    A buffer past ``_FAST_MAX`` (a big value still arriving in 64 KB reads) goes
    to the byte parser as it is: copying it into hiredis on every read would
    make a big value's transfer quadratic.
    """
    if len(buf) - pos > _FAST_MAX:
        yield from _parse_stream_exact(buf, pos)
        return
    data = buf if type(buf) is bytes else bytes(buf)
    size = len(data)
    if pos < size and data[pos] == 42:  # '*'
        reader = hiredis.Reader()
        reader.feed(data, pos)
        starts = data.startswith
        while pos < size and data[pos] == 42:
            try:
                argv = reader.gets()
                if type(argv) is not list:
                    break
                encoded = encode_command(argv)
            except Exception:  # noqa: BLE001 - whatever hiredis or the encoder refuses, the exact parser judges
                break
            if not starts(encoded, pos):
                break
            pos += len(encoded)
            yield argv, pos
    yield from _parse_stream_exact(data, pos)


def _parse_stream_exact(buf, pos: int):
    """parse_stream's reference: one byte range at a time, in Python."""
    size = len(buf)
    find = buf.find
    while pos < size:
        if buf[pos] != 42:  # '*'
            nl = find(b"\n", pos)
            if nl < 0:
                return
            line = bytes(buf[pos:nl]).strip()
            pos = nl + 1
            if line:
                yield line.split(), pos
            continue
        nl = find(b"\r\n", pos)
        if nl < 0:
            return
        try:
            count = int(buf[pos + 1:nl])
        except ValueError:
            raise ProtocolError("invalid multibulk length") from None
        p = nl + 2
        argv = []
        for _ in range(count):
            if p >= size:
                return
            if buf[p] != 36:  # '$'
                raise ProtocolError(f"expected '$', got '{chr(buf[p])}'")
            nl = find(b"\r\n", p)
            if nl < 0:
                return
            try:
                length = int(buf[p + 1:nl])
            except ValueError:
                raise ProtocolError("invalid bulk length") from None
            start = nl + 2
            end = start + length
            if end + 2 > size:
                return
            argv.append(bytes(buf[start:end]))
            p = end + 2
        yield argv, p
        pos = p


def _ack(offset: int) -> bytes:
    text = b"%d" % offset
    return b"*3\r\n$8\r\nREPLCONF\r\n$3\r\nACK\r\n$%d\r\n%b\r\n" % (len(text), text)


class MasterLink:
    def __init__(self, manager, host: str, port: int) -> None:
        self.manager = manager
        self.node = manager.node
        self.host = host
        self.port = port
        #: ROLE's words: connect, connecting, handshake, sync, connected.
        self.state = "connect"
        self.scope = trio.CancelScope()
        self.started = False
        self.stopped = False
        self.client = None  # the master client while connected
        self.stream = None
        self.buf = bytearray()
        self.last_io_ms = 0
        self.sync_in_progress = False
        self.sync_total = 0
        self.sync_read = 0
        self.read_offset = 0  # slave_read_repl_offset

    # ------------------------------------------------------------ control

    def stop(self) -> None:
        self.stopped = True
        self.scope.cancel()
        self._drop_client()

    def client_killed(self) -> None:
        """CLIENT KILL of the master client: drop the connection, reconnect as usual."""
        self.client = None
        stream = self.stream
        if stream is not None:
            try:
                stream.socket.close()
            except Exception:  # noqa: BLE001
                pass

    def _drop_client(self) -> None:
        client = self.client
        self.client = None
        if client is not None:
            self.node.clients.pop(client.id, None)
            if "M" in client.flags:
                client.flags = client.flags.replace("M", "")

    async def run(self) -> None:
        if self.started:
            # start_link's spawn and the cron's start-up check can both queue this task before either
            # runs; the second must not reuse the cancel scope.
            return
        self.started = True
        with self.scope:
            while not self.stopped:
                try:
                    await self._session()
                except (OSError, LinkError, ProtocolError, trio.BrokenResourceError,
                        trio.ClosedResourceError, trio.TooSlowError, ValueError) as exc:
                    if not self.stopped:
                        self.node.logger.warning(f"MASTER <-> REPLICA sync: {type(exc).__name__}: {exc}")
                except Exception as exc:  # noqa: BLE001 - a bug here must cost the link, never the node
                    import traceback

                    self.node.logger.warning("Replication link error: " + "".join(
                        traceback.format_exception(exc)).replace("\n", " | "))
                finally:
                    was_connected = self.state == "connected"
                    self.state = "connect"
                    self.sync_in_progress = False
                    self._drop_client()
                    if self.stream is not None:
                        with trio.CancelScope(shield=True):
                            try:
                                await self.stream.aclose()
                            except Exception:  # noqa: BLE001
                                pass
                        self.stream = None
                    if was_connected:
                        self.manager.link_state_changed(False)
                        self.node.logger.notice("Connection with master lost.")
                # A link that was up and broke is retried at once (a short blip costs little); a
                # primary that cannot be reached or synced from is retried once a second, as Redis's cron.
                await trio.sleep(_QUICK_RETRY_S if was_connected else _RETRY_S)

    # ------------------------------------------------------------ I/O

    async def _fill(self) -> None:
        data = await self.stream.receive_some(65536)
        if not data:
            raise LinkError("the primary closed the connection")
        self.buf += data
        self.last_io_ms = self.node.clock.wall_ms()

    async def _line(self, skip_newlines: bool = True) -> bytes:
        while True:
            nl = self.buf.find(b"\n")
            if nl >= 0:
                line = bytes(self.buf[:nl]).rstrip(b"\r")
                del self.buf[:nl + 1]
                if not line and skip_newlines:
                    continue  # keep-alive while the primary prepares the snapshot
                return line
            await self._fill()

    async def _keepalive_line(self, timeout: float) -> bytes:
        """The next non-empty line; each keep-alive newline restarts the ``timeout``."""
        while True:
            with trio.fail_after(timeout):
                line = await self._line(skip_newlines=False)
            if line:
                return line

    async def _command(self, *argv) -> bytes:
        from node.propagation import encode_command

        await self.stream.send_all(encode_command([a if isinstance(a, bytes) else str(a).encode() for a in argv]))
        return await self._line()

    # ------------------------------------------------------------ session

    async def _session(self) -> None:
        from node.propagation import encode_command

        node = self.node
        config = node.config
        manager = self.manager
        timeout = config["repl-timeout"]
        self.state = "connecting"
        self.buf = bytearray()
        with trio.fail_after(timeout):
            self.stream = await trio.open_tcp_stream(self.host, self.port,  # from bind-source-addr, as Redis
                                                     local_address=config["bind-source-addr"] or None)
        node.logger.notice("MASTER <-> REPLICA sync started")
        self.state = "handshake"  # (ROLE's word while PING/AUTH/REPLCONF/PSYNC are under way)
        with trio.fail_after(timeout):
            reply = await self._command(b"PING")
            if reply.startswith(b"-") and not (reply.startswith(b"-NOAUTH") or reply.startswith(b"-NOPERM")
                                               or reply.startswith(b"-ERR operation not permitted")):
                raise LinkError(f"Error reply to PING from master: '{reply.decode('utf-8', 'replace')}'")
            auth = config["masterauth"]
            if auth:
                user = config["masteruser"]
                reply = await (self._command(b"AUTH", user, auth) if user else self._command(b"AUTH", auth))
                if reply.startswith(b"-"):
                    raise LinkError(f"Unable to AUTH to MASTER: {reply.decode('utf-8', 'replace')}")
            port = config["replica-announce-port"] or node.tcp_port
            reply = await self._command(b"REPLCONF", b"listening-port", port)
            if reply.startswith(b"-"):
                node.logger.notice(f"(Non critical) Master does not understand REPLCONF listening-port: "
                                   f"{reply.decode('utf-8', 'replace')}")
            if config["replica-announce-ip"]:
                await self._command(b"REPLCONF", b"ip-address", config["replica-announce-ip"])
            reply = await self._command(b"REPLCONF", b"capa", b"eof", b"capa", b"psync2", b"capa", b"shoal-snap")
            if manager.backlog is not None or manager.master_repl_offset:
                replid, offset = manager.replid, manager.master_repl_offset + 1
                node.logger.notice(f"Trying a partial resynchronization (request {replid}:{offset}).")
            else:
                replid, offset = "?", -1
                node.logger.notice("Partial resynchronization not possible (no cached master)")
            await self.stream.send_all(encode_command([b"PSYNC", replid.encode(), str(offset).encode()]))
        # The primary may wait for a fork (repl-diskless-sync-delay, another child running) and sends
        # a newline a second meanwhile: each one restarts the timeout.
        reply = await self._keepalive_line(timeout)
        if reply.startswith(b"+FULLRESYNC"):
            parts = reply.split()
            if len(parts) < 3:
                raise LinkError(f"bad FULLRESYNC reply '{reply.decode('utf-8', 'replace')}'")
            new_replid = parts[1].decode()
            new_offset = int(parts[2])
            node.logger.notice(f"Full resync from master: {new_replid}:{new_offset}")
            self.state = "sync"
            await self._full_sync(new_replid, new_offset)
        elif reply.startswith(b"+CONTINUE"):
            parts = reply.split()
            node.logger.notice("Successful partial resynchronization with master.")
            if len(parts) > 1:
                new_replid = parts[1].decode()
                if new_replid != manager.replid:
                    manager.replid2 = manager.replid
                    manager.second_replid_offset = manager.master_repl_offset + 1
                    manager.set_replid(new_replid)
                    manager.disconnect_replicas()
                    node.logger.notice(f"Master replication ID changed to {new_replid}")
            if manager.backlog is None:
                manager.create_backlog()
        elif reply.startswith(b"-NOMASTERLINK") or reply.startswith(b"-LOADING"):
            raise LinkError(f"Master is currently unable to PSYNC but should be in the future: "
                            f"{reply.decode('utf-8', 'replace')}")
        else:
            raise LinkError(f"Unexpected reply to PSYNC from master: {reply.decode('utf-8', 'replace')}")
        self._connected()
        await self._stream_loop()

    async def _full_sync(self, new_replid: str, new_offset: int) -> None:
        node = self.node
        timeout = node.config["repl-timeout"]
        self.sync_in_progress = True
        self.sync_total = self.sync_read = 0
        header = await self._keepalive_line(timeout)
        if not header.startswith(b"$"):
            if header.startswith(b"-"):
                raise LinkError(f"MASTER aborted replication with an error: {header.decode('utf-8', 'replace')}")
            raise LinkError(f"Bad protocol from MASTER, the first byte is not '$' (we received "
                            f"'{header[:64].decode('utf-8', 'replace')}')")
        if header.startswith(b"$EOF:"):
            mark = header[5:]
            if len(mark) != 40:
                raise LinkError("bad EOF mark")
            node.logger.notice("MASTER <-> REPLICA sync: receiving streamed RDB from master with EOF to parser")
            scanned = 0
            while True:
                at = self.buf.find(mark, max(0, scanned - 40))
                if at >= 0:
                    break  # what follows the mark is already the stream
                scanned = len(self.buf)
                self.sync_read = scanned
                with trio.fail_after(timeout):
                    await self._fill()
            rdb = bytes(self.buf[:at])
            del self.buf[:at + 40]
        else:
            size = int(header[1:])
            self.sync_total = size
            node.logger.notice(f"MASTER <-> REPLICA sync: receiving {size} bytes from master to disk")
            while len(self.buf) < size:
                self.sync_read = len(self.buf)
                with trio.fail_after(timeout):
                    await self._fill()
            rdb = bytes(self.buf[:size])
            del self.buf[:size]
        self._load(rdb, new_replid, new_offset)
        self.sync_in_progress = False

    def _load(self, rdb: bytes, new_replid: str, new_offset: int) -> None:
        from node.engine.database import Database
        from node.persistence.snapshot import LoadError, load_dataset
        from node.replication.snapshot import MAGIC, SnapshotError, load_snapshot

        node = self.node
        manager = self.manager
        node.logger.notice("MASTER <-> REPLICA sync: Loading DB in memory")
        fresh = [Database(i, node.clock) for i in range(len(node.dbs))]
        libraries: list = []
        stream_db = 0

        def header(aux, functions) -> None:
            nonlocal stream_db
            libraries.extend(functions)
            try:
                stream_db = int(aux.get(b"repl-stream-db", b"0"))
            except ValueError:
                stream_db = 0
            if not 0 <= stream_db < len(fresh):
                stream_db = 0

        try:
            if rdb.startswith(MAGIC):
                libraries, stream_db = load_snapshot(rdb, fresh, node.config)
            else:
                load_dataset(rdb, fresh, node.clock.wall_ms(), limits=node.config, drop_expired=False,
                             on_header=header)
        except SnapshotError as exc:
            node.logger.warning(f"Failed trying to load the MASTER synchronization snapshot: {exc}; "
                                "keeping the old data")
            raise LinkError("bad snapshot from the primary") from None
        except LoadError as exc:
            node.logger.warning(f"Failed trying to load the MASTER synchronization DB from socket: "
                                f"{exc.message} (offset {exc.offset}); keeping the old data")
            raise LinkError("bad RDB from the primary") from None
        node.logger.notice("MASTER <-> REPLICA sync: Flushing old data")
        from node.tracking import invalidate_on_flush

        invalidate_on_flush(node)  # CLIENT TRACKING: the old data goes, as after FLUSHALL
        for i, db in enumerate(node.dbs):
            node.touch_watched_in_db(i, only_existing=False)
            tracked = db.access is not None
            db.swap_contents(fresh[i])
            if tracked and db.access is None:
                db.access = {}  # LRU/LFU tracking stays on (node.memory); the loaded keys start fresh
            db.dirty += 1
        if libraries:
            try:
                from node.scripting.engine import get_scripting

                scripting = get_scripting(node)
                flush = getattr(scripting, "flush_functions", None)
                if flush is not None:
                    flush()
                for code in libraries:
                    try:
                        scripting.load_library(code, True)
                    except Exception as exc:  # noqa: BLE001
                        node.logger.warning(f"Failed loading a function library from the primary: {exc}")
            except Exception as exc:  # noqa: BLE001
                node.logger.warning(f"Functions from the primary not loaded: {exc}")
        manager.set_replid(new_replid)
        manager.clear_replid2()
        manager.master_repl_offset = new_offset
        manager.create_backlog()
        manager.stream_db = stream_db  # (repl-stream-db: a chained replica's stream selects nothing anew)
        manager.disconnect_replicas()  # sub-replicas must resync to the new history
        self.read_offset = new_offset
        node.logger.notice("MASTER <-> REPLICA sync: Finished with success")
        aof = getattr(node, "aof", None)
        if aof is not None and node.config["appendonly"]:
            # As restartAOFAfterSYNC: the AOF must describe the new dataset, so rewrite it.
            node.logger.notice(f"Background AOF rewrite after the sync: {aof.bgrewriteaof(False)}")

    def _connected(self) -> None:
        from node.client import Client

        node = self.node
        try:
            local = self.stream.socket.getsockname()
            laddr = f"{local[0]}:{local[1]}"
        except (OSError, AttributeError, IndexError):
            laddr = ""
        client = Client(node, node.new_client_id(), -1, f"{self.host}:{self.port}", laddr)
        client.flags = "M"
        client.authenticated = True
        client.acl_user = None  # the master's stream is not subject to ACLs (Redis: a user-less client)
        client.routed = False
        client.deny_blocking = True
        client.select(self.manager.stream_db)  # a partial resync continues where the stream was
        client.refresh_gate()
        self.client = client
        node.clients[client.id] = client
        self.state = "connected"
        self.read_offset = self.manager.master_repl_offset
        self.last_io_ms = node.clock.wall_ms()
        self.manager.link_state_changed(True)
        node.logger.notice("MASTER <-> REPLICA sync: the link is up")

    async def _stream_loop(self) -> None:
        node = self.node
        manager = self.manager
        last_ack = 0.0
        # Bytes that arrived with the snapshot belong to the stream.
        if self.buf:
            await self._apply()
        while True:
            now = time.monotonic()
            if now - last_ack >= _ACK_EVERY_S:
                last_ack = now
                await self.stream.send_all(_ack(manager.master_repl_offset))
            with trio.move_on_after(_ACK_EVERY_S):
                data = await self.stream.receive_some(65536)
                if not data:
                    raise LinkError("the primary closed the connection")
                if self.client is None or self.client.killed:  # CLIENT KILL TYPE master
                    raise LinkError("the master client was killed")
                self.buf += data
                self.last_io_ms = node.clock.wall_ms()
                await self._apply()
                continue
            if self.client is None or self.client.killed:  # CLIENT KILL TYPE master
                raise LinkError("the master client was killed")
            if node.clock.wall_ms() - self.last_io_ms > node.config["repl-timeout"] * 1000:
                raise LinkError("MASTER timeout: no data nor PING received...")

    async def _apply(self) -> None:
        """Run every complete command buffered, proxy its bytes, answer GETACK."""
        from node.dispatch import execute

        node = self.node
        manager = self.manager
        client = self.client
        buf = self.buf
        done = 0
        send_ack = False
        blocking = node.blocking
        dbs = node.dbs
        out = client.out
        for db in dbs:
            db.expire_policy = 2  # the master client sees keys its primary has not expired yet
        try:
            for argv, end in parse_stream(buf, 0):
                done = end
                if not argv:
                    continue
                name = argv[0].lower()
                if name == b"replconf" and len(argv) >= 2 and argv[1].lower() == b"getack":
                    send_ack = True
                    continue
                execute(client, argv)
                out.clear()
                if blocking.ready:
                    node.serve_blocked()
        finally:
            for db in dbs:
                db.expire_policy = 1
            manager.stream_db = client.db_index
            if done:
                manager.feed_stream(bytes(buf[:done]))
                del buf[:done]
        self.read_offset = manager.master_repl_offset + len(buf)
        if node.pending_write or node.unblocked or node.pending_close:
            node.flush_clients()
        if send_ack:
            await self.stream.send_all(_ack(manager.master_repl_offset))
