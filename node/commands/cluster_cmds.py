"""CLUSTER subcommands, READONLY, READWRITE and ASKING, with Redis 7.0's replies and errors.

The commands read and change the state machine owned by ``node.cluster``
(a ``node.cluster.driver.ClusterDriver``); every change is followed by
``driver.apply()`` so nodes.conf is saved and messages go out before the
reply. The topology replies (SLOTS, SHARDS) are cached per protocol and
rebuilt only when the state machine's ``version`` moves -- after a failover,
thousands of clients refreshing at once cost one rebuild (cluster_spec.md 11.8).
"""

from __future__ import annotations

import ipaddress

from gossip.core import ClusterError
from gossip.messages import FAILED, MASTER, PFAIL, SLAVE, TYPE_NAMES
from gossip.state import node_line
from node.commands.args import parse_int
from node.commands.introspection import help_reply
from node.commands.table import command, container
from node.resp import OK, ErrorReply, Raw, SimpleString, Verbatim, encode
from slots import SLOT_COUNT, keyslot

_DISABLED = ErrorReply("ERR This instance has cluster support disabled")
_BAD_SLOT = ErrorReply("ERR Invalid or out of range slot")
_NOT_INT = ErrorReply("ERR value is not an integer or out of range")

CLUSTER = container("cluster", -2, group="cluster", summary="A container for cluster commands", since="3.0.0",
                    complexity="Depends on subcommand.")


def _sub(name: str, arity: int, flags: str, summary: str, since: str, complexity: str, **info):
    return command(name, arity, flags, parent="cluster", group="cluster", summary=summary, since=since,
                   complexity=complexity, **info)


def _driver(client):
    driver = client.node.cluster
    if driver is None:
        raise _DISABLED
    return driver


def _apply(driver, action, *args):
    try:
        result = action(*args)
    except ClusterError as exc:
        driver.apply()
        raise ErrorReply(str(exc)) from None
    driver.apply()
    return result


def _slot(arg: bytes) -> int:
    value = parse_int(arg, _BAD_SLOT)
    if not 0 <= value < SLOT_COUNT:
        raise _BAD_SLOT
    return value


# ------------------------------------------------------------------ information


@_sub("info", 2, "stale", "Provides info about Redis Cluster node state", "3.0.0", "O(1)",
      tips=("nondeterministic_output",))
def cluster_info(client, argv):
    state = _driver(client).state
    owners = state.slots.owners
    assigned = ok = pfail = fail = 0
    flags_of = {node_id: node.flags for node_id, node in state.nodes.items()}
    for owner in owners:
        if owner is None:
            continue
        assigned += 1
        flags = flags_of.get(owner, 0)
        if flags & FAILED:
            fail += 1
        elif flags & PFAIL:
            pfail += 1
        else:
            ok += 1
    me = state.myself
    lines = [
        f"cluster_state:{'ok' if state.state_ok else 'fail'}",
        f"cluster_slots_assigned:{assigned}",
        f"cluster_slots_ok:{ok}",
        f"cluster_slots_pfail:{pfail}",
        f"cluster_slots_fail:{fail}",
        f"cluster_known_nodes:{len(state.nodes)}",
        f"cluster_size:{state.size}",
        f"cluster_current_epoch:{state.current_epoch}",
        f"cluster_my_epoch:{state.epoch_shown(me)}",
    ]
    for direction, counts in (("sent", state.stats_sent), ("received", state.stats_received)):
        for name, count in zip(TYPE_NAMES, counts):
            if count:
                lines.append(f"cluster_stats_messages_{name}_{direction}:{count}")
        lines.append(f"cluster_stats_messages_{direction}:{sum(counts)}")
    lines.append("total_cluster_links_buffer_limit_exceeded:0")
    if state.cant_failover_reason:
        # Shoal-specific: why this replica is not failing over (Redis only logs clusterLogCantFailover's text).
        lines.append(f"cluster_failover_blocked:{state.cant_failover_reason}")
    if not state.write_ok:
        lines.append("cluster_write_lease:expired")  # Shoal-specific (cluster-write-lease-ms)
    return Verbatim(("\r\n".join(lines) + "\r\n").encode())


@_sub("myid", 2, "stale", "Return the node id", "3.0.0", "O(1)")
def cluster_myid(client, argv):
    return _driver(client).state.myself.id.encode()


@_sub("myshardid", 2, "stale", "Returns the shard ID of a node", "7.2.0", "O(1)",
      tips=("nondeterministic_output",))
def cluster_myshardid(client, argv):
    # Redis 7.2 gossips a separate random shard id; Shoal names a shard after its primary,
    # which is as stable and is shared by the primary and its replicas in the same way.
    me = _driver(client).state.myself
    return (me.master_id if me.master_id and me.flags & SLAVE else me.id).encode()


@_sub("nodes", 2, "stale", "Get Cluster config for the node", "3.0.0",
      "O(N) where N is the total number of Cluster nodes", tips=("nondeterministic_output",))
def cluster_nodes(client, argv):
    return Verbatim(_driver(client).state.nodes_text().encode())


def _replica_lines(client, argv):
    driver = _driver(client)
    state = driver.state
    node_id = argv[2].decode("utf-8", "surrogateescape")
    node = state.known(node_id)
    if node is None:
        raise ErrorReply(f"ERR Unknown node {node_id}")
    if not node.flags & MASTER:
        raise ErrorReply("ERR The specified node is not a master")
    return [node_line(r, 0, state.epoch_shown(r)).encode() for r in state.replicas_of(node.id)]


@_sub("replicas", 3, "admin stale", "List replica nodes of the specified master node", "5.0.0", "O(1)",
      tips=("nondeterministic_output",))
def cluster_replicas(client, argv):
    return _replica_lines(client, argv)


@_sub("slaves", 3, "admin stale", "List replica nodes of the specified master node", "3.0.0", "O(1)",
      tips=("nondeterministic_output",))
def cluster_slaves(client, argv):
    return _replica_lines(client, argv)


def _cached(driver, name: str, resp3: bool, build):
    """Serialized topology replies, rebuilt only when the cluster view changed."""
    cache = driver.__dict__.setdefault("_reply_cache", {})
    key = (name, resp3)
    version = driver.state.version
    hit = cache.get(key)
    if hit is not None and hit[0] == version:
        return hit[1]
    reply = Raw(encode(build(), resp3))
    cache[key] = (version, reply)
    return reply


def _serving_replicas(state, master_id: str) -> list:
    """Replicas CLUSTER SLOTS lists: not failed, and with a non-zero replication offset (synced)."""
    return [r for r in state.replicas_of(master_id) if not r.flags & FAILED and r.repl_offset]


@_sub("slots", 2, "stale", "Get array of Cluster slot to node mappings", "3.0.0",
      "O(N) where N is the total number of Cluster nodes", tips=("nondeterministic_output",))
def cluster_slots(client, argv):
    driver = _driver(client)
    state = driver.state

    def build():
        out = []
        owners = state.slots.owners
        start = 0
        for slot in range(1, SLOT_COUNT + 1):
            if slot == SLOT_COUNT or owners[slot] != owners[start]:
                owner = owners[start]
                if owner is not None and owner in state.nodes:
                    entry = [start, slot - 1]
                    for node in [state.nodes[owner]] + _serving_replicas(state, owner):
                        entry.append([node.ip.encode(), node.port, node.id.encode(), {}])
                    out.append(entry)
                start = slot
        return out

    return _cached(driver, "slots", client.resp3, build)


@_sub("shards", 2, "stale", "Get array of cluster slots to node mappings", "7.0.0",
      "O(N) where N is the total number of cluster nodes", tips=("nondeterministic_output",))
def cluster_shards(client, argv):
    driver = _driver(client)
    state = driver.state

    def node_map(node, role):
        if node.flags & FAILED:
            health = "fail"
        elif role == "replica" and not node.repl_offset:
            health = "loading"
        else:
            health = "online"
        entry = {b"id": node.id.encode()}
        if node.port:
            entry[b"port"] = node.port
        entry[b"ip"] = node.ip.encode()
        entry[b"endpoint"] = node.ip.encode()
        entry[b"role"] = role.encode()
        entry[b"replication-offset"] = node.repl_offset
        entry[b"health"] = health.encode()
        return entry

    def build():
        by_owner = state.slots.by_owner()
        shards = []
        for node in state.nodes.values():
            if not node.flags & MASTER:
                continue
            flat = []
            for start, end in by_owner.get(node.id, ()):
                flat += [start, end]
            nodes = [node_map(node, "master")] + [node_map(r, "replica") for r in state.replicas_of(node.id)]
            shards.append({b"slots": flat, b"nodes": nodes})
        return shards

    return _cached(driver, "shards", client.resp3, build)


@_sub("keyslot", 3, "stale", "Returns the hash slot of the specified key", "3.0.0",
      "O(N) where N is the number of bytes in the key")
def cluster_keyslot(client, argv):
    _driver(client)
    return keyslot(argv[2])


@_sub("countkeysinslot", 3, "stale", "Return the number of local keys in the specified hash slot", "3.0.0", "O(1)")
def cluster_countkeysinslot(client, argv):
    _driver(client)
    slot = parse_int(argv[2], _NOT_INT)
    if not 0 <= slot < SLOT_COUNT:
        raise ErrorReply("ERR Invalid slot")
    return len(client.node.dbs[0].dicts[slot])


@_sub("getkeysinslot", 4, "stale", "Return local key names in the specified hash slot", "3.0.0",
      "O(log(N)) where N is the number of requested keys", tips=("nondeterministic_output",))
def cluster_getkeysinslot(client, argv):
    _driver(client)
    slot = parse_int(argv[2], _NOT_INT)
    count = parse_int(argv[3], _NOT_INT)
    if not 0 <= slot < SLOT_COUNT or count < 0:
        raise ErrorReply("ERR Invalid slot or number of keys")
    keys = []
    for key in client.node.dbs[0].dicts[slot]:
        if len(keys) >= count:
            break
        keys.append(key)
    return keys


@_sub("count-failure-reports", 3, "admin stale", "Return the number of failure reports active for a given node",
      "3.0.0", "O(N) where N is the number of failure reports", tips=("nondeterministic_output",))
def cluster_count_failure_reports(client, argv):
    driver = _driver(client)
    return _apply(driver, driver.state.count_failure_reports, argv[2].decode("utf-8", "surrogateescape"),
                  driver.now())


@_sub("links", 2, "stale", "Returns a list of all TCP links to and from peer nodes in cluster", "7.0.0",
      "O(N) where N is the total number of Cluster nodes", tips=("nondeterministic_output",))
def cluster_links(client, argv):
    driver = _driver(client)
    out = []
    for node_id, link in driver.outbound.items():
        if link.stream is None:
            continue
        out.append({b"direction": b"to", b"node": node_id.encode(), b"create-time": 0, b"events": b"r",
                    b"send-buffer-allocated": len(link.out), b"send-buffer-used": len(link.out)})
    return out


# ------------------------------------------------------------------ slot assignment


def _slot_list(argv) -> list[int]:
    return [_slot(arg) for arg in argv[2:]]


def _slot_ranges(argv) -> list[int]:
    if (len(argv) - 2) % 2:
        raise ErrorReply(f"ERR wrong number of arguments for 'cluster|{argv[1].decode().lower()}' command")
    slots = []
    for i in range(2, len(argv), 2):
        start, end = _slot(argv[i]), _slot(argv[i + 1])
        if start > end:
            raise ErrorReply(f"ERR start slot number {start} is greater than end slot number {end}")
        slots += range(start, end + 1)
    return slots


_SLOT_FLAGS = "admin stale no_async_loading"


@_sub("addslots", -3, _SLOT_FLAGS, "Assign new hash slots to receiving node", "3.0.0",
      "O(N) where N is the total number of hash slot arguments")
def cluster_addslots(client, argv):
    driver = _driver(client)
    _apply(driver, driver.state.add_slots, _slot_list(argv))
    return OK


@_sub("addslotsrange", -4, _SLOT_FLAGS, "Assign new hash slots to receiving node", "7.0.0",
      "O(N) where N is the total number of the slots between the start slot and end slot arguments.")
def cluster_addslotsrange(client, argv):
    driver = _driver(client)
    _apply(driver, driver.state.add_slots, _slot_ranges(argv))
    return OK


@_sub("delslots", -3, _SLOT_FLAGS, "Set hash slots as unbound in receiving node", "3.0.0",
      "O(N) where N is the total number of hash slot arguments")
def cluster_delslots(client, argv):
    driver = _driver(client)
    _apply(driver, driver.state.del_slots, _slot_list(argv))
    return OK


@_sub("delslotsrange", -4, _SLOT_FLAGS, "Set hash slots as unbound in receiving node", "7.0.0",
      "O(N) where N is the total number of the slots between the start slot and end slot arguments.")
def cluster_delslotsrange(client, argv):
    driver = _driver(client)
    _apply(driver, driver.state.del_slots, _slot_ranges(argv))
    return OK


@_sub("flushslots", 2, _SLOT_FLAGS, "Delete a node's own slots information", "3.0.0", "O(1)")
def cluster_flushslots(client, argv):
    driver = _driver(client)
    if client.node.dbs[0].size:
        raise ErrorReply("ERR DB must be empty to perform CLUSTER FLUSHSLOTS.")
    _apply(driver, driver.state.flush_slots)
    return OK


_SETSLOT_USAGE = ErrorReply("ERR Invalid CLUSTER SETSLOT action or number of arguments. Try CLUSTER HELP")


@_sub("setslot", -4, _SLOT_FLAGS, "Bind a hash slot to a specific node", "3.0.0", "O(1)")
def cluster_setslot(client, argv):
    driver = _driver(client)
    state = driver.state
    if state.myself.flags & SLAVE:
        raise ErrorReply("ERR Please use SETSLOT only with masters.")
    slot = _slot(argv[2])
    action = argv[3].lower().decode("utf-8", "surrogateescape")
    if action == "stable":
        if len(argv) != 4:
            raise _SETSLOT_USAGE
        node_id = None
    elif action in ("migrating", "importing", "node"):
        if len(argv) != 5:
            raise _SETSLOT_USAGE
        node_id = argv[4].decode("utf-8", "surrogateescape")
    else:
        raise _SETSLOT_USAGE
    _apply(driver, state.set_slot, slot, action, node_id, driver.slot_has_keys(slot), driver.now())
    return OK


# ------------------------------------------------------------------ membership


@_sub("meet", -4, _SLOT_FLAGS, "Force a node cluster to handshake with another node", "3.0.0", "O(1)")
def cluster_meet(client, argv):
    driver = _driver(client)
    if len(argv) > 5:
        raise ErrorReply("ERR syntax error")
    port = parse_int(argv[3], ErrorReply(f"ERR Invalid TCP base port specified: {argv[3].decode(errors='replace')}"))
    if len(argv) == 5:
        cport = parse_int(argv[4],
                          ErrorReply(f"ERR Invalid TCP bus port specified: {argv[4].decode(errors='replace')}"))
    else:
        cport = port + 10000
    ip_text = argv[2].decode("utf-8", "surrogateescape")
    try:
        ip = str(ipaddress.ip_address(ip_text))
    except ValueError:
        ip = None
    if ip is None or not (0 < port <= 65535) or not (0 < cport <= 65535):
        raise ErrorReply(f"ERR Invalid node address specified: {ip_text}:{argv[3].decode(errors='replace')}")
    _apply(driver, driver.state.meet, ip, port, cport, driver.now())
    return OK


@_sub("forget", 3, _SLOT_FLAGS, "Remove a node from the nodes table", "3.0.0", "O(1)")
def cluster_forget(client, argv):
    driver = _driver(client)
    _apply(driver, driver.state.forget, argv[2].decode("utf-8", "surrogateescape"), driver.now())
    return OK


@_sub("replicate", 3, _SLOT_FLAGS, "Reconfigure a node as a replica of the specified master node", "3.0.0", "O(1)")
def cluster_replicate(client, argv):
    driver = _driver(client)
    _apply(driver, driver.state.replicate, argv[2].decode("utf-8", "surrogateescape"),
           bool(client.node.dbs[0].size))
    return OK


@_sub("reset", -2, "admin noscript stale", "Reset a Redis Cluster node", "3.0.0",
      "O(N) where N is the number of known nodes. The command may execute a FLUSHALL as a side effect.")
def cluster_reset(client, argv):
    driver = _driver(client)
    hard = False
    if len(argv) == 3:
        mode = argv[2].lower()
        if mode == b"hard":
            hard = True
        elif mode != b"soft":
            raise ErrorReply("ERR syntax error")
    elif len(argv) > 3:
        raise ErrorReply("ERR syntax error")
    was_replica = bool(driver.state.myself.flags & SLAVE)
    _apply(driver, driver.state.reset, hard, bool(client.node.dbs[0].size), driver.now())
    if was_replica:
        for db in client.node.dbs:
            db.clear()
    return OK


@_sub("saveconfig", 2, _SLOT_FLAGS, "Forces the node to save cluster state on disk", "3.0.0", "O(1)")
def cluster_saveconfig(client, argv):
    driver = _driver(client)
    try:
        driver.save(fsync=True)
    except OSError as exc:
        raise ErrorReply(f"ERR error saving the cluster node config: {exc.strerror}") from None
    return OK


@_sub("bumpepoch", 2, _SLOT_FLAGS, "Advance the cluster config epoch", "3.0.0", "O(1)",
      tips=("nondeterministic_output",))
def cluster_bumpepoch(client, argv):
    driver = _driver(client)
    result = _apply(driver, driver.state.bump_epoch)
    return SimpleString(f"{result} {driver.state.myself.config_epoch}".encode())


@_sub("failover", -2, _SLOT_FLAGS, "Forces a replica to perform a manual failover of its master.", "3.0.0", "O(1)")
def cluster_failover(client, argv):
    driver = _driver(client)
    mode = ""
    if len(argv) == 3:
        word = argv[2].lower()
        if word == b"force":
            mode = "force"
        elif word == b"takeover":
            mode = "takeover"
        else:
            raise ErrorReply("ERR syntax error")
    elif len(argv) > 3:
        name = argv[1].decode("utf-8", "replace")
        raise ErrorReply(f"ERR unknown subcommand or wrong number of arguments for '{name}'. Try CLUSTER HELP.")
    _apply(driver, driver.state.failover, mode, driver.now())
    return OK


@_sub("set-config-epoch", 3, _SLOT_FLAGS, "Set the configuration epoch in a new node", "3.0.0", "O(1)")
def cluster_set_config_epoch(client, argv):
    driver = _driver(client)
    epoch = parse_int(argv[2], _NOT_INT)
    _apply(driver, driver.state.set_config_epoch, epoch)
    return OK


_HELP = [
    "CLUSTER <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "ADDSLOTS <slot> [<slot> ...]",
    "    Assign slots to current node.",
    "ADDSLOTSRANGE <start slot> <end slot> [<start slot> <end slot> ...]",
    "    Assign slots which are between <start-slot> and <end-slot> to current node.",
    "BUMPEPOCH",
    "    Advance the cluster config epoch.",
    "COUNT-FAILURE-REPORTS <node-id>",
    "    Return number of failure reports for <node-id>.",
    "COUNTKEYSINSLOT <slot>",
    "    Return the number of keys in <slot>.",
    "DELSLOTS <slot> [<slot> ...]",
    "    Delete slots information from current node.",
    "DELSLOTSRANGE <start slot> <end slot> [<start slot> <end slot> ...]",
    "    Delete slots information which are between <start-slot> and <end-slot> from current node.",
    "FAILOVER [FORCE|TAKEOVER]",
    "    Promote current replica node to being a master.",
    "FORGET <node-id>",
    "    Remove a node from the cluster.",
    "GETKEYSINSLOT <slot> <count>",
    "    Return key names stored by current node in a slot.",
    "FLUSHSLOTS",
    "    Delete current node own slots information.",
    "INFO",
    "    Return information about the cluster.",
    "KEYSLOT <key>",
    "    Return the hash slot for <key>.",
    "LINKS",
    "    Return information about all network links between this node and its peers.",
    "    Output format is an array where each array element is a map containing attributes of a link",
    "MEET <ip> <port> [<bus-port>]",
    "    Connect nodes into a working cluster.",
    "MYID",
    "    Return the node id.",
    "NODES",
    "    Return cluster configuration seen by node. Output format:",
    "    <id> <ip:port> <flags> <master> <pings> <pongs> <epoch> <link> <slot> ...",
    "REPLICATE <node-id>",
    "    Configure current node as replica to <node-id>.",
    "RESET [HARD|SOFT]",
    "    Reset current node (default: soft).",
    "SET-CONFIG-EPOCH <epoch>",
    "    Set config epoch of current node.",
    "SETSLOT <slot> (IMPORTING <node-id>|MIGRATING <node-id>|STABLE|NODE <node-id>)",
    "    Set slot state.",
    "REPLICAS <node-id>",
    "    Return <node-id> replicas.",
    "SAVECONFIG",
    "    Force saving cluster configuration on disk.",
    "SLOTS",
    "    Return information about slots range mappings. Each range is made of:",
    "    start, end, master and replicas IP addresses, ports and ids",
    "SHARDS",
    "    Return information about slot range mappings and the nodes associated with them.",
    "HELP",
    "    Print this help.",
]


@_sub("help", 2, "loading stale", "Show helpful text about the different subcommands", "5.0.0", "O(1)")
def cluster_help(client, argv):
    return help_reply(_HELP)


# ------------------------------------------------------------------ connection flags


@command("readonly", 1, "loading stale fast", group="cluster", acl=("connection",), since="3.0.0",
         summary="Enables read queries for a connection to a cluster replica node", complexity="O(1)")
def readonly(client, argv):
    if client.node.cluster is None:
        raise _DISABLED
    client.readonly = True
    return OK


@command("readwrite", 1, "loading stale fast", group="cluster", acl=("connection",), since="3.0.0",
         summary="Disables read queries for a connection to a cluster replica node", complexity="O(1)")
def readwrite(client, argv):
    if client.node.cluster is None:
        raise _DISABLED
    client.readonly = False
    return OK


@command("asking", 1, "fast", group="cluster", acl=("connection",), since="3.0.0",
         summary="Sent by cluster clients after an -ASK redirect", complexity="O(1)")
def asking(client, argv):
    if client.node.cluster is None:
        raise _DISABLED
    client.asking = True
    return OK

