"""Every use case runs twice: against Shoal, and against real redis-server to prove the test is right."""

from __future__ import annotations

import pytest
import redis


@pytest.fixture(params=["redis", "shoal"])
def server_port(request, redis_proc, shoal_proc):
    proc = redis_proc if request.param == "redis" else shoal_proc
    with redis.Redis(port=proc.port) as admin:
        admin.flushall()
    yield proc.port
    if request.param == "shoal":
        assert shoal_proc.alive(), "shoal-server died during the test:\n" + shoal_proc.log()


@pytest.fixture
def r(server_port):
    """A redis-py client as an application would create it (RESP2, decoded strings)."""
    client = redis.Redis(port=server_port, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def r3(server_port):
    """The same with RESP3."""
    client = redis.Redis(port=server_port, decode_responses=True, protocol=3)
    yield client
    client.close()
