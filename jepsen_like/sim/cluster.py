"""Run N ``gossip.core.ClusterState`` machines on a simulated network with a simulated clock.

Everything is driven by one seeded ``random.Random``: message delays, loss,
duplication and reordering, the nodes' own randomness (ids, gossip sampling)
and the fault schedule. A run is a pure function of its seed and its
operations, so a failing seed replays exactly.

The network model is a set of directed links like TCP connections: a node's
``connect`` effect opens a link to an address; messages on one link arrive
in order unless the run allows reordering; a partition between two addresses
makes connects fail and silently drops traffic on existing links (as a
firewall dropping packets would), and healing lets new connections through.

Replication is modelled by one number per node, its replication offset: a
primary's grows with simulated writes (``write_rate`` per tick, not while a
manual failover pauses its writes); a replica connected to its primary (both
up, not partitioned) copies the primary's offset minus a random lag, and
otherwise keeps its offset and counts how long its link has been down. The
state machines get both numbers before every tick, as the node's driver feeds
them from its replication layer. Every role change the state machines decide
is recorded in ``events`` for the invariant checkers.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field

from gossip.core import ClusterConfig, ClusterState, InboundLink, OutboundLink
from gossip.messages import FAILED, HANDSHAKE, MASTER, NOADDR, PFAIL, SLAVE
from gossip.codec import FrameDecoder, encode_message
from gossip.state import parse_nodes_conf

__all__ = ["NetworkFaults", "SimCluster", "SimNode"]

TICK_MS = 100


@dataclass
class NetworkFaults:
    """Per-message fault probabilities and delay range (ms).

    Links are TCP-like, so a "lost" message is modelled the way TCP loses
    data: the connection breaks (both ends see it closed, later messages on it
    are gone) and the cron has to reconnect.
    """

    loss: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    min_delay: int = 1
    max_delay: int = 5


class _Link:
    """One TCP-like connection from ``owner`` to the node at ``address``."""

    __slots__ = ("owner", "key", "address", "open", "link_id", "last_arrival")

    def __init__(self, owner, key, address, link_id) -> None:
        self.owner = owner  # SimNode that opened it
        self.key = key  # the owner's node id for the peer (renamed after handshakes)
        self.address = address  # (ip, cport)
        self.open = True
        self.link_id = link_id
        self.last_arrival = 0


@dataclass
class SimNode:
    index: int
    ip: str
    port: int
    state: ClusterState
    alive: bool = True
    saves: int = 0
    log: list = field(default_factory=list)
    offset: int = 0  # replication offset (see the module docstring)
    link_down_since: int = 0  # replica: when its link with the primary went down (0: up)
    paused_until: int = 0  # primary: writes paused by a manual failover until then
    stopped: bool = False  # SIGSTOPped (``pause``): arriving messages wait in ``inbox``
    inbox: list = field(default_factory=list)

    @property
    def cport(self) -> int:
        return self.port + 10000


class SimCluster:
    def __init__(self, n: int, seed: int, *, node_timeout: int = 2000, faults: NetworkFaults | None = None,
                 codec_roundtrip: bool = True, write_rate: int = 0, repl_lag: int = 0, **config) -> None:
        self.seed = seed
        self.write_rate = write_rate
        self.repl_lag = repl_lag
        self.config = dict(config, node_timeout=node_timeout)
        #: (time, node index, "role" reason or "pause"/"unpause", detail) in order
        self.events: list = []
        self.rng = random.Random(seed)
        self.now = 1_700_000_000_000
        self.faults = faults or NetworkFaults()
        self.codec_roundtrip = codec_roundtrip
        self.nodes: list[SimNode] = []
        self.partitioned: set[frozenset] = set()  # pairs of ips that cannot talk
        self.links: dict[int, _Link] = {}
        self._next_link = 0
        self._queue: list = []
        self._seq = 0
        self.trace: list = []
        for i in range(n):
            ip = f"127.0.0.{i + 1}"
            config = ClusterConfig(**self.config)
            node_rng = random.Random(self.rng.getrandbits(64))
            node_id = "%040x" % node_rng.getrandbits(160)
            state = ClusterState(node_id, 7000, 17000, config, node_rng, self.now, ip="")
            self.nodes.append(SimNode(i, ip, 7000, state))

    # ------------------------------------------------------------ helpers

    def by_address(self, ip: str, cport: int) -> SimNode | None:
        for node in self.nodes:
            if node.ip == ip and node.cport == cport:
                return node
        return None

    def can_talk(self, a: str, b: str) -> bool:
        return frozenset((a, b)) not in self.partitioned

    def partition(self, groups: list[list[int]]) -> None:
        """Cut every pair of nodes in different groups; nodes in no group are cut from everyone."""
        self.partitioned = set()
        group_of = {}
        for g, members in enumerate(groups):
            for i in members:
                group_of[i] = g
        for a in self.nodes:
            for b in self.nodes:
                if a.index < b.index and group_of.get(a.index, -1 - a.index) != group_of.get(b.index, -1 - b.index):
                    self.partitioned.add(frozenset((a.ip, b.ip)))

    def heal(self) -> None:
        self.partitioned = set()

    def cut(self, a: int, b: int) -> None:
        """Cut just the pair ``a``-``b`` (a partial partition)."""
        self.partitioned.add(frozenset((self.nodes[a].ip, self.nodes[b].ip)))

    def _schedule(self, at: int, action) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (at, self._seq, action))

    def _delay(self) -> int:
        return self.rng.randint(self.faults.min_delay, self.faults.max_delay)

    # ------------------------------------------------------------ effects

    def _apply(self, node: SimNode) -> None:
        for effect in node.state.drain():
            kind = effect.kind
            if kind == "send":
                self._send(node, effect)
            elif kind == "connect":
                self._connect(node, effect.node_id, effect.ip, effect.cport)
            elif kind == "drop":
                for link in self.links.values():
                    if link.owner is node and link.key == effect.node_id and link.open:
                        link.open = False
            elif kind == "rename":
                for link in self.links.values():
                    if link.owner is node and link.key == effect.node_id and link.open:
                        link.key = effect.new_id
            elif kind == "save":
                node.saves += 1
            elif kind == "log":
                node.log.append((self.now, effect.text))
            elif kind == "role":
                st = node.state
                if effect.master_id is None:
                    detail = (st.myself.config_epoch, st.failover_auth_epoch, node.offset,
                              self._link_down_ms(node))
                else:
                    detail = effect.master_id
                    node.link_down_since = node.link_down_since or self.now  # resync with the new primary
                self.events.append((self.now, node.index, effect.reason, detail))
            elif kind == "pause":
                node.paused_until = effect.until
                self.events.append((self.now, node.index, "pause", (effect.until, node.offset)))
            elif kind == "unpause":
                node.paused_until = 0
                self.events.append((self.now, node.index, "unpause", None))

    def _connect(self, node: SimNode, key: str, ip: str, cport: int) -> None:
        target = self.by_address(ip, cport)
        ok = target is not None and target.alive and self.can_talk(node.ip, ip)
        self._next_link += 1
        link = _Link(node, key, (ip, cport), self._next_link)
        if ok:
            self.links[link.link_id] = link

        def done():
            if node.stopped:
                node.inbox.append(done)  # it learns the outcome when it runs again
                return
            if not node.alive:
                return
            if ok and link.open and self.can_talk(node.ip, ip) and target.alive:
                node.state.link_up(key if link.key == key else link.key, self.now)
            else:
                link.open = False
                node.state.link_down(link.key, self.now)
            self._apply(node)

        self._schedule(self.now + self._delay(), done)

    def _break(self, link: _Link) -> None:
        """The connection resets: the opener learns it after a delay."""
        link.open = False
        owner = link.owner

        def notice():
            if owner.stopped:
                owner.inbox.append(notice)
                return
            if owner.alive:
                owner.state.link_down(link.key, self.now)
                self._apply(owner)

        self._schedule(self.now + self._delay(), notice)

    def _send(self, node: SimNode, effect) -> None:
        msg = effect.msg
        if effect.inbound:
            link = self.links.get(effect.target)
            if link is None or not link.open:
                return
            receiver = link.owner
            make_link = lambda: OutboundLink(link.key)  # noqa: E731
        else:
            link = next((lk for lk in self.links.values()
                         if lk.owner is node and lk.key == effect.target and lk.open), None)
            if link is None:
                return
            receiver = self.by_address(*link.address)
            make_link = lambda: InboundLink(link.link_id, node.ip, receiver.ip)  # noqa: E731
        if receiver is None:
            return
        if self.codec_roundtrip:
            frame = encode_message(msg)
            msg = FrameDecoder().feed(frame)[0]
        copies = 1
        if self.rng.random() < self.faults.loss:
            self._break(link)
            return
        if self.rng.random() < self.faults.duplicate:
            copies = 2
        for _ in range(copies):
            at = self.now + self._delay()
            if self.rng.random() >= self.faults.reorder:
                at = max(at, link.last_arrival)  # in order on one link unless reordering is allowed
            link.last_arrival = at
            sender_ip = node.ip

            def arrive(msg=msg, receiver=receiver, make_link=make_link, sender_ip=sender_ip):
                if receiver.stopped and link.open and self.can_talk(sender_ip, receiver.ip):
                    receiver.inbox.append(arrive)  # the kernel buffers it until the process runs again
                    return
                if not receiver.alive or not link.open or not self.can_talk(sender_ip, receiver.ip):
                    return
                receiver.state.receive(msg, make_link(), self.now)
                self._apply(receiver)

            self._schedule(at, arrive)

    # ------------------------------------------------------------ running

    def run_for(self, ms: int, check=None) -> None:
        """Advance the clock by ``ms``, delivering messages and ticking every node every 100 ms."""
        end = self.now + ms
        next_tick = (self.now // TICK_MS + 1) * TICK_MS
        while True:
            at = self._queue[0][0] if self._queue else None
            if at is not None and at <= min(next_tick, end):
                at, _, action = heapq.heappop(self._queue)
                self.now = max(self.now, at)
                action()
            elif next_tick <= end:
                self.now = next_tick
                self._replicate()
                order = list(self.nodes)
                self.rng.shuffle(order)
                for node in order:
                    if node.alive:
                        node.state.set_replication(node.offset, self._link_down_ms(node))
                        node.state.tick(self.now)
                        self._apply(node)
                next_tick += TICK_MS
                if check is not None:
                    check(self)
            else:
                self.now = end
                return

    # ------------------------------------------------------------ replication model

    def by_id(self, node_id: str | None) -> SimNode | None:
        for node in self.nodes:
            if node.state.myself.id == node_id:
                return node
        return None

    def _link_down_ms(self, node: SimNode) -> int:
        return self.now - node.link_down_since if node.link_down_since else 0

    def _replicate(self) -> None:
        """One tick of the replication model (module docstring)."""
        for node in self.nodes:
            if not node.alive:
                continue
            me = node.state.myself
            if me.flags & MASTER:
                node.link_down_since = 0
                if self.write_rate and node.paused_until <= self.now and node.state.claimed_slots_nonempty(me):
                    node.offset += self.rng.randint(0, self.write_rate)
                continue
            primary = self.by_id(me.master_id)
            if (primary is not None and primary.alive and primary.state.myself.flags & MASTER
                    and self.can_talk(node.ip, primary.ip)):
                lag = self.rng.randint(0, self.repl_lag) if self.repl_lag and primary.paused_until <= self.now else 0
                node.offset = max(0, primary.offset - lag)
                node.link_down_since = 0
            elif not node.link_down_since:
                node.link_down_since = self.now

    # ------------------------------------------------------------ admin helpers

    def meet_all(self) -> None:
        first = self.nodes[0]
        for node in self.nodes[1:]:
            first.state.meet(node.ip, node.port, node.cport, self.now)
        self._apply(first)

    def assign_evenly(self, primaries: int | None = None) -> None:
        count = primaries or len(self.nodes)
        per = 16384 // count
        for i in range(count):
            start = i * per
            end = 16383 if i == count - 1 else start + per - 1
            node = self.nodes[i]
            node.state.set_config_epoch(i + 1) if node.state.myself.config_epoch == 0 and len(
                node.state.nodes) == 1 else None
            node.state.add_slots(range(start, end + 1))
            self._apply(node)

    def kill(self, i: int) -> None:
        self.nodes[i].alive = False
        self.nodes[i].stopped = False
        self.nodes[i].inbox = []
        for link in self.links.values():
            if link.owner is self.nodes[i] or self.by_address(*link.address) is self.nodes[i]:
                link.open = False

    def pause(self, i: int) -> None:
        """SIGSTOP: the node stops (its links stay open; what arrives waits until it runs again)."""
        self.nodes[i].alive = False
        self.nodes[i].stopped = True

    def resume(self, i: int) -> None:
        """SIGCONT after ``pause``: it reads what waited, in order, and carries on (its clock jumped)."""
        node = self.nodes[i]
        node.alive = True
        node.stopped = False
        pending, node.inbox = node.inbox, []
        for arrive in pending:
            arrive()

    def restart(self, i: int) -> None:
        """Start a killed node again from its nodes.conf (its data -- the offset -- survives, as an RDB would)."""
        node = self.nodes[i]
        old = node.state
        text = old.config_text()
        state = ClusterState(old.myself.id, node.port, node.cport, ClusterConfig(**self.config),
                             random.Random(self.rng.getrandbits(64)), self.now, ip="")
        state.load(*parse_nodes_conf(text, self.now))
        state.myself.ip = old.myself.ip
        node.state = state
        node.alive = True
        node.paused_until = 0
        node.link_down_since = self.now if state.myself.flags & SLAVE else 0

    def primaries(self) -> list[SimNode]:
        return [n for n in self.nodes if n.alive and n.state.myself.flags & MASTER
                and n.state.claimed_slots_nonempty(n.state.myself)]

    def replicas(self) -> list[SimNode]:
        return [n for n in self.nodes if n.alive and n.state.myself.flags & SLAVE]

    def converged(self) -> bool:
        """Every live node knows every live node (no handshakes), suspects none of them (no PFAIL/FAIL,
        no PING left unanswered for longer than the node timeout), and agrees on the slot map and epochs."""
        live = [n for n in self.nodes if n.alive]
        ids = {n.state.myself.id for n in live}
        nt = self.config["node_timeout"]
        reference = None
        for n in live:
            st = n.state
            known = {i for i, r in st.nodes.items() if not r.flags & (HANDSHAKE | NOADDR)}
            if not ids <= known or any(r.flags & HANDSHAKE for r in st.nodes.values()):
                return False
            if any(st.nodes[i].flags & (PFAIL | FAILED) for i in ids):
                return False
            if any(r.ping_sent and self.now - r.ping_sent > nt for i, r in st.nodes.items() if i in ids):
                return False
            view = (tuple(st.slots.owners), tuple(sorted((i, st.epoch_shown(r)) for i, r in st.nodes.items()
                                                          if i in ids)))
            if reference is None:
                reference = view
            elif view != reference:
                return False
        return True

    def flags_of(self, observer: int, subject: int) -> int:
        rec = self.nodes[observer].state.nodes.get(self.nodes[subject].state.myself.id)
        return rec.flags if rec else 0

    @staticmethod
    def describe_flags(flags: int) -> str:
        return ",".join(name for bit, name in ((MASTER, "master"), (PFAIL, "pfail"), (FAILED, "fail"))
                        if flags & bit)
