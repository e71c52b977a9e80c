"""The Shoal-to-Shoal full-sync snapshot: the dataset in a form both ends can move in C loops.

A Shoal replica announces ``REPLCONF capa shoal-snap``; a Shoal primary then
sends this instead of an RDB file, framed the same way (``$<len>\\r\\n<payload>``
or the ``$EOF:`` form). Real Redis never announces the capability, so it always
gets RDB, and a Shoal replica still loads RDB from a real Redis primary.

Why: the RDB codec walks every key in Python (about 3 us a key each way); here
the per-slot dicts of string keys go through ``marshal`` whole, which is C from
end to end, and only other types are encoded one by one (as DUMP payloads, the
RDB encoding of one value, with its checksum).

Payload: ``MAGIC`` then ``marshal.dumps((VERSION, functions, dbs, stream_db))`` where
``dbs`` is ``[(db_index, [(slot, strings, expires, others), ...]), ...]``:
``strings`` the slot's ``{key: bytes}`` values, ``expires`` ``{key: unix ms}``
or None, ``others`` ``[(key, dump_payload), ...]``. ``marshal`` is trusted only
as far as the primary the replica chose to follow is; everything loaded is
type-checked before it is installed.
"""

from __future__ import annotations

import marshal

__all__ = ["MAGIC", "SnapshotError", "dump_snapshot", "load_snapshot"]

MAGIC = b"SHOALSNAP1"
VERSION = 1


class SnapshotError(Exception):
    pass


def dump_snapshot(node, stream_db: int = 0) -> bytes:
    from node.persistence.rdb import dump_payload

    config = node.config
    compress = config["rdbcompression"]
    fill = config["list-max-listpack-size"]
    scripting = getattr(node, "_scripting", None)
    functions = [bytes(lib.code) if not isinstance(lib.code, str) else lib.code.encode()
                 for lib in scripting.libraries.values()] if scripting is not None else []
    dbs = []
    for db in node.dbs:
        if not db.size:
            continue
        slots = []
        expires_all = db.expires
        for slot, items in enumerate(db.dicts):
            if not items:
                continue
            exp = expires_all[slot]
            exp = dict(exp) if exp else None
            if set(map(type, items.values())) == {bytes}:
                slots.append((slot, items, exp, []))
                continue
            strings = {}
            others = []
            for key, value in items.items():
                if type(value) is bytes:
                    strings[key] = value
                else:
                    others.append((key, dump_payload(value, compress=compress, list_fill=fill)))
            slots.append((slot, strings, exp, others))
        dbs.append((db.index, slots))
    return MAGIC + marshal.dumps((VERSION, functions, dbs, stream_db))


def load_snapshot(data, fresh_dbs, limits) -> tuple[list, int]:
    """Fill ``fresh_dbs`` (new, empty Database objects) from a payload.

    Returns (function libraries, the db the stream that follows continues in).

    Raises SnapshotError for anything malformed (the caller keeps its old data).
    """
    from node.engine.database import EMPTY
    from node.persistence.rdb import restore_payload
    from slots import SLOT_COUNT

    if not data.startswith(MAGIC):
        raise SnapshotError("not a Shoal snapshot")
    try:
        version, functions, dbs, stream_db = marshal.loads(memoryview(data)[len(MAGIC):])
    except (ValueError, EOFError, TypeError) as exc:
        raise SnapshotError(f"unreadable snapshot: {exc}") from None
    if (version != VERSION or not isinstance(functions, list) or not isinstance(dbs, list)
            or not isinstance(stream_db, int) or not 0 <= stream_db < len(fresh_dbs)):
        raise SnapshotError("unknown snapshot layout")
    try:
        for db_index, slots in dbs:
            if not isinstance(db_index, int) or not 0 <= db_index < len(fresh_dbs):
                raise SnapshotError(f"the snapshot has keys in DB {db_index}")
            db = fresh_dbs[db_index]
            for slot, strings, exp, others in slots:
                if not isinstance(slot, int) or not 0 <= slot < SLOT_COUNT or not isinstance(strings, dict):
                    raise SnapshotError("bad slot entry")
                if strings:
                    db.dicts[slot] = strings
                    db.size += len(strings)
                for key, payload in others:
                    d = db.dicts[slot]
                    if d is EMPTY:
                        d = db.dicts[slot] = {}
                    d[key] = restore_payload(payload, limits)
                    db.size += 1
                if exp:
                    if not isinstance(exp, dict):
                        raise SnapshotError("bad expires entry")
                    db.expires[slot] = exp
                    db.volatile += len(exp)
                    db.volatile_slots.add(slot)
    except SnapshotError:
        raise
    except Exception as exc:  # noqa: BLE001 - a malformed snapshot, whatever broke
        raise SnapshotError(f"malformed snapshot ({type(exc).__name__}: {exc})") from None
    return [code for code in functions if isinstance(code, (bytes, str))], stream_db
