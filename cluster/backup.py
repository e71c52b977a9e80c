"""``shoal backup``: point-in-time backup sets of a Shoal (or Redis) cluster, and restoring them.

    shoal backup create  [--cluster HOST:PORT] [--dest DIR] [--encrypt-key-file F] [--via auto|file|psync]
                         [--schedule 15m --keep N [--max-age 7d]]
    shoal backup list    [--dest DIR] [--json] [--verify]
    shoal backup restore SET [--cluster HOST:PORT] [--dest DIR] [--encrypt-key-file F]
                         [--any-shape] [--force]
    shoal backup prune   [--dest DIR] [--keep N] [--max-age 7d] [--dry-run]
    shoal backup keygen  FILE [--force]

(create and restore also take ``--user``/``--password``, default ``$REDISCLI_AUTH``, for nodes with AUTH.)

create
    Finds the primaries (CLUSTER NODES; a node without cluster mode is one
    "standalone" primary), sends BGSAVE to all of them at once, waits for each
    (INFO persistence: ``rdb_bgsave_in_progress`` back to 0,
    ``rdb_last_bgsave_status:ok``), then copies every node's RDB file
    (CONFIG GET dir / dbfilename: the nodes are local processes). ``--via
    psync`` instead sends ``PSYNC ? -1`` to every primary at once and reads
    the snapshot each one streams, as to a new replica (works for remote
    nodes; Redis and Shoal both do this; the replication id and offset of the
    snapshot go into the manifest). ``auto`` (default) uses the file when all
    primaries are on loopback and their directories are readable here. Each
    file is scanned (framing, CRC-64, key count, every key in its node's slots) before
    it goes into the set. A set is a directory ``DEST/<set id>/`` holding one
    ``<node id>.rdb`` (or ``.rdb.enc``) per primary and ``manifest.json``: set
    id, time, mode, node ids, addresses, slot ranges, key counts, sizes,
    SHA-256 of the stored file and of the RDB, Shoal version, encryption. The
    set is built in ``DEST/.<set id>.partial`` and renamed when complete, so a
    crash never leaves something that looks like a set.

    ``--schedule 15m`` repeats this every period until interrupted (Ctrl-C or
    SIGTERM), pruning after each set with ``--keep`` / ``--max-age``.

encryption
    ``keygen`` writes 32 random bytes (base64) to a file readable only by its
    owner. With ``--encrypt-key-file`` each RDB is sealed with AES-256-GCM
    under a key derived with HKDF-SHA256 (a fresh 96-bit nonce per file, the
    set id and file name as associated data, so files cannot be swapped between
    sets or nodes), and the manifest carries an HMAC-SHA256 (another derived
    key) over its canonical JSON, plus a key id so a wrong key is named as
    such. A wrong key, an edited manifest, a modified or truncated file: each
    stops the restore with a message, before anything is written.

restore
    Verifies the whole set first (manifest MAC, SHA-256 of every file,
    decryption, RDB framing and checksum). Then reads the target's slot map:
    by default it must have the same shape -- as many primaries, each backed-up
    primary's slot ranges owned by exactly one target primary (``--any-shape``
    skips this; keys are routed by their own slot either way). The target must
    be empty unless ``--force``. Every key is sent to the primary that owns its
    slot as ``RESTORE key <expire ms> payload ABSTTL REPLACE``, pipelined, the
    payload cut straight out of the RDB (``cluster/rdbscan.py``); keys whose
    expiry has passed are skipped. Function libraries are loaded with
    FUNCTION LOAD REPLACE. Finally DBSIZE per primary and COUNTKEYSINSLOT for
    every slot that received keys are compared with what was sent.

prune
    ``--keep N`` keeps the N newest sets, ``--max-age AGE`` removes sets older
    than AGE (``30s``, ``15m``, ``2h``, ``7d``, ``1w``); with both, a set must
    pass both to stay. The newest set is never removed. Directories that are
    not valid sets are left alone.

Exit status: 0 success, 1 failure (message on stderr, no traceback), 2 usage.

Limits: files are handled in memory (a set's RDBs must fit in RAM while they
are checksummed, sealed or restored); a cluster set is per-node
point-in-time (all BGSAVEs start together, but nothing stops the world
across nodes, as with Redis); keys in a backed-up node that its slots do not
cover (``keys_outside_slots`` in the manifest) are still restored, to their
own slot's owner.
"""

from __future__ import annotations

import argparse
import base64
import datetime as _dt
import hashlib
import hmac
import json
import os
import re
import secrets
import shutil
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from cluster.rdbscan import RdbScanError, dump_payload, scan_rdb
from cluster.resp import RespClient, RespError
from slots import SLOT_COUNT, keyslot

__all__ = ["BackupError", "create_set", "list_sets", "main", "parse_duration", "prune_sets", "restore_set"]

FORMAT = "shoal-backup"
FORMAT_VERSION = 1
ENC_MAGIC = b"SHOALBK1"
NONCE_LEN = 12
KEY_PREFIX = "shoal-backup-key-v1:"
DEFAULT_DEST = "backups"
PIPELINE_BYTES = 48 * 1024  # keep each pipelined batch well under 64 KiB (see bench/loader.py)
PIPELINE_COMMANDS = 1000
SHORT_TTL_MS = 60_000  # keys expiring sooner than this after the restore starts are tracked for the checks


class BackupError(Exception):
    """A failure to report to the user as one clear message."""


def _err(msg: str) -> None:
    print(f"shoal backup: {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- small helpers

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> float:
    """``90``, ``30s``, ``15m``, ``2h``, ``7d``, ``1w`` (also combined: ``1h30m``) -> seconds."""
    t = text.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", t):
        return float(t)
    parts = re.findall(r"(\d+(?:\.\d+)?)([smhdw])", t)
    if not parts or "".join(a + b for a, b in parts) != t:
        raise ValueError(f"bad duration {text!r} (use e.g. 30s, 15m, 2h, 7d, 1w)")
    return sum(float(n) * _UNITS[u] for n, u in parts)


def _human_bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)  # pragma: no cover


def _address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise BackupError(f"bad address {text!r} (expected HOST:PORT)")
    return host or "127.0.0.1", int(port)


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _shoal_version() -> str:
    try:
        from importlib.metadata import version
        return version("shoal")
    except Exception:  # noqa: BLE001 - not installed as a distribution
        return "unknown"


def _ranges_text(ranges) -> str:
    return " ".join(str(a) if a == b else f"{a}-{b}" for a, b in ranges) or "-"


# --------------------------------------------------------------------------- keys and encryption

def keygen(path: str, force: bool = False) -> None:
    p = Path(path)
    if p.exists() and not force:
        raise BackupError(f"{path} already exists (use --force to overwrite it)")
    data = KEY_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode() + "\n"
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(data)
    os.chmod(p, 0o600)


def load_key(path: str) -> bytes:
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise BackupError(f"cannot read the key file {path}: {exc.strerror or exc}") from None
    text = raw.strip()
    key = None
    try:
        if text.startswith(KEY_PREFIX.encode()):
            key = base64.b64decode(text[len(KEY_PREFIX):], validate=True)
        elif re.fullmatch(rb"[0-9a-fA-F]{64}", text):
            key = bytes.fromhex(text.decode())
        elif len(raw) == 32:
            key = raw
    except ValueError:
        key = None
    if key is None or len(key) != 32:
        raise BackupError(f"{path} is not a backup key file (make one with `shoal backup keygen FILE`)")
    return key


class _Keys:
    """The keys derived from the master key: file sealing, manifest MAC, and a public key id."""

    def __init__(self, master: bytes) -> None:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF

        def derive(info: bytes) -> bytes:
            return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"shoal-backup", info=info).derive(master)

        self.file_key = derive(b"file encryption v1")
        self.mac_key = derive(b"manifest mac v1")
        self.key_id = derive(b"key id v1")[:8].hex()

    def seal(self, plain: bytes, aad: bytes) -> bytes:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        nonce = secrets.token_bytes(NONCE_LEN)
        return ENC_MAGIC + nonce + AESGCM(self.file_key).encrypt(nonce, plain, ENC_MAGIC + aad)

    def open(self, sealed: bytes, aad: bytes, name: str) -> bytes:
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        if not sealed.startswith(ENC_MAGIC) or len(sealed) < len(ENC_MAGIC) + NONCE_LEN + 16:
            raise BackupError(f"{name} is not an encrypted backup file (bad header or too short)")
        nonce = sealed[len(ENC_MAGIC):len(ENC_MAGIC) + NONCE_LEN]
        try:
            return AESGCM(self.file_key).decrypt(nonce, sealed[len(ENC_MAGIC) + NONCE_LEN:], ENC_MAGIC + aad)
        except InvalidTag:
            raise BackupError(f"{name}: decryption failed -- wrong key, or the file was modified") from None

    def mac(self, manifest: dict) -> str:
        body = {k: v for k, v in manifest.items() if k != "mac"}
        canon = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
        return hmac.new(self.mac_key, canon, hashlib.sha256).hexdigest()


def _aad(set_id: str, name: str) -> bytes:
    return f"{set_id}/{name}".encode()


# --------------------------------------------------------------------------- talking to nodes

# Credentials for every connection this module opens (``--user``/``--password``, or REDISCLI_AUTH).
_AUTH: tuple[str | None, str] | None = None


def set_auth(user: str | None, password: str | None) -> None:
    global _AUTH
    _AUTH = (user, password) if password else None


class _Conn(RespClient):
    """RespClient plus AUTH and pipelining (batches are sent whole, then their replies read)."""

    def __init__(self, host: str, port: int, timeout: float = 5.0) -> None:
        super().__init__(host, port, timeout=timeout)
        if _AUTH is not None:
            user, password = _AUTH
            try:
                self.call("AUTH", *((user,) if user else ()), password)
            except RespError as exc:
                self.close()
                raise BackupError(f"{host}:{port}: AUTH failed: {exc}") from None

    def pipeline(self, payload: bytes, count: int) -> list:
        self.sock.sendall(payload)
        # Fast path: a batch of RESTOREs answers +OK each; compare bytes instead of parsing replies.
        expected = b"+OK\r\n" * count
        while len(self.buf) < len(expected) and expected.startswith(self.buf):
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed")
            self.buf += chunk
        if self.buf.startswith(expected):
            self.buf = self.buf[len(expected):]
            return ["OK"] * count
        replies = []
        for _ in range(count):
            try:
                replies.append(self._read())
            except RespError as exc:
                replies.append(exc)
        return replies

    def info(self, section: str) -> dict[str, str]:
        text = self.call("INFO", section).decode(errors="replace")
        return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


def _restore_cmd(key: bytes, expire: int, payload: bytes) -> bytes:
    """``RESTORE key expire payload ABSTTL REPLACE``, encoded in one step (the hot loop of a restore)."""
    ttl = b"%d" % expire
    return b"*6\r\n$7\r\nRESTORE\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n$6\r\nABSTTL\r\n$7\r\nREPLACE\r\n" % (
        len(key), key, len(ttl), ttl, len(payload), payload)


def _encode(*args) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if not isinstance(a, bytes):
            a = str(a).encode()
        out.append(b"$%d\r\n%b\r\n" % (len(a), a))
    return b"".join(out)


@dataclass
class Primary:
    id: str
    host: str
    port: int
    slots: list = field(default_factory=list)  # [(start, end), ...]; [] for a standalone node

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


def discover(host: str, port: int, timeout: float = 5.0) -> tuple[str, list[Primary]]:
    """("cluster" | "standalone", the primaries that serve slots) as seen by the node at host:port."""
    try:
        with _Conn(host, port, timeout=timeout) as c:
            try:
                text = c.call("CLUSTER", "NODES").decode()
            except RespError as exc:
                if "cluster support disabled" not in str(exc):
                    raise BackupError(f"{host}:{port}: CLUSTER NODES failed: {exc}") from None
                run_id = c.info("server").get("run_id", f"{host}:{port}")
                return "standalone", [Primary(run_id, host, port, [])]
    except OSError as exc:
        raise BackupError(f"cannot connect to {host}:{port}: {exc.strerror or exc}") from None
    primaries = []
    for line in text.splitlines():
        f = line.split()
        if len(f) < 8:
            continue
        flags = f[2].split(",")
        ranges = []
        for tok in f[8:]:
            if tok.startswith("["):
                continue  # migrating/importing marks
            a, _, b = tok.partition("-")
            ranges.append((int(a), int(b or a)))
        if "master" not in flags or not ranges:
            continue
        if "fail" in flags or "noaddr" in flags or "handshake" in flags:
            raise BackupError(f"primary {f[0]} ({f[1]}) is marked {f[2]}; fix the cluster first")
        h, _, p = f[1].split("@")[0].split(",")[0].rpartition(":")
        if not p.isdigit():
            raise BackupError(f"cannot read the address of node {f[0]} in CLUSTER NODES: {f[1]!r}")
        primaries.append(Primary(f[0], h or host, int(p), sorted(ranges)))  # no ip yet: it is the seed
    if not primaries:
        raise BackupError(f"{host}:{port}: the cluster has no primary serving slots")
    primaries.sort(key=lambda p: p.slots[0])
    return "cluster", primaries


# --------------------------------------------------------------------------- create

def _start_bgsave(c: _Conn) -> tuple[bool, int]:
    """Send BGSAVE (waiting out a save already running); returns (started, rdb_saves before)."""
    deadline = time.monotonic() + 600
    while True:
        before = int(c.info("persistence").get("rdb_saves", "0"))
        try:
            reply = c.call("BGSAVE")
        except RespError as exc:
            if "in progress" not in str(exc) or time.monotonic() > deadline:
                raise BackupError(f"{c.host}:{c.port}: BGSAVE failed: {exc}") from None
            time.sleep(0.05)
            continue
        return "started" in str(reply), before


def _wait_bgsave(c: _Conn, started: bool, saves_before: int, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        info = c.info("persistence")
        if info.get("rdb_bgsave_in_progress") == "0" and (started or int(info.get("rdb_saves", 0)) > saves_before):
            if info.get("rdb_last_bgsave_status") != "ok":
                raise BackupError(f"{c.host}:{c.port}: the background save failed (rdb_last_bgsave_status:"
                                  f"{info.get('rdb_last_bgsave_status')}); see the node's log")
            return info
        if time.monotonic() > deadline:
            raise BackupError(f"{c.host}:{c.port}: BGSAVE did not finish within {timeout:.0f} s")
        time.sleep(0.02)


def _send_psync(prim: Primary, timeout: float) -> _Conn:
    """Open a connection and ask for a full resynchronisation (the node snapshots its data set for us)."""
    try:
        c = _Conn(prim.host, prim.port, timeout=timeout)
        c.sock.sendall(_encode("PSYNC", "?", -1))
    except OSError as exc:
        raise BackupError(f"cannot connect to primary {prim.address}: {exc.strerror or exc}") from None
    return c


def _read_psync(c: _Conn) -> tuple[bytes, str, int]:
    """The RDB a node sends after ``PSYNC ? -1``: (rdb bytes, replication id, offset at the snapshot)."""
    where = f"{c.host}:{c.port}"
    try:
        line = c._line().lstrip(b"\n")
        while not line:  # keep-alive newlines while the node prepares the snapshot
            line = c._line().lstrip(b"\n")
        if line.startswith(b"-"):
            raise BackupError(f"{where}: PSYNC refused: {line[1:].decode(errors='replace')}")
        fields = line.split()
        if len(fields) != 3 or fields[0] != b"+FULLRESYNC":
            raise BackupError(f"{where}: unexpected reply to PSYNC: {line[:80]!r}")
        replid, offset = fields[1].decode(), int(fields[2])
        head = c._line().lstrip(b"\n")
        while not head:
            head = c._line().lstrip(b"\n")
        if head.startswith(b"$EOF:"):
            mark = head[5:]
            buf = bytearray(c.buf)
            c.buf = b""
            while not buf.endswith(mark):
                chunk = c.sock.recv(1 << 20)
                if not chunk:
                    raise ConnectionError("connection closed during the transfer")
                buf += chunk
            return bytes(buf[:-len(mark)]), replid, offset
        if not head.startswith(b"$") or not head[1:].isdigit():
            raise BackupError(f"{where}: unexpected RDB transfer header {head[:80]!r}")
        size = int(head[1:])
        buf = bytearray(c.buf)
        c.buf = b""
        while len(buf) < size:
            chunk = c.sock.recv(min(1 << 20, size - len(buf)))
            if not chunk:
                raise ConnectionError("connection closed during the transfer")
            buf += chunk
        return bytes(buf[:size]), replid, offset
    except (OSError, ConnectionError, ValueError) as exc:
        raise BackupError(f"{where}: fetching the snapshot with PSYNC failed: {exc}") from None


def _is_local(host: str) -> bool:
    return host.startswith("127.") or host in ("localhost", "::1")


def _check_rdb(data: bytes, prim: Primary, mode: str) -> dict:
    try:
        scan = scan_rdb(data)
    except RdbScanError as exc:
        raise BackupError(f"{prim.address}: the RDB file is not readable: {exc}") from None
    dbs: dict[str, int] = {}
    wrong_slot = 0
    if mode == "cluster":
        owned = bytearray(SLOT_COUNT)
        for a, b in prim.slots:
            owned[a:b + 1] = b"\x01" * (b - a + 1)
    for db, key, _t, _s, _e, _x in scan.records:
        dbs[str(db)] = dbs.get(str(db), 0) + 1
        if mode == "cluster" and not owned[keyslot(key)]:
            wrong_slot += 1
    return {"rdb_version": scan.version, "keys": len(scan.records), "dbs": dbs,
            "functions": len(scan.functions), "keys_outside_slots": wrong_slot}


def create_set(host: str, port: int, dest: str, key_file: str | None = None, *,
               timeout: float = 600.0, via: str = "auto", out=print) -> dict:
    """Take one backup set; returns its manifest.

    ``via``: ``file`` (BGSAVE, then read the node's RDB file: the node runs on this machine),
    ``psync`` (``PSYNC ? -1``: the node sends a fresh snapshot over the connection, as to a new
    replica; works for remote nodes), ``auto`` (``file`` when every node's RDB file is readable
    here, else ``psync``).
    """
    if via not in ("auto", "file", "psync"):
        raise BackupError(f"unknown --via {via!r} (auto, file or psync)")
    keys = _Keys(load_key(key_file)) if key_file else None
    started_at = time.time()
    stamp = _dt.datetime.fromtimestamp(started_at, _dt.timezone.utc)
    set_id = stamp.strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)
    mode, primaries = discover(host, port)
    root = Path(dest)
    root.mkdir(parents=True, exist_ok=True)
    work = root / f".{set_id}.partial"
    work.mkdir()
    conns: list[_Conn] = []
    try:
        try:
            for p in primaries:
                conns.append(_Conn(p.host, p.port, timeout=30))
        except OSError as exc:
            raise BackupError(f"cannot connect to primary {p.address}: {exc.strerror or exc}") from None
        try:
            servers = [c.info("server") for c in conns]
            files = []
            for c in conns:
                d = c.call("CONFIG", "GET", "dir")
                n = c.call("CONFIG", "GET", "dbfilename")
                files.append(Path(d[1].decode()) / n[1].decode() if d and n else None)
            if via == "auto":  # a path on this machine only means something if the node runs here
                local = all(_is_local(p.host) for p in primaries)
                via = "file" if local and all(f is not None and os.access(f.parent, os.R_OK) for f in files) \
                    else "psync"
            rdbs: list[bytes] = []
            extra: list[dict] = []
            if via == "file":
                # BGSAVE everywhere first, so the snapshots are as close in time as the network allows.
                started = [_start_bgsave(c) for c in conns]
                infos = [_wait_bgsave(c, s, b, timeout) for c, (s, b) in zip(conns, started)]
                for prim, info, path in zip(primaries, infos, files):
                    try:
                        rdbs.append(path.read_bytes())
                    except (OSError, AttributeError) as exc:
                        raise BackupError(f"{prim.address}: cannot read its RDB file {path}: "
                                          f"{getattr(exc, 'strerror', None) or exc} (the node must run on this "
                                          "machine; --via psync fetches it over the connection)") from None
                    extra.append({"lastsave": int(info.get("rdb_last_save_time", 0))})
            else:
                syncs = [_send_psync(p, timeout) for p in primaries]  # every node starts its snapshot now
                conns.extend(syncs)
                for sc in syncs:
                    data, replid, offset = _read_psync(sc)
                    sc.close()
                    rdbs.append(data)
                    extra.append({"replid": replid, "repl_offset": offset})
        except (OSError, ConnectionError) as exc:
            raise BackupError(f"lost the connection to a primary: {exc}") from None
        snap_done = time.time()
        nodes = []
        for prim, data, more, server in zip(primaries, rdbs, extra, servers):
            check = _check_rdb(data, prim, mode)
            name = f"{prim.id}.rdb" + (".enc" if keys else "")
            stored = keys.seal(data, _aad(set_id, name)) if keys else data
            with open(work / name, "wb") as f:
                f.write(stored)
                f.flush()
                os.fsync(f.fileno())
            nodes.append({
                "id": prim.id, "address": prim.address, "slots": [list(r) for r in prim.slots],
                "file": name, "size": len(stored), "sha256": hashlib.sha256(stored).hexdigest(),
                "rdb_size": len(data), "rdb_sha256": hashlib.sha256(data).hexdigest(),
                "via": via, **more,
                "server": {"redis_version": server.get("redis_version"),
                           "shoal_version": server.get("shoal_version")},
                **check,
            })
        manifest = {
            "format": FORMAT, "format_version": FORMAT_VERSION, "set_id": set_id,
            "created_utc": stamp.isoformat(timespec="seconds"), "created_unix": started_at,
            "snapshot_seconds": round(snap_done - started_at, 3),
            "shoal_version": _shoal_version(), "mode": mode, "source": f"{host}:{port}",
            "nodes": nodes,
            "totals": {"primaries": len(nodes), "keys": sum(n["keys"] for n in nodes),
                       "rdb_bytes": sum(n["rdb_size"] for n in nodes), "stored_bytes": sum(n["size"] for n in nodes)},
            "encryption": None if keys is None else {
                "algorithm": "AES-256-GCM", "kdf": "HKDF-SHA256", "nonce": "96-bit random per file",
                "aad": "set_id/file", "manifest_mac": "HMAC-SHA256", "key_id": keys.key_id},
        }
        if keys:
            manifest["mac"] = keys.mac(manifest)
        with open(work / "manifest.json", "w") as f:
            json.dump(manifest, f, indent=2)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.rename(work, root / set_id)
        _fsync_dir(root)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    finally:
        for c in conns:
            c.close()
    t = manifest["totals"]
    out(f"backup set {set_id}: {t['primaries']} primar{'y' if t['primaries'] == 1 else 'ies'}, "
        f"{t['keys']} keys, {_human_bytes(t['stored_bytes'])}"
        f"{', encrypted' if keys else ''} -> {root / set_id}")
    return manifest


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- list / prune

@dataclass
class SetInfo:
    path: Path
    manifest: dict | None
    problem: str = ""

    @property
    def set_id(self) -> str:
        return self.manifest["set_id"] if self.manifest else self.path.name

    @property
    def created(self) -> float:
        return float(self.manifest["created_unix"]) if self.manifest else 0.0


def _read_manifest(path: Path) -> dict:
    try:
        m = json.loads((path / "manifest.json").read_text())
    except FileNotFoundError:
        raise BackupError(f"{path}: no manifest.json (not a backup set)") from None
    except (OSError, ValueError) as exc:
        raise BackupError(f"{path}/manifest.json is unreadable: {exc}") from None
    if not isinstance(m, dict) or m.get("format") != FORMAT:
        raise BackupError(f"{path}/manifest.json is not a Shoal backup manifest")
    if m.get("format_version") != FORMAT_VERSION:
        raise BackupError(f"{path}: backup format version {m.get('format_version')} is not supported")
    try:
        float(m["created_unix"])
        str(m["set_id"])
        for n in m["nodes"]:
            str(n["file"]), int(n["size"]), str(n["sha256"]), str(n["rdb_sha256"])
    except (KeyError, TypeError, ValueError):
        raise BackupError(f"{path}/manifest.json is missing fields (damaged)") from None
    return m


def list_sets(dest: str) -> list[SetInfo]:
    root = Path(dest)
    if not root.is_dir():
        return []
    sets = []
    for p in sorted(root.iterdir()):
        if not p.is_dir() or p.name.startswith("."):
            continue
        try:
            sets.append(SetInfo(p, _read_manifest(p)))
        except BackupError as exc:
            sets.append(SetInfo(p, None, str(exc)))
    sets.sort(key=lambda s: (s.manifest is not None, s.created, s.set_id))
    return sets


def verify_files(s: SetInfo) -> str:
    """'' if every stored file is there with its recorded size and SHA-256, else what is wrong."""
    for n in s.manifest["nodes"]:
        f = s.path / n["file"]
        if not f.is_file():
            return f"missing {n['file']}"
        if f.stat().st_size != n["size"] or _sha256_file(f) != n["sha256"]:
            return f"{n['file']} does not match its checksum"
    return ""


def cmd_list(args) -> int:
    sets = list_sets(args.dest)
    now = time.time()
    rows = []
    for s in sets:
        m = s.manifest
        status = s.problem or (verify_files(s) or "verified") if args.verify else (s.problem or "ok")
        if m is None:
            rows.append({"set_id": s.path.name, "path": str(s.path), "status": status})
            continue
        rows.append({
            "set_id": m["set_id"], "path": str(s.path), "created_utc": m.get("created_utc"),
            "age_s": round(now - s.created, 1), "mode": m.get("mode"), "primaries": len(m["nodes"]),
            "keys": m.get("totals", {}).get("keys"), "stored_bytes": sum(n["size"] for n in m["nodes"]),
            "encrypted": bool(m.get("encryption")),
            "key_id": (m.get("encryption") or {}).get("key_id"), "status": status,
        })
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print(f"no backup sets in {Path(args.dest).resolve()}")
        return 0
    print(f"{'SET':<26} {'CREATED (UTC)':<25} {'AGE':>6} {'MODE':<10} {'NODES':>5} {'KEYS':>10} "
          f"{'SIZE':>10} {'ENC':<4} STATUS")
    for r in rows:
        if "created_utc" not in r:
            print(f"{r['set_id']:<26} {'-':<25} {'-':>6} {'-':<10} {'-':>5} {'-':>10} {'-':>10} {'-':<4} "
                  f"{r['status']}")
            continue
        print(f"{r['set_id']:<26} {r['created_utc']:<25} {_age(r['age_s']):>6} {r['mode']:<10} "
              f"{r['primaries']:>5} {r['keys'] if r['keys'] is not None else '-':>10} "
              f"{_human_bytes(r['stored_bytes']):>10} {'yes' if r['encrypted'] else 'no':<4} {r['status']}")
    return 0


def _age(seconds: float) -> str:
    s = max(0, int(seconds))
    if s < 120:
        return f"{s}s"
    if s < 7200:
        return f"{s // 60}m"
    if s < 172800:
        return f"{s // 3600}h"
    return f"{s // 86400}d"


def prune_sets(dest: str, keep: int | None = None, max_age: float | None = None, *,
               dry_run: bool = False, now: float | None = None, out=print) -> list[str]:
    """Remove sets beyond the ``keep`` newest or older than ``max_age`` seconds; returns removed ids."""
    if keep is not None and keep < 1:
        raise BackupError("--keep must be at least 1")
    now = time.time() if now is None else now
    good = [s for s in list_sets(dest) if s.manifest is not None]
    good.sort(key=lambda s: (s.created, s.set_id), reverse=True)  # newest first
    removed = []
    for i, s in enumerate(good):
        if i == 0:
            continue  # never the newest
        too_many = keep is not None and i >= keep
        too_old = max_age is not None and now - s.created > max_age
        if too_many or too_old:
            removed.append(s.set_id)
            why = "beyond --keep" if too_many else "older than --max-age"
            if dry_run:
                out(f"would remove {s.set_id} ({why})")
                continue
            # Rename first: a half-deleted set must never look like a valid one.
            trash = s.path.parent / f".{s.path.name}.deleting"
            os.rename(s.path, trash)
            shutil.rmtree(trash, ignore_errors=True)
            out(f"removed {s.set_id} ({why})")
    return removed


# --------------------------------------------------------------------------- restore

def _resolve_set(dest: str, name: str) -> Path:
    p = Path(name)
    if (p / "manifest.json").is_file():
        return p
    root = Path(dest)
    if name == "latest":
        sets = [s for s in list_sets(dest) if s.manifest is not None]
        if not sets:
            raise BackupError(f"no backup sets in {root.resolve()}")
        return sets[-1].path
    if (root / name / "manifest.json").exists() or (root / name).is_dir():
        return root / name
    matches = [s.path for s in list_sets(dest) if s.set_id.startswith(name)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise BackupError(f"{name!r} matches {len(matches)} sets; give more of the id")
    raise BackupError(f"no backup set {name!r} in {root.resolve()}")


def load_verified(path: Path, key_file: str | None) -> tuple[dict, list[tuple[dict, bytes, object]]]:
    """Check everything about a set before a single write: returns (manifest, [(node, rdb bytes, scan)])."""
    m = _read_manifest(path)
    enc = m.get("encryption")
    keys = None
    if enc:
        if not key_file:
            raise BackupError(f"set {m['set_id']} is encrypted (key id {enc.get('key_id')}); "
                              "pass --encrypt-key-file")
        keys = _Keys(load_key(key_file))
        if keys.key_id != enc.get("key_id"):
            raise BackupError(f"wrong key: set {m['set_id']} was encrypted with key id {enc.get('key_id')}, "
                              f"this key file has key id {keys.key_id}")
        if not hmac.compare_digest(str(m.get("mac", "")), keys.mac(m)):
            raise BackupError(f"{path}/manifest.json failed authentication: it was modified after the backup")
    elif "mac" in m:
        raise BackupError(f"{path}/manifest.json claims a MAC but no encryption: it was modified")
    loaded = []
    for n in m["nodes"]:
        f = path / n["file"]
        try:
            stored = f.read_bytes()
        except OSError as exc:
            raise BackupError(f"cannot read {f}: {exc.strerror or exc}") from None
        if len(stored) != n["size"] or hashlib.sha256(stored).hexdigest() != n["sha256"]:
            raise BackupError(f"{f} is corrupt or was modified: its SHA-256 does not match the manifest")
        if keys is None and stored.startswith(ENC_MAGIC):
            raise BackupError(f"{f} is encrypted but the manifest says the set is not: the manifest was modified")
        data = keys.open(stored, _aad(m["set_id"], n["file"]), str(f)) if keys else stored
        if hashlib.sha256(data).hexdigest() != n["rdb_sha256"]:
            raise BackupError(f"{f}: the RDB inside does not match its SHA-256 in the manifest")
        try:
            scan = scan_rdb(data)
        except RdbScanError as exc:
            raise BackupError(f"{f}: not a readable RDB file: {exc}") from None
        loaded.append((n, data, scan))
    return m, loaded


def _shape_problem(m: dict, mode: str, targets: list[Primary]) -> str:
    src_mode = m.get("mode")
    if src_mode == "standalone" or mode == "standalone":
        if src_mode != mode:
            return f"the set is from a {src_mode} node and the target is {mode}"
        return ""
    if len(m["nodes"]) != len(targets):
        return f"the set has {len(m['nodes'])} primaries, the target cluster has {len(targets)}"
    by_ranges = {tuple(map(tuple, p.slots)): p for p in targets}
    for n in m["nodes"]:
        if tuple(tuple(r) for r in n["slots"]) not in by_ranges:
            return (f"no target primary owns exactly the slots of backed-up primary {n['id'][:8]} "
                    f"({_ranges_text(map(tuple, n['slots']))})")
    return ""


def restore_set(set_path: Path, host: str, port: int, key_file: str | None = None, *,
                any_shape: bool = False, force: bool = False, out=print) -> dict:
    m, loaded = load_verified(set_path, key_file)
    mode, targets = discover(host, port)
    problem = _shape_problem(m, mode, targets)
    if problem and not any_shape:
        raise BackupError(f"the target does not have the same shape: {problem} (--any-shape routes every key "
                          "to its slot's owner anyway)")
    owner = [None] * SLOT_COUNT
    if mode == "cluster":
        for i, t in enumerate(targets):
            for a, b in t.slots:
                for s in range(a, b + 1):
                    owner[s] = i
        holes = sum(o is None for o in owner)
        if holes:
            raise BackupError(f"the target cluster does not serve {holes} slots; every slot must be covered")
        for n, _data, scan in loaded:
            other = sorted({db for db, *_ in scan.records if db != 0})
            if other:
                raise BackupError(f"{n['file']} holds keys in database(s) {other}; a cluster only has db 0")
    conns: list[_Conn] = []
    try:
        try:
            for t in targets:
                conns.append(_Conn(t.host, t.port, timeout=60))
        except OSError as exc:
            raise BackupError(f"cannot connect to target primary {t.address}: {exc.strerror or exc}") from None
        if not force:
            for c, t in zip(conns, targets):
                size = _total_keys(c, mode)
                if size:
                    raise BackupError(f"target primary {t.address} already holds {size} keys "
                                      "(restore into an empty cluster, or pass --force to overwrite keys)")
        sent = [0] * len(targets)
        per_slot: dict[int, int] = {}
        per_db: list[dict[int, int]] = [dict() for _ in targets]
        expired = 0
        now_ms = int(time.time() * 1000)
        bufs = [[] for _ in targets]
        sizes = [0] * len(targets)
        counts = [0] * len(targets)
        current_db = [0] * len(targets)
        errors: list[str] = []
        short_lived: list[tuple[int, int, int, int]] = []  # keys that may expire before the counts are read

        def flush(i: int) -> None:
            if not counts[i]:
                return
            replies = conns[i].pipeline(b"".join(bufs[i]), counts[i])
            for r in replies:
                if isinstance(r, RespError):
                    errors.append(f"{targets[i].address}: {r}")
            bufs[i].clear()
            sizes[i] = counts[i] = 0
            if errors:
                raise BackupError(f"RESTORE failed: {errors[0]}" + (f" (and {len(errors) - 1} more)"
                                                                    if len(errors) > 1 else ""))

        def queue(i: int, cmd: bytes) -> None:
            bufs[i].append(cmd)
            sizes[i] += len(cmd)
            counts[i] += 1
            if sizes[i] >= PIPELINE_BYTES or counts[i] >= PIPELINE_COMMANDS:
                flush(i)

        try:
            for n, data, scan in loaded:
                for db, key, rtype, start, end, expire in scan.records:
                    if expire is not None and expire <= now_ms:
                        expired += 1
                        continue
                    slot = keyslot(key)
                    i = owner[slot] if mode == "cluster" else 0
                    if mode == "standalone" and current_db[i] != db:
                        queue(i, _encode("SELECT", db))
                        current_db[i] = db
                    if expire is not None and expire < now_ms + SHORT_TTL_MS:
                        short_lived.append((i, db, slot, expire))
                    payload = dump_payload(data, rtype, start, end, scan.version)
                    queue(i, _restore_cmd(key, expire or 0, payload))
                    sent[i] += 1
                    per_db[i][db] = per_db[i].get(db, 0) + 1
                    per_slot[slot] = per_slot.get(slot, 0) + 1
                for code in scan.functions:
                    for i in range(len(targets)):
                        queue(i, _encode("FUNCTION", "LOAD", "REPLACE", code))
            for i in range(len(targets)):
                if mode == "standalone" and current_db[i] != 0:
                    queue(i, _encode("SELECT", 0))
                flush(i)
        except (OSError, ConnectionError) as exc:
            raise BackupError(f"lost the connection to a target primary: {exc}") from None
        # Verify: keys per node (and per db), and per slot in cluster mode. A key restored with little
        # time to live may be gone by now: those lower the count that is still acceptable.
        mismatches = []
        gone_node: dict[tuple[int, int], int] = {}
        gone_slot: dict[int, int] = {}
        horizon = int(time.time() * 1000) + 2000
        for i, db, slot, expire in short_lived:
            if expire <= horizon:
                gone_node[(i, db)] = gone_node.get((i, db), 0) + 1
                gone_slot[slot] = gone_slot.get(slot, 0) + 1
        for i, (c, t) in enumerate(zip(conns, targets)):
            for db, want in sorted(per_db[i].items()):
                if db:
                    c.call("SELECT", db)
                got = c.call("DBSIZE")
                if db:
                    c.call("SELECT", 0)
                if not want - gone_node.get((i, db), 0) <= got <= (got if force else want):
                    mismatches.append(f"{t.address} db {db}: DBSIZE {got}, restored {want}")
        if mode == "cluster":
            by_node: dict[int, list[int]] = {}
            for slot in per_slot:
                by_node.setdefault(owner[slot], []).append(slot)
            for i, slots in by_node.items():
                for j in range(0, len(slots), PIPELINE_COMMANDS):
                    chunk = slots[j:j + PIPELINE_COMMANDS]
                    got = conns[i].pipeline(b"".join(_encode("CLUSTER", "COUNTKEYSINSLOT", s) for s in chunk),
                                            len(chunk))
                    for s, g in zip(chunk, got):
                        if not (isinstance(g, int) and per_slot[s] - gone_slot.get(s, 0) <= g
                                <= (g if force else per_slot[s])):
                            mismatches.append(f"slot {s} on {targets[i].address}: {g} keys, restored {per_slot[s]}")
        report = {
            "set_id": m["set_id"], "target": f"{host}:{port}", "mode": mode,
            "nodes": [{"address": t.address, "id": t.id, "slots": [list(r) for r in t.slots], "keys": sent[i]}
                      for i, t in enumerate(targets)],
            "restored": sum(sent), "skipped_expired": expired,
            "functions": sum(len(s.functions) for _n, _d, s in loaded),
            "shape": "same" if not problem else f"different ({problem})",
            "mismatches": mismatches,
        }
    finally:
        for c in conns:
            c.close()
    for i, t in enumerate(targets):
        out(f"  {t.address} ({t.id[:8]}, slots {_ranges_text(t.slots)}): {sent[i]} keys")
    out(f"restored set {m['set_id']}: {report['restored']} keys into {len(targets)} primar"
        f"{'y' if len(targets) == 1 else 'ies'}" + (f", {expired} already expired (skipped)" if expired else ""))
    if mismatches:
        raise BackupError("verification failed after the restore: " + "; ".join(mismatches[:5])
                          + (f" (and {len(mismatches) - 5} more)" if len(mismatches) > 5 else ""))
    out("verified: the key counts (DBSIZE per primary" + (", COUNTKEYSINSLOT per slot" if mode == "cluster" else "")
        + (") are at least what was restored (--force: the target may hold other keys too)" if force
           else ") equal what was restored"))
    return report


def _total_keys(c: _Conn, mode: str) -> int:
    if mode == "cluster":
        return int(c.call("DBSIZE"))
    ks = c.info("keyspace")
    total = 0
    for k, v in ks.items():
        if k.startswith("db"):
            total += int(dict(p.split("=") for p in v.split(",")).get("keys", 0))
    return total


# --------------------------------------------------------------------------- schedule

class _Stop(Exception):
    pass


def run_schedule(args, period: float, max_age: float | None) -> int:
    """Take a set every ``period`` seconds until SIGINT/SIGTERM.

    The first signal lets the set in progress finish (and be pruned after) and then stops; a
    second one stops at once (a half-written set is removed: it only ever exists as ``.partial``).
    """
    host, port = _address(args.cluster)
    stop = {"requested": False}

    def on_signal(signum, frame):
        if stop["requested"]:
            raise _Stop()
        stop["requested"] = True

    old = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    taken = failures = 0
    say = lambda s: print(s, flush=True)  # noqa: E731
    say(f"taking a backup set every {args.schedule} into {Path(args.dest).resolve()} "
        f"(keep {args.keep if args.keep else 'all'}{f', max age {args.max_age}' if max_age else ''}); "
        "Ctrl-C to stop")
    try:
        next_at = time.monotonic()
        while not stop["requested"]:
            try:
                create_set(host, port, args.dest, args.encrypt_key_file, timeout=args.timeout, via=args.via,
                           out=say)
                taken += 1
                if args.keep or max_age:
                    prune_sets(args.dest, args.keep, max_age, out=say)
            except BackupError as exc:
                failures += 1
                _err(f"{exc} (will try again at the next period)")
            if args.max_runs and taken + failures >= args.max_runs:
                break
            next_at += period
            if next_at < time.monotonic():  # a set took longer than a period: start the next one now
                next_at = time.monotonic()
            while not stop["requested"] and (left := next_at - time.monotonic()) > 0:
                time.sleep(min(left, 0.2))
    except _Stop:
        pass
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
    say(f"schedule stopped: {taken} set(s) taken, {failures} failure(s)")
    return 0


# --------------------------------------------------------------------------- CLI

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="shoal backup", description="Backup sets of a Shoal cluster.",
                                epilog="See `pydoc cluster.backup` for the formats.")
    sub = p.add_subparsers(dest="action", required=True)
    c = sub.add_parser("create", help="take a backup set (or one every --schedule period)")
    c.add_argument("--cluster", default="127.0.0.1:7000", help="any node of the cluster, HOST:PORT")
    c.add_argument("--encrypt-key-file", help="encrypt with this key (from `shoal backup keygen`)")
    c.add_argument("--schedule", help="repeat every period (e.g. 15m) until interrupted")
    c.add_argument("--keep", type=int, help="with --schedule: prune to the N newest sets after each one")
    c.add_argument("--max-age", help="with --schedule: prune sets older than this (e.g. 7d)")
    c.add_argument("--max-runs", type=int, help=argparse.SUPPRESS)
    c.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for each BGSAVE (600)")
    c.add_argument("--via", choices=("auto", "file", "psync"), default="auto",
                   help="file: BGSAVE and copy the node's RDB (local nodes); psync: the node streams a "
                        "snapshot over the connection (PSYNC ? -1); auto (default): file if readable here")
    ls = sub.add_parser("list", help="list the backup sets")
    ls.add_argument("--json", action="store_true")
    ls.add_argument("--verify", action="store_true", help="also check every file's size and SHA-256")
    r = sub.add_parser("restore", help="restore a set into a (fresh) cluster of the same shape")
    r.add_argument("set", help="set id (or a unique prefix, or 'latest', or the set's directory)")
    r.add_argument("--cluster", default="127.0.0.1:7000", help="any node of the target, HOST:PORT")
    r.add_argument("--encrypt-key-file", "--key-file", dest="encrypt_key_file", help="key of an encrypted set")
    r.add_argument("--any-shape", action="store_true", help="do not require the same slot layout")
    r.add_argument("--force", action="store_true", help="restore even if the target already has keys")
    r.add_argument("--json", action="store_true", help="print the report as JSON")
    pr = sub.add_parser("prune", help="delete old sets (retention by count and age)")
    pr.add_argument("--keep", type=int, help="keep the N newest sets")
    pr.add_argument("--max-age", help="remove sets older than this (e.g. 7d)")
    pr.add_argument("--dry-run", action="store_true")
    k = sub.add_parser("keygen", help="write a new random encryption key file (mode 0600)")
    k.add_argument("file")
    k.add_argument("--force", action="store_true", help="overwrite an existing file")
    for q in (c, ls, r, pr):
        q.add_argument("--dest", default=DEFAULT_DEST, help=f"where the sets live (default ./{DEFAULT_DEST})")
    for q in (c, r):
        q.add_argument("--user", help="ACL user for AUTH (with --password)")
        q.add_argument("--password", help="password for AUTH (default: $REDISCLI_AUTH, as redis-cli)")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if hasattr(args, "password"):
        set_auth(args.user, args.password or os.environ.get("REDISCLI_AUTH"))
    try:
        max_age = parse_duration(args.max_age) if getattr(args, "max_age", None) else None
        if args.action == "create":
            if args.schedule:
                period = parse_duration(args.schedule)
                if period <= 0:
                    raise ValueError("--schedule must be positive")
                if args.keep is not None and args.keep < 1:
                    raise ValueError("--keep must be at least 1")
                return run_schedule(args, period, max_age)
            if args.keep is not None or max_age is not None:
                raise ValueError("--keep/--max-age with create need --schedule (or use `shoal backup prune`)")
            host, port = _address(args.cluster)
            create_set(host, port, args.dest, args.encrypt_key_file, timeout=args.timeout, via=args.via)
            return 0
        if args.action == "list":
            return cmd_list(args)
        if args.action == "restore":
            host, port = _address(args.cluster)
            path = _resolve_set(args.dest, args.set)
            report = restore_set(path, host, port, args.encrypt_key_file, any_shape=args.any_shape,
                                 force=args.force, out=(lambda s: None) if args.json else print)
            if args.json:
                print(json.dumps(report, indent=2))
            return 0
        if args.action == "prune":
            if args.keep is None and max_age is None:
                raise ValueError("prune needs --keep N and/or --max-age AGE")
            removed = prune_sets(args.dest, args.keep, max_age, dry_run=args.dry_run)
            if not removed:
                print("nothing to prune")
            return 0
        if args.action == "keygen":
            keygen(args.file, args.force)
            print(f"wrote a new key to {args.file} (mode 0600); keep a copy somewhere safe: "
                  "without it the encrypted sets cannot be restored")
            return 0
    except ValueError as exc:
        parser.error(str(exc))
    except BackupError as exc:
        _err(str(exc))
        return 1
    except (OSError, ConnectionError, RespError) as exc:
        _err(f"{type(exc).__name__}: {exc}")
        return 1
    return 2  # pragma: no cover


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
