"""The jepsen_like history model and checkers, against brute-force oracles.

Every checker is compared with an independent, deliberately naive oracle on
thousands of small random histories, from three kinds of generators:

* simulations of a correct system (a register / set / counter / serializable
  database whose operations take effect at a random instant inside their
  interval, with ok, fail and info outcomes) -- these must be judged valid;
* the same simulations with injected faults or corrupted results;
* plain random histories.

Seeded loops make every run identical (a failing seed is printed); hypothesis
adds a randomised search on top for linearizability and counters. All pure
CPU, no servers: the whole file runs in well under a minute.
"""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jepsen_like.checkers import (
    INVALID,
    UNKNOWN,
    VALID,
    check_counter,
    check_linearizable,
    check_list_append,
    check_set,
    combine_verdicts,
)
from jepsen_like.checkers.linearizable import RegisterModel
from jepsen_like.history import FAIL, INFO, OK, History, HistoryBuilder, Op, precedes

H = History.from_ops


# ============================================================ history model

def test_op_validation():
    with pytest.raises(ValueError):
        Op(0, 0, "read", "x", None, 5, 4, OK)  # completes before invoke
    with pytest.raises(ValueError):
        Op(0, 0, "read", "x", None, 5, 6, "maybe")
    with pytest.raises(ValueError):
        Op(0, 0, "read", "x", None, 5, None, OK)  # only info may lack a completion
    with pytest.raises(ValueError):
        Op(0, 0, "read", "x", None, 5.0, 6, OK)
    with pytest.raises(ValueError):
        History([Op(1, 0, "read", "x", None, 0, 1, OK)])  # index must match position
    op = Op(0, 0, "cas", "x", (1, 2), 0, None, INFO)
    assert op.value == [1, 2] and op.effective_complete == float("inf")
    assert Op(0, 0, "read", "s", {3, 1, 2}, 0, 1, OK).value == [1, 2, 3]


def test_precedes_is_strict():
    a = Op(0, 0, "write", "x", 1, 0, 5, OK)
    assert precedes(a, Op(1, 1, "read", "x", 1, 6, 7, OK))
    assert not precedes(a, Op(1, 1, "read", "x", 1, 5, 7, OK))  # equal times: concurrent
    assert not precedes(Op(0, 0, "write", "x", 1, 0, 5, INFO), Op(1, 1, "read", "x", 1, 9, 10, OK))
    assert precedes(Op(0, 0, "write", "x", 1, 0, 5, FAIL), Op(1, 1, "read", "x", 1, 9, 10, OK))


def test_builder_and_events():
    b = HistoryBuilder()
    w = b.invoke(0, "write", "x", 1, time=0)
    r = b.invoke(1, "read", "x", time=1)
    b.complete(r, OK, 1, time=3)
    b.complete(w, OK, time=4)
    t = b.invoke(2, "txn", None, [["append", "k", 1], ["r", "k", None]], time=5)
    b.complete(t, OK, [["append", "k", 1], ["r", "k", [1]]], time=6)
    b.invoke(3, "write", "x", 2, time=7)  # never completes
    h = b.build()
    assert [op.outcome for op in h] == [OK, OK, OK, INFO]
    assert h[1].value == 1 and h[0].value == 1 and h[3].complete is None
    events = h.to_events()
    assert [e["type"] for e in events] == ["invoke", "invoke", "ok", "ok", "invoke", "ok", "invoke", "info"]
    assert events[4]["value"] == [["append", "k", 1], ["r", "k", None]]  # invoke carries no read results
    assert History.from_events(events) == h
    assert History.from_json(h.to_json()) == h
    assert h.counts() == {OK: 3, FAIL: 0, INFO: 1}
    assert h.keys() == ["x", None]
    with pytest.raises(ValueError):
        b.complete(r, OK, time=9)
    with pytest.raises(ValueError):
        History.from_events([{"type": "invoke", "process": 0, "f": "read", "time": 0},
                             {"type": "invoke", "process": 0, "f": "read", "time": 1}])
    with pytest.raises(ValueError):
        History.from_events([{"type": "ok", "process": 0, "time": 0}])


def test_events_overlapping_process_rejected():
    h = H([(0, "write", "x", 1, 0, 10, OK), (0, "write", "x", 2, 5, 12, OK)])
    with pytest.raises(ValueError):
        h.to_events()


def test_combine_verdicts():
    assert combine_verdicts([]) == VALID
    assert combine_verdicts([VALID, UNKNOWN]) == UNKNOWN
    assert combine_verdicts([UNKNOWN, INVALID, VALID]) == INVALID
    with pytest.raises(ValueError):
        combine_verdicts(["fine"])


def test_history_round_trips_on_random_histories():
    for seed in range(300):
        rng = random.Random(seed)
        h = sim_register(rng, rng.randint(0, 12), keys=("x", "y"))
        assert History.from_json(h.to_json()) == h, seed
        assert History.from_events(h.to_events()) == h, seed
        assert History.from_events(json.loads(json.dumps(h.to_events()))) == h, seed
        la = sim_list_append(rng, rng.randint(0, 8), mode="serializable")
        assert History.from_json(la.to_json()) == la, seed
        assert History.from_events(la.to_events()) == la, seed


# ============================================================ linearizability

def _reg_apply(state: dict, op: Op) -> dict | None:
    """Sequential register semantics for the oracle (a dict of registers, written out plainly)."""
    cur = state.get(op.key)
    if op.f == "read":
        return state if op.value == cur else None
    if op.f == "write":
        new = dict(state)
        new[op.key] = op.value
        return new
    old, new_value = op.value
    if cur == old:
        new = dict(state)
        new[op.key] = new_value
        return new
    if op.outcome == INFO:
        return state  # an unknown cas whose compare failed changed nothing
    return None


def oracle_linearizable(history: History) -> bool:
    """Try every order of the ops that respects real time, over all keys at once.

    ``fail`` ops are left out; ``info`` ops may be placed (anywhere after the
    ok ops that completed before they were invoked) or left out; an info
    read constrains nothing. No memoisation, no per-key split.
    """
    ops = [op for op in history if op.outcome != FAIL and not (op.outcome == INFO and op.f == "read")]
    n = len(ops)
    n_ok = sum(1 for op in ops if op.outcome == OK)
    preds = [[j for j in range(n) if ops[j].outcome == OK and ops[j].complete < ops[i].invoke] for i in range(n)]

    def dfs(placed: int, state: dict, oks: int) -> bool:
        if oks == n_ok:
            return True
        for i in range(n):
            if placed >> i & 1 or any(not placed >> j & 1 for j in preds[i]):
                continue
            new = _reg_apply(state, ops[i])
            if new is not None and dfs(placed | 1 << i, new, oks + (ops[i].outcome == OK)):
                return True
        return False

    return dfs(0, {}, 0)


def _proc_times(rng: random.Random, n_procs: int, max_dur: int = 6):
    clock = [rng.randint(0, 3) for _ in range(n_procs)]

    def next_interval(p: int) -> tuple[int, int]:
        inv = clock[p] + rng.randint(0, 3)
        comp = inv + rng.randint(0, max_dur)
        clock[p] = comp + rng.randint(0, 2)
        return inv, comp

    return next_interval


def sim_register(rng: random.Random, n_ops: int, n_procs: int = 3, keys=("x",),
                 p_info: float = 0.15, p_fail: float = 0.1) -> History:
    """A real (linearizable) register: each op takes effect at one instant inside its interval.

    Info ops take effect (or not) at an instant that may lie long after their
    completion time; failed ops never take effect.
    """
    interval = _proc_times(rng, n_procs)
    plan = []
    fresh = iter(range(1, 10 ** 6))
    written = {k: [None] for k in keys}
    for i in range(n_ops):
        p = rng.randrange(n_procs)
        inv, comp = interval(p)
        key = rng.choice(keys)
        f = rng.choice(("read", "write", "write", "cas"))
        if f == "write":
            arg = next(fresh)
            written[key].append(arg)
        elif f == "cas":
            arg = [rng.choice(written[key]), next(fresh)]
            written[key].append(arg[1])
        else:
            arg = None
        roll = rng.random()
        outcome = INFO if roll < p_info else FAIL if roll < p_info + p_fail else OK
        if outcome == OK:
            lp = rng.uniform(inv, comp)
        elif outcome == INFO:
            lp = rng.uniform(inv, comp + 15) if rng.random() < 0.5 else None
        else:
            lp = None
        plan.append({"i": i, "p": p, "f": f, "key": key, "arg": arg, "inv": inv,
                     "comp": None if outcome == INFO and rng.random() < 0.3 else comp,
                     "outcome": outcome, "lp": lp})
    state: dict = {}
    for step in sorted((s for s in plan if s["lp"] is not None), key=lambda s: (s["lp"], s["i"])):
        cur = state.get(step["key"])
        if step["f"] == "read":
            step["result"] = cur
        elif step["f"] == "write":
            state[step["key"]] = step["arg"]
        elif cur == step["arg"][0]:
            state[step["key"]] = step["arg"][1]
        elif step["outcome"] == OK:
            step["outcome"] = FAIL  # the compare failed: the client is told so
    b = HistoryBuilder()
    for step in sorted(plan, key=lambda s: (s["inv"], s["i"])):
        h = b.invoke(step["p"], step["f"], step["key"], step["arg"], time=step["inv"])
        if step["outcome"] == OK:
            value = step.get("result") if step["f"] == "read" else step["arg"]
            b.complete(h, OK, value, time=step["comp"])
        elif step["comp"] is not None or step["outcome"] != INFO:
            b.complete(h, step["outcome"], time=step["comp"])
    return b.build()


def corrupt_register(rng: random.Random, h: History) -> History:
    """One random mutation of a history: a read's value, an outcome, or an interval."""
    rows = h.to_dicts()
    if not rows:
        return h
    reads = [r for r in rows if r["f"] == "read"]
    row = rng.choice(reads) if reads and rng.random() < 0.6 else rng.choice(rows)
    values = sorted({r["value"] for r in rows if r["f"] == "write"} | {1, 2}) + [None]
    what = 0 if row["f"] == "read" and rng.random() < 0.7 else rng.randrange(1, 4)
    if what == 0 and row["f"] == "read":
        row["value"] = rng.choice(values)
        row["outcome"] = OK
        row["complete"] = row["complete"] if row["complete"] is not None else row["invoke"] + 1
    elif what == 1 and row["outcome"] != INFO:
        row["outcome"] = rng.choice((OK, FAIL, INFO))
    elif what == 2 and row["complete"] is not None:
        row["complete"] = row["invoke"] + rng.randint(0, max(0, row["complete"] - row["invoke"]))
    else:
        row["invoke"] = max(0, row["invoke"] - rng.randint(0, 5))
    if row["f"] == "read" and row["outcome"] != OK:
        row["value"] = None
    return History.of(rows)


def random_register_history(rng: random.Random, n_ops: int, keys=("x",)) -> History:
    rows = []
    for _ in range(n_ops):
        inv = rng.randint(0, 12)
        f = rng.choice(("read", "write", "cas"))
        value = (rng.choice((None, 1, 2, 3)) if f == "read" else rng.choice((1, 2, 3)) if f == "write"
                 else [rng.choice((None, 1, 2)), rng.choice((1, 2, 3))])
        outcome = rng.choice((OK, OK, OK, FAIL, INFO))
        if f == "read" and outcome != OK:
            value = None
        comp = None if outcome == INFO and rng.random() < 0.3 else inv + rng.randint(0, 6)
        rows.append((rng.randrange(4), f, rng.choice(keys), value, inv, comp, outcome))
    return H(rows)


def assert_witness_sound(h: History, result) -> None:
    """An invalid verdict's witness: its op is an ok op of that key, and its prefix replays."""
    for kr in result.keys:
        if kr.verdict != INVALID:
            continue
        w = kr.witness
        assert w.op.outcome == OK and w.op.key == kr.key
        assert w.op.index not in w.linearized
        state = {}
        for i in w.linearized:
            assert h[i].key == kr.key
            state = _reg_apply(state, h[i])
            assert state is not None
        assert state.get(kr.key) == w.state
        assert any(o.index == w.op.index for o in w.window)


def _check_lin_against_oracle(h: History, label) -> str:
    expected = VALID if oracle_linearizable(h) else INVALID
    result = check_linearizable(h)
    assert result.verdict == expected, f"{label}: checker {result.verdict}, oracle {expected}\n{h!r}"
    assert_witness_sound(h, result)
    return expected


def test_linearizable_simulated_registers_are_valid():
    for seed in range(4000):
        rng = random.Random(seed)
        h = sim_register(rng, rng.randint(1, 8), keys=("x", "y") if seed % 3 == 0 else ("x",))
        assert _check_lin_against_oracle(h, f"sim seed {seed}") == VALID


def test_linearizable_corrupted_histories_match_oracle():
    verdicts = {VALID: 0, INVALID: 0}
    for seed in range(5000):
        rng = random.Random(10_000 + seed)
        h = sim_register(rng, rng.randint(2, 8), keys=("x", "y") if seed % 4 == 0 else ("x",),
                         n_procs=3 + seed % 3)
        for _ in range(rng.randint(1, 2)):
            h = corrupt_register(rng, h)
        verdicts[_check_lin_against_oracle(h, f"corrupted seed {seed}")] += 1
    assert verdicts[INVALID] > 1000 and verdicts[VALID] > 1000, verdicts


def test_linearizable_random_histories_match_oracle():
    verdicts = {VALID: 0, INVALID: 0}
    for seed in range(5000):
        rng = random.Random(20_000 + seed)
        h = random_register_history(rng, rng.randint(0, 8), keys=("x", "y") if seed % 3 == 0 else ("x",))
        verdicts[_check_lin_against_oracle(h, f"random seed {seed}")] += 1
    assert verdicts[INVALID] > 800 and verdicts[VALID] > 800, verdicts


_reg_rows = st.lists(
    st.tuples(
        st.integers(0, 3),  # process
        st.sampled_from(("read", "write", "cas")),
        st.sampled_from(("x", "y")),
        st.sampled_from((None, 1, 2)),  # read value / write value / cas old
        st.sampled_from((1, 2, 3)),  # cas new
        st.integers(0, 10),  # invoke
        st.integers(0, 5),  # duration
        st.sampled_from((OK, OK, FAIL, INFO)),
    ),
    max_size=7,
)


@settings(max_examples=400, deadline=None)
@given(_reg_rows)
def test_linearizable_hypothesis(rows):
    built = []
    for p, f, key, v, new, inv, dur, outcome in rows:
        value = {"read": v if outcome == OK else None, "write": v if v is not None else new, "cas": [v, new]}[f]
        built.append((p, f, key, value, inv, inv + dur, outcome))
    h = H(built)
    _check_lin_against_oracle(h, "hypothesis")
    # The budgeted search never contradicts the oracle: its answer or unknown.
    small = check_linearizable(h, max_states=3)
    assert small.verdict in (UNKNOWN, VALID if oracle_linearizable(h) else INVALID)


def test_linearizable_textbook_examples():
    valid = {
        "sequential": [(0, "write", "x", 1, 0, 1, OK), (1, "read", "x", 1, 2, 3, OK),
                       (0, "cas", "x", [1, 2], 4, 5, OK), (1, "read", "x", 2, 6, 7, OK)],
        "read concurrent with write sees either": [(0, "write", "x", 1, 0, 10, OK),
                                                   (1, "read", "x", None, 1, 2, OK),
                                                   (2, "read", "x", 1, 3, 4, OK)],
        "initial read": [(0, "read", "x", None, 0, 1, OK)],
        "info write lands late": [(0, "write", "x", 1, 0, 1, INFO), (1, "read", "x", None, 5, 6, OK),
                                  (1, "read", "x", 1, 50, 51, OK)],
        "info write never lands": [(0, "write", "x", 1, 0, 1, INFO), (1, "read", "x", None, 5, 6, OK)],
        "info cas takes effect": [(0, "write", "x", 1, 0, 1, OK), (1, "cas", "x", [1, 2], 2, None, INFO),
                                  (0, "read", "x", 2, 9, 10, OK)],
        "failed write ignored": [(0, "write", "x", 1, 0, 1, FAIL), (1, "read", "x", None, 5, 6, OK)],
        "equal times are concurrent": [(0, "write", "x", 1, 0, 5, OK), (1, "read", "x", None, 5, 6, OK)],
        "keys are independent": [(0, "write", "x", 1, 0, 1, OK), (1, "read", "y", None, 2, 3, OK)],
    }
    invalid = {
        "stale read": [(0, "write", "x", 1, 0, 1, OK), (1, "read", "x", None, 2, 3, OK)],
        "new-old inversion": [(0, "write", "x", 1, 0, 10, OK), (1, "read", "x", 1, 1, 2, OK),
                              (2, "read", "x", None, 3, 4, OK)],
        "read of a failed write": [(0, "write", "x", 1, 0, 1, FAIL), (1, "read", "x", 1, 5, 6, OK)],
        "read of a value never written": [(0, "write", "x", 1, 0, 1, OK), (1, "read", "x", 7, 5, 6, OK)],
        "cas against the wrong value": [(0, "write", "x", 1, 0, 1, OK), (1, "cas", "x", [2, 3], 2, 3, OK)],
        "lost acknowledged write": [(0, "write", "x", 1, 0, 1, OK), (0, "write", "x", 2, 2, 3, OK),
                                    (1, "read", "x", 1, 4, 5, OK)],
        "both cas succeed": [(0, "write", "x", 0, 0, 1, OK), (1, "cas", "x", [0, 1], 2, 6, OK),
                             (2, "cas", "x", [0, 2], 2, 6, OK)],
    }
    for name, rows in valid.items():
        r = check_linearizable(H(rows))
        assert r.verdict == VALID, name
        assert oracle_linearizable(H(rows)), name
    for name, rows in invalid.items():
        h = H(rows)
        r = check_linearizable(h)
        assert r.verdict == INVALID, name
        assert not oracle_linearizable(h), name
        assert_witness_sound(h, r)
        assert r.witness.explanation and r.to_dict()["keys"][0]["witness"]["op"]["index"] == r.witness.op.index


def test_linearizable_witness_points_at_the_culprit():
    h = H([(0, "write", "x", 1, 0, 1, OK), (0, "write", "x", 2, 2, 3, OK),
           (1, "read", "x", 2, 4, 5, OK), (2, "read", "x", 1, 6, 7, OK), (1, "write", "x", 3, 8, 9, OK)])
    r = check_linearizable(h)
    assert r.verdict == INVALID
    w = r.witness
    assert w.op.index == 3 and w.linearized == [0, 1, 2] and w.state == 2
    assert [o.index for o in w.window] == [0, 1, 2, 3]


def test_linearizable_multi_key_verdicts():
    h = H([(0, "write", "a", 1, 0, 1, OK), (1, "read", "a", 1, 2, 3, OK),
           (0, "write", "b", 1, 0, 1, OK), (1, "read", "b", None, 2, 3, OK),
           (0, "write", "c", 5, 0, 1, OK)])
    r = check_linearizable(h)
    assert r.verdict == INVALID
    assert [(k.key, k.verdict) for k in r.keys] == [("a", VALID), ("b", INVALID), ("c", VALID)]
    assert r.witness.key == "b" and r.counts() == {VALID: 2, INVALID: 1, UNKNOWN: 0}


def _hard_history(n_writers: int = 12) -> History:
    """Many concurrent info writes and reads: a big search space, and valid."""
    rows = [(p, "write", "x", p + 1, 0, None, INFO) for p in range(n_writers)]
    t = 10
    for p in range(n_writers):  # reads see the writes land one after another
        rows.append((100 + p, "read", "x", p + 1, t, t + 1, OK))
        t += 2
    return H(rows)


def test_linearizable_budget_answers_unknown_never_valid():
    h = _hard_history()
    assert check_linearizable(h).verdict == VALID
    r = check_linearizable(h, max_states=5)
    assert r.verdict == UNKNOWN and "state budget" in r.keys[0].reason
    # An invalid key still makes the whole history invalid next to an unknown one.
    bad = H([*[(o.process, o.f, o.key, o.value, o.invoke, o.complete, o.outcome) for o in h],
             (0, "write", "z", 1, 0, 1, OK), (1, "read", "z", 2, 2, 3, OK)])
    r = check_linearizable(bad, max_states=5)
    assert r.verdict == INVALID and [k.verdict for k in r.keys] == [UNKNOWN, INVALID]


def test_linearizable_unobserved_info_writes_are_pruned():
    """Writes lost by crashed clients (info, never read) must not blow up the search."""
    rows = [(p, "write", "x", 1000 + p, 0, None, INFO) for p in range(60)]
    rows += [(100, "write", "x", 1, 1, 2, OK)]
    rows += [(101, "read", "x", 1, 3 + 2 * i, 4 + 2 * i, OK) for i in range(50)]
    r = check_linearizable(H(rows), max_states=1000)
    assert r.verdict == VALID and r.keys[0].ops == 51
    # ...while an info write somebody read stays, and is needed.
    rows.append((102, "read", "x", 1000, 500, 501, OK))
    r = check_linearizable(H(rows), max_states=1000)
    assert r.verdict == VALID and r.keys[0].ops == 53
    rows.append((103, "read", "x", 1, 502, 503, OK))  # ...but 1 cannot come back
    assert check_linearizable(H(rows), max_states=1000).verdict == INVALID


def test_linearizable_time_budget_with_injected_clock():
    ticks = iter(range(10 ** 9))

    def clock() -> float:  # every read of the clock is one second later
        return float(next(ticks))

    h = H([*[(o.process, o.f, o.key, o.value, o.invoke, o.complete, o.outcome) for o in _hard_history(14)],
           (0, "write", "later", 1, 0, 1, OK)])
    r = check_linearizable(h, time_limit=3, clock=clock)
    assert r.verdict == UNKNOWN
    assert r.keys[0].reason == "time budget exhausted" and r.keys[1].verdict == UNKNOWN
    generous = check_linearizable(h, time_limit=10 ** 8, clock=clock)
    assert generous.verdict == VALID
    with pytest.raises(ValueError):
        check_linearizable(h, time_limit=3)


def test_linearizable_budget_never_contradicts_oracle():
    for seed in range(400):
        rng = random.Random(30_000 + seed)
        h = corrupt_register(rng, sim_register(rng, rng.randint(3, 7), p_info=0.4))
        truth = VALID if oracle_linearizable(h) else INVALID
        for budget in (1, 2, 4, 8):
            assert check_linearizable(h, max_states=budget).verdict in (truth, UNKNOWN), seed


def test_linearizable_deterministic_and_scales():
    rng = random.Random(7)
    h = sim_register(rng, 3000, n_procs=8, keys=tuple(f"k{i}" for i in range(10)), p_info=0.02)
    a = check_linearizable(h)
    b = check_linearizable(History.from_json(h.to_json()))
    assert a.verdict == VALID and a.to_dict() == b.to_dict()
    bad = corrupt_register(random.Random(1), h)
    assert check_linearizable(bad).to_dict() == check_linearizable(bad).to_dict()


def test_linearizable_rejects_unknown_ops():
    with pytest.raises(ValueError):
        check_linearizable(H([(0, "incr", "x", 1, 0, 1, OK)]))
    with pytest.raises(ValueError):
        check_linearizable(H([(0, "cas", "x", 1, 0, 1, OK)]))
    assert check_linearizable(H([(0, "read", "x", 0, 0, 1, OK)]),
                              model_factory=lambda: RegisterModel(0)).verdict == VALID


# ============================================================ sets

def sim_set(rng: random.Random, key, n_adds: int, *, p_info=0.15, p_fail=0.1, p_lose=0.0,
            p_revive=0.0, p_garbage=0.0, p_dup=0.0, final_reads=1, mid_reads=2, start=0):
    """A set store with injectable faults; returns (rows, expected) with expected from the simulation.

    Ground truth comes from the store's timeline, not from the reads: an
    acknowledged add that the store dropped is lost; a failed add the store
    applied anyway is failed-present if a read observed the store after it.
    """
    interval = _proc_times(rng, 3)
    adds = []
    for i in range(n_adds):
        p = rng.randrange(3)
        inv, comp = interval(p)
        inv, comp = inv + start, comp + start
        roll = rng.random()
        outcome = INFO if roll < p_info else FAIL if roll < p_info + p_fail else OK
        el = (key, i)
        applied = None
        if outcome == OK or (outcome == FAIL and rng.random() < p_revive):
            applied = rng.uniform(inv, comp)
        elif outcome == INFO and rng.random() < 0.5:
            applied = rng.uniform(inv, comp + 10)
        adds.append({"p": p, "el": [key, i], "inv": inv, "comp": comp, "outcome": outcome, "applied": applied,
                     "dropped": None})
    settled = max((a["comp"] for a in adds if a["outcome"] != INFO), default=float("-inf"))
    for a in adds:
        if a["outcome"] == OK and rng.random() < p_lose:
            a["dropped"] = rng.uniform(a["applied"], settled)

    def contents(t: float) -> list:
        return [a["el"] for a in adds if a["applied"] is not None and a["applied"] <= t
                and (a["dropped"] is None or a["dropped"] > t)]

    end = max([start, settled] + [a["applied"] for a in adds if a["applied"] is not None]) + 1
    reads = []
    for j in range(mid_reads):
        inv = rng.randint(start, int(end) + 2)
        comp = inv + rng.randint(0, 4)
        reads.append({"inv": inv, "comp": comp, "at": rng.uniform(inv, comp)})
    for j in range(final_reads):
        inv = int(end) + 2 + 3 * j
        reads.append({"inv": inv, "comp": inv + 1, "at": inv + 0.5})
    garbage, dups = set(), set()
    rows = [(10 + a["p"], "add", key, a["el"], a["inv"], a["comp"], a["outcome"]) for a in adds]
    for r in reads:
        value = contents(r["at"])
        if rng.random() < p_garbage:
            g = [key, -1 - len(garbage)]
            garbage.add(tuple(g))
            value.append(g)
        if value and rng.random() < p_dup:
            d = rng.choice(value)
            dups.add(tuple(d))
            value.append(d)
        rng.shuffle(value)
        r["value"] = value
        rows.append((20, "read", key, value, r["inv"], r["comp"], OK))

    # Ground truth from the timeline.
    finals = [r for r in reads if r["inv"] > settled]
    quiescent = bool(finals)
    if not finals and reads:
        finals = [max(reads, key=lambda r: r["inv"])]
    lost = {tuple(a["el"]) for a in adds if a["outcome"] == OK for r in finals
            if a["comp"] < r["inv"] and a["dropped"] is not None and a["dropped"] <= r["at"]}
    observed_at = [r["at"] for r in reads]

    def seen(a) -> bool:
        return a["applied"] is not None and any(
            a["applied"] <= t and (a["dropped"] is None or a["dropped"] > t) for t in observed_at)

    expected = {
        "lost": lost,
        "unexpected": garbage,
        "recovered": {tuple(a["el"]) for a in adds if a["outcome"] == INFO and seen(a)},
        "failed_present": {tuple(a["el"]) for a in adds if a["outcome"] == FAIL and seen(a)},
        "duplicated": dups,
        "has_reads": bool(reads),
        "quiescent": quiescent,
        "acknowledged": sum(1 for a in adds if a["outcome"] == OK),
        "ops": len(rows),
    }
    return rows, expected


def _set_expected_verdict(exp: dict) -> str:
    if exp["lost"] or exp["unexpected"] or exp["failed_present"] or exp["duplicated"]:
        return INVALID
    return VALID if exp["has_reads"] else UNKNOWN


def test_set_checker_against_simulation():
    verdicts = {VALID: 0, INVALID: 0, UNKNOWN: 0}
    for seed in range(4000):
        rng = random.Random(40_000 + seed)
        faulty = seed % 2 == 1
        rows, exps = [], []
        for key in ("s1", "s2")[: rng.randint(1, 2)]:
            r, e = sim_set(rng, key, rng.randint(0, 10), p_lose=0.2 * faulty, p_revive=0.3 * faulty,
                           p_garbage=0.1 * faulty, p_dup=0.05 * faulty,
                           final_reads=rng.choice((0, 1, 1, 2)), mid_reads=rng.randint(0, 3))
            rows += r
            exps.append((key, e))
        rows.sort(key=lambda row: row[4])
        h = H(rows)
        result = check_set(h)
        by_key = {k.key: k for k in result.keys}
        exps = [(key, e) for key, e in exps if e["ops"]]
        for key, e in exps:
            kr = by_key[key]
            assert {tuple(x) for x in kr.lost} == e["lost"], (seed, key)
            assert {tuple(x) for x in kr.unexpected} == e["unexpected"], (seed, key)
            assert {tuple(x) for x in kr.recovered} == e["recovered"], (seed, key)
            assert {tuple(x) for x in kr.failed_present} == e["failed_present"], (seed, key)
            assert {tuple(x) for x in kr.duplicated} == e["duplicated"], (seed, key)
            assert kr.verdict == _set_expected_verdict(e), (seed, key)
            assert kr.acknowledged == e["acknowledged"] and kr.acknowledged_lost == len(e["lost"])
            if e["has_reads"]:
                assert kr.quiescent == e["quiescent"], (seed, key)
            if not faulty:
                assert kr.verdict in (VALID, UNKNOWN), (seed, key)
        assert result.verdict == (combine_verdicts(_set_expected_verdict(e) for _, e in exps) if exps else UNKNOWN)
        assert result.acknowledged_lost == sum(len(e["lost"]) for _, e in exps)
        verdicts[result.verdict] += 1
    assert verdicts[INVALID] > 500 and verdicts[VALID] > 500 and verdicts[UNKNOWN] > 0, verdicts


def test_set_checker_examples():
    h = H([
        (0, "add", "s", 1, 0, 1, OK),
        (1, "add", "s", 2, 0, 1, OK),
        (2, "add", "s", 3, 0, 5, INFO),
        (3, "add", "s", 4, 0, 1, FAIL),
        (0, "add", "s", 5, 2, 3, INFO),
        (4, "read", "s", [1, 3, 9], 10, 11, OK),
    ])
    r = check_set(h)
    k = r.keys[0]
    assert r.verdict == INVALID
    assert (k.lost, k.unexpected, k.recovered, k.failed_present) == ([2], [9], [3], [])
    assert k.final_reads == [5] and k.quiescent and k.final_size == 3
    t = r.totals()
    assert t["acknowledged"] == 2 and t["acknowledged_lost"] == 1 and t["lost_fraction"] == 0.5
    assert t["attempted"] == 5 and t["failed"] == 1 and t["indeterminate"] == 2
    assert r.to_dict()["totals"]["lost"] == 1

    ok = H([(0, "add", "s", 1, 0, 1, OK), (1, "add", "s", 2, 0, 1, INFO), (4, "read", "s", [1], 10, 11, OK)])
    assert check_set(ok).verdict == VALID
    # A read concurrent with an add is not final: it may miss the add.
    early = H([(0, "add", "s", 1, 0, 10, OK), (4, "read", "s", [], 2, 3, OK)])
    r = check_set(early)
    assert r.verdict == VALID and not r.keys[0].quiescent
    # Without any final read, the last read is judged on the adds completed before it.
    no_final = H([(0, "add", "s", 1, 0, 1, OK), (1, "add", "s", 2, 0, 10, OK), (4, "read", "s", [2], 5, 6, OK)])
    r = check_set(no_final)
    assert r.verdict == INVALID and r.keys[0].lost == [1]
    assert check_set(H([(0, "add", "s", 1, 0, 1, OK)])).verdict == UNKNOWN
    assert check_set(H([(0, "add", "s", 1, 0, 1, FAIL), (4, "read", "s", [1], 5, 6, OK)])).keys[0].failed_present == [1]
    with pytest.raises(ValueError):
        check_set(H([(0, "add", "s", 1, 0, 1, OK), (0, "add", "s", 1, 2, 3, OK)]))
    with pytest.raises(ValueError):
        check_set(H([(0, "incr", "s", 1, 0, 1, OK)]))


def test_set_checker_deterministic():
    rng = random.Random(5)
    rows, _ = sim_set(rng, "s", 2000, p_lose=0.01, p_garbage=0.01)
    h = H(sorted(rows, key=lambda r: r[4]))
    assert check_set(h).to_dict() == check_set(History.from_json(h.to_json())).to_dict()


# ============================================================ counters

def oracle_counter(history: History, initial: int = 0) -> bool:
    """Each ok read must equal initial + definite increments + some subset of the concurrent ones."""
    for r in history:
        if r.f != "read" or r.outcome != OK:
            continue
        incs = [o for o in history if o.f == "incr" and o.key == r.key and o.outcome != FAIL]
        definite = sum(o.value for o in incs if o.outcome == OK and o.complete < r.invoke)
        maybe = [o.value for o in incs if o.invoke <= r.complete
                 and not (o.outcome == OK and o.complete < r.invoke)]
        want = (initial if r.value is None else r.value) - initial - definite
        if not any(sum(v for i, v in enumerate(maybe) if mask >> i & 1) == want for mask in range(1 << len(maybe))):
            return False
    return True


def sim_counter(rng: random.Random, n_ops: int, amounts=(1,), keys=("c",), p_info=0.15, p_fail=0.1) -> History:
    interval = _proc_times(rng, 4)
    plan = []
    for i in range(n_ops):
        p = rng.randrange(4)
        inv, comp = interval(p)
        f = rng.choice(("incr", "incr", "read"))
        roll = rng.random()
        outcome = INFO if roll < p_info else FAIL if roll < p_info + p_fail else OK
        lp = None
        if outcome == OK:
            lp = rng.uniform(inv, comp)
        elif outcome == INFO and f == "incr" and rng.random() < 0.5:
            lp = rng.uniform(inv, comp + 15)
        plan.append({"i": i, "p": p, "f": f, "key": rng.choice(keys), "amount": rng.choice(amounts),
                     "inv": inv, "comp": comp, "outcome": outcome, "lp": lp})
    totals: dict = {}
    for s in sorted((s for s in plan if s["lp"] is not None), key=lambda s: (s["lp"], s["i"])):
        if s["f"] == "incr":
            totals[s["key"]] = totals.get(s["key"], 0) + s["amount"]
        else:
            s["result"] = totals.get(s["key"], 0)
    rows = []
    for s in plan:
        value = s["amount"] if s["f"] == "incr" else s.get("result") if s["outcome"] == OK else None
        rows.append((s["p"], s["f"], s["key"], value, s["inv"], s["comp"], s["outcome"]))
    return H(sorted(rows, key=lambda r: r[4]))


def corrupt_counter(rng: random.Random, h: History) -> History:
    rows = h.to_dicts()
    reads = [r for r in rows if r["f"] == "read" and r["outcome"] == OK]
    if reads and rng.random() < 0.7:
        r = rng.choice(reads)
        r["value"] = (r["value"] or 0) + rng.choice((-2, -1, 1, 2, 3))
    else:
        row = rng.choice(rows) if rows else None
        if row is not None and row["f"] == "incr":
            row["outcome"] = rng.choice((OK, FAIL, INFO))
    return History.of(rows)


def _counter_verdict_expected(h: History) -> str:
    if not any(o.f == "read" and o.outcome == OK for o in h):
        return UNKNOWN
    return VALID if oracle_counter(h) else INVALID


def test_counter_against_oracle():
    verdicts = {VALID: 0, INVALID: 0, UNKNOWN: 0}
    for seed in range(4000):
        rng = random.Random(50_000 + seed)
        amounts = ((1,), (1, 2, 5), (-3, 1, 4, 7))[seed % 3]
        h = sim_counter(rng, rng.randint(1, 9), amounts=amounts)
        expected = _counter_verdict_expected(h)
        assert expected != INVALID, seed
        assert check_counter(h).verdict == expected, seed
        bad = corrupt_counter(rng, h)
        expected = _counter_verdict_expected(bad)
        exact = check_counter(bad)
        assert exact.verdict == expected, (seed, bad)
        bounds_only = check_counter(bad, exact_limit=0)
        if amounts == (1,):
            assert bounds_only.verdict == expected, seed  # unit increments: bounds are exact
        elif bounds_only.verdict == INVALID:
            assert expected == INVALID, seed  # bounds are necessary
        for rb in exact.keys[0].reads if exact.keys else ():
            if rb.violation is None:
                assert rb.lower <= rb.value <= rb.upper
        verdicts[expected] += 1
    assert verdicts[INVALID] > 500 and verdicts[VALID] > 500, verdicts


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(("incr", "incr", "read")), st.integers(-2, 6), st.integers(0, 12),
                          st.integers(0, 5), st.sampled_from((OK, OK, FAIL, INFO))), max_size=9))
def test_counter_hypothesis(rows):
    h = H([(i, f, "c", v if f == "incr" else (v if outcome == OK else None), inv, inv + d, outcome)
           for i, (f, v, inv, d, outcome) in enumerate(rows)])
    assert check_counter(h).verdict == _counter_verdict_expected(h)


def test_counter_bounds_examples():
    h = H([
        (0, "incr", "c", 1, 0, 1, OK),  # definite for the read at 10
        (1, "incr", "c", 2, 0, 20, OK),  # concurrent
        (2, "incr", "c", 4, 5, 6, INFO),  # possible
        (3, "incr", "c", 8, 0, 1, FAIL),  # never happened
        (4, "incr", "c", 16, 30, 31, OK),  # invoked after the read completed
        (5, "read", "c", 3, 10, 12, OK),
    ])
    r = check_counter(h)
    rb = r.keys[0].reads[0]
    assert r.verdict == VALID and (rb.lower, rb.upper) == (1, 7) and rb.exact
    assert r.keys[0].acknowledged_sum == 19 and r.keys[0].possible_sum == 23
    assert r.keys[0].increments == {OK: 3, INFO: 1, FAIL: 1}
    for value, kind in ((0, "out-of-bounds"), (8, "out-of-bounds"), (9, "out-of-bounds"), (4, "unreachable")):
        bad = H([*[(o.process, o.f, o.key, o.value, o.invoke, o.complete, o.outcome) for o in h][:5],
                 (5, "read", "c", value, 10, 12, OK)])
        res = check_counter(bad)
        assert res.verdict == INVALID and res.violations[0].violation == kind, value
        assert res.to_dict()["violations"] == 1
    # negative increments widen the bounds downwards
    neg = H([(0, "incr", "c", 5, 0, 1, OK), (1, "incr", "c", -3, 2, 9, OK), (2, "read", "c", 2, 3, 4, OK)])
    rb = check_counter(neg).keys[0].reads[0]
    assert (rb.lower, rb.upper, rb.violation) == (2, 5, None)
    # a missing key reads as the initial value
    assert check_counter(H([(0, "read", "c", None, 0, 1, OK)])).verdict == VALID
    assert check_counter(H([(0, "read", "c", None, 0, 1, OK)]), initial=3).keys[0].reads[0].value == 3
    assert check_counter(H([(0, "incr", "c", 1, 0, 1, OK)])).verdict == UNKNOWN
    with pytest.raises(ValueError):
        check_counter(H([(0, "incr", "c", "one", 0, 1, OK)]))


def test_counter_scales_and_is_deterministic():
    rng = random.Random(3)
    h = sim_counter(rng, 20_000, amounts=(1, 2, 3), keys=("a", "b"), p_info=0.02)
    a = check_counter(h)
    assert a.verdict == VALID
    assert a.to_dict() == check_counter(History.from_json(h.to_json())).to_dict()


# ============================================================ list-append

def oracle_list_append(history: History, realtime: bool) -> bool:
    """Try every serial order of the txns that may have committed.

    ok txns must all be placed; info txns may be placed or not; failed txns
    never. With ``realtime`` an order must also respect completion-before-
    invocation between placed txns. Every ok read must match exactly.
    """
    txns = [op for op in history if op.outcome != FAIL]
    n = len(txns)
    n_ok = sum(1 for op in txns if op.outcome == OK)
    preds = [[j for j in range(n) if realtime and txns[j].outcome == OK and txns[j].complete < txns[i].invoke]
             for i in range(n)]

    def run(state: dict, op: Op) -> dict | None:
        state = dict(state)
        for f, k, v in op.value:
            if f == "append":
                state[k] = state.get(k, ()) + (v,)
            elif op.outcome == OK and tuple(v or ()) != state.get(k, ()):
                return None
        return state

    def dfs(placed: int, state: dict, oks: int) -> bool:
        if oks == n_ok:
            return True
        for i in range(n):
            if placed >> i & 1 or any(not placed >> j & 1 for j in preds[i]):
                continue
            new = run(state, txns[i])
            if new is not None and dfs(placed | 1 << i, new, oks + (txns[i].outcome == OK)):
                return True
        return False

    return dfs(0, {}, 0)


ANOMALY_MODES = ("lost-update", "stale-read", "non-atomic", "lost-append", "aborted-read", "intermediate",
                 "reordered")


def sim_list_append(rng: random.Random, n_txns: int, *, mode: str = "serializable", keys=(0, 1, 2),
                    n_procs: int = 3, p_info: float = 0.12, p_fail: float = 0.1, p_anomaly: float = 0.4,
                    max_mops: int = 4, max_dur: int = 6) -> History:
    """A database running list-append txns; ``mode`` picks how (often) it misbehaves.

    * ``serializable``: each txn runs atomically at one instant inside its
      interval (strictly serializable); failed txns never run, info txns run
      (at an instant possibly long after they gave up) or not;
    * ``lost-update``: some txns read from a snapshot taken earlier in their
      interval and apply their appends at commit, unchecked;
    * ``stale-read``: some txns read from a snapshot taken at any earlier time;
    * ``non-atomic``: some txns run each micro-op at its own instant;
    * ``lost-append``: some ok txns' appends are acknowledged but never applied;
    * ``aborted-read``: some failed txns' appends are applied anyway;
    * ``intermediate``: some txns expose their first append's state to others;
    * ``reordered``: some txns' appends land in reverse order, or only the last
      of several appends to a key lands.
    """
    interval = _proc_times(rng, n_procs, max_dur)
    fresh = {k: iter(range(1, 10 ** 6)) for k in keys}
    txns = []
    for i in range(n_txns):
        p = rng.randrange(n_procs)
        inv, comp = interval(p)
        mops = []
        if mode == "lost-update" and rng.random() < 0.5:  # read-modify-write, where updates get lost
            k = rng.choice(keys)
            mops = [["r", k, None], ["append", k, next(fresh[k])]]
        for _ in range(rng.randint(0 if mops else 1, max_mops - len(mops))):
            k = rng.choice(keys)
            mops.append(["append", k, next(fresh[k])] if rng.random() < 0.5 else ["r", k, None])
        roll = rng.random()
        outcome = INFO if roll < p_info else FAIL if roll < p_info + p_fail else OK
        faulty = mode != "serializable" and rng.random() < p_anomaly
        txns.append({"i": i, "p": p, "inv": inv, "comp": comp, "mops": mops, "outcome": outcome,
                     "faulty": faulty, "reads": [None] * len(mops)})

    steps = []  # (time, order, txn, kind, payload)
    for t in txns:
        if t["outcome"] == OK:
            lp = rng.uniform(t["inv"], t["comp"])
        elif t["outcome"] == INFO:
            lp = rng.uniform(t["inv"], t["comp"] + 15) if rng.random() < 0.5 else None
        else:
            lp = rng.uniform(t["inv"], t["comp"]) if mode == "aborted-read" and t["faulty"] else None
        if lp is None:
            continue
        if t["faulty"] and mode == "lost-update":  # snapshot at the start, commit at the end
            steps.append((t["inv"], 0, t["i"], "snapshot", None))
            steps.append((max(lp, t["comp"]), 1, t["i"], "commit", None))
        elif t["faulty"] and mode == "stale-read":
            steps.append((rng.uniform(0, lp), 0, t["i"], "snapshot", None))
            steps.append((lp, 1, t["i"], "commit", None))
        elif t["faulty"] and mode == "non-atomic":
            times = sorted(rng.uniform(t["inv"], t["comp"] if t["comp"] >= lp else lp) for _ in t["mops"])
            for j, at in enumerate(times):
                steps.append((at, 0, t["i"], "mop", j))
        elif t["faulty"] and mode == "intermediate":
            first = next((j for j, m in enumerate(t["mops"]) if m[0] == "append"), None)
            if first is None:
                steps.append((lp, 0, t["i"], "atomic", None))
            else:  # the first append shows early; the rest runs atomically later
                steps.append((rng.uniform(t["inv"], lp), 0, t["i"], "mop", first))
                steps.append((lp, 1, t["i"], "rest", first))
        else:
            steps.append((lp, 0, t["i"], "atomic", None))
    steps.sort(key=lambda s: (s[0], s[1], s[2]))

    state: dict = {}
    snapshots: dict = {}
    drop = mode == "lost-append"

    def execute(t: dict, view: dict, apply_to: dict, skip: int | None = None) -> None:
        for j, (f, k, v) in enumerate(t["mops"]):
            if j == skip:
                continue
            if f == "append":
                view[k] = view.get(k, ()) + (v,)
                if apply_to is not view and not (drop and t["faulty"] and t["outcome"] == OK):
                    apply_to[k] = apply_to.get(k, ()) + (v,)
            else:
                t["reads"][j] = list(view.get(k, ()))

    for _, _, i, kind, payload in steps:
        t = txns[i]
        if kind == "snapshot":
            snapshots[i] = dict(state)
        elif kind == "commit":
            execute(t, snapshots.pop(i), state)
        elif kind == "mop":
            f, k, v = t["mops"][payload]
            if f == "append":
                state[k] = state.get(k, ()) + (v,)
            else:
                t["reads"][payload] = list(state.get(k, ()))
        elif kind == "rest":
            execute(t, state, state, skip=payload)
        elif drop and t["faulty"]:
            execute(t, dict(state), state)
        elif mode == "reordered" and t["faulty"]:
            view = dict(state)
            execute(t, view, view)  # the txn sees its own appends in order...
            mine = [(k, v) for f, k, v in t["mops"] if f == "append"]
            if rng.random() < 0.5:
                mine = mine[::-1]  # ...but they land reversed
            else:
                last = {k: v for k, v in mine}
                mine = [(k, v) for k, v in mine if last[k] == v]  # ...or only the last per key
            for k, v in mine:
                state[k] = state.get(k, ()) + (v,)
        else:
            execute(t, state, state)

    rows = []
    for t in txns:
        if t["outcome"] == OK:
            value = [[f, k, t["reads"][j]] if f == "r" else [f, k, v] for j, (f, k, v) in enumerate(t["mops"])]
        else:
            value = [list(m) for m in t["mops"]]
        rows.append((t["p"], "txn", None, value, t["inv"], t["comp"], t["outcome"]))
    return H(sorted(rows, key=lambda r: r[4]))


def assert_cycles_wellformed(h: History, result) -> None:
    """Every reported cycle closes, and every edge is justified by the history."""
    writer = {}
    for op in h:
        for f, k, v in op.value:
            if f == "append":
                writer[(k, v)] = op.index
    for cyc in result.cycles:
        steps = cyc["cycle"]
        assert len(steps) >= 2
        for a, b in zip(steps, steps[1:] + steps[:1]):
            assert a["to"] == b["from"]
        assert len({s["from"] for s in steps}) == len(steps)
        for s in steps:
            src, dst = h[s["from"]], h[s["to"]]
            if s["type"] == "ww":
                x, y = s["value"]
                assert writer[(s["key"], x)] == src.index and writer[(s["key"], y)] == dst.index
            elif s["type"] == "wr":
                assert writer[(s["key"], s["value"])] == src.index
                assert any(f == "r" and k == s["key"] and v and v[-1] == s["value"] for f, k, v in dst.value)
            elif s["type"] == "rw":
                assert writer[(s["key"], s["value"])] == dst.index
                assert any(f == "r" and k == s["key"] and s["value"] not in (v or []) for f, k, v in src.value)
            else:
                assert s["type"] == "rt" and src.outcome == OK and src.complete < dst.invoke


def _la_expected(h: History, realtime: bool) -> str:
    if not any(op.outcome == OK and any(m[0] == "r" for m in op.value) for op in h):
        assert oracle_list_append(h, realtime)
        return UNKNOWN
    return VALID if oracle_list_append(h, realtime) else INVALID


def test_list_append_serializable_database_is_valid():
    for seed in range(3000):
        rng = random.Random(60_000 + seed)
        h = sim_list_append(rng, rng.randint(1, 7), n_procs=2 + seed % 4)
        expected = _la_expected(h, True)
        assert expected in (VALID, UNKNOWN), seed
        for consistency in ("strict-serializable", "serializable"):
            result = check_list_append(h, consistency=consistency)
            assert result.verdict == expected, (seed, consistency, result.anomalies)


def test_list_append_anomalies_match_oracle():
    flagged = {m: 0 for m in ANOMALY_MODES}
    names: set[str] = set()
    for seed in range(6000):
        rng = random.Random(70_000 + seed)
        mode = ANOMALY_MODES[seed % len(ANOMALY_MODES)]
        h = sim_list_append(rng, rng.randint(2, 6), mode=mode, keys=(0, 1) if seed % 2 else (0, 1, 2),
                            n_procs=4, max_dur=12, p_anomaly=0.6)
        for consistency, realtime in (("strict-serializable", True), ("serializable", False)):
            expected = _la_expected(h, realtime)
            result = check_list_append(h, consistency=consistency)
            assert result.verdict == expected, (seed, mode, consistency, result.anomalies, h)
            assert_cycles_wellformed(h, result)
            if realtime and expected == INVALID:
                flagged[mode] += 1
                names.update(result.anomalies)
            if not realtime:
                assert not any(n.endswith("-realtime") for n in result.anomalies)
    assert all(n > 50 for n in flagged.values()), flagged
    for name in ("G0", "G1a", "G1b", "G1c", "G-single", "G-single-realtime", "G2-item", "internal"):
        assert name in names, (name, sorted(names))


def test_list_append_random_reads_match_oracle():
    """Histories whose reads are random lists: garbage, duplicates, incompatible orders."""
    for seed in range(2400):
        rng = random.Random(80_000 + seed)
        h = sim_list_append(rng, rng.randint(1, 5), keys=(0, 1))
        rows = h.to_dicts()
        for row in rows:
            if row["outcome"] != OK:
                continue
            for m in row["value"]:
                if m[0] == "r" and rng.random() < 0.4:
                    pool = list(range(1, 6))
                    m[2] = rng.sample(pool, rng.randint(0, 3)) + ([1] if rng.random() < 0.1 else [])
        h = History.of(rows)
        for consistency, realtime in (("strict-serializable", True), ("serializable", False)):
            expected = _la_expected(h, realtime)
            result = check_list_append(h, consistency=consistency)
            assert result.verdict == expected, (seed, consistency, result.anomalies, h)
            assert_cycles_wellformed(h, result)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 2 ** 32), st.sampled_from(("serializable", *ANOMALY_MODES)), st.integers(1, 6),
       st.integers(2, 5), st.sampled_from((3, 6, 12)))
def test_list_append_hypothesis(seed, mode, n, procs, max_dur):
    h = sim_list_append(random.Random(seed), n, mode=mode, n_procs=procs, max_dur=max_dur, keys=(0, 1))
    for consistency, realtime in (("strict-serializable", True), ("serializable", False)):
        result = check_list_append(h, consistency=consistency)
        assert result.verdict == _la_expected(h, realtime), (consistency, result.anomalies)
        assert_cycles_wellformed(h, result)


def T(p, mops, inv, comp, outcome=OK):
    return (p, "txn", None, mops, inv, comp, outcome)


def _la(rows, **kw):
    return check_list_append(H(rows), **kw)


def test_list_append_textbook_anomalies():
    # G0: two txns append to x and y in opposite orders.
    r = _la([T(0, [["append", "x", 1], ["append", "y", 1]], 0, 10),
             T(1, [["append", "x", 2], ["append", "y", 2]], 0, 10),
             T(2, [["r", "x", [1, 2]], ["r", "y", [2, 1]]], 20, 21)])
    assert "G0" in r.anomalies and r.verdict == INVALID
    # G1a: a failed append is read.
    r = _la([T(0, [["append", "x", 1]], 0, 1, FAIL), T(1, [["r", "x", [1]]], 2, 3)])
    assert list(r.anomalies) == ["G1a"] and r.anomalies["G1a"][0]["writer"] == 0
    # G1b: an intermediate state is read.
    r = _la([T(0, [["append", "x", 1], ["append", "x", 2]], 0, 10), T(1, [["r", "x", [1]]], 0, 10)])
    assert "G1b" in r.anomalies
    # G1c: each txn reads the other's write.
    r = _la([T(0, [["append", "x", 1], ["r", "y", [1]]], 0, 10), T(1, [["append", "y", 1], ["r", "x", [1]]], 0, 10)])
    assert "G1c" in r.anomalies
    # G-single, lost update: both read the empty list and append; later read shows both.
    r = _la([T(0, [["r", "x", []], ["append", "x", 1]], 0, 10), T(1, [["r", "x", []], ["append", "x", 2]], 0, 10),
             T(2, [["r", "x", [1, 2]]], 20, 21)], consistency="serializable")
    assert list(r.anomalies) == ["G-single"]
    cyc = r.anomalies["G-single"][0]["cycle"]
    assert sorted(s["type"] for s in cyc) == ["rw", "ww"]
    # G2-item, write skew: each reads what the other then appends to.
    r = _la([T(0, [["r", "x", []], ["append", "y", 1]], 0, 10), T(1, [["r", "y", []], ["append", "x", 1]], 0, 10),
             T(2, [["r", "x", [1]], ["r", "y", [1]]], 20, 21)], consistency="serializable")
    assert list(r.anomalies) == ["G2-item"]
    # G-nonadjacent: rw, wr, rw, wr around four txns.
    r = _la([T(0, [["r", "x", []], ["r", "b", [1]]], 0, 10), T(1, [["append", "x", 1], ["append", "a", 1]], 0, 10),
             T(2, [["r", "a", [1]], ["r", "y", []]], 0, 10), T(3, [["append", "y", 1], ["append", "b", 1]], 0, 10)],
            consistency="serializable")
    assert list(r.anomalies) == ["G-nonadjacent"]
    # internal: a txn does not see its own append.
    r = _la([T(0, [["append", "x", 1], ["r", "x", []]], 0, 1)])
    assert "internal" in r.anomalies
    r = _la([T(0, [["r", "x", []], ["append", "x", 1], ["r", "x", [1, 1]]], 0, 1)])
    assert "internal" in r.anomalies and "duplicate-elements" in r.anomalies
    # incompatible orders and unexpected elements
    r = _la([T(0, [["append", "x", 1]], 0, 10), T(1, [["append", "x", 2]], 0, 10),
             T(2, [["r", "x", [1, 2]]], 20, 21), T(3, [["r", "x", [2, 1]]], 20, 21)])
    assert list(r.anomalies) == ["incompatible-order"]
    r = _la([T(0, [["r", "x", [7]]], 0, 1)])
    assert list(r.anomalies) == ["unexpected-element"]
    # a txn's appends seen out of order, or its later append without its earlier one
    r = _la([T(0, [["append", "x", 1], ["append", "x", 2]], 0, 1), T(1, [["r", "x", [2, 1]]], 2, 3)])
    assert list(r.anomalies) == ["G1b", "incompatible-order"] and r.anomalies["incompatible-order"][0]["txn"] == 0
    r = _la([T(0, [["append", "x", 1], ["append", "x", 2]], 0, 1), T(1, [["r", "x", [2]]], 2, 3)])
    assert list(r.anomalies) == ["incompatible-order"]
    # future read: a txn sees its own append before making it
    r = _la([T(0, [["r", "x", [1]], ["append", "x", 1]], 0, 1)])
    assert list(r.anomalies) == ["future-read"]


def test_list_append_realtime_anomalies():
    # Stale read: a read-only txn misses an append acknowledged before it began.
    stale = [T(0, [["append", "x", 1]], 0, 1), T(1, [["r", "x", []]], 5, 6), T(2, [["r", "x", [1]]], 7, 8)]
    assert _la(stale, consistency="serializable").verdict == VALID
    r = _la(stale)
    assert list(r.anomalies) == ["G-single-realtime"]
    assert {s["type"] for s in r.anomalies["G-single-realtime"][0]["cycle"]} == {"rw", "rt"}
    # Lost append: acknowledged, then never seen by a read that began after it.
    lost = [T(0, [["append", "x", 1]], 0, 1), T(1, [["append", "x", 2]], 2, 3), T(2, [["r", "x", [2]]], 5, 6)]
    r = _la(lost)
    assert r.verdict == INVALID and any(n.endswith("-realtime") for n in r.anomalies)
    assert not oracle_list_append(H(lost), True) and oracle_list_append(H(lost), False)
    # Info txns: an unseen one may never have happened; a seen one did.
    maybe = [T(0, [["append", "x", 1]], 0, 1, INFO), T(1, [["r", "x", []]], 5, 6)]
    assert _la(maybe).verdict == VALID
    seen = [T(0, [["append", "x", 1], ["append", "y", 1]], 0, 1, INFO), T(1, [["r", "x", [1]]], 5, 6),
            T(2, [["r", "y", []]], 5, 6)]
    r = _la(seen, consistency="serializable")
    assert r.verdict == VALID and r.stats["committed"] == 3  # T2, T0, T1
    torn = [T(0, [["append", "x", 1], ["append", "y", 1]], 0, 1, INFO), T(1, [["r", "x", [1]], ["r", "y", []]], 5, 6)]
    r = _la(torn, consistency="serializable")
    assert list(r.anomalies) == ["G-single"]
    assert _la([T(0, [["append", "x", 1]], 0, 1)]).verdict == UNKNOWN  # nothing read: nothing to judge


def test_list_append_input_errors():
    with pytest.raises(ValueError):
        _la([T(0, [["append", "x", 1]], 0, 1), T(1, [["append", "x", 1]], 2, 3)])
    with pytest.raises(ValueError):
        _la([T(0, [["write", "x", 1]], 0, 1)])
    with pytest.raises(ValueError):
        _la([(0, "read", "x", None, 0, 1, OK)])
    with pytest.raises(ValueError):
        _la([T(0, [["r", "x", []]], 0, 1)], consistency="snapshot")


def test_list_append_larger_histories_deterministic():
    rng = random.Random(11)
    h = sim_list_append(rng, 1500, n_procs=10, keys=tuple(range(8)), p_info=0.03, p_fail=0.03)
    a = check_list_append(h)
    assert a.verdict == VALID, a.anomalies
    assert a.to_dict() == check_list_append(History.from_json(h.to_json())).to_dict()
    bad = sim_list_append(random.Random(12), 1500, n_procs=10, keys=tuple(range(8)), mode="lost-update",
                          p_anomaly=0.05)
    b = check_list_append(bad)
    assert b.verdict == INVALID and b.cycles
    assert_cycles_wellformed(bad, b)
    assert b.to_dict() == check_list_append(bad).to_dict()
    json.dumps(b.to_dict())  # report-ready
