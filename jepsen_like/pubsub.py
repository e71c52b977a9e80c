"""Pub/sub workloads: PUBLISH/SUBSCRIBE and sharded SPUBLISH/SSUBSCRIBE, counting lost messages.

Publishers are the ordinary client threads: each op publishes a unique
integer on one of the channels (routed by the channel's slot, which sharded
pub/sub requires and classic pub/sub does not mind) and is recorded like any
write, so availability and failover times come out as for the other
workloads. One subscriber thread per channel holds a subscription -- on a
random node for classic pub/sub (the cluster bus broadcasts every PUBLISH),
on the owner of the channel's slot for sharded pub/sub -- and reconnects and
resubscribes when its connection breaks or its node drops the subscription
(``sunsubscribe`` after the slot moved).

The checker compares what was published (acknowledged) with what arrived:

* ``lost`` -- acknowledged messages no subscriber received. Pub/sub is
  at-most-once, so these are counted, and split into those published while
  the channel's subscriber was confirmed subscribed (``lost_while_subscribed``)
  and those published while it was reconnecting;
* ``unexpected`` (never published) and ``duplicated`` deliveries make the
  verdict invalid.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter

import redis

from jepsen_like.history import INVALID, VALID
from jepsen_like.workloads import CheckReport, OpSpec, Workload

__all__ = ["PubSubWorkload", "ShardedPubSubWorkload"]


class PubSubWorkload(Workload):
    name = "pubsub"
    sharded = False
    read_timeouts_fail = False

    def __init__(self, keys: int, rng: random.Random) -> None:
        super().__init__(keys, rng)
        self.received: dict[str, list[int]] = {k: [] for k in self.keys}
        self.subscribed: dict[str, list[list[int]]] = {k: [] for k in self.keys}  # [start_ns, end_ns or 0]
        self.reconnects = Counter()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def make_keys(self, n):
        return [f"{'s' if self.sharded else ''}chan:{i}" for i in range(max(1, n // 2))]

    def next_op(self, rng, state):
        ch, v = rng.choice(self.keys), next(self.values)
        cmd = "SPUBLISH" if self.sharded else "PUBLISH"
        return OpSpec("publish", ch, v, lambda c: (c.call(ch, cmd, ch, v), v)[1])

    def final_ops(self):
        return []

    # ------------------------------------------------------------ subscribers
    def start_subscribers(self, seeds, stop: threading.Event, *, seed: int = 0, timeout: float = 1.0) -> None:
        from jepsen_like.client import ClusterClient

        def owner(client: ClusterClient, ch: str):
            from slots import keyslot

            client.refresh()
            return client.slots[keyslot(ch.encode())]

        def loop(ch: str, t: int) -> None:
            rng = random.Random(seed * 131 + t)
            router = ClusterClient(seeds, timeout=timeout, rng=rng)
            sub, unsub = ("SSUBSCRIBE", "sunsubscribe") if self.sharded else ("SUBSCRIBE", "unsubscribe")
            try:
                while not stop.is_set():
                    addr = owner(router, ch) if self.sharded else rng.choice(seeds)
                    if addr is None:
                        time.sleep(0.1)
                        continue
                    conn = redis.Connection(host=addr[0], port=addr[1], socket_timeout=timeout,
                                            socket_connect_timeout=timeout, protocol=2)  # RESP2: plain arrays
                    interval = None
                    try:
                        conn.connect()
                        conn.send_command(sub, ch)
                        first = conn.read_response()
                        if isinstance(first, list) and first and first[0].lower().endswith(b"subscribe"):
                            interval = [time.monotonic_ns(), 0]
                            with self._lock:
                                self.subscribed[ch].append(interval)
                        else:
                            raise redis.ConnectionError(f"unexpected reply {first!r}")
                        while not stop.is_set():
                            if not conn.can_read(timeout=0.2):
                                continue
                            msg = conn.read_response()
                            kind = msg[0].decode().lower() if isinstance(msg, list) and msg else ""
                            if kind in ("message", "smessage"):
                                with self._lock:
                                    self.received[ch].append(int(msg[2]))
                            elif kind == unsub:
                                break  # the node dropped us (slot moved): find the new owner
                    except (redis.RedisError, OSError, ValueError):
                        pass
                    finally:
                        if interval is not None:
                            interval[1] = time.monotonic_ns()
                        conn.disconnect()
                    if not stop.is_set():
                        self.reconnects[ch] += 1
                        time.sleep(0.05)
            finally:
                router.close()

        self._threads = [threading.Thread(target=loop, args=(ch, t), name=f"sub-{ch}", daemon=True)
                         for t, ch in enumerate(self.keys)]
        for th in self._threads:
            th.start()
        # Wait (briefly) until every channel is subscribed before the publishers start.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not all(self.subscribed[k] for k in self.keys):
            time.sleep(0.02)

    def join_subscribers(self, grace: float = 1.0) -> None:
        time.sleep(grace)  # messages in flight on the bus

    def stop_subscribers(self, timeout: float = 5.0) -> None:
        for th in self._threads:
            th.join(timeout)

    # ---------------------------------------------------------------- check
    def check(self, history):
        published: dict[str, dict[int, tuple[int, int]]] = {k: {} for k in self.keys}
        for op in history:
            if op.f == "publish" and op.outcome == "ok":
                published[op.key][op.value] = (op.invoke, op.complete)
        lost = lost_sub = unexpected = duplicated = delivered = 0
        for ch in self.keys:
            counts = Counter(self.received[ch])
            duplicated += sum(1 for c in counts.values() if c > 1)
            unexpected += sum(1 for m in counts if m not in published[ch])
            intervals = self.subscribed[ch]
            for m, (inv, comp) in published[ch].items():
                if m in counts:
                    delivered += 1
                    continue
                lost += 1
                if any(s <= inv and (e == 0 or comp <= e) for s, e in intervals):
                    lost_sub += 1
        verdict = INVALID if unexpected or duplicated else VALID
        acked = sum(len(v) for v in published.values())
        return CheckReport("pubsub", verdict, lost, {
            "published_acknowledged": acked, "delivered": delivered, "lost": lost,
            "lost_while_subscribed": lost_sub, "unexpected": unexpected, "duplicated": duplicated,
            "resubscribes": sum(self.reconnects.values())})


class ShardedPubSubWorkload(PubSubWorkload):
    name = "spubsub"
    sharded = True
