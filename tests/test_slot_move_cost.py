"""What makes a reshard cheap per slot, without changing what Redis guarantees.

* The owner bit sets behind CLUSTER NODES, nodes.conf and the PING/PONG slot
  claims are kept current slot by slot (``ClusterState._rebind``), not rebuilt
  from the 16384 owners after every SETSLOT NODE or claim: checked against a
  full rebuild after random sequences of slot changes.
* The PONG broadcast after ``SETSLOT NODE`` closes an import is coalesced for
  primaries (the tools set the slot on every primary themselves): a burst of
  closes sends them one PONG (when the SETSLOTs pause, or at the next cron
  tick), and a primary nobody told still learns the new owner. Replicas get
  theirs at once, as in Redis.
* nodes.conf is rewritten in place; an epoch bump is on disk (fsynced)
  before the SETSLOT reply, and the file stays parseable.
"""

from __future__ import annotations

import os
import random
import shutil
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gossip.core import ClusterConfig, ClusterError, ClusterState
from gossip.messages import MASTER, PFAIL, PONG, SLAVE
from gossip.state import NodeRecord, parse_nodes_conf
from slots import SLOT_COUNT, keyslot
from slots.ranges import bits_from_ranges
from tests.resp_client import RawClient
from tests.servers import ServerProcess, free_cluster_port

NOW = 1_700_000_000_000


def _state_with_peers(peers: int = 3, seed: int = 0) -> ClusterState:
    state = ClusterState("%040x" % 1, 7000, 17000, ClusterConfig(), random.Random(seed), NOW)
    for i in range(peers):
        node = NodeRecord("%040x" % (i + 2), MASTER, NOW, ip="127.0.0.1", port=7001 + i, cport=17001 + i)
        node.link = True
        state.nodes[node.id] = node
    return state


def _rebuilt(state: ClusterState) -> dict:
    return {owner: bits_from_ranges(ranges) for owner, ranges in state.slots.by_owner().items()}


def _pongs(effects) -> list:
    return [e for e in effects if e.kind == "send" and e.msg.type == PONG]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["node", "add", "del", "claim", "touch"]), st.integers(0, 3),
                          st.integers(0, SLOT_COUNT - 1), st.integers(1, 80)), max_size=25))
def test_owner_bits_stay_equal_to_a_full_rebuild(ops):
    state = _state_with_peers()
    state.config = ClusterConfig(allow_replica_migration=False)  # stay a primary whatever slots it loses
    ids = list(state.nodes)
    state.add_slots(range(0, 4000))
    for action, who, slot, width in ops:
        state._owner_bits()  # a warm cache is what the incremental path updates
        target = state.nodes[ids[who]]
        if action == "node":
            try:
                state.set_slot(slot, "node", target.id, False, NOW)
            except ClusterError:  # a claim left me without slots and made me a replica: no SETSLOT then
                pass
        elif action == "add":
            free = [s for s in range(slot, min(SLOT_COUNT, slot + width)) if state.slots.owners[s] is None]
            if free:
                state.add_slots(free)
        elif action == "del":
            mine = [s for s in range(slot, min(SLOT_COUNT, slot + width))
                    if state.slots.owners[s] == state.myself.id]
            if mine:
                state.del_slots(mine)
        elif action == "touch":  # one thing a PING/PONG changes in a line: times, link, failure flags
            if width % 4 == 0:
                target.pong_received = NOW + slot
            elif width % 4 == 1:
                target.ping_sent = NOW + slot
            elif width % 4 == 2:
                target.link = not target.link
            elif target is not state.myself:
                target.flags ^= PFAIL
        elif target is not state.myself:  # a peer's PING/PONG claim with a newer epoch
            claimed = state.claimed_slots(target) | bits_from_ranges([(slot, min(SLOT_COUNT - 1, slot + width))])
            target.config_epoch = state.current_epoch = state.current_epoch + 1
            state._update_slots_with(target, target.config_epoch, claimed, NOW)
        state.drain()
        assert state._owner_bits() == _rebuilt(state)
        assert state._unbound_count() == state.slots.unbound_count()
        cached = state.nodes_text()  # lines cached in the previous round, checked against a fresh render
        state._line_cache.clear()
        assert cached == state.nodes_text()


def test_closing_imports_sends_one_coalesced_pong_to_primaries():
    state = _state_with_peers()
    source = state.nodes["%040x" % 2]
    replica = NodeRecord("%040x" % 99, SLAVE, NOW, ip="127.0.0.1", port=7099, cport=17099)
    replica.master_id = source.id
    replica.link = True
    state.nodes[replica.id] = replica
    primaries = sorted(n for n, rec in state.nodes.items() if n != state.myself.id and rec.flags & MASTER)
    state.nodes[source.id].config_epoch = 1
    state.current_epoch = 1
    for slot in range(10):
        state.slots.owners[slot] = source.id
    state._slots_changed()
    effects = []
    for slot in range(10):
        state.set_slot(slot, "importing", source.id, False, NOW)
        state.set_slot(slot, "node", state.myself.id, False, NOW)
        effects += state.drain()
    pongs = _pongs(effects)
    assert [e.target for e in pongs] == [replica.id] * 10, "replicas (no tool tells them) hear of each slot at once"
    assert [e.kind for e in effects].count("pong_later") == 1
    assert any(e.kind == "save" and e.fsync for e in effects), "the epoch bump must be fsynced"
    assert state.myself.config_epoch == 2 and state.pong_pending
    state.tick(NOW + 100)
    sent = _pongs(state.drain())
    assert sorted(e.target for e in sent) == primaries, "one PONG per primary for the whole burst"
    assert all(e.msg.slots & 0x3FF == 0x3FF for e in sent), "the PONG claims the ten imported slots"
    assert not state.pong_pending
    state.tick(NOW + 200)
    assert not _pongs(state.drain()), "sent once"


def test_flush_pong_without_a_request_sends_nothing():
    state = _state_with_peers()
    state.flush_pong()
    assert not _pongs(state.drain())


# ------------------------------------------------------------------ real processes

NT = 2000

needs_cli = pytest.mark.skipif(shutil.which("redis-cli") is None, reason="needs redis-cli (redis-tools)")


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def three_primaries():
    import subprocess

    nodes = []
    try:
        for _ in range(3):
            nodes.append(ServerProcess("shoal", "--cluster-enabled", "yes", "--cluster-node-timeout", str(NT),
                                       port=free_cluster_port()).start(timeout=30))
        done = subprocess.run(["redis-cli", "--cluster", "create", *[f"127.0.0.1:{n.port}" for n in nodes],
                               "--cluster-yes"], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr

        def ok():
            for n in nodes:
                with RawClient(n.port) as c:
                    if b"cluster_state:ok" not in c.call("CLUSTER", "INFO"):
                        return False
            return True

        _wait(ok, 30, "cluster_state:ok")
        yield nodes
    finally:
        for node in nodes:
            node.stop()


def _ids(nodes) -> list[str]:
    out = []
    for n in nodes:
        with RawClient(n.port) as c:
            out.append(c.call("CLUSTER", "MYID").split(b"\r\n")[1].decode())
    return out


def _owner_on(port: int, slot: int) -> str | None:
    with RawClient(port) as c:
        text = c.call("CLUSTER", "NODES").split(b"\r\n", 1)[1].decode()
    for line in text.splitlines():
        parts = line.split()
        for token in parts[8:]:
            if token.startswith("["):
                continue
            lo, _, hi = token.partition("-")
            if int(lo) <= slot <= int(hi or lo):
                return parts[0]
    return None


@needs_cli
def test_a_primary_not_told_learns_the_moves_from_the_coalesced_pong(three_primaries):
    nodes = three_primaries
    ids = _ids(nodes)
    src, dst, third = nodes
    slots = [s for s in range(SLOT_COUNT) if _owner_on(src.port, s) == ids[0]][:30]
    key = next(k for k in (b"k%d" % i for i in range(100000)) if keyslot(k) == slots[0])
    with RawClient(src.port) as c:
        c.call("SET", key, b"v")
    with RawClient(src.port) as s, RawClient(dst.port) as d:
        for slot in slots:
            assert d.call("CLUSTER", "SETSLOT", slot, "IMPORTING", ids[0]) == b"+OK\r\n"
            assert s.call("CLUSTER", "SETSLOT", slot, "MIGRATING", ids[1]) == b"+OK\r\n"
            for k in s.call("CLUSTER", "GETKEYSINSLOT", slot, 10).split(b"\r\n")[2::2]:
                assert s.call("MIGRATE", "127.0.0.1", dst.port, k, 0, 5000) == b"+OK\r\n"
            assert d.call("CLUSTER", "SETSLOT", slot, "NODE", ids[1]) == b"+OK\r\n"
            # The bumped configEpoch is in dst's nodes.conf (in place, fsynced) before the reply.
            assert s.call("CLUSTER", "SETSLOT", slot, "NODE", ids[1]) == b"+OK\r\n"
    _wait(lambda: all(_owner_on(third.port, s) == ids[1] for s in slots), 5,
          "the third primary to learn the new owner from dst's PONG")
    with open(os.path.join(dst.dir, "nodes.conf"), encoding="utf-8") as fh:
        records, owners, _migrating, _importing, current_epoch, _vote = parse_nodes_conf(fh.read(), NOW)
    me = next(r for r in records.values() if r.id == ids[1])
    with RawClient(dst.port) as d:
        info = d.call("CLUSTER", "INFO").decode()
    assert f"cluster_my_epoch:{me.config_epoch}" in info
    assert all(owners[ids[1]] >> s & 1 for s in slots)
    with RawClient(dst.port) as d:
        assert d.call("GET", key) == b"$1\r\nv\r\n"
