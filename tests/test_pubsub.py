"""Pub/Sub against real Redis: the exact bytes every subscriber receives.

Each logical client is a ``Pair``: one connection to Redis and one to Shoal,
sent the same commands. What a subscriber received is collected by sending it
``PING <marker>`` and reading every reply up to the marker's (messages were
queued before the PING reply on both servers, so nothing is timing-dependent).

Channel names carry a per-test prefix: the servers are shared by the whole
session and a closed subscriber from another test may still be going away.

Where Redis's order comes from its hash tables (unsubscribe-all of channels,
PUBSUB CHANNELS, several patterns of one client matching one message), the
test normalises both sides; tests/known_differences.py says why.
"""

from __future__ import annotations

import itertools
import os
import socket
import time

import pytest
import redis

from tests.known_differences import KNOWN_DIFFERENCES, normalizer_for
from tests.resp_client import RawClient, encode_command, parse, reply_end
from tests.servers import ServerProcess

_markers = itertools.count()


class Pair:
    """The same client on both servers."""

    def __init__(self, redis_port: int, shoal_port: int, protocol: int = 2) -> None:
        self.redis = RawClient(redis_port)
        self.shoal = RawClient(shoal_port)
        self.protocol = protocol
        if protocol == 3:
            self.redis.call("HELLO", "3")
            self.shoal.call("HELLO", "3")

    def send(self, *argv) -> None:
        data = encode_command(*argv)
        self.redis.send_raw(data)
        self.shoal.send_raw(data)

    def both(self, *argv) -> tuple[bytes, bytes]:
        return self.redis.call(*argv), self.shoal.call(*argv)

    def check(self, *argv) -> bytes:
        """One command with exactly one reply on each side; equal after known_differences' normaliser."""
        r, s = self.both(*argv)
        normalize = normalizer_for(argv) or (lambda raw: raw)
        assert normalize(r) == normalize(s), f"{argv!r}\n  redis: {r!r}\n  shoal: {s!r}"
        return r

    def until_reset(self) -> None:
        """RESET, then assert both sides got the same replies/pushes before its +RESET."""
        self.send("RESET")
        got = []
        for side in (self.redis, self.shoal):
            replies = []
            while (raw := side.read_reply()) != b"+RESET\r\n":
                replies.append(raw)
            got.append(replies)
        assert got[0] == got[1], f"\n  redis: {got[0]!r}\n  shoal: {got[1]!r}"

    def received(self) -> tuple[list[bytes], list[bytes]]:
        """Every reply/push each side got since the last call (via a PING marker)."""
        marker = b"marker-%d" % next(_markers)
        self.send("PING", marker)
        return _until_marker(self.redis, marker), _until_marker(self.shoal, marker)

    def expect(self, normalize=None) -> list[bytes]:
        """``received()`` on both sides, asserted equal (after ``normalize``)."""
        r, s = self.received()
        if normalize is not None:
            assert normalize(r) == normalize(s), f"\n  redis: {r!r}\n  shoal: {s!r}"
        else:
            assert r == s, f"\n  redis: {r!r}\n  shoal: {s!r}"
        return r

    def close(self) -> None:
        self.redis.close()
        self.shoal.close()


def _until_marker(client: RawClient, marker: bytes) -> list[bytes]:
    out = []
    while True:
        raw = client.read_reply()
        value = parse(raw)
        if value == marker or value == [b"pong", marker]:
            return out
        out.append(raw)


@pytest.fixture
def pairs(redis_proc, shoal_proc):
    made: list[Pair] = []

    def make(protocol: int = 2) -> Pair:
        pair = Pair(redis_proc.port, shoal_proc.port, protocol)
        made.append(pair)
        return pair

    yield make
    for pair in made:
        pair.close()
    assert shoal_proc.alive(), "shoal-server died during the test:\n" + shoal_proc.log()


@pytest.fixture
def prefix(request) -> str:
    name = "".join(c if c.isalnum() else "_" for c in request.node.name[:30])
    return f"t{next(_markers)}:{name}:"


# ---- normalisers for hash-table order (reasons in tests/known_differences.py) ----

unsubscribe_all = KNOWN_DIFFERENCES["unsubscribe"].normalize
several_patterns = KNOWN_DIFFERENCES["pubsub: several patterns matching one message"].normalize


# ------------------------------------------------------------ subscribe & publish


@pytest.mark.parametrize("protocol", [2, 3])
def test_subscribe_and_messages(pairs, prefix, protocol):
    sub = pairs(protocol)
    pub = pairs(2)
    a, b = prefix + "a", prefix + "b"
    # Duplicates, and counts growing over channels and patterns together.
    sub.send("SUBSCRIBE", a, b, a)
    sub.expect()
    sub.send("PSUBSCRIBE", prefix + "*", prefix + "[ab]x")
    sub.expect()
    pub.check("PUBLISH", a, "hello")  # channel + pattern: 2 receivers
    pub.check("PUBLISH", prefix + "ax", "p-only")  # both patterns
    pub.check("PUBLISH", prefix + "zz", "")  # one pattern, empty message
    pub.check("PUBLISH", prefix + "nomatch-\x00\xff", "binary\r\n\x00")
    pub.check("PUBLISH", "other-" + prefix, "nobody")
    sub.expect(several_patterns)
    pub.check("PUBSUB", "NUMSUB", a, b, prefix + "none")


@pytest.mark.parametrize("protocol", [2, 3])
def test_unsubscribe_forms(pairs, prefix, protocol):
    sub = pairs(protocol)
    # Nothing subscribed: one confirmation with a null name and count 0.
    sub.send("UNSUBSCRIBE")
    sub.send("PUNSUBSCRIBE")
    sub.send("SUNSUBSCRIBE")
    sub.expect()
    chans = [prefix + c for c in "abc"]
    sub.send("SUBSCRIBE", *chans)
    sub.send("PSUBSCRIBE", prefix + "p1*", prefix + "p2*", prefix + "p3*")
    sub.expect()
    # Named ones, including one never subscribed and a repeat.
    sub.send("UNSUBSCRIBE", chans[1], prefix + "never", chans[1])
    sub.send("PUNSUBSCRIBE", prefix + "p2*", prefix + "never*")
    sub.expect()
    # All patterns: Redis 7.0 keeps them in a list, so the order is fixed.
    sub.send("PUNSUBSCRIBE")
    sub.expect()
    # All channels: hash-table order in Redis.
    sub.send("UNSUBSCRIBE")
    sub.expect(unsubscribe_all)
    sub.send("UNSUBSCRIBE")
    sub.expect()
    # None of this kind left, some of the others: the null confirmation still reports the count.
    sub.send("PSUBSCRIBE", prefix + "only*")
    sub.send("SSUBSCRIBE", prefix + "shard")
    sub.send("UNSUBSCRIBE")
    sub.send("SUBSCRIBE", prefix + "c")
    sub.send("PUNSUBSCRIBE", prefix + "only*")
    sub.send("PUNSUBSCRIBE")
    sub.send("SUNSUBSCRIBE", prefix + "shard")
    sub.send("SUNSUBSCRIBE")
    sub.expect()


def test_unsubscribe_all_many_channels(pairs, prefix):
    sub = pairs(2)
    sub.send("SUBSCRIBE", *[prefix + str(i) for i in range(20)])
    sub.send("PSUBSCRIBE", prefix + "*")
    sub.expect()
    sub.send("UNSUBSCRIBE")
    sub.expect(unsubscribe_all)
    # Still in the subscribed context through the pattern.
    sub.check("GET", "x")
    sub.send("PUNSUBSCRIBE")
    sub.expect()
    sub.check("GET", "x")


@pytest.mark.parametrize("protocol", [2, 3])
def test_publisher_subscribed_to_its_own_channel(pairs, prefix, protocol):
    me = pairs(protocol)
    other = pairs(2)
    me.send("SUBSCRIBE", prefix + "self")
    me.expect()
    if protocol == 3:
        # The push comes before PUBLISH's own reply.
        me.send("PUBLISH", prefix + "self", "to me")
        me.expect()
        me.check("SET", prefix + "k", "v")
        me.check("GET", prefix + "k")
    else:
        me.check("PUBLISH", prefix + "self", "to me")  # refused in the RESP2 context
    other.check("PUBLISH", prefix + "self", "from other")
    me.expect()


def test_several_subscribers_get_their_own_copies(pairs, prefix):
    subs = [pairs(p) for p in (2, 3, 2, 3)]
    chan = prefix + "news"
    for i, sub in enumerate(subs):
        if i % 2:
            sub.send("PSUBSCRIBE", prefix + "n*")
        else:
            sub.send("SUBSCRIBE", chan)
        sub.expect()
    pub = pairs(3)
    pub.check("PUBLISH", chan, "one")
    pub.check("PUBLISH", prefix + "nothing", "two")
    pub.check("PUBLISH", prefix + "x", "three")
    for sub in subs:
        sub.expect()
    pub.check("PUBSUB", "NUMSUB", chan)


def test_large_and_many_messages(pairs, prefix):
    sub = pairs(2)
    sub.send("SUBSCRIBE", prefix + "big")
    sub.expect()
    pub = pairs(2)
    payload = os.urandom(300_000)
    pub.check("PUBLISH", prefix + "big", payload)
    for i in range(200):
        pub.send("PUBLISH", prefix + "big", b"m%d" % i)
    for _ in range(200):
        assert pub.redis.read_reply() == pub.shoal.read_reply() == b":1\r\n"
    sub.expect()


# ------------------------------------------------------------- RESP2 context


def test_resp2_subscribed_context(pairs, prefix):
    sub = pairs(2)
    sub.send("SUBSCRIBE", prefix + "c")
    sub.expect()
    for argv in (("GET", "x"), ("CLIENT", "ID"), ("CONFIG", "GET", "port"), ("PUBSUB", "NUMPAT"),
                 ("MULTI",), ("PUBLISH", "x", "y"), ("SELECT", "1"), ("HELLO",)):
        sub.check(*argv)
    sub.check("PING")
    sub.check("PING", "hi")
    sub.check("PING", "a", "b")
    sub.send("SUBSCRIBE", prefix + "d")
    sub.send("PSUBSCRIBE", prefix + "*")
    sub.send("SSUBSCRIBE", prefix + "s")
    sub.expect()
    sub.send("UNSUBSCRIBE")
    sub.expect(unsubscribe_all)
    sub.send("PUNSUBSCRIBE")
    sub.expect()
    # Only a shard channel left: still the subscribed context.
    sub.check("GET", "x")
    sub.check("PING")
    sub.send("SUNSUBSCRIBE")
    sub.expect()
    sub.check("PING")
    sub.check("GET", "x")


def test_reset_and_quit_in_subscribed_context(pairs, prefix, shoal_proc):
    sub = pairs(2)
    sub.send("SUBSCRIBE", prefix + "c")
    sub.send("PSUBSCRIBE", prefix + "p*")
    sub.send("SSUBSCRIBE", prefix + "s")
    sub.expect()
    sub.check("RESET")
    sub.check("GET", "x")
    probe = pairs(2)
    probe.check("PUBSUB", "NUMSUB", prefix + "c")
    probe.check("PUBSUB", "SHARDNUMSUB", prefix + "s")
    probe.check("PUBLISH", prefix + "pz", "nobody")
    sub.send("SUBSCRIBE", prefix + "c")
    sub.expect()
    sub.check("QUIT")
    assert sub.shoal.closed_by_server() and sub.redis.closed_by_server()


@pytest.mark.parametrize("protocol", [2, 3])
def test_subscribe_inside_multi(pairs, prefix, protocol):
    c = pairs(protocol)
    c.check("MULTI")
    c.check("SUBSCRIBE", prefix + "a", prefix + "b")
    c.check("SSUBSCRIBE", prefix + "s")
    c.send("EXEC")
    c.expect()
    c.send("UNSUBSCRIBE", prefix + "a", prefix + "b")
    c.expect()
    if protocol == 3:
        c.send("SUBSCRIBE", prefix + "x")
        c.expect()
        c.check("MULTI")
        c.check("PUBLISH", prefix + "x", "in-exec")
        c.check("SET", prefix + "k", "v")
        c.send("EXEC")
        c.expect()


@pytest.mark.parametrize("protocol", [2, 3])
def test_pushes_survive_client_reply_off_and_skip(pairs, prefix, protocol):
    c = pairs(protocol)
    pub = pairs(2)
    c.send("CLIENT", "REPLY", "OFF")
    c.send("SUBSCRIBE", prefix + "q")  # the confirmation is a push: sent
    pub.check("PUBLISH", prefix + "q", "while-off")
    c.send("PING")  # an ordinary reply: not sent
    if protocol == 3:
        c.send("PUBLISH", prefix + "q", "own")  # the push goes out, the reply does not
        c.send("GET", prefix + "nothing")
    c.until_reset()
    if protocol == 3:
        c.both("HELLO", "3")  # (client ids differ)
        c.send("SUBSCRIBE", prefix + "q")
        c.expect()
        c.send("CLIENT", "REPLY", "SKIP")
        c.send("PUBLISH", prefix + "q", "skipped-reply")
        c.send("PUBLISH", prefix + "q", "with-reply")
        c.expect()


# ---------------------------------------------------------------- PUBSUB


def test_pubsub_introspection(pairs, prefix):
    subs = [pairs(2) for _ in range(3)]
    subs[0].send("SUBSCRIBE", prefix + "a", prefix + "b", "")
    subs[1].send("SUBSCRIBE", prefix + "a")
    subs[1].send("PSUBSCRIBE", prefix + "*", prefix + "*")
    subs[2].send("PSUBSCRIBE", prefix + "*", prefix + "?")
    subs[2].send("SSUBSCRIBE", prefix + "s1", prefix + "s2")
    subs[0].send("SSUBSCRIBE", prefix + "s1")
    for sub in subs:
        sub.expect()
    q = pairs(2)
    r = q.check("PUBSUB", "CHANNELS", prefix + "*")
    assert sorted(parse(r)) == [(prefix + "a").encode(), (prefix + "b").encode()]
    r_all, s_all = q.both("PUBSUB", "CHANNELS")
    assert b"" in parse(r_all) and b"" in parse(s_all)  # the empty channel is listed without a pattern...
    q.check("PUBSUB", "CHANNELS", "")  # ...and matched only by the empty pattern
    q.check("PUBSUB", "NUMSUB")
    q.check("PUBSUB", "NUMSUB", prefix + "a", prefix + "b", prefix + "zz", prefix + "a", "")
    q.check("PUBSUB", "SHARDNUMSUB", prefix + "s1", prefix + "s2", prefix + "a")
    r = q.check("PUBSUB", "SHARDCHANNELS", prefix + "s*")
    assert sorted(parse(r)) == [(prefix + "s1").encode(), (prefix + "s2").encode()]
    q.check("pubsub", "shardchannels", prefix + "s[2]")
    q.check("PUBSUB", "HELP")
    for argv in (("PUBSUB",), ("PUBSUB", "NOPE"), ("PUBSUB", "CHANNELS", "a", "b"),
                 ("PUBSUB", "shardchannels", "a", "b"), ("PUBSUB", "NUMPAT", "x"), ("PUBSUB", "HELP", "x"),
                 ("SUBSCRIBE",), ("PSUBSCRIBE",), ("SSUBSCRIBE",), ("PUBLISH", "a"), ("SPUBLISH", "a", "b", "c")):
        q.check(*argv)


def test_numpat_and_info_counts(pairs, prefix):
    """PUBSUB NUMPAT and INFO's pubsub counters, as deltas (other tests share the servers)."""

    def counts(q: Pair):
        # Clients closed by earlier tests may still be going away: wait for two equal readings.
        last = None
        for _ in range(100):
            now = reading(q)
            if now == last:
                return now
            last = now
            time.sleep(0.02)
        return last

    def reading(q: Pair):
        out = []
        for side in (q.redis, q.shoal):
            info = parse(side.call("INFO", "stats")).decode()
            fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
            out.append((parse(side.call("PUBSUB", "NUMPAT")), int(fields["pubsub_channels"]),
                        int(fields["pubsub_patterns"]), int(fields["pubsubshard_channels"])))
        return out

    q = pairs(2)
    before = counts(q)
    subs = [pairs(2) for _ in range(2)]
    for sub in subs:
        sub.send("PSUBSCRIBE", prefix + "x*", prefix + "y*")
        sub.send("SUBSCRIBE", prefix + "c1", prefix + "c2")
        sub.send("SSUBSCRIBE", prefix + "s")
        sub.expect()
    after = counts(q)
    for b, a in zip(before, after):
        # Distinct patterns and channels: two clients on the same pattern count once.
        assert tuple(x - y for x, y in zip(a, b)) == (2, 2, 2, 1)
    subs[0].check("RESET")
    assert counts(q) == after


def test_client_list_subscription_fields(prefix, shoal_proc):
    sub = RawClient(shoal_proc.port)
    try:
        sub.call("CLIENT", "SETNAME", "subber")
        sub.send_raw(encode_command("SUBSCRIBE", prefix + "a", prefix + "b")
                     + encode_command("PSUBSCRIBE", prefix + "*")
                     + encode_command("SSUBSCRIBE", prefix + "s"))
        for _ in range(4):
            sub.read_reply()
        with RawClient(shoal_proc.port) as q:
            listing = parse(q.call("CLIENT", "LIST")).decode()
            line = next(l for l in listing.splitlines() if " name=subber " in l)
            assert " flags=P " in line and " sub=2 psub=1 ssub=1 " in line
            assert parse(q.call("CLIENT", "KILL", "TYPE", "pubsub")) >= 1
        assert sub.closed_by_server()
    finally:
        sub.close()


def test_disconnect_drops_subscriptions(pairs, prefix, shoal_proc):
    sub = pairs(2)
    sub.send("SUBSCRIBE", prefix + "gone")
    sub.send("SSUBSCRIBE", prefix + "sgone")
    sub.expect()
    sub.close()
    with RawClient(shoal_proc.port) as q:
        for _ in range(200):  # the close is noticed on the server's next pass
            if q.call("PUBSUB", "NUMSUB", prefix + "gone").endswith(b":0\r\n"):
                break
            time.sleep(0.01)
        assert parse(q.call("PUBSUB", "NUMSUB", prefix + "gone"))[1] == 0
        assert parse(q.call("PUBSUB", "SHARDNUMSUB", prefix + "sgone"))[1] == 0
        assert q.call("PUBLISH", prefix + "gone", "x") == b":0\r\n"


# ---------------------------------------------------------- shard channels


@pytest.mark.parametrize("protocol", [2, 3])
def test_shard_channels_standalone(pairs, prefix, protocol):
    sub = pairs(protocol)
    sub.send("SSUBSCRIBE", prefix + "s1", prefix + "s2", prefix + "s1")
    sub.send("SUBSCRIBE", prefix + "s1")  # counted apart from shard channels
    sub.send("PSUBSCRIBE", prefix + "*")
    sub.expect()
    pub = pairs(2)
    pub.check("SPUBLISH", prefix + "s1", "shard")  # shard subscribers only: patterns ignored
    pub.check("PUBLISH", prefix + "s1", "plain")  # channel + pattern, not the shard subscription
    pub.check("SPUBLISH", prefix + "none", "x")
    sub.expect()
    sub.send("SUNSUBSCRIBE", prefix + "s2", prefix + "nope")
    sub.expect()
    sub.send("SUNSUBSCRIBE")
    sub.expect()
    pub.check("SPUBLISH", prefix + "s1", "after")
    sub.expect()


# ------------------------------------------------------------------ redis-py


def test_redis_py_pubsub_concurrent_subscribers(shoal_proc, prefix):
    r = redis.Redis(port=shoal_proc.port)
    try:
        listeners = []
        for i in range(4):
            ps = r.pubsub()
            ps.subscribe(prefix + "chan")
            ps.psubscribe(prefix + "ch*")
            listeners.append(ps)
        for ps in listeners:
            kinds = [ps.get_message(timeout=2.0)["type"] for _ in range(2)]
            assert kinds == ["subscribe", "psubscribe"]
        assert r.publish(prefix + "chan", "both") == 8  # each listener: channel + pattern
        assert r.publish(prefix + "chx", "pattern only") == 4
        for ps in listeners:
            got = []
            while len(got) < 3:
                msg = ps.get_message(timeout=2.0)
                assert msg is not None, got
                got.append((msg["type"], msg["pattern"], msg["channel"], msg["data"]))
            assert got == [
                ("message", None, (prefix + "chan").encode(), b"both"),
                ("pmessage", (prefix + "ch*").encode(), (prefix + "chan").encode(), b"both"),
                ("pmessage", (prefix + "ch*").encode(), (prefix + "chx").encode(), b"pattern only"),
            ]
        assert r.pubsub_numsub(prefix + "chan") == [((prefix + "chan").encode(), 4)]
        for ps in listeners:
            ps.close()
    finally:
        r.close()


def test_redis_py_resp3_push_handler(shoal_proc, prefix):
    r = redis.Redis(port=shoal_proc.port, protocol=3)
    try:
        ps = r.pubsub()
        ps.subscribe(prefix + "r3")
        assert ps.get_message(timeout=2.0)["type"] == "subscribe"
        assert r.publish(prefix + "r3", "pushed") == 1
        msg = ps.get_message(timeout=2.0)
        assert (msg["type"], msg["data"]) == ("message", b"pushed")
        ps.close()
    finally:
        r.close()


# ------------------------------------------------------ output buffer limits


def _rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _slow_reader(port: int, channel: str) -> socket.socket:
    """A subscriber with a tiny receive buffer that never reads its messages."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.sendall(encode_command("SUBSCRIBE", channel))
    data = b""
    while True:
        data += sock.recv(4096)
        try:
            reply_end(data)
            return sock
        except IndexError:
            continue


def _flood(port: int, channel: str, payload: bytes, max_messages: int) -> int:
    """PUBLISH until nobody receives (the subscriber was dropped); how many were sent."""
    with RawClient(port, timeout=30) as pub:
        for sent in range(1, max_messages + 1):
            if pub.call("PUBLISH", channel, payload) == b":0\r\n":
                return sent
    return max_messages + 1


@pytest.fixture
def limited_servers():
    args = ("--client-output-buffer-limit", "pubsub 4mb 1mb 60")
    with ServerProcess("shoal", *args) as shoal, ServerProcess("redis", *args) as real:
        yield shoal, real


def test_output_buffer_hard_limit_disconnects_slow_subscriber(limited_servers):
    shoal, real = limited_servers
    payload = os.urandom(256 * 1024)
    for proc in (real, shoal):
        sub = _slow_reader(proc.port, "flood")
        rss_before = _rss_kb(proc.proc.pid)
        # 800 x 256 KB = 200 MB offered; the 4 MB hard limit must cut the subscriber off.
        sent = _flood(proc.port, "flood", payload, 800)
        assert sent <= 800, f"{proc.kind}: subscriber never disconnected"
        grown_mb = (_rss_kb(proc.proc.pid) - rss_before) / 1024
        assert grown_mb < 64, f"{proc.kind}: RSS grew by {grown_mb:.0f} MB"
        with RawClient(proc.port) as q:
            assert q.call("PING") == b"+PONG\r\n"
            assert q.call("PUBSUB", "NUMSUB", "flood") == b"*2\r\n$5\r\nflood\r\n:0\r\n"
        # The subscriber sees its connection end once it reads what was sent before.
        sub.settimeout(10)
        while sub.recv(1 << 16):
            pass
        sub.close()
    assert "scheduled to be closed ASAP for overcoming of output buffer limits" in shoal.log()


def test_output_buffer_soft_limit_needs_time(limited_servers):
    shoal, _ = limited_servers
    with RawClient(shoal.port) as admin:
        # Soft limit only: over 1 MB for more than 0 s, i.e. seen over it in two different seconds.
        assert admin.call("CONFIG", "SET", "client-output-buffer-limit", "pubsub 0 1mb 0") == b"+OK\r\n"
    sub = _slow_reader(shoal.port, "soft")
    payload = os.urandom(64 * 1024)
    started = time.monotonic()
    with RawClient(shoal.port, timeout=30) as pub:
        receivers = 1
        while receivers and time.monotonic() - started < 10:
            receivers = parse(pub.call("PUBLISH", "soft", payload))
    sub.close()
    assert receivers == 0, "the soft limit never disconnected the subscriber"


def test_publisher_not_limited_by_normal_class(shoal_proc, prefix):
    """Publishing a lot with nobody subscribed costs nothing and closes no one."""
    with RawClient(shoal_proc.port) as pub:
        payload = b"x" * 100_000
        pub.send_raw(encode_command("PUBLISH", prefix + "void", payload) * 50)
        for _ in range(50):
            assert pub.read_reply() == b":0\r\n"
        assert pub.call("PING") == b"+PONG\r\n"
