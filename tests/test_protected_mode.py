"""Protected mode: refuse non-loopback clients while the default user needs no password.

All test traffic is loopback, so the decision is tested directly (it is what
the accept loop calls), plus real connections showing loopback is accepted.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from node.config import Config
from node.core import Node
from node.security.protected import DENIED, check_new_connection, is_local_address, protected_mode_refusal
from tests.resp_client import RawClient
from tests.servers import ServerProcess


@pytest.mark.parametrize("ip, local", [
    ("127.0.0.1", True), ("127.1.2.3", True), ("::1", True), ("::ffff:127.0.0.1", True),
    ("10.0.0.5", False), ("192.168.1.1", False), ("::ffff:10.0.0.1", False), ("fe80::1", False),
    ("128.0.0.1", False), ("0.0.0.0", False),
])
def test_local_addresses(ip, local):
    assert is_local_address(ip) is local


def test_decision_table():
    assert protected_mode_refusal(True, True, "10.0.0.5") == DENIED
    assert protected_mode_refusal(True, True, "127.0.0.1") is None
    assert protected_mode_refusal(True, True, None) is None  # Unix socket
    assert protected_mode_refusal(False, True, "10.0.0.5") is None  # protected-mode no
    assert protected_mode_refusal(True, False, "10.0.0.5") is None  # the default user has a password


def test_node_decision_follows_config_and_default_user():
    node = Node(Config())
    remote = ("10.1.2.3", 40000)
    assert check_new_connection(node, None, remote) == DENIED
    assert check_new_connection(node, None, ("127.0.0.1", 40000)) is None
    node.config.apply("requirepass", ["pw"])
    assert check_new_connection(node, None, remote) is None
    node.config.apply("requirepass", [""])
    assert check_new_connection(node, None, remote) == DENIED
    node.config.apply("protected-mode", ["no"])
    assert check_new_connection(node, None, remote) is None
    node.config.apply("protected-mode", ["yes"])
    node.acl.setuser(b"default", [b"resetpass", b">x"])
    assert check_new_connection(node, None, remote) is None


def test_denied_text_is_redis_7_0s():
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    out = subprocess.run(["strings", binary], capture_output=True, check=True).stdout
    line = next(x for x in out.split(b"\n") if x.startswith(b"-DENIED Redis is running in protected mode"))
    assert DENIED == line + b"\r\n"


def test_loopback_clients_are_accepted_in_protected_mode():
    with ServerProcess("shoal", "--protected-mode", "yes") as proc:
        with RawClient(proc.port) as c:
            assert c.call("PING") == b"+PONG\r\n"
            assert c.call("CONFIG", "GET", "protected-mode") == b"*2\r\n$14\r\nprotected-mode\r\n$3\r\nyes\r\n"
            assert c.call("INFO", "stats").count(b"rejected_connections:0") == 1


class _OneConnectionListener:
    """Stands in for the listening socket: hands out one connected socket with a chosen peer address."""

    def __init__(self, sock, peer) -> None:
        self.pending = [(sock, peer)]

    def fileno(self) -> int:
        return -1  # not a tls-port listener

    def accept(self):
        if not self.pending:
            raise BlockingIOError
        return self.pending.pop()


@pytest.mark.parametrize("peer, refused", [(("10.9.8.7", 5555), True), (("127.0.0.1", 5555), False)])
def test_accept_loop_refuses_remote_peers(peer, refused):
    import socket

    from node.server import ShoalServer

    node = Node(Config())
    server = ShoalServer(node, [])
    ours, theirs = socket.socketpair(socket.AF_UNIX)
    try:
        theirs.settimeout(2)
        server._accept(_OneConnectionListener(ours, peer))
        if refused:
            data = b""
            while True:
                chunk = theirs.recv(65536)
                if not chunk:
                    break
                data += chunk
            assert data == DENIED
            assert node.stats.rejected_connections == 1 and not server.clients
        else:
            assert node.stats.rejected_connections == 0 and len(server.clients) == 1
    finally:
        for client in list(server.clients.values()):
            server.sockets.pop(client.fd).close()
        theirs.close()
        server.epoll.close()
