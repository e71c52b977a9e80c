"""Per-command latency histograms: LATENCY HISTOGRAM (Redis 7.0, ``latency-tracking``).

Redis records each call's duration (microseconds * 1000, in nanoseconds,
clamped to [1, 1e9]) in an HdrHistogram per command (2 significant digits)
and LATENCY HISTOGRAM walks it logarithmically: reporting levels at
1024 ns * 2^k, each reporting the cumulative count of calls up to the
highest value equivalent to the level (level + level/128 - 1 ns) and labelled
with that value in whole microseconds. Since durations are whole
microseconds, a call of ``e`` us falls in the first level ``k`` with
``e <= LEVELS_US[k]`` (1, 2, 4, 8, 16, 33, 66, 132, ...): this module keeps
exactly those counts, so the reply equals Redis's for the same durations.

Cost: most commands take under a microsecond, and those calls are not
recorded at all: the dispatcher already counts every call in
``Command.calls``, so the 0 us count is what the calls leave once the longer
ones are counted. The fast path pays one truth test of ``elapsed`` for them.

Storage: ``Command.latency`` is None while every call of the command took
under 1 us, else a list of 65 items: [0] the calls not to count (made while
``latency-tracking`` was off), [1..63] calls of exactly that many
microseconds -- the dispatcher increments them inline and lets the
TypeError/IndexError of any other case come here -- and [64] a list: index
k counts longer calls of level k, then the calls Redis records but its walk
never reports (over ~541 ms, past the histogram's last level), then the
command's ``calls`` when tracking was turned off (None while it is on).
CONFIG RESETSTAT drops them with the call counts (``Command.reset_stats``).
"""

from __future__ import annotations

__all__ = ["LEVELS_US", "cdf", "has_histogram", "install", "latencystats", "record_latency", "recorded_calls",
           "value_at_percentile"]

_EXACT = 64


def _levels() -> list[int]:
    out = []
    for k in range(20):  # 1024 ns << 19 is the last level an HdrHistogram up to 1e9 ns reports
        level = 1024 << k
        out.append((level + level // 128 - 1) // 1000)
    return out


#: The histogram's bucket labels (us): a call of e us is counted from the first level >= e.
LEVELS_US = _levels()
_BEYOND = len(LEVELS_US)  # in the long-calls list: calls longer than the last level
_FROZEN = _BEYOND + 1  # in the long-calls list: ``calls`` when tracking went off (None: on)


def _new_list(offset: int = 0) -> list:
    return [offset] + [0] * (_EXACT - 1) + [[0] * (_BEYOND + 1) + [None]]


def record_latency(cmd, elapsed_us: int) -> None:
    """Count one call of ``cmd`` that took ``elapsed_us`` (>= 1) microseconds."""
    latency = cmd.latency
    if latency is None:
        latency = cmd.latency = _new_list()
    if elapsed_us < _EXACT:
        latency[elapsed_us] += 1
        return
    long_calls = latency[_EXACT]
    for k, top in enumerate(LEVELS_US):
        if elapsed_us <= top:
            long_calls[k] += 1
            return
    long_calls[_BEYOND] += 1


def recorded_calls(cmd) -> int:
    """The calls the histogram holds: made while latency-tracking was on, since the last RESETSTAT."""
    latency = cmd.latency
    if latency is None:
        return cmd.calls if TRACKING else 0
    frozen = latency[_EXACT][_FROZEN]
    return (cmd.calls if frozen is None else frozen) - latency[0]


def _counts(cmd) -> tuple[int, list[int], list[int]]:
    """(total, exact counts by microsecond 0..63, long-call counts by level)."""
    total = recorded_calls(cmd)
    latency = cmd.latency
    if latency is None:
        return total, [total] + [0] * (_EXACT - 1), [0] * (_BEYOND + 1)
    exact = [0] + latency[1:_EXACT]
    long_calls = latency[_EXACT][:_FROZEN]
    exact[0] = total - sum(exact) - sum(long_calls)  # 0 us: what the other calls leave
    return total, exact, long_calls


def has_histogram(cmd) -> bool:
    """Redis creates a command's histogram at its first call recorded: LATENCY HISTOGRAM lists those."""
    return recorded_calls(cmd) > 0


def cdf(cmd) -> dict:
    """fillCommandCDF: {"calls": n, "histogram_usec": {level: cumulative count}} (levels that grew)."""
    total, exact_counts, long_calls = _counts(cmd)
    buckets: dict[int, int] = {}
    cumulative = 0
    previous = 0
    exact = 0  # next exact-microsecond count to fold in
    for k, top in enumerate(LEVELS_US):
        while exact < _EXACT and exact <= top:
            cumulative += exact_counts[exact]
            exact += 1
        cumulative += long_calls[k]
        if cumulative > previous:
            buckets[top] = cumulative
        previous = cumulative
        if cumulative == total:
            break
    return {b"calls": total, b"histogram_usec": buckets}


def _highest_equivalent(ns: int) -> int:
    """HdrHistogram (1 ns .. 1e9 ns, 2 significant digits): the top of the bucket holding ``ns``."""
    bucket = max((ns | 255).bit_length() - 8, 0)
    return ((ns >> bucket) << bucket) + (1 << bucket) - 1


def _lowest_equivalent(ns: int) -> int:
    bucket = max((ns | 255).bit_length() - 8, 0)
    return (ns >> bucket) << bucket


def value_at_percentile(cmd, percentile: float) -> int:
    """hdr_value_at_percentile, in ns. Exact for calls under 64 us; a longer call counts as
    its level's top (Shoal keeps only the level of those)."""
    total, exact_counts, long_calls = _counts(cmd)
    wanted = max(int(min(percentile, 100.0) / 100 * total + 0.5), 1)
    seen = 0
    ns = 0
    for us in range(_EXACT):
        seen += exact_counts[us]
        if seen >= wanted:
            ns = us * 1000  # 0 us is recorded as 1 ns
            break
    else:
        ns = 10**9
        for k, top in enumerate(LEVELS_US):
            seen += long_calls[k]
            if seen >= wanted:
                ns = top * 1000
                break
    return _lowest_equivalent(max(ns, 1)) if percentile == 0.0 else _highest_equivalent(max(ns, 1))


def _percentile_label(value: float) -> str:
    """trimDoubleString of "%f": 50.000000 -> 50, 99.900000 -> 99.9."""
    text = "%f" % value
    return text.rstrip("0").rstrip(".") if "." in text else text


def latencystats(node) -> list[tuple[str, str]]:
    """INFO latencystats: latency_percentiles_usec_<command>:p50=..,p99=.. for commands with a histogram."""
    from node.commands.table import all_commands

    if not TRACKING:
        return []
    percentiles = node.config["latency-tracking-info-percentiles"]
    out = []

    def add(cmd) -> None:
        values = ",".join(
            "p%s=%.3f" % (_percentile_label(p), value_at_percentile(cmd, p) / 1000.0) for p in percentiles
        )
        out.append((f"latency_percentiles_usec_{cmd.fullname}", values))

    for cmd in all_commands():
        if has_histogram(cmd):
            add(cmd)
        for sub in cmd.subcommands.values():
            if has_histogram(sub):
                add(sub)
    return out


#: The ``latency-tracking`` config (the dispatcher keeps its own copy: node.dispatch.LATENCY_TRACKING).
TRACKING = True


def _set_tracking(value) -> None:
    """CONFIG SET latency-tracking: freeze the histograms (off) or count the calls from now on (on)."""
    global TRACKING
    import node.dispatch as dispatch
    from node.commands.table import all_commands

    value = bool(value)
    if value != TRACKING:
        for top in all_commands():
            for cmd in (top, *top.subcommands.values()):
                latency = cmd.latency
                if not value:  # off: the histogram keeps what it holds
                    if latency is None:
                        if not cmd.calls:
                            continue
                        latency = cmd.latency = _new_list()
                    latency[_EXACT][_FROZEN] = cmd.calls
                elif latency is None:  # on: the calls made meanwhile are not the histogram's
                    if cmd.calls:
                        cmd.latency = _new_list(cmd.calls)
                elif latency[_EXACT][_FROZEN] is not None:
                    latency[0] += cmd.calls - latency[_EXACT][_FROZEN]
                    latency[_EXACT][_FROZEN] = None
    TRACKING = dispatch.LATENCY_TRACKING = value


def install(node) -> None:
    """Keep the dispatcher's LATENCY_TRACKING in step with the ``latency-tracking`` config."""
    node.config.on_change("latency-tracking", _set_tracking)
    _set_tracking(node.config["latency-tracking"])
