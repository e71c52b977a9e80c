"""RDB persistence of a running node: SAVE, BGSAVE, save points, SHUTDOWN, loading at start-up.

Real restarts of shoal-server processes: a dataset with every type (built
with commands) must come back identical -- compared with DEBUG DIGEST, which
is Redis's algorithm, and key by key -- after SAVE, BGSAVE, the shutdown save
and the save points. Files go both ways between Shoal and a real
redis-server 7.0. A bad file stops start-up with one clear line and is left
untouched. Waits poll LASTSAVE/INFO; nothing asserts on durations.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import time

import pytest

from tests.resp_client import RawClient, encode_command, parse
from tests.servers import REPO, ServerProcess, shoal_server_cmd

DEBUG = ("--enable-debug-command", "yes")
LIBRARY = "#!lua name=persistlib\nredis.register_function('persistfn', function(keys, args) return 42 end)"


# ------------------------------------------------------------------ helpers


def _noise(n: int) -> str:
    """``n`` hex digits that LZF cannot shrink much, the same on every run."""
    out = ""
    while len(out) < n:
        out += hashlib.sha256(str(len(out)).encode()).hexdigest()
    return out[:n]


def dataset_commands(variant: int = 0) -> list[tuple]:
    """Commands building one key of each type and encoding Redis 7.0 has, in three databases."""
    v = str(variant)
    cmds: list[tuple] = [
        ("SET", "str:int", "12345" + v), ("SET", "str:neg", "-7"), ("SET", "str:raw", "hello world " + v),
        ("SET", "str:long", "abc" * 200 + v), ("SET", "str:bin", bytes(range(256)) + v.encode()),
        ("SET", "str:ttl", "soon", "PX", "3600000"), ("SET", "str:big", _noise(3000) + v),
        ("RPUSH", "list:small", "a", "b", "c", "1", "2", v),
        ("RPUSH", "list:big", *[f"item-{i}-{v}" for i in range(700)]),
        ("SADD", "set:int", "1", "2", "3", "-5", "100000", v),
        ("SADD", "set:str", "a", "b", "c" + v),
        ("SADD", "set:big", *[str(i) for i in range(600)], "x" + v),
        ("ZADD", "zset:small", "1", "a", "2.5", "b", "-inf", "c", "inf", "d", "0.1", v),
        ("ZADD", "zset:big", *[x for i in range(200) for x in (str(i / 3), f"m{i}{v}")]),
        ("HSET", "hash:small", "f", "v", "n", "1", "x", v),
        ("HSET", "hash:big", *[x for i in range(300) for x in (f"f{i}", f"v{i}{v}")]),
        ("HSET", "hash:longval", "f", "y" * 100 + v),
        ("EXPIRE", "hash:small", "3600"),
        ("PFADD", "hll", "a", "b", "c", "d", v),
        ("SETBIT", "bits", "100", "1"),
    ]
    for i in range(25):
        cmds.append(("XADD", "stream", f"{i + 1}-{variant + 1}", "field", f"value{i}", "n", str(i)))
    cmds += [
        ("XGROUP", "CREATE", "stream", "g1", "0"),
        ("XREADGROUP", "GROUP", "g1", "alice", "COUNT", "5", "STREAMS", "stream", ">"),
        ("XREADGROUP", "GROUP", "g1", "bob", "COUNT", "3", "STREAMS", "stream", ">"),
        ("XACK", "stream", "g1", f"2-{variant + 1}"),
        ("XGROUP", "CREATE", "stream", "g2", "$"),
        ("XDEL", "stream", f"10-{variant + 1}"),
        ("XADD", "stream:empty", "1-1", "a", "b"), ("XDEL", "stream:empty", "1-1"),
        ("SELECT", "1"), ("SET", "db1:key", "one" + v), ("RPUSH", "db1:list", "x", "y"),
        ("SET", "db1:ttl", "t", "EX", "5000"),
        ("SELECT", "5"), ("ZADD", "db5:zset", "1", "x", "2", "y" + v),
        ("SELECT", "0"),
    ]
    return cmds


def build_dataset(c: RawClient, variant: int = 0, *, functions: bool = True) -> None:
    replies = c.pipeline(dataset_commands(variant))
    errors = [r for r in replies if r.startswith(b"-")]
    assert not errors, errors
    if functions:
        assert c.call("FUNCTION", "LOAD", "REPLACE", LIBRARY) == b"$10\r\npersistlib\r\n"


def dataset_view(c: RawClient, *, encodings: bool = False, stream_details: bool = True) -> dict:
    """Everything a reload must preserve: the digest, and per key its type, value digest and TTL.

    ``encodings`` adds OBJECT ENCODING, which a reload may change (Redis loads
    a short string as embstr whatever it was): compare those only between two
    servers that both loaded the same file. ``stream_details`` adds XINFO
    STREAM FULL (groups, PEL, consumers), whose times only match for the
    same data, not for the same commands run on two servers.
    """
    libraries = sorted(parse(c.call("FUNCTION", "LIST", "WITHCODE")), key=lambda lib: lib[1])  # by name
    view = {"digest": parse(c.call("DEBUG", "DIGEST")), "functions": libraries}
    for db in range(16):
        assert c.call("SELECT", str(db)) == b"+OK\r\n"
        keys = sorted(parse(c.call("KEYS", "*")))
        for key in keys:
            pttl = parse(c.call("PTTL", key))
            entry = (
                parse(c.call("TYPE", key)),
                parse(c.call("DEBUG", "DIGEST-VALUE", key)),
                "volatile" if pttl > 0 else pttl,
            )
            if encodings:
                entry += (parse(c.call("OBJECT", "ENCODING", key)),)
            if entry[0] == "stream" and stream_details:
                entry += (c.call("XINFO", "STREAM", key, "FULL"),)
            view[(db, key)] = entry
    c.call("SELECT", "0")
    return view


def info(c: RawClient, section: str = "persistence") -> dict[str, str]:
    text = parse(c.call("INFO", section))
    text = text.decode() if isinstance(text, bytes) else text
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


def wait_for(predicate, timeout: float = 15.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def wait_bgsave_done(c: RawClient) -> dict[str, str]:
    return wait_for(lambda: (lambda i: i if i["rdb_bgsave_in_progress"] == "0" else None)(info(c)),
                    what="the background save to end")


def file_digest(path: str) -> str:
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


def restart(proc: ServerProcess) -> ServerProcess:
    proc.stop(keep_dir=True)
    return proc.start()


def run_shoal_once(directory: str, *args: str) -> subprocess.CompletedProcess:
    """Start shoal-server in ``directory`` expecting it to exit by itself (a start-up failure)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    log = os.path.join(directory, "once.log")
    if os.path.exists(log):
        os.unlink(log)
    return subprocess.run(
        [*shoal_server_cmd(), "--port", "0", "--dir", directory, "--save", "", "--logfile", log, *args],
        cwd=directory, env=env, capture_output=True, timeout=30,
    )


@pytest.fixture
def shoal_server():
    proc = ServerProcess("shoal", *DEBUG).start()
    yield proc
    proc.stop()


# --------------------------------------------------------- SAVE / BGSAVE


def test_save_then_restart_keeps_every_type(shoal_server):
    with RawClient(shoal_server.port) as c:
        build_dataset(c)
        before = dataset_view(c)
        assert int(info(c)["rdb_changes_since_last_save"]) > 0
        saves = int(info(c)["rdb_saves"])
        assert c.call("SAVE") == b"+OK\r\n"
        after_save = info(c)
        assert after_save["rdb_changes_since_last_save"] == "0"
        assert int(after_save["rdb_saves"]) == saves + 1
        assert parse(c.call("LASTSAVE")) == int(after_save["rdb_last_save_time"])
        total = sum(int(v.split(",")[0].split("=")[1]) for k, v in info(c, "keyspace").items())
    assert os.path.exists(os.path.join(shoal_server.dir, "dump.rdb"))
    assert not [f for f in os.listdir(shoal_server.dir) if f.startswith("temp-")]
    restart(shoal_server)
    with RawClient(shoal_server.port) as c:
        assert dataset_view(c) == before
        assert parse(c.call("FCALL", "persistfn", "0")) == 42
        loaded = info(c)
        assert loaded["rdb_last_load_keys_loaded"] == str(total)
        assert loaded["rdb_last_load_keys_expired"] == "0"
        assert loaded["rdb_changes_since_last_save"] == "0"
    log = shoal_server.log()
    assert "Loading RDB produced by version 7.0.15" in log
    assert re.search(r"RDB age \d+ seconds", log)
    assert re.search(r"RDB memory usage when created [\d.]+ Mb", log)
    assert f"Done loading RDB, keys loaded: {total}, keys expired: 0." in log
    assert re.search(r"DB loaded from disk: \d+\.\d{3} seconds", log)


def test_bgsave_then_restart_and_log_lines(shoal_server):
    with RawClient(shoal_server.port) as c:
        build_dataset(c, 1)
        before = dataset_view(c)
        c.call("SET", "dirty-before", "x")
        assert c.call("BGSAVE") == b"+Background saving started\r\n"
        done = wait_bgsave_done(c)
        assert done["rdb_last_bgsave_status"] == "ok"
        assert done["rdb_changes_since_last_save"] == "0"
        assert int(done["rdb_last_bgsave_time_sec"]) >= 0
        assert done["rdb_current_bgsave_time_sec"] == "-1"
        assert int(done["rdb_last_cow_size"]) > 0
        stats = info(c, "stats")
        assert int(stats["total_forks"]) == 1 and int(stats["latest_fork_usec"]) > 0
        c.call("DEL", "dirty-before")
        before_del = before
    log = shoal_server.log()
    match = re.search(r"^(\d+):M .* \* Background saving started by pid (\d+)$", log, re.M)
    assert match, log
    parent, child = match.groups()
    assert re.search(rf"^{child}:C .* \* DB saved on disk$", log, re.M)
    assert re.search(rf"^{child}:C .* \* Fork CoW for RDB: current \d+ MB, peak \d+ MB, average \d+ MB$", log, re.M)
    assert re.search(rf"^{parent}:M .* \* Background saving terminated with success$", log, re.M)
    restart(shoal_server)
    with RawClient(shoal_server.port) as c:
        view = dataset_view(c)
        # The snapshot was taken with "dirty-before" present; it was deleted after.
        assert view.pop((0, b"dirty-before"))[0] == "string"
        assert view["functions"] == before_del["functions"]
        view["digest"] = before_del["digest"]
        assert view == before_del


def test_bgsave_is_a_point_in_time_snapshot_and_does_not_block(shoal_server):
    with RawClient(shoal_server.port) as c, RawClient(shoal_server.port) as other:
        c.pipeline([("SET", f"k{i}", f"old{i}") for i in range(400)])
        snapshot_digest = parse(c.call("DEBUG", "DIGEST"))
        # rdb-key-save-delay (microseconds per key, as Redis's own tests use) keeps the child busy a while.
        assert c.call("CONFIG", "SET", "rdb-key-save-delay", "2500") == b"+OK\r\n"
        assert c.call("BGSAVE") == b"+Background saving started\r\n"
        running = info(c)
        assert running["rdb_bgsave_in_progress"] == "1"
        assert running["current_save_keys_total"] == "400"
        assert int(running["rdb_current_bgsave_time_sec"]) >= 0
        assert c.call("BGSAVE") == b"-ERR Background save already in progress\r\n"
        assert c.call("BGSAVE", "SCHEDULE") == b"-ERR Background save already in progress\r\n"
        assert c.call("SAVE") == b"-ERR Background save already in progress\r\n"
        # The node keeps serving while the child writes: every write here lands after the fork.
        served = 0
        for i in range(400):
            assert other.call("SET", f"k{i}", f"new{i}") == b"+OK\r\n"
            served += 1
        assert other.call("SET", "late", "1") == b"+OK\r\n"
        assert info(c)["rdb_bgsave_in_progress"] == "1", "the save ended before the writes; raise the delay"
        assert served == 400
        done = wait_bgsave_done(c)
        assert done["rdb_last_bgsave_status"] == "ok"
        # Writes made during the save stay counted as unsaved.
        assert int(done["rdb_changes_since_last_save"]) == 401
        c.call("CONFIG", "SET", "rdb-key-save-delay", "0")
    restart(shoal_server)
    with RawClient(shoal_server.port) as c:
        assert parse(c.call("DEBUG", "DIGEST")) == snapshot_digest
        assert c.call("GET", "k7") == b"$4\r\nold7\r\n"
        assert c.call("EXISTS", "late") == b":0\r\n"


def test_bgsave_inside_multi_is_scheduled(shoal_server):
    with RawClient(shoal_server.port) as c:
        c.call("SET", "a", "1")
        saves = int(info(c)["rdb_saves"])
        assert c.pipeline([("MULTI",), ("BGSAVE",), ("EXEC",)]) == [
            b"+OK\r\n", b"+QUEUED\r\n", b"*1\r\n+Background saving scheduled\r\n"]
        # The cron starts it on its next tick.
        wait_for(lambda: int(info(c)["rdb_saves"]) == saves + 1, what="the scheduled BGSAVE")
        assert wait_bgsave_done(c)["rdb_changes_since_last_save"] == "0"
    assert "Background saving started by pid" in shoal_server.log()


@pytest.mark.parametrize("argv", [("BGSAVE", "foo"), ("BGSAVE", "SCHEDULE", "x"), ("SAVE", "x"), ("LASTSAVE", "x")])
def test_argument_errors_match_redis(differ, argv):
    differ.check(*argv)


def test_save_is_refused_inside_multi_like_redis(differ):
    for argv in (("MULTI",), ("SAVE",), ("SET", "k", "v"), ("EXEC",), ("GET", "k")):
        differ.check(*argv)


# ------------------------------------------------------------ save points


def test_save_point_fires_a_background_save(shoal_server):
    with RawClient(shoal_server.port) as c:
        assert c.call("CONFIG", "SET", "save", "1 1") == b"+OK\r\n"
        assert c.call("CONFIG", "GET", "save") == b"*2\r\n$4\r\nsave\r\n$3\r\n1 1\r\n"
        before = parse(c.call("LASTSAVE"))
        c.call("SET", "point", "fired")
        # Fires once more than 1 s has passed since the last save (start-up) and 1 change is pending.
        wait_for(lambda: parse(c.call("LASTSAVE")) > before and info(c)["rdb_bgsave_in_progress"] == "0",
                 timeout=20, what="the save point")
        assert info(c)["rdb_changes_since_last_save"] == "0"
        # No changes: no more saves.
        saves = info(c)["rdb_saves"]
        time.sleep(2.5)
        assert info(c)["rdb_saves"] == saves
    log = shoal_server.log()
    assert "1 changes in 1 seconds. Saving..." in log
    assert "Background saving terminated with success" in log
    restart(shoal_server)
    with RawClient(shoal_server.port) as c:
        assert c.call("GET", "point") == b"$5\r\nfired\r\n"


# ---------------------------------------------------------------- SHUTDOWN


def _shutdown(port: int, *args: str) -> None:
    with RawClient(port) as c:
        c.send_raw(encode_command("SHUTDOWN", *args))
        assert c.closed_by_server(20)


def test_shutdown_saves_with_save_points_and_nosave_does_not():
    proc = ServerProcess("shoal", *DEBUG, "--save", "3600 1 300 100 60 10000").start()
    try:
        with RawClient(proc.port) as c:
            build_dataset(c, 2)
            before = dataset_view(c)
        _shutdown(proc.port)
        assert proc.proc.wait(20) == 0
        log = proc.log()
        assert "User requested shutdown..." in log
        assert "Saving the final RDB snapshot before exiting." in log
        assert "DB saved on disk" in log
        saved = file_digest(os.path.join(proc.dir, "dump.rdb"))
        proc.start()
        with RawClient(proc.port) as c:
            assert dataset_view(c) == before
            c.call("SET", "unsaved", "1")
        _shutdown(proc.port, "NOSAVE")
        assert proc.proc.wait(20) == 0
        assert file_digest(os.path.join(proc.dir, "dump.rdb")) == saved
        # SIGTERM follows shutdown-on-sigterm (default): save points set, so it saves.
        proc.start()
        with RawClient(proc.port) as c:
            assert c.call("EXISTS", "unsaved") == b":0\r\n"
            c.call("SET", "by-sigterm", "1")
        proc.proc.send_signal(signal.SIGTERM)
        assert proc.proc.wait(20) == 0
        proc.start()
        with RawClient(proc.port) as c:
            assert c.call("GET", "by-sigterm") == b"$1\r\n1\r\n"
    finally:
        proc.stop()


def test_shutdown_save_without_save_points():
    proc = ServerProcess("shoal", *DEBUG).start()  # --save "" from ServerProcess
    try:
        with RawClient(proc.port) as c:
            c.call("SET", "k", "v")
        _shutdown(proc.port)  # no save points, no SAVE flag: nothing written
        assert not os.path.exists(os.path.join(proc.dir, "dump.rdb"))
        proc.start()
        with RawClient(proc.port) as c:
            assert c.call("DBSIZE") == b":0\r\n"
            c.call("SET", "k", "v")
        _shutdown(proc.port, "SAVE")
        proc.start()
        with RawClient(proc.port) as c:
            assert c.call("GET", "k") == b"$1\r\nv\r\n"
    finally:
        proc.stop()


def _shutdown_failure_scenario(proc: ServerProcess) -> tuple[list[bytes], list[str]]:
    """A final save that fails (temp file -> /dev/full): the node refuses to exit unless FORCE."""
    out = []
    with RawClient(proc.port) as c:
        c.call("SET", "k", "v")
        pid = int(info(c, "server")["process_id"])
        tmp = os.path.join(proc.dir, f"temp-{pid}.rdb")
        os.symlink("/dev/full", tmp)
        out.append(c.call("SHUTDOWN", "SAVE"))
        out.append(c.call("PING"))
        out.append(c.call("SAVE") if os.path.lexists(tmp) else b"(temp file removed)")
        out.append(c.call("SHUTDOWN", "ABORT"))
        if not os.path.lexists(tmp):
            os.symlink("/dev/full", tmp)
        c.send_raw(encode_command("SHUTDOWN", "SAVE", "FORCE"))
        out.append(b"closed" if c.closed_by_server(20) else b"still open")
    out.append(str(proc.proc.wait(20)).encode())
    out.append(str(os.path.exists(os.path.join(proc.dir, "dump.rdb"))).encode())
    return out, [line.split(" ", 6)[-1] for line in proc.log().splitlines()]  # the message after the level mark


def test_failed_shutdown_save_keeps_running_like_redis():
    results = []
    for kind in ("redis", "shoal"):
        proc = ServerProcess(kind).start()
        try:
            results.append(_shutdown_failure_scenario(proc))
        finally:
            proc.stop()
    (redis_out, redis_log), (shoal_out, shoal_log) = results
    assert shoal_out == redis_out
    assert shoal_out[0] == b"-ERR Errors trying to SHUTDOWN. Check logs.\r\n"
    for line in ("Write error saving DB on disk(fflush): No space left on device",
                 "Error trying to save the DB, can't exit.",
                 "Errors trying to shut down the server. Check the logs for more information.",
                 "Error trying to save the DB. Exit anyway."):
        assert line in redis_log and line in shoal_log, line


def test_flushall_with_save_points_saves_the_empty_dataset(shoal_server):
    with RawClient(shoal_server.port) as c:
        c.call("CONFIG", "SET", "save", "3600 1")
        build_dataset(c, functions=False)
        assert c.call("SAVE") == b"+OK\r\n"
        saves = info(c)["rdb_saves"]
        assert c.call("FLUSHALL") == b"+OK\r\n"
        after = info(c)
        assert after["rdb_changes_since_last_save"] == "0"
        assert after["rdb_saves"] == saves  # FLUSHALL's save is not counted, as in Redis
        c.call("CONFIG", "SET", "save", "")
    restart(shoal_server)
    with RawClient(shoal_server.port) as c:
        assert c.call("DBSIZE") == b":0\r\n"


# ------------------------------------------------------------- loading


def test_keys_expired_at_load_are_skipped(shoal_server):
    with RawClient(shoal_server.port) as c:
        c.call("DEBUG", "SET-ACTIVE-EXPIRE", "0")  # keep the key stored so it is written
        c.call("SET", "short", "1", "PX", "150")
        c.call("SET", "long", "1", "EX", "1000")
        c.call("SET", "plain", "1")
        assert c.call("SAVE") == b"+OK\r\n"
    shoal_server.stop(keep_dir=True)
    time.sleep(0.3)
    shoal_server.start()
    with RawClient(shoal_server.port) as c:
        status = info(c)
        assert status["rdb_last_load_keys_loaded"] == "2"
        assert status["rdb_last_load_keys_expired"] == "1"
        assert sorted(parse(c.call("KEYS", "*"))) == [b"long", b"plain"]
        assert 0 < parse(c.call("TTL", "long")) <= 1000
    assert "Done loading RDB, keys loaded: 2, keys expired: 1." in shoal_server.log()


def test_redis_loads_what_shoal_saves(shoal_server):
    with RawClient(shoal_server.port) as c:
        build_dataset(c, 3)
        view = dataset_view(c)
        assert c.call("SAVE") == b"+OK\r\n"
    redis = ServerProcess("redis", *DEBUG, "--dir", shoal_server.dir, "--dbfilename", "dump.rdb").start()
    try:
        with RawClient(redis.port) as r:
            assert dataset_view(r) == view
            redis_loaded = dataset_view(r, encodings=True)
    finally:
        redis.stop()
    # Shoal loading its own file builds the values with the encodings Redis gives them on load.
    restart(shoal_server)
    with RawClient(shoal_server.port) as c:
        assert dataset_view(c, encodings=True) == redis_loaded
    check = subprocess.run(["redis-check-rdb", os.path.join(shoal_server.dir, "dump.rdb")],
                           capture_output=True, timeout=30)
    assert check.returncode == 0, check.stdout + check.stderr
    assert b"RDB looks OK!" in check.stdout


def test_shoal_loads_what_redis_saves():
    redis = ServerProcess("redis", *DEBUG).start()
    try:
        with RawClient(redis.port) as r:
            build_dataset(r, 4)
            view = dataset_view(r)
            assert r.call("SAVE") == b"+OK\r\n"
        redis.stop(keep_dir=True)
        redis.start()  # Redis's own view after loading the file, encodings included
        with RawClient(redis.port) as r:
            redis_loaded = dataset_view(r, encodings=True)
        shoal = ServerProcess("shoal", *DEBUG, "--dir", redis.dir, "--dbfilename", "dump.rdb").start()
        try:
            with RawClient(shoal.port) as c:
                assert dataset_view(c) == view
                assert dataset_view(c, encodings=True) == redis_loaded
                assert parse(c.call("FCALL", "persistfn", "0")) == 42
            assert "Loading RDB produced by version 7.0.15" in shoal.log()
        finally:
            shoal.stop()
    finally:
        redis.stop()


def test_dbfilename_and_dir_are_used(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    proc = ServerProcess("shoal", *DEBUG, "--dir", str(data), "--dbfilename", "custom.rdb",
                         "--rdbcompression", "no", "--rdbchecksum", "no").start()
    try:
        with RawClient(proc.port) as c:
            c.call("SET", "k", "x" * 500)
            assert c.call("SAVE") == b"+OK\r\n"
        path = data / "custom.rdb"
        raw = path.read_bytes()
        assert raw.startswith(b"REDIS0010")
        assert b"x" * 500 in raw  # rdbcompression no: stored as is
        assert raw[-8:] == bytes(8)  # rdbchecksum no: a zero checksum
        restart(proc)
        with RawClient(proc.port) as c:
            assert c.call("STRLEN", "k") == b":500\r\n"
    finally:
        proc.stop()


def _bad_file_cases(good: bytes) -> dict[str, bytes]:
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0xFF
    return {
        "empty": b"",
        "foreign": b"hello world, this is not an RDB file\n",
        "truncated-header": good[:7],
        "truncated-middle": good[: len(good) // 2],
        "truncated-before-checksum": good[:-4],
        "flipped-byte": bytes(flipped),
        "future-version": b"REDIS0011" + good[9:],
    }


def test_bad_files_stop_start_up_with_a_clear_message(tmp_path):
    proc = ServerProcess("shoal", *DEBUG).start()
    try:
        with RawClient(proc.port) as c:
            build_dataset(c, 5, functions=False)
            assert c.call("SAVE") == b"+OK\r\n"
        with open(os.path.join(proc.dir, "dump.rdb"), "rb") as fh:
            good = fh.read()
    finally:
        proc.stop()
    for name, data in _bad_file_cases(good).items():
        directory = tmp_path / name
        directory.mkdir()
        path = directory / "dump.rdb"
        path.write_bytes(data)
        done = run_shoal_once(str(directory))
        assert done.returncode == 1, (name, done.stderr)
        log = (directory / "once.log").read_text()
        output = log + done.stdout.decode() + done.stderr.decode()
        assert "Traceback" not in output, (name, output)
        match = re.search(r"# Fatal error loading the DB from (\S+) at offset (\d+): (.+)\. Exiting\.$", log, re.M)
        assert match, (name, log)
        assert match.group(1) == str(path)
        assert int(match.group(2)) <= len(data)
        assert match.group(3).strip()
        assert path.read_bytes() == data, f"{name}: the file was modified"
        assert "Ready to accept connections" not in log


def test_too_few_databases_for_the_file_stops_start_up(tmp_path):
    proc = ServerProcess("shoal", *DEBUG).start()
    try:
        with RawClient(proc.port) as c:
            c.call("SELECT", "7")
            c.call("SET", "k", "v")
            assert c.call("SAVE") == b"+OK\r\n"
        data = open(os.path.join(proc.dir, "dump.rdb"), "rb").read()
    finally:
        proc.stop()
    (tmp_path / "dump.rdb").write_bytes(data)
    done = run_shoal_once(str(tmp_path), "--databases", "4")
    assert done.returncode == 1
    log = (tmp_path / "once.log").read_text()
    assert re.search(r"Fatal error loading the DB from \S+dump\.rdb at offset \d+: .*DB 7.*4 databases", log), log


# ------------------------------------------------------------ DEBUG RELOAD


def test_debug_reload_matches_redis(differ):
    for c in (differ.redis, differ.shoal):
        c.call("FUNCTION", "FLUSH")
        build_dataset(c, 6)
        c.call("SET", "dirty", "1")
    differ.check("DEBUG", "RELOAD")
    assert (dataset_view(differ.shoal, encodings=True, stream_details=False)
            == dataset_view(differ.redis, encodings=True, stream_details=False))
    differ.check("DBSIZE")
    for argv in (("SET", "extra", "1"), ("DEL", "str:int"), ("SET", "str:raw", "changed"),
                 ("DEBUG", "RELOAD", "NOSAVE", "NOFLUSH", "MERGE"), ("GET", "str:int"), ("GET", "extra"),
                 ("GET", "str:raw"), ("DBSIZE",), ("FLUSHALL",), ("DEBUG", "RELOAD", "NOSAVE"), ("DBSIZE",)):
        differ.check(*argv)
    assert (dataset_view(differ.shoal, encodings=True, stream_details=False)
            == dataset_view(differ.redis, encodings=True, stream_details=False))
    for c in (differ.redis, differ.shoal):
        c.call("FUNCTION", "FLUSH")
