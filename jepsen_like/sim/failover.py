"""Failover scenarios on the simulated cluster: builders, invariant checkers and seeded fault schedules.

Used by ``tests/test_failover_sim.py`` and runnable on its own for long sweeps::

    python -m jepsen_like.sim.failover 0 2000     # seeds 0..1999, prints each failing seed

``run_schedule(seed, seeded_steps(seed), ...)`` replays a seed exactly. The
invariants (``FailoverInvariants``) are checked after every 100 ms tick:

* at most one primary claims a slot in any configEpoch (over the whole run);
* no two replicas win the election of the same epoch;
* a replica whose link with its primary was down for longer than the
  validity window never wins an automatic election;

and after healing (and restarting what was killed) ``converge`` demands one
view everywhere, cluster_state ok, every replica following a live primary,
every slot served by a live primary, holding for 2 x node timeout, and open
slots (migration marks) that name live primaries only, copied exactly on
each primary's replicas.
"""

from __future__ import annotations

import random
import sys

from gossip.core import ClusterError
from gossip.messages import MASTER, SLAVE
from jepsen_like.sim.cluster import NetworkFaults, SimCluster

__all__ = ["ACTIONS", "FailoverInvariants", "NT", "assert_healthy", "assert_marks_consistent", "build", "converge",
           "node_id", "owner_bits", "run_schedule", "seeded_steps", "wait_until"]

NT = 2000


def build(seed: int, replicas_of=(0, 1, 2), primaries: int = 3, **options) -> SimCluster:
    """``primaries`` primaries (nodes 0..p-1) and one replica per entry of ``replicas_of`` (its primary)."""
    options.setdefault("write_rate", 20)
    options.setdefault("repl_lag", 30)
    sim = SimCluster(primaries + len(replicas_of), seed, node_timeout=NT, **options)
    for i, node in enumerate(sim.nodes):
        node.state.set_config_epoch(i + 1)
        sim._apply(node)
    sim.meet_all()
    sim.run_for(2000)
    waited = 0
    while not sim.converged():
        assert waited < 30_000, f"seed {seed}: nodes never all met"
        sim.run_for(500)
        waited += 500
    per = 16384 // primaries
    for i in range(primaries):
        node = sim.nodes[i]
        node.state.add_slots(range(i * per, 16384 if i == primaries - 1 else (i + 1) * per))
        sim._apply(node)
    for j, p in enumerate(replicas_of):
        node = sim.nodes[primaries + j]
        node.state.replicate(sim.nodes[p].state.myself.id, False)
        sim._apply(node)
    wait_until(sim, lambda: sim.converged() and all(n.state.state_ok for n in sim.nodes), 20_000, "formation")
    return sim


def wait_until(sim: SimCluster, predicate, within_ms: int, what: str, check=None) -> int:
    waited = 0
    while not predicate():
        assert waited < within_ms, f"seed {sim.seed}: {what} not reached within {within_ms} ms"
        sim.run_for(100, check)
        waited += 100
    return waited


def node_id(sim: SimCluster, i: int) -> str:
    return sim.nodes[i].state.myself.id


def owner_bits(sim: SimCluster, i: int) -> int:
    st_ = sim.nodes[i].state
    return st_.claimed_slots(st_.myself)


class FailoverInvariants:
    def __init__(self, sim: SimCluster, *, offset_check: bool = False, automatic_only: bool = True) -> None:
        self.claims: dict[int, dict[str, int]] = {}  # configEpoch -> node id -> slots claimed with it
        self.events_seen = 0
        self.winners: dict[int, int] = {}  # election epoch -> node index
        self.offset_check = offset_check
        self.automatic_only = automatic_only
        cfg = sim.nodes[0].state.config
        self.allowance = (cfg.repl_ping_period_ms + NT * cfg.replica_validity_factor
                          if cfg.replica_validity_factor else float("inf"))
        self.elections = 0

    def __call__(self, sim: SimCluster) -> None:
        for n in sim.nodes:
            if not n.alive:
                continue
            me = n.state.myself
            if not me.flags & MASTER or not me.config_epoch:
                continue
            bits = n.state.claimed_slots(me)
            if not bits:
                continue
            per = self.claims.setdefault(me.config_epoch, {})
            for other, other_bits in per.items():
                assert other == me.id or not other_bits & bits, (
                    f"seed {sim.seed}: two primaries claim slots in configEpoch {me.config_epoch}")
            per[me.id] = per.get(me.id, 0) | bits
        for when, index, reason, detail in sim.events[self.events_seen:]:
            if reason not in ("election", "manual"):
                continue
            self.elections += 1
            config_epoch, auth_epoch, offset, down_ms = detail
            assert auth_epoch not in self.winners, (
                f"seed {sim.seed}: nodes {self.winners[auth_epoch]} and {index} both won epoch {auth_epoch}")
            self.winners[auth_epoch] = index
            if reason == "manual":
                continue  # an operator's failover skips the data-age check, as in Redis
            age = down_ms - NT if down_ms > NT else down_ms
            assert age <= self.allowance, f"seed {sim.seed}: stale replica {index} won (link down {down_ms} ms)"
        self.events_seen = len(sim.events)


def assert_healthy(sim: SimCluster) -> None:
    """Converged, ok everywhere, every replica follows a live primary that everyone sees as one."""
    assert sim.converged(), f"seed {sim.seed}: views differ"
    assert all(n.state.state_ok for n in sim.nodes if n.alive), f"seed {sim.seed}: cluster_state not ok"
    live_ids = {n.state.myself.id for n in sim.nodes if n.alive}
    for n in sim.nodes:
        if not n.alive:
            continue
        for rec in n.state.nodes.values():
            if rec.id in live_ids and rec.flags & SLAVE:
                primary = n.state.nodes.get(rec.master_id)
                assert primary is not None and primary.flags & MASTER, (
                    f"seed {sim.seed}: node {n.index} sees replica {rec.id} following a non-primary")
    owners = set(next(n for n in sim.nodes if n.alive).state.slots.owners)
    assert None not in owners and owners <= live_ids, f"seed {sim.seed}: slots unbound or on dead nodes"
    assert_marks_consistent(sim)


def assert_marks_consistent(sim: SimCluster) -> None:
    """Open slots after convergence: every mark names a live primary (a failover renamed marks naming the old
    one), and every replica's copy of its primary's marks is the primary's own."""
    by_id = {n.state.myself.id: n for n in sim.nodes if n.alive}
    for n in by_id.values():
        state = n.state
        if state.myself.flags & SLAVE:
            primary = by_id.get(state.myself.master_id)
            if primary is not None:
                own = (primary.state.slots.migrating_to, primary.state.slots.importing_from)
                assert state.primary_marks == own, (
                    f"seed {sim.seed}: node {n.index} holds {state.primary_marks} for its primary, which has {own}")
            continue
        for marks in (state.slots.migrating_to, state.slots.importing_from):
            for slot, other in marks.items():
                peer = by_id.get(other)
                assert peer is not None and peer.state.myself.flags & MASTER, (
                    f"seed {sim.seed}: node {n.index} has slot {slot} open with {other}, not a live primary")


def converge(sim: SimCluster, check, within_ms: int = 40 * NT) -> None:
    """Wait for one view and cluster_state ok everywhere, holding for 2 x NT in a row; then check it all."""
    waited = stable = 0
    while stable < 2 * NT:
        assert waited < within_ms, f"seed {sim.seed}: no stable convergence within {within_ms} ms"
        sim.run_for(100, check)
        waited += 100
        if sim.converged() and all(n.state.state_ok for n in sim.nodes if n.alive):
            stable += 100
        else:
            stable = 0
    assert_healthy(sim)


ACTIONS = ["kill", "restart", "pause", "resume", "split", "cut", "heal", "quiet", "failover"]


def run_schedule(seed: int, steps: list, *, lossy: bool, offset_check: bool) -> None:
    faults = NetworkFaults(loss=0.01, duplicate=0.01, reorder=0.05, max_delay=15) if lossy else None
    sim = build(seed, replicas_of=(0, 1, 2, 0), failover_offset_check=offset_check, replica_validity_factor=2,
                repl_ping_period_ms=1000)
    if faults:
        sim.faults = faults
    check = FailoverInvariants(sim)
    n = len(sim.nodes)
    down: set[int] = set()
    paused: set[int] = set()
    for action, a, b, duration in steps:
        a, b = a % n, b % n
        if action == "kill" and a not in down | paused and len(down | paused) < 2:
            sim.kill(a)
            down.add(a)
        elif action == "restart" and down:
            i = sorted(down)[a % len(down)]
            sim.restart(i)
            down.discard(i)
        elif action == "pause" and a not in down | paused and len(down | paused) < 2:
            sim.pause(a)
            paused.add(a)
        elif action == "resume" and paused:
            i = sorted(paused)[a % len(paused)]
            sim.resume(i)
            paused.discard(i)
        elif action == "split":
            members = list(range(n))
            random.Random(a * 31 + b).shuffle(members)
            cut = 1 + a % (n - 1)
            sim.partition([members[:cut], members[cut:]])
        elif action == "cut" and a != b:
            sim.cut(a, b)
        elif action == "heal":
            sim.heal()
        elif action == "failover" and sim.nodes[a].alive and sim.nodes[a].state.myself.flags & SLAVE:
            try:
                sim.nodes[a].state.failover("force" if b % 2 else "", sim.now)  # CLUSTER FAILOVER [FORCE]
            except ClusterError:
                pass  # refused (primary down or unknown): the command's error, nothing changes
            sim._apply(sim.nodes[a])
        sim.run_for(duration, check)
    sim.heal()
    for i in sorted(paused):
        sim.resume(i)
    for i in sorted(down):
        sim.restart(i)
    sim.faults = NetworkFaults()
    converge(sim, check, within_ms=60 * NT)
    primaries = sim.primaries()
    assert len(primaries) == 3, f"seed {seed}: {len(primaries)} primaries with slots"


def seeded_steps(seed: int) -> list:
    rng = random.Random(seed)
    return [(rng.choice(ACTIONS), rng.randrange(64), rng.randrange(64), rng.randint(200, 3 * NT))
            for _ in range(rng.randint(1, 5))]




def main(argv: list[str]) -> int:
    first, last = (int(argv[0]), int(argv[1])) if len(argv) >= 2 else (0, 200)
    bad = []
    for seed in range(first, last):
        try:
            run_schedule(seed, seeded_steps(seed), lossy=seed % 2 == 1, offset_check=seed % 3 == 0)
        except AssertionError as exc:
            bad.append(seed)
            print(f"seed {seed}: {exc}", flush=True)
    print(f"{last - first - len(bad)} of {last - first} seeds passed; failing: {bad}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
