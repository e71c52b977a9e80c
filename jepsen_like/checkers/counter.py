"""The counter workload's checker: every read must lie within what the increments allow.

The workload increments counter keys (``incr``, value = the amount, which may
be negative) and reads them (``read``, ok value = the integer; ``None`` reads
as the initial value). For a read ``r`` of a key:

* an increment is **definite** if it is ok and completed strictly before ``r``
  was invoked: it must be in the value read;
* an increment is **possible** if it is ok or info and was invoked no later
  than ``r`` completed (an info increment may land at any time after its
  invocation; equal times count as concurrent); failed increments did not
  happen.

So with ``D`` the definite increments and ``P`` the possible ones (``D`` is a
subset of ``P``), ``r`` must read at least ``initial + sum(D) + sum of the
negative amounts in P \\ D`` and at most ``initial + sum(D) + sum of the
positive amounts in P \\ D``. With only positive amounts that is the classic
``[ok increments completed before the read's invoke, ok+info increments
invoked by its completion]``.

Bounds are necessary, not sufficient, when amounts differ (reads of 3 are
within [0, 12] for concurrent increments of 5 and 7, but no subset sums to
3). So when the concurrent increments are few enough, the checker also tries
the exact question -- is ``value - initial - sum(D)`` a subset sum of the
amounts in ``P \\ D`` -- and reports an ``unreachable`` violation if not.
That search (a bit-set knapsack) is capped: it runs only when the concurrent
amounts span at most ``exact_limit`` (sum of their absolute values); beyond
that only the bounds are checked (``exact`` is false for that read).

The checker uses per-read bounds only (like Jepsen's counter checker); it does
not check that reads are mutually consistent.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any

from jepsen_like.history import FAIL, INFO, INVALID, OK, UNKNOWN, VALID, History, Op, combine_verdicts

__all__ = ["CounterKeyResult", "CounterResult", "ReadBounds", "check_counter"]


@dataclass
class ReadBounds:
    op: int  # the read's index
    value: int
    lower: int
    upper: int
    exact: bool  # whether the subset-sum check ran
    violation: str | None = None  # None, "out-of-bounds" or "unreachable"

    def to_dict(self) -> dict:
        return {"op": self.op, "value": self.value, "lower": self.lower, "upper": self.upper,
                "exact": self.exact, "violation": self.violation}


@dataclass
class CounterKeyResult:
    key: Any
    verdict: str
    reads: list[ReadBounds]
    increments: dict[str, int]  # ok / info / fail counts
    acknowledged_sum: int  # sum of ok increments
    possible_sum: int  # sum of ok + info increments
    reason: str = ""

    @property
    def violations(self) -> list[ReadBounds]:
        return [r for r in self.reads if r.violation]

    def to_dict(self) -> dict:
        return {
            "key": self.key,
            "verdict": self.verdict,
            "reads": [r.to_dict() for r in self.reads],
            "violations": [r.to_dict() for r in self.violations],
            "increments": dict(self.increments),
            "acknowledged_sum": self.acknowledged_sum,
            "possible_sum": self.possible_sum,
            "reason": self.reason,
        }


@dataclass
class CounterResult:
    verdict: str
    keys: list[CounterKeyResult] = field(default_factory=list)

    @property
    def violations(self) -> list[ReadBounds]:
        return [v for k in self.keys for v in k.violations]

    def to_dict(self) -> dict:
        return {
            "checker": "counter",
            "verdict": self.verdict,
            "violations": len(self.violations),
            "reads": sum(len(k.reads) for k in self.keys),
            "keys": [k.to_dict() for k in self.keys],
        }


def _prefix(values: list[int]) -> list[int]:
    return [0, *accumulate(values)]


def _subset_sums(amounts: list[int], limit: int) -> int | None:
    """The sub-multiset sums of ``amounts`` as a bit set, or None if their span exceeds ``limit``.

    Bit ``offset + s`` is set when ``s`` is reachable, ``offset`` being minus
    the sum of the negative amounts. Repeated amounts are folded in by binary
    splitting (1, 2, 4, ... copies at a time), which reaches every count.
    """
    offset = -sum(a for a in amounts if a < 0)
    if offset + sum(a for a in amounts if a > 0) > limit:
        return None
    per_amount: dict[int, int] = {}
    for a in amounts:
        if a:
            per_amount[a] = per_amount.get(a, 0) + 1
    bits = 1 << offset
    for a in sorted(per_amount):
        left, take = per_amount[a], 1
        while left:
            take = min(take, left)
            shift = a * take
            bits |= (bits << shift) if shift > 0 else (bits >> -shift)
            left -= take
            take <<= 1
    return bits


def _check_key(key: Any, ops: list[Op], incr_f: str, read_f: str, initial: int,
               exact_limit: int) -> CounterKeyResult:
    incrs: list[Op] = []
    reads: list[Op] = []
    counts = {OK: 0, INFO: 0, FAIL: 0}
    for op in ops:
        if op.f == incr_f:
            if not isinstance(op.value, int) or isinstance(op.value, bool):
                raise ValueError(f"counter checker: increment amount must be an int: {op!r}")
            counts[op.outcome] += 1
            if op.outcome != FAIL:
                incrs.append(op)
        elif op.f == read_f:
            if op.outcome == OK:
                if op.value is not None and (not isinstance(op.value, int) or isinstance(op.value, bool)):
                    raise ValueError(f"counter checker: read value must be an int: {op!r}")
                reads.append(op)
        else:
            raise ValueError(f"counter checker: unsupported op {op!r}")

    # Definite: ok increments by completion time. Possible: ok+info by invocation time.
    definite = sorted((op for op in incrs if op.outcome == OK), key=lambda o: o.complete)
    d_times = [o.complete for o in definite]
    d_pos = _prefix([max(o.value, 0) for o in definite])
    d_neg = _prefix([min(o.value, 0) for o in definite])
    possible = sorted(incrs, key=lambda o: o.invoke)
    p_times = [o.invoke for o in possible]
    p_pos = _prefix([max(o.value, 0) for o in possible])
    p_neg = _prefix([min(o.value, 0) for o in possible])
    # For the exact check: ok increments by invocation, with the longest one's
    # duration, so a scan back from a read stops early; info ones are kept apart.
    oks_by_invoke = sorted(definite, key=lambda o: o.invoke)
    ok_invokes = [o.invoke for o in oks_by_invoke]
    longest = max((o.complete - o.invoke for o in definite), default=0)
    infos = [o for o in possible if o.outcome == INFO]

    out: list[ReadBounds] = []
    for r in reads:
        value = initial if r.value is None else r.value
        nd = bisect_left(d_times, r.invoke)  # ok increments with complete < r.invoke
        np_ = bisect_right(p_times, r.complete)  # increments with invoke <= r.complete
        lower = initial + d_pos[nd] + p_neg[np_]
        upper = initial + p_pos[np_] + d_neg[nd]
        rb = ReadBounds(r.index, value, lower, upper, exact=False)
        if value < lower or value > upper:
            rb.violation = "out-of-bounds"
        else:
            # Concurrent (possible but not definite) increments.
            concurrent = [o.value for o in infos if o.invoke <= r.complete]
            hi = bisect_right(ok_invokes, r.complete)
            j = hi - 1
            while j >= 0 and ok_invokes[j] + longest >= r.invoke:
                o = oks_by_invoke[j]
                if o.complete >= r.invoke:
                    concurrent.append(o.value)
                j -= 1
            target = value - initial - (d_pos[nd] + d_neg[nd])
            sums = _subset_sums(concurrent, exact_limit)
            if sums is not None:
                rb.exact = True
                offset = -sum(a for a in concurrent if a < 0)
                if offset + target < 0 or not sums >> (offset + target) & 1:
                    rb.violation = "unreachable"
        out.append(rb)

    ok_sum = sum(o.value for o in incrs if o.outcome == OK)
    result = CounterKeyResult(key, VALID, out, counts, ok_sum, sum(o.value for o in incrs))
    if any(rb.violation for rb in out):
        result.verdict = INVALID
    elif not out:
        result.verdict = UNKNOWN
        result.reason = "no ok read of the key"
    return result


def check_counter(history: History, *, incr_f: str = "incr", read_f: str = "read", initial: int = 0,
                  exact_limit: int = 100_000) -> CounterResult:
    """Check a counter history key by key (keys in order of first appearance; no ops: unknown)."""
    keys = [_check_key(k, ops, incr_f, read_f, initial, exact_limit) for k, ops in history.by_key().items()]
    return CounterResult(combine_verdicts(k.verdict for k in keys) if keys else UNKNOWN, keys)
