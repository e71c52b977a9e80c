"""Shared hypothesis helper: mutate a byte stream the way the protocol tests want.

The parser, protocol-vs-Redis and fuzz tests each build a request stream from
their own pieces, then damage it with the same four edits: flip a byte,
truncate, insert a piece (or random bytes), delete a short run.
"""

from __future__ import annotations

from hypothesis import strategies as st

__all__ = ["mutate"]


def mutate(draw, data: bytearray, items: list[bytes], *, rounds: int, insert_max: int, delete_max: int) -> bytes:
    """Apply up to ``rounds`` random edits to ``data`` and return the result."""
    for _ in range(draw(st.integers(0, rounds))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        kind = draw(st.sampled_from(["flip", "truncate", "insert", "delete"]))
        if kind == "flip":
            data[at] = draw(st.integers(0, 255))
        elif kind == "truncate":
            del data[at:]
        elif kind == "insert":
            data[at:at] = draw(st.sampled_from(items) | st.binary(min_size=1, max_size=insert_max))
        else:
            del data[at : at + draw(st.integers(1, delete_max))]
    return bytes(data)
