"""Differential tests at the byte-stream level: raw bytes in, the same bytes out as Redis.

Each stream goes to a fresh connection on real Redis and on Shoal at once; the
full reply bytes and whether the server closed the connection must match. A
stream that leaves a command half-received must leave both servers silent:
reading stops once neither has sent anything for ``IDLE`` seconds.
"""

from __future__ import annotations

import select
import socket
import time

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from node.resp.parser import NEED_DATA, ProtocolError, RequestParser
from tests.byte_streams import mutate
from tests.resp_client import RawClient, encode_command, reply_end

IDLE = 0.3


def converse(ports: tuple[int, ...], data: bytes, chunks: list[int] | None = None):
    """Send ``data`` to each port on a new connection; [(reply bytes, closed)] per port."""
    socks = []
    for port in ports:
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        socks.append(sock)
    pieces = [data] if not chunks else _cut(data, chunks)
    results = [[bytearray(), False] for _ in socks]
    try:
        for piece in pieces:
            for sock, result in zip(socks, results):
                if not result[1]:
                    try:
                        sock.sendall(piece)
                    except (BrokenPipeError, ConnectionResetError):
                        pass  # it closed on us: reading below sees it
            if len(pieces) > 1:
                time.sleep(0.002)
        _collect(socks, results, IDLE)
        return [(bytes(buf), closed) for buf, closed in results], (socks, results)
    except BaseException:
        for sock in socks:
            sock.close()
        raise


def _collect(socks, results, idle: float) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        open_socks = [s for s, r in zip(socks, results) if not r[1]]
        if not open_socks:
            return
        ready, _, _ = select.select(open_socks, [], [], idle)
        if not ready:
            return  # nobody said anything for `idle` seconds
        for sock in ready:
            result = results[socks.index(sock)]
            try:
                chunk = sock.recv(1 << 16)
            except ConnectionResetError:
                chunk = b""
            if chunk:
                result[0] += chunk
            else:
                result[1] = True


def _cut(data: bytes, sizes: list[int]) -> list[bytes]:
    pieces, pos, i = [], 0, 0
    while pos < len(data):
        pieces.append(data[pos : pos + sizes[i % len(sizes)]])
        pos += sizes[i % len(sizes)]
        i += 1
    return pieces


def split_replies(raw: bytes) -> list[bytes]:
    replies, pos = [], 0
    while pos < len(raw):
        try:
            end = reply_end(raw, pos)
        except (IndexError, ValueError):
            replies.append(raw[pos:])  # a torn reply: still compared byte for byte
            break
        replies.append(raw[pos:end])
        pos = end
    return replies


def check_same(redis_proc, shoal_proc, data: bytes, chunks: list[int] | None = None):
    """Assert Redis and Shoal answer ``data`` identically; return Redis's (replies, closed)."""
    (redis_out, shoal_out), (socks, results) = converse((redis_proc.port, shoal_proc.port), data, chunks)
    try:
        if redis_out != shoal_out:
            # Before calling it a difference, give a slow server time to catch up.
            _collect(socks, results, 2.0)
            redis_out, shoal_out = [(bytes(buf), closed) for buf, closed in results]
    finally:
        for sock in socks:
            sock.close()
    expected = (split_replies(redis_out[0]), redis_out[1])
    actual = (split_replies(shoal_out[0]), shoal_out[1])
    assert actual == expected, f"stream {data[:300]!r}:\n  redis: {expected}\n  shoal: {actual}"
    assert shoal_proc.alive(), shoal_proc.log()
    return expected


@pytest.fixture
def servers(redis_proc, shoal_proc):
    for proc in (redis_proc, shoal_proc):
        with RawClient(proc.port) as c:
            assert c.call("FLUSHALL") == b"+OK\r\n"
    yield redis_proc, shoal_proc
    assert shoal_proc.alive(), "shoal-server died:\n" + shoal_proc.log()


def cmd(*args) -> bytes:
    return encode_command(*args)


# --------------------------------------------------------------- fixed cases

VALID = [
    cmd("PING"),
    cmd("PING", "hello"),
    cmd("SET", "k", "v") + cmd("GET", "k") + cmd("ECHO", b"\0\r\n\xff") + cmd("GET", "missing"),
    b"".join(cmd("SET", b"key:%d" % i, b"v" * i) for i in range(100)) + b"".join(cmd("GET", b"key:%d" % i) for i in range(100)),
    cmd("SET", "big", b"x" * 300_000) + cmd("GET", "big"),
    cmd("ECHO", b"") + cmd("GET", b""),
    cmd("NOSUCH", "a", "b") + cmd("get") + cmd("set", "k") + cmd("PING", "a", "b"),
    cmd("X" * 200, "y" * 200, "z" * 200),
    cmd("ECHO", b"+OK\r\n(1\r\n=3\r\ntxt\r\n~1\r\n|1\r\n>1\r\n"),
    b"*0\r\n*-1\r\n*-100\r\n" + cmd("PING") + b"*0\r\n",
]

INLINE = [
    b"PING\r\n",
    b"PING\n",
    b"ping hello\r\n",
    b"SET k v\r\nGET k\n",
    b'SET k "a b"\r\nGET k\r\n',
    b'ECHO "\\x41\\x42\\n\\t\\r\\b\\a\\\\\\"\\xzz"\r\n',
    b"ECHO 'single \\' quote'\r\n",
    b"ECHO 'a\\nb'\r\n",
    b'ECHO ""\r\n',
    b"\r\n\n  \r\n\t\r\nPING\r\n\r\n",
    b"  ECHO   spaced\t\tout  \r\n",
    b"ECHO a\rb\r\n",
    b"ECHO a\x0bb\x0c\r\n",
    b"\x0b\x0cPING\r\n",
    b"ECHO \xff\xfe\r\n",
    b"ECHO a\r\r\n",
    b"PING\r\n" + cmd("ECHO", "mixed") + b"ECHO inline\n" + cmd("PING") + b"\n" + cmd("GET", "nokey"),
    b"NOSUCH inline args here\r\n",
    b"$4\r\n+PING\r\n:1\r\n~1\r\n|1\r\n>1\r\n%1\r\n",
    b"ECHO " + b"a" * 60_000 + b"\r\n",
    b"PING\0\r\n",
    b"PING\r\nPING\0\r\nPING\r\n",
    b"ECHO \"a\0b\"\r\n",
]

MALFORMED = [
    # invalid multibulk length
    b"*+1\r\n$4\r\nPING\r\n",
    b"*01\r\n$4\r\nPING\r\n",
    b"*-0\r\n",
    b"*1a\r\n",
    b"* 1\r\n",
    b"*\r\n",
    b"*2147483648\r\n",
    b"*9223372036854775808\r\n",
    b"*" + b"9" * 25 + b"\r\n",
    cmd("PING") + b"*x\r\n" + cmd("PING"),
    # invalid bulk length
    b"*1\r\n$+4\r\nPING\r\n",
    b"*1\r\n$04\r\nPING\r\n",
    b"*1\r\n$-1\r\n",
    b"*1\r\n$\r\n",
    b"*1\r\n$4x\r\nPING\r\n",
    b"*1\r\n$600000000\r\n",
    b"*1\r\n$536870913\r\n",
    # expected '$'
    b"*1\r\nx\r\n",
    b"*1\r\n+PING\r\n",
    b"*2\r\n$4\r\nECHO\r\n+hi\r\n",
    b"*2\r\n$4\r\nECHOxx+hi\r\n",
    b"*2\r\n$4\r\nECHO\r\n(12\r\n",
    b"*2\r\n$4\r\nECHOab=6\r\ntxt:hi\r\n",
    b"*2\r\n$4\r\nECHO\r\n:1\r\n",
    b"*1\r\n*1\r\n$4\r\nPING\r\n",
    b"*1\r\n\xe9\r\n",
    b"*1\r\n\r\n",
    b"*1\r\n\n\r\n",
    b"~2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n",
    b"|1\r\n$4\r\nECHO\r\n$2\r\nhi\r\n",
    # unbalanced quotes
    b'ECHO "abc\r\n',
    b"ECHO 'abc\r\n",
    b'ECHO "a"b\r\n',
    b"ECHO 'a'b\r\n",
    b'ECHO "abc\\"\r\n',
    b"PING\r\n" + b'ECHO "x\r\n' + b"PING\r\n",
    # too big
    b"PING\r\nECHO " + b"a" * 300_000 + b"\r\nPING\r\n",
    b"*1" + b"1" * 300_000,
    b"*1\r\n$" + b"1" * 300_000,
    b"PING\0" + b"x" * 300_000,
    b"*1\0" + b"x" * 300_000,
    # partial commands: both wait
    b"*2\r\n$4\r\nECHO\r\n",
    b"*1\r\n$4\r\nPI",
    b"*1\r\n$4\r\nPING\r",
    b"*1\r\n$4\0\r\nPING\r\n",
    b"*1\0\r\n$4\r\nPING\r\n",
    b"*1\r\n\0$4\r\nPING\r\n",
    b"*2147483647\r\n",
    b"ECHO partial",
    b"*1\r\n$536870912\r\n",
    # odd but valid
    b"*1\r\n$4\r\nPINGxx" + cmd("PING"),
    b"*2\rx$4\r?ECHO\r\n$2\r\rhi\r\n",
    b"*1\r\n$4\r\n\0\0\0\0\r\n",
]


@pytest.mark.parametrize("data", VALID, ids=lambda d: repr(d[:30]))
def test_valid_pipelines(servers, data):
    check_same(*servers, data)


@pytest.mark.parametrize("data", VALID[2:5], ids=lambda d: repr(d[:30]))
def test_valid_pipelines_in_small_chunks(servers, data):
    check_same(*servers, data, chunks=[1, 7, 3, 1000, 5])


@pytest.mark.parametrize("data", INLINE, ids=lambda d: repr(d[:30]))
def test_inline(servers, data):
    check_same(*servers, data)


@pytest.mark.parametrize("data", MALFORMED, ids=lambda d: repr(d[:30]))
def test_malformed(servers, data):
    check_same(*servers, data)


def test_malformed_streams_close_with_the_right_error(servers):
    replies, closed = check_same(*servers, b"PING\r\n*1\r\nx\r\n")
    assert (replies, closed) == ([b"+PONG\r\n", b"-ERR Protocol error: expected '$', got 'x'\r\n"], True)
    replies, closed = check_same(*servers, b"*1\r\n$4\r\nPI")
    assert (replies, closed) == ([], False)


def test_byte_by_byte(servers):
    data = cmd("SET", "k", "v") + b'SET k2 "x y"\r\n' + cmd("GET", "k2") + b"*1\r\n$4\r\nPINGxx"
    check_same(*servers, data, chunks=[1])


def test_unauthenticated_limits(redis_proc):
    """With requirepass, big requests before AUTH fail the same way on both."""
    from tests.servers import ServerProcess

    with ServerProcess("shoal", "--requirepass", "pw") as shoal, ServerProcess("redis", "--requirepass", "pw") as redis:
        for data in (
            b"*11\r\n",
            b"*10\r\n$5\r\nHELLO",
            b"*1\r\n$16385\r\n",
            b"*2\r\n$4\r\nECHO\r\n$16384\r\n" + b"x" * 16384 + b"\r\n",
            cmd("AUTH", "pw") + b"*11\r\n" + b"$1\r\nx\r\n" * 11,
            cmd("AUTH", "wrong") + b"*11\r\n",
            b"PING\r\n" + cmd("GET", "k"),
        ):
            check_same(redis, shoal, data)


# ---------------------------------------------------------------- hypothesis

_SAFE_NAMES = {b"ping", b"echo", b"set", b"get"}
_EXPIRY = {b"ex", b"px", b"exat", b"pxat"}


@pytest.fixture(scope="module")
def redis_command_names(redis_proc):
    with RawClient(redis_proc.port) as c:
        raw = c.call("COMMAND", "LIST")
    names = set()
    pos = raw.index(b"\r\n") + 2
    while pos < len(raw):
        end = reply_end(raw, pos)
        item = raw[pos:end]
        names.add(item[item.index(b"\r\n") + 2 : -2].lower())
        pos = end
    assert b"get" in names and b"flushall" in names
    return names


_token = st.sampled_from(
    [b"PING", b"ping", b"ECHO", b"SET", b"GET", b"get", b"k", b"k2", b"v", b"NOSUCH", b"x\xff", b"", b" ", b"NX",
     b"GET", b"XX", b"KEEPTTL", b"\r\n", b"+OK", b"(1", b"=", b"~", b"|", b"\0", b"\\x41", b'"', b"'"]
) | st.binary(max_size=6)

_ITEMS = [
    b"\r\n", b"\n", b"\r", b"\0", b"*", b"$", b"+", b":", b"(", b"=", b"~", b"|", b">", b"%", b"*0\r\n",
    b"*-1\r\n", b"*1\r\n", b"*2\r\n", b"$0\r\n", b"$1\r\n", b"$3\r\n", b"$-1\r\n", b"$01\r\n", b"*+1\r\n",
    b"+OK\r\n", b"(12\r\n", b"=6\r\ntxt:ab\r\n", b"~1\r\n", b"|1\r\n", b"'", b'"', b"\\", b" ", b"\xff",
    b"*2147483648\r\n", b"$600000000\r\n",
]


@st.composite
def command_bytes(draw) -> bytes:
    name = draw(st.sampled_from([b"PING", b"ECHO", b"SET", b"GET", b"get", b"NOSUCH", b"x"]))
    args = [name] + draw(st.lists(_token, max_size=4))
    if draw(st.booleans()):
        return cmd(*args)
    quote = draw(st.sampled_from([b"", b' "a b\\x41\\n"', b" 'c d'", b' ""', b' "unbalanced']))
    return b" ".join(a for a in args if a.strip() and b"\n" not in a) + quote + draw(
        st.sampled_from([b"\r\n", b"\n"])
    )


@st.composite
def mutated_stream(draw) -> bytes:
    parts = draw(st.lists(command_bytes() | st.sampled_from(_ITEMS), min_size=1, max_size=10))
    data = bytearray(b"".join(parts))
    return mutate(draw, data, _ITEMS, rounds=3, insert_max=4, delete_max=6)


def safe_to_send(data: bytes, known: set[bytes]) -> bool:
    """Only PING/ECHO/SET/GET and unknown commands, and no SET with an expiry (a race)."""
    parser = RequestParser(use_hiredis=False)
    parser.feed(data)
    try:
        while (command := parser.next_command()) is not NEED_DATA:
            name = command[0].lower()
            if name in known and name not in _SAFE_NAMES:
                return False
            if name == b"set" and any(arg.lower() in _EXPIRY for arg in command[3:]):
                return False
    except ProtocolError:
        pass
    return True


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(data=st.binary(max_size=60) | mutated_stream())
def test_random_streams_match_redis(servers, redis_command_names, data):
    assume(safe_to_send(data, redis_command_names))
    check_same(*servers, data)
