"""Cluster redirection at the dispatcher: MOVED, ASK, TRYAGAIN, CROSSSLOT, CLUSTERDOWN.

Installed as ``node.gate_hook`` in cluster mode. For each request with keys
(and for EXEC, over every queued command's keys together) it asks the pure
``slots.route`` and, unless the verdict is "serve", answers the redirection
itself, exactly where Redis's ``processCommand`` does: a redirected command
inside MULTI flags the transaction, and a redirected EXEC discards it.

ASKING lasts one command: it is consumed by the next routed command, except
while the client is inside MULTI (then it covers the queue and the EXEC).
"""

from __future__ import annotations

from binascii import crc_hqx

from gossip.messages import SLAVE
from slots import keyslot
from slots.route import SERVE, route

__all__ = ["install", "route_request"]

_SHARD_PUBSUB = frozenset(("ssubscribe", "sunsubscribe", "spublish"))


def _key_exists(db, key: bytes) -> bool:
    """Presence without side effects on stats or expiry: an expired key counts as missing."""
    slot = keyslot(key)
    if key not in db.dicts[slot]:
        return False
    when = db.expires[slot].get(key) if db.volatile else None
    return when is None or when >= db.now()


def route_request(node, driver, client, keys, *, name: str, is_write: bool, command_asking: bool = False):
    """``slots.route`` for one request (or EXEC's queue, or a script's inner call) on this node."""
    state = driver.state
    me = state.myself
    config = node.config
    db0 = node.dbs[0]
    return route(
        keys, state.slots, me.id,
        my_master=me.master_id if me.flags & SLAVE else None,
        state_ok=state.state_ok and (state.write_ok or not is_write),  # write_ok: cluster-write-lease-ms
        is_write=is_write,
        is_migrate=name == "migrate",
        command_asking=command_asking,
        client_asking=client.asking,
        client_readonly=client.readonly,
        shard_pubsub=name in _SHARD_PUBSUB,
        allow_reads_when_down=config["cluster-allow-reads-when-down"],
        allow_pubsubshard_when_down=config["cluster-allow-pubsubshard-when-down"],
        key_exists=lambda key: _key_exists(db0, key),
    )


def install(node, driver) -> None:
    from node.dispatch import reply_error
    from node.commands.transactions import discard_transaction
    from node.resp import ErrorReply

    def gate(client, cmd, argv) -> bool:
        if cmd.first_key == 1 and cmd.last_key == 1 and cmd.key_finder is None and client.multi is None:
            # The common case, decided without the general procedure: a one-key
            # command on a stable slot this node owns while the cluster is ok.
            key = argv[1]
            slot = crc_hqx(key, 0) & 16383 if 123 not in key else keyslot(key)
            state = driver.state
            slots = state.slots
            if (slots.owners[slot] == state.myself.id and state.state_ok and state.write_ok
                    and slot not in slots.migrating_to
                    and slot not in slots.importing_from):
                client.asking = False
                return False
        name = (cmd.parent or cmd).name
        is_exec = name == "exec"
        if is_exec:
            if client.multi is None:
                return False
            keys = []
            is_write = False
            for queued_cmd, queued_argv in client.multi:
                keys += queued_cmd.keys_of(queued_argv)
                is_write = is_write or "write" in queued_cmd.flags
        else:
            if cmd.first_key <= 0 and cmd.key_finder is None:
                if name == "asking":
                    return False
                if client.multi is None:
                    client.asking = False
                return False
            keys = cmd.keys_of(argv)
            is_write = "write" in cmd.flags
        verdict = route_request(node, driver, client, keys, name=name, is_write=is_write,
                                command_asking="asking" in cmd.flags)
        if client.multi is None or is_exec:
            client.asking = False
        if verdict is SERVE:
            return False
        error = ErrorReply(verdict.error(driver.endpoint))
        if is_exec:
            discard_transaction(client)
        elif client.multi is not None:
            client.multi_failed = True
        cmd.rejected_calls += 1
        reply_error(client, error)
        return True

    node.gate_hook = gate

    def propagate(channel: bytes, message: bytes, sharded: bool) -> None:
        """PUBLISH reaches every node's subscribers; SPUBLISH only the shard's (over the bus)."""
        driver.state.publish(channel, message, shard=sharded)
        driver.apply()

    node.pubsub.propagate = propagate
