"""Send the same commands to real Redis and to Shoal and require identical replies.

``Differ.check(*argv)`` runs one command on both servers and asserts the raw
reply bytes are equal, after the normalisation that ``known_differences``
declares for that command (if any). Use it for every behaviour Redis defines.
"""

from __future__ import annotations

from tests.known_differences import normalizer_for
from tests.resp_client import RawClient

__all__ = ["Differ"]


class Differ:
    def __init__(self, redis_port: int, shoal_port: int, protocol: int = 2) -> None:
        self.redis = RawClient(redis_port)
        self.shoal = RawClient(shoal_port)
        self.protocol = protocol
        if protocol == 3:
            self.redis.call("HELLO", "3")
            self.shoal.call("HELLO", "3")
        self.history: list[tuple] = []

    def both(self, *argv) -> tuple[bytes, bytes]:
        """Raw replies of (redis, shoal), without comparing."""
        self.history.append(argv)
        return self.redis.call(*argv), self.shoal.call(*argv)

    def check(self, *argv) -> bytes:
        """Run ``argv`` on both; assert equal replies; return Redis's raw reply."""
        expected, actual = self.both(*argv)
        normalize = normalizer_for(argv)
        if normalize is not None:
            same = normalize(expected) == normalize(actual)
        else:
            same = expected == actual
        if not same:
            recent = "\n".join(repr(c) for c in self.history[-10:])
            raise AssertionError(
                f"reply mismatch for {argv!r}\n  redis: {expected!r}\n  shoal: {actual!r}\n"
                f"last commands:\n{recent}"
            )
        return expected

    def check_all(self, commands) -> None:
        for argv in commands:
            self.check(*argv)

    def close(self) -> None:
        self.redis.close()
        self.shoal.close()
