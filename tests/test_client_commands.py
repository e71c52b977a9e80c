"""CLIENT subcommands against Redis 7.0, and through redis-py."""

from __future__ import annotations

import time

import pytest
import redis

from tests.known_differences import CLIENT_MEMORY_FIELDS
from tests.resp_client import RawClient, encode_command, parse

# Differ per server (ids, addresses, fds, timing): masked when comparing lines.
IDENTITY_FIELDS = ("id", "addr", "laddr", "fd", "age", "idle")

ERROR_CASES = [
    ("CLIENT",), ("CLIENT", "foo"), ("CLIENT", "HELP", "x"), ("CLIENT", "ID", "x"),
    ("CLIENT", "GETNAME"), ("CLIENT", "SETNAME"), ("CLIENT", "SETNAME", "a b"), ("CLIENT", "SETNAME", "a\nb"),
    ("CLIENT", "SETNAME", "caf\xe9"), ("CLIENT", "SETNAME", "a\x00b"), ("CLIENT", "SETNAME", "ok-name"),
    ("CLIENT", "GETNAME"), ("CLIENT", "SETNAME", ""), ("CLIENT", "GETNAME"),
    ("CLIENT", "LIST", "TYPE"), ("CLIENT", "LIST", "TYPE", "foo"), ("CLIENT", "LIST", "TYPE", "normal", "x"),
    ("CLIENT", "LIST", "ID"), ("CLIENT", "LIST", "ID", "x"), ("CLIENT", "LIST", "ID", "99999"),
    ("CLIENT", "LIST", "ID", "1", "x"), ("CLIENT", "LIST", "foo"), ("CLIENT", "LIST", "TYPE", "master"),
    ("CLIENT", "LIST", "TYPE", "replica"), ("CLIENT", "LIST", "TYPE", "slave"), ("CLIENT", "LIST", "TYPE", "PUBSUB"),
    ("CLIENT", "INFO", "x"),
    ("CLIENT", "KILL"), ("CLIENT", "KILL", "1.2.3.4:5"), ("CLIENT", "KILL", "ID"), ("CLIENT", "KILL", "ID", "0"),
    ("CLIENT", "KILL", "ID", "-1"), ("CLIENT", "KILL", "ID", "x"), ("CLIENT", "KILL", "ID", "99999"),
    ("CLIENT", "KILL", "TYPE", "foo"), ("CLIENT", "KILL", "TYPE", "master"), ("CLIENT", "KILL", "TYPE", "replica"),
    ("CLIENT", "KILL", "USER", "bob"), ("CLIENT", "KILL", "USER", "default", "SKIPME", "maybe"),
    ("CLIENT", "KILL", "ADDR", "1.2.3.4:5", "LADDR", "1.1.1.1:1"), ("CLIENT", "KILL", "ID", "1", "foo"),
    ("CLIENT", "KILL", "foo", "bar"), ("CLIENT", "KILL", "SKIPME", "NO", "ID", "99999"),
    ("CLIENT", "KILL", "ID", "99999999999999999999"),
    ("CLIENT", "REPLY"), ("CLIENT", "REPLY", "foo"), ("CLIENT", "REPLY", "on", "x"), ("CLIENT", "REPLY", "ON"),
    ("CLIENT", "NO-EVICT"), ("CLIENT", "NO-EVICT", "foo"), ("CLIENT", "NO-EVICT", "on"), ("CLIENT", "NO-EVICT", "OFF"),
    ("CLIENT", "ID", "1"), ("CLIENT", "GETREDIR"), ("CLIENT", "GETREDIR", "x"), ("CLIENT", "TRACKINGINFO"),
    ("CLIENT", "UNPAUSE"), ("CLIENT", "UNPAUSE", "x"),
]


def test_client_errors_and_simple_replies(differ, differ3):
    for d in (differ, differ3):
        d.check_all(ERROR_CASES)


def _fields(line: str) -> list[tuple[str, str]]:
    return [tuple(f.split("=", 1)) for f in line.split(" ")]


def _masked(raw: bytes) -> list[list[tuple[str, str]]]:
    """CLIENT LIST/INFO text with per-server identity and allocator fields masked."""
    text = parse(raw)
    assert isinstance(text, bytes), raw
    text = text.decode()
    if text.startswith("txt:"):
        text = text[4:]
    if not text:
        return []
    assert text.endswith("\n")
    return [
        [(k, "*" if k in IDENTITY_FIELDS + CLIENT_MEMORY_FIELDS else v) for k, v in _fields(line)]
        for line in text[:-1].split("\n")
    ]


def test_client_info_and_list_fields_match_redis(differ, differ3):
    for d in (differ, differ3):
        for argv in (("CLIENT", "INFO"), ("CLIENT", "LIST", "ID", "1"), ("CLIENT", "SETNAME", "worker-1"),
                     ("CLIENT", "INFO"), ("SELECT", "3"), ("CLIENT", "NO-EVICT", "on"), ("CLIENT", "INFO"),
                     ("CLIENT", "NO-EVICT", "off"), ("SELECT", "0")):
            expected, actual = d.both(*argv)
            if expected.startswith((b"$", b"=")):
                # Same fields in the same order, same values but the masked ones
                # (qbuf and argv-mem included: both reflect the request itself).
                assert _masked(expected) == _masked(actual), argv
            else:
                assert expected == actual
        # The first two are enough to pin the exact field list:
        names = [k for k, _ in _masked(d.both("CLIENT", "INFO")[1])[0]]
        assert names == ("id addr laddr fd name age idle flags db sub psub ssub multi qbuf qbuf-free argv-mem "
                         "multi-mem rbs rbp obl oll omem tot-mem events cmd user redir resp").split()


def test_client_list_sees_other_connections(redis_proc, shoal_proc, differ):
    results = []
    for port in (redis_proc.port, shoal_proc.port):
        with RawClient(port) as me, RawClient(port) as other:
            other.call("CLIENT", "SETNAME", "other")
            other.call("SELECT", "5")
            other_id = parse(other.call("CLIENT", "ID"))
            my_id = parse(me.call("CLIENT", "ID"))
            lines = _masked(me.call("CLIENT", "LIST", "ID", str(other_id), str(my_id)))
            typed = parse(me.call("CLIENT", "LIST", "TYPE", "normal"))
            assert f"id={other_id} ".encode() in typed and f"id={my_id} ".encode() in typed
            assert parse(me.call("CLIENT", "LIST", "TYPE", "pubsub")) in (b"", b"txt:")
            results.append(lines)
    assert results[0] == results[1]
    other_line = dict(results[1][0])
    assert other_line["name"] == "other" and other_line["cmd"] == "client|id" and other_line["db"] == "5"
    assert dict(results[1][1])["cmd"] == "client|list"


def test_client_list_qbuf_and_argv_mem_are_real(shoal):
    info = dict(_fields(parse(shoal.call("CLIENT", "INFO")).decode().strip()))
    request = encode_command("CLIENT", "INFO")
    assert int(info["qbuf"]) == len(request)  # Redis: 26 for CLIENT LIST, the request itself
    assert int(info["argv-mem"]) == len("CLIENT") + len("INFO")
    assert info["cmd"] == "client|info" and info["flags"] == "N" and info["resp"] == "2"


def test_client_kill_old_form(redis_proc, shoal_proc):
    for port in (redis_proc.port, shoal_proc.port):
        with RawClient(port) as me, RawClient(port) as victim:
            victim.call("PING")
            addr = dict(_fields(parse(victim.call("CLIENT", "INFO")).decode().strip()))["addr"]
            assert me.call("CLIENT", "KILL", addr) == b"+OK\r\n"
            assert victim.closed_by_server()
            assert me.call("CLIENT", "KILL", addr) == b"-ERR No such client\r\n"
            # The old form can kill the caller itself: reply first, then close.
            my_addr = dict(_fields(parse(me.call("CLIENT", "INFO")).decode().strip()))["addr"]
            assert me.call("CLIENT", "KILL", my_addr) == b"+OK\r\n"
            assert me.closed_by_server()


def test_client_kill_filters(redis_proc, shoal_proc):
    for port in (redis_proc.port, shoal_proc.port):
        with RawClient(port) as me, RawClient(port) as a, RawClient(port) as b:
            a_id = parse(a.call("CLIENT", "ID"))
            b_info = dict(_fields(parse(b.call("CLIENT", "INFO")).decode().strip()))
            my_id = parse(me.call("CLIENT", "ID"))
            assert me.call("CLIENT", "KILL", "ID", str(my_id)) == b":0\r\n"  # SKIPME yes by default
            assert me.call("CLIENT", "KILL", "ID", str(a_id), "TYPE", "pubsub") == b":0\r\n"
            assert me.call("CLIENT", "KILL", "ID", str(a_id), "TYPE", "normal", "USER", "default") == b":1\r\n"
            assert a.closed_by_server()
            assert me.call("CLIENT", "KILL", "ADDR", b_info["addr"], "LADDR", b_info["laddr"]) == b":1\r\n"
            assert b.closed_by_server()
            # Pipelined: the killed client is gone from CLIENT LIST at once.
            with RawClient(port) as c:
                c_id = parse(c.call("CLIENT", "ID"))
                kill, listing = me.pipeline([("CLIENT", "KILL", "ID", str(c_id)), ("CLIENT", "LIST")])
                assert kill == b":1\r\n" and f"id={c_id} ".encode() not in listing
                assert c.closed_by_server()
            assert me.call("CLIENT", "KILL", "ID", str(my_id), "SKIPME", "no") == b":1\r\n"
            assert me.closed_by_server()


def test_client_kill_self_in_pipeline_stops_later_commands(redis_proc, shoal_proc):
    replies = []
    for port in (redis_proc.port, shoal_proc.port):
        with RawClient(port) as me:
            my_id = parse(me.call("CLIENT", "ID"))
            me.send_raw(encode_command("CLIENT", "KILL", "ID", str(my_id), "SKIPME", "no") + encode_command("PING"))
            assert me.closed_by_server()
            replies.append(me.buf)
    assert replies[0] == replies[1] == b":1\r\n"


def _reply_stream(port: int, commands, end=b"$3\r\nend\r\n") -> bytes:
    with RawClient(port) as c:
        c.send_raw(b"".join(encode_command(*cmd) for cmd in commands) + encode_command("ECHO", "end"))
        deadline = time.monotonic() + 5
        while not c.buf.endswith(end) and time.monotonic() < deadline:
            c.buf += c.sock.recv(65536)
        return c.buf


@pytest.mark.parametrize("commands", [
    [("CLIENT", "REPLY", "OFF"), ("SET", "a", "1"), ("GET", "a"), ("NOSUCH",), ("CLIENT", "REPLY", "ON"), ("GET", "a")],
    [("CLIENT", "REPLY", "SKIP"), ("PING", "x"), ("PING", "y")],
    [("CLIENT", "REPLY", "SKIP"), ("CLIENT", "REPLY", "SKIP"), ("PING", "1"), ("PING", "2")],
    [("CLIENT", "REPLY", "OFF"), ("CLIENT", "REPLY", "SKIP"), ("PING", "3"), ("CLIENT", "REPLY", "ON"), ("PING", "4")],
    [("CLIENT", "REPLY", "SKIP"), ("CLIENT", "REPLY", "ON"), ("PING", "5")],
    [("CLIENT", "REPLY", "SKIP"), ("CLIENT", "REPLY", "OFF"), ("PING", "6"), ("CLIENT", "REPLY", "ON")],
    [("CLIENT", "REPLY", "OFF"), ("CLIENT", "REPLY", "bad"), ("CLIENT", "REPLY", "ON"), ("CLIENT", "REPLY", "bad")],
])
def test_client_reply_modes(redis_proc, shoal_proc, differ, commands):
    assert _reply_stream(redis_proc.port, commands) == _reply_stream(shoal_proc.port, commands)


def test_trackinginfo_resp3(differ3):
    differ3.check("CLIENT", "TRACKINGINFO")
    differ3.check("CLIENT", "GETREDIR")


def test_client_help_lists_what_shoal_implements(differ):
    expected, actual = (parse(r) for r in differ.both("CLIENT", "HELP"))
    ours = [line for line in actual if not line.startswith(" ")]
    theirs = [line for line in expected if not line.startswith(" ")]
    assert ours[0] == theirs[0] and ours[-1] == theirs[-1] == "HELP"
    assert set(ours) - {"SETINFO <option> <value>"} <= set(theirs)
    for sub in ("ID", "INFO", "GETNAME", "SETNAME <name>", "REPLY (ON|OFF|SKIP)", "NO-EVICT (ON|OFF)", "KILL <ip:port>"):
        assert sub in ours


def test_client_setinfo_as_redis_72(shoal):
    assert shoal.call("CLIENT", "SETINFO", "LIB-NAME", "mylib") == b"+OK\r\n"
    assert shoal.call("CLIENT", "SETINFO", "lib-ver", "1.2.3") == b"+OK\r\n"
    assert shoal.call("CLIENT", "SETINFO", "lib-ver", "") == b"+OK\r\n"
    assert shoal.call("CLIENT", "SETINFO", "foo", "x") == b"-ERR Unrecognized option 'foo'\r\n"
    assert shoal.call("CLIENT", "SETINFO", "LIB-NAME", "a b") == \
        b"-ERR LIB-NAME cannot contain spaces, newlines or special characters.\r\n"
    assert shoal.call("CLIENT", "SETINFO", "lib-name") == \
        b"-ERR wrong number of arguments for 'client|setinfo' command\r\n"


# ------------------------------------------------------------------ redis-py


@pytest.mark.parametrize("protocol", [2, 3])
def test_redis_py_client_commands(shoal_proc, shoal, protocol):
    r = redis.Redis(port=shoal_proc.port, protocol=protocol, single_connection_client=True)
    assert r.client_setname("py-client") is True
    assert r.client_getname() in ("py-client", b"py-client")
    cid = r.client_id()
    assert isinstance(cid, int)
    info = r.client_info()
    assert info["id"] == cid and info["name"] == "py-client" and info["cmd"] == "client|info"
    assert int(info["resp"]) == protocol
    listing = r.client_list()
    assert any(c["id"] == str(cid) or c["id"] == cid for c in listing)
    assert r.client_list(client_id=[cid])[0]["name"] == "py-client"
    assert r.client_list(_type="normal")
    other = redis.Redis(port=shoal_proc.port, protocol=protocol, single_connection_client=True)
    other_id = other.client_id()
    assert r.client_kill_filter(_id=other_id) == 1
    assert r.client_kill_filter(_id=other_id) == 0
    assert r.client_no_evict("ON") in (True, b"OK", "OK")
    assert "e" in r.client_info()["flags"]
    assert r.client_getredir() == -1
    assert r.client_unpause() in (True, b"OK")
