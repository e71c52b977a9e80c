"""MIGRATE: move keys to another node as RESTORE commands carrying RDB-10 DUMP payloads.

This is what ``redis-cli --cluster reshard`` and ``rebalance`` use to move
a slot's keys, so its replies and error texts follow Redis 7.0's
``migrateCommand`` exactly:

* ``+NOKEY`` when none of the keys exists; ``+OK`` when every key was
  restored on the target (and, without COPY, deleted here);
* ``-IOERR error or timeout connecting to the client`` / ``... writing to
  target instance`` / ``... reading to target instance`` on I/O trouble;
* ``-ERR Target instance replied with error: <its error>`` (for example
  ``BUSYKEY Target key name already exists.`` without REPLACE). Keys the
  target did accept are still deleted here: they now live there.

Connections are kept per ``host:port`` and reused for 10 seconds like Redis's
migrate cached sockets, with the SELECTed database remembered so a reshard of
thousands of batches opens one connection. A cached connection that turns
out to be dead is retried once on a fresh socket, as Redis does, unless some
keys may already have been moved.

The transfer is synchronous, as in Redis: the node waits (at most ``timeout``
ms per I/O step) while the payloads travel over loopback. Keys are
serialised, sent and deleted inside one command, so no other client can
write to a key between its DUMP and its deletion -- no write is ever lost to
a move. In cluster mode the payloads go as RESTORE-ASKING, which the target
accepts for a slot it is importing.

The deletions are propagated (replicas and the AOF) as one ``DEL`` of the
moved keys, as Redis rewrites the command.
"""

from __future__ import annotations

import socket
import time

import hiredis
import trio

from node.commands.args import SYNTAX_ERROR, to_int_or_none
from node.commands.table import command
from node.notify import GENERIC, notify
from node.persistence.rdb import dump_payload
from node.propagation import encode_command, prevent
from node.resp import NO_REPLY, OK, ErrorReply, SimpleString, write_reply

__all__ = ["MigrateConnections"]

_NOKEY = SimpleString(b"NOKEY")
_IDLE_CLOSE_S = 10.0
_NOT_INTEGER = ErrorReply("ERR value is not an integer or out of range")


def _migrate_keys(argv: list[bytes]) -> list[bytes]:
    """Key positions: argv[3], or everything after KEYS when argv[3] is empty (Redis's migrateGetKeys)."""
    if len(argv) > 6:
        i = 6
        while i < len(argv):
            word = argv[i].lower()
            if word == b"auth":
                i += 2
                continue
            if word == b"auth2":
                i += 3
                continue
            if word == b"keys" and argv[3] == b"":
                return argv[i + 1:]
            i += 1
    return [argv[3]] if len(argv) > 3 else []


class _CachedLink:
    __slots__ = ("sock", "last_db", "last_use")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.last_db = -1
        self.last_use = time.monotonic()


class MigrateConnections:
    """Sockets to MIGRATE targets, reused while used at least every 10 s (node.migrate_links)."""

    def __init__(self) -> None:
        self.links: dict[tuple[str, int], _CachedLink] = {}

    def get(self, host: str, port: int, timeout_s: float) -> tuple[_CachedLink, bool]:
        """The link to ``host:port`` and whether it was reused (False: freshly connected)."""
        self.close_idle()
        key = (host, port)
        link = self.links.get(key)
        if link is not None:
            return link, True
        sock = socket.create_connection((host, port), timeout=timeout_s)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        link = _CachedLink(sock)
        self.links[key] = link
        return link, False

    def drop(self, host: str, port: int) -> None:
        link = self.links.pop((host, port), None)
        if link is not None:
            link.sock.close()

    def close_idle(self) -> None:
        now = time.monotonic()
        for key, link in list(self.links.items()):
            if now - link.last_use > _IDLE_CLOSE_S:
                link.sock.close()
                del self.links[key]

    def close_all(self) -> None:
        for link in self.links.values():
            link.sock.close()
        self.links.clear()


def _links(node) -> MigrateConnections:
    links = getattr(node, "migrate_links", None)
    if links is None:
        links = node.migrate_links = MigrateConnections()
    return links


def _parse(argv: list[bytes]):
    copy = replace = False
    auth = None
    first_key = 3
    num_keys = 1
    i = 6
    while i < len(argv):
        word = argv[i].lower()
        more = len(argv) - i - 1
        if word == b"copy":
            copy = True
        elif word == b"replace":
            replace = True
        elif word == b"auth":
            if not more:
                raise SYNTAX_ERROR
            i += 1
            auth = (None, argv[i])
        elif word == b"auth2":
            if more < 2:
                raise SYNTAX_ERROR
            auth = (argv[i + 1], argv[i + 2])
            i += 2
        elif word == b"keys":
            if argv[3] != b"":
                raise ErrorReply(
                    "ERR When using MIGRATE KEYS option, the key argument must be set to the empty string"
                )
            first_key = i + 1
            num_keys = len(argv) - i - 1
            break
        else:
            raise SYNTAX_ERROR
        i += 1
    timeout = to_int_or_none(argv[5])
    if timeout is None:
        raise _NOT_INTEGER
    dbid = to_int_or_none(argv[4])
    if dbid is None:
        raise _NOT_INTEGER
    if timeout <= 0:
        timeout = 1000
    port = to_int_or_none(argv[2])
    if port is None:
        raise _NOT_INTEGER
    return copy, replace, auth, argv[first_key:first_key + num_keys], timeout, dbid, port


def _read_replies(sock: socket.socket, count: int, deadline_step_s: float) -> list:
    reader = hiredis.Reader(notEnoughData=False)
    replies = []
    sock.settimeout(deadline_step_s)
    while len(replies) < count:
        reply = reader.gets()
        if reply is False:
            data = sock.recv(65536)
            if not data:
                raise OSError("connection closed by target")
            reader.feed(data)
            continue
        replies.append(reply)
    return replies


@command("migrate", -6, "write movablekeys", (3, 3, 1), group="generic", key_finder=_migrate_keys,
         summary="Atomically transfer a key from a Redis instance to another one.", since="2.6.0",
         complexity="This command actually executes a DUMP+DEL in the source instance, and a RESTORE in the "
                    "target instance. See the pages of these commands for time complexity. Also an O(N) data "
                    "transfer between the two instances is performed.",
         tips=("nondeterministic_output",), acl=("keyspace", "dangerous"))
def migrate(client, argv):
    copy, replace, auth, keys, timeout_ms, dbid, port = _parse(argv)
    host = argv[1].decode("utf-8", "surrogateescape")
    node = client.node
    db = client.db
    # Keys that exist now (expired ones count as missing), with their absolute expiry.
    present = []
    for key in keys:
        value = db.lookup(key)
        if value is not None:
            present.append((key, value, db.get_expire(key)))
    if not present:
        return _NOKEY
    if node.spawn is not None and not client.deny_blocking and any(_is_big(value) for _, value, _ in present):
        return _start_streaming(client, host, port, dbid, timeout_ms, copy, replace, auth, present)
    links = _links(node)
    config = node.config
    compress = bool(config["rdbcompression"])
    list_fill = config["list-max-listpack-size"]
    restore = b"RESTORE-ASKING" if node.cluster_enabled else b"RESTORE"
    now = db.now()
    timeout_s = timeout_ms / 1000
    attempts = 2
    while True:
        attempts -= 1
        try:
            link, reused = links.get(host, port, timeout_s)
        except ConnectionRefusedError:
            # Redis connects without blocking and only learns of the refusal when it writes.
            return ErrorReply("IOERR error or timeout writing to target instance")
        except OSError:
            return ErrorReply("IOERR error or timeout connecting to the client")
        out = []
        expected = 0
        if auth is not None:
            user, password = auth
            out.append(encode_command([b"AUTH", password] if user is None else [b"AUTH", user, password]))
            expected += 1
        select = link.last_db != dbid
        if select:
            out.append(encode_command([b"SELECT", b"%d" % dbid]))
            expected += 1
        sent_keys = []
        for key, value, expire_at in present:
            ttl = 0
            if expire_at is not None:
                ttl = expire_at - now
                if ttl < 1:
                    ttl = 1  # about to expire: Redis sends 1 ms rather than no TTL
            command_argv = [restore, key, b"%d" % ttl,
                            dump_payload(value, compress=compress, list_fill=list_fill)]
            if replace:
                command_argv.append(b"REPLACE")
            out.append(encode_command(command_argv))
            sent_keys.append(key)
        try:
            link.sock.settimeout(timeout_s)
            link.sock.sendall(b"".join(out))
        except OSError:
            links.drop(host, port)
            if reused and attempts > 0:
                continue
            return ErrorReply("IOERR error or timeout writing to target instance")
        try:
            replies = _read_replies(link.sock, expected + len(sent_keys), timeout_s)
        except (OSError, hiredis.ProtocolError):
            links.drop(host, port)
            if reused and attempts > 0:
                continue
            return ErrorReply("IOERR error or timeout reading to target instance")
        break
    link.last_use = time.monotonic()
    # Redis's rule: a key is moved only if AUTH, SELECT and its own RESTORE all succeeded;
    # the first error seen is the one reported.
    prefix_error = next((reply for reply in replies[:expected] if isinstance(reply, hiredis.ReplyError)), None)
    error = prefix_error
    moved = []
    for key, reply in zip(sent_keys, replies[expected:]):
        if isinstance(reply, hiredis.ReplyError):
            error = error or reply
        elif prefix_error is None:
            moved.append(key)
    link.last_db = dbid if error is None else -1
    if not copy and moved:
        for key in moved:
            if db.delete(key):
                notify(client, GENERIC, b"del", key)
        from node.propagation import rewrite

        rewrite(client, b"DEL", *moved)
    else:
        prevent(client)
    if error is not None:
        text = str(error)
        return ErrorReply(f"ERR Target instance replied with error: {text}")
    return OK


# ---------------------------------------------------------------- big keys, in the background
#
# A key with many elements is not sent as one DUMP payload: serialising a
# million-field hash, shipping it and RESTOREing it would stop both nodes for
# seconds. Instead the MIGRATE client waits (like a blocked client) while a
# background task rebuilds the key on the target in chunks of ``_CHUNK``
# elements (HSET/RPUSH/SADD/ZADD, each after ASKING in cluster mode), yielding
# to the event loop between chunks so every other client keeps being served.
# Until the move ends, commands touching the keys being moved wait (node.pause
# holds them): nothing can be written to a key between its copy and its
# deletion. The key is built under its final name on the target; clients
# only reach it there (through ASK) once it has left this node. A failure
# part-way deletes the partial copy on the target and keeps the key here.

_CHUNK = 1000
_BIG = 8 * _CHUNK


def _is_big(value) -> bool:
    kind = type(value).__name__
    return kind in ("HashValue", "ListValue", "SetValue", "ZSet") and len(value) > _BIG


def _chunks(key: bytes, value):
    """Commands that rebuild ``value`` at ``key``, ``_CHUNK`` elements each."""
    # Iterated lazily, with no up-front copy (a million-element copy is itself a stall): the key
    # is held for the whole move, so nothing mutates the value while its chunks are read.
    kind = type(value).__name__
    if kind == "HashValue":
        items = iter(value.items())
        verb = b"HSET"
    elif kind == "ListValue":
        items = iter(value)
        verb = b"RPUSH"
    elif kind == "SetValue":
        items = iter(value)
        verb = b"SADD"
    else:
        items = ((_score_text(score), member) for member, score in value.items())
        verb = b"ZADD"
    while True:
        batch = []
        for _ in range(_CHUNK):
            try:
                item = next(items)
            except StopIteration:
                break
            if type(item) is tuple:
                batch.extend(item)
            else:
                batch.append(item)
        if not batch:
            return
        yield [verb, key, *batch]


def _score_text(score: float) -> bytes:
    if score == float("inf"):
        return b"inf"
    if score == float("-inf"):
        return b"-inf"
    return b"%.17g" % score


class _Suspended:
    """``client.blocked`` while its MIGRATE runs in the background (its pipeline waits behind it)."""

    __slots__ = ("argv", "keys")
    #: Not in the blocking registry: a disconnect just drops the reply (see Node.client_closed).
    external = True

    def __init__(self) -> None:
        self.argv = None
        self.keys = ()


def _start_streaming(client, host, port, dbid, timeout_ms, copy, replace, auth, present):
    node = client.node
    db_index = client.db_index
    keys = [key for key, _, _ in present]
    node.pause.hold_keys(db_index, keys)
    state = _Suspended()
    state.keys = keys
    client.blocked = state
    prevent(client)
    node.spawn(_stream_task, client, state, host, port, dbid, timeout_ms, copy, replace, auth, present, db_index)
    return NO_REPLY


class _Link:
    """One trio connection to the target, reading replies with hiredis."""

    def __init__(self, stream, timeout_s: float) -> None:
        self.stream = stream
        self.timeout_s = timeout_s
        self.reader = hiredis.Reader(notEnoughData=False)

    async def call(self, *commands) -> list:
        with trio.fail_after(self.timeout_s):
            await self.stream.send_all(b"".join(encode_command(argv) for argv in commands))
            replies = []
            while len(replies) < len(commands):
                reply = self.reader.gets()
                if reply is False:
                    data = await self.stream.receive_some(65536)
                    if not data:
                        raise OSError("connection closed by target")
                    self.reader.feed(data)
                    continue
                replies.append(reply)
            return replies


async def _stream_task(client, state, host, port, dbid, timeout_ms, copy, replace, auth, present, db_index):
    node = client.node
    moved: list[bytes] = []
    try:
        try:
            reply = await _stream_keys(node, host, port, dbid, timeout_ms, replace, auth, present, moved)
        except Exception as exc:  # a bug costs this MIGRATE an error, never the node
            from node.commands.table import lookup
            from node.dispatch import internal_error

            reply = internal_error(client, lookup(b"migrate"), exc)
        # Delete the moved keys *before* letting the held commands run: a write that waited
        # for the move must land after the deletion, not vanish with the old copy.
        db = node.dbs[db_index]
        if not copy and moved:
            deleted = []
            for key in moved:
                if db.delete(key):
                    deleted.append(key)
                    notify(client, GENERIC, b"del", key)
            if deleted:
                node.propagation.add(db_index, [b"DEL", *deleted])
    finally:
        node.pause.release_keys(db_index, [key for key, _, _ in present])
    if client.blocked is state:
        client.blocked = None
        if isinstance(reply, ErrorReply):
            from node.dispatch import reply_error

            reply_error(client, reply)
        else:
            write_reply(client.out, reply, client.resp3)
        node.unblocked.append(client)
        node.pending_write.add(client)
    node.flush_clients()


async def _stream_keys(node, host, port, dbid, timeout_ms, replace, auth, present, moved):
    timeout_s = timeout_ms / 1000
    asking = [b"ASKING"] if node.cluster_enabled else None
    config = node.config
    try:
        with trio.fail_after(timeout_s):
            stream = await trio.open_tcp_stream(host, port)
    except ConnectionRefusedError:
        return ErrorReply("IOERR error or timeout writing to target instance")
    except (OSError, trio.TooSlowError):
        return ErrorReply("IOERR error or timeout connecting to the client")
    link = _Link(stream, timeout_s)

    async def run(argv):
        """One command on the target (after ASKING in cluster mode); its reply, errors included."""
        if asking is None:
            return (await link.call(argv))[0]
        return (await link.call(asking, argv))[1]

    try:
        async with stream:
            if auth is not None:
                user, password = auth
                reply = (await link.call([b"AUTH", password] if user is None else [b"AUTH", user, password]))[0]
                if isinstance(reply, hiredis.ReplyError):
                    return ErrorReply(f"ERR Target instance replied with error: {reply}")
            reply = (await link.call([b"SELECT", b"%d" % dbid]))[0]
            if isinstance(reply, hiredis.ReplyError):
                return ErrorReply(f"ERR Target instance replied with error: {reply}")
            for key, value, expire_at in present:
                now = node.clock.wall_ms()
                if expire_at is not None and expire_at <= now:
                    continue  # expired while waiting: nothing to move
                if not _is_big(value):
                    ttl = 0 if expire_at is None else max(1, expire_at - now)
                    argv = [b"RESTORE-ASKING" if asking else b"RESTORE", key, b"%d" % ttl,
                            dump_payload(value, compress=bool(config["rdbcompression"]),
                                         list_fill=config["list-max-listpack-size"])]
                    if replace:
                        argv.append(b"REPLACE")
                    reply = (await link.call(argv))[0]
                    if isinstance(reply, hiredis.ReplyError):
                        return ErrorReply(f"ERR Target instance replied with error: {reply}")
                    moved.append(key)
                    continue
                if replace:
                    await run([b"DEL", key])
                else:
                    exists = await run([b"EXISTS", key])
                    if exists == 1:
                        return ErrorReply("ERR Target instance replied with error: BUSYKEY Target key name "
                                          "already exists.")
                try:
                    for argv in _chunks(key, value):
                        reply = await run(argv)
                        if isinstance(reply, hiredis.ReplyError):
                            raise _TargetError(reply)
                        await trio.sleep(0)  # let the node serve its other clients between chunks
                    if expire_at is not None:
                        ttl = max(1, expire_at - node.clock.wall_ms())
                        reply = await run([b"PEXPIRE", key, b"%d" % ttl])
                        if isinstance(reply, hiredis.ReplyError):
                            raise _TargetError(reply)
                except _TargetError as exc:
                    await run([b"DEL", key])  # never leave half a key behind
                    return ErrorReply(f"ERR Target instance replied with error: {exc.reply}")
                moved.append(key)
    except trio.TooSlowError:
        return ErrorReply("IOERR error or timeout reading to target instance")
    except OSError:
        return ErrorReply("IOERR error or timeout writing to target instance")
    return OK


class _TargetError(Exception):
    def __init__(self, reply) -> None:
        super().__init__(str(reply))
        self.reply = reply
