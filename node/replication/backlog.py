"""The replication backlog: the last ``repl-backlog-size`` bytes of the replication stream.

Offsets are Redis's: the stream's byte count since the replication id was
created. ``master_repl_offset`` is the offset of the last byte written;
``first_byte_offset`` the offset of the oldest byte still held (when the
backlog is created it is ``master_repl_offset + 1``: empty, ready for the next
byte). A replica asking ``PSYNC <replid> <n>`` wants the stream from byte
``n`` on; that works while ``first_byte_offset <= n <= master_repl_offset + 1``.

The buffer is a ``bytearray`` trimmed from the front: CPython deletes a
bytearray's head by moving its start pointer, so appending and trimming are
amortised O(bytes appended), like Redis's ring of blocks.
"""

from __future__ import annotations

__all__ = ["Backlog"]


class Backlog:
    __slots__ = ("size", "buf", "first_byte_offset")

    def __init__(self, size: int, master_repl_offset: int) -> None:
        self.size = max(1, size)
        self.buf = bytearray()
        self.first_byte_offset = master_repl_offset + 1

    @property
    def histlen(self) -> int:
        return len(self.buf)

    def append(self, data) -> None:
        buf = self.buf
        buf += data
        extra = len(buf) - self.size
        if extra > 0:
            del buf[:extra]
            self.first_byte_offset += extra

    def resize(self, size: int) -> None:
        """CONFIG SET repl-backlog-size: keep the newest bytes that still fit."""
        self.size = max(1, size)
        extra = len(self.buf) - self.size
        if extra > 0:
            del self.buf[:extra]
            self.first_byte_offset += extra

    def covers(self, offset: int) -> bool:
        """True if the stream from byte ``offset`` on is still here (offset = last held + 1 gives nothing, OK)."""
        return self.first_byte_offset <= offset <= self.first_byte_offset + len(self.buf)

    def since(self, offset: int) -> bytes:
        """The held bytes from stream offset ``offset`` on (``covers(offset)`` must be true)."""
        return bytes(self.buf[offset - self.first_byte_offset:])
