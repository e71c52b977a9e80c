"""``shoal create|check|reshard|rebalance|add-node|del-node|failover|fix``: cluster administration.

The same jobs as ``redis-cli --cluster``, done from Python over the wire
with the same commands (CLUSTER ADDSLOTS/MEET/REPLICATE/SETSLOT/GETKEYSINSLOT,
MIGRATE, CLUSTER FORGET, CLUSTER FAILOVER), so they work against Shoal and
real Redis nodes alike. Each subcommand prints progress to stderr and, with
``--json``, one JSON document on stdout that scripts can read; the exit
status is 0 on success and 1 when the cluster has a problem or the job
failed.

Moving a slot follows the cluster spec's order so clients only ever see
redirections: the target is marked IMPORTING, then the source MIGRATING;
keys go over in MIGRATE batches until GETKEYSINSLOT comes back empty; then
the target, the source and every other primary are told the new owner
(SETSLOT NODE). Only loopback addresses are accepted.

A move that fails because its source (or target) failed over -- a
connection error, MOVED/READONLY from a node that became a replica, SETSLOT
refused by a replica -- is resumed: ``reshard`` (and ``fix``) wait until
every reachable node agrees on who serves the slot and that owner is a
healthy primary, re-read the cluster, and finish the slot from its current
owner with the same standard flow (IMPORTING/MIGRATING again, MIGRATE with
REPLACE, SETSLOT NODE everywhere). Later slots of the plan are taken from
whoever serves them by then. Shoal's new primary has adopted its old
primary's MIGRATING marks and the target renamed its IMPORTING mark, so
clients see only ASK/MOVED meanwhile; against real Redis the same resume
sets the marks afresh.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field

from cluster.resp import RespClient, RespError
from cluster.waiting import wait_until
from slots import SLOT_COUNT

__all__ = ["ClusterView", "NodeInfo", "main", "move_slot"]


# ------------------------------------------------------------------ reading the cluster


@dataclass
class NodeInfo:
    """One line of CLUSTER NODES, as the node we asked sees it."""

    id: str
    host: str
    port: int
    flags: set[str]
    master_id: str | None
    slots: list[int] = field(default_factory=list)
    migrating: dict[int, str] = field(default_factory=dict)
    importing: dict[int, str] = field(default_factory=dict)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def is_master(self) -> bool:
        return "master" in self.flags

    @property
    def failed(self) -> bool:
        return "fail" in self.flags or "fail?" in self.flags


def parse_nodes(text: str) -> list[NodeInfo]:
    nodes = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 8:
            continue
        address = parts[1].split("@")[0]
        host, _, port = address.rpartition(":")
        info = NodeInfo(id=parts[0], host=host, port=int(port or 0), flags=set(parts[2].split(",")),
                        master_id=None if parts[3] == "-" else parts[3])
        for token in parts[8:]:
            if token.startswith("["):
                body = token.strip("[]")
                if "->-" in body:
                    slot, other = body.split("->-")
                    info.migrating[int(slot)] = other
                elif "-<-" in body:
                    slot, other = body.split("-<-")
                    info.importing[int(slot)] = other
                continue
            lo, _, hi = token.partition("-")
            info.slots.extend(range(int(lo), int(hi or lo) + 1))
        nodes.append(info)
    return nodes


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    if not host.startswith("127."):
        raise SystemExit(f"shoal: only loopback addresses (127.0.0.0/8) are allowed, not {address}")
    return host, int(port)


class Conn:
    """A cached connection per node address."""

    def __init__(self, timeout: float = 10.0) -> None:
        self.timeout = timeout
        self.clients: dict[tuple[str, int], RespClient] = {}

    def call(self, host: str, port: int, *args):
        client = self.clients.get((host, port))
        if client is None:
            client = self.clients[(host, port)] = RespClient(host, port, timeout=self.timeout)
        try:
            return client.call(*args)
        except (OSError, ConnectionError):
            self.clients.pop((host, port), None)
            client.close()
            raise

    def close(self) -> None:
        for client in self.clients.values():
            client.close()
        self.clients.clear()


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class ClusterView:
    """Every reachable node's own view of the cluster, loaded from one entry point."""

    def __init__(self, conn: Conn, entry: str) -> None:
        self.conn = conn
        host, port = _split(entry)
        self.views: dict[str, list[NodeInfo]] = {}
        first = parse_nodes(_text(conn.call(host, port, "CLUSTER", "NODES")))
        self.nodes: dict[str, NodeInfo] = {}
        for node in first:
            if "myself" in node.flags and not node.host:
                node.host = host
            self.nodes[node.id] = node
        for node in list(self.nodes.values()):
            if node.failed or "noaddr" in node.flags or "handshake" in node.flags:
                continue
            try:
                view = parse_nodes(_text(conn.call(node.host, node.port, "CLUSTER", "NODES")))
            except (OSError, ConnectionError, RespError):
                continue
            self.views[node.id] = view
            mine = next((n for n in view if "myself" in n.flags), None)
            if mine is not None:  # each node is the authority on its own marks
                node.migrating = mine.migrating
                node.importing = mine.importing
        for node in self.nodes.values():
            if node.id not in self.views:  # a replica's copy of its primary's marks is not the primary's word
                node.migrating, node.importing = {}, {}

    def masters(self) -> list[NodeInfo]:
        return [n for n in self.nodes.values() if n.is_master and not n.failed]

    def replicas_of(self, node_id: str) -> list[NodeInfo]:
        return [n for n in self.nodes.values() if n.master_id == node_id]

    def owner_of(self) -> dict[int, str]:
        return {slot: node.id for node in self.nodes.values() if node.is_master for slot in node.slots}

    def call(self, node: NodeInfo, *args):
        return self.conn.call(node.host, node.port, *args)

    def owner_seen_by(self, node_id: str, slot: int) -> str | None:
        """Who serves ``slot`` according to node ``node_id``'s own CLUSTER NODES (None: unknown/unbound)."""
        for n in self.views.get(node_id, ()):
            if slot in n.slots:
                return n.id
        return None


# ---------------------------------------------------------------- output and progress


class Report:
    """Progress on stderr (a single updating line on a terminal), the result as text or JSON."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.data: dict = {}
        self.tty = sys.stderr.isatty()

    def say(self, text: str) -> None:
        print(text, file=sys.stderr)

    def progress(self, done: int, total: int, what: str) -> None:
        if total <= 0:
            return
        if self.tty:
            width = 30
            filled = int(width * done / total)
            sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {what}   ")
            if done == total:
                sys.stderr.write("\n")
            sys.stderr.flush()
        elif done == total or done % max(1, total // 10) == 0:
            self.say(f"{done}/{total} {what}")

    def finish(self, ok: bool) -> int:
        self.data["ok"] = ok
        if self.as_json:
            print(json.dumps(self.data, indent=2, sort_keys=True))
        return 0 if ok else 1


# --------------------------------------------------------------------------- check


def check(view: ClusterView) -> dict:
    """What ``redis-cli --cluster check`` looks at: agreement, open slots, coverage."""
    signatures = {}
    for node_id, nodes in view.views.items():
        signature = sorted((n.id, tuple(n.slots)) for n in nodes if n.is_master and n.slots)
        signatures[node_id] = signature
    agree = len({json.dumps(s) for s in signatures.values()}) <= 1
    open_slots = sorted({slot for n in view.nodes.values() for slot in (*n.migrating, *n.importing)})
    owners = view.owner_of()
    uncovered = [slot for slot in range(SLOT_COUNT) if slot not in owners]
    masters = [{"id": n.id, "address": n.address, "slots": len(n.slots),
                "replicas": len(view.replicas_of(n.id))} for n in view.masters()]
    return {"agree": agree, "open_slots": open_slots, "uncovered_slots": len(uncovered),
            "covered": not uncovered, "masters": masters,
            "failed_nodes": [n.address for n in view.nodes.values() if n.failed]}


def cmd_check(args, conn: Conn, report: Report) -> int:
    view = ClusterView(conn, args.address)
    result = check(view)
    report.data.update(result)
    if not args.json:
        for m in result["masters"]:
            print(f"M: {m['id']} {m['address']} slots={m['slots']} replicas={m['replicas']}")
        print("[OK] All nodes agree about slots configuration." if result["agree"]
              else "[ERR] Nodes don't agree about configuration!")
        if result["open_slots"]:
            print(f"[WARNING] The following slots are open: {','.join(map(str, result['open_slots']))}.")
        print("[OK] All 16384 slots covered." if result["covered"]
              else f"[ERR] Not all 16384 slots are covered by nodes ({result['uncovered_slots']} uncovered).")
    return report.finish(result["agree"] and not result["open_slots"] and result["covered"])


# ---------------------------------------------------------------------- moving slots


def move_slot(view: ClusterView, source: NodeInfo, target: NodeInfo, slot: int, *, batch: int = 10,
              timeout_ms: int = 60000, replace: bool = False) -> int:
    """Move one slot with its keys; returns the number of keys moved."""
    view.call(target, "CLUSTER", "SETSLOT", slot, "IMPORTING", source.id)
    view.call(source, "CLUSTER", "SETSLOT", slot, "MIGRATING", target.id)
    moved = 0
    while True:
        keys = view.call(source, "CLUSTER", "GETKEYSINSLOT", slot, batch)
        if not keys:
            break
        args = ["MIGRATE", target.host, target.port, "", 0, timeout_ms]
        if replace:
            args.append("REPLACE")
        try:
            view.call(source, *args, "KEYS", *keys)
        except RespError as exc:
            if "BUSYKEY" in str(exc) and not replace:
                raise RespError(f"{exc} (keys already exist on the target: use --replace to overwrite)") from None
            raise
        moved += len(keys)
    for node in [target, source] + [m for m in view.masters() if m.id not in (source.id, target.id)]:
        try:
            view.call(node, "CLUSTER", "SETSLOT", slot, "NODE", target.id)
        except RespError as exc:
            # A source that gave away its last slot may already have heard so over the bus and
            # turned into the target's replica (cluster-allow-replica-migration): nothing left to tell it.
            if node is target or "only with masters" not in str(exc) and node is source:
                raise
        except (OSError, ConnectionError):
            if node in (target, source):
                raise
            # another primary may be failing: it learns the new owner through gossip
    if slot in source.slots:
        source.slots.remove(slot)
    if slot not in target.slots:
        target.slots.append(slot)
    return moved


# ------------------------------------------------------------ resuming after a failover

#: Error replies that say "the node's role or the slot's owner changed under us" (a failover), not "bad request".
_RESUMABLE = ("MOVED ", "ASK ", "READONLY ", "CLUSTERDOWN ", "TRYAGAIN ", "MASTERDOWN ", "LOADING ", "IOERR ")
_RESUMABLE_ERR = ("only with masters", "not the owner", "already the owner", "is not a master", "don't know about node",
                  "Unknown node", "connection", "Connection", "timeout", "timed out")
_MAX_RESUMES = 5


def resumable(exc: Exception) -> bool:
    """Worth resuming after the cluster settles (as opposed to a real error such as BUSYKEY)."""
    if isinstance(exc, (OSError, ConnectionError)):
        return True
    text = str(exc)
    if text.startswith("ERR Target instance replied with error: "):  # MIGRATE relaying the target's answer
        text = text[len("ERR Target instance replied with error: "):]
    return text.startswith(_RESUMABLE) or any(part in text for part in _RESUMABLE_ERR)


def settled_view(conn: Conn, addresses: list[str], slot: int, timeout: float) -> ClusterView:
    """Wait until the cluster has settled around ``slot`` and return a fresh view.

    Settled: a view loads from one of ``addresses``; every node that answered
    names the same owner for ``slot``; that owner is a primary, not failing,
    that answered; and no failing node still serves slots (a failover under way).
    """
    deadline = time.monotonic() + timeout
    last = "no node answered"
    while True:
        for address in addresses:
            try:
                view = ClusterView(conn, address)
            except (OSError, ConnectionError, RespError) as exc:
                last = f"{address}: {exc}"
                continue
            owners = {view.owner_seen_by(node_id, slot) for node_id in view.views}
            owner = view.nodes.get(next(iter(owners))) if len(owners) == 1 else None
            if owner is None:
                last = f"nodes disagree about slot {slot}: {sorted(map(str, owners))}"
            elif not owner.is_master or owner.failed or owner.id not in view.views:
                last = f"slot {slot} owner {owner.id} is not a healthy primary yet"
            elif any(n.failed and n.slots for n in view.nodes.values()):
                last = "a failing primary still serves slots"
            elif not all(_state_ok(view, node) for node in view.masters()):
                last = "the cluster state is not ok everywhere"
            else:
                return view
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"the cluster did not settle within {timeout:.0f} s: {last}")
        time.sleep(0.25)


def _state_ok(view: ClusterView, node: NodeInfo) -> bool:
    try:
        return "cluster_state:ok" in _text(view.call(node, "CLUSTER", "INFO"))
    except (OSError, ConnectionError, RespError):
        return False


def _addresses(view: ClusterView, first: list[NodeInfo]) -> list[str]:
    out = [n.address for n in first]
    out += [n.address for n in view.nodes.values() if n.address not in out and not n.failed]
    return out


def _primary_of(view: ClusterView, node_id: str) -> NodeInfo:
    """``node_id`` if it is a primary, else the primary it now follows (it failed over)."""
    node = view.nodes[node_id]
    if not node.is_master and node.master_id in view.nodes:
        node = view.nodes[node.master_id]
    return node


def close_slot(view: ClusterView, target: NodeInfo, slot: int) -> None:
    """The target already serves ``slot``: tell every primary so (which also clears its marks)."""
    view.call(target, "CLUSTER", "SETSLOT", slot, "NODE", target.id)
    for node in view.masters():
        if node.id == target.id:
            continue
        try:
            view.call(node, "CLUSTER", "SETSLOT", slot, "NODE", target.id)
        except (OSError, ConnectionError, RespError):
            pass  # it learns the owner through gossip


class Resharder:
    """Moves slots, resuming each one that a failover interrupts (see the module docstring)."""

    def __init__(self, view: ClusterView, report: Report, args, *, settle: float = 60.0) -> None:
        self.view = view
        self.report = report
        self.args = args
        self.settle = settle
        self.resumes = 0

    def move(self, source: NodeInfo, target: NodeInfo, slot: int, *, replace: bool = False) -> int:
        attempts = 0
        moved = 0
        while True:
            try:
                return moved + move_slot(self.view, source, target, slot, batch=self.args.pipeline,
                                         timeout_ms=self.args.timeout, replace=replace or attempts > 0)
            except (OSError, ConnectionError, RespError) as exc:
                if not resumable(exc) or attempts >= _MAX_RESUMES:
                    raise
                attempts += 1
                self.resumes += 1
                self.report.say(f"slot {slot}: {exc!s:.200}; waiting for the cluster to settle, then resuming")
                view = settled_view(self.view.conn, _addresses(self.view, [target, source]), slot, self.settle)
                self.view = view
                target = _primary_of(view, target.id)
                owner_id = view.owner_seen_by(target.id, slot)
                if owner_id == target.id:
                    close_slot(view, target, slot)
                    self.report.say(f"slot {slot}: already served by {target.id}; closed")
                    return moved
                source = view.nodes[owner_id]
                self.report.say(f"slot {slot}: resuming from {source.id} ({source.address})")

    def current(self, source: NodeInfo, target: NodeInfo, slot: int) -> tuple[NodeInfo, NodeInfo]:
        """The plan's nodes as the current view knows them (after a resume, the slot's current owner)."""
        view = self.view
        target = _primary_of(view, target.id) if target.id in view.nodes else target
        node = view.nodes.get(source.id)
        if node is None or not node.is_master or node.failed or slot not in node.slots:
            owner = view.owner_seen_by(target.id, slot)
            if owner is not None and owner in view.nodes:
                return view.nodes[owner], target
        return node or source, target


def _move_many(view: ClusterView, plan: list[tuple[NodeInfo, NodeInfo, int]], report: Report, args) -> dict:
    keys = 0
    mover = Resharder(view, report, args)
    for done, (source, target, slot) in enumerate(plan, 1):
        if mover.view is not view:
            source, target = mover.current(source, target, slot)
        if source.id == target.id:
            close_slot(mover.view, target, slot)  # moved already (finished by a resume)
        else:
            keys += mover.move(source, target, slot, replace=args.replace)
        report.progress(done, len(plan), "slots moved")
    return {"slots_moved": len(plan), "keys_moved": keys, "resumed": mover.resumes}


def await_agreement(conn: Conn, entry: str, timeout: float = 30.0) -> float:
    """Wait until every reachable node reports the same slot owners; returns the seconds it took.

    The last SETSLOTs of a move reach the nodes the tool did not talk to (replicas,
    and other primaries through the coalesced PONG) up to a cron tick later: a
    reshard or rebalance returns only once ``check`` would see agreement, so a
    script can run ``shoal check`` (or ``redis-cli --cluster check``) right after.
    """
    start = time.monotonic()
    wait_until(lambda: check(ClusterView(conn, entry))["agree"], timeout, "every node to agree on the slots")
    return round(time.monotonic() - start, 3)


def _find(view: ClusterView, node_id: str) -> NodeInfo:
    matches = [n for n in view.nodes.values() if n.id.startswith(node_id)]
    if len(matches) != 1:
        raise SystemExit(f"shoal: no single node with id {node_id!r}")
    return matches[0]


def cmd_reshard(args, conn: Conn, report: Report) -> int:
    view = ClusterView(conn, args.address)
    target = _find(view, args.to)
    if args.from_ == "all":
        sources = [m for m in view.masters() if m.id != target.id and m.slots]
    else:
        sources = [_find(view, part) for part in args.from_.split(",")]
    total = sum(len(s.slots) for s in sources)
    if args.slots <= 0 or args.slots > total:
        raise SystemExit(f"shoal: --slots must be between 1 and {total}")
    plan = []
    remaining = args.slots
    for i, source in enumerate(sources):
        share = remaining if i == len(sources) - 1 else min(remaining, round(args.slots * len(source.slots) / total))
        for slot in sorted(source.slots)[:share]:
            plan.append((source, target, slot))
        remaining -= share
    start = time.monotonic()
    result = _move_many(view, plan, report, args)
    result["seconds"] = round(time.monotonic() - start, 3)
    result["agreed_after_s"] = await_agreement(conn, args.address)
    report.data.update(result)
    if not args.json:
        print(f"Moved {result['slots_moved']} slots and {result['keys_moved']} keys in {result['seconds']} s")
    return report.finish(True)


def rebalance_plan(masters: list[NodeInfo], weights: dict[str, float], threshold: float,
                   use_empty: bool) -> list[tuple[NodeInfo, NodeInfo, int]]:
    """Like redis-cli's rebalance: expected slots by weight, move from the richest to the poorest."""
    candidates = [m for m in masters if m.slots or use_empty]
    total_weight = sum(weights.get(m.id, 1.0) for m in candidates)
    if total_weight <= 0:
        return []
    balance = {}
    over_threshold = False
    for m in candidates:
        expected = int(SLOT_COUNT / total_weight * weights.get(m.id, 1.0))
        balance[m.id] = len(m.slots) - expected
        if expected and abs(100 - 100.0 / expected * len(m.slots)) > threshold:
            over_threshold = True
        elif not expected and m.slots:
            over_threshold = True
    if not over_threshold:
        return []
    # Rounding leaves a few slots unassigned: give them to the poorest nodes.
    deficit = sum(balance.values())
    for m in sorted(candidates, key=lambda m: balance[m.id]):
        if deficit <= 0:
            break
        balance[m.id] -= 1
        deficit -= 1
    by_id = {m.id: m for m in candidates}
    owned = {m.id: sorted(m.slots) for m in candidates}
    plan = []
    while True:
        rich = max(candidates, key=lambda m: balance[m.id])
        poor = min(candidates, key=lambda m: balance[m.id])
        if balance[rich.id] <= 0 or balance[poor.id] >= 0:
            break
        count = min(balance[rich.id], -balance[poor.id])
        for slot in owned[rich.id][:count]:
            plan.append((by_id[rich.id], by_id[poor.id], slot))
        owned[rich.id] = owned[rich.id][count:]
        balance[rich.id] -= count
        balance[poor.id] += count
    return plan


def cmd_rebalance(args, conn: Conn, report: Report) -> int:
    view = ClusterView(conn, args.address)
    weights = {}
    for item in args.weight or []:
        node_id, _, value = item.partition("=")
        weights[_find(view, node_id).id] = float(value)
    plan = rebalance_plan(view.masters(), weights, args.threshold, args.use_empty_masters)
    if not plan:
        report.say("No rebalancing needed: every primary is within the threshold.")
    result = _move_many(view, plan, report, args)
    if plan:
        result["agreed_after_s"] = await_agreement(conn, args.address)
    report.data.update(result)
    if not args.json:
        print(f"Moved {result['slots_moved']} slots and {result['keys_moved']} keys")
    return report.finish(True)


# ------------------------------------------------------------------ membership changes


_wait = wait_until  # a TimeoutError is an OSError: run() reports it like any other failure


def cmd_create(args, conn: Conn, report: Report) -> int:
    addresses = [_split(a) for a in args.addresses]
    replicas = args.replicas
    primaries = len(addresses) // (1 + replicas)
    if primaries < 1 or primaries * (1 + replicas) != len(addresses):
        raise SystemExit("shoal: the number of nodes must be a multiple of 1 + --replicas")
    for host, port in addresses:
        if int(conn.call(host, port, "DBSIZE")) or len(_text(conn.call(host, port, "CLUSTER", "NODES"))
                                                       .strip().splitlines()) > 1:
            raise SystemExit(f"shoal: node {host}:{port} is not empty (it holds keys or knows other nodes)")
    ids = [_text(conn.call(h, p, "CLUSTER", "MYID")) for h, p in addresses]
    per = SLOT_COUNT // primaries
    for i, (host, port) in enumerate(addresses[:primaries]):
        first = i * per
        last = SLOT_COUNT - 1 if i == primaries - 1 else first + per - 1
        conn.call(host, port, "CLUSTER", "ADDSLOTSRANGE", first, last)
        conn.call(host, port, "CLUSTER", "SET-CONFIG-EPOCH", i + 1)
    first_host, first_port = addresses[0]
    for host, port in addresses[1:]:
        conn.call(host, port, "CLUSTER", "MEET", first_host, first_port)
    _wait(lambda: all(len(_text(conn.call(h, p, "CLUSTER", "NODES")).strip().splitlines()) == len(addresses)
                      for h, p in addresses), 60, "every node to know every other")
    for j, (host, port) in enumerate(addresses[primaries:]):
        master = ids[j % primaries]
        _wait(lambda h=host, p=port, m=master: m in _text(conn.call(h, p, "CLUSTER", "NODES")), 30,
              "the replica to know its primary")
        conn.call(host, port, "CLUSTER", "REPLICATE", master)
    _wait(lambda: all("cluster_state:ok" in _text(conn.call(h, p, "CLUSTER", "INFO")) for h, p in addresses), 60,
          "cluster_state:ok everywhere")
    wanted = len(addresses) - primaries
    _wait(lambda: all(sum("slave" in line.split()[2] for line in _text(conn.call(h, p, "CLUSTER", "NODES"))
                          .splitlines() if line.strip()) == wanted for h, p in addresses), 60,
          "every node to know every replica's role")
    report.data.update({"primaries": [f"{h}:{p}" for h, p in addresses[:primaries]],
                        "replicas": [f"{h}:{p}" for h, p in addresses[primaries:]], "ids": ids})
    if not args.json:
        print(f"[OK] Cluster created: {primaries} primaries, {len(addresses) - primaries} replicas")
    return report.finish(True)


def cmd_add_node(args, conn: Conn, report: Report) -> int:
    new_host, new_port = _split(args.new)
    view = ClusterView(conn, args.existing)
    if int(conn.call(new_host, new_port, "DBSIZE")):
        raise SystemExit(f"shoal: node {args.new} is not empty")
    new_id = _text(conn.call(new_host, new_port, "CLUSTER", "MYID"))
    entry = next(iter(view.masters()))
    conn.call(new_host, new_port, "CLUSTER", "MEET", entry.host, entry.port)
    _wait(lambda: new_id in _text(conn.call(entry.host, entry.port, "CLUSTER", "NODES")), 30,
          "the cluster to know the new node")
    role = "master"
    if args.replica:
        if args.master_id:
            master = _find(view, args.master_id)
        else:
            master = min(view.masters(), key=lambda m: len(view.replicas_of(m.id)))
        _wait(lambda: master.id in _text(conn.call(new_host, new_port, "CLUSTER", "NODES")), 30,
              "the new node to learn its primary")
        conn.call(new_host, new_port, "CLUSTER", "REPLICATE", master.id)
        role = f"replica of {master.id}"
    report.data.update({"id": new_id, "address": args.new, "role": role})
    if not args.json:
        print(f"[OK] {args.new} joined as {role}")
    return report.finish(True)


def cmd_del_node(args, conn: Conn, report: Report) -> int:
    view = ClusterView(conn, args.address)
    node = _find(view, args.node_id)
    if node.slots:
        raise SystemExit(f"shoal: node {node.address} still serves {len(node.slots)} slots: reshard them away first")
    # Its replicas need another primary: the one with the fewest replicas.
    others = [m for m in view.masters() if m.id != node.id]
    for replica in view.replicas_of(node.id):
        if others:
            master = min(others, key=lambda m: len(view.replicas_of(m.id)))
            view.call(replica, "CLUSTER", "REPLICATE", master.id)
    for other in view.nodes.values():
        if other.id != node.id and not other.failed:
            view.call(other, "CLUSTER", "FORGET", node.id)
    try:
        view.call(node, "SHUTDOWN")
    except (OSError, ConnectionError, RespError):
        pass  # the connection closes as the node exits
    report.data.update({"removed": node.id, "address": node.address})
    if not args.json:
        print(f"[OK] Removed {node.id} ({node.address})")
    return report.finish(True)


def cmd_failover(args, conn: Conn, report: Report) -> int:
    host, port = _split(args.address)
    mode = ["FORCE"] if args.force else ["TAKEOVER"] if args.takeover else []
    conn.call(host, port, "CLUSTER", "FAILOVER", *mode)
    _wait(lambda: _text(conn.call(host, port, "ROLE")[0]) == "master", args.wait,
          "the replica to become primary")
    report.data.update({"promoted": args.address, "mode": mode[0].lower() if mode else "default"})
    if not args.json:
        print(f"[OK] {args.address} is now a primary")
    return report.finish(True)


def cmd_fix(args, conn: Conn, report: Report) -> int:
    view = ClusterView(conn, args.address)
    fixed_open = []
    open_slots = sorted({slot for n in view.nodes.values() for slot in (*n.migrating, *n.importing)})
    if open_slots:
        # A failover may be under way (the usual reason slots stay open): let it finish first.
        try:
            view = settled_view(conn, [args.address] + _addresses(view, []), open_slots[0], args.settle)
        except TimeoutError as exc:
            report.say(f"shoal: {exc}; fixing with what is known")
        open_slots = sorted({slot for n in view.nodes.values() for slot in (*n.migrating, *n.importing)})
    mover = Resharder(view, report, args, settle=args.settle)
    for slot in open_slots:
        view = mover.view
        migrating = [n for n in view.nodes.values() if slot in n.migrating and n.id in view.views]
        importing = [n for n in view.nodes.values() if slot in n.importing and n.id in view.views]
        owner_id = view.owner_of().get(slot)
        owner = view.nodes.get(owner_id) if owner_id else (migrating[0] if migrating else None)
        if owner is not None and importing and importing[0].id != owner.id:
            mover.move(owner, importing[0], slot, replace=True)
        elif owner is not None and importing:
            close_slot(view, owner, slot)  # the importing node already serves it: tell everyone
        else:
            for node in migrating + importing:
                view.call(node, "CLUSTER", "SETSLOT", slot, "STABLE")
        fixed_open.append(slot)
    view = mover.view
    owners = view.owner_of()
    uncovered = [slot for slot in range(SLOT_COUNT) if slot not in owners]
    covered = 0
    masters = view.masters()
    claimed_by = set()
    for slot in uncovered:
        # The node holding the slot's keys takes it (the most keys if several do); else the poorest.
        counts = [(int(view.call(m, "CLUSTER", "COUNTKEYSINSLOT", slot)), m) for m in masters]
        holders = [m for count, m in sorted(counts, key=lambda cm: -cm[0]) if count]
        target = holders[0] if holders else min(masters, key=lambda m: len(m.slots))
        view.call(target, "CLUSTER", "ADDSLOTS", slot)
        target.slots.append(slot)
        for other in holders[1:]:
            for node in (target, other):
                view.call(node, "CLUSTER", "SETSLOT", slot, "STABLE")
            view.call(target, "CLUSTER", "SETSLOT", slot, "IMPORTING", other.id)
            view.call(other, "CLUSTER", "SETSLOT", slot, "MIGRATING", target.id)
            while keys := view.call(other, "CLUSTER", "GETKEYSINSLOT", slot, args.pipeline):
                view.call(other, "MIGRATE", target.host, target.port, "", 0, args.timeout, "REPLACE", "KEYS", *keys)
            for node in (target, other):
                view.call(node, "CLUSTER", "SETSLOT", slot, "STABLE")
        claimed_by.add(target.id)
        covered += 1
    for node_id in claimed_by:  # one new epoch per node that took slots, so its claim wins everywhere
        view.call(view.nodes[node_id], "CLUSTER", "BUMPEPOCH")
    report.data.update({"open_slots_fixed": fixed_open, "slots_covered": covered})
    if not args.json:
        print(f"[OK] Fixed {len(fixed_open)} open slots and covered {covered} slots")
    return report.finish(True)


# ----------------------------------------------------------------------------- CLI


def build_parser(sub) -> None:
    """Add the admin subcommands to ``shoal``'s argument parser."""

    def common(p, entry: bool = True):
        if entry:
            p.add_argument("address", help="HOST:PORT of any node")
        p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
        p.add_argument("--timeout", type=int, default=60000, help="MIGRATE timeout in ms")
        p.add_argument("--pipeline", type=int, default=10, help="keys per MIGRATE")
        p.add_argument("--replace", action="store_true", help="overwrite keys that already exist on the target")
        p.add_argument("--settle", type=float, default=60.0,
                       help="seconds to wait for a failover to finish before resuming a move")

    p = sub.add_parser("create", help="form a cluster from empty nodes")
    p.add_argument("addresses", nargs="+")
    p.add_argument("--replicas", type=int, default=0)
    common(p, entry=False)
    p.set_defaults(admin=cmd_create)
    p = sub.add_parser("check", help="agreement, open slots and coverage")
    common(p)
    p.set_defaults(admin=cmd_check)
    p = sub.add_parser("reshard", help="move slots (and their keys) to a node")
    common(p)
    p.add_argument("--from", dest="from_", required=True, help="source node ids (comma list) or 'all'")
    p.add_argument("--to", required=True, help="target node id")
    p.add_argument("--slots", type=int, required=True)
    p.set_defaults(admin=cmd_reshard)
    p = sub.add_parser("rebalance", help="even out slots by weight")
    common(p)
    p.add_argument("--weight", action="append", help="NODE_ID=WEIGHT (repeatable)")
    p.add_argument("--use-empty-masters", action="store_true")
    p.add_argument("--threshold", type=float, default=2.0, help="percent imbalance that triggers a move")
    p.set_defaults(admin=cmd_rebalance)
    p = sub.add_parser("add-node", help="join an empty node as a primary or a replica")
    p.add_argument("new")
    p.add_argument("existing")
    p.add_argument("--replica", action="store_true")
    p.add_argument("--master-id")
    common(p, entry=False)
    p.set_defaults(admin=cmd_add_node)
    p = sub.add_parser("del-node", help="remove a node that serves no slots")
    common(p)
    p.add_argument("node_id")
    p.set_defaults(admin=cmd_del_node)
    p = sub.add_parser("failover", help="promote a replica (CLUSTER FAILOVER)")
    common(p)
    group = p.add_mutually_exclusive_group()
    group.add_argument("--force", action="store_true")
    group.add_argument("--takeover", action="store_true")
    p.add_argument("--wait", type=float, default=30.0, help="seconds to wait for the promotion")
    p.set_defaults(admin=cmd_failover)
    p = sub.add_parser("fix", help="close open slots and cover unowned ones")
    common(p)
    p.set_defaults(admin=cmd_fix)


ADMIN_COMMANDS = ("create", "check", "reshard", "rebalance", "add-node", "del-node", "failover", "fix")


def run(args) -> int:
    conn = Conn(timeout=max(10.0, getattr(args, "timeout", 60000) / 1000 + 5))
    report = Report(args.json)
    try:
        return args.admin(args, conn, report)
    except (RespError, OSError, ConnectionError) as exc:
        report.data["error"] = str(exc)
        report.say(f"shoal: {exc}")
        return report.finish(False)
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="shoal")
    build_parser(parser.add_subparsers(dest="command", required=True))
    return run(parser.parse_args(argv))
