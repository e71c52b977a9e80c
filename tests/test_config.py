"""CONFIG GET/SET/RESETSTAT/REWRITE/HELP against Redis 7.0, and the config parser itself.

Both servers start with the same options (tests/conftest.py), so every
directive's default must print the same text; only port, dir and logfile
(per-process paths) legitimately differ.
"""

from __future__ import annotations

import os

import pytest

from node.config import Config, ConfigError, parse_argv, parse_memory
from tests.resp_client import RawClient, parse
from tests.servers import ServerProcess

PER_PROCESS = {b"port", b"dir", b"logfile"}


def _pairs(raw: bytes) -> dict:
    value = parse(raw)
    return dict(value) if isinstance(value, dict) else dict(zip(value[0::2], value[1::2]))


def test_config_get_star_equals_redis(differ):
    redis_cfg = _pairs(differ.redis.call("CONFIG", "GET", "*"))
    shoal_cfg = _pairs(differ.shoal.call("CONFIG", "GET", "*"))
    assert set(redis_cfg) == set(shoal_cfg)
    diffs = {k: (redis_cfg[k], shoal_cfg[k]) for k in redis_cfg if k not in PER_PROCESS and redis_cfg[k] != shoal_cfg[k]}
    assert not diffs


@pytest.mark.parametrize("names", [
    ("save",), ("appendonly",), ("maxmemory", "maxmemory-policy"), ("hash-max-*",), ("*max-*-entries*",),
    ("slave*",), ("SLAVE-READ-ONLY",), ("slave-read-only", "replica-read-only", "SLAVE-READ-ONLY"),
    ("maxmemory", "maxmemory"), ("rdb-key-save-delay",), ("key-load-delay", "*delay*"), ("nosuch",),
    ("lua-time-limit", "busy-reply-threshold"), ("client-output-buffer-limit",), ("bind",),
    ("notify-keyspace-events",), ("[a-c]*",), ("HZ",), ("latency-tracking-info-percentiles",),
])
def test_config_get_patterns(differ, names):
    differ.check("CONFIG", "GET", *names)


def test_config_get_resp3(differ3):
    differ3.check("CONFIG", "GET", "save", "appendonly", "maxmemory")


CONFIG_ERRORS = [
    ("foo", "bar"), ("maxmemory", "abc"), ("maxmemory", "-1"), ("maxmemory", "1.5gb"), ("maxmemory", "+5"),
    ("maxmemory", "0", "maxmemory", "1"), ("maxmemory", "0", "MAXMEMORY", "1"),
    ("dir", "/tmp"), ("dbfilename", "x.rdb"), ("hz", "abc"), ("hz", "-1"), ("hz", " 5"), ("hz", "05"),
    ("maxmemory-policy", "foo"), ("appendonly", "maybe"), ("maxmemory", "5", "foo", "bar"),
    ("maxmemory", "5", "hz", "abc"), ("save", "100 10 abc"), ("save", "100"), ("maxclients", "0"),
    ("proto-max-bulk-len", "10"), ("notify-keyspace-events", "Q"), ("client-output-buffer-limit", "normal 1 2"),
    ("client-output-buffer-limit", "foo 1 2 3"), ("client-output-buffer-limit", "normal 1 2 x"),
    ("oom-score-adj-values", "1 2"), ("oom-score-adj-values", "1 2 3000"),
    ("latency-tracking-info-percentiles", "50 abc"), ("latency-tracking-info-percentiles", "50 101"),
    ("enable-debug-command", "no"), ("daemonize", "yes"), ("databases", "4"),
    ("shutdown-on-sigint", "nosave save"), ("shutdown-on-sigint", "foo"), ("slave-read-only", "maybe"),
    ("HZ", "abc"), ("maxmemory-clients", "101%"), ("maxmemory-clients", "x"), ("loglevel", "nothing"),
    ("hz", "abc", "foo", "bar"), ("daemonize", "yes", "foo", "bar"), ("foo", "bar", "daemonize", "yes"),
    ("a", "b", "c"),
]


@pytest.mark.parametrize("args", CONFIG_ERRORS)
def test_config_set_errors(differ, args):
    differ.check("CONFIG", "SET", *args)


def test_config_set_arity_errors(differ):
    for argv in (("CONFIG", "SET"), ("CONFIG", "SET", "a"), ("CONFIG", "GET"), ("CONFIG",), ("CONFIG", "FOO"),
                 ("CONFIG", "REWRITE", "x"), ("CONFIG", "RESETSTAT", "x"), ("CONFIG", "HELP", "x"),
                 ("CONFIG", "HELP"), ("CONFIG", "REWRITE")):
        differ.check(*argv)


ROUND_TRIPS = [
    ("maxmemory", "10gb"), ("maxmemory", "5GB"), ("maxmemory", "gb"), ("maxmemory", ""), ("maxmemory", "1k"),
    ("maxmemory", "18446744073709551615"), ("maxmemory", "99999999999999999999"), ("maxmemory", "20000000000gb"),
    ("hz", "100000"), ("hz", "0"), ("hz", "20"), ("maxmemory-clients", "10%"), ("maxmemory-clients", "1mb"),
    ("appendonly", "YES"), ("maxmemory-policy", "ALLKEYS-LRU"), ("save", "3600 1 300 100 60 10000"),
    ("save", "100 10"), ("save", ""), ("client-output-buffer-limit", "replica 1 2 3"),
    ("client-output-buffer-limit", "pubsub 1mb 2k 3 normal 5 6 7"),
    ("notify-keyspace-events", "KEA"), ("notify-keyspace-events", "Kx"), ("notify-keyspace-events", "Eg$lz"),
    ("latency-tracking-info-percentiles", "50.5 99"), ("latency-tracking-info-percentiles", ""),
    ("list-max-listpack-size", "-6"), ("maxmemory-samples", "100"), ("oom-score-adj", "relative"),
    ("oom-score-adj-values", "-5 0 2000"), ("shutdown-on-sigterm", "now nosave"),
    ("lua-time-limit", "100"), ("busy-reply-threshold", "200"), ("slowlog-log-slower-than", "-1"),
    ("proto-max-bulk-len", "1mb"), ("bind-source-addr", "x"), ("proc-title-template", "{title} {port}"),
    ("proc-title-template", "{nosuch}"), ("loglevel", "warning"), ("timeout", "0"),
    ("tracking-table-max-keys", "5"), ("replica-announce-ip", "a b"), ("zset-max-listpack-value", "1kb"),
]


@pytest.mark.parametrize("name,value", ROUND_TRIPS)
def test_config_set_round_trip(differ, name, value):
    expected = differ.check("CONFIG", "GET", name)  # the default, to restore
    try:
        differ.check("CONFIG", "SET", name, value)
        differ.check("CONFIG", "GET", name)
    finally:
        original = _pairs(expected)
        for key, old in original.items():
            differ.both("CONFIG", "SET", key, old)
    differ.check("CONFIG", "GET", name)


def test_config_set_is_atomic(differ):
    differ.check("CONFIG", "SET", "hz", "20", "maxmemory-policy", "bogus")
    differ.check("CONFIG", "GET", "hz", "maxmemory-policy")
    differ.check("CONFIG", "SET", "hz", "20", "replica-read-only", "no", "slave-read-only", "no")
    differ.check("CONFIG", "GET", "hz", "*read-only")
    differ.both("CONFIG", "SET", "hz", "10", "replica-read-only", "yes")


def test_config_set_protected_allowed_when_enabled(tmp_path):
    with ServerProcess("shoal", "--enable-protected-configs", "yes") as proc, RawClient(proc.port) as c:
        assert c.call("CONFIG", "SET", "dir", str(tmp_path)) == b"+OK\r\n"
        assert parse(c.call("CONFIG", "GET", "dir"))[1] == str(tmp_path).encode()
        assert c.call("CONFIG", "SET", "dbfilename", "a/b").startswith(
            b"-ERR CONFIG SET failed (possibly related to argument 'dbfilename') - dbfilename can't be a path")
        err = c.call("CONFIG", "SET", "dir", str(tmp_path / "missing"))
        assert err == (b"-ERR CONFIG SET failed (possibly related to argument 'dir') - "
                       b"No such file or directory\r\n")


def test_requirepass_keeps_connected_clients_authenticated(shoal):
    try:
        assert shoal.call("CONFIG", "SET", "requirepass", "secret") == b"+OK\r\n"
        assert shoal.call("PING") == b"+PONG\r\n"
        with RawClient(shoal.sock.getpeername()[1]) as other:
            assert other.call("PING").startswith(b"-NOAUTH")
            assert other.call("AUTH", "secret") == b"+OK\r\n"
    finally:
        shoal.call("CONFIG", "SET", "requirepass", "")


def test_proto_max_bulk_len_applies_to_connected_clients(shoal_proc, shoal):
    try:
        assert shoal.call("CONFIG", "SET", "proto-max-bulk-len", "1mb") == b"+OK\r\n"
        assert shoal.call("SET", "k", "x" * (1024 * 1024 + 1)).startswith(b"-ERR Protocol error: invalid bulk length")
    finally:
        with RawClient(shoal_proc.port) as c:
            c.call("CONFIG", "SET", "proto-max-bulk-len", "512mb")


def test_loglevel_takes_effect(tmp_path):
    with ServerProcess("shoal", "--enable-debug-command", "yes") as proc, RawClient(proc.port) as c:
        c.call("CONFIG", "SET", "loglevel", "warning")
        c.call("DEBUG", "RELOAD")  # logs at notice level
        assert "DB reloaded by DEBUG RELOAD" not in proc.log()
        c.call("CONFIG", "SET", "loglevel", "notice")
        c.call("DEBUG", "RELOAD")
        assert "DB reloaded by DEBUG RELOAD" in proc.log()


def test_config_rewrite(tmp_path):
    conf = tmp_path / "shoal.conf"
    conf.write_text("# my config\nhz 15\nmaxmemory 1mb\nhz 16\nmaxmemory-samples 7\n")
    proc = ServerProcess("shoal")
    proc.argv.insert(3, str(conf))  # the config file comes first, after "python -m node.main"
    with proc, RawClient(proc.port) as c:
        assert parse(c.call("CONFIG", "GET", "hz"))[1] == b"16"
        assert parse(c.call("CONFIG", "GET", "maxmemory-samples"))[1] == b"7"
        assert c.call("CONFIG", "SET", "hz", "33", "maxmemory-policy", "allkeys-lru", "save", "") == b"+OK\r\n"
        assert c.call("CONFIG", "REWRITE") == b"+OK\r\n"
    text = conf.read_text()
    assert text.startswith("# my config\nhz 33\n")
    assert "hz 16" not in text and "hz 15" not in text and "maxmemory-samples 7" in text
    assert "maxmemory-policy allkeys-lru" in text
    assert 'save ""' in text
    cfg = Config()
    cfg.load_file(str(conf))
    assert cfg["hz"] == 33 and cfg["save"] == [] and cfg["maxmemory-policy"] == "allkeys-lru"


def test_config_resetstat(differ):
    differ.both("SET", "a", "1")
    differ.both("GET", "a")
    differ.both("GET", "nosuch")
    differ.both("NOSUCHCOMMAND")
    differ.check("CONFIG", "RESETSTAT")
    for c in (differ.redis, differ.shoal):
        text = parse(c.call("INFO", "stats", "commandstats", "errorstats")).decode()
        fields = dict(line.split(":", 1) for line in text.split("\r\n") if ":" in line)
        assert fields["keyspace_hits"] == "0" and fields["keyspace_misses"] == "0"
        assert fields["total_error_replies"] == "0"
        assert fields["total_connections_received"] == "0"
        assert not [k for k in fields if k.startswith("errorstat_")]
        # RESETSTAT's own call is counted after the reset, INFO's only after it replied
        assert [k for k in fields if k.startswith("cmdstat_")] == ["cmdstat_config|resetstat"]


# ------------------------------------------------------------ parser units


def test_parse_memory_like_memtoull():
    assert parse_memory("1gb") == 1024**3 and parse_memory("1G") == 10**9 and parse_memory("5Kb") == 5120
    assert parse_memory("") == 0 and parse_memory("gb") == 0
    assert parse_memory("-1") is None and parse_memory("+5") is None and parse_memory(" 5") is None
    assert parse_memory("1.5gb") is None and parse_memory("5x") is None
    assert parse_memory("99999999999999999999") == 2**64 - 1


def test_parse_argv_quotes_like_redis():
    path, text = parse_argv(["/etc/x.conf", "--port", "7000", "--save", "--hz", "5", "--bind", "a b", "--x", 'q"\n'])
    assert path == "/etc/x.conf"
    assert text.split("\n") == ['port "7000" ', 'save ""', 'hz "5" ', 'bind "a b" ', 'x "q\\"\\n" ']
    assert parse_argv(["--maxmemory", "--foo"])[1] == 'maxmemory "--foo" '


def test_config_file_rules():
    cfg = Config()
    cfg.load_text('save 10 1\nsave 20 2\nhz 1000\nlist-max-ziplist-entries 5\nclient-output-buffer-limit "pubsub 1 2 3"\n'
                  'include /nonexistent/*.conf\nbind 127.0.0.1 ::1\n')
    assert cfg["save"] == [(10, 1), (20, 2)]
    assert cfg["hz"] == 500
    assert cfg.get_text("client-output-buffer-limit") == "normal 0 0 0 slave 268435456 67108864 60 pubsub 1 2 3"
    assert cfg["bind"] == ["127.0.0.1", "::1"]
    with pytest.raises(ConfigError) as err:
        cfg.load_text("\n\nappendonly maybe\n")
    assert (err.value.line_no, err.value.line, err.value.message) == (3, "appendonly maybe", "argument must be 'yes' or 'no'")
    with pytest.raises(ConfigError) as err:
        cfg.load_text("hz 1 2\n")
    assert err.value.message == "wrong number of arguments"
    with pytest.raises(ConfigError) as err:
        cfg.load_text("nosuch 1\n")
    assert err.value.message == "Bad directive or wrong number of arguments"
