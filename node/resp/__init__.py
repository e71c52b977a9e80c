"""Sans-IO RESP2/RESP3: requests in (``RequestParser``), replies out (``write_reply``)."""

from node.resp.encoder import encode, format_double, write_reply
from node.resp.parser import HAVE_HIREDIS, NEED_DATA, ProtocolError, RequestParser
from node.resp.replies import (
    NO_REPLY,
    NULL_ARRAY,
    OK,
    PONG,
    QUEUED,
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

__all__ = [
    "HAVE_HIREDIS", "NEED_DATA", "NO_REPLY", "NULL_ARRAY", "OK", "PONG", "QUEUED", "BigNumber", "Double",
    "ErrorReply", "NullArray", "ProtocolError", "Push", "Raw", "RequestParser", "SetReply",
    "SimpleString", "Verbatim", "encode", "format_double", "write_reply",
]
