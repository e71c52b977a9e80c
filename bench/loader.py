"""Memory phase helpers: a pipelined SET loader and a minimal RESP2 client.

The loader writes ``SET key:<n> <16-byte value>`` in batches (default 1,000 commands, ~50 KB
per write) and reads that batch's replies before sending the next, so neither side's socket
buffers can fill up and deadlock; every reply must be ``+OK``. (Batches are kept under 64 KiB on
purpose: at the time of writing shoal-server misparses a pipeline once ~192 KiB of requests are
queued unread on one connection -- 4,000-command batches fail, 2,000 pass.)
"""

from __future__ import annotations

import socket
import time

__all__ = ["RespError", "command", "load_keys", "value_for"]

VALUE_LEN = 16


class RespError(RuntimeError):
    pass


def value_for(n: int) -> bytes:
    """The 16-byte value stored under ``key:<n>`` (zero-padded decimal; distinct per key)."""
    return b"%016d" % n


def _set_cmd(n: int) -> bytes:
    key = b"key:%d" % n
    return b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$16\r\n%s\r\n" % (len(key), key, value_for(n))


def load_keys(port: int, nkeys: int, *, batch: int = 1_000, host: str = "127.0.0.1") -> float:
    """SET key:0 .. key:<nkeys-1>; return the seconds it took."""
    ok = b"+OK\r\n"
    started = time.monotonic()
    with socket.create_connection((host, port), timeout=120) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for first in range(0, nkeys, batch):
            count = min(batch, nkeys - first)
            s.sendall(b"".join(_set_cmd(n) for n in range(first, first + count)))
            want = len(ok) * count
            got = bytearray()
            while len(got) < want:
                chunk = s.recv(max(65536, want - len(got)))
                if not chunk:
                    raise RespError(f"server closed the connection after {first + len(got) // 5} SETs")
                got += chunk
                if b"-" in chunk:
                    raise RespError(f"SET failed: {bytes(got)[bytes(got).index(b'-'):][:200]!r}")
            if got != ok * count:
                raise RespError(f"unexpected replies to SET batch at key:{first}: {bytes(got[:200])!r}")
    return time.monotonic() - started


def _encode(args: tuple) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a if isinstance(a, bytes) else str(a).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(parts)


def command(port: int, *args, host: str = "127.0.0.1", timeout: float = 30.0):
    """Send one command on a fresh connection; return the decoded simple reply.

    Handles +simple, -error (raised as RespError), :integer and $bulk replies.
    """
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(_encode(args))
        buf = bytearray()

        def fill(n: int) -> None:
            while len(buf) < n:
                chunk = s.recv(65536)
                if not chunk:
                    raise RespError("connection closed mid-reply")
                buf.extend(chunk)

        while b"\r\n" not in buf:
            fill(len(buf) + 1)
        line_end = buf.index(b"\r\n")
        kind, line = buf[:1], bytes(buf[1:line_end])
        if kind == b"+":
            return line.decode()
        if kind == b"-":
            raise RespError(line.decode(errors="replace"))
        if kind == b":":
            return int(line)
        if kind == b"$":
            size = int(line)
            if size < 0:
                return None
            fill(line_end + 2 + size + 2)
            return bytes(buf[line_end + 2:line_end + 2 + size])
        raise RespError(f"unsupported reply type {bytes(buf[:40])!r}")
