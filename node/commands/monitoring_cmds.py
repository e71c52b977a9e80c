"""SLOWLOG, LATENCY and MONITOR (state and recording live in ``node.monitoring``)."""

from __future__ import annotations

from node.commands.table import command, container
from node.monitoring.histogram import cdf, has_histogram
from node.monitoring.latency import doctor_report, graph
from node.resp import NO_REPLY, OK, ErrorReply, Raw, SimpleString, Verbatim, write_reply
from node.resp.parser import string2ll

__all__: list[str] = []


def _help(argv, lines: list[str]) -> list:
    head = f"{argv[0].decode('utf-8', 'surrogateescape').upper()} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    return [SimpleString(line.encode()) for line in [head, *lines, "HELP", "    Prints this help."]]


def _syntax(argv) -> ErrorReply:
    return ErrorReply(
        "ERR unknown subcommand or wrong number of arguments for '%s'. Try %s HELP."
        % (argv[1][:128].decode("utf-8", "surrogateescape"), argv[0].decode("utf-8", "surrogateescape").upper())
    )


# ------------------------------------------------------------------- SLOWLOG

container("slowlog", -2, group="server", summary="A container for slow log commands", since="2.2.12",
          complexity="Depends on subcommand.")


@command("get", -2, "admin loading stale", parent="slowlog", group="server", summary="Get the slow log's entries",
         since="2.2.12", complexity="O(N) where N is the number of entries returned",
         tips=("request_policy:all_nodes", "nondeterministic_output"))
def slowlog_get(client, argv):
    if len(argv) > 3:
        raise _syntax(argv)
    count = 10
    if len(argv) == 3:
        count = string2ll(argv[2])
        if count is None or count < -1:
            raise ErrorReply("ERR count should be greater than or equal to -1")
    return client.node.monitoring.slowlog.get(count)


@command("len", 2, "admin loading stale", parent="slowlog", group="server", summary="Get the slow log's length",
         since="2.2.12", complexity="O(1)",
         tips=("request_policy:all_nodes", "response_policy:agg_sum", "nondeterministic_output"))
def slowlog_len(client, argv):
    return len(client.node.monitoring.slowlog.entries)


@command("reset", 2, "admin loading stale", parent="slowlog", group="server",
         summary="Clear all entries from the slow log", since="2.2.12",
         complexity="O(N) where N is the number of entries in the slowlog",
         tips=("request_policy:all_nodes", "response_policy:all_succeeded"))
def slowlog_reset(client, argv):
    client.node.monitoring.slowlog.reset()
    return OK


_SLOWLOG_HELP = [
    "GET [<count>]",
    "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
    "    Entries are made of:",
    "    id, timestamp, time in microseconds, arguments array, client IP and port,",
    "    client name",
    "LEN",
    "    Return the length of the slowlog.",
    "RESET",
    "    Reset the slowlog.",
]


@command("help", 2, "loading stale", parent="slowlog", group="server",
         summary="Show helpful text about the different subcommands", since="6.2.0", complexity="O(1)")
def slowlog_help(client, argv):
    return _help(argv, _SLOWLOG_HELP)


# ------------------------------------------------------------------- LATENCY

container("latency", -2, group="server", summary="A container for latency diagnostics commands", since="2.8.13",
          complexity="Depends on subcommand.")

_LATENCY_FLAGS = "admin noscript loading stale"
_SPECIAL = ("nondeterministic_output", "request_policy:all_nodes", "response_policy:special")


@command("latest", 2, _LATENCY_FLAGS, parent="latency", group="server",
         summary="Return the latest latency samples for all events.", since="2.8.13", complexity="O(1)",
         tips=_SPECIAL)
def latency_latest(client, argv):
    out = []
    for event, series in client.node.monitoring.latency.events.items():
        when, value = series.latest()
        out.append([event.encode(), when, value, series.max])
    return out


@command("history", 3, _LATENCY_FLAGS, parent="latency", group="server",
         summary="Return timestamp-latency samples for the event.", since="2.8.13", complexity="O(1)",
         tips=_SPECIAL)
def latency_history(client, argv):
    found = client.node.monitoring.latency.find(argv[2])
    if found is None:
        return []
    return [[when, value] for when, value in found[1].in_order()]


@command("reset", -2, _LATENCY_FLAGS, parent="latency", group="server",
         summary="Reset latency data for one or more events.", since="2.8.13", complexity="O(1)",
         tips=("request_policy:all_nodes", "response_policy:all_succeeded"))
def latency_reset(client, argv):
    latency = client.node.monitoring.latency
    if len(argv) == 2:
        return latency.reset()
    return sum(latency.reset(event) for event in argv[2:])


@command("doctor", 2, _LATENCY_FLAGS, parent="latency", group="server",
         summary="Return a human readable latency analysis report.", since="2.8.13", complexity="O(1)",
         tips=_SPECIAL)
def latency_doctor(client, argv):
    node = client.node
    return Verbatim(doctor_report(node.monitoring.latency, node.config).encode())


@command("graph", 3, _LATENCY_FLAGS, parent="latency", group="server",
         summary="Return a latency graph for the event.", since="2.8.13", complexity="O(1)", tips=_SPECIAL)
def latency_graph(client, argv):
    latency = client.node.monitoring.latency
    found = latency.find(argv[2])
    if found is None:
        raise ErrorReply("ERR No samples available for event '%s'" % argv[2].decode("utf-8", "surrogateescape"))
    event, series = found
    return Verbatim(graph(event, series, int(latency.clock())).encode())


def _command_by_fullname(name: bytes):
    """lookupCommandBySds: ``name`` or ``container|sub`` (any case), else None."""
    from node.commands.table import lookup

    parts = name.split(b"|")
    if len(parts) > 2:
        return None
    cmd = lookup(parts[0])
    if cmd is None or len(parts) == 1:
        return cmd
    if not cmd.subcommands:
        return None
    return cmd.subcommands.get(parts[1].lower())


def _with_histogram(cmd, out: list) -> None:
    """The command, then its subcommands, that have a histogram, as (fullname, cdf) pairs."""
    if has_histogram(cmd):
        out.append((cmd.fullname.encode(), cdf(cmd)))
    for sub in cmd.subcommands.values():
        if has_histogram(sub):
            out.append((sub.fullname.encode(), cdf(sub)))


@command("histogram", -2, _LATENCY_FLAGS, parent="latency", group="server",
         summary="Return the cumulative distribution of latencies of a subset of commands or all.",
         since="7.0.0", complexity="O(N) where N is the number of commands with latency information being retrieved.",
         tips=_SPECIAL)
def latency_histogram(client, argv):
    """LATENCY HISTOGRAM [command ...]: a map, command -> {calls, histogram_usec} (duplicates repeat)."""
    from node.commands.table import all_commands

    pairs: list = []
    if len(argv) == 2:
        for cmd in all_commands():
            _with_histogram(cmd, pairs)
    else:
        for name in argv[2:]:
            cmd = _command_by_fullname(name)
            if cmd is not None:
                _with_histogram(cmd, pairs)
    # A map written by hand: Redis repeats a command named twice, which a dict cannot hold.
    out = bytearray(b"%%%d\r\n" % len(pairs) if client.resp3 else b"*%d\r\n" % (2 * len(pairs)))
    for name, value in pairs:
        out += b"$%d\r\n%b\r\n" % (len(name), name)
        write_reply(out, value, client.resp3)
    return Raw(bytes(out))


_LATENCY_HELP = [
    "DOCTOR",
    "    Return a human readable latency analysis report.",
    "GRAPH <event>",
    "    Return an ASCII latency graph for the <event> class.",
    "HISTORY <event>",
    "    Return time-latency samples for the <event> class.",
    "LATEST",
    "    Return the latest latency samples for all events.",
    "RESET [<event> ...]",
    "    Reset latency data of one or more <event> classes.",
    "    (default: reset all data for all event classes)",
    "HISTOGRAM [COMMAND ...]",
    "    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.",
    "    If no commands are specified then all histograms are replied.",
]


@command("help", 2, "loading stale", parent="latency", group="server",
         summary="Show helpful text about the different subcommands.", since="2.8.13", complexity="O(1)")
def latency_help(client, argv):
    return _help(argv, _LATENCY_HELP)


# ------------------------------------------------------------------- MONITOR


@command("monitor", 1, "admin noscript loading stale", group="server",
         summary="Listen for all requests received by the server in real time", since="1.0.0")
def monitor(client, argv):
    if client.deny_blocking:
        raise ErrorReply("ERR MONITOR isn't allowed for DENY BLOCKING client")
    mon = client.node.monitoring
    if client in mon.monitors or "S" in client.flags:
        return NO_REPLY  # already a monitor (or a replica): ignored, no reply
    mon.add_monitor(client)
    return OK
