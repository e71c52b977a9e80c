"""The chaos scenario catalogue: what each scenario does, and what Redis Cluster's guarantees allow.

A scenario names a nemesis (``None`` for none, a process fault, or a
partition) and states, in ``allows``, what the documented guarantees of a
Redis-Cluster-style system permit under that fault. The runner judges a run
against it: a checker that reports lost acknowledged writes or a
non-linearizable register is a *violation* only if the scenario does not
allow it; otherwise it is an *allowed anomaly*, still counted.

This first catalogue assumes what Shoal has today: no replicas, so no
failover (S5 will add those scenarios), and persistence off.
"""

from __future__ import annotations

from dataclasses import dataclass

from jepsen_like.nemesis import PARTITIONS

__all__ = ["SCENARIOS", "Scenario", "get_scenario"]


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str
    nemesis: str | None  # None, "kill", "pause", or a partition name
    allows: str
    allows_loss: bool = False  # acknowledged writes may be lost
    allows_anomalies: bool = False  # non-linearizable / non-serializable histories are permitted
    replicas: int = 0

    @property
    def is_partition(self) -> bool:
        return self.nemesis in PARTITIONS


_PARTITION_TEXT = {
    "halves": "split the nodes into two halves (random, seeded)",
    "isolate-primaries": "cut every primary off from every other node",
    "majorities-ring": "every node sees a majority, no two the same majority (Jepsen's ring)",
    "island": "cut one random node off from all others",
    "one-way": "drop new connections from one node to all others (asymmetric)",
}

SCENARIOS: dict[str, Scenario] = {}


def _add(s: Scenario) -> None:
    SCENARIOS[s.name] = s


_add(Scenario(
    "steady", "no faults: the baseline every other scenario is compared with", None,
    "nothing: with no faults every acknowledged write must be readable at the end, every register history "
    "must be linearizable, and every transaction history strictly serializable."))
_add(Scenario(
    "kill-restart-primary",
    "SIGKILL a primary that owns workload keys, restart it in the same dir after 1-3 s, repeatedly",
    "kill",
    "loss of everything the killed primary held. Redis Cluster documents that acknowledged writes can be lost "
    "(asynchronous replication, failover); here there is no replica to fail over to (failover does not exist "
    "yet) and persistence is off, so the primary restarts from its nodes.conf with an empty keyspace: every "
    "write it acknowledged before the kill is lost, and reads afterwards see older or missing values "
    "(not linearizable). While it is down its slots are unavailable, and once it is marked FAIL the whole "
    "cluster refuses commands (CLUSTERDOWN, cluster-require-full-coverage yes) until it is back.",
    allows_loss=True, allows_anomalies=True))
_add(Scenario(
    "pause-primary",
    "SIGSTOP a primary that owns workload keys for 1-3 s, then SIGCONT, repeatedly",
    "pause",
    "unavailability only: requests to the paused primary's slots time out (recorded as info -- a paused "
    "node runs the commands it buffered when it resumes), and if the pause outlasts the node timeout the "
    "cluster may go to cluster_state:fail. Nothing may be lost and histories must stay linearizable: with no "
    "replica no failover can happen, and the paused process keeps its memory.",
))
for _p in PARTITIONS:
    _add(Scenario(
        f"partition-{_p}", f"network partition: {_PARTITION_TEXT[_p]}, then heal", _p,
        "Redis Cluster documents that a primary on the minority side keeps acknowledging writes for up to the "
        "node timeout and that those writes may be lost when the majority fails over; with no replicas (no "
        "failover yet) the minority's slots are simply unavailable and nothing should be lost.",
    ))


def get_scenario(name: str) -> Scenario:
    if name not in SCENARIOS:
        raise KeyError(f"unknown scenario {name!r}; `shoal chaos list` shows them")
    return SCENARIOS[name]
