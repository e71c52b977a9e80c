"""The basics through real clients: redis-cli and redis-py against shoal-server."""

from __future__ import annotations

import subprocess

import redis


def test_redis_py_resp3_default(shoal_proc, shoal):
    r = redis.Redis(port=shoal_proc.port, protocol=3)
    assert r.set("greeting", "hello") is True
    assert r.get("greeting") == b"hello"
    assert r.ping() is True


def test_redis_py_resp2(shoal_proc, shoal):
    r = redis.Redis(port=shoal_proc.port, protocol=2)
    assert r.set("k", "v", ex=100) is True
    assert r.get("k") == b"v"


def test_redis_cli(shoal_proc, shoal):
    out = subprocess.run(
        ["redis-cli", "-p", str(shoal_proc.port), "set", "cli-key", "x y"],
        capture_output=True, text=True, check=True,
    ).stdout
    assert out.strip() == "OK"
    out = subprocess.run(
        ["redis-cli", "-p", str(shoal_proc.port), "get", "cli-key"],
        capture_output=True, text=True, check=True,
    ).stdout
    assert out.strip() == "x y"


def test_unknown_and_arity_errors_match_redis(differ):
    differ.check("NOSUCHCOMMAND", "a", "b")
    differ.check("GET")
    differ.check("SET", "k")
    differ.check("get", "k", "extra")
