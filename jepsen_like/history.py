"""The history model shared by the workloads and the checkers.

A history is a list of client operations. Each operation was *invoked* by one
client ``process`` at time ``invoke`` and *completed* at time ``complete``;
both times come from one monotonic clock (integers, e.g. nanoseconds). The
outcome is one of

* ``ok``   -- the operation happened, and ``value`` is its result;
* ``fail`` -- the operation definitely did not happen (``value`` is the
  argument it was invoked with);
* ``info`` -- unknown: the client gave up (timeout, connection reset, crash).
  The operation may or may not have taken effect, and if it did, it may have
  done so at any moment after ``invoke`` -- indefinitely, so ``complete`` (the
  moment the client gave up, or ``None`` if it never heard back at all) bounds
  nothing.

Real-time order: ``a`` precedes ``b`` when ``a`` completed (ok or fail) at a
time strictly before ``b`` was invoked. Equal timestamps are treated as
concurrent, which is the conservative choice: a coarse clock can only make
the checkers accept more, never reject a correct history.

Values follow Jepsen's conventions, normalised to JSON shapes (tuples and
sets become lists) so that a JSON round trip gives back an equal history:

===========  ======================  ============================================
``f``        invoke value            ok value
===========  ======================  ============================================
read         ``None``                the value read (``None`` = no such key)
write        the value               the value
cas          ``[old, new]``          ``[old, new]``
add          the element             the element
read (set)   ``None``                the elements (a list)
incr         the amount              the amount
read (ctr)   ``None``                the integer read
txn          micro-ops               micro-ops with reads filled in:
             ``[["append", k, v],    ``[["append", k, v], ["r", k, [1, 2]]]``
             ["r", k, None]]``
===========  ======================  ============================================

This module is pure: no clock, no randomness, no I/O besides (de)serialising
strings. It also holds the verdict vocabulary every checker answers in.
"""

from __future__ import annotations

import heapq
import json
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Mapping, Sequence

__all__ = [
    "FAIL",
    "INFO",
    "INVALID",
    "OK",
    "OUTCOMES",
    "UNKNOWN",
    "VALID",
    "History",
    "HistoryBuilder",
    "Op",
    "combine_verdicts",
    "normalise",
    "precedes",
]

OK = "ok"
FAIL = "fail"
INFO = "info"
OUTCOMES = (OK, FAIL, INFO)

# Checker verdicts. ``UNKNOWN`` means the checker could not decide (budget
# exhausted, nothing to judge); it is never to be read as ``VALID``.
VALID = "valid"
INVALID = "invalid"
UNKNOWN = "unknown"
_VERDICT_RANK = {VALID: 0, UNKNOWN: 1, INVALID: 2}


def combine_verdicts(verdicts: Iterable[str]) -> str:
    """The verdict of a conjunction: invalid beats unknown beats valid (empty -> valid)."""
    worst = VALID
    for v in verdicts:
        if v not in _VERDICT_RANK:
            raise ValueError(f"not a verdict: {v!r}")
        if _VERDICT_RANK[v] > _VERDICT_RANK[worst]:
            worst = v
    return worst


def _sort_token(x: Any) -> tuple:
    return (type(x).__name__, repr(x))


def normalise(value: Any) -> Any:
    """``value`` in JSON shape: tuples -> lists, sets -> sorted lists, recursively."""
    if isinstance(value, (list, tuple)):
        return [normalise(v) for v in value]
    if isinstance(value, (set, frozenset)):
        items = [normalise(v) for v in value]
        try:
            return sorted(items)
        except TypeError:
            return sorted(items, key=_sort_token)
    if isinstance(value, dict):
        return {k: normalise(v) for k, v in value.items()}
    return value


@dataclass(frozen=True, eq=True)
class Op:
    """One client operation, with its invocation and completion folded together.

    ``index`` is the operation's position in its history (order of
    invocation); checkers report operations by it.
    """

    index: int
    process: Any
    f: str
    key: Any
    value: Any
    invoke: int
    complete: int | None
    outcome: str

    __hash__ = None  # values may be lists; ops are identified by ``index``

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ValueError(f"op {self.index}: outcome must be one of {OUTCOMES}, not {self.outcome!r}")
        if not isinstance(self.invoke, int) or isinstance(self.invoke, bool):
            raise ValueError(f"op {self.index}: invoke time must be an int, not {self.invoke!r}")
        if self.complete is None:
            if self.outcome != INFO:
                raise ValueError(f"op {self.index}: only an info op may lack a completion time")
        elif not isinstance(self.complete, int) or isinstance(self.complete, bool):
            raise ValueError(f"op {self.index}: complete time must be an int, not {self.complete!r}")
        elif self.complete < self.invoke:
            raise ValueError(f"op {self.index}: completes ({self.complete}) before it is invoked ({self.invoke})")
        object.__setattr__(self, "value", normalise(self.value))

    @property
    def ok(self) -> bool:
        return self.outcome == OK

    @property
    def failed(self) -> bool:
        return self.outcome == FAIL

    @property
    def indeterminate(self) -> bool:
        return self.outcome == INFO

    @property
    def effective_complete(self) -> float:
        """When the op's effect is over for certain: ``complete`` for ok/fail, +inf for info."""
        if self.outcome == INFO or self.complete is None:
            return float("inf")
        return self.complete

    def to_dict(self) -> dict:
        return {
            "index": self.index,
            "process": self.process,
            "f": self.f,
            "key": self.key,
            "value": self.value,
            "invoke": self.invoke,
            "complete": self.complete,
            "outcome": self.outcome,
        }

    @classmethod
    def from_dict(cls, d: Mapping) -> "Op":
        return cls(
            index=d["index"],
            process=d["process"],
            f=d["f"],
            key=d.get("key"),
            value=d.get("value"),
            invoke=d["invoke"],
            complete=d.get("complete"),
            outcome=d["outcome"],
        )

    def __repr__(self) -> str:
        done = "…" if self.complete is None else self.complete
        key = "" if self.key is None else f" {self.key!r}"
        return f"<op {self.index} p{self.process} {self.f}{key} {self.value!r} {self.outcome} [{self.invoke},{done}]>"


def precedes(a: Op, b: Op) -> bool:
    """Real-time order: ``a`` definitely finished before ``b`` began."""
    return a.outcome != INFO and a.complete is not None and a.complete < b.invoke


class History(Sequence[Op]):
    """An immutable sequence of ops, indexed so that ``history[i].index == i``."""

    __slots__ = ("_ops",)

    def __init__(self, ops: Iterable[Op] = ()) -> None:
        ops = list(ops)
        for i, op in enumerate(ops):
            if not isinstance(op, Op):
                raise TypeError(f"history entries must be Op, not {type(op).__name__}")
            if op.index != i:
                raise ValueError(f"op at position {i} has index {op.index}; use History.of() to renumber")
        self._ops = tuple(ops)

    # --------------------------------------------------------------- building
    @classmethod
    def of(cls, ops: Iterable[Op | Mapping]) -> "History":
        """A history from ops or op dicts, renumbered in the given order."""
        out = []
        for i, op in enumerate(ops):
            d = op.to_dict() if isinstance(op, Op) else dict(op)
            d["index"] = i
            out.append(Op.from_dict(d))
        return cls(out)

    @classmethod
    def from_ops(cls, rows: Iterable[Sequence]) -> "History":
        """Compact literal form for tests and examples.

        Each row is ``(process, f, key, value, invoke, complete, outcome)``;
        ops are numbered in row order.
        """
        ops = []
        for i, row in enumerate(rows):
            process, f, key, value, invoke, complete, outcome = row
            ops.append(Op(i, process, f, key, value, invoke, complete, outcome))
        return cls(ops)

    @classmethod
    def from_events(cls, events: Iterable[Mapping]) -> "History":
        """Pair Jepsen-style invoke/complete events into ops.

        Each event is a mapping with ``type`` (``"invoke"``, ``"ok"``,
        ``"fail"`` or ``"info"``), ``process``, ``time`` and optionally
        ``f``, ``key`` and ``value``. Events of one process must alternate
        invoke, completion, invoke... (a process has at most one op in
        flight). An invoke left without a completion becomes an ``info`` op
        that never completed. A completion carries the result for ``ok``;
        ``fail`` and ``info`` ops keep the invoke's value. The completion of
        an ``info`` op may have ``time`` ``None``.
        """
        builder = HistoryBuilder()
        open_by_process: dict[Any, int] = {}
        for n, ev in enumerate(events):
            kind = ev["type"]
            process = ev["process"]
            if kind == "invoke":
                if process in open_by_process:
                    raise ValueError(f"event {n}: process {process!r} invokes while an op is still in flight")
                open_by_process[process] = builder.invoke(
                    process, ev["f"], ev.get("key"), ev.get("value"), time=ev["time"])
            elif kind in OUTCOMES:
                if process not in open_by_process:
                    raise ValueError(f"event {n}: completion for process {process!r} with nothing in flight")
                handle = open_by_process.pop(process)
                pending = builder._pending[handle]
                if "f" in ev and ev["f"] is not None and ev["f"] != pending["f"]:
                    raise ValueError(f"event {n}: completion f {ev['f']!r} does not match invoke f {pending['f']!r}")
                if kind == OK and "value" in ev:
                    builder.complete(handle, kind, ev["value"], time=ev["time"])
                else:
                    builder.complete(handle, kind, time=ev["time"])
            else:
                raise ValueError(f"event {n}: unknown event type {kind!r}")
        return builder.build()

    # ------------------------------------------------------------- exporting
    def to_events(self) -> list[dict]:
        """Invoke/complete events in time order; ``from_events`` inverts it.

        The round trip is exact for histories numbered in order of invocation
        (as ``HistoryBuilder`` and ``from_events`` number them); otherwise the
        ops come back renumbered in that order.

        Events of each process stay in that process's order; across processes
        events are merged by time (completions before invocations at equal
        times). An info op that never completed gets an ``info`` event with
        ``time`` ``None``.
        """
        per_process: dict[Any, list[tuple]] = {}
        order: list[Any] = []
        last_done: dict[Any, Op] = {}
        for op in sorted(self._ops, key=lambda o: (o.invoke, o.index)):
            if op.process not in per_process:
                per_process[op.process] = []
                order.append(op.process)
            prev = last_done.get(op.process)
            if prev is not None and prev.complete is not None and prev.complete > op.invoke:
                raise ValueError(f"process {op.process!r} has overlapping ops {prev.index} and {op.index}; "
                                 "events cannot express that")
            last_done[op.process] = op
            per_process[op.process].append((op.invoke, 1, op.index, {
                "type": "invoke", "process": op.process, "f": op.f, "key": op.key,
                "value": _invoke_value(op), "time": op.invoke,
            }))
            done = op.complete if op.complete is not None else op.invoke
            per_process[op.process].append((done, 0, op.index, {
                "type": op.outcome, "process": op.process, "f": op.f, "key": op.key,
                "value": op.value, "time": op.complete,
            }))
        # Merge: only each process's next event is eligible, so per-process order holds.
        heap = []
        cursors = {p: 0 for p in per_process}
        for rank, p in enumerate(order):
            at, kind, idx, _ = per_process[p][0]
            heapq.heappush(heap, (at, kind, idx, rank, p))
        out = []
        while heap:
            _, _, _, rank, p = heapq.heappop(heap)
            i = cursors[p]
            out.append(per_process[p][i][3])
            cursors[p] = i + 1
            if i + 1 < len(per_process[p]):
                at, kind, idx, _ = per_process[p][i + 1]
                heapq.heappush(heap, (at, kind, idx, rank, p))
        return out

    def to_dicts(self) -> list[dict]:
        return [op.to_dict() for op in self._ops]

    @classmethod
    def from_dicts(cls, rows: Iterable[Mapping]) -> "History":
        return cls(Op.from_dict(r) for r in rows)

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps({"ops": self.to_dicts()}, **kwargs)

    @classmethod
    def from_json(cls, text: str) -> "History":
        data = json.loads(text)
        return cls.from_dicts(data["ops"] if isinstance(data, dict) else data)

    # --------------------------------------------------------------- queries
    def __len__(self) -> int:
        return len(self._ops)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return list(self._ops[i])
        return self._ops[i]

    def __iter__(self) -> Iterator[Op]:
        return iter(self._ops)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, History) and self._ops == other._ops

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"History({list(self._ops)!r})"

    def keys(self) -> list:
        """Distinct keys in order of first appearance (deterministic)."""
        seen: dict = {}
        for op in self._ops:
            if op.key not in seen:
                seen[op.key] = None
        return list(seen)

    def by_key(self) -> dict[Any, list[Op]]:
        """Ops grouped by key, keys in order of first appearance, ops in history order."""
        out: dict[Any, list[Op]] = {}
        for op in self._ops:
            out.setdefault(op.key, []).append(op)
        return out

    def counts(self) -> dict[str, int]:
        """How many ops ended ok / fail / info."""
        c = {OK: 0, FAIL: 0, INFO: 0}
        for op in self._ops:
            c[op.outcome] += 1
        return c


def _invoke_value(op: Op) -> Any:
    """What the op was invoked with: an ok op's value is its result, so blank what was read."""
    if op.outcome != OK:
        return op.value
    if op.f == "read":
        return None
    if op.f == "txn" and isinstance(op.value, list):
        return _txn_invoke_value(op.value)
    return op.value


def _txn_invoke_value(micro_ops: list) -> list:
    """A txn's invoke value: its micro-ops with the read results blanked."""
    out = []
    for mop in micro_ops:
        if isinstance(mop, list) and len(mop) == 3 and mop[0] == "r":
            out.append([mop[0], mop[1], None])
        else:
            out.append(mop)
    return out


class HistoryBuilder:
    """Record ops as they happen: ``invoke`` returns a handle, ``complete`` closes it.

    Times are supplied by the caller (from its one monotonic clock); the
    builder never reads a clock. ``build()`` turns every op still in flight
    into an ``info`` op that never completed. Ops are numbered in order of
    invocation.
    """

    def __init__(self) -> None:
        self._pending: list[dict] = []

    def invoke(self, process: Any, f: str, key: Any = None, value: Any = None, *, time: int) -> int:
        self._pending.append({
            "process": process, "f": f, "key": key, "value": normalise(value),
            "invoke": time, "complete": None, "outcome": None,
        })
        return len(self._pending) - 1

    _NO_VALUE = object()

    def complete(self, handle: int, outcome: str, value: Any = _NO_VALUE, *, time: int | None) -> None:
        """Close op ``handle``. ``value`` (the result) is kept only for ``ok``."""
        rec = self._pending[handle]
        if rec["outcome"] is not None:
            raise ValueError(f"op {handle} completed twice")
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}, not {outcome!r}")
        rec["outcome"] = outcome
        rec["complete"] = time
        if outcome == OK and value is not self._NO_VALUE:
            rec["value"] = normalise(value)

    def build(self) -> History:
        ops = []
        for i, rec in enumerate(self._pending):
            outcome = rec["outcome"] or INFO
            complete = rec["complete"] if rec["outcome"] else None
            ops.append(Op(i, rec["process"], rec["f"], rec["key"], rec["value"], rec["invoke"], complete, outcome))
        return History(ops)
