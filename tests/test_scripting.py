"""EVAL / EVALSHA / EVAL_RO / SCRIPT against Redis 7.0, byte for byte, in RESP2 and RESP3.

Conversions both ways (a table of scripts returning every kind of value and
calling every kind of command), errors and their exact texts (positions,
``script: <sha>, on @user_script:N.``), the sandbox (globals, read-only
tables, removed libraries), the bundled libraries, INFO error accounting, the
BUSY / SCRIPT KILL dance with concurrent clients, and two use cases through
redis-py's ``register_script``.
"""

from __future__ import annotations

import hashlib
import threading
import time

import pytest
import redis

from tests.resp_client import RawClient, encode_command, parse
from tests.servers import ServerProcess


# Scripts whose replies must be identical on both servers, in both protocols.
CONVERSIONS = [
    "return 1", "return -7", "return 3.99", "return -3.7", "return 1e20", "return 0/0", "return 1/0",
    "return 'x'", "return ''", "return true", "return false", "return nil", "return {}",
    "return {1, 2, 3, 'ciao', {1, 2}}", "return {1, 2, nil, 3}", "return {1, true, false, 'x', {2}}",
    "return {a=1}", "return function() end",
    "return {ok='fine'}", "return {ok='a\\r\\nb'}", "return {err='bad'}", "return {err='-bad thing'}",
    "return {err='bad\\r\\nthing'}", "return {err='x\\n'}", "return {err=''}", "return {ok=3}", "return {err=3}",
    "return {1, {err='x'}, {ok='y'}}",
    "return {double=3.5}", "return {double=0.1}", "return {double=1/0}", "return {double=-1/0}",
    "return {double=3}", "return {double='3.5'}",
    "return {big_number='123456789012345678901234567890'}", "return {big_number='1\\r\\n2'}",
    "return {map={a=1}}", "return {set={a=true}}", "return {1, 2, {map={a=1}}}",
    "return {verbatim_string={format='txt', string='hello'}}",
    "return {verbatim_string={format='mkdx', string='hello'}}",
    "return {verbatim_string={format='m', string='hello'}}",
    "redis.setresp(3); return true", "redis.setresp(3); return false", "redis.setresp(3); return nil",
    "redis.setresp(3); return {1, false, true}", "redis.setresp(3); return {double=0.1}",
    "return redis.status_reply('FINE')", "return redis.error_reply('MY err')", "return redis.error_reply('-MY err')",
    "return redis.error_reply('')", "return redis.error_reply(1)", "return redis.status_reply(1)",
    "return redis.error_reply()", "return redis.error_reply('a\\nb\\n')",
    "return {redis.REDIS_VERSION, redis.REDIS_VERSION_NUM}",
    "return {redis.LOG_DEBUG, redis.LOG_VERBOSE, redis.LOG_NOTICE, redis.LOG_WARNING}",
    "return {redis.REPL_NONE, redis.REPL_AOF, redis.REPL_SLAVE, redis.REPL_REPLICA, redis.REPL_ALL}",
    "return redis.sha1hex('')", "return redis.sha1hex(1)", "return redis.sha1hex({})", "return redis.sha1hex()",
    "return redis.log(redis.LOG_DEBUG, 'hello', 'x', 1)", "return redis.log(redis.LOG_WARNING)",
    "return redis.log('x', 'y')", "return redis.log(9, 'y')",
    "return redis.breakpoint()", "return redis.debug('x')", "return redis.replicate_commands()",
    "return redis.set_repl(redis.REPL_ALL)", "return redis.set_repl(99)",
    "return redis.setresp(4)", "return redis.setresp()", "return redis.setresp('3')", "return redis.setresp('x')",
    "return redis.acl_check_cmd('get', 'x')", "return redis.acl_check_cmd('nosuch')",
]

# Scripts calling commands (the data set below is loaded first).
COMMANDS = [
    "return redis.call('get','str')", "return redis.call('get','nokey')", "return type(redis.call('get','nokey'))",
    "return redis.call('set','x','1')", "return type(redis.call('set','x','1'))", "return redis.call('set','x','1').ok",
    "return redis.call('incr','x')", "return redis.call('mget','str','nokey','x')",
    "return redis.call('ping')", "return redis.call('echo', 'hi')", "return redis.call('GET', 'str')",
    "return redis.call('exists', 'str', 'nokey')", "return redis.call('type', 'str')",
    "return redis.call('incrbyfloat', 'f', '1.5')",
    "redis.setresp(3); return redis.call('get','nokey')", "redis.setresp(3); return type(redis.call('get','nokey'))",
    "redis.setresp(3); return redis.call('mget','str','nokey')",
    "return redis.call('set', 'n', 3.5) and redis.call('get', 'n')",
    "redis.call('set', 'n', 1/3); return redis.call('get', 'n')",
    "redis.call('set', 'n', 1e100); return redis.call('get', 'n')",
    "redis.call('set', 'n', 10); return redis.call('get', 'n')",
    "redis.call('set', 'n', true); return redis.call('get', 'n')",
    "return redis.call('incr', 'str')", "return redis.pcall('incr', 'str')",
    "local r = redis.pcall('incr', 'str'); return r.err",
    "local ok, e = pcall(redis.call, 'incr', 'str'); return {tostring(ok), type(e), e}",
    "local ok, e = pcall(function() redis.call('incr', 'str') end); return {tostring(ok), type(e)}",
    "local t = {} for k, v in pairs(redis.pcall('incr', 'str')) do t[#t+1] = k .. '=' .. tostring(v) end "
    "table.sort(t) return t",
    "local t = {} for k, v in pairs(redis.pcall('get')) do t[#t+1] = k .. '=' .. tostring(v) end "
    "table.sort(t) return t",
    "return redis.call('nosuch')", "return redis.pcall('nosuch')", "return redis.call('get')",
    "return redis.pcall('get')", "return redis.call('get', 'a', 'b')", "return redis.call()", "return redis.pcall()",
    "return redis.call({})", "return redis.call('get', {})", "return redis.pcall('get', {})",
    "return redis.call('hello')", "return redis.pcall('client', 'id')", "return redis.call('multi')",
    "return redis.call('eval', 'return 1', 0)", "return redis.call('script', 'exists', 'x')",
    "return redis.call('config')", "return redis.call('config', 'nosuch')",
    "return redis.call('object', 'help')", "return redis.call('publish', 'ch', 'x')",
    "redis.call('select', 1); return redis.call('get', 'k0')", "return redis.call('get', 'k0')",
    "return redis.call('Select', 0)",
]

ERRORS = [
    "error('boom')", "error({err='X boom'})", "error(nil)", "error(123)", "error('x', 0)", "error('x', 2)",
    "error({err='ERR x', source='s', line=5})", "error('a\\nb')", "error({err='a\\r\\nb'})", "error('x\\n')",
    "local t = nil; return t.x", "return 1 + {}", "\n\nlocal t = nil\nreturn t.x",
    "return syntax error here", "return 'unterminated", "end", "return 1 end function x() return 2",
    "#!lua\nreturn 1", "#!lua flags=no-writes\nreturn 1", "#!lua flags=no-writes\nreturn redis.call('set','a','b')",
    "#!lua flags=no-writes,allow-oom\nreturn 1", "#!lua flags=\nreturn 1", "#!lua flags=bad\nreturn 1",
    "#!lua name=x\nreturn 1", "#!luaa\nreturn 1", "#!lua", "#!\nreturn 1", "#! lua\nreturn 1",
    "#!lua  flags=no-writes\nreturn 1", "#!lua\nerror('x')",
    "local ok, e = pcall(function() error('x') end); return {tostring(ok), e}",
    "local ok, e = pcall(function() error({err='x'}) end); return {tostring(ok), type(e), e}",
    "local ok, e = pcall(function() error({a='x'}) end); return {tostring(ok), type(e)}",
    "return pcall()", "return {pcall(error)}", "local ok, e = pcall(error, {err='x'}) return e",
    "return select('#', pcall(function() return 1, 2, 3 end))",
    "local function f(n) if n == 0 then return 'done' end return f(n - 1) end return f(50)",
]

SANDBOX = [
    "x = 1", "return x", "return os", "return io", "return type(loadstring)", "return loadstring('return 1')()",
    "local f = loadstring('x=5'); f(); return 1", "return type(print)", "return type(debug)",
    "return type(getfenv)", "return type(setfenv)", "return type(require)", "return type(dofile)",
    "return type(loadfile)", "return type(module)", "return tostring(newproxy)",
    "local t = {} for k,v in pairs(_G) do t[#t+1] = k .. ':' .. type(v) end table.sort(t) return t",
    "return type(_G)", "string.x = 1", "rawset(_G, 'x', 1)", "setmetatable(_G, {})",
    "return getmetatable(_G) == nil", "KEYS = 1", "KEYS[5] = 1 return #KEYS", "redis = nil",
    "local r = redis; r.call = nil", "return getmetatable('').__index == string", "getmetatable('').__index = {}",
    "return _VERSION", "return tostring(redis.foo)", "return tostring(string.foo)", "return tostring(cjson.foo)",
    "return {loadstring(string.dump(function() return 1 end))}",
    "local f = loadstring('error(\"x\")', 'name') return f()", "local f = loadstring('error(\"x\")', '@name') return f()",
    "return loadstring()", "return load(function() return nil end)", "return loadstring('return x')()",
    "local f, e = loadstring('syntax error') return e", "return type(coroutine)", "coroutine.x = 1",
    "local co = coroutine.create(function() coroutine.yield(1) end); local ok, v = coroutine.resume(co); return v",
    "return string.rep('x', 3)", "return ('x'):rep(3)", "return rawget(_G, 'redis') == redis",
    "return rawget(string, 'rep') ~= nil", "return next(_G) ~= nil", "return rawset({}, 1)", "return rawset()",
    "return setmetatable({}, 1)", "local t = setmetatable({}, {__metatable=1}); return setmetatable(t, {})",
    "return getmetatable()", "return next()", "return pairs()", "return pairs(nil)", "table.insert(string, 5)",
    "return tostring(string[1])", "return math.random(1, 10, 3)", "return math.random('x')",
    "return math.random(0)", "return math.randomseed()", "return tostring(math.pi)", "return math.huge",
    "return string.format('%d %s %5.2f', 3, 'x', 1.5)", "return tostring(1e15)", "return tostring(0.1)",
    "local t = setmetatable({}, {__index=function() return 1 end}) return t.x",
    "for _, lib in ipairs{'string', 'table', 'math', 'redis', 'cjson', 'bit', 'struct', 'cmsgpack', 'coroutine'} do "
    "local t = {} for k, v in pairs(_G[lib]) do t[#t+1] = k .. ':' .. type(v) end table.sort(t) "
    "redis.call('rpush', 'libs', lib .. '=' .. table.concat(t, ',')) end return redis.call('lrange', 'libs', 0, -1)",
]

LIBRARIES = [
    "return cjson.encode({1, 2, 3})", "return cjson.encode({a={1, 'x', false}})", "return cjson.encode('a/b\"\\n')",
    "return cjson.encode({})", "return cjson.encode(3.5)", "return cjson.encode(1e20)", "return cjson.encode(nil)",
    "return cjson.encode(cjson.null)", "return cjson.encode({[1]=1, [3]=3})", "return cjson.encode({[1]=1, [30]=3})",
    "return cjson.encode(function() end)", "return cjson.encode(1/0)", "return cjson.encode()",
    "return cjson.decode('[1, 2, {\"a\": \"b\"}]')[3].a", "return cjson.decode('{\"a\": [1, 2.5]}').a",
    "return cjson.decode('null') == cjson.null", "return type(cjson.decode('[null]')[1])",
    "return cjson.decode('\"\\\\u00e9\"')", "return cjson.encode(cjson.decode('{\"k\":[1,2,3]}'))",
    "return bit.band(0xff, 0x0f)", "return bit.bor(1, 2, 4)", "return bit.bxor(5, 3)", "return bit.bnot(0)",
    "return bit.lshift(1, 31)", "return bit.rshift(-1, 28)", "return bit.arshift(-256, 4)", "return bit.tobit(2^32 + 5)",
    "return bit.tohex(255)", "return bit.tohex(-1, -4)", "return bit.rol(1, 33)", "return bit.ror(1, 1)",
    "return bit.bswap(0x12345678)", "return bit.band('x')", "return bit.tobit(3.5)", "return bit.tobit(2.5)",
    "return struct.pack('>i2', 5)", "return {struct.unpack('>i2', struct.pack('>i2', -5))}",
    "return struct.size('>i4d')", "return {struct.unpack('<I4', 'abcd')}",
    "return cmsgpack.pack({1, 2, 3})", "return cmsgpack.pack({a=1})", "return cmsgpack.pack(1.5, -1, 300, 'x')",
    "return {cmsgpack.unpack(cmsgpack.pack({1, 2, 3}, 'x', 7))}", "return cmsgpack.pack(2^40)",
    "return cmsgpack.pack(-2^40)", "return cmsgpack.pack(string.rep('x', 40))",
]


def _load_dataset(d):
    d.check("SET", "str", "v")
    d.check("SET", "k0", "db0")
    d.check("SELECT", "1")
    d.check("SET", "k0", "db1")
    d.check("SELECT", "0")


@pytest.mark.parametrize("group", ["conversions", "commands", "errors", "sandbox", "libraries"])
def test_scripts_match_redis_resp2_and_resp3(differ, differ3, group):
    scripts = {"conversions": CONVERSIONS, "commands": COMMANDS, "errors": ERRORS, "sandbox": SANDBOX,
               "libraries": LIBRARIES}[group]
    for d in (differ, differ3):
        d.check("FLUSHALL")
        d.check("SCRIPT", "FLUSH")
        _load_dataset(d)
        for script in scripts:
            d.check("EVAL", script, "0")


def test_keys_and_argv(differ, differ3):
    for d in (differ, differ3):
        d.check("EVAL", "return KEYS[1]..ARGV[1]", "1", "k", "a")
        d.check("EVAL", "return {KEYS, ARGV}", "2", "k", "j", "a", "b")
        d.check("EVAL", "return {#KEYS, #ARGV}", "0")
        d.check("EVAL", "return 1", "-1")
        d.check("EVAL", "return 1", "2", "a")
        d.check("EVAL", "return 1", "x")
        d.check("EVAL", "return 1", "1.5")
        d.check("EVAL", "return 1")
        d.check("EVAL", "return redis.call('set', KEYS[1], ARGV[1])", "1", "key", "value")
        d.check("GET", "key")


def test_evalsha_script_load_exists_flush(differ, differ3):
    body = "return {KEYS[1], ARGV[1], 'sha'}"
    sha = hashlib.sha1(body.encode()).hexdigest()
    for d in (differ, differ3):
        d.check("SCRIPT", "FLUSH")
        d.check("EVALSHA", sha, "1", "k", "a")
        d.check("EVALSHA", "short", "0")
        d.check("EVALSHA", sha, "x")
        d.check("SCRIPT", "LOAD", body)
        d.check("SCRIPT", "EXISTS", sha, sha.upper(), "nosuch")
        d.check("EVALSHA", sha, "1", "k", "a")
        d.check("EVALSHA", sha.upper(), "1", "k", "a")
        d.check("EVALSHA_RO", sha, "1", "k", "a")
        d.check("SCRIPT", "LOAD", "return syntax error")
        d.check("SCRIPT", "LOAD", "#!lua flags=bogus\nreturn 1")
        d.check("SCRIPT", "EXISTS", hashlib.sha1(b"#!lua flags=bogus\nreturn 1").hexdigest())
        d.check("EVAL", "return 'cached by eval'", "0")
        d.check("SCRIPT", "EXISTS", hashlib.sha1(b"return 'cached by eval'").hexdigest())
        d.check("SCRIPT", "FLUSH", "ASYNC")
        d.check("SCRIPT", "EXISTS", sha)
        d.check("SCRIPT", "FLUSH", "SYNC")
        d.check("SCRIPT", "FLUSH", "BAD")
        d.check("SCRIPT", "FLUSH", "SYNC", "X")
        d.check("SCRIPT", "LOAD")
        d.check("SCRIPT", "EXISTS")
        d.check("SCRIPT", "KILL")
        d.check("SCRIPT", "KILL", "x")
        d.check("SCRIPT", "HELP")
        d.check("SCRIPT", "NOSUCH")
        d.check("SCRIPT", "DEBUG", "NO")
        d.check("SCRIPT", "DEBUG", "MAYBE")


def test_read_only_scripts(differ, differ3):
    for d in (differ, differ3):
        d.check("EVAL_RO", "return redis.call('set','a','b')", "0")
        d.check("EVAL_RO", "return redis.call('get','a')", "0")
        d.check("EVAL_RO", "#!lua\nreturn redis.call('get','a')", "0")
        d.check("EVAL_RO", "#!lua flags=no-writes\nreturn redis.call('get','a')", "0")
        d.check("EVAL_RO", "return redis.pcall('set','a','b')", "0")
        d.check("EVAL", "#!lua flags=no-writes\nreturn redis.pcall('set','a','b')", "0")
        d.check("EXISTS", "a")


def test_writes_before_an_error_stay(differ):
    # Redis does not roll back: the first SET stays, the script fails at the second command.
    differ.check("EVAL", "redis.call('set', 'a', '1'); redis.call('incr', 'nonnum'); redis.call('set', 'b', '2')",
                 "0")
    differ.check("SET", "nonnum", "x")
    differ.check("EVAL", "redis.call('set', 'a', '2'); redis.call('incr', 'nonnum'); redis.call('set', 'b', '2')",
                 "0")
    differ.check("MGET", "a", "b")


def test_random_is_redis_lrand48(differ):
    # Both servers seed Redis's rand48 the same way at start; a seed makes the sequence the same.
    differ.check("EVAL", "math.randomseed(5); return {math.random(1000), math.random(), math.random(3, 9)}", "0")
    differ.check("EVAL", "math.randomseed(42); local t = {} for i = 1, 20 do t[i] = math.random(100) end return t",
                 "0")


def test_error_statistics(differ):
    differ.check("SET", "str", "v")
    differ.check("CONFIG", "RESETSTAT")
    for script in ["return redis.call('incr', 'str')", "return redis.pcall('incr', 'str')",
                   "local r = redis.pcall('incr', 'str') return 1", "return redis.call('get')",
                   "return redis.pcall('get')", "return redis.pcall('nosuch')", "error('x')",
                   "return {err='FOO bar'}", "local t = redis.pcall('get'); t.ignore_error_stats_update = nil; return t"]:
        differ.check("EVAL", script, "0")
    differ.check("INFO", "errorstats")
    redis_stats, shoal_stats = differ.both("INFO", "commandstats")

    def counts(raw):
        out = {}
        for line in parse(raw).decode().splitlines():
            if line.startswith("cmdstat_"):
                name, fields = line.split(":", 1)
                out[name] = {k: v for k, v in (f.split("=") for f in fields.split(",")) if k in
                             ("calls", "rejected_calls", "failed_calls")}
        return out

    assert counts(redis_stats) == counts(shoal_stats)


def test_script_client_does_not_change_caller_db(differ):
    differ.check("SELECT", "2")
    differ.check("EVAL", "redis.call('select', 3); redis.call('set', 'where', 'three'); return 1", "0")
    differ.check("SET", "where", "two")
    differ.check("SELECT", "3")
    differ.check("GET", "where")


def test_blocked_client_served_after_the_script(shoal_proc):
    with RawClient(shoal_proc.port) as blocker, RawClient(shoal_proc.port) as writer:
        blocker.call("DEL", "q")
        blocker.send_raw(encode_command("BLPOP", "q", "0"))
        time.sleep(0.1)
        # A script that pushes then pops: the blocked client must not see the transient element.
        assert writer.call("EVAL", "redis.call('rpush', KEYS[1], 'a'); redis.call('lpop', KEYS[1]); "
                                   "redis.call('rpush', KEYS[1], 'b'); return 1", "1", "q") == b":1\r\n"
        assert parse(blocker.read_reply()) == [b"q", b"b"]


# ------------------------------------------------------------------ busy scripts

@pytest.fixture
def busy_servers():
    """Dedicated servers: these tests lower busy-reply-threshold and may leave a script running."""
    procs = [ServerProcess("redis", "--busy-reply-threshold", "100"),
             ServerProcess("shoal", "--busy-reply-threshold", "100")]
    for p in procs:
        p.__enter__()
    yield procs
    for p in procs:
        p.__exit__(None, None, None)


def _busy_scenario(port):
    out = []
    with RawClient(port) as runner, RawClient(port) as other:
        runner.send_raw(encode_command("EVAL", "while true do end", "0"))
        time.sleep(0.3)
        for cmd in (("PING",), ("GET", "k"), ("FUNCTION", "KILL"), ("FUNCTION", "STATS"), ("CLIENT", "LIST"),
                    ("SHUTDOWN", "x"), ("NOSUCH",)):
            out.append(other.call(*cmd))
        out.append(other.call("SCRIPT", "KILL"))
        out.append(runner.read_reply())
        out.append(other.call("PING"))
        out.append(other.call("SCRIPT", "KILL"))
        # A script that catches errors with pcall still dies.
        runner.send_raw(encode_command(
            "EVAL", "while true do pcall(function() while true do end end) end", "0"))
        time.sleep(0.3)
        out.append(other.call("SCRIPT", "KILL"))
        out.append(runner.read_reply())
        # A function is killed with FUNCTION KILL, not SCRIPT KILL.
        other.call("FUNCTION", "LOAD", "REPLACE",
                   "#!lua name=busy\nredis.register_function('spin', function() while true do end end)")
        runner.send_raw(encode_command("FCALL", "spin", "0"))
        time.sleep(0.3)
        out.append(other.call("PING"))
        out.append(other.call("SCRIPT", "KILL"))
        stats = parse(other.call("FUNCTION", "STATS"))
        out.append((stats[0], stats[1][:4]))
        out.append(other.call("FUNCTION", "KILL"))
        out.append(runner.read_reply())
        out.append(runner.call("PING"))
    return out


def test_busy_script_is_killable_and_node_keeps_answering(busy_servers):
    redis_proc, shoal_proc = busy_servers
    assert _busy_scenario(shoal_proc.port) == _busy_scenario(redis_proc.port)


def test_script_that_wrote_is_unkillable_and_shutdown_nosave_stops_it(busy_servers):
    _, shoal_proc = busy_servers
    runner = RawClient(shoal_proc.port)
    other = RawClient(shoal_proc.port)
    runner.send_raw(encode_command("EVAL", "redis.call('set', 'x', '1') while true do end", "0"))
    time.sleep(0.3)
    assert other.call("SCRIPT", "KILL") == (
        b"-UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait "
        b"the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.\r\n")
    assert other.call("PING").startswith(b"-BUSY")
    other.send_raw(encode_command("SHUTDOWN", "NOSAVE"))
    assert other.closed_by_server(10)
    shoal_proc.proc.wait(timeout=10)
    assert shoal_proc.proc.returncode == 0
    runner.close()
    other.close()


# ------------------------------------------------------------------ use cases via redis-py

def test_rate_limiter_with_register_script(shoal_proc, redis_proc):
    limiter = """
local current = redis.call('INCR', KEYS[1])
if current == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if current > tonumber(ARGV[1]) then return 0 end
return 1
"""
    results = []
    for port in (redis_proc.port, shoal_proc.port):
        client = redis.Redis(port=port)
        client.flushall()
        allow = client.register_script(limiter)
        client.script_flush()  # register_script falls back from EVALSHA (NOSCRIPT) to EVAL
        decisions = [allow(keys=["rl:user"], args=[3, 60000]) for _ in range(5)]
        results.append((decisions, client.pttl("rl:user") > 0))
        client.close()
    assert results[0] == results[1] == ([1, 1, 1, 0, 0], True)


def test_distributed_lock_with_compare_and_delete(shoal_proc):
    client = redis.Redis(port=shoal_proc.port)
    client.flushall()
    release = client.register_script(
        "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end")
    assert client.set("lock:res", "token-a", nx=True, px=30000)
    assert client.set("lock:res", "token-b", nx=True, px=30000) is None
    assert release(keys=["lock:res"], args=["token-b"]) == 0  # not the owner: nothing deleted
    assert client.get("lock:res") == b"token-a"
    assert release(keys=["lock:res"], args=["token-a"]) == 1
    assert client.get("lock:res") is None
    assert client.set("lock:res", "token-b", nx=True, px=30000)
    # Concurrent contenders: exactly one wins each round.
    winners = []
    lock = threading.Lock()

    def contend(token):
        c = redis.Redis(port=shoal_proc.port)
        if c.set("lock:race", token, nx=True, px=30000):
            with lock:
                winners.append(token)
        c.close()

    threads = [threading.Thread(target=contend, args=(f"t{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(winners) == 1
    assert release(keys=["lock:race"], args=[winners[0]]) == 1
    client.close()
