"""Node records and the nodes.conf / CLUSTER NODES text format.

``NodeRecord`` is what one node knows about another (or itself). The text
format is shared by CLUSTER NODES, CLUSTER REPLICAS and nodes.conf, so it lives
here once: ``node_line`` renders a record, ``parse_nodes_conf`` reads a whole
file back (cluster_spec.md 2.3 and 10.2).
"""

from __future__ import annotations

import re

from gossip.messages import FAILED, HANDSHAKE, MASTER, MYSELF, NOADDR, NOFAILOVER, PFAIL, SLAVE, flag_names
from slots import SLOT_COUNT
from slots.ranges import bits_from_ranges, format_ranges, ranges_from_bits

__all__ = ["ConfigFileError", "NodeRecord", "node_line", "parse_nodes_conf", "valid_node_id"]

_NODE_ID = re.compile(r"[a-z0-9]{40}\Z")
_FLAG_BITS = {"myself": MYSELF, "master": MASTER, "slave": SLAVE, "fail?": PFAIL, "fail": FAILED,
              "handshake": HANDSHAKE, "noaddr": NOADDR, "nofailover": NOFAILOVER, "noflags": 0}


def valid_node_id(text: str) -> bool:
    return bool(_NODE_ID.match(text))


class ConfigFileError(Exception):
    """nodes.conf cannot be used; the message says why (the node refuses to start)."""


class NodeRecord:
    """One node as this node sees it."""

    __slots__ = (
        "id", "ip", "port", "cport", "flags", "master_id", "config_epoch", "ping_sent", "pong_received",
        "data_received", "fail_time", "fail_reports", "repl_offset", "link", "connecting", "created",
        "hostname", "link_created", "orphaned_time",
    )

    def __init__(self, node_id: str, flags: int, now: int, ip: str = "", port: int = 0, cport: int = 0) -> None:
        self.id = node_id
        self.ip = ip
        self.port = port
        self.cport = cport
        self.flags = flags
        self.master_id: str | None = None
        self.config_epoch = 0
        self.ping_sent = 0
        self.pong_received = 0
        self.data_received = 0
        self.fail_time = 0
        #: reporting master id -> time of its latest report (ms)
        self.fail_reports: dict[str, int] = {}
        self.repl_offset = 0
        #: True while we hold a connected outbound bus link to it.
        self.link = False
        #: True while the shell is trying to open that link.
        self.connecting = False
        self.created = now
        self.link_created = 0
        self.hostname = ""
        self.orphaned_time = 0

    @property
    def is_master(self) -> bool:
        return bool(self.flags & MASTER)

    @property
    def is_replica(self) -> bool:
        return bool(self.flags & SLAVE)

    def __repr__(self) -> str:
        return f"NodeRecord({self.id[:8]} {self.ip}:{self.port} {flag_names(self.flags)})"


def node_line(rec: NodeRecord, slot_bits: int, config_epoch: int, *, open_slots: str = "") -> str:
    """One CLUSTER NODES line (without the newline).

    ``slot_bits`` are the slots this node serves and ``config_epoch`` the
    epoch to print (a replica shows its master's) -- the caller knows both.
    """
    address = f"{rec.ip}:{rec.port}@{rec.cport}"
    if rec.hostname:
        address += "," + rec.hostname
    link = "connected" if (rec.flags & MYSELF or rec.link) else "disconnected"
    parts = [
        rec.id, address, flag_names(rec.flags), rec.master_id or "-", str(rec.ping_sent), str(rec.pong_received),
        str(config_epoch), link,
    ]
    line = " ".join(parts)
    if slot_bits:
        line += " " + format_ranges(ranges_from_bits(slot_bits))
    if open_slots:
        line += " " + open_slots
    return line


def _parse_address(text: str) -> tuple[str, int, int, str]:
    hostname = ""
    if "," in text:
        text, hostname = text.split(",", 1)
        hostname = hostname.split(",", 1)[0]  # 7.2 aux fields after it are ignored
    if "@" in text:
        text, cport_text = text.rsplit("@", 1)
    else:
        cport_text = None
    if ":" not in text:
        raise ConfigFileError(f"bad address {text!r}")
    ip, port_text = text.rsplit(":", 1)
    port = int(port_text)
    cport = int(cport_text) if cport_text is not None else port + 10000
    return ip, port, cport, hostname


def parse_nodes_conf(text: str, now: int):
    """Read nodes.conf: ``(records, owners, migrating, importing, current_epoch, last_vote_epoch)``.

    ``records`` maps id -> NodeRecord (exactly one has MYSELF); ``owners``
    maps id -> slot bit set; ``migrating``/``importing`` map slot -> node id.
    The ``[slot->-id]``/``[slot-<-id]`` tokens are collected from every line: a
    primary writes them on its own line, a replica on its primary's line (its
    copy of the primary's marks, see ``gossip.core``); ``ClusterState.load``
    tells the two apart by the myself line's role.
    Raises ``ConfigFileError`` on anything Redis would refuse.
    """
    records: dict[str, NodeRecord] = {}
    owners: dict[str, int] = {}
    migrating: dict[int, str] = {}
    importing: dict[int, str] = {}
    current_epoch = last_vote_epoch = 0
    myself = None
    for lineno, raw in enumerate(text.split("\n"), 1):
        tokens = raw.split()
        if not tokens:
            continue
        if tokens[0] == "vars":
            if len(tokens) % 2 != 1:
                raise ConfigFileError(f"bad vars line at line {lineno}")
            for name, value in zip(tokens[1::2], tokens[2::2]):
                if name == "currentEpoch":
                    current_epoch = int(value)
                elif name == "lastVoteEpoch":
                    last_vote_epoch = int(value)
            continue
        if len(tokens) < 8:
            raise ConfigFileError(f"Unrecoverable error: corrupted cluster config file at line {lineno}")
        node_id = tokens[0]
        if not valid_node_id(node_id):
            raise ConfigFileError(f"bad node id at line {lineno}")
        try:
            ip, port, cport, hostname = _parse_address(tokens[1])
        except ValueError:
            raise ConfigFileError(f"bad address at line {lineno}") from None
        flags = 0
        for name in tokens[2].split(","):
            if name not in _FLAG_BITS:
                raise ConfigFileError(f"Unknown flag in redis cluster config file: {name}")
            flags |= _FLAG_BITS[name]
        rec = records.get(node_id) or NodeRecord(node_id, 0, now)
        rec.flags = flags
        rec.ip, rec.port, rec.cport, rec.hostname = ip, port, cport, hostname
        records[node_id] = rec
        if flags & MYSELF:
            if myself is not None:
                raise ConfigFileError("more than one 'myself' line in the cluster config file")
            myself = rec
        if tokens[3] != "-":
            if not valid_node_id(tokens[3]):
                raise ConfigFileError(f"bad master id at line {lineno}")
            rec.master_id = tokens[3]
            if tokens[3] not in records:
                records[tokens[3]] = NodeRecord(tokens[3], MASTER, now)
        if flags & FAILED:
            rec.fail_time = now
        rec.ping_sent = now if tokens[4] != "0" else 0
        rec.pong_received = now if tokens[5] != "0" else 0
        rec.config_epoch = int(tokens[6])
        bits = 0
        for token in tokens[8:]:
            if token.startswith("["):
                body = token[1:-1]
                if "->-" in body:
                    slot, other = body.split("->-")
                    migrating[int(slot)] = other
                elif "-<-" in body:
                    slot, other = body.split("-<-")
                    importing[int(slot)] = other
                else:
                    raise ConfigFileError(f"bad open slot token {token!r}")
                continue
            if "-" in token:
                start, end = (int(x) for x in token.split("-", 1))
            else:
                start = end = int(token)
            if not (0 <= start <= end < SLOT_COUNT):
                raise ConfigFileError(f"bad slot range {token!r}")
            bits |= bits_from_ranges([(start, end)])
        if bits:
            owners[node_id] = owners.get(node_id, 0) | bits
    if myself is None:
        raise ConfigFileError("no 'myself' line in the cluster config file")
    for rec in records.values():
        if rec.master_id is not None and rec.master_id in records:
            rec.config_epoch = 0 if rec.flags & SLAVE else rec.config_epoch
    return records, owners, migrating, importing, current_epoch, last_vote_epoch
