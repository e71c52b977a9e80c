"""``cluster-bus-secret`` (Shoal-specific): bus links must prove the shared secret (node.cluster.bus_secret).

Unit tests run the handshake over trio memory streams; the process tests form
a cluster of nodes sharing a secret and check that a node with another secret,
or with none, can neither MEET nor gossip its way in, that the refusal is
logged with the reason, and that the cluster's view is unchanged.
"""

from __future__ import annotations

import time

import pytest
import redis
import trio
import trio.testing

from node.cluster.bus_secret import BusAuthError, PrefixedStream, accept_handshake, connect_handshake
from tests.servers import ServerProcess, free_cluster_port

NT = "2000"


# ------------------------------------------------------------------ handshake, in memory


def _run_pair(connector_secret: bytes, acceptor_secret: bytes, after: bytes = b""):
    results = {}

    async def main():
        left, right = trio.testing.memory_stream_pair()

        async def connector():
            try:
                rest = await connect_handshake(left, connector_secret)
                if after:
                    await left.send_all(after)
                results["connector"] = rest
            except BusAuthError as exc:
                results["connector"] = exc
                await left.aclose()

        async def acceptor():
            try:
                rest = await accept_handshake(right, acceptor_secret)
                stream = PrefixedStream(right, rest)
                got = b""
                while len(got) < len(after):
                    got += await stream.receive_some(100)
                results["acceptor"] = got
            except BusAuthError as exc:
                results["acceptor"] = exc

        with trio.fail_after(5):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(connector)
                nursery.start_soon(acceptor)

    trio.run(main)
    return results


def test_handshake_same_secret_passes_and_keeps_following_bytes():
    res = _run_pair(b"s3cret", b"s3cret", after=b"RCmb-first-frame")
    assert res["connector"] == b""
    assert res["acceptor"] == b"RCmb-first-frame"


def test_handshake_wrong_secret_fails_on_both_sides():
    res = _run_pair(b"one", b"two", after=b"x")
    assert isinstance(res["connector"], BusAuthError)
    assert "does not know our cluster-bus-secret" in str(res["connector"])
    assert isinstance(res["acceptor"], BusAuthError)


def test_acceptor_refuses_a_peer_without_handshake():
    async def main():
        left, right = trio.testing.memory_stream_pair()
        await left.send_all(b"RCmb" + b"\0" * 100)  # a Redis bus frame instead of the hello
        with pytest.raises(BusAuthError, match="did not start the cluster bus secret handshake"):
            await accept_handshake(right, b"secret")

    trio.run(main)


def test_acceptor_refuses_a_replayed_proof():
    """A hello and proof recorded from one good handshake do not open another link (fresh nonces)."""

    async def main():
        c_side, p1 = trio.testing.memory_stream_pair()
        p2, a_side = trio.testing.memory_stream_pair()
        sent: list[bytes] = []

        async def pump(src, dst, log):
            while True:
                data = await src.receive_some(1000)
                if not data:
                    return
                log.append(data)
                await dst.send_all(data)

        with trio.fail_after(5):
            async with trio.open_nursery() as proxy:
                proxy.start_soon(pump, p1, p2, sent)
                proxy.start_soon(pump, p2, p1, [])
                async with trio.open_nursery() as both:
                    both.start_soon(connect_handshake, c_side, b"k")
                    both.start_soon(accept_handshake, a_side, b"k")
                proxy.cancel_scope.cancel()
            hello, proof = sent[0], b"".join(sent[1:])
            assert len(hello) == 37 and len(proof) == 37
            left, right = trio.testing.memory_stream_pair()
            await left.send_all(hello)

            async def drain_and_prove():
                await left.receive_some(1000)  # the new challenge
                await left.send_all(proof)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(drain_and_prove)
                with pytest.raises(BusAuthError, match="wrong cluster-bus-secret"):
                    await accept_handshake(right, b"k")

    trio.run(main)


# ------------------------------------------------------------------ real nodes


def _start(*extra: str) -> ServerProcess:
    proc = ServerProcess("shoal", "--cluster-enabled", "yes", "--cluster-node-timeout", NT, *extra,
                         port=free_cluster_port())
    return proc.start(timeout=30)


def _nodes(port: int) -> list[list[str]]:
    with redis.Redis(port=port, decode_responses=True) as r:
        return [line.split() for line in r.execute_command("CLUSTER", "NODES").splitlines() if line.strip()]


def _connected_ids(port: int) -> set[str]:
    return {row[0] for row in _nodes(port) if row[7] == "connected" and "handshake" not in row[2]
            and "fail" not in row[2]}


def _known_ids(port: int) -> list[str]:
    """The nodes a member knows, past the handshake (a MEET leaves a handshake record until it expires)."""
    return sorted(row[0] for row in _nodes(port) if "handshake" not in row[2])


def _meet(port: int, other: int) -> None:
    with redis.Redis(port=port) as r:
        assert r.execute_command("CLUSTER", "MEET", "127.0.0.1", other) in (b"OK", "OK", True)


def _wait(pred, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError("timed out waiting for " + what)


@pytest.fixture(scope="module")
def secret_cluster():
    nodes = []
    try:
        for _ in range(3):
            nodes.append(_start("--cluster-bus-secret", "correct horse battery staple"))
        _meet(nodes[0].port, nodes[1].port)
        _meet(nodes[0].port, nodes[2].port)
        _wait(lambda: all(len(_connected_ids(n.port)) == 3 for n in nodes), 20, "the secret cluster to form")
        yield nodes
    finally:
        for n in nodes:
            n.stop()


def test_nodes_with_the_same_secret_form_a_cluster(secret_cluster):
    ids = [_nodes(n.port) for n in secret_cluster]
    for view in ids:
        assert len(view) == 3
        assert all(row[7] == "connected" for row in view)
    # Shoal-only, so hidden from CONFIG GET * (which lists Redis's directives); readable by name.
    with redis.Redis(port=secret_cluster[0].port, decode_responses=True) as r:
        assert "cluster-bus-secret" not in r.config_get("*")
        assert r.config_get("cluster-bus-secret") == {"cluster-bus-secret": "correct horse battery staple"}


@pytest.mark.parametrize("intruder_args", [("--cluster-bus-secret", "wrong secret"), ()], ids=["wrong", "none"])
def test_node_without_the_secret_cannot_join(secret_cluster, intruder_args):
    members = secret_cluster
    _wait(lambda: all(len(_connected_ids(n.port)) == 3 for n in members), 20, "the members fully connected")
    before = [_known_ids(n.port) for n in members]  # who each member knows
    intruder = _start(*intruder_args)
    try:
        with redis.Redis(port=intruder.port, decode_responses=True) as r:
            intruder_id = r.execute_command("CLUSTER", "MYID")
        # Both directions: a member MEETs the intruder, the intruder MEETs another member.
        _meet(members[0].port, intruder.port)
        _meet(intruder.port, members[1].port)
        # member 1 accepted the intruder's link, member 0 connected to the intruder.
        if intruder_args:
            needles = ["Refused a cluster bus link from 127.0.0.1:", "does not know our cluster-bus-secret"]
            _wait(lambda: all(n in members[1].log() for n in needles), 10, "member 1's refusal")
            _wait(lambda: "Cluster bus link to 127.0.0.1:%d refused: the peer does not know our cluster-bus-secret"
                  % (intruder.port + 10000) in members[0].log(), 10, "member 0's refusal")
            _wait(lambda: "does not know our cluster-bus-secret" in intruder.log(), 10, "the intruder's refusal")
        else:
            _wait(lambda: "did not start the cluster bus secret handshake" in members[1].log(), 10,
                  "member 1's refusal")
            _wait(lambda: "Cluster bus link to 127.0.0.1:%d refused" % (intruder.port + 10000)
                  in members[0].log(), 10, "member 0's refusal")
        time.sleep(1.0)  # several gossip rounds
        after = [_known_ids(n.port) for n in members]
        assert after == before  # nobody learnt of the intruder, nobody was forgotten
        for n in members:
            assert intruder_id not in {row[0] for row in _nodes(n.port)}
        # The intruder learnt nothing about the members.
        assert _connected_ids(intruder.port) == {intruder_id}
        assert {row[0] for row in _nodes(intruder.port) if "handshake" not in row[2]} == {intruder_id}
    finally:
        intruder.stop()
    # The members are still a healthy cluster of three (a link re-dialled meanwhile may need a moment).
    _wait(lambda: all(len(_connected_ids(n.port)) == 3 for n in members), 20, "the members fully connected")
