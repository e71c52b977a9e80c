"""Pub/Sub: channel, pattern and shard-channel subscriptions, and message delivery.

The registry maps each channel (pattern, shard channel) to the clients
subscribed to it, in subscription order -- as Redis 7.0's per-channel client
lists do -- and each client keeps its own subscriptions in
``client.pubsub_channels`` / ``pubsub_patterns`` / ``pubsub_shard_channels``
(insertion-ordered dicts used as sets).

Delivery never touches a socket: a message is appended to the subscriber's
``client.out`` and the client is added to ``node.pending_write``, which the
server flushes after the current pass. The wire form of a message is built
once per protocol per publish and shared by every subscriber.

Replies to SUBSCRIBE and friends, and messages, are *push* data: in RESP3 they
are ``>`` pushes, in RESP2 plain arrays. Redis sends pushes even to a client
that switched its replies off (CLIENT REPLY OFF/SKIP); the dispatcher asks
``hold_pushes``/``release_pushes`` around such a client's command so the
pushes it generated survive the suppression of its ordinary replies.

Output buffer limits: a subscriber that does not read its messages would make
the node's memory grow without bound, so after each message the subscriber's
pending output is checked against ``client-output-buffer-limit pubsub`` (hard
limit: at once; soft limit: when exceeded continuously for longer than the
given seconds), and a client over the limit is closed, as Redis's
``closeClientOnOutputBufferLimitReached`` does.

Cluster: ``deliver_local`` is the entry point for a message that must reach
this node's subscribers only; ``publish``/``publish_shard`` also hand the
message to ``propagate`` (set by the cluster layer) to forward it.
"""

from __future__ import annotations

from typing import Callable

from node.engine.glob import compile_glob
from node.notify import KEYEVENT, KEYSPACE

__all__ = ["PubSub", "SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE", "UNSUBSCRIBE", "PUNSUBSCRIBE", "SUNSUBSCRIBE"]


def _bulk(data: bytes) -> bytes:
    return b"$%d\r\n%b\r\n" % (len(data), data)


# The first element of each kind of push, as a ready-made bulk string.
SUBSCRIBE = _bulk(b"subscribe")
PSUBSCRIBE = _bulk(b"psubscribe")
SSUBSCRIBE = _bulk(b"ssubscribe")
UNSUBSCRIBE = _bulk(b"unsubscribe")
PUNSUBSCRIBE = _bulk(b"punsubscribe")
SUNSUBSCRIBE = _bulk(b"sunsubscribe")
_MESSAGE = _bulk(b"message")
_PMESSAGE = _bulk(b"pmessage")
_SMESSAGE = _bulk(b"smessage")

_HEAD3 = (b"*3\r\n", b">3\r\n")  # indexed by resp3
_HEAD4 = (b"*4\r\n", b">4\r\n")
_NULL = (b"$-1\r\n", b"_\r\n")


def confirmation(kind: bytes, name: bytes | None, count: int, resp3: bool) -> bytes:
    """A (un)subscribe confirmation: ``[kind, name or null, count]``."""
    return b"%b%b%b:%d\r\n" % (_HEAD3[resp3], kind, _NULL[resp3] if name is None else _bulk(name), count)


class PubSub:
    def __init__(self, node) -> None:
        self.node = node
        #: channel -> {client: None} in subscription order.
        self.channels: dict[bytes, dict] = {}
        #: pattern -> (matcher, {client: None}).
        self.patterns: dict[bytes, tuple[Callable[[bytes], bool], dict]] = {}
        #: shard channel -> {client: None}.
        self.shard_channels: dict[bytes, dict] = {}
        #: Cluster forwarding: propagate(channel, message, sharded) after a local
        #: PUBLISH/SPUBLISH delivery. None outside cluster mode.
        self.propagate: Callable[[bytes, bytes, bool], None] | None = None
        #: Clients closed for exceeding their output buffer limit.
        self.output_limit_disconnections = 0
        self._muted = None  # the client whose own replies are being suppressed
        self._held: bytearray | None = None

    # ------------------------------------------------------------- counts

    @staticmethod
    def subscription_count(client) -> int:
        """Channels + patterns (what (P)SUBSCRIBE confirmations report)."""
        return len(client.pubsub_channels) + len(client.pubsub_patterns)

    def numsub(self, channel: bytes) -> int:
        subscribers = self.channels.get(channel)
        return len(subscribers) if subscribers else 0

    def shard_numsub(self, channel: bytes) -> int:
        subscribers = self.shard_channels.get(channel)
        return len(subscribers) if subscribers else 0

    # --------------------------------------------------- push bookkeeping

    def hold_pushes(self, client) -> None:
        """The dispatcher is about to run ``client``'s command with its replies suppressed."""
        self._muted = client
        self._held = None

    def release_pushes(self) -> bytearray | None:
        """The pushes written to the muted client since ``hold_pushes`` (None if none)."""
        held = self._held
        self._muted = None
        self._held = None
        return held

    def _push_self(self, client, data: bytes) -> None:
        """Append push data to the client running the current command."""
        client.out += data
        if client is self._muted:
            if self._held is None:
                self._held = bytearray()
            self._held += data

    # ----------------------------------------------------- subscriptions

    def _confirmed_count(self, client, shard: bool) -> int:
        """The count in a (un)subscribe confirmation: shard channels alone count only themselves."""
        return len(client.pubsub_shard_channels) if shard else self.subscription_count(client)

    def _add_channels(self, client, channels, mine: dict, registry: dict, kind, shard: bool) -> None:
        """SUBSCRIBE / SSUBSCRIBE: join each channel's subscribers and confirm each one."""
        resp3 = client.resp3
        for channel in channels:
            if channel not in mine:
                mine[channel] = None
                subscribers = registry.get(channel)
                if subscribers is None:
                    subscribers = registry[channel] = {}
                subscribers[client] = None
            self._push_self(client, confirmation(kind, channel, self._confirmed_count(client, shard), resp3))
        client.refresh_gate()

    def subscribe(self, client, channels) -> None:
        self._add_channels(client, channels, client.pubsub_channels, self.channels, SUBSCRIBE, False)

    def psubscribe(self, client, patterns) -> None:
        resp3 = client.resp3
        mine = client.pubsub_patterns
        registry = self.patterns
        for pattern in patterns:
            if pattern not in mine:
                mine[pattern] = None
                entry = registry.get(pattern)
                if entry is None:
                    entry = registry[pattern] = (compile_glob(pattern), {})
                entry[1][client] = None
            self._push_self(client, confirmation(PSUBSCRIBE, pattern, self.subscription_count(client), resp3))
        client.refresh_gate()

    def ssubscribe(self, client, channels) -> None:
        self._add_channels(client, channels, client.pubsub_shard_channels, self.shard_channels, SSUBSCRIBE, True)

    def _drop(self, registry: dict, name: bytes, client) -> None:
        subscribers = registry[name]
        del subscribers[client]
        if not subscribers:
            del registry[name]

    def _drop_channel(self, channel: bytes, client) -> None:
        self._drop(self.channels, channel, client)

    def _drop_shard_channel(self, channel: bytes, client) -> None:
        self._drop(self.shard_channels, channel, client)

    def _drop_pattern(self, pattern: bytes, client) -> None:
        subscribers = self.patterns[pattern][1]
        del subscribers[client]
        if not subscribers:
            del self.patterns[pattern]

    def _remove(self, client, names, mine: dict, drop, kind, shard: bool, notify: bool) -> None:
        """(P|S)UNSUBSCRIBE: leave ``names``, or all (``None``) in subscription order; confirm each one.

        ``drop(name, client)`` takes the client out of the server-side registry."""
        if names is None:
            names = list(mine)
            if not names and notify:
                self._push_self(client, confirmation(kind, None, self._confirmed_count(client, shard), client.resp3))
        for name in names:
            if name in mine:
                del mine[name]
                drop(name, client)
            if notify:
                self._push_self(client, confirmation(kind, name, self._confirmed_count(client, shard), client.resp3))
        client.refresh_gate()

    def unsubscribe(self, client, channels=None, notify: bool = True) -> None:
        """UNSUBSCRIBE: the given channels, or all (``None``)."""
        self._remove(client, channels, client.pubsub_channels, self._drop_channel, UNSUBSCRIBE, False, notify)

    def punsubscribe(self, client, patterns=None, notify: bool = True) -> None:
        """PUNSUBSCRIBE: the given patterns, or all (``None``), in subscription order."""
        self._remove(client, patterns, client.pubsub_patterns, self._drop_pattern, PUNSUBSCRIBE, False, notify)

    def sunsubscribe(self, client, channels=None, notify: bool = True) -> None:
        """SUNSUBSCRIBE: the given shard channels, or all (``None``)."""
        self._remove(client, channels, client.pubsub_shard_channels, self._drop_shard_channel, SUNSUBSCRIBE, True,
                     notify)

    def unsubscribe_all(self, client) -> None:
        """Drop every subscription of ``client`` without replies (RESET, disconnect)."""
        if client.pubsub_channels:
            for channel in client.pubsub_channels:
                self._drop(self.channels, channel, client)
            client.pubsub_channels.clear()
        if client.pubsub_shard_channels:
            for channel in client.pubsub_shard_channels:
                self._drop(self.shard_channels, channel, client)
            client.pubsub_shard_channels.clear()
        if client.pubsub_patterns:
            for pattern in client.pubsub_patterns:
                self._drop_pattern(pattern, client)
            client.pubsub_patterns.clear()
        client.refresh_gate()

    def client_closed(self, client) -> None:
        if client.pubsub_channels or client.pubsub_patterns or client.pubsub_shard_channels:
            self.unsubscribe_all(client)
        if client is self._muted:
            self._muted = None
            self._held = None

    # ------------------------------------------------------------ delivery

    def publish(self, channel: bytes, message: bytes) -> int:
        """PUBLISH: deliver here, then hand to the cluster layer. Returns local receivers."""
        receivers = self.deliver_local(channel, message)
        if self.propagate is not None:
            self.propagate(channel, message, False)
        return receivers

    def publish_shard(self, channel: bytes, message: bytes) -> int:
        """SPUBLISH: deliver to this node's shard subscribers, then to the cluster layer."""
        receivers = self.deliver_shard_local(channel, message)
        if self.propagate is not None:
            self.propagate(channel, message, True)
        return receivers

    def deliver_local(self, channel: bytes, message: bytes) -> int:
        """Send ``message`` to this node's subscribers of ``channel`` and matching patterns.

        Returns the number of deliveries (a client matching by channel and by
        two patterns counts three times, as in Redis).
        """
        receivers = 0
        subscribers = self.channels.get(channel)
        if subscribers:
            tail = b"%b%b%b" % (_MESSAGE, _bulk(channel), _bulk(message))
            receivers += self._deliver(subscribers, (b"*3\r\n" + tail, b">3\r\n" + tail))
        if self.patterns:
            tail = None
            for pattern, (matches, subscribers) in self.patterns.items():
                if not matches(channel):
                    continue
                if tail is None:
                    tail = b"%b%b" % (_bulk(channel), _bulk(message))
                body = b"%b%b%b" % (_PMESSAGE, _bulk(pattern), tail)
                receivers += self._deliver(subscribers, (b"*4\r\n" + body, b">4\r\n" + body))
        return receivers

    def deliver_shard_local(self, channel: bytes, message: bytes) -> int:
        subscribers = self.shard_channels.get(channel)
        if not subscribers:
            return 0
        tail = b"%b%b%b" % (_SMESSAGE, _bulk(channel), _bulk(message))
        return self._deliver(subscribers, (b"*3\r\n" + tail, b">3\r\n" + tail))

    def _deliver(self, subscribers: dict, wire: tuple[bytes, bytes]) -> int:
        pending = self.node.pending_write
        muted = self._muted
        limits = None
        count = 0
        for client in subscribers:
            count += 1
            if client.killed:
                continue  # already scheduled to close: Redis adds nothing to its buffer
            data = wire[client.resp3]
            out = client.out
            out += data
            if client is muted:
                if self._held is None:
                    self._held = bytearray()
                self._held += data
            pending.add(client)
            if len(out) > 16384:  # Redis checks only once replies spill out of the 16 KB static buffer
                if limits is None:
                    limits = self.node.config["client-output-buffer-limit"]
                self.check_output_limit(client, limits)
        return count

    # ---------------------------------------------------- keyspace events

    def keyspace_event(self, flags: int, event: bytes, key: bytes, db_index: int) -> None:
        """Publish ``__keyspace@<db>__:<key>`` -> event (K) and ``__keyevent@<db>__:<event>`` -> key (E).

        Local only, as Redis's notifyKeyspaceEvent (never forwarded over the bus).
        """
        if flags & KEYSPACE:
            self.deliver_local(b"__keyspace@%d__:%b" % (db_index, key), event)
        if flags & KEYEVENT:
            self.deliver_local(b"__keyevent@%d__:%b" % (db_index, event), key)

    # ------------------------------------------------ output buffer limits

    def check_output_limit(self, client, limits=None) -> bool:
        """Close ``client`` if its pending output is over its class's limit; True if it was."""
        if client.killed:
            return False
        if limits is None:
            limits = self.node.config["client-output-buffer-limit"]
        flags = client.flags
        if "S" in flags and "O" not in flags:
            hard, soft, seconds = limits["replica"]
        elif "M" not in flags and (client.pubsub_channels or client.pubsub_patterns or client.pubsub_shard_channels):
            hard, soft, seconds = limits["pubsub"]
        else:
            hard, soft, seconds = limits["normal"]
        if not client.over_output_limit(len(client.out), hard, soft, seconds, self.node.clock):
            return False
        self._close_for_limit(client)
        return True

    def _close_for_limit(self, client) -> None:
        from node.commands.client_cmds import info_line

        node = self.node
        description = info_line(client, None, [], "")
        # Redis frees the client without sending what is queued: drop it now so
        # the memory goes back at once.
        client.out.clear()
        client.killed = True
        client.close_after_reply = True
        node.pending_close.append(client)
        node.pending_write.discard(client)
        self.output_limit_disconnections += 1
        node.logger.warning(
            f"Client {description} scheduled to be closed ASAP for overcoming of output buffer limits."
        )
