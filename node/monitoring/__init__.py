"""Observability of a node: SLOWLOG, LATENCY, MONITOR and the Prometheus endpoint.

``install(node)`` (called once by ``Node.__init__``) gives the node a
``Monitoring`` object (``node.monitoring``) holding the slow log, the latency
time series and the list of MONITOR clients (also ``node.monitors``).

The dispatcher pays for all of it with one comparison per command: it
measures each command's duration anyway, and only when that duration is at or
over ``node.dispatch.WATCH_US`` does it call ``after_command``. ``WATCH_US``
is the smallest duration any node of this process cares about: 0 while some
MONITOR client is connected (every command must be fed), else the lower of
``slowlog-log-slower-than`` (when >= 0) and ``latency-monitor-threshold`` in
microseconds (when > 0); "never" (a huge number) when both are off. It is
recomputed by config ``on_change`` hooks and when monitors come and go, so
the common command never touches any of this.
"""

from __future__ import annotations

import weakref

from node.monitoring.latency import LatencyMonitor
from node.monitoring.monitor import feed_monitors, redacted_argv
from node.monitoring.slowlog import SlowLog

__all__ = ["Monitoring", "install", "after_command", "NEVER"]

NEVER = 1 << 62  # a duration no command reaches: nothing to record

_NODES: "weakref.WeakSet" = weakref.WeakSet()


class Monitoring:
    """Per-node state: the slow log, the latency events, MONITOR clients."""

    def __init__(self, node) -> None:
        self.node = node
        self.slowlog = SlowLog()
        self.latency = LatencyMonitor(node.clock.source)
        self.monitors: list = []
        #: True while the dispatcher re-runs a command of a client just unblocked
        #: (Redis does not feed such a re-run to MONITOR).
        self.reprocessing = False
        self.watch_us = NEVER
        self._inner_gate = None
        self._gate_installed = False

    # ------------------------------------------------------------- thresholds

    def refresh(self, _value=None) -> None:
        """Recompute this node's threshold, then the process-wide one the dispatcher reads."""
        config = self.node.config
        watch = NEVER
        slower = config["slowlog-log-slower-than"]
        if slower >= 0:
            watch = slower
        latency_ms = config["latency-monitor-threshold"]
        if latency_ms > 0:
            watch = min(watch, latency_ms * 1000)
        if self.monitors:
            watch = 0
        self.watch_us = watch
        _refresh_global()

    def trim_slowlog(self, max_len) -> None:
        if self.node.config["slowlog-log-slower-than"] >= 0:
            self.slowlog.trim(max_len)

    # ---------------------------------------------------------------- clients

    def client_closed(self, client) -> None:
        if client in self.monitors:
            self.monitors.remove(client)
            self.refresh()

    def client_reset(self, client) -> None:
        """RESET leaves monitor mode (clearClientConnectionState)."""
        if client in self.monitors:
            self.monitors.remove(client)
            client.flags = client.flags.replace("O", "")
            client.routed = self.node.cluster_enabled
            self.refresh()

    def add_monitor(self, client) -> None:
        _wrap_script_commands()
        self.monitors.append(client)
        client.flags += "O"
        # Commands from a monitor go through the gate hook, where those that
        # touch the keyspace are refused as Redis refuses them to replicas.
        client.routed = True
        node = self.node
        if node.gate_hook != self._gate:  # (bound methods: compare by ==, not identity)
            self._inner_gate = node.gate_hook
            node.gate_hook = self._gate
        self.refresh()

    def _gate(self, client, cmd, argv) -> bool:
        if client.flags and "O" in client.flags:
            flags = cmd.flags
            if "readonly" in flags or "write" in flags or "may_replicate" in flags:
                from node.dispatch import _reject
                from node.resp import ErrorReply

                _reject(client, cmd, ErrorReply("ERR Replica can't interact with the keyspace"))
                return True
        inner = self._inner_gate
        return inner is not None and inner(client, cmd, argv)


_SCRIPT_COMMANDS = (b"eval", b"evalsha", b"eval_ro", b"evalsha_ro", b"fcall", b"fcall_ro")
_wrapped = False


def _wrap_script_commands() -> None:
    """EVAL/EVALSHA/FCALL (and _RO) are skip_monitor: Redis feeds them itself, *before*
    running the script, so the script's own commands follow them. Done once, when
    the first MONITOR starts, by wrapping the handlers."""
    global _wrapped
    if _wrapped:
        return
    _wrapped = True
    from node.commands.table import lookup

    for name in _SCRIPT_COMMANDS:
        cmd = lookup(name)
        if cmd is None or cmd.handler is None:
            continue
        cmd.handler = _feeding(cmd.handler)


def _feeding(handler):
    def run(client, argv):
        node = client.node
        if node.monitors:
            feed_monitors(node, client, argv)
        return handler(client, argv)

    run.__wrapped__ = handler
    return run


def _refresh_global() -> None:
    import node.dispatch as dispatch

    dispatch.WATCH_US = min((m.monitoring.watch_us for m in _NODES), default=NEVER)


def install(node) -> Monitoring:
    """Give ``node`` its monitoring state and keep the dispatcher's threshold current."""
    mon = Monitoring(node)
    node.monitoring = mon
    node.monitors = mon.monitors
    _NODES.add(node)
    node.config.on_change("slowlog-log-slower-than", mon.refresh)
    node.config.on_change("latency-monitor-threshold", mon.refresh)
    node.config.on_change("slowlog-max-len", mon.trim_slowlog)
    from node.monitoring.histogram import install as install_histogram

    install_histogram(node)  # latency-tracking: LATENCY HISTOGRAM
    mon.refresh()
    return mon


def after_command(client, cmd, argv: list, elapsed_us: int) -> None:
    """A command took at least WATCH_US: record latency, slow log and MONITOR as Redis's call()."""
    node = client.node
    mon = node.monitoring
    config = node.config
    flags = cmd.flags
    latency_ms = config["latency-monitor-threshold"]
    if latency_ms and elapsed_us // 1000 >= latency_ms:
        mon.latency.add("fast-command" if "fast" in flags else "command", elapsed_us // 1000)
    shown = None
    slower = config["slowlog-log-slower-than"]
    if 0 <= slower <= elapsed_us and "skip_slowlog" not in flags and client.blocked is None:
        shown = redacted_argv(cmd, argv)
        mon.slowlog.push(shown, elapsed_us, client, int(mon.latency.clock()), config["slowlog-max-len"])
    if mon.monitors and not mon.reprocessing and "skip_monitor" not in flags and "admin" not in flags:
        feed_monitors(node, client, shown if shown is not None else redacted_argv(cmd, argv))
