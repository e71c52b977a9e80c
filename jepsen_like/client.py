"""A thin cluster client whose every error says whether the command may have run.

redis-py's ``RedisCluster`` retries on connection errors and re-sends the
command, which would turn one recorded operation into two executions (an
INCRBY applied twice looks like a counter bug). This client follows the
cluster protocol itself -- a slot map from ``CLUSTER SLOTS``, MOVED, ASK,
TRYAGAIN -- over plain redis-py ``Connection`` objects with retries off, and
classifies every failure:

* ``DefiniteFailure`` (history outcome ``fail``): the command certainly did
  not run -- the connection could not be opened (nothing was sent), the reply
  was a refusal before execution (CLUSTERDOWN, MOVED/ASK/TRYAGAIN redirects
  exhausted, LOADING, MASTERDOWN, EXECABORT...), or a Lua script / EXEC
  reported an error;
* ``IndefiniteFailure`` (outcome ``info``): the command was sent and then the
  connection broke or timed out -- it may have run, now or later (a paused
  node runs its buffered commands when it resumes).

One client per thread; it is not thread-safe.
"""

from __future__ import annotations

import random
import time

import redis
from redis.backoff import NoBackoff
from redis.exceptions import AskError, ClusterDownError, MovedError, ResponseError, TryAgainError
from redis.retry import Retry

from slots import keyslot

__all__ = ["ClusterClient", "CompareFailed", "DefiniteFailure", "IndefiniteFailure"]


class DefiniteFailure(Exception):
    """The command did not take effect. ``category`` names why, for the summary's breakdown."""

    def __init__(self, message: str, category: str = "refused") -> None:
        super().__init__(message)
        self.category = category


class CompareFailed(DefiniteFailure):
    """A compare-and-set whose compare failed: served by the cluster, but no effect."""

    def __init__(self, message: str = "cas: compare failed") -> None:
        super().__init__(message, "cas-mismatch")


class IndefiniteFailure(Exception):
    """The command may or may not have taken effect."""

    def __init__(self, message: str, category: str = "timeout") -> None:
        super().__init__(message)
        self.category = category


MAX_REDIRECTS = 5
# redis-py strips the error code from these replies' messages; name them by the code again
_ERROR_NAMES = {ClusterDownError: "CLUSTERDOWN", ResponseError: "error-reply", redis.exceptions.BusyLoadingError: "LOADING",
                redis.exceptions.MasterDownError: "MASTERDOWN", redis.exceptions.ExecAbortError: "EXECABORT"}


class ClusterClient:
    def __init__(self, seeds: list[tuple[str, int]], *, timeout: float = 1.0, rng: random.Random | None = None) -> None:
        self.seeds = list(seeds)
        self.timeout = timeout
        self.rng = rng or random.Random(0)
        self.slots: list[tuple[str, int] | None] = [None] * 16384
        self.conns: dict[tuple[str, int], redis.Connection] = {}
        self.refreshes = 0
        self._last_connect_refresh = 0.0

    # ----------------------------------------------------------- plumbing
    def _conn(self, addr: tuple[str, int]) -> redis.Connection:
        """An open connection to ``addr``; raises DefiniteFailure if it cannot connect (nothing sent)."""
        conn = self.conns.get(addr)
        if conn is None:
            conn = redis.Connection(host=addr[0], port=addr[1], socket_timeout=self.timeout,
                                    socket_connect_timeout=self.timeout, retry=Retry(NoBackoff(), 0))
            self.conns[addr] = conn
        try:
            conn.connect()
        except (redis.ConnectionError, redis.TimeoutError, OSError) as e:
            conn.disconnect()
            raise DefiniteFailure(f"cannot connect to {addr[0]}:{addr[1]}: {e}", "connect") from None
        return conn

    def _drop(self, addr: tuple[str, int]) -> None:
        conn = self.conns.pop(addr, None)
        if conn is not None:
            conn.disconnect()

    def refresh(self) -> bool:
        """Reload the slot map from the first seed that answers CLUSTER SLOTS; False if none did."""
        self.refreshes += 1
        order = list(self.seeds)
        self.rng.shuffle(order)
        for addr in order:
            try:
                conn = self._conn(addr)
                conn.send_command("CLUSTER", "SLOTS")
                reply = conn.read_response()
            except DefiniteFailure:
                continue
            except (redis.RedisError, OSError):
                self._drop(addr)
                continue
            table: list[tuple[str, int] | None] = [None] * 16384
            for entry in reply:
                lo, hi, primary = entry[0], entry[1], entry[2]
                host = primary[0].decode() if isinstance(primary[0], bytes) else primary[0]
                for s in range(int(lo), int(hi) + 1):
                    table[s] = (host, int(primary[1]))
            self.slots = table
            return True
        return False

    def _refresh_after_connect_failure(self) -> None:
        """A node that refuses connections may have failed over: reload the slot map, at most every 0.2 s."""
        now = time.monotonic()
        if now - self._last_connect_refresh >= 0.2:
            self._last_connect_refresh = now
            self.refresh()

    def _target(self, slot: int) -> tuple[str, int]:
        addr = self.slots[slot]
        if addr is None:
            self.refresh()
            addr = self.slots[slot]
        if addr is None:
            raise DefiniteFailure(f"no known owner for slot {slot}", "no-route")
        return addr

    def _roundtrip(self, addr: tuple[str, int], commands: list[tuple], asking: bool) -> list:
        """Send ``commands`` pipelined to ``addr``; returns the replies (errors as exception objects)."""
        conn = self._conn(addr)
        try:
            if asking:
                conn.send_command("ASKING")
                conn.read_response()
            conn.send_packed_command(conn.pack_commands([c for c in commands]))
            replies = []
            for _ in commands:
                try:
                    replies.append(conn.read_response())
                except ResponseError as e:
                    replies.append(e)
            return replies
        except (redis.ConnectionError, redis.TimeoutError, OSError) as e:
            self._drop(addr)
            kind = "timeout" if isinstance(e, redis.TimeoutError) else "connection-lost"
            raise IndefiniteFailure(f"{type(e).__name__} from {addr[0]}:{addr[1]} after sending: {e}",
                                    kind) from None

    def execute(self, key: str, *commands: tuple) -> list:
        """Run ``commands`` (all on ``key``'s slot) as one pipelined round trip; returns their replies.

        A reply that is an error raises DefiniteFailure -- except MOVED/ASK/TRYAGAIN on the first
        command, which are followed (nothing ran). For MULTI/EXEC, pass the whole block; a queueing
        error makes EXEC fail with EXECABORT, which also raises DefiniteFailure.
        """
        slot = keyslot(key.encode() if isinstance(key, str) else key)
        addr = self._target(slot)
        asking = False
        for _ in range(MAX_REDIRECTS + 1):
            try:
                replies = self._roundtrip(addr, list(commands), asking)
            except DefiniteFailure as e:
                if e.category == "connect":
                    self._refresh_after_connect_failure()
                raise
            asking = False
            first = next((r for r in replies if isinstance(r, Exception)), None)
            if first is None:
                return replies
            if isinstance(first, MovedError):
                host, port = first.host, int(first.port)
                self.slots[first.slot_id] = (host, port)
                addr = (host, port)
                continue
            if isinstance(first, AskError):
                addr, asking = (first.host, int(first.port)), True
                continue
            if isinstance(first, TryAgainError):
                time.sleep(0.05)
                continue
            if isinstance(first, ClusterDownError):
                self.refresh()
            raise DefiniteFailure(f"{type(first).__name__}: {first}", _ERROR_NAMES.get(type(first), type(first).__name__))
        raise DefiniteFailure(f"redirects exhausted for slot {slot}", "redirects-exhausted")

    def call(self, key: str, *args):
        return self.execute(key, args)[0]

    def close(self) -> None:
        for addr in list(self.conns):
            self._drop(addr)
