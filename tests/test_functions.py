"""FUNCTION and FCALL against Redis 7.0, byte for byte, in RESP2 and RESP3.

Library loading and its errors, register_function's argument checking, flags,
FUNCTION LIST/STATS/DELETE/FLUSH, DUMP payloads (byte-identical to Redis's,
LZF compression included) and RESTORE in both directions, FCALL/FCALL_RO.
"""

from __future__ import annotations

import pytest

from tests.resp_client import RawClient, parse

LIB = "#!lua name=mylib\n" + "\n".join([
    "redis.register_function('echo_keys', function(keys, args) return {keys, args} end)",
    "redis.register_function{function_name='ro_get', callback=function(keys) return redis.call('get', keys[1]) end,",
    "  flags={'no-writes'}, description='read a key'}",
    "redis.register_function('setter', function(keys, args) return redis.call('set', keys[1], args[1]) end)",
    "redis.register_function('boom', function() error('boom') end)",
    "redis.register_function('wrongtype', function(keys) return redis.call('incr', keys[1]) end)",
    "redis.register_function('env', function() local t = {} for k in pairs(_G) do t[#t+1] = k end "
    "table.sort(t) return t end)",
    "redis.register_function('api', function() local t = {} for k in pairs(redis) do t[#t+1] = k end "
    "table.sort(t) return t end)",
])

REGISTRATION_BODIES = [
    "redis.register_function{function_name={}, callback=function() end}",
    "redis.register_function{callback=function() end}",
    "redis.register_function{function_name='x'}",
    "redis.register_function{function_name='x', callback=function() end, foo=1}",
    "redis.register_function{function_name='x', callback=function() end, [1]=1}",
    "redis.register_function{function_name='x', callback=function() end, description=5}",
    "redis.register_function{function_name='x', callback=function() end, description={}}",
    "redis.register_function{function_name='x', callback=function() end, flags={'NO-WRITES'}}",
    "redis.register_function{function_name='x', callback=function() end, flags={'bad'}}",
    "redis.register_function{function_name='x', callback=function() end, flags='no-writes'}",
    "redis.register_function{function_name='x', callback=function() end, flags={1}}",
    "redis.register_function{function_name='x', callback=5}",
    "redis.register_function{function_name=5, callback=function() end}",
    "redis.register_function{}",
    "redis.register_function(5)",
    "redis.register_function('x')",
    "redis.register_function('x', 1)",
    "redis.register_function(1, function() end)",
    "redis.register_function({}, function() end)",
    "redis.register_function()",
    "redis.register_function(1, 2, 3)",
    "redis.register_function('a-b', function() end)",
    "redis.register_function('', function() end)",
    "redis.register_function('x', function() end)\nredis.register_function('x', function() end)",
    "redis.register_function('x', function() end)\nerror('late')",
    "x = 1",
    "local a = x",
    "syntax error",
    "return 1",
    "local x = string.format('%d', 1)",
    "local x = redis.call('ping')",
    "local x = redis.setresp(3)",
    "local x = math.random()",
    "redis.register_function('x', function() end)\nredis.log(redis.LOG_DEBUG, 'loading')",
    "redis.register_function('x', function() end)\nlocal v = redis.REDIS_VERSION",
    "redis.register_function('x', function() end)\nredis.foo = 1",
    "redis.register_function('x', function() end)\nlocal t = redis.foo",
    "redis.register_function('x', function() return redis.register_function('y', function() end) end)",
    "local function f() return 1 end redis.register_function('x', f) redis.register_function('y', f)",
    "while true do end",
]

METADATA = [
    "#!lua name=lib-7\nredis.register_function('x', function() end)",
    "#!lua name=\nredis.register_function('x', function() end)",
    "#!lua\nredis.register_function('x', function() end)",
    "#!lua name=a name=b\nredis.register_function('x', function() end)",
    "#!lua name=a foo=b\nredis.register_function('x', function() end)",
    "#!js name=a\nredis.register_function('x', function() end)",
    "#!lua name=a",
    "lua name=a\n",
    "#!lua name=\"q q\"\nredis.register_function('x', function() end)",
]


def test_registration_and_metadata_errors(differ):
    differ.check("FUNCTION", "FLUSH")
    for body in REGISTRATION_BODIES:
        differ.check("FUNCTION", "LOAD", "#!lua name=lib7\n" + body)
        differ.check("FCALL", "x", "0")
        differ.check("FUNCTION", "DELETE", "lib7")
    for code in METADATA:
        differ.check("FUNCTION", "LOAD", code)
        differ.check("FUNCTION", "FLUSH")
    for args in (("REPLACE",), ("REPLACE", "x", "y"), ("foo", "x"), ()):
        differ.check("FUNCTION", "LOAD", *args)
    differ.check("FUNCTION", "LOAD", "#!LUA NAME=upper\nredis.register_function('up', function() return 1 end)")
    differ.check("FCALL", "UP", "0")


def test_fcall_conversions_errors_and_flags(differ, differ3):
    for d in (differ, differ3):
        d.check("FUNCTION", "FLUSH")
        d.check("FLUSHALL")
        d.check("FUNCTION", "LOAD", LIB)
        d.check("FUNCTION", "LOAD", LIB)
        d.check("FUNCTION", "LOAD", "REPLACE", LIB)
        d.check("FCALL", "echo_keys", "2", "k1", "k2", "a1")
        d.check("FCALL", "ECHO_KEYS", "0")
        d.check("FCALL", "nosuch", "0")
        d.check("FCALL", "echo_keys", "x")
        d.check("FCALL", "echo_keys", "-1")
        d.check("FCALL", "echo_keys", "3", "a")
        d.check("FCALL", "setter", "1", "k", "v")
        d.check("FCALL_RO", "setter", "1", "k", "v")
        d.check("FCALL", "ro_get", "1", "k")
        d.check("FCALL_RO", "ro_get", "1", "k")
        d.check("FCALL", "boom", "0")
        d.check("FCALL", "wrongtype", "1", "k")
        d.check("FCALL", "env", "0")
        d.check("FCALL", "api", "0")
        d.check("FUNCTION", "LOAD", "#!lua name=other\nredis.register_function('setter', function() end)")
        d.check("FUNCTION", "LOAD", "#!lua name=other\nredis.register_function('SETTER', function() end)")
        d.check("FUNCTION", "LOAD", "#!lua name=other\nredis.register_function{function_name='w', "
                "callback=function() return redis.call('set', 'a', 'b') end, flags={'no-writes'}}")
        d.check("FCALL", "w", "0")
        d.check("FUNCTION", "DELETE", "other")


def test_list_stats_delete_flush_help(differ, differ3):
    for d in (differ, differ3):
        d.check("FUNCTION", "FLUSH")
        d.check("FUNCTION", "LIST")
        d.check("FUNCTION", "STATS")
        d.check("FUNCTION", "LOAD", "#!lua name=lib8\nredis.register_function{function_name='b', "
                "callback=function() end, flags={'no-writes', 'allow-stale'}, description='hello'}")
        d.check("FUNCTION", "LIST")
        d.check("FUNCTION", "LIST", "WITHCODE")
        d.check("FUNCTION", "LOAD", "#!lua name=lib9\nredis.register_function{function_name='c', "
                "callback=function() end, flags={'allow-cross-slot-keys', 'no-cluster', 'allow-oom'}}")
        d.check("FUNCTION", "LIST", "LIBRARYNAME", "lib8", "WITHCODE")
        d.check("FUNCTION", "LIST", "LIBRARYNAME", "*9")
        d.check("FUNCTION", "LIST", "withcode", "libraryname", "LIB9")
        d.check("FUNCTION", "LIST", "LIBRARYNAME")
        d.check("FUNCTION", "LIST", "LIBRARYNAME", "x", "LIBRARYNAME", "y")
        d.check("FUNCTION", "LIST", "WITHCODE", "WITHCODE")
        d.check("FUNCTION", "LIST", "foo")
        d.check("FUNCTION", "STATS")
        d.check("FUNCTION", "DELETE", "lib8")
        d.check("FUNCTION", "DELETE", "lib8")
        d.check("FUNCTION", "DELETE", "LIB9")
        d.check("FUNCTION", "LIST")
        d.check("FUNCTION", "KILL")
        d.check("FUNCTION", "HELP")
        d.check("FUNCTION", "FLUSH", "ASYNC")
        d.check("FUNCTION", "FLUSH", "SYNC")
        d.check("FUNCTION", "FLUSH", "X")
        d.check("FUNCTION", "FLUSH", "SYNC", "X")
        for args in (("STATS", "X"), ("NOSUCH",), (), ("DELETE",), ("DELETE", "a", "b"), ("DUMP", "x"),
                     ("KILL", "x"), ("RESTORE",), ("RESTORE", "x"), ("RESTORE", "x", "y"),
                     ("RESTORE", "x", "append", "z")):
            d.check("FUNCTION", *args)
        d.check("FUNCTION", "STATS")


def _payload(raw: bytes) -> bytes:
    return parse(raw)


@pytest.mark.parametrize("code", [
    "#!lua name=z\nredis.register_function('z', function() end)",
    "#!lua name=lib9\nredis.register_function{function_name='c', callback=function() end, "
    "flags={'allow-cross-slot-keys', 'no-cluster', 'allow-oom'}}",
    LIB,
    "#!lua name=big\n" + "\n".join(f"redis.register_function('f{i}', function() return {i} end)" for i in range(60)),
])
def test_dump_is_byte_identical_and_restores_both_ways(differ, code):
    differ.check("FUNCTION", "FLUSH")
    differ.check("FUNCTION", "DUMP")
    differ.check("FUNCTION", "LOAD", code)
    payload = _payload(differ.check("FUNCTION", "DUMP"))
    for policy in ((), ("APPEND",), ("REPLACE",), ("FLUSH",), ("BAD",)):
        differ.check("FUNCTION", "RESTORE", payload, *policy)
    differ.check("FUNCTION", "FLUSH")
    differ.check("FUNCTION", "RESTORE", payload)
    differ.check("FUNCTION", "LIST", "WITHCODE")
    corrupted = payload[:-1] + bytes([payload[-1] ^ 1])
    differ.check("FUNCTION", "RESTORE", corrupted)
    differ.check("FUNCTION", "RESTORE", payload[:5])


def test_restore_of_several_libraries_and_collisions(differ, shoal_proc, redis_proc):
    differ.check("FUNCTION", "FLUSH")
    differ.check("FUNCTION", "LOAD", "#!lua name=one\nredis.register_function('f1', function() return 1 end)")
    differ.check("FUNCTION", "LOAD", "#!lua name=two\nredis.register_function('f2', function() return 2 end)")
    # Redis orders libraries by hash; take Redis's payload and restore it into both.
    payload = _payload(differ.redis.call("FUNCTION", "DUMP"))
    differ.check("FUNCTION", "FLUSH")
    differ.check("FUNCTION", "LOAD", "#!lua name=other\nredis.register_function('f2', function() return 9 end)")
    differ.check("FUNCTION", "RESTORE", payload)
    differ.check("FUNCTION", "RESTORE", payload, "REPLACE")
    differ.check("FCALL", "f2", "0")
    differ.check("FUNCTION", "RESTORE", payload, "FLUSH")
    differ.check("FCALL", "f1", "0")
    differ.check("FCALL", "f2", "0")
    # Which colliding library APPEND names depends on the order Redis walks its
    # hash table, which changes with each process's random hash seed.
    collisions = {b"-ERR Library one already exists\r\n", b"-ERR Library two already exists\r\n"}
    real, ours = differ.both("FUNCTION", "RESTORE", payload, "APPEND")
    assert real in collisions and ours in collisions, (real, ours)
    differ.check("FUNCTION", "RESTORE", payload, "REPLACE")
    differ.check("FCALL", "f1", "0")
    # Shoal's own multi-library payload round-trips through Redis and back.
    with RawClient(shoal_proc.port) as shoal:
        own = parse(shoal.call("FUNCTION", "DUMP"))
    with RawClient(redis_proc.port) as real:
        assert real.call("FUNCTION", "RESTORE", own, "FLUSH") == b"+OK\r\n"
        assert real.call("FCALL", "f2", "0") == b":2\r\n"


def test_function_runtime_sandbox(differ):
    differ.check("FUNCTION", "FLUSH")
    differ.check("FUNCTION", "LOAD", "#!lua name=sb\n" + "\n".join([
        "redis.register_function('g', function() x = 1 end)",
        "redis.register_function('r', function() return y end)",
        "redis.register_function('t', function() return tostring(redis.foo) end)",
        "redis.register_function('k', function() return KEYS end)",
        "redis.register_function('reg', function() return redis.register_function('z', function() end) end)",
        "redis.register_function('c', function(keys, args) return cjson.encode({keys, args}) end)",
    ]))
    for name in ("g", "r", "t", "k", "reg"):
        differ.check("FCALL", name, "0")
    differ.check("FCALL", "c", "1", "key", "arg")
