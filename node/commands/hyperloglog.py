"""HyperLogLog commands: PFADD, PFCOUNT, PFMERGE, PFDEBUG, PFSELFTEST.

An HLL is a string holding Redis's own representation (``node/engine/hll.py``
does the bit work), so after the same commands GET returns the very bytes
Redis would, and an HLL copied between Shoal and Redis with GET/SET keeps
working on either side. Like Redis, editing an HLL turns the string ``raw``
(a ``bytearray`` here), and PFCOUNT caches the cardinality in the header --
a write, which is why it can touch the key.
"""

from __future__ import annotations

import math
import random

from node.commands.args import WRONGTYPE
from node.commands.strings import keyword
from node.commands.table import command
from node.engine import hll
from node.notify import STRING, notify
from node.propagation import also_propagate
from node.resp import OK, ErrorReply, SimpleString

_NOT_HLL = ErrorReply("WRONGTYPE Key is not a valid HyperLogLog string value.")
_CORRUPT = ErrorReply("INVALIDOBJ Corrupted HLL object detected")
_NO_KEY = ErrorReply("ERR The specified key does not exist")
_NOT_SPARSE = ErrorReply("ERR HLL encoding is not sparse")


def _check_hll(value) -> None:
    """isHLLObjectOrReply: WRONGTYPE for other types, then the HLL header checks."""
    kind = type(value)
    if kind is not bytes and kind is not bytearray:
        raise WRONGTYPE
    if not hll.is_valid(value):
        raise _NOT_HLL


def _unshare(db, key: bytes, value) -> bytearray:
    """dbUnshareStringValue: the stored string as an editable (raw) bytearray."""
    if type(value) is bytes:
        value = bytearray(value)
        db.store_quietly(key, value)
    return value


def _sparse_max(client) -> int:
    return client.node.config["hll-sparse-max-bytes"]


@command("pfadd", -2, "write denyoom fast", (1, 1, 1), group="hyperloglog",
         summary="Adds the specified elements to the specified HyperLogLog.", since="2.8.9",
         complexity="O(1) to add every element.")
def pfadd(client, argv):
    db = client.db
    key = argv[1]
    value = db.lookup(key)
    created = value is None
    if created:
        value = hll.new_sparse()
        db.store_quietly(key, value)
    else:
        _check_hll(value)
        value = _unshare(db, key, value)
    result, changed, corrupt = hll.add_elements(value, argv[2:], _sparse_max(client))
    if result is not value:
        value[:] = result
    if corrupt:
        raise _CORRUPT  # edits made before the corruption was met stay, unsignalled, as in Redis
    if created or changed:
        hll.invalidate_cache(value)
        db.touch(key, created + changed)
        notify(client, STRING, b"pfadd", key)
        return 1
    return 0


@command("pfcount", -2, "readonly", (1, -1, 1), group="hyperloglog",
         summary="Return the approximated cardinality of the set(s) observed by the HyperLogLog at key(s).",
         since="2.8.9",
         complexity="O(1) with a very small average constant time when called with a single key. O(N) with N "
                    "being the number of keys, and much bigger constant times, when called with multiple keys.")
def pfcount(client, argv):
    db = client.db
    if len(argv) > 2:
        registers = None
        for key in argv[1:]:
            value = db.lookup_read(key)
            if value is None:
                continue
            _check_hll(value)
            raw = hll.to_dense_for_merge(value)
            if raw is None:
                raise _CORRUPT
            registers = raw if registers is None else hll.merge_raw(registers, raw)
        return 0 if registers is None else hll.count_raw(registers)
    key = argv[1]
    value = db.lookup_read(key)
    if value is None:
        return 0
    _check_hll(value)
    value = _unshare(db, key, value)
    card = hll.cached_cardinality(value)
    if card is None:
        card = hll.count_value(value)
        if card is None:
            raise _CORRUPT
        hll.store_cardinality(value, card)
        db.touch(key)
        # The cached cardinality is a write (PFCOUNT is flagged readonly, so the
        # dispatcher would not send it): replicas and the AOF get PFCOUNT as sent, as in Redis.
        also_propagate(client, *argv)
    return card


@command("pfmerge", -2, "write denyoom", (1, -1, 1), group="hyperloglog",
         summary="Merge N different HyperLogLogs into a single one.", since="2.8.9",
         complexity="O(N) to merge N HyperLogLogs, but with high constant times.")
def pfmerge(client, argv):
    db = client.db
    registers = None
    use_dense = False
    for key in argv[1:]:  # the destination counts as a source too
        value = db.lookup_read(key)
        if value is None:
            continue
        _check_hll(value)
        if value[4] == hll.DENSE:
            use_dense = True
        raw = hll.to_dense_for_merge(value)
        if raw is None:
            raise _CORRUPT
        registers = raw if registers is None else hll.merge_raw(registers, raw)
    dest = argv[1]
    value = db.lookup(dest)
    if value is None:
        value = hll.new_sparse()
        db.store_quietly(dest, value)
    else:
        value = _unshare(db, dest, value)
    result = hll.merge_into(value, registers, use_dense, _sparse_max(client))
    if result is None:
        raise _CORRUPT
    if result is not value:
        value[:] = result
    hll.invalidate_cache(value)
    db.touch(dest)
    # Redis sends a pfadd event for PFMERGE: in effect it adds many elements.
    notify(client, STRING, b"pfadd", dest)
    return OK


@command("pfdebug", 3, "write denyoom admin", (2, 2, 1), group="hyperloglog",
         summary="Internal commands for debugging HyperLogLog values", since="2.8.9", complexity="N/A")
def pfdebug(client, argv):
    db = client.db
    key = argv[2]
    value = db.lookup(key)
    if value is None:
        raise _NO_KEY
    _check_hll(value)
    value = _unshare(db, key, value)
    sub = keyword(argv[1])
    if sub == b"getreg":
        _to_dense(db, value)
        return list(hll.dense_to_raw(value))
    if sub == b"decode":
        if value[4] != hll.SPARSE:
            raise _NOT_SPARSE
        return hll.sparse_decode(value)
    if sub == b"encoding":
        return SimpleString(b"dense" if value[4] == hll.DENSE else b"sparse")
    if sub == b"todense":
        return 1 if _to_dense(db, value) else 0
    name = argv[1].split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
    raise ErrorReply("ERR Unknown PFDEBUG subcommand '%s'" % name.replace("\r", " ").replace("\n", " "))


def _to_dense(db, value: bytearray) -> bool:
    """Convert a sparse value to dense in place; True if it was sparse. Counts a change, signals nothing."""
    if value[4] != hll.SPARSE:
        return False
    dense = hll.sparse_to_dense(value)
    if dense is None:
        raise _CORRUPT
    value[:] = dense
    db.dirty += 1
    return True


_SELFTEST_CARDINALITY = 100_000


@command("pfselftest", 1, "admin", (0, 0, 0), group="hyperloglog",
         summary="An internal command for testing HyperLogLog values", since="2.8.9", complexity="N/A")
def pfselftest(client, argv):
    """Redis's two self-tests, the second up to 10^5 elements instead of 10^7 (Python time)."""
    rng = random.Random()
    # Test 1: every register keeps its value and leaves its neighbours alone.
    dense = bytearray(hll.DENSE_SIZE)
    expected = bytes(rng.randrange(64) for _ in range(hll.REGISTERS))
    for i, v in enumerate(expected):
        hll.dense_set(dense, i, v)
    for i, v in enumerate(expected):
        got = hll.dense_get(dense, i)
        if got != v:
            return ErrorReply(f"TESTFAILED Register {i} should be {v} but is {got}")
    if hll.dense_to_raw(dense) != expected or bytes(dense[hll.HDR_SIZE:]) != hll.raw_to_dense(expected):
        return ErrorReply("TESTFAILED register packing")
    # Test 2: the estimate stays within bounds, and dense and sparse agree.
    dense = bytearray(b"HYLL" + bytes(hll.DENSE_SIZE - 4))
    sparse = hll.new_sparse()
    relerr = 1.04 / hll.REGISTERS ** 0.5
    checkpoint = 1
    seed = rng.getrandbits(64)
    sparse_max = _sparse_max(client)
    done = 0
    while checkpoint <= _SELFTEST_CARDINALITY:
        batch = [((j ^ seed) & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "little") for j in range(done + 1, checkpoint + 1)]
        for element in batch:
            index, count = hll.pattern(element)
            hll.dense_set(dense, index, count)
        sparse, _, _ = hll.add_elements(sparse, batch, sparse_max)
        done = checkpoint
        if checkpoint < sparse_max // 2 and sparse[4] != hll.SPARSE:
            return ErrorReply("TESTFAILED sparse encoding not used")
        card = hll.count_value(dense)
        if card != hll.count_value(sparse):
            return ErrorReply("TESTFAILED dense/sparse disagree")
        maxerr = 1 if checkpoint == 10 else math.ceil(relerr * 6 * checkpoint)
        if abs(checkpoint - card) > maxerr:
            return ErrorReply(f"TESTFAILED Too big error. card:{checkpoint} abserr:{abs(checkpoint - card)}")
        checkpoint *= 10
    return OK
