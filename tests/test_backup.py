"""`shoal backup create|list|restore|prune|keygen` with real processes.

A 3-primary Shoal cluster holds data of every type (strings in all encodings,
lists, sets, zsets, hashes small and large, streams with consumer groups,
TTLs, hash tags, LZF-compressed key names, a function library); it is backed
up, plain and encrypted, and restored into a second fresh 3-primary cluster:
every key's DEBUG DIGEST-VALUE and PTTL-derived expiry, and every primary's
DEBUG DIGEST, must equal the source's. Tampering, wrong keys, corrupt and
truncated files must fail with one clear message and no traceback, before
anything is written. A standalone Shoal set is restored into a real
redis-server (differential: DEBUG DIGEST equal), and the RDB scanner is
checked on a file written by redis-server itself.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from cluster import backup
from cluster.cli import form_cluster
from cluster.rdbscan import RdbScanError, dump_payload, lzf_decompress, scan_rdb
from slots import keyslot
from tests.servers import REPO, ServerProcess

NT = "2000"


# --------------------------------------------------------------------------- helpers

def _cluster(count: int = 3, kind: str = "shoal") -> list[ServerProcess]:
    nodes = []
    try:
        for _ in range(count):
            nodes.append(ServerProcess(kind, "--cluster-enabled", "yes", "--cluster-node-timeout", NT,
                                       "--enable-debug-command", "yes").start(timeout=30))
        form_cluster("127.0.0.1", [n.port for n in nodes], count)
    except BaseException:
        for n in nodes:
            n.stop()
        raise
    return nodes


def _shoal_cli(*args, timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-m", "cluster.cli", "backup", *map(str, args)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def _fails_clearly(done: subprocess.CompletedProcess, *needles: str) -> None:
    assert done.returncode == 1, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith("shoal backup: "), done.stderr
    for needle in needles:
        assert needle in done.stderr, done.stderr


def _fill(clients_for) -> list[bytes]:
    """Write data of every type; returns the keys."""
    keys = []

    def c(key):
        keys.append(key.encode() if isinstance(key, str) else key)
        return clients_for(keys[-1])

    for i in range(60):
        c(f"s:{i}").set(f"s:{i}", f"value-{i}")
        c(f"n:{i}").set(f"n:{i}", i * 7919 - 100000)
    c("big").set("big", "abc" * 4000)                    # LZF-compressed value
    long_key = "k" * 60 + "-compressible-key-name-" + "k" * 60
    c(long_key).set(long_key, "v")                        # LZF-compressed key name in the RDB
    c(b"bin\x00\xff").set(b"bin\x00\xff", b"\x00\x01\xfe")
    for i in range(10):
        c(f"l:{i}").rpush(f"l:{i}", *[f"e{j}" for j in range(5 + i * 30)])
        c(f"set:{i}").sadd(f"set:{i}", *range(i * 100, i * 100 + 3 + i * 20))    # intset -> hashtable
        c(f"sst:{i}").sadd(f"sst:{i}", *[f"m{j}" for j in range(2 + i * 15)])
        c(f"z:{i}").zadd(f"z:{i}", {f"m{j}": j * 1.5 - 3 for j in range(3 + i * 15)})   # listpack/skiplist
        c(f"h:{i}").hset(f"h:{i}", mapping={f"f{j}": f"v{j}" * (1 + j % 3) for j in range(2 + i * 15)})
    c("h:longval").hset("h:longval", "f", "x" * 100)    # hashtable by value size
    c("z:inf").zadd("z:inf", {"a": float("inf"), "b": float("-inf"), "c": 0})
    for name in ("st:a", "st:{tag}b"):
        cl = c(name)
        for j in range(120):
            cl.xadd(name, {"f": j, "g": "x" * (j % 5)})
        cl.xgroup_create(name, "g1", id="0")
        cl.xgroup_create(name, "g2", id="$")
        cl.xreadgroup("g1", "alice", {name: ">"}, count=7)
        cl.xreadgroup("g1", "bob", {name: ">"}, count=3)
        first = cl.xrange(name, count=2)
        cl.xdel(name, first[1][0])
        cl.xack(name, "g1", first[0][0])
    for i in range(8):
        c(f"{{tag}}t:{i}").set(f"{{tag}}t:{i}", i)
    for i in range(20):
        c(f"ttl:{i}").set(f"ttl:{i}", i, px=3_600_000 + i)
    c("hll").pfadd("hll", *range(50))
    return keys


def _snapshot(nodes, keys) -> dict:
    """key -> (digest, type, absolute expiry in ms or -1)."""
    out = {}
    owner = _owner_cache(nodes)
    for k in keys:
        cl = owner(k)
        digest = cl.execute_command("DEBUG", "DIGEST-VALUE", k)[0]
        out[k] = (digest, cl.type(k), cl.execute_command("PEXPIRETIME", k))
    return out


def _owner_cache(nodes):
    cache: dict = {}
    slot_owner: dict = {}
    text = redis.Redis(port=nodes[0].port).execute_command("CLUSTER", "NODES")
    text = text.decode() if isinstance(text, bytes) else text
    for line in text.splitlines():
        f = line.split()
        port = int(f[1].split("@")[0].rsplit(":", 1)[1])
        for tok in f[8:]:
            if tok.startswith("["):
                continue
            a, _, b = tok.partition("-")
            for s in range(int(a), int(b or a) + 1):
                slot_owner[s] = port

    def get(key: bytes) -> redis.Redis:
        port = slot_owner[keyslot(key)]
        if port not in cache:
            cache[port] = redis.Redis(port=port)
        return cache[port]
    return get


def _node_digests(nodes) -> dict:
    """slot ranges -> DEBUG DIGEST of the primary serving them."""
    out = {}
    for n in nodes:
        c = redis.Redis(port=n.port)
        myid = c.execute_command("CLUSTER", "MYID")
        text = c.execute_command("CLUSTER", "NODES")
        text = text.decode() if isinstance(text, bytes) else text
        mine = next(line for line in text.splitlines() if line.startswith(myid.decode() if isinstance(myid, bytes)
                                                                          else myid))
        out[" ".join(t for t in mine.split()[8:] if not t.startswith("["))] = c.execute_command("DEBUG", "DIGEST")
    return out


def _flush(nodes) -> None:
    for n in nodes:
        c = redis.Redis(port=n.port)
        c.flushall()
        c.function_flush()


# --------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def clusters():
    """(source cluster with data, keys, empty target cluster)."""
    source = _cluster()
    target = []
    try:
        target = _cluster()
        owner = _owner_cache(source)
        keys = _fill(owner)
        lib = "#!lua name=bklib\nredis.register_function('bkf', function(keys, args) return 42 end)"
        for n in source:
            redis.Redis(port=n.port).function_load(lib)
        yield source, keys, target
    finally:
        for n in source + target:
            n.stop()
    for n in source + target:
        assert "Traceback" not in n.log(), n.log()


@pytest.fixture
def dest(tmp_path):
    return tmp_path / "sets"


# --------------------------------------------------------------------------- cluster round trips

def _check_restored(source, keys, target) -> None:
    want = _snapshot(source, keys)
    got = _snapshot(target, keys)
    missing = [k for k in keys if got[k][0] == b"0" * 40 and want[k][0] != b"0" * 40]
    assert not missing, missing[:5]
    assert got == want
    assert _node_digests(target) == _node_digests(source)
    for n in target:
        assert redis.Redis(port=n.port).fcall("bkf", 0) == 42


def test_plain_create_list_restore(clusters, dest):
    source, keys, target = clusters
    _flush(target)
    done = _shoal_cli("create", "--cluster", f"127.0.0.1:{source[1].port}", "--dest", dest)
    assert done.returncode == 0, done.stderr
    assert "3 primaries" in done.stdout and f"{len(keys)} keys" in done.stdout
    (set_dir,) = [p for p in dest.iterdir()]
    m = json.loads((set_dir / "manifest.json").read_text())
    assert m["format"] == "shoal-backup" and m["mode"] == "cluster" and m["encryption"] is None
    assert m["set_id"] == set_dir.name
    assert sorted(tuple(r) for n in m["nodes"] for r in n["slots"]) == [(0, 5460), (5461, 10921), (10922, 16383)]
    assert m["totals"]["keys"] == len(keys) == sum(redis.Redis(port=n.port).dbsize() for n in source)
    ids = {redis.Redis(port=n.port).execute_command("CLUSTER", "MYID") for n in source}
    assert {n["id"].encode() for n in m["nodes"]} == {i if isinstance(i, bytes) else i.encode() for i in ids}
    for n in m["nodes"]:
        data = (set_dir / n["file"]).read_bytes()
        assert data.startswith(b"REDIS0010")
        assert len(data) == n["size"] == n["rdb_size"]
        assert n["keys_outside_slots"] == 0 and n["functions"] == 1
    listed = _shoal_cli("list", "--dest", dest, "--json", "--verify")
    rows = json.loads(listed.stdout)
    assert [(r["set_id"], r["primaries"], r["keys"], r["status"]) for r in rows] == \
        [(m["set_id"], 3, len(keys), "verified")]
    table = _shoal_cli("list", "--dest", dest)
    assert m["set_id"] in table.stdout and "cluster" in table.stdout

    done = _shoal_cli("restore", m["set_id"][:12], "--cluster", f"127.0.0.1:{target[0].port}", "--dest", dest)
    assert done.returncode == 0, done.stderr
    assert f"{len(keys)} keys into 3 primaries" in done.stdout and "verified" in done.stdout
    _check_restored(source, keys, target)

    # A target that already has keys is refused (nothing written), unless --force.
    before = _node_digests(target)
    _owner_cache(target)(b"s:1").set("s:1", "changed")
    refused = _shoal_cli("restore", "latest", "--cluster", f"127.0.0.1:{target[0].port}", "--dest", dest)
    _fails_clearly(refused, "already holds")
    assert _node_digests(target) != before
    forced = _shoal_cli("restore", "latest", "--cluster", f"127.0.0.1:{target[0].port}", "--dest", dest, "--force")
    assert forced.returncode == 0, forced.stderr
    assert _node_digests(target) == before


def test_cluster_set_restores_into_a_redis_cluster(clusters, tmp_path):
    """Differential: the Shoal cluster's set, restored into a real 3-primary Redis 7.0 cluster."""
    source, keys, _target = clusters
    dest = tmp_path / "sets"
    m = backup.create_set("127.0.0.1", source[0].port, str(dest), out=lambda s: None)
    rnodes = _cluster(3, "redis")
    try:
        report = backup.restore_set(dest / m["set_id"], "127.0.0.1", rnodes[1].port, out=lambda s: None)
        assert report["restored"] == len(keys) and report["shape"] == "same" and report["functions"] == 3
        _check_restored(source, keys, rnodes)
    finally:
        for n in rnodes:
            n.stop()


def test_encrypted_round_trip_and_failures(clusters, dest, tmp_path):
    source, keys, target = clusters
    _flush(target)
    key = tmp_path / "k.key"
    assert _shoal_cli("keygen", key).returncode == 0
    assert (key.stat().st_mode & 0o777) == 0o600
    _fails_clearly(_shoal_cli("keygen", key), "already exists")
    done = _shoal_cli("create", "--cluster", f"127.0.0.1:{source[0].port}", "--dest", dest,
                      "--encrypt-key-file", key, "--via", "psync")
    assert done.returncode == 0, done.stderr
    (set_dir,) = list(dest.iterdir())
    m = json.loads((set_dir / "manifest.json").read_text())
    assert m["encryption"]["algorithm"] == "AES-256-GCM" and len(m["mac"]) == 64
    assert {n["via"] for n in m["nodes"]} == {"psync"}
    for n in m["nodes"]:
        blob = (set_dir / n["file"]).read_bytes()
        assert n["file"].endswith(".rdb.enc") and blob.startswith(b"SHOALBK1") and b"REDIS0010" not in blob
        assert b"value-1" not in blob and n["size"] == n["rdb_size"] + 8 + 12 + 16
    tgt = f"127.0.0.1:{target[2].port}"
    empty = _node_digests(target)

    _fails_clearly(_shoal_cli("restore", m["set_id"], "--cluster", tgt, "--dest", dest), "is encrypted")
    other = tmp_path / "other.key"
    assert _shoal_cli("keygen", other).returncode == 0
    _fails_clearly(_shoal_cli("restore", m["set_id"], "--cluster", tgt, "--dest", dest,
                              "--encrypt-key-file", other), "wrong key")
    garbage = tmp_path / "garbage.key"
    garbage.write_text("not a key\n")
    _fails_clearly(_shoal_cli("restore", m["set_id"], "--cluster", tgt, "--dest", dest,
                              "--encrypt-key-file", garbage), "not a backup key file")

    # Tampered manifest (slot ranges changed): the MAC catches it.
    mpath = set_dir / "manifest.json"
    original = mpath.read_text()
    edited = json.loads(original)
    edited["nodes"][0]["keys"] += 1
    mpath.write_text(json.dumps(edited))
    _fails_clearly(_shoal_cli("restore", m["set_id"], "--cluster", tgt, "--dest", dest,
                              "--encrypt-key-file", key), "failed authentication")
    # MAC removed and encryption dropped from the manifest: refused too.
    edited = json.loads(original)
    edited.pop("mac")
    edited["encryption"] = None
    mpath.write_text(json.dumps(edited))
    _fails_clearly(_shoal_cli("restore", m["set_id"], "--cluster", tgt, "--dest", dest), "manifest was modified")
    mpath.write_text(original)

    # A flipped byte in a file: the SHA-256 catches it (the GCM tag is checked in the unit test below).
    f = set_dir / m["nodes"][1]["file"]
    blob = bytearray(f.read_bytes())
    blob[len(blob) // 2] ^= 0x40
    f.write_bytes(bytes(blob))
    _fails_clearly(_shoal_cli("restore", m["set_id"], "--cluster", tgt, "--dest", dest,
                              "--encrypt-key-file", key), "SHA-256 does not match")
    blob[len(blob) // 2] ^= 0x40
    f.write_bytes(bytes(blob))
    assert _node_digests(target) == empty  # nothing was written by any failed attempt

    done = _shoal_cli("restore", m["set_id"], "--cluster", tgt, "--dest", dest, "--encrypt-key-file", key)
    assert done.returncode == 0, done.stderr
    _check_restored(source, keys, target)


def test_gcm_tag_and_aad_protect_files(tmp_path):
    master = os.urandom(32)
    k = backup._Keys(master)
    sealed = k.seal(b"REDIS0010payload", backup._aad("set1", "a.rdb.enc"))
    assert k.open(sealed, backup._aad("set1", "a.rdb.enc"), "a") == b"REDIS0010payload"
    with pytest.raises(backup.BackupError, match="wrong key, or the file was modified"):
        k.open(sealed, backup._aad("set1", "b.rdb.enc"), "b")  # moved to another node's name
    with pytest.raises(backup.BackupError, match="wrong key"):
        backup._Keys(os.urandom(32)).open(sealed, backup._aad("set1", "a.rdb.enc"), "a")
    bad = bytearray(sealed)
    bad[-1] ^= 1
    with pytest.raises(backup.BackupError, match="modified"):
        k.open(bytes(bad), backup._aad("set1", "a.rdb.enc"), "a")
    with pytest.raises(backup.BackupError, match="not an encrypted backup file"):
        k.open(b"REDIS0010", b"x", "a")
    # Nonces differ per file, so equal plaintexts never give equal ciphertexts.
    assert k.seal(b"same", b"x") != k.seal(b"same", b"x")


def test_shape_mismatch_fails_before_writing(clusters, dest):
    source, keys, target = clusters
    assert backup.create_set("127.0.0.1", source[0].port, str(dest), out=lambda s: None)["mode"] == "cluster"
    with ServerProcess("redis") as r:
        done = _shoal_cli("restore", "latest", "--cluster", f"127.0.0.1:{r.port}", "--dest", dest)
        _fails_clearly(done, "same shape", "standalone")
        assert redis.Redis(port=r.port).dbsize() == 0
        done = _shoal_cli("restore", "latest", "--cluster", f"127.0.0.1:{r.port}", "--dest", dest, "--any-shape",
                          "--json")
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        assert report["shape"].startswith("different") and report["restored"] == len(keys)
        assert redis.Redis(port=r.port).dbsize() == len(keys)
    # Same number of primaries, different split of the slots.
    fake = [backup.Primary("a", "h", 1, [(0, 100), (5000, 5460)]), backup.Primary("b", "h", 2, [(101, 4999)]),
            backup.Primary("c", "h", 3, [(5461, 16383)])]
    m = json.loads((next(dest.iterdir()) / "manifest.json").read_text())
    assert "no target primary owns exactly" in backup._shape_problem(m, "cluster", fake)
    assert "has 3 primaries, the target cluster has 2" in backup._shape_problem(m, "cluster", fake[:2])


# --------------------------------------------------------------------------- standalone, differential

def test_standalone_shoal_set_restores_into_redis(tmp_path):
    dest = tmp_path / "sets"
    with ServerProcess("shoal", "--enable-debug-command", "yes") as s, \
            ServerProcess("redis", "--enable-debug-command", "yes") as r:
        c = redis.Redis(port=s.port)
        _fill(lambda key: c)
        redis.Redis(port=s.port, db=5).set("in-db5", "yes")
        redis.Redis(port=s.port, db=5).rpush("list5", *range(300))
        c.set("soon", "gone", px=1200)
        m = backup.create_set("127.0.0.1", s.port, str(dest), out=lambda s: None)
        assert m["mode"] == "standalone" and m["nodes"][0]["dbs"]["5"] == 2
        time.sleep(1.3)  # "soon" is past its expiry when the restore runs: skipped
        c.delete("soon")
        report = backup.restore_set(dest / m["set_id"], "127.0.0.1", r.port, out=lambda s: None)
        assert report["skipped_expired"] == 1 and report["mismatches"] == []
        assert report["restored"] == m["totals"]["keys"] - 1
        rc = redis.Redis(port=r.port)
        assert rc.execute_command("DEBUG", "DIGEST") == c.execute_command("DEBUG", "DIGEST")
        assert redis.Redis(port=r.port, db=5).lrange("list5", 0, -1) == [b"%d" % i for i in range(300)]
        assert rc.object("encoding", "z:9") == c.object("encoding", "z:9")


def test_scanner_reads_redis_written_rdb(tmp_path):
    """A file redis-server wrote: every record becomes a payload that Redis's own RESTORE accepts."""
    with ServerProcess("redis", "--enable-debug-command", "yes") as r, \
            ServerProcess("shoal", "--enable-debug-command", "yes") as s:
        rc = redis.Redis(port=r.port)
        keys = _fill(lambda key: rc)
        rc.function_load("#!lua name=x\nredis.register_function('xf', function() return 1 end)")
        assert rc.save()
        data = (Path(r.dir) / "dump.rdb").read_bytes()
        scan = scan_rdb(data)
        assert scan.version == 10 and len(scan.records) == len(keys) and len(scan.functions) == 1
        assert sorted(k for _db, k, *_ in scan.records) == sorted(keys)
        assert scan.aux[b"redis-ver"].startswith(b"7.")
        sc = redis.Redis(port=s.port)
        for _db, key, t, a, b, exp in scan.records:
            payload = dump_payload(data, t, a, b, scan.version)
            sc.restore(key, exp or 0, payload, absttl=True, replace=True)
            assert rc.execute_command("DEBUG", "DIGEST-VALUE", key) == sc.execute_command("DEBUG", "DIGEST-VALUE", key)
            if t != 19 and t != 15:  # Shoal's stream tombstones may differ in size (documented in rdb.py)
                assert payload == rc.dump(key), key
        # Damaged copies of the file: a clear RdbScanError, never another exception.
        with pytest.raises(RdbScanError, match="truncated"):
            scan_rdb(data[: len(data) // 2])
        with pytest.raises(RdbScanError, match="checksum"):
            at = data.index(b"value-17")  # inside a string's bytes: only the CRC can notice
            scan_rdb(data[:at] + b"V" + data[at + 1:])
        with pytest.raises(RdbScanError, match="not an RDB"):
            scan_rdb(b"NOTRDB" + data[6:])
        with pytest.raises(RdbScanError):
            scan_rdb(data[:9] + b"\x30" + data[10:])


def test_lzf_decompress_matches_known_output():
    # "aaaaaaaaaa": literal 'a', then a back reference (length 7 + 0 extra + 2 = 9) at distance 1.
    assert lzf_decompress(b"\x00a\xe0\x00\x00", 10) == b"a" * 10
    from node.persistence import lzf  # the node's compressor, the other direction
    rng = random.Random(5)
    for _ in range(200):
        words = [bytes(rng.choice(b"abc\x00\xff") for _ in range(rng.randint(1, 9))) for _ in range(8)]
        plain = b"".join(rng.choice(words) for _ in range(rng.randint(1, 400)))
        packed = lzf.compress(plain)
        if packed is not None:
            assert lzf_decompress(packed, len(plain)) == plain
    with pytest.raises(ValueError):
        lzf_decompress(b"\x05ab", 6)
    with pytest.raises(ValueError):
        lzf_decompress(b"\x00a\x20\x05", 4)  # reference before the start


def test_corrupt_plain_rdb_is_reported(clusters, dest):
    source, _keys, target = clusters
    _flush(target)
    m = backup.create_set("127.0.0.1", source[0].port, str(dest), out=lambda s: None)
    set_dir = dest / m["set_id"]
    n = m["nodes"][2]
    f = set_dir / n["file"]
    good = f.read_bytes()
    f.write_bytes(good[: len(good) - 100])
    tgt = f"127.0.0.1:{target[0].port}"
    _fails_clearly(_shoal_cli("restore", m["set_id"], "--cluster", tgt, "--dest", dest), "SHA-256 does not match")
    # Corrupt with matching sums (as if corrupted before the backup was taken): the RDB check names it.
    import hashlib
    bad = good[: len(good) - 100]
    manifest = json.loads((set_dir / "manifest.json").read_text())
    for node in manifest["nodes"]:
        if node["file"] == n["file"]:
            node["size"] = node["rdb_size"] = len(bad)
            node["sha256"] = node["rdb_sha256"] = hashlib.sha256(bad).hexdigest()
    (set_dir / "manifest.json").write_text(json.dumps(manifest))
    _fails_clearly(_shoal_cli("restore", m["set_id"], "--cluster", tgt, "--dest", dest),
                   "not a readable RDB", "truncated")
    (set_dir / n["file"]).unlink()
    _fails_clearly(_shoal_cli("restore", m["set_id"], "--cluster", tgt, "--dest", dest), "cannot read")
    assert sum(redis.Redis(port=t.port).dbsize() for t in target) == 0
    _fails_clearly(_shoal_cli("restore", "nosuchset", "--cluster", tgt, "--dest", dest), "no backup set")
    listed = json.loads(_shoal_cli("list", "--dest", dest, "--json", "--verify").stdout)
    assert listed[0]["status"].startswith("missing")


# --------------------------------------------------------------------------- prune and schedule

def _fake_sets(dest: Path, ages_s: list[float]) -> list[str]:
    now = time.time()
    ids = []
    for i, age in enumerate(ages_s):
        sid = f"2026010{i}T000000Z-{i:06x}"
        d = dest / sid
        d.mkdir(parents=True)
        (d / "n.rdb").write_bytes(b"x")
        (d / "manifest.json").write_text(json.dumps({
            "format": "shoal-backup", "format_version": 1, "set_id": sid, "created_unix": now - age,
            "created_utc": "2026-01-01T00:00:00+00:00", "mode": "cluster", "totals": {"keys": 1},
            "nodes": [{"file": "n.rdb", "size": 1, "sha256": "0", "rdb_sha256": "0"}], "encryption": None}))
        ids.append(sid)
    return ids


def test_prune_by_count_and_age(tmp_path):
    dest = tmp_path / "sets"
    day = 86400
    ids = _fake_sets(dest, [10 * day, 8 * day, 3 * day, 2 * day, 60])  # oldest first
    (dest / "not-a-set").mkdir()
    (dest / ".partial-thing").mkdir()
    assert backup.prune_sets(str(dest), keep=2, dry_run=True, out=lambda s: None) == ids[:3][::-1]
    assert len(list(dest.iterdir())) == 7
    assert sorted(backup.prune_sets(str(dest), max_age=7 * day, out=lambda s: None)) == ids[:2]
    assert sorted(p.name for p in dest.iterdir() if p.name in ids) == ids[2:]
    done = _shoal_cli("prune", "--dest", dest, "--keep", "2", "--max-age", "7d")
    assert done.returncode == 0 and "removed " + ids[2] in done.stdout
    assert sorted(p.name for p in dest.iterdir()) == [".partial-thing", *ids[3:], "not-a-set"]
    # The newest set stays even when it is older than --max-age.
    assert backup.prune_sets(str(dest), max_age=1, out=lambda s: None) == [ids[3]]
    assert [s.set_id for s in backup.list_sets(str(dest)) if s.manifest] == [ids[4]]
    assert _shoal_cli("prune", "--dest", dest).returncode == 2
    assert _shoal_cli("prune", "--dest", dest, "--keep", "0").returncode == 1
    assert _shoal_cli("prune", "--dest", dest, "--max-age", "7 days").returncode == 2
    table = _shoal_cli("list", "--dest", dest).stdout
    assert ids[4] in table and "not-a-set" in table and "no manifest.json" in table


def test_parse_duration():
    assert backup.parse_duration("15m") == 900
    assert backup.parse_duration("7d") == 7 * 86400
    assert backup.parse_duration("1h30m") == 5400
    assert backup.parse_duration("45") == 45
    assert backup.parse_duration("2w") == 14 * 86400
    for bad in ("", "7x", "d", "1 h", "-5m"):
        with pytest.raises(ValueError):
            backup.parse_duration(bad)


def test_schedule_takes_sets_prunes_and_stops_on_signal(tmp_path):
    dest = tmp_path / "sets"
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    with ServerProcess("shoal") as s:
        redis.Redis(port=s.port).set("a", "1")
        proc = subprocess.Popen([sys.executable, "-m", "cluster.cli", "backup", "create", "--cluster",
                                 f"127.0.0.1:{s.port}", "--dest", str(dest), "--schedule", "0.3s", "--keep", "2"],
                                cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 60
            lines = []
            while sum(line.startswith("backup set") for line in lines) < 4:
                assert time.monotonic() < deadline, lines
                line = proc.stdout.readline()
                assert line, (lines, proc.stderr.read())
                lines.append(line)
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == 0, err
        assert "Traceback" not in err
        assert "schedule stopped" in out
        assert any(line.startswith("removed ") for line in lines + out.splitlines())
        sets = backup.list_sets(str(dest))
        assert len(sets) == 2 and all(x.manifest for x in sets)
        assert not [p for p in dest.iterdir() if p.name.startswith(".")]


def test_bench_rdb_section_reports_ratios_and_backup_times():
    import argparse

    from bench.rdb_persistence import rdb_phase, render_rdb

    results: dict = {}
    rdb_phase(argparse.Namespace(rdb_keys=3000, rdb_seconds=0.1), results, lambda msg: None)
    sec = results["rdb"]
    for kind in ("redis", "shoal"):
        assert "error" not in sec[kind], sec[kind]
        assert sec[kind]["bgsave_status"] == "ok" and sec[kind]["load_s"] is not None
    assert all(v is not None and v > 0 for k, v in sec["ratios"].items() if k != "fork_ms"), sec["ratios"]
    assert "error" not in sec["backup"] and sec["backup"]["create_s"] > 0
    text = render_rdb(sec)
    assert "load at start (s)" in text and "shoal backup create" in text


@pytest.mark.parametrize("kind", ["shoal", "redis"])
def test_create_via_psync_matches_file(kind, tmp_path):
    """--via psync (the node streams a snapshot as to a new replica) gives the same data as --via file."""
    with ServerProcess(kind, "--enable-debug-command", "yes") as s, \
            ServerProcess("shoal", "--enable-debug-command", "yes") as t:
        c = redis.Redis(port=s.port)
        _fill(lambda key: c)
        a = backup.create_set("127.0.0.1", s.port, str(tmp_path / "a"), via="file", out=lambda s: None)
        b = backup.create_set("127.0.0.1", s.port, str(tmp_path / "b"), via="psync", out=lambda s: None)
        assert a["nodes"][0]["via"] == "file" and b["nodes"][0]["via"] == "psync"
        assert b["nodes"][0]["repl_offset"] >= 0 and len(b["nodes"][0]["replid"]) == 40
        assert a["nodes"][0]["keys"] == b["nodes"][0]["keys"] == c.dbsize()
        backup.restore_set(tmp_path / "b" / b["set_id"], "127.0.0.1", t.port, out=lambda s: None)
        assert redis.Redis(port=t.port).execute_command("DEBUG", "DIGEST") == c.execute_command("DEBUG", "DIGEST")


def test_password_protected_nodes(tmp_path):
    with ServerProcess("shoal", "--requirepass", "s3cret") as s:
        redis.Redis(port=s.port, password="s3cret").set("a", "1")
        _fails_clearly(_shoal_cli("create", "--cluster", f"127.0.0.1:{s.port}", "--dest", tmp_path), "NOAUTH")
        _fails_clearly(_shoal_cli("create", "--cluster", f"127.0.0.1:{s.port}", "--dest", tmp_path,
                                  "--password", "wrong"), "AUTH failed")
        done = _shoal_cli("create", "--cluster", f"127.0.0.1:{s.port}", "--dest", tmp_path, "--password", "s3cret")
        assert done.returncode == 0, done.stderr
        assert [x.manifest["totals"]["keys"] for x in backup.list_sets(str(tmp_path))] == [1]


def _rdb_string(b: bytes) -> bytes:
    assert len(b) < 64
    return bytes([len(b)]) + b


def test_scanner_frames_old_and_plain_types(redis_proc, shoal_proc):
    """Hand-made records of the plain (non-listpack) types, including the pre-7.0 list (1) and text-double
    zset (3); an int-encoded key; EXPIRETIME (seconds), FREQ and IDLE opcodes. Every payload must be
    accepted by both servers' RESTORE and give the expected value."""
    import struct

    from cluster.rdbscan import crc64

    s = _rdb_string
    body = b"REDIS0009" + b"\xfa" + s(b"redis-ver") + s(b"6.0.0") + b"\xfe\x00\xfb\x06\x01"
    body += b"\x01" + s(b"bk:old-list") + b"\x02" + s(b"a") + s(b"b")
    body += b"\x03" + s(b"bk:old-zset") + b"\x02" + s(b"m1") + b"\x031.5" + s(b"m2") + b"\xfe"
    body += b"\xf9\x05" + b"\x02" + s(b"bk:set") + b"\x02" + s(b"x") + b"\xc0\x07"   # FREQ; an int-encoded member
    body += b"\xf8\x10" + b"\x04" + s(b"bk:hash") + b"\x01" + s(b"f") + s(b"v")      # IDLE
    body += b"\x05" + s(b"bk:zset2") + b"\x01" + s(b"m") + struct.pack("<d", -2.25)
    body += b"\xfd" + struct.pack("<i", 2_000_000_000) + b"\x00" + s(b"bk:ttl-s") + s(b"u")   # EXPIRETIME (s)
    body += b"\xfc" + struct.pack("<q", 4_102_444_800_000) + b"\x00" + s(b"bk:ttl") + s(b"t")
    body += b"\x00" + b"\xc1\x39\x30" + s(b"int-key")                                 # key "12345"
    body += b"\xff"
    data = body + struct.pack("<Q", crc64(body))
    scan = scan_rdb(data)
    assert scan.version == 9 and scan.aux == {b"redis-ver": b"6.0.0"}
    assert [(k, t, x) for _db, k, t, _a, _b, x in scan.records] == [
        (b"bk:old-list", 1, None), (b"bk:old-zset", 3, None), (b"bk:set", 2, None), (b"bk:hash", 4, None),
        (b"bk:zset2", 5, None), (b"bk:ttl-s", 0, 2_000_000_000_000), (b"bk:ttl", 0, 4_102_444_800_000),
        (b"12345", 0, None)]
    for port in (redis_proc.port, shoal_proc.port):
        c = redis.Redis(port=port)
        try:
            for _db, key, t, a, b, exp in scan.records:
                assert c.restore(key, exp or 0, dump_payload(data, t, a, b, scan.version), absttl=True,
                                 replace=True)
            assert c.lrange("bk:old-list", 0, -1) == [b"a", b"b"]
            assert c.zrange("bk:old-zset", 0, -1, withscores=True) == [(b"m1", 1.5), (b"m2", float("inf"))]
            assert c.smembers("bk:set") == {b"x", b"7"}
            assert c.hgetall("bk:hash") == {b"f": b"v"}
            assert c.zscore("bk:zset2", "m") == -2.25
            assert c.execute_command("PEXPIRETIME", "bk:ttl") == 4_102_444_800_000
            assert c.execute_command("PEXPIRETIME", "bk:ttl-s") == 2_000_000_000_000
            assert c.get("12345") == b"int-key"
        finally:
            c.delete(*[r[1] for r in scan.records])
    # Module values are refused by name.
    mod = b"REDIS0010\x07" + s(b"k") + b"\x00\xff"
    with pytest.raises(RdbScanError, match="module"):
        scan_rdb(mod + struct.pack("<Q", crc64(mod)))
