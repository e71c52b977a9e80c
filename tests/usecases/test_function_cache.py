"""Function-result cache: memoise an expensive function in the cache, keyed by its arguments."""

from __future__ import annotations

import functools
import hashlib
import pickle


def cached(r, ttl=30):
    def decorate(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            digest = hashlib.sha1(pickle.dumps((args, sorted(kwargs.items())))).hexdigest()
            key = f"fn:{fn.__name__}:{digest}"
            hit = r.get(key)
            if hit is not None:
                return pickle.loads(hit)
            value = fn(*args, **kwargs)
            r.set(key, pickle.dumps(value), ex=ttl)
            return value

        return wrapper

    return decorate


def test_memoised_results(server_port):
    import redis

    r = redis.Redis(port=server_port)  # binary values: no decoding
    calls = []

    @cached(r)
    def slow_square(x, *, offset=0):
        calls.append(x)
        return {"value": x * x + offset, "blob": bytes(range(256))}

    try:
        assert slow_square(12)["value"] == 144
        assert slow_square(12)["value"] == 144
        assert slow_square(12, offset=1)["value"] == 145
        assert slow_square(3)["blob"] == bytes(range(256))
        assert calls == [12, 12, 3]
        keys = list(r.scan_iter("fn:slow_square:*"))
        assert len(keys) == 3
        assert all(0 < r.ttl(k) <= 30 for k in keys)
        # Invalidate everything for this function.
        assert r.delete(*keys) == 3
        slow_square(12)
        assert calls == [12, 12, 3, 12]
    finally:
        r.close()


def test_cache_stats_visible_in_info(r):
    r.config_resetstat()
    r.get("fn:missing")
    r.set("fn:present", "1")
    r.get("fn:present")
    stats = r.info("stats")
    assert stats["keyspace_hits"] == 1
    assert stats["keyspace_misses"] == 1
