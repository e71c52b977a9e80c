"""Per-connection state: protocol version, selected db, auth, name, buffers, flags.

A ``Client`` is plain data plus its parser and output buffer; the server loop
owns the socket and the dispatcher owns command semantics. ``gated`` is the
one flag the hot path reads: it is true whenever anything unusual applies to
this client (not yet authenticated, inside MULTI, replies switched off, cluster
routing...), so the common command pays for one check instead of six.
"""

from __future__ import annotations

from node.resp import RequestParser

__all__ = ["Client"]

REPLY_ON, REPLY_OFF, REPLY_SKIP_NEXT, REPLY_SKIP = 0, 1, 2, 3


class Client:
    __slots__ = (
        "node",
        "clock",
        "id",
        "fd",
        "addr",
        "laddr",
        "parser",
        "out",
        "resp3",
        "db",
        "db_index",
        "name",
        "lib_name",
        "lib_ver",
        "authenticated",
        "user",
        "acl_user",
        "created_ms",
        "last_interaction_ms",
        "last_command",
        "close_after_reply",
        "killed",
        "reply_mode",
        "no_evict",
        "multi",
        "watched",
        "dirty_cas",
        "pubsub_channels",
        "pubsub_patterns",
        "pubsub_shard_channels",
        "blocked",
        "deny_blocking",
        "multi_failed",
        "asking",
        "readonly",
        "gated",
        "routed",
        "flags",
        "qbuf_peak",
        "is_unix",
        "obuf_soft_limit_reached_time",
        "tls",
        "propagate_as",
        "tracking",
    )

    def __init__(self, node, client_id: int, fd: int, addr: str, laddr: str, *, use_hiredis: bool = True) -> None:
        self.node = node
        self.clock = node.clock  # the shared per-command clock, cached for the hot path
        self.id = client_id
        self.fd = fd
        self.addr = addr
        self.laddr = laddr
        self.parser = RequestParser(max_bulk_len=node.config["proto-max-bulk-len"], use_hiredis=use_hiredis)
        self.out = bytearray()
        self.resp3 = False
        self.db_index = 0
        self.db = node.dbs[0]
        self.name = b""
        self.lib_name = b""
        self.lib_ver = b""
        self.user = b"default"
        #: The ACL User object (node.security.acl); ``user`` is its name. None: no ACL checks
        #: (the master link of a replica, as Redis's user-less master client).
        self.acl_user = node.acl.default
        self.authenticated = not node.auth_required()
        self.created_ms = node.clock.wall_ms()
        self.last_interaction_ms = self.created_ms
        #: The Command this client ran last (None before any: CLIENT LIST says NULL).
        self.last_command = None
        self.close_after_reply = False
        self.killed = False
        self.reply_mode = REPLY_ON
        self.no_evict = False
        self.multi: list | None = None
        self.watched: list | None = None
        self.dirty_cas = False
        # Subscriptions (node.pubsub): dicts used as insertion-ordered sets.
        self.pubsub_channels: dict = {}
        self.pubsub_patterns: dict = {}
        self.pubsub_shard_channels: dict = {}
        #: A BlockState while blocked on keys (node.blocking), else None.
        self.blocked = None
        #: True while running inside EXEC or a script: blocking commands answer at once.
        self.deny_blocking = False
        #: A command queued in MULTI was rejected: EXEC answers EXECABORT.
        self.multi_failed = False
        self.asking = False
        self.readonly = False
        self.flags = ""
        self.qbuf_peak = 0
        self.is_unix = False
        #: Unix seconds since the output buffer has been over its soft limit (0: not over).
        self.obuf_soft_limit_reached_time = 0
        #: node.tls.TLSConnection for a client of tls-port (decrypt/encrypt in the server loop), else None.
        self.tls = None
        #: Set by a handler through node.propagation.rewrite/prevent: what to propagate instead of argv.
        self.propagate_as = None
        #: node.tracking.ClientTracking while CLIENT TRACKING is on, else None.
        self.tracking = None
        #: Cluster mode: every request is checked by the routing hook (MOVED/ASK...).
        self.routed = node.cluster_enabled
        self.refresh_gate()

    def over_output_limit(self, used: int, hard: int, soft: int, seconds: int, clock) -> bool:
        """client-output-buffer-limit for ``used`` bytes: at or past ``hard`` at once, past ``soft``
        for longer than ``seconds`` (the clock starts the first time it is seen past it). ``clock``
        (the node's CommandClock) is read only past the soft limit: this runs on every delivery."""
        over = bool(hard) and used >= hard
        if soft and used >= soft:
            now_s = clock.wall_ms() // 1000
            since = self.obuf_soft_limit_reached_time
            if since == 0:
                self.obuf_soft_limit_reached_time = now_s
            elif now_s - since > seconds:
                over = True
        else:
            self.obuf_soft_limit_reached_time = 0
        return over

    def refresh_gate(self) -> None:
        """Recompute ``gated``; call after changing any state it summarises."""
        self.parser.unauthenticated = not self.authenticated
        self.gated = (
            not self.authenticated
            or self.multi is not None
            or self.reply_mode != REPLY_ON
            or bool(self.pubsub_channels or self.pubsub_patterns or self.pubsub_shard_channels)
            or self.asking
            or self.node.disk_error is not None  # MISCONF after a failed BGSAVE (node.persistence.snapshot)
            or (self.acl_user is not None and not self.acl_user.unrestricted)  # ACL checks (node.security.acl)
            or self.tracking is not None  # CLIENT TRACKING: node.tracking.tracked_execute
        )

    def select(self, index: int) -> None:
        self.db_index = index
        self.db = self.node.dbs[index]
