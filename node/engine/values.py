"""What a stored value is: its Redis type name and its OBJECT ENCODING.

Strings are stored as ``bytes`` (immutable, compact: the common case) or as
``bytearray`` once APPEND/SETRANGE/SETBIT modify them in place -- which is
also exactly when Redis turns a string's encoding into ``raw``. Other types
register their Python classes here as they arrive (S2).
"""

from __future__ import annotations

from node.resp.parser import string2ll

__all__ = ["STRING_TYPES", "TYPE_NAMES", "is_string", "string_encoding", "type_name"]

STRING_TYPES = (bytes, bytearray)

#: Python class of a stored value -> Redis type name (TYPE, SCAN TYPE).
TYPE_NAMES: dict[type, bytes] = {bytes: b"string", bytearray: b"string"}

_EMBSTR_MAX = 44  # OBJ_ENCODING_EMBSTR_SIZE_LIMIT


def is_string(value) -> bool:
    kind = type(value)
    return kind is bytes or kind is bytearray


def type_name(value) -> bytes:
    return TYPE_NAMES[type(value)]


def string_encoding(value) -> bytes:
    """``int`` for canonical 64-bit integers up to 20 chars, ``embstr`` up to 44 bytes, else ``raw``."""
    if type(value) is bytearray:
        return b"raw"
    if len(value) <= 20 and string2ll(value) is not None:
        return b"int"
    return b"embstr" if len(value) <= _EMBSTR_MAX else b"raw"
