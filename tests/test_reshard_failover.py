"""Migration marks survive a failover (issue 7, item 3).

First on the simulated network (pure gossip core, fast): a primary's
IMPORTING/MIGRATING marks reach its replicas, survive a replica's restart
(nodes.conf), are adopted by the replica when it is promoted, and every other
node renames marks naming the old primary. Then with real processes: a
``shoal reshard`` that a manual failover (and, in another test, a kill -9)
of the source interrupts resumes from the new primary, while RedisCluster
clients read and write; and a slot a failover left half-moved (no resume)
is closed by ``redis-cli --cluster fix`` and by ``shoal fix``. The process
tests share one 6-node cluster and run in file order.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import msgpack
import pytest
import redis
from redis.cluster import RedisCluster

from gossip.codec import BusProtocolError, FrameDecoder, decode_message, encode_message
from gossip.messages import MASTER, PING, PONG, SLAVE, Message
from jepsen_like.sim.cluster import NetworkFaults
from jepsen_like.sim.failover import FailoverInvariants, build, converge, node_id, owner_bits, wait_until
from slots import keyslot
from tests.servers import created_cluster
from tests.test_failover import wait_for as wait_for_ok

REPO = Path(__file__).resolve().parent.parent

SLOT = 100  # served by node 0 in ``build``


def _open_slot(sim, slot: int = SLOT) -> None:
    """Node 1 imports ``slot`` from node 0 (the standard order: target first, then source)."""
    a, b = sim.nodes[0], sim.nodes[1]
    b.state.set_slot(slot, "importing", a.state.myself.id, False, sim.now)
    sim._apply(b)
    a.state.set_slot(slot, "migrating", b.state.myself.id, True, sim.now)
    sim._apply(a)


def _line_of(state, node: str) -> list[str]:
    return next(line.split() for line in state.nodes_text().splitlines() if line.startswith(node))


# ------------------------------------------------------------------ wire format


def test_marks_field_is_optional_on_the_wire():
    a, b = "a" * 40, "b" * 40
    plain = Message(PING, a)
    decoded = FrameDecoder().feed(encode_message(plain))[0]
    assert decoded.marks is None
    assert b'"mk"' not in encode_message(plain) and b"\xa2mk" not in encode_message(plain)
    marked = Message(PONG, a, marks=({5: b}, {16383: a}))
    decoded = FrameDecoder().feed(encode_message(marked))[0]
    assert decoded.marks == ({5: b}, {16383: a})
    assert len(encode_message(marked)) > len(encode_message(Message(PONG, a)))
    body = msgpack.unpackb(encode_message(marked)[4:], raw=False)
    for bad in ([[[5, b]]], [[[16384, b]], []], [[[5, "x"]], []], "mk", [[[5]], []]):
        body["mk"] = bad
        with pytest.raises(BusProtocolError):
            decode_message(body)


# ------------------------------------------------------------------ simulated cluster


@pytest.mark.parametrize("seed", [1, 2])
def test_replica_learns_persists_and_forgets_its_primarys_marks(seed):
    sim = build(seed)
    a_id, b_id = node_id(sim, 0), node_id(sim, 1)
    replica_a, replica_b = sim.nodes[3], sim.nodes[4]
    _open_slot(sim)
    sim.run_for(300)  # SETSLOT pings the replicas at once: well before a heartbeat
    assert replica_a.state.primary_marks == ({SLOT: b_id}, {})
    assert replica_b.state.primary_marks == ({}, {SLOT: a_id})
    # The replica's own slot map stays clean (its routing does not change) ...
    assert not replica_a.state.slots.migrating_to and not replica_a.state.slots.importing_from
    # ... and CLUSTER NODES shows the copy on the primary's line, not on "myself".
    assert f"[{SLOT}->-{b_id}]" in _line_of(replica_a.state, a_id)
    assert not any(t.startswith("[") for t in _line_of(replica_a.state, replica_a.state.myself.id))
    assert f"[{SLOT}-<-{a_id}]" in _line_of(replica_b.state, b_id)
    # nodes.conf keeps them across a restart.
    assert f"[{SLOT}->-{b_id}]" in replica_a.state.config_text()
    sim.kill(3)
    sim.restart(3)
    assert sim.nodes[3].state.primary_marks == ({SLOT: b_id}, {})
    assert not sim.nodes[3].state.slots.migrating_to
    wait_until(sim, lambda: sim.nodes[0].state.nodes[replica_a.state.myself.id].link, 5000, "link to the restarted")
    # Closing the slot clears the copies too.
    for i in (1, 0):
        sim.nodes[i].state.set_slot(SLOT, "stable", None, False, sim.now)
        sim._apply(sim.nodes[i])
    sim.run_for(300)
    assert sim.nodes[3].state.primary_marks == ({}, {})
    assert replica_b.state.primary_marks == ({}, {})


def test_manual_failover_of_the_source_keeps_the_migration_open_and_consistent():
    sim = build(4, repl_lag=60)
    check = FailoverInvariants(sim)
    a_id, b_id, a2_id = node_id(sim, 0), node_id(sim, 1), node_id(sim, 3)
    _open_slot(sim)
    sim.run_for(500, check)
    slots0 = owner_bits(sim, 0)
    sim.nodes[3].state.failover("", sim.now)
    sim._apply(sim.nodes[3])
    wait_until(sim, lambda: owner_bits(sim, 3) == slots0, 5000, "manual failover", check)
    new = sim.nodes[3].state
    assert new.myself.flags & MASTER
    assert new.slots.migrating_to == {SLOT: b_id}  # adopted: keys already moved still get -ASK
    converge(sim, check)
    b = sim.nodes[1].state
    assert b.slots.importing_from == {SLOT: a2_id}  # renamed: the migration can go on from the new primary
    assert b.slots.owners[SLOT] == a2_id
    # The old primary, now a replica of the new one, holds a copy of the new primary's marks.
    old = sim.nodes[0].state
    assert old.myself.flags & SLAVE and old.myself.master_id == a2_id
    assert not old.slots.migrating_to and old.primary_marks == ({SLOT: b_id}, {})
    # B's replica renamed its copy as well.
    assert sim.nodes[4].state.primary_marks == ({}, {SLOT: a2_id})
    # Finishing the move the standard way closes everything.
    b.set_slot(SLOT, "node", b.myself.id, True, sim.now)
    sim._apply(sim.nodes[1])
    new.set_slot(SLOT, "node", b.myself.id, False, sim.now)
    sim._apply(sim.nodes[3])
    converge(sim, check)
    for node in sim.nodes:
        assert node.state.slots.owners[SLOT] == b.myself.id
        assert not node.state.slots.migrating_to and not node.state.slots.importing_from
        assert node.state.primary_marks == ({}, {})


@pytest.mark.parametrize("seed,lossy", [(8, False), (13, True), (21, True)])
def test_automatic_failover_of_the_source_adopts_and_renames_marks(seed, lossy):
    sim = build(seed)
    if lossy:
        sim.faults = NetworkFaults(loss=0.01, duplicate=0.01, reorder=0.05, max_delay=15)
    check = FailoverInvariants(sim)
    b_id, a2_id = node_id(sim, 1), node_id(sim, 3)
    _open_slot(sim)
    sim.run_for(500, check)
    sim.kill(0)
    wait_until(sim, lambda: sim.nodes[3].state.myself.flags & MASTER, 20_000, "promotion", check)
    assert sim.nodes[3].state.slots.migrating_to == {SLOT: b_id}
    wait_until(sim, lambda: sim.nodes[1].state.slots.importing_from == {SLOT: a2_id}, 10_000, "rename", check)
    assert sim.nodes[1].state.slots.owners[SLOT] == a2_id
    sim.restart(0)
    sim.faults = NetworkFaults()
    converge(sim, check)  # includes assert_marks_consistent
    assert sim.nodes[0].state.myself.master_id == a2_id
    assert sim.nodes[0].state.primary_marks == ({SLOT: b_id}, {})


# ================================================================== real processes

needs_redis_cli = pytest.mark.skipif(shutil.which("redis-cli") is None, reason="needs redis-cli (redis-tools)")

KEYS = 3000
WRITERS = 6
NT = 2000


def _call(port: int, *args):
    value = redis.Redis(port=port, socket_timeout=10).execute_command(*args)
    return value.decode() if isinstance(value, bytes) else value


def _myid(node) -> str:
    return _call(node.port, "CLUSTER", "MYID")


def _view(port: int) -> dict:
    """CLUSTER NODES of one node: id -> (flags, master id, tokens after the link state)."""
    out = {}
    for line in _call(port, "CLUSTER", "NODES").splitlines():
        parts = line.split()
        if parts:
            out[parts[0]] = (set(parts[2].split(",")), parts[3], parts[8:])
    return out


def _slots_of(port: int, node_id: str) -> set[int]:
    slots = set()
    for token in _view(port)[node_id][2]:
        if not token.startswith("["):
            lo, _, hi = token.partition("-")
            slots.update(range(int(lo), int(hi or lo) + 1))
    return slots


def _shoal(*args: str, timeout: float = 240) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "cluster.cli", *args, "--json"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=str(REPO))


def _finish(proc: subprocess.Popen, timeout: float = 240) -> tuple[int, dict, str]:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"shoal timed out: {err[-3000:]}") from None
    try:
        data = json.loads(out)
    except json.JSONDecodeError:
        raise AssertionError(f"no JSON from shoal: {out}\n{err}") from None
    return proc.returncode, data, err


def _healthy(nodes) -> bool:
    """Every live node: cluster ok, agreeing on owners/roles, no open slots anywhere, no failing flags."""
    views = []
    for node in nodes:
        if not node.alive():
            continue
        if "cluster_state:ok" not in _call(node.port, "CLUSTER", "INFO"):
            return False
        view = _view(node.port)
        if any(f & {"fail", "fail?", "handshake"} for f, _, _ in view.values()):
            return False
        if any(t.startswith("[") for _, _, tokens in view.values() for t in tokens):
            return False
        views.append({k: (f - {"myself"}, m, tuple(t)) for k, (f, m, t) in view.items()})
    return bool(views) and all(v == views[0] for v in views)


class Workload:
    """RedisCluster writers (each on its own keys) that record the last value the server acknowledged."""

    def __init__(self, port: int, prefix: str) -> None:
        self.port = port
        self.keys = [f"{prefix}:{i}" for i in range(KEYS)]
        self.acked: dict[str, str] = {}
        self.unsure: dict[str, set[str]] = {}  # a write that raised may or may not have happened
        self.errors: list[str] = []
        self.writes = 0
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        loader = RedisCluster(host="127.0.0.1", port=port)
        pipe = loader.pipeline()
        for key in self.keys:
            pipe.set(key, "0")
        pipe.execute()
        loader.close()
        self.acked = {key: "0" for key in self.keys}

    def _run(self, index: int) -> None:
        rng = random.Random(index)
        client = RedisCluster(host="127.0.0.1", port=self.port)
        mine = self.keys[index::WRITERS]
        counter = 0
        while not self.stop.is_set():
            key = rng.choice(mine)
            counter += 1
            value = f"{index}-{counter}"
            try:
                client.set(key, value)
                self.acked[key] = value
                self.unsure.pop(key, None)
                self.writes += 1
                other = rng.choice(mine)
                got = client.get(other)
                if got is None:
                    self.errors.append(f"writer {index}: {other} missing")
            except Exception as exc:  # every exception is a client-visible error
                self.errors.append(f"writer {index}: {type(exc).__name__}: {exc}")
                self.unsure.setdefault(key, set()).add(value)
                time.sleep(0.05)
        client.close()

    def start(self) -> None:
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(WRITERS)]
        for thread in self.threads:
            thread.start()

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=60)

    def mismatches(self, port: int) -> list[tuple[str, str, str | None]]:
        reader = RedisCluster(host="127.0.0.1", port=port)
        try:
            wrong = []
            for key in self.keys:
                got = reader.get(key)
                got = got.decode() if got is not None else None
                if got != self.acked[key] and got not in self.unsure.get(key, ()):
                    wrong.append((key, self.acked[key], got))
            return wrong
        finally:
            reader.close()


@pytest.fixture(scope="module")
def cluster():
    with created_cluster(6, node_timeout=NT) as nodes:
        wait_for_ok(lambda: _healthy(nodes) and sum("slave" in f for f, _, _ in _view(nodes[0].port).values()) == 3,
                    40, "a formed cluster")
        yield nodes


def _roles(nodes, slot: int):
    """(primary serving ``slot``, its replica) as processes."""
    by_id = {_myid(n): n for n in nodes if n.alive()}
    view = _view(next(n for n in nodes if n.alive()).port)
    owner = next(k for k, (f, _, _) in view.items() if "master" in f and slot in _slots_of(by_id[k].port, k))
    replica = next(k for k, (f, m, _) in view.items() if "slave" in f and m == owner)
    return by_id[owner], by_id[replica]


def _start_again(node) -> None:
    """Start a stopped node from its directory. A replica restarted from nodes.conf sometimes exits at once
    (``RuntimeError: Each CancelScope may only be used for a single 'with' block`` in
    node/replication/replica.py: its link task is spawned twice) -- not this module's subject, so retry."""
    for _ in range(3):
        node.start(timeout=30)
        time.sleep(0.5)
        if node.alive():
            return
        node.stop(keep_dir=True)
    raise AssertionError("the node does not stay up after a restart:\n" + node.log()[-3000:])


def _checks_clean(address: str) -> None:
    code, data, err = _finish(_shoal("check", address))
    assert code == 0 and not data["open_slots"] and data["agree"] and data["covered"], (data, err)
    out = subprocess.run(["redis-cli", "--cluster", "check", address], capture_output=True, text=True,
                         timeout=60).stdout
    assert "[OK] All nodes agree about slots configuration." in out, out
    assert "[OK] All 16384 slots covered." in out, out
    assert "[WARNING]" not in out and "[ERR]" not in out, out


@needs_redis_cli
def test_replica_shows_and_persists_its_primarys_marks(cluster):
    a, replica = _roles(cluster, 0)
    b, _ = _roles(cluster, 16383)
    a_id, b_id, r_id = _myid(a), _myid(b), _myid(replica)
    slot = 77
    _call(b.port, "CLUSTER", "SETSLOT", slot, "IMPORTING", a_id)
    _call(a.port, "CLUSTER", "SETSLOT", slot, "MIGRATING", b_id)
    try:
        mark = f"[{slot}->-{b_id}]"
        wait_for_ok(lambda: mark in _view(replica.port)[a_id][2], 10, "the replica to learn the mark")
        assert not any(t.startswith("[") for t in _view(replica.port)[r_id][2])  # not on its own line
        # redis-cli reads open slots from each node's own line: it sees only the primaries' marks.
        out = subprocess.run(["redis-cli", "--cluster", "check", f"127.0.0.1:{a.port}"], capture_output=True,
                             text=True, timeout=60).stdout
        assert f"{slot}" in out and "open" in out.lower()
        replica.stop(keep_dir=True)
        with open(os.path.join(replica.dir, "nodes.conf")) as f:
            conf = f.read()
        primary_line = next(line for line in conf.splitlines() if line.startswith(a_id))
        assert mark in primary_line.split()
        _start_again(replica)
        assert mark in _view(replica.port)[a_id][2]  # from nodes.conf, at once
    finally:
        _call(a.port, "CLUSTER", "SETSLOT", slot, "STABLE")
        _call(b.port, "CLUSTER", "SETSLOT", slot, "STABLE")
    wait_for_ok(lambda: not any(t.startswith("[") for t in _view(replica.port)[a_id][2]), 10,
                "the replica to drop the mark")
    wait_for_ok(lambda: _healthy(cluster), 40, "a healthy cluster")


_MID_MOVE_SLOTS = 1500


@needs_redis_cli
def test_manual_failover_in_the_middle_of_a_reshard(cluster):
    a, replica = _roles(cluster, 0)
    b, _ = _roles(cluster, 16383)
    a_id, b_id = _myid(a), _myid(b)
    # Enough slots that the move lasts seconds: the failover must land in the middle of it, and a
    # reshard of a few hundred nearly empty slots can finish between two looks at the target.
    moving = sorted(_slots_of(a.port, a_id))[:_MID_MOVE_SLOTS]
    before = len(_slots_of(b.port, b_id))
    load = Workload(a.port, "mf")
    load.start()
    try:
        proc = _shoal("reshard", f"127.0.0.1:{a.port}", "--from", a_id, "--to", b_id,
                      "--slots", str(_MID_MOVE_SLOTS))
        wait_for_ok(lambda: len(_slots_of(b.port, b_id)) >= before + 60 or proc.poll() is not None, 60,
                    "the reshard to get going")
        assert proc.poll() is None, "the reshard finished before the failover: " + proc.stderr.read()
        assert _call(replica.port, "CLUSTER", "FAILOVER") == "OK"
        code, data, err = _finish(proc)
        print(err[-2000:])
        assert code == 0, (data, err[-3000:])
        assert data["slots_moved"] == _MID_MOVE_SLOTS
    finally:
        load.finish()
    assert load.writes > 200, load.writes
    assert not load.errors, load.errors[:5]
    assert "master" in _view(replica.port)[_myid(replica)][0], "\n".join(  # the failover happened
        line for n in cluster for line in n.log().splitlines() if "denied" in line or "granted" in line)[-3000:]
    wait_for_ok(lambda: _healthy(cluster), 40, "a healthy cluster")
    assert set(moving) <= _slots_of(b.port, b_id)
    assert not load.mismatches(b.port)
    _checks_clean(f"127.0.0.1:{b.port}")


@needs_redis_cli
def test_kill_9_of_the_source_in_the_middle_of_a_reshard(cluster):
    a, replica = _roles(cluster, 5000)
    b, _ = _roles(cluster, 16383)
    a_id, b_id = _myid(a), _myid(b)
    moving = sorted(_slots_of(a.port, a_id))[:_MID_MOVE_SLOTS]
    before = len(_slots_of(b.port, b_id))
    load = Workload(b.port, "k9")
    load.start()
    try:
        proc = _shoal("reshard", f"127.0.0.1:{b.port}", "--from", a_id, "--to", b_id,
                      "--slots", str(_MID_MOVE_SLOTS))
        wait_for_ok(lambda: len(_slots_of(b.port, b_id)) >= before + 40 or proc.poll() is not None, 60,
                    "the reshard to get going")
        assert proc.poll() is None, "the reshard finished before the kill: " + proc.stderr.read()
        os.kill(a.proc.pid, signal.SIGKILL)
        a.proc.wait()
        code, data, err = _finish(proc)
        print(err[-2000:])
    finally:
        load.finish()
    # The reshard resumed from the new primary; whatever it could not finish, ``shoal fix`` closes.
    wait_for_ok(lambda: "master" in _view(replica.port)[_myid(replica)][0], 30, "the automatic failover")
    fix_code, fixed, fix_err = _finish(_shoal("fix", f"127.0.0.1:{b.port}"))
    assert fix_code == 0, (fixed, fix_err)
    print(f"reshard exit {code}, resumed {data.get('resumed')}, fix: {fixed}; client errors: {len(load.errors)}")
    a.stop(keep_dir=True)
    _start_again(a)  # it rejoins as a replica of its successor
    wait_for_ok(lambda: _healthy(cluster), 60, "a healthy cluster")
    assert code == 0, (data, err[-3000:])
    assert set(moving) <= _slots_of(b.port, b_id)
    lost = load.mismatches(b.port)
    print(f"{len(lost)} acknowledged writes lost with the killed primary (of {load.writes}): {lost[:5]}")
    assert all(got is not None for _, _, got in lost)  # every key is still there and readable
    _checks_clean(f"127.0.0.1:{b.port}")


@needs_redis_cli
@pytest.mark.parametrize("tool", ["redis-cli", "shoal"])
def test_fix_closes_a_slot_left_open_by_a_failover(cluster, tool):
    """No resume this time: a half-moved slot, a manual failover of its source, then ``redis-cli --cluster fix``
    or ``shoal fix``."""
    a, replica = _roles(cluster, 6000)
    b, _ = _roles(cluster, 16383)
    a_id, b_id, r_id = _myid(a), _myid(b), _myid(replica)
    slot = max(_slots_of(a.port, a_id))
    keys, i = [], 0
    while len(keys) < 20:
        if keyslot(f"fix-{tool}:{i}".encode()) == slot:
            keys.append(f"fix-{tool}:{i}")
        i += 1
    present = _call(a.port, "CLUSTER", "COUNTKEYSINSLOT", slot)  # earlier tests' keys
    for key in keys:
        _call(a.port, "SET", key, key.upper())
    _call(b.port, "CLUSTER", "SETSLOT", slot, "IMPORTING", a_id)
    _call(a.port, "CLUSTER", "SETSLOT", slot, "MIGRATING", b_id)
    _call(a.port, "MIGRATE", "127.0.0.1", b.port, "", 0, 5000, "KEYS", *keys[:10])
    wait_for_ok(lambda: f"[{slot}->-{b_id}]" in _view(replica.port)[a_id][2], 10, "the replica to learn the mark")
    assert _call(replica.port, "CLUSTER", "FAILOVER") == "OK"
    wait_for_ok(lambda: "master" in _view(replica.port)[r_id][0], 30, "the manual failover")
    # The new primary adopted the mark (moved keys get ASK, not "missing"); the target renamed its source.
    assert f"[{slot}->-{b_id}]" in _view(replica.port)[r_id][2]
    wait_for_ok(lambda: f"[{slot}-<-{r_id}]" in _view(b.port)[b_id][2], 10, "the target to rename its source")
    reader = RedisCluster(host="127.0.0.1", port=b.port)
    try:
        assert [reader.get(key) for key in keys] == [key.upper().encode() for key in keys]
    finally:
        reader.close()
    if tool == "redis-cli":
        done = subprocess.run(["redis-cli", "--cluster", "fix", f"127.0.0.1:{b.port}", "--cluster-yes"],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    else:
        code, data, err = _finish(_shoal("fix", f"127.0.0.1:{b.port}"))
        assert code == 0 and data["open_slots_fixed"] == [slot], (data, err)
    wait_for_ok(lambda: _healthy(cluster), 40, "a healthy cluster")
    # redis-cli decides where the slot ends (both nodes hold keys of it): on one of them, with every key;
    # shoal fix finishes the move to the importing node.
    owner = next(n for n, node_id in ((b, b_id), (replica, r_id)) if slot in _slots_of(n.port, node_id))
    if tool == "shoal":
        assert owner is b
    assert _call(owner.port, "CLUSTER", "COUNTKEYSINSLOT", slot) == present + len(keys)
    _checks_clean(f"127.0.0.1:{a.port}")
    reader = RedisCluster(host="127.0.0.1", port=a.port)
    try:
        assert [reader.get(key) for key in keys] == [key.upper().encode() for key in keys]
    finally:
        reader.close()
