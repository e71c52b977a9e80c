"""CLIENT PAUSE and the pauses a manual failover takes: holding commands back, then letting them go.

Redis keeps a pause per purpose (a client's CLIENT PAUSE, a coordinated
failover) and obeys the strongest one still running. A paused command is not
refused: its client is *postponed* -- the request stays where it is, the
client's pipeline waits behind it -- and when the pause ends the request runs
as if it had just arrived. Under ``WRITE`` only commands that may change data
or be propagated wait (writes, EVAL/FCALL, PUBLISH, PFCOUNT, EXEC of a
transaction holding such a command); under ``ALL`` everything does. Replicas
and the link to our primary are never paused, or a failover could not finish.
Active expiry and eviction also wait while writes are paused, so the
replication offset stands still: that is what lets a manual failover compare
offsets and lose nothing.
"""

from __future__ import annotations

__all__ = ["ClientPause", "Postponed"]

#: Commands Redis flags may_replicate (not ``write``, but they can reach replicas).
_MAY_REPLICATE = frozenset(("eval", "evalsha", "fcall", "publish", "spublish", "pfcount"))


class Postponed:
    """``client.blocked`` while the client's request waits for a pause to end."""

    __slots__ = ("argv",)

    def __init__(self, argv) -> None:
        self.argv = argv


class ClientPause:
    """The node's pauses: ``pause(purpose, mode, end_ms)``, ``unpause(purpose)``, and the postponed clients."""

    def __init__(self, node, on_change=None) -> None:
        self.node = node
        #: purpose -> (mode "write"|"all", end unix ms)
        self.pauses: dict[str, tuple[str, int]] = {}
        self.mode: str | None = None
        self.end_ms = 0
        self.postponed: list = []
        self.on_change = on_change  # (paused: bool) -> None (the dispatcher's PAUSED flag)
        #: (db index, key) -> number of holders: keys a background MIGRATE is moving. Commands
        #: touching them wait, so no write can land on a key between its copy and its deletion.
        self.held_keys: dict[tuple[int, bytes], int] = {}
        self._active = False

    # ------------------------------------------------------------ control

    def pause(self, purpose: str, mode: str, end_ms: int) -> None:
        """Start or change the pause of ``purpose``; Redis lets a later CLIENT PAUSE only extend or strengthen."""
        current = self.pauses.get(purpose)
        if current is not None and purpose == "client":
            old_mode, old_end = current
            if old_mode == "all" and mode == "write":
                mode = "all"
            end_ms = max(end_ms, old_end)
        self.pauses[purpose] = (mode, end_ms)
        self._recompute()

    def unpause(self, purpose: str) -> None:
        if self.pauses.pop(purpose, None) is not None:
            self._recompute()
            self._release()

    def cron(self, now_ms: int) -> None:
        """End the pauses whose time is up (called from the server's cron)."""
        if not self.pauses:
            return
        ended = [purpose for purpose, (_, end) in self.pauses.items() if end <= now_ms]
        for purpose in ended:
            del self.pauses[purpose]
        if ended:
            self._recompute()
            self._release()

    def hold_keys(self, db_index: int, keys) -> None:
        """Make commands that touch ``keys`` wait until ``release_keys`` (a big key in flight)."""
        held = self.held_keys
        for key in keys:
            held[(db_index, key)] = held.get((db_index, key), 0) + 1
        self._recompute()

    def release_keys(self, db_index: int, keys) -> None:
        held = self.held_keys
        for key in keys:
            count = held.get((db_index, key), 0) - 1
            if count > 0:
                held[(db_index, key)] = count
            else:
                held.pop((db_index, key), None)
        self._recompute()
        self._release()

    def _recompute(self) -> None:
        if not self.pauses:
            self.mode = None
            self.end_ms = 0
        else:
            self.mode = "all" if any(m == "all" for m, _ in self.pauses.values()) else "write"
            self.end_ms = max(end for _, end in self.pauses.values())
        active = self.mode is not None or bool(self.held_keys)
        if active != self._active:
            self._active = active
            if self.on_change is not None:
                self.on_change(active)

    @property
    def writes_paused(self) -> bool:
        """Expiry and eviction must not run: the data (and the replication offset) stand still."""
        return self.mode is not None

    # ---------------------------------------------------------- requests

    def holds(self, client, cmd, argv=None) -> bool:
        """Must this request wait for the pause to end (or for a key it touches to be released)?"""
        if self.held_keys and argv is not None and self._touches_held(client, cmd, argv):
            return True
        mode = self.mode
        if mode is None:
            return False
        if "S" in client.flags or "M" in client.flags:
            return False  # replicas and our primary's link are never paused
        if mode == "all":
            return True
        name = (cmd.parent or cmd).name
        if cmd.is_write or name in _MAY_REPLICATE:
            return True
        if name == "exec" and client.multi:
            return any(queued.is_write or (queued.parent or queued).name in _MAY_REPLICATE
                       for queued, _ in client.multi)
        return False

    def _touches_held(self, client, cmd, argv) -> bool:
        held = self.held_keys
        db_index = client.db_index
        if (cmd.parent or cmd).name == "exec" and client.multi:
            return any((db_index, key) in held for queued, args in client.multi for key in queued.keys_of(args))
        try:
            keys = cmd.keys_of(argv)
        except Exception:
            return False
        return any((db_index, key) in held for key in keys)

    def postpone(self, client, argv) -> None:
        client.blocked = Postponed(argv)
        self.postponed.append(client)
        self.node.stats.postponed_clients = len(self.postponed)

    def forget(self, client) -> None:
        """A postponed client went away."""
        try:
            self.postponed.remove(client)
        except ValueError:
            pass
        client.blocked = None

    def _release(self) -> None:
        """Run the held requests whose pause is over, in arrival order."""
        from node.dispatch import execute

        node = self.node
        waiting = self.postponed
        self.postponed = []
        for client in waiting:
            state = client.blocked
            if type(state) is not Postponed:
                continue
            client.blocked = None
            if client.id not in node.clients:
                continue
            execute(client, state.argv)  # may postpone it again if another pause still holds it
            if client.blocked is None:
                node.unblocked.append(client)
            node.pending_write.add(client)
        node.stats.postponed_clients = len(self.postponed)
