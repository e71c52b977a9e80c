"""The latency monitor (Redis's latency.c): per-event time series of spikes.

An event ("command", "fast-command", "expire-cycle"...) gets a sample when
something took at least ``latency-monitor-threshold`` milliseconds. Each
series keeps the last 160 seconds that had a spike (one sample per second:
the worst of that second) and the all-time maximum.
"""

from __future__ import annotations

import time
from typing import Callable

__all__ = ["LatencyMonitor", "TS_LEN", "doctor_report", "graph", "sparkline"]

TS_LEN = 160  # LATENCY_TS_LEN


class Series:
    __slots__ = ("samples", "idx", "max")

    def __init__(self) -> None:
        self.samples = [(0, 0)] * TS_LEN  # (unix time, latency ms); time 0 = empty
        self.idx = 0
        self.max = 0

    def in_order(self) -> list[tuple[int, int]]:
        """Non-empty samples, oldest first."""
        out = []
        for j in range(TS_LEN):
            sample = self.samples[(self.idx + j) % TS_LEN]
            if sample[0]:
                out.append(sample)
        return out

    def latest(self) -> tuple[int, int]:
        return self.samples[(self.idx + TS_LEN - 1) % TS_LEN]


class LatencyMonitor:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.events: dict[str, Series] = {}

    def add(self, event: str, latency_ms: int) -> None:
        """latencyAddSample: one sample per second per event, the worst one."""
        now = int(self.clock())
        series = self.events.get(event)
        if series is None:
            series = self.events[event] = Series()
        if latency_ms > series.max:
            series.max = latency_ms
        prev = (series.idx + TS_LEN - 1) % TS_LEN
        when, value = series.samples[prev]
        if when == now:
            if latency_ms > value:
                series.samples[prev] = (now, latency_ms)
            return
        series.samples[series.idx] = (now, latency_ms)
        series.idx = (series.idx + 1) % TS_LEN

    def reset(self, event: bytes | None = None) -> int:
        """Forget one event (matched case-insensitively, as strcasecmp) or all; how many were reset."""
        if event is None:
            count = len(self.events)
            self.events.clear()
            return count
        wanted = event.lower()
        gone = [name for name in self.events if name.encode().lower() == wanted]
        for name in gone:
            del self.events[name]
        return len(gone)

    def find(self, event: bytes) -> tuple[str, Series] | None:
        """Exact (case-sensitive) lookup, as dictFetchValue with strcmp."""
        name = event.decode("utf-8", "surrogateescape")
        series = self.events.get(name)
        return None if series is None else (name, series)

    def stats(self, series: Series) -> dict:
        """analyzeLatencyForEvent: samples, avg, mean absolute deviation, period."""
        samples = [s for s in series.samples if s[0]]
        n = len(samples)
        if not n:
            return {"samples": 0, "avg": 0, "mad": 0, "period": 0, "min": 0, "max": 0}
        total = sum(v for _, v in samples)
        avg = total // n
        oldest = min(t for t, _ in samples)
        period = int(self.clock()) - oldest
        if period == 0:
            period = 1
        mad = sum(abs(avg - v) for _, v in samples) // n
        return {"samples": n, "avg": avg, "mad": mad, "period": period,
                "min": min(v for _, v in samples), "max": max(v for _, v in samples)}


# ------------------------------------------------------------------ DOCTOR

_DISABLED = (
    "I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Redis instance. You may use "
    "\"CONFIG SET latency-monitor-threshold <milliseconds>.\" in order to enable it. If we weren't in a deep "
    "space mission I'd suggest to take a look at https://redis.io/topics/latency-monitor.\n"
)

_ADVICE = {
    "large_objects": (
        "- Deleting, expiring or evicting (because of maxmemory policy) large objects is a blocking operation. "
        "If you have very large objects that are often deleted, expired, or evicted, try to fragment those "
        "objects into multiple smaller objects.\n"
    ),
    "slowlog_inspect": (
        "- Check your Slow Log to understand what are the commands you are running which are too slow to "
        "execute. Please check https://redis.io/commands/slowlog for more information.\n"
    ),
    "scheduler": (
        "- The system is slow to execute Redis code paths not containing system calls. This usually means the "
        "system does not provide Redis CPU time to run for long periods. You should try to:\n"
        "  1) Lower the system load.\n"
        "  2) Use a computer / VM just for Redis if you are running other software in the same system.\n"
        "  3) Check if you have a \"noisy neighbour\" problem.\n"
        "  4) Check with 'redis-cli --intrinsic-latency 100' what is the intrinsic latency in your system.\n"
        "  5) Check if the problem is allocator-related by recompiling Redis with MALLOC=libc, if you are "
        "using Jemalloc. However this may create fragmentation problems.\n"
    ),
    "hz": (
        "- In order to make the Redis keys expiring process more incremental, try to set the 'hz' "
        "configuration parameter to 100 using 'CONFIG SET hz 100'.\n"
    ),
    "mass_eviction": (
        "- Sudden changes to the 'maxmemory' setting via 'CONFIG SET', or allocation of large objects via sets "
        "or sorted sets intersections, STORE option of SORT, Redis Cluster large keys migrations (RESTORE "
        "command), may create sudden memory pressure forcing the server to block trying to evict keys. \n"
    ),
    "disable_thp": (
        "- I detected a non zero amount of anonymous huge pages used by your process. This creates very serious "
        "latency events in different conditions, especially when Redis is persisting on disk. To disable THP "
        "support use the command 'echo never > /sys/kernel/mm/transparent_hugepage/enabled', make sure to also "
        "add it into /etc/rc.local so that the command will be executed again after a reboot. Note that even if "
        "you have already disabled THP, you still need to restart the Redis process to get rid of the huge "
        "pages already created.\n"
    ),
}


def anon_huge_pages_bytes() -> int:
    """AnonHugePages of this process, summed over /proc/self/smaps (0 if unknown)."""
    total = 0
    try:
        with open("/proc/self/smaps", "rb") as fh:
            for line in fh:
                if line.startswith(b"AnonHugePages:"):
                    total += int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return 0
    return total


def doctor_report(monitor: LatencyMonitor, config) -> str:
    """createLatencyReport: one line per event, then the advices, in Redis's words."""
    threshold = config["latency-monitor-threshold"]
    if not monitor.events and threshold == 0:
        return _DISABLED
    advise: set[str] = set()
    advices = 0
    lines = []
    for number, (event, series) in enumerate(monitor.events.items(), 1):
        if number == 1:
            lines.append("Dave, I have observed latency spikes in this Redis instance. "
                         "You don't mind talking about it, do you Dave?\n\n")
        st = monitor.stats(series)
        line = ("%d. %s: %d latency spikes (average %dms, mean deviation %dms, period %.2f sec). "
                "Worst all time event %dms." % (number, event, st["samples"], st["avg"], st["mad"],
                                               st["period"] / st["samples"] if st["samples"] else 0.0,
                                               series.max))
        low = event.lower()
        if low == "command":
            slower = config["slowlog-log-slower-than"]
            if slower < 0:
                advise.add("slowlog_enabled")
                advices += 1
            elif slower // 1000 > threshold:
                advise.add("slowlog_tuning")
                advices += 1
            advise.update(("slowlog_inspect", "large_objects"))
            advices += 2
        elif low == "fast-command":
            advise.add("scheduler")
            advices += 1
        elif low == "expire-cycle":
            advise.update(("hz", "large_objects"))
            advices += 2
        elif low == "eviction-del":
            advise.add("large_objects")
            advices += 1
        elif low == "eviction-cycle":
            advise.add("mass_eviction")
            advices += 1
        lines.append(line + "\n")
    if anon_huge_pages_bytes() > 0:
        advise.add("disable_thp")
        advices += 1
    events = len(monitor.events)
    if events == 0 and advices == 0:
        lines.append("Dave, no latency spike was observed during the lifetime of this Redis instance, not in the "
                     "slightest bit. I honestly think you ought to sit down calmly, take a stress pill, and think "
                     "things over.\n")
    elif events > 0 and advices == 0:
        lines.append("\nWhile there are latency events logged, I'm not able to suggest any easy fix. Please use "
                     "the Redis community to get some help, providing this report in your help request.\n")
    else:
        lines.append("\nI have a few advices for you:\n\n")
        if "slowlog_enabled" in advise:
            lines.append(
                "- There are latency issues with potentially slow commands you are using. Try to enable the Slow "
                "Log Redis feature using the command 'CONFIG SET slowlog-log-slower-than %d'. If the Slow log is "
                "disabled Redis is not able to log slow commands execution for you.\n" % (threshold * 1000))
        if "slowlog_tuning" in advise:
            lines.append(
                "- Your current Slow Log configuration only logs events that are slower than your configured "
                "latency monitor threshold. Please use 'CONFIG SET slowlog-log-slower-than %d'.\n"
                % (threshold * 1000))
        for key in ("slowlog_inspect", "scheduler"):
            if key in advise:
                lines.append(_ADVICE[key])
        if "hz" in advise and config["hz"] < 100:
            lines.append(_ADVICE["hz"])
        for key in ("large_objects", "mass_eviction", "disable_thp"):
            if key in advise:
                lines.append(_ADVICE[key])
    return "".join(lines)


# ------------------------------------------------------------------- GRAPH

_CHARSET_FILL = "_o#"
_ROWS = 4
_COLUMNS = 80


def sparkline(samples: list[tuple[float, str]], columns: int = _COLUMNS, rows: int = _ROWS) -> str:
    """sparklineRender with SPARKLINE_FILL: ``samples`` are (value, label)."""
    if not samples:
        return ""
    values = [v for v, _ in samples]
    lo, hi = values[0], values[0]
    for v in values[1:]:  # sparklineSequenceAddSample's min/max (an else-if, as in C)
        if v < lo:
            lo = v
        elif v > hi:
            hi = v
    labels = sum(1 for _, label in samples if label)
    out = []
    for start in range(0, len(samples), columns):
        if start:
            out.append("\n")
        out.append(_render_range(samples[start:start + columns], lo, hi, labels, rows))
    return "".join(out)


def _render_range(part, lo, hi, labels, rows) -> str:
    relmax = hi - lo
    if relmax == 0:
        relmax = 1
    steps = len(_CHARSET_FILL) * rows
    out = []
    row = 0
    while True:
        loop = False
        chars = [" "] * len(part)
        for j, (value, label) in enumerate(part):
            step = int(int((value - lo) * steps) / relmax)  # C: (int)(relval*steps)/relmax
            step = max(0, min(step, steps - 1))
            if row < rows:
                loop = True
                charidx = step - (rows - row - 1) * len(_CHARSET_FILL)
                if 0 <= charidx < len(_CHARSET_FILL):
                    chars[j] = _CHARSET_FILL[charidx]
                elif charidx >= len(_CHARSET_FILL):
                    chars[j] = "|"
            else:
                if labels and row - rows < 1:
                    loop = True
                    break
                if label:
                    label_char = row - rows - 1
                    if len(label) > label_char:
                        loop = True
                        chars[j] = label[label_char]
        if not loop:
            break
        row += 1
        out.append("".join(chars) + "\n")
    return "".join(out)


def graph(event: str, series: Series, now: int) -> str:
    """latencyCommandGenSparkeline: a header, a rule, then the sparkline with age labels."""
    samples = []
    lo = hi = 0
    for when, value in series.in_order():
        if not samples:
            lo = hi = value
        else:
            hi = max(hi, value)
            lo = min(lo, value)
        elapsed = now - when
        if elapsed < 60:
            label = "%ds" % elapsed
        elif elapsed < 3600:
            label = "%dm" % (elapsed // 60)
        elif elapsed < 86400:
            label = "%dh" % (elapsed // 3600)
        else:
            label = "%dd" % (elapsed // 86400)
        samples.append((float(value), label))
    head = "%s - high %d ms, low %d ms (all time high %d ms)\n" % (event, hi, lo, series.max)
    return head + "-" * _COLUMNS + "\n" + sparkline(samples)

