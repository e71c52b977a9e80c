"""The real-process chaos harness: clusters on 127.0.0.2.., workloads, nemeses, runner, ``shoal chaos``.

The end-to-end runs are short (a few seconds of workload on 3 nodes); the
pure parts (fault schedules, partition groupings, nft rules, the judgement,
the client's error classification) are tested without processes.
"""

from __future__ import annotations

import json
import random
import shutil
import socket
import subprocess
import sys
import threading

import pytest

from cluster.cli import main as shoal_main
from jepsen_like.client import ClusterClient, DefiniteFailure, IndefiniteFailure
from jepsen_like.cluster import loopback_hosts_usable, node_host
from jepsen_like.nemesis import PARTITIONS, nft_ruleset, partition_groups, partition_support, schedule
from jepsen_like.runner import Summary, _judge, run_scenario
from jepsen_like.scenarios import SCENARIOS, get_scenario
from jepsen_like.workloads import Recorder

needs_cli = pytest.mark.skipif(shutil.which("redis-cli") is None, reason="needs redis-cli (redis-tools)")
needs_redis = pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")

ENGINES = ["shoal", pytest.param("redis", marks=needs_redis)]


def _assert_counts_add_up(s: Summary) -> None:
    for counts in (s.ops, s.workload_ops):
        assert counts["ok"] + counts["fail"] + counts["info"] == counts["total"]
    assert s.workload_ops["total"] <= s.ops["total"]
    assert s.ops["total"] > s.workload_ops["total"]  # the final reads are recorded too


# ------------------------------------------------------------ end to end
@needs_cli
@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("workload", ["register", "set"])
def test_steady_is_valid_and_loses_nothing(engine, workload):
    s = run_scenario("steady", engine=engine, nodes=3, workload=workload, duration=2.5, seed=7, threads=4)
    assert s.status == "completed", s.to_text()
    _assert_counts_add_up(s)
    assert s.workload_ops["ok"] > 100, s.to_text()
    assert s.verdict == "valid" and s.judgement == "ok", s.to_text()
    assert s.faults == [] and s.final_reads_missed == []
    if workload == "set":
        assert s.lost_acknowledged == 0
        assert s.details["acknowledged"] > 100
    else:
        assert s.details["key_verdicts"]["valid"] == 8  # every register key was checked and linearizable
    assert s.node_tracebacks == []


@needs_cli
@pytest.mark.parametrize("engine", ENGINES)
def test_pause_primary_completes_and_stays_linearizable(engine):
    s = run_scenario("pause-primary", engine=engine, nodes=3, workload="register", duration=4.5, seed=3,
                     threads=4)
    assert s.status == "completed", s.to_text()
    _assert_counts_add_up(s)
    assert s.faults and all(" pause " in f for f in s.faults)
    assert any("pause n" in line for line in s.nemesis_log) and any("resume n" in line for line in s.nemesis_log)
    assert s.nemesis_errors == []
    assert s.verdict != "invalid" and s.judgement != "violation", s.to_text()
    assert s.availability is not None and 0.0 < s.availability <= 1.0
    assert "pause n" in s.to_text()  # the schedule is in the printed summary
    assert s.node_tracebacks == []


@needs_cli
def test_kill_restart_primary_loses_the_killed_primarys_writes_and_says_it_is_allowed():
    # No replica, persistence off: the restarted primary is empty, so the set checker must count losses.
    s = run_scenario("kill-restart-primary", engine="shoal", nodes=3, workload="set", duration=4.5, seed=3,
                     threads=4)
    assert s.status == "completed", s.to_text()
    _assert_counts_add_up(s)
    assert any("kill n" in line for line in s.nemesis_log) and any("restart n" in line for line in s.nemesis_log)
    assert s.lost_acknowledged and s.lost_acknowledged > 0, s.to_text()
    assert s.verdict == "invalid" and s.judgement == "allowed"
    assert "lost acknowledged writes: " + str(s.lost_acknowledged) in s.to_text()


# The smoke subset of the catalogue with replicas (make test): failover with its time measured, a manual
# failover that must lose nothing, resharding under load; each also against real Redis where it exists.
# (reshard against Shoal only here, to keep the budget; make chaos runs it on both engines)
@needs_cli
@pytest.mark.parametrize("name,engine", [("failover", "shoal"), pytest.param("failover", "redis", marks=needs_redis),
                                         ("manual-failover", "shoal"),
                                         pytest.param("manual-failover", "redis", marks=needs_redis),
                                         ("reshard", "shoal")])
def test_smoke_scenarios_with_replicas(name, engine):
    s = run_scenario(name, engine=engine, nodes=3, workload="set", duration=8.0, seed=4, threads=4)
    assert s.status == "completed", s.to_text()
    assert s.nodes == 6  # 3 primaries + 3 replicas: raised to what the scenario needs
    _assert_counts_add_up(s)
    assert s.expectations and not [e for e in s.expectations if e.startswith("FAILED")], s.to_text()
    assert s.judgement in ("ok", "allowed") and not s.lost_outside_window, s.to_text()
    if name != "failover":
        assert s.lost_acknowledged == 0 and s.verdict == "valid", s.to_text()  # zero loss allowed
    if name == "failover":
        # kill -> first ok write on the new primary: at least the node timeout (2 s) to detect the failure
        assert len(s.failover_times) == 1 and s.failover_times[0] is not None, s.to_text()
        assert s.failover_times[0] >= 1.0 and s.measures["promotion_s"][0] >= 1.0
        assert "failover times" in s.to_text()
    assert s.node_tracebacks == []


def test_partition_scenarios_run_in_a_namespace_or_are_skipped_with_the_reason():
    reason = partition_support()
    if reason is not None:
        s = run_scenario("partition-halves", engine="shoal", nodes=3, duration=1.0)
        assert s.status == "skipped"
        assert s.skip_reason == reason and len(reason) > 20
        assert s.verdict != "valid" and s.judgement != "ok"  # a skip is never a pass
        assert "SKIPPED: " + reason in s.to_text()
        return
    # Outside a namespace the runner refuses (it never touches the host's network) ...
    s = run_scenario("partition-halves", engine="shoal", nodes=3, duration=1.0)
    assert s.status == "error" and "namespace" in s.error
    # ... and the CLI re-executes itself inside one, where nft cuts the links (6 nodes: 3 primaries + 3
    # replicas, so the majority side fails over).
    done = subprocess.run([sys.executable, "-m", "jepsen_like", "run", "partition-halves", "--nodes", "3",
                           "--time", "12", "--seed", "3", "--json"], capture_output=True, text=True, timeout=300)
    summary = json.loads(done.stdout)
    assert summary["status"] == "completed", summary
    assert summary["nodes"] == 6  # raised to what the scenario needs
    assert any("partition halves: cut" in line for line in summary["nemesis_log"]), summary["nemesis_log"]
    assert any("heal partition" in line for line in summary["nemesis_log"])
    # Some requests were refused or timed out while cut off; a lost write must lie in the allowed window.
    not_ok = sum(v for k, v in summary["outcome_reasons"].items() if not k.startswith("fail:cas"))
    assert not_ok > 0, summary["outcome_reasons"]
    assert summary["judgement"] in ("ok", "allowed"), summary
    assert not summary["lost_outside_window"]
    assert done.returncode == 0


def test_compare_runs_both_engines_and_writes_html_reports(tmp_path, capfd):
    from jepsen_like.cli import main as chaos_main

    code = chaos_main(["compare", "steady", "--nodes", "3", "--time", "2", "--json", "--report", str(tmp_path)])
    rows = json.loads(capfd.readouterr().out)
    assert code == 0
    assert [r["engine"] for r in rows] == ["shoal", "redis"]
    assert all(r["status"] == "completed" and r["judgement"] == "ok" and r["lost"] == 0 for r in rows), rows
    for engine in ("shoal", "redis"):
        page = (tmp_path / f"steady-{engine}-seed0.html").read_text()
        assert page.count("data:image/png;base64,") == 2  # latency and throughput plots
        assert "judgement: ok" in page


def test_chaos_cli_lists_and_a_skip_never_exits_zero(capfd):
    assert shoal_main(["chaos", "list"]) == 0
    out = capfd.readouterr().out
    for name in ("steady", "kill-restart-primary", "pause-primary", "partition-halves"):
        assert name in out
    if partition_support() is not None:
        assert shoal_main(["chaos", "run", "partition-island", "--time", "1"]) == 3
        assert "SKIPPED" in capfd.readouterr().out
    assert shoal_main(["chaos", "run", "no-such-scenario"]) == 1


# ------------------------------------------------------------ pure parts
def test_loopback_hosts_bind():
    assert loopback_hosts_usable(6) is None
    assert [node_host(i) for i in range(3)] == ["127.0.0.2", "127.0.0.3", "127.0.0.4"]


def test_schedule_is_seeded_and_inside_the_window():
    a = schedule("kill", [0, 2], 30.0, random.Random(5))
    assert a == schedule("kill", [0, 2], 30.0, random.Random(5))
    assert a != schedule("kill", [0, 2], 30.0, random.Random(6))
    assert len(a) >= 3
    end = 0.0
    for f in a:
        assert f.node in (0, 2) and f.kind == "kill"
        assert f.start >= end  # one fault at a time
        end = f.start + f.duration
        assert end <= 29.0  # healed a second before the workload stops
    assert schedule("pause", [], 30.0, random.Random(1)) == []
    with pytest.raises(ValueError):
        schedule("halves", [0], 10.0, random.Random(1))


def _reach(drops, n):
    cut = set(drops)
    return {x: frozenset(y for y in range(n) if y == x or (x, y) not in cut) for x in range(n)}


def test_partition_groupings():
    rng = random.Random(2)
    halves = set(partition_groups("halves", 6, [0, 1, 2], rng))
    assert all((b, a) in halves for a, b in halves)  # symmetric
    sides = {frozenset(v) for v in _reach(halves, 6).values()}
    assert sorted(len(s) for s in sides) == [3, 3]
    island = partition_groups("island", 5, [], random.Random(1))
    assert len(island) == 8 and any(all(x in (a, b) for a, b in island) for x in range(5))
    iso = set(partition_groups("isolate-primaries", 6, [0, 1, 2], rng))
    assert (3, 4) not in iso and (0, 3) in iso and (3, 0) in iso and (0, 1) in iso
    ring = _reach(partition_groups("majorities-ring", 5, [], random.Random(4)), 5)
    assert all(len(v) >= 3 for v in ring.values())  # everyone sees a majority
    assert len(set(ring.values())) == 5  # ...and no two the same one
    one_way = partition_groups("one-way", 4, [], random.Random(1))
    assert len({a for a, _ in one_way}) == 1 and len(one_way) == 3
    with pytest.raises(ValueError):
        partition_groups("nope", 3, [], rng)
    rules = nft_ruleset([(0, 1)], node_host, one_way=True)
    assert "ip saddr 127.0.0.2 ip daddr 127.0.0.3 ct state new drop" in rules
    assert "ct state" not in nft_ruleset([(0, 1)], node_host)


def test_catalogue_states_what_each_scenario_allows():
    assert {"steady", "kill-restart-primary", "pause-primary"} <= set(SCENARIOS)
    assert {f"partition-{p}" for p in PARTITIONS} <= set(SCENARIOS)
    kill = get_scenario("kill-restart-primary")
    assert kill.allows_loss and "persistence is off" in kill.allows and "no replica" in kill.allows
    assert not get_scenario("pause-primary").allows_loss and not get_scenario("steady").allows_anomalies
    with pytest.raises(KeyError):
        get_scenario("nope")


def test_judgement():
    def summary(verdict, lost):
        s = Summary("x", "shoal", 3, "set", 0, 1.0)
        s.verdict, s.lost_acknowledged = verdict, lost
        return s
    steady, kill = get_scenario("steady"), get_scenario("kill-restart-primary")
    assert _judge(summary("valid", 0), steady) == "ok"
    assert _judge(summary("invalid", 3), steady) == "violation"
    assert _judge(summary("invalid", None), steady) == "violation"
    assert _judge(summary("unknown", None), steady) == "unknown"
    assert _judge(summary("invalid", 3), kill) == "allowed"
    assert _judge(summary("unknown", 0), kill) == "unknown"


def test_client_classifies_connect_failure_as_definite():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    c = ClusterClient([("127.0.0.1", port)], timeout=0.5)
    c.slots = [("127.0.0.1", port)] * 16384
    with pytest.raises(DefiniteFailure) as e:
        c.call("k", "SET", "k", "1")
    assert e.value.category == "connect"


def test_client_classifies_a_silent_server_as_indefinite():
    # A server that answers the connection handshake and then never replies to the command.
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    port = srv.getsockname()[1]
    got = []
    done = threading.Event()

    def serve():
        conn, _ = srv.accept()
        conn.settimeout(5)
        try:
            while not done.is_set():
                data = conn.recv(4096)
                if not data:
                    break
                got.append(data)
                # redis-py's connect handshake (HELLO 3, CLIENT SETINFO): answer it, and nothing else
                for cmd in data.split(b"*")[1:]:
                    if b"HELLO" in cmd:
                        conn.sendall(b"%1\r\n$5\r\nproto\r\n:3\r\n")
                    elif b"CLIENT" in cmd:
                        conn.sendall(b"+OK\r\n")
        except OSError:
            pass
        finally:
            conn.close()

    th = threading.Thread(target=serve, daemon=True)
    th.start()
    try:
        c = ClusterClient([("127.0.0.1", port)], timeout=0.5)
        c.slots = [("127.0.0.1", port)] * 16384
        with pytest.raises(IndefiniteFailure) as e:
            c.call("k", "SET", "k", "1")
        assert e.value.category == "timeout"
        assert any(b"SET" in d for d in got)  # it was sent: that is why the outcome is unknown
    finally:
        done.set()
        srv.close()
        th.join(5)


def test_recorder_numbers_ops_in_invocation_order_across_threads():
    rec = Recorder()

    def work(p):
        for i in range(200):
            h = rec.invoke(p, "add", "k", (p, i))
            rec.complete(h, "ok", (p, i))

    threads = [threading.Thread(target=work, args=(p,)) for p in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    h = rec.history()
    assert len(h) == 800 and [op.index for op in h] == list(range(800))
    assert all(a.invoke <= b.invoke for a, b in zip(h, h[1:]))


# ------------------------------------------------- replicas, scripts, judgement by loss windows
def test_catalogue_covers_the_failover_themes_and_marks_shoal_only_options():
    from jepsen_like.faults import script_for

    for name in ("failover", "failover-loop", "manual-failover", "takeover", "replica-selection",
                 "stale-replica-no-failover", "replica-migration", "no-failover", "double-failover", "reshard",
                 "half-migrated", "pubsub-failover", "spubsub-failover", "partition-halves-lease"):
        assert name in SCENARIOS, name
    for sc in SCENARIOS.values():
        if sc.scripted:
            assert callable(script_for(sc.nemesis)), sc.name
        if sc.replicas:
            assert sc.nodes >= 3 * (1 + sc.replicas), sc.name
        if sc.shoal_options:
            assert sc.shoal_only, sc.name  # a Shoal-only directive makes the scenario Shoal-only
            assert sc.server_options("redis") == list(sc.options)
    assert get_scenario("replica-selection").nodes == 7  # one primary with two replicas
    assert get_scenario("manual-failover").loss == "none"  # zero loss allowed
    assert get_scenario("no-failover").loss == "none"
    assert "--cluster-replica-no-failover" in get_scenario("no-failover").server_options("redis")
    assert get_scenario("partition-halves").is_partition and get_scenario("stale-replica-no-failover").is_partition
    lease = get_scenario("partition-halves-lease").server_options("shoal", 3000)
    assert lease[lease.index("--cluster-write-lease-ms") + 1] == "1500"


def test_judgement_with_loss_windows_and_expectations():
    def summary(verdict, lost, outside=None, expectations=()):
        s = Summary("x", "shoal", 6, "set", 0, 1.0)
        s.verdict, s.lost_acknowledged, s.lost_outside_window = verdict, lost, outside
        s.expectations = list(expectations)
        return s
    failover, manual = get_scenario("failover"), get_scenario("manual-failover")
    assert _judge(summary("invalid", 4, 0), failover) == "allowed"  # all inside the lag window
    assert _judge(summary("invalid", 4, 1), failover) == "violation"  # one older than the window
    assert _judge(summary("invalid", 2, 0), manual) == "violation"  # manual failover: no loss at all
    assert _judge(summary("valid", 0, None, ["ok: a"]), failover) == "ok"
    assert _judge(summary("valid", 0, None, ["ok: a", "FAILED: b"]), failover) == "violation"


def test_failover_times_and_lost_outside_windows_from_a_history():
    from jepsen_like.history import HistoryBuilder
    from jepsen_like.runner import _failover_times, _lost_outside
    from jepsen_like.workloads import make_workload
    from slots import keyslot

    wl = make_workload("set", 2, random.Random(0))
    b = HistoryBuilder()
    ms = 1_000_000
    h = b.invoke(0, "add", "set:0", 1, time=0)
    b.complete(h, "ok", 1, time=1 * ms)
    h = b.invoke(0, "add", "set:0", 2, time=500 * ms)
    b.complete(h, "ok", 2, time=501 * ms)
    h = b.invoke(1, "add", "set:0", 3, time=1000 * ms)  # after the outage at 900 ms: refused, then ok
    b.complete(h, "fail", 3, time=1001 * ms)
    h = b.invoke(1, "add", "set:1", 4, time=1100 * ms)  # another key's slot: not counted
    b.complete(h, "ok", 4, time=1101 * ms)
    h = b.invoke(1, "add", "set:0", 5, time=2900 * ms)
    b.complete(h, "ok", 5, time=2901 * ms)
    history = b.build()
    slot0 = keyslot(b"set:0")
    assert _failover_times(history, [(900 * ms, "kill n1", (slot0,))], wl) == [2.0]  # 900 ms -> 2901 ms
    assert _failover_times(history, [(300 * ms, "manual", (slot0,))], wl) == [2.4]  # longest stall: 501 -> 2901
    assert _failover_times(history, [(3000 * ms, "kill n1", (slot0,))], wl) == [None]
    windows = [(400 * ms, 900 * ms, "lag")]
    assert _lost_outside(history, {"_lost_elements": [2]}, windows) == 0
    assert _lost_outside(history, {"_lost_elements": [1, 2, 5]}, windows) == 2
    assert _lost_outside(history, {}, windows) is None


def test_catalogue_markdown_table():
    from jepsen_like.cli import _row, markdown_table

    s = Summary("failover", "redis", 6, "set", 0, 20.0)
    s.verdict, s.judgement, s.lost_acknowledged, s.lost_outside_window = "invalid", "allowed", 3, 0
    s.availability, s.failover_times = 0.934, [2.5, 3.25]
    skipped = Summary("partition-halves-lease", "redis", 6, "set", 0, 20.0, status="skipped",
                      skip_reason="Shoal-only scenario")
    table = markdown_table([_row(s), _row(skipped)])
    lines = table.splitlines()
    assert lines[0] == "| scenario | engine | verdict | lost acknowledged writes | availability | failover time |"
    assert lines[2] == "| failover | redis | allowed (invalid) | 3 (0 outside the allowed window) | 93.4% | 3.25 s |"
    assert lines[3].startswith("| partition-halves-lease | redis | skipped: Shoal-only")
