"""Distributed lock: SET NX PX plus a compare-and-delete script, and redis-py's Lock under contention."""

from __future__ import annotations

import threading
import uuid

import redis

RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def test_acquire_release(r):
    release = r.register_script(RELEASE)
    me, other = uuid.uuid4().hex, uuid.uuid4().hex
    assert r.set("lock:res", me, nx=True, px=10_000) is True
    assert r.set("lock:res", other, nx=True, px=10_000) is None
    assert release(keys=["lock:res"], args=[other]) == 0  # not the owner: no effect
    assert r.get("lock:res") == me
    assert release(keys=["lock:res"], args=[me]) == 1
    assert r.set("lock:res", other, nx=True, px=10_000) is True


def test_lock_expires(r):
    import time

    assert r.set("lock:short", "a", nx=True, px=50)
    time.sleep(0.12)
    assert r.set("lock:short", "b", nx=True, px=50) is True


def test_redis_py_lock_mutual_exclusion(r, server_port):
    """Threads increment a plain counter under the lock: no update is lost."""
    counter = {"value": 0, "inside": 0, "max_inside": 0}
    errors = []

    def worker():
        client = redis.Redis(port=server_port)
        try:
            for _ in range(15):
                with client.lock("lock:counter", timeout=5, blocking_timeout=10, sleep=0.001):
                    counter["inside"] += 1
                    counter["max_inside"] = max(counter["max_inside"], counter["inside"])
                    value = counter["value"]
                    counter["value"] = value + 1
                    counter["inside"] -= 1
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            client.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert counter["value"] == 60
    assert counter["max_inside"] == 1
    assert r.exists("lock:counter") == 0


def test_lock_extend_and_owned(r):
    lock = r.lock("lock:ext", timeout=1)
    assert lock.acquire(blocking=False)
    assert lock.owned()
    assert lock.extend(10)
    assert r.pttl("lock:ext") > 1000
    lock.release()
    assert not lock.locked()
