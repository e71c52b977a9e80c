"""CLIENT TRACKING (server-assisted client-side caching), differentially against real Redis.

Each scenario runs the same sequence of commands over several raw connections
to redis-server and to shoal-server and compares everything each connection
read, in order: replies and the invalidation pushes / messages between them.
A connection is "drained" by a PING: whatever pushes were due arrive before
the PONG, so a missing or extra invalidation shows up as a different stream.
Client ids differ between the servers, so they are replaced by names.
"""

from __future__ import annotations

import time

import pytest

from tests.resp_client import RawClient, parse

_PONGS = (b"+PONG\r\n", b"*2\r\n$4\r\npong\r\n$0\r\n\r\n")


class Session:
    """Connections to one server; every reply read is logged per connection."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conns: dict[str, RawClient] = {}
        self.ids: dict[int, str] = {}
        self.log: list[tuple[str, bytes]] = []

    def open(self, name: str, resp: int = 3) -> None:
        c = RawClient(self.port)
        self.conns[name] = c
        if resp == 3:
            c.call("HELLO", "3")
        cid = int(c.call("CLIENT", "ID")[1:-2])
        self.ids[cid] = name

    def cid(self, name: str) -> str:
        return str(next(i for i, n in self.ids.items() if n == name))

    def _clean(self, raw: bytes) -> bytes:
        for cid, name in self.ids.items():
            raw = raw.replace(b":%d\r\n" % cid, b":<%b>\r\n" % name.encode())
            raw = raw.replace(b"redir=%d " % cid, b"redir=<%b> " % name.encode())
        return raw

    def call(self, name: str, *args) -> bytes:
        args = tuple(self.cid(a[1:]) if isinstance(a, str) and a.startswith("@") else a for a in args)
        raw = self._clean(self.conns[name].call(*args))
        self.log.append((name, raw))
        return raw

    def read(self, name: str) -> bytes:
        raw = self._clean(self.conns[name].read_reply())
        self.log.append((name, raw))
        return raw

    def drain(self, name: str) -> None:
        """Ping ``name`` and log everything up to the PONG (pushes that were due)."""
        c = self.conns[name]
        c.send_raw(b"*1\r\n$4\r\nPING\r\n")
        while True:
            raw = self._clean(c.read_reply())
            self.log.append((name, raw))
            if raw in _PONGS:
                return

    def close(self, name: str) -> None:
        self.conns.pop(name).close()

    def close_all(self) -> None:
        for c in self.conns.values():
            c.close()
        self.conns.clear()


def _run(port: int, scenario) -> list:
    s = Session(port)
    with RawClient(port) as admin:
        admin.call("FLUSHALL")
        admin.call("CONFIG", "SET", "tracking-table-max-keys", "1000000")
    try:
        scenario(s)
    finally:
        s.close_all()
        # The server forgets closed clients when it reads their EOF: wait for that.
        with RawClient(port) as admin:
            for _ in range(100):
                info = admin.call("INFO", "clients")
                if b"tracking_clients:0\r\n" in info:
                    break
                time.sleep(0.01)
    return s.log


def same(redis_proc, shoal_proc, scenario) -> list:
    expected = _run(redis_proc.port, scenario)
    actual = _run(shoal_proc.port, scenario)
    assert actual == expected, "\n".join(
        f"{'  ' if e == a else '!!'} {e!r}\n   {a!r}" for e, a in zip(expected, actual)
    ) + f"\nlengths {len(expected)} {len(actual)}"
    return expected


# ----------------------------------------------------------------- errors / info

_ERROR_CASES = [
    ("maybe",), ("on", "foo"), ("on", "redirect"), ("on", "prefix"), ("on", "prefix", "a"),
    ("on", "redirect", "999999999"), ("on", "redirect", "x"), ("on", "redirect", "0"),
    ("on", "redirect", "-1"), ("on", "redirect", "99999999999999999999"),
    ("on", "bcast", "optin"), ("on", "optout", "bcast"), ("on", "optin", "optout"),
    ("on", "bcast", "prefix", "a", "prefix", "ab"), ("on", "bcast", "prefix", "ab", "prefix", "a"),
    ("on", "bcast", "prefix", "", "prefix", "x"), ("on", "bcast", "prefix", "same", "prefix", "same"),
    ("off", "redirect", "999999999"), ("off", "prefix", "a"), ("off", "bogus"), ("OFF", "BCAST", "OPTIN"),
    ("on", "PREFIX", "a", "BCAST", "NOLOOP"),  # valid: later checks see it on
]


@pytest.mark.parametrize("args", _ERROR_CASES)
def test_tracking_option_errors(differ3, args):
    differ3.check("CLIENT", "TRACKING", *args)
    differ3.check("CLIENT", "TRACKINGINFO")
    differ3.check("CLIENT", "GETREDIR")
    differ3.check("CLIENT", "TRACKING", "off")


@pytest.mark.parametrize("argv", [("CLIENT", "TRACKING"), ("CLIENT", "TRACKING", "on"),
                                  ("CLIENT", "CACHING"), ("CLIENT", "CACHING", "yes", "no"),
                                  ("CLIENT", "GETREDIR", "x"), ("CLIENT", "TRACKINGINFO", "x"),
                                  ("COMMAND", "INFO", "client|tracking", "client|caching", "client|getredir",
                                   "client|trackinginfo")])
def test_arity_and_command_info(differ, argv):
    differ.check(*argv)
    differ.check("CLIENT", "TRACKING", "off")


@pytest.mark.parametrize("steps", [
    [("on", "optin"), ("on", "optout")],
    [("on", "optout"), ("on", "optin")],
    [("on", "optin"), ("on",)],  # switching OPTIN off by omission is allowed
    [("on",), ("on", "bcast")],
    [("on", "bcast"), ("on",)],
    [("on", "bcast", "prefix", "a"), ("on", "bcast", "prefix", "ab")],
    [("on", "bcast", "prefix", "ab"), ("on", "bcast", "prefix", "a")],
    [("on", "bcast", "prefix", "a"), ("on", "bcast", "prefix", "a")],
    [("on", "bcast", "prefix", "a"), ("on", "bcast", "prefix", "b", "prefix", "c", "noloop")],
    [("on", "bcast"), ("on", "bcast", "prefix", "x")],
    [("on", "noloop"), ("on", "optin")],
    [("on", "optout", "noloop"), ("off",), ("on", "bcast", "prefix", "z", "prefix", "\x00a")],
])
def test_tracking_mode_changes_and_info(differ3, steps):
    for step in steps:
        differ3.check("CLIENT", "TRACKING", *step)
        differ3.check("CLIENT", "TRACKINGINFO")
        differ3.check("CLIENT", "GETREDIR")
    differ3.check("CLIENT", "TRACKING", "off")
    differ3.check("CLIENT", "TRACKINGINFO")


@pytest.mark.parametrize("steps", [
    [("CACHING", "yes")],
    [("TRACKING", "on"), ("CACHING", "yes"), ("CACHING", "no"), ("CACHING", "maybe")],
    [("TRACKING", "on", "optin"), ("CACHING", "no"), ("CACHING", "yes"), ("TRACKINGINFO",), ("TRACKINGINFO",)],
    [("TRACKING", "on", "optout"), ("CACHING", "yes"), ("CACHING", "NO"), ("TRACKINGINFO",)],
    [("TRACKING", "on", "optin"), ("CACHING", "maybe")],
    [("TRACKING", "on", "optin"), ("CACHING", "yes"), ("TRACKING", "off"), ("TRACKINGINFO",)],
])
def test_client_caching(differ3, steps):
    for step in steps:
        differ3.check("CLIENT", *step)
    differ3.check("PING")
    differ3.check("CLIENT", "TRACKINGINFO")  # a non-CLIENT command cleared caching-yes/no
    differ3.check("CLIENT", "TRACKING", "off")


def test_caching_flag_survives_until_exec(redis_proc, shoal_proc):
    def scenario(s):
        s.open("a")
        s.call("a", "CLIENT", "TRACKING", "on", "optin")
        s.call("a", "CLIENT", "CACHING", "yes")
        s.call("a", "MULTI")
        s.call("a", "GET", "k")
        s.call("a", "CLIENT", "TRACKINGINFO")
        s.call("a", "EXEC")
        s.call("a", "CLIENT", "TRACKINGINFO")
    same(redis_proc, shoal_proc, scenario)


def test_redirect_to_self_and_getredir(redis_proc, shoal_proc):
    def scenario(s):
        s.open("a")
        s.open("b", resp=2)
        s.call("a", "CLIENT", "TRACKING", "on", "redirect", "@a")
        s.call("a", "CLIENT", "GETREDIR")
        s.call("a", "CLIENT", "TRACKING", "on", "redirect", "@b", "redirect", "@a")
        s.call("a", "CLIENT", "TRACKING", "on", "redirect", "@b")
        s.call("a", "CLIENT", "GETREDIR")
        s.call("a", "CLIENT", "TRACKINGINFO")
    same(redis_proc, shoal_proc, scenario)


def _client_fields(raw: bytes) -> bytes:
    """flags= and redir= of a CLIENT INFO line (the rest is addresses and ages)."""
    text = parse(raw)
    text = text if isinstance(text, bytes) else str(text).encode()
    return b" ".join(f for f in text.split() if f.startswith((b"flags=", b"redir=")))


def test_client_list_flags(redis_proc, shoal_proc):
    def scenario(s):
        s.open("a")
        s.open("b")
        info = lambda: s.log.append(("a", _client_fields(s.conns["a"].call("CLIENT", "INFO"))))  # noqa: E731
        info()
        s.call("a", "CLIENT", "TRACKING", "on")
        info()
        s.call("a", "CLIENT", "TRACKING", "off")
        s.call("a", "CLIENT", "TRACKING", "on", "bcast", "redirect", "@b")
        s.log.append(("a", _client_fields(s.conns["a"].call("CLIENT", "INFO")).replace(
            s.cid("b").encode(), b"<b>")))
        s.call("a", "CLIENT", "TRACKING", "off")
        info()
    same(redis_proc, shoal_proc, scenario)


def _info_tracking(s: Session, name: str) -> None:
    raw = s.conns[name].call("INFO", "everything")
    fields = [line for line in parse(raw).splitlines() if line.startswith(b"tracking_")]
    s.log.append((name, b" ".join(fields)))


def test_info_fields(redis_proc, shoal_proc):
    def scenario(s):
        s.open("a")
        s.open("b")
        s.open("c")
        _info_tracking(s, "c")
        s.call("a", "CLIENT", "TRACKING", "on")
        s.call("a", "MGET", "k1", "k2", "k3")
        s.call("b", "CLIENT", "TRACKING", "on")
        s.call("b", "GET", "k1")
        _info_tracking(s, "c")
        s.call("c", "CLIENT", "TRACKING", "on", "bcast", "prefix", "p", "prefix", "q")
        _info_tracking(s, "c")
        s.call("c", "SET", "k1", "x")
        s.drain("a")
        s.drain("b")
        _info_tracking(s, "c")
        s.call("c", "CLIENT", "TRACKING", "off")
        s.call("b", "CLIENT", "TRACKING", "off")
        _info_tracking(s, "c")
    same(redis_proc, shoal_proc, scenario)


# ----------------------------------------------------------------- invalidation


def test_default_mode_invalidations(redis_proc, shoal_proc):
    def scenario(s):
        s.open("a")
        s.open("w", resp=2)
        s.call("a", "CLIENT", "TRACKING", "on")
        s.call("a", "GET", "k")
        s.call("a", "HGETALL", "h")
        s.call("a", "MGET", "m1", "m2")
        s.call("w", "SET", "k", "1")
        s.drain("a")
        s.call("w", "SET", "k", "2")  # entry dropped by the first invalidation: no second message
        s.drain("a")
        s.call("w", "HSET", "h", "f", "v")
        s.call("w", "MSET", "m1", "x", "m2", "y", "other", "z")
        s.drain("a")
        s.call("w", "SELECT", "1")
        s.call("a", "GET", "k")
        s.call("w", "SET", "k", "in-db-1")  # the table is keyed by name, across databases
        s.drain("a")
        s.call("a", "GET", "k")
        s.call("a", "SET", "k", "own write")  # reply first, then the push
        s.drain("a")
        s.call("a", "GET", "gone")
        s.call("w", "SELECT", "0")
        s.call("w", "SET", "gone", "v")
        s.drain("a")
        s.call("a", "GET", "gone")
        s.call("w", "DEL", "gone")
        s.call("w", "DEL", "never-read")
        s.drain("a")
    same(redis_proc, shoal_proc, scenario)


def test_noloop_and_self_writes(redis_proc, shoal_proc):
    def scenario(s):
        s.open("a")
        s.open("w")
        s.call("a", "CLIENT", "TRACKING", "on", "noloop")
        s.call("a", "GET", "k")
        s.call("a", "SET", "k", "mine")  # NOLOOP: no message for the client's own write
        s.drain("a")
        s.call("a", "GET", "k")
        s.call("w", "SET", "k", "theirs")
        s.drain("a")
        s.call("a", "CLIENT", "TRACKING", "on")  # NOLOOP off again
        s.call("a", "GET", "k")
        s.call("a", "INCR", "n")
        s.call("a", "GET", "n")
        s.call("a", "INCR", "n")
        s.drain("a")
    same(redis_proc, shoal_proc, scenario)


def test_flush_sends_null(redis_proc, shoal_proc):
    def scenario(s):
        s.open("a")
        s.open("b")
        s.open("r2", resp=2)
        s.call("a", "CLIENT", "TRACKING", "on")
        s.call("b", "CLIENT", "TRACKING", "on", "bcast")
        s.call("a", "GET", "k")
        s.call("r2", "FLUSHDB")
        s.drain("a")
        s.drain("b")
        s.call("a", "FLUSHALL")  # the flusher's own null comes after its reply
        s.drain("a")
        s.drain("b")
        s.call("a", "MULTI")
        s.call("a", "FLUSHDB")
        s.call("a", "PING")
        s.call("a", "EXEC")  # the null after the whole EXEC reply
        s.drain("a")
        s.drain("b")
        s.call("a", "GET", "k")
        s.call("r2", "SET", "k", "v")
        s.drain("a")
    same(redis_proc, shoal_proc, scenario)


def test_transactions_and_scripts_invalidate_after_the_reply(redis_proc, shoal_proc):
    def scenario(s):
        s.open("a")
        s.open("w")
        s.call("a", "CLIENT", "TRACKING", "on")
        s.call("a", "GET", "k")
        s.call("a", "GET", "j")
        s.call("a", "MULTI")
        s.call("a", "SET", "k", "1")
        s.call("a", "GET", "k")
        s.call("a", "SET", "j", "2")
        s.call("a", "EXEC")
        s.drain("a")
        s.call("a", "MULTI")
        s.call("a", "GET", "k")  # read inside the transaction: tracked
        s.call("a", "EXEC")
        s.call("w", "SET", "k", "from w")
        s.drain("a")
        s.call("a", "GET", "k")
        s.call("a", "EVAL", "redis.call('set', KEYS[1], 'x'); return 1", "1", "k")
        s.drain("a")
        s.call("a", "GET", "k")
        s.call("w", "EVAL", "redis.call('set', KEYS[1], 'y'); return 2", "1", "k")
        s.drain("a")
        s.call("a", "EVAL", "return redis.call('mget', KEYS[1], KEYS[2])", "2", "s1", "s2")  # script reads
        s.call("a", "EVAL_RO", "return redis.call('get', KEYS[1])", "1", "s3")
        s.call("w", "MSET", "s1", "1", "s2", "2", "s3", "3")
        s.drain("a")
    same(redis_proc, shoal_proc, scenario)


def test_optin_optout(redis_proc, shoal_proc):
    def scenario(s):
        s.open("a")
        s.open("w")
        s.call("a", "CLIENT", "TRACKING", "on", "optin")
        s.call("a", "GET", "not-cached")
        s.call("a", "CLIENT", "CACHING", "yes")
        s.call("a", "GET", "cached")
        s.call("a", "GET", "after")  # CACHING yes covered one command only
        s.call("w", "MSET", "not-cached", "1", "cached", "2", "after", "3")
        s.drain("a")
        s.call("a", "CLIENT", "TRACKING", "off")
        s.call("a", "CLIENT", "TRACKING", "on", "optout")
        s.call("a", "GET", "x")
        s.call("a", "CLIENT", "CACHING", "no")
        s.call("a", "GET", "y")
        s.call("a", "GET", "z")
        s.call("w", "MSET", "x", "1", "y", "2", "z", "3")
        s.drain("a")
    same(redis_proc, shoal_proc, scenario)


def test_bcast(redis_proc, shoal_proc):
    def scenario(s):
        s.open("all")
        s.open("pre")
        s.open("nl")
        s.open("w", resp=2)
        s.call("all", "CLIENT", "TRACKING", "on", "bcast")
        s.call("pre", "CLIENT", "TRACKING", "on", "bcast", "prefix", "user:", "prefix", "obj:")
        s.call("nl", "CLIENT", "TRACKING", "on", "bcast", "noloop", "prefix", "user:")
        s.call("all", "GET", "user:1")  # BCAST remembers nothing per client
        s.call("w", "MSET", "user:2", "a", "obj:1", "b", "user:1", "c", "zzz", "d")
        for name in ("all", "pre", "nl"):
            s.drain(name)
        s.call("nl", "SET", "user:9", "own")  # NOLOOP: others hear of it, not nl
        for name in ("all", "pre", "nl"):
            s.drain(name)
        s.call("nl", "MSET", "user:8", "own", "obj:8", "own")
        for name in ("all", "pre", "nl"):
            s.drain(name)
        s.call("pre", "DEL", "obj:1")  # own write without NOLOOP: after the reply
        s.drain("pre")
        s.call("pre", "CLIENT", "TRACKING", "off")
        _info_tracking(s, "w")
        s.call("w", "SET", "user:3", "x")
        for name in ("all", "pre", "nl"):
            s.drain(name)
    same(redis_proc, shoal_proc, scenario)


def test_resp2_redirect_to_subscriber(redis_proc, shoal_proc):
    def scenario(s):
        s.open("sub", resp=2)
        s.open("a", resp=2)
        s.open("w", resp=2)
        s.call("a", "CLIENT", "TRACKING", "on", "redirect", "@sub")
        s.call("a", "GET", "k")
        s.call("w", "SET", "k", "before subscribing")  # RESP2, not in pub/sub mode: nothing to carry it
        s.drain("sub")
        s.call("sub", "SUBSCRIBE", "other-channel")  # pub/sub mode is what counts, not the channel
        s.call("a", "GET", "k")
        s.call("w", "SET", "k", "v0")
        s.drain("sub")
        s.call("sub", "SUBSCRIBE", "__redis__:invalidate")
        s.call("a", "GET", "k")
        s.call("w", "SET", "k", "v")
        s.drain("sub")
        s.drain("a")  # RESP2 connection: nothing arrives on it
        s.call("a", "GET", "k")
        s.call("a", "FLUSHALL")
        s.drain("sub")
        s.call("a", "CLIENT", "TRACKING", "off")
        s.call("a", "CLIENT", "TRACKING", "on", "bcast", "redirect", "@sub")
        s.call("w", "MSET", "b", "1", "a", "2")
        s.drain("sub")
    same(redis_proc, shoal_proc, scenario)


def test_resp2_without_redirect_and_resp3_redirect_target(redis_proc, shoal_proc):
    def scenario(s):
        s.open("plain", resp=2)
        s.open("target")  # RESP3, not subscribed: gets pushes
        s.open("a", resp=2)
        s.open("w", resp=2)
        s.call("plain", "CLIENT", "TRACKING", "on")
        s.call("plain", "GET", "k")
        s.call("a", "CLIENT", "TRACKING", "on", "redirect", "@target")
        s.call("a", "GET", "k")
        s.call("w", "SET", "k", "v")
        s.drain("plain")
        s.drain("target")
        s.call("a", "GET", "k")
        s.call("w", "FLUSHDB")  # the null is the tracking client's (RESP2) null
        s.drain("target")
        _info_tracking(s, "w")
    same(redis_proc, shoal_proc, scenario)


def test_broken_redirect(redis_proc, shoal_proc):
    def scenario(s):
        s.open("a")
        s.open("gone")
        s.open("w")
        s.call("a", "CLIENT", "TRACKING", "on", "redirect", "@gone")
        s.call("a", "GET", "k")
        s.close("gone")
        time.sleep(0.1)  # let the server see the close
        s.call("w", "SET", "k", "v")
        s.drain("a")
        s.call("a", "CLIENT", "TRACKINGINFO")
        s.log.append(("a", _client_fields(s.conns["a"].call("CLIENT", "INFO")).split(b" ")[0]))
        s.call("a", "GET", "k")
        s.call("a", "SET", "k", "own")  # the current client's own write: after its reply
        s.drain("a")
        s.call("a", "CLIENT", "TRACKING", "on")  # re-enabling clears the broken flag
        s.call("a", "CLIENT", "TRACKINGINFO")
    same(redis_proc, shoal_proc, scenario)


def test_expiry_and_reset(redis_proc, shoal_proc):
    def scenario(s):
        s.open("a")
        s.open("w")
        s.call("w", "SET", "e", "v", "PX", "30")
        s.call("a", "CLIENT", "TRACKING", "on")
        s.call("a", "GET", "e")
        time.sleep(0.1)
        s.call("w", "EXISTS", "e")  # expired: deleted now (if the active cycle has not already)
        s.drain("a")
        s.call("a", "DEBUG", "SET-ACTIVE-EXPIRE", "0")
        try:
            s.call("a", "SET", "mine", "v", "PX", "30")
            s.call("a", "GET", "mine")
            time.sleep(0.1)
            s.call("a", "GET", "mine")  # its own read deletes the expired key: null reply, then the push
            s.drain("a")
        finally:
            s.call("a", "DEBUG", "SET-ACTIVE-EXPIRE", "1")
        s.call("a", "GET", "k")
        s.call("a", "RESET")  # tracking off, back to RESP2
        s.call("a", "CLIENT", "TRACKINGINFO")
        s.call("w", "SET", "k", "v")
        s.drain("a")
    same(redis_proc, shoal_proc, scenario)


def test_tracking_table_max_keys(redis_proc, shoal_proc):
    """Over the limit, keys are invalidated before the next command (Redis picks them at random)."""
    results = []
    for port in (redis_proc.port, shoal_proc.port):
        with RawClient(port) as a, RawClient(port) as admin:
            admin.call("FLUSHALL")
            a.call("HELLO", "3")
            a.call("CLIENT", "TRACKING", "on")
            admin.call("CONFIG", "SET", "tracking-table-max-keys", "2")
            stream = []  # replies and pushes in arrival order, pushes as their key
            for key in ("k1", "k2", "k3", "k4"):
                stream.append(a.call("GET", key))
            a.send_raw(b"*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nPING\r\n")
            while stream.count(b"+PONG\r\n") < 2:
                stream.append(a.read_reply())
            pushes = [raw for raw in stream if raw.startswith(b">")]
            shape = [b"push" if raw.startswith(b">") else raw for raw in stream]
            info = parse(admin.call("INFO", "stats"))
            keys = int(info.split(b"tracking_total_keys:")[1].split(b"\r\n")[0])
            admin.call("CONFIG", "SET", "tracking-table-max-keys", "1000000")
            a.call("CLIENT", "TRACKING", "off")
            results.append((pushes, keys, shape))
    for pushes, keys, _ in results:
        assert keys <= 2
        assert all(p.startswith(b">2\r\n$10\r\ninvalidate\r\n*1\r\n$2\r\n") for p in pushes)
        invalidated = [p.split(b"\r\n")[-2] for p in pushes]
        assert len(invalidated) == len(set(invalidated)) and set(invalidated) <= {b"k1", b"k2", b"k3", b"k4"}
        assert len(invalidated) + keys == 4
    assert results[0][2] == results[1][2], (results[0][2], results[1][2])


def test_non_tracking_clients_unaffected(shoal):
    """With no tracking client, replies are plain (nothing pushed) and INFO shows nothing tracked."""
    shoal.call("HELLO", "3")
    assert shoal.call("GET", "k") == b"_\r\n"
    assert shoal.call("SET", "k", "v") == b"+OK\r\n"
    assert shoal.call("PING") == b"+PONG\r\n"
    info = parse(shoal.call("INFO", "everything"))
    assert b"tracking_clients:0\r\n" in info and b"tracking_total_keys:0\r\n" in info


def test_eviction_invalidates(redis_proc, shoal_proc):
    def scenario(s):
        s.open("a")
        s.open("w", resp=2)
        for i in range(20):
            s.call("w", "SET", f"k{i}", "x" * 100)
        s.call("a", "CLIENT", "TRACKING", "on")
        s.call("a", "GET", "k7")
        try:
            s.call("w", "CONFIG", "SET", "maxmemory-policy", "allkeys-random")
            s.call("w", "CONFIG", "SET", "maxmemory", "1")
            s.call("w", "SET", "new", "v")  # evicts every key first (then OOM)
        finally:
            s.conns["w"].call("CONFIG", "SET", "maxmemory", "0")
            s.conns["w"].call("CONFIG", "SET", "maxmemory-policy", "noeviction")
        s.drain("a")
        s.call("w", "DBSIZE")
    same(redis_proc, shoal_proc, scenario)


@pytest.mark.parametrize("protocol", [2, 3])
def test_redis_py_tracking_methods(redis_proc, shoal_proc, protocol):
    """redis-py's CLIENT TRACKING helpers, including its RESP2 redirect + pub/sub pattern.

    (redis-py's own client-side cache needs Redis 7.4+, so it cannot run against Redis 7.0.)
    """
    import redis

    seen = []
    for port in (redis_proc.port, shoal_proc.port):
        r = redis.Redis(port=port, protocol=protocol, single_connection_client=True)
        listener = redis.Redis(port=port, protocol=2)  # RESP2: the messages come on the channel
        writer = redis.Redis(port=port, protocol=2)
        pubsub = listener.pubsub()
        try:
            writer.flushall()
            pubsub.subscribe("__redis__:invalidate")
            host, cport = pubsub.connection._sock.getsockname()[:2]
            listener_id = next(int(c["id"]) for c in writer.client_list() if c["addr"] == f"{host}:{cport}")
            steps = [r.client_tracking_on(clientid=listener_id, prefix=["user:", "obj:"], bcast=True, noloop=True)]
            info = r.client_trackinginfo()
            steps.append(sorted((k if isinstance(k, str) else k.decode(), v) for k, v in
                                (info.items() if isinstance(info, dict) else zip(info[0::2], info[1::2]))
                                if k not in (b"redirect", "redirect")))
            steps.append(r.client_getredir() == listener_id)
            writer.mset({"user:1": "a", "obj:2": "b", "other": "c"})
            messages = []
            deadline = time.monotonic() + 5
            while len(messages) < 2 and time.monotonic() < deadline:
                message = pubsub.get_message(timeout=0.5)
                if message is not None and message["type"] == "message":
                    messages.append((message["channel"], sorted(message["data"])))
            steps.append(messages)
            steps.append(r.client_tracking_off())
            steps.append(writer.info("clients")["tracking_clients"])
        finally:
            pubsub.close()
            for c in (r, listener, writer):
                c.close()
        seen.append(steps)
    assert seen[0] == seen[1]
    assert seen[0][3] == [(b"__redis__:invalidate", [b"obj:2"]), (b"__redis__:invalidate", [b"user:1"])]


def test_movable_keys_and_malformed_reads(redis_proc, shoal_proc):
    def scenario(s):
        s.open("a")
        s.open("w", resp=2)
        s.call("a", "CLIENT", "TRACKING", "on")
        s.call("a", "ZUNION", "notanumber", "z1")
        s.call("a", "ZUNION", "5", "z1")
        s.call("a", "XREAD", "STREAMS", "x1")
        s.call("a", "ZUNION", "2", "z1", "z2")
        s.call("a", "XREAD", "COUNT", "1", "STREAMS", "x1", "x2", "0", "0")
        s.call("a", "SORT_RO", "l1", "BY", "nosort")
        s.call("a", "LCS", "s1", "s2")
        s.call("a", "EXISTS", "e1", "e2")
        s.call("w", "ZADD", "z2", "1", "m")
        s.call("w", "XADD", "x2", "5-1", "f", "v")
        s.call("w", "RPUSH", "l1", "a")
        s.call("w", "MSET", "s2", "x", "e2", "y")
        s.drain("a")
        s.call("w", "ZADD", "z1", "1", "m")
        s.drain("a")
    same(redis_proc, shoal_proc, scenario)
