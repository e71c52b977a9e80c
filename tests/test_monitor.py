"""MONITOR against Redis 7.0: the same commands give the same lines (time and ports masked)."""

from __future__ import annotations

import re
import socket
import time

import pytest
import redis as redis_py

from tests.resp_client import encode_command

_LINE = re.compile(rb"^\+(\d+)\.(\d{6}) \[(\d+) ([^\]]+)\] (.*)$")


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    return sock


def _read_until_quiet(sock: socket.socket, quiet: float = 0.3) -> bytes:
    data = b""
    sock.settimeout(quiet)
    while True:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            return data
        if not chunk:
            return data
        data += chunk


def _send(sock: socket.socket, *args) -> None:
    sock.sendall(encode_command(*args))


SCRIPT = [
    ("SET", "k", b'a"b\\c\n\r\t\x07\x08\x01\xff \x7f'),
    ("GET", "k"),
    ("AUTH", "pw"),
    ("AUTH", "user", "pw"),
    ("AUTH", "a", "b", "c"),
    ("HELLO", "3", "AUTH", "u", "p", "SETNAME", "x"),
    ("HELLO", "2"),
    ("SELECT", "3"),
    ("PING",),
    ("MULTI",),
    ("SET", "x", "1"),
    ("INCR", "x"),
    ("EXEC",),
    ("EVAL", "return 1", "0"),
    ("CONFIG", "GET", "hz"),      # admin: not shown
    ("DEBUG", "SLEEP", "0"),      # admin: not shown
    ("SLOWLOG", "LEN"),           # admin: not shown
    ("CLIENT", "ID"),
    ("nosuch", "cmd"),            # rejected before running: not shown
    ("GET",),                     # arity error: not shown
    ("INCR", "k"),                # runs and fails: shown
    ("SELECT", "0"),
    ("QUIT",),
]


def _monitor_lines(port: int) -> tuple[list[tuple], bytes]:
    mon = _connect(port)
    _send(mon, "MONITOR")
    assert _read_until_quiet(mon, 0.2) == b"+OK\r\n"
    cli = _connect(port)
    for argv in SCRIPT:
        _send(cli, *argv)
        _read_until_quiet(cli, 0.02)
    data = _read_until_quiet(mon)
    lines = []
    for raw in data.split(b"\r\n")[:-1]:
        m = _LINE.match(raw)
        assert m, raw
        seconds = int(m.group(1))
        assert abs(seconds - time.time()) < 60
        where = m.group(4)
        lines.append((int(m.group(3)), b"lua" if where == b"lua" else b"addr", m.group(5)))
    # After RESET, the monitor is an ordinary client again.
    _send(mon, "GET", "k")
    _send(mon, "RESET")
    _send(mon, "PING")
    tail = _read_until_quiet(mon)
    mon.close()
    cli.close()
    return lines, tail


def test_monitor_lines_match_redis(redis_proc, shoal_proc):
    expected, tail_r = _monitor_lines(redis_proc.port)
    actual, tail_s = _monitor_lines(shoal_proc.port)
    # Shoal's scripting layer does not feed a script's own commands (Redis shows them as [db lua]).
    expected = [line for line in expected if line[1] != b"lua"]
    assert actual == expected
    assert tail_s == tail_r == b"-ERR Replica can't interact with the keyspace\r\n+RESET\r\n+PONG\r\n"
    shown = b"\n".join(line[2] for line in actual)
    assert b'"SET" "k" "a\\"b\\\\c\\n\\r\\t\\a\\b\\x01\\xff \\x7f"' in shown
    assert b'"AUTH" "(redacted)" "(redacted)"' in shown and b"pw" not in shown.replace(b"pw\" \"", b"")
    assert b"CONFIG" not in shown and b"DEBUG" not in shown and b"SLOWLOG" not in shown


def test_monitor_sees_every_client_and_blocking_once(shoal_proc):
    port = shoal_proc.port
    mon = _connect(port)
    _send(mon, "MONITOR")
    assert _read_until_quiet(mon, 0.2) == b"+OK\r\n"
    a, b = _connect(port), _connect(port)
    _send(a, "DEL", "q")
    _read_until_quiet(a, 0.05)
    _send(a, "BLPOP", "q", "0")
    time.sleep(0.05)
    _send(b, "RPUSH", "q", "v")
    assert _read_until_quiet(a, 0.2).startswith(b"*2\r\n")
    _send(mon, "MONITOR")  # a second MONITOR from a monitor: ignored, no reply
    data = _read_until_quiet(mon)
    shown = [line.split(b"] ", 1)[1] for line in data.split(b"\r\n")[:-1]]
    assert shown == [b'"DEL" "q"', b'"BLPOP" "q" "0"', b'"RPUSH" "q" "v"']
    a.close()
    b.close()
    # QUIT ends it; the other clients carry on.
    _send(mon, "QUIT")
    assert _read_until_quiet(mon) == b"+OK\r\n"
    mon.close()
    c = _connect(port)
    _send(c, "PING")
    assert _read_until_quiet(c, 0.2) == b"+PONG\r\n"
    c.close()


def test_monitor_inside_multi_is_refused(differ):
    differ.check("MULTI")
    differ.check("MONITOR")
    differ.check("EXEC")


def test_monitor_with_redis_py(shoal_proc):
    r = redis_py.Redis(port=shoal_proc.port)
    with r.monitor() as m:
        r.set("pyk", "pyv")
        info = m.next_command()
        while not info["command"].startswith("SET"):  # redis-py's connection handshake comes first
            info = m.next_command()
        assert info["command"] == "SET pyk pyv" and info["db"] == 0 and info["client_type"] == "tcp"
    list_line = [c for c in r.client_list() if c.get("cmd") == "monitor"]
    assert not list_line or all("O" in c["flags"] for c in list_line)
    r.close()


@pytest.mark.parametrize("argv, shown", [
    ((b"MIGRATE", b"h", b"1", b"k", b"0", b"10", b"COPY", b"AUTH", b"pw"),
     [b"MIGRATE", b"h", b"1", b"k", b"0", b"10", b"COPY", b"AUTH", b"(redacted)"]),
    ((b"MIGRATE", b"h", b"1", b"", b"0", b"10", b"AUTH2", b"u", b"p", b"KEYS", b"a"),
     [b"MIGRATE", b"h", b"1", b"", b"0", b"10", b"AUTH2", b"(redacted)", b"(redacted)", b"KEYS", b"a"]),
    ((b"HELLO", b"3", b"SETNAME", b"n", b"AUTH", b"u", b"p"),
     [b"HELLO", b"3", b"SETNAME", b"n", b"AUTH", b"(redacted)", b"(redacted)"]),
    ((b"AUTH", b"a", b"b", b"c"), [b"AUTH", b"a", b"b", b"c"]),
])
def test_redaction_rules(argv, shown):
    from types import SimpleNamespace

    from node.monitoring.monitor import redacted_argv

    cmd = SimpleNamespace(fullname=argv[0].decode().lower())
    assert redacted_argv(cmd, list(argv)) == shown
