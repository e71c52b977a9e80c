"""Session store: a hash per session with a sliding expiry."""

from __future__ import annotations

import uuid

SESSION_TTL = 1800


def create_session(r, user, **attrs):
    sid = uuid.uuid4().hex
    key = f"session:{sid}"
    with r.pipeline() as pipe:  # MULTI/EXEC: the session never exists without its TTL
        pipe.hset(key, mapping={"user": user, "hits": 0, **attrs})
        pipe.expire(key, SESSION_TTL)
        pipe.execute()
    return sid


def touch_session(r, sid):
    key = f"session:{sid}"
    with r.pipeline() as pipe:
        pipe.hincrby(key, "hits", 1)
        pipe.expire(key, SESSION_TTL)
        pipe.hgetall(key)
        hits, _, data = pipe.execute()
    return data


def test_create_read_and_slide(r):
    sid = create_session(r, "ada", theme="dark")
    data = touch_session(r, sid)
    assert data == {"user": "ada", "hits": "1", "theme": "dark"}
    r.expire(f"session:{sid}", 5)
    touch_session(r, sid)
    assert r.ttl(f"session:{sid}") > 5
    assert r.hget(f"session:{sid}", "hits") == "2"


def test_logout_and_field_updates(r):
    sid = create_session(r, "grace")
    key = f"session:{sid}"
    assert r.hsetnx(key, "csrf", "tok1") == 1
    assert r.hsetnx(key, "csrf", "tok2") == 0
    assert r.hmget(key, ["user", "csrf", "missing"]) == ["grace", "tok1", None]
    assert r.hdel(key, "csrf") == 1
    assert r.hexists(key, "csrf") is False
    assert r.delete(key) == 1
    assert r.hgetall(key) == {}


def test_many_sessions_scan(r):
    sids = [create_session(r, f"user{i}") for i in range(50)]
    found = set(r.scan_iter(match="session:*", count=10))
    assert found == {f"session:{s}" for s in sids}
    assert all(r.type(k) == "hash" for k in list(found)[:5])


def test_resp3_session(r3):
    sid = create_session(r3, "linus", lang="c")
    assert r3.hgetall(f"session:{sid}") == {"user": "linus", "hits": "0", "lang": "c"}
