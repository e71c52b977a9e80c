"""Scripted nemeses: failovers, elections, resharding and in-node bus faults, step by step.

A process fault or a partition is one action and its undo on a schedule
(``jepsen_like.nemesis``). The scenarios here are sequences that wait on the
cluster between steps -- kill a primary, *wait until a replica owns its
slots*, restart the old one, *wait until it is a replica* -- so they are
scripts: a function run in the nemesis thread with a ``ScriptNemesis``, which
has the same interface as ``Nemesis`` (``start``, ``stop``, ``log``,
``errors``, ``started_at``) plus what the runner judges with:

* ``bands`` -- (start s, end s, label) for the report's fault bands;
* ``outages`` -- (monotonic ns, label, slots): the moments the owner of some
  workload slots changed or died (a kill, a manual failover, a takeover). The
  runner measures each one's *failover time*: the longest stall in successful
  writes on the keys of those slots from that moment on (after a kill: kill ->
  first successful write on the new primary);
* ``loss_windows`` -- (start ns, end ns, why): acknowledged writes completed
  inside one of these may be lost under Redis Cluster's documented
  guarantees (asynchronous replication: the replication-lag window before a
  kill; a minority primary: up to the node timeout after the cut). A lost
  write outside every window is a violation;
* ``expectations`` -- (met, text): what the scenario requires of the cluster
  itself (the up-to-date replica wins, a stale replica does not fail over,
  the old primary rejoins as a replica...). An unmet one is a violation.

Every script checks ``self.stopping`` before starting a new cycle; a cycle in
progress runs to its end (``stop`` waits for it while the clients keep
running), and whatever is still broken is healed by the runner
(``heal_processes``, ``clear_rules``, ``fix``).
"""

from __future__ import annotations

import random
import threading
import time
from typing import Callable

from jepsen_like.cluster import ClusterError

__all__ = ["SCRIPTS", "ScriptNemesis", "LAG_WINDOW_S"]

#: Acknowledged writes this close before a primary dies may not have reached its replica yet.
LAG_WINDOW_S = 1.5


class ScriptNemesis:
    def __init__(self, cluster, script: Callable[["ScriptNemesis"], None], *, slots: set[int], duration: float,
                 rng: random.Random, node_timeout: int, kind: str = "") -> None:
        self.cluster = cluster
        self.script = script
        self.slots = set(slots)  # slots of the workload's keys
        self.duration = duration
        self.rng = rng
        self.nt = node_timeout / 1000.0
        self.kind = kind
        self.log: list[tuple[float, str]] = []
        self.errors: list[str] = []
        self.bands: list[tuple[float, float, str]] = []
        self.outages: list[tuple[int, str, tuple]] = []
        self.loss_windows: list[tuple[int, int, str]] = []
        self.expectations: list[tuple[bool, str]] = []
        self.measures: dict[str, list] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = 0.0
        self.cleanup: list[Callable[[], None]] = []  # undo steps the runner must run if the script stopped early

    # ---------------------------------------------------------------- plumbing
    @property
    def started_at(self) -> float:
        return self._t0

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def elapsed(self) -> float:
        return time.monotonic() - self._t0

    def remaining(self) -> float:
        return self.duration - self.elapsed()

    def note(self, what: str) -> None:
        self.log.append((round(self.elapsed(), 3), what))

    def sleep(self, seconds: float) -> bool:
        """Sleep unless stopped; False if stopped."""
        return not self._stop.wait(max(0.0, seconds))

    def hold(self, seconds: float) -> None:
        """Sleep inside a step (not cut short by ``stop``)."""
        time.sleep(max(0.0, seconds))

    def expect(self, met, text: str) -> bool:
        self.expectations.append((bool(met), text))
        self.note(("expected and seen: " if met else "EXPECTATION NOT MET: ") + text)
        return bool(met)

    def measure(self, name: str, value) -> None:
        self.measures.setdefault(name, []).append(value)

    def outage(self, label: str, slots) -> int:
        t = time.monotonic_ns()
        self.outages.append((t, label, tuple(sorted(slots))))
        return t

    def window(self, start_ns: int, end_ns: int, why: str) -> None:
        self.loss_windows.append((start_ns, end_ns, why))

    def band(self, start: float, end: float | None, label: str) -> None:
        self.bands.append((start, self.elapsed() if end is None else end, label))

    def wait(self, predicate, timeout: float, interval: float = 0.05):
        """Poll until ``predicate()``; not cut short by ``stop()``: a started step (a kill and its failover)
        runs to its end, while the clients keep going, so the run never ends with a half-done failover."""
        return self.cluster.wait_for(predicate, timeout, interval)

    def _watch_roles(self) -> None:
        """Every 0.25 s, ask each live node its role; a replica that turned primary opens a loss window
        around that moment (the old primary's last writes may not have reached it) -- also for failovers no
        step asked for, e.g. one a partition or a bus fault set off, or one right after a heal."""
        roles: dict[int, str] = {}
        period = 0.25
        while not self._watch_stop.wait(period):
            for node in self.cluster.nodes:
                role = self.cluster.role_of(node.index)
                if role == "down":
                    continue
                before = roles.get(node.index)
                roles[node.index] = role
                if before == "slave" and role == "master":
                    t = time.monotonic_ns()
                    self.window(t - int((LAG_WINDOW_S + period) * 1e9), t + int(LAG_WINDOW_S * 1e9),
                                f"n{node.index + 1} was promoted")
                    self.note(f"(watcher) n{node.index + 1} is now a primary")

    def _play(self) -> None:
        try:
            self.script(self)
        except Exception as e:  # the runner heals whatever is left
            self.errors.append(f"{type(e).__name__}: {e}")
            self.note(f"script error: {type(e).__name__}: {e}")

    def start(self) -> "ScriptNemesis":
        self._t0 = time.monotonic()
        self._watch_stop = threading.Event()
        self._watcher = threading.Thread(target=self._watch_roles, name="role-watcher", daemon=True)
        self._watcher.start()
        self._thread = threading.Thread(target=self._play, name="nemesis", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 120.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._watch_stop.set()
        self._watcher.join(10)
        for undo in reversed(self.cleanup):
            try:
                undo()
            except Exception as e:
                self.errors.append(f"cleanup: {e}")
        self.cleanup.clear()

    # ------------------------------------------------------------ cluster views
    def owner(self, slot: int) -> int | None:
        return self.cluster.node_for_slot(slot)

    def my_slots(self, node: int) -> set[int]:
        """The workload slots ``node`` owns now."""
        owners = self.cluster.slot_owners()
        ranges = owners.get(self.cluster.nodes[node].address, [])
        return {s for s in self.slots if any(lo <= s <= hi for lo, hi in ranges)}

    def target(self, *, replicas: int = 1, timeout: float = 20.0) -> int | None:
        """A live primary owning workload slots and having at least ``replicas`` replicas (most slots first);
        waits up to ``timeout`` for one (replicas show up in CLUSTER NODES a little after the slots)."""
        got = self.wait(lambda: (self._target(replicas),) if self._target(replicas) is not None else None,
                        timeout, 0.2)
        return None if got is None else got[0]

    def _target(self, replicas: int) -> int | None:
        topo = self.cluster.topology()
        best, best_n = None, 0
        prims = sorted(i for i, (role, _) in topo.items() if role == "master")
        self.rng.shuffle(prims)
        for p in prims:
            if not self.cluster.nodes[p].alive():
                continue
            reps = [j for j, (role, m) in topo.items() if role == "slave" and m == p and self.cluster.nodes[j].alive()]
            n = len(self.my_slots(p))
            if len(reps) >= replicas and n > best_n:
                best, best_n = p, n
        return best

    def links_up(self, replicas: list[int], timeout: float = 20.0, of: int | None = None) -> bool:
        """Wait until each replica reports master_link_status:up (to ``of``'s address, when given)."""
        def up(r):
            info = self.cluster.info(r)
            if info.get("master_link_status") != "up":
                return False
            return of is None or (info.get("master_host") == self.cluster.nodes[of].host
                                  and int(info.get("master_port", 0)) == self.cluster.nodes[of].port)
        ok = bool(self.wait(lambda: all(up(r) for r in replicas), timeout, 0.1))
        if not ok:
            self.note(f"replication link(s) of {['n%d' % (r + 1) for r in replicas]} not up after {timeout:.0f}s")
        return ok

    def new_owner(self, slots: set[int], old: int, timeout: float) -> int | None:
        """Wait until a live node other than ``old`` owns all ``slots`` (as every live primary sees it)."""
        sample = min(slots)

        def moved():
            o = self.cluster.node_for_slot(sample)
            if o is None or o == old or not self.cluster.nodes[o].alive():
                return None
            if self.cluster.role_of(o) != "master":
                return None
            return o + 1  # truthy for node 0
        got = self.wait(moved, timeout)
        return None if got is None else got - 1

    # --------------------------------------------------------------- steps
    def kill_primary(self, p: int, label: str = "kill") -> tuple[int, set[int]]:
        slots = self.my_slots(p)
        self.cluster.kill(p)  # SIGKILL and reap: nothing it acknowledges comes after this
        t = self.outage(f"{label} n{p + 1}", slots)
        self.window(t - int(LAG_WINDOW_S * 1e9), t, f"replication lag before n{p + 1} died")
        self.note(f"{label} n{p + 1} (SIGKILL), primary of {len(slots)} workload slot(s)")
        return t, slots

    def await_promotion(self, old: int, slots: set[int], t_ns: int, candidates: list[int] | None = None) -> int | None:
        timeout = max(15.0, 10 * self.nt)
        winner = self.new_owner(slots, old, timeout)
        took = (time.monotonic_ns() - t_ns) / 1e9
        if winner is None:
            self.expect(False, f"a replica of n{old + 1} took over its slots within {timeout:.0f}s")
            return None
        self.note(f"n{winner + 1} owns n{old + 1}'s slots {took:.2f}s later")
        self.measure("promotion_s", round(took, 2))
        if candidates is not None:
            self.expect(winner in candidates, f"the winner n{winner + 1} is one of n{old + 1}'s replicas "
                        f"{['n%d' % (c + 1) for c in candidates]}")
        return winner

    def restart_as_replica(self, old: int, of: int | None) -> None:
        self.cluster.restart(old)
        self.note(f"restart n{old + 1}")
        got = self.wait(lambda: self.cluster.role_of(old) == "slave", max(20.0, 10 * self.nt), 0.1)
        self.expect(got, f"the old primary n{old + 1} rejoined as a replica")
        if got and of is not None:
            self.links_up([old], 20.0)


# ===================================================================== scripts
def _failover_cycle(n: ScriptNemesis) -> bool:
    p = n.target()
    if p is None:
        n.expect(False, "a primary with a replica owns workload slots")
        return False
    reps = n.cluster.replicas_of(p)
    n.links_up(reps)
    start = n.elapsed()
    t, slots = n.kill_primary(p)
    winner = n.await_promotion(p, slots, t, reps)
    n.band(start, None, f"kill n{p + 1}")
    n.restart_as_replica(p, winner)
    return winner is not None


def script_failover(n: ScriptNemesis) -> None:
    """One primary killed with SIGKILL; its replica is promoted; the old primary comes back as a replica."""
    if n.sleep(n.rng.uniform(1.5, 2.5)):
        _failover_cycle(n)


def script_failover_loop(n: ScriptNemesis) -> None:
    """Kill whoever is primary for the workload keys, again and again (each time once the last has healed)."""
    if not n.sleep(1.5):
        return
    cycles = 0
    while cycles == 0 or (not n.stopping and n.remaining() > 3 * n.nt + 4):
        if not _failover_cycle(n):
            break
        cycles += 1
        if not n.sleep(n.rng.uniform(0.5, 1.5)):
            break
    n.expect(cycles >= 1, f"{cycles} complete failover cycle(s)")


def _manual(n: ScriptNemesis, option: str | None) -> None:
    label = "takeover" if option == "TAKEOVER" else "manual failover"
    if not n.sleep(1.5):
        return
    done = 0
    while done == 0 or (not n.stopping and n.remaining() > 8):  # at least one, however short the run
        p = n.target()
        if p is None:
            n.expect(False, "a primary with a replica owns workload slots")
            return
        reps = n.cluster.replicas_of(p)
        n.links_up(reps)
        r = n.rng.choice(reps)
        slots = n.my_slots(p)
        start = n.elapsed()
        t = n.outage(f"{label} n{r + 1}", slots)
        args = ["CLUSTER", "FAILOVER"] + ([option] if option else [])
        n.cluster.client(r, 10.0).execute_command(*args)
        n.note(f"{' '.join(args)} on n{r + 1} (replica of n{p + 1})")
        got = n.wait(lambda: n.cluster.role_of(r) == "master" and n.cluster.node_for_slot(min(slots)) == r,
                     max(15.0, 5 * n.nt))
        took = (time.monotonic_ns() - t) / 1e9
        if option == "TAKEOVER":
            # The old primary acknowledges writes until it hears of the new configuration.
            n.window(t - int(LAG_WINDOW_S * 1e9), time.monotonic_ns() + int(LAG_WINDOW_S * 1e9),
                     f"takeover of n{p + 1}'s slots without its agreement")
        if not n.expect(got, f"n{r + 1} became the primary of n{p + 1}'s slots"):
            return
        n.measure("promotion_s", round(took, 2))
        n.band(start, None, f"{label} n{r + 1}")
        n.expect(n.wait(lambda: n.cluster.role_of(p) == "slave", 15.0), f"the old primary n{p + 1} became a replica")
        done += 1
        if not n.sleep(n.rng.uniform(1.5, 3.0)):
            break
    n.expect(done >= 1, f"{done} {label}(s) completed")


def script_manual_failover(n: ScriptNemesis) -> None:
    _manual(n, None)


def script_takeover(n: ScriptNemesis) -> None:
    _manual(n, "TAKEOVER")


def _two_replica_primary(n: ScriptNemesis) -> tuple[int, list[int]] | None:
    """The opening of the two-replica scenarios: after a second of load, a primary with two replicas
    whose replication links are up (None if the run ended or the cluster has no such primary)."""
    if not n.sleep(1.0):
        return None
    p = n.target(replicas=2)
    if p is None:
        n.expect(False, "a primary with two replicas owns workload slots (needs 7+ nodes)")
        return None
    reps = n.cluster.replicas_of(p)
    n.links_up(reps)
    return p, reps


def script_replica_selection(n: ScriptNemesis) -> None:
    """Redis's replica-selection test: one replica misses writes, then the primary dies; the other must win.

    The stale replica is the one with the smaller node id, so an election that orders candidates by
    id instead of by offset (a seeded mutant) would pick it.
    """
    found = _two_replica_primary(n)
    if found is None:
        return
    p, reps = found
    ids = {r: n.cluster.node_id(r) for r in reps}
    stale = min(reps, key=lambda r: ids[r])
    good = [r for r in reps if r != stale]
    start = n.elapsed()
    n.cluster.pause(stale)
    n.cleanup.append(lambda: n.cluster.resume(stale))
    # Close every replica link of the primary (CLIENT KILL TYPE replica: which connection is whose is not
    # always visible); the running replica reconnects and continues from the backlog, the paused one cannot.
    killed = n.cluster.client(p).execute_command("CLIENT", "KILL", "TYPE", "replica")
    n.note(f"pause n{stale + 1} (SIGSTOP); CLIENT KILL TYPE replica on n{p + 1} ({killed} closed)")
    n.expect(n.links_up(good, 20.0, of=p), f"the running replica(s) {['n%d' % (g + 1) for g in good]} "
             "reconnected to the primary")
    n.hold(max(3.0, 1.5 * n.nt))
    t, slots = n.kill_primary(p)
    n.cluster.resume(stale)
    n.cleanup.clear()
    n.note(f"resume n{stale + 1} (SIGCONT): it missed the writes of the last seconds")
    winner = n.await_promotion(p, slots, t)
    n.band(start, None, f"stale n{stale + 1}, kill n{p + 1}")
    if winner is not None:
        n.expect(winner in good, f"the up-to-date replica {['n%d' % (g + 1) for g in good]} won the election "
                 f"(winner n{winner + 1}; stale n{stale + 1})")
    n.restart_as_replica(p, winner)


def script_stale_replica(n: ScriptNemesis) -> None:
    """A replica cut off from its primary for longer than the validity window must not fail over.

    Runs in the private network namespace: the replica <-> primary links are cut with nftables while
    both processes run, so the replica's data age grows; then the primary is killed.
    """
    from jepsen_like.nemesis import nft_ruleset
    from jepsen_like.netns import apply_rules, clear_rules

    if not n.sleep(1.0):
        return
    p = n.target()
    if p is None:
        n.expect(False, "a primary with a replica owns workload slots")
        return
    r = n.cluster.replicas_of(p)[0]
    n.links_up([r])
    start = n.elapsed()
    apply_rules(nft_ruleset([(p, r), (r, p)], lambda i: n.cluster.nodes[i].host))
    n.cleanup.append(clear_rules)
    n.note(f"cut n{p + 1} <-> n{r + 1} (primary and its replica)")
    down = n.wait(lambda: n.cluster.info(r).get("master_link_status") == "down", 30.0, 0.1)
    n.expect(down, f"n{r + 1} saw its replication link go down")
    # data age > node timeout + repl-ping-replica-period (1 s) + node timeout x validity factor (1)
    n.hold(2 * n.nt + 1.0 + 2.0)
    t, slots = n.kill_primary(p)
    clear_rules()
    n.cleanup.clear()
    n.note("heal the cut (the primary is dead)")
    n.hold(3 * n.nt + 3.0)
    n.expect(n.cluster.role_of(r) == "slave", f"the stale replica n{r + 1} did not fail over")
    n.expect(n.cluster.node_for_slot(min(slots)) in (p, None), f"nobody else took n{p + 1}'s slots")
    n.band(start, None, f"cut n{r + 1}, kill n{p + 1}")
    n.cluster.restart(p)
    n.note(f"restart n{p + 1} (appendonly: it reloads its data)")
    n.expect(n.wait(lambda: n.cluster.role_of(p) == "master", 20.0), f"n{p + 1} is back as the primary")


def script_replica_migration(n: ScriptNemesis) -> None:
    """An orphaned primary gets a replica from a primary with two; then the orphan dies and that replica wins."""
    if not n.sleep(1.0):
        return
    topo = n.cluster.topology()
    rich = [p for p, (role, _) in topo.items() if role == "master" and len(n.cluster.replicas_of(p)) >= 2]
    if not rich:
        n.expect(False, "a primary with two replicas (needs 7+ nodes)")
        return
    donors = n.cluster.replicas_of(rich[0])
    others = [p for p, (role, _) in topo.items() if role == "master" and p != rich[0] and n.my_slots(p)]
    if not others:
        n.expect(False, "another primary owns workload slots")
        return
    b = others[0]
    rb = n.cluster.replicas_of(b)
    start = n.elapsed()
    for x in rb:
        n.cluster.kill(x)
        n.note(f"kill n{x + 1} (replica of n{b + 1}): n{b + 1} is orphaned")
    t0 = time.monotonic()
    migrated = n.wait(lambda: [d for d in donors if n.cluster.topology().get(d, ("", None))[1] == b] or None,
                      max(30.0, 10 * n.nt), 0.2)
    if not n.expect(migrated, f"a replica of n{rich[0] + 1} migrated to the orphaned primary n{b + 1}"):
        return
    m = migrated[0]
    n.measure("migration_s", round(time.monotonic() - t0, 2))
    n.note(f"n{m + 1} migrated to n{b + 1} after {time.monotonic() - t0:.1f}s")
    n.links_up([m])
    t, slots = n.kill_primary(b)
    winner = n.await_promotion(b, slots, t, [m])
    n.band(start, None, f"orphan n{b + 1}, kill it")
    n.restart_as_replica(b, winner)
    for x in rb:
        n.cluster.restart(x)
        n.note(f"restart n{x + 1}")


def script_no_failover(n: ScriptNemesis) -> None:
    """cluster-replica-no-failover yes: the primary dies, its replica must not take over; slots stay down."""
    if not n.sleep(1.5):
        return
    p = n.target()
    if p is None:
        n.expect(False, "a primary with a replica owns workload slots")
        return
    reps = n.cluster.replicas_of(p)
    n.links_up(reps)
    start = n.elapsed()
    t, slots = n.kill_primary(p)
    n.loss_windows.pop()  # no failover, and the primary reloads its AOF: nothing may be lost
    n.hold(3 * n.nt + 3.0)
    n.expect(all(n.cluster.role_of(r) == "slave" for r in reps), "no replica failed over")
    n.expect(n.cluster.node_for_slot(min(slots)) in (p, None), f"n{p + 1}'s slots were not taken over")
    n.cluster.restart(p)
    n.band(start, None, f"kill n{p + 1} (no failover)")
    n.note(f"restart n{p + 1} (appendonly: it reloads its data)")
    n.expect(n.wait(lambda: n.cluster.role_of(p) == "master", 20.0), f"n{p + 1} is back as the primary")


def script_double_failover(n: ScriptNemesis) -> None:
    """Kill a primary (failover 1), manually fail over to its other replica (failover 2), then restart the
    old primary: its stale claim must be corrected by an UPDATE and it must become a replica."""
    found = _two_replica_primary(n)
    if found is None:
        return
    p, reps = found
    start = n.elapsed()
    t, slots = n.kill_primary(p)
    w1 = n.await_promotion(p, slots, t, reps)
    if w1 is None:
        return
    other = [r for r in reps if r != w1]
    follows = n.wait(lambda: all(n.cluster.topology(r).get(r, ("", None))[1] == w1 for r in other), 20.0, 0.1)
    n.expect(follows, f"the other replica(s) {['n%d' % (r + 1) for r in other]} follow the new primary n{w1 + 1}")
    if not other:
        return
    w2 = other[0]
    n.expect(n.links_up([w2], 30.0, of=w1), f"n{w2 + 1} replicates from n{w1 + 1} (link up)")
    # n{w2} ran (and lost) an election of its own during the first failover: Redis lets a replica start
    # another election, manual ones included, only after the retry time (4 x node timeout) has passed.
    n.hold(4 * n.nt + 1.0)
    t2 = n.outage(f"manual failover n{w2 + 1}", slots)
    got = None
    for attempt in (1, 2):
        n.cluster.client(w2, 10.0).execute_command("CLUSTER", "FAILOVER")
        n.note(f"CLUSTER FAILOVER on n{w2 + 1} (second failover, attempt {attempt})")
        got = n.wait(lambda: n.cluster.role_of(w2) == "master", 5.0 + 2 * n.nt)
        if got:
            break
    n.band(start, None, "double failover")
    if not n.expect(got, f"n{w2 + 1} became the primary (second failover)"):
        return
    n.measure("promotion_s", round((time.monotonic_ns() - t2) / 1e9, 2))
    n.cluster.restart(p)
    n.note(f"restart n{p + 1} with its stale configuration (two epochs behind)")
    ok = n.wait(lambda: n.cluster.topology(p).get(p, ("", None)) == ("slave", w2), 30.0, 0.1)
    n.expect(ok, f"the old primary n{p + 1} took the UPDATE and now replicates from n{w2 + 1}")


def _other_primary(n: ScriptNemesis, src: int) -> int | None:
    prims = [i for i, (role, _) in n.cluster.topology().items() if role == "master" and i != src
             and n.cluster.nodes[i].alive()]
    return n.rng.choice(prims) if prims else None


def script_reshard(n: ScriptNemesis) -> None:
    """Move the workload keys' slots between primaries, one slot at a time, all through the run."""
    if not n.sleep(1.0):
        return
    moves = 0
    slots = sorted(n.slots)
    start = n.elapsed()
    while not n.stopping and n.remaining() > 2.0:
        slot = n.rng.choice(slots)
        src = n.owner(slot)
        dst = _other_primary(n, src) if src is not None else None
        if dst is None:
            break
        t = time.monotonic()
        keys = n.cluster.migrate_slot(slot, src, dst)
        moves += 1
        n.note(f"slot {slot}: n{src + 1} -> n{dst + 1} ({keys} key(s), {time.monotonic() - t:.2f}s)")
        n.measure("slot_move_s", round(time.monotonic() - t, 3))
        if not n.sleep(n.rng.uniform(0.3, 1.0)):
            break
    n.band(start, None, "resharding")
    n.expect(moves >= 1, f"{moves} slot move(s) under load")


def script_half_migrated(n: ScriptNemesis) -> None:
    """A reshard interrupted after MIGRATING/IMPORTING and the first keys; clients live with ASK for a
    while; then ``redis-cli --cluster fix`` closes the slot."""
    if not n.sleep(1.5):
        return
    slot = n.rng.choice(sorted(n.slots))
    src = n.owner(slot)
    dst = _other_primary(n, src)
    if dst is None:
        n.expect(False, "two primaries")
        return
    start = n.elapsed()
    moved = n.cluster.migrate_slot(slot, src, dst, finish=False, batch=1)
    n.note(f"slot {slot} half-migrated n{src + 1} -> n{dst + 1} ({moved} key(s) moved), then left open")
    n.hold(min(5.0, max(2.0, n.remaining() - 8)))
    t = time.monotonic()
    out = n.cluster.fix()
    n.note(f"redis-cli --cluster fix ({time.monotonic() - t:.1f}s)")

    def closed():
        for i, node in enumerate(n.cluster.nodes):
            if node.alive() and any(tok.startswith("[") for f in n.cluster.cluster_nodes(i) for tok in f[8:]):
                return False
        return True
    n.expect(n.wait(closed, 20.0, 0.2), f"no slot is left migrating/importing after the fix"
             + ("" if "[OK]" in out else f" (fix said: {out.strip()[-300:]!r})"))
    n.band(start, None, f"slot {slot} open")


def script_partition(n: ScriptNemesis) -> None:
    """Partitions as a script: the cut, its loss window (minority primaries keep acknowledging writes for
    up to the node timeout, or the write lease), then heal; repeated."""
    from jepsen_like.nemesis import nft_ruleset, partition_groups
    from jepsen_like.netns import apply_rules, clear_rules

    kind = n.kind
    lease = getattr(n, "lease_s", 0.0)
    if not n.sleep(n.rng.uniform(1.0, 2.0)):
        return
    while not n.stopping and n.remaining() > 2 * n.nt + 5:
        prims = [i for i, (role, _) in n.cluster.topology().items() if role == "master"]
        drops = partition_groups(kind, len(n.cluster.nodes), prims, n.rng)
        start = n.elapsed()
        t = time.monotonic_ns()
        apply_rules(nft_ruleset(drops, lambda i: n.cluster.nodes[i].host, one_way=kind == "one-way"))
        n.cleanup.append(clear_rules)
        reach = (lease or n.nt) + 1.0  # + detection slack
        n.window(t - int(LAG_WINDOW_S * 1e9), t + int(reach * 1e9),
                 f"{kind}: a minority primary acknowledges writes for up to "
                 + (f"the write lease ({lease:g}s)" if lease else f"the node timeout ({n.nt:g}s)"))
        n.note(f"partition {kind}: cut {len(drops)} directed link(s)")
        n.hold(n.rng.uniform(max(3.0, 2 * n.nt), max(4.0, 2 * n.nt + 2)))
        clear_rules()
        n.cleanup.clear()
        n.note("heal partition")
        n.band(start, None, f"{kind}")
        if not n.sleep(n.rng.uniform(2.0, 4.0)):
            break


def make_bus_script(name: str):
    def script_bus(n: ScriptNemesis) -> None:
        """An in-node bus fault (DEBUG subcommands, jepsen_like.bus_nemesis) held for a while, then undone."""
        from jepsen_like import bus_nemesis

        if not n.sleep(n.rng.uniform(1.0, 2.0)):
            return
        while not n.stopping and n.remaining() > 2 * n.nt + 3:
            start = n.elapsed()
            t = time.monotonic_ns()
            undo = bus_nemesis.inject(n.cluster.nodes, name, n.rng)
            n.cleanup.append(undo)
            n.window(t - int(LAG_WINDOW_S * 1e9), t + int((n.nt + 1.0) * 1e9), f"bus fault {name}")
            n.note(f"bus fault {name} on")
            n.hold(n.rng.uniform(2.0, 4.0))
            undo()
            n.cleanup.clear()
            n.note(f"bus fault {name} off")
            n.band(start, None, f"bus:{name}")
            if not n.sleep(n.rng.uniform(2.0, 3.0)):
                break
    return script_bus


SCRIPTS: dict[str, Callable[[ScriptNemesis], None]] = {
    "failover": script_failover,
    "failover-loop": script_failover_loop,
    "manual-failover": script_manual_failover,
    "takeover": script_takeover,
    "replica-selection": script_replica_selection,
    "stale-replica": script_stale_replica,
    "replica-migration": script_replica_migration,
    "no-failover": script_no_failover,
    "double-failover": script_double_failover,
    "reshard": script_reshard,
    "half-migrated": script_half_migrated,
}


def script_for(kind: str):
    """The script for a nemesis kind: a SCRIPTS name, ``partition:<p>`` or ``bus:<name>``."""
    if kind in SCRIPTS:
        return SCRIPTS[kind]
    if kind.startswith("partition:"):
        return script_partition
    if kind.startswith("bus:"):
        return make_bus_script(kind[4:])
    raise ClusterError(f"no script for nemesis {kind!r}")
