"""Connection commands (PING ECHO SELECT AUTH HELLO RESET QUIT) against Redis 7.0.

Run on the shared servers (no password) and on a pair started here with
``--requirepass``, in RESP2 and RESP3, plus the pre-AUTH request size caps.
"""

from __future__ import annotations

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.resp_client import RawClient, parse
from tests.servers import ServerProcess

PASSWORD = "pw"


@pytest.fixture(scope="module")
def auth_pair():
    """(redis, shoal) servers that both require a password."""
    with ServerProcess("redis", "--requirepass", PASSWORD) as r, ServerProcess("shoal", "--requirepass", PASSWORD) as s:
        yield r, s
        assert s.alive(), s.log()


class Pair:
    """Fresh connections to both servers; compares replies with the client id masked."""

    def __init__(self, redis_port: int, shoal_port: int) -> None:
        self.redis = RawClient(redis_port)
        self.shoal = RawClient(shoal_port)

    def check(self, *argv) -> bytes:
        expected, actual = self.redis.call(*argv), self.shoal.call(*argv)
        assert _mask_id(expected) == _mask_id(actual), f"{argv}\n redis {expected!r}\n shoal {actual!r}"
        return expected

    def close(self) -> None:
        self.redis.close()
        self.shoal.close()


def _mask_id(raw: bytes):
    """HELLO's reply carries the connection id, which differs between any two servers."""
    if raw[:1] in (b"%", b"*") and b"$6\r\nserver\r\n" in raw:
        value = parse(raw)
        pairs = value if isinstance(value, dict) else dict(zip(value[0::2], value[1::2]))
        pairs[b"id"] = "*"
        return raw[:1], pairs
    return raw


@pytest.fixture
def pair(redis_proc, shoal_proc, differ):
    p = Pair(redis_proc.port, shoal_proc.port)
    yield p
    p.close()


@pytest.fixture
def auth(auth_pair):
    r, s = auth_pair
    p = Pair(r.port, s.port)
    yield p
    p.close()


PLAIN_CASES = [
    ("PING",), ("PING", "a"), ("PING", "a", "b"), ("ECHO",), ("ECHO", "a"), ("ECHO", "a", "b"),
    ("SELECT",), ("SELECT", "x"), ("SELECT", "-1"), ("SELECT", "16"), ("SELECT", "15"), ("SELECT", "0"),
    ("SELECT", "1.5"), ("SELECT", "01"), ("SELECT", " 1"), ("SELECT", "1", "2"),
    ("AUTH",), ("AUTH", "pw"), ("AUTH", "default", "pw"), ("AUTH", "bob", "pw"), ("AUTH", "a", "b", "c"),
    ("HELLO", "1"), ("HELLO", "4"), ("HELLO", "x"), ("HELLO", "-1"), ("HELLO", "99999999999999999999"),
    ("HELLO", "3", "foo"), ("HELLO", "3", "AUTH"), ("HELLO", "3", "AUTH", "default"), ("HELLO", "3", "SETNAME"),
    ("HELLO", "2", "AUTH", "bob", "x"), ("HELLO", "2", "AUTH", "default", "x"), ("HELLO", "x", "AUTH", "a", "b"),
    ("HELLO", "2", "SETNAME", "a b"), ("HELLO", "2", "SETNAME", "foo", "bogus"), ("CLIENT", "GETNAME"),
    ("HELLO", "3", "SETNAME", "bar", "SETNAME", ""), ("CLIENT", "GETNAME"), ("HELLO", "3", "AUTH", "bob", "x", "bad"),
    ("HELLO", "2", "sEtNaMe", "n1", "auth", "default", "anything"), ("CLIENT", "GETNAME"),
    ("HELLO",), ("HELLO", "3"), ("PING",), ("PING", "x"), ("ECHO", "x"), ("HELLO", "2"), ("RESET",),
    ("CLIENT", "GETNAME"), ("RESET", "x"), ("QUIT", "x"),
]


def test_connection_commands_match_redis(pair):
    for argv in PLAIN_CASES:
        pair.check(*argv)


def test_hello_options_take_effect_in_order(pair):
    # Redis 7.0 applies SETNAME/AUTH as it parses: a later bad option still leaves them.
    pair.check("HELLO", "2", "SETNAME", "first", "nonsense")
    assert pair.check("CLIENT", "GETNAME") == b"$5\r\nfirst\r\n"
    pair.check("HELLO", "3", "SETNAME", "x\x01")
    pair.check("PING")  # still RESP2: the protocol only switches on success


def test_resp3_replies(pair):
    pair.check("HELLO", "3")
    for argv in (("PING",), ("PING", "x"), ("ECHO", "x"), ("HELLO",), ("CLIENT", "GETNAME"), ("SELECT", "2"),
                 ("RESET",), ("PING",)):
        pair.check(*argv)


def test_quit_closes_after_reply(pair):
    assert pair.check("QUIT") == b"+OK\r\n"
    assert pair.redis.closed_by_server() and pair.shoal.closed_by_server()


def test_requirepass_flow(auth):
    for argv in (("PING",), ("GET", "a"), ("NOSUCH", "a"), ("GET",), ("CLIENT", "ID"), ("CLIENT", "foo"),
                 ("COMMAND",), ("ECHO",), ("HELLO",), ("HELLO", "3"), ("HELLO", "4"), ("HELLO", "2", "SETNAME", "n"),
                 ("HELLO", "2", "AUTH", "default", "x"), ("AUTH", "x"), ("AUTH", "default", "x"), ("AUTH", "bob", PASSWORD),
                 ("AUTH",), ("AUTH", "a", "b", "c"), ("RESET",), ("SELECT", "1"),
                 ("AUTH", PASSWORD), ("PING",), ("CLIENT", "GETNAME"), ("AUTH", "x"), ("PING",),
                 ("RESET",), ("PING",), ("HELLO", "3", "AUTH", "default", PASSWORD, "SETNAME", "c1"), ("PING",),
                 ("CLIENT", "GETNAME"), ("RESET",), ("ECHO", "x"),
                 ("HELLO", "2", "SETNAME", "early", "AUTH", "default", PASSWORD, "bogus"), ("CLIENT", "GETNAME"),
                 ("HELLO", "2", "AUTH", "default", "wrong"), ("PING",)):
        auth.check(*argv)


def test_requirepass_quit_without_auth(auth):
    auth.check("QUIT")
    assert auth.redis.closed_by_server() and auth.shoal.closed_by_server()


def _raw_exchange(port: int, data: bytes) -> tuple[bytes, bool]:
    with RawClient(port) as c:
        c.send_raw(data)
        closed = c.closed_by_server(timeout=1.0)
        return c.buf, closed


@pytest.mark.parametrize("data", [
    b"*11\r\n",                                           # multibulk over 10 before AUTH
    b"*10\r\n",                                           # exactly 10: allowed, waits for more
    b"*2\r\n$4\r\nECHO\r\n$16385\r\n",                    # bulk over 16384 before AUTH
    b"*2\r\n$4\r\nECHO\r\n$16384\r\n" + b"x" * 16384 + b"\r\n",  # exactly 16384: NOAUTH, stays open
    b"*1\r\n$4\r\nPING\r\n*11\r\n",                       # the error comes after the earlier reply
])
def test_unauthenticated_request_limits(auth_pair, data):
    r, s = auth_pair
    expected = _raw_exchange(r.port, data)
    actual = _raw_exchange(s.port, data)
    assert expected == actual


def test_limits_lifted_after_auth(auth_pair):
    r, s = auth_pair
    data = (b"*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n" + b"*11\r\n$4\r\nECHO\r\n" + b"$1\r\nx\r\n" * 10
            + b"*2\r\n$4\r\nECHO\r\n$20000\r\n" + b"y" * 20000 + b"\r\n")
    for server in (r, s):
        with RawClient(server.port) as c:
            c.send_raw(data)
            assert c.read_reply() == b"+OK\r\n"
            assert c.read_reply().startswith(b"-ERR wrong number of arguments for 'echo'")
            assert c.read_reply() == b"$20000\r\n" + b"y" * 20000 + b"\r\n"


# ------------------------------------------------------------------ redis-py


@pytest.mark.parametrize("protocol", [2, 3])
def test_redis_py_hello_and_auth(auth_pair, protocol):
    _, s = auth_pair
    r = redis.Redis(port=s.port, password=PASSWORD, protocol=protocol)
    assert r.ping() is True
    hello = r.execute_command("HELLO")  # redis-py's r.hello() is deliberately unimplemented
    if isinstance(hello, list):
        hello = dict(zip(hello[0::2], hello[1::2]))
    hello = {k.decode() if isinstance(k, bytes) else k: v for k, v in hello.items()}
    assert hello["proto"] == protocol
    assert r.auth(PASSWORD) is True
    no_retry = Retry(NoBackoff(), 0)
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=s.port, password="wrong", protocol=protocol, retry=no_retry).ping()
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=s.port, protocol=protocol, retry=no_retry).ping()
