"""ACL users, selectors and permission checks, with Redis 7.0's semantics.

A user has flags (on/off, nopass, sanitize-payload), password hashes (SHA-256
hex) and one or more *selectors*: the root selector (rules given outside
parentheses) and any ``(...)`` selectors. A selector holds the commands it
may run (a set of ``Command`` objects, subcommands included, standing in for
Redis's command bitmap), first-argument exceptions (``+select|0``), key
patterns with read/write permissions and channel patterns. A command is
allowed when any selector allows it; otherwise the error reported is chosen as
Redis does (command < key < channel, then the last argument position).

Dispatch only asks for a check when the client's user is not *unrestricted*
(a selector with all commands, all keys and all channels), so the default
user's hot path pays nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from typing import TYPE_CHECKING

from node.engine.glob import compile_glob
from node.security.keyaccess import _PLANS, READ, READ_WRITE, WRITE, key_refs

if TYPE_CHECKING:
    from node.commands.table import Command

__all__ = [
    "ACL_OK", "DENIED_CMD", "DENIED_KEY", "DENIED_AUTH", "DENIED_CHANNEL",
    "AclError", "AclRegistry", "Selector", "User", "hash_password",
]

ACL_OK, DENIED_CMD, DENIED_KEY, DENIED_AUTH, DENIED_CHANNEL = 0, 1, 2, 3, 4

# Redis 7.0's ACLCommandCategories, in its order (ACL CAT prints it).
CATEGORIES = (
    "keyspace read write set sortedset list hash string bitmap hyperloglog geo stream pubsub "
    "admin fast slow blocking dangerous connection transaction scripting"
).split()
_CATEGORY_SET = frozenset(CATEGORIES)

# ACLSetUserStringError's texts, by Redis's errno names.
ENOENT = "Unknown command or category name in ACL"
EINVAL = "Syntax error"
EEXIST = (
    "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any "
    "effect. Try 'resetkeys' to start with an empty list of patterns"
)
EISDIR = (
    "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any "
    "effect. Try 'resetchannels' to start with an empty list of channels"
)
ENODEV = "The password you are trying to remove from the user does not exist"
EBADMSG = "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters"
EALREADY = "Duplicate user found. A user can only be defined once in config files"
ECHILD = "Allowing first-arg of a subcommand is not supported"

# Channel arguments checked by ACLs: command -> (first index, is a pattern, only that one).
# The UNSUBSCRIBE family is never checked.
_CHANNEL_COMMANDS = {
    "publish": (1, False, True),
    "spublish": (1, False, True),
    "subscribe": (1, False, False),
    "ssubscribe": (1, False, False),
    "psubscribe": (1, True, False),
}

_HEX = frozenset(b"0123456789abcdef")


class AclError(Exception):
    """A rule that cannot be applied; ``message`` is ACLSetUserStringError's text."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def hash_password(password: bytes) -> bytes:
    return hashlib.sha256(password).hexdigest().encode()


def _valid_hash(text: bytes) -> bool:
    return len(text) == 64 and all(c in _HEX for c in text)


def has_spaces(text: bytes) -> bool:
    """ACLStringHasSpaces: isspace() or NUL anywhere."""
    return any(c in b" \t\n\v\f\r\0" for c in text)


def split_args(text: bytes) -> list[bytes] | None:
    """sdssplitargs: words separated by spaces, "double" and 'single' quotes; None if unbalanced."""
    from node.config import split_config_line

    words = split_config_line(text.decode("utf-8", "surrogateescape"))
    if words is None:
        return None
    return [w.encode("utf-8", "surrogateescape") for w in words]


# ----------------------------------------------------------------- commands


class CommandIndex:
    """The original command table (before rename-command), as ACL rules see it."""

    def __init__(self) -> None:
        import node.commands  # noqa: F401  (fills the table)
        from node.commands.table import TABLE

        self.top: dict[bytes, Command] = dict(TABLE)
        #: Every command and subcommand, parents before their subcommands.
        self.flat: list[Command] = []
        for cmd in self.top.values():
            self.flat.append(cmd)
            self.flat.extend(cmd.subcommands.values())
        self.by_category: dict[str, list[Command]] = {cat: [] for cat in CATEGORIES}
        for cmd in self.flat:
            for cat in cmd.categories:
                if cat in self.by_category:
                    self.by_category[cat].append(cmd)
        self.everything = frozenset(self.flat)

    def lookup(self, name: bytes) -> Command | None:
        """lookupCommandBySds: ``name`` or ``container|sub`` (one level only)."""
        parts = name.split(b"|")
        if len(parts) > 2:
            return None
        base = self.top.get(parts[0].lower())
        if base is None or len(parts) == 1:
            return base
        if not base.subcommands:
            return None
        return base.subcommands.get(parts[1].lower())


# ---------------------------------------------------------------- selectors


_GLOB_SPECIAL = frozenset(b"*?[\\")


def fast_matcher(pattern: bytes):
    """stringmatchlen(pattern, s) as a predicate; literal and ``prefix*`` patterns skip the regex."""
    if not any(c in _GLOB_SPECIAL for c in pattern):
        return pattern.__eq__
    stem = pattern.rstrip(b"*")
    if stem and not any(c in _GLOB_SPECIAL for c in stem):
        return lambda key: key.startswith(stem)
    if not stem:  # only stars: any non-empty string (Redis: "*" does not match "")
        return bool
    return compile_glob(pattern)


class KeyPattern:
    __slots__ = ("pattern", "flags", "match")

    def __init__(self, pattern: bytes, flags: int) -> None:
        self.pattern = pattern
        self.flags = flags
        self.match = fast_matcher(pattern)

    def describe(self) -> bytes:
        prefix = b"~" if self.flags == READ_WRITE else b"%R~" if self.flags == READ else b"%W~"
        return prefix + self.pattern


class Selector:
    __slots__ = (
        "root", "allcommands", "future", "allowed", "firstargs",
        "allkeys", "patterns", "allchannels", "channels", "channel_matchers",
    )

    def __init__(self, root: bool, allchannels: bool) -> None:
        self.root = root
        self.allcommands = False  # SELECTOR_FLAG_ALLCOMMANDS: skip the per-command test
        self.future = False  # the reserved bit +@all sets: commands added later are allowed
        self.allowed: set[Command] = set()
        self.firstargs: dict[Command, list[bytes]] = {}
        self.allkeys = False
        self.patterns: list[KeyPattern] = []
        self.allchannels = allchannels
        self.channels: list[bytes] = []
        self.channel_matchers: list = []

    def copy(self) -> "Selector":
        new = Selector(self.root, self.allchannels)
        new.allcommands = self.allcommands
        new.future = self.future
        new.allowed = set(self.allowed)
        new.firstargs = {cmd: list(args) for cmd, args in self.firstargs.items()}
        new.allkeys = self.allkeys
        new.patterns = [KeyPattern(p.pattern, p.flags) for p in self.patterns]
        new.channels = list(self.channels)
        new.channel_matchers = list(self.channel_matchers)
        return new

    @property
    def unrestricted(self) -> bool:
        return self.allcommands and self.allkeys and self.allchannels

    # --------------------------------------------------------- rule changes

    def change_perm(self, cmd: Command, allow: bool) -> None:
        """ACLChangeSelectorPerm: a container's rule applies to its subcommands too."""
        if allow:
            self.allowed.add(cmd)
            self.allowed.update(cmd.subcommands.values())
        else:
            self.allowed.discard(cmd)
            self.allowed.difference_update(cmd.subcommands.values())
            self.allcommands = False
        self.firstargs.pop(cmd, None)

    def set_category(self, index: CommandIndex, category: str, allow: bool) -> None:
        for cmd in index.by_category[category]:
            self.change_perm(cmd, allow)

    def apply(self, op: bytes, index: CommandIndex) -> None:
        """ACLSetSelector: one rule; raises AclError."""
        low = op.lower()
        if low == b"allkeys" or op == b"~*":
            self.allkeys = True
            self.patterns = []
        elif low == b"resetkeys":
            self.allkeys = False
            self.patterns = []
        elif low == b"allchannels" or op == b"&*":
            self.allchannels = True
            self.channels = []
            self.channel_matchers = []
        elif low == b"resetchannels":
            self.allchannels = False
            self.channels = []
            self.channel_matchers = []
        elif low == b"allcommands" or low == b"+@all":
            self.allowed = set(index.everything)
            self.allcommands = True
            self.future = True
            self.firstargs = {}
        elif low == b"nocommands" or low == b"-@all":
            self.allowed = set()
            self.allcommands = False
            self.future = False
            self.firstargs = {}
        elif op[:1] in (b"~", b"%"):
            self._add_key_pattern(op)
        elif op[:1] == b"&":
            if self.allchannels:
                raise AclError(EISDIR)
            pattern = op[1:]
            if has_spaces(pattern):
                raise AclError(EINVAL)
            if pattern not in self.channels:
                self.channels.append(pattern)
                self.channel_matchers.append(fast_matcher(pattern))
            self.allchannels = False
        elif op[:1] == b"+" and op[1:2] != b"@":
            self._allow_command(op[1:], index)
        elif op[:1] == b"-" and op[1:2] != b"@":
            cmd = index.lookup(op[1:])
            if cmd is None:
                raise AclError(ENOENT)
            self.change_perm(cmd, False)
        elif op[:1] in (b"+", b"-") and op[1:2] == b"@":
            category = op[2:].decode("utf-8", "surrogateescape").lower()
            if category not in _CATEGORY_SET:
                raise AclError(ENOENT)
            self.set_category(index, category, op[:1] == b"+")
        else:
            raise AclError(EINVAL)

    def _add_key_pattern(self, op: bytes) -> None:
        if self.allkeys:
            raise AclError(EEXIST)
        if op[:1] == b"%":
            flags = 0
            offset = 1
            while offset < len(op):
                c = op[offset : offset + 1].upper()
                if c == b"R" and not flags & READ:
                    flags |= READ
                elif c == b"W" and not flags & WRITE:
                    flags |= WRITE
                elif c == b"~":
                    offset += 1
                    break
                else:
                    raise AclError(EINVAL)
                offset += 1
            if not flags:
                raise AclError(EINVAL)
        else:
            flags = READ_WRITE
            offset = 1
        pattern = op[offset:]
        if has_spaces(pattern):
            raise AclError(EINVAL)
        for existing in self.patterns:
            if existing.pattern == pattern:
                existing.flags |= flags
                break
        else:
            self.patterns.append(KeyPattern(pattern, flags))
        self.allkeys = False

    def _allow_command(self, name: bytes, index: CommandIndex) -> None:
        bar = name.rfind(b"|")
        if bar == -1:
            cmd = index.lookup(name)
            if cmd is None:
                raise AclError(ENOENT)
            self.change_perm(cmd, True)
            return
        base, sub = name[:bar], name[bar + 1 :]
        cmd = index.lookup(base)
        if cmd is None:
            raise AclError(ENOENT)
        if cmd.parent is not None:
            raise AclError(ECHILD)
        if not sub:
            raise AclError(EINVAL)
        if cmd.subcommands:
            subcmd = index.lookup(name)
            if subcmd is None:
                raise AclError(ENOENT)
            self.change_perm(subcmd, True)
            return
        args = self.firstargs.setdefault(cmd, [])
        if not any(a.lower() == sub.lower() for a in args):
            args.append(sub)

    # ---------------------------------------------------------------- checks

    def check(self, cmd: Command, argv: list[bytes]) -> tuple[int, int]:
        """ACLSelectorCheckCmd: (ACL_OK or the denial, argv index of the offending key/channel)."""
        if not self.allcommands and "no_auth" not in cmd.flags and cmd not in self.allowed:
            args = self.firstargs.get(cmd)
            if args is None or len(argv) < 2:
                return DENIED_CMD, 0
            first = argv[2 if cmd.parent is not None else 1].lower()
            if not any(a.lower() == first for a in args):
                return DENIED_CMD, 0
        if not self.allkeys:
            plan = _PLANS.get(cmd)
            for pos, need in (plan(argv) if plan is not None else key_refs(cmd, argv)):
                key = argv[pos]
                for pattern in self.patterns:
                    if pattern.flags & need == need and pattern.match(key):
                        break
                else:
                    return DENIED_KEY, pos
        if not self.allchannels:
            spec = _CHANNEL_COMMANDS.get(cmd.fullname)
            if spec is not None:
                first, is_pattern, single = spec
                last = first + 1 if single else len(argv)
                for pos in range(first, min(last, len(argv))):
                    if not self.channel_allowed(argv[pos], is_pattern):
                        return DENIED_CHANNEL, pos
        return ACL_OK, 0

    def channel_allowed(self, channel: bytes, is_pattern: bool) -> bool:
        if self.allchannels:
            return True
        if is_pattern:
            return channel in self.channels
        for match in self.channel_matchers:
            if match(channel):
                return True
        return False

    # ------------------------------------------------------------ describing

    def describe_commands(self, index: CommandIndex) -> bytes:
        """ACLDescribeSelectorCommandRules (Redis 7.0's best-fit category search)."""
        additive = not self.future
        fake = Selector(False, False)
        if additive:
            rules = [b"-@all"]
        else:
            rules = [b"+@all"]
            fake.apply(b"+@all", index)
        temp = set(self.allowed)
        applied: set[str] = set()
        while True:
            best = None
            mindiff = 1 << 62
            maxsame = 0
            for cat in CATEGORIES:
                if cat in applied:
                    continue
                members = index.by_category[cat]
                on = sum(1 for cmd in members if cmd in temp)
                off = len(members) - on
                diff, same = (off, on) if additive else (on, off)
                if same > diff and (diff < mindiff or (diff == mindiff and same > maxsame)):
                    best, mindiff, maxsame = cat, diff, same
            if best is None:
                break
            fake.set_category(index, best, additive)
            for cmd in index.by_category[best]:  # the inverse rule, on the temporary bitmap
                if additive:
                    temp.discard(cmd)
                    temp.difference_update(cmd.subcommands.values())
                else:
                    temp.add(cmd)
                    temp.update(cmd.subcommands.values())
            rules.append((b"+@" if additive else b"-@") + best.encode())
            applied.add(best)
        allowed = self.allowed
        for top in index.top.values():
            for cmd in (top, *top.subcommands.values()):
                userbit = cmd in allowed
                if userbit != (cmd in fake.allowed):
                    rules.append((b"+" if userbit else b"-") + cmd.fullname.encode())
                    fake.change_perm(cmd, userbit)
                if not userbit:
                    for arg in self.firstargs.get(cmd, ()):
                        rules.append(b"+" + cmd.fullname.encode() + b"|" + arg)
        return b" ".join(rules)

    def describe_keys(self) -> bytes:
        if self.allkeys:
            return b"~*"
        return b" ".join(p.describe() for p in self.patterns)

    def describe_channels(self) -> bytes:
        if self.allchannels:
            return b"&*"
        return b" ".join(b"&" + c for c in self.channels)

    def describe(self, index: CommandIndex) -> bytes:
        """ACLDescribeSelector: keys, channels, then command rules."""
        parts = []
        if self.allkeys:
            parts.append(b"~*")
        else:
            parts.extend(p.describe() for p in self.patterns)
        if self.allchannels:
            parts.append(b"&*")
        else:
            parts.append(b"resetchannels")
            parts.extend(b"&" + c for c in self.channels)
        parts.append(self.describe_commands(index))
        return b" ".join(parts)


# -------------------------------------------------------------------- users


class User:
    __slots__ = ("name", "enabled", "nopass", "sanitize", "passwords", "selectors", "unrestricted", "permits")

    def __init__(self, name: bytes, allchannels: bool) -> None:
        self.name = name
        self.enabled = False
        self.nopass = False
        self.sanitize = None  # None, "sanitize-payload" or "skip-sanitize-payload"
        self.passwords: list[bytes] = []
        self.selectors: list[Selector] = [Selector(True, allchannels)]
        self.unrestricted = False
        #: fn(cmd, argv) -> (result, argv index): ``check``, or the only selector's check (one call less).
        self.permits = self.check

    @property
    def root(self) -> Selector:
        return self.selectors[0]

    def copy_from(self, other: "User") -> None:
        """ACLCopyUser: take every rule of ``other`` (names stay)."""
        self.enabled = other.enabled
        self.nopass = other.nopass
        self.sanitize = other.sanitize
        self.passwords = list(other.passwords)
        self.selectors = [s.copy() for s in other.selectors]
        self.refresh()

    def clone(self, name: bytes | None = None) -> "User":
        new = User(self.name if name is None else name, False)
        new.copy_from(self)
        return new

    def refresh(self) -> None:
        self.unrestricted = any(s.unrestricted for s in self.selectors)
        self.permits = self.selectors[0].check if len(self.selectors) == 1 else self.check

    def flag_names(self) -> list[bytes]:
        flags = [b"on" if self.enabled else b"off"]
        if self.nopass:
            flags.append(b"nopass")
        if self.sanitize == "skip-sanitize-payload":
            flags.append(b"skip-sanitize-payload")
        elif self.sanitize == "sanitize-payload":
            flags.append(b"sanitize-payload")
        return flags

    def apply(self, op: bytes, registry: "AclRegistry") -> None:
        """ACLSetUser: one rule (user flags, passwords, selectors or a root-selector rule)."""
        if not op:
            return
        low = op.lower()
        if low == b"on":
            self.enabled = True
        elif low == b"off":
            self.enabled = False
        elif low == b"skip-sanitize-payload":
            self.sanitize = "skip-sanitize-payload"
        elif low == b"sanitize-payload":
            self.sanitize = "sanitize-payload"
        elif low == b"nopass":
            self.nopass = True
            self.passwords = []
        elif low == b"resetpass":
            self.nopass = False
            self.passwords = []
        elif op[:1] in (b">", b"#"):
            if op[:1] == b">":
                digest = hash_password(op[1:])
            else:
                digest = op[1:]
                if not _valid_hash(digest):
                    raise AclError(EBADMSG)
            if digest not in self.passwords:
                self.passwords.append(digest)
            self.nopass = False
        elif op[:1] in (b"<", b"!"):
            if op[:1] == b"<":
                digest = hash_password(op[1:])
            else:
                digest = op[1:]
                if not _valid_hash(digest):
                    raise AclError(EBADMSG)
            if digest not in self.passwords:
                raise AclError(ENODEV)
            self.passwords.remove(digest)
        elif op[:1] == b"(" and op[-1:] == b")":
            selector = Selector(False, registry.pubsub_default_all())
            words = split_args(op[1:-1])
            for word in words or ():
                selector.apply(word, registry.index)
            self.selectors.append(selector)
        elif low == b"clearselectors":
            del self.selectors[1:]
        elif low == b"reset":
            self.apply(b"resetpass", registry)
            self.apply(b"resetkeys", registry)
            self.apply(b"resetchannels", registry)
            if registry.pubsub_default_all():
                self.apply(b"allchannels", registry)
            self.apply(b"off", registry)
            self.apply(b"sanitize-payload", registry)
            self.apply(b"clearselectors", registry)
            self.apply(b"-@all", registry)
        else:
            self.root.apply(op, registry.index)
        self.refresh()

    def describe(self, index: CommandIndex) -> bytes:
        """ACLDescribeUser: flags, password hashes, root selector, then (selectors)."""
        parts = self.flag_names() + [b"#" + p for p in self.passwords]
        text = b" ".join(parts) + b" " + self.root.describe(index)
        for selector in self.selectors[1:]:
            text += b" (" + selector.describe(index) + b")"
        return text

    def check_password(self, password: bytes) -> bool:
        if not self.enabled:
            return False
        if self.nopass:
            return True
        digest = hash_password(password)
        ok = False
        for stored in self.passwords:
            ok |= hmac.compare_digest(digest, stored)
        return ok

    def check(self, cmd: Command, argv: list[bytes]) -> tuple[int, int]:
        """ACLCheckAllUserCommandPerm: (ACL_OK or the denial to report, argv index)."""
        selectors = self.selectors
        if len(selectors) == 1:
            return selectors[0].check(cmd, argv)
        relevant, last_idx = DENIED_CMD, 0
        for selector in selectors:
            result, idx = selector.check(cmd, argv)
            if result == ACL_OK:
                return ACL_OK, 0
            if result > relevant or (result == relevant and idx > last_idx):
                relevant, last_idx = result, idx
        return relevant, last_idx

    def channel_allowed(self, channel: bytes, is_pattern: bool) -> bool:
        return any(s.channel_allowed(channel, is_pattern) for s in self.selectors)


def merge_selector_args(args: list[bytes]) -> tuple[list[bytes] | None, int]:
    """ACLMergeSelectorArguments: join "(a", "b)" into "(a b)"; (None, index) if unbalanced."""
    merged: list[bytes] = []
    start = -1
    current = b""
    for i, op in enumerate(args):
        if start == -1 and op[:1] == b"(" and op[-1:] != b")":
            current = op
            start = i
            continue
        if start != -1:
            current += b" " + op
            if op[-1:] == b")":
                start = -1
                merged.append(current)
            continue
        merged.append(op)
    if start != -1:
        return None, start
    return merged, -1


# ---------------------------------------------------------------- registry


class AclRegistry:
    """Every user of one node, the ACL log, and the rules for loading and saving them."""

    def __init__(self, node) -> None:
        from node.security.acllog import AclLog

        self.node = node
        self.index = CommandIndex()
        self.users: dict[bytes, User] = {}
        self.default = self._new_default()
        self.users[b"default"] = self.default
        self.log = AclLog(node)
        config = node.config
        password = config["requirepass"]
        if password:
            self.set_default_password(password.encode("utf-8", "surrogateescape"))
        config.on_change("requirepass", self._requirepass_changed)
        if hasattr(config, "rewrite_hooks"):
            config.rewrite_hooks["user"] = self.config_lines

    def config_lines(self) -> list[str]:
        """CONFIG REWRITE's ``user`` lines: every user, unless users live in an aclfile."""
        if self.node.config["aclfile"]:
            return []
        return [self.describe_line(u).decode("utf-8", "surrogateescape") for u in self.sorted_users()]

    def pubsub_default_all(self) -> bool:
        return self.node.config["acl-pubsub-default"] == "allchannels"

    def _new_default(self) -> User:
        user = User(b"default", self.pubsub_default_all())
        for op in (b"+@all", b"~*", b"&*", b"on", b"nopass"):
            user.apply(op, self)
        return user

    def _requirepass_changed(self, value) -> None:
        self.set_default_password(value.encode("utf-8", "surrogateescape") if value else None)

    def set_default_password(self, password: bytes | None) -> None:
        """ACLUpdateDefaultUserPassword: requirepass sets (or clears) the default user's password."""
        self.default.apply(b"resetpass", self)
        if password:
            self.default.apply(b">" + password, self)
        else:
            self.default.apply(b"nopass", self)

    def auth_required(self) -> bool:
        """New connections must AUTH unless the default user is on and nopass."""
        d = self.default
        return not (d.nopass and d.enabled)

    def get(self, name: bytes) -> User | None:
        return self.users.get(name)

    def sorted_users(self) -> list[User]:
        return [self.users[name] for name in sorted(self.users)]

    def describe_line(self, user: User) -> bytes:
        return b"user " + user.name + b" " + user.describe(self.index)

    # -------------------------------------------------------------- checks

    def check_command(self, client, cmd: Command, argv: list[bytes]):
        """The NOPERM ErrorReply dispatch sends (and logs), or None if the client's user may run it."""
        result, pos = client.acl_user.check(cmd, argv)
        if result == ACL_OK:
            return None
        from node.resp import ErrorReply

        context = "multi" if client.multi is not None else "toplevel"
        self.log_denial(client, result, context, cmd, argv, pos)
        if result == DENIED_CMD:
            return ErrorReply(f"NOPERM this user has no permissions to run the '{cmd.fullname}' command")
        if result == DENIED_KEY:
            return ErrorReply("NOPERM this user has no permissions to access one of the keys used as arguments")
        return ErrorReply("NOPERM this user has no permissions to access one of the channels used as arguments")

    @staticmethod
    def has_full_key_read(user: User, cmd: Command, argv: list[bytes]) -> bool:
        """ACLUserCheckCmdWithUnrestrictedKeyAccess(..., CMD_KEY_ACCESS): a selector that allows the
        command and may read every key (allkeys, ``~*`` or ``%R~*``)."""
        for selector in user.selectors:
            if selector.check(cmd, argv)[0] != ACL_OK:
                continue
            if selector.allkeys or any(p.pattern == b"*" and p.flags & READ for p in selector.patterns):
                return True
        return False

    def exec_denial(self, client, cmd: Command, argv: list[bytes]):
        """EXEC's re-check of a queued command (the rules may have changed since it was queued)."""
        result, pos = client.acl_user.check(cmd, argv)
        if result == ACL_OK:
            return None
        from node.resp import ErrorReply

        obj = cmd.fullname.encode() if result == DENIED_CMD else argv[pos]
        self.log.add(client, result, "multi", obj, client.acl_user.name, self.client_info(client, None, b"exec"))
        reason = {
            DENIED_CMD: "no permission to execute the command or subcommand",
            DENIED_KEY: "no permission to touch the specified keys",
            DENIED_CHANNEL: "no permission to access one of the channels used as arguments",
        }.get(result, "no permission")
        return ErrorReply(
            "NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. "
            "This command is no longer allowed for the following reason: " + reason
        )

    def script_refusal(self, caller, cmd: Command, argv: list[bytes], running: bytes = b"eval") -> str | None:
        """scriptVerifyACL: the error text for a redis.call the script's user may not run, else None."""
        user = getattr(caller, "acl_user", None)
        if user is None or user.unrestricted:
            return None
        result, pos = user.check(cmd, argv)
        if result == ACL_OK:
            return None
        obj = cmd.fullname.encode() if result == DENIED_CMD else argv[pos]
        # client-info describes the caller, running EVAL/FCALL (Redis: server.script_caller).
        info = self.client_info(caller, None, running)
        self.log.add(caller, result, "lua", obj, caller.acl_user.name, info)
        return "The user executing the script " + script_error_message(result)

    def log_denial(self, client, reason: int, context: str, cmd: Command, argv: list[bytes], pos: int) -> None:
        obj = cmd.fullname.encode() if reason == DENIED_CMD else argv[pos]
        self.log.add(client, reason, context, obj, client.acl_user.name, self.client_info(client, cmd))

    def log_auth_failure(self, client, username: bytes, argv0: bytes) -> None:
        context = "multi" if client.multi is not None else "toplevel"
        self.log.add(client, DENIED_AUTH, context, argv0, username, self.client_info(client, None, argv0))

    @staticmethod
    def client_info(client, cmd, argv0: bytes | None = None) -> bytes:
        try:
            from node.commands.client_cmds import info_line

            name = cmd.fullname if cmd is not None else (argv0 or b"NULL").decode("utf-8", "replace").lower()
            return info_line(client, client, [], name).encode("utf-8", "surrogateescape")
        except Exception:  # a client that cannot describe itself still gets its denial logged
            return b""

    def authenticate(self, client, username: bytes, password: bytes, argv0: bytes) -> bool:
        """ACLAuthenticateUser: on success the client becomes ``username``; failures are logged."""
        user = self.users.get(username)
        if user is None or not user.check_password(password):
            self.log_auth_failure(client, username, argv0)
            return False
        client.authenticated = True
        client.user = user.name
        client.acl_user = user
        client.refresh_gate()
        return True

    # ------------------------------------------------------------- changes

    def setuser(self, name: bytes, ops: list[bytes]) -> None:
        """ACL SETUSER: all rules or none; raises AclError with the full reply text."""
        if has_spaces(name):
            raise AclError("Usernames can't contain spaces or null characters")
        merged, bad = merge_selector_args(ops)
        if merged is None:
            raise AclError(
                "Unmatched parenthesis in acl selector starting at '%s'."
                % ops[bad].decode("utf-8", "surrogateescape")
            )
        existing = self.users.get(name)
        temp = existing.clone() if existing is not None else User(name, self.pubsub_default_all())
        for op in merged:
            try:
                temp.apply(op, self)
            except AclError as exc:
                raise AclError(
                    "Error in ACL SETUSER modifier '%s': %s"
                    % (op.split(b"\0", 1)[0].decode("utf-8", "surrogateescape"), exc.message)
                ) from None
        if existing is not None:
            self.kill_pubsub_clients_if_needed(temp, existing)
            existing.copy_from(temp)
            self.refresh_clients(existing)
        else:
            temp.refresh()
            self.users[name] = temp

    def deluser(self, names: list[bytes], current) -> int:
        for name in names:
            if name == b"default":
                raise AclError("The 'default' user cannot be removed")
        deleted = 0
        for name in names:
            user = self.users.pop(name, None)
            if user is not None:
                self.kill_clients_of(user, current)
                deleted += 1
        return deleted

    def kill_clients_of(self, user: User, current) -> None:
        """ACLFreeUserAndKillClients: connections of a deleted user are closed (after this reply)."""
        for client in list(self.node.clients.values()):
            if getattr(client, "acl_user", None) is user and not client.killed:
                client.acl_user = self.default
                client.user = b"default"
                client.authenticated = False
                if client is current:
                    client.close_after_reply = True
                else:
                    _kill(client)

    def kill_pubsub_clients_if_needed(self, new: User, original: User) -> None:
        """ACLKillPubsubClientsIfNeeded: subscribers whose channels the new rules no longer allow."""
        if any(s.allchannels for s in new.selectors):
            return
        upcoming: list[bytes] = []
        for s in new.selectors:
            upcoming.extend(s.channels)
        if all(c in upcoming for s in original.selectors for c in s.channels):
            return
        matchers = [fast_matcher(p) for p in upcoming]
        for client in list(self.node.clients.values()):
            if getattr(client, "acl_user", None) is not original or client.killed:
                continue
            if not (client.pubsub_channels or client.pubsub_patterns or client.pubsub_shard_channels):
                continue
            kill = any(p not in upcoming for p in client.pubsub_patterns)
            if not kill:
                for channel in (*client.pubsub_channels, *client.pubsub_shard_channels):
                    if not any(m(channel) for m in matchers):
                        kill = True
                        break
            if kill:
                _kill(client)

    def refresh_clients(self, user: User) -> None:
        for client in self.node.clients.values():
            if getattr(client, "acl_user", None) is user:
                client.refresh_gate()

    # ------------------------------------------------------ loading / saving

    def load_config_users(self, lines: list[list[str]]) -> None:
        """``user`` lines of the config file (ACLLoadConfiguredUsers); raises AclError."""
        seen: set[bytes] = set()
        for words in lines:
            args = [w.encode("utf-8", "surrogateescape") for w in words]
            if not args:
                raise AclError("Bad directive or wrong number of arguments")
            name, ops = args[0], args[1:]
            if name in seen:
                raise AclError("Error in user declaration '%s': %s" % (name.decode(errors="replace"), EALREADY))
            seen.add(name)
            if has_spaces(name):
                raise AclError("Spaces not allowed in ACL usernames")
            merged, _ = merge_selector_args(ops)
            if merged is None:
                raise AclError("Unmatched parenthesis in selector definition")
            user = self.users.get(name)
            if user is None:
                user = User(name, self.pubsub_default_all())
                self.users[name] = user
            else:
                user.apply(b"reset", self)
            for op in merged:
                try:
                    user.apply(op, self)
                except AclError as exc:
                    raise AclError(
                        "Error loading ACL rule '%s' for the user named '%s': %s"
                        % (op.decode("utf-8", "replace"), name.decode("utf-8", "replace"), exc.message)
                    ) from None
            if not user.enabled:
                self.node.logger.notice(
                    f"The user '{name.decode('utf-8', 'replace')}' is disabled (there is no 'on' modifier in the "
                    "user description). Make sure this is not a configuration error."
                )

    def load_file(self, path: str, current=None) -> str | None:
        """ACLLoadFromFile: None on success, else Redis's one-line error text (nothing changed)."""
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            return f"Error loading ACLs, opening file '{path}': {exc.strerror}"
        errors = ""
        users: dict[bytes, User] = {}
        for lineno, raw in enumerate(data.split(b"\n"), 1):
            line = raw.strip(b" \t\r\n")
            if not line:
                continue
            words = split_args(line)
            if words is None:
                errors += f"{path}:{lineno}: unbalanced quotes in acl line. "
                continue
            if not words:
                continue
            if words[0] != b"user" or len(words) < 2:
                errors += f"{path}:{lineno} should start with user keyword followed by the username. "
                continue
            name = words[1]
            if has_spaces(name):
                errors += f"'{path}:{lineno}: username '{name.decode(errors='replace')}' contains invalid characters. "
                continue
            if name in users:
                errors += f"WARNING: Duplicate user '{name.decode(errors='replace')}' found on line {lineno}. "
                continue
            user = User(name, self.pubsub_default_all())
            users[name] = user
            merged, _ = merge_selector_args(words[2:])
            if merged is None:
                errors += f"{path}:{lineno}: Unmatched parenthesis in selector definition."
                continue
            for op in merged:
                try:
                    user.apply(op.strip(b"\t\r\n"), self)
                except AclError as exc:
                    errors += (
                        f"{path}:{lineno}: Error in applying operation "
                        f"'{op.decode('utf-8', 'surrogateescape')}': {exc.message}. "
                    )
        if errors:
            return errors + "WARNING: ACL errors detected, no change to the previously active ACL rules was performed"
        new_default = users.pop(b"default", None) or self._new_default()
        old = self.users
        self.default.copy_from(new_default)
        self.users = {b"default": self.default}
        self.users.update(users)
        for name, user in old.items():
            if name != b"default":
                self.kill_clients_of(user, current)
        self.refresh_clients(self.default)
        return None

    def save_file(self, path: str) -> bool:
        """ACLSaveToFile: every user as a ``user`` line, written to a temp file then renamed."""
        text = b"".join(self.describe_line(u) + b"\n" for u in self.sorted_users())
        tmp = f"{path}.tmp-{os.getpid()}-{self.node.clock.wall_ms()}"
        try:
            with open(tmp, "wb") as fh:
                fh.write(text)
            os.replace(tmp, path)
        except OSError as exc:
            self.node.logger.warning(f"Writing ACL file for ACL SAVE: {exc.strerror}")
            try:
                os.unlink(tmp)
            except OSError:
                pass
            return False
        return True

    def startup(self, config_users: list[list[str]]) -> None:
        """ACLLoadUsersAtStartup: ``user`` lines or ``aclfile``, never both; raises AclError."""
        aclfile = self.node.config["aclfile"]
        if aclfile and config_users:
            raise AclError(
                "Configuring Redis with users defined in redis.conf and at the same setting an ACL file path is "
                "invalid. This setup is very likely to lead to configuration errors and security holes, please "
                "define either an ACL file or declare users directly in your redis.conf, but not both."
            )
        self.load_config_users(config_users)
        if aclfile:
            errors = self.load_file(aclfile)
            if errors is not None:
                raise AclError(f"Aborting Redis startup because of ACL errors: {errors}")


def script_error_message(result: int) -> str:
    """getAclErrorMessage."""
    if result == DENIED_CMD:
        return "can't run this command or subcommand"
    if result == DENIED_KEY:
        return "can't access at least one of the keys mentioned in the command arguments"
    if result == DENIED_CHANNEL:
        return "can't publish to the channel mentioned in the command"
    return "lacking the permissions for the command"


def _kill(client) -> None:
    """Close another client once the current batch is done (as CLIENT KILL does)."""
    client.killed = True
    client.close_after_reply = True
    client.node.pending_close.append(client)
