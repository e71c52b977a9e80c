"""redis.conf directives: the registry of what exists, parsing, and the live values.

One parser serves the config file, the ``--directive value`` command line
(turned into config lines exactly as redis-server does) and CONFIG SET. The
registry below is the single list of directives, Redis 7.0's list: each has a
type that knows how to parse and print its value, a default, and whether it
can change at run time. Types, ranges, defaults and error texts are those of
Redis 7.0's ``config.c`` (checked against a real redis-server), so that
``CONFIG GET`` prints the same text and a bad value fails with the same words.
Directives that Redis knows and Shoal does not act on yet are accepted and
reported, so real redis.conf files load unchanged.
"""

from __future__ import annotations

import glob as _glob
import os
import shlex
from dataclasses import dataclass, field
from typing import Callable

from node.resp.parser import string2ll

__all__ = [
    "Config", "ConfigError", "DIRECTIVES", "Directive", "parse_argv", "parse_memory", "config_repr",
]

_INT_MIN = -(2**31)
_INT_MAX = 2**31 - 1
_UINT_MAX = 2**32 - 1
_LLONG_MIN = -(2**63)
_LLONG_MAX = 2**63 - 1
_ULLONG_MAX = 2**64 - 1


class ConfigError(Exception):
    """A bad directive. ``line_no``/``line`` say where, when read from a file."""

    def __init__(self, message: str, line_no: int | None = None, line: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line_no = line_no
        self.line = line


# --------------------------------------------------------------- value types

_MEMORY_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1024, "m": 1000**2, "mb": 1024**2, "g": 1000**3, "gb": 1024**3}


def parse_memory(text: str) -> int | None:
    """Redis's ``memtoull``: ``1gb`` -> 1073741824, ``1g`` -> 10**9; None if bad.

    Like the C code: leading digits then a unit (any case); no sign, no
    spaces; an empty number counts as 0 (``gb`` is 0), a too-large number
    saturates at ULLONG_MAX (strtoull) and the multiplication wraps modulo
    2**64 (unsigned arithmetic).
    """
    i = 0
    while i < len(text) and "0" <= text[i] <= "9":
        i += 1
    number, unit = text[:i], text[i:].lower()
    mul = _MEMORY_UNITS.get(unit)
    if mul is None:
        return None
    value = min(int(number), _ULLONG_MAX) if number else 0
    return (value * mul) & _ULLONG_MAX


@dataclass
class Directive:
    name: str
    kind: str  # bool | int | memory | enum | string | special
    default: object
    mutable: bool = True
    minimum: int | None = None
    maximum: int | None = None
    choices: tuple[str, ...] = ()
    protected: bool = False  # CONFIG SET needs enable-protected-configs
    aliases: tuple[str, ...] = ()
    sensitive: bool = False
    hidden: bool = False  # CONFIG GET only by exact name, as Redis's HIDDEN_CONFIG
    multi_arg: bool = False  # takes several words (CONFIG SET splits its value on spaces)
    unsigned: bool = False  # memory value kept as an unsigned 64-bit number
    percent: bool = False  # memory value that also accepts ``N%`` (stored as -N)
    #: applied to a CONFIG SET value only (after parsing), for values Redis's apply step rewrites
    set_adjust: Callable[[object], object] | None = field(default=None, repr=False)
    #: enum names that are spellings of another (oom-score-adj relative == yes)
    synonyms: dict = field(default_factory=dict)
    parse: Callable[..., object] | None = field(default=None, repr=False)
    render: Callable[[object], str] | None = field(default=None, repr=False)
    adjust: Callable[[object], object] | None = field(default=None, repr=False)

    def parse_args(self, args: list[str], current: object = None) -> object:
        if self.parse is not None:
            value = self.parse(args, current)
        else:
            if len(args) != 1:
                raise ConfigError("wrong number of arguments")
            value = self._parse_one(args[0])
        return self.adjust(value) if self.adjust is not None else value

    def _parse_one(self, arg: str) -> object:
        if self.kind == "bool":
            low = arg.lower()
            if low not in ("yes", "no"):
                raise ConfigError("argument must be 'yes' or 'no'")
            return low == "yes"
        if self.kind in ("int", "memory"):
            if self.kind == "memory":
                value = parse_memory(arg)
                if value is None and self.percent and arg.endswith("%"):
                    pct = string2ll(arg[:-1].encode("utf-8", "surrogateescape"))
                    if pct is not None and pct >= 0:
                        if pct > 100:
                            raise ConfigError("percentage argument must be less or equal to 100")
                        return -pct
                if value is None:
                    raise ConfigError(
                        "argument must be a memory or percent value" if self.percent
                        else "argument must be a memory value")
                if not self.unsigned and value > _LLONG_MAX:
                    value -= 2**64  # stored in a signed long long, as Redis does
            else:
                value = string2ll(arg.encode("utf-8", "surrogateescape"))
                if value is None:
                    raise ConfigError("argument couldn't be parsed into an integer")
            lo = self.minimum if self.minimum is not None else _LLONG_MIN
            hi = self.maximum if self.maximum is not None else _LLONG_MAX
            if not lo <= value <= hi:
                raise ConfigError(f"argument must be between {lo} and {hi} inclusive")
            return value
        if self.kind == "enum":
            low = arg.lower()
            if low not in self.choices:
                raise ConfigError("argument(s) must be one of the following: " + ", ".join(self.choices))
            return self.synonyms.get(low, low)
        return arg

    def format(self, value: object) -> str:
        if self.render is not None:
            return self.render(value)
        if self.kind == "bool":
            return "yes" if value else "no"
        if self.percent and isinstance(value, int) and value < 0:
            return f"{-value}%"
        return str(value)


def _parse_save(args: list[str], current) -> list[tuple[int, int]]:
    if len(args) == 1 and args[0] == "":
        return []
    if len(args) % 2:
        raise ConfigError("Invalid save parameters")
    points = []
    for seconds, changes in zip(args[::2], args[1::2]):
        s, c = _strtoll(seconds), _strtoll(changes)
        if s is None or c is None or s < 1 or c < 0:
            raise ConfigError("Invalid save parameters")
        points.append((s, c))
    return points


def _strtoll(text: str) -> int | None:
    """C's strtoll with the whole string required: leading spaces and a sign are fine."""
    t = text.lstrip(" \t\n\r\f\v")
    body = t[1:] if t[:1] in ("+", "-") else t
    if not body or not body.isdigit() or not body.isascii():
        return None
    return max(_LLONG_MIN, min(_LLONG_MAX, int(t)))


def _render_save(points) -> str:
    return " ".join(f"{s} {c}" for s, c in points)


_DEFAULT_COBL = {"normal": (0, 0, 0), "replica": (268435456, 67108864, 60), "pubsub": (33554432, 8388608, 60)}


def _parse_client_output_buffer_limit(args: list[str], current) -> dict:
    if args == [""]:  # CONFIG SET client-output-buffer-limit "": no class given, nothing changes (as Redis)
        return dict(current if isinstance(current, dict) else _DEFAULT_COBL)
    if len(args) % 4 or not args:
        raise ConfigError("Wrong number of arguments in buffer limit configuration.")
    limits = dict(current if isinstance(current, dict) else _DEFAULT_COBL)
    for i in range(0, len(args), 4):
        cls = args[i].lower()
        if cls == "slave":
            cls = "replica"
        if cls not in ("normal", "replica", "pubsub"):
            raise ConfigError("Invalid client class specified in buffer limit configuration.")
        hard, soft = parse_memory(args[i + 1]), parse_memory(args[i + 2])
        seconds = _strtoll(args[i + 3])
        if hard is None or soft is None or seconds is None or seconds < 0:
            raise ConfigError("Error in hard, soft or soft_seconds setting in buffer limit configuration.")
        limits[cls] = (hard, soft, seconds)
    return limits


def _render_cobl(limits) -> str:
    names = {"normal": "normal", "replica": "slave", "pubsub": "pubsub"}
    return " ".join(f"{names[cls]} {h} {s} {sec}" for cls, (h, s, sec) in limits.items())


def _parse_replicaof(args: list[str], current):
    if len(args) != 2:
        raise ConfigError("wrong number of arguments")
    if args[0].lower() == "no" and args[1].lower() == "one":
        return None
    port = _strtoll(args[1])
    if port is None or not 0 <= port <= 65535:
        raise ConfigError("Invalid master port")
    return (args[0], port)


def _render_replicaof(value) -> str:
    return "" if value is None else f"{value[0]} {value[1]}"


# notify-keyspace-events: Redis keeps a bit set and prints it back in a fixed order.
_EVENT_CLASSES = "g$lshzxetd"  # what 'A' stands for, in printing order
_EVENT_ORDER = "g$lshzxetdn"


def _parse_notify(args: list[str], current) -> str:
    if len(args) != 1:
        raise ConfigError("wrong number of arguments")
    flags: set[str] = set()
    for c in args[0]:
        if c == "A":
            flags.update(_EVENT_CLASSES)
        elif c in _EVENT_ORDER or c in "KEm":
            flags.add(c)
        else:
            raise ConfigError("Invalid event class character. Use 'Ag$lshzxeKEtmdn'.")
    if flags.issuperset(_EVENT_CLASSES):
        text = "A" + ("n" if "n" in flags else "")
    else:
        text = "".join(c for c in _EVENT_ORDER if c in flags)
    return text + "".join(c for c in "KEm" if c in flags)


def _parse_oom_values(args: list[str], current) -> str:
    if len(args) != 3:
        raise ConfigError("wrong number of arguments")
    values = []
    for arg in args:
        v = _strtoll(arg)
        if v is None or not -2000 <= v <= 2000:
            raise ConfigError("Invalid oom-score-adj-values, elements must be between -2000 and 2000.")
        values.append(v)
    return " ".join(map(str, values))


def _parse_percentiles(args: list[str], current) -> list[float]:
    if len(args) == 1 and args[0] == "":
        return []
    values = []
    for arg in args:
        try:
            v = float(arg)
        except ValueError:
            raise ConfigError("Invalid latency-tracking-info-percentiles parameters") from None
        if not 0.0 <= v <= 100.0:
            raise ConfigError("latency-tracking-info-percentiles parameters should sit between [0.0,100.0]")
        values.append(v)
    return values


def _render_percentile(v: float) -> str:
    text = f"{v:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


_SHUTDOWN_FLAGS = ("default", "save", "nosave", "now", "force")


def _parse_shutdown_flags(args: list[str], current) -> str:
    flags = set()
    for arg in args:
        low = arg.lower()
        if low not in _SHUTDOWN_FLAGS:
            raise ConfigError("argument(s) must be one of the following: " + ", ".join(_SHUTDOWN_FLAGS))
        flags.add(low)
    if "save" in flags and "nosave" in flags:
        raise ConfigError("shutdown options SAVE and NOSAVE can't be used simultaneously")
    flags.discard("default")
    return " ".join(f for f in _SHUTDOWN_FLAGS if f in flags) or "default"


def _parse_bind(args: list[str], current) -> list[str]:
    if len(args) == 1 and args[0] == "":
        return []
    if len(args) > 16:
        raise ConfigError("Too many bind addresses specified.")
    return list(args)


def _parse_dbfilename(args: list[str], current) -> str:
    if len(args) != 1:
        raise ConfigError("wrong number of arguments")
    if "/" in args[0]:
        raise ConfigError("dbfilename can't be a path, just a filename")
    return args[0]


_TITLE_VARS = {"title", "listen-addr", "server-mode", "port", "tls-port", "unixsocket", "config-file"}


def _parse_title(args: list[str], current) -> str:
    """proc-title-template, checked as Redis's sdstemplate + validateProcTitleTemplate.

    ``{name}`` must be a known variable, ``{{`` is a literal brace, a lone
    ``}`` is literal; the template expanded with an empty title must not be
    blank (variables that can expand to nothing count as empty).
    """
    if len(args) != 1:
        raise ConfigError("wrong number of arguments")
    text, i, ok = args[0], 0, True
    expanded = []
    while i < len(text):
        if text[i] != "{":
            expanded.append(text[i])
            i += 1
            continue
        if i + 1 >= len(text):
            ok = False
            break
        if text[i + 1] == "{":
            expanded.append("{")
            i += 2
            continue
        end = text.find("}", i + 1)
        if end == -1 or text[i + 1:end] not in _TITLE_VARS:
            ok = False
            break
        if text[i + 1:end] in ("listen-addr", "port", "tls-port"):  # never empty; the others may be
            expanded.append("x")
        i = end + 1
    if not ok or not "".join(expanded).strip(" "):
        raise ConfigError("template format is invalid or contains unknown variables")
    return text


def _no_active_defrag(value: bool) -> bool:
    """activedefrag: Shoal has no jemalloc to defragment, so it refuses ``yes`` as Debian's redis-server does."""
    if value:
        raise ConfigError(
            "Active defragmentation cannot be enabled: it requires a Redis server compiled with a modified "
            "Jemalloc like the one shipped by default with the Redis source distribution")
    return value


def _valid_hostname(value: str) -> str:
    """cluster-announce-hostname: Redis's isValidAnnouncedHostname (ASCII letters, digits, '-', '.')."""
    if len(value.encode("utf-8", "surrogateescape")) >= 256:
        raise ConfigError("Hostnames must be less than 256 characters")
    if any(not (c.isascii() and (c.isalnum() or c in "-.")) for c in value):
        raise ConfigError("Hostnames may only contain alphanumeric characters, hyphens or dots")
    return value


_RESERVED_FDS = 32  # CONFIG_MIN_RESERVED_FDS: descriptors kept for listeners, logs, persistence


def open_files_for(maxclients: int) -> tuple[int, str | None]:
    """Raise RLIMIT_NOFILE for ``maxclients`` as Redis's adjustOpenFilesLimit: (clients it allows, OS error).

    Redis tries ``maxclients + 32`` and then 16 less at a time until setrlimit
    succeeds or the current soft limit is reached (soft and hard limit both
    set to the value found). The steps that cannot succeed (over the hard
    limit, or over fs.nr_open for root) are skipped here instead of tried one
    by one -- Redis spends minutes on them for a huge maxclients.
    """
    import resource

    needed = (maxclients + _RESERVED_FDS) & _UINT_MAX  # an unsigned int sum in Redis: wraps for huge values
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (OSError, ValueError):
        return maxclients, None
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return maxclients, None
    cap = hard
    if os.geteuid() == 0:
        try:
            with open("/proc/sys/fs/nr_open", "rb") as fh:
                cap = int(fh.read())
        except (OSError, ValueError):
            cap = resource.RLIM_INFINITY
    best = needed
    if cap != resource.RLIM_INFINITY and best > cap:
        best -= -(-(best - cap) // 16) * 16
    error = "Operation not permitted"
    while best > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (best, best))
            break
        except (OSError, ValueError) as exc:
            error = getattr(exc, "strerror", None) or error
            best -= 16
    best = max(best, soft)
    if best < needed:
        return best - _RESERVED_FDS, error
    return maxclients, None


def _fit_open_files(maxclients: int) -> None:
    """CONFIG SET maxclients: refuse, as Redis, a value the descriptor limit cannot serve."""
    allowed, _ = open_files_for(maxclients)
    if allowed < maxclients:
        raise ConfigError(
            f"The operating system is not able to handle the specified number of clients, try with {allowed}")


def _clamp_hz(value: int) -> int:
    """Redis clamps hz into [CONFIG_MIN_HZ, CONFIG_MAX_HZ] = [1, 500] and reports the result."""
    return max(1, min(500, value))


def _d(name, kind, default, **kw) -> Directive:
    return Directive(name, kind, default, **kw)


def _int(name, default, lo, hi, **kw) -> Directive:
    return Directive(name, "int", default, minimum=lo, maximum=hi, **kw)


def _mem(name, default, lo=0, hi=_LLONG_MAX, **kw) -> Directive:
    return Directive(name, "memory", default, minimum=lo, maximum=hi, **kw)


def _special(name, default, parse, render=None, **kw) -> Directive:
    return Directive(name, "special", default, parse=parse, render=render, multi_arg=True, **kw)


def _one(fn):
    """A single-argument special parser."""
    def parse(args, current):
        if len(args) != 1:
            raise ConfigError("wrong number of arguments")
        return fn(args[0])
    return parse


_LOGLEVELS = ("debug", "verbose", "notice", "warning")
_POLICIES = (
    "volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl",
    "allkeys-lru", "allkeys-lfu", "allkeys-random", "noeviction",
)
_PROTECTED_ENUM = ("no", "yes", "local")
_FACILITIES = ("user", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7")

_ALL = [
    # network
    _int("port", 6379, 0, 65535),  # CONFIG SET listens anew (node/main.py _listen_hook)
    _special("bind", ["*", "-::*"], _parse_bind, lambda v: " ".join(v)),
    _d("bind-source-addr", "string", ""),
    _d("unixsocket", "string", "", mutable=False),
    _int("unixsocketperm", 0, 0, 0o777, mutable=False),
    _int("socket-mark-id", 0, 0, _UINT_MAX, mutable=False),
    _d("protected-mode", "bool", True),
    _int("tcp-backlog", 511, 0, _INT_MAX, mutable=False),
    _int("timeout", 0, 0, _INT_MAX),
    _int("tcp-keepalive", 300, 0, _INT_MAX),
    _int("maxclients", 10000, 1, _UINT_MAX),
    # general
    _d("daemonize", "bool", False, mutable=False),
    _d("supervised", "enum", "no", choices=("upstart", "systemd", "auto", "no"), mutable=False),
    _d("pidfile", "string", "", mutable=False),
    _d("loglevel", "enum", "notice", choices=_LOGLEVELS),
    _d("logfile", "string", "", mutable=False),
    _d("syslog-enabled", "bool", False, mutable=False),
    _d("syslog-ident", "string", "redis", mutable=False),
    _d("syslog-facility", "enum", "local0", choices=_FACILITIES, mutable=False),
    _int("databases", 16, 1, _INT_MAX, mutable=False),
    _d("always-show-logo", "bool", False, mutable=False),
    _d("set-proc-title", "bool", True, mutable=False),
    _d("proc-title-template", "special", "{title} {listen-addr} {server-mode}", parse=_parse_title),
    _int("hz", 10, 0, _INT_MAX, adjust=_clamp_hz),
    _d("dynamic-hz", "bool", True),
    _int("active-expire-effort", 1, 1, 10),
    _d("enable-debug-command", "enum", "no", choices=_PROTECTED_ENUM, mutable=False),
    _d("enable-protected-configs", "enum", "no", choices=_PROTECTED_ENUM, mutable=False),
    _d("enable-module-command", "enum", "no", choices=_PROTECTED_ENUM, mutable=False),
    _int("io-threads", 1, 1, 128, mutable=False),
    _d("io-threads-do-reads", "bool", False, mutable=False),
    _d("server_cpulist", "string", "", mutable=False),
    _d("bio_cpulist", "string", "", mutable=False),
    _d("aof_rewrite_cpulist", "string", "", mutable=False),
    _d("bgsave_cpulist", "string", "", mutable=False),
    _d("ignore-warnings", "string", ""),
    _mem("proto-max-bulk-len", 512 * 1024 * 1024, 1024 * 1024),
    _mem("client-query-buffer-limit", 1024 * 1024 * 1024, 1024 * 1024),
    _special("client-output-buffer-limit", dict(_DEFAULT_COBL), _parse_client_output_buffer_limit, _render_cobl),
    _d("crash-log-enabled", "bool", True),
    _d("crash-memcheck-enabled", "bool", True),
    _d("latency-tracking", "bool", True),
    _special("latency-tracking-info-percentiles", [50.0, 99.0, 99.9], _parse_percentiles,
             lambda v: " ".join(_render_percentile(x) for x in v)),
    _int("latency-monitor-threshold", 0, 0, _LLONG_MAX),
    _int("slowlog-log-slower-than", 10000, -1, _LLONG_MAX),
    _int("slowlog-max-len", 128, 0, _LLONG_MAX),
    # Redis prints 'n' only when not every class is on ("A" hides it), but keeps the flag.
    _d("notify-keyspace-events", "special", "", parse=_parse_notify,
       render=lambda v: v.replace("An", "A", 1) if v.startswith("An") else v),
    _int("busy-reply-threshold", 5000, 0, _LLONG_MAX, aliases=("lua-time-limit",)),
    _int("shutdown-timeout", 10, 0, _INT_MAX),
    _special("shutdown-on-sigint", "default", _parse_shutdown_flags),
    _special("shutdown-on-sigterm", "default", _parse_shutdown_flags),
    _d("activerehashing", "bool", True),
    _d("activedefrag", "bool", False, adjust=_no_active_defrag),
    _mem("active-defrag-ignore-bytes", 100 * 1024 * 1024, 1, _LLONG_MAX),
    _int("active-defrag-threshold-lower", 10, 0, 1000),
    _int("active-defrag-threshold-upper", 100, 0, 1000),
    _int("active-defrag-cycle-min", 1, 1, 99),
    _int("active-defrag-cycle-max", 25, 1, 99),
    _int("active-defrag-max-scan-fields", 1000, 1, _LLONG_MAX),
    _d("jemalloc-bg-thread", "bool", True),
    _d("lazyfree-lazy-eviction", "bool", False),
    _d("lazyfree-lazy-expire", "bool", False),
    _d("lazyfree-lazy-server-del", "bool", False),
    _d("lazyfree-lazy-user-del", "bool", False),
    _d("lazyfree-lazy-user-flush", "bool", False),
    _d("replica-lazy-flush", "bool", False, aliases=("slave-lazy-flush",)),
    _d("oom-score-adj", "enum", "no", choices=("no", "yes", "relative", "absolute"),
       synonyms={"relative": "yes"}),
    _special("oom-score-adj-values", "0 200 800", _parse_oom_values),
    _d("disable-thp", "bool", True, mutable=False),
    _int("tracking-table-max-keys", 1000000, 0, _LLONG_MAX),
    _d("propagation-error-behavior", "enum", "ignore", choices=("ignore", "panic", "panic-on-replicas")),
    # security
    _d("requirepass", "string", "", sensitive=True),
    _d("masteruser", "string", ""),
    _d("masterauth", "string", "", sensitive=True),
    _d("aclfile", "string", "", mutable=False),
    _int("acllog-max-len", 128, 0, _LLONG_MAX),
    _d("acl-pubsub-default", "enum", "resetchannels", choices=("allchannels", "resetchannels")),
    # memory
    _mem("maxmemory", 0, 0, _ULLONG_MAX, unsigned=True),
    _d("maxmemory-policy", "enum", "noeviction", choices=_POLICIES),
    _int("maxmemory-samples", 5, 1, _INT_MAX),
    _int("maxmemory-eviction-tenacity", 10, 0, 100),
    _mem("maxmemory-clients", 0, _LLONG_MIN, _LLONG_MAX, percent=True),
    _int("lfu-log-factor", 10, 0, _INT_MAX),
    _int("lfu-decay-time", 1, 0, _INT_MAX),
    # persistence
    _special("save", [(3600, 1), (300, 100), (60, 10000)], _parse_save, _render_save),
    _d("stop-writes-on-bgsave-error", "bool", True),
    _d("rdbcompression", "bool", True),
    _d("rdbchecksum", "bool", True, mutable=False),
    _d("sanitize-dump-payload", "enum", "no", choices=("no", "yes", "clients")),
    _d("dbfilename", "special", "dump.rdb", protected=True, parse=_parse_dbfilename),
    _d("rdb-del-sync-files", "bool", False),
    _int("rdb-key-save-delay", 0, _INT_MIN, _INT_MAX, hidden=True),
    _int("key-load-delay", 0, _INT_MIN, _INT_MAX, hidden=True),
    _int("loading-process-events-interval-bytes", 2 * 1024 * 1024, 1024, _INT_MAX, hidden=True),
    _d("dir", "string", "./", protected=True, render=lambda v: _cwd()),
    _d("appendonly", "bool", False),
    _d("appendfilename", "string", "appendonly.aof", mutable=False),
    _d("appenddirname", "string", "appendonlydir", mutable=False),
    _d("appendfsync", "enum", "everysec", choices=("everysec", "always", "no")),
    _d("no-appendfsync-on-rewrite", "bool", False),
    _int("auto-aof-rewrite-percentage", 100, 0, _INT_MAX),
    _mem("auto-aof-rewrite-min-size", 64 * 1024 * 1024, 0, _LLONG_MAX),
    _d("aof-load-truncated", "bool", True),
    _d("aof-use-rdb-preamble", "bool", True),
    _d("aof-timestamp-enabled", "bool", False),
    _d("aof-disable-auto-gc", "bool", False),
    _d("aof-rewrite-incremental-fsync", "bool", True),
    _d("rdb-save-incremental-fsync", "bool", True),
    # replication
    _special("replicaof", None, _parse_replicaof, _render_replicaof, aliases=("slaveof",), mutable=False),
    _d("replica-serve-stale-data", "bool", True, aliases=("slave-serve-stale-data",)),
    _d("replica-read-only", "bool", True, aliases=("slave-read-only",)),
    _d("replica-ignore-disk-write-errors", "bool", False),
    _d("repl-diskless-sync", "bool", True),
    _int("repl-diskless-sync-delay", 5, 0, _INT_MAX),
    _int("repl-diskless-sync-max-replicas", 0, 0, _INT_MAX),
    _d("repl-diskless-load", "enum", "disabled", choices=("disabled", "on-empty-db", "swapdb")),
    _int("repl-ping-replica-period", 10, 1, _INT_MAX, aliases=("repl-ping-slave-period",)),
    _int("repl-timeout", 60, 1, _INT_MAX),
    _d("repl-disable-tcp-nodelay", "bool", False),
    # CONFIG SET raises a value under 16 KB to 16 KB (Redis's resizeReplicationBacklog); a config file keeps it.
    _mem("repl-backlog-size", 1024 * 1024, 1, _LLONG_MAX, set_adjust=lambda v: max(v, 16384)),
    _int("repl-backlog-ttl", 3600, 0, _LLONG_MAX),
    _int("replica-priority", 100, 0, _INT_MAX, aliases=("slave-priority",)),
    _d("replica-announced", "bool", True),
    _d("replica-announce-ip", "string", "", aliases=("slave-announce-ip",)),
    _int("replica-announce-port", 0, 0, 65535, aliases=("slave-announce-port",)),
    _int("min-replicas-to-write", 0, 0, _INT_MAX, aliases=("min-slaves-to-write",)),
    _int("min-replicas-max-lag", 10, 0, _INT_MAX, aliases=("min-slaves-max-lag",)),
    _d("replica-ignore-maxmemory", "bool", True, aliases=("slave-ignore-maxmemory",)),
    # cluster
    _d("cluster-enabled", "bool", False, mutable=False),
    _d("cluster-config-file", "string", "nodes.conf", mutable=False),
    _int("cluster-node-timeout", 15000, 0, _LLONG_MAX),
    _int("cluster-port", 0, 0, 65535, mutable=False),
    _int("cluster-replica-validity-factor", 10, 0, _INT_MAX, aliases=("cluster-slave-validity-factor",)),
    _int("cluster-migration-barrier", 1, 0, _INT_MAX),
    _d("cluster-allow-replica-migration", "bool", True),
    _d("cluster-replica-no-failover", "bool", False, aliases=("cluster-slave-no-failover",)),
    _d("cluster-require-full-coverage", "bool", True),
    _d("cluster-allow-reads-when-down", "bool", False),
    _d("cluster-allow-pubsubshard-when-down", "bool", True),
    _mem("cluster-link-sendbuf-limit", 0, 0, _LLONG_MAX),
    _d("cluster-announce-ip", "string", ""),
    _int("cluster-announce-port", 0, 0, 65535),
    _int("cluster-announce-tls-port", 0, 0, 65535),
    _int("cluster-announce-bus-port", 0, 0, 65535),
    _d("cluster-announce-hostname", "string", "", adjust=_valid_hostname),
    _d("cluster-preferred-endpoint-type", "enum", "ip", choices=("ip", "hostname", "unknown-endpoint")),
    # Shoal-only failover options (cluster_spec.md 11); the defaults keep Redis's behaviour
    _d("cluster-failover-offset-check", "bool", False, hidden=True),
    _int("cluster-write-lease-ms", 0, 0, _LLONG_MAX, hidden=True),
    _d("cluster-fast-failover", "bool", False, hidden=True),
    # encodings (Redis's built-in defaults, not redis.conf's: hash entries are 512)
    _int("hash-max-listpack-entries", 512, 0, _LLONG_MAX, aliases=("hash-max-ziplist-entries",)),
    _mem("hash-max-listpack-value", 64, 0, _LLONG_MAX, aliases=("hash-max-ziplist-value",)),
    _int("list-max-listpack-size", -2, _INT_MIN, _INT_MAX, aliases=("list-max-ziplist-size",)),
    _int("list-compress-depth", 0, 0, _INT_MAX),
    _int("set-max-intset-entries", 512, 0, _LLONG_MAX),
    _int("zset-max-listpack-entries", 128, 0, _LLONG_MAX, aliases=("zset-max-ziplist-entries",)),
    _mem("zset-max-listpack-value", 64, 0, _LLONG_MAX, aliases=("zset-max-ziplist-value",)),
    _mem("hll-sparse-max-bytes", 3000, 0, _LLONG_MAX),
    _mem("stream-node-max-bytes", 4096, 0, _LLONG_MAX),
    _int("stream-node-max-entries", 100, 0, _LLONG_MAX),
    # tls (S8)
    _int("tls-port", 0, 0, 65535),
    _d("tls-cert-file", "string", ""),
    _d("tls-key-file", "string", ""),
    _d("tls-key-file-pass", "string", "", sensitive=True),
    _d("tls-client-cert-file", "string", ""),
    _d("tls-client-key-file", "string", ""),
    _d("tls-client-key-file-pass", "string", "", sensitive=True),
    _d("tls-dh-params-file", "string", ""),
    _d("tls-ca-cert-file", "string", ""),
    _d("tls-ca-cert-dir", "string", ""),
    _d("tls-protocols", "string", ""),
    _d("tls-ciphers", "string", ""),
    _d("tls-ciphersuites", "string", ""),
    _d("tls-prefer-server-ciphers", "bool", False),
    _d("tls-session-caching", "bool", True),
    _int("tls-session-cache-size", 20480, 0, _INT_MAX),
    _int("tls-session-cache-timeout", 300, 0, _INT_MAX),
    _d("tls-auth-clients", "enum", "yes", choices=("no", "yes", "optional")),
    _d("tls-replication", "bool", False),
    _d("tls-cluster", "bool", False),
    # Shoal-only (not Redis): the Prometheus endpoint's port, 0 = off. Hidden so
    # CONFIG GET * lists exactly Redis's directives; CONFIG GET metrics-port works.
    _int("metrics-port", 0, 0, 65535, mutable=False, hidden=True),
    # Shoal-only (not Redis): shared secret of the cluster bus. When set, every bus
    # link starts with an HMAC-SHA256 challenge/response proving both ends know it
    # (node.cluster.driver); a peer without it cannot MEET or gossip. "" = off (Redis's bus).
    # Hidden like metrics-port; sensitive: redacted in MONITOR/SLOWLOG. Applies to new links.
    _d("cluster-bus-secret", "string", "", sensitive=True, hidden=True),
]

# Directives Redis 7.0 still accepts in a config file and ignores.
_DEPRECATED = frozenset(("list-max-ziplist-entries", "list-max-ziplist-value", "lua-replicate-commands"))

DIRECTIVES: dict[str, Directive] = {}
for _directive in _ALL:
    DIRECTIVES[_directive.name] = _directive
    for _alias in _directive.aliases:
        DIRECTIVES[_alias] = _directive


def _cwd() -> str:
    """CONFIG GET dir prints the working directory, as Redis's getcwd()."""
    try:
        return os.getcwd()
    except OSError:
        return ""


# ------------------------------------------------------------------- parsing


def config_repr(arg: str) -> str:
    """An argument quoted the way Redis's ``sdscatrepr`` does it (``"..."`` with escapes)."""
    out = ['"']
    for ch in arg.encode("utf-8", "surrogateescape"):
        c = chr(ch)
        if c in '\\"':
            out.append("\\" + c)
        elif c == "\n":
            out.append("\\n")
        elif c == "\r":
            out.append("\\r")
        elif c == "\t":
            out.append("\\t")
        elif c == "\a":
            out.append("\\a")
        elif c == "\b":
            out.append("\\b")
        elif 32 <= ch < 127:
            out.append(c)
        else:
            out.append("\\x%02x" % ch)
    out.append('"')
    return "".join(out)


def parse_argv(argv: list[str]) -> tuple[str | None, str]:
    """Split redis-server style arguments into (config file path, extra config text).

    ``shoal-server [/path/to.conf] [--name value ...]``: each ``--name`` starts
    a new config line, and every following argument is appended quoted, as
    redis-server 7.0 does -- so an error message shows ``hz "abc"``. A bare
    ``--name`` takes the next argument as its value even if it starts with
    ``--`` (except ``--save``, which then means ``save ""``).
    """
    path = None
    args = list(argv)
    if args and not args[0].startswith("-"):
        path = args.pop(0)
    lines: list[str] = []
    current: str | None = None
    expecting_value = False
    for i, arg in enumerate(args):
        if not expecting_value and arg.startswith("--") and len(arg) > 2:
            if current is not None:
                lines.append(current)
            current = arg[2:] + " "
            words = split_config_line(arg[2:])
            expecting_value = words is not None and len(words) == 1
            if expecting_value and arg.lower() == "--save":
                nxt = args[i + 1] if i + 1 < len(args) else None
                if nxt is None or nxt.startswith("--"):
                    current += '""'
                    expecting_value = False
        else:
            if current is None:
                raise ConfigError(f"Invalid option {arg!r}: options must start with --")
            current += config_repr(arg) + " "
            expecting_value = False
    if current is not None:
        lines.append(current)
    return path, "\n".join(lines)


def split_config_line(line: str) -> list[str] | None:
    """Tokenise one config line like sdssplitargs; None for unbalanced quotes."""
    try:
        lexer = shlex.shlex(line, posix=True)
        lexer.whitespace_split = True
        lexer.commenters = ""
        lexer.escapedquotes = '"'
        return [_unescape(w) for w in lexer]
    except ValueError:
        return None


def _unescape(word: str) -> str:
    """sdssplitargs' escapes inside double quotes: \\xNN, \\n, \\r, \\t, \\a, \\b."""
    if "\\" not in word:
        return word
    out, i = [], 0
    table = {"n": "\n", "r": "\r", "t": "\t", "a": "\a", "b": "\b"}
    while i < len(word):
        c = word[i]
        if c == "\\" and i + 1 < len(word):
            nxt = word[i + 1]
            hex_digits = word[i + 2:i + 4]
            if nxt == "x" and len(hex_digits) == 2 and all(ch in "0123456789abcdefABCDEF" for ch in hex_digits):
                out.append(chr(int(word[i + 2:i + 4], 16)))
                i += 4
                continue
            out.append(table.get(nxt, nxt))
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


class Config:
    """The live configuration of one node."""

    def __init__(self) -> None:
        self.values: dict[str, object] = {d.name: _copy(d.default) for d in _ALL}
        self.config_file: str | None = None
        self._setters: dict[str, list[Callable[[object], None]]] = {}
        self._group_setters: dict[str, list[Callable[[], None]]] = {}
        self._save_loaded = False
        #: Repeatable start-up-only lines, applied by node.security when the node starts:
        #: ``user <name> <rules...>`` and ``rename-command <name> <new-name>``.
        self.repeated: dict[str, list[list[str]]] = {"user": [], "rename-command": []}
        #: CONFIG REWRITE of lines no directive owns: name -> fn() giving the lines to write
        #: (node.security registers ``user``); old lines are replaced one by one, extra ones appended.
        self.rewrite_hooks: dict[str, Callable[[], list[str]]] = {}
        self.on_change("maxclients", _fit_open_files)

    def __getitem__(self, name: str):
        return self.values[name]

    def load_text(self, text: str, source: str = "") -> None:
        for line_no, raw in enumerate(text.splitlines(), 1):
            line = raw.strip(" \t\r\n")
            if not line or line.startswith("#"):
                continue
            words = split_config_line(line)
            if words is None:
                raise ConfigError("Unbalanced quotes in configuration line", line_no, line)
            if not words:
                continue
            name = words[0].lower()
            try:
                if name == "include" and len(words) == 2:
                    for path in sorted(_glob.glob(words[1])):
                        self.load_file(path)
                    continue
                if name in _DEPRECATED:
                    continue
                self.load_directive(name, words[1:])
            except ConfigError as exc:
                if exc.line_no is not None:
                    raise
                raise ConfigError(exc.message, line_no, line) from None

    def load_directive(self, name: str, args: list[str]) -> None:
        """One config-file line, with redis.conf's rules for arguments."""
        if name in self.repeated:
            if (name == "user" and not args) or (name == "rename-command" and len(args) != 2):
                raise ConfigError("Bad directive or wrong number of arguments")
            self.repeated[name].append(list(args))
            return
        directive = DIRECTIVES.get(name)
        if directive is None:
            raise ConfigError("Bad directive or wrong number of arguments")
        if not directive.multi_arg and len(args) != 1:
            raise ConfigError("wrong number of arguments")
        if directive.multi_arg and len(args) == 1 and args[0]:
            args = split_config_line(args[0]) or []
        current = self.values[directive.name]
        value = directive.parse_args(args, current)
        if directive.name == "save":
            # The first save line of the file replaces the defaults; later ones add points.
            if self._save_loaded and not (len(args) == 1 and args[0] == ""):
                value = list(current) + value
            self._save_loaded = True
        self.values[directive.name] = value

    def load_file(self, path: str) -> None:
        with open(path, encoding="utf-8", errors="surrogateescape") as fh:
            self.load_text(fh.read(), path)

    # ----------------------------------------------------------- CONFIG SET

    def check_settable(self, name: str, protected_ok: bool) -> Directive:
        """The directive CONFIG SET may change, or ConfigError with Redis's reason."""
        directive = DIRECTIVES.get(name.lower())
        if directive is None:
            raise KeyError(name)
        if not directive.mutable:
            raise ConfigError("can't set immutable config")
        if directive.protected and not protected_ok:
            raise ConfigError("can't set protected config")
        return directive

    def parse_set_value(self, directive: Directive, text: str) -> object:
        """A CONFIG SET value: multi-word directives split their value on spaces."""
        if directive.multi_arg:
            args = [w for w in text.split(" ") if w] if text else [""]
            if not args:
                args = [""]
        else:
            args = [text]
        value = directive.parse_args(args, self.values[directive.name])
        return directive.set_adjust(value) if directive.set_adjust is not None else value

    def set_many(self, changes: list[tuple[Directive, object]]) -> None:
        """Store parsed values and run the change hooks; all or nothing.

        A hook that raises ConfigError (``dir`` that cannot be entered) rolls
        every value of this call back, and the earlier hooks run again with
        the old values, as Redis's restoreBackupConfig.
        """
        old = [(d, self.values[d.name]) for d, _ in changes]
        done: list[tuple[Directive, object]] = []
        group: list = []  # on_change_group hooks: once per call, after every value is stored
        try:
            for directive, value in changes:
                self.values[directive.name] = value
                done.append((directive, value))
                for hook in self._setters.get(directive.name, ()):
                    hook(value)
            for directive, _ in changes:
                for hook in self._group_setters.get(directive.name, ()):
                    if hook not in group:
                        group.append(hook)
                        hook()
        except ConfigError as exc:
            exc.directive = directive  # type: ignore[attr-defined]
            for directive, value in reversed(old):
                self.values[directive.name] = value
            for directive, value in old[: len(done) - (0 if group else 1)]:
                for hook in self._setters.get(directive.name, ()):
                    try:
                        hook(value)
                    except ConfigError:
                        pass
            for hook in group:
                try:
                    hook()
                except ConfigError:
                    pass
            raise

    def apply(self, name: str, args: list[str], *, startup: bool = False) -> None:
        """Set one directive (kept for callers and tests); startup skips mutability checks."""
        directive = DIRECTIVES.get(name)
        if directive is None:
            raise ConfigError("Bad directive or wrong number of arguments")
        if startup:
            self.values[directive.name] = directive.parse_args(args, self.values[directive.name])
            return
        directive = self.check_settable(name, self.values["enable-protected-configs"] == "yes")
        value = directive.parse_args(args, self.values[directive.name])
        self.set_many([(directive, value)])

    def on_change(self, name: str, hook: Callable[[object], None]) -> None:
        """Run ``hook(new_value)`` after CONFIG SET changes ``name``."""
        self._setters.setdefault(name, []).append(hook)

    def on_change_group(self, names, hook: Callable[[], None]) -> None:
        """Run ``hook()`` once after a CONFIG SET that changes any of ``names`` (all values stored first).

        For settings that only make sense together (tls-cert-file + tls-key-file):
        Redis's apply functions run once per CONFIG SET, after every value is set.
        """
        for name in names:
            self._group_setters.setdefault(name, []).append(hook)

    def get_text(self, name: str) -> str:
        directive = DIRECTIVES[name]
        return directive.format(self.values[directive.name])

    def names(self) -> list[str]:
        """Every directive name, aliases included, as CONFIG GET matches them."""
        return list(DIRECTIVES)

    # -------------------------------------------------------- CONFIG REWRITE

    def rewrite(self, path: str) -> None:
        """Write the current config back to ``path`` (CONFIG REWRITE).

        As Redis: lines for directives the user wrote are updated in place
        (the first occurrence; later duplicates are dropped), directives that
        differ from their default and are not in the file are appended after a
        ``# Generated by CONFIG REWRITE`` line, and the file is replaced
        atomically. Comments and unknown lines stay as they were.
        """
        try:
            with open(path, encoding="utf-8", errors="surrogateescape") as fh:
                lines = fh.read().splitlines()
        except FileNotFoundError:
            lines = []
        marker = "# Generated by CONFIG REWRITE"
        hooked: dict[str, list[str]] = {}
        seen: set[str] = set()
        out: list[str] = []
        for raw in lines:
            stripped = raw.strip()
            if stripped == marker:
                continue
            words = split_config_line(stripped) if stripped and not stripped.startswith("#") else None
            if words and words[0].lower() in self.rewrite_hooks:
                name = words[0].lower()
                if name not in hooked:
                    hooked[name] = list(self.rewrite_hooks[name]())
                if hooked[name]:
                    out.append(hooked[name].pop(0))
                continue
            if words:
                directive = DIRECTIVES.get(words[0].lower())
                if directive is not None:
                    if directive.name in seen:
                        continue
                    seen.add(directive.name)
                    out.extend(self._lines(directive))
                    continue
            out.append(raw)
        extra: list[str] = []
        for directive in _ALL:
            if directive.name in seen or directive.name == "dir":
                continue
            if self.values[directive.name] != directive.default:
                extra.extend(self._lines(directive))
        for name, hook in self.rewrite_hooks.items():
            extra.extend(hooked[name] if name in hooked else hook())
        if extra:
            out.append(marker)
            out.extend(extra)
        tmp = f"{path}.tmp-{os.getpid()}"
        with open(tmp, "w", encoding="utf-8", errors="surrogateescape") as fh:
            fh.write("\n".join(out) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    def _lines(self, directive: Directive) -> list[str]:
        value = self.values[directive.name]
        if directive.name == "save":
            if not value:
                return ['save ""']
            return [f"save {s} {c}" for s, c in value]
        if directive.name == "client-output-buffer-limit":
            return [f"client-output-buffer-limit {part}" for part in _render_cobl_parts(value)]
        text = directive.format(value)
        if directive.name == "replicaof":
            return [f"replicaof {text}"] if text else []
        if directive.kind == "string" or directive.multi_arg and directive.name not in (
                "bind", "oom-score-adj-values", "latency-tracking-info-percentiles", "shutdown-on-sigint",
                "shutdown-on-sigterm"):
            text = config_repr(text)
        elif text == "":
            text = '""'
        return [f"{directive.name} {text}"]


def _render_cobl_parts(limits) -> list[str]:
    names = {"normal": "normal", "replica": "replica", "pubsub": "pubsub"}
    return [f"{names[cls]} {h} {s} {sec}" for cls, (h, s, sec) in limits.items()]


def _copy(value):
    if isinstance(value, (list, dict)):
        return type(value)(value)
    return value
