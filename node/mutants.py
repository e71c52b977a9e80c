"""Seeded bugs for testing the chaos harness: it must catch them (issue 8, "seeded mutants").

Off unless the environment variable ``SHOAL_MUTANT`` is set when the node
starts; ``install(node)`` is called once at start-up and returns at once when
it is not set, so a normal node pays nothing (no wrapper, no flag test on any
hot path). Never set it in production: each mutant breaks a guarantee on
purpose.

* ``drop-acked-write`` -- one in ``SHOAL_MUTANT_EVERY`` (default 40) keyed
  write commands from clients is answered ``+OK`` without running: an
  acknowledged write that never happened. Writes arriving on a replica's
  master link are left alone.
* ``election-ignores-offsets`` -- a replica's election rank ignores
  replication offsets and orders the candidates by node id instead (the
  lowest id gets rank 0), so a stale replica can win the election.

Several mutants may be given, comma-separated.
"""

from __future__ import annotations

import os

__all__ = ["MUTANTS", "install"]

MUTANTS = {
    "drop-acked-write": "acknowledge 1 in SHOAL_MUTANT_EVERY client writes without running them",
    "election-ignores-offsets": "rank election candidates by node id, ignoring replication offsets",
}


def _drop_acked_writes(node, every: int) -> None:
    from node.commands.table import TABLE
    from node.resp.replies import OK

    counter = [0]

    def wrap(handler):
        def mutant(client, argv):
            if client.acl_user is not None:  # not a replica's master link
                counter[0] += 1
                if counter[0] % every == 0:
                    return OK
            return handler(client, argv)
        return mutant

    for cmd in TABLE.values():
        if cmd.is_write and cmd.handler is not None and (cmd.first_key > 0 or cmd.key_finder is not None):
            cmd.handler = wrap(cmd.handler)


def _election_ignores_offsets() -> None:
    from gossip.core import NOFAILOVER, ClusterState

    def rank_by_id(self) -> int:
        me = self.myself
        return sum(1 for r in self.replicas_of(me.master_id)
                   if r is not me and not r.flags & NOFAILOVER and r.id < me.id)

    ClusterState._replica_rank = rank_by_id


def install(node) -> list[str]:
    """Install the mutants named by ``SHOAL_MUTANT`` (if any); returns their names."""
    spec = os.environ.get("SHOAL_MUTANT", "")
    if not spec:
        return []
    names = [n.strip() for n in spec.split(",") if n.strip()]
    for name in names:
        if name == "drop-acked-write":
            _drop_acked_writes(node, max(1, int(os.environ.get("SHOAL_MUTANT_EVERY", "40"))))
        elif name == "election-ignores-offsets":
            _election_ignores_offsets()
        else:
            raise SystemExit(f"SHOAL_MUTANT: unknown mutant {name!r} (known: {', '.join(MUTANTS)})")
        if getattr(node, "logger", None) is not None:
            node.logger.warning(f"MUTANT {name} installed: this node breaks its guarantees on purpose")
    return names
