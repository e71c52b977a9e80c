"""shoal-server start-up and exit: config errors as redis-server prints them, clean signal shutdown."""

from __future__ import annotations

import os
import signal
import subprocess

import pytest

from tests.servers import REPO, ServerProcess, free_port, redis_server_path, shoal_server_cmd


def _run(cmd: list[str], cwd: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, timeout=20)


def _fatal_block(output: bytes) -> str:
    text = output.decode(errors="replace")
    start = text.index("*** FATAL CONFIG FILE ERROR")
    return text[start:].strip()


@pytest.mark.parametrize("args", [
    ["--foo", "bar"], ["--appendonly", "maybe"], ["--hz", "-5"], ["--maxmemory", "abc"], ["--port", "99999"],
    ["--databases", "0"], ["--save", "10"], ["--hz"], ["--loglevel", "nothing"],
    ["--maxmemory", "1", "--maxmemory", "2", "--hz", "abc"], ["--bind", "127.0.0.1", "--maxclients", "x y"],
    ["--enable-debug-command", "sometimes"], ["--client-output-buffer-limit", "normal", "1"],
])
def test_command_line_errors_match_redis(tmp_path, args):
    port = str(free_port())
    redis = _run([redis_server_path(), "--port", port, *args], str(tmp_path))
    shoal = _run([*shoal_server_cmd(), "--port", port, *args], str(tmp_path))
    assert redis.returncode == shoal.returncode == 1
    fatal = _fatal_block(redis.stdout + redis.stderr)
    assert _fatal_block(shoal.stderr) == fatal.replace("Redis 7.0.15", "Redis 7.0.15")


@pytest.mark.parametrize("content", [
    "port 0\n\nappendonly  maybe\n", "# comment\nnosuch-directive yes\n", "maxmemory 10xb\n",
    "hz 1 2\n", 'requirepass "unbalanced\n', "timeout -1\n",
])
def test_config_file_errors_match_redis(tmp_path, content):
    conf = tmp_path / "bad.conf"
    conf.write_text(content)
    redis = _run([redis_server_path(), str(conf)], str(tmp_path))
    shoal = _run([*shoal_server_cmd(), str(conf)], str(tmp_path))
    assert redis.returncode == shoal.returncode == 1
    assert _fatal_block(shoal.stderr) == _fatal_block(redis.stdout + redis.stderr)


def test_missing_config_file(tmp_path):
    shoal = _run([*shoal_server_cmd(), str(tmp_path / "nope.conf")], str(tmp_path))
    assert shoal.returncode == 1
    assert shoal.stderr.decode().rstrip().endswith(
        f"# Fatal error, can't open config file '{tmp_path / 'nope.conf'}': No such file or directory")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_shuts_down_cleanly(signum):
    proc = ServerProcess("shoal")
    with proc:
        os.kill(proc.proc.pid, signum)
        assert proc.proc.wait(10) == 0
        log = proc.log()
        name = "SIGTERM" if signum == signal.SIGTERM else "SIGINT"
        assert f"Received {name} scheduling shutdown..." in log
        assert log.rstrip().endswith("Shoal is now ready to exit, bye bye...")
