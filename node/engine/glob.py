"""Redis's glob patterns (KEYS, SCAN MATCH, CONFIG GET, PSUBSCRIBE...), exactly.

Redis matches with ``stringmatchlen``: ``*``, ``?``, ``[...]`` classes with
``^`` negation, ``a-z`` ranges (reversed ranges allowed) and ``\\`` escapes,
an unterminated class closing at the end of the pattern, and one quirk kept
here on purpose: an empty string matches only the empty pattern (so ``**``
does not match the empty key; callers short-circuit a lone ``*`` themselves,
as Redis does).

Patterns are translated once into an equivalent regular expression by walking
them with the same steps as the C code, then cached.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Callable

__all__ = ["compile_glob", "glob_match"]

_STAR, _QUESTION, _OPEN, _CLOSE, _CARET, _BACKSLASH, _DASH = b"*?[]^\\-"


def _byte(c: int) -> str:
    return re.escape(bytes([c]).decode("latin-1"))


def _translate(pattern: bytes) -> str:
    parts: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == _STAR:
            while i + 1 < n and pattern[i + 1] == _STAR:
                i += 1
            parts.append(".*")
        elif c == _QUESTION:
            parts.append(".")
        elif c == _OPEN:
            i += 1
            negate = i < n and pattern[i] == _CARET
            if negate:
                i += 1
            items: list[str] = []
            while True:
                if i < n and pattern[i] == _BACKSLASH and n - i >= 2:
                    i += 1
                    items.append(_byte(pattern[i]))
                elif i < n and pattern[i] == _CLOSE:
                    break
                elif i >= n:
                    i -= 1  # the class ends with the pattern
                    break
                elif n - i >= 3 and pattern[i + 1] == _DASH:
                    lo, hi = sorted((pattern[i], pattern[i + 2]))
                    items.append(f"{_byte(lo)}-{_byte(hi)}")
                    i += 2
                else:
                    items.append(_byte(pattern[i]))
                i += 1
            if items:
                parts.append(("[^" if negate else "[") + "".join(items) + "]")
            else:
                parts.append("." if negate else "(?!)")
        elif c == _BACKSLASH and n - i >= 2:
            i += 1
            parts.append(_byte(pattern[i]))
        else:
            parts.append(_byte(c))
        i += 1
    return "".join(parts)


@lru_cache(maxsize=1024)
def compile_glob(pattern: bytes, nocase: bool = False) -> Callable[[bytes], bool]:
    """A predicate ``matches(string) -> bool`` for ``pattern``."""
    flags = re.DOTALL | (re.IGNORECASE if nocase else 0)
    regex = re.compile(_translate(pattern).encode("latin-1"), flags)
    fullmatch = regex.fullmatch
    empty_ok = pattern == b""

    def matches(string: bytes) -> bool:
        if not string:
            return empty_ok
        return fullmatch(string) is not None

    return matches


def glob_match(pattern: bytes, string: bytes, nocase: bool = False) -> bool:
    return compile_glob(pattern, nocase)(string)
