"""In-node bus faults for chaos scenarios, through Shoal's test-only ``DEBUG CLUSTER-BUS`` commands.

These are the faults a partition cannot make: lost messages of one type,
latency, flapping links, a stalled process. They need no privileges, but
the nodes must allow DEBUG (``--enable-debug-command local`` or ``yes``;
clients on 127.0.0.1 count as local) and must be Shoal: real
``redis-server`` has no DEBUG CLUSTER-BUS (``support()`` says why not
before a run; ``inject`` raises ``BusFaultError``).

``inject(nodes, name, rng)`` applies fault ``name`` of ``BUS_FAULTS`` to the
nodes (any objects with ``host`` and ``port``: ``jepsen_like.cluster.Node``,
``tests.servers.ServerProcess``...) and returns an idempotent ``undo`` that
heals it (``DEBUG CLUSTER-BUS RESET`` on every node it can reach, after
stopping any thread the fault runs). Targets are drawn from ``rng`` among
the primaries that own slots, so a seed replays the same run. Nodes that do
not answer (killed or paused by another nemesis) are skipped.

See ``node/cluster/faults.py`` for what each DEBUG CLUSTER-BUS subcommand
does: drops and delays act on frames a node *receives*.
"""

from __future__ import annotations

import random
import threading
from typing import Callable

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

__all__ = ["BUS_FAULTS", "BusFaultError", "inject", "support"]

BUS_FAULTS: dict[str, str] = {
    "drop-pongs": "the other nodes drop one primary's PINGs and PONGs and it drops every PONG: it is marked "
                  "PFAIL then FAIL (and its replica fails over) without a crash or a partition",
    "drop-auth-acks": "as drop-pongs, and every node drops FAILOVER_AUTH_ACK: the primary is marked FAIL but "
                      "its replica never wins an election, so its slots stay down until healed",
    "delay-primary": "every frame to and from one primary is delivered a node timeout late: round trips take "
                     "twice the node timeout, so it may be marked PFAIL/FAIL while it still serves clients",
    "flap-links": "bus links of random nodes are closed every 0.2-0.6 s and re-dial: the cluster should "
                  "ride through without marking anyone failed",
    "slow-links": "every node delivers every bus frame 20-100 ms late (per node): latency well under the "
                "node timeout, so nothing may be marked failed",
    "sleep-primary": "one primary blocks in DEBUG SLEEP for twice the node timeout (a GC- or swap-like "
                     "stall): clients and bus both stop; it is marked FAIL and may be failed over",
}


class BusFaultError(RuntimeError):
    pass


def _client(node, timeout: float = 2.0) -> redis.Redis:
    return redis.Redis(host=node.host, port=node.port, socket_timeout=timeout, socket_connect_timeout=timeout,
                       retry=Retry(NoBackoff(), 0))


def _text(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _bus(node, *args) -> object:
    """One DEBUG CLUSTER-BUS command; a refusal or an unknown subcommand raises BusFaultError."""
    try:
        return _client(node).execute_command("DEBUG", "CLUSTER-BUS", *args)
    except redis.ResponseError as exc:
        text = str(exc)
        if "DEBUG command not allowed" in text:
            raise BusFaultError(f"{node.host}:{node.port} refuses DEBUG: start the nodes with "
                                "--enable-debug-command local") from None
        if "unknown subcommand" in text.lower():
            raise BusFaultError(f"{node.host}:{node.port} has no DEBUG CLUSTER-BUS (bus faults need Shoal)") from None
        raise BusFaultError(f"{node.host}:{node.port}: DEBUG CLUSTER-BUS {' '.join(map(str, args))}: {text}") from None


def support(nodes) -> str | None:
    """None if every node accepts DEBUG CLUSTER-BUS, else why not."""
    for node in nodes:
        try:
            _bus(node, "STATUS")
        except BusFaultError as exc:
            return str(exc)
        except (redis.RedisError, OSError) as exc:
            return f"{node.host}:{node.port} does not answer: {exc}"
    return None


def _topology(nodes) -> tuple[dict, list, int]:
    """(id(node) -> node id, [(primary, [its replicas])] for primaries owning slots, node timeout ms).

    Keyed by ``id(node)``: the harness's node objects are dataclasses, not hashable."""
    ids, masters, replica_of, timeout = {}, {}, [], None
    for node in nodes:
        try:
            c = _client(node)
            text = _text(c.execute_command("CLUSTER", "NODES"))
            if timeout is None:
                timeout = int(_text(c.config_get("cluster-node-timeout")["cluster-node-timeout"]))
        except (redis.RedisError, OSError, KeyError, ValueError):
            continue
        for line in text.splitlines():
            f = line.split()
            if len(f) >= 8 and "myself" in f[2].split(","):
                ids[id(node)] = f[0]
                if "master" in f[2].split(",") and len(f) > 8:
                    masters[f[0]] = node
                elif f[3] != "-":
                    replica_of.append((node, f[3]))
    primaries = [(m, [r for r, mid in replica_of if mid == pid]) for pid, m in masters.items()]
    return ids, primaries, timeout or 15000


def _reachable(nodes) -> list:
    out = []
    for node in nodes:
        try:
            if _client(node, 1.0).ping():
                out.append(node)
        except (redis.RedisError, OSError):
            pass
    return out


def inject(nodes, name: str, rng: random.Random) -> Callable[[], None]:
    """Apply bus fault ``name`` (a key of BUS_FAULTS) to ``nodes``; returns the undo callable."""
    if name not in BUS_FAULTS:
        raise ValueError(f"unknown bus fault {name!r} (choose from {', '.join(BUS_FAULTS)})")
    nodes = list(nodes)
    live = _reachable(nodes)
    if not live:
        raise BusFaultError("no node answers")
    ids, primaries, node_timeout = _topology(live)
    stop = threading.Event()
    threads: list[threading.Thread] = []
    done = []

    def undo() -> None:
        if done:
            return
        done.append(True)
        stop.set()
        for t in threads:
            t.join()
        for node in nodes:
            try:
                _bus(node, "RESET")
            except (BusFaultError, redis.RedisError, OSError):
                pass  # dead, paused or restarted: nothing of ours is left there

    def target():
        if not primaries:
            raise BusFaultError("no primary owns slots")
        return rng.choice(sorted(primaries, key=lambda p: ids[id(p[0])]))[0]

    try:
        if name in ("drop-pongs", "drop-auth-acks"):
            primary = target()
            pid = ids[id(primary)]
            for node in live:
                if node is primary:
                    _bus(node, "DROP", "PONG", "*")
                else:
                    _bus(node, "DROP", "PING", pid)
                    _bus(node, "DROP", "PONG", pid)
                if name == "drop-auth-acks":
                    _bus(node, "DROP", "FAILOVER_AUTH_ACK", "*")
        elif name == "delay-primary":
            primary = target()
            for node in live:
                _bus(node, "DELAY", "*" if node is primary else ids[id(primary)], str(node_timeout))
        elif name == "slow-links":
            for node in live:
                _bus(node, "DELAY", "*", str(rng.randint(20, 100)))
        elif name == "flap-links":
            _bus(live[0], "STATUS")  # fail now, not in the thread, when DEBUG is refused
            seed = rng.getrandbits(32)

            def flap() -> None:
                local = random.Random(seed)
                while not stop.wait(local.uniform(0.2, 0.6)):
                    try:
                        _bus(local.choice(live), "CLOSE", "*")
                    except (BusFaultError, redis.RedisError, OSError):
                        pass

            threads.append(threading.Thread(target=flap, name="bus-flap-links", daemon=True))
            threads[-1].start()
        elif name == "sleep-primary":
            primary = target()
            _bus(primary, "STATUS")
            seconds = 2 * node_timeout / 1000

            def sleep() -> None:
                try:
                    _client(primary, seconds + 5).execute_command("DEBUG", "SLEEP", f"{seconds:.3f}")
                except (redis.RedisError, OSError):
                    pass

            threads.append(threading.Thread(target=sleep, name="bus-sleep-primary", daemon=True))
            threads[-1].start()
    except BaseException:
        undo()
        raise
    return undo
