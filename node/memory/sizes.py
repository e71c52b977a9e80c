"""How many bytes things take: the process's allocation, and one stored value.

``allocated_bytes()`` -- the process-wide figure ``used_memory`` is built on.
CPython serves objects up to 512 bytes from its own pools (arenas mmap'ed
directly, invisible to malloc statistics) and everything larger from
malloc. So the figure is glibc's ``mallinfo2()`` (``uordblks + hblkhd``:
bytes malloc has handed out, whatever their size) plus
the bytes of CPython's pool blocks in use. Those depend on the data (a
200-byte string sits in a 240-byte block, a set member in a 48-byte one),
so they are read exactly from CPython's own statistics
(``sys._debugmallocstats``: "bytes in allocated blocks"; ~0.5 ms on a
small heap, ~2 ms per 400 MB of small objects), and only where those are
missing estimated as ``sys.getallocatedblocks()`` times a mean block size
(``POOL_BLOCK_BYTES``). mallinfo2 costs under a microsecond. Neither is
called per command (see node.memory.manager for when they are).
Without mallinfo2 (non-glibc) the RSS stands in for the malloc part.

``value_size(value, samples)`` -- what MEMORY USAGE reports and what an
eviction is credited with: ``sys.getsizeof`` of the value's objects,
walking containers. Like Redis's MEMORY USAGE, containers with more than
``samples`` elements are measured on a sample and extrapolated (0 = all).
"""

from __future__ import annotations

import ctypes
import os
import re
import sys
import tempfile
from collections import deque
from itertools import islice

__all__ = ["POOL_BLOCK_BYTES", "allocated_bytes", "key_overhead", "pool_bytes_in_use", "value_size"]

#: Mean bytes per CPython pool block on mixed datasets: the fallback when CPython's
#: allocator statistics are unavailable.
POOL_BLOCK_BYTES = 56

#: A key's share of its slot dict (entry + index + ~1/3 slack) and of the access dict.
DICT_ENTRY_BYTES = 40


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


def _load_mallinfo2():
    try:
        fn = ctypes.CDLL(None).mallinfo2
    except (OSError, AttributeError):
        return None
    fn.restype = _Mallinfo2
    fn.argtypes = []
    return fn


_mallinfo2 = _load_mallinfo2()


def malloc_bytes() -> int:
    """Bytes malloc has handed out (or the RSS where mallinfo2 is missing)."""
    if _mallinfo2 is not None:
        info = _mallinfo2()
        return int(info.uordblks + info.hblkhd)
    from node.info import rss_bytes

    return rss_bytes()


def allocated_bytes() -> int:
    """The process's allocation: malloc'ed bytes + CPython pool bytes in use.

    The pool part is exact when CPython's statistics are available, else
    the block count times ``POOL_BLOCK_BYTES``.
    """
    in_use = pool_bytes_in_use()
    if in_use is None:
        in_use = sys.getallocatedblocks() * POOL_BLOCK_BYTES
    return malloc_bytes() + in_use


_sink = None
_IN_USE = re.compile(rb"bytes in allocated blocks\s*=\s*([\d,]+)")


def pool_bytes_in_use() -> int | None:
    """CPython's exact "bytes in allocated blocks" (its allocator statistics), or None."""
    global _sink
    stats = getattr(sys, "_debugmallocstats", None)
    if stats is None:
        return None
    # The statistics are printed on the C stderr: catch them in a (reused) temporary file.
    try:
        if _sink is None:
            _sink = tempfile.TemporaryFile()
        sink = _sink
        sink.seek(0)
        sink.truncate()
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            os.dup2(sink.fileno(), 2)
            stats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        sink.seek(0)
        text = sink.read()
    except (OSError, ValueError):
        return None
    found = _IN_USE.search(text)
    return int(found.group(1).replace(b",", b"")) if found else None


def key_overhead(key: bytes) -> int:
    """Bytes a key costs besides its value: the key object and its dict entries."""
    return sys.getsizeof(key) + 2 * DICT_ENTRY_BYTES


# ------------------------------------------------------------ value sizes

_getsizeof = sys.getsizeof
_LEAVES = (bytes, bytearray, int, float, str, bool, type(None))
_SEQUENCES = (list, tuple, deque, set, frozenset)
# Objects of these modules are walked through their attributes (values, engine nodes, sortedcontainers).
_WALKED_MODULES = ("node.", "sortedcontainers")
_MAX_DEPTH = 8


def value_size(value, samples: int = 5) -> int:
    """Approximate bytes held by ``value`` (sampled beyond ``samples`` elements; 0 = exact).

    An object reachable twice (a zset member is in its dict and its sorted
    list) is counted once; CPython's cached small ints cost nothing.
    """
    return _size(value, samples if samples > 0 else 0, 0, set())


def _size(obj, samples: int, depth: int, seen: set) -> int:
    kind = type(obj)
    if kind is int and -5 <= obj <= 256:
        return 0  # CPython's shared small ints
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    if kind in _LEAVES or depth > _MAX_DEPTH:
        return _getsizeof(obj)
    if isinstance(obj, dict):
        total = _getsizeof(obj)
        n = len(obj)
        if n:
            items = obj.items() if not samples or n <= samples else islice(obj.items(), samples)
            seen_items = 0
            part = 0
            for k, v in items:
                part += _size(k, samples, depth + 1, seen) + _size(v, samples, depth + 1, seen)
                seen_items += 1
            total += part * n // seen_items
        total += _slots_size(obj, samples, depth, seen)
        return total
    if isinstance(obj, _SEQUENCES):
        total = _getsizeof(obj)
        n = len(obj)
        if n:
            if not samples or n <= samples:
                elems = obj
            elif isinstance(obj, (list, tuple)):
                step = n / samples  # spread the sample over the sequence
                elems = [obj[int(i * step)] for i in range(samples)]
            else:
                elems = islice(obj, samples)
            count = 0
            part = 0
            for elem in elems:
                part += _size(elem, samples, depth + 1, seen)
                count += 1
            total += part * n // count
        return total
    module = getattr(kind, "__module__", "") or ""
    if not module.startswith(_WALKED_MODULES):
        return _getsizeof(obj)
    return _getsizeof(obj) + _slots_size(obj, samples, depth, seen) + _dict_attr_size(obj, samples, depth, seen)


def _slots_size(obj, samples: int, depth: int, seen: set) -> int:
    total = 0
    for klass in type(obj).__mro__:
        for name in klass.__dict__.get("__slots__", ()):
            if name in ("__dict__", "__weakref__"):
                continue
            attr = getattr(obj, name, None)
            if attr is not None:
                total += _size(attr, samples, depth + 1, seen)
    return total


def _dict_attr_size(obj, samples: int, depth: int, seen: set) -> int:
    attrs = getattr(obj, "__dict__", None)
    if not attrs:
        return 0
    total = _getsizeof(attrs)
    for attr in attrs.values():
        if isinstance(attr, _LEAVES):
            continue  # small ints and flags: shared or negligible
        total += _size(attr, samples, depth + 1, seen)
    return total
