"""A minimal blocking RESP client that returns replies as exact bytes.

Differential tests compare what Redis and Shoal put on the wire, byte for
byte, so this client does no decoding beyond finding where a reply ends.
``parse`` turns a raw reply into Python values for tests that need them.
"""

from __future__ import annotations

import socket

__all__ = ["RawClient", "encode_command", "parse", "reply_end"]


def encode_command(*args) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, str):
            arg = arg.encode()
        elif isinstance(arg, int):
            arg = str(arg).encode()
        parts.append(b"$%d\r\n%b\r\n" % (len(arg), arg))
    return b"".join(parts)


def _line_end(buf: bytes, pos: int) -> int:
    end = buf.find(b"\r\n", pos)
    if end == -1:
        raise IndexError
    return end


def reply_end(buf: bytes, pos: int = 0) -> int:
    """Index just past the complete reply starting at ``pos``; IndexError if incomplete."""
    if pos >= len(buf):
        raise IndexError
    kind = buf[pos : pos + 1]
    end = _line_end(buf, pos)
    body = buf[pos + 1 : end]
    if kind in (b"+", b"-", b":", b"_", b",", b"#", b"("):
        return end + 2
    if kind in (b"$", b"=", b"!"):
        n = int(body)
        if n < 0:
            return end + 2
        if len(buf) < end + 2 + n + 2:
            raise IndexError
        return end + 2 + n + 2
    if kind in (b"*", b"~", b">", b"%", b"|"):
        n = int(body)
        if n < 0:
            return end + 2
        if kind in (b"%", b"|"):
            n *= 2
        p = end + 2
        for _ in range(n):
            p = reply_end(buf, p)
        if kind == b"|":  # an attribute precedes the real reply
            p = reply_end(buf, p)
        return p
    raise ValueError(f"bad reply type {kind!r} in {buf[pos:pos+40]!r}")


class ReplyError(Exception):
    """An error reply; equal to another with the same text, so normalised replies compare."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ReplyError) and other.args == self.args

    def __hash__(self) -> int:
        return hash(self.args)

    def __lt__(self, other: object) -> bool:
        return str(self) < str(other)


def parse(raw: bytes):
    """Decode one raw reply into Python values (errors become ``ReplyError``)."""
    value, end = _parse(raw, 0)
    return value


def _parse(buf: bytes, pos: int):
    kind = buf[pos : pos + 1]
    end = buf.index(b"\r\n", pos)
    body = buf[pos + 1 : end]
    nxt = end + 2
    if kind == b"+":
        return body.decode(errors="surrogateescape"), nxt
    if kind == b"-":
        return ReplyError(body.decode(errors="surrogateescape")), nxt
    if kind in (b":", b"("):
        return int(body), nxt
    if kind == b"_":
        return None, nxt
    if kind == b",":
        return float(body), nxt
    if kind == b"#":
        return body == b"t", nxt
    if kind in (b"$", b"=", b"!"):
        n = int(body)
        if n < 0:
            return None, nxt
        return buf[nxt : nxt + n], nxt + n + 2
    if kind in (b"*", b"~", b">"):
        n = int(body)
        if n < 0:
            return None, nxt
        items = []
        for _ in range(n):
            item, nxt = _parse(buf, nxt)
            items.append(item)
        return items, nxt
    if kind == b"%":
        n = int(body)
        items = {}
        for _ in range(n):
            k, nxt = _parse(buf, nxt)
            v, nxt = _parse(buf, nxt)
            items[k if not isinstance(k, list) else tuple(k)] = v
        return items, nxt
    raise ValueError(kind)


class RawClient:
    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 10.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_reply(self) -> bytes:
        while True:
            try:
                end = reply_end(self.buf)
            except IndexError:
                chunk = self.sock.recv(1 << 16)
                if not chunk:
                    raise ConnectionError("connection closed by server")
                self.buf += chunk
                continue
            reply, self.buf = self.buf[:end], self.buf[end:]
            return reply

    def call(self, *args) -> bytes:
        """Send one command; the exact bytes of its reply."""
        self.send_raw(encode_command(*args))
        return self.read_reply()

    def pipeline(self, commands: list) -> list[bytes]:
        self.send_raw(b"".join(encode_command(*c) for c in commands))
        return [self.read_reply() for _ in commands]

    def closed_by_server(self, timeout: float = 5.0) -> bool:
        """True once the server has closed the connection (reads EOF)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(1 << 16)
                if not chunk:
                    return True
                self.buf += chunk
        except (socket.timeout, TimeoutError):
            return False
        except ConnectionResetError:
            return True

    def close(self) -> None:
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
