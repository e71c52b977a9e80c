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
cluster_spec.md sections 4-7; the section numbers are cited where it helps.
Replica elections, votes, manual failover (CLUSTER FAILOVER [FORCE|TAKEOVER])
and replica migration run from the same cron and message handlers. The shell
feeds replication facts in with ``set_replication`` (offset, link-down time)
and carries out ``role``/``pause``/``unpause`` effects.

Deliberate differences from Redis (all invisible to clients unless an option
turns them on):

* after winning, the election's vote count is cleared, and an operator's
  CLUSTER FAILOVER does not wait out the retry window of an earlier
  election (Redis would wait, or could count stale votes);
* ``failover_offset_check`` (cluster-failover-offset-check): voters refuse a
  candidate whose offset is below a reachable sibling's;
* ``write_lease_ms`` (cluster-write-lease-ms): a primary that has not heard
  from a majority of primaries for that long reports ``write_ok`` False;
* ``fast_failover`` (cluster-fast-failover): the election starts the moment
  FAIL is known, with delays of min(500, NT/30) + rank x min(1000, NT/15).

A manual failover during a live reshard (Shoal, also invisible to clients):
its vote request claims only the slots my primary still claims; while votes
are missing it starts a new election (new epoch) every 300 ms until the
manual failover times out -- a voter refuses a candidate whose claim includes
a slot just moved to a node with a newer configEpoch, and a moment later that
slot is no longer claimed -- and a promoted replica does not take slots its
primary had already given away. A primary never votes in the epoch that is
its own configEpoch (a late request could otherwise give one epoch to two
nodes).

Migration marks on replicas (Redis 7.0 keeps IMPORTING/MIGRATING on the
primary only, so a failover mid-migration leaves slots that need ``fix``):

* a primary with open slots attaches them (optional ``mk`` field) to every
  PING/PONG/MEET it sends to its own replicas, and pings them at once after
  each CLUSTER SETSLOT; without open slots the messages are unchanged, and
  a replica reads a PING/PONG from its primary without the field as "none";
* the replica keeps that copy in ``primary_marks`` (never in its own slot
  map, so its routing is unchanged) and shows it in CLUSTER NODES and
  nodes.conf as ``[slot->-id]``/``[slot-<-id]`` tokens on its **primary's**
  line -- the primary's own notation, where ``redis-cli --cluster`` (which
  reads open slots from each node's ``myself`` line only) does not mistake
  them for open slots of the replica;
* on promotion (election, manual failover, takeover) the new primary adopts
  them: MIGRATING marks of slots it now serves, IMPORTING marks of slots it
  does not, so a key already moved still gets ``-ASK``;
* every node that sees a replica take over its primary's slots (or a primary
  demoted by its own replica) renames marks naming the old primary to the
  new one, and rebinds importing slots still bound to the old primary.
"""

from __future__ import annotations

import random
from typing import Iterable

from gossip.messages import (
    AUTH_ACK, AUTH_REQUEST, FAIL, FAILED, HANDSHAKE, MASTER, MEET, MEET_FLAG, MFSTART, MIGRATE_TO, MYSELF, NOADDR,
    NOFAILOVER, PFAIL, PING, PONG, PUBLISH, PUBLISHSHARD, SLAVE, TYPE_NAMES, UPDATE, GossipEntry, Message,
)
from gossip.state import NodeRecord, node_line, valid_node_id
from slots import SLOT_COUNT, SlotMap
from slots.ranges import bits_from_ranges, iter_slots

__all__ = ["ClusterConfig", "ClusterError", "ClusterState", "Effect", "InboundLink", "OutboundLink"]

_FORGET_TTL_MS = 60_000
_WRITABLE_DELAY_MS = 2000
_FAIL_REPORT_VALIDITY_MULT = 2
_FAIL_UNDO_TIME_MULT = 2
_MF_TIMEOUT_MS = 5000  # CLUSTER_MF_TIMEOUT
_MF_PAUSE_MULT = 2  # a primary pauses writes for 2 x the manual failover timeout at most
_MIGRATION_DELAY_MS = 5000  # CLUSTER_SLAVE_MIGRATION_DELAY
_CANT_FAILOVER_RELOG_MS = 300_000
_MF_AUTH_RESEND_MS = 300  # a manual failover missing votes starts a new election this often (Shoal)

# mflags bits (Redis's CLUSTERMSG_FLAG0_*)
MF_PAUSED = 1
MF_FORCEACK = 2

# Why a replica is not failing over (Redis's CLUSTER_CANT_FAILOVER_* and clusterLogCantFailover texts).
CANT_DATA_AGE = "Disconnected from master for longer than allowed. Please check the " \
    "'cluster-replica-validity-factor' configuration option."
CANT_WAITING_DELAY = "Waiting the delay before I can start a new failover."
CANT_EXPIRED = "Failover attempt expired."
CANT_WAITING_VOTES = "Waiting for votes, but majority still not reached."


class ClusterError(Exception):
    """A CLUSTER command refused; ``str(exc)`` is the exact Redis error line without ``-``."""


class ClusterConfig:
    """The cluster-* directives the state machine reads (the node copies them in on CONFIG SET)."""

    __slots__ = ("node_timeout", "require_full_coverage", "allow_reads_when_down", "allow_replica_migration",
                 "replica_no_failover", "announce_ip", "replica_validity_factor", "repl_ping_period_ms",
                 "migration_barrier", "failover_offset_check", "write_lease_ms", "fast_failover")

    def __init__(self, node_timeout: int = 15000, require_full_coverage: bool = True,
                 allow_reads_when_down: bool = False, allow_replica_migration: bool = True,
                 replica_no_failover: bool = False, announce_ip: str = "", replica_validity_factor: int = 10,
                 repl_ping_period_ms: int = 10_000, migration_barrier: int = 1, failover_offset_check: bool = False,
                 write_lease_ms: int = 0, fast_failover: bool = False) -> None:
        self.node_timeout = node_timeout
        self.require_full_coverage = require_full_coverage
        self.allow_reads_when_down = allow_reads_when_down
        self.allow_replica_migration = allow_replica_migration
        self.replica_no_failover = replica_no_failover
        self.announce_ip = announce_ip
        #: cluster-replica-validity-factor (0: a replica may fail over however old its data is).
        self.replica_validity_factor = replica_validity_factor
        #: repl-ping-replica-period in ms (part of the data-age allowance).
        self.repl_ping_period_ms = repl_ping_period_ms
        self.migration_barrier = migration_barrier
        #: Shoal option (spec 11.1a): voters refuse a candidate behind a sibling replica they know of.
        self.failover_offset_check = failover_offset_check
        #: Shoal option (spec 11.1b): a primary that cannot reach a majority of primaries for this long
        #: stops accepting writes (0 = off, Redis's behaviour).
        self.write_lease_ms = write_lease_ms
        #: Shoal option (spec 11.2): start the election the moment FAIL is known, with delays scaled to the
        #: node timeout instead of Redis's fixed 500 ms + 0..500 ms + rank x 1 s.
        self.fast_failover = fast_failover


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
    * ``role``: this node's primary changed to ``master_id`` (None: became a primary); ``reason`` says
      why (``election``, ``manual``, ``takeover``, ``migration``, ``config``, ``admin``);
    * ``drop_slots``: delete the local keys of slot set ``slots`` (lost ownership);
    * ``pause``: pause client ``mode`` ("write") until ``until`` (unix ms) -- a manual failover;
    * ``unpause``: end that pause.
    """

    __slots__ = ("kind", "target", "inbound", "msg", "node_id", "ip", "cport", "new_id", "fsync", "level", "text",
                 "channel", "payload", "shard", "master_id", "slots", "until", "mode", "reason")

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
        self._lease_seen: dict[str, int] = {}
        self._replica_counts: dict[str, int] = {}  # primary id -> replicas listed at the last migration check
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
        self._line_cache: dict[str, tuple] = {}  # node id -> (what its CLUSTER NODES line shows, the line)
        #: A PONG broadcast after SETSLOT NODE closed an import, not sent yet (``_request_pong``).
        self.pong_pending = False
        #: Bumped by every SETSLOT while one is pending: the driver sends it once they stop coming.
        self.pong_activity = 0
        # ---- replication facts fed by the shell (``set_replication``)
        #: ms since the link with my primary went down (0 while it is up).
        self.repl_link_down_ms = 0
        # ---- replica election (Redis's failover_auth_*)
        self.failover_auth_time = 0
        self.failover_auth_count = 0
        self.failover_auth_sent = False
        self.failover_auth_rank = 0
        self.failover_auth_epoch = 0
        self.cant_failover_reason = ""
        self._cant_failover_logged = 0
        #: master id -> when I last voted for one of its replicas
        self.voted_time: dict[str, int] = {}
        # ---- manual failover (Redis's mf_*)
        self.mf_end = 0
        self.mf_replica: str | None = None  # primary side: the replica that asked
        self.mf_can_start = False
        self.mf_master_offset = -1
        # ---- write lease (Shoal option)
        self.write_ok = True
        # ---- migration marks on replicas: my primary's (migrating, importing), as it last sent them
        self.primary_marks: tuple[dict, dict] = ({}, {})
        self._auth_sent_at = 0  # when this election last asked for votes
        self._voted_for: dict[str, str] = {}  # primary id -> the replica my last vote about it went to

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
        if msg.type <= MEET and (self.slots.migrating_to or self.slots.importing_from):
            self._attach_marks(node, msg)
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

    def _rebind(self, slot: int, owner_id: str) -> None:
        """Bind one slot to ``owner_id``, keeping the owner bit sets current instead of dropping them.

        A reshard rebinds one slot per SETSLOT NODE and per claim: rebuilding the
        bit sets from the 16384 owners each time cost ~0.15 ms per command and per PONG.
        """
        owners = self.slots.owners
        old = owners[slot]
        self.version += 1
        if old == owner_id:
            return
        owners[slot] = owner_id
        cache = self._bits_cache
        if cache is None:
            return
        bit = 1 << slot
        if old is not None:
            left = cache.get(old, 0) & ~bit
            if left:
                cache[old] = left
            else:
                cache.pop(old, None)
        cache[owner_id] = cache.get(owner_id, 0) | bit

    def _request_pong(self) -> None:
        """Redis's clusterBroadcastPong after closing an import: replicas now, primaries coalesced.

        A reshard closes one import per slot and then sets the slot on the source and every other
        primary itself; a PONG per slot made each of them rebind it and fsync nodes.conf first, which
        was most of a slot's cost. Replicas (which no tool tells) get their PONG at once, as in Redis;
        primaries get one PONG once the SETSLOTs pause for a moment (the driver's ``pong_later``), and
        the cron sends any still pending, so a primary nobody told is at most a tick late.
        """
        self._broadcast(lambda: self._ping_message(PONG), only=lambda n: n.flags & SLAVE)
        self.pong_activity += 1
        if not self.pong_pending:
            self.pong_pending = True
            self._effect("pong_later")

    def flush_pong(self) -> None:
        """Send the coalesced PONG to the primaries, if one is pending."""
        if self.pong_pending:
            self.pong_pending = False
            self._broadcast(lambda: self._ping_message(PONG), only=lambda n: not n.flags & SLAVE)

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
        owner_bits = self._owner_bits()  # cached: a save after each SETSLOT must not walk 16384 owners
        line_cache = self._line_cache
        lines = []
        for node in self.nodes.values():
            if for_config and node.flags & HANDSHAKE:
                continue
            bits = owner_bits.get(node.id, 0)
            if node is self.myself:
                open_slots = self._open_slots_text()
            elif self.myself.flags & SLAVE and node.id == self.myself.master_id:
                open_slots = self._marks_text(*self.primary_marks)  # my copy of my primary's marks
            else:
                open_slots = ""
            epoch = self.epoch_shown(node)
            # Each line is rendered again only when something it shows changed: a reshard saves
            # nodes.conf on every SETSLOT, and most lines are the same as in the last save.
            key = (node.flags, node.master_id, node.ping_sent, node.pong_received, epoch, node.link, node.ip,
                   node.port, node.cport, node.hostname, bits, open_slots)
            cached = line_cache.get(node.id)
            if cached is None or cached[0] != key:
                cached = line_cache[node.id] = (key, node_line(node, bits, epoch, open_slots=open_slots) + "\n")
            lines.append(cached[1])
        if len(line_cache) > 2 * len(self.nodes) + 16:  # forgotten and renamed nodes
            for node_id in [i for i in line_cache if i not in self.nodes]:
                del line_cache[node_id]
        return "".join(lines)

    def config_text(self) -> str:
        return self.nodes_text(for_config=True) + (
            f"vars currentEpoch {self.current_epoch} lastVoteEpoch {self.last_vote_epoch}\n")

    def _open_slots_text(self) -> str:
        return self._marks_text(self.slots.migrating_to, self.slots.importing_from)

    @staticmethod
    def _marks_text(migrating: dict, importing: dict) -> str:
        tokens = []
        for slot in sorted(set(migrating) | set(importing)):
            if slot in migrating:
                tokens.append(f"[{slot}->-{migrating[slot]}]")
            else:
                tokens.append(f"[{slot}-<-{importing[slot]}]")
        return " ".join(tokens)

    # ================================================================ migration marks on replicas

    def _attach_marks(self, node: NodeRecord, msg: Message) -> None:
        """A PING/PONG/MEET for ``node``: if it is my replica, it carries my open slots (copies)."""
        me = self.myself
        if me.flags & MASTER and node.master_id == me.id and node.flags & SLAVE:
            msg.marks = (dict(self.slots.migrating_to), dict(self.slots.importing_from))

    def _push_marks(self, now: int) -> None:
        """My marks changed: tell my replicas now rather than at the next heartbeat."""
        me = self.myself
        if not me.flags & MASTER:
            return
        for node in list(self.nodes.values()):
            if node.flags & SLAVE and node.master_id == me.id and node.link and not node.flags & HANDSHAKE:
                self._send_ping(node, now)

    def _learn_primary_marks(self, msg: Message) -> None:
        """A PING/PONG/MEET from my primary: its marks (none when the field is absent) replace my copy."""
        migrating, importing = msg.marks if msg.marks is not None else ({}, {})
        if (migrating, importing) != self.primary_marks:
            self.primary_marks = (dict(migrating), dict(importing))
            self._save()

    def _adopt_primary_marks(self) -> None:
        """Promotion: keep my old primary's marks that still make sense for the slots I now serve."""
        me = self.myself
        owners = self.slots.owners
        migrating, importing = self.primary_marks
        self.primary_marks = ({}, {})
        for slot, target in migrating.items():
            if owners[slot] == me.id and target != me.id and target in self.nodes:
                self.slots.migrating_to[slot] = target
        for slot, source in importing.items():
            if owners[slot] != me.id and source != me.id and source in self.nodes:
                self.slots.importing_from[slot] = source
        if migrating or importing:
            self._log(f"Adopted my old primary's open slots: {self._open_slots_text() or 'none still valid'}")

    def _rename_marks(self, old_id: str, new_id: str) -> None:
        """``new_id`` replaced primary ``old_id`` (a failover): marks naming the old one name the new one, so a
        migration can go on; an importing slot still bound to the old one is bound to the new one (its claim
        was skipped because the slot is importing). A mark that would name myself is dropped."""
        me = self.myself
        changed = False
        for migrating, importing in ((self.slots.migrating_to, self.slots.importing_from), self.primary_marks):
            for marks in (migrating, importing):
                for slot, other in list(marks.items()):
                    if other != old_id:
                        continue
                    if new_id == me.id:
                        del marks[slot]
                    else:
                        marks[slot] = new_id
                    changed = True
        owners = self.slots.owners
        rebound = False
        for slot in self.slots.importing_from:
            if owners[slot] == old_id and new_id != me.id:
                owners[slot] = new_id
                rebound = True
        if rebound:
            self._slots_changed()
        if changed or rebound:
            self._log(f"Open slots naming {old_id} now name {new_id} (failover)")
            self._save()

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
            mflags=MF_PAUSED if self.mf_end and me.flags & MASTER else 0,
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
        self.flush_pong()  # a coalesced PONG is never more than a tick late
        nt = self.config.node_timeout
        me = self.myself
        nofailover = NOFAILOVER if self.config.replica_no_failover else 0
        if me.flags & NOFAILOVER != nofailover:  # clusterUpdateMyselfFlags
            me.flags = (me.flags & ~NOFAILOVER) | nofailover
            self._update_state = True
            self._save()
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
            if self.mf_end and node.id == self.mf_replica and node.link and self.myself.flags & MASTER:
                self._send_ping(node, now)  # keep the asking replica told of my (paused) offset
            if node.ping_sent and min(ping_delay, data_delay) > nt and not node.flags & (PFAIL | FAILED):
                node.flags |= PFAIL
                self._log(f"*** NODE {node.id} possibly failing", "debug")
                self._update_state = True
                self.version += 1
        if self.mf_end and self.mf_end < now:
            self._log("Manual failover timed out.", "warning")
            self._reset_manual_failover()
        if self.myself.flags & SLAVE:
            self._handle_manual_failover(now)
            self._handle_replica_failover(now)
            self._check_replica_migration(now)
        if self.config.write_lease_ms:
            self._check_write_lease(now)
        elif not self.write_ok:
            self.write_ok = True
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
            if self._unbound_count():
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
        if sender is not None:
            # Every message's header carries the sender's epochs and offset (Redis reads them for all types).
            if msg.current_epoch > self.current_epoch:
                self.current_epoch = msg.current_epoch
                self._save()
            if msg.master is None and msg.config_epoch > sender.config_epoch:
                sender.config_epoch = msg.config_epoch
                self._save(fsync=True)
            sender.repl_offset = msg.offset
            me = self.myself
            if (msg.mflags & MF_PAUSED and me.flags & SLAVE and me.master_id == sender.id and self.mf_end
                    and self.mf_master_offset == -1):
                self.mf_master_offset = msg.offset
                self._log(f"Received replication offset for paused master manual failover: {msg.offset}")
                self._handle_manual_failover(now)
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
            # Every PING is answered, a stranger's too (Redis: "anyway reply with a PONG"). A node often
            # hears of a peer through gossip, and pings it, before that peer has heard of it; a PING left
            # unanswered stays pending for good (no new PING is sent while one is), so the pinger would
            # keep the peer flagged fail? on a healthy cluster.
            pong = self._ping_message(PONG)
            if sender is not None and (self.slots.migrating_to or self.slots.importing_from):
                self._attach_marks(sender, pong)
            self._reply(link, pong)
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
                if self.config.write_lease_ms:
                    self._lease_seen[sender.id] = now
                if sender.flags & PFAIL:
                    sender.flags &= ~PFAIL
                    self._update_state = True
                    self.version += 1
                elif sender.flags & FAILED:
                    self._clear_failure_if_needed(sender, now)
            self._apply_role(sender, msg)
            if msg.master is None and self.myself.flags & SLAVE and sender.id == self.myself.master_id:
                self._learn_primary_marks(msg)
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
                self._on_failed(failing, now)
        elif kind == AUTH_REQUEST:
            if sender is None:
                return
            self._maybe_vote(sender, msg, now)
        elif kind == AUTH_ACK:
            if sender is None:
                return
            if (sender.flags & MASTER and self.claimed_slots_nonempty(sender)
                    and msg.current_epoch >= self.failover_auth_epoch and self.failover_auth_sent):
                self.failover_auth_count += 1
                self._handle_replica_failover(now)  # Redis handles it before sleeping: at once
        elif kind == MFSTART:
            if sender is None or not sender.flags & SLAVE or sender.master_id != self.myself.id:
                return
            self._reset_manual_failover()
            self.mf_end = now + _MF_TIMEOUT_MS
            self.mf_replica = sender.id
            self._effect("pause", mode="write", until=now + _MF_TIMEOUT_MS * _MF_PAUSE_MULT)
            self._log(f"Manual failover requested by replica {sender.id}.")
            self._send_ping(sender, now)
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
                self._note_promotion(subject, bits)
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
                self._note_promotion(sender, msg.slots)
                self._set_master(sender)
            return
        if sender.flags & MASTER:
            new = self.nodes.get(msg.master)
            if new is not None and new.master_id == sender.id:  # demoted by its own replica: a failover
                self._rename_marks(sender.id, new.id)
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

    def _note_promotion(self, node: NodeRecord, claimed: int) -> None:
        """Replica ``node`` now speaks as a primary claiming ``claimed``: if that includes slots of its old
        primary, it replaced it (a failover), and open slots naming the old primary move to it."""
        old = node.master_id
        if node.flags & SLAVE and old and old in self.nodes and claimed & self._owner_bits().get(old, 0):
            self._rename_marks(old, node.id)

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
            if msg.master is None and self.not_claimed & ours:
                # Claimed again: an older message (read late: each direction has its own link) had
                # marked them given away, and a promoted replica would not take them.
                self.not_claimed &= ~ours
            return
        if msg.master is None:
            self._update_slots_with(sender, msg.config_epoch, msg.slots, now)
        # Tell the sender about any slot it claims that a node with a higher epoch owns
        # (only slots someone else holds need a look: bit sets again, not a loop over every slot).
        bits = self._owner_bits()
        others = msg.slots & ~bits.get(sender.id, 0) & ~bits.get(claimer.id, 0) & ~self.not_claimed
        for slot in iter_slots(others):
            owner_id = self.slots.owners[slot]
            if owner_id is None:
                continue
            owner = self.nodes.get(owner_id)
            if owner is None:
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
        rebound: list[int] = []
        # Work on bit sets, not on 16384 slots: a reshard sends a claim change per slot moved, and a
        # Python loop over every claimed slot cost ~10 ms per PONG on each node.
        sender_bits = self._owner_bits().get(sender.id, 0)
        self.not_claimed &= ~(claimed & sender_bits)  # claimed and already the sender's
        importing_bits = 0
        for slot in self.slots.importing_from:
            importing_bits |= 1 << slot
        for slot in iter_slots(claimed & ~sender_bits & ~importing_bits):
            owner_id = owners[slot]
            owner = self.nodes.get(owner_id) if owner_id is not None else None
            if owner is None or self.not_claimed >> slot & 1 or owner.config_epoch < epoch:
                if owner_id == me.id:
                    dirty |= 1 << slot
                if curmaster is not None and owner_id == curmaster.id:
                    new_master = sender
                    moved_from_us += 1
                rebound.append(slot)
                self.not_claimed &= ~(1 << slot)
                changed = True
        if len(rebound) <= 64:  # a reshard's one slot per PONG: keep the owner bit sets current
            for slot in rebound:
                self._rebind(slot, sender.id)
        else:  # a failover's whole range: rebuild the bit sets once
            for slot in rebound:
                owners[slot] = sender.id
            self._slots_changed()
        # Slots the sender no longer claims keep their binding but are marked, so
        # clients get redirected rather than CLUSTERDOWN while the new claim spreads.
        self.not_claimed |= sender_bits & ~claimed
        if changed:
            self._update_state = True
            self._save(fsync=True)
        my_master = self.my_master
        if (new_master is not None and curmaster is not None and not self.claimed_slots_nonempty(curmaster)
                and (self.config.allow_replica_migration or moved_from_us == (claimed.bit_count()))):
            self._log(f"Configuration change detected. Reconfiguring myself as a replica of {sender.id}")
            self._become_replica_of(sender)
        elif (my_master is not None and my_master.flags & SLAVE and my_master.master_id
              and my_master.master_id != me.id and my_master.master_id in self.nodes):
            # No sub-replicas: my primary turned into a replica (it lost its last slot and nobody took
            # them from it as far as I saw), so follow its primary (spec 6.4 rule 2).
            grand = self.nodes[my_master.master_id]
            self._log(f"I'm a sub-replica! Reconfiguring myself as a replica of grandmaster {grand.id}")
            self._become_replica_of(grand)
        elif dirty:
            for slot in iter_slots(dirty):
                self.slots.migrating_to.pop(slot, None)
            self._effect("drop_slots", slots=dirty)

    def _become_replica_of(self, master: NodeRecord, reason: str = "config") -> None:
        me = self.myself
        if me.flags & MASTER:
            me.flags = (me.flags & ~(MASTER | MIGRATE_TO)) | SLAVE
            self.slots.migrating_to.clear()
            self.slots.importing_from.clear()
        if me.master_id != master.id:
            self.primary_marks = ({}, {})
        me.master_id = master.id
        self._update_state = True
        self._reset_manual_failover()
        self._save(fsync=True)
        self._effect("role", master_id=master.id, reason=reason)

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
        self._on_failed(node, now)

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

    # ================================================================ failover (cluster_spec.md 7)

    def set_replication(self, offset: int, link_down_ms: int = 0) -> None:
        """The shell's replication facts: my offset (primary: master_repl_offset; replica: processed
        offset) and, for a replica, for how long the link with its primary has been down (0: up)."""
        self.myself.repl_offset = offset
        self.repl_link_down_ms = link_down_ms

    def _election_delays(self) -> tuple[int, int, int]:
        """(fixed delay, random spread, per-rank delay) before asking for votes."""
        if self.config.fast_failover:
            nt = self.config.node_timeout
            fixed = max(1, min(500, nt // 30))
            return fixed, fixed, max(1, min(1000, nt // 15))
        return 500, 500, 1000

    def _replica_rank(self) -> int:
        """How many sibling replicas (able to fail over) advertise a larger offset than mine."""
        me = self.myself
        rank = 0
        for replica in self.replicas_of(me.master_id):
            if replica is not me and not replica.flags & NOFAILOVER and replica.repl_offset > me.repl_offset:
                rank += 1
        return rank

    def _cant_failover(self, reason: str, now: int) -> None:
        """Remember (for CLUSTER INFO) and log why no failover is happening, as clusterLogCantFailover."""
        if reason == self.cant_failover_reason and now - self._cant_failover_logged < _CANT_FAILOVER_RELOG_MS:
            return
        self.cant_failover_reason = reason
        master = self.my_master
        if master is not None and master.flags & FAILED and now - master.fail_time < self.config.node_timeout + 5000:
            return  # too early to worry anyone
        self._cant_failover_logged = now
        self._log("Currently unable to failover: " + reason)

    def _on_failed(self, node: NodeRecord, now: int) -> None:
        """A node just got the FAIL flag: with the fast-failover option my election starts right away."""
        if self.config.fast_failover and self.myself.flags & SLAVE and node.id == self.myself.master_id:
            self._handle_replica_failover(now)

    def _handle_replica_failover(self, now: int) -> None:
        """Redis's clusterHandleSlaveFailover: schedule, request votes, count them, promote."""
        me = self.myself
        master = self.my_master
        cfg = self.config
        nt = cfg.node_timeout
        manual = bool(self.mf_end and self.mf_can_start)
        if (not me.flags & SLAVE or master is None or (not master.flags & FAILED and not manual)
                or (cfg.replica_no_failover and not manual) or not self.claimed_slots_nonempty(master)):
            self.cant_failover_reason = ""
            return
        auth_timeout = max(2 * nt, 2000)
        auth_retry = 2 * auth_timeout
        data_age = self.repl_link_down_ms
        if data_age > nt:
            data_age -= nt  # being cut off for one node timeout is expected when the primary failed
        if (cfg.replica_validity_factor and data_age > cfg.repl_ping_period_ms + nt * cfg.replica_validity_factor
                and not manual):
            self._cant_failover(CANT_DATA_AGE, now)
            return
        fixed, spread, per_rank = self._election_delays()
        if now - self.failover_auth_time > auth_retry:
            self.failover_auth_time = now + fixed + self.rng.randrange(spread)
            self.failover_auth_count = 0
            self.failover_auth_sent = False
            self.failover_auth_rank = self._replica_rank()
            self.failover_auth_time += self.failover_auth_rank * per_rank
            if manual:
                self.failover_auth_time = now
                self.failover_auth_rank = 0
            self._log(f"Start of election delayed for {self.failover_auth_time - now} milliseconds "
                      f"(rank #{self.failover_auth_rank}, offset {me.repl_offset}).")
            # Tell my siblings my offset, so their ranks are right.
            master_id = master.id
            self._broadcast(lambda: self._ping_message(PONG), only=lambda n: n.master_id == master_id)
            if not manual:
                return
        if not self.failover_auth_sent and not manual:
            rank = self._replica_rank()
            if rank > self.failover_auth_rank:
                added = (rank - self.failover_auth_rank) * per_rank
                self.failover_auth_time += added
                self.failover_auth_rank = rank
                self._log(f"Replica rank updated to #{rank}, added {added} milliseconds of delay.")
        if now < self.failover_auth_time:
            self._cant_failover(CANT_WAITING_DELAY, now)
            return
        if now - self.failover_auth_time > auth_timeout:
            self._cant_failover(CANT_EXPIRED, now)
            return
        if not self.failover_auth_sent:
            self.current_epoch += 1
            self.failover_auth_epoch = self.current_epoch
            self._log(f"Starting a failover election for epoch {self.current_epoch}.")
            self.failover_auth_sent = True
            self._save(fsync=True)  # the new epoch is durable before anyone hears of it

            self._broadcast(self._auth_request)
            self._auth_sent_at = now
            return
        if self.failover_auth_count >= self.size // 2 + 1:
            self._log("Failover election won: I'm the new master.")
            if me.config_epoch < self.failover_auth_epoch:
                me.config_epoch = self.failover_auth_epoch
                self._log(f"configEpoch set to {me.config_epoch} after successful failover")
            self._replace_my_master(now, "manual" if self.mf_end else "election")
        else:
            if self.mf_end and now - self._auth_sent_at >= _MF_AUTH_RESEND_MS:
                # Shoal: a manual failover tries again in a new epoch -- voters refuse a candidate whose
                # claim includes a slot a live reshard just moved (and the target's epoch bump makes the
                # old epoch stale anyway); a moment later the claim is right. Old votes do not count.
                self.current_epoch += 1
                self.failover_auth_epoch = self.current_epoch
                self.failover_auth_count = 0
                self._auth_sent_at = now
                self._log(f"Manual failover: votes missing, new election for epoch {self.current_epoch}.")
                self._save(fsync=True)
                self._broadcast(self._auth_request)
            self._cant_failover(CANT_WAITING_VOTES, now)

    def _auth_request(self) -> Message:
        msg = self._header(AUTH_REQUEST)
        msg.slots &= ~self.not_claimed  # only what my primary still claims (a reshard moves slots away)
        if self.mf_end:
            msg.mflags |= MF_FORCEACK
        return msg

    def _replace_my_master(self, now: int, reason: str) -> None:
        """clusterFailoverReplaceYourMaster: become a primary and take all of my old primary's slots."""
        me = self.myself
        old = self.my_master
        if me.flags & MASTER or old is None:
            return
        me.flags = (me.flags & ~SLAVE) | MASTER
        me.master_id = None
        owners = self.slots.owners
        for slot, owner in enumerate(owners):
            if owner == old.id and not self.not_claimed >> slot & 1:  # not what it gave away mid-reshard
                owners[slot] = me.id
        self._slots_changed()
        self._adopt_primary_marks()
        self.cant_failover_reason = ""
        # Unlike Redis, forget the won election's votes: a later failure of my next primary must run a
        # new election, not "win" on these stale counts.
        self.failover_auth_sent = False
        self.failover_auth_count = 0
        self._effect("role", master_id=None, reason=reason)
        self.update_state(now)
        self._save(fsync=True)
        self._broadcast(lambda: self._ping_message(PONG))
        self._reset_manual_failover()

    def _maybe_vote(self, node: NodeRecord, msg: Message, now: int) -> None:
        """clusterSendFailoverAuthIfNeeded: grant my vote for this epoch or say (in the log) why not."""
        me = self.myself
        if me.flags & SLAVE or not self.claimed_slots_nonempty(me):
            return
        denied = f"Failover auth denied to {node.id}: "
        if msg.current_epoch < self.current_epoch:
            self._log(denied + f"reqEpoch ({msg.current_epoch}) < curEpoch({self.current_epoch})", "warning")
            return
        if self.last_vote_epoch == self.current_epoch:
            self._log(denied + f"already voted for epoch {self.current_epoch}", "warning")
            return
        if me.config_epoch == self.current_epoch:
            # Shoal: this epoch is my own configEpoch (I won it or bumped to it): a vote would let a second
            # node claim it (possible with a request asked again, see _MF_AUTH_RESEND_MS).
            self._log(denied + f"epoch {self.current_epoch} is my own configEpoch", "warning")
            return
        master = self.nodes.get(node.master_id) if node.flags & SLAVE and node.master_id else None
        force = msg.mflags & MF_FORCEACK
        if node.flags & MASTER or master is None or (not master.flags & FAILED and not force):
            if node.flags & MASTER:
                why = "it is a master node"
            elif master is None:
                why = "I don't know its master"
            else:
                why = "its master is up"
            self._log(denied + why, "warning")
            return
        nt = self.config.node_timeout
        voted = self.voted_time.get(master.id)
        if voted is not None and now - voted < 2 * nt and self._voted_for.get(master.id) != node.id:
            # (Shoal: the same candidate asking again in a newer epoch -- a manual failover's retry -- may be
            # answered; the rule keeps two *different* replicas of one primary from both winning.)
            self._log(denied + f"can't vote about this master before {2 * nt - (now - voted)} milliseconds",
                      "warning")
            return
        owners = self.slots.owners
        for slot in iter_slots(msg.slots):
            owner_id = owners[slot]
            if owner_id is None or self.not_claimed >> slot & 1:
                continue
            owner = self.nodes.get(owner_id)
            if owner is None or owner.config_epoch <= msg.config_epoch:
                continue
            self._log(denied + f"slot {slot} epoch ({owner.config_epoch}) > reqEpoch ({msg.config_epoch})",
                      "warning")
            return
        if self.config.failover_offset_check:
            for sibling in self.replicas_of(master.id):
                if (sibling is not node and not sibling.flags & (NOFAILOVER | PFAIL | FAILED)
                        and sibling.repl_offset > msg.offset):
                    self._log(denied + f"its replication offset {msg.offset} is behind replica {sibling.id} "
                              f"({sibling.repl_offset})", "warning")
                    return
        self.last_vote_epoch = self.current_epoch
        self.voted_time[master.id] = now
        self._voted_for[master.id] = node.id
        self._save(fsync=True)  # the vote is durable before it is sent
        self._send(node, self._header(AUTH_ACK))
        self._log(f"Failover auth granted to {node.id} for epoch {self.current_epoch}")

    # ---------------------------------------------------------------- manual failover

    def _reset_manual_failover(self) -> None:
        if self.mf_replica is not None:
            self._effect("unpause", mode="write")
            self.mf_replica = None
        self.mf_end = 0
        self.mf_can_start = False
        self.mf_master_offset = -1

    def _handle_manual_failover(self, now: int) -> None:
        """Replica side: once my offset reached the paused primary's, the election may start."""
        if not self.mf_end or self.mf_can_start or self.mf_master_offset == -1:
            return
        if self.mf_master_offset == self.myself.repl_offset:
            self.mf_can_start = True
            self._log("All master replication stream processed, manual failover can start.")
            self._handle_replica_failover(now)

    def failover(self, mode: str, now: int) -> None:
        """CLUSTER FAILOVER [FORCE|TAKEOVER] (``mode``: "", "force" or "takeover")."""
        me = self.myself
        if me.flags & MASTER:
            raise ClusterError("ERR You should send CLUSTER FAILOVER to a replica")
        master = self.my_master
        if master is None:
            raise ClusterError("ERR I'm a replica but my master is unknown to me")
        if not mode and (master.flags & FAILED or not master.link):
            raise ClusterError("ERR Master is down or failed, please use CLUSTER FAILOVER FORCE")
        self._reset_manual_failover()
        self.mf_end = now + _MF_TIMEOUT_MS
        # Unlike Redis, an operator's request does not wait out the retry window of an earlier election.
        self.failover_auth_time = 0
        if mode == "takeover":
            self._log("Taking over the master (user request).")
            self.bump_epoch()
            self._replace_my_master(now, "takeover")
        elif mode == "force":
            self._log("Forced failover user request accepted.")
            self.mf_can_start = True
        else:
            self._log("Manual failover user request accepted.")
            self._send(master, self._header(MFSTART))

    @property
    def manual_failover_in_progress(self) -> bool:
        return bool(self.mf_end)

    # ---------------------------------------------------------------- replica migration

    def _check_replica_migration(self, now: int) -> None:
        """Cron part of clusterHandleSlaveMigration: find orphaned primaries; maybe move there."""
        me = self.myself
        replicas: dict[str, list] = {}
        for node in self.nodes.values():
            if node.flags & SLAVE and node.master_id:
                replicas.setdefault(node.master_id, []).append(node)
        orphaned = max_ok = mine = 0
        ok_of: dict[str, int] = {}
        for node in self.nodes.values():
            if not node.flags & MASTER:
                continue
            # Redis's MIGRATE_TO: set when a primary gains a replica, cleared when its replica list empties
            # (a replica that failed stays listed); a replica promoted by failover gets it in _set_master.
            count = len(replicas.get(node.id, ()))
            if count:
                node.flags |= MIGRATE_TO
            elif self._replica_counts.get(node.id):
                node.flags &= ~MIGRATE_TO
            self._replica_counts[node.id] = count
            ok = sum(1 for r in replicas.get(node.id, ()) if not r.flags & FAILED)
            ok_of[node.id] = ok
            if node is me or node.flags & (NOADDR | HANDSHAKE | FAILED):
                continue
            if ok == 0 and self.claimed_slots_nonempty(node) and node.flags & MIGRATE_TO:
                orphaned += 1
            max_ok = max(max_ok, ok)
            if node.id == me.master_id:
                mine = ok
        if not (orphaned and max_ok >= 2 and mine == max_ok and self.config.allow_replica_migration):
            for node in self.nodes.values():
                if node.orphaned_time and (node.flags & SLAVE or ok_of.get(node.id, 0)):
                    node.orphaned_time = 0
            return
        if not self.state_ok:
            return
        master = self.my_master
        if master is None:
            return
        ok_mine = sum(1 for r in replicas.get(master.id, ()) if not r.flags & (FAILED | PFAIL))
        if ok_mine <= self.config.migration_barrier:
            return
        candidate = me.id
        target = None
        for node in self.nodes.values():
            ok = ok_of.get(node.id, 0)
            orphaned_node = (node.flags & MASTER and not node.flags & FAILED and node.flags & MIGRATE_TO
                             and ok == 0)
            if orphaned_node:
                if target is None and self.claimed_slots_nonempty(node):
                    target = node
                if not node.orphaned_time:
                    node.orphaned_time = now
            else:
                node.orphaned_time = 0
            if node.flags & MASTER and ok == max_ok:
                for replica in replicas.get(node.id, ()):
                    if replica.id < candidate:
                        candidate = replica.id
        if target is not None and candidate == me.id and now - target.orphaned_time > _MIGRATION_DELAY_MS:
            self._log(f"Migrating to orphaned master {target.id}")
            self._become_replica_of(target, "migration")

    # ---------------------------------------------------------------- write lease (Shoal option)

    def _check_write_lease(self, now: int) -> None:
        """A primary keeps accepting writes only while it heard from a majority of primaries recently."""
        me = self.myself
        lease = self.config.write_lease_ms
        ok = True
        if me.flags & MASTER and self.claimed_slots_nonempty(me):
            heard = 1
            for owner in self._owner_bits():
                node = self.nodes.get(owner)
                if node is None or node is me or not node.flags & MASTER:
                    continue
                seen = self._lease_seen.get(owner, node.pong_received)
                if now - seen <= lease:
                    heard += 1
                if node.link and node.ping_sent == 0 and now - node.pong_received > lease // 3:
                    self._send_ping(node, now)  # keep the lease fresh: more often than every NT/2
            ok = heard >= self.size // 2 + 1
        if ok != self.write_ok:
            self.write_ok = ok
            self.version += 1
            self._log("Write lease " + ("regained: accepting writes again." if ok else
                                        f"lost: no majority of primaries heard for {lease} ms; refusing writes."),
                      "warning")

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
        if self.pong_pending:
            self.pong_activity += 1  # a reshard is still going: keep coalescing the PONG
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
            self._rebind(slot, target.id)
            self.not_claimed &= ~(1 << slot)
            if (was_mine and target is not me and not self.claimed_slots_nonempty(me)
                    and self.config.allow_replica_migration):
                self._log(f"Configuration change detected. Reconfiguring myself as a replica of {target.id}")
                self._become_replica_of(target)
            if target is me and slot in self.slots.importing_from:
                if self.bump_epoch() == "BUMPED":
                    self._log(f"configEpoch updated after importing slot {slot}")
                del self.slots.importing_from[slot]
                self._request_pong()  # coalesced: sent when this burst of SETSLOTs pauses
        else:
            raise ClusterError("ERR Invalid CLUSTER SETSLOT action or number of arguments. Try CLUSTER HELP")
        self._push_marks(now)
        self._update_state = True
        self._save()  # an epoch bump above saved with fsync already; slot moves alone need not (as Redis)

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
        self._become_replica_of(node, "admin")

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
        if myself.flags & SLAVE:  # a replica's nodes.conf lists its primary's marks (on the primary's line)
            self.primary_marks = (dict(migrating), dict(importing))
        else:
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
        return SLOT_COUNT - self._unbound_count()

    def _unbound_count(self) -> int:
        """Slots nobody serves, from the cached owner bit sets: ``owners.count(None)`` compares
        16384 ids with None (~0.4 ms), and the cron asks after every SETSLOT of a reshard."""
        return SLOT_COUNT - sum(bits.bit_count() for owner, bits in self._owner_bits().items() if owner is not None)
