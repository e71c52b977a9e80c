"""Crash safety of RDB snapshots: SIGKILL at random moments, and a disk that fills up.

The contract: whatever instant a process dies during SAVE or BGSAVE (the
server, the saving child, or both), a restart loads a complete dataset --
the previous good one, or the new one if the rename had happened -- and
never a mix. Each round writes a new "version" of every key, starts a save,
kills at a moment spread over the measured save duration, restarts, and
checks the version and the DEBUG DIGEST against what each version's digest
was. A disk that fills up (RLIMIT_FSIZE lowered on the running server) fails
the save, keeps the old file, reports it in INFO and the log, and refuses
writes exactly as Redis does under stop-writes-on-bgsave-error (compared
with a real redis-server run through the same scenario).
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import resource
import signal
import time

from tests.resp_client import RawClient, encode_command, parse
from tests.servers import ServerProcess
from tests.test_persistence import info, wait_bgsave_done, wait_for

KEYS = 1500
# rdb-key-save-delay (µs per key) stretches a save over a few hundred ms so kills land inside it.
KEY_DELAY_US = 150
SEED = 20240607


def _write_version(c: RawClient, version: int) -> str:
    payload = f"{version:06d}" * 12
    replies = c.pipeline([("SET", f"key:{i}", f"{i}:{payload}") for i in range(KEYS)]
                         + [("SET", "version", str(version))])
    assert all(r == b"+OK\r\n" for r in replies)
    return parse(c.call("DEBUG", "DIGEST"))


def _loaded_version(proc: ServerProcess, digests: dict[int, str], allowed: set[int]) -> int:
    with RawClient(proc.port) as c:
        raw = c.call("GET", "version")
        assert raw != b"$-1\r\n", "the restarted server has no data"
        version = int(parse(raw))
        assert version in allowed, (version, allowed)
        assert parse(c.call("DEBUG", "DIGEST")) == digests[version], f"version {version} loaded incompletely"
        assert c.call("DBSIZE") == b":%d\r\n" % (KEYS + 1)
    assert "Fatal error" not in proc.log()
    return version


def _child_pid(proc: ServerProcess, after: int) -> int:
    """The pid the log names in the last 'Background saving started by pid N' (after ``after`` bytes)."""
    def find():
        found = re.findall(r"Background saving started by pid (\d+)", proc.log()[after:])
        return int(found[-1]) if found else None
    return wait_for(find, what="the BGSAVE child's pid")


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _start(proc: ServerProcess) -> ServerProcess:
    proc.start()
    with RawClient(proc.port) as c:
        assert c.call("CONFIG", "SET", "rdb-key-save-delay", str(KEY_DELAY_US)) == b"+OK\r\n"
    return proc


def _measure(proc: ServerProcess, command: str) -> float:
    with RawClient(proc.port) as c:
        start = time.monotonic()
        if command == "SAVE":
            assert c.call("SAVE") == b"+OK\r\n"
        else:
            assert c.call("BGSAVE") == b"+Background saving started\r\n"
            wait_bgsave_done(c)
        return time.monotonic() - start


def test_sigkill_at_random_moments_during_save_and_bgsave_always_leaves_a_loadable_file():
    rng = random.Random(SEED)
    proc = ServerProcess("shoal", "--enable-debug-command", "yes")
    _start(proc)
    digests: dict[int, str] = {}
    outcomes: list[tuple[str, str, bool]] = []  # (mode, old/new, temp file left behind)
    children: list[int] = []
    try:
        with RawClient(proc.port) as c:
            digests[0] = _write_version(c, 0)
        durations = {cmd: _measure(proc, cmd) for cmd in ("SAVE", "BGSAVE")}
        persisted = 0
        version = 0
        plan = [("SAVE", None)] * 8 + [("BGSAVE", "child")] * 5 + [("BGSAVE", "both")] * 5 + [("BGSAVE", "parent")] * 5
        for round_no, (command, victim) in enumerate(plan):
            version += 1
            with RawClient(proc.port) as c:
                digests[version] = _write_version(c, version)
            # Spread the kill over [0, 1.3 x the save's duration] across the rounds of a mode.
            same = [i for i, p in enumerate(plan) if p == (command, victim)]
            share = (same.index(round_no) + rng.random()) / len(same)
            delay = share * 1.3 * durations[command]
            temps_before = {f for f in os.listdir(proc.dir) if f.startswith("temp-")}
            log_mark = len(proc.log())
            parent = proc.proc.pid
            child = None
            orphan = None
            with RawClient(proc.port) as c:
                if command == "SAVE":
                    c.send_raw(encode_command("SAVE"))
                    time.sleep(delay)
                    _kill(parent)
                else:
                    assert c.call("BGSAVE") == b"+Background saving started\r\n"
                    child = _child_pid(proc, log_mark)
                    children.append(child)
                    time.sleep(delay)
                    if victim == "child":
                        _kill(child)
                        # The parent notices: success if the child had finished, else an error and no temp file.
                        status = wait_bgsave_done(c)["rdb_last_bgsave_status"]
                        assert f"temp-{child}.rdb" not in os.listdir(proc.dir)
                        assert ("Background saving terminated by signal 9" in proc.log()[log_mark:]) == (
                            status == "err")
                        _kill(parent)
                    elif victim == "both":
                        _kill(parent)
                        _kill(child)
                    else:
                        _kill(parent)
                        orphan = child  # keeps writing (or not) on its own
            proc.proc.wait(10)
            if child is not None and victim != "parent":
                wait_for(lambda: _gone(child), what="the killed child to disappear")
            left = {f for f in os.listdir(proc.dir) if f.startswith("temp-")} - temps_before
            # Restart at once, even with an orphaned child still running: it must not hold the port.
            _start(proc)
            loaded = _loaded_version(proc, digests, {persisted, version})
            outcomes.append((f"{command}/{victim}", "new" if loaded == version else "old", bool(left)))
            if orphan is not None:
                wait_for(lambda: _gone(orphan), what="the orphaned child to finish")
                # The orphan may have renamed its (complete) file after the restart: make disk == memory.
                with RawClient(proc.port) as c:
                    assert c.call("SAVE") == b"+OK\r\n"
            persisted = loaded
        # Every restart loaded a complete version. The kills landed both before and after the rename,
        # and some interrupted a write in progress (a temp file was left behind: never loaded).
        assert {o for _, o, _ in outcomes} == {"old", "new"}, outcomes
        assert any(left for _, _, left in outcomes), outcomes
    finally:
        proc.stop()
        for pid in children:
            if not _gone(pid):
                _kill(pid)


# ------------------------------------------------------------ full disk


def _incompressible(i: int) -> str:
    """128 hex digits LZF cannot shrink, the same on every run (the scenario compares replies)."""
    return hashlib.sha256(b"%d" % i).hexdigest() + hashlib.sha256(b"%d!" % i).hexdigest()


def _limit_file_size(pid: int, limit: int) -> None:
    """Lower (or, with -1, lift) the soft RLIMIT_FSIZE of a running server: its next writes past it fail."""
    _, hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (hard if limit < 0 else limit, hard))


def _full_disk_scenario(proc: ServerProcess) -> tuple[list[bytes], str, bool]:
    out: list[bytes] = []
    path = os.path.join(proc.dir, "dump.rdb")
    with RawClient(proc.port) as c, RawClient(proc.port) as queued:
        replies = c.pipeline([("SET", f"key:{i}", _incompressible(i)) for i in range(2000)])
        assert set(replies) == {b"+OK\r\n"}
        assert c.call("SAVE") == b"+OK\r\n"
        with open(path, "rb") as fh:
            good = hashlib.sha256(fh.read()).hexdigest()
        out += queued.pipeline([("MULTI",), ("SET", "queued", "1")])
        _limit_file_size(proc.proc.pid, 64 * 1024)
        c.call("SET", "unsaved", "1")
        out.append(c.call("BGSAVE"))
        done = wait_bgsave_done(c)
        out.append(done["rdb_last_bgsave_status"].encode())
        out.append(done["rdb_changes_since_last_save"].encode())
        for argv in (("SET", "x", "1"), ("GET", "key:1"), ("PING",), ("DEL", "key:1"), ("INCR", "n"),
                     ("MULTI",), ("SET", "y", "1"), ("GET", "y"), ("EXEC",), ("MULTI",), ("PING",), ("EXEC",),
                     ("CONFIG", "SET", "stop-writes-on-bgsave-error", "no"), ("SET", "x", "2"), ("PING",),
                     ("CONFIG", "SET", "stop-writes-on-bgsave-error", "yes"), ("SET", "x", "3"),
                     ("CONFIG", "SET", "save", ""), ("SET", "x", "4"),
                     ("CONFIG", "SET", "save", "3600 1"), ("SET", "x", "5")):
            out.append(c.call(*argv))
        out.append(queued.call("EXEC"))
        out.append(c.call("INFO", "errorstats").split(b"\r\n", 1)[1])
        with open(path, "rb") as fh:
            kept = hashlib.sha256(fh.read()).hexdigest() == good
        temps = [f for f in os.listdir(proc.dir) if f.startswith("temp-")]
        out.append(repr(temps).encode())
        # Space again: the next BGSAVE succeeds and writes are accepted.
        _limit_file_size(proc.proc.pid, -1)
        out.append(c.call("BGSAVE"))
        out.append(wait_bgsave_done(c)["rdb_last_bgsave_status"].encode())
        out.append(c.call("SET", "x", "6"))
    return out, proc.log(), kept


def test_full_disk_fails_the_bgsave_keeps_the_file_and_refuses_writes_like_redis():
    results = {}
    for kind in ("redis", "shoal"):
        proc = ServerProcess(kind, "--save", "3600 1").start()
        try:
            results[kind] = _full_disk_scenario(proc)
        finally:
            proc.stop()
    (redis_out, _, redis_kept), (shoal_out, shoal_log, shoal_kept) = results["redis"], results["shoal"]
    assert shoal_out == redis_out
    assert redis_kept and shoal_kept, "the previous dump.rdb must survive a failed save"
    assert shoal_out[2] == b"+Background saving started\r\n"
    assert shoal_out[3] == b"err"
    assert shoal_out[5].startswith(b"-MISCONF Redis is configured to save RDB snapshots")
    # Redis's child dies of SIGXFSZ; Shoal ignores the signal, so its child sees EFBIG and says so.
    assert "Write error saving DB on disk(rdbSaveRio): File too large" in shoal_log
    assert "Background saving error" in shoal_log


def test_full_disk_during_save_keeps_the_old_file_and_the_server():
    proc = ServerProcess("shoal", "--enable-debug-command", "yes").start()
    try:
        path = os.path.join(proc.dir, "dump.rdb")
        with RawClient(proc.port) as c:
            c.pipeline([("SET", f"key:{i}", _incompressible(i)) for i in range(2000)])
            assert c.call("SAVE") == b"+OK\r\n"
            good = open(path, "rb").read()
            digest = parse(c.call("DEBUG", "DIGEST"))
            c.call("SET", "later", "1")
            _limit_file_size(proc.proc.pid, 64 * 1024)
            assert c.call("SAVE") == b"-ERR\r\n"
            # A failed SAVE (not BGSAVE) leaves rdb_last_bgsave_status alone, as in Redis: no MISCONF.
            assert info(c)["rdb_last_bgsave_status"] == "ok"
            assert c.call("SET", "still", "writable") == b"+OK\r\n"
            assert int(info(c)["rdb_changes_since_last_save"]) == 2
            _limit_file_size(proc.proc.pid, -1)
            c.call("DEL", "later", "still")
        assert open(path, "rb").read() == good
        assert not [f for f in os.listdir(proc.dir) if f.startswith("temp-")]
        assert "Write error saving DB on disk(rdbSaveRio): File too large" in proc.log()
        proc.stop(keep_dir=True)
        proc.start()
        with RawClient(proc.port) as c:
            assert parse(c.call("DEBUG", "DIGEST")) == digest
    finally:
        proc.stop()
