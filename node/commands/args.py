"""Argument parsing shared by handlers, with Redis's exact error texts."""

from __future__ import annotations

import math
import re

from node.resp import ErrorReply
from node.resp.parser import string2ll

__all__ = [
    "SYNTAX_ERROR",
    "WRONGTYPE",
    "NOT_INTEGER",
    "NOT_FLOAT",
    "parse_int",
    "parse_float",
    "parse_long_double",
    "to_int_or_none",
]

SYNTAX_ERROR = ErrorReply("ERR syntax error")
WRONGTYPE = ErrorReply("WRONGTYPE Operation against a key holding the wrong kind of value")
NOT_INTEGER = ErrorReply("ERR value is not an integer or out of range")
NOT_FLOAT = ErrorReply("ERR value is not a valid float")

# What C's strtod accepts after Redis has ruled out leading space: decimal and
# hex floats, inf/infinity, nan (callers reject nan where Redis does).
_STRTOD = re.compile(
    rb"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)"
    rb"(?:[pP][+-]?\d+)?|inf(?:inity)?|nan)",
    re.IGNORECASE,
)


def to_int_or_none(data: bytes) -> int | None:
    """``data`` as a signed 64-bit integer under Redis's strict rules, else None."""
    return string2ll(data)


def parse_int(data: bytes, error: ErrorReply = NOT_INTEGER) -> int:
    value = string2ll(data)
    if value is None:
        raise error
    return value


def parse_long_double(data: bytes) -> float | None:
    """Parse like Redis's ``string2ld``: strtold over the whole text, no spaces, no NaN."""
    if not data or len(data) > 5000 or data[:1].isspace() or not _STRTOD.fullmatch(data):
        return None
    text = data.decode("ascii")
    try:
        if "x" in text.lower():
            value = float.fromhex(text)
        else:
            value = float(text)
    except (ValueError, OverflowError):
        return None
    if math.isnan(value):
        return None
    return value


def parse_float(data: bytes, error: ErrorReply = NOT_FLOAT) -> float:
    value = parse_long_double(data)
    if value is None:
        raise error
    return value
