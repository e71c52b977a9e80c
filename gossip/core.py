"""The cluster state machine: membership, heartbeats, failure detection, epochs and slot claims.

Pure, like etcd's raft: it never touches a socket, a clock or the global
random module. Inputs are method calls -- ``tick(now)`` every 100 ms,
``receive(msg, link, now)`` for each bus message, ``link_up``/``link_down``
from the transport, and the admin operations behind CLUSTER commands. Each
input appends effects to ``self.effects``; the driver takes them with
``drain()`` and carries them out (send a message, open or drop a link, save
nodes.conf, deliver a published message...). Randomness (node ids, gossip
sampling) comes from the injected ``rng``. A simulator can therefore run many
of these on a virtual network and clock and replay any failure from a seed.

What each step does follows Redis 7.0's ``cluster.c`` as described in
cluster_spec.md sections 4-6; the section numbers are cited where it helps.
Automatic failover, votes and manual failover (S5) plug into the same
skeleton later.
"""

from __future__ import annotations

import random
from typing import Iterable

from gossip.messages import (
    FAIL, FAILED, HANDSHAKE, MASTER, MEET, MEET_FLAG, MIGRATE_TO, MYSELF, NOADDR, NOFAILOVER, PFAIL, PING, PONG,
    PUBLISH, PUBLISHSHARD, SLAVE, TYPE_NAMES, UPDATE, GossipEntry, Message,
)
from gossip.state import NodeRecord, node_line, valid_node_id
from slots import SLOT_COUNT, SlotMap
from slots.ranges import bits_from_ranges, iter_slots

__all__ = ["ClusterConfig", "ClusterError", "ClusterState", "Effect", "InboundLink", "OutboundLink"]

_FORGET_TTL_MS = 60_000
_WRITABLE_DELAY_MS = 2000
_FAIL_REPORT_VALIDITY_MULT = 2
_FAIL_UNDO_TIME_MULT = 2


class ClusterError(Exception):
    """A CLUSTER command refused; ``str(exc)`` is the exact Redis error line without ``-``."""


class ClusterConfig:
    """The cluster-* directives the state machine reads (the node copies them in on CONFIG SET)."""

    __slots__ = ("node_timeout", "require_full_coverage", "allow_reads_when_down", "allow_replica_migration",
                 "replica_no_failover", "announce_ip")

    def __init__(self, node_timeout: int = 15000, require_full_coverage: bool = True,
                 allow_reads_when_down: bool = False, allow_replica_migration: bool = True,
                 replica_no_failover: bool = False, announce_ip: str = "") -> None:
        self.node_timeout = node_timeout
        self.require_full_coverage = require_full_coverage
        self.allow_reads_when_down = allow_reads_when_down
        self.allow_replica_migration = allow_replica_migration
        self.replica_no_failover = replica_no_failover
        self.announce_ip = announce_ip


class OutboundLink:
    """The link we opened to ``node_id``."""

    __slots__ = ("node_id",)

    def __init__(self, node_id: str) -> None:
        self.node_id = node_id


class InboundLink:
    """A link a peer opened to us: ``link_id`` is the transport's handle; the addresses are the socket's."""

    __slots__ = ("link_id", "peer_ip", "local_ip")

    def __init__(self, link_id, peer_ip: str, local_ip: str) -> None:
        self.link_id = link_id
        self.peer_ip = peer_ip
        self.local_ip = local_ip


class Effect:
    """One thing the driver must do. ``kind`` is one of:

    * ``send``: ``target`` (node id for our outbound link, or an inbound link id
      when ``inbound``), ``msg``;
    * ``connect``: open an outbound link to ``node_id`` at ``ip``:``cport``;
    * ``drop``: close our outbound link to ``node_id``;
    * ``rename``: the outbound link to ``node_id`` now belongs to ``new_id``;
    * ``save``: write nodes.conf (``fsync`` says whether it must reach disk first);
    * ``log``: ``level`` and ``text`` for the node's log;
    * ``deliver``: a PUBLISH/PUBLISHSHARD from the bus (``channel``, ``payload``, ``shard``);
    * ``role``: this node's primary changed to ``master_id`` (None: became a primary);
    * ``drop_slots``: delete the local keys of slot set ``slots`` (lost ownership).
    """

    __slots__ = ("kind", "target", "inbound", "msg", "node_id", "ip", "cport", "new_id", "fsync", "level", "text",
                 "channel", "payload", "shard", "master_id", "slots")

    def __init__(self, kind: str, **fields) -> None:
        self.kind = kind
        for name in self.__slots__[1:]:
            setattr(self, name, fields.get(name))

    def __repr__(self) -> str:
        extra = {k: getattr(self, k) for k in self.__slots__[1:] if getattr(self, k) is not None}
        return f"Effect({self.kind}, {extra})"


def _random_id(rng: random.Random) -> str:
    return "%040x" % rng.getrandbits(160)


class ClusterState:
    """One node's view of the cluster and the rules that change it."""

    def __init__(self, myself_id: str, port: int, cport: int, config: ClusterConfig, rng: random.Random,
                 now: int, ip: str = "") -> None:
        self.config = config
        self.rng = rng
        self.myself = NodeRecord(myself_id, MYSELF | MASTER, now, ip=ip or config.announce_ip, port=port,
                                 cport=cport)
        self.nodes: dict[str, NodeRecord] = {myself_id: self.myself}
        self.slots = SlotMap()
        #: Slots still bound to an owner that stopped claiming them (Redis's owner_not_claiming_slot).
        self.not_claimed = 0
        self.current_epoch = 0
        self.last_vote_epoch = 0
        self.state_ok = False
        self.size = 1  # masters serving at least one slot, as of the last state evaluation
        self.blacklist: dict[str, int] = {}  # forgotten node id -> expiry time (ms)
        self.effects: list[Effect] = []
        self.stats_sent = [0] * len(TYPE_NAMES)
        self.stats_received = [0] * len(TYPE_NAMES)
        self.started = now
        self.first_state_eval = 0
        self.minority_since = 0
        self.ticks = 0
        self._update_state = True
        #: Bumped on every change clients can see (slot map, roles, epochs, addresses): reply caches key on it.
        self.version = 0
        self._bits_cache: dict | None = None

    # ================================================================ effects

    def drain(self) -> list[Effect]:
        out, self.effects = self.effects, []
        return out

    def _effect(self, kind: str, **fields) -> None:
        self.effects.append(Effect(kind, **fields))

    def _log(self, text: str, level: str = "notice") -> None:
        self._effect("log", level=level, text=text)

    def _save(self, fsync: bool = False) -> None:
        self.version += 1
        self._effect("save", fsync=fsync)

    def _send(self, node: NodeRecord, msg: Message) -> None:
        self.stats_sent[msg.type] += 1
        self._effect("send", target=node.id, inbound=False, msg=msg)

    def _reply(self, link: InboundLink | OutboundLink, msg: Message) -> None:
        self.stats_sent[msg.type] += 1
        if isinstance(link, InboundLink):
            self._effect("send", target=link.link_id, inbound=True, msg=msg)
        else:
            self._effect("send", target=link.node_id, inbound=False, msg=msg)

    def _broadcast(self, msg_factory, *, only=None) -> None:
        """Send a message to every node with an outbound link (not in handshake)."""
        for node in list(self.nodes.values()):
            if node is self.myself or not node.link or node.flags & (HANDSHAKE | NOADDR):
                continue
            if only is not None and not only(node):
                continue
            self._send(node, msg_factory())

    # ================================================================ views

    @property
    def my_master(self) -> NodeRecord | None:
        if self.myself.flags & SLAVE and self.myself.master_id:
            return self.nodes.get(self.myself.master_id)
        return None

    def claimed_slots(self, node: NodeRecord) -> int:
        """The slot bits ``node`` serves in our table."""
        return self._owner_bits().get(node.id, 0)

    def _owner_bits(self) -> dict:
        """Owner id -> slot bit set, cached until the slot table changes (``_slots_changed``)."""
        cache = self._bits_cache
        if cache is None:
            cache = self._bits_cache = {
                owner: bits_from_ranges(ranges) for owner, ranges in self.slots.by_owner().items()
            }
        return cache

    def _slots_changed(self) -> None:
        self._bits_cache = None
        self.version += 1

    def epoch_shown(self, node: NodeRecord) -> int:
        """A replica's configEpoch as CLUSTER NODES prints it: its master's."""
        if node.flags & SLAVE and node.master_id in self.nodes:
            return self.nodes[node.master_id].config_epoch
        return node.config_epoch

    def replicas_of(self, master_id: str) -> list[NodeRecord]:
        return [n for n in self.nodes.values() if n.flags & SLAVE and n.master_id == master_id]

    def max_epoch(self) -> int:
        return max([self.current_epoch] + [n.config_epoch for n in self.nodes.values()])

    def nodes_text(self, *, for_config: bool = False) -> str:
        """CLUSTER NODES (or, with ``for_config``, nodes.conf without the vars line)."""
        by_owner = self.slots.by_owner()
        lines = []
        for node in self.nodes.values():
            if for_config and node.flags & HANDSHAKE:
                continue
            bits = bits_from_ranges(by_owner.get(node.id, ()))
            open_slots = self._open_slots_text() if node is self.myself else ""
            lines.append(node_line(node, bits, self.epoch_shown(node), open_slots=open_slots))
        return "".join(line + "\n" for line in lines)

    def config_text(self) -> str:
        return self.nodes_text(for_config=True) + (
            f"vars currentEpoch {self.current_epoch} lastVoteEpoch {self.last_vote_epoch}\n")

    def _open_slots_text(self) -> str:
        tokens = []
        marks = sorted(set(self.slots.migrating_to) | set(self.slots.importing_from))
        for slot in marks:
            if slot in self.slots.migrating_to:
                tokens.append(f"[{slot}->-{self.slots.migrating_to[slot]}]")
            else:
                tokens.append(f"[{slot}-<-{self.slots.importing_from[slot]}]")
        return " ".join(tokens)

    # ================================================================ messages out

    def _header(self, kind: int) -> Message:
        me = self.myself
        master = self.my_master
        claim_owner = master if master is not None else me
        return Message(
            kind, me.id, current_epoch=self.current_epoch, config_epoch=claim_owner.config_epoch,
            offset=me.repl_offset, slots=self.claimed_slots(claim_owner) & ~self.not_claimed
            if claim_owner is me else self.claimed_slots(claim_owner),
            master=me.master_id if me.flags & SLAVE else None, ip=self.config.announce_ip, port=me.port,
            cport=me.cport, flags=me.flags & ~(MEET_FLAG | MIGRATE_TO), state=0 if self.state_ok else 1,
        )

    def _ping_message(self, kind: int) -> Message:
        msg = self._header(kind)
        others = [n for n in self.nodes.values() if n is not self.myself]
        wanted = max(3, len(self.nodes) // 10)
        wanted = min(wanted, max(0, len(self.nodes) - 2))
        chosen: dict[str, NodeRecord] = {}
        attempts = wanted * 3
        while others and attempts > 0 and len(chosen) < wanted:
            attempts -= 1
            node = others[self.rng.randrange(len(others))]
            if node.flags & (PFAIL | HANDSHAKE | NOADDR) or node.id in chosen:
                continue
            if not node.link and not self.claimed_slots_nonempty(node):
                continue
            chosen[node.id] = node
        for node in others:
            if node.flags & PFAIL and not node.flags & (HANDSHAKE | NOADDR):
                chosen[node.id] = node
        msg.gossip = [
            GossipEntry(n.id, n.ping_sent, n.pong_received, n.ip, n.port, n.cport, n.flags & ~(MEET_FLAG | MIGRATE_TO))
            for n in chosen.values()
        ]
        return msg

    def claimed_slots_nonempty(self, node: NodeRecord) -> bool:
        return node.id in self._owner_bits()

    def _send_ping(self, node: NodeRecord, now: int, kind: int = PING) -> None:
        if kind in (PING, MEET) and node.ping_sent == 0:
            node.ping_sent = now
        self._send(node, self._ping_message(kind))

    # ================================================================ links

    def link_up(self, node_id: str, now: int) -> None:
        """Our outbound link to ``node_id`` connected: greet with MEET (handshake) or PING."""
        node = self.nodes.get(node_id)
        if node is None:
            return
        node.connecting = False
        node.link = True
        node.link_created = now
        old_ping = node.ping_sent
        if node.flags & MEET_FLAG:
            node.flags &= ~MEET_FLAG
            self._send_ping(node, now, MEET)
        else:
            self._send_ping(node, now, PING)
        if old_ping:
            node.ping_sent = old_ping  # a reconnect keeps the original pending-ping time
        self.version += 1

    def link_down(self, node_id: str, now: int) -> None:
        """Our outbound link to ``node_id`` failed or closed; the cron reconnects."""
        node = self.nodes.get(node_id)
        if node is None:
            return
        was = node.link
        node.link = False
        node.connecting = False
        if node.ping_sent == 0:
            node.ping_sent = now  # keep failure detection moving while it cannot be reached
        if was:
            self.version += 1

    def _drop_link(self, node: NodeRecord) -> None:
        if node.link or node.connecting:
            node.link = False
            node.connecting = False
            self._effect("drop", node_id=node.id)

    # ================================================================ cron

    def tick(self, now: int) -> None:
        """The 100 ms cluster cron (cluster_spec.md 4.6)."""
        self.ticks += 1
        nt = self.config.node_timeout
        handshake_timeout = max(nt, 1000)
        for node_id, until in list(self.blacklist.items()):
            if until <= now:
                del self.blacklist[node_id]
        for node in list(self.nodes.values()):
            if node is self.myself or node.flags & NOADDR:
                continue
            if node.flags & HANDSHAKE and now - node.created > handshake_timeout:
                self._delete_node(node)
                continue
            if not node.link and not node.connecting:
                node.connecting = True
                self._effect("connect", node_id=node.id, ip=node.ip, cport=node.cport)
        if self.ticks % 10 == 0:
            candidates = [n for n in self.nodes.values()
                          if n is not self.myself and n.link and n.ping_sent == 0
                          and not n.flags & (HANDSHAKE | NOADDR)]
            sample = [candidates[self.rng.randrange(len(candidates))] for _ in range(5)] if candidates else []
            if sample:
                oldest = min(sample, key=lambda n: n.pong_received)
                self._send_ping(oldest, now)
        for node in list(self.nodes.values()):
            if node is self.myself or node.flags & (NOADDR | HANDSHAKE):
                continue
            ping_delay = now - node.ping_sent if node.ping_sent else 0
            data_delay = now - node.data_received
            if (node.link and now - node.link_created > nt and node.ping_sent and ping_delay > nt // 2
                    and data_delay > nt // 2):
                self._drop_link(node)  # the watchdog: a link that answers nothing is reopened
            if node.link and node.ping_sent == 0 and now - node.pong_received > nt // 2:
                self._send_ping(node, now)
                continue
            if node.ping_sent and min(ping_delay, data_delay) > nt and not node.flags & (PFAIL | FAILED):
                node.flags |= PFAIL
                self._log(f"*** NODE {node.id} possibly failing", "debug")
                self._update_state = True
                self.version += 1
        if self._update_state or not self.state_ok:
            self.update_state(now)

    # ================================================================ cluster state

    def update_state(self, now: int) -> None:
        """Evaluate ok/fail (cluster_spec.md 5.5)."""
        self._update_state = False
        if self.first_state_eval == 0:
            self.first_state_eval = now
        me = self.myself
        if me.flags & MASTER and not self.state_ok and now - self.first_state_eval < _WRITABLE_DELAY_MS:
            return  # give a restarted primary time to learn a newer configuration first
        ok = True
        counts = self._owner_bits()
        if self.config.require_full_coverage:
            if self.slots.unbound_count():
                ok = False
            else:
                for owner in counts:
                    node = self.nodes.get(owner)
                    if node is None or node.flags & FAILED:
                        ok = False
                        break
        size = reachable = 0
        for owner in counts:
            if owner is None:
                continue
            node = self.nodes.get(owner)
            if node is None or not node.flags & MASTER:
                continue
            size += 1
            if not node.flags & (FAILED | PFAIL):
                reachable += 1
        self.size = size
        if reachable < size // 2 + 1:
            ok = False
            self.minority_since = now
        if ok != self.state_ok:
            if ok and me.flags & MASTER and self.minority_since:
                rejoin = min(max(self.config.node_timeout, 500), 5000)
                if now - self.minority_since < rejoin:
                    return
            self.state_ok = ok
            self.version += 1
            self._log(f"Cluster state changed: {'ok' if ok else 'fail'}")

    # ================================================================ receiving

    def receive(self, msg: Message, link: InboundLink | OutboundLink, now: int) -> None:
        """Process one message that arrived on ``link`` (cluster_spec.md 4.9)."""
        if 0 <= msg.type < len(self.stats_received):
            self.stats_received[msg.type] += 1
        else:
            return  # unknown types are ignored
        sender = self.nodes.get(msg.sender)
        if sender is self.myself:
            return  # our own id: a loop or an impostor
        if sender is not None and sender.flags & HANDSHAKE:
            sender = None
        if sender is not None:
            sender.data_received = now
        kind = msg.type
        if sender is not None and kind in (PING, PONG, MEET):
            if msg.current_epoch > self.current_epoch:
                self.current_epoch = msg.current_epoch
                self._save()
            if msg.master is None and msg.config_epoch > sender.config_epoch:
                sender.config_epoch = msg.config_epoch
                self._save(fsync=True)
            sender.repl_offset = msg.offset
        if kind in (PING, MEET):
            if isinstance(link, InboundLink) and not self.myself.ip and not self.config.announce_ip and link.local_ip:
                self.myself.ip = link.local_ip
                self._log(f"IP address for this node updated to {link.local_ip}")
                self._save()
            if sender is None and kind == MEET and isinstance(link, InboundLink):
                node = NodeRecord(_random_id(self.rng), HANDSHAKE, now, ip=msg.ip or link.peer_ip, port=msg.port,
                                  cport=msg.cport)
                self.nodes[node.id] = node
                self._process_gossip(msg, None, now)
                self._save()
            if sender is not None or kind == MEET:
                self._reply(link, self._ping_message(PONG))
        if kind in (PING, PONG, MEET):
            if isinstance(link, OutboundLink):
                rec = self.nodes.get(link.node_id)
                if rec is None:
                    return
                rec.data_received = now
                if rec.flags & HANDSHAKE:
                    self._finish_handshake(rec, msg, now)
                    return
                if rec.id != msg.sender:
                    self._log(f"PONG contains mismatching sender ID. About node {rec.id} added {now - rec.created} "
                              "ms ago, having flags " + str(rec.flags), "verbose")
                    rec.flags |= NOADDR
                    rec.ip, rec.port, rec.cport = "", 0, 0
                    self._drop_link(rec)
                    self._save()
                    return
            if sender is None:
                return
            sender.flags = (sender.flags & ~NOFAILOVER) | (msg.flags & NOFAILOVER)
            if kind == PING and isinstance(link, InboundLink):
                ip = msg.ip or link.peer_ip
                if (ip, msg.port, msg.cport) != (sender.ip, sender.port, sender.cport) and ip:
                    sender.ip, sender.port, sender.cport = ip, msg.port, msg.cport
                    sender.flags &= ~NOADDR
                    self._drop_link(sender)
                    self._log(f"Address updated for node {sender.id}, now {ip}:{msg.port}")
                    self._save()
            if kind == PONG and isinstance(link, OutboundLink):
                sender.pong_received = now
                sender.ping_sent = 0
                if sender.flags & PFAIL:
                    sender.flags &= ~PFAIL
                    self._update_state = True
                    self.version += 1
                elif sender.flags & FAILED:
                    self._clear_failure_if_needed(sender, now)
            self._apply_role(sender, msg)
            self._apply_claims(sender, msg, now)
            if (msg.master is None and sender.flags & MASTER and self.myself.flags & MASTER
                    and sender.config_epoch == self.myself.config_epoch):
                self._handle_epoch_collision(sender)
            self._process_gossip(msg, sender, now)
        elif kind == FAIL:
            if sender is None:
                return
            failing = self.nodes.get(msg.fail)
            if failing is not None and failing is not self.myself and not failing.flags & FAILED:
                self._log(f"FAIL message received from {sender.id} about {failing.id}")
                failing.flags = (failing.flags | FAILED) & ~PFAIL
                failing.fail_time = now
                self._update_state = True
                self._save()
        elif kind in (PUBLISH, PUBLISHSHARD):
            if sender is None:
                return
            self._effect("deliver", channel=msg.channel, payload=msg.payload, shard=kind == PUBLISHSHARD)
        elif kind == UPDATE:
            if sender is None or msg.update is None:
                return
            node_id, epoch, bits = msg.update
            subject = self.nodes.get(node_id)
            if subject is None:
                return
            if epoch <= subject.config_epoch:
                return
            if subject.flags & SLAVE:
                self._set_master(subject)
            subject.config_epoch = epoch
            self._save(fsync=True)
            self._update_slots_with(subject, epoch, bits, now)

    def _finish_handshake(self, rec: NodeRecord, msg: Message, now: int) -> None:
        """A PONG on the link to a handshake node: learn its real id (cluster_spec.md 4.8 step 4)."""
        if msg.type != PONG:
            return
        known = self.nodes.get(msg.sender)
        if known is not None and known is not rec:
            if known is not self.myself and (known.ip, known.port, known.cport) != (rec.ip, rec.port, rec.cport):
                known.ip, known.port, known.cport = rec.ip, rec.port, rec.cport
                known.flags &= ~NOADDR
                self._drop_link(known)
            self._delete_node(rec)
            self._save()
            return
        if msg.sender in self.blacklist:
            self._delete_node(rec)
            return
        old_id = rec.id
        del self.nodes[old_id]
        rec.id = msg.sender
        self.nodes[rec.id] = rec
        self._effect("rename", node_id=old_id, new_id=rec.id)
        rec.flags &= ~HANDSHAKE
        rec.flags |= msg.flags & (MASTER | SLAVE)
        rec.pong_received = now
        rec.ping_sent = 0
        self._log(f"Handshake with node {rec.id} completed.", "verbose")
        self._apply_role(rec, msg)
        self._apply_claims(rec, msg, now)
        self._process_gossip(msg, rec, now)
        self._save()

    def _apply_role(self, sender: NodeRecord, msg: Message) -> None:
        if msg.master is None:
            if not sender.flags & MASTER or sender.flags & SLAVE:
                self._set_master(sender)
            return
        if sender.flags & MASTER:
            # It was a master: it lost its slots to whoever it now follows.
            self.slots.owners = [None if o == sender.id else o for o in self.slots.owners]
            self._slots_changed()
            sender.flags = (sender.flags & ~(MASTER | MIGRATE_TO)) | SLAVE
            self._update_state = True
            self._save()
        if sender.master_id != msg.master:
            sender.master_id = msg.master
            if msg.master not in self.nodes:
                pass  # learned later through gossip
            self._save()

    def _set_master(self, node: NodeRecord) -> None:
        if node.flags & SLAVE:
            node.flags |= MIGRATE_TO
        node.flags = (node.flags & ~SLAVE) | MASTER
        node.master_id = None
        self._save()

    def _apply_claims(self, sender: NodeRecord, msg: Message, now: int) -> None:
        """Slot claims of a master sender, and UPDATEs for stale ones (cluster_spec.md 4.9 step 9)."""
        claimer = sender if msg.master is None else self.nodes.get(msg.master)
        if claimer is None:
            return
        ours = self.claimed_slots(claimer)
        if ours == msg.slots:
            return
        if msg.master is None:
            self._update_slots_with(sender, msg.config_epoch, msg.slots, now)
        # Tell the sender about any slot it claims that a node with a higher epoch owns.
        for slot in iter_slots(msg.slots):
            owner_id = self.slots.owners[slot]
            if owner_id is None or owner_id == sender.id or owner_id == claimer.id:
                continue
            owner = self.nodes.get(owner_id)
            if owner is None or self.not_claimed >> slot & 1:
                continue
            if owner.config_epoch > msg.config_epoch:
                self._log(f"Node {sender.id} has old slots configuration, sending an UPDATE message about "
                          f"{owner.id}", "verbose")
                update = self._header(UPDATE)
                update.update = (owner.id, owner.config_epoch, self.claimed_slots(owner))
                if sender.link:
                    self._send(sender, update)
                break

    def _update_slots_with(self, sender: NodeRecord, epoch: int, claimed: int, now: int) -> None:
        """Redis's clusterUpdateSlotsConfigWith (cluster_spec.md 6.4)."""
        me = self.myself
        curmaster = me if me.flags & MASTER else self.my_master
        if sender is me:
            return
        owners = self.slots.owners
        new_master = None
        dirty = 0
        moved_from_us = 0
        changed = False
        for slot in iter_slots(claimed):
            owner_id = owners[slot]
            if owner_id == sender.id:
                self.not_claimed &= ~(1 << slot)
                continue
            if slot in self.slots.importing_from:
                continue
            owner = self.nodes.get(owner_id) if owner_id is not None else None
            if owner is None or self.not_claimed >> slot & 1 or owner.config_epoch < epoch:
                if owner_id == me.id:
                    dirty |= 1 << slot
                if curmaster is not None and owner_id == curmaster.id:
                    new_master = sender
                    moved_from_us += 1
                owners[slot] = sender.id
                self.not_claimed &= ~(1 << slot)
                changed = True
        # Slots the sender no longer claims keep their binding but are marked, so
        # clients get redirected rather than CLUSTERDOWN while the new claim spreads.
        for slot, owner_id in enumerate(owners):
            if owner_id == sender.id and not claimed >> slot & 1:
                self.not_claimed |= 1 << slot
        if not changed:
            return
        self._slots_changed()
        self._update_state = True
        self._save(fsync=True)
        if (new_master is not None and curmaster is not None and not self.claimed_slots_nonempty(curmaster)
                and (self.config.allow_replica_migration or moved_from_us == (claimed.bit_count()))):
            self._log(f"Configuration change detected. Reconfiguring myself as a replica of {sender.id}")
            self._become_replica_of(sender)
        elif dirty:
            for slot in iter_slots(dirty):
                self.slots.migrating_to.pop(slot, None)
            self._effect("drop_slots", slots=dirty)

    def _become_replica_of(self, master: NodeRecord) -> None:
        me = self.myself
        if me.flags & MASTER:
            me.flags = (me.flags & ~(MASTER | MIGRATE_TO)) | SLAVE
            self.slots.migrating_to.clear()
            self.slots.importing_from.clear()
        me.master_id = master.id
        self._update_state = True
        self._save(fsync=True)
        self._effect("role", master_id=master.id)

    def _handle_epoch_collision(self, sender: NodeRecord) -> None:
        """Equal configEpochs between two masters: the smaller id takes a new one (cluster_spec.md 6.5)."""
        if self.myself.id >= sender.id:
            return
        self.current_epoch += 1
        self.myself.config_epoch = self.current_epoch
        self._save(fsync=True)
        self._log(f"WARNING: configEpoch collision with node {sender.id}. configEpoch set to "
                  f"{self.myself.config_epoch}", "verbose")

    def _process_gossip(self, msg: Message, sender: NodeRecord | None, now: int) -> None:
        """Failure reports, pong times, moved addresses, and nodes we did not know (cluster_spec.md 4.7).

        Unknown nodes are only learned from a known sender (a MEET's gossip is
        processed too, but can then only refresh nodes we already know).
        """
        sender_is_master = sender is not None and sender.flags & MASTER
        for entry in msg.gossip:
            node = self.nodes.get(entry.node_id)
            if node is not None:
                if node is self.myself:
                    continue
                if sender_is_master:
                    if entry.flags & (FAILED | PFAIL):
                        if sender.id not in node.fail_reports:
                            self._log(f"Node {sender.id} reported node {node.id} as not reachable.", "verbose")
                        node.fail_reports[sender.id] = now
                        self._mark_failing_if_needed(node, now)
                    elif node.fail_reports.pop(sender.id, None) is not None:
                        self._log(f"Node {sender.id} reported node {node.id} is back online.", "verbose")
                if (not entry.flags & (FAILED | PFAIL) and node.ping_sent == 0 and not self._live_reports(node, now)
                        and entry.pong_received > node.pong_received and entry.pong_received <= now + 500):
                    node.pong_received = entry.pong_received
                if (node.flags & (FAILED | PFAIL) and not entry.flags & NOADDR and entry.ip
                        and (node.ip, node.port, node.cport) != (entry.ip, entry.port, entry.cport)):
                    node.ip, node.port, node.cport = entry.ip, entry.port, entry.cport
                    self._drop_link(node)
                continue
            if sender is not None and not entry.flags & NOADDR and entry.node_id not in self.blacklist \
                    and valid_node_id(entry.node_id):
                flags = entry.flags & (MASTER | SLAVE | PFAIL | FAILED | NOFAILOVER)
                new = NodeRecord(entry.node_id, flags, now, ip=entry.ip, port=entry.port, cport=entry.cport)
                if flags & FAILED:
                    new.fail_time = now
                self.nodes[new.id] = new
                self._save()

    def _live_reports(self, node: NodeRecord, now: int) -> int:
        validity = self.config.node_timeout * _FAIL_REPORT_VALIDITY_MULT
        reports = node.fail_reports
        for reporter, when in list(reports.items()):
            if now - when > validity or reporter not in self.nodes:
                del reports[reporter]
        return len(reports)

    def _mark_failing_if_needed(self, node: NodeRecord, now: int) -> None:
        """PFAIL -> FAIL once a majority of slot-serving masters agree (cluster_spec.md 5.3)."""
        if not node.flags & PFAIL or node.flags & FAILED:
            return
        failures = self._live_reports(node, now) + (1 if self.myself.flags & MASTER else 0)
        quorum = self.size // 2 + 1
        if failures < quorum:
            return
        self._log(f"Marking node {node.id} as failing (quorum reached).")
        node.flags = (node.flags | FAILED) & ~PFAIL
        node.fail_time = now
        failed_id = node.id

        def fail_message():
            msg = self._header(FAIL)
            msg.fail = failed_id
            return msg

        self._broadcast(fail_message)
        self._update_state = True
        self._save()

    def _clear_failure_if_needed(self, node: NodeRecord, now: int) -> None:
        """cluster_spec.md 5.4."""
        if node.flags & SLAVE or not self.claimed_slots_nonempty(node):
            self._log(f"Clear FAIL state for node {node.id}: "
                      f"{'replica' if node.flags & SLAVE else 'master without slots'} is reachable again.")
            node.flags &= ~FAILED
            self._update_state = True
            self._save()
            return
        if now - node.fail_time > self.config.node_timeout * _FAIL_UNDO_TIME_MULT:
            self._log(f"Clear FAIL state for node {node.id}: is reachable again and nobody is serving its slots "
                      "after some time.")
            node.flags &= ~FAILED
            self._update_state = True
            self._save()

    def _delete_node(self, node: NodeRecord) -> None:
        self._drop_link(node)
        self.nodes.pop(node.id, None)
        for other in self.nodes.values():
            other.fail_reports.pop(node.id, None)
        owners = self.slots.owners
        if node.id in owners:
            self.slots.owners = [None if o == node.id else o for o in owners]
            self._slots_changed()
        self.version += 1

    # ================================================================ publishing

    def publish(self, channel: bytes, payload: bytes, *, shard: bool = False) -> None:
        """Forward a PUBLISH (all nodes) or SPUBLISH (my shard) over the bus."""
        def make():
            msg = self._header(PUBLISHSHARD if shard else PUBLISH)
            msg.channel, msg.payload = channel, payload
            return msg

        if shard:
            me = self.myself
            master_id = me.id if me.flags & MASTER else me.master_id
            self._broadcast(make, only=lambda n: n.id == master_id or n.master_id == master_id)
        else:
            self._broadcast(make)

    # ================================================================ admin operations (CLUSTER ...)

    def meet(self, ip: str, port: int, cport: int, now: int) -> None:
        for node in self.nodes.values():
            if node.flags & HANDSHAKE and (node.ip, node.port, node.cport) == (ip, port, cport):
                return  # a handshake to that address is already under way
        node = NodeRecord(_random_id(self.rng), HANDSHAKE | MEET_FLAG, now, ip=ip, port=port, cport=cport)
        self.nodes[node.id] = node
        self.version += 1

    def _check_slots(self, slots: Iterable[int], *, adding: bool) -> list[int]:
        seen = set()
        out = []
        for slot in slots:
            if adding and self.slots.owners[slot] is not None:
                raise ClusterError(f"ERR Slot {slot} is already busy")
            if not adding and self.slots.owners[slot] is None:
                raise ClusterError(f"ERR Slot {slot} is already unassigned")
            if slot in seen:
                raise ClusterError(f"ERR Slot {slot} specified multiple times")
            seen.add(slot)
            out.append(slot)
        return out

    def add_slots(self, slots: Iterable[int]) -> None:
        for slot in self._check_slots(slots, adding=True):
            self.slots.importing_from.pop(slot, None)
            self.slots.owners[slot] = self.myself.id
            self.not_claimed &= ~(1 << slot)
        self._slots_changed()
        self._update_state = True
        self._save()

    def del_slots(self, slots: Iterable[int]) -> None:
        for slot in self._check_slots(slots, adding=False):
            self.slots.importing_from.pop(slot, None)
            self.slots.owners[slot] = None
        self._slots_changed()
        self._update_state = True
        self._save()

    def flush_slots(self) -> None:
        self.slots.owners = [None if o == self.myself.id else o for o in self.slots.owners]
        self._slots_changed()
        self._update_state = True
        self._save()

    def known(self, node_id: str) -> NodeRecord | None:
        node = self.nodes.get(node_id)
        if node is None or node.flags & HANDSHAKE:
            return None
        return node

    def set_slot(self, slot: int, action: str, node_id: str | None, slot_has_keys: bool, now: int) -> None:
        """CLUSTER SETSLOT (cluster_spec.md 2.7); ``action`` is lower case."""
        me = self.myself
        if me.flags & SLAVE:
            raise ClusterError("ERR Please use SETSLOT only with masters.")
        owners = self.slots.owners
        if action == "migrating":
            if owners[slot] != me.id:
                raise ClusterError(f"ERR I'm not the owner of hash slot {slot}")
            target = self.known(node_id)
            if target is None:
                raise ClusterError(f"ERR I don't know about node {node_id}")
            if target.flags & SLAVE:
                raise ClusterError("ERR Target node is not a master")
            self.slots.migrating_to[slot] = target.id
        elif action == "importing":
            if owners[slot] == me.id:
                raise ClusterError(f"ERR I'm already the owner of hash slot {slot}")
            source = self.known(node_id)
            if source is None:
                raise ClusterError(f"ERR I don't know about node {node_id}")
            if source.flags & SLAVE:
                raise ClusterError("ERR Target node is not a master")
            self.slots.importing_from[slot] = source.id
        elif action == "stable":
            self.slots.migrating_to.pop(slot, None)
            self.slots.importing_from.pop(slot, None)
        elif action == "node":
            target = self.known(node_id)
            if target is None:
                raise ClusterError(f"ERR Unknown node {node_id}")
            if target.flags & SLAVE:
                raise ClusterError("ERR Target node is not a master")
            if owners[slot] == me.id and target is not me and slot_has_keys:
                raise ClusterError(f"ERR Can't assign hashslot {slot} to a different node while I still hold keys "
                                   "for this hash slot.")
            was_mine = owners[slot] == me.id
            if not slot_has_keys and slot in self.slots.migrating_to:
                del self.slots.migrating_to[slot]
            owners[slot] = target.id
            self.not_claimed &= ~(1 << slot)
            self._slots_changed()
            if (was_mine and target is not me and not self.claimed_slots_nonempty(me)
                    and self.config.allow_replica_migration):
                self._log(f"Configuration change detected. Reconfiguring myself as a replica of {target.id}")
                self._become_replica_of(target)
            if target is me and slot in self.slots.importing_from:
                if self.bump_epoch() == "BUMPED":
                    self._log(f"configEpoch updated after importing slot {slot}")
                del self.slots.importing_from[slot]
                self._broadcast(lambda: self._ping_message(PONG))
        else:
            raise ClusterError("ERR Invalid CLUSTER SETSLOT action or number of arguments. Try CLUSTER HELP")
        self._update_state = True
        self._save(fsync=action == "node")

    def bump_epoch(self) -> str:
        """Bump my configEpoch without consensus if it is 0 or not the unique maximum (cluster_spec.md 6.3)."""
        me = self.myself
        max_epoch = self.max_epoch()
        if me.config_epoch == 0 or me.config_epoch != max_epoch or any(
                n.config_epoch == max_epoch for n in self.nodes.values() if n is not me):
            self.current_epoch += 1
            me.config_epoch = self.current_epoch
            self._save(fsync=True)
            self._log(f"New configEpoch set to {me.config_epoch}")
            return "BUMPED"
        return "STILL"

    def set_config_epoch(self, epoch: int) -> None:
        if epoch < 0:
            raise ClusterError(f"ERR Invalid config epoch specified: {epoch}")
        if len(self.nodes) > 1:
            raise ClusterError("ERR The user can assign a config epoch only when the node does not know any "
                               "other node.")
        if self.myself.config_epoch != 0:
            raise ClusterError("ERR Node config epoch is already non-zero")
        self.myself.config_epoch = epoch
        if self.current_epoch < epoch:
            self.current_epoch = epoch
        self._update_state = True
        self._save(fsync=True)
        self._log(f"configEpoch set to {epoch} via CLUSTER SET-CONFIG-EPOCH")

    def forget(self, node_id: str, now: int) -> None:
        node = self.known(node_id)
        if node is None:
            raise ClusterError(f"ERR Unknown node {node_id}")
        if node is self.myself:
            raise ClusterError("ERR I tried hard but I can't forget myself...")
        if self.myself.flags & SLAVE and self.myself.master_id == node.id:
            raise ClusterError("ERR Can't forget my master!")
        self.blacklist[node.id] = now + _FORGET_TTL_MS
        self._delete_node(node)
        self._update_state = True
        self._save()

    def replicate(self, node_id: str, has_keys: bool) -> None:
        node = self.known(node_id)
        if node is None:
            raise ClusterError(f"ERR Unknown node {node_id}")
        if node is self.myself:
            raise ClusterError("ERR Can't replicate myself")
        if node.flags & SLAVE:
            raise ClusterError("ERR I can only replicate a master, not a replica.")
        me = self.myself
        if me.flags & MASTER and (self.claimed_slots_nonempty(me) or has_keys):
            raise ClusterError("ERR To set a master the node must be empty and without assigned slots.")
        self._become_replica_of(node)

    def reset(self, hard: bool, has_keys: bool, now: int) -> None:
        me = self.myself
        if me.flags & MASTER and has_keys:
            raise ClusterError("ERR CLUSTER RESET can't be called with master nodes containing keys")
        if me.flags & SLAVE:
            me.flags = (me.flags & ~SLAVE) | MASTER
            me.master_id = None
            self._effect("role", master_id=None)
        self.slots = SlotMap()
        self.not_claimed = 0
        self._slots_changed()
        for node in list(self.nodes.values()):
            if node is not me:
                self._delete_node(node)
        if hard:
            self.current_epoch = self.last_vote_epoch = 0
            me.config_epoch = 0
            old = me.id
            del self.nodes[old]
            me.id = _random_id(self.rng)
            self.nodes[me.id] = me
            self._log(f"Node hard reset, now I'm {me.id}")
        self._update_state = True
        self._save(fsync=True)

    def count_failure_reports(self, node_id: str, now: int) -> int:
        node = self.known(node_id)
        if node is None:
            raise ClusterError(f"ERR Unknown node {node_id}")
        return self._live_reports(node, now)

    # ================================================================ loading

    def load(self, records: dict, owners: dict, migrating: dict, importing: dict, current_epoch: int,
             last_vote_epoch: int) -> None:
        """Adopt the content of a parsed nodes.conf (``gossip.state.parse_nodes_conf``)."""
        myself = next(r for r in records.values() if r.flags & MYSELF)
        myself.port = self.myself.port
        myself.cport = self.myself.cport
        if self.config.announce_ip:
            myself.ip = self.config.announce_ip
        self.myself = myself
        self.nodes = dict(records)
        self.slots = SlotMap()
        for node_id, bits in owners.items():
            for slot in iter_slots(bits):
                self.slots.owners[slot] = node_id
        self.slots.migrating_to = dict(migrating)
        self.slots.importing_from = dict(importing)
        self._slots_changed()
        self.current_epoch = max(current_epoch, max(n.config_epoch for n in records.values()))
        self.last_vote_epoch = last_vote_epoch
        for node in self.nodes.values():
            node.link = node.connecting = False
        self._update_state = True
        self.version += 1

    def slot_count(self) -> int:
        return SLOT_COUNT - self.slots.unbound_count()
