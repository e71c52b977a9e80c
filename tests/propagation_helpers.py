"""Capture the write stream of an in-process Shoal node and of a real redis-server.

* ``ShoalCapture`` builds a ``Node`` with a settable clock and attaches a sink
  that records every propagated unit, inserting SELECTs the way the AOF and
  replica streams do. ``run(*args)`` executes one request (and serves clients
  it unblocked, as the server does after each command) and returns
  ``(reply_bytes, propagated_argvs)``.
* ``RedisStream`` connects to a real redis-server as a replica (plain
  ``SYNC``), skips the RDB payload and reads the command stream; each command
  sent through ``run`` is followed by ``PUBLISH`` of a marker (Redis
  propagates PUBLISH to replicas), so everything between two markers is
  exactly what that command propagated. It is the oracle for the exact forms.
"""

from __future__ import annotations

import random
import socket
import time

import node.commands  # noqa: F401  (fills the command table)
from node.client import Client
from node.config import Config
from node.core import Node
from node.dispatch import execute
from node.propagation import encode_select
from tests.resp_client import RawClient, parse, reply_end

__all__ = ["FakeClock", "ShoalCapture", "RedisStream", "decode_commands"]


class FakeClock:
    """A wall clock (unix seconds, float) that moves only when told."""

    def __init__(self, ms: int) -> None:
        self.ms = ms

    def __call__(self) -> float:
        return self.ms / 1000.0

    def advance(self, ms: int) -> None:
        self.ms += ms


def decode_commands(data: bytes) -> list[list[bytes]]:
    """Split a byte stream of RESP arrays into argv lists."""
    out = []
    pos = 0
    while pos < len(data):
        end = reply_end(data, pos)
        out.append(parse(data[pos:end]))
        pos = end
    return out


class _Sink:
    """Records the stream as an AOF/replica would write it (SELECT when the db changes)."""

    def __init__(self) -> None:
        self.selected = None
        self.data = bytearray()
        self.units: list[list[bytes]] = []

    def feed(self, unit) -> None:
        raw = bytearray()
        for db, encoded in unit:
            if db is not None and db != self.selected:
                raw += encode_select(db)
                self.selected = db
            raw += encoded
        self.units.append(bytes(raw))
        self.data += raw


class ShoalCapture:
    """An in-process node with a capture sink, driven command by command."""

    def __init__(self, start_ms: int | None = None, **config) -> None:
        self.clock = FakeClock(start_ms if start_ms is not None else int(time.time() * 1000))
        cfg = Config()
        cfg.load_directive("enable-debug-command", ["yes"])
        # No save points: FLUSHALL with save points writes dump.rdb into the cwd, as Redis does.
        cfg.load_directive("save", [""])
        for name, value in config.items():
            cfg.load_directive(name.replace("_", "-"), [str(value)])
        self.node = Node(cfg, wall_clock=self.clock, rng=random.Random(7))
        self.sink = _Sink()
        self.node.propagation.add_sink(self.sink)
        self._next_id = 1
        self.client = self.new_client()

    def new_client(self) -> Client:
        cid = self._next_id
        self._next_id += 1
        return Client(self.node, cid, -1, "127.0.0.1:%d" % (1000 + cid), "127.0.0.1:6379")

    def run(self, *args, client: Client | None = None):
        """Execute one request; returns (reply bytes, list of propagated argv lists)."""
        client = client or self.client
        argv = [a if isinstance(a, bytes) else str(a).encode() for a in args]
        start = len(self.sink.data)
        execute(client, argv)
        self.node.serve_blocked()
        reply = bytes(client.out)
        client.out.clear()
        return reply, decode_commands(bytes(self.sink.data[start:]))

    def props(self, *args, client: Client | None = None) -> list[list[bytes]]:
        return self.run(*args, client=client)[1]

    def stream(self) -> list[list[bytes]]:
        return decode_commands(bytes(self.sink.data))

    def close(self) -> None:
        self.node.propagation.remove_sink(self.sink)


class RedisStream:
    """A replica connection to a real redis-server, reading its propagated commands."""

    MARK = b"__propagation_mark__"

    def __init__(self, port: int, timeout: float = 15.0) -> None:
        self.client = RawClient(port)
        # Markers go on their own connection: the test client may be inside MULTI.
        self.marker = RawClient(port)
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""
        self.sock.sendall(b"SYNC\r\n")
        # Keepalive newlines, then $<len>\r\n<rdb> (no trailing CRLF).
        while True:
            self._fill_until(lambda b: b.lstrip(b"\n").find(b"\r\n") != -1)
            self.buf = self.buf.lstrip(b"\n")
            if self.buf.startswith(b"$"):
                break
        line_end = self.buf.index(b"\r\n")
        size = int(self.buf[1:line_end])
        self.buf = self.buf[line_end + 2 :]
        self._fill_until(lambda b: len(b) >= size)
        self.buf = self.buf[size:]
        self.counter = 0
        self.selected = None
        # Let the stream start with a SELECT for db 0 so both sides begin alike.
        self.sync_point()

    def _fill_until(self, done) -> None:
        while not done(self.buf):
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("replication stream closed")
            self.buf += chunk

    def _next_command(self) -> list[bytes]:
        while True:
            while True:
                try:
                    end = reply_end(self.buf, 0)
                    break
                except IndexError:
                    chunk = self.sock.recv(65536)
                    if not chunk:
                        raise ConnectionError("replication stream closed")
                    self.buf += chunk
            cmd = parse(self.buf[:end])
            self.buf = self.buf[end:]
            if cmd and cmd[0].upper() == b"PING":
                continue
            return cmd

    def sync_point(self) -> list[list[bytes]]:
        """Publish a marker and return every command propagated before it."""
        self.counter += 1
        mark = str(self.counter).encode()
        self.marker.call("PUBLISH", self.MARK, mark)
        out = []
        while True:
            cmd = self._next_command()
            if cmd == [b"PUBLISH", self.MARK, mark]:
                return out
            out.append(cmd)

    def run(self, *args):
        """Send one command; returns (reply bytes, the argv lists it propagated, SELECTs included)."""
        reply = self.client.call(*args)
        cmds = self.sync_point()
        return reply, cmds

    def props(self, *args) -> list[list[bytes]]:
        return self.run(*args)[1]

    def close(self) -> None:
        self.sock.close()
        self.client.close()
        self.marker.close()
