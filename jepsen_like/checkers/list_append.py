"""Elle-style checker for list-append transactions.

The workload runs transactions (``f == "txn"``) whose value is a list of
micro-ops ``["append", k, v]`` and ``["r", k, list]``, appending values that
are unique per key (RPUSH and LRANGE inside MULTI/EXEC in Shoal's case). Lists
only ever grow by appends, so every version of a key is a prefix of its final
value, and a read reveals the whole history of the key up to that version.
That is what lets Elle (Kingsbury & Alvaro, VLDB 2020) recover the version
order of every key from the reads and build Adya's direct serialization graph
without knowing anything about the database's internals.

Per key, the **version order** is the longest value read; every other read
must be a prefix of it, otherwise the key has an ``incompatible-order``
anomaly (and no order is trusted for it). A committed transaction's appends to
a key must appear in it as a prefix of them, in the order it made them (else
``incompatible-order`` too, naming the transaction, and again the key's order
is not used). Then, between transactions that committed (``ok``, or ``info``
with an append that some read observed):

* ``ww``: the writer of one element of the version order precedes the writer
  of the next element;
* ``wr``: the writer of the last element a read saw precedes the reader;
* ``rw`` (anti-dependency): a reader precedes the writer of the first element
  after the prefix it saw;
* appends nobody read (by committed transactions) come after every observed
  version, so they get ``ww`` from the last observed writer and ``rw`` from
  every reader of the newest observed version -- this is what exposes an
  acknowledged append that was lost;
* ``rt`` (real time, for strict serializability): a transaction that
  completed before another was invoked precedes it (a transitively reduced
  set of these edges with the same reachability).

Cycles are found with Tarjan's strongly connected components and then, inside
each component, a breadth-first search for a short cycle through a chosen
edge, so each cycle is classified the way Elle names them:

* ``G0`` -- write cycle, ``ww`` edges only;
* ``G1c`` -- circular information flow, ``ww``/``wr`` with at least one ``wr``;
* ``G-single`` -- exactly one anti-dependency (read skew, lost update);
* ``G-nonadjacent`` -- several anti-dependencies, no two adjacent;
* ``G2-item`` -- several anti-dependencies, some adjacent (write skew);
* each with ``-realtime`` appended when the cycle needs an ``rt`` edge.

Besides cycles it reports ``G1a`` (aborted read: a read saw an append of a
failed transaction), ``G1b`` (intermediate read: a read ended on an append
that was not its transaction's last append to that key), ``internal`` (a
transaction's read disagrees with its own earlier reads and appends),
``future-read`` (a transaction read an element it only appends later),
``duplicate-elements`` (one read holds an element twice),
``incompatible-order`` and ``unexpected-element`` (a read holds an element
nobody appended).

Every reported anomaly means the history is not serializable (or, for the
``-realtime`` ones, not strictly serializable). Conversely, with the rules
above (in particular the unobserved appends, ``future-read`` and the order of
a transaction's own appends) a history with none is serializable -- a
topological order of the graph replays every read -- and the tests hold the
verdict to exactly that of a brute-force search on thousands of small
histories, with ok, fail and info outcomes. A read of ``None`` in an ok
transaction means the empty list; reads of info and failed transactions are
ignored. The verdict is ``unknown`` when the history has no ok read at all
(nothing was observed), ``invalid`` when there is any anomaly.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Iterable

from jepsen_like.history import FAIL, INFO, INVALID, OK, UNKNOWN, VALID, History, Op

__all__ = ["CYCLE_ANOMALIES", "ListAppendResult", "check_list_append"]

WW, WR, RW, RT = "ww", "wr", "rw", "rt"
_PREFERENCE = (WW, WR, RW, RT)  # which edge type explains a step when several do

CYCLE_ANOMALIES = (
    "G0", "G1c", "G-single", "G-nonadjacent", "G2-item",
    "G0-realtime", "G1c-realtime", "G-single-realtime", "G-nonadjacent-realtime", "G2-item-realtime",
)

STRICT_SERIALIZABLE = "strict-serializable"
SERIALIZABLE = "serializable"


def _freeze(v: Any) -> Any:
    return tuple(_freeze(x) for x in v) if isinstance(v, list) else v


def _frozen_list(v: Any) -> tuple:
    """A read's list as a hashable tuple (``None`` is the empty list)."""
    value = tuple(v or ())
    try:
        hash(value)
    except TypeError:
        value = tuple(_freeze(x) for x in value)
    return value


def _sort_key(x: Any) -> tuple:
    return (type(x).__name__, repr(x))


@dataclass
class ListAppendResult:
    verdict: str
    anomalies: dict[str, list[dict]] = field(default_factory=dict)
    stats: dict[str, int] = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        return self.verdict == VALID

    @property
    def anomaly_types(self) -> list[str]:
        return sorted(self.anomalies)

    @property
    def cycles(self) -> list[dict]:
        return [a for name in CYCLE_ANOMALIES for a in self.anomalies.get(name, [])]

    def to_dict(self) -> dict:
        return {
            "checker": "list-append",
            "verdict": self.verdict,
            "anomaly_types": self.anomaly_types,
            "anomalies": {k: list(v) for k, v in sorted(self.anomalies.items())},
            "stats": dict(self.stats),
        }


class _Graph:
    """Dependency edges between transactions (op indices), each with the first explanation seen."""

    def __init__(self) -> None:
        self.out: dict[int, dict[int, dict[str, dict]]] = {}
        self._adj: dict[frozenset, dict[int, list[int]]] = {}  # sorted successors per kind set

    def add(self, a: int, b: int, kind: str, why: dict) -> None:
        if a == b:
            return
        self._adj.clear()
        slot = self.out.setdefault(a, {}).setdefault(b, {})
        if kind not in slot:
            slot[kind] = why

    def nodes(self) -> list[int]:
        ns = set(self.out)
        for succ in self.out.values():
            ns.update(succ)
        return sorted(ns)

    def succ(self, a: int, allowed: frozenset) -> list[int]:
        adj = self._adj.get(allowed)
        if adj is None:
            adj = self._adj[allowed] = {
                v: sorted(b for b, kinds in succ.items() if not allowed.isdisjoint(kinds))
                for v, succ in self.out.items()}
        return adj.get(a, [])

    def edges_of(self, kind: str, within: set[int]) -> list[tuple[int, int]]:
        out = []
        for a in sorted(within):
            for b, kinds in sorted(self.out.get(a, {}).items()):
                if b in within and kind in kinds:
                    out.append((a, b))
        return out

    def count(self) -> dict[str, int]:
        c = {WW: 0, WR: 0, RW: 0, RT: 0}
        for succ in self.out.values():
            for kinds in succ.values():
                for k in kinds:
                    c[k] += 1
        return c


def _sccs(graph: _Graph, allowed: frozenset) -> list[list[int]]:
    """Tarjan's algorithm (iterative); components with more than one node, each sorted, in order."""
    index: dict[int, int] = {}
    low: dict[int, int] = {}
    on_stack: set[int] = set()
    stack: list[int] = []
    out: list[list[int]] = []
    counter = 0
    for root in graph.nodes():
        if root in index:
            continue
        work = [(root, iter(graph.succ(root, allowed)))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            v, it = work[-1]
            advanced = False
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(graph.succ(w, allowed))))
                    advanced = True
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                u = work[-1][0]
                low[u] = min(low[u], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    out.sort()
    return out


def _path(graph: _Graph, start: int, goal: int, allowed: frozenset, within: set[int],
          budget: list[int] | None = None) -> list[int] | None:
    """Shortest path start -> goal through ``within`` using edges of ``allowed`` kinds (BFS).

    ``budget`` (a one-element list) counts down the nodes expanded; at zero
    the search gives up and answers None.
    """
    if start == goal:
        return [start]
    parent = {start: None}
    queue = deque([start])
    while queue:
        v = queue.popleft()
        if budget is not None:
            if budget[0] <= 0:
                return None
            budget[0] -= 1
        for w in graph.succ(v, allowed):
            if w in parent or w not in within:
                continue
            parent[w] = v
            if w == goal:
                path = [w]
                while parent[path[-1]] is not None:
                    path.append(parent[path[-1]])
                return path[::-1]
            queue.append(w)
    return None


def _classify(kinds: list[str]) -> str:
    rw = [k == RW for k in kinds]
    n_rw = sum(rw)
    if n_rw == 0:
        name = "G1c" if WR in kinds else "G0"
    elif n_rw == 1:
        name = "G-single"
    else:
        adjacent = any(rw[i] and rw[(i + 1) % len(rw)] for i in range(len(rw)))
        name = "G2-item" if adjacent else "G-nonadjacent"
    return name + "-realtime" if RT in kinds else name


# (names accepted, designated edge kind, kinds allowed on the way back)
_SEARCHES = (
    ({"G0"}, WW, frozenset({WW})),
    ({"G1c"}, WR, frozenset({WW, WR})),
    ({"G-single"}, RW, frozenset({WW, WR})),
    ({"G2-item", "G-nonadjacent"}, RW, frozenset({WW, WR, RW})),
)
_RT_SEARCHES = (
    ({"G0-realtime"}, RT, frozenset({WW, RT})),
    ({"G1c-realtime"}, RT, frozenset({WW, WR, RT})),
    ({"G1c-realtime"}, WR, frozenset({WW, WR, RT})),
    ({"G-single-realtime"}, RW, frozenset({WW, WR, RT})),
    ({"G2-item-realtime", "G-nonadjacent-realtime"}, RW, frozenset({WW, WR, RW, RT})),
)


def _describe_cycle(graph: _Graph, nodes: list[int], first_kind: str, allowed: frozenset,
                    ops: dict[int, Op]) -> dict:
    steps = []
    for i, a in enumerate(nodes):
        b = nodes[(i + 1) % len(nodes)]
        kinds = graph.out[a][b]
        if i == 0:
            kind = first_kind
        else:
            kind = next(k for k in _PREFERENCE if k in kinds and k in allowed)
        steps.append({"from": a, "to": b, "type": kind, **kinds[kind]})
    name = _classify([s["type"] for s in steps])
    return {"type": name, "cycle": steps, "ops": [ops[n].to_dict() for n in nodes]}


def _find_cycles(graph: _Graph, realtime: bool, ops: dict[int, Op], max_tries: int) -> list[dict]:
    found: list[dict] = []
    seen_cycles: set[tuple] = set()
    searches = _SEARCHES + (_RT_SEARCHES if realtime else ())
    all_kinds = frozenset({WW, WR, RW, RT} if realtime else {WW, WR, RW})

    def canonical(nodes: list[int]) -> tuple:
        i = nodes.index(min(nodes))
        return tuple(nodes[i:] + nodes[:i])

    def record(cycle: dict, nodes: list[int]) -> bool:
        c = canonical(nodes)
        if c in seen_cycles:
            return False
        seen_cycles.add(c)
        found.append(cycle)
        return True

    for names, designated, back in searches:
        allowed = back | {designated}
        for comp in _sccs(graph, allowed):
            within = set(comp)
            budget = [4 * len(comp) + 1000]  # node expansions for this component and search
            for tries, (a, b) in enumerate(graph.edges_of(designated, within)):
                if tries >= max_tries or budget[0] <= 0:
                    break
                path = _path(graph, b, a, back, within, budget)
                if path is None:
                    continue
                nodes = [a, *path[:-1]]  # path runs b .. a
                cycle = _describe_cycle(graph, nodes, designated, back, ops)
                if cycle["type"] in names and record(cycle, nodes):
                    break
    # Whatever the targeted searches missed: at least one cycle per component.
    covered = [set(s["from"] for s in c["cycle"]) for c in found]
    for comp in _sccs(graph, all_kinds):
        within = set(comp)
        if any(c <= within for c in covered):
            continue
        a = comp[0]
        for b in graph.succ(a, all_kinds):
            if b not in within:
                continue
            path = _path(graph, b, a, all_kinds, within)
            if path is not None:
                nodes = [a, *path[:-1]]
                kinds = graph.out[a][b]
                first = next(k for k in _PREFERENCE if k in kinds and k in all_kinds)
                record(_describe_cycle(graph, nodes, first, all_kinds, ops), nodes)
                break
    return found


def _micro_ops(op: Op) -> list:
    if not isinstance(op.value, list):
        raise ValueError(f"list-append checker: txn value must be a list of micro-ops: {op!r}")
    out = []
    for mop in op.value:
        if not (isinstance(mop, list) and len(mop) == 3 and mop[0] in ("append", "r")):
            raise ValueError(f"list-append checker: bad micro-op {mop!r} in {op!r}")
        out.append(mop)
    return out


def check_list_append(history: History | Iterable[Op], *, consistency: str = STRICT_SERIALIZABLE,
                      max_tries: int = 64) -> ListAppendResult:
    """Check a list-append history against ``consistency``.

    ``consistency`` is ``"strict-serializable"`` (default: real-time edges
    included) or ``"serializable"``. ``max_tries`` bounds the designated
    edges tried per component and search when looking for a cycle of a
    particular class, as does a budget of breadth-first expansions; those
    bounds only limit how many cycles get classified and reported -- every
    component with a cycle still gets one, so the verdict is exact.
    """
    if consistency not in (STRICT_SERIALIZABLE, SERIALIZABLE):
        raise ValueError(f"unknown consistency model {consistency!r}")
    realtime = consistency == STRICT_SERIALIZABLE
    txns = list(history)
    for op in txns:
        if op.f != "txn":
            raise ValueError(f"list-append checker: unsupported op {op!r}")
    by_index = {op.index: op for op in txns}
    anomalies: dict[str, list[dict]] = {}

    def report(name: str, **detail: Any) -> None:
        anomalies.setdefault(name, []).append(detail)

    # --- who appended what ------------------------------------------------
    writer: dict[tuple, int] = {}  # (key, element) -> txn index
    appends: dict[int, dict[Any, list]] = {}  # txn -> key -> elements in order
    for op in txns:
        for f, k, v in _micro_ops(op):
            if f != "append":
                continue
            fk, fv = _freeze(k), _freeze(v)
            if (fk, fv) in writer:
                raise ValueError(f"list-append checker: {v!r} appended to {k!r} twice "
                                 f"(ops {writer[(fk, fv)]} and {op.index}); appended values must be unique per key")
            writer[(fk, fv)] = op.index
            appends.setdefault(op.index, {}).setdefault(fk, []).append(fv)

    # --- reads of ok txns, internal consistency, duplicates ------------------
    reads: list[tuple[int, Any, tuple]] = []  # (txn, key, value) in history order
    for op in txns:
        if op.outcome != OK:
            continue
        own = appends.get(op.index, {})
        known: dict[Any, list | None] = {}
        suffix: dict[Any, list] = {}
        done: set[tuple] = set()  # this txn's appends so far
        for f, k, v in _micro_ops(op):
            fk = _freeze(k)
            if f == "append":
                fv = _freeze(v)
                done.add((fk, fv))
                if known.get(fk) is not None:
                    known[fk].append(fv)
                else:
                    suffix.setdefault(fk, []).append(fv)
                continue
            value = _frozen_list(v)
            members = set(value)
            expected = known.get(fk)
            tail = suffix.get(fk, [])
            if expected is not None and list(value) != expected:
                report("internal", op=op.index, key=fk, expected=list(expected), read=list(value))
            elif expected is None and tail and list(value[-len(tail):]) != tail:
                report("internal", op=op.index, key=fk, expected_suffix=list(tail), read=list(value))
            future = [x for x in own.get(fk, ()) if x in members and (fk, x) not in done]
            if future:
                report("future-read", op=op.index, key=fk, read=list(value), elements=future)
            known[fk] = list(value)
            suffix[fk] = []
            if len(members) != len(value):
                dups = sorted({x for x in value if value.count(x) > 1}, key=_sort_key)
                report("duplicate-elements", op=op.index, key=fk, read=list(value), duplicates=dups)
            reads.append((op.index, fk, value))
    n_reads = len(reads)
    reads_of: dict[Any, list[tuple[int, tuple]]] = {}
    for t, k, value in reads:
        reads_of.setdefault(k, []).append((t, value))

    # --- version orders -----------------------------------------------------
    longest: dict[Any, tuple] = {}
    for k, rs in reads_of.items():
        longest[k] = max((value for _, value in rs), key=len)  # the first of the longest
    untrusted: set = set()
    for k, rs in reads_of.items():
        order = longest[k]
        reported_pairs: set = set()
        for t, value in rs:
            if order[:len(value)] != value:
                untrusted.add(k)
                if value not in reported_pairs:
                    reported_pairs.add(value)
                    report("incompatible-order", key=k, op=t, read=list(value), longest=list(order))
            elif len(set(value)) != len(value):
                untrusted.add(k)
    # Every element some read of k holds: the longest read, unless reads disagree.
    seen_elements: dict[Any, list] = {}
    for k, rs in reads_of.items():
        if k in untrusted:
            merged: dict = {}
            for _, value in rs:
                merged.update(dict.fromkeys(value))
            seen_elements[k] = list(merged)
        else:
            seen_elements[k] = list(dict.fromkeys(longest[k]))

    # --- committed txns: ok, or info with an observed append -----------------
    observed = {(k, x) for k, xs in seen_elements.items() for x in xs}
    committed: set[int] = {op.index for op in txns if op.outcome == OK}
    for op in txns:
        if op.outcome == INFO and any((k, x) in observed for k, xs in appends.get(op.index, {}).items()
                                      for x in xs):
            committed.add(op.index)

    # --- aborted, intermediate and unexpected reads -----------------------------
    for k, xs in seen_elements.items():
        for x in xs:
            w = writer.get((k, x))
            if w is not None and by_index[w].outcome != FAIL:
                continue
            readers = [t for t, value in reads_of[k] if x in value]
            if w is None:
                report("unexpected-element", op=readers[0], key=k, element=x, readers=len(readers))
            else:
                report("G1a", op=readers[0], key=k, element=x, writer=w, readers=len(readers))
    for t, k, value in reads:
        if value:
            last = value[-1]
            w = writer.get((k, last))
            if w is not None and w != t and by_index[w].outcome != FAIL and appends[w][k][-1] != last:
                report("G1b", op=t, key=k, element=last, writer=w, final=appends[w][k][-1])

    # --- the dependency graph ---------------------------------------------------
    graph = _Graph()
    for t, k, value in reads:
        if value:
            w = writer.get((k, value[-1]))
            if w is not None and w in committed:
                graph.add(w, t, WR, {"key": k, "value": value[-1]})
    keys_written: dict[Any, list[int]] = {}
    for t in sorted(appends):
        for k in appends[t]:
            keys_written.setdefault(k, []).append(t)
    # A committed txn's appends to k must show up as a prefix of them, in its order;
    # if not, the order is not to be trusted for inferring anything else either.
    for k, order in longest.items():
        if k in untrusted:
            continue
        position = {x: i for i, x in enumerate(order)}
        for t in keys_written.get(k, []):
            if t not in committed:
                continue
            where = [position.get(x) for x in appends[t][k]]
            seen_part = [p for p in where if p is not None]
            if where[:len(seen_part)] != seen_part or seen_part != sorted(seen_part):
                report("incompatible-order", key=k, txn=t, appended=list(appends[t][k]), longest=list(order))
                untrusted.add(k)
    for k, order in longest.items():
        if k in untrusted:
            continue
        position = {x: i for i, x in enumerate(order)}
        # ww along the version order, skipping elements without a committed writer;
        # next_writer[i]: the first committed writer at or after position i.
        writers = [writer.get((k, x)) for x in order]
        next_writer: list = [None] * (len(order) + 1)
        for i in range(len(order) - 1, -1, -1):
            w = writers[i]
            next_writer[i] = (w, order[i]) if w is not None and w in committed else next_writer[i + 1]
        prev_w = prev_x = None
        for x, w in zip(order, writers):
            if w is None or w not in committed:
                continue
            if prev_w is not None and prev_w != w:
                graph.add(prev_w, w, WW, {"key": k, "value": [prev_x, x]})
            prev_w, prev_x = w, x
        # committed txns with appends to k that no read saw: after every observed version
        unseen = []
        for t in keys_written.get(k, []):
            if t in committed:
                x = next((x for x in appends[t][k] if x not in position), None)
                if x is not None:
                    unseen.append((t, x))
        if prev_w is not None:
            for t, x in unseen:
                graph.add(prev_w, t, WW, {"key": k, "value": [prev_x, x]})
        # rw: a reader precedes the writer of the first later element
        for t, value in reads_of[k]:
            nxt = next_writer[len(value)]
            if nxt is not None:
                graph.add(t, nxt[0], RW, {"key": k, "value": nxt[1]})
            else:
                for u, x in unseen:
                    graph.add(t, u, RW, {"key": k, "value": x})
    # keys with appends but no read at all: nothing is ordered, but unseen appends
    # of committed txns still only matter through reads, so there is nothing to add.
    if realtime:
        _realtime_edges(graph, [by_index[t] for t in sorted(committed)])

    for cycle in _find_cycles(graph, realtime, by_index, max_tries):
        anomalies.setdefault(cycle["type"], []).append(cycle)

    edge_counts = graph.count()
    stats = {
        "txns": len(txns),
        "ok": sum(1 for op in txns if op.outcome == OK),
        "fail": sum(1 for op in txns if op.outcome == FAIL),
        "info": sum(1 for op in txns if op.outcome == INFO),
        "committed": len(committed),
        "reads": n_reads,
        "keys": len(longest),
        **{f"{k}_edges": v for k, v in edge_counts.items()},
    }
    if anomalies:
        verdict = INVALID
    elif n_reads == 0:
        verdict = UNKNOWN
    else:
        verdict = VALID
    return ListAppendResult(verdict, dict(sorted(anomalies.items())), stats)


def _realtime_edges(graph: _Graph, txns: list[Op]) -> None:
    """Edges a -> b for a completed before b was invoked, transitively reduced in the usual way.

    Walk events in time order (completions after invocations at equal times,
    since equal times are concurrent). ``frontier`` holds completed txns not
    yet known to precede a later completed txn; each invocation gets an edge
    from every frontier member, and a completion replaces in the frontier
    everything that had an edge into it. Reachability equals the full
    real-time order.
    """
    events = []
    for op in txns:
        events.append((op.invoke, 0, op.index))
        if op.outcome == OK:
            events.append((op.complete, 1, op.index))
    events.sort()
    frontier: set[int] = set()
    preds: dict[int, set[int]] = {}
    for _, kind, t in events:
        if kind == 0:
            preds[t] = set(frontier)
            for a in sorted(frontier):
                graph.add(a, t, RT, {})
        else:
            frontier -= preds.get(t, set())
            frontier.add(t)
