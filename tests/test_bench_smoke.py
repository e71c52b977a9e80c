"""`make bench` still runs: a tiny `python -m bench.run_bench --quick` writes a sane JSON file.

No timing assertions -- the machine is shared; only shape and sign of the numbers are checked.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(
    shutil.which("redis-server") is None or shutil.which("redis-benchmark") is None,
    reason="needs redis-server and redis-benchmark",
)


# A few data types, a custom command line (XADD) and the Lua script, to keep the smoke run short.
TESTS = ("SET", "GET", "MSET", "LPUSH", "ZADD", "XADD", "LUA10")


def test_bench_quick_writes_results(tmp_path):
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    done = subprocess.run(
        [sys.executable, "-m", "bench.run_bench", "--quick", "--requests", "2000", "--keys", "2000",
         "--rounds", "1", "--tests", ",".join(t.lower() for t in TESTS), "--results-dir", str(tmp_path),
         "--cluster-requests", "5000", "--cluster-requests-pipelined", "20000"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    files = list(tmp_path.glob("bench-*.json"))
    assert len(files) == 1, files
    res = json.loads(files[0].read_text())

    assert res["complete"] is True
    assert res["machine"]["nproc"] >= 1
    assert "7." in res["machine"]["redis_version"]
    assert res["config"]["requests"] == {"1": 2000, "16": 20000}
    assert res["config"]["tests"] == list(TESTS)

    # Every test/pipeline/server combination ran once: a result or a recorded error.
    for kind in ("redis", "shoal"):
        for test in TESTS:
            for p in ("1", "16"):
                runs = res["runs"][kind][test][p]
                assert len(runs) == 1
                assert "rps" in runs[0] or runs[0].get("error")

    # Every test must work on both servers: positive throughput, CPU figures present.
    for kind in ("redis", "shoal"):
        for test in TESTS:
            for p in ("1", "16"):
                m = res["medians"][kind][test][p]
                assert "error" not in m, m
                assert m["rps"] > 0
                assert m["requests"] == (2000 if p == "1" else 20000)
                assert isinstance(m["cpu_ticks"], (int, float)) and m["cpu_ticks"] >= 0
                assert m["cpu_us_per_op"] >= 0
                for key in ("avg_ms", "min_ms", "p50_ms", "p95_ms", "p99_ms", "max_ms"):
                    assert m[key] >= 0
            assert res["ratios"][test]["1"]["ops_ratio"] > 0
    # Redis handles every test too.
    for test in TESTS:
        assert res["medians"]["redis"][test]["1"]["rps"] > 0

    mem = res["memory"]
    for kind in ("redis", "shoal"):
        assert mem[kind]["dbsize"] == 2000
        assert mem[kind]["rss_after"] > 0
    assert {t["metric"] for t in res["targets"]} == {"cpu_ratio", "ops_ratio", "memory_ratio"}
    assert isinstance(res["all_targets_met"], bool)
    assert "results:" in done.stdout and "targets:" in done.stdout

    # The cluster section ran both kinds of 3-primary cluster.
    cluster = res["cluster"]
    for kind in ("redis", "shoal"):
        for test in ("SET", "GET"):
            for p in ("1", "16"):
                run = cluster["runs"][kind][test][p]
                assert "error" not in run, run
                assert run["rps"] > 0
    assert len(cluster["targets"]) == 8
