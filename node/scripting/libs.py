"""The Python halves of the Lua libraries Redis bundles: bit, cjson.decode, struct, cmsgpack.

Each function is called from a Lua wrapper (``sandbox.lua``'s ``pywrap``) and
answers ``(True, values...)`` or ``(False, message)``; the wrapper raises the
message at the script's position, as the C libraries' ``luaL_error`` does.
Lua strings arrive as ``bytes``, numbers as ``int``/``float``, tables as lupa
table proxies (iterated with ``lua_next``, so in Lua's own order).
"""

from __future__ import annotations

import json
import math
import struct as _struct

__all__ = ["Libraries"]

_BAD_ARG = "bad argument #%d to '%s' (%s)"


def lua_typename(value) -> str:
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, bytes):
        return "string"
    kind = type(value).__name__
    if "Table" in kind:
        return "table"
    if "Function" in kind:
        return "function"
    if "Thread" in kind:
        return "thread"
    return "userdata"


def lua_tonumber(value):
    """Lua 5.1's lua_tonumber: numbers, and strings that strtod reads whole; else None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, bytes):
        text = value.strip(b" \t\n\r\f\v")
        if not text:
            return None
        try:
            if text[:2].lower() in (b"0x",) or text[:3].lower() in (b"-0x", b"+0x"):
                return float(int(text, 16))
            return float(text)
        except ValueError:
            return None
    return None


class ArgError(Exception):
    pass


def _checknumber(args, n: int, fname: str):
    value = args[n - 1] if n <= len(args) else None
    number = lua_tonumber(value)
    if number is None:
        got = "no value" if n > len(args) else lua_typename(value)
        raise ArgError(_BAD_ARG % (n, fname, f"number expected, got {got}"))
    return number


def _checkstring(args, n: int, fname: str) -> bytes:
    value = args[n - 1] if n <= len(args) else None
    if isinstance(value, bytes):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _number_text(value)
    got = "no value" if n > len(args) else lua_typename(value)
    raise ArgError(_BAD_ARG % (n, fname, f"string expected, got {got}"))


def _number_text(value) -> bytes:
    """Lua's number-to-string conversion (LUA_NUMBER_FMT %.14g)."""
    return b"%.14g" % float(value)


def _lua_function(fn):
    def call(*args):
        try:
            return (True, *fn(*args))
        except ArgError as exc:
            return False, str(exc).encode()

    return call


# ------------------------------------------------------------------ bit


def _tobit(number) -> int:
    """LuaBitOp's argument normalisation: round to nearest (ties to even), wrap to int32."""
    if math.isnan(number) or math.isinf(number):
        return 0
    value = int(round(number)) & 0xFFFFFFFF
    return value - 0x100000000 if value & 0x80000000 else value


def _signed(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - 0x100000000 if value & 0x80000000 else value


def _bitargs(args, fname):
    return [_tobit(_checknumber(args, i + 1, fname)) for i in range(max(1, len(args)))]


def _make_bit():
    def tobit(*args):
        return (_tobit(_checknumber(args, 1, "tobit")),)

    def bnot(*args):
        return (_signed(~_tobit(_checknumber(args, 1, "bnot"))),)

    def reducer(fname, op):
        def fn(*args):
            values = _bitargs(args, fname)
            acc = values[0]
            for v in values[1:]:
                acc = op(acc, v)
            return (_signed(acc),)

        return fn

    def shifter(fname, op):
        def fn(*args):
            value = _tobit(_checknumber(args, 1, fname)) & 0xFFFFFFFF
            count = _tobit(_checknumber(args, 2, fname)) & 31
            return (_signed(op(value, count)),)

        return fn

    def arshift(*args):
        value = _tobit(_checknumber(args, 1, "arshift"))
        count = _tobit(_checknumber(args, 2, "arshift")) & 31
        return (_signed(value >> count),)

    def bswap(*args):
        value = _tobit(_checknumber(args, 1, "bswap")) & 0xFFFFFFFF
        return (_signed(int.from_bytes(value.to_bytes(4, "little"), "big")),)

    def tohex(*args):
        value = _tobit(_checknumber(args, 1, "tohex")) & 0xFFFFFFFF
        n = 8
        if len(args) >= 2 and args[1] is not None:
            n = _tobit(_checknumber(args, 2, "tohex"))
        digits = "0123456789abcdef"
        if n < 0:
            n = -n
            digits = "0123456789ABCDEF"
        if n > 8:
            n = 8
        out = []
        for _ in range(n):
            out.append(digits[value & 15])
            value >>= 4
        return ("".join(reversed(out)).encode(),)

    return {
        b"tobit": _lua_function(tobit),
        b"bnot": _lua_function(bnot),
        b"band": _lua_function(reducer("band", lambda a, b: a & b)),
        b"bor": _lua_function(reducer("bor", lambda a, b: a | b)),
        b"bxor": _lua_function(reducer("bxor", lambda a, b: a ^ b)),
        b"lshift": _lua_function(shifter("lshift", lambda v, n: v << n)),
        b"rshift": _lua_function(shifter("rshift", lambda v, n: v >> n)),
        b"arshift": _lua_function(arshift),
        b"rol": _lua_function(shifter("rol", lambda v, n: (v << n) | (v >> (32 - n)) if n else v)),
        b"ror": _lua_function(shifter("ror", lambda v, n: (v >> n) | (v << (32 - n)) if n else v)),
        b"bswap": _lua_function(bswap),
        b"tohex": _lua_function(tohex),
    }


# ------------------------------------------------------------------ struct


class _Fmt:
    def __init__(self, fmt: bytes) -> None:
        self.fmt = fmt
        self.pos = 0
        self.little = True
        self.maxalign = 1

    def getnum(self, default: int) -> int:
        fmt, pos = self.fmt, self.pos
        if pos >= len(fmt) or not chr(fmt[pos]).isdigit():
            return default
        value = 0
        while pos < len(fmt) and chr(fmt[pos]).isdigit():
            value = value * 10 + fmt[pos] - 48
            pos += 1
        self.pos = pos
        return value

    def optsize(self, opt: str) -> int:
        if opt in "bB":
            return 1
        if opt in "hH":
            return 2
        if opt in "lL":
            return 8
        if opt == "T":
            return 8
        if opt == "f":
            return 4
        if opt == "d":
            return 8
        if opt == "x":
            return 1
        if opt == "c":
            return self.getnum(1)
        if opt in "iI":
            size = self.getnum(4)
            if size > 8:
                raise ArgError("integral size %d is larger than limit of 8" % size)
            return size
        return 0

    def gettoalign(self, length: int, opt: str, size: int) -> int:
        if size == 0 or opt == "c":
            return 0
        align = min(size, self.maxalign)
        if align & (align - 1):
            raise ArgError("alignment must be power of 2")
        return (align - (length & (align - 1))) & (align - 1)

    def controloptions(self, opt: str) -> bool:
        if opt == " ":
            return True
        if opt in ">":
            self.little = False
            return True
        if opt in "<=":
            self.little = True
            return True
        if opt == "!":
            self.maxalign = self.getnum(8)
            return True
        return False

    def next_option(self):
        if self.pos >= len(self.fmt):
            return None
        opt = chr(self.fmt[self.pos])
        self.pos += 1
        return opt


def _make_struct():
    def pack(*args):
        fmt = _Fmt(_checkstring(args, 1, "pack"))
        out = bytearray()
        arg = 2
        while True:
            opt = fmt.next_option()
            if opt is None:
                break
            if fmt.controloptions(opt):
                continue
            size = fmt.optsize(opt)
            out += b"\0" * fmt.gettoalign(len(out), opt, size)
            if opt in "bBhHlLTiI":
                number = _checknumber(args, arg, "pack")
                arg += 1
                value = int(number) & ((1 << (size * 8)) - 1) if size else 0
                out += value.to_bytes(size, "little" if fmt.little else "big")
            elif opt == "x":
                out += b"\0"
            elif opt == "f":
                out += _struct.pack("<f" if fmt.little else ">f", float(_checknumber(args, arg, "pack")))
                arg += 1
            elif opt == "d":
                out += _struct.pack("<d" if fmt.little else ">d", float(_checknumber(args, arg, "pack")))
                arg += 1
            elif opt in "cs":
                data = _checkstring(args, arg, "pack")
                arg += 1
                if opt == "c":
                    if size == 0:
                        size = len(data)
                    if len(data) < size:
                        raise ArgError(_BAD_ARG % (arg - 1, "pack", "string too short"))
                    out += data[:size]
                else:
                    out += data + b"\0"
            else:
                raise ArgError("invalid format option '%s'" % opt)
        return (bytes(out),)

    def unpack(*args):
        fmt = _Fmt(_checkstring(args, 1, "unpack"))
        data = _checkstring(args, 2, "unpack")
        pos = 0
        if len(args) >= 3 and args[2] is not None:
            pos = int(_checknumber(args, 3, "unpack")) - 1
            if pos < 0:
                raise ArgError(_BAD_ARG % (3, "unpack", "offset must be 1 or greater"))
        results = []
        while True:
            opt = fmt.next_option()
            if opt is None:
                break
            if fmt.controloptions(opt):
                continue
            size = fmt.optsize(opt)
            pos += fmt.gettoalign(pos, opt, size)
            if size > len(data) or pos > len(data) - size:
                raise ArgError(_BAD_ARG % (2, "unpack", "data string too short"))
            if opt in "bBhHlLTiI":
                raw = data[pos : pos + size]
                value = int.from_bytes(raw, "little" if fmt.little else "big")
                if opt.islower() and opt != "x" and size and value >= 1 << (size * 8 - 1):
                    value -= 1 << (size * 8)
                results.append(value)
            elif opt == "x":
                pass
            elif opt == "f":
                results.append(_struct.unpack("<f" if fmt.little else ">f", data[pos : pos + 4])[0])
            elif opt == "d":
                results.append(_struct.unpack("<d" if fmt.little else ">d", data[pos : pos + 8])[0])
            elif opt == "c":
                if size == 0:
                    if not results or not isinstance(results[-1], (int, float)):
                        raise ArgError("format 'c0' needs a previous size")
                    size = int(results.pop())
                    if pos + size > len(data):
                        raise ArgError(_BAD_ARG % (2, "unpack", "data string too short"))
                results.append(data[pos : pos + size])
            elif opt == "s":
                end = data.find(b"\0", pos)
                if end == -1:
                    raise ArgError("unfinished string in data")
                results.append(data[pos:end])
                size = end - pos + 1
            else:
                raise ArgError("invalid format option '%s'" % opt)
            pos += size
        results.append(pos + 1)
        return tuple(results)

    def size(*args):
        fmt = _Fmt(_checkstring(args, 1, "size"))
        pos = 0
        while True:
            opt = fmt.next_option()
            if opt is None:
                break
            if fmt.controloptions(opt):
                continue
            width = fmt.optsize(opt)
            pos += fmt.gettoalign(pos, opt, width)
            if opt == "s":
                raise ArgError(_BAD_ARG % (1, "size", "options 's' has no fixed size"))
            if opt == "c" and width == 0:
                raise ArgError(_BAD_ARG % (1, "size", "options 'c0' has no fixed size"))
            if opt not in "bBhHlLTiIxfdc":
                raise ArgError("invalid format option '%s'" % opt)
            pos += width
        return (pos,)

    return {b"pack": _lua_function(pack), b"unpack": _lua_function(unpack), b"size": _lua_function(size)}


# ------------------------------------------------------------------ cmsgpack

_MAX_NESTING = 16


def _is_int64(number) -> bool:
    return isinstance(number, int) or (number == number and not math.isinf(number) and float(int(number)) == number
                                       and -(2**63) <= number < 2**63)


class _Unpacker:
    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data = data
        self.pos = pos

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise ArgError("Missing bytes in input.")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def uint(self, n: int) -> int:
        return int.from_bytes(self.take(n), "big")

    def sint(self, n: int) -> int:
        return int.from_bytes(self.take(n), "big", signed=True)


class _Packer:
    def __init__(self, lua) -> None:
        self.lua = lua

    def pack(self, value, out: bytearray, level: int) -> None:
        if value is None:
            out += b"\xc0"
        elif value is True:
            out += b"\xc3"
        elif value is False:
            out += b"\xc2"
        elif isinstance(value, (int, float)):
            if _is_int64(value):
                self.pack_int(int(value), out)
            else:
                as_float = _struct.unpack(">f", _struct.pack(">f", value))[0] if abs(value) < 3.5e38 or math.isinf(value) or value != value else None
                if as_float is not None and (as_float == value or (value != value)):
                    out += b"\xca" + _struct.pack(">f", value)
                else:
                    out += b"\xcb" + _struct.pack(">d", value)
        elif isinstance(value, bytes):
            n = len(value)
            if n < 32:
                out.append(0xA0 | n)
            elif n <= 0xFF:
                out += b"\xd9" + bytes((n,))
            elif n <= 0xFFFF:
                out += b"\xda" + n.to_bytes(2, "big")
            else:
                out += b"\xdb" + n.to_bytes(4, "big")
            out += value
        elif lua_typename(value) == "table":
            if level >= _MAX_NESTING:
                out += b"\xc0"
                return
            items = list(value.items())
            is_array = True
            count = 0
            maximum = 0
            for k, _ in items:
                if isinstance(k, bool) or not isinstance(k, (int, float)) or k < 1 or int(k) != k:
                    is_array = False
                    break
                count += 1
                maximum = max(maximum, int(k))
            if is_array and maximum == count:
                n = count
                if n <= 15:
                    out.append(0x90 | n)
                elif n <= 0xFFFF:
                    out += b"\xdc" + n.to_bytes(2, "big")
                else:
                    out += b"\xdd" + n.to_bytes(4, "big")
                for i in range(1, n + 1):
                    self.pack(value[i], out, level + 1)
            else:
                n = len(items)
                if n <= 15:
                    out.append(0x80 | n)
                elif n <= 0xFFFF:
                    out += b"\xde" + n.to_bytes(2, "big")
                else:
                    out += b"\xdf" + n.to_bytes(4, "big")
                for k, v in items:
                    self.pack(k, out, level + 1)
                    self.pack(v, out, level + 1)
        else:
            out += b"\xc0"

    @staticmethod
    def pack_int(n: int, out: bytearray) -> None:
        if n >= 0:
            if n <= 127:
                out.append(n)
            elif n <= 0xFF:
                out += b"\xcc" + bytes((n,))
            elif n <= 0xFFFF:
                out += b"\xcd" + n.to_bytes(2, "big")
            elif n <= 0xFFFFFFFF:
                out += b"\xce" + n.to_bytes(4, "big")
            else:
                out += b"\xcf" + (n & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "big")
        else:
            if n >= -32:
                out.append(n & 0xFF)
            elif n >= -128:
                out += b"\xd0" + n.to_bytes(1, "big", signed=True)
            elif n >= -32768:
                out += b"\xd1" + n.to_bytes(2, "big", signed=True)
            elif n >= -(2**31):
                out += b"\xd2" + n.to_bytes(4, "big", signed=True)
            else:
                out += b"\xd3" + n.to_bytes(8, "big", signed=True)


class Libraries:
    """The Python callbacks behind one Lua state's bit, cjson, struct and cmsgpack."""

    def __init__(self, lua) -> None:
        self.lua = lua
        self.null = None  # cjson.null, handed over by the sandbox at start-up

    def set_null(self, value) -> None:
        self.null = value

    def tables(self) -> dict:
        lua = self.lua
        return {
            b"bit": lua.table_from(_make_bit()),
            b"struct": lua.table_from(_make_struct()),
            b"cjson": lua.table_from({b"decode": _lua_function(self.cjson_decode)}),
            b"cmsgpack": lua.table_from({
                b"pack": _lua_function(self.msgpack_pack),
                b"unpack": _lua_function(self.msgpack_unpack),
                b"unpack_one": _lua_function(self.msgpack_unpack_one),
                b"unpack_limit": _lua_function(self.msgpack_unpack_limit),
                b"_NAME": b"cmsgpack",
                b"_VERSION": b"lua-cmsgpack 0.4.0",
                b"_COPYRIGHT": b"Copyright (C) 2012, Salvatore Sanfilippo",
                b"_DESCRIPTION": b"MessagePack C implementation for Lua",
            }),
        }

    # ------------------------------------------------------------ cjson

    def cjson_decode(self, *args):
        if len(args) != 1:
            raise ArgError(_BAD_ARG % (1, "decode", "expected 1 argument"))
        text = _checkstring(args, 1, "decode")
        try:
            value = json.loads(
                text.decode("utf-8", "surrogateescape"),
                parse_int=float,
                parse_constant=lambda name: {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}[name],
            )
        except json.JSONDecodeError as exc:
            found = "invalid token"
            if exc.pos >= len(exc.doc):
                found = "the end"
            raise ArgError(f"Expected value but found {found} at character {exc.pos + 1}") from None
        except RecursionError:
            raise ArgError("Found too many nested data structures (1001) at character 1") from None
        return (self._to_lua_json(value),)

    def _to_lua_json(self, value):
        if value is None:
            return self.null
        if isinstance(value, str):
            return value.encode("utf-8", "surrogateescape")
        if isinstance(value, list):
            return self.lua.table_from([self._to_lua_json(v) for v in value])
        if isinstance(value, dict):
            return self.lua.table_from({k.encode("utf-8", "surrogateescape"): self._to_lua_json(v)
                                        for k, v in value.items()})
        return value

    # ------------------------------------------------------------ cmsgpack

    def msgpack_pack(self, *args):
        if not args:
            raise ArgError("MessagePack pack needs input.")
        out = bytearray()
        packer = _Packer(self.lua)
        for value in args:
            packer.pack(value, out, 0)
        return (bytes(out),)

    def _decode(self, up: _Unpacker):
        tag = up.uint(1)
        if tag <= 0x7F:
            return tag
        if 0x80 <= tag <= 0x8F:
            return self._decode_map(up, tag & 0x0F)
        if 0x90 <= tag <= 0x9F:
            return self._decode_array(up, tag & 0x0F)
        if 0xA0 <= tag <= 0xBF:
            return up.take(tag & 0x1F)
        if tag >= 0xE0:
            return tag - 0x100
        if tag == 0xC0:
            return None
        if tag == 0xC2:
            return False
        if tag == 0xC3:
            return True
        if tag == 0xCA:
            return _struct.unpack(">f", up.take(4))[0]
        if tag == 0xCB:
            return _struct.unpack(">d", up.take(8))[0]
        if tag in (0xCC, 0xCD, 0xCE, 0xCF):
            return up.uint(1 << (tag - 0xCC))
        if tag in (0xD0, 0xD1, 0xD2, 0xD3):
            return up.sint(1 << (tag - 0xD0))
        if tag in (0xD9, 0xC4):
            return up.take(up.uint(1))
        if tag in (0xDA, 0xC5):
            return up.take(up.uint(2))
        if tag in (0xDB, 0xC6):
            return up.take(up.uint(4))
        if tag == 0xDC:
            return self._decode_array(up, up.uint(2))
        if tag == 0xDD:
            return self._decode_array(up, up.uint(4))
        if tag == 0xDE:
            return self._decode_map(up, up.uint(2))
        if tag == 0xDF:
            return self._decode_map(up, up.uint(4))
        raise ArgError("Bad data format in input.")

    def _decode_array(self, up, n):
        return self.lua.table_from([self._decode(up) for _ in range(n)])

    def _decode_map(self, up, n):
        table = self.lua.table_from({})
        for _ in range(n):
            key = self._decode(up)
            value = self._decode(up)
            if key is not None:
                table[key] = value
        return table

    def _unpack_n(self, data: bytes, limit: int, offset: int):
        up = _Unpacker(data, offset)
        values = []
        while up.pos < len(data) and (limit <= 0 or len(values) < limit):
            values.append(self._decode(up))
        return up, values

    def msgpack_unpack(self, *args):
        data = _checkstring(args, 1, "unpack")
        _, values = self._unpack_n(data, 0, 0)
        return tuple(values)

    def msgpack_unpack_one(self, *args):
        data = _checkstring(args, 1, "unpack_one")
        offset = int(_checknumber(args, 2, "unpack_one")) if len(args) >= 2 and args[1] is not None else 0
        return self._limited(data, 1, offset)

    def msgpack_unpack_limit(self, *args):
        data = _checkstring(args, 1, "unpack_limit")
        limit = int(_checknumber(args, 2, "unpack_limit")) if len(args) >= 2 and args[1] is not None else 0
        offset = int(_checknumber(args, 3, "unpack_limit")) if len(args) >= 3 and args[2] is not None else 0
        return self._limited(data, limit, offset)

    def _limited(self, data: bytes, limit: int, offset: int):
        if offset < 0 or offset > len(data):
            raise ArgError("Start offset %d greater than input length %d." % (offset, len(data)))
        up, values = self._unpack_n(data, limit, offset)
        nxt = -1 if up.pos >= len(data) else up.pos
        return (nxt, *values)
