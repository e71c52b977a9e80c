"""Automatic and manual failover, elections and replica migration on the simulated network.

Every run is a pure function of its seed (printed on failure: rerun it to
replay exactly). The invariants are checked after every 100 ms tick:

* at most one primary claims a slot in any configEpoch (over the whole run);
* no two replicas win the election of the same epoch;
* a replica whose link with its primary was down for longer than the
  validity window never wins an automatic election;
* (scenario test) with ``failover_offset_check`` on, the most up-to-date
  sibling wins even when the siblings cannot hear each other;
* after healing (and restarting what was killed) everything converges: one
  owner per slot, every replica follows a live primary, cluster_state ok.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gossip.core import CANT_DATA_AGE
from gossip.messages import FAILED, MASTER, SLAVE
from jepsen_like.sim.failover import (
    ACTIONS, NT, FailoverInvariants, build, converge, node_id, owner_bits, run_schedule, seeded_steps, wait_until,
)

# ------------------------------------------------------------------ automatic failover


@pytest.mark.parametrize("seed", range(6))
def test_replica_replaces_killed_primary_and_old_primary_rejoins_as_its_replica(seed):
    sim = build(seed)
    check = FailoverInvariants(sim)
    slots0 = owner_bits(sim, 0)
    sim.run_for(1000, check)
    sim.kill(0)
    waited = wait_until(sim, lambda: owner_bits(sim, 3) == slots0, 6 * NT, "promotion of node 3", check)
    assert waited <= 3 * NT + 2000, waited  # detection (NT..1.5 NT) + report spread + delay + votes
    assert sim.nodes[3].state.myself.flags & MASTER
    assert check.elections == 1
    converge(sim, check)
    assert sim.nodes[3].state.myself.config_epoch > max(sim.nodes[i].state.myself.config_epoch for i in (1, 2))
    sim.restart(0)
    converge(sim, check)
    old = sim.nodes[0].state.myself
    assert old.flags & SLAVE and old.master_id == node_id(sim, 3)
    assert sim.nodes[0].state.nodes[node_id(sim, 3)].flags & MASTER


def test_voting_logs_and_epochs_follow_redis():
    sim = build(11)
    sim.kill(1)
    wait_until(sim, lambda: sim.nodes[4].state.myself.flags & MASTER, 6 * NT, "promotion")
    texts = [t for _, t in sim.nodes[4].log]
    delayed = [t for t in texts if t.startswith("Start of election delayed for ")]
    assert delayed and "(rank #0, offset " in delayed[0]
    started = [t for t in texts if t.startswith("Starting a failover election for epoch ")]
    assert len(started) == 1
    epoch = int(started[0].rsplit(" ", 1)[1].rstrip("."))
    assert "Failover election won: I'm the new master." in texts
    assert f"configEpoch set to {epoch} after successful failover" in texts
    granted = [i for i in (0, 2) if any(t == f"Failover auth granted to {node_id(sim, 4)} for epoch {epoch}"
                                        for _, t in sim.nodes[i].log)]
    assert granted == [0, 2]
    assert all(sim.nodes[i].state.last_vote_epoch == epoch for i in (0, 2))
    assert sim.nodes[4].state.myself.config_epoch == epoch


def test_replica_with_nofailover_never_takes_over():
    sim = build(5)
    sim.nodes[3].state.config.replica_no_failover = True
    sim.run_for(NT)
    line = next(x for x in sim.nodes[1].state.nodes_text().splitlines() if x.startswith(node_id(sim, 3)))
    assert line.split()[2] == "slave,nofailover"  # the flag travels in the header, as in Redis
    sim.kill(0)
    sim.run_for(8 * NT)
    assert sim.nodes[3].state.myself.flags & SLAVE
    assert not sim.nodes[1].state.state_ok


@pytest.mark.parametrize("factor,wins", [(1, False), (0, True)])
def test_stale_replica_does_not_fail_over_unless_validity_factor_is_zero(factor, wins):
    sim = build(21, replica_validity_factor=factor, repl_ping_period_ms=1000)
    check = FailoverInvariants(sim)
    sim.cut(0, 3)  # the replica loses its primary, the rest of the bus still works
    sim.run_for(8000, check)  # > NT + NT*factor + ping period: its data is too old
    sim.kill(0)
    sim.run_for(8 * NT, check)
    assert bool(sim.nodes[3].state.myself.flags & MASTER) == wins
    if not wins:
        assert sim.nodes[3].state.cant_failover_reason == CANT_DATA_AGE
        assert any("Currently unable to failover: Disconnected from master for longer than allowed" in t
                   for _, t in sim.nodes[3].log)


def test_failover_needs_a_majority_of_primaries():
    """P0 dies and the replica cannot reach P1: P2's vote alone is not a majority of 3; nobody wins."""
    sim = build(8)
    sim.cut(1, 3)
    sim.kill(0)
    sim.run_for(10 * NT)
    assert sim.nodes[1].state.nodes[node_id(sim, 0)].flags & FAILED
    assert sim.nodes[3].state.myself.flags & SLAVE
    assert any(t.startswith("Failover auth granted to") for _, t in sim.nodes[2].log)
    assert sim.nodes[3].state.cant_failover_reason in (
        "Waiting for votes, but majority still not reached.", "Failover attempt expired.",
        "Waiting the delay before I can start a new failover.")


def _sibling_race(seed: int, offset_check: bool) -> tuple[int, int, int]:
    """P0 with replicas 3 (up to date) and 6 (behind); the siblings cannot hear each other, so both rank 0."""
    sim = build(seed, replicas_of=(0, 1, 2, 0), failover_offset_check=offset_check, repl_lag=0)
    sim.cut(3, 6)
    sim.cut(0, 6)  # node 6 stops replicating for a moment: it falls behind (well inside the validity window)
    sim.run_for(1500)
    sim.cut(3, 6)
    sim.kill(0)
    wait_until(sim, lambda: any(sim.nodes[i].state.myself.flags & MASTER for i in (3, 6)), 10 * NT, "promotion")
    winner = 3 if sim.nodes[3].state.myself.flags & MASTER else 6
    return winner, sim.nodes[3].offset, sim.nodes[6].offset


def test_offset_check_makes_the_most_up_to_date_replica_win():
    outcomes = {True: [], False: []}
    for seed in range(12):
        for option in (True, False):
            winner, off3, off6 = _sibling_race(seed, option)
            assert off3 > off6
            outcomes[option].append(winner)
    assert set(outcomes[True]) == {3}, outcomes
    assert 6 in outcomes[False], outcomes  # Redis's rule alone lets the stale sibling win sometimes


def test_fast_failover_option_starts_the_election_at_once():
    def fail_to_promotion(fast: bool) -> int:
        sim = build(3, fast_failover=fast)
        sim.kill(0)
        wait_until(sim, lambda: sim.nodes[3].state.myself.flags & MASTER, 6 * NT, "promotion")
        log = sim.nodes[3].log
        failed_at = next(t for t, text in log if "FAIL message received" in text or "as failing" in text)
        won_at = next(t for t, text in log if text.startswith("Failover election won"))
        return won_at - failed_at

    assert fail_to_promotion(True) < 300
    assert fail_to_promotion(False) >= 500


# ------------------------------------------------------------------ manual failover


def test_manual_failover_swaps_roles_without_losing_writes():
    sim = build(4, repl_lag=60)
    check = FailoverInvariants(sim)
    sim.run_for(2000, check)
    slots0 = owner_bits(sim, 0)
    sim.nodes[3].state.failover("", sim.now)
    sim._apply(sim.nodes[3])
    wait_until(sim, lambda: owner_bits(sim, 3) == slots0, 5000, "manual failover", check)
    pause = next(e for e in sim.events if e[2] == "pause")
    promoted = next(e for e in sim.events if e[2] == "manual")
    assert pause[1] == 0 and promoted[1] == 3
    assert promoted[3][2] == pause[3][1]  # the new primary had everything the old one acknowledged
    converge(sim, check)
    assert sim.nodes[0].state.myself.master_id == node_id(sim, 3)
    assert any(e[2] == "unpause" and e[1] == 0 for e in sim.events)
    logs0 = [t for _, t in sim.nodes[0].log]
    assert f"Manual failover requested by replica {node_id(sim, 3)}." in logs0
    logs3 = [t for _, t in sim.nodes[3].log]
    assert "Manual failover user request accepted." in logs3
    assert "All master replication stream processed, manual failover can start." in logs3


def test_manual_failover_times_out_when_the_primary_never_answers():
    sim = build(6)
    sim.nodes[3].state.failover("", sim.now)
    sim._apply(sim.nodes[3])
    sim.cut(0, 3)  # the MFSTART never arrives; P0 stays healthy for everyone else
    sim.run_for(5500)
    assert any(t == "Manual failover timed out." for _, t in sim.nodes[3].log)
    assert sim.nodes[3].state.mf_end == 0
    sim.heal()
    sim.run_for(2 * NT)
    assert sim.nodes[3].state.myself.flags & SLAVE and sim.nodes[0].state.myself.flags & MASTER


def test_force_failover_does_not_wait_for_fail():
    sim = build(7)
    sim.cut(0, 3)
    sim.run_for(300)
    sim.nodes[3].state.failover("force", sim.now)
    sim._apply(sim.nodes[3])
    sim.run_for(1000)
    assert sim.nodes[3].state.myself.flags & MASTER
    assert not any(sim.nodes[i].state.nodes[node_id(sim, 0)].flags & FAILED for i in (1, 2))
    sim.heal()
    check = FailoverInvariants(sim)
    converge(sim, check)
    assert sim.nodes[0].state.myself.master_id == node_id(sim, 3)


def test_takeover_works_without_a_majority():
    sim = build(9)
    sim.kill(0)
    sim.kill(1)
    sim.run_for(500)
    before = sim.nodes[3].state.current_epoch
    sim.nodes[3].state.failover("takeover", sim.now)
    sim._apply(sim.nodes[3])
    me = sim.nodes[3].state.myself
    assert me.flags & MASTER and me.config_epoch == before + 1
    assert owner_bits(sim, 3) and any(e[2] == "takeover" for e in sim.events)
    sim.run_for(1000)
    assert sim.nodes[2].state.slots.owners[0] == me.id


@pytest.mark.parametrize("mode,error", [
    ("", "ERR You should send CLUSTER FAILOVER to a replica"),
])
def test_failover_errors_on_a_primary(mode, error):
    from gossip.core import ClusterError

    sim = build(2)
    with pytest.raises(ClusterError, match=error):
        sim.nodes[0].state.failover(mode, sim.now)


def test_failover_refuses_default_mode_when_primary_failed():
    from gossip.core import ClusterError

    sim = build(2, replica_no_failover=True)
    sim.kill(0)
    wait_until(sim, lambda: sim.nodes[3].state.nodes[node_id(sim, 0)].flags & FAILED, 4 * NT, "FAIL")
    with pytest.raises(ClusterError, match="ERR Master is down or failed, please use CLUSTER FAILOVER FORCE"):
        sim.nodes[3].state.failover("", sim.now)


# ------------------------------------------------------------------ replica migration


@pytest.mark.parametrize("allow,barrier,migrates", [(True, 1, True), (False, 1, False), (True, 2, False)])
def test_spare_replica_migrates_to_orphaned_primary(allow, barrier, migrates):
    sim = build(13, replicas_of=(0, 1, 2, 0), allow_replica_migration=allow, migration_barrier=barrier)
    sim.kill(5)  # P2's only replica
    sim.run_for(5 * NT + 6000)
    p2 = node_id(sim, 2)
    moved = [i for i in (3, 6) if sim.nodes[i].state.myself.master_id == p2]
    if not migrates:
        assert moved == []
        return
    smaller = min((3, 6), key=lambda i: node_id(sim, i))
    assert moved == [smaller]
    assert any(t == f"Migrating to orphaned master {p2}" for _, t in sim.nodes[smaller].log)
    check = FailoverInvariants(sim)
    converge(sim, check)


# ------------------------------------------------------------------ write lease


def test_write_lease_stops_an_isolated_primary_before_node_timeout():
    sim = build(17, write_lease_ms=600)
    assert all(n.state.write_ok for n in sim.nodes)
    sim.partition([[0], [1, 2, 3, 4, 5]])
    waited = wait_until(sim, lambda: not sim.nodes[0].state.write_ok, NT, "lease expiry")
    assert waited <= 1000
    assert sim.nodes[0].state.state_ok  # Redis's own rule has not fired yet
    assert sim.nodes[1].state.write_ok and sim.nodes[2].state.write_ok
    sim.heal()
    wait_until(sim, lambda: sim.nodes[0].state.write_ok or sim.nodes[0].state.myself.flags & SLAVE, 10 * NT,
               "lease back")


def test_write_lease_off_by_default():
    sim = build(17)
    sim.partition([[0], [1, 2, 3, 4, 5]])
    sim.run_for(NT - 200)
    assert sim.nodes[0].state.write_ok


# ------------------------------------------------------------------ random faults


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**20),
    steps=st.lists(st.tuples(st.sampled_from(ACTIONS), st.integers(0, 63), st.integers(0, 63),
                             st.integers(200, 3 * NT)), min_size=1, max_size=5),
    lossy=st.booleans(),
    offset_check=st.booleans(),
)
def test_random_faults_keep_the_invariants(seed, steps, lossy, offset_check):
    run_schedule(seed, steps, lossy=lossy, offset_check=offset_check)


@pytest.mark.parametrize("seed", range(40))
def test_seeded_fault_schedules(seed):
    """Each seed names its whole run: ``run_schedule(seed, seeded_steps(seed), ...)`` replays it."""
    run_schedule(seed, seeded_steps(seed), lossy=seed % 2 == 1, offset_check=seed % 3 == 0)


def test_failover_runs_replay_exactly():
    def run():
        sim = build(77, faults=None)
        sim.kill(0)
        sim.run_for(4 * NT)
        sim.restart(0)
        sim.run_for(2 * NT)
        return [n.state.nodes_text() for n in sim.nodes], [(e[0], e[1], e[2]) for e in sim.events]

    assert run() == run()
