"""Connection limits with hostile clients, against real redis-server: the offender is stopped, the others are not.

For each limit a misbehaving client hits it while an ordinary client,
connected at the same time, keeps getting correct replies; both servers
are driven the same way and must behave the same (same error text, same
disconnection). Limits covered elsewhere, with the same "others unaffected"
check: client-query-buffer-limit (tests/test_protocol_fuzz.py), the pubsub
class of client-output-buffer-limit (tests/test_pubsub.py) and its replica
class (tests/test_replication.py).

- maxclients: the connection over the limit gets "-ERR max number of clients
  reached" and is closed; rejected_connections counts it.
- timeout: an idle client is closed; a client that keeps talking, a client
  blocked in BLPOP and a subscribed client are not (Redis's exemptions).
- tcp-keepalive: accepted sockets carry the kernel keepalive timer with the
  configured idle time (what lets the server drop peers that vanished
  without a FIN); read from ``ss``, the same way for both servers.
- client-output-buffer-limit normal: a client that pipelines big replies and
  never reads them is dropped once its pending output passes the hard limit.
- proto-max-bulk-len: a bulk longer than the limit is a protocol error that
  closes only that connection.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time

import pytest

from tests.resp_client import RawClient, encode_command, parse
from tests.servers import ServerProcess


def _connect(port: int, timeout: float = 5.0, rcvbuf: int | None = None) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(timeout)
    sock.connect(("127.0.0.1", port))
    return sock


def _read_until_closed(sock: socket.socket, timeout: float = 10.0) -> tuple[bytes, bool]:
    """Everything the server sends until it closes (True) or ``timeout`` passes (False)."""
    data = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(deadline - time.monotonic(), 0.01))
        try:
            chunk = sock.recv(1 << 16)
        except socket.timeout:
            return data, False
        except ConnectionResetError:
            return data, True
        if not chunk:
            return data, True
        data += chunk
    return data, False


def _is_open(sock: socket.socket) -> bool:
    """True if the server has not closed ``sock`` (it answers a PING)."""
    try:
        sock.settimeout(5)
        sock.sendall(encode_command("PING"))
        return sock.recv(64).startswith((b"+PONG", b"*", b">"))
    except OSError:
        return False


def _info(client: RawClient, section: str) -> dict[str, str]:
    out = {}
    for line in parse(client.call("INFO", section)).decode().split("\r\n"):
        key, sep, value = line.partition(":")
        if sep:
            out[key] = value
    return out


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def _served(client: RawClient, n: int) -> None:
    """The ordinary client: a write and a read that must come back right."""
    assert client.call("SET", f"ordinary:{n}", f"v{n}") == b"+OK\r\n"
    assert client.call("GET", f"ordinary:{n}") == b"$%d\r\nv%d\r\n" % (len(f"v{n}"), n)


@pytest.fixture(params=["redis", "shoal"])
def kind(request):
    return request.param


# ------------------------------------------------------------------ maxclients


def test_maxclients_refuses_the_extra_connection_only(kind):
    with ServerProcess(kind, "--maxclients", "3") as proc, RawClient(proc.port) as ordinary:
        _served(ordinary, 0)
        held = [_connect(proc.port) for _ in range(2)]  # 3 clients now: the limit
        try:
            for sock in held:
                assert _is_open(sock)
            extra = _connect(proc.port)
            data, closed = _read_until_closed(extra)
            extra.close()
            assert (data, closed) == (b"-ERR max number of clients reached\r\n", True)
            _served(ordinary, 1)
            assert all(_is_open(sock) for sock in held)
            assert int(_info(ordinary, "stats")["rejected_connections"]) == 1
            assert _info(ordinary, "clients")["connected_clients"] == "3"
            # Raising the limit at run time lets the next one in; lowering it closes nobody.
            assert ordinary.call("CONFIG", "SET", "maxclients", "4") == b"+OK\r\n"
            fourth = _connect(proc.port)
            assert _is_open(fourth)
            assert ordinary.call("CONFIG", "SET", "maxclients", "1") == b"+OK\r\n"
            assert _is_open(fourth) and all(_is_open(sock) for sock in held)
            _served(ordinary, 2)
            fourth.close()
        finally:
            for sock in held:
                sock.close()


# --------------------------------------------------------------------- timeout


def test_timeout_closes_idle_clients_only(kind):
    with ServerProcess(kind, "--timeout", "1") as proc:
        idle = _connect(proc.port)
        blocked = _connect(proc.port)
        subscriber = _connect(proc.port)
        busy = RawClient(proc.port)
        try:
            blocked.sendall(encode_command("BLPOP", "nothing", "0"))
            subscriber.sendall(encode_command("SUBSCRIBE", "chan"))
            assert subscriber.recv(256).startswith(b"*3\r\n$9\r\nsubscribe\r\n")
            start = time.monotonic()
            closed = False
            n = 0
            while not closed:
                assert time.monotonic() - start < 15, "the idle client was never closed"
                _served(busy, n)  # talking every 100 ms: never idle
                n += 1
                idle.settimeout(0.1)
                try:
                    closed = idle.recv(64) == b""
                except socket.timeout:
                    pass
                except ConnectionResetError:
                    closed = True
            # Two more timeout periods: the exempt ones are still there.
            until = time.monotonic() + 2.5
            while time.monotonic() < until:
                _served(busy, n)
                n += 1
                time.sleep(0.1)
            clients = _info(busy, "clients")
            assert (clients["connected_clients"], clients["blocked_clients"]) == ("3", "1")
            # (Not served here: once unblocked, a client idle for longer than the timeout may be
            # closed by redis-server's next cron before its reply is written -- a race in Redis.)
            assert busy.call("PUBLISH", "chan", "hello") == b":1\r\n"
            subscriber.settimeout(5)
            assert subscriber.recv(256) == b"*3\r\n$7\r\nmessage\r\n$4\r\nchan\r\n$5\r\nhello\r\n"
            assert _info(busy, "clients")["connected_clients"] == "3"
        finally:
            for sock in (idle, blocked, subscriber):
                sock.close()
            busy.close()


# --------------------------------------------------------------- tcp-keepalive


def _keepalive_timers(port: int) -> list[float | None]:
    """For each server-side connection on ``port``: its keepalive timer in seconds, or None without one."""
    deadline = time.monotonic() + 5
    while True:
        out = subprocess.run(["ss", "-tnoH", "state", "established", f"( sport = :{port} )"],
                             capture_output=True, text=True, check=True).stdout
        # A reply not yet acknowledged shows the retransmit timer instead: look again.
        if "timer:(on," not in out or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    timers = []
    for line in out.splitlines():
        # ss prints 4min59sec, 29sec, 120ms (and seconds under 10 as 6.996ms): tests use >= 10 s.
        m = re.search(r"timer:\(keepalive,(?:(\d+)min)?(?:(\d+)sec)?(?:(\d+)ms)?,", line)
        if m is None:
            timers.append(None)
        else:
            mins, secs, ms = m.groups()
            timers.append(int(mins or 0) * 60 + float(secs or 0) + int(ms or 0) / 1000)
    return timers


@pytest.mark.skipif(shutil.which("ss") is None, reason="needs ss (iproute2)")
def test_tcp_keepalive_on_accepted_sockets(kind):
    with ServerProcess(kind, "--tcp-keepalive", "30") as proc, RawClient(proc.port) as ordinary:
        _served(ordinary, 0)
        timers = _keepalive_timers(proc.port)
        assert len(timers) == 1 and timers[0] is not None and 10 < timers[0] <= 30, timers
        # CONFIG SET applies to connections accepted afterwards.
        assert ordinary.call("CONFIG", "SET", "tcp-keepalive", "0") == b"+OK\r\n"
        with RawClient(proc.port) as later:
            _served(later, 1)
            timers = _keepalive_timers(proc.port)
            assert len(timers) == 2 and sum(t is None for t in timers) == 1, timers
        assert ordinary.call("CONFIG", "SET", "tcp-keepalive", "120") == b"+OK\r\n"
        with RawClient(proc.port) as third:
            _served(third, 2)
            timers = [t for t in _keepalive_timers(proc.port) if t is not None]
            assert len(timers) == 2 and max(timers) > 60, timers
        _served(ordinary, 3)


# ------------------------------------------------- client-output-buffer-limit


def test_output_buffer_limit_normal_class(kind):
    with ServerProcess(kind, "--client-output-buffer-limit", "normal 1mb 0 0") as proc, \
            RawClient(proc.port) as ordinary:
        value = b"v" * (100 * 1024)
        assert ordinary.call("SET", "big", value) == b"+OK\r\n"
        # Under the limit: a client that reads gets every big reply.
        reply = ordinary.call("MGET", *(["big"] * 8))
        assert len(reply) > 8 * len(value)
        hog = _connect(proc.port, timeout=10, rcvbuf=4096)
        try:
            # 200 GETs of 100 KB = 20 MB of replies it never reads.
            hog.sendall(encode_command("GET", "big") * 200)
            _wait(lambda: int(_info(ordinary, "clients")["connected_clients"]) == 1, 15,
                  "the client over its output buffer limit was not closed")
            _served(ordinary, 0)
            data, closed = _read_until_closed(hog, 10)
            assert closed and len(data) < 4 * 1024 * 1024, len(data)
        finally:
            hog.close()
        _served(ordinary, 1)
        assert "overcoming of output buffer limits" in proc.log()
        # The default (normal 0 0 0) is no limit: the same hog is served in full when it reads.
        assert ordinary.call("CONFIG", "SET", "client-output-buffer-limit", "normal 0 0 0") == b"+OK\r\n"
        with RawClient(proc.port, timeout=30) as reader:
            reader.sock.sendall(encode_command("GET", "big") * 30)
            time.sleep(0.3)
            _served(ordinary, 2)
            for _ in range(30):
                assert reader.read_reply() == b"$%d\r\n%b\r\n" % (len(value), value)


# ----------------------------------------------------------- proto-max-bulk-len


def test_proto_max_bulk_len_closes_only_the_offender(kind):
    with ServerProcess(kind, "--proto-max-bulk-len", "1mb") as proc, RawClient(proc.port) as ordinary:
        _served(ordinary, 0)
        hostile = _connect(proc.port)
        try:
            hostile.sendall(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1048577\r\n")
            data, closed = _read_until_closed(hostile)
            assert (data, closed) == (b"-ERR Protocol error: invalid bulk length\r\n", True)
        finally:
            hostile.close()
        _served(ordinary, 1)
        # At the limit exactly, the value goes through (for the ordinary client too).
        assert ordinary.call("SET", "k", b"x" * (1024 * 1024)) == b"+OK\r\n"
        assert ordinary.call("STRLEN", "k") == b":1048576\r\n"
        # Raised at run time: applies to clients already connected.
        assert ordinary.call("CONFIG", "SET", "proto-max-bulk-len", "2mb") == b"+OK\r\n"
        assert ordinary.call("SET", "k", b"x" * (1024 * 1024 + 1)) == b"+OK\r\n"
        assert int(_info(ordinary, "stats")["total_error_replies"]) >= 1


# ------------------------------------------ dealing with clients: KILL filters, PAUSE


def _try_read(sock: socket.socket, timeout: float) -> bytes | None:
    sock.settimeout(timeout)
    try:
        return sock.recv(1 << 16)
    except socket.timeout:
        return None


def _fake_replica(port: int) -> socket.socket:
    sock = _connect(port)
    sock.sendall(encode_command("PSYNC", "?", "-1"))
    assert _try_read(sock, 5).startswith(b"+FULLRESYNC")
    return sock


def test_client_kill_and_list_by_type(kind):
    """TYPE normal|replica|slave|pubsub pick the right connections; an ordinary client is never hit."""
    with ServerProcess(kind) as proc, RawClient(proc.port) as me, RawClient(proc.port) as ordinary:
        replica = _fake_replica(proc.port)
        subscriber = _connect(proc.port)
        try:
            subscriber.sendall(encode_command("SUBSCRIBE", "news"))
            assert _try_read(subscriber, 5).startswith(b"*3\r\n$9\r\nsubscribe")

            def listed(kind_name: str) -> int:
                return parse(me.call("CLIENT", "LIST", "TYPE", kind_name)).count(b"\n")

            _wait(lambda: listed("replica") == 1, 10, "replica not listed")
            assert listed("slave") == 1 and listed("pubsub") == 1 and listed("master") == 0
            assert listed("normal") == 2  # me and ordinary (CLIENT LIST TYPE has no SKIPME)
            assert me.call("CLIENT", "KILL", "TYPE", "master") == b":0\r\n"
            assert me.call("CLIENT", "KILL", "TYPE", "pubsub") == b":1\r\n"
            assert _read_until_closed(subscriber, 5)[1]
            assert me.call("CLIENT", "KILL", "TYPE", "replica") == b":1\r\n"
            assert _read_until_closed(replica, 5)[1]
            _wait(lambda: _info(me, "replication")["connected_slaves"] == "0", 10, "replica still counted")
            assert me.call("CLIENT", "KILL", "TYPE", "normal") == b":1\r\n"  # ordinary, not me (SKIPME yes)
            assert ordinary.closed_by_server()
            assert me.call("PING") == b"+PONG\r\n"
        finally:
            replica.close()
            subscriber.close()


def test_client_pause_write_and_all(kind):
    """PAUSE WRITE holds writes (and PUBLISH) but serves reads; PAUSE ALL holds everything until it ends."""
    with ServerProcess(kind) as proc, RawClient(proc.port) as admin:
        other, publisher, unpauser = (_connect(proc.port) for _ in range(3))
        try:
            assert admin.call("CLIENT", "PAUSE", "20000", "WRITE") == b"+OK\r\n"
            other.sendall(encode_command("GET", "k"))
            assert _try_read(other, 5) == b"$-1\r\n"
            other.sendall(encode_command("SET", "k", "v"))
            publisher.sendall(encode_command("PUBLISH", "c", "m"))
            assert _try_read(other, 0.3) is None and _try_read(publisher, 0.1) is None
            assert admin.call("EXISTS", "k") == b":0\r\n"
            unpauser.sendall(encode_command("CLIENT", "UNPAUSE"))
            assert _try_read(unpauser, 5) == b"+OK\r\n"
            assert _try_read(other, 5) == b"+OK\r\n" and _try_read(publisher, 5) == b":0\r\n"
            # ALL: even reads, and CLIENT UNPAUSE from another client, wait for the pause to end.
            assert admin.call("CLIENT", "PAUSE", "1000", "ALL") == b"+OK\r\n"
            other.sendall(encode_command("GET", "k"))
            unpauser.sendall(encode_command("CLIENT", "UNPAUSE"))
            assert _try_read(other, 0.3) is None and _try_read(unpauser, 0.1) is None
            assert _try_read(other, 10) == b"$1\r\nv\r\n"
            assert _try_read(unpauser, 10) == b"+OK\r\n"
        finally:
            for sock in (other, publisher, unpauser):
                sock.close()
