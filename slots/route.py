"""Where a request may run: Redis Cluster's redirection decision as one pure function.

``route()`` follows ``getNodeByQuery`` of Redis 7.0 step by step (the order
decides which error a request gets -- e.g. an unbound first slot answers
CLUSTERDOWN before a second key could answer CROSSSLOT):

1. keys in argument order; the first fixes the slot; an unbound slot answers
   ``CLUSTERDOWN Hash slot not served`` at once; a later key in another slot
   is ``CROSSSLOT``; the slot is in *migrating* mode if we own it and it is
   marked migrating, else *importing* mode if marked importing; in either
   mode keys are counted present or missing;
2. no keys: serve here;
3. cluster down: CLUSTERDOWN variants per ``allow_reads_when_down`` and the
   shard-pub/sub setting;
4. MIGRATE in either mode: serve here;
5. migrating with missing keys: ``TRYAGAIN`` if some are present, else ``ASK``;
6. importing and (ASKING or an ``asking`` command): ``TRYAGAIN`` for a
   multi-key request with missing keys, else serve here;
7. a READONLY client (or shard pub/sub) reading from a replica of the owner:
   serve here;
8. not ours: ``MOVED``; ours: serve here.

Inputs are plain values; key presence comes in as a callable so this module
never touches a keyspace.
"""

from __future__ import annotations

from typing import Callable, Iterable

from slots.keyslot import keyslot
from slots.slotmap import SlotMap

__all__ = [
    "Ask", "ClusterDown", "CrossSlot", "Moved", "Route", "SERVE", "Serve", "TryAgain", "route",
    "CROSSSLOT", "TRYAGAIN", "DOWN", "DOWN_READONLY", "NOT_SERVED",
]


class Route:
    """A routing verdict. ``error(endpoint)`` is the exact Redis error line (without ``-``/CRLF)."""

    __slots__ = ()

    def error(self, endpoint: Callable[[str], str]) -> str | None:
        return None


class Serve(Route):
    __slots__ = ()


class Moved(Route):
    __slots__ = ("slot", "node_id")

    def __init__(self, slot: int, node_id: str) -> None:
        self.slot = slot
        self.node_id = node_id

    def error(self, endpoint):
        return f"MOVED {self.slot} {endpoint(self.node_id)}"

    def __eq__(self, other):
        return type(other) is Moved and (other.slot, other.node_id) == (self.slot, self.node_id)

    def __repr__(self):
        return f"Moved({self.slot}, {self.node_id!r})"


class Ask(Route):
    __slots__ = ("slot", "node_id")

    def __init__(self, slot: int, node_id: str) -> None:
        self.slot = slot
        self.node_id = node_id

    def error(self, endpoint):
        return f"ASK {self.slot} {endpoint(self.node_id)}"

    def __eq__(self, other):
        return type(other) is Ask and (other.slot, other.node_id) == (self.slot, self.node_id)

    def __repr__(self):
        return f"Ask({self.slot}, {self.node_id!r})"


class _Fixed(Route):
    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def error(self, endpoint):
        return self.text

    def __repr__(self):
        return f"{type(self).__name__}({self.text!r})"


class TryAgain(_Fixed):
    __slots__ = ()


class CrossSlot(_Fixed):
    __slots__ = ()


class ClusterDown(_Fixed):
    __slots__ = ()


SERVE = Serve()
TRYAGAIN = TryAgain("TRYAGAIN Multiple keys request during rehashing of slot")
CROSSSLOT = CrossSlot("CROSSSLOT Keys in request don't hash to the same slot")
NOT_SERVED = ClusterDown("CLUSTERDOWN Hash slot not served")
DOWN = ClusterDown("CLUSTERDOWN The cluster is down")
DOWN_READONLY = ClusterDown("CLUSTERDOWN The cluster is down and only accepts read commands")


def route(
    keys: Iterable[bytes],
    slots: SlotMap,
    myself: str,
    *,
    my_master: str | None = None,
    state_ok: bool = True,
    is_write: bool = False,
    is_migrate: bool = False,
    command_asking: bool = False,
    client_asking: bool = False,
    client_readonly: bool = False,
    shard_pubsub: bool = False,
    allow_reads_when_down: bool = False,
    allow_pubsubshard_when_down: bool = True,
    key_exists: Callable[[bytes], bool] | None = None,
) -> Route:
    """The verdict for a request whose keys are ``keys`` (for EXEC: all queued keys, in order).

    ``my_master`` is the id of the primary this node replicates (None on a
    primary). ``key_exists`` is consulted only for slots being migrated or
    imported (an expired key must count as missing).
    """
    first_slot = -1
    owner = None
    first_key = None
    migrating = importing = multi_key = False
    present = missing = 0
    for key in keys:
        slot = keyslot(key)
        if first_slot < 0:
            first_slot = slot
            first_key = key
            owner = slots.owners[slot]
            if owner is None:
                return NOT_SERVED
            if owner == myself and slot in slots.migrating_to:
                migrating = True
            elif slot in slots.importing_from:
                importing = True
        else:
            if slot != first_slot:
                return CROSSSLOT
            if key != first_key:
                multi_key = True
        if (migrating or importing) and not shard_pubsub:
            if key_exists is not None and key_exists(key):
                present += 1
            else:
                missing += 1
    if first_slot < 0:
        return SERVE
    if not state_ok:
        if shard_pubsub:
            if not allow_pubsubshard_when_down:
                return DOWN
        elif not allow_reads_when_down:
            return DOWN
        elif is_write:
            return DOWN_READONLY
    if is_migrate and (migrating or importing):
        return SERVE
    if migrating and missing:
        if present:
            return TRYAGAIN
        return Ask(first_slot, slots.migrating_to[first_slot])
    if importing and (client_asking or command_asking):
        if multi_key and missing:
            return TRYAGAIN
        return SERVE
    if (client_readonly or shard_pubsub) and not is_write and my_master is not None and my_master == owner:
        return SERVE
    if owner != myself:
        return Moved(first_slot, owner)
    return SERVE
