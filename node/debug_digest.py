"""DEBUG DIGEST and DEBUG DIGEST-VALUE with Redis's algorithm, so digests compare across servers.

Redis folds a dataset into 20 bytes with two SHA1-based primitives:

* ``xor_digest(d, data)``: ``d ^= SHA1(data)`` -- order-independent, used to
  combine unordered things (keys of a database);
* ``mix_digest(d, data)``: ``xor_digest(d, data)`` then ``d = SHA1(d)`` --
  order-dependent, used for sequences (a key's type, name and value).

Per key: ``k = 0``; ``mix(k, key)``; ``mix(k, type as 4-byte big-endian)``;
``mix(k, value)`` for a string (its decimal text if integer-encoded, which is
what the bytes are here anyway); ``xor(k, "!!expire!!")`` if it has a TTL.
The dataset digest starts at 0 and, for each non-empty database j, mixes in
``j`` as 4-byte big-endian and then xors in ``SHA1``-of-``k`` for each key
(``xor_digest(final, k)``). An empty dataset is forty zeros.

Like Redis, keys whose time has passed but that are still stored count: DEBUG
looks at the dictionary, not at what a read would see. Only the string type is
covered for now; a value of another type raises ``TypeError`` until its
module registers a digest function in ``VALUE_DIGESTERS``.
"""

from __future__ import annotations

import hashlib
from typing import Callable

__all__ = ["VALUE_DIGESTERS", "dataset_digest", "key_digest", "mix_digest", "xor_digest", "hexdigest"]

OBJ_STRING = 0
_ZERO = bytes(20)


def xor_digest(digest: bytearray, data: bytes) -> None:
    h = hashlib.sha1(data).digest()
    for i in range(20):
        digest[i] ^= h[i]


def mix_digest(digest: bytearray, data: bytes) -> None:
    xor_digest(digest, data)
    digest[:] = hashlib.sha1(bytes(digest)).digest()


def _string_digest(digest: bytearray, value) -> None:
    mix_digest(digest, bytes(value))


#: Python class of a stored value -> (Redis type number, fn(digest, value) mixing the value in).
VALUE_DIGESTERS: dict[type, tuple[int, Callable[[bytearray, object], None]]] = {
    bytes: (OBJ_STRING, _string_digest),
    bytearray: (OBJ_STRING, _string_digest),
}


def value_digest(digest: bytearray, value, has_expire: bool) -> None:
    """Redis's xorObjectDigest: the type, the value, and the expire marker."""
    entry = VALUE_DIGESTERS.get(type(value))
    if entry is None:
        raise TypeError(f"no DEBUG DIGEST support for {type(value).__name__} values")
    type_no, mix_value = entry
    mix_digest(digest, type_no.to_bytes(4, "big"))
    mix_value(digest, value)
    if has_expire:
        xor_digest(digest, b"!!expire!!")


def key_digest(db, key: bytes) -> bytes:
    """DEBUG DIGEST-VALUE for one key: 20 zero bytes if absent (expired-but-stored counts)."""
    slot, value = _find(db, key)
    digest = bytearray(20)
    if value is not None:
        value_digest(digest, value, key in db.expires[slot])
    return bytes(digest)


def dataset_digest(dbs) -> bytes:
    final = bytearray(20)
    for db in dbs:
        if not db.size:
            continue
        mix_digest(final, db.index.to_bytes(4, "big"))
        for slot, d in enumerate(db.dicts):
            if not d:
                continue
            expires = db.expires[slot]
            for key, value in d.items():
                digest = bytearray(20)
                mix_digest(digest, key)
                value_digest(digest, value, key in expires)
                xor_digest(final, bytes(digest))
    return bytes(final)


def hexdigest(digest: bytes) -> bytes:
    return digest.hex().encode()


def _find(db, key: bytes):
    from node.engine.database import keyslot

    slot = keyslot(key)
    return slot, db.dicts[slot].get(key)
