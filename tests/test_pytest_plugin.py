"""The ``shoal_cluster`` fixture users get from Shoal's pytest plugin, used the way the README shows."""

from __future__ import annotations

import pytest
import redis


@pytest.mark.shoal_cluster(primaries=3, replicas=0, node_timeout=2000)
def test_fixture_cluster_serves_reshards_and_survives_a_restart(shoal_cluster):
    client = shoal_cluster.client()
    for i in range(200):
        client.set(f"order:{i}", i)
    owner = shoal_cluster.primary_for("order:7")
    target = next(i for i in range(3) if i != owner)
    slot = client.keyslot("order:7")
    moved = shoal_cluster.reshard([slot], to=target)
    assert moved >= 1
    shoal_cluster.wait_stable()
    assert shoal_cluster.primary_for("order:7") == target
    assert client.get("order:7") == b"7"  # the client followed MOVED
    # A paused primary: requests to it time out; after resume it serves again.
    shoal_cluster.pause(target)
    with pytest.raises(redis.exceptions.RedisError):
        redis.Redis(host=shoal_cluster.nodes[target].host, port=shoal_cluster.nodes[target].port,
                    socket_timeout=0.3).get("order:7")
    shoal_cluster.resume(target)
    shoal_cluster.wait_stable()
    assert client.get("order:7") == b"7"
    # Restart with persistence off: the node comes back from nodes.conf, empty.
    shoal_cluster.restart(target)
    shoal_cluster.wait_stable()
    assert redis.Redis(host=shoal_cluster.nodes[target].host, port=shoal_cluster.nodes[target].port).dbsize() == 0


def test_fixture_defaults(shoal_cluster):
    assert len(shoal_cluster.nodes) == 6  # 3 primaries + 1 replica each
    assert sorted(shoal_cluster.role(i) for i in range(6)) == ["master"] * 3 + ["slave"] * 3
    assert len({n.host for n in shoal_cluster.nodes}) == 6  # one loopback address per node


_PARTITION_SCRIPT = """
import sys, time
sys.path.insert(0, sys.argv[1])
from cluster.pytest_plugin import ShoalCluster
from cluster.resp import RespClient
c = ShoalCluster(primaries=3, replicas=0, node_timeout=1000).start()
try:
    def state(i):
        with RespClient(c.nodes[i].host, c.nodes[i].port) as r:
            return r.call("CLUSTER", "INFO").decode().split("cluster_state:")[1].split()[0]
    c.partition([[0], [1, 2]])
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not all(state(i) == "fail" for i in range(3)):
        time.sleep(0.1)
    print("during", state(0), state(1), state(2))
    c.heal()
    c.wait_stable()
    print("after", state(0), state(1), state(2))
finally:
    c.stop()
"""


def test_partition_and_heal_inside_a_private_network_namespace():
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    from cluster.netns import in_private_netns

    if shutil.which("nft") is None or shutil.which("unshare") is None:
        pytest.skip("needs nft and unshare")  # .ci/run installs nftables, so CI runs this
    assert not in_private_netns()  # pytest itself runs in the host's namespace: rules must not go there
    repo = str(Path(__file__).resolve().parent.parent)
    done = subprocess.run(["unshare", "--user", "--map-root-user", "--net", sys.executable, "-c", _PARTITION_SCRIPT,
                           repo], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    # The lone primary and the majority both lost full coverage while cut; all ok once healed.
    assert "during fail fail fail" in done.stdout, done.stdout
    assert "after ok ok ok" in done.stdout, done.stdout
