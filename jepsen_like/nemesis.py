"""Nemeses: process faults by PID on a seeded schedule, and network partitions (when possible).

A schedule is computed up front from a seeded ``random.Random`` -- a list of
``Fault`` (start offset, duration, kind, target node) -- so a run's faults
are a pure function of its seed and can be printed before they happen. The
target is drawn from the nodes the runner names (e.g. primaries that own
workload keys). ``Nemesis`` plays the schedule in a thread against a
``LocalCluster`` and logs every action with its monotonic time.

Process faults:

* ``kill`` -- SIGKILL, then after the duration restart in the same dir
  (reloading nodes.conf; with persistence off the node comes back empty);
* ``pause`` -- SIGSTOP, then SIGCONT.

Partitions (``halves``, ``isolate-primaries``, ``majorities-ring``,
``island``, ``one-way``) are nftables rules between the nodes' addresses,
applied inside ``unshare --user --map-root-user --net`` (jepsen_like.netns:
the harness re-executes itself there) so no root is needed and nothing
outlives the run. ``partition_support()`` says why they cannot run, when
they cannot; the groupings are drawn from the seeded rng when the schedule
is made, so a seed replays the same cuts.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass

__all__ = ["PARTITIONS", "PROCESS_FAULTS", "Fault", "Nemesis", "nft_ruleset", "partition_groups",
           "partition_schedule", "partition_support", "schedule"]

PROCESS_FAULTS = ("kill", "pause")
PARTITIONS = ("halves", "isolate-primaries", "majorities-ring", "island", "one-way")


@dataclass(frozen=True)
class Fault:
    start: float  # seconds after the workload starts
    duration: float
    kind: str
    node: int  # the target of a process fault (unused by partitions)
    drops: tuple = ()  # partitions: directed (a, b) node pairs whose a -> b traffic is dropped

    def describe(self) -> str:
        if self.kind in PARTITIONS:
            return f"t={self.start:5.1f}s {self.kind} ({len(self.drops)} directed links cut) for {self.duration:.1f}s"
        return f"t={self.start:5.1f}s {self.kind:<5} n{self.node + 1} for {self.duration:.1f}s"


def schedule(kind: str, targets: list[int], duration: float, rng: random.Random, *,
             first: tuple[float, float] = (1.0, 2.0), hold: tuple[float, float] = (1.0, 3.0),
             gap: tuple[float, float] = (1.0, 3.0), tail: float = 1.0) -> list[Fault]:
    """Faults of ``kind`` on random ``targets``, one at a time, all healed ``tail`` s before ``duration``."""
    if kind not in PROCESS_FAULTS:
        raise ValueError(f"unknown process fault {kind!r}")
    if not targets:
        return []
    out: list[Fault] = []
    t = rng.uniform(*first)
    while True:
        length = rng.uniform(*hold)
        if t + length > duration - tail:
            break
        out.append(Fault(round(t, 3), round(length, 3), kind, rng.choice(targets)))
        t += length + rng.uniform(*gap)
    if not out and duration - tail - first[0] > 0.2:
        # a run too short for the drawn spacing still gets one fault, fitted into the window
        start = first[0]
        out.append(Fault(start, round(min(hold[0], duration - tail - start), 3), kind, rng.choice(targets)))
    return out


def partition_schedule(kind: str, nodes: int, primaries: list[int], duration: float, rng: random.Random, *,
                       first: tuple[float, float] = (1.0, 2.0), hold: tuple[float, float] = (2.0, 4.0),
                       gap: tuple[float, float] = (1.0, 3.0), tail: float = 1.0) -> list[Fault]:
    """Partitions of ``kind`` (groupings drawn from ``rng``), one at a time, healed ``tail`` s before the end."""
    if kind not in PARTITIONS:
        raise ValueError(f"unknown partition {kind!r}")
    out: list[Fault] = []
    t = rng.uniform(*first)
    while True:
        length = rng.uniform(*hold)
        if t + length > duration - tail:
            break
        out.append(Fault(round(t, 3), round(length, 3), kind, -1,
                         tuple(partition_groups(kind, nodes, primaries, rng))))
        t += length + rng.uniform(*gap)
    if not out and duration - tail - first[0] > 0.2:
        start = first[0]
        out.append(Fault(start, round(min(hold[0], duration - tail - start), 3), kind, -1,
                         tuple(partition_groups(kind, nodes, primaries, rng))))
    return out


class Nemesis:
    """Plays a fault schedule against a ``LocalCluster`` in a background thread."""

    def __init__(self, cluster, faults: list[Fault]) -> None:
        self.cluster = cluster
        self.faults = faults
        self.log: list[tuple[float, str]] = []  # (seconds since start, action)
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = 0.0

    def _note(self, what: str) -> None:
        self.log.append((round(time.monotonic() - self._t0, 3), what))

    def _sleep_until(self, offset: float) -> bool:
        delay = self._t0 + offset - time.monotonic()
        return not self._stop.wait(max(0.0, delay))

    def _play(self) -> None:
        c = self.cluster
        for f in self.faults:
            if not self._sleep_until(f.start):
                return
            try:
                if f.kind in PARTITIONS:
                    from jepsen_like.netns import apply_rules

                    apply_rules(nft_ruleset(list(f.drops), lambda i: c.nodes[i].host, one_way=f.kind == "one-way"))
                    self._note(f"partition {f.kind}: cut {_describe_drops(f.drops)}")
                elif f.kind == "kill":
                    c.kill(f.node)
                    self._note(f"kill n{f.node + 1} (SIGKILL)")
                else:
                    c.pause(f.node)
                    self._note(f"pause n{f.node + 1} (SIGSTOP)")
            except Exception as e:  # keep playing; the runner heals everything at the end
                self.errors.append(f"{f.describe()}: {e}")
                continue
            self._sleep_until(f.start + f.duration)  # heal even when stopping early
            try:
                if f.kind in PARTITIONS:
                    from jepsen_like.netns import clear_rules

                    clear_rules()
                    self._note("heal partition")
                elif f.kind == "kill":
                    c.restart(f.node)
                    self._note(f"restart n{f.node + 1}")
                else:
                    c.resume(f.node)
                    self._note(f"resume n{f.node + 1} (SIGCONT)")
            except Exception as e:
                self.errors.append(f"heal after {f.describe()}: {e}")

    @property
    def started_at(self) -> float:
        """time.monotonic() when the schedule's clock started (fault offsets count from here)."""
        return self._t0

    def start(self) -> "Nemesis":
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=self._play, name="nemesis", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 60.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)


def _describe_drops(drops) -> str:
    return " ".join(f"n{a + 1}->n{b + 1}" for a, b in drops)


# ---------------------------------------------------------------- partitions
def partition_support() -> str | None:
    """None if partition nemeses can run here (in, or by re-executing into, a namespace), else why not."""
    from jepsen_like.netns import namespace_problem

    return namespace_problem()


def partition_groups(kind: str, nodes: int, primaries: list[int], rng: random.Random) -> list[tuple[int, int]]:
    """Directed pairs ``(a, b)`` whose traffic a -> b is dropped for partition ``kind``."""
    idx = list(range(nodes))
    if kind == "halves":
        order = idx[:]
        rng.shuffle(order)
        a, b = set(order[:nodes // 2]), set(order[nodes // 2:])
        return sorted((x, y) for x in idx for y in idx if x != y and ((x in a) != (y in a)))
    if kind == "isolate-primaries":
        iso = set(primaries)
        return sorted((x, y) for x in idx for y in idx if x != y and (x in iso or y in iso))
    if kind == "island":
        lone = rng.choice(idx)
        return sorted((x, y) for x in idx for y in idx if x != y and lone in (x, y))
    if kind == "majorities-ring":
        # Jepsen's ring: every node sees a majority (itself and its nearest neighbours in a shuffled
        # ring), and no two nodes see the same majority.
        order = idx[:]
        rng.shuffle(order)
        pos = {n: i for i, n in enumerate(order)}
        majority = nodes // 2 + 1
        k = majority // 2  # neighbours each side: 2k+1 >= majority
        drop = []
        for x in idx:
            for y in idx:
                d = abs(pos[x] - pos[y])
                if x != y and min(d, nodes - d) > k:
                    drop.append((x, y))
        return sorted(drop)
    if kind == "one-way":
        src = rng.choice(idx)
        return sorted((src, y) for y in idx if y != src)
    raise ValueError(f"unknown partition {kind!r}")


def nft_ruleset(drops: list[tuple[int, int]], host_of, *, one_way: bool = False) -> str:
    """An nftables ruleset dropping traffic for each pair (``host_of(i)`` gives node i's address).

    For one-way partitions only new connections are dropped (``ct state new``), so replies on
    established links still flow -- the asymmetric case.
    """
    lines = ["table inet shoal_partition {", "  chain output {", "    type filter hook output priority 0;"]
    state = " ct state new" if one_way else ""
    for a, b in drops:
        lines.append(f"    ip saddr {host_of(a)} ip daddr {host_of(b)}{state} drop")
    lines += ["  }", "}"]
    return "\n".join(lines) + "\n"
