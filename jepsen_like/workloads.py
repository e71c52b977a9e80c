"""Client workloads: register, set, counter, list-append.

Each workload hands out operations (``next_op``), the final reads done after
the cluster has healed (``final_ops``), and knows its checker (``check``).
``run_clients`` drives it: several threads, each with its own
``ClusterClient``, record every operation through one ``Recorder`` (a locked
``HistoryBuilder`` timed by ``time.monotonic_ns``) as ok / fail / info:

* ok -- the reply came back (for a cas: the compare succeeded);
* fail -- ``DefiniteFailure`` (not sent, refused, cas compare failed);
* info -- ``IndefiniteFailure`` (sent, then timeout or broken connection).
  Like Jepsen, the thread then continues as a *new* process id, since its
  old operation may still be in flight inside the server.

Values written are unique (one shared counter), so a read identifies the
write it saw. Keys are spread over the slot space (different names, hence
different slots); the list-append keys of one transaction share a hash tag
so MULTI/EXEC can run them on one node.
"""

from __future__ import annotations

import itertools
from collections import Counter
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from jepsen_like.checkers import check_counter, check_linearizable, check_list_append, check_set
from jepsen_like.client import ClusterClient, CompareFailed, DefiniteFailure, IndefiniteFailure
from jepsen_like.history import FAIL, INFO, OK, History, HistoryBuilder

__all__ = ["WORKLOADS", "CheckReport", "Recorder", "make_workload", "run_clients", "run_final"]

CAS_SCRIPT = ("if redis.call('GET', KEYS[1]) == ARGV[1] then "
              "redis.call('SET', KEYS[1], ARGV[2]) return 1 else return 0 end")


class Recorder:
    """A thread-safe ``HistoryBuilder`` that reads one monotonic clock itself."""

    def __init__(self, clock: Callable[[], int] = time.monotonic_ns) -> None:
        self.clock = clock
        self._builder = HistoryBuilder()
        self._lock = threading.Lock()
        self.reasons: Counter = Counter()  # "fail:<category>" / "info:<category>" -> count

    def note(self, outcome: str, category: str) -> None:
        with self._lock:
            self.reasons[f"{outcome}:{category}"] += 1

    def invoke(self, process: Any, f: str, key: Any, value: Any) -> int:
        with self._lock:
            return self._builder.invoke(process, f, key, value, time=self.clock())

    def complete(self, handle: int, outcome: str, value: Any = HistoryBuilder._NO_VALUE) -> None:
        with self._lock:
            self._builder.complete(handle, outcome, value, time=self.clock())

    def history(self) -> History:
        with self._lock:
            return self._builder.build()


@dataclass
class OpSpec:
    f: str
    key: Any
    value: Any
    run: Callable[[ClusterClient], Any]  # returns the ok value; raises Definite/IndefiniteFailure


@dataclass
class CheckReport:
    checker: str
    verdict: str
    lost: int | None  # acknowledged writes lost (None: this checker does not count them)
    details: dict = field(default_factory=dict)


def _int(v) -> int | None:
    return None if v is None else int(v)


class Workload:
    name = "?"
    read_timeouts_fail = True  # a read that timed out had no effect: record it as fail

    def __init__(self, keys: int, rng: random.Random) -> None:
        self.rng = rng
        self.values = itertools.count(1)  # unique values / elements (next() is atomic in CPython)
        self.keys = self.make_keys(keys)

    def make_keys(self, n: int) -> list[str]:
        return [f"{self.name}:{i}" for i in range(n)]

    def routing_key(self, key: Any) -> str:
        return key

    def next_op(self, rng: random.Random, state: dict) -> OpSpec:
        raise NotImplementedError

    def final_ops(self) -> list[OpSpec]:
        raise NotImplementedError

    def check(self, history: History) -> CheckReport:
        raise NotImplementedError


class RegisterWorkload(Workload):
    """GET / SET of unique integers, and compare-and-set through a Lua script."""

    name = "register"

    def _read(self, key):
        return OpSpec("read", key, None, lambda c: _int(c.call(key, "GET", key)))

    def next_op(self, rng, state):
        key = rng.choice(self.keys)
        r = rng.random()
        seen = state.setdefault("seen", {})
        if r < 0.5:
            spec = self._read(key)
            inner = spec.run

            def run(c, inner=inner):
                v = inner(c)
                if v is not None:
                    seen[key] = v
                return v
            spec.run = run
            return spec
        if r < 0.8 or key not in seen:
            v = next(self.values)
            return OpSpec("write", key, v, lambda c: (c.call(key, "SET", key, v), v)[1])
        old, new = seen[key], next(self.values)

        def cas(c):
            if int(c.call(key, "EVAL", CAS_SCRIPT, 1, key, old, new)) != 1:
                raise CompareFailed()
            return [old, new]
        return OpSpec("cas", key, [old, new], cas)

    def final_ops(self):
        return [self._read(k) for k in self.keys]

    def check(self, history):
        res = check_linearizable(history, time_limit=30.0, clock=time.monotonic)
        return CheckReport("linearizable", res.verdict, None,
                           {"key_verdicts": res.counts(), "states": res.states,
                            "witness": res.witness.explanation if res.witness else None})


class SetWorkload(Workload):
    """SADD of unique elements, then one final SMEMBERS per key."""

    name = "set"

    def next_op(self, rng, state):
        key, e = rng.choice(self.keys), next(self.values)
        return OpSpec("add", key, e, lambda c: (c.call(key, "SADD", key, e), e)[1])

    def _read(self, key):
        return OpSpec("read", key, None, lambda c: sorted(int(x) for x in c.call(key, "SMEMBERS", key)))

    def final_ops(self):
        return [self._read(k) for k in self.keys]

    def check(self, history):
        res = check_set(history)
        t = res.totals()
        return CheckReport("set", res.verdict, t["acknowledged_lost"],
                           {k: t[k] for k in ("acknowledged", "failed", "indeterminate", "lost", "unexpected",
                                               "recovered", "failed_present", "duplicated")}
                           | {"_lost_elements": [e for k in res.keys for e in k.lost]})


class CounterWorkload(Workload):
    """INCRBY of small positive amounts, and reads (GET)."""

    name = "counter"

    def _read(self, key):
        return OpSpec("read", key, None, lambda c: _int(c.call(key, "GET", key)))

    def next_op(self, rng, state):
        key = rng.choice(self.keys)
        if rng.random() < 0.2:
            return self._read(key)
        amount = rng.randint(1, 5)
        return OpSpec("incr", key, amount, lambda c: (c.call(key, "INCRBY", key, amount), amount)[1])

    def final_ops(self):
        return [self._read(k) for k in self.keys]

    def check(self, history):
        res = check_counter(history)
        acked = sum(k.acknowledged_sum for k in res.keys)
        return CheckReport("counter", res.verdict, None,
                           {"violations": len(res.violations), "acknowledged_sum": acked,
                            "possible_sum": sum(k.possible_sum for k in res.keys)})


class ListAppendWorkload(Workload):
    """Transactions of RPUSH / LRANGE micro-ops inside MULTI/EXEC, keys of a txn sharing a hash tag."""

    name = "list-append"
    read_timeouts_fail = False
    KEYS_PER_GROUP = 3

    def make_keys(self, n):
        groups = max(1, n // self.KEYS_PER_GROUP)
        return [f"{{la{g}}}:{k}" for g in range(groups) for k in range(self.KEYS_PER_GROUP)]

    def _txn(self, micro: list) -> OpSpec:
        key = micro[0][1]

        def run(c):
            cmds = [("MULTI",)]
            for kind, k, v in micro:
                cmds.append(("RPUSH", k, v) if kind == "append" else ("LRANGE", k, 0, -1))
            cmds.append(("EXEC",))
            results = c.execute(key, *cmds)[-1]
            if results is None:
                raise DefiniteFailure("EXEC aborted")
            out = []
            for (kind, k, v), r in zip(micro, results):
                if isinstance(r, Exception):
                    raise DefiniteFailure(f"txn error: {r}")  # not reached for RPUSH/LRANGE on lists
                out.append([kind, k, v] if kind == "append" else ["r", k, [int(x) for x in r]])
            return out
        invoke = [[kind, k, v] if kind == "append" else ["r", k, None] for kind, k, v in micro]
        return OpSpec("txn", key, invoke, run)

    def next_op(self, rng, state):
        g = rng.randrange(len(self.keys) // self.KEYS_PER_GROUP)
        group = self.keys[g * self.KEYS_PER_GROUP:(g + 1) * self.KEYS_PER_GROUP]
        micro = []
        for _ in range(rng.randint(1, 3)):
            k = rng.choice(group)
            micro.append(("append", k, next(self.values)) if rng.random() < 0.5 else ("r", k, None))
        return self._txn(micro)

    def final_ops(self):
        per = self.KEYS_PER_GROUP
        return [self._txn([("r", k, None) for k in self.keys[i:i + per]]) for i in range(0, len(self.keys), per)]

    def check(self, history):
        res = check_list_append(history)
        return CheckReport("list-append", res.verdict, None,
                           {"anomaly_types": res.anomaly_types, "stats": dict(res.stats)})


WORKLOADS = {w.name: w for w in (RegisterWorkload, SetWorkload, CounterWorkload, ListAppendWorkload)}


def make_workload(name: str, keys: int, rng: random.Random) -> Workload:
    if name not in WORKLOADS:
        raise ValueError(f"unknown workload {name!r} (choose from {', '.join(WORKLOADS)})")
    return WORKLOADS[name](keys, rng)


def _perform(recorder: Recorder, client: ClusterClient, process: Any, spec: OpSpec, workload: Workload) -> str:
    """Run one op and record it; returns its outcome (``"served"`` for a cas whose compare failed:
    recorded as fail, but the cluster answered)."""
    h = recorder.invoke(process, spec.f, spec.key, spec.value)
    try:
        result = spec.run(client)
    except DefiniteFailure as e:
        recorder.complete(h, FAIL)
        recorder.note(FAIL, e.category)
        return "served" if isinstance(e, CompareFailed) else FAIL
    except IndefiniteFailure as e:
        if spec.f == "read" and workload.read_timeouts_fail:
            recorder.complete(h, FAIL)  # a read changes nothing: an unknown read is as good as none
            recorder.note(FAIL, f"read-{e.category}")
            return FAIL
        recorder.complete(h, INFO)
        recorder.note(INFO, e.category)
        return INFO
    recorder.complete(h, OK, result)
    return OK


def run_clients(workload: Workload, seeds: list[tuple[str, int]], recorder: Recorder, stop: threading.Event,
                *, threads: int = 6, seed: int = 0, timeout: float = 1.0) -> list[threading.Thread]:
    """Start ``threads`` client threads that run ``workload`` until ``stop`` is set; returns the threads."""

    def loop(t: int) -> None:
        rng = random.Random(seed * 7919 + t)
        client = ClusterClient(seeds, timeout=timeout, rng=rng)
        process, state = t, {}
        try:
            while not stop.is_set():
                outcome = _perform(recorder, client, process, workload.next_op(rng, state), workload)
                if outcome == INFO:
                    process += threads  # the old op may still be in flight: continue as a new process
                elif outcome == FAIL:
                    time.sleep(0.01)  # don't spin on a refusing (or unreachable) cluster
        finally:
            client.close()

    out = [threading.Thread(target=loop, args=(t,), name=f"client-{t}", daemon=True) for t in range(threads)]
    for th in out:
        th.start()
    return out


def run_final(workload: Workload, seeds: list[tuple[str, int]], recorder: Recorder, *, deadline: float,
              timeout: float = 2.0, seed: int = 0) -> list[str]:
    """Do the workload's final reads, each retried until ok or ``deadline`` (monotonic s); returns misses."""
    client = ClusterClient(seeds, timeout=timeout, rng=random.Random(seed))
    missed = []
    try:
        for n, spec in enumerate(workload.final_ops()):
            process = f"final-{n}"
            while _perform(recorder, client, process, spec, workload) != OK:
                if time.monotonic() > deadline:
                    missed.append(str(spec.key))
                    break
                process = f"{process}'"
                client.refresh()
                time.sleep(0.2)
    finally:
        client.close()
    return missed
