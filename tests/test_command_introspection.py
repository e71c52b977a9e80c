"""COMMAND and its subcommands against Redis 7.0, and through redis-py.

Every command Shoal implements must describe itself as Redis does (arity,
flags, first/last/step, ACL categories, tips, key-spec positions, docs);
what cannot match is in tests/known_differences.py under "command".
"""

from __future__ import annotations

import pytest
import redis
from redis._parsers.commands import CommandsParser

from tests.known_differences import normalizer_for
from tests.resp_client import RawClient, parse

# Shoal-only (Redis 7.2) subcommands, absent from Redis 7.0.
SHOAL_ONLY = {"client|setinfo", "cluster|myshardid"}



def shoal_command_names(port: int) -> list[str]:
    with RawClient(port) as c:
        return [n.decode() for n in parse(c.call("COMMAND", "LIST"))]


def _info_mismatches(differ, names) -> list[tuple[str, str]]:
    normalize = normalizer_for(("command",))
    shoal_names = set(names)
    bad = []
    for name in names:
        if name in SHOAL_ONLY:
            continue
        expected, actual = differ.both("COMMAND", "INFO", name)
        redis_entry, shoal_entry = parse(expected)[0], parse(actual)[0]
        assert redis_entry is not None, f"{name} is not a Redis 7.0 command"
        if redis_entry[9] and "|" not in name:
            # A container: compare its own fields here, each subcommand on its own line.
            redis_subs = {e[0].decode() for e in redis_entry[9]}
            shoal_subs = {e[0].decode() for e in shoal_entry[9]}
            assert shoal_subs - SHOAL_ONLY <= redis_subs
            assert shoal_subs <= shoal_names
            redis_entry[9] = shoal_entry[9] = []
            if repr(redis_entry[:9]) != repr(shoal_entry[:9]):
                bad.append((name, f"redis {redis_entry}\nshoal {shoal_entry}"))
            continue
        if normalize(expected) != normalize(actual):
            bad.append((name, f"redis {normalize(expected)}\nshoal {normalize(actual)}"))
    return bad


def _check_no_unexpected(kind: str, bad: list[tuple[str, str]]) -> None:
    unexpected = [f"{name}:\n{detail}" for name, detail in bad]
    assert not unexpected, "\n\n".join(unexpected)


def test_command_info_matches_redis_for_every_command(differ, shoal_proc):
    _check_no_unexpected("info", _info_mismatches(differ, shoal_command_names(shoal_proc.port)))


def test_command_info_matches_redis_resp3(differ3, shoal_proc):
    _check_no_unexpected("info", _info_mismatches(differ3, shoal_command_names(shoal_proc.port)))


def test_command_info_exact_bytes_for_simple_commands(differ, differ3):
    # No key-spec flags to forgive on keyless commands: byte-identical.
    for d in (differ, differ3):
        d.check("COMMAND", "INFO", "ping", "echo", "select", "auth", "hello", "quit", "reset")
        d.check("COMMAND", "INFO", "client|id", "client|list", "client|kill", "client|reply", "client|help")
        d.check("COMMAND", "INFO", "command|info", "command|getkeys", "command|list", "command|docs")
        d.check("COMMAND", "INFO", "get")
        d.check("COMMAND", "INFO", "nosuch", "get|x", "client|id|x", "CLIENT|ID", "Ping")


def _drop_undeclared_complexity(left: dict, right: dict) -> None:
    """Complexity is compared where Shoal declares one (a documented difference otherwise)."""
    for name, ours in right.items():
        theirs = left.get(name)
        if not isinstance(theirs, dict):
            continue
        if b"complexity" not in ours:
            theirs.pop(b"complexity", None)
        if b"subcommands" in ours and b"subcommands" in theirs:
            _drop_undeclared_complexity(theirs[b"subcommands"], ours[b"subcommands"])


def test_command_docs_match_redis(differ, differ3, shoal_proc):
    normalize = normalizer_for(("command",))
    bad = []
    for d in (differ, differ3):
        for name in shoal_command_names(shoal_proc.port):
            if name in SHOAL_ONLY:
                continue
            expected, actual = d.both("COMMAND", "DOCS", name)
            left, right = normalize(expected), normalize(actual)
            key = name.encode()
            if b"subcommands" in right.get(key, {}):
                # A container documents the subcommands Shoal has; Redis's others are not compared.
                ours = right[key][b"subcommands"]
                left[key][b"subcommands"] = {
                    n: v for n, v in left[key][b"subcommands"].items() if n in ours
                }
                for n in SHOAL_ONLY:
                    ours.pop(n.encode(), None)
            _drop_undeclared_complexity(left, right)
            if left != right:
                bad.append((name, f"redis {left}\nshoal {right}"))
    _check_no_unexpected("docs", bad)
    differ.check("COMMAND", "DOCS", "nosuch")
    differ3.check("COMMAND", "DOCS", "nosuch", "ping")
    differ.check("COMMAND", "DOCS", "client|id", "client|getname")


def test_command_docs_container_lists_implemented_subcommands(shoal):
    docs = parse(shoal.call("COMMAND", "DOCS", "client"))
    client = dict(zip(docs[1][0::2], docs[1][1::2]))
    assert client[b"summary"] == b"A container for client connection commands"
    assert client[b"group"] == b"connection"
    subs = client[b"subcommands"]
    assert b"client|id" in subs[0::2] and b"client|kill" in subs[0::2]


def test_bare_command_and_count(shoal_proc, shoal):
    everything = parse(shoal.call("COMMAND"))
    count = parse(shoal.call("COMMAND", "COUNT"))
    assert len(everything) == count
    top = [n for n in shoal_command_names(shoal_proc.port) if "|" not in n]
    assert sorted(e[0].decode() for e in everything) == sorted(top)
    assert parse(shoal.call("COMMAND", "INFO")) == everything
    docs = parse(shoal.call("COMMAND", "DOCS"))
    assert sorted(docs[0::2]) == sorted(n.encode() for n in top)


def test_command_count_is_fewer_than_redis(differ):
    redis_count, shoal_count = (parse(r) for r in differ.both("COMMAND", "COUNT"))
    assert 0 < shoal_count <= redis_count  # known difference: Shoal implements fewer commands


def test_command_list_and_filters(differ, shoal_proc):
    shoal_all = set(shoal_command_names(shoal_proc.port))
    redis_all = {n.decode() for n in parse(differ.both("COMMAND", "LIST")[0])}
    assert shoal_all - SHOAL_ONLY <= redis_all
    for filt in (("PATTERN", "client*"), ("PATTERN", "C?IENT|*"), ("PATTERN", "*e*"), ("ACLCAT", "connection"),
                 ("ACLCAT", "Admin"), ("ACLCAT", "fast"), ("ACLCAT", "slow"), ("ACLCAT", "read"),
                 ("ACLCAT", "nosuch"), ("MODULE", "x")):
        expected, actual = differ.both("COMMAND", "LIST", "FILTERBY", *filt)
        want = {n.decode() for n in parse(expected)} & shoal_all
        got = {n.decode() for n in parse(actual)}
        assert got - SHOAL_ONLY == want, filt
    for bad in (("x",), ("FILTERBY", "foo", "x"), ("FILTERBY", "PATTERN"), ("FILTERBY", "PATTERN", "a", "b"),
                ("FILTERBY", "PATTERN", "a", "FILTERBY")):
        differ.check("COMMAND", "LIST", *bad)


def test_command_errors_and_help(differ, differ3):
    for d in (differ, differ3):
        d.check("COMMAND", "HELP")
        d.check("COMMAND", "HELP", "x")
        d.check("COMMAND", "COUNT", "x")
        d.check("COMMAND", "foo")
        d.check("COMMAND", "GETKEYS")
        d.check("COMMAND", "GETKEYS", "get")
        d.check("COMMAND", "INFOX")


def test_getkeys_matches_redis(differ, differ3):
    for d in (differ, differ3):
        for argv in (("get", "a"), ("GET", "a"), ("set", "k", "v"), ("set", "k", "v", "EX", "10"),
                     ("nosuch", "a"), ("ping", "a"), ("get", "a", "b"), ("set", "k"), ("client", "id"),
                     ("client", "nosuch"), ("client", "kill", "x"), ("command", "info"), ("echo", "x")):
            d.check("COMMAND", "GETKEYS", *argv)
            d.check("COMMAND", "GETKEYSANDFLAGS", *argv)


def test_getkeysandflags_shape(differ3):
    expected, actual = differ3.both("COMMAND", "GETKEYSANDFLAGS", "get", "k")
    assert expected == actual  # GET's flags happen to be what Shoal derives: RO access


# ------------------------------------------------------------------ redis-py


@pytest.mark.parametrize("protocol", [2, 3])
def test_redis_py_command(shoal_proc, shoal, protocol):
    r = redis.Redis(port=shoal_proc.port, protocol=protocol)
    commands = r.command()
    assert commands["get"]["first_key_pos"] == 1
    assert commands["get"]["last_key_pos"] == 1
    assert commands["get"]["step_count"] == 1
    assert "readonly" in commands["get"]["flags"]
    assert r.command_count() == len(commands)
    assert [k if isinstance(k, bytes) else k.encode() for k in r.command_getkeys("SET", "k", "v")] == [b"k"]
    assert set(r.command_list(pattern="client*")) >= {b"client", b"client|id"}
    assert set(r.command_list(category="connection")) >= {b"ping", b"client|id"}
    [[key, flags]] = r.command_getkeysandflags("GET", "k")
    assert key == b"k" and [f if isinstance(f, str) else f.decode() for f in flags] == ["RO", "access"]


@pytest.mark.parametrize("protocol", [2, 3])
def test_redis_py_commands_parser_finds_keys(shoal_proc, shoal, protocol):
    r = redis.Redis(port=shoal_proc.port, protocol=protocol)
    parser = CommandsParser(r)
    assert parser.get_keys(r, "GET", "a") == ["a"]
    assert parser.get_keys(r, "SET", "a", "1") == ["a"]
    assert parser.get_keys(r, "PING") is None
    if "mset" in parser.commands:
        assert parser.get_keys(r, "MSET", "a", "1", "b", "2") == ["a", "b"]
    if "mget" in parser.commands:
        assert parser.get_keys(r, "MGET", "a", "b", "c") == ["a", "b", "c"]


def test_redis_py_command_against_both_servers_agrees(redis_proc, shoal_proc, shoal):
    """For commands both have, redis-py's parsed COMMAND entries agree (but tips/key specs)."""
    ours = redis.Redis(port=shoal_proc.port, protocol=2).command()
    theirs = redis.Redis(port=redis_proc.port, protocol=2).command()
    for name, entry in ours.items():
        ref = theirs[name]
        for field in ("arity", "flags", "first_key_pos", "last_key_pos", "step_count", "acl_categories"):
            assert entry[field] == ref[field], (name, field)
