"""redis.conf directives: the registry of what exists, parsing, and the live values.

One parser serves the config file, the ``--directive value`` command line
(turned into config lines exactly as redis-server does) and CONFIG SET. The
registry below is the single list of directives: each has a type that knows
how to parse and print its value, a default, and whether it can change at
run time. Directives that Redis knows and a later issue will act on are
accepted and reported now, so real redis.conf files load unchanged.
"""

from __future__ import annotations

import glob as _glob
import os
import shlex
from dataclasses import dataclass, field
from typing import Callable

__all__ = ["Config", "ConfigError", "DIRECTIVES", "Directive", "parse_argv", "parse_memory"]


class ConfigError(Exception):
    """A bad directive. ``line_no``/``line`` say where, when read from a file."""

    def __init__(self, message: str, line_no: int | None = None, line: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line_no = line_no
        self.line = line


# --------------------------------------------------------------- value types


def parse_memory(text: str) -> int | None:
    """``1gb`` -> 1073741824, ``1g`` -> 10**9, plain numbers as-is; None if bad."""
    units = {
        "": 1, "b": 1, "k": 1000, "kb": 1024, "m": 1000**2, "mb": 1024**2, "g": 1000**3, "gb": 1024**3,
    }
    t = text.strip().lower()
    i = len(t)
    while i > 0 and t[i - 1].isalpha():
        i -= 1
    number, unit = t[:i], t[i:]
    if unit not in units or not number:
        return None
    try:
        value = int(number)
    except ValueError:
        return None
    return value * units[unit]


def _format_memory(value: int) -> str:
    return str(value)


@dataclass
class Directive:
    name: str
    kind: str  # bool | int | memory | enum | string | special
    default: object
    mutable: bool = True
    minimum: int | None = None
    maximum: int | None = None
    choices: tuple[str, ...] = ()
    multi: bool = False  # enum that takes several values (e.g. none of ours yet)
    protected: bool = False  # CONFIG SET needs enable-protected-configs
    aliases: tuple[str, ...] = ()
    sensitive: bool = False
    parse: Callable[[list[str]], object] | None = field(default=None, repr=False)
    render: Callable[[object], str] | None = field(default=None, repr=False)

    def parse_args(self, args: list[str]) -> object:
        if self.parse is not None:
            return self.parse(args)
        if len(args) != 1:
            raise ConfigError("wrong number of arguments")
        arg = args[0]
        if self.kind == "bool":
            low = arg.lower()
            if low not in ("yes", "no"):
                raise ConfigError("argument must be 'yes' or 'no'")
            return low == "yes"
        if self.kind in ("int", "memory"):
            if self.kind == "memory":
                value = parse_memory(arg)
                if value is None:
                    raise ConfigError("argument must be a memory value")
            else:
                try:
                    value = int(arg)
                except ValueError:
                    raise ConfigError("argument couldn't be parsed into an integer") from None
            lo = self.minimum if self.minimum is not None else -(2**63)
            hi = self.maximum if self.maximum is not None else 2**63 - 1
            if not lo <= value <= hi:
                raise ConfigError(f"argument must be between {lo} and {hi} inclusive")
            return value
        if self.kind == "enum":
            low = arg.lower()
            if low not in self.choices:
                raise ConfigError("argument(s) must be one of the following: " + ", ".join(self.choices))
            return low
        return arg

    def format(self, value: object) -> str:
        if self.render is not None:
            return self.render(value)
        if self.kind == "bool":
            return "yes" if value else "no"
        return str(value)


def _parse_save(args: list[str]) -> list[tuple[int, int]]:
    if len(args) == 1 and args[0] == "":
        return []
    if len(args) % 2:
        raise ConfigError("Invalid save parameters")
    points = []
    for seconds, changes in zip(args[::2], args[1::2]):
        try:
            s, c = int(seconds), int(changes)
        except ValueError:
            raise ConfigError("Invalid save parameters") from None
        if s < 1 or c < 0:
            raise ConfigError("Invalid save parameters")
        points.append((s, c))
    return points


def _render_save(points) -> str:
    return " ".join(f"{s} {c}" for s, c in points)


def _parse_words(args: list[str]) -> list[str]:
    words: list[str] = []
    for arg in args:
        words += arg.split()
    return words


def _parse_client_output_buffer_limit(args: list[str]) -> dict:
    words = _parse_words(args)
    if len(words) % 4:
        raise ConfigError("Wrong number of arguments in buffer limit configuration.")
    limits = dict(_DEFAULT_COBL)
    for i in range(0, len(words), 4):
        cls = words[i].lower()
        if cls == "slave":
            cls = "replica"
        if cls not in ("normal", "replica", "pubsub"):
            raise ConfigError("Invalid client class specified in buffer limit configuration.")
        hard, soft = parse_memory(words[i + 1]), parse_memory(words[i + 2])
        try:
            seconds = int(words[i + 3])
        except ValueError:
            seconds = -1
        if hard is None or soft is None or seconds < 0:
            raise ConfigError("Error in hard, soft or soft_seconds setting in buffer limit configuration.")
        limits[cls] = (hard, soft, seconds)
    return limits


_DEFAULT_COBL = {"normal": (0, 0, 0), "replica": (268435456, 67108864, 60), "pubsub": (33554432, 8388608, 60)}


def _render_cobl(limits) -> str:
    return " ".join(f"{cls} {h} {s} {sec}" for cls, (h, s, sec) in limits.items())


def _parse_replicaof(args: list[str]):
    if len(args) != 2:
        raise ConfigError("wrong number of arguments")
    if args[0].lower() == "no" and args[1].lower() == "one":
        return None
    try:
        port = int(args[1])
    except ValueError:
        raise ConfigError("Invalid master port") from None
    return (args[0], port)


def _render_replicaof(value) -> str:
    return "" if value is None else f"{value[0]} {value[1]}"


_KEYSPACE_EVENT_CHARS = set("KEg$lshzxetmdnA")


def _parse_notify(args: list[str]) -> str:
    if len(args) != 1:
        raise ConfigError("wrong number of arguments")
    if any(c not in _KEYSPACE_EVENT_CHARS for c in args[0]):
        raise ConfigError("Invalid event class character. Use 'Ag$lshzxeKEtmdn'.")
    return args[0]


def _d(name, kind, default, **kw) -> Directive:
    return Directive(name, kind, default, **kw)


_LOGLEVELS = ("debug", "verbose", "notice", "warning", "nothing")
_POLICIES = (
    "volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl",
    "allkeys-lru", "allkeys-lfu", "allkeys-random", "noeviction",
)
_INT_MAX = 2**31 - 1
_LLONG_MAX = 2**63 - 1

_ALL = [
    # network
    _d("port", "int", 6379, minimum=0, maximum=65535, mutable=False),
    _d("bind", "special", ["*", "-::*"], mutable=False,
       parse=lambda a: _parse_words(a) or ["*", "-::*"], render=lambda v: " ".join(v)),
    _d("bind-source-addr", "string", ""),
    _d("unixsocket", "string", "", mutable=False),
    _d("unixsocketperm", "int", 0, mutable=False),
    _d("protected-mode", "bool", True),
    _d("tcp-backlog", "int", 511, minimum=0, maximum=_INT_MAX, mutable=False),
    _d("timeout", "int", 0, minimum=0, maximum=_INT_MAX),
    _d("tcp-keepalive", "int", 300, minimum=0, maximum=_INT_MAX),
    _d("maxclients", "int", 10000, minimum=1, maximum=_INT_MAX),
    # general
    _d("daemonize", "bool", False, mutable=False),
    _d("supervised", "enum", "no", choices=("upstart", "systemd", "auto", "no"), mutable=False),
    _d("pidfile", "string", "", mutable=False),
    _d("loglevel", "enum", "notice", choices=_LOGLEVELS),
    _d("logfile", "string", "", mutable=False),
    _d("syslog-enabled", "bool", False, mutable=False),
    _d("syslog-ident", "string", "redis", mutable=False),
    _d("databases", "int", 16, minimum=1, maximum=_INT_MAX, mutable=False),
    _d("always-show-logo", "bool", False, mutable=False),
    _d("set-proc-title", "bool", True, mutable=False),
    _d("proc-title-template", "string", "{title} {listen-addr} {server-mode}"),
    _d("hz", "int", 10, minimum=0, maximum=_INT_MAX),
    _d("dynamic-hz", "bool", True),
    _d("active-expire-effort", "int", 1, minimum=1, maximum=10),
    _d("enable-debug-command", "enum", "no", choices=("no", "yes", "local"), mutable=False),
    _d("enable-protected-configs", "enum", "no", choices=("no", "yes", "local"), mutable=False),
    _d("enable-module-command", "enum", "no", choices=("no", "yes", "local"), mutable=False),
    _d("io-threads", "int", 1, minimum=1, maximum=128, mutable=False),
    _d("io-threads-do-reads", "bool", False, mutable=False),
    _d("proto-max-bulk-len", "memory", 512 * 1024 * 1024, minimum=1024 * 1024, maximum=_LLONG_MAX),
    _d("client-query-buffer-limit", "memory", 1024 * 1024 * 1024, minimum=1024 * 1024, maximum=_LLONG_MAX),
    _d("client-output-buffer-limit", "special", dict(_DEFAULT_COBL),
       parse=_parse_client_output_buffer_limit, render=_render_cobl),
    _d("crash-log-enabled", "bool", True),
    _d("crash-memcheck-enabled", "bool", True),
    _d("latency-tracking", "bool", True),
    _d("latency-tracking-info-percentiles", "special", [50.0, 99.0, 99.9],
       parse=lambda a: [float(x) for x in _parse_words(a)],
       render=lambda v: " ".join("%g" % x for x in v)),
    _d("latency-monitor-threshold", "int", 0, minimum=0, maximum=_LLONG_MAX),
    _d("slowlog-log-slower-than", "int", 10000, minimum=-1, maximum=_LLONG_MAX),
    _d("slowlog-max-len", "int", 128, minimum=0, maximum=_LLONG_MAX),
    _d("notify-keyspace-events", "special", "", parse=_parse_notify),
    _d("lua-time-limit", "int", 5000, minimum=0, maximum=_LLONG_MAX, aliases=("busy-reply-threshold",)),
    _d("shutdown-timeout", "int", 10, minimum=0, maximum=_INT_MAX),
    _d("shutdown-on-sigint", "special", "default", parse=lambda a: " ".join(a)),
    _d("shutdown-on-sigterm", "special", "default", parse=lambda a: " ".join(a)),
    _d("activerehashing", "bool", True),
    _d("activedefrag", "bool", False),
    _d("jemalloc-bg-thread", "bool", True),
    _d("lazyfree-lazy-eviction", "bool", False),
    _d("lazyfree-lazy-expire", "bool", False),
    _d("lazyfree-lazy-server-del", "bool", False),
    _d("lazyfree-lazy-user-del", "bool", False),
    _d("lazyfree-lazy-user-flush", "bool", False),
    _d("replica-lazy-flush", "bool", False, aliases=("slave-lazy-flush",)),
    _d("oom-score-adj", "enum", "no", choices=("no", "yes", "relative", "absolute")),
    _d("oom-score-adj-values", "special", "0 200 800", parse=lambda a: " ".join(_parse_words(a))),
    _d("disable-thp", "bool", True, mutable=False),
    # security
    _d("requirepass", "string", "", sensitive=True),
    _d("masteruser", "string", ""),
    _d("masterauth", "string", "", sensitive=True),
    _d("aclfile", "string", "", mutable=False),
    _d("acllog-max-len", "int", 128, minimum=0, maximum=_LLONG_MAX),
    _d("acl-pubsub-default", "enum", "resetchannels", choices=("allchannels", "resetchannels")),
    # memory
    _d("maxmemory", "memory", 0, minimum=0, maximum=_LLONG_MAX),
    _d("maxmemory-policy", "enum", "noeviction", choices=_POLICIES),
    _d("maxmemory-samples", "int", 5, minimum=1, maximum=64),
    _d("maxmemory-eviction-tenacity", "int", 10, minimum=0, maximum=100),
    _d("maxmemory-clients", "memory", 0, minimum=0, maximum=_LLONG_MAX),
    _d("lfu-log-factor", "int", 10, minimum=0, maximum=_INT_MAX),
    _d("lfu-decay-time", "int", 1, minimum=0, maximum=_INT_MAX),
    # persistence
    _d("save", "special", [(3600, 1), (300, 100), (60, 10000)], parse=_parse_save, render=_render_save),
    _d("stop-writes-on-bgsave-error", "bool", True),
    _d("rdbcompression", "bool", True),
    _d("rdbchecksum", "bool", True),
    _d("sanitize-dump-payload", "enum", "no", choices=("no", "yes", "clients")),
    _d("dbfilename", "string", "dump.rdb", protected=True),
    _d("rdb-del-sync-files", "bool", False),
    _d("rdb-key-save-delay", "int", 0, minimum=-_INT_MAX, maximum=_INT_MAX),
    _d("dir", "string", "./", protected=True),
    _d("appendonly", "bool", False),
    _d("appendfilename", "string", "appendonly.aof", mutable=False),
    _d("appenddirname", "string", "appendonlydir", mutable=False),
    _d("appendfsync", "enum", "everysec", choices=("always", "everysec", "no")),
    _d("no-appendfsync-on-rewrite", "bool", False),
    _d("auto-aof-rewrite-percentage", "int", 100, minimum=0, maximum=_INT_MAX),
    _d("auto-aof-rewrite-min-size", "memory", 64 * 1024 * 1024, minimum=0, maximum=_LLONG_MAX),
    _d("aof-load-truncated", "bool", True),
    _d("aof-use-rdb-preamble", "bool", True),
    _d("aof-timestamp-enabled", "bool", False),
    _d("aof-rewrite-incremental-fsync", "bool", True),
    _d("rdb-save-incremental-fsync", "bool", True),
    # replication
    _d("replicaof", "special", None, parse=_parse_replicaof, render=_render_replicaof,
       aliases=("slaveof",), mutable=False),
    _d("replica-serve-stale-data", "bool", True, aliases=("slave-serve-stale-data",)),
    _d("replica-read-only", "bool", True, aliases=("slave-read-only",)),
    _d("repl-diskless-sync", "bool", True),
    _d("repl-diskless-sync-delay", "int", 5, minimum=0, maximum=_INT_MAX),
    _d("repl-diskless-sync-max-replicas", "int", 0, minimum=0, maximum=_INT_MAX),
    _d("repl-diskless-load", "enum", "disabled", choices=("disabled", "on-empty-db", "swapdb")),
    _d("repl-ping-replica-period", "int", 10, minimum=1, maximum=_INT_MAX, aliases=("repl-ping-slave-period",)),
    _d("repl-timeout", "int", 60, minimum=1, maximum=_INT_MAX),
    _d("repl-disable-tcp-nodelay", "bool", False),
    _d("repl-backlog-size", "memory", 1024 * 1024, minimum=1, maximum=_LLONG_MAX),
    _d("repl-backlog-ttl", "int", 3600, minimum=0, maximum=_INT_MAX),
    _d("replica-priority", "int", 100, minimum=0, maximum=_INT_MAX, aliases=("slave-priority",)),
    _d("replica-announced", "bool", True),
    _d("replica-announce-ip", "string", "", aliases=("slave-announce-ip",)),
    _d("replica-announce-port", "int", 0, minimum=0, maximum=65535, aliases=("slave-announce-port",)),
    _d("min-replicas-to-write", "int", 0, minimum=0, maximum=_INT_MAX, aliases=("min-slaves-to-write",)),
    _d("min-replicas-max-lag", "int", 10, minimum=0, maximum=_INT_MAX, aliases=("min-slaves-max-lag",)),
    _d("replica-ignore-maxmemory", "bool", True, aliases=("slave-ignore-maxmemory",)),
    # cluster
    _d("cluster-enabled", "bool", False, mutable=False),
    _d("cluster-config-file", "string", "nodes.conf", mutable=False),
    _d("cluster-node-timeout", "int", 15000, minimum=0, maximum=_LLONG_MAX),
    _d("cluster-port", "int", 0, minimum=0, maximum=65535, mutable=False),
    _d("cluster-replica-validity-factor", "int", 10, minimum=0, maximum=_INT_MAX,
       aliases=("cluster-slave-validity-factor",)),
    _d("cluster-migration-barrier", "int", 1, minimum=0, maximum=_INT_MAX),
    _d("cluster-allow-replica-migration", "bool", True),
    _d("cluster-replica-no-failover", "bool", False, aliases=("cluster-slave-no-failover",)),
    _d("cluster-require-full-coverage", "bool", True),
    _d("cluster-allow-reads-when-down", "bool", False),
    _d("cluster-allow-pubsubshard-when-down", "bool", True),
    _d("cluster-link-sendbuf-limit", "memory", 0, minimum=0, maximum=_LLONG_MAX),
    _d("cluster-announce-ip", "string", ""),
    _d("cluster-announce-port", "int", 0, minimum=0, maximum=65535),
    _d("cluster-announce-tls-port", "int", 0, minimum=0, maximum=65535),
    _d("cluster-announce-bus-port", "int", 0, minimum=0, maximum=65535),
    _d("cluster-announce-hostname", "string", ""),
    _d("cluster-preferred-endpoint-type", "enum", "ip", choices=("ip", "hostname", "unknown-endpoint")),
    # encodings (reported by OBJECT ENCODING in S2)
    _d("hash-max-listpack-entries", "int", 128, minimum=0, maximum=_LLONG_MAX, aliases=("hash-max-ziplist-entries",)),
    _d("hash-max-listpack-value", "int", 64, minimum=0, maximum=_LLONG_MAX, aliases=("hash-max-ziplist-value",)),
    _d("list-max-listpack-size", "int", -2, minimum=-5, maximum=_INT_MAX, aliases=("list-max-ziplist-size",)),
    _d("list-compress-depth", "int", 0, minimum=0, maximum=_INT_MAX),
    _d("set-max-intset-entries", "int", 512, minimum=0, maximum=_LLONG_MAX),
    _d("zset-max-listpack-entries", "int", 128, minimum=0, maximum=_LLONG_MAX, aliases=("zset-max-ziplist-entries",)),
    _d("zset-max-listpack-value", "int", 64, minimum=0, maximum=_LLONG_MAX, aliases=("zset-max-ziplist-value",)),
    _d("hll-sparse-max-bytes", "memory", 3000, minimum=0, maximum=_LLONG_MAX),
    _d("stream-node-max-bytes", "memory", 4096, minimum=0, maximum=_LLONG_MAX),
    _d("stream-node-max-entries", "int", 100, minimum=0, maximum=_LLONG_MAX),
    # tls (S8)
    _d("tls-port", "int", 0, minimum=0, maximum=65535, mutable=False),
    _d("tls-cert-file", "string", ""),
    _d("tls-key-file", "string", ""),
    _d("tls-ca-cert-file", "string", ""),
    _d("tls-auth-clients", "enum", "yes", choices=("yes", "no", "optional")),
    _d("tls-replication", "bool", False),
    _d("tls-cluster", "bool", False),
]

DIRECTIVES: dict[str, Directive] = {}
for _directive in _ALL:
    DIRECTIVES[_directive.name] = _directive
    for _alias in _directive.aliases:
        DIRECTIVES[_alias] = _directive


# ------------------------------------------------------------------- parsing


def parse_argv(argv: list[str]) -> tuple[str | None, str]:
    """Split redis-server style arguments into (config file path, extra config text).

    ``shoal-server [/path/to.conf] [--name value ...]``: each ``--name`` starts
    a new config line whose arguments are the following words, as Redis does.
    """
    path = None
    args = list(argv)
    if args and not args[0].startswith("--"):
        path = args.pop(0)
    lines: list[str] = []
    current: list[str] = []
    for arg in args:
        if arg.startswith("--") and len(arg) > 2:
            if current:
                lines.append(" ".join(current))
            current = [arg[2:]]
        else:
            if not current:
                raise ConfigError(f"Invalid option {arg!r}: options must start with --")
            current.append(_quote(arg))
    if current:
        lines.append(" ".join(current))
    return path, "\n".join(lines)


def _quote(arg: str) -> str:
    if arg == "" or any(c in arg for c in " \t\"'\\"):
        return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return arg


def split_config_line(line: str) -> list[str] | None:
    """Tokenise one config line like sdssplitargs; None for unbalanced quotes."""
    try:
        lexer = shlex.shlex(line, posix=True)
        lexer.whitespace_split = True
        lexer.commenters = ""
        return list(lexer)
    except ValueError:
        return None


class Config:
    """The live configuration of one node."""

    def __init__(self) -> None:
        self.values: dict[str, object] = {d.name: _copy(d.default) for d in _ALL}
        self.config_file: str | None = None
        self._setters: dict[str, list[Callable[[object], None]]] = {}

    def __getitem__(self, name: str):
        return self.values[name]

    def load_text(self, text: str, source: str = "") -> None:
        for line_no, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            words = split_config_line(line)
            if words is None:
                raise ConfigError("Unbalanced quotes in configuration line", line_no, raw)
            if not words:
                continue
            name = words[0].lower()
            try:
                if name == "include":
                    if len(words) != 2:
                        raise ConfigError("Bad directive or wrong number of arguments")
                    for path in sorted(_glob.glob(words[1])):
                        self.load_file(path)
                    continue
                self.apply(name, words[1:], startup=True)
            except ConfigError as exc:
                raise ConfigError(exc.message, line_no, raw) from None

    def load_file(self, path: str) -> None:
        with open(path, encoding="utf-8", errors="surrogateescape") as fh:
            self.load_text(fh.read(), path)

    def apply(self, name: str, args: list[str], *, startup: bool = False) -> None:
        directive = DIRECTIVES.get(name)
        if directive is None:
            raise ConfigError("Bad directive or wrong number of arguments")
        if not startup:
            if not directive.mutable:
                raise ConfigError("can't set immutable config")
            if directive.protected and self.values["enable-protected-configs"] != "yes":
                raise ConfigError("can't set protected config")
        value = directive.parse_args(args)
        self.values[directive.name] = value
        if not startup:
            for hook in self._setters.get(directive.name, ()):
                hook(value)

    def on_change(self, name: str, hook: Callable[[object], None]) -> None:
        """Run ``hook(new_value)`` after CONFIG SET changes ``name``."""
        self._setters.setdefault(name, []).append(hook)

    def get_text(self, name: str) -> str:
        directive = DIRECTIVES[name]
        return directive.format(self.values[directive.name])

    def names(self) -> list[str]:
        """Every directive name, aliases included, as CONFIG GET matches them."""
        return list(DIRECTIVES)

    def rewrite(self, path: str) -> None:
        """Write the current config back to ``path`` (CONFIG REWRITE).

        Lines for directives the user wrote are updated in place; directives
        changed from their default and not in the file are appended. The file
        is replaced atomically.
        """
        try:
            with open(path, encoding="utf-8", errors="surrogateescape") as fh:
                lines = fh.read().splitlines()
        except FileNotFoundError:
            lines = []
        seen: set[str] = set()
        out: list[str] = []
        for raw in lines:
            words = split_config_line(raw.strip()) if raw.strip() and not raw.strip().startswith("#") else None
            if words:
                directive = DIRECTIVES.get(words[0].lower())
                if directive is not None:
                    if directive.name in seen:
                        continue
                    seen.add(directive.name)
                    out.append(self._line(directive))
                    continue
            out.append(raw)
        for directive in _ALL:
            if directive.name in seen:
                continue
            if self.values[directive.name] != directive.default:
                out.append(self._line(directive))
        tmp = f"{path}.tmp-{os.getpid()}"
        with open(tmp, "w", encoding="utf-8", errors="surrogateescape") as fh:
            fh.write("\n".join(out) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    def _line(self, directive: Directive) -> str:
        text = directive.format(self.values[directive.name])
        if directive.kind in ("string",) or text == "":
            text = _quote(text) if text else '""'
        return f"{directive.name} {text}"


def _copy(value):
    if isinstance(value, (list, dict)):
        return type(value)(value)
    return value
