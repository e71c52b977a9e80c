"""The cluster state machine on a simulated network: formation, failure detection, partitions, convergence.

Every run is a pure function of its seed (printed on failure): rerun the same
seed to replay it exactly. Hypothesis chooses fault schedules; the invariants
are checked after every 100 ms tick of simulated time.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gossip.messages import FAILED, MASTER
from jepsen_like.sim import SimCluster
from jepsen_like.sim.cluster import NetworkFaults

NT = 2000


def formed_cluster(seed: int, n: int = 6, primaries: int = 3, faults: NetworkFaults | None = None) -> SimCluster:
    """``n`` nodes, met, slots spread over ``primaries`` primaries, the rest as replicas."""
    sim = SimCluster(n, seed, node_timeout=NT)  # formed on a clean network; faults start afterwards
    for i, node in enumerate(sim.nodes):
        node.state.set_config_epoch(i + 1)
        sim._apply(node)
    sim.meet_all()
    sim.run_for(3000)
    waited = 0
    while not sim.converged():  # lossy networks take longer to finish every handshake
        assert waited < 30_000, f"seed {seed}: nodes never all met"
        sim.run_for(500)
        waited += 500
    per = 16384 // primaries
    for i in range(primaries):
        node = sim.nodes[i]
        node.state.add_slots(range(i * per, 16384 if i == primaries - 1 else (i + 1) * per))
        sim._apply(node)
    for i in range(primaries, n):
        node = sim.nodes[i]
        node.state.replicate(sim.nodes[i % primaries].state.myself.id, False)
        sim._apply(node)
    if faults is not None:
        sim.faults = faults
    return sim


class Invariants:
    """Checked every tick: epochs never go back; no FAIL for a node that was never cut off or killed."""

    def __init__(self, sim: SimCluster) -> None:
        self.current = {n.index: n.state.current_epoch for n in sim.nodes}
        self.config = {n.index: n.state.myself.config_epoch for n in sim.nodes}
        self.troubled: set[int] = set()  # nodes ever killed or partitioned away

    def __call__(self, sim: SimCluster) -> None:
        for n in sim.nodes:
            st = n.state
            assert st.current_epoch >= self.current[n.index], f"seed {sim.seed}: currentEpoch went back on {n.index}"
            assert st.myself.config_epoch >= self.config[n.index], f"seed {sim.seed}: configEpoch went back"
            assert st.myself.config_epoch <= st.current_epoch or st.myself.config_epoch == 0
            self.current[n.index] = st.current_epoch
            self.config[n.index] = st.myself.config_epoch
        for observer in sim.nodes:
            if not observer.alive:
                continue
            for subject in sim.nodes:
                if subject.index in self.troubled or subject is observer:
                    continue
                flags = sim.flags_of(observer.index, subject.index)
                assert not flags & FAILED, (
                    f"seed {sim.seed}: node {observer.index} marked healthy node {subject.index} FAIL")


def assert_converges(sim: SimCluster, within_ms: int) -> None:
    """One view everywhere and cluster_state ok everywhere, within ``within_ms`` of simulated time.

    Getting back to ok can legitimately take a while after healing: a master
    with slots keeps its FAIL flag for 2 x NT, and a master that was in the
    minority waits the rejoin delay before it accepts writes again.
    """
    waited = 0
    while not (sim.converged() and all(n.state.state_ok for n in sim.nodes if n.alive)):
        assert waited < within_ms, f"seed {sim.seed}: no convergence within {within_ms} ms after healing"
        sim.run_for(500)
        waited += 500


def assert_no_duplicate_claims(sim: SimCluster) -> None:
    """Once converged, no two primaries serving slots share a configEpoch."""
    st = sim.nodes[0].state
    epochs = {}
    for owner in set(st.slots.owners) - {None}:
        epoch = st.nodes[owner].config_epoch
        assert epoch not in epochs, f"seed {sim.seed}: primaries {owner} and {epochs[epoch]} share epoch {epoch}"
        epochs[epoch] = owner


@pytest.mark.parametrize("seed", range(8))
def test_cluster_forms_and_agrees(seed):
    sim = formed_cluster(seed)
    check = Invariants(sim)
    sim.run_for(4000, check)
    assert sim.converged(), f"seed {seed}"
    assert all(n.state.state_ok for n in sim.nodes), f"seed {seed}"
    assert_no_duplicate_claims(sim)
    text = sim.nodes[0].state.nodes_text()
    assert text.count("\n") == 6 and text.count(" slave ") == 3


def test_all_epochs_zero_resolve_by_collision_handling():
    """Without SET-CONFIG-EPOCH every master starts at 0; collisions must leave distinct epochs."""
    sim = SimCluster(4, 99, node_timeout=NT)
    sim.meet_all()
    for i, node in enumerate(sim.nodes):
        node.state.add_slots(range(i * 4096, (i + 1) * 4096))
        sim._apply(node)
    sim.run_for(15000)
    assert sim.converged()
    assert_no_duplicate_claims(sim)


@pytest.mark.parametrize("seed", range(4))
def test_dead_primary_without_replica_fails_cluster_within_two_node_timeouts(seed):
    sim = formed_cluster(seed, n=3, primaries=3)
    sim.run_for(3000)
    assert all(n.state.state_ok for n in sim.nodes)
    sim.kill(2)
    sim.run_for(2 * NT)
    for n in sim.nodes[:2]:
        assert not n.state.state_ok, f"seed {seed}: node {n.index} still ok"
        assert sim.flags_of(n.index, 2) & FAILED


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    schedule=st.lists(
        st.tuples(
            st.sampled_from(["halves", "isolate", "ring", "heal"]),
            st.integers(0, 5),
            st.integers(200, 4 * NT),
        ),
        min_size=1,
        max_size=4,
    ),
    faults=st.sampled_from([
        NetworkFaults(),
        NetworkFaults(loss=0.02, duplicate=0.02, reorder=0.1, max_delay=20),
    ]),
)
def test_partitions_heal_and_converge(seed, schedule, faults):
    """Any schedule of partitions, then heal: every node converges to one view, epochs sane."""
    sim = formed_cluster(seed % 10_000, faults=faults)
    sim.seed = (seed, schedule)
    check = Invariants(sim)
    sim.run_for(2000, check)
    for kind, who, duration in schedule:
        if kind == "halves":
            sim.partition([[0, 1, 2], [3, 4, 5]] if who % 2 else [[0, 3, 4], [1, 2, 5]])
        elif kind == "isolate":
            sim.partition([[who], [i for i in range(6) if i != who]])
        elif kind == "ring":
            sim.partition([[who, (who + 1) % 6], [i for i in range(6) if i not in (who, (who + 1) % 6)]])
        else:
            sim.heal()
        if kind != "heal":
            check.troubled.update(range(6))  # FAIL may be legitimate for anyone cut off
        sim.run_for(duration, check)
    sim.heal()
    assert_converges(sim, within_ms=30 * NT)
    sim.run_for(3 * NT, check)
    assert_no_duplicate_claims(sim)
    assert all(n.state.state_ok for n in sim.nodes), f"seed {sim.seed}: state not ok after healing"
    masters = [n for n in sim.nodes if n.state.myself.flags & MASTER]
    assert len(masters) == 3


def test_seed_replays_exactly():
    def run():
        sim = formed_cluster(1234, faults=NetworkFaults(loss=0.05, reorder=0.2, max_delay=30))
        sim.partition([[0, 1], [2, 3, 4, 5]])
        sim.run_for(5000)
        sim.heal()
        sim.run_for(5000)
        return [n.state.nodes_text() for n in sim.nodes], [n.saves for n in sim.nodes]

    assert run() == run()


def random_schedule(seed: int) -> list[tuple[str, list, int]]:
    """A fault schedule drawn from ``seed`` alone (so the seed names the whole run)."""
    import random

    rng = random.Random(seed)
    steps = []
    for _ in range(rng.randint(1, 4)):
        kind = rng.choice(["split", "isolate", "heal", "quiet"])
        if kind == "split":
            members = list(range(4))
            rng.shuffle(members)
            cut = rng.randint(1, 3)
            steps.append(("split", [members[:cut], members[cut:]], rng.randint(100, 3 * NT)))
        elif kind == "isolate":
            who = rng.randrange(4)
            steps.append(("split", [[who], [i for i in range(4) if i != who]], rng.randint(100, 3 * NT)))
        else:
            steps.append((kind, [], rng.randint(100, 2 * NT)))
    return steps


SWEEP = 1000


def test_thousand_seeded_schedules():
    """1000 seeds, each a 4-node cluster (2 primaries + 2 replicas) under its own lossy schedule.

    A failure names the seed; ``run_seed(seed)`` replays it exactly.
    """
    for seed in range(SWEEP):
        run_seed(seed)


def run_seed(seed: int) -> None:
    faults = NetworkFaults(loss=0.01, duplicate=0.01, reorder=0.05, max_delay=10) if seed % 2 else None
    sim = formed_cluster(seed, n=4, primaries=2, faults=faults)
    sim.codec_roundtrip = seed % 10 == 0  # every tenth run also goes through the wire codec
    check = Invariants(sim)
    sim.run_for(1000, check)
    for kind, groups, duration in random_schedule(seed):
        if kind == "split":
            sim.partition(groups)
            check.troubled.update(range(4))
        elif kind == "heal":
            sim.heal()
        sim.run_for(duration, check)
    sim.heal()
    assert_converges(sim, within_ms=30 * NT)
    sim.run_for(2 * NT, check)
    assert_no_duplicate_claims(sim)
    assert all(n.state.state_ok for n in sim.nodes), f"seed {seed}: state not ok after healing"


def test_heartbeat_frames_stay_small_as_the_cluster_grows():
    """A PING carries slot ranges, not a 2 KB bitmap: with 40 nodes it is a fraction of Redis's header alone."""
    from gossip.codec import encode_message
    from gossip.messages import PING

    sizes = {}
    for n in (6, 40):
        sim = formed_cluster(7, n=n, primaries=n // 2)
        sim.run_for(3000)
        state = sim.nodes[0].state
        frames = [len(encode_message(state._ping_message(PING))) for _ in range(20)]
        sizes[n] = max(frames)
        redis_bytes = 2256 + 104 * max(3, n // 10)  # Redis's fixed header plus its gossip section
        assert sizes[n] < redis_bytes / 3, (n, sizes[n], redis_bytes)
    assert sizes[40] < 3 * sizes[6]
