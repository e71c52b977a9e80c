"""Command replies to Lua values, as Redis's redisProtocolToLuaType does.

A handler's Python reply (see ``node.resp.replies``) becomes what a script
sees from ``redis.call``, following the script client's protocol:

=================  =============================  ===============================
reply              RESP2 script                   RESP3 script (redis.setresp(3))
=================  =============================  ===============================
integer            number                         number
bulk string        string                         string
null bulk / array  false                          nil
status             {ok=...}                       {ok=...}
error              {err=...}                      {err=...}
array              table                          table
map                flat table                     {map={k=v}}
set                table                          {set={k=true}}
double             string (%.17g)                 {double=n}
boolean            1 / 0 (integers)               true / false
big number         string                         {big_number=s}
verbatim           string                         {verbatim_string={format, string}}
=================  =============================  ===============================

The reverse direction (a script's return value to RESP) lives in
``sandbox.lua``: it walks Lua tables, so it is done in Lua.
"""

from __future__ import annotations

from node.resp import (
    BigNumber,
    Double,
    ErrorReply,
    NullArray,
    Push,
    Raw,
    SetReply,
    SimpleString,
    Verbatim,
    format_double,
)

__all__ = ["ReplyConverter", "error_text", "parse_raw"]


def error_text(buf: str) -> str:
    """luaPushErrorBuff: '-CODE message' or 'message' -> 'CODE message' (CR/LF trimmed at the ends)."""
    if buf.startswith("-"):
        space = buf.find(" ")
        if space == -1:
            code, msg = "ERR", buf[1:]
        else:
            code, msg = buf[1:space], buf[space + 1 :]
    else:
        code, msg = "ERR", buf
    return code + " " + msg.strip("\r\n")


# Table constructors run in Lua: cheaper than building a Python dict for ``table_from``. Compiled
# under the sandbox's chunk name so the script's count hook treats them as internal code.
_CONSTRUCTORS = b"""
local function status(s) return {ok = s} end
local function err(e, ignore)
  if ignore then return {err = e, ignore_error_stats_update = true} end
  return {err = e}
end
return status, err
"""


class ReplyConverter:
    def __init__(self, lua) -> None:
        self.lua = lua
        self.table_from = lua.table_from
        chunk = lua.execute("local src, name = ... return assert(loadstring(src, name))",
                            _CONSTRUCTORS, b"=shoal_sandbox")
        self.status_table, self._error_table = chunk()

    def error_table(self, text: str, ignore: bool):
        return self._error_table(text.encode("utf-8", "surrogateescape"), bool(ignore))

    def to_lua(self, value, resp3: bool):
        kind = type(value)
        if kind is bytes:
            return value
        if kind is int:
            return value
        if value is None or kind is NullArray:
            return None if resp3 else False
        if kind is Raw:
            data = value.data
            if data == b"+OK\r\n":
                return self.status_table(b"OK")
            return self.to_lua(parse_raw(data), resp3)
        if kind is list or kind is tuple or kind is Push:
            return self.table_from([self.to_lua(item, resp3) for item in value])
        if kind is SimpleString:
            return self.status_table(value.text)
        if kind is bool:
            if resp3:
                return value
            return 1 if value else 0
        if kind is dict:
            if resp3:
                inner = self.table_from({})
                for key, item in value.items():
                    inner[self.to_lua(key, resp3)] = self.to_lua(item, resp3)
                return self.table_from({b"map": inner})
            flat = []
            for key, item in value.items():
                flat.append(self.to_lua(key, resp3))
                flat.append(self.to_lua(item, resp3))
            return self.table_from(flat)
        if kind is float or kind is Double:
            number = value if kind is float else value.value
            if resp3:
                return self.table_from({b"double": number})
            return format_double(number)
        if kind is SetReply:
            if resp3:
                inner = self.table_from({})
                for item in value:
                    inner[self.to_lua(item, resp3)] = True
                return self.table_from({b"set": inner})
            return self.table_from([self.to_lua(item, resp3) for item in value])
        if isinstance(value, ErrorReply):
            return self.error_table(error_text("-" + value.message), True)
        if kind is BigNumber:
            if resp3:
                return self.table_from({b"big_number": value.digits})
            return value.digits
        if kind is Verbatim:
            if resp3:
                return self.table_from({b"verbatim_string": self.table_from({b"format": value.fmt, b"string": value.data})})
            return value.data
        if kind is str:
            return value.encode("utf-8", "surrogateescape")
        if kind is bytearray or kind is memoryview:
            return bytes(value)
        raise TypeError(f"cannot convert reply of type {kind.__name__} for Lua")


def parse_raw(data: bytes):
    """A pre-encoded reply (``Raw``) back to reply values; NO_REPLY (empty) becomes None."""
    if not data:
        return None
    value, _ = _parse(data, 0)
    return value


def _parse(buf: bytes, pos: int):
    kind = buf[pos : pos + 1]
    end = buf.index(b"\r\n", pos)
    body = buf[pos + 1 : end]
    nxt = end + 2
    if kind == b"+":
        return SimpleString(body), nxt
    if kind == b"-":
        return ErrorReply(body.decode("utf-8", "surrogateescape")), nxt
    if kind == b":":
        return int(body), nxt
    if kind == b"$":
        n = int(body)
        if n < 0:
            return None, nxt
        return buf[nxt : nxt + n], nxt + n + 2
    if kind == b"*":
        n = int(body)
        if n < 0:
            return NullArray(), nxt
        items = []
        for _ in range(n):
            item, nxt = _parse(buf, nxt)
            items.append(item)
        return items, nxt
    if kind == b"_":
        return None, nxt
    if kind == b",":
        return float(body), nxt
    if kind == b"#":
        return body == b"t", nxt
    if kind == b"(":
        return BigNumber(body), nxt
    if kind == b"%":
        n = int(body)
        items = {}
        for _ in range(n):
            key, nxt = _parse(buf, nxt)
            item, nxt = _parse(buf, nxt)
            items[key if not isinstance(key, list) else tuple(key)] = item
        return items, nxt
    if kind in (b"~", b">"):
        n = int(body)
        items = SetReply() if kind == b"~" else Push()
        for _ in range(n):
            item, nxt = _parse(buf, nxt)
            items.append(item)
        return items, nxt
    if kind == b"=":
        n = int(body)
        data = buf[nxt : nxt + n]
        return Verbatim(data[4:], data[:3]), nxt + n + 2
    raise ValueError(f"cannot parse reply {buf[pos:pos + 20]!r}")
