"""Event streams with consumer groups: producers, two consumers, acks, and recovering a dead consumer's work."""

from __future__ import annotations


def test_consumer_group_flow(r):
    for i in range(6):
        r.xadd("orders", {"order": i, "amount": i * 10}, id=f"{i + 1}-0")
    r.xgroup_create("orders", "billing", id="0")

    batch_a = r.xreadgroup("billing", "worker-a", {"orders": ">"}, count=4)
    batch_b = r.xreadgroup("billing", "worker-b", {"orders": ">"}, count=4)
    ids_a = [eid for eid, _ in batch_a[0][1]]
    ids_b = [eid for eid, _ in batch_b[0][1]]
    assert ids_a == ["1-0", "2-0", "3-0", "4-0"] and ids_b == ["5-0", "6-0"]

    assert r.xack("orders", "billing", *ids_b) == 2
    summary = r.xpending("orders", "billing")
    assert summary["pending"] == 4
    assert summary["consumers"] == [{"name": "worker-a", "pending": 4}]

    # worker-a dies; worker-b claims its entries.
    claimed = r.xautoclaim("orders", "billing", "worker-b", min_idle_time=0, start_id="0-0", count=10)
    assert [eid for eid, _ in claimed[1]] == ids_a
    assert r.xack("orders", "billing", *ids_a) == 4
    assert r.xpending("orders", "billing")["pending"] == 0
    groups = r.xinfo_groups("orders")
    assert groups[0]["name"] == "billing" and groups[0]["pending"] == 0


def test_stream_trimming_and_ranges(r):
    for i in range(50):
        r.xadd("log", {"n": i}, maxlen=20, approximate=False)
    assert r.xlen("log") == 20
    entries = r.xrange("log", count=3)
    assert [fields["n"] for _, fields in entries] == ["30", "31", "32"]
    last = r.xrevrange("log", count=1)[0][1]
    assert last == {"n": "49"}


def test_blocking_consumer_is_woken(r, server_port):
    import threading
    import time

    import redis

    r.xgroup_create("jobs", "workers", id="$", mkstream=True)
    result = {}

    def consume():
        c = redis.Redis(port=server_port, decode_responses=True)
        try:
            result["got"] = c.xreadgroup("workers", "w1", {"jobs": ">"}, count=1, block=5000)
        finally:
            c.close()

    t = threading.Thread(target=consume)
    t.start()
    deadline = time.monotonic() + 5
    while r.info("clients")["blocked_clients"] == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    r.xadd("jobs", {"task": "resize"}, id="7-1")
    t.join(10)
    assert result["got"] == [["jobs", [("7-1", {"task": "resize"})]]]
