"""The slow log (Redis's slowlog.c): the newest commands that ran at least
``slowlog-log-slower-than`` microseconds, at most ``slowlog-max-len`` of them.

Entries keep what Redis keeps: a unique id, the unix time, the duration in
microseconds, the arguments (at most 32; the 32nd then says how many more
there were; an argument longer than 128 bytes is cut and says how many bytes
were dropped), the client's address and name.
"""

from __future__ import annotations

from collections import deque

__all__ = ["SlowLog", "MAX_ARGC", "MAX_STRING"]

MAX_ARGC = 32  # SLOWLOG_ENTRY_MAX_ARGC
MAX_STRING = 128  # SLOWLOG_ENTRY_MAX_STRING


def entry_argv(argv: list) -> list:
    """The arguments as an entry stores them (Redis's slowlogCreateEntry)."""
    argc = len(argv)
    kept = min(argc, MAX_ARGC)
    out = []
    for j in range(kept):
        if kept != argc and j == kept - 1:
            out.append(b"... (%d more arguments)" % (argc - kept + 1))
            break
        arg = argv[j]
        if len(arg) > MAX_STRING:
            arg = arg[:MAX_STRING] + b"... (%d more bytes)" % (len(arg) - MAX_STRING)
        else:
            arg = bytes(arg)
        out.append(arg)
    return out


class SlowLog:
    __slots__ = ("entries", "next_id")

    def __init__(self) -> None:
        #: Newest first: (id, unix time, duration µs, argv, client addr, client name).
        self.entries: deque = deque()
        self.next_id = 0

    def push(self, argv: list, duration_us: int, client, now_s: int, max_len: int) -> None:
        self.entries.appendleft(
            (self.next_id, now_s, duration_us, entry_argv(argv), client.addr.encode(), bytes(client.name))
        )
        self.next_id += 1
        self.trim(max_len)

    def trim(self, max_len: int) -> None:
        entries = self.entries
        while len(entries) > max_len:
            entries.pop()

    def reset(self) -> None:
        self.entries.clear()

    def get(self, count: int) -> list:
        """The ``count`` newest entries as SLOWLOG GET replies them (-1: all)."""
        entries = self.entries
        if count < 0 or count > len(entries):
            count = len(entries)
        out = []
        for j in range(count):
            ident, when, duration, argv, addr, name = entries[j]
            out.append([ident, when, duration, list(argv), addr, name])
        return out
