"""Two or three ClusterStates wired by hand: orderings the simulator reaches only by luck, pinned down.

* A PING is always answered, even by a node that does not know the sender yet.
  Nodes learn of each other through a third node's gossip, so A can learn of B
  (and ping it) before B has heard of A. Redis answers every PING with a PONG
  ("anyway reply with a PONG"); a node that ignored it left A with a ping
  pending forever: A never pinged B again, and if B stayed silent towards A for
  longer than the node timeout A flagged it ``fail?`` for good, on a healthy
  cluster.
* A primary's older message can arrive after a newer one: each direction of a
  pair of nodes has its own TCP link. A PING sent before ADDSLOTS, read after
  the PONG that claims the slots, looks like the primary gave them away; the
  next claim must undo that, or its replica takes none of them when it is
  promoted.
"""

from __future__ import annotations

import random

from gossip.core import ClusterConfig, ClusterState, InboundLink, OutboundLink
from gossip.messages import MASTER, PFAIL, PING, PONG, GossipEntry, Message

NT = 2000


def _node(seed: int, port: int) -> ClusterState:
    rng = random.Random(seed)
    state = ClusterState("%040x" % rng.getrandbits(160), port, port + 10000, ClusterConfig(node_timeout=NT), rng,
                         1000, ip="127.0.0.1")
    state.drain()
    return state


def _learn_from_gossip(learner: ClusterState, about: ClusterState, now: int) -> None:
    """``learner`` hears of ``about`` from a third node it already knows (as after CLUSTER MEET)."""
    third = _node(99, 7009)
    hello = Message(PONG, third.myself.id, ip="127.0.0.1", port=7009, cport=17009, flags=MASTER)
    learner.meet("127.0.0.1", 7009, 17009, now)
    handshake = next(n for n in learner.nodes.values() if n is not learner.myself)
    learner.link_up(handshake.id, now)
    learner.receive(hello, OutboundLink(handshake.id), now)  # handshake done: ``third`` is known
    learner.drain()
    gossip = Message(PONG, third.myself.id, ip="127.0.0.1", port=7009, cport=17009, flags=MASTER)
    gossip.gossip = [GossipEntry(about.myself.id, 0, 0, "127.0.0.1", about.myself.port, about.myself.cport, MASTER)]
    learner.receive(gossip, OutboundLink(third.myself.id), now)
    learner.drain()


def _sends(effects, inbound: bool):
    return [e for e in effects if e.kind == "send" and e.inbound == inbound]


def test_ping_from_an_unknown_sender_gets_a_pong_that_settles_the_pending_ping():
    a, b = _node(1, 7001), _node(2, 7002)
    _learn_from_gossip(a, b, 1000)
    assert b.myself.id in a.nodes and a.myself.id not in b.nodes

    a.link_up(b.myself.id, 1100)
    pings = [e.msg for e in _sends(a.drain(), inbound=False) if e.target == b.myself.id]
    assert pings and a.nodes[b.myself.id].ping_sent == 1100

    b.receive(pings[-1], InboundLink("from-a", "127.0.0.1", "127.0.0.1"), 1110)
    replies = [e for e in _sends(b.drain(), inbound=True) if e.target == "from-a"]
    assert [e.msg.type for e in replies] == [PONG]
    assert a.myself.id not in b.nodes  # a plain PING from a stranger still adds nobody

    a.receive(replies[0].msg, OutboundLink(b.myself.id), 1120)
    record = a.nodes[b.myself.id]
    assert record.ping_sent == 0 and record.pong_received == 1120


def _exchange(nodes: list[ClusterState], now: int) -> None:
    """Carry every effect between ``nodes`` until none is left. Links connect at once; an outbound link is
    addressed by the peer's port (handshake records have made-up ids), an inbound one by the dialler's port."""
    by_port = {n.myself.port: n for n in nodes}
    progress = True
    while progress:
        progress = False
        for state in nodes:
            for effect in state.drain():
                progress = True
                if effect.kind == "connect" and effect.cport - 10000 in by_port:
                    state.link_up(effect.node_id, now)
                elif effect.kind == "send" and not effect.inbound:
                    record = state.nodes.get(effect.target)
                    peer = by_port.get(record.port) if record is not None else None
                    if peer is not None:
                        peer.receive(effect.msg, InboundLink(state.myself.port, "127.0.0.1", "127.0.0.1"), now)
                elif effect.kind == "send" and effect.inbound and effect.target in by_port:
                    dialler = by_port[effect.target]
                    link_id = next(i for i, r in dialler.nodes.items() if r.port == state.myself.port)
                    dialler.receive(effect.msg, OutboundLink(link_id), now)


def test_a_late_learner_is_not_left_suspected():
    """B hears of A only after more than a node timeout; once they talk, A neither suspects B nor waits on it."""
    a, b = _node(1, 7001), _node(2, 7002)
    _learn_from_gossip(a, b, 1000)
    nodes = [a, b]
    late = 1000 + 3 * NT // 2
    for now in range(1000, 1000 + 5 * NT, 100):
        if now == late:
            _learn_from_gossip(b, a, now)
        a.tick(now)
        b.tick(now)
        _exchange(nodes, now)
    record = a.nodes[b.myself.id]
    assert not record.flags & PFAIL
    assert record.ping_sent == 0 or now - record.ping_sent < NT


def test_a_reordered_older_claim_does_not_cost_the_replica_its_primarys_slots():
    primary, replica = _node(1, 7001), _node(2, 7002)
    nodes = [primary, replica]
    primary.meet("127.0.0.1", 7002, 17002, 1000)
    for now in range(1000, 2000, 100):
        primary.tick(now)
        replica.tick(now)
        _exchange(nodes, now)
    assert primary.myself.id in replica.nodes and replica.myself.id in primary.nodes
    before_slots = primary._ping_message(PING)  # claims nothing yet
    primary.add_slots(range(0, 100))
    replica.replicate(primary.myself.id, False)
    for now in range(2000, 5000, 100):
        primary.tick(now)
        replica.tick(now)
        _exchange(nodes, now)
    assert replica.slots.owners[:100] == [primary.myself.id] * 100

    # The old PING arrives late on the primary's link, then the primary's next claim on the replica's link.
    replica.receive(before_slots, InboundLink(primary.myself.port, "127.0.0.1", "127.0.0.1"), 5000)
    replica.receive(primary._ping_message(PONG), OutboundLink(primary.myself.id), 5010)
    replica.drain()

    replica.failover("takeover", 5100)
    assert replica.slots.owners[:100] == [replica.myself.id] * 100
