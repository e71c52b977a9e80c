"""Shared fixtures: a real redis-server and a shoal-server per test session.

Tests talk to real processes over loopback. Each test gets clean servers
(FLUSHALL and CONFIG RESETSTAT-free state) through the function-scoped
fixtures; tests that need special start-up options start their own
``ServerProcess``.
"""

from __future__ import annotations

import pytest

from tests.differential import Differ
from tests.resp_client import RawClient
from tests.servers import ServerProcess

COMMON_ARGS = ("--enable-debug-command", "yes")


@pytest.fixture(scope="session")
def redis_proc():
    with ServerProcess("redis", *COMMON_ARGS) as proc:
        yield proc


@pytest.fixture(scope="session")
def shoal_proc():
    with ServerProcess("shoal", *COMMON_ARGS) as proc:
        yield proc


def _reset(port: int) -> None:
    with RawClient(port) as c:
        c.call("FLUSHALL")


@pytest.fixture
def differ(redis_proc, shoal_proc):
    """A Differ over RESP2 connections to freshly flushed servers."""
    _reset(redis_proc.port)
    _reset(shoal_proc.port)
    d = Differ(redis_proc.port, shoal_proc.port, protocol=2)
    yield d
    d.close()
    assert shoal_proc.alive(), "shoal-server died during the test:\n" + shoal_proc.log()


@pytest.fixture
def differ3(redis_proc, shoal_proc):
    """A Differ over RESP3 connections (after HELLO 3) to freshly flushed servers."""
    _reset(redis_proc.port)
    _reset(shoal_proc.port)
    d = Differ(redis_proc.port, shoal_proc.port, protocol=3)
    yield d
    d.close()
    assert shoal_proc.alive(), "shoal-server died during the test:\n" + shoal_proc.log()


@pytest.fixture
def shoal(shoal_proc):
    """A raw client to a freshly flushed shoal-server."""
    _reset(shoal_proc.port)
    with RawClient(shoal_proc.port) as c:
        yield c
    assert shoal_proc.alive(), "shoal-server died during the test:\n" + shoal_proc.log()
