"""Shared machinery for the blocking-command tests (lists, sorted sets, streams).

A scenario is a function that drives a few connections to one server and
returns what it observed (raw replies, in order). ``both`` runs it once
against redis-server and once against shoal-server, in RESP2 and in RESP3,
and requires identical observations.

No timing assertions: a client is known to be blocked when INFO clients says
so (``wait_blocked``), and a server runs commands in order, so once a
writer's reply is back the waiters it woke have been served.

Test modules use the fixtures by importing them:
``from tests.blocking_helpers import both, protocol  # noqa: F401``.
"""

from __future__ import annotations

import time

import pytest

from tests.resp_client import RawClient, encode_command, parse

NIL2, NIL3 = b"*-1\r\n", b"_\r\n"
NULLS = (NIL2, NIL3)


class Conn(RawClient):
    def __init__(self, port: int, protocol: int) -> None:
        super().__init__(port)
        if protocol == 3:
            self.call("HELLO", "3")

    def send(self, *argv) -> None:
        """Send without waiting for the reply (the command may block)."""
        self.send_raw(encode_command(*argv))


def blocked_clients(ctl: RawClient) -> int:
    info = parse(ctl.call("INFO", "clients")).decode()
    return int(info.split("blocked_clients:")[1].split("\r\n")[0])


def wait_blocked(ctl: RawClient, n: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while blocked_clients(ctl) != n:
        if time.monotonic() > deadline:
            raise AssertionError(f"expected {n} blocked clients, have {blocked_clients(ctl)}")
        time.sleep(0.002)


class Run:
    """The connections of one scenario run, closed at the end."""

    def __init__(self, port: int, protocol: int) -> None:
        self.port = port
        self.protocol = protocol
        self.conns: list[Conn] = []
        self.ctl = self.conn()
        wait_blocked(self.ctl, 0)  # nothing left over from an earlier test
        self.ctl.call("FLUSHALL")

    def conn(self) -> Conn:
        c = Conn(self.port, self.protocol)
        self.conns.append(c)
        return c

    def blocked(self, n: int) -> None:
        wait_blocked(self.ctl, n)

    def close(self) -> None:
        for c in self.conns:
            c.close()


def compare(redis_proc, shoal_proc, scenario, protocol):
    """Run ``scenario`` on both servers; require the same observations; return Redis's."""
    results = []
    for port in (redis_proc.port, shoal_proc.port):
        run = Run(port, protocol)
        try:
            results.append(scenario(run))
        finally:
            run.close()
    expected, actual = results
    assert actual == expected, f"\nredis: {expected}\nshoal: {actual}"
    return expected


@pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
def protocol(request):
    return request.param


@pytest.fixture
def both(redis_proc, shoal_proc, protocol):
    def run(scenario):
        return compare(redis_proc, shoal_proc, scenario, protocol)

    yield run
    assert shoal_proc.alive(), "shoal-server died during the test:\n" + shoal_proc.log()
