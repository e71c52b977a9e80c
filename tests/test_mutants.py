"""Seeded mutants are caught by the named chaos scenario (issue 8).

Each mutant (node/mutants.py, switched on by SHOAL_MUTANT at node start-up)
breaks one guarantee on purpose; the named scenario must report a violation
with it, and pass without it:

* ``drop-acked-write`` -- 1 in N writes answered +OK without running:
  ``steady`` with the set workload counts the lost acknowledged writes;
* ``election-ignores-offsets`` -- election ranks by node id, not offset:
  ``replica-selection`` (the stale replica is the one with the smaller id)
  sees the stale replica win.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from jepsen_like.runner import run_scenario

pytestmark = pytest.mark.skipif(shutil.which("redis-cli") is None, reason="needs redis-cli (redis-tools)")


def test_unknown_mutant_stops_the_node_at_start_up(tmp_path):
    env = dict(os.environ, SHOAL_MUTANT="no-such-mutant")
    done = subprocess.run([sys.executable, "-m", "node.main", "--port", "0", "--dir", str(tmp_path)],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "unknown mutant 'no-such-mutant'" in done.stderr


def test_drop_acked_write_is_caught_by_steady_set():
    s = run_scenario("steady", engine="shoal", nodes=3, workload="set", duration=4.0, seed=11, threads=4,
                     mutant="drop-acked-write")
    assert s.status == "completed", s.to_text()
    assert s.mutant == "drop-acked-write" and "MUTANT: drop-acked-write" in s.to_text()
    # 1 in 40 adds acknowledged and never applied: the set checker finds them missing.
    assert s.lost_acknowledged and s.lost_acknowledged >= s.details["acknowledged"] // 80, s.to_text()
    assert s.verdict == "invalid" and s.judgement == "violation", s.to_text()


def test_drop_acked_write_is_caught_by_steady_register():
    s = run_scenario("steady", engine="shoal", nodes=3, workload="register", duration=4.0, seed=12, threads=4,
                     mutant="drop-acked-write")
    assert s.status == "completed", s.to_text()
    assert s.verdict == "invalid" and s.judgement == "violation", s.to_text()


def test_mutants_are_shoal_only():
    s = run_scenario("steady", engine="redis", nodes=3, duration=1.0, mutant="drop-acked-write")
    assert s.status == "skipped" and "Shoal" in s.skip_reason


def _replica_selection(mutant):
    return run_scenario("replica-selection", engine="shoal", workload="set", duration=12.0, seed=5, threads=4,
                        mutant=mutant)


def test_election_ignoring_offsets_is_caught_by_replica_selection():
    s = _replica_selection("election-ignores-offsets")
    assert s.status == "completed", s.to_text()
    failed = [e for e in s.expectations if e.startswith("FAILED")]
    assert any("up-to-date replica" in e for e in failed), s.to_text()
    assert s.judgement == "violation", s.to_text()
    # The stale replica won: the writes it missed (seconds of them) are lost, outside the lag window.
    assert s.lost_acknowledged and s.lost_outside_window, s.to_text()


def test_replica_selection_passes_without_the_mutant():
    s = _replica_selection(None)
    assert s.status == "completed", s.to_text()
    assert s.expectations and not [e for e in s.expectations if e.startswith("FAILED")], s.to_text()
    assert any("up-to-date replica" in e for e in s.expectations)
    assert s.judgement in ("ok", "allowed") and not s.lost_outside_window, s.to_text()
    assert s.failover_times and s.failover_times[0] is not None and s.failover_times[0] > 0
