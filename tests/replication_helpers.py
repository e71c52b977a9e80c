"""Helpers for the replication tests: a workload strategy, waiting for replicas, digests."""

from __future__ import annotations

import time

import redis
from hypothesis import strategies as st

DEBUG = ("--enable-debug-command", "yes")
FAST_REDIS_PRIMARY = ("--repl-diskless-sync-delay", "0")

_keys = st.sampled_from([b"k%d" % i for i in range(8)] + [b"{t}x", b"\xff\x00bin"])
_small = st.binary(min_size=0, max_size=12)
_member = st.sampled_from([b"a", b"b", b"c", b"d", b"e", b"1", b"2", b"300"])
_num = st.integers(min_value=-1000, max_value=1000)
_ttl_s = st.integers(min_value=100, max_value=10_000)


def _cmd(*parts):
    return st.tuples(*[p if isinstance(p, st.SearchStrategy) else st.just(p) for p in parts])


COMMANDS = st.one_of(
    _cmd(b"SET", _keys, _small),
    _cmd(b"SET", _keys, _small, b"EX", _ttl_s),
    _cmd(b"SET", _keys, _small, b"PX", st.integers(1, 40)),  # expires during the test
    _cmd(b"APPEND", _keys, _small),
    _cmd(b"INCRBY", _keys, _num),
    _cmd(b"INCRBYFLOAT", _keys, st.sampled_from([b"1.5", b"-0.25", b"3e2"])),
    _cmd(b"SETRANGE", _keys, st.integers(0, 20), _small),
    _cmd(b"LPUSH", _keys, _member, _member),
    _cmd(b"RPUSH", _keys, _member),
    _cmd(b"LPOP", _keys),
    _cmd(b"LTRIM", _keys, st.integers(-3, 3), st.integers(-3, 3)),
    _cmd(b"SADD", _keys, _member, _member),
    _cmd(b"SREM", _keys, _member),
    _cmd(b"SPOP", _keys),
    _cmd(b"ZADD", _keys, st.sampled_from([b"1", b"2.5", b"-inf", b"7"]), _member),
    _cmd(b"ZINCRBY", _keys, st.sampled_from([b"1", b"0.5"]), _member),
    _cmd(b"ZPOPMIN", _keys),
    _cmd(b"HSET", _keys, _member, _small),
    _cmd(b"HINCRBYFLOAT", _keys, _member, st.sampled_from([b"1.25", b"10"])),
    _cmd(b"HDEL", _keys, _member),
    _cmd(b"XADD", _keys, b"*", _member, _small),
    _cmd(b"XTRIM", _keys, b"MAXLEN", st.integers(0, 3)),
    _cmd(b"PFADD", _keys, _member, _member),
    _cmd(b"EXPIRE", _keys, _ttl_s),
    _cmd(b"PEXPIRE", _keys, st.integers(1, 40)),
    _cmd(b"PERSIST", _keys),
    _cmd(b"GETEX", _keys, b"EX", _ttl_s),
    _cmd(b"DEL", _keys),
    _cmd(b"RENAME", _keys, _keys),
    _cmd(b"COPY", _keys, _keys, b"REPLACE"),
    _cmd(b"SELECT", st.sampled_from([b"0", b"1", b"2"])),
    _cmd(b"EVAL", b"redis.call('set', KEYS[1], ARGV[1]); return redis.call('incr', KEYS[2])", b"2",
         _keys, _keys, _small),
    _cmd(b"MSET", _keys, _small, _keys, _small),
    _cmd(b"SETEX", _keys, _ttl_s, _small),
    _cmd(b"GETDEL", _keys),
    _cmd(b"SETBIT", _keys, st.integers(0, 64), st.sampled_from([b"0", b"1"])),
    _cmd(b"LMOVE", _keys, _keys, st.sampled_from([b"LEFT", b"RIGHT"]), st.sampled_from([b"LEFT", b"RIGHT"])),
    _cmd(b"LSET", _keys, st.integers(-2, 2), _member),
    _cmd(b"SMOVE", _keys, _keys, _member),
    _cmd(b"SUNIONSTORE", _keys, _keys, _keys),
    _cmd(b"ZUNIONSTORE", _keys, b"2", _keys, _keys),
    _cmd(b"HSETNX", _keys, _member, _small),
    _cmd(b"GEOADD", _keys, b"13.361389", b"38.115556", _member),
    _cmd(b"EXPIREAT", _keys, st.integers(4_000_000_000, 4_100_000_000)),
    _cmd(b"BLPOP", _keys, b"0.01"),
    _cmd(b"SRANDMEMBER", _keys),
    _cmd(b"ZRANGESTORE", _keys, _keys, b"0", b"-1"),
    _cmd(b"SORT", _keys, b"ALPHA", b"STORE", _keys),
    _cmd(b"BITOP", b"OR", _keys, _keys, _keys),
    _cmd(b"RESTORE", _keys, b"0", b'\x00\x01x\n\x00"\x80\x86_\xbd\xe8H\xd0', b"REPLACE"),
    _cmd(b"RESTORE", _keys, b"100000", b'\x00\x01x\n\x00"\x80\x86_\xbd\xe8H\xd0', b"REPLACE"),
    _cmd(b"UNLINK", _keys, _keys),
)

WORKLOADS = st.lists(st.one_of(COMMANDS, st.lists(COMMANDS, min_size=1, max_size=4)), min_size=1, max_size=30)


def run_workload(client: redis.Redis, workload) -> None:
    """Run a workload (a list of commands or MULTI blocks); errors (wrong type...) are part of it."""
    for item in workload:
        if isinstance(item, list):
            pipe = client.pipeline(transaction=True)
            for cmd in item:
                if cmd[0] == b"SELECT":
                    continue  # SELECT inside MULTI is fine but keep the client's db predictable
                pipe.execute_command(*cmd)
            try:
                pipe.execute(raise_on_error=False)
            except redis.ResponseError:
                pass
        else:
            try:
                client.execute_command(*item)
            except redis.ResponseError:
                pass


def expire_everything_due(client: redis.Redis, dbs=(0, 1, 2)) -> None:
    """Let the short TTLs pass and make the primary delete those keys (its DELs reach the replica)."""
    time.sleep(0.06)
    for db in dbs:
        client.execute_command("SELECT", db)
        cursor = 0
        while True:
            cursor, _ = client.execute_command("SCAN", cursor, "COUNT", 1000)
            if int(cursor) == 0:
                break
    client.execute_command("SELECT", 0)


def info(client: redis.Redis) -> dict:
    return client.info("replication")


def wait_link_up(replica: redis.Redis, timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = info(replica)
        if last.get("master_link_status") == "up":
            return last
        time.sleep(0.05)
    raise AssertionError(f"replica link not up: {last}")


def wait_caught_up(primary: redis.Redis, replica: redis.Redis, timeout: float = 20.0) -> int:
    """Wait until the replica processed the primary's whole stream; returns the offset."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        target = info(primary)["master_repl_offset"]
        got = info(replica)
        last = (target, got.get("slave_repl_offset"), got.get("master_link_status"))
        if got.get("master_link_status") == "up" and got.get("slave_repl_offset") == target:
            if info(primary)["master_repl_offset"] == target:
                return target
        time.sleep(0.03)
    raise AssertionError(f"replica did not catch up (primary, replica, link): {last}")


def digest(client: redis.Redis) -> bytes:
    return client.execute_command("DEBUG", "DIGEST")


def dump_all(client: redis.Redis, dbs=(0, 1, 2)) -> dict:
    """Every key's type, value and TTL in the given dbs, for a readable failure message."""
    out = {}
    for db in dbs:
        client.execute_command("SELECT", db)
        for key in client.keys("*"):
            out[(db, key)] = (client.type(key), client.execute_command("DEBUG", "DIGEST-VALUE", key),
                              client.pttl(key) > 0)
    client.execute_command("SELECT", 0)
    return out


def stat(client: redis.Redis, name: str) -> int:
    return int(client.info("stats")[name])
