"""Robustness of the protocol layer: garbage in must never hurt the node or other clients.

The fuzz test throws random and mutated byte streams at the session's
shoal-server over many connections (some left open half-way through a
command) and checks after every example that the node is alive, answers PING
on a fresh connection, and still holds what another connection wrote before.
The other tests push the limits a hostile or careless client can reach:
huge declared lengths, a query buffer over ``client-query-buffer-limit``, and
a client that never reads its replies.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import node.commands  # noqa: F401  (fills the command table)
from node.commands.table import lookup
from node.resp.parser import NEED_DATA, ProtocolError, RequestParser
from tests.byte_streams import mutate
from tests.resp_client import RawClient, encode_command
from tests.servers import ServerProcess

SENTINEL_KEY = b"fuzz:sentinel:6f1c2a"
SENTINEL_VALUE = bytes(range(256)) * 4
_SAFE = {b"ping", b"echo", b"set", b"get"}


def cmd(*args) -> bytes:
    return encode_command(*args)


def connect(port: int, timeout: float = 5.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def read_until_closed(sock: socket.socket, timeout: float) -> tuple[bytes, bool]:
    """Everything the server sends within ``timeout`` (idle), and whether it closed."""
    sock.settimeout(timeout)
    data = b""
    try:
        while True:
            chunk = sock.recv(1 << 16)
            if not chunk:
                return data, True
            data += chunk
    except (socket.timeout, TimeoutError):
        return data, False
    except ConnectionResetError:
        return data, True


def assert_healthy(proc) -> None:
    assert proc.alive(), "shoal-server died:\n" + proc.log()
    with RawClient(proc.port, timeout=5) as c:
        assert c.call("PING") == b"+PONG\r\n"
        assert c.call("GET", SENTINEL_KEY) == b"$%d\r\n%b\r\n" % (len(SENTINEL_VALUE), SENTINEL_VALUE)


@pytest.fixture
def sentinel(shoal_proc):
    with RawClient(shoal_proc.port) as c:
        assert c.call("SET", SENTINEL_KEY, SENTINEL_VALUE) == b"+OK\r\n"
    yield shoal_proc
    with RawClient(shoal_proc.port) as c:
        c.call("DEL", SENTINEL_KEY)


# ---------------------------------------------------------------- the fuzzer

_ITEMS = [
    b"\r\n", b"\n", b"\r", b"\0", b"*", b"$", b"+", b":", b"(", b"=", b"~", b"|", b">", b"%", b"#", b",",
    b"*0\r\n", b"*-1\r\n", b"*1\r\n", b"*3\r\n", b"$0\r\n", b"$1\r\n", b"$-1\r\n", b"$01\r\n", b"*+1\r\n",
    b"+OK\r\n", b"(12\r\n", b"=6\r\ntxt:ab\r\n", b"~1\r\n", b"|1\r\n", b">1\r\n", b"'", b'"', b"\\", b" ",
    b"\xff", b"*2147483647\r\n", b"*2147483648\r\n", b"*4294967295\r\n", b"*1\r\n*99999999\r\n",
    b"$600000000\r\n", b"$536870912\r\n", b"*99999\r\n", b"PING\r\n", b"ECHO\r\n", b"x" * 1000,
]

_arg = st.binary(max_size=10) | st.sampled_from([b"k", b"v", b"NX", b"XX", b"GET", b"KEEPTTL", b"\r\n", b"\0"])


@st.composite
def command_bytes(draw) -> bytes:
    name = draw(st.sampled_from([b"PING", b"ECHO", b"SET", b"GET", b"get", b"NOSUCH", b"\xff\xfe"]))
    args = [name] + draw(st.lists(_arg, max_size=4))
    if draw(st.booleans()):
        return cmd(*args)
    words = [a for a in args if a.strip() and b"\n" not in a and b"\0" not in a]
    quote = draw(st.sampled_from([b"", b' "a b\\x41"', b" 'c'", b' "open']))
    return b" ".join(words) + quote + draw(st.sampled_from([b"\r\n", b"\n"]))


@st.composite
def stream(draw) -> bytes:
    if draw(st.integers(0, 4)) == 0:
        return draw(st.binary(min_size=1, max_size=300))
    data = bytearray(b"".join(draw(st.lists(command_bytes() | st.sampled_from(_ITEMS), min_size=1, max_size=15))))
    return mutate(draw, data, _ITEMS, rounds=5, insert_max=8, delete_max=8)


def harmless(data: bytes) -> bool:
    """Only PING/ECHO/SET/GET and unknown commands; never a write to the sentinel key."""
    parser = RequestParser(use_hiredis=False)
    parser.feed(data)
    try:
        while (command := parser.next_command()) is not NEED_DATA:
            name = command[0].lower()
            if name not in _SAFE and lookup(command[0]) is not None:
                return False
            if SENTINEL_KEY in command:
                return False
    except ProtocolError:
        pass
    return True


class Pool:
    """Connections left open between examples, some in the middle of a command."""

    def __init__(self, port: int, size: int = 40) -> None:
        self.port = port
        self.size = size
        self.socks: list[socket.socket] = []

    def park(self, sock: socket.socket) -> None:
        self.socks.append(sock)
        while len(self.socks) > self.size:
            self.socks.pop(0).close()

    def close(self) -> None:
        for sock in self.socks:
            sock.close()
        self.socks.clear()


@pytest.fixture
def pool(sentinel):
    p = Pool(sentinel.port)
    yield p
    p.close()


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(
    streams=st.lists(stream(), min_size=1, max_size=4),
    chunk=st.integers(1, 64),
    keep_open=st.booleans(),
    read_replies=st.booleans(),
)
def test_fuzzed_streams_leave_the_node_healthy(sentinel, pool, streams, chunk, keep_open, read_replies):
    for data in streams:
        assume(harmless(data))
    socks = [connect(sentinel.port) for _ in streams]
    try:
        # Interleave the streams in chunks, as concurrent clients would.
        pos = 0
        while any(pos < len(d) for d in streams):
            for sock, data in zip(socks, streams):
                if pos < len(data):
                    try:
                        sock.sendall(data[pos : pos + chunk])
                    except OSError:
                        pass  # closed after a protocol error
            pos += chunk
        if read_replies:
            for sock in socks:
                read_until_closed(sock, 0.02)
    finally:
        if keep_open:
            for sock in socks:
                pool.park(sock)
        else:
            for sock in socks:
                sock.close()
    assert_healthy(sentinel)


# ------------------------------------------------------------------- limits


def test_oversized_bulk_is_refused_at_once(sentinel):
    with connect(sentinel.port) as sock:
        sock.sendall(b"*1\r\n$600000000\r\n")
        assert read_until_closed(sock, 5) == (b"-ERR Protocol error: invalid bulk length\r\n", True)
    assert_healthy(sentinel)


@pytest.mark.parametrize("count", [b"2147483648", b"4294967296", b"9223372036854775807", b"99999999999999999999"])
def test_multibulk_count_over_int_max(sentinel, count):
    with connect(sentinel.port) as sock:
        sock.sendall(b"*%b\r\n" % count)
        assert read_until_closed(sock, 5) == (b"-ERR Protocol error: invalid multibulk length\r\n", True)
    assert_healthy(sentinel)


def test_huge_array_headers_do_not_stall_the_node(sentinel):
    """Headers declaring 2**31 items (valid for Redis, which waits) cost no time or memory."""
    socks = []
    try:
        start = time.monotonic()
        for header in (b"*2147483647\r\n", b"*1\r\n*2147483647\r\n", b"PING\r\n*2147483647\r\n") * 5:
            sock = connect(sentinel.port)
            sock.sendall(header)
            socks.append(sock)
        for sock in socks[::2]:
            sock.close()  # drop half of them while the array is pending
        assert_healthy(sentinel)
        assert time.monotonic() - start < 3
    finally:
        for sock in socks:
            sock.close()
    assert_healthy(sentinel)


def test_query_buffer_limit_closes_only_that_client():
    with ServerProcess("shoal", "--client-query-buffer-limit", "1mb") as proc:
        with RawClient(proc.port) as other:
            assert other.call("SET", SENTINEL_KEY, SENTINEL_VALUE) == b"+OK\r\n"
            with connect(proc.port) as sock:
                sock.sendall(b"*2\r\n$3\r\nSET\r\n$5000000\r\n")
                try:
                    for _ in range(32):
                        sock.sendall(b"x" * 65536)  # 2 MB of a 5 MB bulk
                except (BrokenPipeError, ConnectionResetError):
                    pass  # closed while we were still sending: fine
                assert read_until_closed(sock, 5) == (b"", True)
            assert other.call("PING") == b"+PONG\r\n"
            assert other.call("GET", SENTINEL_KEY) == b"$%d\r\n%b\r\n" % (len(SENTINEL_VALUE), SENTINEL_VALUE)
            # Under the limit, the same big value goes through.
            value = b"y" * 900_000
            assert other.call("SET", "big", value) == b"+OK\r\n"
            assert other.call("STRLEN", "big") == b":900000\r\n"
        assert proc.alive(), proc.log()
        assert "max query buffer" in proc.log()


def test_slow_reader_does_not_stall_others(sentinel):
    value = b"v" * (1024 * 1024)
    with RawClient(sentinel.port) as writer:
        assert writer.call("SET", "fuzz:big", value) == b"+OK\r\n"
    count = 48
    slow = connect(sentinel.port, timeout=30)
    try:
        # Send many GETs of 1 MB and read none of the replies for now.
        sender = threading.Thread(target=slow.sendall, args=(cmd("GET", "fuzz:big") * count,), daemon=True)
        sender.start()
        time.sleep(0.3)
        for _ in range(5):
            start = time.monotonic()
            with RawClient(sentinel.port, timeout=5) as other:
                assert other.call("PING") == b"+PONG\r\n"
                assert other.call("GET", SENTINEL_KEY).endswith(SENTINEL_VALUE + b"\r\n")
            assert time.monotonic() - start < 5
            time.sleep(0.05)
        # The slow client then gets every reply, whole and in order.
        expected = b"$%d\r\n%b\r\n" % (len(value), value)
        received = bytearray()
        slow.settimeout(30)
        while len(received) < count * len(expected):
            chunk = slow.recv(1 << 20)
            assert chunk, "connection closed before all replies arrived"
            received += chunk
        assert received == expected * count
        sender.join(10)
    finally:
        slow.close()
    with RawClient(sentinel.port) as c:
        c.call("DEL", "fuzz:big")
    assert_healthy(sentinel)
