"""rename-command: disable or rename dangerous commands from the config (FLUSHALL, KEYS, CONFIG, DEBUG)."""

from __future__ import annotations

import pytest

from tests.resp_client import RawClient, parse
from tests.servers import ServerProcess

RENAMES = (
    "--rename-command", "flushall", "",
    "--rename-command", "KEYS", "",
    "--rename-command", "config", "cfg-9f2",
    "--rename-command", "debug", "dbg-9f2",
    "--enable-debug-command", "yes",
)


@pytest.fixture(scope="module")
def pair():
    with ServerProcess("redis", *RENAMES) as r, ServerProcess("shoal", *RENAMES) as s:
        with RawClient(r.port) as rc, RawClient(s.port) as sc:
            yield rc, sc
        assert s.alive(), s.log()


def check(pair, *argv):
    expected, actual = pair[0].call(*argv), pair[1].call(*argv)
    assert expected == actual, f"{argv!r}\nredis: {expected!r}\nshoal: {actual!r}"
    return expected


def test_disabled_commands_are_unknown(pair):
    check(pair, "SET", "k", "v")
    for argv in (("FLUSHALL",), ("flushall", "ASYNC"), ("KEYS", "*"), ("CONFIG", "GET", "port"),
                 ("DEBUG", "SLEEP", "0"), ("COMMAND", "INFO", "flushall", "keys", "config")):
        check(pair, *argv)
    check(pair, "EXISTS", "k")  # nothing was flushed


def test_new_names_work(pair):
    check(pair, "cfg-9f2", "GET", "maxmemory")
    check(pair, "CFG-9F2", "SET", "maxmemory-samples", "7")
    check(pair, "cfg-9f2", "GET", "maxmemory-samples")
    check(pair, "cfg-9f2", "nosuch")
    check(pair, "SET", "d", "1")
    check(pair, "dbg-9f2", "DIGEST-VALUE", "d")
    check(pair, "FLUSHDB")
    check(pair, "DBSIZE")


def test_acl_rules_use_original_names(pair):
    check(pair, "ACL", "SETUSER", "ops", "on", "nopass", "+flushall", "+config|get", "-keys", "allkeys")
    check(pair, "ACL", "DRYRUN", "ops", "cfg-9f2", "get", "port")
    check(pair, "ACL", "DRYRUN", "ops", "flushall")
    check(pair, "ACL", "DELUSER", "ops")


def test_command_count_drops_by_the_removed_commands():
    with ServerProcess("shoal") as plain, RawClient(plain.port) as c:
        before = parse(c.call("COMMAND", "COUNT"))
    with ServerProcess("shoal", *RENAMES) as renamed, RawClient(renamed.port) as c:
        assert parse(c.call("COMMAND", "COUNT")) == before - 2


@pytest.mark.parametrize("args, message", [
    (("--rename-command", "nosuchcmd", "x"), "No such command in rename-command"),
    (("--rename-command", "get", "set"), "Target command name already exists"),
])
def test_bad_renames_stop_startup(args, message):
    proc = ServerProcess("shoal", *args)
    with pytest.raises(RuntimeError) as info:
        proc.start(timeout=10)
    proc.stop()
    assert message in str(info.value)
