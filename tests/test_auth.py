"""AUTH, HELLO ... AUTH and requirepass -- differential against redis-server started the same way."""

from __future__ import annotations

import pytest

from tests.resp_client import RawClient, parse
from tests.servers import ServerProcess


def _NO_RETRY():
    """redis-py retries a failed AUTH with backoff by default; a refusal should fail at once."""
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return Retry(NoBackoff(), 0)


class Pair:
    def __init__(self, redis_port: int, shoal_port: int) -> None:
        self.ports = (redis_port, shoal_port)
        self.redis = RawClient(redis_port)
        self.shoal = RawClient(shoal_port)

    def check(self, *argv, shape_only: bool = False):
        expected, actual = self.redis.call(*argv), self.shoal.call(*argv)
        if shape_only:  # HELLO's map holds ids/versions: compare only the reply kind
            expected, actual = expected[:1], actual[:1]
        assert expected == actual, f"{argv!r}\nredis: {expected!r}\nshoal: {actual!r}"
        return expected

    def again(self) -> "Pair":
        return Pair(*self.ports)

    def close(self) -> None:
        self.redis.close()
        self.shoal.close()


@pytest.fixture(scope="module")
def protected():
    args = ("--requirepass", "s3cret")
    with ServerProcess("redis", *args) as r, ServerProcess("shoal", *args) as s:
        yield r, s


@pytest.fixture
def pair(protected):
    r, s = protected
    p = Pair(r.port, s.port)
    yield p
    p.close()
    assert s.alive(), s.log()


def test_noauth_until_auth(pair):
    for argv in (("GET", "k"), ("PING",), ("SET", "k", "v"), ("ACL", "WHOAMI"), ("MULTI",), ("HELLO",),
                 ("HELLO", "3"), ("AUTH", "wrong"), ("AUTH", "default", "wrong"), ("AUTH", "nouser", "s3cret"),
                 ("AUTH", "a", "b", "c"), ("GET", "k"), ("AUTH", "s3cret"), ("GET", "k"), ("ACL", "WHOAMI")):
        pair.check(*argv)


def test_auth_with_username_and_hello(pair):
    pair.check("AUTH", "default", "s3cret")
    pair.check("PING")
    other = pair.again()
    try:
        other.check("HELLO", "2", "AUTH", "default", "bad")
        other.check("PING")
        other.check("HELLO", "3", "AUTH", "default", "s3cret", shape_only=True)
        other.check("PING")
        other.check("HELLO", "2", "AUTH", "default", "s3cret", "SETNAME", "x y", shape_only=True)
    finally:
        other.close()


def test_acl_view_of_requirepass(pair):
    pair.check("AUTH", "s3cret")
    pair.check("ACL", "LIST")
    pair.check("ACL", "GETUSER", "default")
    pair.check("CONFIG", "GET", "requirepass")


def test_requirepass_changes_at_runtime(pair):
    pair.check("AUTH", "s3cret")
    waiting = pair.again()  # connected while a password is required, never authenticated
    try:
        waiting.check("GET", "k")
        pair.check("CONFIG", "SET", "requirepass", "")
        pair.check("ACL", "LIST")
        waiting.check("GET", "k")  # the default user is nopass now: no AUTH needed
        waiting.check("HELLO", "2", shape_only=True)
        fresh = pair.again()
        fresh.check("GET", "k")
        fresh.check("AUTH", "whatever")
        fresh.close()
        pair.check("CONFIG", "SET", "requirepass", "n3w")
        pair.check("ACL", "LIST")
        late = pair.again()
        late.check("GET", "k")
        late.check("AUTH", "s3cret")
        late.check("AUTH", "n3w")
        late.check("GET", "k")
        late.close()
    finally:
        pair.check("CONFIG", "SET", "requirepass", "s3cret")
        waiting.close()


def test_reset_drops_authentication(pair):
    pair.check("AUTH", "s3cret")
    pair.check("GET", "k")
    pair.check("RESET")
    pair.check("GET", "k")
    pair.check("AUTH", "s3cret")


def test_default_user_disabled_or_passwordless():
    with ServerProcess("redis") as r, ServerProcess("shoal") as s:
        p = Pair(r.port, s.port)
        try:
            p.check("AUTH", "x")
            p.check("AUTH", "default", "anything")  # nopass: any password works
            p.check("ACL", "SETUSER", "admin", "on", ">adm", "+@all", "~*")
            p.check("ACL", "SETUSER", "default", "off")
            q = p.again()
            q.check("PING")
            q.check("AUTH", "default", "anything")
            q.check("AUTH", "admin", "adm")
            q.check("PING")
            q.check("ACL", "SETUSER", "default", "on", "resetpass")
            z = p.again()
            z.check("PING")
            z.check("AUTH", "")
            z.close()
            q.check("ACL", "SETUSER", "default", "nopass")
            q.close()
        finally:
            p.close()


def test_wrong_password_is_logged_and_changes_nothing(pair):
    other = pair.again()
    try:
        other.check("AUTH", "nope")
        other.check("SET", "k", "v")
    finally:
        other.close()
    pair.check("AUTH", "s3cret")
    pair.check("EXISTS", "k")
    log = parse(pair.shoal.call("ACL", "LOG", "1"))[0]
    fields = dict(zip(log[0::2], log[1::2])) if isinstance(log, list) else log
    assert fields[b"reason"] == b"auth" and fields[b"username"] == b"default" and fields[b"object"] == b"AUTH"


def test_redis_py_auth(protected):
    import redis

    _, s = protected
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis.Redis(port=s.port, password="bad", retry=_NO_RETRY()).ping()
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis.Redis(port=s.port, retry=_NO_RETRY()).ping()
    good = redis.Redis(port=s.port, password="s3cret", protocol=3)
    try:
        assert good.ping() and good.acl_whoami() == b"default"
    finally:
        good.close()
