"""Pub/Sub: channel, pattern and shard-channel subscriptions, and message delivery.

(Interface placeholder filled in by the pub/sub work of S2.)
"""

from __future__ import annotations

__all__ = ["PubSub"]


class PubSub:
    def __init__(self, node) -> None:
        self.node = node

    def publish(self, channel: bytes, message: bytes) -> int:
        return 0

    def keyspace_event(self, flags: int, event: bytes, key: bytes, db_index: int) -> None:
        pass

    def client_closed(self, client) -> None:
        pass
