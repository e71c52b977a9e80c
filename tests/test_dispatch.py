"""Dispatch policy that needs no server: a failing handler costs one reply, not the node."""

from __future__ import annotations

import node.commands  # noqa: F401  (fills the command table)
from node.client import Client
from node.commands.table import Command
from node.config import Config
from node.core import Node
from node.dispatch import call, execute
from node.log import Logger


def _client(tmp_path) -> Client:
    config = Config()
    node = Node(config, logger=Logger(str(tmp_path / "log")))
    return Client(node, 1, -1, "127.0.0.1:1", "127.0.0.1:2")


def test_handler_bug_becomes_an_error_reply_and_is_logged(tmp_path):
    client = _client(tmp_path)

    def broken(client, argv):
        raise KeyError("oops")

    cmd = Command("broken", 1, ["fast"], (0, 0, 0), broken)
    call(client, cmd, [b"broken"])
    assert bytes(client.out) == b"-ERR internal error in 'broken': KeyError\r\n"
    assert cmd.failed_calls == 1 and cmd.calls == 1
    assert "Internal error in 'broken'" in (tmp_path / "log").read_text()
    # The client and node carry on.
    client.out.clear()
    execute(client, [b"PING"])
    assert bytes(client.out) == b"+PONG\r\n"


def test_a_failing_gate_hook_costs_one_error_reply_not_the_node():
    """A bug in the routing hook answers that request with ERR and leaves the node serving."""
    from node.client import Client
    from node.config import Config
    from node.core import Node
    from node.dispatch import execute
    import node.commands  # noqa: F401

    node = Node(Config())
    client = Client(node, 1, -1, "127.0.0.1:1", "127.0.0.1:2")
    client.routed = True

    def broken(client, cmd, argv):
        raise KeyError("boom")

    node.gate_hook = broken
    execute(client, [b"SET", b"k", b"v"])
    assert bytes(client.out) == b"-ERR internal error in 'set': KeyError\r\n"
    node.gate_hook = None
    client.out.clear()
    execute(client, [b"GET", b"k"])
    assert bytes(client.out) == b"$-1\r\n"  # the failed SET did not run
