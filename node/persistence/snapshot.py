"""RDB snapshots of a running node: SAVE, BGSAVE, save points, the shutdown save, loading at start-up.

The file format is ``node.persistence.rdb``'s; this module decides when a
snapshot is taken, where it goes, and what happens when it fails -- with the
log lines, INFO fields and error replies of Redis 7.0.

Crash safety (a process killed at any instant leaves the last good file):
every snapshot is written to ``temp-<pid>.rdb`` in the data directory,
flushed and fsynced, then renamed over ``dbfilename`` -- rename is atomic, so
the target is always either the old complete file or the new complete file --
and the directory is fsynced so the rename itself survives a power cut.

BGSAVE forks. The child owns a copy-on-write image of the keyspace frozen at
the instant of the fork (a consistent point-in-time snapshot for free), writes
the file, renames it and ``os._exit``s; it never returns into trio, closes
every inherited descriptor it does not need (the listening sockets above all,
so a restarted server can bind its port even while an orphaned child is still
writing), and reports progress and its copy-on-write size through a pipe. The
parent keeps serving; its cron (``cron()``, called ``hz`` times a second by
``node.server``) reaps the child with a non-blocking ``waitpid`` and updates
the INFO state, as Redis's ``checkChildrenDone``. CPython touches every object
it walks (reference counts), so the child copies most pages of the dataset it
visits; ``gc.freeze()`` before the fork at least keeps the cyclic GC of both
processes from touching the rest. The figures are in INFO
(``rdb_last_cow_size``, ``latest_fork_usec``) and the log ("Fork CoW for RDB").

Everything here is synchronous and free of trio: the server's cron and the
command handlers call in.

Differences from Redis, on purpose:

* the server ignores SIGXFSZ, so a save that reaches the file size limit
  fails with "File too large" (and is reported like a full disk) instead of
  killing the process;
* a file that cannot be loaded at start-up stops the server with one line
  naming the file, the byte offset and what was expected, instead of running
  redis-check-rdb; the file is never modified.
"""

from __future__ import annotations

import gc
import os
import signal
import struct
import time
import warnings
from typing import BinaryIO, Callable

__all__ = [
    "BGSAVE_RETRY_DELAY",
    "LoadError",
    "MISCONF",
    "Snapshots",
    "SaveFailed",
    "fsync_directory",
    "load_dataset",
    "write_atomically",
    "write_dataset",
]

#: Seconds before a failed background save may be retried by a save point (CONFIG_BGSAVE_RETRY_DELAY).
BGSAVE_RETRY_DELAY = 5
#: rdb-save-incremental-fsync: fsync every this many bytes written (REDIS_AUTOSYNC_BYTES).
AUTOSYNC_BYTES = 4 * 1024 * 1024
MISCONF = (
    "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. "
    "Commands that may modify the data set are disabled, because this instance is configured to report "
    "errors during writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check "
    "the Redis logs for details about the RDB error."
)

# Child -> parent messages on the info pipe: type, keys processed, copy-on-write bytes.
_INFO = struct.Struct("<Bqq")
_INFO_CURRENT = 1  # progress while saving (CHILD_INFO_TYPE_CURRENT_INFO)
_INFO_COW = 2  # the final copy-on-write size of a successful save (CHILD_INFO_TYPE_RDB_COW_SIZE)
_PROGRESS_EVERY_KEYS = 1024
_PROGRESS_EVERY_S = 1.0


# ------------------------------------------------------------- file safety


class SaveFailed(Exception):
    """A snapshot could not be written; ``str()`` is the log line Redis would print."""


def fsync_directory(path: str) -> None:
    """fsync the directory holding ``path`` so a rename into it is durable."""
    directory = os.path.dirname(os.path.abspath(path))
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _SyncingFile:
    """A write-only file that fsyncs every ``AUTOSYNC_BYTES`` (rdb-save-incremental-fsync).

    Keeps the dirty page cache of a big snapshot bounded instead of handing
    the kernel gigabytes to flush at the final fsync.
    """

    __slots__ = ("raw", "fd", "pending", "every")

    def __init__(self, raw: BinaryIO, every: int) -> None:
        self.raw = raw
        self.fd = raw.fileno()
        self.pending = 0
        self.every = every

    def write(self, data) -> int:
        n = self.raw.write(data)
        self.pending += len(data)
        if self.pending >= self.every:
            self.raw.flush()
            os.fsync(self.fd)
            self.pending = 0
        return n

    def flush(self) -> None:
        self.raw.flush()

    def tell(self) -> int:
        return self.raw.tell()


def _cwd() -> str:
    try:
        return os.getcwd()
    except OSError:
        return "unknown"


def write_atomically(filename: str, tmpname: str, produce: Callable[[BinaryIO], None], *,
                     incremental_fsync: bool = True) -> None:
    """Write a file the crash-safe way: temp file, flush, fsync, close, rename, fsync the directory.

    ``produce(fileobj)`` writes the content. On any failure the temp file is
    removed, ``filename`` is left exactly as it was, and ``SaveFailed``
    carries Redis's log line for the step that failed.
    """
    try:
        fd = os.open(tmpname, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    except OSError as exc:
        raise SaveFailed(
            f"Failed opening the temp RDB file {tmpname} (in server root dir {_cwd()}) for saving: "
            f"{exc.strerror or exc}"
        ) from None
    step = "rdbSaveRio"
    fh = None
    try:
        fh = os.fdopen(fd, "wb", buffering=1 << 16)
        produce(_SyncingFile(fh, AUTOSYNC_BYTES) if incremental_fsync else fh)
        step = "fflush"
        fh.flush()
        step = "fsync"
        os.fsync(fd)
        step = "fclose"
        handle, fh = fh, None
        handle.close()
    except Exception as exc:  # an OSError, or a bug in the writer: either way the save fails cleanly
        if fh is not None:
            try:
                fh.close()
            except Exception:
                pass
        _unlink_quietly(tmpname)
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else f"{type(exc).__name__}: {exc}"
        raise SaveFailed(f"Write error saving DB on disk({step}): {reason}") from None
    try:
        os.rename(tmpname, filename)
    except OSError as exc:
        _unlink_quietly(tmpname)
        raise SaveFailed(
            f"Error moving temp DB file {tmpname} on the final destination {filename} "
            f"(in server root dir {_cwd()}): {exc.strerror or exc}"
        ) from None
    try:
        fsync_directory(filename)
    except OSError as exc:
        raise SaveFailed(f"Failed to fsync directory while saving DB: {exc.strerror or exc}") from None


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


# ------------------------------------------------------- dataset <-> RDB


def write_dataset(fileobj: BinaryIO, dbs, aux: dict, *, functions=(), compress: bool = True,
                  checksum: bool = True, list_fill: int = -2, progress: Callable[[int], None] | None = None,
                  key_delay_us: int = 0) -> int:
    """Serialize every non-empty database into ``fileobj`` as an RDB-10 file; returns the key count.

    ``functions`` are FUNCTION library sources, written before the
    databases as Redis does. Keys are written as they are stored,
    expired-but-not-yet-deleted ones included (Redis does the same; the
    loader drops them). ``progress(n)`` is
    called with the running key count every 1024 keys. ``key_delay_us`` is
    the hidden ``rdb-key-save-delay`` Redis's own tests use to slow a save down.
    """
    from node.persistence.rdb import RdbWriter

    writer = RdbWriter(fileobj, compress=compress, checksum=checksum, list_fill=list_fill)
    writer.header(aux)
    for code in functions:
        writer.function(code)
    put = writer.key
    count = 0
    next_report = _PROGRESS_EVERY_KEYS
    delay = key_delay_us / 1_000_000 if key_delay_us > 0 else 0.0
    for db in dbs:
        if not db.size:
            continue
        writer.select_db(db.index, db.size, db.volatile)
        for slot, items in enumerate(db.dicts):
            if not items:
                continue
            expires = db.expires[slot]
            if delay:
                for key, value in items.items():
                    put(key, value, expires.get(key) if expires else None)
                    time.sleep(delay)
                    count += 1
                    if progress is not None:
                        progress(count)
                continue
            if expires:
                get_expire = expires.get
                for key, value in items.items():
                    put(key, value, get_expire(key))
            else:
                for key, value in items.items():
                    put(key, value)
            count += len(items)
            if progress is not None and count >= next_report:
                progress(count)
                next_report = count + _PROGRESS_EVERY_KEYS
    writer.finish()
    return count


class LoadError(Exception):
    """The RDB file cannot be loaded: ``message`` says what was expected, ``offset`` where."""

    def __init__(self, message: str, offset: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset


def load_dataset(fileobj: BinaryIO, dbs, now_ms: int, *, limits=None, drop_expired: bool = True,
                 replace: bool = False, on_header: Callable[[dict, list], None] | None = None
                 ) -> tuple[int, int, int]:
    """Fill ``dbs`` from an RDB stream; returns (keys loaded, keys skipped as expired, empty keys skipped).

    A key whose time has already passed is not loaded when ``drop_expired``
    (a primary, as Redis's ``rdbLoad``). ``limits`` (the config) gives the
    encoding thresholds loaded values are built with. ``on_header(aux,
    functions)`` is called once, before the first key (or at the end of a
    file without keys), with the aux fields and function libraries read so
    far. Raises ``LoadError`` for anything wrong with the file, including a
    database index the node does not have and a key present twice in one
    database -- or already in ``dbs``, unless ``replace`` (DEBUG RELOAD
    MERGE: the file's value and TTL win). Change counters are not touched.
    """
    from node.persistence.rdb import RdbError, load_rdb

    loaded = expired = 0
    ndbs = len(dbs)
    loader = load_rdb(fileobj, limits)
    header_pending = on_header is not None
    try:
        for db_index, key, value, expire_ms in loader:
            if header_pending:
                header_pending = False
                on_header(loader.aux, loader.functions)
            if db_index >= ndbs:
                raise LoadError(
                    f"the file has keys in DB {db_index} but this server is configured with "
                    f"{ndbs} databases (raise 'databases')", _offset(loader, fileobj))
            if expire_ms is not None and drop_expired and expire_ms < now_ms:
                expired += 1
                continue
            db = dbs[db_index]
            before = db.size
            db.store_quietly(key, value)
            if db.size == before:
                if not replace:
                    raise LoadError(
                        f"duplicated key '{key.decode('utf-8', 'backslashreplace')}' in DB {db_index}",
                        _offset(loader, fileobj))
                if db.get_expire(key) is not None:
                    db.persist(key)
            if expire_ms is not None:
                db.set_expire(key, expire_ms)
            loaded += 1
        if header_pending:
            on_header(loader.aux, loader.functions)
    except RdbError as exc:
        raise LoadError(getattr(exc, "message", None) or str(exc), getattr(exc, "offset", None)) from None
    except LoadError:
        raise
    except MemoryError:
        raise LoadError("out of memory while loading the file", _offset(loader, fileobj)) from None
    except (RecursionError, ValueError, TypeError, KeyError, IndexError, OverflowError,
            struct.error, UnicodeError, AttributeError, EOFError) as exc:
        # The reader should have raised RdbError; whatever slipped through is still a bad file, not a crash.
        raise LoadError(f"unreadable data ({type(exc).__name__}: {exc})", _offset(loader, fileobj)) from None
    return loaded, expired, getattr(loader, "empty_keys_skipped", 0)


def _offset(loader, fileobj) -> int | None:
    """Where the reader is in the file: the loader's own position, else the file's (read-ahead) one."""
    reader = getattr(loader, "_reader", None)
    try:
        return reader.offset() if reader is not None else fileobj.tell()
    except (OSError, ValueError, AttributeError, TypeError):
        return None


def _private_dirty() -> int:
    """Bytes of this process's memory that are private and dirty: the copy-on-write cost in a child."""
    try:
        with open("/proc/self/smaps_rollup", "rb") as fh:
            for line in fh:
                if line.startswith(b"Private_Dirty:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


# ------------------------------------------------------------ node state


class Snapshots:
    """The RDB side of one node (``node.rdb``): state behind INFO persistence, and the actions.

    ``save()`` is SAVE (blocking), ``bgsave()`` forks, ``cron()`` reaps the
    child and fires the save points, ``prepare_shutdown()`` is the shutdown
    save, ``load()`` the start-up load.
    """

    def __init__(self, node) -> None:
        self.node = node
        self.lastbgsave_ok = True
        self.lastbgsave_try = 0
        self.child_pid: int | None = None
        self.child_info_fd: int | None = None
        self._child_info_buf = b""
        self.save_time_start = -1
        self.save_time_last = -1
        self.saves = 0  # rdb_saves
        self.dirty_before_bgsave = 0
        self.bgsave_scheduled = False
        self.last_cow_size = 0
        self.current_cow_peak = 0
        self.current_cow_size = 0
        self.current_cow_updated = 0.0  # monotonic seconds of the last child report, 0 = none
        self.save_keys_processed = 0
        self.save_keys_total = 0
        self.fork_usec = 0
        self.total_forks = 0
        self.load_keys_expired = 0
        self.load_keys_loaded = 0
        self._gate_prev = None
        self._gate_installed = False
        #: node.replication.fork: "socket" while the child streams a full sync to replicas (not a save),
        #: the aux fields a replication BGSAVE adds, and who hears when the child is reaped.
        self.child_type = "disk"
        self.extra_aux: dict | None = None
        self.child_done_hook: Callable[[int, int, int], None] | None = None
        config = node.config
        config.on_change("save", self._config_changed)
        config.on_change("stop-writes-on-bgsave-error", self._config_changed)

    # ------------------------------------------------------------- helpers

    def _now_s(self) -> int:
        return self.node.clock.wall_ms() // 1000

    @property
    def filename(self) -> str:
        return self.node.config["dbfilename"]

    def _aux(self) -> dict:
        from node.core import VERSION
        from node.info import memory_usage

        aux = {
            "redis-ver": VERSION,
            "redis-bits": 64,
            "ctime": self._now_s(),
            "used-mem": memory_usage(),
        }
        if self.extra_aux:
            aux.update(self.extra_aux)  # repl-stream-db, repl-id, repl-offset (rdbSaveInfoAuxFields)
        aux["aof-base"] = 0
        return aux

    def _write(self, tmpname: str, progress: Callable[[int], None] | None = None) -> None:
        """Write the whole dataset to ``dbfilename`` through ``tmpname``; raises SaveFailed."""
        config = self.node.config
        aux = self._aux()
        dbs = self.node.dbs

        scripting = getattr(self.node, "_scripting", None)
        functions = [lib.code for lib in scripting.libraries.values()] if scripting is not None else []

        def produce(fh) -> None:
            write_dataset(fh, dbs, aux, functions=functions, compress=config["rdbcompression"],
                          checksum=config["rdbchecksum"], list_fill=config["list-max-listpack-size"],
                          progress=progress, key_delay_us=config["rdb-key-save-delay"])

        write_atomically(self.filename, tmpname, produce, incremental_fsync=config["rdb-save-incremental-fsync"])

    # ---------------------------------------------------------------- SAVE

    def save(self) -> bool:
        """rdbSave in this process (SAVE, SHUTDOWN, FLUSHALL): blocks until the file is on disk."""
        node = self.node
        try:
            self._write(f"temp-{os.getpid()}.rdb")
        except SaveFailed as exc:
            node.logger.warning(str(exc))
            return False
        node.logger.notice("DB saved on disk")
        node.dirty = 0
        node.lastsave = self._now_s()
        self._set_status(True)
        return True

    # -------------------------------------------------------------- BGSAVE

    @property
    def in_progress(self) -> bool:
        return self.child_pid is not None

    def bgsave(self) -> bool:
        """rdbSaveBackground: fork a child that writes the snapshot; False if it could not start."""
        if self.child_pid is not None or getattr(getattr(self.node, "aof", None), "child_pid", None) is not None:
            return False  # one child at a time: an AOF rewrite is running (node.persistence.aof)
        node = self.node
        self.saves += 1
        self.dirty_before_bgsave = node.dirty
        self.lastbgsave_try = self._now_s()
        keys_total = sum(db.size for db in node.dbs)
        read_fd, write_fd = os.pipe()
        gc.freeze()  # neither process's cyclic GC will touch (and so copy) the objects that exist now
        start = time.perf_counter_ns()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # "multi-threaded, fork() may deadlock"
                pid = os.fork()
        except OSError as exc:
            gc.unfreeze()
            os.close(read_fd)
            os.close(write_fd)
            self._set_status(False)
            node.logger.warning(f"Can't save in background: fork: {exc.strerror or exc}")
            return False
        if pid == 0:  # pragma: no cover - runs in the child, measured by the tests from outside
            self._child(read_fd, write_fd)
        self.fork_usec = (time.perf_counter_ns() - start) // 1000
        self.total_forks += 1
        os.close(write_fd)
        os.set_blocking(read_fd, False)
        self.child_pid = pid
        self.child_info_fd = read_fd
        self._child_info_buf = b""
        self.save_time_start = self._now_s()
        self.save_keys_total = keys_total
        self.save_keys_processed = 0
        self.current_cow_size = self.current_cow_peak = 0
        self.current_cow_updated = 0.0
        node.logger.notice(f"Background saving started by pid {pid}")
        return True

    def _child(self, read_fd: int, info_fd: int) -> None:  # pragma: no cover - child process
        """The forked child: write the snapshot, report, and leave with os._exit (never back into trio)."""
        code = 1
        try:
            prepare_forked_child(self.node.logger, read_fd, info_fd)
            code = self._child_save(info_fd)
        except BaseException:
            code = 1
        finally:
            os._exit(code)

    def _child_save(self, info_fd: int) -> int:  # pragma: no cover - child process
        logger = self.node.logger
        cow_peak = cow_sum = cow_count = 0
        last_report = time.monotonic()

        def send(kind: int, keys: int, cow: int) -> None:
            try:
                os.write(info_fd, _INFO.pack(kind, keys, cow))
            except OSError:
                pass

        def progress(keys: int) -> None:
            nonlocal last_report, cow_peak, cow_sum, cow_count
            now = time.monotonic()
            if now - last_report < _PROGRESS_EVERY_S:
                return
            last_report = now
            cow = _private_dirty()
            cow_peak = max(cow_peak, cow)
            cow_sum += cow
            cow_count += 1
            send(_INFO_CURRENT, keys, cow)
            logger.verbose(f"Fork CoW for RDB: current {cow >> 20} MB, peak {cow_peak >> 20} MB, "
                           f"average {(cow_sum // cow_count) >> 20} MB")

        try:
            self._write(f"temp-{os.getpid()}.rdb", progress)
        except SaveFailed as exc:
            logger.warning(str(exc))
            return 1
        logger.notice("DB saved on disk")
        cow = _private_dirty()
        cow_peak = max(cow_peak, cow)
        cow_sum += cow
        cow_count += 1
        send(_INFO_COW, -1, cow)
        logger.notice(f"Fork CoW for RDB: current {cow >> 20} MB, peak {cow_peak >> 20} MB, "
                      f"average {(cow_sum // cow_count) >> 20} MB")
        return 0

    def poll_child_info(self) -> None:
        fd = self.child_info_fd
        if fd is None:
            return
        records, self._child_info_buf = read_child_info(fd, self._child_info_buf)
        for kind, keys, cow in records:
            if kind == _INFO_CURRENT:
                self.save_keys_processed = keys
                self.current_cow_size = cow
                self.current_cow_peak = max(self.current_cow_peak, cow)
                self.current_cow_updated = time.monotonic()
            elif kind == _INFO_COW:
                self.last_cow_size = cow

    def check_child(self) -> None:
        """checkChildrenDone: reap the child if it has exited and account for the result."""
        pid = self.child_pid
        if pid is None:
            return
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            done, status = pid, 1 << 8  # reaped elsewhere: nothing says it succeeded
        self.poll_child_info()
        if done == 0:
            return
        if os.WIFSIGNALED(status):
            exitcode, bysignal = 0, os.WTERMSIG(status)
        else:
            exitcode, bysignal = (os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1), 0
        self._child_done(pid, exitcode, bysignal)

    def _child_done(self, pid: int, exitcode: int, bysignal: int) -> None:
        """backgroundSaveDoneHandlerDisk, then resetChildState."""
        node = self.node
        log = node.logger
        if self.child_type == "socket":  # backgroundSaveDoneHandlerSocket: a transfer, not a save
            if not bysignal and exitcode == 0:
                log.notice("Background RDB transfer terminated with success")
            elif not bysignal:
                log.warning("Background transfer error")
            else:
                log.warning(f"Background transfer terminated by signal {bysignal}")
        elif not bysignal and exitcode == 0:
            log.notice("Background saving terminated with success")
            node.dirty = node.dirty - self.dirty_before_bgsave
            node.lastsave = self._now_s()
            self._set_status(True)
        elif not bysignal:
            log.warning("Background saving error")
            self._set_status(False)
        else:
            log.warning(f"Background saving terminated by signal {bysignal}")
            _unlink_quietly(f"temp-{pid}.rdb")
            # SIGUSR1 is how the server itself stops a child (FLUSHALL, SHUTDOWN): not an error.
            if bysignal != signal.SIGUSR1:
                self._set_status(False)
        if self.child_info_fd is not None:
            os.close(self.child_info_fd)
        self.child_info_fd = None
        self._child_info_buf = b""
        self.child_pid = None
        gc.unfreeze()
        self.save_time_last = self._now_s() - self.save_time_start
        self.save_time_start = -1
        self.current_cow_size = self.current_cow_peak = 0
        self.current_cow_updated = 0.0
        self.save_keys_processed = self.save_keys_total = 0
        self.child_type = "disk"
        hook, self.child_done_hook = self.child_done_hook, None
        if hook is not None:
            hook(pid, exitcode, bysignal)

    def kill_child(self, *, wait: bool = False) -> None:
        """killRDBChild: SIGUSR1 to the saving child; with ``wait``, reap it now and drop its temp file."""
        pid = self.child_pid
        if pid is None:
            return
        try:
            os.kill(pid, signal.SIGUSR1)
        except ProcessLookupError:
            pass
        if wait:
            try:
                _, status = os.waitpid(pid, 0)
            except ChildProcessError:
                status = signal.SIGUSR1
            if os.WIFSIGNALED(status):
                self._child_done(pid, 0, os.WTERMSIG(status))
            else:
                self._child_done(pid, os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1, 0)
            _unlink_quietly(f"temp-{pid}.rdb")

    # ---------------------------------------------------------------- cron

    def cron(self) -> None:
        """serverCron's persistence part: reap the child, else fire save points and scheduled BGSAVEs."""
        if self.child_pid is not None:
            self.check_child()
            return
        if getattr(getattr(self.node, "aof", None), "child_pid", None) is not None:
            return  # an AOF rewrite child runs: no save point fires (hasActiveChildProcess)
        points = self.node.config["save"]
        if not points and not self.bgsave_scheduled:
            return
        now = self._now_s()
        retry_ok = self.lastbgsave_ok or now - self.lastbgsave_try > BGSAVE_RETRY_DELAY
        if points and retry_ok:
            dirty = self.node.dirty
            lastsave = self.node.lastsave
            for seconds, changes in points:
                if dirty >= changes and now - lastsave > seconds:
                    self.node.logger.notice(f"{changes} changes in {seconds} seconds. Saving...")
                    self.bgsave()
                    return
        if self.bgsave_scheduled and retry_ok:
            if self.bgsave():
                self.bgsave_scheduled = False

    # ------------------------------------------------------------ shutdown

    def prepare_shutdown(self, flags) -> bool:
        """prepareForShutdown + finishShutdown: True when the server may exit now.

        ``flags`` holds any of "save", "nosave", "force" ("now" changes
        nothing without replicas). A failed save keeps the server running
        unless "force".
        """
        node = self.node
        log = node.logger
        log.warning("User requested shutdown...")
        if self.child_pid is not None:
            log.warning("There is a child saving an .rdb. Killing it!")
            self.kill_child(wait=True)
        if getattr(node, "aof", None) is not None:
            node.aof.shutdown()  # kill a rewrite child, write and fsync the AOF buffer
        if (node.config["save"] and "nosave" not in flags) or "save" in flags:
            log.notice("Saving the final RDB snapshot before exiting.")
            if not self.save():
                if "force" in flags:
                    log.warning("Error trying to save the DB. Exit anyway.")
                else:
                    log.warning("Error trying to save the DB, can't exit.")
                    log.warning("Errors trying to shut down the server. Check the logs for more information.")
                    return False
        return True

    # ------------------------------------------------ stop-writes-on-bgsave-error

    def _set_status(self, ok: bool) -> None:
        if ok != self.lastbgsave_ok:
            self.lastbgsave_ok = ok
            self.refresh_write_gate()

    def _config_changed(self, _value) -> None:
        self.refresh_write_gate()

    def refresh_write_gate(self) -> None:
        """Set ``node.disk_error`` (the MISCONF reply) when writes must be refused, as writeCommandsDeniedByDiskError."""
        node = self.node
        config = node.config
        denied = not self.lastbgsave_ok and config["stop-writes-on-bgsave-error"] and bool(config["save"])
        error = None
        if denied:
            from node.resp import ErrorReply

            error = ErrorReply(MISCONF)
        elif getattr(node, "aof", None) is not None:
            error = node.aof.write_error()  # -MISCONF Errors writing to the AOF file: ...
        if (error is None) == (getattr(node, "disk_error", None) is None):
            if error is not None:
                node.disk_error = error
            return
        node.disk_error = error
        if error is not None and not self._gate_installed:
            self._gate_prev = node.gate_hook
            node.gate_hook = self._gate
            self._gate_installed = True
        elif error is None and self._gate_installed and node.gate_hook is self._gate:
            node.gate_hook = self._gate_prev
            self._gate_installed = False
        for client in list(node.clients.values()):
            refresh = getattr(client, "refresh_gate", None)
            if refresh is not None:
                refresh()

    def _gate(self, client, cmd, argv) -> bool:
        """processCommand's disk-error check: after cluster redirection, before the call or the queueing."""
        prev = self._gate_prev
        if prev is not None and prev(client, cmd, argv):
            return True
        error = self.node.disk_error
        if error is None:
            return False
        name = (cmd.parent or cmd).name
        if name == "exec":
            queued = client.multi
            if not queued or not any(queued_cmd.is_write for queued_cmd, _ in queued):
                return False
            from node.commands.transactions import discard_transaction
            from node.dispatch import reply_error
            from node.resp import ErrorReply

            discard_transaction(client)
            cmd.rejected_calls += 1
            reply_error(client, ErrorReply("EXECABORT Transaction discarded because of: " + error.message))
            return True
        if not cmd.is_write and name != "ping":
            return False
        from node.dispatch import _reject

        _reject(client, cmd, error)
        return True

    # --------------------------------------------------------------- loading

    def _loaded_header(self, aux: dict, functions: list, *, replace: bool = False) -> None:
        """What rdbLoadRio logs about the aux fields (in file order), then the function libraries."""
        log = self.node.logger
        for name, value in aux.items():
            text = value.decode("utf-8", "replace")
            if name == b"redis-ver":
                log.notice(f"Loading RDB produced by version {text}")
            elif name == b"ctime":
                log.notice(f"RDB age {max(0, self._now_s() - _strtol(value))} seconds")
            elif name == b"used-mem":
                log.notice("RDB memory usage when created %.2f Mb" % (_strtol(value) / (1024 * 1024)))
            elif name == b"aof-preamble" and _strtol(value):
                log.notice("RDB has an AOF tail")
            elif name == b"aof-base" and _strtol(value):
                log.notice("RDB is base AOF")
        if functions:
            from node.resp import ErrorReply
            from node.scripting.engine import get_scripting

            scripting = get_scripting(self.node)
            for code in functions:
                try:
                    scripting.load_library(code, replace)
                except ErrorReply as exc:
                    raise LoadError(f"Failed loading library, {exc.message}") from None

    def debug_reload(self, *, save: bool = True, flush: bool = True, merge: bool = False):
        """DEBUG RELOAD [MERGE] [NOFLUSH] [NOSAVE]: save, empty the dataset, load the file back.

        Returns None on success, else the error reply. Unlike Redis (which
        exits when the file is bad, and has already emptied the dataset when
        the file is missing), a file that cannot be loaded leaves the dataset
        as it was when FLUSH applies: the file is loaded into fresh databases
        that replace the live ones only once the whole file was read.
        """
        from node.engine.database import Database
        from node.resp import ErrorReply

        node = self.node
        if save and not self.save():
            return ErrorReply("ERR")
        scripting = getattr(node, "_scripting", None)
        old_libraries = [lib.code for lib in scripting.libraries.values()] if scripting is not None else []
        targets = [Database(db.index, node.clock) for db in node.dbs] if flush else node.dbs
        if flush and scripting is not None:
            scripting.flush_functions()
        try:
            with open(self.filename, "rb", buffering=1 << 16) as fh:
                load_dataset(fh, targets, node.clock.wall_ms(), limits=node.config, replace=merge,
                             on_header=lambda aux, fns: self._loaded_header(aux, fns, replace=merge))
        except (LoadError, OSError) as exc:
            reason = exc.message if isinstance(exc, LoadError) else (exc.strerror or str(exc))
            where = f" at offset {exc.offset}" if isinstance(exc, LoadError) and exc.offset is not None else ""
            node.logger.warning(f"Error loading the DB from {os.path.abspath(self.filename)}{where}: {reason}")
            if flush and scripting is not None:
                scripting.flush_functions()
                for code in old_libraries:
                    scripting.load_library(code, True)
            return ErrorReply("ERR Error trying to load the RDB dump, check server logs.")
        if flush:
            for db, fresh in zip(node.dbs, targets):
                node.touch_watched_in_db(db.index)  # as emptyData: WATCHed keys that existed
                db.swap_contents(fresh)
                node.signal_all_in_db(db.index)
        node.logger.notice("DB reloaded by DEBUG RELOAD")
        return None

    def startup(self) -> bool:
        """What shoal-server does before serving: ignore SIGXFSZ, then load the RDB file if there is one.

        With SIGXFSZ ignored, a save that hits the file size limit fails with
        EFBIG like any write error (reported, old file kept) instead of
        killing the server.
        """
        if hasattr(signal, "SIGXFSZ"):
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        aof = getattr(self.node, "aof", None)
        if aof is not None:
            return aof.startup()  # the AOF manifest; with appendonly yes the AOF is loaded instead of the RDB
        return self.load()

    def load(self, path: str | None = None) -> bool:
        """Load ``dbfilename`` at start-up if it exists; False (after logging why) if the server must stop.

        The file is only read. Keys whose time has passed are dropped
        (``rdb_last_load_keys_expired``).
        """
        node = self.node
        log = node.logger
        path = path or self.filename
        full = os.path.abspath(path)
        start = time.perf_counter()
        try:
            fh = open(path, "rb", buffering=1 << 16)
        except FileNotFoundError:
            return True
        except OSError as exc:
            log.warning(f"Fatal error loading the DB from {full}: {exc.strerror or exc}. Exiting.")
            return False
        with fh:
            try:
                loaded, expired, empty = load_dataset(fh, node.dbs, node.clock.wall_ms(), limits=node.config,
                                                      on_header=self._loaded_header)
            except LoadError as exc:
                where = f" at offset {exc.offset}" if exc.offset is not None else ""
                log.warning(f"Fatal error loading the DB from {full}{where}: {exc.message}. Exiting.")
                return False
            except OSError as exc:
                log.warning(f"Fatal error loading the DB from {full}: {exc.strerror or exc}. Exiting.")
                return False
        self.load_keys_loaded = loaded
        self.load_keys_expired = expired
        for db in node.dbs:
            db.dirty = 0
        node.dirty = 0
        if empty:
            log.notice(f"Done loading RDB, keys loaded: {loaded}, keys expired: {expired}, "
                       f"empty keys skipped: {empty}.")
        else:
            log.notice(f"Done loading RDB, keys loaded: {loaded}, keys expired: {expired}.")
        log.notice("DB loaded from disk: %.3f seconds" % (time.perf_counter() - start))
        return True


def _strtol(data: bytes) -> int:
    """C's strtol on an aux value: the leading integer, 0 if none."""
    text = data.strip()
    end = 1 if text[:1] in (b"-", b"+") else 0
    while end < len(text) and text[end:end + 1].isdigit():
        end += 1
    try:
        return int(text[:end])
    except ValueError:
        return 0


def read_child_info(fd: int, pending: bytes) -> tuple[list, bytes]:
    """Drain a fork child's non-blocking info pipe: the complete (kind, keys, cow) records, and the
    bytes of a record still arriving (fed back in as ``pending`` next time)."""
    while True:
        try:
            data = os.read(fd, 4096)
        except OSError:  # BlockingIOError included: nothing more for now
            break
        if not data:
            break
        pending += data
    size = _INFO.size
    usable = len(pending) - len(pending) % size
    return [_INFO.unpack_from(pending, offset) for offset in range(0, usable, size)], pending[usable:]


def prepare_forked_child(logger, read_fd: int, info_fd: int,
                         extra_keep: tuple = ()) -> None:  # pragma: no cover - child process
    """First steps of a fork child (BGSAVE, BGREWRITEAOF): drop the parent's signal handling and trio's
    wakeup fd, close every inherited descriptor but the log and the info pipe, and log as role "C"."""
    os.close(read_fd)
    gc.disable()
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)
    try:
        signal.set_wakeup_fd(-1)
    except (ValueError, OSError):
        pass
    keep = {0, 1, 2, info_fd, *extra_keep}
    stream = getattr(logger, "_stream", None)
    try:
        keep.add(stream.fileno())
    except (AttributeError, OSError, ValueError):
        pass
    _close_fds_except(keep)
    logger._pid = os.getpid()
    logger.role = "C"


def _close_fds_except(keep: set[int]) -> None:  # pragma: no cover - child process
    try:
        fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:
        fds = list(range(3, 1024))
    for fd in fds:
        if fd in keep:
            continue
        try:
            os.close(fd)
        except OSError:  # the directory listing's own descriptor, already gone
            pass
