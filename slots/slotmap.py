"""Who serves each slot, and which slots are moving: the table routing reads.

``SlotMap`` is plain data owned by the cluster state machine (gossip/); the
node's dispatcher reads it through ``route()``. Owners are node ids (40-char
``str``) or None for an unbound slot. Migration marks live beside it, as in
Redis: ``migrating_to[slot]`` on the source, ``importing_from[slot]`` on the
target, each naming the other node.
"""

from __future__ import annotations

from slots.keyslot import SLOT_COUNT
from slots.ranges import ranges_from_bits

__all__ = ["SlotMap"]


class SlotMap:
    __slots__ = ("owners", "migrating_to", "importing_from")

    def __init__(self) -> None:
        self.owners: list[str | None] = [None] * SLOT_COUNT
        self.migrating_to: dict[int, str] = {}
        self.importing_from: dict[int, str] = {}

    def copy(self) -> "SlotMap":
        other = SlotMap()
        other.owners = list(self.owners)
        other.migrating_to = dict(self.migrating_to)
        other.importing_from = dict(self.importing_from)
        return other

    def owner(self, slot: int) -> str | None:
        return self.owners[slot]

    def assign(self, slot: int, node_id: str | None) -> None:
        self.owners[slot] = node_id

    def slots_of(self, node_id: str) -> int:
        """The slots ``node_id`` owns, as a bit set (see ``slots.ranges``)."""
        bits = 0
        for slot, owner in enumerate(self.owners):
            if owner == node_id:
                bits |= 1 << slot
        return bits

    def ranges_of(self, node_id: str) -> list[tuple[int, int]]:
        return ranges_from_bits(self.slots_of(node_id))

    def by_owner(self) -> dict[str, list[tuple[int, int]]]:
        """Owner -> its ranges, in one pass (CLUSTER SLOTS / SHARDS / NODES)."""
        out: dict[str, list[tuple[int, int]]] = {}
        start = 0
        owners = self.owners
        for slot in range(1, SLOT_COUNT + 1):
            if slot == SLOT_COUNT or owners[slot] != owners[start]:
                owner = owners[start]
                if owner is not None:
                    out.setdefault(owner, []).append((start, slot - 1))
                start = slot
        return out

    def covered(self) -> bool:
        return None not in self.owners

    def unbound_count(self) -> int:
        return self.owners.count(None)
