"""Cache-aside: read through the cache, fill it on a miss with a TTL, invalidate on write."""

from __future__ import annotations

import json
import time


class SlowDatabase:
    def __init__(self):
        self.rows = {1: {"id": 1, "name": "ada"}, 2: {"id": 2, "name": "grace"}}
        self.reads = 0

    def load(self, user_id):
        self.reads += 1
        return self.rows.get(user_id)

    def save(self, row):
        self.rows[row["id"]] = row


def get_user(cache, db, user_id, ttl=60):
    key = f"user:{user_id}"
    cached = cache.get(key)
    if cached is not None:
        return json.loads(cached)
    row = db.load(user_id)
    if row is not None:
        cache.set(key, json.dumps(row), ex=ttl)
    return row


def update_user(cache, db, row):
    db.save(row)
    cache.delete(f"user:{row['id']}")


def test_miss_then_hit(r):
    db = SlowDatabase()
    assert get_user(r, db, 1) == {"id": 1, "name": "ada"}
    assert get_user(r, db, 1) == {"id": 1, "name": "ada"}
    assert db.reads == 1
    assert 0 < r.ttl("user:1") <= 60


def test_missing_rows_are_not_cached(r):
    db = SlowDatabase()
    assert get_user(r, db, 99) is None
    assert get_user(r, db, 99) is None
    assert db.reads == 2
    assert r.exists("user:99") == 0


def test_write_invalidates(r):
    db = SlowDatabase()
    get_user(r, db, 2)
    update_user(r, db, {"id": 2, "name": "grace hopper"})
    assert get_user(r, db, 2)["name"] == "grace hopper"
    assert db.reads == 2


def test_entries_expire(r):
    db = SlowDatabase()
    key = "user:1"
    r.set(key, json.dumps({"id": 1, "name": "stale"}), px=50)
    time.sleep(0.12)
    assert get_user(r, db, 1)["name"] == "ada"
    assert db.reads == 1


def test_bulk_warmup_with_pipeline(r):
    with r.pipeline(transaction=False) as pipe:
        for i in range(200):
            pipe.set(f"item:{i}", json.dumps({"i": i}), ex=300)
        pipe.execute()
    values = r.mget([f"item:{i}" for i in range(0, 200, 7)])
    assert [json.loads(v)["i"] for v in values] == list(range(0, 200, 7))
    info = r.info("keyspace")
    assert info["db0"]["keys"] == 200 and info["db0"]["expires"] == 200
