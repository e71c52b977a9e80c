"""Run one scenario: cluster up, workload under the nemesis, heal, final reads, check, summarise.

``run_scenario`` returns a ``Summary`` whatever happens: ``status`` is
``completed``, ``skipped`` (with ``skip_reason``: the engine, loopback
addresses or partition support is missing -- a skipped scenario is never
reported as passed) or ``error`` (with the error). Every process it starts is
stopped in a ``finally``.

Judgement against the scenario's documented guarantees:

* ``ok`` -- the checker says valid, nothing acknowledged was lost, and the
  nemesis saw every expectation met;
* ``allowed`` -- anomalies or losses that the scenario's ``allows`` permits
  (with ``loss="window"``: every lost write was acknowledged inside a loss
  window the nemesis recorded);
* ``violation`` -- anomalies or losses it does not permit, or an unmet
  expectation (e.g. the stale replica won the election);
* ``unknown`` -- the checker could not decide (never read as ok).

Failover times: for every outage the nemesis records (a kill, a manual
failover, a takeover), the longest stall in successful writes on the keys of
the slots it touched, from the outage on: for a kill, detection + election +
rerouting, i.e. kill -> first successful write on the new primary.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import asdict, dataclass, field

from jepsen_like.cluster import ClusterError, LocalCluster, engine_available, loopback_hosts_usable
from jepsen_like.history import INVALID, UNKNOWN, VALID, History
from jepsen_like.nemesis import PARTITIONS, Nemesis, partition_schedule, partition_support, schedule
from jepsen_like.scenarios import Scenario, get_scenario
from jepsen_like.workloads import Recorder, make_workload, run_clients, run_final
from slots import keyslot

__all__ = ["Summary", "run_scenario"]


@dataclass
class Summary:
    scenario: str
    engine: str
    nodes: int
    workload: str
    seed: int
    duration: float
    status: str = "completed"  # completed / skipped / error
    skip_reason: str = ""
    error: str = ""
    ops: dict = field(default_factory=lambda: {"ok": 0, "fail": 0, "info": 0, "total": 0})
    workload_ops: dict = field(default_factory=lambda: {"ok": 0, "fail": 0, "info": 0, "total": 0})
    availability: float | None = None  # served / total over the workload phase (final reads excluded)
    throughput: float | None = None  # workload ops per second
    outcome_reasons: dict = field(default_factory=dict)  # "fail:<why>" / "info:<why>" -> count
    lost_acknowledged: int | None = None
    checker: str = ""
    verdict: str = UNKNOWN
    details: dict = field(default_factory=dict)
    judgement: str = "unknown"
    allows: str = ""
    faults: list = field(default_factory=list)
    nemesis_log: list = field(default_factory=list)
    nemesis_errors: list = field(default_factory=list)
    heal_seconds: float | None = None
    final_reads_missed: list = field(default_factory=list)
    node_tracebacks: list = field(default_factory=list)
    report: str = ""  # path of the HTML report, when one was asked for
    lost_outside_window: int | None = None  # lost acknowledged writes outside every allowed loss window
    expectations: list = field(default_factory=list)  # "ok: ..." / "FAILED: ..."
    failover_times: list = field(default_factory=list)  # seconds, outage -> first ok write on its slots
    measures: dict = field(default_factory=dict)  # e.g. promotion_s, migration_s, slot_move_s
    mutant: str = ""

    @property
    def failover_time(self) -> float | None:
        """The longest measured failover time (None if nothing was measured)."""
        known = [t for t in self.failover_times if t is not None]
        return max(known) if known else None

    def to_dict(self) -> dict:
        return asdict(self)

    def to_text(self) -> str:
        head = (f"scenario {self.scenario}  engine={self.engine}  nodes={self.nodes}  workload={self.workload}  "
                f"time={self.duration:g}s  seed={self.seed}")
        if self.status == "skipped":
            return f"{head}\n  SKIPPED: {self.skip_reason}\n"
        lines = [head]
        if self.status == "error":
            lines.append(f"  ERROR: {self.error}")
        o, w = self.ops, self.workload_ops
        lines.append(f"  operations   ok {o['ok']}  fail {o['fail']}  info (unknown) {o['info']}  total {o['total']}"
                     f"  (final reads included)")
        if self.availability is not None:
            lines.append(f"  availability {self.availability:.1%} of {w['total']} workload ops served"
                         f" (ok, or a cas whose compare failed)  {self.throughput:.0f} ops/s")
        if self.outcome_reasons:
            lines.append("  why not ok: " + ", ".join(f"{k} {v}" for k, v in self.outcome_reasons.items()))
        lost = "n/a for this workload" if self.lost_acknowledged is None else str(self.lost_acknowledged)
        if self.lost_outside_window is not None and self.lost_acknowledged:
            lost += f"  ({self.lost_outside_window} outside every allowed loss window)"
        lines.append(f"  lost acknowledged writes: {lost}")
        if self.failover_times:
            shown = ", ".join("never" if t is None else f"{t:.2f}s" for t in self.failover_times)
            lines.append(f"  failover times (outage -> first ok write on its slots): {shown}")
        if self.measures:
            lines.append("  measured: " + ", ".join(f"{k} {v}" for k, v in self.measures.items()))
        if self.mutant:
            lines.append(f"  MUTANT: {self.mutant}")
        for e in self.expectations:
            lines.append(f"  expectation {e}")
        lines.append(f"  checker {self.checker}: {self.verdict}   judgement: {self.judgement}")
        for k, v in self.details.items():
            if v not in (None, [], {}):
                lines.append(f"    {k}: {v}")
        if self.faults:
            lines.append("  faults:")
            lines += [f"    {f}" for f in self.faults]
        if self.nemesis_errors:
            lines += [f"  nemesis error: {e}" for e in self.nemesis_errors]
        if self.heal_seconds is not None:
            lines.append(f"  healthy again {self.heal_seconds:.1f}s after the workload stopped")
        if self.final_reads_missed:
            lines.append(f"  final reads that never succeeded: {', '.join(self.final_reads_missed)}")
        if self.node_tracebacks:
            lines.append(f"  nodes with a Traceback in their log: {self.node_tracebacks}")
        if self.report:
            lines.append(f"  report: {self.report}")
        lines.append(f"  allows: {self.allows}")
        return "\n".join(lines) + "\n"


def _judge(s: Summary, sc: Scenario) -> str:
    lost = bool(s.lost_acknowledged)
    if any(e.startswith("FAILED") for e in s.expectations):
        return "violation"
    if s.verdict == VALID and not lost:
        return "ok"
    if s.verdict == UNKNOWN and not lost:
        return "unknown"
    if lost and not sc.allows_loss:
        return "violation"
    if lost and sc.loss == "window" and s.lost_outside_window:
        return "violation"
    if s.verdict == INVALID and not sc.allows_anomalies and not (lost and sc.allows_loss):
        return "violation"
    return "allowed"


_WRITES = ("add", "write", "cas", "incr", "txn", "publish")


def _failover_times(history, outages, workload, horizon_s: float = 60.0) -> list:
    """Per outage: the longest stall in successful writes on the keys of its slots, from the outage on
    (seconds; None if no write on them succeeded afterwards). After a kill that is the failure detection,
    the election and the clients' rerouting; after a manual failover, the pause it imposes."""
    out = []
    starts = sorted(t for t, _, _ in outages)
    for t_ns, _label, slots in outages:
        later = [t for t in starts if t > t_ns]
        end_ns = min([t_ns + int(horizon_s * 1e9)] + later)  # up to the next outage
        keys = {k for k in workload.keys if keyslot(workload.routing_key(k).encode()) in set(slots)}
        done = sorted(op.complete for op in history
                      if op.outcome == "ok" and op.f in _WRITES and op.key in keys and op.complete >= t_ns
                      and not str(op.process).startswith("final"))
        if not done:
            out.append(None)
            continue
        prev, gap = t_ns, 0
        for c in done:
            if c > end_ns:
                break
            gap, prev = max(gap, c - prev), c
        out.append(round(gap / 1e9, 2))
    return out


def _lost_outside(history, details: dict, windows) -> int | None:
    """How many lost elements (set workload) were acknowledged outside every loss window."""
    lost = details.get("_lost_elements")
    if lost is None:
        return None
    acked = {op.value: op.complete for op in history if op.f == "add" and op.outcome == "ok"}
    n = 0
    for e in lost:
        t = acked.get(e)
        if t is None or not any(a <= t <= b for a, b, _ in windows):
            n += 1
    return n


def _counts(ops) -> dict:
    c = {"ok": 0, "fail": 0, "info": 0}
    for op in ops:
        c[op.outcome] += 1
    c["total"] = sum(c.values())
    return c


def _make_workload(name: str, keys: int, rng: random.Random):
    if name in ("pubsub", "spubsub"):
        from jepsen_like.pubsub import PubSubWorkload, ShardedPubSubWorkload

        return (PubSubWorkload if name == "pubsub" else ShardedPubSubWorkload)(keys, rng)
    return make_workload(name, keys, rng)


def run_scenario(name: str, *, engine: str = "shoal", nodes: int = 3, workload: str = "set",
                 duration: float = 20.0, seed: int = 0, threads: int = 6, keys: int = 8,
                 node_timeout: int = 2000, client_timeout: float = 1.0, heal_timeout: float = 60.0,
                 report_dir: str | None = None, mutant: str | None = None) -> Summary:
    """Run scenario ``name``; ``nodes`` is raised to what the scenario needs. ``mutant`` (Shoal only)
    starts every node with ``SHOAL_MUTANT`` set (node/mutants.py): a seeded bug the run should catch."""
    from jepsen_like.netns import inside, loopback_up

    sc = get_scenario(name)
    nodes = max(nodes, sc.nodes)
    workload = sc.workload or workload
    s = Summary(name, engine, nodes, workload, seed, duration, allows=sc.allows, mutant=mutant or "")
    if sc.shoal_only and engine != "shoal":
        s.status, s.skip_reason = "skipped", "Shoal-only scenario (uses options real Redis does not have)"
        return s
    if mutant and engine != "shoal":
        s.status, s.skip_reason = "skipped", "mutants exist only in Shoal"
        return s
    if sc.is_partition and not inside():
        s.status = "error"
        s.error = ("partition scenarios run inside a private network namespace: use `shoal chaos run`, "
                   "which re-executes itself there")
        return s
    if inside():
        loopback_up()  # a fresh network namespace starts with lo down
    why = engine_available(engine) or loopback_hosts_usable(nodes)
    if not why and sc.is_partition:
        why = partition_support()
    if why:
        s.status, s.skip_reason = "skipped", why
        return s
    rng = random.Random(seed)
    wl = _make_workload(workload, keys, rng)
    cluster = None
    try:
        env = {"SHOAL_MUTANT": mutant} if mutant else None
        cluster = LocalCluster(engine, nodes, replicas=sc.replicas, node_timeout=node_timeout, seed=seed,
                               options=sc.server_options(engine, node_timeout), env=env)
        cluster.start()
        seeds = [(n.host, n.port) for n in cluster.nodes]
        owners = {keyslot(wl.routing_key(k).encode()) for k in wl.keys}
        targets = sorted({i for i in (cluster.node_for_slot(sl) for sl in owners) if i is not None})
        if sc.is_partition:
            from jepsen_like.netns import clear_rules

            clear_rules()
        if sc.nemesis.startswith("bus:") if sc.nemesis else False:
            from jepsen_like import bus_nemesis

            why = bus_nemesis.support(cluster.nodes)
            if why:
                s.status, s.skip_reason = "skipped", f"in-node bus faults unavailable: {why}"
                return s
        if sc.scripted:
            from jepsen_like.faults import ScriptNemesis, script_for

            faults = []
            kind = sc.nemesis.split(":", 1)[1] if sc.nemesis.startswith("partition:") else sc.nemesis
            nemesis = ScriptNemesis(cluster, script_for(sc.nemesis), slots=owners, duration=duration, rng=rng,
                                    node_timeout=node_timeout, kind=kind)
            nemesis.lease_s = (node_timeout // 2) / 1000.0 if sc.lease_ms and engine == "shoal" else 0.0
        else:
            if sc.nemesis in PARTITIONS:
                faults = partition_schedule(sc.nemesis, nodes, cluster.primaries(), duration, rng)
            else:
                faults = schedule(sc.nemesis, targets, duration, rng) if sc.nemesis else []
            nemesis = Nemesis(cluster, faults)
        s.faults = [f.describe() for f in faults]
        recorder = Recorder()
        stop = threading.Event()
        sub_stop = threading.Event()
        if hasattr(wl, "start_subscribers"):
            wl.start_subscribers(seeds, sub_stop, seed=seed, timeout=client_timeout)
        t0 = time.monotonic()
        t0_ns = time.monotonic_ns()
        workers = run_clients(wl, seeds, recorder, stop, threads=threads, seed=seed, timeout=client_timeout)
        nemesis.start()
        time.sleep(duration)
        nemesis.stop()
        stop.set()
        for th in workers:
            th.join(client_timeout * 10 + 5)
        if hasattr(wl, "start_subscribers"):
            wl.join_subscribers()
            sub_stop.set()
            wl.stop_subscribers()
        elapsed = time.monotonic() - t0
        s.nemesis_log = [f"t={t:5.1f}s {what}" for t, what in nemesis.log]
        s.nemesis_errors = list(nemesis.errors)
        if sc.is_partition:
            from jepsen_like.netns import clear_rules

            clear_rules()  # heal whatever the nemesis left
        for what in cluster.heal_processes():
            s.nemesis_log.append(f"end: {what}")
        if sc.nemesis in ("reshard", "half-migrated") and nemesis.errors:
            s.nemesis_log.append("end: redis-cli --cluster fix")
            cluster.fix()
        s.heal_seconds = round(cluster.wait_healthy(heal_timeout), 2)
        s.final_reads_missed = run_final(wl, seeds, recorder, deadline=time.monotonic() + heal_timeout, seed=seed)
        history: History = recorder.history()
        phase = [op for op in history if not str(op.process).startswith("final")]
        s.ops, s.workload_ops = _counts(history), _counts(phase)
        s.outcome_reasons = dict(sorted(recorder.reasons.items()))
        # A cas whose compare failed was served: it counts as available, not as an outage.
        served = s.workload_ops["ok"] + recorder.reasons.get("fail:cas-mismatch", 0)
        s.availability = served / s.workload_ops["total"] if s.workload_ops["total"] else 0.0
        s.throughput = s.workload_ops["total"] / elapsed if elapsed > 0 else 0.0
        report = wl.check(history)
        s.checker, s.verdict, s.lost_acknowledged, s.details = report.checker, report.verdict, report.lost, report.details
        if sc.scripted:
            s.expectations = [("ok: " if met else "FAILED: ") + text for met, text in nemesis.expectations]
            s.failover_times = _failover_times(history, nemesis.outages, wl)
            s.measures = dict(nemesis.measures)
            if sc.loss == "window" and s.lost_acknowledged:
                s.lost_outside_window = _lost_outside(history, s.details, nemesis.loss_windows)
        s.details.pop("_lost_elements", None)
        s.judgement = _judge(s, sc)
        s.node_tracebacks = [f"n{i + 1}" for i in cluster.logs_contain("Traceback")]
        if report_dir:
            from jepsen_like.report import write_report

            shift = nemesis.started_at - t0
            bands = [(f.start + shift, f.start + f.duration + shift, f.kind) for f in faults]
            bands += [(a + shift, b + shift, label) for a, b, label in getattr(nemesis, "bands", [])]
            s.report = str(write_report(report_dir, s, history, t0_ns, bands))
    except (ClusterError, OSError) as e:
        s.status, s.error = "error", str(e)
    finally:
        if cluster is not None:
            cluster.stop_all()
    return s

