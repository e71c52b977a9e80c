"""Pub/Sub commands: (P|S)SUBSCRIBE, (P|S)UNSUBSCRIBE, PUBLISH, SPUBLISH, PUBSUB.

The work happens in ``node.pubsub`` (node/pubsub.py); these handlers parse
and reply. (Un)subscribe confirmations are push data written straight into
the client's output (one per channel), so the handlers return ``NO_REPLY``.

Counts follow Redis 7.0: SUBSCRIBE/PSUBSCRIBE/UNSUBSCRIBE/PUNSUBSCRIBE report
channels + patterns, SSUBSCRIBE/SUNSUBSCRIBE report shard channels only.
PUBSUB NUMPAT counts distinct patterns; PUBSUB CHANNELS lists channels with at
least one subscriber, optionally filtered by a glob pattern.
"""

from __future__ import annotations

from node.commands.introspection import help_reply
from node.commands.table import TABLE, command, container
from node.dispatch import cstr
from node.engine.glob import compile_glob
from node.propagation import propagate_to_replicas
from node.resp import NO_REPLY, ErrorReply

_DENY_SSUBSCRIBE = ErrorReply("ERR SSUBSCRIBE isn't allowed for a DENY BLOCKING client")


def _sub(name: str, arity: int, flags: str, **info):
    return command(name, arity, flags, group="pubsub", **info)


@_sub("subscribe", -2, "pubsub noscript loading stale", summary="Listen for messages published to the given channels",
      since="2.0.0", complexity="O(N) where N is the number of channels to subscribe to.")
def subscribe(client, argv):
    # Redis refuses SUBSCRIBE from a client that cannot block unless it is in
    # MULTI; here only EXEC (and scripts, which cannot call it) deny blocking.
    client.node.pubsub.subscribe(client, argv[1:])
    return NO_REPLY


@_sub("psubscribe", -2, "pubsub noscript loading stale", summary="Listen for messages published to channels matching the given patterns",
      since="2.0.0", complexity="O(N) where N is the number of patterns the client is already subscribed to.")
def psubscribe(client, argv):
    client.node.pubsub.psubscribe(client, argv[1:])
    return NO_REPLY


@_sub("unsubscribe", -1, "pubsub noscript loading stale", summary="Stop listening for messages posted to the given channels",
      since="2.0.0", complexity="O(N) where N is the number of clients already subscribed to a channel.")
def unsubscribe(client, argv):
    client.node.pubsub.unsubscribe(client, argv[1:] if len(argv) > 1 else None)
    return NO_REPLY


@_sub("punsubscribe", -1, "pubsub noscript loading stale",
      summary="Stop listening for messages posted to channels matching the given patterns", since="2.0.0",
      complexity="O(N+M) where N is the number of patterns the client is already subscribed and M is the number "
                 "of total patterns subscribed in the system (by any client).")
def punsubscribe(client, argv):
    client.node.pubsub.punsubscribe(client, argv[1:] if len(argv) > 1 else None)
    return NO_REPLY


@_sub("ssubscribe", -2, "pubsub noscript loading stale", keys=(1, -1, 1),
      summary="Listen for messages published to the given shard channels", since="7.0.0",
      complexity="O(N) where N is the number of shard channels to subscribe to.")
def ssubscribe(client, argv):
    if client.deny_blocking:
        # Unlike SUBSCRIBE, no exception for MULTI.
        raise _DENY_SSUBSCRIBE
    client.node.pubsub.ssubscribe(client, argv[1:])
    return NO_REPLY


@_sub("sunsubscribe", -1, "pubsub noscript loading stale", keys=(1, -1, 1),
      summary="Stop listening for messages posted to the given shard channels", since="7.0.0",
      complexity="O(N) where N is the number of clients already subscribed to a shard channel.")
def sunsubscribe(client, argv):
    client.node.pubsub.sunsubscribe(client, argv[1:] if len(argv) > 1 else None)
    return NO_REPLY


@_sub("publish", 3, "pubsub loading stale fast", summary="Post a message to a channel", since="2.0.0",
      complexity="O(N+M) where N is the number of clients subscribed to the receiving channel and M is the total "
                 "number of subscribed patterns (by any client).")
def publish(client, argv):
    if not client.node.cluster_enabled:
        propagate_to_replicas(client, b"PUBLISH", argv[1], argv[2])  # cluster mode uses the bus instead
    return client.node.pubsub.publish(argv[1], argv[2])


@_sub("spublish", 3, "pubsub loading stale fast", keys=(1, 1, 1), summary="Post a message to a shard channel",
      since="7.0.0", complexity="O(N) where N is the number of clients subscribed to the receiving shard channel.")
def spublish(client, argv):
    if not client.node.cluster_enabled:
        propagate_to_replicas(client, b"SPUBLISH", argv[1], argv[2])
    return client.node.pubsub.publish_shard(argv[1], argv[2])


# ------------------------------------------------------------------ PUBSUB

container("pubsub", -2, summary="A container for Pub/Sub commands", since="2.8.0",
          complexity="Depends on subcommand.", group="pubsub")

_HELP = [
    "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CHANNELS [<pattern>]",
    "    Return the currently active channels matching a <pattern> (default: '*').",
    "NUMPAT",
    "    Return number of subscriptions to patterns.",
    "NUMSUB [<channel> ...]",
    "    Return the number of subscribers for the specified channels, excluding",
    "    pattern subscriptions(default: no channels).",
    "SHARDCHANNELS [<pattern>]",
    "    Return the currently active shard level channels matching a <pattern> (default: '*').",
    "SHARDNUMSUB [<shardchannel> ...]",
    "    Return the number of subscribers for the specified shard level channel(s)",
    "HELP",
    "    Prints this help.",
]


def _syntax_error(argv) -> ErrorReply:
    """Redis's addReplySubcommandSyntaxError."""
    return ErrorReply(
        f"ERR unknown subcommand or wrong number of arguments for '{cstr(argv[1], 128)}'. "
        f"Try {cstr(argv[0]).upper()} HELP."
    )


def _counts_per_channel(argv, count) -> list:
    """PUBSUB NUMSUB / SHARDNUMSUB: a flat channel, count, channel, count... list."""
    out: list = []
    for channel in argv[2:]:
        out.append(channel)
        out.append(count(channel))
    return out


def _channel_list(argv, registry: dict) -> list[bytes]:
    if len(argv) > 3:
        raise _syntax_error(argv)
    if len(argv) == 2:
        return list(registry)
    matches = compile_glob(argv[2])
    return [channel for channel in registry if matches(channel)]


def _pubsub(name: str, arity: int, flags: str = "pubsub loading stale", **info):
    return command(name, arity, flags, parent="pubsub", group="pubsub", **info)


@_pubsub("help", 2, "loading stale", summary="Show helpful text about the different subcommands", since="6.2.0",
         complexity="O(1)")
def pubsub_help(client, argv):
    return help_reply(_HELP)


@_pubsub("channels", -2, summary="List active channels", since="2.8.0",
         complexity="O(N) where N is the number of active channels, and assuming constant time pattern matching "
                    "(relatively short channels and patterns)")
def pubsub_channels(client, argv):
    return _channel_list(argv, client.node.pubsub.channels)


@_pubsub("shardchannels", -2, summary="List active shard channels", since="7.0.0",
         complexity="O(N) where N is the number of active shard channels, and assuming constant time pattern "
                    "matching (relatively short shard channels).")
def pubsub_shardchannels(client, argv):
    return _channel_list(argv, client.node.pubsub.shard_channels)


@_pubsub("numsub", -2, summary="Get the count of subscribers for channels", since="2.8.0",
         complexity="O(N) for the NUMSUB subcommand, where N is the number of requested channels")
def pubsub_numsub(client, argv):
    return _counts_per_channel(argv, client.node.pubsub.numsub)


@_pubsub("shardnumsub", -2, summary="Get the count of subscribers for shard channels", since="7.0.0",
         complexity="O(N) for the SHARDNUMSUB subcommand, where N is the number of requested shard channels")
def pubsub_shardnumsub(client, argv):
    return _counts_per_channel(argv, client.node.pubsub.shard_numsub)


@_pubsub("numpat", 2, summary="Get the count of unique patterns pattern subscriptions", since="2.8.0",
         complexity="O(1)")
def pubsub_numpat(client, argv):
    return len(client.node.pubsub.patterns)


# PUBSUB HELP is the one subcommand outside @pubsub in Redis (its flags lack "pubsub").
TABLE[b"pubsub"].subcommands[b"help"].categories = ("slow",)
