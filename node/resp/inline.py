"""Splitting an inline command line into arguments, as Redis's ``sdssplitargs`` does.

Inline commands (``SET k "a b"\\r\\n`` typed into telnet) are split on
whitespace; double quotes take C-like escapes (``\\n``, ``\\xHH``...), single
quotes only ``\\'``. A closing quote must be followed by whitespace or the end
of the line. Returns ``None`` for unbalanced quotes, which the caller turns
into Redis's protocol error.
"""

from __future__ import annotations

__all__ = ["split_inline_args"]

_SPACE = frozenset(b" \n\r\t\v\f")  # C isspace(): skips between args, ends quotes
_WORD_END = frozenset(b" \n\r\t")  # what ends an unquoted argument
_ESCAPES = {ord("n"): 10, ord("r"): 13, ord("t"): 9, ord("b"): 8, ord("a"): 7}
_HEX = frozenset(b"0123456789abcdefABCDEF")


def split_inline_args(line: bytes) -> list[bytes] | None:
    # The C original reads a NUL-terminated string: a NUL ends the line.
    nul = line.find(b"\0")
    if nul != -1:
        line = line[:nul]
    args: list[bytes] = []
    i = 0
    n = len(line)
    while True:
        while i < n and line[i] in _SPACE:
            i += 1
        if i >= n:
            return args
        current = bytearray()
        in_double = in_single = False
        while True:
            if in_double:
                if i >= n:
                    return None
                c = line[i]
                if (
                    c == 0x5C
                    and i + 3 < n
                    and line[i + 1] == ord("x")
                    and line[i + 2] in _HEX
                    and line[i + 3] in _HEX
                ):
                    current.append(int(line[i + 2 : i + 4], 16))
                    i += 3
                elif c == 0x5C and i + 1 < n:
                    i += 1
                    current.append(_ESCAPES.get(line[i], line[i]))
                elif c == 0x22:
                    if i + 1 < n and line[i + 1] not in _SPACE:
                        return None
                    i += 1
                    break
                else:
                    current.append(c)
            elif in_single:
                if i >= n:
                    return None
                c = line[i]
                if c == 0x5C and i + 1 < n and line[i + 1] == 0x27:
                    i += 1
                    current.append(0x27)
                elif c == 0x27:
                    if i + 1 < n and line[i + 1] not in _SPACE:
                        return None
                    i += 1
                    break
                else:
                    current.append(c)
            else:
                if i >= n:
                    break
                c = line[i]
                if c in _WORD_END:
                    break
                if c == 0x22:
                    in_double = True
                elif c == 0x27:
                    in_single = True
                else:
                    current.append(c)
            i += 1
        args.append(bytes(current))
