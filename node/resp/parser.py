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
  first CR and inline lines at the first LF, where a NUL before it counts as
  "no end yet" (C's ``strchr`` stops at NUL), numbers follow ``string2ll`` (no
  sign but ``-``, no leading zeros), counts <= 0 are empty requests, and the
  two bytes after a bulk are skipped unread. Redis checks the 64 KB limit on
  header and inline lines only when a read leaves the line unterminated, so
  its outcome depends on read sizes; here a line longer than 64 KB is an error
  however it arrives (the result never depends on how the bytes are chunked).

* The hiredis fast path parses whole batches in C. hiredis reads any RESP
  type, not just requests, so its output is accepted only when it is provably
  what Redis would parse:

  - A command is a ``list`` whose items are all ``bytes``. hiredis gives
    ``bytes`` for ``$`` bulks but also for ``+``, ``=`` and ``(`` items, and a
    ``list`` for a top-level ``~`` set or ``|`` attribute. While the bytes fed
    since the last clean boundary hold none of ``+=(~|``, every accepted
    command therefore is a canonical ``*``/``$`` request (hiredis's number
    parsing is as strict as Redis's). If any of them occurs, each command is
    instead checked against the bytes: ``*<n>\r\n`` and each ``$<len>\r\n``
    must be exactly where a canonical encoding puts them.
  - A clean boundary is known only when hiredis holds no unread byte *before*
    a ``gets()`` (afterwards it may be in the middle of an array whose header
    it already consumed).
  - hiredis allocates an array's slots when it reads the header, and freeing
    an unfinished ``*2147483647`` takes seconds: bytes holding an aggregate
    header of six or more digits never reach it.

  A copy of the bytes fed since the last clean boundary is kept; on anything
  doubtful -- a hiredis error, a failed check, a half-received command -- the
  rest, from the end of the last accepted command, goes to the pure engine,
  which decides exactly as Redis would. The pure engine hands the stream back
  at the next command boundary, at most once per ``feed`` (so that a stream
  hiredis keeps doubting costs linear, not quadratic, copying). False alarms
  only cost speed.
"""

from __future__ import annotations

import re

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


# An array header of 100000+ items: hiredis would allocate them all up front.
_big_array = re.compile(rb"\*[0-9]{6}").search
_big_aggregate = re.compile(rb"[*~>|][0-9]{6}").search

_HEADS = 4096
_ARRAY_HEADS = [b"*%d\r\n" % n for n in range(_HEADS)]
_BULK_HEADS = [b"$%d\r\n" % n for n in range(_HEADS)]


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
        "_off",
        "_argc_left",
        "_args",
        "_bulk_len",
        "_failed",
        "_suspect",
        "_may_hand_back",
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
        # Set when ``_copy`` holds a byte that may start a non-bulk item hiredis
        # would turn into bytes or a list; ``_off`` is then tracked exactly.
        self._suspect = False
        self._off = 0
        # Whether the pure engine may give the stream back to hiredis (once per feed).
        self._may_hand_back = False

    # ------------------------------------------------------------------ input

    def feed(self, data: bytes) -> None:
        self._may_hand_back = True
        if self._reader is not None and self._pos >= len(self._buf) and self._argc_left == 0:
            if self._buf:
                self._buf.clear()
                self._pos = 0
            self._feed_fast(data)
        else:
            self._buf += data

    def _feed_fast(self, data) -> None:
        if _big_array(data) is not None or (
            (b"~" in data or b">" in data or b"|" in data) and _big_aggregate(data) is not None
        ):
            # hiredis would allocate the whole list at the header, and freeing an
            # unfinished one of 2**31 slots takes seconds: keep it away from hiredis.
            if self._copy:
                self._to_pure()
            self._buf += data
            return
        if not self._suspect and (
            b"+" in data or b"=" in data or b"(" in data or b"~" in data or b"|" in data
        ):
            self._off = self._consumed()
            self._suspect = True
        self._reader.feed(data)
        self._copy += data

    def pending_bytes(self) -> int:
        """Bytes received and not yet parsed: Redis's query buffer length.

        As in Redis, the headers and whole arguments of a half-received
        command are parsed already and no longer count.
        """
        pending = len(self._buf) - self._pos
        if self._copy:
            pending += len(self._copy) - self._consumed()
        return pending

    def _consumed(self) -> int:
        """Bytes of ``_copy`` that the commands returned by hiredis occupied."""
        if self._suspect:
            return self._off
        return sum(map(_wire_size, self._emitted))

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
            if command is not NEED_DATA and self._may_hand_back and self._reader is not None:
                # A clean boundary: give the rest back to hiredis, which is
                # faster -- if it looks like a multibulk request at all.
                pos = self._pos
                if pos < len(self._buf) and self._buf[pos] == 0x2A:
                    self._may_hand_back = False
                    self._hand_back()
            return command
        return NEED_DATA

    def _next_fast(self):
        """One command from hiredis, NEED_DATA, or None after moving the work to the pure engine."""
        reader = self._reader
        if not reader.has_data():
            # Every byte fed came back as whole commands: a clean boundary.
            self._copy.clear()
            self._emitted.clear()
            self._suspect = False
            self._off = 0
            return NEED_DATA
        if not self.unauthenticated:
            try:
                command = reader.gets()
            except Exception:  # hiredis.ProtocolError, or MemoryError should an array header slip through
                command = None
            if type(command) is list and command:
                if not self._suspect:
                    try:
                        size = len(b"".join(command))  # TypeError unless every item is bytes
                    except TypeError:
                        size = -1
                    limit = self.max_bulk_len
                    if size >= 0 and (size <= limit or max(map(len, command)) <= limit):
                        self._emitted.append(command)
                        return command
                else:
                    end = self._check_layout(command)
                    if end >= 0:
                        self._off = end
                        return command
        # Doubt, or a command still arriving: the pure engine takes over.
        self._to_pure()
        return None

    def _to_pure(self) -> None:
        """Move the bytes after the last command hiredis returned to the (idle) pure engine."""
        copy = self._copy
        self._buf = bytearray(memoryview(copy)[self._consumed() :])
        self._pos = 0
        copy.clear()
        self._emitted.clear()
        self._suspect = False
        self._off = 0
        self._reader = _hiredis.Reader()

    def _check_layout(self, command: list) -> int:
        """End offset of ``command`` if it sits canonically encoded at ``_off``, else -1.

        hiredis parsed ``command`` from ``_off`` on; if each header it read is
        the canonical ``*<n>``/``$<len>`` line, every item was a bulk string
        at the place Redis would read it (trailers are skipped unread by both).
        """
        startswith = self._copy.startswith
        off = self._off
        count = len(command)
        head = _ARRAY_HEADS[count] if count < _HEADS else b"*%d\r\n" % count
        if not startswith(head, off):
            return -1
        off += len(head)
        limit = self.max_bulk_len
        try:
            for arg in command:
                n = len(arg)  # TypeError for an int, float, bool or None item
                head = _BULK_HEADS[n] if n < _HEADS else b"$%d\r\n" % n
                if n > limit or not startswith(head, off):
                    return -1
                off += len(head) + n + 2
        except TypeError:
            return -1
        return off

    def _hand_back(self) -> None:
        rest = bytes(memoryview(self._buf)[self._pos :])
        self._buf = bytearray()
        self._pos = 0
        self._feed_fast(rest)

    # ------------------------------------------------------------ pure engine

    def _fail(self, message: str):
        self._failed = ProtocolError("Protocol error: " + message)
        raise self._failed

    def _find(self, char: bytes, start: int) -> int:
        """Index of the first ``char`` from ``start`` as ``strchr`` finds it, or -1.

        C's ``strchr`` stops at a NUL byte: a NUL before ``char`` means "none".
        """
        buf = self._buf
        at = buf.find(char, start)
        if at == -1 or buf.find(b"\0", start, at) != -1:
            return -1
        return at

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
        newline = self._find(b"\n", pos)
        if newline == -1:
            if len(buf) - pos > INLINE_MAX_SIZE:
                self._fail("too big inline request")
            return NEED_DATA
        if newline - pos > INLINE_MAX_SIZE:
            # Redis would have failed while the line was arriving (see the module docstring).
            self._fail("too big inline request")
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
            cr = self._find(b"\r", pos)
            if cr == -1 or cr - pos > INLINE_MAX_SIZE:
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
                cr = self._find(b"\r", pos)
                if cr == -1 or cr - pos > INLINE_MAX_SIZE:
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
