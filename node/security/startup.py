"""Apply the security parts of the configuration when a node starts.

``user`` lines or ``aclfile`` (never both), then ``rename-command`` lines.
An error is fatal, as in Redis: it is logged and the process exits with 1.
"""

from __future__ import annotations

from node.security.acl import AclError
from node.security.rename import RenameError, rename_command

__all__ = ["apply_security_config"]


def apply_security_config(node) -> None:
    config = node.config
    repeated = getattr(config, "repeated", {"user": [], "rename-command": []})
    try:
        node.acl.startup(repeated.get("user", []))
        for old, new in repeated.get("rename-command", []):
            rename_command(old, new)
    except (AclError, RenameError) as exc:
        message = exc.message if isinstance(exc, AclError) else str(exc)
        node.logger.warning(message)
        if isinstance(exc, AclError) and not message.startswith("Aborting"):
            node.logger.warning("Critical error while loading ACLs. Exiting.")
        raise SystemExit(1) from None
