"""The chaos scenario catalogue: what each scenario does, and what Redis Cluster's guarantees allow.

A scenario names a nemesis and states, in ``allows``, what the documented
guarantees of a Redis-Cluster-style system permit under that fault. The
runner judges a run against it:

* ``loss`` -- which acknowledged writes may be lost: ``"none"``; ``"window"``
  (only writes acknowledged inside a loss window the nemesis records: the
  replication-lag window just before a primary dies, or the node timeout
  after a partition cut a primary off -- a lost write outside every window is
  a violation); ``"any"`` (everything the fault touched, e.g. a primary with
  no replica and no persistence);
* ``allows_anomalies`` -- non-linearizable / non-serializable histories;
* the nemesis's *expectations* (the up-to-date replica wins, a stale replica
  does not fail over, ...) -- an unmet one is a violation.

Nemesis kinds: ``None``; ``kill`` / ``pause`` (process faults on a seeded
schedule, ``jepsen_like.nemesis``); or a script from ``jepsen_like.faults``:
``failover``, ``failover-loop``, ``manual-failover``, ``takeover``,
``replica-selection``, ``stale-replica``, ``replica-migration``,
``no-failover``, ``double-failover``, ``reshard``, ``half-migrated``,
``partition:<kind>`` and ``bus:<fault>`` (in-node bus faults through DEBUG
subcommands, from ``jepsen_like.bus_nemesis`` when it exists).

``nodes`` is the smallest cluster a scenario needs (runs ask for at least
that many); ``replicas`` goes to ``redis-cli --cluster create
--cluster-replicas`` (with 7 nodes and 1 replica each, one primary gets two
replicas). ``options`` are server directives for both engines;
``shoal_options`` / ``shoal_only`` mark what only Shoal has (its hidden
``cluster-write-lease-ms``, DEBUG bus faults).
"""

from __future__ import annotations

from dataclasses import dataclass

from jepsen_like.nemesis import PARTITIONS

__all__ = ["SCENARIOS", "Scenario", "get_scenario", "NETNS_KINDS"]

#: Nemesis kinds that run inside the private network namespace (nftables).
NETNS_KINDS = ("stale-replica",)


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str
    nemesis: str | None
    allows: str
    loss: str = "none"  # none / window / any
    allows_anomalies: bool = False  # non-linearizable / non-serializable histories are permitted
    replicas: int = 0
    nodes: int = 3  # at least this many nodes
    options: tuple = ()  # directives for both engines
    shoal_options: tuple = ()  # directives only Shoal has
    shoal_only: bool = False
    workload: str | None = None  # a workload this scenario always uses (pub/sub)
    smoke: bool = False  # part of `make test`'s smoke subset

    @property
    def allows_loss(self) -> bool:
        return self.loss != "none"

    @property
    def is_partition(self) -> bool:
        """Needs the private user+network namespace (nftables)."""
        n = self.nemesis or ""
        return n in PARTITIONS or n.startswith("partition:") or n in NETNS_KINDS

    @property
    def scripted(self) -> bool:
        return self.nemesis is not None and self.nemesis not in ("kill", "pause") and self.nemesis not in PARTITIONS

    def server_options(self, engine: str, node_timeout: int = 2000) -> list[str]:
        opts = list(self.options) + (list(self.shoal_options) if engine == "shoal" else [])
        return [str(max(1, node_timeout // 2)) if o == "LEASE" else o for o in opts]

    @property
    def lease_ms(self) -> bool:
        return "--cluster-write-lease-ms" in self.shoal_options


_PARTITION_TEXT = {
    "halves": "split the nodes into two halves (random, seeded)",
    "isolate-primaries": "cut every primary off from every other node",
    "majorities-ring": "every node sees a majority, no two the same majority (Jepsen's ring)",
    "island": "cut one random node off from all others",
    "one-way": "drop new connections from one node to all others (asymmetric)",
}

SCENARIOS: dict[str, Scenario] = {}

_LAG = ("asynchronous replication: writes acknowledged in the replication-lag window just before the primary "
        "died (1.5 s here) may be missing on the replica that wins, and so lost; any older lost write is a "
        "violation")
_AOF = ("--appendonly", "yes", "--appendfsync", "always")


def _add(s: Scenario) -> None:
    SCENARIOS[s.name] = s


_add(Scenario(
    "steady", "no faults: the baseline every other scenario is compared with", None,
    "nothing: with no faults every acknowledged write must be readable at the end, every register history "
    "must be linearizable, and every transaction history strictly serializable.", smoke=True))
_add(Scenario(
    "kill-restart-primary",
    "no replicas: SIGKILL a primary that owns workload keys, restart it in the same dir after 1-3 s, repeatedly",
    "kill",
    "loss of everything the killed primary held. Redis Cluster documents that acknowledged writes can be lost; "
    "here there is no replica to fail over to and persistence is off, so the primary restarts from its "
    "nodes.conf with an empty keyspace: every write it acknowledged before the kill is lost, and reads "
    "afterwards see older or missing values (not linearizable). While it is down its slots are unavailable, and "
    "once it is marked FAIL the whole cluster refuses commands (CLUSTERDOWN, cluster-require-full-coverage yes) "
    "until it is back.",
    loss="any", allows_anomalies=True))
_add(Scenario(
    "pause-primary",
    "no replicas: SIGSTOP a primary that owns workload keys for 1-3 s, then SIGCONT, repeatedly",
    "pause",
    "unavailability only: requests to the paused primary's slots time out (recorded as info -- a paused "
    "node runs the commands it buffered when it resumes), and if the pause outlasts the node timeout the "
    "cluster may go to cluster_state:fail. Nothing may be lost and histories must stay linearizable: with no "
    "replica no failover can happen, and the paused process keeps its memory."))

# ---------------------------------------------------------------- with replicas
_add(Scenario(
    "failover", "3 primaries + 3 replicas: SIGKILL a primary of workload keys; its replica is promoted; the old "
    "primary is restarted and must rejoin as a replica", "failover",
    "unavailability of the dead primary's slots until its replica wins the election (node timeout + election "
    "delay: the failover time), and " + _LAG + ".", loss="window", allows_anomalies=True, replicas=1, nodes=6,
    smoke=True))
_add(Scenario(
    "failover-loop", "kill whoever is primary for the workload keys, wait for the promotion and the old primary's "
    "return as a replica, again and again (Redis's failover-loop test)", "failover-loop",
    "as failover, at every kill: " + _LAG + ".", loss="window", allows_anomalies=True, replicas=1, nodes=6))
_add(Scenario(
    "manual-failover", "CLUSTER FAILOVER on a replica of a workload primary, under load, repeatedly",
    "manual-failover",
    "no loss at all: a manual failover pauses the primary's clients, waits until the replica has processed its "
    "whole replication stream, and only then switches; clients see a short stall and MOVED redirects. Histories "
    "must stay linearizable.", replicas=1, nodes=6, smoke=True))
_add(Scenario(
    "takeover", "CLUSTER FAILOVER TAKEOVER on a replica (no agreement from the primary or the others), under load",
    "takeover",
    "TAKEOVER skips the offset handshake: writes the old primary acknowledged just before and until it hears of "
    "the new configuration (the replication-lag window on each side of the takeover) may be lost.",
    loss="window", allows_anomalies=True, replicas=1, nodes=6))
_add(Scenario(
    "replica-selection", "7 nodes (one primary with two replicas): one replica is paused and its replication link "
    "closed while writes go on, then the primary is killed -- the up-to-date replica must win (Redis's "
    "replica-selection test)", "replica-selection",
    "the replication-lag window only: " + _LAG + ". The stale replica winning would lose seconds of "
    "acknowledged writes, and is an expectation failure by itself.",
    loss="window", allows_anomalies=True, replicas=1, nodes=7))
_add(Scenario(
    "stale-replica-no-failover", "a replica cut off from its primary (nftables) for longer than the validity "
    "window (cluster-replica-validity-factor 1), then the primary dies: the replica must not fail over; the "
    "primary restarts from its AOF", "stale-replica",
    "unavailability of the primary's slots until it restarts (no failover may happen: the replica's data is "
    "too old), and no loss: the primary reloads its append-only file (appendfsync always).",
    replicas=1, nodes=6,
    options=("--cluster-replica-validity-factor", "1", "--repl-ping-replica-period", "1", "--repl-timeout", "2")
    + _AOF))
_add(Scenario(
    "replica-migration", "7 nodes: a primary loses its only replica; a replica of the primary with two migrates "
    "to it (cluster-migration-barrier 1); then the orphan dies and the migrated replica takes over",
    "replica-migration", "the migration itself loses nothing; the final kill: " + _LAG + ".",
    loss="window", allows_anomalies=True, replicas=1, nodes=7))
_add(Scenario(
    "no-failover", "cluster-replica-no-failover yes: a primary is killed; its replica must not take over; the "
    "slots stay down until the primary restarts from its AOF", "no-failover",
    "unavailability of the dead primary's slots (and, with full coverage required, of the cluster) until it "
    "restarts; no loss: nothing fails over and the primary reloads its append-only file.",
    replicas=1, nodes=6, options=("--cluster-replica-no-failover", "yes") + _AOF))
_add(Scenario(
    "double-failover", "7 nodes: kill a primary (failover 1), CLUSTER FAILOVER to its other replica (failover "
    "2), then restart the old primary with a configuration two epochs old: an UPDATE message must turn it into "
    "a replica", "double-failover",
    "at the kill: " + _LAG + "; the manual failover loses nothing; the returning primary must not win its "
    "slots back.", loss="window", allows_anomalies=True, replicas=1, nodes=7))
_add(Scenario(
    "reshard", "resharding under load: the workload keys' slots move between primaries (IMPORTING, MIGRATING, "
    "MIGRATE, SETSLOT NODE) all through the run", "reshard",
    "nothing lost and no anomaly: keys move atomically (MIGRATE), clients follow ASK and MOVED; only "
    "latency and TRYAGAIN refusals.", replicas=1, nodes=6, smoke=True))
_add(Scenario(
    "half-migrated", "a reshard interrupted halfway (slot left MIGRATING/IMPORTING with some keys moved) for a "
    "few seconds under load, then closed by redis-cli --cluster fix", "half-migrated",
    "nothing lost and no anomaly: while the slot is open, ASK redirects send new keys to the importing node "
    "and `--cluster fix` finishes the move.", replicas=1, nodes=6))
_add(Scenario(
    "pubsub-failover", "PUBLISH / SUBSCRIBE across a failover: subscribers on the dead node reconnect and "
    "resubscribe elsewhere", "failover",
    "pub/sub is at-most-once: messages published while a subscriber is disconnected are lost (counted, "
    "allowed); a message delivered twice or never published is a violation.",
    loss="any", replicas=1, nodes=6, workload="pubsub"))
_add(Scenario(
    "spubsub-failover", "sharded pub/sub (SPUBLISH / SSUBSCRIBE) across a failover: the shard's subscribers "
    "reconnect to the new owner of the channel's slot", "failover",
    "as pub/sub: at-most-once, so messages published while the shard has no primary or the subscriber is "
    "reconnecting are lost (counted, allowed); duplicates or unknown messages are a violation.",
    loss="any", replicas=1, nodes=6, workload="spubsub"))

for _p in PARTITIONS:
    _add(Scenario(
        f"partition-{_p}", f"3 primaries + 3 replicas, network partition: {_PARTITION_TEXT[_p]}, then heal",
        f"partition:{_p}",
        "Redis Cluster documents that a primary on the minority side keeps acknowledging writes for up to the "
        "node timeout and that those writes may be lost when the majority fails over to its replica: lost writes "
        "acknowledged between the cut and the node timeout (+1 s of detection slack) after it are allowed, "
        "older ones are a violation.", loss="window", allows_anomalies=True, replicas=1, nodes=6,
        smoke=_p == "halves"))
for _p in ("halves", "isolate-primaries"):
    _add(Scenario(
        f"partition-{_p}-lease", f"as partition-{_p}, with Shoal's cluster-write-lease-ms (half the node "
        "timeout): a primary that cannot reach a majority of primaries stops acknowledging writes", f"partition:{_p}",
        "Shoal-only option: a minority primary refuses writes once its lease (half the node timeout) runs out, "
        "before the majority can fail over, so the loss window shrinks to the lease: lost writes acknowledged "
        "more than the lease (+1 s) after the cut are a violation.", loss="window", allows_anomalies=True,
        replicas=1, nodes=6, shoal_options=("--cluster-write-lease-ms", "LEASE"), shoal_only=True))


def _bus_scenarios() -> None:
    try:
        from jepsen_like.bus_nemesis import BUS_FAULTS  # written by the bus-fault work; optional
    except Exception:
        return
    for name, text in BUS_FAULTS.items():
        _add(Scenario(
            f"bus-{name}", f"in-node cluster bus fault (DEBUG, Shoal only): {text}", f"bus:{name}",
            "bus faults delay or drop gossip, which can cause false failure reports and failovers: writes "
            "acknowledged by a primary that is failed over meanwhile may be lost within the node timeout after "
            "the fault starts; anything older is a violation.", loss="window", allows_anomalies=True, replicas=1,
            nodes=6, shoal_options=("--enable-debug-command", "yes"), shoal_only=True))


_bus_scenarios()


def get_scenario(name: str) -> Scenario:
    if name not in SCENARIOS:
        raise KeyError(f"unknown scenario {name!r}; `shoal chaos list` shows them")
    return SCENARIOS[name]
