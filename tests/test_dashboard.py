"""``shoal dashboard`` against a real cluster: its JSON, its events, and the page as headless Chromium draws it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.servers import free_port
from tests.test_cluster_mode import cluster_info, start_cluster_nodes, wait_for

pytestmark = pytest.mark.skipif(shutil.which("redis-cli") is None, reason="needs redis-cli (redis-tools)")


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.fixture(scope="module")
def cluster_and_dashboard():
    nodes = start_cluster_nodes(3)
    dashboard = None
    try:
        addresses = [f"127.0.0.1:{n.port}" for n in nodes]
        done = subprocess.run(["redis-cli", "--cluster", "create", *addresses, "--cluster-yes"],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
        wait_for(lambda: all(cluster_info(n.port)["cluster_state"] == "ok" for n in nodes), 30, "cluster ok")
        port = free_port()
        dashboard = subprocess.Popen([sys.executable, "-m", "cluster.cli", "dashboard", "--cluster", addresses[0],
                                      "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: urllib.request.urlopen(url + "/api/state", timeout=2).status == 200, 30, "the dashboard")
        yield nodes, url
    finally:
        if dashboard is not None:
            dashboard.terminate()
            dashboard.wait(10)
        for node in nodes:
            node.stop()


def _state(url: str) -> dict:
    with urllib.request.urlopen(url + "/api/state", timeout=5) as response:
        return json.loads(response.read())


def test_state_json_describes_the_cluster(cluster_and_dashboard):
    nodes, url = cluster_and_dashboard
    state = _state(url)
    assert state["reachable"] and state["covered"]
    assert sorted(n["slots"] for n in state["nodes"]) == [5461, 5461, 5462]
    assert {n["role"] for n in state["nodes"]} == {"primary"}
    assert all(n["health"] == "ok" and n["memory"] > 0 for n in state["nodes"])
    assert len(state["slots"]) == 16384 and len(set(state["slots"])) == 3  # one colour per owner
    # ops/s appears from the second poll on
    wait_for(lambda: all(n["ops"] is not None for n in _state(url)["nodes"]), 10, "ops/s figures")


def test_events_record_a_migration_and_a_failed_node(cluster_and_dashboard):
    nodes, url = cluster_and_dashboard
    import redis

    clients = [redis.Redis(port=n.port) for n in nodes]
    ids = [c.execute_command("CLUSTER", "MYID").decode() for c in clients]
    clients[1].execute_command("CLUSTER", "SETSLOT", 0, "IMPORTING", ids[0])
    clients[0].execute_command("CLUSTER", "SETSLOT", 0, "MIGRATING", ids[1])
    wait_for(lambda: 0 in _state(url)["migrating"], 10, "the open slot to show")
    for c in clients[:2]:
        c.execute_command("CLUSTER", "SETSLOT", 0, "STABLE")
    wait_for(lambda: any("migration finished" in e["text"] for e in _state(url)["events"]), 10, "the event")
    assert any("migration started" in e["text"] for e in _state(url)["events"])


def test_the_page_renders_in_headless_chromium(cluster_and_dashboard, tmp_path):
    browser = _chromium()
    if browser is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium); .ci/run installs it")
    _, url = cluster_and_dashboard
    shot = tmp_path / "dashboard.png"
    env = dict(os.environ, HOME=str(tmp_path))
    done = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           f"--screenshot={shot}", "--window-size=1100,700", "--virtual-time-budget=4000",
                           url + "/"], capture_output=True, text=True, timeout=120, env=env)
    assert shot.exists(), done.stderr[-2000:]
    import matplotlib.image

    pixels = matplotlib.image.imread(str(shot))
    colours = {tuple(int(round(v * 255)) for v in px[:3]) for row in pixels[::4] for px in row[::4]}
    # The slot map shows each owner's colour from the palette (the first three entries).
    for wanted in ((0x1F, 0x77, 0xB4), (0xFF, 0x7F, 0x0E), (0x2C, 0xA0, 0x2C)):
        assert wanted in colours, f"colour {wanted} missing from the screenshot"
    time.sleep(0)  # keep the fixture's dashboard alive until here
