"""Every known difference between Shoal's replies and Redis 7.0's, with its reason.

This is the one place such differences live. The differential harness
(``tests/differential.py``) reads it: a command listed here has its replies
normalised on both sides before comparison (or compared only in shape) --
never silently skipped. Keep the list short; each entry needs a reason a
Redis user would accept.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from tests.resp_client import parse

__all__ = ["Difference", "KNOWN_DIFFERENCES", "normalizer_for"]


@dataclass(frozen=True)
class Difference:
    reason: str
    #: raw reply bytes -> comparable value; applied to both servers' replies.
    normalize: Callable[[bytes], object]


def _sorted_array(raw: bytes):
    value = parse(raw)
    return sorted(value) if isinstance(value, list) else value


KNOWN_DIFFERENCES: dict[str, Difference] = {
    "keys": Difference(
        "Redis lists keys in hash-table order, Shoal in hash-slot order; the set of keys is "
        "compared, not the order.",
        _sorted_array,
    ),
}


def normalizer_for(argv: tuple) -> Callable[[bytes], object] | None:
    name = argv[0].lower() if isinstance(argv[0], str) else argv[0].decode(errors="replace").lower()
    diff = KNOWN_DIFFERENCES.get(name)
    return diff.normalize if diff else None
