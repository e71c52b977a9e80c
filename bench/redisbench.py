"""Run one ``redis-benchmark --csv`` invocation (one test, one pipeline depth) and parse it.

redis-benchmark 7 prints, with ``--csv``::

    "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
    "SET","95693.77","0.271","0.056","0.271","0.327","0.511","1.807"

(MSET's row is named ``"MSET (10 keys)"``: one request is one MSET of 10 keys.)
Older redis-benchmark versions print only ``"test","rps"``; the parser requires the
latency columns and says so if they are missing.
"""

from __future__ import annotations

import csv
import io
import shutil
import subprocess

__all__ = ["BenchmarkError", "CSV_COLUMNS", "parse_csv", "run_redis_benchmark", "redis_benchmark_path"]

# CSV column -> key in our result dicts.
CSV_COLUMNS = {
    "rps": "rps",
    "avg_latency_ms": "avg_ms",
    "min_latency_ms": "min_ms",
    "p50_latency_ms": "p50_ms",
    "p95_latency_ms": "p95_ms",
    "p99_latency_ms": "p99_ms",
    "max_latency_ms": "max_ms",
}


class BenchmarkError(RuntimeError):
    pass


#: Tests redis-benchmark has no ``-t`` name for: run as a custom command line.
#: Its CSV row is named after the command line, so the row key is the command name.
CUSTOM_TESTS = {
    # Bounded with approximate trimming so millions of requests do not hold millions of entries.
    "xadd": ("XADD", "bench:stream", "MAXLEN", "~", "100000", "*", "field", "value"),
    # The "10-command Lua script": five SET/GET pairs on one key.
    "lua10": (
        "EVAL",
        "local k = KEYS[1] for i = 1, 5 do redis.call('SET', k, i) redis.call('GET', k) end return 1",
        "1",
        "bench:lua",
    ),
}


def redis_benchmark_path() -> str:
    path = shutil.which("redis-benchmark")
    if path is None:
        raise RuntimeError("redis-benchmark is not installed (apt-get install redis-tools)")
    return path


def parse_csv(text: str) -> dict[str, dict[str, float]]:
    """``{"SET": {"rps": ..., "avg_ms": ..., ...}, "MSET": {...}}`` from ``--csv`` output."""
    rows = [r for r in csv.reader(io.StringIO(text)) if r]
    if not rows:
        return {}
    header = rows[0]
    if not header or header[0] != "test":
        raise BenchmarkError(f"unexpected redis-benchmark CSV header: {header!r}")
    missing = [c for c in CSV_COLUMNS if c not in header]
    if missing:
        raise BenchmarkError(f"redis-benchmark CSV lacks columns {missing} (need redis-benchmark >= 7)")
    index = {name: header.index(name) for name in CSV_COLUMNS}
    out: dict[str, dict[str, float]] = {}
    for row in rows[1:]:
        name = row[0].split()[0].upper()  # "MSET (10 keys)" -> "MSET"
        out[name] = {key: float(row[index[col]]) for col, key in CSV_COLUMNS.items()}
    return out


def run_redis_benchmark(
    port: int, test: str, *, requests: int, pipeline: int, clients: int = 50,
    host: str = "127.0.0.1", timeout: float | None = None,
) -> tuple[dict[str, float], list[str]]:
    """Run one test; return (metrics, argv). Raises BenchmarkError with stderr on failure."""
    argv = [
        redis_benchmark_path(), "-h", host, "-p", str(port), "-c", str(clients),
        "-n", str(requests), "-P", str(pipeline), "--csv",
    ]
    custom = CUSTOM_TESTS.get(test.lower())
    argv += list(custom) if custom is not None else ["-t", test.lower()]
    if timeout is None:
        # Generous: assumes the server manages at least 1,000 requests/s.
        timeout = 60.0 + requests / 1000.0
    try:
        done = subprocess.run(
            argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchmarkError(f"redis-benchmark timed out after {timeout:.0f}s: {' '.join(argv)}") from exc
    rows = parse_csv(done.stdout)
    key = custom[0].upper() if custom is not None else test.upper()
    if done.returncode != 0 or key not in rows:
        err = " | ".join(line for line in done.stderr.splitlines() if line.strip() and "WARNING" not in line)
        raise BenchmarkError(
            f"redis-benchmark exit {done.returncode}, no {key} row: {err[:500] or done.stdout[:500]}"
        )
    return rows[key], argv
