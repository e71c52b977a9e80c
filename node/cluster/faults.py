"""Test-only cluster-bus faults: the table behind ``DEBUG CLUSTER-BUS`` (gated by ``enable-debug-command``).

This is how a chaos run gets latency and message loss on one node's bus
without root or network namespaces (jepsen_like.bus_nemesis drives it):

* ``DEBUG CLUSTER-BUS DROP <type>|ALL [<node-id>|*]`` -- frames of that type
  *received* from that node (default ``*``: from every node) are discarded
  before the state machine sees them (they are not counted in CLUSTER INFO's
  ``cluster_stats_messages_*_received`` either). Only incoming frames are
  dropped: to cut a node's traffic in both directions, set the drop on both
  ends. Repeating DROP adds types; only RESET removes them.
* ``DEBUG CLUSTER-BUS DELAY <node-id>|* <ms>`` -- frames received from that
  node are handed to the state machine ``ms`` after they arrived, in arrival
  order per link (a frame never overtakes an earlier one of the same link,
  even when the delay is lowered meanwhile). A node-specific delay wins over
  ``*``; ``0`` removes the entry. A round trip A->B->A is delayed when B
  delays frames from A (A's PING waits) or A delays frames from B (B's PONG
  waits); a node delaying ``*`` sees every round trip it takes part in
  slowed by ``ms``. Frames still queued when the peer closes the link are
  delivered (they were read before its FIN); when this node closes it
  (CLOSE, the no-PONG watchdog, a write error) they are lost, as unread
  socket data would be.
* ``DEBUG CLUSTER-BUS CLOSE <node-id>|*`` -- closes our link to that node and
  the links it opened to us, now; both ends re-dial as after any link
  failure. Replies with the number of links closed.
* ``DEBUG CLUSTER-BUS RESET`` clears every drop and delay (queued frames
  are still delivered in order); ``DEBUG CLUSTER-BUS STATUS`` lists them.

The driver tests ``faults.active`` once per batch of frames it reads; with
no fault set that is the whole cost.
"""

from __future__ import annotations

from gossip.messages import (
    AUTH_ACK, AUTH_REQUEST, FAIL, MEET, MFSTART, MODULE, PING, PONG, PUBLISH, PUBLISHSHARD, TYPE_NAMES, UPDATE,
)
from node.resp import OK, ErrorReply

__all__ = ["ANY", "MAX_DELAY_MS", "MESSAGE_TYPES", "BusFaults", "close_links", "debug_cluster_bus"]

ANY = "*"
MAX_DELAY_MS = 3_600_000

#: Accepted type names (case-insensitive): Redis's message names, and CLUSTER INFO's short ones.
MESSAGE_TYPES = {
    "PING": PING, "PONG": PONG, "MEET": MEET, "FAIL": FAIL, "PUBLISH": PUBLISH,
    "FAILOVER_AUTH_REQUEST": AUTH_REQUEST, "FAILOVER_AUTH_ACK": AUTH_ACK, "UPDATE": UPDATE, "MFSTART": MFSTART,
    "MODULE": MODULE, "PUBLISHSHARD": PUBLISHSHARD,
}
_DISPLAY = tuple(MESSAGE_TYPES)  # in type order
MESSAGE_TYPES.update((short.upper(), number) for number, short in enumerate(TYPE_NAMES)
                     if short.upper() not in MESSAGE_TYPES)
_ALL_MASK = (1 << len(TYPE_NAMES)) - 1


class BusFaults:
    """Active faults of one node: drops (peer -> type bit mask) and delays (peer -> ms)."""

    __slots__ = ("drops", "delays", "queued", "active")

    def __init__(self) -> None:
        self.drops: dict[str, int] = {}
        self.delays: dict[str, int] = {}
        self.queued = 0  # links holding delayed frames: they keep the slow path until drained
        self.active = False

    def _refresh(self) -> None:
        self.active = bool(self.drops or self.delays or self.queued)

    def queue_opened(self) -> None:
        self.queued += 1
        self.active = True

    def queue_drained(self) -> None:
        self.queued -= 1
        self._refresh()

    def add_drop(self, peer: str, mask: int) -> None:
        self.drops[peer] = self.drops.get(peer, 0) | mask
        self._refresh()

    def set_delay(self, peer: str, ms: int) -> None:
        if ms:
            self.delays[peer] = ms
        else:
            self.delays.pop(peer, None)
        self._refresh()

    def reset(self) -> None:
        self.drops.clear()
        self.delays.clear()
        self._refresh()

    def dropped(self, msg) -> bool:
        """Whether a received frame must be discarded."""
        drops = self.drops
        if not drops:
            return False
        kind = msg.type
        if not 0 <= kind < len(TYPE_NAMES):
            return False
        mask = drops.get(msg.sender, 0) | drops.get(ANY, 0)
        return bool(mask >> kind & 1)

    def delay_ms(self, sender: str) -> int:
        delays = self.delays
        if not delays:
            return 0
        ms = delays.get(sender)
        return delays.get(ANY, 0) if ms is None else ms

    def status(self) -> list[bytes]:
        lines = []
        for peer, mask in sorted(self.drops.items()):
            names = "ALL" if mask == _ALL_MASK else ",".join(_DISPLAY[i] for i in range(len(_DISPLAY)) if mask >> i & 1)
            lines.append(f"drop {names} from {peer}".encode())
        for peer, ms in sorted(self.delays.items()):
            lines.append(f"delay {ms} ms from {peer}".encode())
        return lines


def close_links(driver, peer: str) -> int:
    """Close the bus links to/from ``peer`` (``*``: all); the usual reconnect logic re-dials them."""
    closed = 0
    for links in (driver.outbound, driver.inbound):
        for link in list(links.values()):
            if link.closed or link.stream is None:
                continue
            who = link.key if links is driver.outbound else getattr(link, "peer", None)
            if peer == ANY or who == peer:
                link.scope.cancel()
                closed += 1
    return closed


def _err(text: str) -> ErrorReply:
    return ErrorReply("ERR " + text)


def _peer(driver, arg: bytes) -> str:
    text = arg.decode("utf-8", "surrogateescape")
    if text == ANY:
        return ANY
    if text not in driver.state.nodes:
        raise _err(f"Unknown node {text}")
    return text


def debug_cluster_bus(driver, argv) -> object:
    """``DEBUG CLUSTER-BUS ...`` (argv[0:2] are DEBUG CLUSTER-BUS). ``driver`` None: not in cluster mode."""
    if driver is None:
        raise _err("This instance has cluster support disabled")
    faults = driver.faults
    argc = len(argv)
    action = argv[2].lower() if argc > 2 else b""
    if action == b"drop" and argc in (4, 5):
        name = argv[3].decode("utf-8", "surrogateescape").upper()
        if name == "ALL":
            mask = _ALL_MASK
        elif name in MESSAGE_TYPES:
            mask = 1 << MESSAGE_TYPES[name]
        else:
            raise _err(f"Unknown cluster bus message type '{name[:128]}'. "
                       f"Try one of {', '.join(_DISPLAY)} or ALL.")
        faults.add_drop(_peer(driver, argv[4]) if argc == 5 else ANY, mask)
        return OK
    if action == b"delay" and argc == 5:
        peer = _peer(driver, argv[3])
        raw = argv[4]
        if not raw.isdigit() or len(raw) > 10 or int(raw) > MAX_DELAY_MS:
            raise _err("delay is not an integer or out of range")
        faults.set_delay(peer, int(raw))
        return OK
    if action == b"close" and argc == 4:
        return close_links(driver, _peer(driver, argv[3]))
    if action == b"reset" and argc == 3:
        faults.reset()
        return OK
    if action == b"status" and argc == 3:
        return faults.status()
    shown = argv[2].decode("utf-8", "replace")[:128] if argc > 2 else ""
    raise _err(f"unknown subcommand or wrong number of arguments for 'CLUSTER-BUS {shown}'. Try DEBUG HELP.")
