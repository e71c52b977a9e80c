"""Reply values that handlers return, and how each maps onto RESP2 and RESP3.

Handlers return plain Python values wherever the mapping is unambiguous, since
that is both the cheapest and the most readable form:

==================  ======================  ==========================
Python value        RESP3                    RESP2
==================  ======================  ==========================
``bytes``           bulk string ``$``        bulk string ``$``
``int``             integer ``:``            integer ``:``
``bool``            boolean ``#``            integer ``:`` (1 / 0)
``None``            null ``_``               null bulk ``$-1``
``list``/``tuple``  array ``*``              array ``*``
``dict``            map ``%``                flat array of pairs
``float``           double ``,``             bulk string (Redis's %.17g)
==================  ======================  ==========================

Everything else has a small wrapper type below. ``ErrorReply`` doubles as an
exception so deep helpers can abort a command with ``raise``.
"""

from __future__ import annotations

__all__ = [
    "NO_REPLY",
    "OK",
    "PONG",
    "QUEUED",
    "BigNumber",
    "Double",
    "ErrorReply",
    "NULL_ARRAY",
    "NullArray",
    "Push",
    "Raw",
    "SetReply",
    "SimpleString",
    "Verbatim",
]


class SimpleString:
    """A ``+status`` line. ``text`` must not contain CR or LF."""

    __slots__ = ("text",)

    def __init__(self, text: bytes) -> None:
        self.text = text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SimpleString) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)

    def __repr__(self) -> str:
        return f"SimpleString({self.text!r})"


class Raw:
    """Pre-encoded reply bytes, identical in both protocols (``+OK``, ``:1``...).

    Used for the few replies sent so often that encoding them each time would
    show up in a profile.
    """

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __repr__(self) -> str:
        return f"Raw({self.data!r})"


class ErrorReply(Exception):
    """A ``-ERR ...`` reply. ``message`` holds the full text after the dash.

    The first word is the error code (``ERR``, ``WRONGTYPE``, ``MOVED``...),
    which INFO errorstats counts by.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def code(self) -> str:
        return self.message.split(" ", 1)[0]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ErrorReply) and other.message == self.message

    def __hash__(self) -> int:
        return hash(self.message)


class NullArray:
    """The null that Redis sends where an array was expected (``*-1`` in RESP2)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NULL_ARRAY"


NULL_ARRAY = NullArray()


class Double:
    """A double reply whose RESP2 form is a bulk string.

    A bare ``float`` does the same; this wrapper exists for replies that must
    keep a pre-formatted text (e.g. a score as the user stored it).
    """

    __slots__ = ("value",)

    def __init__(self, value: float) -> None:
        self.value = value


class BigNumber:
    """RESP3 big number ``(``; RESP2 sends it as a bulk string."""

    __slots__ = ("digits",)

    def __init__(self, digits: bytes) -> None:
        self.digits = digits


class Verbatim:
    """RESP3 verbatim string ``=`` with a 3-letter format (``txt``, ``mkd``)."""

    __slots__ = ("fmt", "data")

    def __init__(self, data: bytes, fmt: bytes = b"txt") -> None:
        self.data = data
        self.fmt = fmt


class SetReply(list):
    """RESP3 set ``~``; RESP2 sends it as an array. Keeps the server's order."""

    __slots__ = ()


class Push(list):
    """RESP3 out-of-band push ``>``; RESP2 sends it as an array."""

    __slots__ = ()


#: A command that sends nothing back (CLIENT REPLY OFF, SUBSCRIBE's pushes instead).
NO_REPLY = Raw(b"")
OK = Raw(b"+OK\r\n")
PONG = Raw(b"+PONG\r\n")
QUEUED = Raw(b"+QUEUED\r\n")
