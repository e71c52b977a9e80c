"""Rate limiters: a fixed window with INCR+EXPIRE in MULTI, and a sliding window in Lua."""

from __future__ import annotations

import time

SLIDING = """
local key, now, window, limit = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
if redis.call('ZCARD', key) >= limit then
  return 0
end
redis.call('ZADD', key, now, ARGV[4])
redis.call('PEXPIRE', key, window)
return 1
"""


def fixed_window_allow(r, user, limit, window_s=60):
    key = f"rl:{user}:{int(time.time() // window_s)}"
    with r.pipeline() as pipe:
        pipe.incr(key)
        pipe.expire(key, window_s)
        count, _ = pipe.execute()
    return count <= limit


def test_fixed_window(r):
    results = [fixed_window_allow(r, "ada", 5) for _ in range(8)]
    assert results == [True] * 5 + [False] * 3
    assert all(fixed_window_allow(r, "grace", 5) for _ in range(5))


def test_sliding_window_script(r):
    allow = r.register_script(SLIDING)
    now = 1_000_000
    verdicts = [allow(keys=["rl:sliding:ada"], args=[now + i, 1000, 3, f"req{i}"]) for i in range(5)]
    assert verdicts == [1, 1, 1, 0, 0]
    # Once the window has moved past the first requests, more are allowed.
    assert allow(keys=["rl:sliding:ada"], args=[now + 1001, 1000, 3, "later"]) == 1
    assert r.zcard("rl:sliding:ada") == 2  # req2 and "later": req0 and req1 slid out
    assert 0 < r.pttl("rl:sliding:ada") <= 1000


def test_script_cache_survives_between_clients(r, server_port):
    import redis

    sha = r.script_load(SLIDING)
    other = redis.Redis(port=server_port)
    try:
        assert other.script_exists(sha) == [True]
        assert other.evalsha(sha, 1, "rl:x", 1, 1000, 1, "a") == 1
        assert other.evalsha(sha, 1, "rl:x", 2, 1000, 1, "b") == 0
    finally:
        other.close()
