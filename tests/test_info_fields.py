"""INFO, differentially: sections, their order, field names and value formats, after the same workload.

A fresh redis-server 7.0 and a fresh Shoal (standalone, then a one-node
cluster owning every slot) get the same commands -- writes in two databases,
keys with TTLs, reads that hit and miss, subcommands, and errors of several
codes (wrong type, unknown command, wrong arity, syntax) so that
# Commandstats, # Errorstats and # Keyspace have the same entries. Then every
way of asking -- no argument, default, all, everything, each section alone
(any case), several sections at once, unknown names -- must give the same
section headers in the same order with the same field names in the same
order (tests/test_server_commands.py compares a few of these on the session
servers; this file covers every section, cluster mode and the values).

Values: counters that both servers must agree on after the workload are
compared exactly (errorstat_* counts, cmdstat_* calls/failed/rejected, db*
keys/expires, keyspace hits/misses...); every other field is compared by its
format -- integer, decimal with two or more digits, percentage, human size,
``k=v,...`` list, or text -- so a monitoring tool parsing Redis's INFO parses
Shoal's. Exceptions are listed in ``FORMAT_EXCEPTIONS`` with their reason.
# Commandstats and # Latencystats are compared as sets of lines: Redis prints
them in its command dict's hash order.
"""

from __future__ import annotations

import re
import socket
import time

import pytest

from tests.known_differences import INFO_EXTRA_FIELDS
from tests.resp_client import RawClient, encode_command, parse
from tests.servers import ServerProcess

ORDER = ["Server", "Clients", "Memory", "Persistence", "Stats", "Replication", "CPU", "Modules", "Commandstats",
         "Errorstats", "Latencystats", "Cluster", "Keyspace"]
DEFAULT = ["Server", "Clients", "Memory", "Persistence", "Stats", "Replication", "CPU", "Modules", "Errorstats",
           "Cluster", "Keyspace"]

#: field -> why its value format may differ from Redis's
FORMAT_EXCEPTIONS = {
    "redis_build_id": "Redis prints a hex hash of its build; Shoal has no C build and prints 0",
}

WORKLOAD = [
    ("SET", "s", "1"), ("GET", "s"), ("GET", "missing"), ("INCR", "s"), ("INCRBY", "s", "x"),
    ("LPUSH", "l", "a", "b"), ("LRANGE", "l", "0", "-1"), ("GET", "l"), ("HSET", "h", "f", "v"),
    ("HGET", "h", "f"), ("HGET", "h", "nope"), ("SADD", "st", "m"), ("ZADD", "z", "1", "m"), ("ZADD", "z", "x", "m"),
    ("EXPIRE", "s", "1000"), ("SET", "t", "v", "EX", "500"), ("SETEX", "t2", "100", "v"),
    ("PSETEX", "t3", "100000", "v"), ("GETEX", "t3", "EX", "200"), ("GETEX", "t3", "PERSIST"), ("PERSIST", "t3"),
    ("SET", "bad", "v", "EX", "-5"), ("NOSUCHCMD", "x"),
    ("GET",), ("SET", "a", "b", "NX", "XX"), ("OBJECT", "ENCODING", "l"), ("OBJECT", "FOO"), ("CONFIG", "GET", "hz"),
    ("CLIENT", "ID"), ("EXISTS", "s", "missing"), ("TYPE", "h"), ("DEL", "st"), ("MULTI",), ("INCR", "s"),
    ("EXEC",), ("EXEC",), ("SELECT", "3"), ("SET", "k3", "v"), ("PEXPIRE", "k3", "100000"), ("SELECT", "0"),
    ("XADD", "x", "*", "f", "v"), ("XADD", "x", "0-0", "f", "v"), ("EVAL", "return 1", "0"),
]


def sections(raw: bytes) -> list[tuple[str, list[tuple[str, str]]]]:
    body = parse(raw)
    assert isinstance(body, bytes), body
    out: list[tuple[str, list[tuple[str, str]]]] = []
    for line in body.decode().split("\r\n"):
        if line.startswith("# "):
            out.append((line[2:], []))
        elif line:
            key, sep, value = line.partition(":")
            assert sep, line
            out[-1][1].append((key, value))
    return out


def value_format(value: str) -> str:
    if value == "":
        return "empty"
    if re.fullmatch(r"-?\d+", value):
        return "int"
    if re.fullmatch(r"-?\d+\.\d+", value):
        return "decimal"
    if re.fullmatch(r"-?\d+\.\d+%", value):
        return "percent"
    if re.fullmatch(r"\d+(\.\d+)?[BKMGTP]", value):
        return "human"
    if re.fullmatch(r"([\w.|]+=[^,]*)(,[\w.|]+=[^,]*)+", value):
        return "list:" + ",".join(part.split("=")[0] for part in value.split(","))
    return "text"


def run_workload(client: RawClient) -> None:
    for argv in WORKLOAD:
        client.call(*argv)


def _cluster_ok(client: RawClient) -> bool:
    return b"cluster_state:ok" in parse(client.call("CLUSTER", "INFO"))


@pytest.fixture(scope="module", params=["standalone", "cluster"])
def pair(request):
    extra = ("--cluster-enabled", "yes") if request.param == "cluster" else ()
    with ServerProcess("redis", *extra) as real, ServerProcess("shoal", *extra) as shoal:
        with RawClient(real.port) as r, RawClient(shoal.port) as s:
            if request.param == "cluster":
                for c in (r, s):
                    assert c.call("CLUSTER", "ADDSLOTSRANGE", "0", "16383") == b"+OK\r\n"
                deadline = time.monotonic() + 20
                while not (_cluster_ok(r) and _cluster_ok(s)):
                    assert time.monotonic() < deadline, "cluster_state never ok"
                    time.sleep(0.05)
                workload = [argv for argv in WORKLOAD if argv[0] != "SELECT" and argv[1:2] != ("k3",)]
            else:
                workload = WORKLOAD
            for c in (r, s):
                for argv in workload:
                    c.call(*argv)
            yield request.param, r, s


def _names(secs) -> list[tuple[str, list[str]]]:
    return [(title, [k for k, _ in fields if k not in INFO_EXTRA_FIELDS.get(title, ())]) for title, fields in secs]


def _compare(real_raw: bytes, shoal_raw: bytes) -> None:
    real, ours = sections(real_raw), sections(shoal_raw)
    assert [t for t, _ in ours] == [t for t, _ in real]
    for (title, real_names), (_, our_names) in zip(_names(real), _names(ours)):
        if title in ("Commandstats", "Latencystats"):
            # Redis lists commands in its command dict's (hash) order; the set of lines is compared.
            assert sorted(our_names) == sorted(real_names), title
        else:
            assert our_names == real_names, title


ARGS = [
    (), ("default",), ("all",), ("everything",), ("DEFAULT",), ("Everything",),
    *[(name.lower(),) for name in ORDER], ("SERVER",), ("KeySpace",),
    ("server", "clients"), ("clients", "server"), ("commandstats", "errorstats"), ("all", "commandstats"),
    ("default", "commandstats", "latencystats"), ("everything", "bogus"), ("bogus",), ("bogus", "cpu"),
    ("server", "server"), ("modules",), ("module_list",), ("cluster", "keyspace", "memory"),
]


@pytest.mark.parametrize("args", ARGS, ids=lambda a: "-".join(a) or "none")
def test_sections_and_field_names(pair, args):
    _, r, s = pair
    _compare(r.call("INFO", *args), s.call("INFO", *args))


def test_section_sets(pair):
    _, r, s = pair
    assert [t for t, _ in sections(s.call("INFO"))] == DEFAULT
    assert [t for t, _ in sections(s.call("INFO", "everything"))] == ORDER
    assert [t for t, _ in sections(s.call("INFO", "all"))] == ORDER
    assert s.call("INFO", "bogus") == r.call("INFO", "bogus") == b"$0\r\n\r\n"


def test_value_formats(pair):
    _, r, s = pair
    real = {title: dict(fields) for title, fields in sections(r.call("INFO", "everything"))}
    ours = {title: dict(fields) for title, fields in sections(s.call("INFO", "everything"))}
    checked = 0
    for title, fields in real.items():
        for name, value in fields.items():
            if name in FORMAT_EXCEPTIONS or name not in ours[title]:
                continue
            assert value_format(ours[title][name]) == value_format(value), (title, name, value, ours[title][name])
            checked += 1
    assert checked > 200


def _counts(raw: bytes, title: str, keys: tuple[str, ...]) -> dict[str, dict[str, str]]:
    out = {}
    for t, fields in sections(raw):
        if t == title:
            for name, value in fields:
                parts = dict(p.split("=", 1) for p in value.split(","))
                out[name] = {k: parts[k] for k in keys}
    return out


def test_counters_after_the_workload(pair):
    mode, r, s = pair
    real_raw, our_raw = r.call("INFO", "everything"), s.call("INFO", "everything")
    # Every command counted the same way: calls, and calls that failed or were rejected.
    keys = ("calls", "rejected_calls", "failed_calls")
    real_cmds, our_cmds = _counts(real_raw, "Commandstats", keys), _counts(our_raw, "Commandstats", keys)
    real_cmds.pop("cmdstat_info"), our_cmds.pop("cmdstat_info")  # INFO runs in the fixture's order
    for name in ("cmdstat_cluster|info", "cmdstat_cluster|addslotsrange"):  # polled until the cluster is ok
        real_cmds.pop(name, None), our_cmds.pop(name, None)
    assert our_cmds == real_cmds
    assert _counts(our_raw, "Errorstats", ("count",)) == _counts(real_raw, "Errorstats", ("count",))
    assert {"errorstat_ERR", "errorstat_WRONGTYPE"} <= set(_counts(real_raw, "Errorstats", ("count",)))
    assert _counts(our_raw, "Keyspace", ("keys", "expires")) == _counts(real_raw, "Keyspace", ("keys", "expires"))
    real = {t: dict(f) for t, f in sections(real_raw)}
    ours = {t: dict(f) for t, f in sections(our_raw)}
    for name in ("keyspace_hits", "keyspace_misses", "total_error_replies", "unexpected_error_replies",
                 "expired_keys", "evicted_keys", "pubsub_channels", "rdb_changes_since_last_save"):
        assert ours["Stats"].get(name, ours["Persistence"].get(name)) == \
            real["Stats"].get(name, real["Persistence"].get(name)), name
    assert ours["Cluster"] == real["Cluster"] == {"cluster_enabled": "1" if mode == "cluster" else "0"}
    assert ours["Server"]["redis_mode"] == real["Server"]["redis_mode"]
    assert ours["Replication"]["role"] == real["Replication"]["role"] == "master"


def test_reads_and_writes_processed_count_like_redis(pair):
    """One read per socket read and one write per reply flush: sequential PINGs move both by one each,
    a pipeline of ten by one in all."""
    _, r, s = pair

    def io_counts(client) -> tuple[int, int]:
        stats = dict(dict(sections(client.call("INFO", "stats")))["Stats"])
        return int(stats["total_reads_processed"]), int(stats["total_writes_processed"])

    def deltas(client) -> tuple[tuple[int, int], tuple[int, int]]:
        start = io_counts(client)
        for _ in range(10):
            assert client.call("PING") == b"+PONG\r\n"
        middle = io_counts(client)
        assert client.pipeline([("PING",)] * 10) == [b"+PONG\r\n"] * 10
        end = io_counts(client)
        return (middle[0] - start[0], middle[1] - start[1]), (end[0] - middle[0], end[1] - middle[1])

    real, ours = deltas(r), deltas(s)
    assert ours == real
    (sequential_reads, sequential_writes), (pipelined_reads, _) = real
    assert sequential_reads >= 10 and sequential_writes >= 10 and pipelined_reads < 10


# ------------------------------------- the Prometheus endpoint reads the same INFO (node/monitoring/metrics.py)


def _scrape(port: int) -> dict[tuple[str, frozenset], float]:
    import urllib.request

    from tests.test_metrics import parse_exposition

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        return parse_exposition(resp.read().decode())[1]


def test_exporter_metrics_for_replication_slowlog_and_persistence():
    """The redis_exporter families ElastiCache-style dashboards use, with values from INFO on both link ends."""
    from tests.servers import free_port

    pm, rm = free_port(), free_port()
    with ServerProcess("shoal", "--metrics-port", str(pm), "--slowlog-log-slower-than", "0",
                       "--latency-monitor-threshold", "1", "--enable-debug-command", "yes") as primary, \
            RawClient(primary.port) as p:
        with ServerProcess("shoal", "--metrics-port", str(rm), "--replicaof", "127.0.0.1", str(primary.port)) \
                as replica, RawClient(replica.port) as r:
            deadline = time.monotonic() + 20
            while b"master_link_status:up" not in parse(r.call("INFO", "replication")):
                assert time.monotonic() < deadline, replica.log()
                time.sleep(0.05)
            assert p.call("SET", "k", "v", "EX", "100") == b"+OK\r\n"
            assert p.call("DEBUG", "SLEEP", "0.01") == b"+OK\r\n"  # a latency spike (command event)
            while r.call("EXISTS", "k") != b":1\r\n":
                assert time.monotonic() < deadline
                time.sleep(0.05)
            while b",offset=0," in parse(p.call("INFO", "replication")):  # the replica acks once a second
                assert time.monotonic() < deadline
                time.sleep(0.05)
            ps, rs = _scrape(pm), _scrape(rm)
            lag = [(labels, v) for (name, labels), v in ps.items() if name == "redis_connected_slave_lag_seconds"]
            assert len(lag) == 1 and dict(lag[0][0])["slave_state"] == "online"
            assert dict(lag[0][0])["slave_port"] == str(replica.port) and lag[0][1] >= 0
            offsets = [v for (name, _), v in ps.items() if name == "redis_connected_slave_offset_bytes"]
            assert len(offsets) == 1 and offsets[0] > 0
            assert ps[("redis_connected_slaves", frozenset())] == 1
            assert rs[("redis_master_link_up", frozenset())] == 1
            assert rs[("redis_master_sync_in_progress", frozenset())] == 0
            assert rs[("redis_master_last_io_seconds_ago", frozenset())] >= 0
            assert rs[("redis_slave_repl_offset", frozenset())] > 0
            assert ("redis_master_link_up", frozenset()) not in ps  # only a replica has a link to its primary
            # Slow log: every command is slow at threshold 0.
            assert ps[("redis_slowlog_length", frozenset())] >= 2
            assert ps[("redis_slowlog_last_id", frozenset())] >= 1
            assert ps[("redis_last_slow_execution_duration_seconds", frozenset())] >= 0
            assert ps[("redis_latency_spike_duration_seconds", frozenset({("event_name", "command")}))] >= 0.01
            assert ps[("redis_latency_spike_last", frozenset({("event_name", "command")}))] > 1e9
            # Persistence, CPU of the main thread, start time, TTLs.
            assert ps[("redis_rdb_last_bgsave_status", frozenset())] == 1
            assert ps[("redis_rdb_changes_since_last_save", frozenset())] >= 1
            assert ps[("redis_aof_last_write_status", frozenset())] == 1
            assert ps[("redis_cpu_user_main_thread_seconds_total", frozenset())] > 0
            assert abs(ps[("redis_start_time_seconds", frozenset())] - time.time()) < 600
            assert 0 < ps[("redis_db_avg_ttl_seconds", frozenset({("db", "db0")}))] <= 100
            for name in ("redis_cluster_messages_sent_total", "redis_cluster_messages_received_total"):
                assert ps[(name, frozenset())] == 0  # standalone


def _primary_and_replica_info(kind: str):
    with ServerProcess(kind) as primary, RawClient(primary.port) as p:
        with ServerProcess(kind, "--replicaof", "127.0.0.1", str(primary.port)) as replica, \
                RawClient(replica.port) as r:
            deadline = time.monotonic() + 20
            while b"master_link_status:up" not in parse(r.call("INFO", "replication")):
                assert time.monotonic() < deadline, replica.log()
                time.sleep(0.05)
            assert p.call("SET", "a", "1") == b"+OK\r\n"
            while r.call("GET", "a") != b"$1\r\n1\r\n" or b",offset=0," in parse(p.call("INFO", "replication")):
                assert time.monotonic() < deadline
                time.sleep(0.05)
            return p.call("INFO", "everything"), r.call("INFO", "everything")


def test_replication_fields_on_both_ends():
    """A primary with a connected replica (slave0:ip=...,lag=...) and the replica (master_* fields)."""
    real_p, real_r = _primary_and_replica_info("redis")
    our_p, our_r = _primary_and_replica_info("shoal")
    for real, ours in ((real_p, our_p), (real_r, our_r)):
        _compare(real, ours)
        real_s = {t: dict(f) for t, f in sections(real)}
        our_s = {t: dict(f) for t, f in sections(ours)}
        for name, value in real_s["Replication"].items():
            assert value_format(our_s["Replication"][name]) == value_format(value), name
    assert sections(our_r)[5][1][0] == ("role", "slave")
    slave0 = dict(sections(our_p)[5][1])["slave0"]
    assert value_format(slave0) == "list:ip,port,state,offset,lag" and "state=online" in slave0


def test_blocked_clients_and_timeout_table(pair):
    """blocked_clients counts every blocked client, clients_in_timeout_table those with a deadline."""
    _, r, s = pair
    socks = []
    try:
        for c in (r, s):
            port = c.sock.getpeername()[1]
            forever = socket.create_connection(("127.0.0.1", port))
            timed = socket.create_connection(("127.0.0.1", port))
            socks += [forever, timed]
            forever.sendall(encode_command("BLPOP", "{t}nothing", "0"))
            timed.sendall(encode_command("BLPOP", "{t}nothing", "100"))
        deadline = time.monotonic() + 10
        while any(b"blocked_clients:2\r\n" not in parse(c.call("INFO", "clients")) for c in (r, s)):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        real = dict(sections(r.call("INFO", "clients"))[0][1])
        ours = dict(sections(s.call("INFO", "clients"))[0][1])
        for name in ("blocked_clients", "clients_in_timeout_table", "connected_clients", "tracking_clients"):
            assert ours[name] == real[name], name
        assert ours["clients_in_timeout_table"] == "1"
    finally:
        for sock in socks:
            sock.close()
