"""Leaderboard: sorted set of scores, ranks, pages and neighbourhoods."""

from __future__ import annotations


def test_ranking(r):
    scores = {"ada": 3100, "grace": 2800, "linus": 4100, "ken": 2800, "barbara": 1900}
    r.zadd("board", scores)
    assert r.zrevrange("board", 0, 2, withscores=True) == [("linus", 4100.0), ("ada", 3100.0), ("ken", 2800.0)]
    assert r.zrevrank("board", "grace") == 3
    assert r.zscore("board", "ada") == 3100.0
    assert r.zcount("board", 2000, 3500) == 3
    assert r.zcard("board") == 5


def test_score_updates_and_neighbours(r):
    r.zadd("board", {f"p{i}": i * 10 for i in range(100)})
    assert r.zincrby("board", 1000, "p5") == 1050.0
    assert r.zrevrank("board", "p5") == 0
    rank = r.zrevrank("board", "p50")
    around = r.zrevrange("board", max(rank - 2, 0), rank + 2)
    assert around == ["p52", "p51", "p50", "p49", "p48"]
    assert r.zadd("board", {"p1": 5}, gt=True) == 0
    assert r.zscore("board", "p1") == 10.0
    assert r.zadd("board", {"p1": 15}, gt=True, ch=True) == 1


def test_pages_and_trimming(r):
    r.zadd("board", {f"p{i}": i for i in range(1, 31)})
    page2 = r.zrange("board", 10, 19, desc=True, withscores=True)
    assert [m for m, _ in page2] == [f"p{i}" for i in range(20, 10, -1)]
    assert r.zremrangebyrank("board", 0, -11) == 20  # keep the top ten
    assert r.zrange("board", 0, -1) == [f"p{i}" for i in range(21, 31)]
    assert r.zpopmax("board") == [("p30", 30.0)]


def test_weekly_union(r):
    r.zadd("week1", {"ada": 10, "ken": 5})
    r.zadd("week2", {"ada": 1, "grace": 7})
    assert r.zunionstore("total", ["week1", "week2"]) == 3
    assert r.zrevrange("total", 0, -1, withscores=True) == [("ada", 11.0), ("grace", 7.0), ("ken", 5.0)]
