"""The ACL log (ACL LOG): recent denials, similar ones grouped, newest first.

Entries match Redis 7.0's: count, reason, context, object, username,
age-seconds and client-info. A new denial that matches one of the 10 newest
entries (same reason, context, object and user, within 60 s) bumps that
entry's count, refreshes its time and client info and moves it to the front.
Every denial is also written to the node's log (notice level).
"""

from __future__ import annotations

__all__ = ["AclLog", "REASONS", "CONTEXTS"]

REASONS = {1: b"command", 2: b"key", 3: b"auth", 4: b"channel"}
CONTEXTS = {"toplevel": b"toplevel", "multi": b"multi", "lua": b"lua", "module": b"module"}
_GROUPING_MS = 60000


class Entry:
    __slots__ = ("count", "reason", "context", "object", "username", "ctime", "cinfo")

    def __init__(self, reason: int, context: str, obj: bytes, username: bytes, ctime: int, cinfo: bytes) -> None:
        self.count = 1
        self.reason = reason
        self.context = context
        self.object = obj
        self.username = username
        self.ctime = ctime
        self.cinfo = cinfo

    def matches(self, other: "Entry") -> bool:
        return (
            self.reason == other.reason
            and self.context == other.context
            and abs(self.ctime - other.ctime) <= _GROUPING_MS
            and self.object == other.object
            and self.username == other.username
        )


class AclLog:
    def __init__(self, node) -> None:
        self.node = node
        self.entries: list[Entry] = []  # newest first

    def add(self, client, reason: int, context: str, obj: bytes, username: bytes, cinfo: bytes) -> None:
        node = self.node
        entry = Entry(reason, context, obj, username, node.clock.wall_ms(), cinfo)
        node.logger.notice(
            "ACL denied (%s, %s): user '%s' object '%s' from %s"
            % (REASONS[reason].decode(), context, username.decode("utf-8", "replace"),
               obj.decode("utf-8", "replace"), getattr(client, "addr", "?"))
        )
        for i, current in enumerate(self.entries[:10]):
            if current.matches(entry):
                current.cinfo = entry.cinfo
                current.ctime = entry.ctime
                current.count += 1
                del self.entries[i]
                self.entries.insert(0, current)
                return
        self.entries.insert(0, entry)
        limit = node.config["acllog-max-len"]
        if len(self.entries) > limit:
            del self.entries[limit:]

    def reset(self) -> None:
        self.entries = []

    def reply(self, count: int) -> list:
        now = self.node.clock.wall_ms()
        out = []
        for entry in self.entries[: max(count, 0)]:
            out.append({
                b"count": entry.count,
                b"reason": REASONS[entry.reason],
                b"context": CONTEXTS[entry.context],
                b"object": entry.object,
                b"username": entry.username,
                b"age-seconds": (now - entry.ctime) / 1000,
                b"client-info": entry.cinfo,
            })
        return out
