"""Turning tail calls into plain calls in a Lua 5.1 binary chunk.

Redis's redis.call is a C function, and in Lua 5.1 a tail call to a C function
keeps the caller's frame, so ``return redis.call(...)`` failing still reports
the script's line ("on @user_script:1."). Shoal's redis.call is a Lua wrapper,
and a real tail call would drop that frame. So every compiled script has its
TAILCALL instructions rewritten to CALL with multiple results (the RETURN that
always follows then returns them all): the same results, the frame kept.
"""

from __future__ import annotations

__all__ = ["untail"]

_OP_CALL = 28
_OP_TAILCALL = 29
_HEADER = 12


def untail(chunk: bytes) -> bytes:
    data = bytearray(chunk)
    if data[:4] != b"\x1bLua" or data[4] != 0x51 or data[7] != 4 or data[8] != 8 or data[9] != 4:
        raise ValueError("not a Lua 5.1 chunk for this platform")
    _function(data, _HEADER)
    return bytes(data)


def _int(data: bytearray, pos: int) -> tuple[int, int]:
    return int.from_bytes(data[pos : pos + 4], "little", signed=True), pos + 4


def _string(data: bytearray, pos: int) -> int:
    size = int.from_bytes(data[pos : pos + 8], "little")
    return pos + 8 + size


def _function(data: bytearray, pos: int) -> int:
    pos = _string(data, pos)  # source
    pos += 4 + 4 + 4  # linedefined, lastlinedefined, nups/numparams/is_vararg/maxstacksize
    count, pos = _int(data, pos)
    for i in range(count):
        at = pos + 4 * i
        if data[at] & 0x3F == _OP_TAILCALL:
            data[at] = (data[at] & 0xC0) | _OP_CALL
    pos += 4 * count
    count, pos = _int(data, pos)  # constants
    for _ in range(count):
        kind = data[pos]
        pos += 1
        if kind == 1:
            pos += 1
        elif kind == 3:
            pos += 8
        elif kind == 4:
            pos = _string(data, pos)
    count, pos = _int(data, pos)  # nested functions
    for _ in range(count):
        pos = _function(data, pos)
    count, pos = _int(data, pos)  # line info
    pos += 4 * count
    count, pos = _int(data, pos)  # local variables
    for _ in range(count):
        pos = _string(data, pos) + 8
    count, pos = _int(data, pos)  # upvalue names
    for _ in range(count):
        pos = _string(data, pos)
    return pos
