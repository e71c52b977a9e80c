"""Linearizability of registers: Wing & Gong's search with Lowe's memoisation, split per key.

The search (Wing & Gong 1993, with the memoisation of Lowe 2017, as in
Knossos and Porcupine) walks a doubly linked list of call and return entries
ordered by time. At a call entry it tries to *linearize* that op now: apply it
to the model, and if the model accepts it and the configuration (set of
linearized ops, model state) was never seen before, lift the
op's call and return entries out of the list and restart from the head.
Reaching a return entry means the op it belongs to was not linearized before
it returned, so the search backtracks: undo the most recent linearization and
try the next candidate after it. The memo of configurations makes the search
finite: two partial linearizations with the same ops and the same resulting
state have the same futures.

Linearizability is compositional (Herlihy & Wing's locality, "P-
compositionality" in Lowe's terms): a history of independent registers is
linearizable iff each key's sub-history is, so each key is searched alone.

Outcomes: ``fail`` ops did not happen and are dropped; ``info`` ops may take
effect at any point after their invocation, or never: their return entries sit
after every other entry, so the search succeeds as soon as every ``ok`` op is
linearized, whichever info ops remain. An info read has no effect and is
dropped. Real-time order is strict (see ``jepsen_like.history.precedes``):
an op completing at the very time another is invoked counts as concurrent.

Two things keep long histories cheap. The memo stores the linearized set not
as a bitmask over the whole history but as (one past the highest op
linearized, the ops below it that are not): the same set, sized by the
concurrency instead of the history's length. And info writes and cas whose
value nobody observed are dropped before the search (``RegisterModel.prune``
explains why that is exact): writes lost by crashed clients cost nothing.

The search is still exponential in the number of operations in flight at
once on one key, so it has a budget -- a number of configurations per key,
and an optional deadline read through an injected clock function. A key
whose search runs out of budget is ``unknown``, and so is the whole history
unless another key is ``invalid``. Unknown is never reported as valid. (On a
simulated register with ten clients on one key, twenty thousand ops check in
about a second; at around twenty concurrent clients per key the default
budget starts to run out.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from jepsen_like.history import FAIL, INFO, INVALID, OK, UNKNOWN, VALID, History, Op, combine_verdicts

__all__ = ["KeyResult", "LinearizabilityResult", "RegisterModel", "Witness", "check_linearizable"]

INCONSISTENT = object()  # a model's answer when an op cannot happen in a state


def _freeze(v: Any) -> Any:
    if isinstance(v, list):
        return tuple(_freeze(x) for x in v)
    return v


class RegisterModel:
    """A register with ``read``, ``write`` and ``cas`` (``value`` = ``[old, new]``).

    ``initial`` is the value before any write (``None``: the key does not exist).
    A model needs ``initial``, ``relevant(op)`` (does the op take part in the
    search) and ``step(state, op)`` (the new state, or ``INCONSISTENT``);
    states must be hashable. It may have ``prune(ops)``, which returns an
    equivalent, smaller list of ops to search.
    """

    FS = ("read", "write", "cas")

    def __init__(self, initial: Any = None) -> None:
        self.initial = _freeze(initial)

    def relevant(self, op: Op) -> bool:
        if op.f not in self.FS:
            raise ValueError(f"register model: unsupported op {op!r}")
        if op.outcome == FAIL:
            return False  # definitely did not happen
        if op.outcome == INFO and op.f == "read":
            return False  # an unknown read constrains nothing and changes nothing
        if op.f == "cas" and not (isinstance(op.value, list) and len(op.value) == 2):
            raise ValueError(f"cas value must be [old, new]: {op!r}")
        return True

    def prune(self, ops: list[Op]) -> list[Op]:
        """Drop info writes and cas whose new value nobody observed.

        If no ok read returns ``v`` and no cas expects ``v``, then wherever an
        info op writing ``v`` is linearized, the next op can only be another
        write (a read would have to return ``v``, a cas would have to expect
        it), which overwrites ``v``: the info op changes nothing and may as
        well never have happened. Dropping it keeps the verdict exact and
        stops writes lost by crashed clients from blowing up the search.
        Repeated until nothing more can go, since dropping an info cas can
        leave another value unobserved.
        """
        ops = list(ops)
        while True:
            observed = set()
            for op in ops:
                if op.f == "read" and op.outcome == OK:
                    observed.add(_freeze(op.value))
                elif op.f == "cas":
                    observed.add(_freeze(op.value[0]))
            keep = [op for op in ops if not (op.outcome == INFO and op.f in ("write", "cas") and
                                             _freeze(op.value if op.f == "write" else op.value[1]) not in observed)]
            if len(keep) == len(ops):
                return keep
            ops = keep

    def step(self, state: Any, op: Op) -> Any:
        f = op.f
        if f == "read":
            return state if _freeze(op.value) == state else INCONSISTENT
        if f == "write":
            return _freeze(op.value)
        old, new = op.value
        # An info cas linearized where the compare fails is a no-op, the same as
        # never linearizing it -- so it only needs considering where it succeeds.
        return _freeze(new) if _freeze(old) == state else INCONSISTENT

    def describe(self, state: Any, op: Op) -> str:
        if op.f == "read":
            return f"read {op.value!r} while the register held {state!r}"
        if op.f == "cas":
            return f"cas {op.value[0]!r}->{op.value[1]!r} while the register held {state!r}"
        return f"{op.f} {op.value!r}"


@dataclass
class Witness:
    """Why a key is not linearizable.

    ``op`` is the operation that could not be linearized before it returned, at
    the deepest point the search reached; ``linearized`` is that longest
    partial linearization (op indices in order) and ``state`` the model state
    after it; ``window`` is the ops around ``op`` (those overlapping it in time
    and the last few linearized ones), by index in invocation order.
    """

    key: Any
    op: Op
    linearized: list[int]
    state: Any
    window: list[Op]
    explanation: str

    def to_dict(self) -> dict:
        return {
            "key": self.key,
            "op": self.op.to_dict(),
            "linearized": list(self.linearized),
            "state": self.state,
            "window": [o.to_dict() for o in self.window],
            "explanation": self.explanation,
        }


@dataclass
class KeyResult:
    key: Any
    verdict: str
    ops: int  # ops that took part in the search (fail ops and info reads are dropped)
    states: int  # configurations explored
    witness: Witness | None = None
    reason: str = ""  # for unknown: which budget ran out

    def to_dict(self) -> dict:
        return {
            "key": self.key,
            "verdict": self.verdict,
            "ops": self.ops,
            "states": self.states,
            "witness": self.witness.to_dict() if self.witness else None,
            "reason": self.reason,
        }


@dataclass
class LinearizabilityResult:
    verdict: str
    keys: list[KeyResult] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return self.verdict == VALID

    @property
    def states(self) -> int:
        return sum(k.states for k in self.keys)

    @property
    def witness(self) -> Witness | None:
        """The first invalid key's witness."""
        for k in self.keys:
            if k.witness is not None:
                return k.witness
        return None

    def counts(self) -> dict[str, int]:
        c = {VALID: 0, INVALID: 0, UNKNOWN: 0}
        for k in self.keys:
            c[k.verdict] += 1
        return c

    def to_dict(self) -> dict:
        return {
            "checker": "linearizable",
            "verdict": self.verdict,
            "keys": [k.to_dict() for k in self.keys],
            "key_verdicts": self.counts(),
            "states": self.states,
        }


class _OutOfBudget(Exception):
    def __init__(self, reason: str, explored: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.explored = explored


_CALL, _RET, _INFO_RET = 0, 1, 2
_CLOCK_EVERY = 256  # configurations between clock reads


def _search(key: Any, ops: list[Op], model, max_states: int | None,
            deadline: float | None, clock: Callable[[], float] | None) -> KeyResult:
    n = len(ops)
    if n == 0:
        return KeyResult(key, VALID, 0, 0)
    # Local op numbers follow invocation order, so the linearized set is nearly
    # always "every op up to some point, but a few": see the configuration below.
    ops = sorted(ops, key=lambda o: (o.invoke, o.index))
    inf = float("inf")
    sortable = []
    for i, op in enumerate(ops):
        sortable.append((op.invoke, _CALL, i))
        if op.outcome == OK:
            sortable.append((op.complete, _RET, i))
        else:
            sortable.append((inf, _INFO_RET, i))
    # Calls sort before returns at equal times (concurrent); ties by op order.
    sortable.sort()
    m = len(sortable)
    tail = m + 1
    kind = [0] * (m + 2)
    opi = [0] * (m + 2)
    match = [0] * (m + 2)
    nxt = list(range(1, m + 3))
    prv = list(range(-1, m + 1))
    call_node = [0] * n
    for pos, (_, k, i) in enumerate(sortable, start=1):
        kind[pos] = k
        opi[pos] = i
        if k == _CALL:
            call_node[i] = pos
        else:
            match[call_node[i]] = pos

    def lift(c: int) -> None:
        r = match[c]
        nxt[prv[c]] = nxt[c]
        prv[nxt[c]] = prv[c]
        nxt[prv[r]] = nxt[r]
        prv[nxt[r]] = prv[r]

    def unlift(c: int) -> None:
        r = match[c]
        prv[nxt[r]] = r
        nxt[prv[r]] = r
        prv[nxt[c]] = c
        nxt[prv[c]] = c

    step = model.step
    cache: set = set()
    stack: list[int] = []
    saved: list[tuple] = []
    state = model.initial
    # The linearized set is {0 .. g-1} minus holes, g-1 being the highest op
    # linearized so far; (g, holes, state) is the memo key. It is Lowe's bitmask
    # in another form, sized by the concurrency (and the info ops never
    # linearized) instead of by the length of the history.
    g = 0
    holes: frozenset = frozenset()
    explored = 0
    best_depth = -1
    best: tuple | None = None
    node = nxt[0]
    while True:
        k = kind[node] if node != tail else _INFO_RET
        if k == _INFO_RET:
            return KeyResult(key, VALID, n, explored)
        i = opi[node]
        if k == _CALL:
            new = step(state, ops[i])
            if new is not INCONSISTENT:
                if i >= g:
                    ng, nholes = i + 1, (holes | frozenset(range(g, i)) if i > g else holes)
                else:
                    ng, nholes = g, holes - {i}
                config = (ng, nholes, new)
                if config not in cache:
                    cache.add(config)
                    explored += 1
                    if max_states is not None and explored > max_states:
                        raise _OutOfBudget(f"state budget of {max_states} exhausted", explored)
                    if deadline is not None and explored % _CLOCK_EVERY == 0 and clock() >= deadline:
                        raise _OutOfBudget("time budget exhausted", explored)
                    stack.append(node)
                    saved.append((state, g, holes))
                    state, g, holes = new, ng, nholes
                    lift(node)
                    node = nxt[0]
                    continue
            node = nxt[node]
            continue
        # A return entry: op i returned without being linearized. Backtrack.
        if len(stack) > best_depth:
            best_depth = len(stack)
            best = (i, [opi[c] for c in stack], state)
        if not stack:
            return _invalid(key, ops, model, n, explored, best)
        c = stack.pop()
        state, g, holes = saved.pop()
        unlift(c)
        node = nxt[c]


def _invalid(key: Any, ops: list[Op], model, n: int, explored: int, best: tuple) -> KeyResult:
    fail_i, lin_idx, state = best
    bad = ops[fail_i]
    lo, hi = bad.invoke, bad.complete
    window_local = {fail_i}
    for j, o in enumerate(ops):
        if o.invoke <= hi and o.effective_complete >= lo:
            window_local.add(j)
    window_local.update(lin_idx[-3:])
    window = sorted((ops[j] for j in window_local), key=lambda o: o.index)
    describe = getattr(model, "describe", None)
    what = describe(state, bad) if describe else f"{bad.f} {bad.value!r} cannot be placed"
    explanation = (f"op {bad.index} ({what}) returned before it could be linearized: the longest "
                   f"linearizable prefix ({len(lin_idx)} ops) leaves the register at {state!r}, and no "
                   f"order of the ops concurrent with it explains the result")
    witness = Witness(key, bad, [ops[j].index for j in lin_idx], state, window, explanation)
    return KeyResult(key, INVALID, n, explored, witness)


def check_linearizable(history: History, *, model_factory: Callable[[], Any] | None = None,
                       max_states: int | None = 500_000, time_limit: float | None = None,
                       clock: Callable[[], float] | None = None) -> LinearizabilityResult:
    """Check a register history, key by key.

    ``model_factory`` builds a fresh model per key (default: ``RegisterModel()``,
    an initially empty register). ``max_states`` bounds the configurations
    explored per key; ``time_limit`` (seconds, measured with the injected
    ``clock`` function) bounds the whole check. Keys are checked in order of
    first appearance; after the deadline passes the remaining keys are
    ``unknown`` without being searched.
    """
    if (time_limit is None) != (clock is None):
        raise ValueError("time_limit and clock go together")
    factory = model_factory or RegisterModel
    deadline = clock() + time_limit if clock is not None else None
    results: list[KeyResult] = []
    for key, key_ops in history.by_key().items():
        model = factory()
        relevant = [op for op in key_ops if model.relevant(op)]
        if hasattr(model, "prune"):
            relevant = model.prune(relevant)
        if deadline is not None and clock() >= deadline:
            results.append(KeyResult(key, UNKNOWN, len(relevant), 0, reason="time budget exhausted"))
            continue
        try:
            results.append(_search(key, relevant, model, max_states, deadline, clock))
        except _OutOfBudget as e:
            results.append(KeyResult(key, UNKNOWN, len(relevant), e.explored, reason=e.reason))
    return LinearizabilityResult(combine_verdicts(r.verdict for r in results), results)
