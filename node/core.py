"""The node's state as one object: config, databases, clients, statistics, clock.

Everything here is synchronous and free of I/O so handlers and tests can use
it directly; the trio shell (``node.server``) owns sockets and timers and calls
in. Time comes from an injected wall clock (unix seconds, float) so tests can
drive expiry from trio's MockClock.
"""

from __future__ import annotations

import os
import random
import time
from operator import attrgetter
from typing import Callable

from node.blocking import BlockingRegistry
from node.config import Config
from node.engine.database import Database
from node.log import Logger
from node.notify import EXPIRED, flags_from_config, notify_db
from node.persistence.snapshot import Snapshots
from node.pubsub import PubSub

__all__ = ["CommandClock", "Node", "Stats"]

_DB_DIRTY = attrgetter("dirty")  # Node.dirty is read twice per propagated command

VERSION = "7.0.15"  # the Redis version whose behaviour Shoal reproduces
SHOAL_VERSION = "0.1.0"

# Redis's active expire cycle tuning (ACTIVE_EXPIRE_CYCLE_* in expire.c).
_KEYS_PER_LOOP = 20
_ACCEPTABLE_STALE = 10  # percent
_SLOW_TIME_PERC = 25  # percent of each 1/hz period


class CommandClock:
    """Wall time in unix ms, pinned for the duration of one command.

    Redis evaluates expiry against the time the command started, so a key
    cannot expire half-way through a command. ``unpin()`` is called by the
    dispatcher before each command; the first ``now()`` after it samples the
    source.
    """

    __slots__ = ("source", "pinned")

    def __init__(self, source: Callable[[], float]) -> None:
        self.source = source
        self.pinned: int | None = None

    def now(self) -> int:
        pinned = self.pinned
        if pinned is None:
            pinned = self.pinned = int(self.source() * 1000)
        return pinned

    def wall_ms(self) -> int:
        return int(self.source() * 1000)

    def unpin(self) -> None:
        self.pinned = None


class Stats:
    """Counters INFO stats reports. Plain attributes: the hot path bumps them."""

    __slots__ = (
        "total_connections_received",
        "total_commands_processed",
        "rejected_connections",
        "expired_keys",
        "expired_stale_perc",
        "expired_time_cap_reached_count",
        "evicted_keys",
        "postponed_clients",
        "keyspace_hits",
        "keyspace_misses",
        "total_error_replies",
        "unexpected_error_replies",
        "total_net_input_bytes",
        "total_net_output_bytes",
        "total_reads_processed",
        "total_writes_processed",
        "error_codes",
        "client_query_buffer_limit_disconnections",
    )

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        for name in self.__slots__:
            setattr(self, name, 0)
        self.expired_stale_perc = 0.0
        self.error_codes: dict[str, int] = {}


class Node:
    def __init__(
        self,
        config: Config,
        *,
        logger: Logger | None = None,
        wall_clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.logger = logger or Logger(level=config["loglevel"])
        self.clock = CommandClock(wall_clock)
        self.rng = rng or random.Random()
        self.cluster_enabled = bool(config["cluster-enabled"])
        self.dbs = [Database(i, self.clock) for i in range(config["databases"])]
        for db in self.dbs:
            db.on_expire = self._count_expired
        self.clients: dict[int, object] = {}
        self.next_client_id = 1
        self.stats = Stats()
        self.run_id = "%040x" % self.rng.getrandbits(160)
        self.pid = os.getpid()
        self.start_ms = self.clock.wall_ms()
        self.start_monotonic = time.monotonic()
        self.lastsave = self.start_ms // 1000
        #: The MISCONF ErrorReply while writes are refused after a failed BGSAVE, else None.
        self.disk_error = None
        self.rdb = Snapshots(self)  # SAVE/BGSAVE/save points/start-up load (node.persistence.snapshot)
        from node.persistence.aof import AppendOnly

        self.aof = AppendOnly(self)  # the append-only file: a propagation sink (node.persistence.aof)
        self._dirty = 0  # writes not attributed to a database (see ``dirty``)
        self.shutdown_requested = False
        self.shutdown_flags: set[str] = set()
        self.tcp_port = config["port"]
        self.executable = ""
        self.config_file = ""
        self._expire_cursor = [0] * len(self.dbs)
        self._expire_db = 0
        self.active_expire_enabled = True
        #: Extension points for later layers (cluster routing, MULTI queueing):
        #: gate_hook(client, cmd, argv) -> True if it fully handled the request;
        #: reject_hook(client, cmd, error) sees every rejected request.
        self.gate_hook = None
        self.reject_hook = None
        self.busy_poll = None  # (running_client) -> None: serve others while a script is busy
        #: reset_hook(client): RESET clears MULTI/WATCH/pub-sub/blocking state.
        self.reset_hook = self.reset_client_state
        #: spawn(async_fn, *args): start a background trio task in the server's nursery (set by
        #: node.server while it runs; it lives until the node stops). Tasks that write to clients
        #: add them to ``pending_write`` / ``unblocked`` and then call ``flush_clients()``.
        self.spawn = None
        self.flush_clients = lambda: None
        #: Clients to disconnect once the current batch is done (CLIENT KILL).
        self.pending_close: list = []
        #: Clients whose output buffer someone else wrote to (pub/sub messages,
        #: served blocked clients); the server flushes them after each pass.
        self.pending_write: set = set()
        #: Clients just unblocked whose buffered pipeline must be resumed.
        self.unblocked: list = []
        self.blocking = BlockingRegistry()
        self.blocking.on_first_block = self._refresh_modify_hook
        self.blocking.on_last_unblock = self._refresh_modify_hook
        #: WATCHed keys: (db index, key) -> clients watching it.
        self.watched_keys: dict[tuple[int, bytes], list] = {}
        self._watch_count = [0] * len(self.dbs)
        #: CLIENT TRACKING state (node.tracking.Tracking), created by the first CLIENT TRACKING ON.
        self.tracking = None
        self.pubsub = PubSub(self)
        from node.security.acl import AclRegistry

        #: ACL users, the ACL log and permission checks (node.security).
        self.acl = AclRegistry(self)
        from node.security.startup import apply_security_config

        apply_security_config(self)  # ``user`` lines / aclfile, rename-command
        from node.dispatch import set_paused, set_propagating
        from node.pause import ClientPause
        from node.propagation import Propagator

        #: The write stream to the AOF and replicas (node.propagation); idle until a sink attaches.
        self.propagation = Propagator(self)
        self.propagation.on_enabled_change = set_propagating
        set_propagating(False)
        #: Replication as primary and replica (node.replication.manager): backlog, replicas, master link.
        from node.replication.manager import ReplicationManager

        self.replication = ReplicationManager(self)
        #: CLIENT PAUSE and failover pauses (node.pause).
        self.pause = ClientPause(self, on_change=set_paused)
        set_paused(False)
        #: The cluster bus driver (node.cluster.driver.ClusterDriver) in cluster mode, else None.
        self.cluster = None
        self.notify_flags = flags_from_config(config["notify-keyspace-events"])
        config.on_change("notify-keyspace-events", self._notify_config_changed)
        from node.monitoring import install as install_monitoring

        install_monitoring(self)  # node.monitoring / node.monitors: SLOWLOG, LATENCY, MONITOR
        from node.memory import install as install_memory

        install_memory(self)  # node.memory: used_memory estimate, maxmemory, eviction

    # ----------------------------------------------------------------- access

    def auth_required(self) -> bool:
        return self.acl.auth_required()

    def new_client_id(self) -> int:
        cid = self.next_client_id
        self.next_client_id += 1
        return cid

    def pause_clients(self, mode: str, until_ms: int, purpose: str = "failover") -> None:
        """Hold back writes (``mode`` "write") or every command ("all") until ``until_ms`` (unix ms)."""
        self.pause.pause(purpose, mode, until_ms)

    def unpause_clients(self, purpose: str = "failover") -> None:
        self.pause.unpause(purpose)

    def client_closed(self, client) -> None:
        """Forget a disconnected client: unblock, unwatch, unsubscribe."""
        from node.pause import Postponed

        self.replication.client_closed(client)  # a replica, a WAIT, the master client (node.replication)
        if type(client.blocked) is Postponed:
            self.pause.forget(client)
        elif getattr(client.blocked, "external", False):
            client.blocked = None  # a background task (MIGRATE) owns the request; its reply is dropped
        self.blocking.unblock(client)
        self.unwatch_all(client)
        self.pubsub.client_closed(client)
        self.pending_write.discard(client)
        self.monitoring.client_closed(client)
        if client.tracking is not None:
            self.tracking.disable(client)

    def drop_slots(self, slot_bits: int) -> None:
        """Delete every key of the given slots in db 0 (this node lost them to another primary)."""
        from slots.ranges import iter_slots

        db = self.dbs[0]
        for slot in iter_slots(slot_bits):
            for key in list(db.dicts[slot]):
                db.delete(key)

    def reset_client_state(self, client) -> None:
        """RESET: leave MULTI, forget WATCHes and subscriptions."""
        from node.commands.transactions import reset_transaction_state

        reset_transaction_state(client)
        self.monitoring.client_reset(client)
        if client.tracking is not None:
            self.tracking.disable(client)
        unsubscribe_all = getattr(self.pubsub, "unsubscribe_all", None)
        if unsubscribe_all is not None:
            unsubscribe_all(client)

    def _count_expired(self, db: Database, key: bytes) -> None:
        self.stats.expired_keys += 1
        propagation = self.propagation
        if propagation.enabled:
            propagation.propagate_deletion(db.index, key, self.config["lazyfree-lazy-expire"])
        notify_db(self, EXPIRED, b"expired", key, db.index)

    def _notify_config_changed(self, value) -> None:
        self.notify_flags = flags_from_config(value)

    # ------------------------------------------------- key change tracking

    def _refresh_modify_hook(self, db_index: int) -> None:
        """Install ``on_modify`` on a database only while someone watches or waits on it."""
        db = self.dbs[db_index]
        wanted = self._watch_count[db_index] > 0 or self.blocking.has_blocked(db_index)
        if not wanted and self.tracking is not None:
            wanted = self.tracking.hooked  # CLIENT TRACKING: any database, while someone tracks
        db.on_modify = self._key_modified if wanted else None

    def _key_modified(self, db: Database, key: bytes) -> None:
        """Redis's signalModifiedKey: invalidate WATCHes and wake clients blocked on ``key``."""
        k = (db.index, key)
        watchers = self.watched_keys.get(k)
        if watchers:
            for client in watchers:
                client.dirty_cas = True
        self.blocking.signal(db.index, key)
        tracking = self.tracking
        if tracking is not None and tracking.hooked:
            tracking.key_modified(key)

    def watch(self, client, key: bytes) -> None:
        """WATCH ``key`` in the client's current database (idempotent)."""
        k = (client.db_index, key)
        if client.watched is None:
            client.watched = []
        if k in client.watched:
            return
        client.watched.append(k)
        self.watched_keys.setdefault(k, []).append(client)
        self._watch_count[k[0]] += 1
        if self._watch_count[k[0]] == 1:
            self._refresh_modify_hook(k[0])

    def unwatch_all(self, client) -> None:
        watched = client.watched
        client.dirty_cas = False
        if not watched:
            client.watched = None
            return
        for k in watched:
            watchers = self.watched_keys.get(k)
            if watchers is not None:
                watchers.remove(client)
                if not watchers:
                    del self.watched_keys[k]
            self._watch_count[k[0]] -= 1
            if self._watch_count[k[0]] == 0:
                self._refresh_modify_hook(k[0])
        client.watched = None

    def touch_watched_in_db(self, db_index: int, only_existing: bool = True) -> None:
        """FLUSHDB/FLUSHALL/SWAPDB: invalidate WATCHes on keys of a database that exist (or all)."""
        if not self._watch_count[db_index]:
            return
        db = self.dbs[db_index]
        for (index, key), watchers in self.watched_keys.items():
            if index == db_index and (not only_existing or db.lookup(key) is not None):
                for client in watchers:
                    client.dirty_cas = True

    def signal_all_in_db(self, db_index: int) -> None:
        """SWAPDB/MOVE-like bulk changes: every key someone waits on in this db may now be ready."""
        for index, key in list(self.blocking.by_key):
            if index == db_index:
                self.blocking.signal(index, key)

    # ---------------------------------------------------------- blocking

    def serve_blocked(self) -> None:
        """Serve clients blocked on keys written by the command that just ran."""
        from node.dispatch import call

        monitoring = self.monitoring

        def run(client, state) -> None:
            monitoring.reprocessing = True  # a re-run is not fed to MONITOR again
            try:
                call(client, state.cmd, state.argv)
            finally:
                monitoring.reprocessing = False
            state.cmd.calls -= 1  # a re-run is not a new call: Redis counts a blocked command once

        for client in self.blocking.serve_ready(run):
            self.pending_write.add(client)
            self.unblocked.append(client)

    def expire_blocked(self, now_ms: int) -> None:
        """Answer clients whose blocking timeout has passed."""
        from node.resp import write_reply

        for client, state in self.blocking.expire(now_ms):
            write_reply(client.out, state.timeout_reply, client.resp3)
            self.pending_write.add(client)
            self.unblocked.append(client)

    @property
    def dirty(self) -> int:
        """Changes since the last save: each database counts its own writes."""
        return self._dirty + sum(map(_DB_DIRTY, self.dbs))  # (map+attrgetter: no Python frame per db)

    @dirty.setter
    def dirty(self, value: int) -> None:
        self._dirty = value - sum(db.dirty for db in self.dbs)

    # ----------------------------------------------------------- active expiry

    def active_expire_cycle(self, now_ms: int, time_budget_s: float, timer: Callable[[], float] = time.perf_counter) -> int:
        """Delete expired keys for up to ``time_budget_s`` of CPU, Redis style.

        Walks each database's volatile keys slot by slot from a saved cursor,
        ``20 * effort`` keys a round, and keeps going on a database while more
        than 10% of the keys checked had expired -- so memory held by expired
        keys stays bounded without scanning everything every tick. Returns the
        number of keys deleted.
        """
        if not self.active_expire_enabled or self.pause.writes_paused:
            return 0
        if self.replication.is_replica:
            return 0  # a replica waits for its primary's DEL (node.replication)
        effort = self.config["active-expire-effort"] - 1
        per_round = _KEYS_PER_LOOP + _KEYS_PER_LOOP // 4 * effort
        acceptable = _ACCEPTABLE_STALE - effort
        start = timer()
        deleted = 0
        checked_total = expired_total = 0
        for _ in range(len(self.dbs)):
            index = self._expire_db
            self._expire_db = (index + 1) % len(self.dbs)
            db = self.dbs[index]
            while db.volatile:
                cursor, checked, expired = db.expire_slots(self._expire_cursor[index], per_round, now_ms)
                self._expire_cursor[index] = cursor
                deleted += expired
                checked_total += checked
                expired_total += expired
                if checked == 0 or expired * 100 <= checked * acceptable:
                    break
                if timer() - start > time_budget_s:
                    self.stats.expired_time_cap_reached_count += 1
                    break
            if timer() - start > time_budget_s:
                break
        if checked_total:
            current = expired_total / checked_total
            self.stats.expired_stale_perc = current * 0.05 + self.stats.expired_stale_perc * 0.95
        threshold = self.config["latency-monitor-threshold"]
        if threshold:
            elapsed_ms = int((timer() - start) * 1000)
            if elapsed_ms >= threshold:
                self.monitoring.latency.add("expire-cycle", elapsed_ms)
        return deleted

    def expire_period_s(self) -> float:
        hz = max(1, min(500, self.config["hz"]))
        return 1.0 / hz

    def expire_budget_s(self) -> float:
        effort = self.config["active-expire-effort"] - 1
        return self.expire_period_s() * (_SLOW_TIME_PERC + 2 * effort) / 100
