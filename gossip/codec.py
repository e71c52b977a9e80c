"""The bus wire format, sans-IO: length-prefixed msgpack frames in, ``Message`` objects out.

A frame is a 4-byte big-endian length followed by one msgpack map with short
keys (cluster_spec.md 4.4). ``FrameDecoder.feed(data)`` returns the complete
messages; anything malformed -- bad length, bad msgpack, a missing or
ill-typed field, a slot out of range, an absurd epoch -- raises
``BusProtocolError`` and the shell drops that link, as Redis drops a message
whose length does not match its type. The decoder never trusts a length
before checking it against ``MAX_FRAME``.
"""

from __future__ import annotations

import re

import msgpack

from gossip.messages import (
    FAIL, MEET, PING, PONG, PROTOCOL_VERSION, PUBLISH, PUBLISHSHARD, UPDATE, GossipEntry, Message,
)
from slots import SLOT_COUNT
from slots.ranges import bits_from_ranges, ranges_from_bits

__all__ = ["BusProtocolError", "FrameDecoder", "MAX_FRAME", "decode_message", "encode_message"]

#: A frame bigger than this is garbage, not a message (a PUBLISH of a 512 MB payload aside, which Redis
#: would also struggle with): 64 MB.
MAX_FRAME = 64 * 1024 * 1024
_MAX_EPOCH = 2**63 - 1
_NODE_ID = re.compile(r"[a-z0-9]{40}\Z")
_HEADER = 4


class BusProtocolError(Exception):
    """The peer sent something that is not a valid bus message."""


def _slot_ranges(bits: int) -> list:
    return [[s, e] for s, e in ranges_from_bits(bits)]


def encode_message(msg: Message) -> bytes:
    """One complete frame for ``msg``."""
    body = {
        "v": PROTOCOL_VERSION, "t": msg.type, "from": msg.sender, "cur": msg.current_epoch,
        "cfg": msg.config_epoch, "off": msg.offset, "slots": _slot_ranges(msg.slots), "master": msg.master,
        "ip": msg.ip, "port": msg.port, "cport": msg.cport, "flags": msg.flags, "state": msg.state,
        "mf": msg.mflags,
    }
    if msg.type in (PING, PONG, MEET):
        body["gossip"] = [g.as_list() for g in msg.gossip]
        if msg.marks is not None:  # optional: only a primary's messages to its replicas, only while it has marks
            migrating, importing = msg.marks
            body["mk"] = [[[s, n] for s, n in migrating.items()], [[s, n] for s, n in importing.items()]]
    elif msg.type == FAIL:
        body["fail"] = msg.fail
    elif msg.type in (PUBLISH, PUBLISHSHARD):
        body["pub"] = [msg.channel, msg.payload]
    elif msg.type == UPDATE:
        node_id, epoch, bits = msg.update
        body["upd"] = [node_id, epoch, _slot_ranges(bits)]
    data = msgpack.packb(body, use_bin_type=True)
    return len(data).to_bytes(_HEADER, "big") + data


# ------------------------------------------------------------------ decoding


def _int(value, lo: int = 0, hi: int = _MAX_EPOCH) -> int:
    if type(value) is not int or not lo <= value <= hi:
        raise BusProtocolError(f"bad integer field: {value!r}")
    return value


def _str(value, limit: int = 256) -> str:
    if type(value) is not str or len(value) > limit:
        raise BusProtocolError("bad string field")
    return value


def _node_id(value) -> str:
    if type(value) is not str or not _NODE_ID.match(value):
        raise BusProtocolError(f"bad node id: {value!r}")
    return value


def _ranges(value) -> int:
    if type(value) is not list or len(value) > SLOT_COUNT:
        raise BusProtocolError("bad slot ranges")
    pairs = []
    for item in value:
        if type(item) is not list or len(item) != 2:
            raise BusProtocolError("bad slot range")
        start, end = _int(item[0], 0, SLOT_COUNT - 1), _int(item[1], 0, SLOT_COUNT - 1)
        if start > end:
            raise BusProtocolError("bad slot range order")
        pairs.append((start, end))
    return bits_from_ranges(pairs)


def _marks(value) -> tuple:
    """The optional ``mk`` field: ``[[[slot, node id]...], [[slot, node id]...]]`` -> two dicts."""
    if type(value) is not list or len(value) != 2:
        raise BusProtocolError("bad open slots field")
    out = []
    for part in value:
        if type(part) is not list or len(part) > SLOT_COUNT:
            raise BusProtocolError("bad open slots list")
        marks = {}
        for item in part:
            if type(item) is not list or len(item) != 2:
                raise BusProtocolError("bad open slot")
            marks[_int(item[0], 0, SLOT_COUNT - 1)] = _node_id(item[1])
        out.append(marks)
    return out[0], out[1]


def decode_message(body) -> Message:
    """A ``Message`` from one decoded msgpack map, validating every field used."""
    if type(body) is not dict:
        raise BusProtocolError("frame is not a map")
    try:
        if body["v"] != PROTOCOL_VERSION:
            raise BusProtocolError(f"unsupported bus protocol version {body['v']!r}")
        kind = _int(body["t"], 0, 255)
        master = body["master"]
        msg = Message(
            kind, _node_id(body["from"]),
            current_epoch=_int(body["cur"]), config_epoch=_int(body["cfg"]), offset=_int(body["off"]),
            slots=_ranges(body["slots"]), master=None if master is None else _node_id(master),
            ip=_str(body["ip"], 46), port=_int(body["port"], 0, 65535), cport=_int(body["cport"], 0, 65535),
            flags=_int(body["flags"], 0, 0xFFFF), state=_int(body["state"], 0, 1), mflags=_int(body["mf"], 0, 255),
        )
        if kind in (PING, PONG, MEET):
            entries = body["gossip"]
            if type(entries) is not list or len(entries) > 100_000:
                raise BusProtocolError("bad gossip section")
            for e in entries:
                if type(e) is not list or len(e) != 7:
                    raise BusProtocolError("bad gossip entry")
                msg.gossip.append(GossipEntry(
                    _node_id(e[0]), _int(e[1]), _int(e[2]), _str(e[3], 46), _int(e[4], 0, 65535),
                    _int(e[5], 0, 65535), _int(e[6], 0, 0xFFFF),
                ))
            marks = body.get("mk")
            if marks is not None:
                msg.marks = _marks(marks)
        elif kind == FAIL:
            msg.fail = _node_id(body["fail"])
        elif kind in (PUBLISH, PUBLISHSHARD):
            pub = body["pub"]
            if type(pub) is not list or len(pub) != 2 or type(pub[0]) is not bytes or type(pub[1]) is not bytes:
                raise BusProtocolError("bad publish body")
            msg.channel, msg.payload = pub
        elif kind == UPDATE:
            upd = body["upd"]
            if type(upd) is not list or len(upd) != 3:
                raise BusProtocolError("bad update body")
            msg.update = (_node_id(upd[0]), _int(upd[1]), _ranges(upd[2]))
        return msg
    except KeyError as exc:
        raise BusProtocolError(f"missing field {exc.args[0]!r}") from None


class FrameDecoder:
    """Incremental decoder for one link."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[Message]:
        buf = self._buf
        buf += data
        out = []
        while len(buf) >= _HEADER:
            size = int.from_bytes(buf[:_HEADER], "big")
            if size == 0 or size > MAX_FRAME:
                raise BusProtocolError(f"bad frame length {size}")
            if len(buf) < _HEADER + size:
                break
            raw = bytes(buf[_HEADER:_HEADER + size])
            del buf[:_HEADER + size]
            try:
                body = msgpack.unpackb(raw, raw=False)
            except Exception as exc:  # msgpack raises several types for garbage
                raise BusProtocolError(f"undecodable frame: {type(exc).__name__}") from None
            out.append(decode_message(body))
        return out

    def pending(self) -> int:
        return len(self._buf)
