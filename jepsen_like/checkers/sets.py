"""The set workload's checker: lost, unexpected and recovered elements.

The workload adds unique elements to set keys (``add``, value = the element)
and reads whole sets (``read``, ok value = the elements). For each key:

* **final reads** are the ok reads invoked after every ok/fail add of the key
  had completed -- no acknowledged add can still be in flight. If there is no
  such read, the last ok read stands in, judged only on the adds that had
  completed before it was invoked (``quiescent`` is then false);
* **lost**: acknowledged (ok) adds that had completed before a final read was
  invoked and are missing from it -- the "acknowledged writes lost" figure;
* **unexpected**: elements in any ok read that no add ever attempted;
* **recovered**: ``info`` adds (unknown outcome) whose element shows up in a
  read -- they did happen; not an error;
* **failed-present**: ``fail`` adds (definitely did not happen) whose element
  shows up in a read -- an error;
* **duplicated**: elements a single read returned more than once -- an error.

The verdict is ``invalid`` if anything is lost, unexpected, failed-present or
duplicated; ``unknown`` if some key has adds but no ok read to judge them by;
``valid`` otherwise (an empty history is ``unknown``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jepsen_like.history import FAIL, INFO, INVALID, OK, UNKNOWN, VALID, History, Op, combine_verdicts

__all__ = ["SetKeyResult", "SetResult", "check_set"]


def _sorted(xs) -> list:
    xs = list(xs)
    try:
        return sorted(xs)
    except TypeError:
        return sorted(xs, key=lambda x: (type(x).__name__, repr(x)))


def _freeze(v: Any) -> Any:
    return tuple(_freeze(x) for x in v) if isinstance(v, list) else v


@dataclass
class SetKeyResult:
    key: Any
    verdict: str
    attempted: int
    acknowledged: int
    failed: int
    indeterminate: int
    final_reads: list[int]  # op indices
    quiescent: bool  # the final reads came after every ok/fail add completed
    final_size: int | None  # elements in the last final read
    lost: list = field(default_factory=list)
    unexpected: list = field(default_factory=list)
    recovered: list = field(default_factory=list)
    failed_present: list = field(default_factory=list)
    duplicated: list = field(default_factory=list)
    reason: str = ""

    @property
    def acknowledged_lost(self) -> int:
        return len(self.lost)

    def to_dict(self) -> dict:
        return {
            "key": self.key,
            "verdict": self.verdict,
            "attempted": self.attempted,
            "acknowledged": self.acknowledged,
            "failed": self.failed,
            "indeterminate": self.indeterminate,
            "final_reads": list(self.final_reads),
            "quiescent": self.quiescent,
            "final_size": self.final_size,
            "lost": list(self.lost),
            "unexpected": list(self.unexpected),
            "recovered": list(self.recovered),
            "failed_present": list(self.failed_present),
            "duplicated": list(self.duplicated),
            "acknowledged_lost": self.acknowledged_lost,
            "reason": self.reason,
        }


@dataclass
class SetResult:
    verdict: str
    keys: list[SetKeyResult]

    def _total(self, name: str) -> int:
        return sum(len(getattr(k, name)) if isinstance(getattr(k, name), list) else getattr(k, name)
                   for k in self.keys)

    @property
    def acknowledged_lost(self) -> int:
        """Acknowledged adds missing from the final read(s), over all keys."""
        return self._total("lost")

    def totals(self) -> dict[str, Any]:
        t = {name: self._total(name) for name in (
            "attempted", "acknowledged", "failed", "indeterminate",
            "lost", "unexpected", "recovered", "failed_present", "duplicated")}
        t["acknowledged_lost"] = t["lost"]
        t["lost_fraction"] = t["lost"] / t["acknowledged"] if t["acknowledged"] else 0.0
        return t

    def to_dict(self) -> dict:
        return {
            "checker": "set",
            "verdict": self.verdict,
            "totals": self.totals(),
            "keys": [k.to_dict() for k in self.keys],
        }


def _check_key(key: Any, ops: list[Op], add_f: str, read_f: str) -> SetKeyResult:
    adds = [op for op in ops if op.f == add_f]
    reads = [op for op in ops if op.f == read_f and op.outcome == OK]
    for op in ops:
        if op.f not in (add_f, read_f):
            raise ValueError(f"set checker: unsupported op {op!r}")
    status: dict = {}  # element -> outcome of its add
    for op in adds:
        el = _freeze(op.value)
        if el in status:
            raise ValueError(f"set checker: element {op.value!r} of key {key!r} added twice; elements must be unique")
        status[el] = op.outcome
    ok_adds = [op for op in adds if op.outcome == OK]
    n_failed = sum(1 for op in adds if op.outcome == FAIL)
    n_info = sum(1 for op in adds if op.outcome == INFO)

    unexpected, recovered, failed_present, duplicated = set(), set(), set(), set()
    read_sets: dict[int, set] = {}
    for r in reads:
        elements = [_freeze(x) for x in (r.value or [])]
        s = set(elements)
        if len(s) != len(elements):
            seen = set()
            for x in elements:
                if x in seen:
                    duplicated.add(x)
                seen.add(x)
        read_sets[r.index] = s
        for x in s:
            st = status.get(x)
            if st is None:
                unexpected.add(x)
            elif st == INFO:
                recovered.add(x)
            elif st == FAIL:
                failed_present.add(x)

    settled = max((op.complete for op in adds if op.outcome != INFO), default=None)
    finals = [r for r in reads if settled is None or r.invoke > settled]
    quiescent = bool(finals)
    if not finals and reads:
        finals = [max(reads, key=lambda r: (r.invoke, r.index))]
    lost = set()
    for r in finals:
        have = read_sets[r.index]
        for a in ok_adds:
            if a.complete < r.invoke and _freeze(a.value) not in have:
                lost.add(_freeze(a.value))

    result = SetKeyResult(
        key=key, verdict=VALID, attempted=len(adds), acknowledged=len(ok_adds), failed=n_failed,
        indeterminate=n_info, final_reads=[r.index for r in finals], quiescent=quiescent,
        final_size=len(read_sets[finals[-1].index]) if finals else None,
        lost=_sorted(lost), unexpected=_sorted(unexpected), recovered=_sorted(recovered),
        failed_present=_sorted(failed_present), duplicated=_sorted(duplicated))
    if lost or unexpected or failed_present or duplicated:
        result.verdict = INVALID
    elif not reads:
        result.verdict = UNKNOWN
        result.reason = "no ok read of the key"
    return result


def check_set(history: History, *, add_f: str = "add", read_f: str = "read") -> SetResult:
    """Check a set-workload history key by key (keys in order of first appearance; no ops: unknown)."""
    keys = [_check_key(k, ops, add_f, read_f) for k, ops in history.by_key().items()]
    return SetResult(combine_verdicts(k.verdict for k in keys) if keys else UNKNOWN, keys)
