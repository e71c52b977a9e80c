"""ACL: users, rules, checks, the ACL log -- differential against a real redis-server.

Both servers run without ACL configuration (their own pair, so the session
servers' users stay untouched). Replies are compared byte for byte, except
where Redis itself is not deterministic: the single-command part of a rule
description (ACL LIST, GETUSER "commands") and ACL CAT <category> follow
Redis's command-dict order, which changes with each process's hash seed, so
those are compared as sets (see known_differences "acl|list").
"""

from __future__ import annotations

import os
import time

import pytest

from tests.resp_client import RawClient, ReplyError, parse
from tests.servers import ServerProcess

def _NO_RETRY():
    """redis-py retries a failed AUTH with backoff by default; a refusal should fail at once."""
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return Retry(NoBackoff(), 0)


# ------------------------------------------------------------------ fixtures


#: Commands real Redis has and Shoal does not (MODULE, LOLWUT...): rule descriptions
#: may mention them on the Redis side only, so _rules leaves them out.
REDIS_ONLY: set[bytes] = set()


@pytest.fixture(scope="module")
def servers():
    with ServerProcess("redis") as redis_proc, ServerProcess("shoal") as shoal_proc:
        with RawClient(redis_proc.port) as r, RawClient(shoal_proc.port) as s:
            REDIS_ONLY.update(set(parse(r.call("COMMAND", "LIST"))) - set(parse(s.call("COMMAND", "LIST"))))
        yield redis_proc, shoal_proc


def _clean(port: int) -> None:
    with RawClient(port) as c:
        users = parse(c.call("ACL", "USERS"))
        others = [u for u in users if u != b"default"]
        if others:
            c.call("ACL", "DELUSER", *others)
        c.call("ACL", "SETUSER", "default", "reset", "on", "nopass", "~*", "&*", "+@all")
        c.call("ACL", "LOG", "RESET")
        c.call("FLUSHALL")


class Pair:
    """Connections to both servers; ``check`` compares raw replies (after an optional normaliser)."""

    def __init__(self, redis_port: int, shoal_port: int) -> None:
        self.ports = (redis_port, shoal_port)
        self.redis = RawClient(redis_port)
        self.shoal = RawClient(shoal_port)
        self.extra: list[RawClient] = []

    def both(self, *argv):
        return self.redis.call(*argv), self.shoal.call(*argv)

    def check(self, *argv, normalize=None):
        expected, actual = self.both(*argv)
        if normalize is not None:
            assert normalize(expected) == normalize(actual), f"{argv!r}\nredis: {expected!r}\nshoal: {actual!r}"
        else:
            assert expected == actual, f"{argv!r}\nredis: {expected!r}\nshoal: {actual!r}"
        return expected

    def connect(self) -> "Pair":
        other = Pair(*self.ports)
        self.extra.append(other)
        return other

    def close(self) -> None:
        for other in self.extra:
            other.close()
        self.redis.close()
        self.shoal.close()


@pytest.fixture
def pair(servers):
    redis_proc, shoal_proc = servers
    _clean(redis_proc.port)
    _clean(shoal_proc.port)
    p = Pair(redis_proc.port, shoal_proc.port)
    yield p
    p.close()
    assert shoal_proc.alive(), shoal_proc.log()


# ----------------------------------------------------------- normalisation


def _rules(text: bytes) -> tuple:
    """A rule description with each run of single-command rules (+get -set +x|y) as a set."""
    out: list = []
    run: list[bytes] = []
    depth = 0
    for token in text.split(b" "):
        single = token[:1] in (b"+", b"-") and token[1:2] != b"@" and depth == 0
        bare = token.strip(b"()")
        if token.startswith(b"("):
            depth += 1
        if single:
            if token[1:].split(b"|")[0].lower() not in REDIS_ONLY:
                run.append(token)
            continue
        if run:
            out.append(frozenset(run))
            run = []
        if depth and bare[:1] in (b"+", b"-") and bare[1:2] != b"@":
            out.append(("sel-cmd", bare))
        else:
            out.append(token)
        if token.endswith(b")"):
            depth -= 1
    if run:
        out.append(frozenset(run))
    return tuple(out)


def norm_list(raw: bytes):
    value = parse(raw)
    if not isinstance(value, list):
        return value
    return [_rules(line) for line in value]


def _norm_value(value):
    if isinstance(value, dict):
        return {k: (_rules(v) if k == b"commands" else _norm_value(v)) for k, v in value.items()}
    if isinstance(value, list):
        if len(value) % 2 == 0 and b"commands" in value[0::2]:
            pairs = dict(zip(value[0::2], value[1::2]))
            return _norm_value(pairs)
        return [_norm_value(v) for v in value]
    return value


def norm_getuser(raw: bytes):
    value = parse(raw)
    if isinstance(value, list) and len(value) % 2 == 0:
        value = dict(zip(value[0::2], value[1::2]))
    if isinstance(value, dict):
        value = {k: _norm_value(v) for k, v in value.items()}
        if b"commands" in value:
            value[b"commands"] = _rules(value[b"commands"])
        if b"flags" in value:
            value[b"flags"] = sorted(value[b"flags"])
    return value


def log_entries(raw: bytes) -> list[dict]:
    """ACL LOG as dicts without the per-process fields (age, most of client-info)."""
    out = []
    for entry in parse(raw):
        if isinstance(entry, list):
            entry = dict(zip(entry[0::2], entry[1::2]))
        info = dict(kv.split(b"=", 1) for kv in entry[b"client-info"].split(b" ") if b"=" in kv)
        age = float(entry[b"age-seconds"])
        assert 0 <= age < 60
        out.append({
            "count": entry[b"count"], "reason": entry[b"reason"], "context": entry[b"context"],
            "object": entry[b"object"], "username": entry[b"username"],
            "cmd": info.get(b"cmd"), "user": info.get(b"user"), "db": info.get(b"db"),
        })
    return out


# ------------------------------------------------------------ SETUSER etc.

SETUSER_CASES = [
    ["x", "bogus"], ["x", "+nosuch"], ["x", "-@nosuch"], ["x", "+get|x"], ["x", "+config|nosub"],
    ["x", "-config|get"], ["x", "+select|0|1"], ["x", "(~a"], ["x", "~a)"], ["x", "%X~a"], ["x", "%~a"],
    ["x", "%R"], ["x", "%RR~a"], ["x", "%rw~a"], ["x", "#abc"], ["x", "#" + "A" * 64], ["x", "#" + "a" * 64],
    ["x", "!" + "b" * 64], ["x", "allkeys", "~a"], ["x", "resetkeys", "~a", "allkeys"], ["x", "allchannels", "&a"],
    ["x", "<nopw"], ["x", "!abc"], ["x", "@all"], ["x", "+@all|x"], ["x", "+get|"], ["x", "-select|0"],
    ["a|b"], ["x"], ["x y"], ["x", "+config|get|x"], ["x", "+client|kill|x"], ["x", "~a b"], ["x", ""],
    ["x", "(+get ~a) (+set", "~b)"], ["x", "(+nosuch)"], ["x", "(bogus ~a)"], ["x", "(", "~a", ")"],
    ["x", "on", ">p1", ">p2", "<p1"], ["x", "nopass", "resetpass"], ["x", "+GET", "+@LIST", "-@List"],
    ["x", "skip-sanitize-payload"], ["x", "sanitize-payload"], ["x", "reset"], ["x", "+", "-"], ["x", "+@"],
    ["x", "ON", "NOPASS", "ALLKEYS", "ALLCOMMANDS", "ALLCHANNELS"], ["x", "nocommands", "resetchannels"],
    ["x", "clearselectors"], ["x", "+debug|object", "+debug|digest"], ["x", "~*", "%R~*"],
]


def test_setuser_replies_and_resulting_rules_match(pair):
    for args in SETUSER_CASES:
        pair.check("ACL", "SETUSER", *args)
        pair.check("ACL", "LIST", normalize=norm_list)
        pair.check("ACL", "GETUSER", args[0], normalize=norm_getuser)


def test_setuser_is_atomic(pair):
    pair.check("ACL", "SETUSER", "u", "on", ">pw", "~a*", "+get")
    before = pair.check("ACL", "LIST", normalize=norm_list)
    pair.check("ACL", "SETUSER", "u", "off", "resetkeys", "+nosuch")
    assert pair.check("ACL", "LIST", normalize=norm_list) == before
    pair.check("ACL", "SETUSER", "new", "on", "+bogus")
    pair.check("ACL", "USERS")


def test_describe_rules(pair):
    cases = [
        ["t1", "+@all", "-@dangerous", "-get"],
        ["t2", "-@all", "+@read", "+@write", "-@keyspace", "+del"],
        ["t3", "+@all", "-@all", "+@string", "+@hash", "-hset", "+select|0", "+select|1"],
        ["t4", "+client", "-client|kill", "+config|get", "+acl|whoami"],
        ["t5", "%R~r*", "%W~w*", "%RW~rw*", "~a", "%R~a", "&c1", "&c2", "&c1"],
        ["t6", "(~x +get)", "(%W~y* +set +@list)", "clearselectors", "(+@string ~s*)"],
        ["t7", "+@pubsub", "+@transaction", "-exec"],
        ["t8", "allcommands", "-@slow"],
        ["t9", "+@sortedset", "+@geo", "-@write"],
    ]
    for args in cases:
        pair.check("ACL", "SETUSER", *args)
    pair.check("ACL", "LIST", normalize=norm_list)
    for args in cases:
        pair.check("ACL", "GETUSER", args[0], normalize=norm_getuser)
    pair.check("ACL", "GETUSER", "default")
    pair.check("ACL", "GETUSER", "nobody")
    pair.check("ACL", "USERS")


def test_getuser_resp3(pair):
    pair.check("HELLO", "3", normalize=lambda raw: raw[:1])
    pair.check("ACL", "SETUSER", "u", "on", ">a", "#" + "c" * 64, "~k*", "&ch", "+get", "(~x* +set)")
    pair.check("ACL", "GETUSER", "u", normalize=norm_getuser)
    pair.check("ACL", "GETUSER", "default")


def test_deluser_whoami_users(pair):
    pair.check("ACL", "SETUSER", "a", "on")
    pair.check("ACL", "SETUSER", "b", "on")
    pair.check("ACL", "DELUSER", "default")
    pair.check("ACL", "DELUSER", "a", "default")
    pair.check("ACL", "USERS")
    pair.check("ACL", "DELUSER", "a", "zz", "a")
    pair.check("ACL", "USERS")
    pair.check("ACL", "WHOAMI")
    pair.check("ACL")
    pair.check("ACL", "NOSUCH")
    pair.check("ACL", "HELP")
    pair.check("ACL", "WHOAMI", "extra")
    pair.check("ACL", "SETUSER")
    pair.check("ACL", "GETUSER")


def test_cat(pair, servers):
    pair.check("ACL", "CAT")
    pair.check("ACL", "CAT", "nosuch")
    pair.check("ACL", "CAT", "LIST", "extra")
    def names(client):
        out = set()
        for entry in parse(client.call("COMMAND")):
            out.add(entry[0])
            out.update(sub[0] for sub in entry[9] or ())
        return out

    known, redis_known = names(pair.shoal), names(pair.redis)
    for cat in parse(pair.redis.call("ACL", "CAT")):
        redis_cmds = set(parse(pair.redis.call("ACL", "CAT", cat)))
        shoal_cmds = set(parse(pair.shoal.call("ACL", "CAT", cat.upper())))
        # Compare on the commands both have (Redis has MODULE..., Shoal a few 7.2 additions).
        expected = {c for c in redis_cmds if c in known}
        assert shoal_cmds & redis_known == expected, cat


def test_genpass(pair):
    for args in (["0"], ["-1"], ["4097"], ["x"], ["1", "2"]):
        pair.check("ACL", "GENPASS", *args)
    for bits, length in ((None, 64), ("1", 1), ("5", 2), ("4096", 1024), ("255", 64)):
        raw = pair.shoal.call("ACL", "GENPASS", *([bits] if bits else []))
        value = parse(raw)
        assert len(value) == length and all(c in b"0123456789abcdef" for c in value)
    assert parse(pair.shoal.call("ACL", "GENPASS")) != parse(pair.shoal.call("ACL", "GENPASS"))


DRYRUN_USERS = [
    ["d1", "on", "~k*", "%R~r*", "%W~w*", "&ch*", "+@read", "+set", "+publish", "+subscribe", "+psubscribe",
     "+lmove", "+copy", "+sort", "+zunionstore", "+eval", "+bitfield", "+select|1"],
    ["d2", "on", "(~a* +get)", "(~b* +set)", "(&c +publish)"],
    ["d3", "on", "allkeys", "+@all", "-@dangerous", "+config|get"],
]

DRYRUN_COMMANDS = [
    ["get", "k1"], ["get", "r1"], ["get", "w1"], ["get", "z"], ["set", "k1", "v"], ["set", "r1", "v"],
    ["set", "w1", "v"], ["set", "w1", "v", "GET"], ["set", "k1", "v", "get"], ["del", "k1"],
    ["publish", "ch1", "m"], ["publish", "x", "m"], ["subscribe", "ch1", "x", "ch2"], ["psubscribe", "ch*"],
    ["psubscribe", "ch1"], ["lmove", "k1", "w1", "left", "right"], ["lmove", "r1", "w1", "left", "right"],
    ["lmove", "k1", "r1", "left", "right"], ["copy", "r1", "w1"], ["copy", "w1", "r1"],
    ["sort", "r1"], ["sort", "r1", "STORE", "w1"], ["sort", "r1", "STORE", "r2"],
    ["zunionstore", "w1", "2", "r1", "k2"], ["zunionstore", "r1", "1", "k1"],
    ["eval", "return 1", "1", "k1"], ["eval", "return 1", "1", "r1"], ["bitfield", "r1", "GET", "u8", "0"],
    ["bitfield", "r1", "SET", "u8", "0", "1"], ["bitfield", "w1", "INCRBY", "u8", "0", "1"],
    ["exists", "r1", "w1", "zz"], ["select", "1"], ["select", "2"], ["mget", "k1", "r1", "zz"],
    ["config", "get", "port"], ["config", "set", "port", "1"], ["flushall"], ["get"], ["nosuch"],
    ["config", "nosuch"], ["config"], ["ping"], ["auth", "a", "b"], ["hello"],
    ["get", "a1"], ["set", "a1", "v"], ["set", "b1", "v"], ["get", "b1"], ["publish", "c", "m"],
    ["publish", "c2", "m"], ["mset", "a1", "1", "b1", "2"], ["mget", "a1", "b1"],
]


def test_dryrun(pair):
    for args in DRYRUN_USERS:
        pair.check("ACL", "SETUSER", *args)
    pair.check("ACL", "DRYRUN", "nouser", "get", "k")
    for user in ("d1", "d2", "d3", "default"):
        for argv in DRYRUN_COMMANDS:
            pair.check("ACL", "DRYRUN", user, *argv)
    pair.check("ACL", "DRYRUN", "d1")
    pair.check("ACL", "DRYRUN", "d1", "get")


# ------------------------------------------------------------ enforcement


def _as(pair: Pair, user: str, password: str = "pw") -> Pair:
    conn = pair.connect()
    conn.check("AUTH", user, password)
    return conn


def test_refusals_match_redis_change_nothing_and_are_logged(pair):
    pair.check("ACL", "SETUSER", "u", "on", ">pw", "~k*", "%R~r*", "&c*", "+get", "+set", "+publish",
               "+multi", "+exec", "+acl|whoami", "+mget")
    pair.check("SET", "x", "orig")
    pair.check("SET", "r1", "orig")
    u = _as(pair, "u")
    for argv in (("GET", "x"), ("GET", "k1"), ("SET", "x", "1"), ("DEL", "k"), ("PUBLISH", "d", "m"),
                 ("PUBLISH", "c1", "m"), ("SET", "r1", "1"), ("GET", "r1"), ("MGET", "k1", "r1", "x"),
                 ("ACL", "WHOAMI"), ("ACL", "LIST"), ("FLUSHALL",), ("SET", "k1", "v"), ("GET", "k1")):
        u.check(*argv)
    # Nothing changed by the refused commands.
    pair.check("GET", "x")
    pair.check("GET", "r1")
    pair.check("DBSIZE")
    # A refused command inside MULTI aborts EXEC.
    u.check("MULTI")
    u.check("SET", "k2", "v")
    u.check("SET", "x", "v")
    u.check("DEL", "k2")
    u.check("EXEC")
    pair.check("EXISTS", "k2")
    expected = log_entries(pair.redis.call("ACL", "LOG"))
    assert log_entries(pair.shoal.call("ACL", "LOG")) == expected
    assert {e["reason"] for e in expected} == {b"key", b"command", b"channel"}
    assert log_entries(pair.shoal.call("ACL", "LOG", "2")) == expected[:2]
    pair.check("ACL", "LOG", "x")
    pair.check("ACL", "LOG", "-5")
    pair.check("ACL", "LOG", "1", "2")
    pair.check("ACL", "LOG", "RESET")
    pair.check("ACL", "LOG")


def test_auth_failures_are_logged(pair):
    pair.check("ACL", "SETUSER", "u", "on", ">pw", "+@all", "~*")
    pair.check("ACL", "SETUSER", "off", "off", ">pw", "+@all")
    c = pair.connect()
    for argv in (("AUTH", "u", "bad"), ("AUTH", "nouser", "x"), ("auth", "off", "pw"), ("AUTH", "x"),
                 ("AUTH", "a", "b", "c"), ("HELLO", "2", "AUTH", "u", "bad"), ("AUTH", "u", "pw"),
                 ("ACL", "WHOAMI"), ("HELLO", "2", "AUTH", "default", "x"), ("ACL", "WHOAMI")):
        c.check(*argv, normalize=(lambda raw: raw[:1]) if argv[0] == "HELLO" and b"bad" not in argv else None)
    assert log_entries(pair.shoal.call("ACL", "LOG")) == log_entries(pair.redis.call("ACL", "LOG"))


def test_selectors_pick_the_error_redis_picks(pair):
    pair.check("ACL", "SETUSER", "s", "on", ">pw", "~a*", "+get", "(~b* +set)", "(&c* +publish)")
    s = _as(pair, "s", "pw")
    for argv in (("GET", "a1"), ("GET", "b1"), ("SET", "b1", "v"), ("SET", "a1", "v"), ("PUBLISH", "c1", "m"),
                 ("PUBLISH", "d", "m"), ("DEL", "a1"), ("MGET", "a1", "a2")):
        s.check(*argv)
    assert log_entries(pair.shoal.call("ACL", "LOG")) == log_entries(pair.redis.call("ACL", "LOG"))


def test_first_arg_and_subcommand_rules(pair):
    pair.check("ACL", "SETUSER", "f", "on", ">pw", "allkeys", "+select|0", "+config|get", "+client",
               "-client|kill", "+debug|digest")
    f = _as(pair, "f")
    for argv in (("SELECT", "0"), ("SELECT", "1"), ("CONFIG", "GET", "maxclients"), ("CONFIG", "SET", "x", "y"),
                 ("CLIENT", "GETNAME"), ("CLIENT", "KILL", "ID", "99999"), ("DEBUG", "DIGEST"), ("DEBUG", "SLEEP", "0")):
        f.check(*argv, normalize=(lambda raw: raw[:1]) if argv[0] == "DEBUG" else None)


def test_channel_permissions(pair):
    pair.check("ACL", "SETUSER", "p", "on", ">pw", "resetchannels", "&news.*", "&exact", "+@pubsub")
    p = _as(pair, "p")
    p.check("PUBLISH", "news.x", "m")
    p.check("PUBLISH", "other", "m")
    p.check("PSUBSCRIBE", "news.*")
    p2 = _as(pair, "p")
    p2.check("PSUBSCRIBE", "news.x*")
    p3 = _as(pair, "p")
    p3.check("SUBSCRIBE", "exact", "other")
    p4 = _as(pair, "p")
    p4.check("SUBSCRIBE", "exact", "news.1")
    assert log_entries(pair.shoal.call("ACL", "LOG")) == log_entries(pair.redis.call("ACL", "LOG"))


def _closed(conn: RawClient) -> bool:
    return conn.closed_by_server(timeout=3.0)


def test_pubsub_subscriber_killed_when_its_channels_are_revoked(pair):
    pair.check("ACL", "SETUSER", "p", "on", ">pw", "resetchannels", "&a", "&b", "+@all")
    sub = _as(pair, "p")
    sub.check("SUBSCRIBE", "a")
    keeper = _as(pair, "p")
    keeper.check("SUBSCRIBE", "b")
    pair.check("ACL", "SETUSER", "p", "resetchannels", "&b")
    assert _closed(sub.shoal) and _closed(sub.redis)
    pair.check("PUBLISH", "b", "still-here")
    assert keeper.shoal.read_reply() == keeper.redis.read_reply()


def test_deluser_kills_its_connections(pair):
    pair.check("ACL", "SETUSER", "gone", "on", ">pw", "+@all", "~*")
    victim = _as(pair, "gone")
    victim.check("PING")
    pair.check("ACL", "DELUSER", "gone")
    assert _closed(victim.shoal) and _closed(victim.redis)
    # Deleting the user you are: the reply arrives, then the connection closes.
    pair.check("ACL", "SETUSER", "me", "on", ">pw", "+@all", "~*")
    me = _as(pair, "me")
    me.check("ACL", "DELUSER", "me")
    assert _closed(me.shoal) and _closed(me.redis)


def test_changed_rules_apply_to_existing_connections(pair):
    pair.check("ACL", "SETUSER", "c", "on", ">pw", "+@all", "~*")
    c = _as(pair, "c")
    c.check("SET", "k", "v")
    pair.check("ACL", "SETUSER", "c", "resetkeys", "~other*")
    c.check("GET", "k")
    pair.check("ACL", "SETUSER", "c", "-get")
    c.check("GET", "other")
    pair.check("ACL", "SETUSER", "c", "+@all", "allkeys", "off")
    c.check("GET", "k")  # disabling a user does not drop its live connections
    pair.check("ACL", "SETUSER", "c", "on")


def test_exec_rechecks_rules_changed_after_queueing(pair):
    pair.check("ACL", "SETUSER", "m", "on", ">pw", "~*", "&*", "+@all")
    m = _as(pair, "m")
    m.check("MULTI")
    m.check("SET", "a", "1")
    m.check("GET", "b")
    m.check("PUBLISH", "ch", "x")
    m.check("INCR", "a")
    pair.check("ACL", "SETUSER", "m", "resetkeys", "~a", "resetchannels", "-incr")
    m.check("EXEC")
    pair.check("GET", "a")
    assert log_entries(pair.shoal.call("ACL", "LOG")) == log_entries(pair.redis.call("ACL", "LOG"))


def test_scripts_run_with_the_callers_permissions(pair):
    pair.check("ACL", "SETUSER", "s", "on", ">pw", "~k*", "+eval", "+get", "+set", "&c*", "+publish")
    s = _as(pair, "s")
    for script, keys in (("return redis.call('del','k')", []), ("return redis.call('get','z')", []),
                         ("return redis.call('publish','z','m')", []), ("return redis.pcall('get','z')", []),
                         ("return redis.acl_check_cmd('get','z')", []), ("return redis.acl_check_cmd('get','k')", []),
                         ("return redis.call('get','k')", ["z"]), ("return redis.call('set','k1','v')", ["k1"])):
        s.check("EVAL", script, str(len(keys)), *keys)
    assert log_entries(pair.shoal.call("ACL", "LOG")) == log_entries(pair.redis.call("ACL", "LOG"))


def test_client_kill_user(pair):
    pair.check("ACL", "SETUSER", "k", "on", ">pw", "+@all", "~*")
    victim = _as(pair, "k")
    pair.check("CLIENT", "KILL", "USER", "nosuch")
    pair.check("CLIENT", "KILL", "USER", "k")
    assert _closed(victim.shoal) and _closed(victim.redis)


def test_acllog_max_len_and_grouping(pair):
    pair.check("CONFIG", "SET", "acllog-max-len", "3")
    try:
        pair.check("ACL", "SETUSER", "u", "on", ">pw", "~k*", "+get")
        u = _as(pair, "u")
        for key in ("a", "b", "a", "c", "d", "c"):
            u.check("GET", key)
        assert log_entries(pair.shoal.call("ACL", "LOG")) == log_entries(pair.redis.call("ACL", "LOG"))
        assert len(log_entries(pair.shoal.call("ACL", "LOG"))) == 3
    finally:
        pair.check("CONFIG", "SET", "acllog-max-len", "128")


# ------------------------------------------------------------- ACL files


def test_aclfile_save_load_and_errors(tmp_path):
    results = {}
    for kind in ("redis", "shoal"):
        path = tmp_path / f"{kind}.acl"
        path.write_text("user alice on #" + "a" * 64 + " ~a* +get\nuser default on nopass ~* &* +@all\n")
        with ServerProcess(kind, "--aclfile", str(path)) as proc, RawClient(proc.port) as c:
            out = [c.call("ACL", "LIST")]
            out.append(c.call("ACL", "SETUSER", "bob", "on", ">pw", "%R~b*", "+@read", "(~x +set)"))
            out.append(c.call("ACL", "SAVE"))
            saved = path.read_text()
            out.append(c.call("ACL", "SETUSER", "carol", "on"))
            out.append(c.call("ACL", "LOAD"))
            out.append(c.call("ACL", "USERS"))
            path.write_text("user alice on +nosuch\nbogus line\nuser alice\n")
            err = c.call("ACL", "LOAD")
            out.append(err.replace(str(path).encode(), b"PATH"))
            out.append(c.call("ACL", "USERS"))
            path.write_text("user eve on >x +@all ~*\n")
            with RawClient(proc.port) as bob:
                out.append(bob.call("AUTH", "bob", "pw"))
                out.append(c.call("ACL", "LOAD"))
                out.append(bob.closed_by_server(timeout=3.0))
            out.append(c.call("ACL", "LIST"))
            results[kind] = (out, sorted(saved.splitlines()))
    redis_out, redis_saved = results["redis"]
    shoal_out, shoal_saved = results["shoal"]
    assert [_rules(line.encode()) for line in shoal_saved] == [_rules(line.encode()) for line in redis_saved]
    for i, (a, b) in enumerate(zip(redis_out, shoal_out)):
        if isinstance(a, bytes) and a.startswith(b"*") and b"user " in a:
            assert norm_list(a) == norm_list(b), i
        else:
            assert a == b, (i, a, b)


def test_aclfile_and_users_are_refused_together(tmp_path):
    path = tmp_path / "users.acl"
    path.write_text("user default on nopass ~* &* +@all\n")
    proc = ServerProcess("shoal", "--aclfile", str(path), "--user", "bob", "on")
    with pytest.raises(RuntimeError) as info:
        proc.start(timeout=10)
    proc.stop()
    assert "not both" in str(info.value)


def test_bad_aclfile_aborts_startup(tmp_path):
    path = tmp_path / "bad.acl"
    path.write_text("user x on +nosuchcmd\n")
    proc = ServerProcess("shoal", "--aclfile", str(path))
    with pytest.raises(RuntimeError) as info:
        proc.start(timeout=10)
    proc.stop()
    assert "Aborting Redis startup because of ACL errors" in str(info.value)


def test_acl_pubsub_default_allchannels():
    args = ("--acl-pubsub-default", "allchannels")
    with ServerProcess("redis", *args) as r, ServerProcess("shoal", *args) as s:
        p = Pair(r.port, s.port)
        try:
            p.check("ACL", "SETUSER", "n", "on")
            p.check("ACL", "SETUSER", "m", "reset")
            p.check("ACL", "LIST", normalize=norm_list)
            p.check("CONFIG", "SET", "acl-pubsub-default", "resetchannels")
            p.check("ACL", "SETUSER", "o")
            p.check("ACL", "LIST", normalize=norm_list)
        finally:
            p.close()


# --------------------------------------------------------------- redis-py


def test_redis_py_acl_methods(servers):
    import redis

    _, shoal_proc = servers
    _clean(shoal_proc.port)
    r = redis.Redis(port=shoal_proc.port, decode_responses=True)
    try:
        assert r.acl_setuser("alice", enabled=True, passwords=["+secret"], keys=["k:*"], channels=["ch"],
                             commands=["+get", "+set", "+@list"], reset=True)
        info = r.acl_getuser("alice")
        assert info["enabled"] and info["keys"] == ["~k:*"] and info["channels"] == ["&ch"]
        assert sorted(info["commands"]) == ["+get", "+set"] and info["categories"] == ["-@all", "+@list"]
        assert "alice" in r.acl_users() and r.acl_whoami() == "default"
        assert any(line.startswith("user alice on sanitize-payload #") for line in r.acl_list())
        assert "list" in r.acl_cat() and "lpush" in r.acl_cat("list")
        assert len(r.acl_genpass()) == 64 and len(r.acl_genpass(32)) == 8
        a = redis.Redis(port=shoal_proc.port, username="alice", password="secret", decode_responses=True)
        try:
            assert a.set("k:1", "v") and a.get("k:1") == "v"
            with pytest.raises(redis.exceptions.NoPermissionError):
                a.get("other")
            with pytest.raises(redis.exceptions.NoPermissionError):
                a.hset("k:2", "f", "v")
        finally:
            a.close()
        with pytest.raises(redis.exceptions.AuthenticationError):
            redis.Redis(port=shoal_proc.port, username="alice", password="wrong", retry=_NO_RETRY()).ping()
        log = r.acl_log()
        assert {e["reason"] for e in log} >= {"key", "command", "auth"}
        assert r.acl_log_reset() and r.acl_log() == []
        assert r.acl_dryrun("alice", "get", "k:1") == "OK"
        assert r.acl_deluser("alice") == 1
    finally:
        r.close()


def test_default_user_fast_path_untouched(pair):
    """The unrestricted default user is not gated: a big pipeline is served as usual."""
    n = 2000
    replies = pair.shoal.pipeline([("SET", f"k{i}", "v") for i in range(n)])
    assert replies == [b"+OK\r\n"] * n
    assert parse(pair.shoal.call("DBSIZE")) == n


def test_denials_reach_the_node_log(servers, pair):
    _, shoal_proc = servers
    pair.check("ACL", "SETUSER", "logme", "on", ">pw", "~k*", "+get")
    u = _as(pair, "logme")
    u.check("GET", "zzz-secret-key")
    u.check("AUTH", "logme", "wrong")
    deadline = time.monotonic() + 5
    text = shoal_proc.log()
    while "ACL denied (auth" not in text and time.monotonic() < deadline:
        time.sleep(0.05)
        text = shoal_proc.log()
    assert "ACL denied (key, toplevel): user 'logme' object 'zzz-secret-key'" in text
    assert "ACL denied (auth, toplevel): user 'logme'" in text


def test_setuser_arguments_are_redacted_in_the_slowlog(pair):
    """(ACL commands are admin commands: MONITOR never shows them.)"""
    pair.check("CONFIG", "SET", "slowlog-log-slower-than", "0")
    try:
        pair.check("SLOWLOG", "RESET")
        pair.check("ACL", "SETUSER", "secretive", "on", ">hunter2", "~*")
        for conn in (pair.redis, pair.shoal):
            entries = parse(conn.call("SLOWLOG", "GET", "10"))
            args = [e[3] for e in entries if e[3][:2] in ([b"ACL", b"SETUSER"], [b"acl", b"setuser"])]
            assert args == [[b"ACL", b"SETUSER", b"(redacted)", b"(redacted)", b"(redacted)", b"(redacted)"]]
    finally:
        pair.check("CONFIG", "SET", "slowlog-log-slower-than", "10000")


def test_parse_helpers_self_check():
    assert _rules(b"-@all +@list +get -lpush") == (b"-@all", b"+@list", frozenset({b"+get", b"-lpush"}))
    assert _rules(b"+@all -get") != _rules(b"+@all -set")
    assert isinstance(parse(b"-ERR x\r\n"), ReplyError)


def test_config_rewrite_writes_users(tmp_path):
    files = {}
    for kind in ("redis", "shoal"):
        conf = tmp_path / f"{kind}.conf"
        conf.write_text('save ""\nrename-command keys ""\nuser old on nopass +@all ~*\n')
        proc = ServerProcess(kind)
        proc.argv.insert(proc.argv.index("--port"), str(conf))  # the config file goes first, before --options
        with proc, RawClient(proc.port) as c:
            assert c.call("AUTH", "old", "x") == b"+OK\r\n"
            assert c.call("ACL", "SETUSER", "bob", "on", ">pw", "~b*", "+get") == b"+OK\r\n"
            assert c.call("CONFIG", "REWRITE") == b"+OK\r\n"
        files[kind] = [line for line in conf.read_text().splitlines()
                       if line.startswith(("user ", "rename-command", "save"))]
    assert [_rules(x.encode()) for x in files["shoal"]] == [_rules(x.encode()) for x in files["redis"]]


def test_acl_bench_section_runs():
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parent.parent
    env = dict(os.environ)
    env["PYTHONPATH"] = str(repo) + os.pathsep + env.get("PYTHONPATH", "")
    done = subprocess.run([sys.executable, "-m", "bench.acl_cost", "--quick", "--requests", "1000",
                           "--pipelines", "1", "--clients", "5"], cwd=repo, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith(("SET P1", "GET P1"))]
    assert len(rows) == 4 and all(float(r.split()[-1 if "redis" in r else -2]) > 0 for r in rows)


def test_sort_by_and_get_need_access_to_every_key(pair):
    pair.check("RPUSH", "l1", "3", "1", "2")
    pair.check("ACL", "SETUSER", "so", "on", "nopass", "~l*", "+@all")
    pair.check("ACL", "SETUSER", "so2", "on", "nopass", "%R~*", "~l*", "+@all")
    for user in ("so", "so2"):
        c = _as(pair, user, "x")
        for argv in (("SORT", "l1", "BY", "w_*"), ("SORT", "l1", "BY", "nosort"), ("SORT", "l1", "GET", "#"),
                     ("SORT", "l1", "GET", "g_*"), ("SORT_RO", "l1", "BY", "w_*", "GET", "#"),
                     ("SORT", "l1", "LIMIT", "0", "1", "BY", "w_*", "bad"), ("SORT", "l1", "STORE", "l2")):
            c.check(*argv)


# ------------------------------------------------------- property: random rules

RULE_WORDS = (
    "+@read", "-@read", "+@write", "-@write", "+@string", "-@string", "+@list", "+@hash", "-@hash", "+@set",
    "+@keyspace", "-@keyspace", "+@fast", "-@fast", "+@pubsub", "-@pubsub", "+@dangerous", "-@dangerous",
    "+@all", "-@all", "+get", "-get", "+set", "-set", "+del", "-del", "+publish", "+subscribe", "+lmove",
    "+config|get", "-config|get", "+config", "+select|0", "+mget", "-mget", "+sort", "+copy",
    "~k*", "~a", "%R~r*", "%W~w*", "%RW~x?", "allkeys", "resetkeys", "&c*", "&news", "allchannels",
    "resetchannels", "on", "off", "nopass", "(~s* +get)", "(%R~* +@read)", "(&z +publish)", "clearselectors",
)
PROBES = (
    ("get", "k1"), ("get", "r1"), ("get", "w1"), ("get", "a"), ("get", "s1"), ("get", "x1"), ("set", "k1", "v"),
    ("set", "w1", "v"), ("set", "x1", "v", "GET"), ("del", "a", "k1"), ("mget", "k1", "r1", "z"),
    ("publish", "news", "m"), ("publish", "c1", "m"), ("publish", "z", "m"), ("subscribe", "c1", "news"),
    ("lmove", "k1", "w1", "LEFT", "RIGHT"), ("copy", "r1", "w1"), ("sort", "k1", "STORE", "w1"),
    ("config", "get", "port"), ("select", "0"), ("select", "1"), ("hset", "k1", "f", "v"),
    ("lpush", "w1", "x"), ("exists", "q"),
)


def test_random_rules_match_redis(pair):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(st.sampled_from(RULE_WORDS), min_size=1, max_size=8))
    def run(rules):
        pair.check("ACL", "SETUSER", "rnd", "reset", *rules)
        pair.check("ACL", "GETUSER", "rnd", normalize=norm_getuser)
        for probe in PROBES:
            pair.check("ACL", "DRYRUN", "rnd", *probe)

    run()


def test_malformed_arguments_get_the_commands_own_error(pair):
    pair.check("ACL", "SETUSER", "m", "on", ">pw", "~k*", "+@all")
    m = _as(pair, "m")
    for argv in (("ZUNIONSTORE", "k", "3", "a"), ("ZUNIONSTORE", "k", "x", "a"), ("EVAL", "return 1", "5", "k1"),
                 ("EVAL", "return 1", "-1"), ("XREAD", "STREAMS", "k1"), ("SORT", "k1", "STORE"),
                 ("BITFIELD", "k1", "BOGUS"),
                 ("SET", "z", "v", "GET", "EX"), ("GEORADIUS", "k1", "0", "0", "1", "m", "STORE")):
        m.check(*argv)
