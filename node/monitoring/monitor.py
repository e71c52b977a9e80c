"""MONITOR: every command run, as one ``+<time> [<db> <addr>] "arg" ...`` line.

Lines are built once per command and appended to each monitor's output
buffer; the server flushes them after the current pass (``node.pending_write``).
Arguments are quoted as Redis's ``sdscatrepr`` quotes them, and secrets are
replaced by ``(redacted)`` where Redis redacts them (AUTH, HELLO ... AUTH,
MIGRATE ... AUTH/AUTH2, CONFIG SET of sensitive parameters): the same
redacted arguments go to the slow log.
"""

from __future__ import annotations

__all__ = ["feed_monitors", "redacted_argv", "repr_arg", "monitor_line"]

REDACTED = b"(redacted)"


def _escape_table() -> list[bytes]:
    table = []
    for c in range(256):
        ch = bytes((c,))
        if ch in (b"\\", b'"'):
            table.append(b"\\" + ch)
        elif ch == b"\n":
            table.append(b"\\n")
        elif ch == b"\r":
            table.append(b"\\r")
        elif ch == b"\t":
            table.append(b"\\t")
        elif ch == b"\a":
            table.append(b"\\a")
        elif ch == b"\b":
            table.append(b"\\b")
        elif 32 <= c < 127:
            table.append(ch)
        else:
            table.append(b"\\x%02x" % c)
    return table


_ESCAPE = _escape_table()
_PLAIN = frozenset(c for c in range(32, 127) if c not in (ord("\\"), ord('"')))


def repr_arg(arg: bytes) -> bytes:
    """``sdscatrepr``: the argument in double quotes, with C-style escapes."""
    if all(c in _PLAIN for c in arg):
        return b'"%b"' % arg
    return b'"' + b"".join(_ESCAPE[c] for c in arg) + b'"'


def redacted_argv(cmd, argv: list) -> list:
    """The arguments as MONITOR and the slow log show them (Redis's redactClientCommandArgument)."""
    name = cmd.fullname
    if name == "auth":
        if len(argv) > 3:
            return argv  # a syntax error: Redis answers before redacting
        return [argv[0]] + [REDACTED] * (len(argv) - 1)
    if name == "hello":
        out = list(argv)
        j = 2
        while j < len(out):
            word = out[j].lower()
            if word == b"auth" and j + 2 < len(out):
                out[j + 1] = out[j + 2] = REDACTED
                j += 3
            elif word == b"setname" and j + 1 < len(out):
                j += 2
            else:
                break
        return out
    if name == "migrate":
        out = list(argv)
        j = 6
        while j < len(out):
            word = out[j].lower()
            more = len(out) - 1 - j
            if word in (b"copy", b"replace"):
                j += 1
            elif word == b"auth" and more >= 1:
                out[j + 1] = REDACTED
                j += 2
            elif word == b"auth2" and more >= 2:
                out[j + 1] = out[j + 2] = REDACTED
                j += 3
            else:
                break  # KEYS (the rest are keys) or a syntax error
        return out
    if name == "acl|setuser":  # every argument from the username on
        return argv[:2] + [REDACTED] * (len(argv) - 2)
    if name == "config|set":
        from node.config import DIRECTIVES

        out = list(argv)
        for j in range(2, len(out) - 1, 2):
            directive = DIRECTIVES.get(out[j].decode("utf-8", "surrogateescape").lower())
            if directive is not None and directive.sensitive:
                out[j + 1] = REDACTED
        return out
    return argv


def monitor_line(now: float, db_index: int, addr: str, argv: list) -> bytes:
    usec = int(round(now * 1_000_000))
    head = b"+%d.%06d [%d %b] " % (usec // 1_000_000, usec % 1_000_000, db_index, addr.encode())
    return head + b" ".join(repr_arg(arg) for arg in argv) + b"\r\n"


def feed_monitors(node, client, argv: list, addr: str | None = None) -> None:
    """replicationFeedMonitors: one line to every MONITOR client."""
    line = monitor_line(node.clock.source(), client.db_index, addr or client.addr, argv)
    pending = node.pending_write
    for monitor in node.monitors:
        if monitor.close_after_reply:
            continue  # as Redis's prepareClientToWrite: nothing more for a closing client
        monitor.out += line
        pending.add(monitor)
