"""Which keys of a command are read and which are written, for ACL key patterns.

Redis 7 decides a key's permission from its key-spec flags: ``access`` needs
read permission, ``insert``/``delete``/``update`` need write permission, and a
key with none of them (EXISTS, TYPE, TTL's neighbours...) passes any pattern.
Our command table keeps only first/last/step (or a key finder), so the flags
per command are listed here, grouped by the permission they need. Commands
whose keys differ (a destination written from sources read) have a rule per
position; SET and BITFIELD depend on their arguments, as in Redis.
"""

from __future__ import annotations

READ = 1
WRITE = 2
READ_WRITE = READ | WRITE

# Keys are written but not read.
_WRITE_ONLY = frozenset("""
append del expire expireat geoadd hdel hmset hset hsetnx linsert lpush lpushx lrem lset ltrim mset msetnx
persist pexpire pexpireat pfadd psetex restore restore-asking rpush rpushx sadd setex setnx setrange srem
unlink xack xadd xautoclaim xclaim xdel xgroup|create xgroup|createconsumer xgroup|delconsumer
xgroup|destroy xgroup|setid xsetid xtrim zadd zrem zremrangebylex zremrangebyrank zremrangebyscore
""".split())

# Keys are read and written.
_READ_WRITE = frozenset("""
blmpop blpop brpop bzmpop bzpopmax bzpopmin decr decrby eval evalsha fcall getdel getex getset hincrby
hincrbyfloat incr incrby incrbyfloat lmpop lpop migrate move rpop setbit spop zincrby zmpop zpopmax zpopmin
""".split())

# Write commands whose keys need only read permission.
_READ_ONLY = frozenset(("pfdebug", "xreadgroup"))

# Keys only looked at for existence, type or size: any pattern grants them.
_NO_ACCESS = frozenset("""
exists hexists hlen hstrlen llen memory|usage object|encoding object|freq object|idletime object|refcount
scard sismember strlen touch type watch xlen zcard
""".split())

# "Keys" that are really shard channels: checked as channels, never as keys.
NOT_KEYS = frozenset(("spublish", "ssubscribe", "sunsubscribe"))

# Per-position rules: (permission of the first key, permission of the others).
_FIRST_AND_REST = {
    # destination first, sources after it
    "bitop": (WRITE, READ),
    "geosearchstore": (WRITE, READ),
    "sdiffstore": (WRITE, READ),
    "sinterstore": (WRITE, READ),
    "sunionstore": (WRITE, READ),
    "zdiffstore": (WRITE, READ),
    "zinterstore": (WRITE, READ),
    "zrangestore": (WRITE, READ),
    "zunionstore": (WRITE, READ),
    "pfmerge": (READ_WRITE, READ),
    # source first, destination(s) after it
    "copy": (READ, WRITE),
    "georadius": (READ, WRITE),
    "georadiusbymember": (READ, WRITE),
    "sort": (READ, WRITE),
    "lmove": (READ_WRITE, WRITE),
    "blmove": (READ_WRITE, WRITE),
    "rpoplpush": (READ_WRITE, WRITE),
    "brpoplpush": (READ_WRITE, WRITE),
    "smove": (READ_WRITE, WRITE),
    "rename": (READ_WRITE, WRITE),
    "renamenx": (READ_WRITE, WRITE),
}


def _set_access(argv: list[bytes]) -> int:
    """SET writes its key; with GET it reads it too (Redis's setGetKeys)."""
    for arg in argv[3:]:
        if arg.lower() == b"get":
            return READ_WRITE
    return WRITE


def _bitfield_access(argv: list[bytes]) -> int:
    """BITFIELD with only GET/OVERFLOW reads; anything else (or a syntax error) writes."""
    i, argc = 2, len(argv)
    while i < argc:
        op = argv[i].lower()
        left = argc - i - 1
        if op == b"get" and left >= 2:
            i += 3
        elif op == b"overflow" and left >= 1:
            i += 2
        else:
            return READ_WRITE
    return READ


def _positions(cmd, argv: list[bytes]) -> list[int]:
    """argv indexes of the command's keys, in order."""
    if cmd.key_finder is None:
        if cmd.first_key <= 0:
            return []
        last = cmd.last_key
        if last < 0:
            last = len(argv) + last
        last = min(last, len(argv) - 1)  # redis.acl_check_cmd() runs no arity check
        return list(range(cmd.first_key, last + 1, cmd.key_step))
    try:
        keys = cmd.key_finder(argv)
    except Exception:  # malformed arguments: no keys here, the command answers its own error
        return []
    out = []
    start = 1
    for key in keys:
        for i in range(start, len(argv)):
            if argv[i] is key:
                break
        else:  # not the same object: fall back to equality
            i = next((j for j in range(start, len(argv)) if argv[j] == key), -1)
            if i == -1:
                continue
        out.append(i)
        start = i + 1
    return out


_NO_REFS: tuple = ()
#: Command -> fn(argv) -> (argv index, need) pairs, built on first use.
_PLANS: dict = {}


def key_refs(cmd, argv: list[bytes]):
    """(argv index, READ/WRITE bits needed) for every key ``argv`` names."""
    plan = _PLANS.get(cmd)
    if plan is None:
        plan = _PLANS[cmd] = _plan(cmd)
    return plan(argv)


def _plan(cmd):
    """The fastest correct way to find ``cmd``'s key references (see key_refs_slow)."""
    name = cmd.fullname
    if name in NOT_KEYS or (cmd.first_key <= 0 and cmd.key_finder is None):
        return lambda argv: _NO_REFS
    if name == "set":
        plain = ((1, WRITE),)
        return lambda argv: plain if len(argv) == 3 else key_refs_slow(cmd, argv)
    fixed_need = None
    if name not in _FIRST_AND_REST and name not in ("set", "bitfield"):
        fixed_need = _uniform_need(cmd, name)
    if cmd.key_finder is None and fixed_need is not None and cmd.first_key == cmd.last_key:
        refs = ((cmd.first_key, fixed_need),)  # one key at a fixed position (GET, SET without GET...)
        first = cmd.first_key

        def single(argv):
            return refs if len(argv) > first else _NO_REFS

        return single
    return lambda argv: key_refs_slow(cmd, argv)


def _uniform_need(cmd, name: str) -> int:
    if name in _WRITE_ONLY:
        return WRITE
    if name in _READ_WRITE:
        return READ_WRITE
    if name in _NO_ACCESS:
        return 0
    if name in _READ_ONLY:
        return READ
    return READ_WRITE if "write" in cmd.flags else READ


def key_refs_slow(cmd, argv: list[bytes]) -> list[tuple[int, int]]:
    """key_refs, worked out from scratch for this argv."""
    name = cmd.fullname
    if name in NOT_KEYS:
        return []
    positions = _positions(cmd, argv)
    if not positions:
        return []
    rule = _FIRST_AND_REST.get(name)
    if rule is not None:
        first, rest = rule
        return [(pos, first if i == 0 else rest) for i, pos in enumerate(positions)]
    if name in _WRITE_ONLY:
        need = WRITE
    elif name in _READ_WRITE:
        need = READ_WRITE
    elif name in _NO_ACCESS:
        need = 0
    elif name in _READ_ONLY:
        need = READ
    elif name == "set":
        need = _set_access(argv)
    elif name == "bitfield":
        need = _bitfield_access(argv)
    elif "write" in cmd.flags:
        need = READ_WRITE
    else:
        need = READ
    return [(pos, need) for pos in positions]
