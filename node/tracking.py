"""CLIENT TRACKING: server-assisted client-side caching (Redis 7.0's tracking.c).

Two modes, as in Redis:

* default: the keys a tracking client reads (keys of the readonly commands it
  runs) go into ``Tracking.table`` (key -> ids of clients that may cache it).
  When such a key changes (a write by anyone, expiry, eviction) every client
  in its entry gets an invalidation message and the entry is dropped; the next
  read puts it back. The table is keyed by key name only, across databases,
  as Redis's is. Client ids stay in the table lazily after a client turns
  tracking off or disconnects; they are skipped when a message would be sent.
* BCAST: nothing is remembered per client; each key that changes and matches
  a registered prefix is collected, and once per server pass (Redis's
  beforeSleep) every client of that prefix gets one message listing the keys.

Messages: RESP3 clients get a ``>2 invalidate [keys]`` push; a RESP2 client
can only be reached through REDIRECT to a client in pub/sub mode, which gets a
``message`` on ``__redis__:invalidate``. FLUSHDB/FLUSHALL send a null ("every
key") to each tracking client.

Costs: nothing at all for a node where nobody ever enabled tracking. A
tracking client is ``gated`` (node.client), so its commands take the
dispatcher's slow path, where ``tracked_execute`` wraps them; the key
modification hook (``Database.on_modify``, node.core) is installed on every
database only while a client tracks or the table holds keys.

Invalidations meant for the client whose command is running are held in its
``pending`` list and written after its reply (after the whole EXEC or script),
like Redis's tracking_pending_keys.
"""

from __future__ import annotations

__all__ = ["ClientTracking", "Tracking", "get", "tracked_execute", "remember_keys", "invalidate_on_flush"]

CHANNEL = b"__redis__:invalidate"

_PUSH_INVALIDATE = b">2\r\n$10\r\ninvalidate\r\n"
_MESSAGE_INVALIDATE = b"*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n"
_NULLS = (b"$-1\r\n", b"_\r\n")  # shared.null[resp]: indexed by resp3


def _keys_proto(keys) -> bytes:
    parts = [b"*%d\r\n" % len(keys)]
    for key in keys:
        parts.append(b"$%d\r\n%b\r\n" % (len(key), key))
    return b"".join(parts)


class ClientTracking:
    """The tracking state of one client (``client.tracking``; None while tracking is off)."""

    __slots__ = ("bcast", "optin", "optout", "noloop", "caching", "broken", "redirect", "prefixes", "pending")

    def __init__(self) -> None:
        self.bcast = False
        self.optin = False
        self.optout = False
        self.noloop = False
        #: CLIENT CACHING yes (OPTIN) / no (OPTOUT) given for the next command or transaction.
        self.caching = False
        #: The redirect client was gone when a message was due (CLIENT LIST flag R).
        self.broken = False
        self.redirect = 0
        #: BCAST prefixes of this client (insertion-ordered set).
        self.prefixes: dict[bytes, None] = {}
        #: Invalidations held until the running command's reply is written (None: a flush).
        self.pending: list = []

    def flags(self) -> list[bytes]:
        """CLIENT TRACKINGINFO flags, in Redis's order (without the leading on/off)."""
        out = []
        if self.bcast:
            out.append(b"bcast")
        if self.optin:
            out.append(b"optin")
            if self.caching:
                out.append(b"caching-yes")
        if self.optout:
            out.append(b"optout")
            if self.caching:
                out.append(b"caching-no")
        if self.noloop:
            out.append(b"noloop")
        if self.broken:
            out.append(b"broken_redirect")
        return out


class _Prefix:
    __slots__ = ("keys", "clients")

    def __init__(self) -> None:
        #: Keys changed this pass -> the tracking client that changed them last (None: not one).
        self.keys: dict[bytes, object] = {}
        #: Clients registered for this prefix (insertion-ordered set).
        self.clients: dict = {}


class Tracking:
    """Node-wide tracking state (``node.tracking``), created by the first CLIENT TRACKING ON."""

    def __init__(self, node) -> None:
        self.node = node
        #: key -> {client id: None}
        self.table: dict[bytes, dict[int, None]] = {}
        #: Client ids across all entries (INFO tracking_total_items).
        self.items = 0
        #: BCAST prefix -> _Prefix.
        self.prefixes: dict[bytes, _Prefix] = {}
        #: Clients with tracking on (INFO tracking_clients).
        self.clients = 0
        #: The tracking client whose command is running (Redis's current_client, when it tracks).
        self.current = None
        #: True while node.core must report key changes (Database.on_modify installed).
        self.hooked = False
        #: BCAST prefixes have keys to broadcast at the end of this pass.
        self.bcast_pending = False
        self._limit_rounds = 0

    # ------------------------------------------------------------ on / off

    def enable(self, client, redirect: int, bcast: bool, optin: bool, optout: bool, noloop: bool,
               prefixes: list[bytes]) -> None:
        """enableTracking: (re)configure ``client``; BCAST prefixes accumulate."""
        state = client.tracking
        if state is None:
            state = client.tracking = ClientTracking()
            self.clients += 1
            client.refresh_gate()
        state.broken = state.bcast = state.optin = state.optout = state.noloop = False
        state.redirect = redirect
        if bcast:
            state.bcast = True
            for prefix in prefixes or [b""]:
                entry = self.prefixes.get(prefix)
                if entry is None:
                    entry = self.prefixes[prefix] = _Prefix()
                if client not in entry.clients:
                    entry.clients[client] = None
                    state.prefixes[prefix] = None
        state.optin = optin
        state.optout = optout
        state.noloop = noloop
        self._refresh_hook()

    def disable(self, client) -> None:
        """disableTracking: leave the BCAST prefixes; table entries are dropped lazily."""
        state = client.tracking
        if state is None:
            return
        if state.bcast:
            for prefix in state.prefixes:
                entry = self.prefixes.get(prefix)
                if entry is not None:
                    entry.clients.pop(client, None)
                    if not entry.clients:
                        del self.prefixes[prefix]
        client.tracking = None
        self.clients -= 1
        client.refresh_gate()
        self._refresh_hook()

    def _refresh_hook(self) -> None:
        wanted = self.clients > 0 or bool(self.table)
        if wanted != self.hooked:
            self.hooked = wanted
            node = self.node
            for index in range(len(node.dbs)):
                node._refresh_modify_hook(index)

    # ------------------------------------------------------------ remember

    def remember(self, client, cmd, argv) -> None:
        """trackingRememberKeys: the keys of a readonly command ``client`` ran."""
        state = client.tracking
        if state.bcast or "pubsub" in cmd.flags:
            return
        if (state.optin and not state.caching) or (state.optout and state.caching):
            return
        try:
            keys = cmd.keys_of(argv)
        except Exception:  # malformed arguments (the command answered an error): no keys, as Redis
            return
        if not keys:
            return
        table = self.table
        cid = client.id
        for key in keys:
            ids = table.get(key)
            if ids is None:
                ids = table[key] = {}
            if cid not in ids:
                ids[cid] = None
                self.items += 1

    def limit(self) -> None:
        """trackingLimitUsedSlots: over tracking-table-max-keys, invalidate keys until under it.

        Redis picks keys by random walk; Shoal drops the oldest entries.
        """
        max_keys = self.node.config["tracking-table-max-keys"]
        table = self.table
        if not max_keys or len(table) <= max_keys:
            self._limit_rounds = 0
            return
        effort = 100 * (self._limit_rounds + 1)
        while effort > 0 and table:
            effort -= 1
            self.invalidate_key(next(iter(table)), bcast=False)
            if len(table) <= max_keys:
                self._limit_rounds = 0
                return
        self._limit_rounds += 1

    # ------------------------------------------------------------ invalidation

    def key_modified(self, key: bytes) -> None:
        """signalModifiedKey's trackingInvalidateKey (node.core calls it while ``hooked``)."""
        self.invalidate_key(key, bcast=True)

    def invalidate_key(self, key: bytes, bcast: bool) -> None:
        if bcast and self.prefixes:
            self._remember_broadcast(key)
        ids = self.table.pop(key, None)
        if ids is None:
            return
        self.items -= len(ids)
        clients = self.node.clients
        current = self.current
        for cid in ids:
            target = clients.get(cid)
            if target is None:
                continue
            state = target.tracking
            if state is None or state.bcast:
                continue
            if target is current:
                if not state.noloop:
                    state.pending.append(key)
                continue
            self.send(target, b"*1\r\n$%d\r\n%b\r\n" % (len(key), key))
        if not self.table and not self.clients:
            self._refresh_hook()

    def _remember_broadcast(self, key: bytes) -> None:
        modifier = self.current
        pending = self.node.pending_write
        for prefix, entry in self.prefixes.items():
            if key.startswith(prefix):
                entry.keys[key] = modifier
                self.bcast_pending = True
                pending.update(entry.clients)  # makes the server run its end-of-pass work

    def broadcast(self) -> None:
        """trackingBroadcastInvalidationMessages: one message per prefix and client for this pass."""
        self.bcast_pending = False
        for prefix in sorted(self.prefixes):  # a radix tree: prefixes in byte order
            entry = self.prefixes[prefix]
            if not entry.keys:
                continue
            keys = sorted(entry.keys)  # a radix tree lists them in byte order
            common = None
            for client in list(entry.clients):
                state = client.tracking
                if state is None:
                    continue
                if state.noloop:
                    own = [k for k in keys if entry.keys[k] is not client]
                    if own:
                        self.send(client, _keys_proto(own))
                else:
                    if common is None:
                        common = _keys_proto(keys)
                    self.send(client, common)
            entry.keys = {}

    def flush(self) -> None:
        """trackingInvalidateKeysOnFlush: a null ("all keys") to every tracking client; empty the table."""
        if self.clients:
            current = self.current
            for client in list(self.node.clients.values()):
                state = client.tracking
                if state is None:
                    continue
                if client is current:
                    state.pending.append(None)
                else:
                    self.send(client, _NULLS[client.resp3])
        self.table = {}
        self.items = 0
        if not self.clients:
            self._refresh_hook()

    def send_pending(self, client) -> None:
        """trackingHandlePendingKeyInvalidations, for ``client`` once its command is done."""
        state = client.tracking
        pending = state.pending
        state.pending = []
        for key in pending:
            if key is None:
                self.send(client, _NULLS[client.resp3])
            else:
                self.send(client, b"*1\r\n$%d\r\n%b\r\n" % (len(key), key))

    def send(self, client, proto: bytes) -> None:
        """sendTrackingMessage: ``proto`` (the keys as RESP) to ``client`` or its redirect."""
        state = client.tracking
        node = self.node
        if state.redirect:
            target = node.clients.get(state.redirect)
            if target is None or target.killed:
                state.broken = True
                if client.resp3:
                    client.out += b">2\r\n$21\r\ntracking-redir-broken\r\n:%d\r\n" % state.redirect
                    node.pending_write.add(client)
                return
            redirected = True
        else:
            target = client
            redirected = False
        if target.resp3:
            target.out += _PUSH_INVALIDATE + proto
        elif redirected and (target.pubsub_channels or target.pubsub_patterns or target.pubsub_shard_channels):
            target.out += _MESSAGE_INVALIDATE + proto
        else:
            return  # RESP2 without a redirect: nothing can carry the message
        if target is not self.current:
            node.pending_write.add(target)

    # ------------------------------------------------------------ clients

    def client_gone(self, client) -> None:
        """freeClient / RESET: tracking off for ``client``."""
        if client.tracking is not None:
            self.disable(client)


def get(node) -> Tracking:
    """The node's Tracking, created on first use."""
    tracking = node.tracking
    if tracking is None:
        tracking = node.tracking = Tracking(node)
    return tracking


def tracked_execute(client, cmd, argv) -> None:
    """The dispatcher's gated path for a client with tracking on (node.dispatch.execute)."""
    from node.dispatch import _execute_gated

    tracking = client.node.tracking
    if tracking.table:
        tracking.limit()  # processCommand, before the command runs: its messages go out at once
    previous = tracking.current
    tracking.current = client
    try:
        _execute_gated(client, cmd, argv)
    finally:
        tracking.current = previous
    state = client.tracking
    if state is None:
        return  # CLIENT TRACKING OFF, RESET
    # resetClient: CLIENT CACHING applies to the next command (or the whole transaction).
    if state.caching and client.multi is None and (cmd.parent or cmd).name != "client":
        state.caching = False
    if state.pending:
        tracking.send_pending(client)


def remember_keys(client, cmd, argv) -> None:
    """A readonly command of a tracking client ran (node.dispatch._finish_call)."""
    state = client.tracking
    if not state.bcast:
        client.node.tracking.remember(client, cmd, argv)


def invalidate_on_flush(node) -> None:
    """FLUSHDB / FLUSHALL (node.commands.server)."""
    tracking = node.tracking
    if tracking is not None and (tracking.clients or tracking.table):
        tracking.flush()
