"""Failover with real processes: kill -9 a primary, restart it, CLUSTER FAILOVER [FORCE|TAKEOVER].

Six ``shoal-server`` nodes are joined by ``redis-cli --cluster create
--cluster-replicas 1``. The tests run in order on that one cluster (each
leaves it healthy for the next). Data assertions run only when the
replication layer reports a connected link (``INFO replication``), so the
topology checks hold on their own.
"""

from __future__ import annotations

import os
import shutil
import signal
import time

import pytest
import redis

from tests.resp_client import RawClient
from tests.servers import ServerProcess, created_cluster, free_cluster_port

NT = 2000

pytestmark = pytest.mark.skipif(shutil.which("redis-cli") is None, reason="needs redis-cli (redis-tools)")


def call(port: int, *args):
    return redis.Redis(port=port, socket_timeout=5).execute_command(*args)


def nodes_view(port: int) -> dict:
    """CLUSTER NODES as id -> (flags set, master id, epoch, slot ranges text)."""
    text = call(port, "CLUSTER", "NODES")
    text = text.decode() if isinstance(text, bytes) else text
    view = {}
    for line in text.splitlines():
        parts = line.split()
        if not parts:
            continue
        view[parts[0]] = (set(parts[2].split(",")) - {"myself"}, parts[3], int(parts[6]), " ".join(parts[8:]))
    return view


def myid(port: int) -> str:
    value = call(port, "CLUSTER", "MYID")
    return value.decode() if isinstance(value, bytes) else value


def cluster_info(port: int) -> dict:
    raw = call(port, "CLUSTER", "INFO")
    raw = raw.decode() if isinstance(raw, bytes) else raw
    return dict(line.split(":", 1) for line in raw.splitlines() if ":" in line)


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            result = predicate()
            if result:
                return result
        except (OSError, redis.RedisError) as exc:
            last_error = exc
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what} (last error: {last_error!r})")


def agreed_view(nodes) -> dict | None:
    """The common CLUSTER NODES view (without link states/ping times) of every live node, if they agree."""
    views = []
    for node in nodes:
        if not node.alive():
            continue
        view = nodes_view(node.port)
        views.append({k: (v[0] - {"fail?"}, v[1], v[2], v[3]) for k, v in view.items()})
    if views and all(v == views[0] for v in views) and all(
            cluster_info(n.port)["cluster_state"] == "ok" for n in nodes if n.alive()):
        return views[0]
    return None


def replication_info(port: int) -> str:
    with RawClient(port) as c:
        return c.call("INFO", "replication").decode(errors="replace")


def link_up(port: int) -> bool:
    return "master_link_status:up" in replication_info(port)


class Cluster:
    def __init__(self, nodes) -> None:
        self.nodes = nodes

    def by_id(self, node_id: str):
        return next(n for n in self.nodes if n.alive() and myid(n.port) == node_id)

    def owner_of_slot0(self):
        view = agreed_view(self.nodes)
        assert view is not None
        owner = next(k for k, v in view.items() if "master" in v[0] and v[3].startswith("0-"))
        replica = next(k for k, v in view.items() if "slave" in v[0] and v[1] == owner)
        return self.by_id(owner), self.by_id(replica)


@pytest.fixture(scope="module")
def cluster():
    with created_cluster(6, node_timeout=NT) as nodes:
        wait_for(lambda: (view := agreed_view(nodes)) is not None
                 and sum("slave" in v[0] for v in view.values()) == 3, 40, "a formed cluster")
        yield Cluster(nodes)


def _write_keys(port: int, count: int = 20) -> list[bytes]:
    """Write ``count`` keys that hash into slots 0-5460 (the shard under test)."""
    keys = []
    i = 0
    while len(keys) < count:
        key = f"k{i}".encode()
        i += 1
        if call(port, "CLUSTER", "KEYSLOT", key) <= 5460:
            call(port, "SET", key, b"v" + key)
            keys.append(key)
    return keys


def test_kill_primary_replica_takes_over_and_old_primary_rejoins(cluster):
    primary, replica = cluster.owner_of_slot0()
    old_id, new_id = myid(primary.port), myid(replica.port)
    data_checked = "master_link_status" in replication_info(replica.port)
    if data_checked:  # the replication layer is there: its link must come up
        wait_for(lambda: link_up(replica.port), 20, "the replica's link to its primary")
    keys = []
    if data_checked:
        keys = _write_keys(primary.port)
        assert call(primary.port, "WAIT", 1, 2000) >= 1
    epoch_before = int(cluster_info(replica.port)["cluster_current_epoch"])
    os.kill(primary.proc.pid, signal.SIGKILL)
    primary.proc.wait()
    started = time.monotonic()
    view = wait_for(lambda: (v := agreed_view(cluster.nodes)) is not None and "master" in v[new_id][0]
                    and v[new_id][3].startswith("0-5460") and v, 10 * NT / 1000, "the replica's promotion")
    elapsed = time.monotonic() - started
    assert elapsed < 8 * NT / 1000, elapsed
    assert view[new_id][2] > epoch_before  # won an election: a new, larger configEpoch
    assert "fail" in view[old_id][0]
    epochs = [v[2] for v in view.values() if "master" in v[0] and v[3]]
    assert len(epochs) == len(set(epochs)) == 3
    log = replica.log()
    assert "Failover election won: I'm the new master." in log
    assert "Start of election delayed for" in log
    if data_checked:
        for key in keys:
            assert call(replica.port, "GET", key) == b"v" + key
        assert "role:master" in replication_info(replica.port)
    # The old primary comes back from its nodes.conf and follows the winner.
    primary.start(timeout=30)
    view = wait_for(lambda: (v := agreed_view(cluster.nodes)) is not None and "slave" in v[old_id][0]
                    and v[old_id][1] == new_id and v, 15 * NT / 1000, "the old primary to rejoin as a replica")
    assert nodes_view(primary.port)[old_id][1] == new_id
    assert "Configuration change detected. Reconfiguring myself as a replica of " + new_id in primary.log()
    if data_checked:
        wait_for(lambda: link_up(primary.port), 20, "the old primary replicating from the winner")
        call(replica.port, "SET", keys[0], b"after")

        def replicated():
            with RawClient(primary.port) as c:
                c.call("READONLY")
                return c.call("GET", keys[0]) == b"$5\r\nafter\r\n"

        wait_for(replicated, 10, "the new primary's write on the old one")


def test_manual_failover_switches_roles_back(cluster):
    primary, replica = cluster.owner_of_slot0()
    replica_id = myid(replica.port)
    keys = []
    if link_up(replica.port):
        # Written without WAIT right before the switch: the coordinated failover must not lose them.
        keys = _write_keys(primary.port, 50)
    assert call(replica.port, "CLUSTER", "FAILOVER") in (b"OK", "OK", True)
    view = wait_for(lambda: (v := agreed_view(cluster.nodes)) is not None and "master" in v[replica_id][0]
                    and v[replica_id][3].startswith("0-5460") and v, 10 * NT / 1000, "manual failover")
    olds = [k for k, v in view.items() if "slave" in v[0] and v[1] == replica_id]
    assert len(olds) == 1
    log = replica.log()
    assert "Manual failover user request accepted." in log
    assert "All master replication stream processed, manual failover can start." in log
    old = cluster.by_id(olds[0])
    assert "Manual failover requested by replica " + replica_id in old.log()
    for key in keys:
        assert call(replica.port, "GET", key) == b"v" + key


def test_takeover_and_force(cluster):
    for mode in ("TAKEOVER", "FORCE"):
        if mode == "FORCE":
            time.sleep(2 * NT / 1000 + 0.3)  # a primary votes about one shard at most once per 2 x NT
        _, replica = cluster.owner_of_slot0()
        replica_id = myid(replica.port)
        assert call(replica.port, "CLUSTER", "FAILOVER", mode) in (b"OK", "OK", True)
        try:
            wait_for(lambda: (v := agreed_view(cluster.nodes)) is not None and "master" in v[replica_id][0]
                     and v[replica_id][3].startswith("0-5460"), 10 * NT / 1000, f"FAILOVER {mode}")
        except AssertionError:
            raise AssertionError("\n".join(n.log()[-3000:] for n in cluster.nodes)) from None
    assert "Taking over the master (user request)." in "".join(n.log() for n in cluster.nodes)
    assert "Forced failover user request accepted." in "".join(n.log() for n in cluster.nodes)


def test_failover_errors_match_redis(cluster):
    primary, _ = cluster.owner_of_slot0()
    with ServerProcess("redis", "--cluster-enabled", "yes", port=free_cluster_port()) as ref:
        for args in (("CLUSTER", "FAILOVER"), ("CLUSTER", "FAILOVER", "force"), ("CLUSTER", "FAILOVER", "bogus"),
                     ("CLUSTER", "FAILOVER", "force", "extra")):
            with RawClient(ref.port) as r, RawClient(primary.port) as s:
                assert s.call(*args) == r.call(*args), args


def test_shoal_options_are_hidden_configs(cluster):
    port = cluster.nodes[0].port
    everything = call(port, "CONFIG", "GET", "*")
    for name in ("cluster-fast-failover", "cluster-failover-offset-check", "cluster-write-lease-ms"):
        assert name.encode() not in everything  # CONFIG GET * lists what Redis lists
        assert call(port, "CONFIG", "GET", name) == {name.encode(): b"0" if name.endswith("ms") else b"no"}


def test_write_lease_refuses_writes_on_a_primary_cut_off_from_the_others(cluster):
    """cluster-write-lease-ms: with the two other primaries stopped, writes get CLUSTERDOWN, then recover."""
    primary, _ = cluster.owner_of_slot0()
    view = agreed_view(cluster.nodes)
    others = [cluster.by_id(k) for k, v in view.items() if "master" in v[0] and k != myid(primary.port)]
    key = next(f"lease{i}" for i in range(1000) if call(primary.port, "CLUSTER", "KEYSLOT", f"lease{i}") <= 5460)
    call(primary.port, "CONFIG", "SET", "cluster-write-lease-ms", "1000")
    try:
        wait_for(lambda: call(primary.port, "SET", key, "1"), 10, "writes under a fresh lease")
        for other in others:
            os.kill(other.proc.pid, signal.SIGSTOP)
        try:
            wait_for(lambda: cluster_info(primary.port).get("cluster_write_lease") == "expired", 10, "lease expiry")
            with RawClient(primary.port) as c:
                assert c.call("SET", key, "2") == b"-CLUSTERDOWN The cluster is down\r\n"
        finally:
            for other in others:
                os.kill(other.proc.pid, signal.SIGCONT)
        wait_for(lambda: call(primary.port, "SET", key, "3"), 30, "writes after the others came back")
        assert "Write lease lost" in primary.log() and "Write lease regained" in primary.log()
    finally:
        call(primary.port, "CONFIG", "SET", "cluster-write-lease-ms", "0")


def test_cluster_info_says_why_a_stale_replica_does_not_fail_over(cluster):
    """validity factor 1: a replica whose link has been down > ping period + 2 x NT stays put and says why;
    CLUSTER FAILOVER FORCE (no data-age check, as in Redis) still promotes it."""
    primary, replica = cluster.owner_of_slot0()
    replica_id = myid(replica.port)
    for name, value in (("cluster-replica-validity-factor", "1"), ("repl-ping-replica-period", "1"),
                        ("cluster-replica-no-failover", "yes")):
        call(replica.port, "CONFIG", "SET", name, value)
    os.kill(primary.proc.pid, signal.SIGKILL)
    primary.proc.wait()
    if "master_link_status" in replication_info(replica.port):
        wait_for(lambda: not link_up(replica.port), 10, "the replica to notice its primary is gone")
    time.sleep((2 * NT + 1000) / 1000 + 1.5)  # past the validity window (plus FAIL detection)
    call(replica.port, "CONFIG", "SET", "cluster-replica-no-failover", "no")
    if "master_link_status" in replication_info(replica.port):
        reason = wait_for(lambda: cluster_info(replica.port).get("cluster_failover_blocked"), 10, "the reason")
        assert reason == ("Disconnected from master for longer than allowed. Please check the "
                          "'cluster-replica-validity-factor' configuration option.")
        time.sleep(2 * NT / 1000)
        assert "slave" in nodes_view(replica.port)[replica_id][0]
    assert call(replica.port, "CLUSTER", "FAILOVER", "FORCE") in (b"OK", "OK", True)
    wait_for(lambda: "master" in nodes_view(replica.port)[replica_id][0], 10 * NT / 1000, "FORCE promotion")
    assert "cluster_failover_blocked" not in cluster_info(replica.port)
