"""Network-namespace facts the fault tools need: are we in a private one, and bringing ``lo`` up there.

Partitions are nftables rules, and rules belong in a private network
namespace (``unshare --user --map-root-user --net``) where they cannot touch
the host's network and vanish with the namespace. Even when the tools run
as root, they refuse to write rules into the host's namespace.
"""

from __future__ import annotations

import fcntl
import socket
import struct

__all__ = ["in_private_netns", "loopback_up"]

_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1


def in_private_netns() -> bool:
    """True inside a user namespace of our own (``unshare --user ...``).

    There, the kernel only lets us change network namespaces that namespace
    owns -- those ``unshare --net`` made -- so rules can never reach the
    host's network. The initial user namespace maps every uid to itself
    ("0 0 4294967295"); a private one maps a few.
    """
    try:
        with open("/proc/self/uid_map", encoding="ascii") as fh:
            lines = [line.split() for line in fh if line.strip()]
    except OSError:
        return False
    return lines != [["0", "0", "4294967295"]]


def loopback_up() -> None:
    """Bring ``lo`` up in this (fresh) network namespace, without needing iproute2."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH14s", b"lo", 0, b"\0" * 14)
        flags = struct.unpack("16sH14s", fcntl.ioctl(sock.fileno(), _SIOCGIFFLAGS, request))[1]
        if not flags & _IFF_UP:
            fcntl.ioctl(sock.fileno(), _SIOCSIFFLAGS, struct.pack("16sH14s", b"lo", flags | _IFF_UP, b"\0" * 14))
