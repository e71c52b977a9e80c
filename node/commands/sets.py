"""Set commands, with Redis 7.0's replies, errors, encodings and keyspace events.

Each handler follows the matching function of Redis 7.0's ``t_set.c``, in the
same order of checks. Points worth knowing:

* Encodings are 7.0's: ``intset`` (all members canonical 64-bit integers, at
  most ``set-max-intset-entries``) or ``hashtable``; no listpack sets. An
  intset iterates in ascending numeric order, so SMEMBERS, SSCAN, SINTER...
  reply in exactly Redis's order for such sets.
* Result sets are built from scratch like Redis builds them: SINTERSTORE,
  SUNION(STORE), SDIFF(STORE) start from an empty intset and add members in
  Redis's order, so the result's encoding (and, for SUNION/SDIFF, the reply
  order) is Redis's -- e.g. the union of a hashtable set of integers is an
  intset again. SDIFF picks Redis's algorithm (it decides the encoding).
* RESP3: SMEMBERS, SINTER, SUNION, SDIFF and SPOP with a count reply with a
  set; SRANDMEMBER with a count with an array (it may repeat members).
"""

from __future__ import annotations

from node.commands.access import members_removed, read_value, write_value
from node.commands.args import SYNTAX_ERROR, WRONGTYPE, parse_int
from node.commands.hashes import parse_scan_options, scan_page
from node.commands.keys import parse_scan_cursor
from node.commands.strings import keyword
from node.commands.table import command
from node.debug_digest import VALUE_DIGESTERS, xor_digest
from node.engine.setvalue import SetValue
from node.engine.values import COPIERS, ENCODINGS, TYPE_NAMES
from node.notify import GENERIC, SET, notify
from node.propagation import also_propagate, prevent, rewrite
from node.resp import ErrorReply, SetReply

_LONG_MAX = 2**63 - 1

_MUST_BE_POSITIVE = ErrorReply("ERR value is out of range, must be positive")
_COUNT_RANGE = ErrorReply(
    f"ERR value is out of range, value must between {-_LONG_MAX} and {_LONG_MAX}"
)
_NUMKEYS = ErrorReply("ERR numkeys should be greater than 0")
_TOO_MANY_KEYS = ErrorReply("ERR Number of keys can't be greater than number of args")
_NEGATIVE_LIMIT = ErrorReply("ERR LIMIT can't be negative")

OBJ_SET = 2

# Redis's thresholds for choosing how to pop/sample (t_set.c).
_SPOP_MOVE_STRATEGY_MUL = 5

# ------------------------------------------------------------- registration

TYPE_NAMES[SetValue] = b"set"
ENCODINGS[SetValue] = lambda s: s.encoding
COPIERS[SetValue] = SetValue.copy


def _digest(digest: bytearray, s: SetValue) -> None:
    """Redis's xorObjectDigest for a set: xor in each member's SHA1."""
    for member in s:
        xor_digest(digest, member)


VALUE_DIGESTERS[SetValue] = (OBJ_SET, _digest)


# ------------------------------------------------------------------ helpers


def _max_intset(client) -> int:
    return client.node.config["set-max-intset-entries"]


def _lookup_set(db, key: bytes):
    """A source set of SINTER/SUNION/SDIFF (and their STORE forms: Redis reads them all the same)."""
    value = db.lookup_read(key)
    if value is None or type(value) is SetValue:
        return value
    raise WRONGTYPE


def _parse_count_range(arg: bytes) -> int:
    """``getRangeLongFromObjectOrReply(-LONG_MAX, LONG_MAX)``."""
    count = parse_int(arg)
    if count < -_LONG_MAX:
        raise _COUNT_RANGE
    return count


# ------------------------------------------------------------ SADD / SREM


@command("sadd", -3, "write denyoom fast", (1, 1, 1), group="set", summary="Add one or more members to a set",
         since="1.0.0",
         complexity="O(1) for each element added, so O(N) to add N elements when the command is called with "
                    "multiple arguments.")
def sadd(client, argv):
    db = client.db
    key = argv[1]
    s = write_value(db, key, SetValue)
    created = s is None
    if created:
        s = SetValue()
    max_intset = _max_intset(client)
    add = s.add
    added = 0
    for member in argv[2:]:
        if add(member, max_intset):
            added += 1
    if created:
        db.set(key, s)
        if added > 1:
            db.dirty += added - 1
    elif added:
        db.touch(key, added)
    if added:
        notify(client, SET, b"sadd", key)
    return added


@command("srem", -3, "write fast", (1, 1, 1), group="set", summary="Remove one or more members from a set",
         since="1.0.0", complexity="O(N) where N is the number of members to be removed.")
def srem(client, argv):
    db = client.db
    key = argv[1]
    s = write_value(db, key, SetValue)
    if s is None:
        return 0
    deleted = 0
    remove = s.remove
    for member in argv[2:]:
        if remove(member):
            deleted += 1
            if not len(s):
                break
    if deleted:
        members_removed(client, key, s, deleted, SET, b"srem")
    return deleted


@command("smove", 4, "write fast", (1, 2, 1), group="set", summary="Move a member from one set to another",
         since="1.0.0", complexity="O(1)")
def smove(client, argv):
    db = client.db
    src_key, dst_key, member = argv[1], argv[2], argv[3]
    src = db.lookup(src_key)
    dst = db.lookup(dst_key)
    if src is None:
        return 0
    if type(src) is not SetValue or (dst is not None and type(dst) is not SetValue):
        raise WRONGTYPE
    if src is dst:
        return 1 if member in src else 0
    if not src.remove(member):
        return 0
    notify(client, SET, b"srem", src_key)
    if not len(src):
        db.delete(src_key)
        notify(client, GENERIC, b"del", src_key)
    else:
        db.touch(src_key)
    if dst is None:
        dst = SetValue()
        dst.add(member, _max_intset(client))
        db.set(dst_key, dst)
        notify(client, SET, b"sadd", dst_key)
    elif dst.add(member, _max_intset(client)):
        db.touch(dst_key)
        notify(client, SET, b"sadd", dst_key)
    else:
        db.touch(dst_key, 0)
    return 1


# ------------------------------------------------------------------ reads


@command("sismember", 3, "readonly fast", (1, 1, 1), group="set",
         summary="Determine if a given value is a member of a set", since="1.0.0", complexity="O(1)")
def sismember(client, argv):
    s = read_value(client.db, argv[1], SetValue)
    return 1 if s is not None and argv[2] in s else 0


@command("smismember", -3, "readonly fast", (1, 1, 1), group="set",
         summary="Returns the membership associated with the given elements for a set", since="6.2.0",
         complexity="O(N) where N is the number of elements being checked for membership")
def smismember(client, argv):
    s = read_value(client.db, argv[1], SetValue)
    if s is None:
        return [0] * (len(argv) - 2)
    return [1 if member in s else 0 for member in argv[2:]]


@command("scard", 2, "readonly fast", (1, 1, 1), group="set", summary="Get the number of members in a set",
         since="1.0.0", complexity="O(1)")
def scard(client, argv):
    s = read_value(client.db, argv[1], SetValue)
    return 0 if s is None else len(s)


@command("smembers", 2, "readonly", (1, 1, 1), group="set", summary="Get all the members in a set",
         since="1.0.0", complexity="O(N) where N is the set cardinality.",
         tips=("nondeterministic_output_order",))
def smembers(client, argv):
    s = read_value(client.db, argv[1], SetValue)
    return SetReply() if s is None else SetReply(s.members())


# --------------------------------------------------------- SPOP / SRANDMEMBER


@command("spop", -2, "write fast", (1, 1, 1), group="set",
         summary="Remove and return one or multiple random members from a set", since="1.0.0",
         complexity="Without the count argument O(1), otherwise O(N) where N is the value of the passed count.",
         tips=("nondeterministic_output",))
def spop(client, argv):
    argc = len(argv)
    if argc == 3:
        return _spop_count(client, argv)
    if argc > 3:
        raise SYNTAX_ERROR
    db = client.db
    key = argv[1]
    s = write_value(db, key, SetValue)
    if s is None:
        return None
    member = s.pop_random(client.node.rng)
    notify(client, SET, b"spop", key)
    rewrite(client, b"SREM", key, member)  # the member chosen, not another random pick
    if not len(s):
        db.delete(key)
        notify(client, GENERIC, b"del", key)
    else:
        db.touch(key)
    return member


def _spop_count(client, argv):
    count = parse_int(argv[2], _MUST_BE_POSITIVE)
    if count < 0:
        raise _MUST_BE_POSITIVE
    db = client.db
    key = argv[1]
    s = write_value(db, key, SetValue)
    if s is None or count == 0:
        return SetReply()
    size = len(s)
    notify(client, SET, b"spop", key)
    rng = client.node.rng
    max_intset = _max_intset(client)
    if count >= size:
        # The whole set, as SUNION of it lists it (a fresh result set; its
        # lookup counts a keyspace hit, as in Redis).
        db.lookup_read(key)
        reply = SetReply(SetValue.from_members(s, max_intset))
        db.delete(key)
        notify(client, GENERIC, b"del", key)
        db.dirty += size - 1
        rewrite(client, b"DEL", key)  # Redis 7.0 sends DEL here whatever the lazyfree settings
        return reply
    remaining = size - count
    if remaining * _SPOP_MOVE_STRATEGY_MUL > count:
        pop = s.pop_random
        reply = SetReply([pop(rng) for _ in range(count)])
        db.touch(key, count)
        _propagate_srems(client, key, reply)
        return reply
    # Few members stay: pick those, rebuild the set from them, reply with the rest.
    pop = s.pop_random
    kept = [pop(rng) for _ in range(remaining)]
    reply = SetReply(s)
    db.replace(key, SetValue.from_members(kept, max_intset))
    db.dirty += count - 1
    _propagate_srems(client, key, reply)
    return reply


def _propagate_srems(client, key: bytes, members) -> None:
    """SPOP with a count replicates as one SREM per popped member (MULTI/EXEC-wrapped), as Redis 7.0."""
    if client.node.propagation.enabled:
        for member in members:
            also_propagate(client, b"SREM", key, member)
        prevent(client)


@command("srandmember", -2, "readonly", (1, 1, 1), group="set",
         summary="Get one or multiple random members from a set", since="1.0.0",
         complexity="Without the count argument O(1), otherwise O(N) where N is the absolute value of the "
                    "passed count.",
         tips=("nondeterministic_output",))
def srandmember(client, argv):
    argc = len(argv)
    if argc == 3:
        return _srandmember_count(client, argv)
    if argc > 3:
        raise SYNTAX_ERROR
    s = read_value(client.db, argv[1], SetValue)
    if s is None:
        return None
    return s.random_member(client.node.rng)


def _srandmember_count(client, argv):
    count = _parse_count_range(argv[2])
    s = read_value(client.db, argv[1], SetValue)
    if s is None or count == 0:
        return []
    rng = client.node.rng
    if count < 0 or count == 1:
        pick = s.random_member
        return [pick(rng) for _ in range(-count if count < 0 else 1)]
    size = len(s)
    if count >= size:
        return s.members()
    if s.ints is not None:
        ints = s.ints
        return [b"%d" % ints[i] for i in rng.sample(range(size), count)]
    items = s.items
    return [items[i] for i in rng.sample(range(size), count)]


# ------------------------------------------------------------ set algebra


def _sinter_generic(client, keys, dst_key=None, cardinality_only=False, limit=0):
    """Redis's ``sinterGenericCommand``."""
    db = client.db
    sets = []
    empty = False
    for key in keys:
        s = _lookup_set(db, key)
        if s is None:
            empty = True
            continue
        sets.append(s)
    if empty:
        if dst_key is not None:
            if db.delete(dst_key):
                notify(client, GENERIC, b"del", dst_key)
            return 0
        if cardinality_only:
            return 0
        return SetReply()
    sets.sort(key=len)  # stable, like glibc's merge-sort qsort
    first = sets[0]
    others = [s for s in sets[1:] if s is not first]
    if cardinality_only:
        found = 0
        for member in first:
            for other in others:
                if member not in other:
                    break
            else:
                found += 1
                if limit and found >= limit:
                    break
        return found
    if not others:
        result = first.members()
    elif first.ints is not None and all(o.ints is not None for o in others):
        # intset with intsets: compare the integers themselves.
        other_ints = [set(o.ints) for o in others]
        result = [b"%d" % v for v in first.ints if all(v in o for o in other_ints)]
    else:
        result = [m for m in first if all(m in o for o in others)]
    if dst_key is None:
        return SetReply(result)
    return _store_result(client, dst_key, SetValue.from_members(result, _max_intset(client)), b"sinterstore")


def _store_result(client, dst_key: bytes, result: SetValue, event: bytes) -> int:
    db = client.db
    if len(result):
        db.set(dst_key, result)
        notify(client, SET, event, dst_key)
        return len(result)
    if db.delete(dst_key):
        notify(client, GENERIC, b"del", dst_key)
    return 0


_UNION, _DIFF = 0, 1


def _sunion_diff_generic(client, keys, dst_key, op: int):
    """Redis's ``sunionDiffGenericCommand``."""
    db = client.db
    sets = [_lookup_set(db, key) for key in keys]
    max_intset = _max_intset(client)
    result = SetValue()
    add = result.add
    if op == _UNION:
        for s in sets:
            if s is None:
                continue
            for member in s:
                add(member, max_intset)
    elif sets[0] is not None:
        first = sets[0]
        # Redis's choice of algorithm (it decides the result's encoding).
        algo_one_work = 0
        algo_two_work = 0
        for s in sets:
            if s is None:
                continue
            algo_one_work += len(first)
            algo_two_work += len(s)
        algo_one_work //= 2
        if algo_one_work <= algo_two_work:
            others = sets[1:]
            for member in first:
                for s in others:
                    if s is None:
                        continue
                    if s is first or member in s:
                        break
                else:
                    add(member, max_intset)
        else:
            cardinality = 0
            remove = result.remove
            for j, s in enumerate(sets):
                if s is None:
                    continue
                for member in (list(s) if s is result else s):
                    if j == 0:
                        if add(member, max_intset):
                            cardinality += 1
                    elif remove(member):
                        cardinality -= 1
                if cardinality == 0:
                    break
    if dst_key is None:
        return SetReply(result)
    return _store_result(client, dst_key, result, b"sunionstore" if op == _UNION else b"sdiffstore")


_INTER_COMPLEXITY = "O(N*M) worst case where N is the cardinality of the smallest set and M is the number of sets."
_UNION_COMPLEXITY = "O(N) where N is the total number of elements in all given sets."


@command("sinter", -2, "readonly", (1, -1, 1), group="set", summary="Intersect multiple sets", since="1.0.0",
         complexity=_INTER_COMPLEXITY, tips=("nondeterministic_output_order",))
def sinter(client, argv):
    return _sinter_generic(client, argv[1:])


@command("sinterstore", -3, "write denyoom", (1, -1, 1), group="set",
         summary="Intersect multiple sets and store the resulting set in a key", since="1.0.0",
         complexity=_INTER_COMPLEXITY)
def sinterstore(client, argv):
    return _sinter_generic(client, argv[2:], dst_key=argv[1])


def _sintercard_keys(argv):
    numkeys = parse_int(argv[1])
    if numkeys < 1 or numkeys > len(argv) - 2:
        raise ValueError("bad numkeys")
    return argv[2 : 2 + numkeys]


@command("sintercard", -3, "readonly", group="set",
         summary="Intersect multiple sets and return the cardinality of the result", since="7.0.0",
         complexity=_INTER_COMPLEXITY, key_finder=_sintercard_keys)
def sintercard(client, argv):
    argc = len(argv)
    numkeys = parse_int(argv[1], _NUMKEYS)
    if numkeys < 1:
        raise _NUMKEYS
    if numkeys > argc - 2:
        raise _TOO_MANY_KEYS
    limit = 0
    j = 2 + numkeys
    while j < argc:
        more = argc - 1 - j
        if keyword(argv[j]) == b"limit" and more:
            j += 1
            limit = parse_int(argv[j], _NEGATIVE_LIMIT)
            if limit < 0:
                raise _NEGATIVE_LIMIT
        else:
            raise SYNTAX_ERROR
        j += 1
    return _sinter_generic(client, argv[2 : 2 + numkeys], cardinality_only=True, limit=limit)


@command("sunion", -2, "readonly", (1, -1, 1), group="set", summary="Add multiple sets", since="1.0.0",
         complexity=_UNION_COMPLEXITY, tips=("nondeterministic_output_order",))
def sunion(client, argv):
    return _sunion_diff_generic(client, argv[1:], None, _UNION)


@command("sunionstore", -3, "write denyoom", (1, -1, 1), group="set",
         summary="Add multiple sets and store the resulting set in a key", since="1.0.0",
         complexity=_UNION_COMPLEXITY)
def sunionstore(client, argv):
    return _sunion_diff_generic(client, argv[2:], argv[1], _UNION)


@command("sdiff", -2, "readonly", (1, -1, 1), group="set", summary="Subtract multiple sets", since="1.0.0",
         complexity=_UNION_COMPLEXITY, tips=("nondeterministic_output_order",))
def sdiff(client, argv):
    return _sunion_diff_generic(client, argv[1:], None, _DIFF)


@command("sdiffstore", -3, "write denyoom", (1, -1, 1), group="set",
         summary="Subtract multiple sets and store the resulting set in a key", since="1.0.0",
         complexity=_UNION_COMPLEXITY)
def sdiffstore(client, argv):
    return _sunion_diff_generic(client, argv[2:], argv[1], _DIFF)


# -------------------------------------------------------------------- SSCAN


@command("sscan", -3, "readonly", (1, 1, 1), group="set", summary="Incrementally iterate Set elements",
         since="2.8.0",
         complexity="O(1) for every call. O(N) for a complete iteration, including enough command calls for "
                    "the cursor to return back to 0. N is the number of elements inside the collection..",
         tips=("nondeterministic_output",))
def sscan(client, argv):
    cursor = parse_scan_cursor(argv[2])
    s = read_value(client.db, argv[1], SetValue)
    if s is None:
        return [b"0", []]
    count, match = parse_scan_options(argv, 3)
    if s.ints is not None:
        members = s.members()
        next_cursor = 0
    else:
        next_cursor, members = scan_page(s.scan_order(), cursor, count)
    if match is not None:
        members = [m for m in members if match(m)]
    return [b"%d" % next_cursor, members]
