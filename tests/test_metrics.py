"""The Prometheus endpoint (--metrics-port) of a real shoal-server, and deploy/prometheus/alerts.yml."""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.resp_client import RawClient, parse
from tests.servers import ServerProcess, free_port

ALERTS = Path(__file__).resolve().parent.parent / "deploy" / "prometheus" / "alerts.yml"
_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')


def parse_exposition(text: str) -> tuple[dict, dict]:
    """(types by family, {(name, frozenset(labels)): value}) from the text format; strict enough to catch junk."""
    types, samples = {}, {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            assert kind in ("gauge", "counter", "untyped"), line
            assert name not in types, f"family declared twice: {name}"
            types[name] = kind
            continue
        m = _SAMPLE.match(line)
        assert m, f"bad sample line: {line!r}"
        name, labels_text, value = m.group(1), m.group(3), m.group(4)
        assert name in types, f"sample before its TYPE: {line!r}"
        labels = frozenset(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', labels_text or ""))
        samples[(name, labels)] = float(value)
    return types, samples


@pytest.fixture(scope="module")
def metrics_node():
    mport = free_port()
    with ServerProcess("shoal", "--metrics-port", str(mport)) as proc:
        proc.metrics_port = mport
        yield proc


def scrape(proc, path: str = "/metrics") -> tuple[dict, dict]:
    with urllib.request.urlopen(f"http://127.0.0.1:{proc.metrics_port}{path}", timeout=5) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return parse_exposition(resp.read().decode())


def value(samples, name, **labels):
    return samples[(name, frozenset(labels.items()))]


def test_scrape_has_the_exporter_metrics(metrics_node):
    types, samples = scrape(metrics_node)
    for name in ("redis_up", "redis_uptime_in_seconds", "redis_connected_clients", "redis_blocked_clients",
                 "redis_memory_used_bytes", "redis_memory_max_bytes", "redis_commands_processed_total",
                 "redis_keyspace_hits_total", "redis_keyspace_misses_total", "redis_evicted_keys_total",
                 "redis_expired_keys_total", "redis_cpu_sys_seconds_total", "redis_cpu_user_seconds_total",
                 "redis_cluster_enabled", "redis_cluster_state", "redis_cluster_known_nodes",
                 "redis_cluster_slots_ok", "redis_cluster_slots_fail", "redis_connected_slaves"):
        assert (name, frozenset()) in samples, name
    for name in ("redis_db_keys", "redis_db_keys_expiring", "redis_commands_total",
                 "redis_commands_duration_seconds_total", "redis_instance_info"):
        assert name in types
    assert types["redis_commands_processed_total"] == "counter" and types["redis_connected_clients"] == "gauge"
    assert value(samples, "redis_up") == 1
    assert value(samples, "redis_cluster_enabled") == 0
    info = [labels for (name, labels) in samples if name == "redis_instance_info"]
    assert len(info) == 1 and ("redis_version", "7.0.15") in info[0] and ("role", "master") in info[0]
    assert value(samples, "redis_db_keys", db="db15") == 0


def test_values_move_after_commands(metrics_node):
    _, before = scrape(metrics_node)
    with RawClient(metrics_node.port) as c:
        c.call("SELECT", "2")
        for i in range(5):
            c.call("SET", f"k{i}", "v")
        c.call("EXPIRE", "k0", "100")
        c.call("GET", "k1")
        c.call("GET", "nosuch")
        c.call("GET", "nosuch2")
        c.call("CONFIG", "SET", "maxmemory", "123mb")
        c.call("INCR", "k1")  # fails: not an integer
        _, during = scrape(metrics_node)
        assert value(during, "redis_connected_clients") >= 1
        c.call("CONFIG", "SET", "maxmemory", "0")
        c.call("FLUSHALL")
    assert value(during, "redis_db_keys", db="db2") == 5
    assert value(during, "redis_db_keys_expiring", db="db2") == 1
    assert value(during, "redis_memory_max_bytes") == 123 * 1024 * 1024
    assert value(during, "redis_keyspace_hits_total") - value(before, "redis_keyspace_hits_total") >= 1
    assert value(during, "redis_keyspace_misses_total") - value(before, "redis_keyspace_misses_total") >= 2
    old_set = before.get(("redis_commands_total", frozenset({("cmd", "set")})), 0)
    assert value(during, "redis_commands_total", cmd="set") - old_set == 5
    assert value(during, "redis_commands_total", cmd="config|set") >= 1
    assert value(during, "redis_commands_duration_seconds_total", cmd="set") > 0
    assert value(during, "redis_commands_failed_calls_total", cmd="incr") >= 1
    assert value(during, "redis_errors_total", err="ERR") >= 1
    processed = value(during, "redis_commands_processed_total") - value(before, "redis_commands_processed_total")
    assert processed >= 12  # SELECT, 5 SET, EXPIRE, 3 GET, CONFIG SET, INCR
    assert value(during, "redis_memory_used_bytes") > 0
    assert value(during, "redis_cpu_user_seconds_total") >= value(before, "redis_cpu_user_seconds_total")


def test_other_paths_404_and_config(metrics_node):
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(f"http://127.0.0.1:{metrics_node.metrics_port}/nosuch", timeout=5)
    assert info.value.code == 404
    with RawClient(metrics_node.port) as c:
        assert parse(c.call("CONFIG", "GET", "metrics-port")) == [b"metrics-port", str(metrics_node.metrics_port).encode()]
        assert b"metrics-port" not in parse(c.call("CONFIG", "GET", "*"))  # CONFIG GET * stays Redis's list
        assert c.call("CONFIG", "SET", "metrics-port", "1").startswith(b"-ERR CONFIG SET failed")


def test_metrics_off_by_default(shoal):
    assert parse(shoal.call("CONFIG", "GET", "metrics-port")) == [b"metrics-port", b"0"]


# ------------------------------------------------------------ alerts.yml


def load_yaml_subset(text: str):
    """A tiny YAML reader for the subset deploy/ uses: block mappings and lists, plain or quoted scalars."""
    lines = []
    for raw in text.splitlines():
        stripped = raw.split(" #")[0].rstrip() if not raw.lstrip().startswith("#") else ""
        if stripped.strip():
            assert "\t" not in raw, "tabs are not valid YAML indentation"
            lines.append((len(stripped) - len(stripped.lstrip()), stripped.strip()))
    pos = 0

    def scalar(text: str):
        if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
            return text[1:-1]
        if re.fullmatch(r"-?\d+", text):
            return int(text)
        return text

    def block(indent: int):
        nonlocal pos
        if lines[pos][1].startswith("- "):
            items = []
            while pos < len(lines) and lines[pos][0] == indent and lines[pos][1].startswith("- "):
                first = lines[pos][1][2:]
                lines[pos] = (indent + 2, first)  # the item's first line, re-indented
                if ":" in first and not first.startswith(("'", '"')):
                    items.append(block(indent + 2))
                else:
                    pos += 1
                    items.append(scalar(first))
            return items
        mapping = {}
        while pos < len(lines) and lines[pos][0] == indent and not lines[pos][1].startswith("- "):
            key, _, rest = lines[pos][1].partition(":")
            assert key and key not in mapping, lines[pos]
            rest = rest.strip()
            pos += 1
            if rest:
                mapping[key] = scalar(rest)
            else:
                assert pos < len(lines) and lines[pos][0] >= indent, f"empty value for {key}"
                mapping[key] = block(lines[pos][0])
        assert pos >= len(lines) or lines[pos][0] < indent, f"bad indentation at {lines[pos]}"
        return mapping

    doc = block(0)
    assert pos == len(lines)
    return doc


_PROMQL_WORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "increase", "rate", "sum", "max",
                 "min", "avg", "up"}  # `up` is Prometheus's own per-target metric


def referenced_metrics(expr: str) -> set[str]:
    expr = re.sub(r'"[^"]*"', "", expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    return {w for w in re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr) if w not in _PROMQL_WORDS}


def test_alert_rules_parse_and_use_exported_metrics(metrics_node):
    doc = load_yaml_subset(ALERTS.read_text())
    rules = [rule for group in doc["groups"] for rule in group["rules"]]
    names = {rule["alert"] for rule in rules}
    assert {"ShoalInstanceDown", "ShoalHighEvictions", "ShoalMemoryHigh", "ShoalReplicationLag",
            "ShoalClusterDown"} <= names
    types, _ = scrape(metrics_node)
    used = set()
    for rule in rules:
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"]
        metrics = referenced_metrics(rule["expr"])
        assert metrics, rule
        missing = metrics - set(types)
        assert not missing, f"{rule['alert']} uses metrics the endpoint does not export: {missing}"
        used |= metrics
    assert {"redis_evicted_keys_total", "redis_memory_used_bytes", "redis_memory_max_bytes",
            "redis_connected_slave_lag_seconds", "redis_cluster_state", "redis_up"} <= used


def test_yaml_subset_reader_rejects_bad_input():
    assert load_yaml_subset("a:\n  - b: 1\n    c: 'x'\n  - d: y\n") == {"a": [{"b": 1, "c": "x"}, {"d": "y"}]}
    with pytest.raises(AssertionError):
        load_yaml_subset("a: 1\na: 2\n")
    with pytest.raises(AssertionError):
        load_yaml_subset("a:\n  b: 1\n c: 2\n")
