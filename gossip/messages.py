"""Cluster-bus messages: the information Redis's bus header carries, as plain Python values.

The field set follows Redis 7.0's ``clusterMsg`` (see cluster_spec.md 4.2)
so the state machine can make the same decisions; the wire form is ours
(msgpack, see ``gossip.codec``). Two deliberate economies over Redis's header
(the spec's section 11, item 3): slot claims travel as a short list of
``(start, end)`` ranges instead of a 2 KB bitmap, and gossip entries carry only
what the receiver uses.
"""

from __future__ import annotations

__all__ = [
    "PING", "PONG", "MEET", "FAIL", "PUBLISH", "AUTH_REQUEST", "AUTH_ACK", "UPDATE", "MFSTART", "MODULE",
    "PUBLISHSHARD", "TYPE_NAMES", "MASTER", "SLAVE", "PFAIL", "FAILED", "MYSELF", "HANDSHAKE", "NOADDR",
    "MEET_FLAG", "MIGRATE_TO", "NOFAILOVER", "GossipEntry", "Message", "PROTOCOL_VERSION", "flag_names",
]

PROTOCOL_VERSION = 1

# Message types, with Redis's numbers.
PING, PONG, MEET, FAIL, PUBLISH, AUTH_REQUEST, AUTH_ACK, UPDATE, MFSTART, MODULE, PUBLISHSHARD = range(11)
#: Names used by CLUSTER INFO's cluster_stats_messages_<name>_sent/received, in type order.
TYPE_NAMES = ("ping", "pong", "meet", "fail", "publish", "auth-req", "auth-ack", "update", "mfstart", "module",
              "publishshard")

# Node flag bits (Redis's CLUSTER_NODE_*).
MASTER = 1
SLAVE = 2
PFAIL = 4
FAILED = 8
MYSELF = 16
HANDSHAKE = 32
NOADDR = 64
MEET_FLAG = 128
MIGRATE_TO = 256
NOFAILOVER = 512

_PRINTED = ((MYSELF, "myself"), (MASTER, "master"), (SLAVE, "slave"), (PFAIL, "fail?"), (FAILED, "fail"),
            (HANDSHAKE, "handshake"), (NOADDR, "noaddr"), (NOFAILOVER, "nofailover"))


def flag_names(flags: int) -> str:
    """The CLUSTER NODES flags field: fixed order, ``noflags`` when none is printable."""
    names = [name for bit, name in _PRINTED if flags & bit]
    return ",".join(names) if names else "noflags"


class GossipEntry:
    """What a sender says about one other node."""

    __slots__ = ("node_id", "ping_sent", "pong_received", "ip", "port", "cport", "flags")

    def __init__(self, node_id: str, ping_sent: int, pong_received: int, ip: str, port: int, cport: int,
                 flags: int) -> None:
        self.node_id = node_id
        self.ping_sent = ping_sent  # unix ms (Redis sends seconds; ms costs nothing in msgpack)
        self.pong_received = pong_received
        self.ip = ip
        self.port = port
        self.cport = cport
        self.flags = flags

    def as_list(self) -> list:
        return [self.node_id, self.ping_sent, self.pong_received, self.ip, self.port, self.cport, self.flags]

    def __repr__(self) -> str:
        return f"GossipEntry({self.node_id[:8]}, flags={flag_names(self.flags)})"


class Message:
    """One bus message. Every type carries the header fields; the body fields depend on ``type``.

    ``slots`` is the sender's claim (its master's if the sender is a replica)
    as a bit set int (``slots.ranges``). ``fail``: the node id a FAIL names.
    ``channel``/``payload``: PUBLISH/PUBLISHSHARD. ``update``: (node id,
    config epoch, slot bits) of an UPDATE.

    ``marks``: a primary's open slots, ``(migrating, importing)`` as two
    dicts slot -> node id, or None. A primary attaches them only to the
    PING/PONG/MEET it sends to its own replicas, and only while it has any; a
    replica therefore reads a PING/PONG from its primary without them as
    "no open slots" (see ``gossip.core``, "Migration marks on replicas").
    """

    __slots__ = (
        "type", "sender", "current_epoch", "config_epoch", "offset", "slots", "master", "ip", "port", "cport",
        "flags", "state", "mflags", "gossip", "fail", "channel", "payload", "update", "marks",
    )

    def __init__(self, type: int, sender: str, *, current_epoch: int = 0, config_epoch: int = 0, offset: int = 0,
                 slots: int = 0, master: str | None = None, ip: str = "", port: int = 0, cport: int = 0,
                 flags: int = 0, state: int = 0, mflags: int = 0, gossip: list | None = None,
                 fail: str | None = None, channel: bytes = b"", payload: bytes = b"",
                 update: tuple | None = None, marks: tuple | None = None) -> None:
        self.type = type
        self.sender = sender
        self.current_epoch = current_epoch
        self.config_epoch = config_epoch
        self.offset = offset
        self.slots = slots
        self.master = master
        self.ip = ip
        self.port = port
        self.cport = cport
        self.flags = flags
        self.state = state
        self.mflags = mflags
        self.gossip = gossip if gossip is not None else []
        self.fail = fail
        self.channel = channel
        self.payload = payload
        self.update = update
        self.marks = marks

    def __repr__(self) -> str:
        name = TYPE_NAMES[self.type] if 0 <= self.type < len(TYPE_NAMES) else str(self.type)
        return f"Message({name} from {self.sender[:8]} epoch={self.current_epoch}/{self.config_epoch})"
