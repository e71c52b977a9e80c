"""Loading an append-only directory at start-up: the BASE file, then each INCR file in order.

Redis's ``loadAppendOnlyFiles`` / ``loadSingleAppendOnlyFile``. A file that
starts with ``REDIS`` is an RDB (a BASE written with the RDB preamble, or an
old-style single AOF whose RDB preamble is followed by commands); the rest is
RESP commands, run one by one through the ordinary dispatcher as a fake
client that never blocks and whose replies are dropped (Redis's AOF client).
``#`` lines are annotations (``#TS:`` timestamps) and are skipped.

While loading, nothing expires (Redis's ``keyIsExpired`` answers "not
expired" while ``server.loading``): every database runs with
``expire_policy`` 2, so commands see keys whose time has passed, and a
``PEXPIREAT key <ms>`` whose time has passed sets that time on the key
instead of deleting it (``checkAlreadyExpired`` is false while loading). The
key is dropped once the server runs -- it is never deleted and then
re-created without a TTL by a later command of the log, which is how a
replay would resurrect a key. Commands still see the real time (XCLAIM
TIME, consumers' seen-time), as in Redis.

End of file in the middle of a command (the server died while appending):
with ``aof-load-truncated yes`` the last file is truncated to its last
complete command -- or to just before an unfinished MULTI -- with Redis's
warnings, else start-up stops. Anything else malformed stops start-up with a
message naming the file and the offset.
"""

from __future__ import annotations

import os
import time

from node.client import REPLY_ON, Client

__all__ = [
    "AOF_EMPTY", "AOF_FAILED", "AOF_NOT_EXIST", "AOF_OK", "AOF_OPEN_ERR", "AOF_TRUNCATED",
    "AofClient", "load_files", "load_single",
]

AOF_OK, AOF_NOT_EXIST, AOF_EMPTY, AOF_OPEN_ERR, AOF_FAILED, AOF_TRUNCATED = range(6)


class AofClient(Client):
    """The fake client AOF commands run as (CLIENT_ID_AOF): no socket, never blocks, replies dropped."""

    __slots__ = ()

    def __init__(self, node) -> None:  # noqa: D107 -- no socket, no parser: not Client.__init__
        for slot in Client.__slots__:
            setattr(self, slot, None)
        self.node = node
        self.clock = node.clock
        self.id = -1
        self.fd = -1
        self.addr = ""
        self.laddr = ""
        self.out = bytearray()
        self.resp3 = False
        self.db_index = 0
        self.db = node.dbs[0]
        self.name = b""
        self.lib_name = b""
        self.lib_ver = b""
        self.authenticated = True
        self.user = b"default"
        self.created_ms = 0
        self.last_interaction_ms = 0
        self.close_after_reply = False
        self.killed = False
        self.reply_mode = REPLY_ON
        self.no_evict = True
        self.multi = None
        self.watched = None
        self.dirty_cas = False
        self.pubsub_channels = {}
        self.pubsub_patterns = {}
        self.pubsub_shard_channels = {}
        self.deny_blocking = True
        self.multi_failed = False
        self.asking = False
        self.readonly = False
        self.gated = False
        self.routed = False
        self.flags = ""
        self.qbuf_peak = 0
        self.is_unix = False
        self.obuf_soft_limit_reached_time = 0

    def refresh_gate(self) -> None:
        self.gated = False


class _Truncated(Exception):
    """End of file inside a command."""


class _Format(Exception):
    """Bad file format (not RESP where a command should start)."""


def _atoi(data: bytes) -> int:
    """C's atoi/strtol on a header line: leading sign and digits, 0 if none."""
    text = data.strip()
    end = 1 if text[:1] in (b"-", b"+") else 0
    while end < len(text) and 48 <= text[end] <= 57:
        end += 1
    try:
        return int(text[:end])
    except ValueError:
        return 0


def _load_rdb_part(node, fh, name: str, old_style: bool) -> int:
    """Load an RDB (the BASE, or an old-style preamble) from ``fh``; returns the offset after it."""
    from node.persistence.rdb import RdbError, load_rdb
    from node.persistence.snapshot import LoadError

    log = node.logger
    log.notice("Reading RDB preamble from AOF file..." if old_style else "Reading RDB base file on AOF loading...")
    loader = load_rdb(fh, node.config)
    dbs = node.dbs
    header_pending = True
    loaded = 0
    try:
        for db_index, key, value, expire_ms in loader:
            if header_pending:
                header_pending = False
                node.rdb._loaded_header(loader.aux, loader.functions)
            if db_index >= len(dbs):
                raise LoadError(f"the file has keys in DB {db_index} but this server is configured with "
                                f"{len(dbs)} databases (raise 'databases')")
            db = dbs[db_index]
            before = db.size
            db.store_quietly(key, value)
            if db.size == before:
                raise LoadError(f"duplicated key '{key.decode('utf-8', 'backslashreplace')}' in DB {db_index}")
            if expire_ms is not None:  # RDBFLAGS_AOF_PREAMBLE: keys already expired are kept too
                db.set_expire(key, expire_ms)
            loaded += 1
        if header_pending:
            node.rdb._loaded_header(loader.aux, loader.functions)
    except (RdbError, LoadError) as exc:
        offset = getattr(exc, "offset", None)
        where = f" at offset {offset}" if offset is not None else ""
        log.warning(f"Error loading the RDB part of {name}{where}: {getattr(exc, 'message', None) or exc}")
        raise
    node.rdb.load_keys_loaded += loaded
    return loader.end_offset


def load_single(aof, name: str, *, is_last: bool) -> int:
    """loadSingleAppendOnlyFile: run one file's commands; an AOF_* status."""
    from node.dispatch import call, resolve
    from node.resp import ErrorReply

    node = aof.node
    log = node.logger
    path = os.path.join(aof.dirname, name)
    try:
        fh = open(path, "rb", buffering=1 << 16)
    except FileNotFoundError as exc:
        log.warning(f"The append log file {name} doesn't exist: {exc.strerror}")
        return AOF_NOT_EXIST
    except OSError as exc:
        log.warning(f"Fatal error: can't open the append log file {name} for reading: {exc.strerror}")
        return AOF_OPEN_ERR
    with fh:
        size = os.fstat(fh.fileno()).st_size
        if size == 0:
            return AOF_EMPTY
        client = AofClient(node)
        offset = 0
        valid_up_to = 0
        valid_before_multi = 0
        load_truncated = node.config["aof-load-truncated"]
        if fh.read(5) == b"REDIS":
            fh.seek(0)
            old_style = name == node.config["appendfilename"]
            try:
                offset = _load_rdb_part(node, fh, name, old_style)
            except Exception:
                log.warning(f"Error reading the RDB preamble of the AOF file {name}, AOF loading aborted" if old_style
                            else f"Error reading the RDB base file {name}, AOF loading aborted")
                return AOF_FAILED
            valid_up_to = offset
            if old_style:
                log.notice("Reading the remaining AOF tail...")
        fh.seek(offset)
        readline = fh.readline
        read = fh.read
        try:
            while True:
                line = readline()
                if not line:
                    break
                start = offset
                offset += len(line)
                if line[:1] == b"#":
                    if load_truncated:
                        valid_up_to = offset
                    continue
                if line[:1] != b"*":
                    raise _Format(start)
                if not line.endswith(b"\n"):
                    raise _Truncated()
                argc = _atoi(line[1:])
                if argc < 1:
                    raise _Format(start)
                argv = []
                for _ in range(argc):
                    line = readline()
                    if not line:
                        raise _Truncated()
                    offset += len(line)
                    if line[:1] != b"$":
                        raise _Format(offset - len(line))
                    if not line.endswith(b"\n"):
                        raise _Truncated()
                    length = _atoi(line[1:])
                    if length < 0:
                        raise _Format(offset - len(line))
                    data = read(length) if length else b""
                    if len(data) < length:
                        raise _Truncated()
                    crlf = read(2)
                    if len(crlf) < 2:
                        raise _Truncated()
                    offset += length + 2
                    argv.append(data)
                cmd = resolve(argv)
                if type(cmd) is ErrorReply:
                    shown = argv[0].decode("utf-8", "backslashreplace")
                    log.warning(f"Unknown command '{shown}' reading the append only file {name}")
                    log.warning(f"(the command starts at offset {start} of {name}: {cmd.message})")
                    return AOF_FAILED
                top = cmd.parent or cmd
                if top.name == "pexpireat" and len(argv) == 3 and client.multi is None and \
                        _expire_in_past(client, argv):
                    if load_truncated:
                        valid_up_to = offset
                    continue
                if top.name == "multi":
                    valid_before_multi = valid_up_to
                if client.multi is not None and top.name != "exec":
                    client.multi.append((cmd, argv))
                else:
                    call(client, cmd, argv)
                client.out.clear()
                if load_truncated:
                    valid_up_to = offset
                delay = aof.key_load_delay
                if delay:
                    time.sleep(delay / 1_000_000 if delay > 0 else 0)
        except _Format as exc:
            log.warning(f"Bad file format reading the append only file {name}: "
                        "make a backup of your AOF file, then use ./redis-check-aof --fix <filename.manifest>")
            log.warning(f"(the bad data starts at offset {exc.args[0]} of {name})")
            return AOF_FAILED
        except _Truncated:
            pass
        else:
            if client.multi is None:
                return AOF_OK
            log.warning(f"Revert incomplete MULTI/EXEC transaction in AOF file {name}")
            valid_up_to = valid_before_multi
            client.multi = None
        # Unexpected end of file.
        if load_truncated:
            log.warning(f"!!! Warning: short read while loading the AOF file {name}!!!")
            log.warning(f"!!! Truncating the AOF {name} at offset {valid_up_to} !!!")
            try:
                os.truncate(path, valid_up_to)
            except OSError as exc:
                log.warning(f"Error truncating the AOF file {name}: {exc.strerror}")
            else:
                log.warning(f"AOF {name} loaded anyway because aof-load-truncated is enabled")
                return AOF_TRUNCATED
        log.warning(f"Unexpected end of file reading the append only file {name}. You can: "
                    "1) Make a backup of your AOF file, then use ./redis-check-aof --fix <filename.manifest>. "
                    "2) Alternatively you can set the 'aof-load-truncated' configuration option to yes and "
                    "restart the server.")
        log.warning(f"(the last complete command of {name} ends at offset {valid_up_to}; the file has {size} bytes)")
        return AOF_FAILED


def load_files(aof, manifest) -> int:
    """loadAppendOnlyFiles: BASE then INCR files; an AOF_* status. Sets the size counters."""
    node = aof.node
    log = node.logger
    files = manifest.files()
    if not files:
        return AOF_NOT_EXIST
    total = 0
    for info in files:
        try:
            total += os.stat(os.path.join(aof.dirname, info.name)).st_size
        except OSError as exc:
            log.warning(f"Unable to obtain the AOF file {info.name} length. stat: {exc.strerror}")
            return AOF_FAILED
    if total == 0:
        return AOF_EMPTY
    saved_policies = [db.expire_policy for db in node.dbs]
    for db in node.dbs:
        db.expire_policy = 2  # nothing expires while loading (keyIsExpired while server.loading)
    base_size = 0
    ret = AOF_OK
    try:
        for number, info in enumerate(files, 1):
            last = number == len(files)
            kind = "base" if info is manifest.base else "incr"
            if info is manifest.base:
                base_size = os.stat(os.path.join(aof.dirname, info.name)).st_size
            started = time.perf_counter()
            ret = load_single(aof, info.name, is_last=last)
            if ret == AOF_OK or (ret == AOF_TRUNCATED and last):
                log.notice(f"DB loaded from {kind} file {info.name}: %.3f seconds" % (time.perf_counter() - started))
            if ret == AOF_EMPTY and kind == "incr":
                ret = AOF_OK
            if ret == AOF_TRUNCATED and not last:
                ret = AOF_FAILED
                log.warning("Fatal error: the truncated file is not the last file")
            if ret in (AOF_OPEN_ERR, AOF_FAILED, AOF_NOT_EXIST):
                return AOF_FAILED if ret == AOF_NOT_EXIST else ret
    finally:
        for db, policy in zip(node.dbs, saved_policies):
            db.expire_policy = policy
    aof.current_size = sum(os.stat(os.path.join(aof.dirname, i.name)).st_size for i in files)
    aof.rewrite_base_size = base_size
    aof.fsync_offset = aof.current_size
    return ret


def _expire_in_past(client, argv) -> bool:
    """``PEXPIREAT key ms`` with ``ms`` already past, on an existing key: set it as is (True), as Redis
    does while loading; anything else (False) runs as a command."""
    try:
        when = int(argv[2])
    except ValueError:
        return False
    client.clock.pinned = None
    db = client.db
    if when > db.now() or db.lookup(argv[1]) is None:
        return False
    db.set_expire(argv[1], when)
    return True
