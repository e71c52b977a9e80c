"""Protected mode (Redis 7.0's clientAcceptHandler check).

With ``protected-mode yes`` and a default user that needs no password, a
connection from anything but the loopback interface (127.0.0.0/8, ::1) or a
Unix socket is answered with Redis's DENIED text and closed. Redis 7.0 no
longer looks at ``bind`` for this (6.x did); neither do we.
"""

from __future__ import annotations

__all__ = ["DENIED", "is_local_address", "protected_mode_refusal"]

DENIED = (
    b"-DENIED Redis is running in protected mode because protected mode is enabled and no password is set "
    b"for the default user. In this mode connections are only accepted from the loopback interface. If you "
    b"want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just "
    b"disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by "
    b"connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly "
    b"accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively "
    b"you can just disable the protected mode by editing the Redis configuration file, and setting the "
    b"protected mode option to 'no', and then restarting the server. 3) If you started the server manually "
    b"just for testing, restart it with the '--protected-mode no' option. 4) Setup a an authentication "
    b"password for the default user. NOTE: You only need to do one of the above things in order for the "
    b"server to start accepting connections from the outside.\r\n"
)


def is_local_address(ip: str) -> bool:
    """Loopback: 127.0.0.0/8, ::1, or an IPv4-mapped loopback (::ffff:127.x.y.z)."""
    if ip.startswith("::ffff:"):
        ip = ip[7:]
    return ip.startswith("127.") or ip == "::1"


def protected_mode_refusal(protected_mode: bool, default_nopass: bool, peer_ip: str | None) -> bytes | None:
    """The DENIED reply for a new connection from ``peer_ip`` (None: a Unix socket), or None to accept it."""
    if not protected_mode or not default_nopass:
        return None
    if peer_ip is None or is_local_address(peer_ip):
        return None
    return DENIED


def check_new_connection(node, sock, peer) -> bytes | None:
    """protected_mode_refusal for a just-accepted socket of ``node``."""
    ip = peer[0] if isinstance(peer, tuple) and peer else None
    return protected_mode_refusal(bool(node.config["protected-mode"]), node.acl.default.nopass, ip)
