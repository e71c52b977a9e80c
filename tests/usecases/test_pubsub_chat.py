"""Pub/sub fan-out: several subscribers, channel and pattern subscriptions, a chat room."""

from __future__ import annotations

import time

import redis


def drain(pubsub, want, timeout=5.0):
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        msg = pubsub.get_message(timeout=0.1)
        if msg and msg["type"] in ("message", "pmessage"):
            got.append((msg["type"], msg.get("pattern"), msg["channel"], msg["data"]))
    return got


def test_room_fan_out(r, server_port):
    subscribers = [redis.Redis(port=server_port, decode_responses=True).pubsub() for _ in range(3)]
    try:
        for p in subscribers:
            p.subscribe("room:1")
            assert p.get_message(timeout=2)["type"] == "subscribe"
        assert r.publish("room:1", "hello") == 3
        assert r.publish("room:2", "nobody") == 0
        for p in subscribers:
            assert drain(p, 1) == [("message", None, "room:1", "hello")]
    finally:
        for p in subscribers:
            p.close()


def test_pattern_and_channel(r, server_port):
    p = redis.Redis(port=server_port, decode_responses=True).pubsub()
    try:
        p.psubscribe("room:*")
        p.subscribe("room:1")
        for _ in range(2):
            p.get_message(timeout=2)
        assert r.publish("room:1", "both") == 2
        got = drain(p, 2)
        assert sorted(got, key=str) == sorted(
            [("pmessage", "room:*", "room:1", "both"), ("message", None, "room:1", "both")], key=str
        )
        assert r.pubsub_numsub("room:1") == [("room:1", 1)]
        assert r.pubsub_numpat() == 1
        p.unsubscribe("room:1")
        p.punsubscribe("room:*")
    finally:
        p.close()


def test_listener_thread(r, server_port):
    received = []
    client = redis.Redis(port=server_port, decode_responses=True)
    p = client.pubsub()
    p.subscribe(**{"events": lambda m: received.append(m["data"])})
    thread = p.run_in_thread(sleep_time=0.01)
    try:
        deadline = time.monotonic() + 5
        while r.pubsub_numsub("events")[0][1] == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        for i in range(20):
            r.publish("events", f"e{i}")
        while len(received) < 20 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert received == [f"e{i}" for i in range(20)]
    finally:
        thread.stop()
        thread.join(5)
        p.close()
        client.close()
