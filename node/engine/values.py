"""What a stored value is: its Redis type name and its OBJECT ENCODING.

Strings are stored as ``bytes`` (immutable, compact: the common case) or as
``bytearray`` once APPEND/SETRANGE/SETBIT modify them in place -- which is
also exactly when Redis turns a string's encoding into ``raw``. Other types
register their Python classes here as they arrive (S2).
"""

from __future__ import annotations

import copy
from typing import Callable

from node.resp.parser import string2ll

__all__ = [
    "COPIERS", "ENCODINGS", "STRING_TYPES", "TYPE_NAMES", "copy_value", "is_string", "object_encoding",
    "string_encoding", "type_name",
]

STRING_TYPES = (bytes, bytearray)

#: Python class of a stored value -> Redis type name (TYPE, SCAN TYPE).
TYPE_NAMES: dict[type, bytes] = {bytes: b"string", bytearray: b"string"}

#: Python class of a stored value -> function giving its OBJECT ENCODING name.
#: Types registered in TYPE_NAMES without an entry here report their type name.
ENCODINGS: dict[type, Callable[[object], bytes]] = {}

#: Python class of a stored value -> function making an independent copy (COPY).
#: Unregistered types fall back to ``copy.deepcopy``, correct if slower.
COPIERS: dict[type, Callable[[object], object]] = {bytes: lambda v: v, bytearray: bytearray}

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


def object_encoding(value) -> bytes:
    """What OBJECT ENCODING prints for ``value``."""
    kind = type(value)
    if kind is bytes or kind is bytearray:
        return string_encoding(value)
    encoder = ENCODINGS.get(kind)
    return encoder(value) if encoder is not None else TYPE_NAMES[kind]


def copy_value(value):
    """An independent copy of a stored value (bytes are immutable and shared).

    A ``bytearray`` stays a ``bytearray``: Redis's ``dupStringObject`` keeps a
    raw string raw.
    """
    copier = COPIERS.get(type(value))
    return copier(value) if copier is not None else copy.deepcopy(value)
