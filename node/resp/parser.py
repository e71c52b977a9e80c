"""Sans-IO request parser: bytes in, commands (lists of byte strings) out.

Usage, once per connection::

    parser = RequestParser()
    parser.feed(data)                     # as bytes arrive
    while (cmd := parser.next_command()) is not NEED_DATA:
        ...                               # cmd is a non-empty list[bytes]

``next_command`` raises ``ProtocolError`` carrying Redis's exact reply text
("Protocol error: invalid bulk length"...) once the stream stops making
sense; commands before the bad one are returned first, as Redis executes them
first. After an error the connection is to be closed.

Two engines, one behaviour:

* ``_next_pure`` is a line-by-line port of the rules of Redis 7.0's
  ``processMultibulkBuffer``/``processInlineBuffer``: header lines end at the
  first CR (a NUL before it counts as "no CR yet", as C's ``strchr`` sees it),
  numbers follow ``string2ll`` (no sign but ``-``, no leading zeros), counts
  <= 0 are empty requests, and the two bytes after a bulk are skipped unread.

* The hiredis fast path parses whole batches in C. hiredis reads any RESP
  type, not just requests, so its output is accepted only when every argument
  came back as ``bytes`` and the batch holds nothing that hiredis would read
  as a non-bulk string (``\\r\\n+`` or ``\\r\\n=``). A copy of the bytes fed
  since the last clean command boundary is kept; on anything doubtful --
  a hiredis error, a suspicious batch, a half-received command -- the
  remaining bytes are handed to the pure engine, which then decides exactly
  as Redis would. False alarms only cost speed.
"""

from __future__ import annotations

from node.resp.inline import split_inline_args

try:  # pragma: no cover - exercised by running the suite with and without it
    import hiredis as _hiredis
except ImportError:  # pragma: no cover
    _hiredis = None

__all__ = ["HAVE_HIREDIS", "NEED_DATA", "ProtocolError", "RequestParser"]

HAVE_HIREDIS = _hiredis is not None

INLINE_MAX_SIZE = 64 * 1024  # Redis's PROTO_INLINE_MAX_SIZE
INT_MAX = 2**31 - 1
UNAUTH_MULTIBULK_MAX = 10
UNAUTH_BULK_MAX = 16384
_LLONG_MAX = 2**63 - 1
_LLONG_MIN = -(2**63)


class _NeedData:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA = _NeedData()


class ProtocolError(Exception):
    """The client broke the protocol. ``message`` is the error reply text."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def string2ll(text: bytes) -> int | None:
    """Redis's strict integer parse: optional ``-``, no leading zeros, no spaces."""
    n = len(text)
    if n == 0 or n > 20:
        return None
    if n == 1 and text == b"0":
        return 0
    digits = text[1:] if text[0] == 0x2D else text
    if not digits or not digits.isdigit() or digits[0] == 0x30 or not digits.isascii():
        return None
    value = int(text)
    if value > _LLONG_MAX or value < _LLONG_MIN:
        return None
    return value


def _wire_size(command: list[bytes]) -> int:
    """Bytes a canonically encoded multibulk request occupies."""
    size = len(b"%d" % len(command)) + 3
    for arg in command:
        n = len(arg)
        size += n + len(b"%d" % n) + 5
    return size


class RequestParser:
    """Frames a client's byte stream into commands. See the module docstring."""

    __slots__ = (
        "max_bulk_len",
        "unauthenticated",
        "_buf",
        "_pos",
        "_reader",
        "_copy",
        "_emitted",
        "_argc_left",
        "_args",
        "_bulk_len",
        "_failed",
        "_suspect",
    )

    def __init__(self, *, max_bulk_len: int = 512 * 1024 * 1024, use_hiredis: bool = True) -> None:
        self.max_bulk_len = max_bulk_len
        #: Set while the client still has to AUTH: Redis then caps request sizes.
        self.unauthenticated = False
        # Pure engine state: buffer, read position, and a half-parsed multibulk.
        self._buf = bytearray()
        self._pos = 0
        self._argc_left = 0
        self._args: list[bytes] = []
        self._bulk_len = -1
        self._failed: ProtocolError | None = None
        # Fast engine state: a hiredis reader, the bytes it was fed since the
        # last clean boundary, and the commands it returned from them.
        self._reader = _hiredis.Reader() if (use_hiredis and HAVE_HIREDIS) else None
        self._copy = bytearray()
        self._emitted: list[list[bytes]] = []
        # Set when the fed bytes may hold a non-bulk string hiredis would accept.
        self._suspect = False

    # ------------------------------------------------------------------ input

    def feed(self, data: bytes) -> None:
        if self._reader is not None and self._pure_idle():
            self._feed_fast(data)
        else:
            self._buf += data

    def _feed_fast(self, data: bytes) -> None:
        joint = self._copy[-2:] + data[:2]  # a pattern may straddle two feeds
        if b"\r\n+" in data or b"\r\n=" in data or b"\r\n+" in joint or b"\r\n=" in joint:
            self._suspect = True
        self._reader.feed(data)
        self._copy += data

    def pending_bytes(self) -> int:
        """Bytes received but not yet returned as commands (the query buffer)."""
        return len(self._copy) + len(self._buf) - self._pos

    def _pure_idle(self) -> bool:
        return self._pos >= len(self._buf) and self._argc_left == 0

    # ----------------------------------------------------------------- output

    def next_command(self):
        """The next complete command, ``NEED_DATA``, or raise ``ProtocolError``."""
        if self._failed is not None:
            raise self._failed
        if self._copy:
            command = self._next_fast()
            if command is not None:
                return command
        if self._pos < len(self._buf):
            command = self._next_pure()
            # A clean boundary: give the rest back to hiredis, which is faster.
            if self._reader is not None and self._argc_left == 0 and command is not NEED_DATA:
                self._handoff_to_fast()
            return command
        return NEED_DATA

    def _next_fast(self):
        """One command from hiredis, or None after moving the work to the pure engine."""
        copy = self._copy
        if self._suspect or self.unauthenticated:
            command = None
        else:
            try:
                command = self._reader.gets()
            except _hiredis.ProtocolError:
                command = None
        if command is False:
            if not self._reader.has_data():
                # Every byte fed has been returned as commands: a clean boundary.
                copy.clear()
                self._emitted.clear()
                return NEED_DATA
        elif (
            type(command) is list
            and command
            and all(type(arg) is bytes for arg in command)
            and (len(copy) <= self.max_bulk_len or all(len(a) <= self.max_bulk_len for a in command))
        ):
            self._emitted.append(command)
            return command
        # Doubt, or a command still arriving: the pure engine takes over from
        # the end of the last command hiredis returned.
        consumed = sum(_wire_size(c) for c in self._emitted)
        self._buf = bytearray(copy[consumed:])
        self._pos = 0
        copy.clear()
        self._emitted.clear()
        self._suspect = False
        self._reader = _hiredis.Reader()
        return None

    def _handoff_to_fast(self) -> None:
        rest = self._buf[self._pos :]
        self._buf = bytearray()
        self._pos = 0
        if rest:
            self._feed_fast(bytes(rest))

    # ------------------------------------------------------------ pure engine

    def _fail(self, message: str):
        self._failed = ProtocolError("Protocol error: " + message)
        raise self._failed

    def _find_cr(self, start: int) -> int:
        """Index of the first CR from ``start``, or -1; a NUL first counts as none."""
        buf = self._buf
        cr = buf.find(b"\r", start)
        if cr == -1:
            return -1
        if buf.find(b"\0", start, cr) != -1:
            return -1
        return cr

    def _compact(self) -> None:
        if self._pos > 65536 and self._pos * 2 > len(self._buf):
            del self._buf[: self._pos]
            self._pos = 0

    def _next_pure(self):
        while True:
            buf = self._buf
            if self._pos >= len(buf):
                if self._argc_left == 0:
                    buf.clear()
                    self._pos = 0
                return NEED_DATA
            if self._argc_left == 0 and buf[self._pos] != 0x2A:  # not '*': inline
                command = self._parse_inline()
            else:
                command = self._parse_multibulk()
            if command is NEED_DATA:
                self._compact()
                return NEED_DATA
            if command:
                return command
            # An empty request (blank line, ``*0``): nothing to run; go on.

    def _parse_inline(self):
        buf = self._buf
        pos = self._pos
        newline = buf.find(b"\n", pos)
        if newline == -1:
            if len(buf) - pos > INLINE_MAX_SIZE:
                self._fail("too big inline request")
            return NEED_DATA
        end = newline
        if end != pos and buf[end - 1] == 0x0D:
            end -= 1
        args = split_inline_args(bytes(buf[pos:end]))
        if args is None:
            self._fail("unbalanced quotes in request")
        self._pos = newline + 1
        return args

    def _parse_multibulk(self):
        buf = self._buf
        if self._argc_left == 0:
            pos = self._pos
            cr = self._find_cr(pos)
            if cr == -1:
                if len(buf) - pos > INLINE_MAX_SIZE:
                    self._fail("too big mbulk count string")
                return NEED_DATA
            if cr - pos > len(buf) - pos - 2:
                return NEED_DATA
            count = string2ll(bytes(buf[pos + 1 : cr]))
            if count is None or count > INT_MAX:
                self._fail("invalid multibulk length")
            if count > UNAUTH_MULTIBULK_MAX and self.unauthenticated:
                self._fail("unauthenticated multibulk length")
            self._pos = cr + 2
            if count <= 0:
                return []
            self._argc_left = count
            self._args = []
            self._bulk_len = -1
        while self._argc_left:
            if self._bulk_len == -1:
                pos = self._pos
                cr = self._find_cr(pos)
                if cr == -1:
                    if len(buf) - pos > INLINE_MAX_SIZE:
                        self._fail("too big bulk count string")
                    return NEED_DATA
                if cr - pos > len(buf) - pos - 2:
                    return NEED_DATA
                if buf[pos] != 0x24:  # '$'
                    got = bytes(buf[pos : pos + 1]).decode("utf-8", "surrogateescape")
                    self._fail("expected '$', got '%s'" % got)
                length = string2ll(bytes(buf[pos + 1 : cr]))
                if length is None or length < 0 or length > self.max_bulk_len:
                    self._fail("invalid bulk length")
                if length > UNAUTH_BULK_MAX and self.unauthenticated:
                    self._fail("unauthenticated bulk length")
                self._pos = cr + 2
                self._bulk_len = length
            pos = self._pos
            if len(buf) - pos < self._bulk_len + 2:
                return NEED_DATA
            self._args.append(bytes(buf[pos : pos + self._bulk_len]))
            self._pos = pos + self._bulk_len + 2
            self._bulk_len = -1
            self._argc_left -= 1
        args = self._args
        self._args = []
        return args
