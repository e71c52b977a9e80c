"""The bus codec and the core under bad input: garbage is refused cleanly, never crashes or corrupts state."""

from __future__ import annotations

import random
import socket
import time

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gossip.codec import BusProtocolError, FrameDecoder, MAX_FRAME, encode_message
from gossip.core import ClusterConfig, ClusterState, InboundLink, OutboundLink
from slots.ranges import bits_from_ranges
from gossip.messages import FAIL, MASTER, MEET, PING, PONG, PUBLISH, UPDATE, GossipEntry, Message
from tests.resp_client import RawClient

IDS = st.text("0123456789abcdef", min_size=40, max_size=40)
SLOT_SETS = st.lists(st.tuples(st.integers(0, 16383), st.integers(0, 3000)), max_size=4).map(
    lambda runs: bits_from_ranges([(s, min(16383, s + n)) for s, n in runs]))


def messages():
    return st.builds(
        lambda kind, sender, cur, cfg, slots, gossip_ids, target, channel: _build(
            kind, sender, cur, cfg, slots, gossip_ids, target, channel),
        st.sampled_from([PING, PONG, MEET, FAIL, PUBLISH, UPDATE]), IDS, st.integers(0, 2**63 - 1),
        st.integers(0, 2**63 - 1), SLOT_SETS, st.lists(IDS, max_size=5), IDS,
        st.binary(max_size=50),
    )


def _build(kind, sender, cur, cfg, slots, gossip_ids, target, channel):
    msg = Message(kind, sender, current_epoch=cur, config_epoch=cfg, slots=slots, ip="127.0.0.1", port=7000,
                  cport=17000, flags=MASTER)
    msg.gossip = [GossipEntry(g, 1, 2, "127.0.0.2", 7001, 17001, MASTER) for g in gossip_ids] if kind in (
        PING, PONG, MEET) else []
    if kind == FAIL:
        msg.fail = target
    elif kind == PUBLISH:
        msg.channel, msg.payload = channel, channel[::-1]
    elif kind == UPDATE:
        msg.update = (target, cfg, slots)
    return msg


@settings(max_examples=200, deadline=None)
@given(messages(), st.integers(1, 64))
def test_round_trip_in_any_chunking(msg, chunk):
    frame = encode_message(msg) * 2
    decoder = FrameDecoder()
    out = []
    for i in range(0, len(frame), chunk):
        out += decoder.feed(frame[i:i + chunk])
    assert len(out) == 2
    for got in out:
        assert (got.type, got.sender, got.current_epoch, got.config_epoch, got.slots) == (
            msg.type, msg.sender, msg.current_epoch, msg.config_epoch, msg.slots)
        assert [g.as_list() for g in got.gossip] == [g.as_list() for g in msg.gossip]
        assert (got.fail, got.channel, got.payload, got.update) == (msg.fail, msg.channel, msg.payload, msg.update)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_are_refused_cleanly(data):
    decoder = FrameDecoder()
    try:
        decoder.feed(data)
    except BusProtocolError:
        pass


@settings(max_examples=300, deadline=None)
@given(messages(), st.data())
def test_mutated_frames_decode_or_are_refused(msg, data):
    body = msgpack.unpackb(encode_message(msg)[4:], raw=False)
    key = data.draw(st.sampled_from(sorted(body)))
    body[key] = data.draw(st.one_of(st.none(), st.integers(-2**63, 2**64 - 1), st.text(max_size=50),
                                    st.binary(max_size=10), st.lists(st.integers(-5, 20000), max_size=3)))
    raw = msgpack.packb(body, use_bin_type=True)
    try:
        FrameDecoder().feed(len(raw).to_bytes(4, "big") + raw)
    except BusProtocolError:
        pass


def test_oversized_and_empty_frames():
    with pytest.raises(BusProtocolError):
        FrameDecoder().feed((MAX_FRAME + 1).to_bytes(4, "big"))
    with pytest.raises(BusProtocolError):
        FrameDecoder().feed(b"\0\0\0\0")
    bad_slots = msgpack.packb({"v": 1, "t": 0, "from": "a" * 40, "cur": 0, "cfg": 0, "off": 0,
                               "slots": [[0, 16384]], "master": None, "ip": "", "port": 1, "cport": 2,
                               "flags": 1, "state": 0, "mf": 0, "gossip": []})
    with pytest.raises(BusProtocolError):
        FrameDecoder().feed(len(bad_slots).to_bytes(4, "big") + bad_slots)


def _state(rng_seed=1) -> ClusterState:
    rng = random.Random(rng_seed)
    state = ClusterState("%040x" % rng.getrandbits(160), 7000, 17000, ClusterConfig(node_timeout=2000), rng, 1000)
    state.add_slots(range(0, 100))
    state.drain()
    return state


@settings(max_examples=300, deadline=None)
@given(st.lists(messages(), max_size=8), st.booleans())
def test_core_survives_arbitrary_valid_messages_from_strangers(batch, outbound):
    """Messages from unknown senders: only MEET may add a (handshake) node; slots and epochs stay ours."""
    state = _state()
    me = state.myself.id
    for msg in batch:
        link = OutboundLink("f" * 40) if outbound else InboundLink(1, "127.0.0.9", "127.0.0.1")
        state.receive(msg, link, 5000)
        state.tick(5100)
        state.drain()
    assert state.myself.id == me
    assert state.slots.owners[:100] == [me] * 100
    assert state.current_epoch == 0 and state.myself.config_epoch == 0
    assert all(n.flags & 32 or n is state.myself for n in state.nodes.values())  # strangers only as handshakes


def test_live_node_drops_garbage_on_its_bus(tmp_path):
    from tests.test_cluster_mode import start_cluster_nodes

    node = start_cluster_nodes(1)[0]
    try:
        for payload in (b"\xff" * 64, b"\0\0\0\5hello", b"GET / HTTP/1.1\r\n\r\n", (2**31).to_bytes(4, "big")):
            with socket.create_connection(("127.0.0.1", node.port + 10000), timeout=5) as s:
                s.sendall(payload)
                s.settimeout(5)
                try:
                    assert s.recv(100) == b""  # the node closes the link
                except ConnectionResetError:
                    pass
        # A connection that says nothing at all does not bother anyone either.
        idle = socket.create_connection(("127.0.0.1", node.port + 10000), timeout=5)
        time.sleep(0.3)
        with RawClient(node.port) as c:
            assert c.call("PING") == b"+PONG\r\n"
            assert b"cluster_known_nodes:1" in c.call("CLUSTER", "INFO")
        idle.close()
        assert node.alive()
        assert "Dropping a cluster bus link" in node.log()
        assert "Traceback" not in node.log()
    finally:
        node.stop()
