"""Sans-IO reply encoder: Python reply values (see ``replies``) to RESP2/RESP3 bytes.

``write_reply(out, value, resp3)`` appends to a caller-owned ``bytearray`` so a
whole pipeline's replies accumulate in one buffer and leave in one send. The
branches are ordered by how often replies of each type occur.
"""

from __future__ import annotations

import math

from node.resp.replies import (
    BigNumber,
    Double,
    ErrorReply,
    NullArray,
    Push,
    Raw,
    SetReply,
    SimpleString,
    Verbatim,
)

__all__ = ["encode", "format_double", "write_reply"]


def format_double(value: float) -> bytes:
    """Redis's text for a double reply: ``%.17g``, with inf spelled ``inf``."""
    if math.isinf(value):
        return b"inf" if value > 0 else b"-inf"
    if value != value:  # glibc's printf keeps the sign of a NaN; Python's does not
        return b"-nan" if math.copysign(1.0, value) < 0 else b"nan"
    return b"%.17g" % value


def _error_line(message: str) -> bytes:
    # An error line must stay one line. As Redis's addReplyErrorFormat does,
    # CR/LF are trimmed from both ends and turned into spaces inside.
    if "\r" in message or "\n" in message:
        message = message.strip("\r\n").replace("\r", " ").replace("\n", " ")
    return b"-" + message.encode("utf-8", "surrogateescape") + b"\r\n"


def write_reply(out: bytearray, value: object, resp3: bool) -> None:
    """Append the encoding of ``value`` to ``out``."""
    kind = type(value)
    if kind is bytes:
        out += b"$%d\r\n%b\r\n" % (len(value), value)
    elif kind is Raw:
        out += value.data
    elif kind is int:
        out += b":%d\r\n" % value
    elif value is None:
        out += b"_\r\n" if resp3 else b"$-1\r\n"
    elif kind is list or kind is tuple:
        out += b"*%d\r\n" % len(value)
        for item in value:
            write_reply(out, item, resp3)
    elif kind is SimpleString:
        out += b"+%b\r\n" % value.text
    elif kind is ErrorReply or isinstance(value, ErrorReply):
        out += _error_line(value.message)
    elif kind is bytearray or kind is memoryview:
        out += b"$%d\r\n" % len(value)
        out += value
        out += b"\r\n"
    elif kind is bool:
        if resp3:
            out += b"#t\r\n" if value else b"#f\r\n"
        else:
            out += b":1\r\n" if value else b":0\r\n"
    elif kind is dict:
        if resp3:
            out += b"%%%d\r\n" % len(value)
        else:
            out += b"*%d\r\n" % (2 * len(value))
        for key, item in value.items():
            write_reply(out, key, resp3)
            write_reply(out, item, resp3)
    elif kind is float or kind is Double:
        number = value if kind is float else value.value
        text = format_double(number)
        if resp3:
            out += b",%b\r\n" % text
        else:
            out += b"$%d\r\n%b\r\n" % (len(text), text)
    elif kind is NullArray:
        out += b"_\r\n" if resp3 else b"*-1\r\n"
    elif kind is SetReply or kind is Push:
        if resp3:
            out += b"%b%d\r\n" % (b"~" if kind is SetReply else b">", len(value))
        else:
            out += b"*%d\r\n" % len(value)
        for item in value:
            write_reply(out, item, resp3)
    elif kind is str:
        write_reply(out, value.encode("utf-8", "surrogateescape"), resp3)
    elif kind is BigNumber:
        if resp3:
            out += b"(%b\r\n" % value.digits
        else:
            out += b"$%d\r\n%b\r\n" % (len(value.digits), value.digits)
    elif kind is Verbatim:
        if resp3:
            out += b"=%d\r\n%b:%b\r\n" % (len(value.data) + 4, value.fmt, value.data)
        else:
            out += b"$%d\r\n%b\r\n" % (len(value.data), value.data)
    else:
        raise TypeError(f"cannot encode reply of type {kind.__name__}")


def encode(value: object, resp3: bool = False) -> bytes:
    """The encoding of one reply, as bytes."""
    out = bytearray()
    write_reply(out, value, resp3)
    return bytes(out)
