"""``rename-command`` (config file / command line only), as Redis applies it at start-up.

``rename-command FLUSHALL ""`` removes the command; ``rename-command CONFIG
cfg-7c1`` makes it answer only to the new name. The command keeps its real
name in replies, COMMAND INFO, errors and ACL rules (ACLs use the original
table, as Redis's ``orig_commands``).
"""

from __future__ import annotations

from node.commands import table

__all__ = ["RenameError", "rename_command"]


class RenameError(Exception):
    pass


def rename_command(old: str, new: str) -> None:
    """Rename (or with ``new == ""`` remove) a top-level command; RenameError with Redis's text."""
    old_key = old.lower().encode("utf-8", "surrogateescape")
    cmd = table.TABLE.get(old_key)
    if cmd is None:
        raise RenameError("No such command in rename-command")
    new_key = new.lower().encode("utf-8", "surrogateescape")
    if new_key and new_key in table.TABLE:
        raise RenameError("Target command name already exists")
    del table.TABLE[old_key]
    for spelling in (old_key, old_key.upper()):
        if table._FAST_LOOKUP.get(spelling) is cmd:
            del table._FAST_LOOKUP[spelling]
    if new_key:
        table.TABLE[new_key] = cmd
        table._FAST_LOOKUP[new_key] = cmd
        table._FAST_LOOKUP[new_key.upper()] = cmd
