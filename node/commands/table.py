"""The command table: one declaration per command, next to its handler.

Each handler module declares its commands with ``@command(...)``::

    @command("get", arity=2, flags="readonly fast", keys=(1, 1, 1), group="string",
             summary="Get the value of a key", since="1.0.0")
    def get(client, argv): ...

That single declaration drives everything that needs to know about a command:
lookup and the arity check in dispatch, key extraction for cluster routing,
ACL categories, ``COMMAND``/``COMMAND INFO``/``COMMAND DOCS``/``GETKEYS``, and
INFO commandstats. Container commands (CONFIG, CLIENT, OBJECT...) declare the
parent with ``container=True`` and each subcommand with ``parent=``.

Arity follows Redis: a positive number is the exact argument count including
the command name; a negative one is a minimum.
"""

from __future__ import annotations

from typing import Callable, Iterable

__all__ = ["Command", "TABLE", "all_commands", "command", "container", "lookup"]

# Redis 7's command flags, as COMMAND prints them.
KNOWN_FLAGS = frozenset(
    "write readonly denyoom module admin pubsub noscript blocking loading stale skip_monitor "
    "skip_slowlog asking fast no_auth may_replicate no_mandatory_keys protected allow_busy "
    "no_async_loading no_multi movablekeys".split()
)

# ACL categories implied by the command's group, as Redis 7 assigns them.
_GROUP_CATEGORIES = {
    "string": ("string",),
    "generic": ("keyspace",),
    "connection": ("connection",),
    "server": (),
    "list": ("list",),
    "hash": ("hash",),
    "set": ("set",),
    "sorted_set": ("sortedset",),
    "bitmap": ("bitmap",),
    "hyperloglog": ("hyperloglog",),
    "stream": ("stream",),
    "geo": ("geo",),
    "pubsub": ("pubsub",),
    "transactions": ("transaction",),
    "scripting": ("scripting",),
    "cluster": (),
}

Handler = Callable[..., object]
KeyFinder = Callable[[list], list]


class Command:
    """One command's declaration, plus its INFO commandstats counters."""

    __slots__ = (
        "name",
        "fullname",
        "arity",
        "flags",
        "first_key",
        "last_key",
        "key_step",
        "key_finder",
        "categories",
        "handler",
        "group",
        "summary",
        "since",
        "complexity",
        "tips",
        "parent",
        "subcommands",
        "is_write",
        "calls",
        "usec",
        "failed_calls",
        "rejected_calls",
        "latency",
    )

    def __init__(
        self,
        name: str,
        arity: int,
        flags: Iterable[str],
        keys: tuple[int, int, int],
        handler: Handler | None,
        *,
        key_finder: KeyFinder | None = None,
        acl: Iterable[str] = (),
        group: str = "generic",
        summary: str = "",
        since: str = "1.0.0",
        complexity: str = "",
        tips: Iterable[str] = (),
        parent: "Command | None" = None,
    ) -> None:
        self.name = name
        self.fullname = f"{parent.name}|{name}" if parent else name
        self.arity = arity
        self.flags = tuple(flags)
        unknown = set(self.flags) - KNOWN_FLAGS
        if unknown:
            raise ValueError(f"{self.fullname}: unknown command flags {sorted(unknown)}")
        if key_finder is not None and "movablekeys" not in self.flags:
            self.flags += ("movablekeys",)
        self.first_key, self.last_key, self.key_step = keys
        self.key_finder = key_finder
        self.handler = handler
        self.group = group
        self.summary = summary
        self.since = since
        self.complexity = complexity
        self.tips = tuple(tips)
        self.parent = parent
        self.subcommands: dict[bytes, Command] = {}
        self.is_write = "write" in self.flags
        # A bare container (CLIENT, OBJECT) is only a namespace: Redis gives it
        # no category but @slow; its subcommands carry the real ones.
        if handler is None and parent is None:
            self.categories = ("slow",)
        else:
            self.categories = self._derive_categories(tuple(acl))
        self.calls = 0
        self.usec = 0
        self.failed_calls = 0
        self.rejected_calls = 0
        #: LATENCY HISTOGRAM counts (node.monitoring.histogram); None until the first call.
        self.latency = None

    def _derive_categories(self, extra: tuple[str, ...]) -> tuple[str, ...]:
        flags = self.flags
        cats: list[str] = []
        if "write" in flags:
            cats.append("write")
        if "readonly" in flags and self.group != "scripting":
            cats.append("read")
        if "admin" in flags:
            cats += ["admin", "dangerous"]
        if "pubsub" in flags:
            cats.append("pubsub")
        if "fast" in flags:
            cats.append("fast")
        if "blocking" in flags:
            cats.append("blocking")
        if "fast" not in flags:
            cats.append("slow")
        for cat in _GROUP_CATEGORIES.get(self.group, ()) + extra:
            if cat not in cats:
                cats.append(cat)
        return tuple(cats)

    def keys_of(self, argv: list[bytes]) -> list[bytes]:
        """The keys this invocation touches (what COMMAND GETKEYS prints)."""
        if self.key_finder is not None:
            return self.key_finder(argv)
        if self.first_key <= 0:
            return []
        last = self.last_key
        if last < 0:
            last = len(argv) + last
        return argv[self.first_key : last + 1 : self.key_step]

    def reset_stats(self) -> None:
        self.calls = self.usec = self.failed_calls = self.rejected_calls = 0
        self.latency = None
        for sub in self.subcommands.values():
            sub.reset_stats()

    def __repr__(self) -> str:
        return f"<Command {self.fullname} arity={self.arity}>"


#: Lower-case command name -> Command, for every top-level command.
TABLE: dict[bytes, Command] = {}
# The same, also under upper-case names: clients mostly send upper case, and
# one dict hit is cheaper than lower-casing every request.
_FAST_LOOKUP: dict[bytes, Command] = {}


def command(
    name: str,
    arity: int,
    flags: str = "",
    keys: tuple[int, int, int] = (0, 0, 0),
    *,
    parent: str | None = None,
    **info,
) -> Callable[[Handler], Handler]:
    """Declare a command (or, with ``parent=``, a subcommand) and register its handler."""

    def register(handler: Handler) -> Handler:
        _register(Command(name, arity, flags.split(), keys, handler,
                          parent=TABLE[parent.encode()] if parent else None, **info))
        return handler

    return register


def container(name: str, arity: int = -2, flags: str = "", handler: Handler | None = None, **info) -> Command:
    """Declare a container command (CONFIG, CLIENT...): its subcommands do the work.

    Dispatch resolves ``argv[1]`` among the subcommands. ``handler``, if any,
    serves the bare command (``COMMAND`` with no subcommand lists everything).
    """
    return _register(Command(name, arity, flags.split(), (0, 0, 0), handler, **info))


def _register(cmd: Command) -> Command:
    key = cmd.name.encode()
    if cmd.parent is not None:
        if key in cmd.parent.subcommands:
            raise ValueError(f"subcommand {cmd.fullname} declared twice")
        cmd.parent.subcommands[key] = cmd
    else:
        if key in TABLE:
            raise ValueError(f"command {cmd.name} declared twice")
        TABLE[key] = cmd
        _FAST_LOOKUP[key] = cmd
        _FAST_LOOKUP[key.upper()] = cmd
    return cmd


def lookup(name: bytes) -> Command | None:
    """The top-level command called ``name`` (any case), or None."""
    cmd = _FAST_LOOKUP.get(name)
    if cmd is None:
        cmd = TABLE.get(name.lower())
    return cmd


def all_commands() -> list[Command]:
    return list(TABLE.values())
