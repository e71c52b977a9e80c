"""The append-only file, Redis 7.0's multi-part kind: a propagation sink plus its files.

``node.aof`` (an ``AppendOnly``) is attached to ``node.propagation`` while
``appendonly`` is on. Every execution unit the dispatcher propagates is
encoded into ``buf`` (with a SELECT whenever the database changes); the
buffer is written with one ``write(2)`` before any reply leaves the server
(``node.server`` calls ``flush()`` before writing a client's output, as
Redis's ``beforeSleep`` does before ``handleClientsWithPendingWrites``), and:

* ``appendfsync always``: fdatasync'ed right there, so an acknowledged write
  is on disk (a failed write or fsync stops the server, as Redis);
* ``everysec``: a worker thread fsyncs about once a second (the loop never
  waits for the disk; if an fsync is still running, the write is postponed
  up to 2 s, then done anyway and counted in ``aof_delayed_fsync``);
* ``no``: the kernel decides.

A failed write under everysec/no keeps the data in the buffer, retries every
cron tick and refuses writes with ``-MISCONF Errors writing to the AOF file:
<reason>`` until a write succeeds.

Files live in ``appenddirname`` (see ``aof_manifest``): the BASE (an RDB with
``aof-base`` set, or AOF commands), then INCR files. BGREWRITEAOF forks: the
parent first opens a new INCR file (recorded in the manifest at once) and
keeps appending there; the child writes the new BASE from its copy-on-write
image to ``temp-rewriteaof-bg-<pid>.aof``; when it succeeds the parent moves
it into the directory, marks the old BASE and INCRs HISTORY, replaces the
manifest atomically and deletes the history files. A crash at any point
leaves a manifest that names complete, loadable files.

``CONFIG SET appendonly yes`` starts a rewrite: meanwhile writes accumulate in
``temp-<appendfilename>.incr``, which becomes the first INCR of the new
manifest when the BASE is ready; until then the AOF is not the source of truth
(INFO ``aof_enabled`` is 1 but a crash reloads the old files, as in Redis).
"""

from __future__ import annotations

import errno
import gc
import os
import queue
import signal
import threading
import time
import warnings

from node.persistence.aof_manifest import Manifest, ManifestError, write_manifest

__all__ = ["AOF_OFF", "AOF_ON", "AOF_WAIT_REWRITE", "AppendOnly"]

AOF_OFF, AOF_ON, AOF_WAIT_REWRITE = 0, 1, 2
_EVERYSEC, _ALWAYS, _NO = "everysec", "always", "no"
_WRITE_LOG_ERROR_RATE = 30  # seconds between two logs of the same write error
_LIMIT_THRESHOLD = 3  # AOF_REWRITE_LIMITE_THRESHOLD
_LIMIT_MAX_MINUTES = 60


def _fdatasync(fd: int) -> None:
    (getattr(os, "fdatasync", None) or os.fsync)(fd)


#: The child-info record kind of an AOF rewrite's final copy-on-write size (CHILD_INFO_TYPE_AOF_COW_SIZE).
_INFO_AOF_COW = 3


class _FsyncWorker:
    """Redis's BIO_AOF_FSYNC thread: fsync (and close) descriptors off the event loop."""

    def __init__(self) -> None:
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()
        self.pending = 0
        self.lock = threading.Lock()
        self.ok = True
        self.errno = 0
        self.thread: threading.Thread | None = None

    def submit(self, fd: int, close: bool = False) -> None:
        with self.lock:
            self.pending += 1
        if self.thread is None or not self.thread.is_alive():
            self.thread = threading.Thread(target=self._run, name="aof-fsync", daemon=True)
            self.thread.start()
        self.jobs.put((fd, close))

    def _run(self) -> None:
        while True:
            fd, close = self.jobs.get()
            try:
                _fdatasync(fd)
                self.ok = True
            except OSError as exc:
                if exc.errno not in (errno.EBADF, errno.EINVAL):
                    self.ok = False
                    self.errno = exc.errno or errno.EIO
            finally:
                if close:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
                with self.lock:
                    self.pending -= 1

    def drain(self, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while self.pending and time.monotonic() < deadline:
            time.sleep(0.001)


class AppendOnly:
    """The AOF side of one node (``node.aof``): state behind INFO persistence, and the actions."""

    def __init__(self, node) -> None:
        self.node = node
        self.state = AOF_OFF
        self.fd = -1
        self.buf = bytearray()
        self.selected_db = -1
        self.manifest = Manifest()
        self.current_size = 0
        self.last_incr_size = 0
        self.fsync_offset = 0
        self.last_fsync = 0
        self.rewrite_base_size = 0
        self.last_write_ok = True
        self.last_write_errno = 0
        self.last_write_error_log = 0
        self.delayed_fsync = 0
        self.flush_postponed_start = 0
        self.rewrite_scheduled = False
        self.rewrite_time_start = -1
        self.rewrite_time_last = -1
        self.lastbgrewrite_ok = True
        self.rewrites = 0
        self.consecutive_failures = 0
        self.last_cow_size = 0
        self.child_pid: int | None = None
        self.child_info_fd: int | None = None
        self._child_info_buf = b""
        self.cur_timestamp = 0
        self.worker = _FsyncWorker()
        self._bio_ok_seen = True
        self._limit_next_delay = 0
        self._limit_next_time = 0
        self.key_load_delay = 0
        config = node.config
        config.on_change("appendonly", self._appendonly_changed)
        #: aof-timestamp-enabled, cached for the hot path (feed).
        self.timestamps = config["aof-timestamp-enabled"]
        config.on_change("aof-timestamp-enabled", self._timestamps_changed)

    def _timestamps_changed(self, value) -> None:
        self.timestamps = bool(value)

    # ------------------------------------------------------------- helpers

    @property
    def filename(self) -> str:
        return self.node.config["appendfilename"]

    @property
    def dirname(self) -> str:
        return self.node.config["appenddirname"]

    def _path(self, name: str) -> str:
        return os.path.join(self.dirname, name)

    @staticmethod
    def _now() -> int:
        return int(time.time())

    def child_active(self) -> bool:
        """hasActiveChildProcess: an RDB save or an AOF rewrite child is running."""
        return self.child_pid is not None or self.node.rdb.child_pid is not None

    def _attach(self) -> None:
        self.node.propagation.add_sink(self)

    def _detach(self) -> None:
        self.node.propagation.remove_sink(self)

    def _mkdir(self) -> bool:
        try:
            os.makedirs(self.dirname, exist_ok=True)
        except OSError as exc:
            self.node.logger.warning(f"Can't open or create append-only dir {self.dirname}: {exc.strerror}")
            return False
        if not os.path.isdir(self.dirname):
            self.node.logger.warning(f"Can't open or create append-only dir {self.dirname}: File exists")
            return False
        return True

    def persist_manifest(self, manifest: Manifest) -> bool:
        if not manifest.dirty:
            return True
        ok = write_manifest(self.dirname, self.filename, manifest.to_text(), self.node.logger)
        if ok:
            manifest.dirty = False
        return ok

    def _file_size(self, name: str) -> int:
        try:
            return os.stat(self._path(name)).st_size
        except OSError as exc:
            self.node.logger.warning(f"Unable to obtain the AOF file {name} length. stat: {exc.strerror}")
            return 0

    # ----------------------------------------------------------------- sink

    def feed(self, unit) -> None:
        """feedAppendOnlyFile for each command of a propagated unit."""
        if not (self.state == AOF_ON or (self.state == AOF_WAIT_REWRITE and self.child_pid is not None)):
            return
        buf = self.buf
        if self.timestamps:
            now = self._now()
            if self.cur_timestamp < now:
                self.cur_timestamp = now
                buf += b"#TS:%d\r\n" % now
        selected = self.selected_db
        for db, data in unit:
            if db is not None and db != selected:
                text = b"%d" % db
                buf += b"*2\r\n$6\r\nSELECT\r\n$%d\r\n%b\r\n" % (len(text), text)
                selected = self.selected_db = db
            buf += data

    # ---------------------------------------------------------------- write

    def hold_reply(self, client) -> bool:
        """Called before a client's output is written while the AOF buffer holds data: True to hold it.

        As in Redis, replies leave only after the AOF write of the event-loop
        pass that produced them (``beforeSleep`` writes the AOF once, then
        ``handleClientsWithPendingWrites``): the client is queued in
        ``node.pending_write`` and the server's ``_after_pass`` calls
        ``flush()`` once before sending them all -- one write(2) and, under
        ``always``, one fsync for every client served in the pass. Not held
        while a write is postponed (everysec with a slow fsync) or failing:
        Redis sends those replies too.
        """
        if self.fd == -1 or not self.last_write_ok or self.flush_postponed_start:
            return False
        self.node.pending_write.add(client)
        return True

    def flush(self, force: bool = False) -> None:
        """flushAppendOnlyFile: write the buffer, then fsync as ``appendfsync`` says."""
        if self.fd == -1:
            return
        policy = self.node.config["appendfsync"]
        now = self._now()
        sync_in_progress = False
        if not self.buf:
            if (policy == _EVERYSEC and self.fsync_offset != self.current_size and now > self.last_fsync
                    and not self.worker.pending):
                self._try_fsync(policy, now, False)
            return
        if policy == _EVERYSEC:
            sync_in_progress = self.worker.pending > 0
            if not force and sync_in_progress:
                if self.flush_postponed_start == 0:
                    self.flush_postponed_start = now
                    return
                if now - self.flush_postponed_start < 2:
                    return
                self.delayed_fsync += 1
                self.node.logger.notice(
                    "Asynchronous AOF fsync is taking too long (disk is busy?). Writing the AOF buffer without "
                    "waiting for fsync to complete, this may slow down Redis.")
        buf = self.buf
        total = len(buf)
        written = 0
        error = None
        view = memoryview(buf)
        try:
            while written < total:
                try:
                    n = os.write(self.fd, view[written:])
                except InterruptedError:
                    continue
                except OSError as exc:
                    error = exc
                    break
                if n == 0:
                    error = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                    break
                written += n
        finally:
            view.release()
        self.flush_postponed_start = 0
        if written != total:
            log = self.node.logger
            can_log = now - self.last_write_error_log > _WRITE_LOG_ERROR_RATE
            if can_log:
                self.last_write_error_log = now
            if written == 0:
                if can_log:
                    log.warning(f"Error writing to the AOF file: {error.strerror if error else 'unknown error'}")
                self.last_write_errno = (error.errno if error else 0) or errno.EIO
            else:
                if can_log:
                    log.warning(f"Short write while writing to the AOF file: (nwritten={written}, expected={total})")
                try:
                    os.ftruncate(self.fd, self.last_incr_size)
                except OSError as exc:
                    if can_log:
                        log.warning("Could not remove short write from the append-only file.  Redis may refuse to "
                                    f"load the AOF the next time it starts.  ftruncate: {exc.strerror}")
                else:
                    written = 0
                self.last_write_errno = errno.ENOSPC
            if policy == _ALWAYS:
                log.warning("Can't recover from AOF write error when the AOF fsync policy is 'always'. Exiting...")
                _exit(log)
            if written > 0:
                self.current_size += written
                self.last_incr_size += written
                del buf[:written]
            if self.last_write_ok:
                self.last_write_ok = False
                self.node.rdb.refresh_write_gate()
            return
        if not self.last_write_ok:
            self.node.logger.warning("AOF write error looks solved, Redis can write again.")
            self.last_write_ok = True
            self.node.rdb.refresh_write_gate()
        self.current_size += written
        self.last_incr_size += written
        buf.clear()
        self._try_fsync(policy, now, sync_in_progress)

    def _try_fsync(self, policy: str, now: int, sync_in_progress: bool) -> None:
        config = self.node.config
        if config["no-appendfsync-on-rewrite"] and self.child_active():
            return
        if policy == _ALWAYS:
            try:
                _fdatasync(self.fd)
            except OSError as exc:
                self.node.logger.warning("Can't persist AOF for fsync error when the AOF fsync policy is 'always': "
                                         f"{exc.strerror}. Exiting...")
                _exit(self.node.logger)
            self.fsync_offset = self.current_size
            self.last_fsync = now
        elif policy == _EVERYSEC and now > self.last_fsync:
            if not sync_in_progress:
                self.worker.submit(self.fd)
                self.fsync_offset = self.current_size
            self.last_fsync = now

    def write_error(self):
        """The MISCONF reply while the AOF cannot be written (writeCommandsDeniedByDiskError), else None."""
        if self.state == AOF_OFF:
            return None
        if not self.last_write_ok:
            code = self.last_write_errno
        elif not self.worker.ok:
            code = self.worker.errno
        else:
            return None
        from node.resp import ErrorReply

        return ErrorReply(f"MISCONF Errors writing to the AOF file: {os.strerror(code or errno.EIO)}")

    # --------------------------------------------------------------- start-up

    def load_manifest(self) -> bool:
        """aofLoadManifestFromDisk: read the manifest if the directory and file exist. False: stop."""
        log = self.node.logger
        self.manifest = Manifest()
        path = self._path(f"{self.filename}.manifest")
        if not os.path.isdir(self.dirname) or not os.path.exists(path):
            return True
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            log.warning(f"Fatal error: can't open the AOF manifest file {path} for reading: {exc.strerror}")
            return False
        try:
            self.manifest = Manifest.parse(data)
        except ManifestError as exc:
            log.warning("\n*** FATAL AOF MANIFEST FILE ERROR ***\n")
            if exc.line is not None:
                log.warning(f"Reading the manifest file, at line {exc.line_no}\n")
                log.warning(f">>> '{exc.line}'\n")
            log.warning(f"{exc.message}\n")
            return False
        return True

    def startup(self) -> bool:
        """Start-up with ``appendonly yes``: load the AOF (not the RDB), open the INCR file, attach.

        False (after logging why) if the server must not start.
        """
        from node.persistence.aof_loader import AOF_FAILED, AOF_NOT_EXIST, AOF_OPEN_ERR, load_files

        node = self.node
        log = node.logger
        if not self.load_manifest():
            return False
        if not node.config["appendonly"]:
            return node.rdb.load()
        self.state = AOF_ON
        if not self._upgrade_if_needed():
            return False
        self.key_load_delay = node.config["key-load-delay"]
        started = time.perf_counter()
        ret = load_files(self, self.manifest)
        if ret in (AOF_FAILED, AOF_OPEN_ERR):
            return False
        if ret != AOF_NOT_EXIST:
            log.notice("DB loaded from append only file: %.3f seconds" % (time.perf_counter() - started))
        for db in node.dbs:
            db.dirty = 0
        node.dirty = 0
        if not self.open_on_server_start():
            return False
        self.delete_history_files()
        self._attach()
        return True

    def _upgrade_if_needed(self) -> bool:
        """aofUpgradePrepare: move an old single ``appendonly.aof`` into the directory as the BASE."""
        am = self.manifest
        name = self.filename
        if not os.path.exists(name):
            return True
        if not (not os.path.isdir(self.dirname) or (am.base is None and not am.incr)
                or (am.base is not None and not am.incr and am.base.name == name
                    and not os.path.exists(self._path(name)))):
            return True
        if not self._mkdir():
            return False
        from node.persistence.aof_manifest import BASE, AofInfo

        am.base = AofInfo(name, 1, BASE)
        am.base_seq = 1
        am.dirty = True
        if not self.persist_manifest(am):
            return False
        try:
            os.rename(name, self._path(name))
        except OSError as exc:
            self.node.logger.warning(f"Error trying to move the old AOF file {name} into dir {self.dirname}: "
                                     f"{exc.strerror}")
            return False
        self.node.logger.notice(f"Successfully migrated an old-style AOF file ({name}) into the AOF directory "
                                f"({self.dirname}).")
        return True

    def open_on_server_start(self) -> bool:
        """aofOpenIfNeededOnServerStart: a BASE for an empty start, then open (or create) the last INCR."""
        log = self.node.logger
        if not self._mkdir():
            return False
        am = self.manifest
        had_incr = bool(am.incr)
        if am.base is None and not am.incr:
            base = am.new_base(self.filename, self.node.config["aof-use-rdb-preamble"])
            if not self.rewrite_sync(self._path(base)):
                return False
            log.notice(f"Creating AOF base file {base} on server start")
        name = am.last_incr(self.filename)
        try:
            self.fd = os.open(self._path(name), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            log.warning(f"Can't open the append-only file {name}: {exc.strerror}")
            return False
        if not self.persist_manifest(am):
            return False
        self.last_incr_size = self._file_size(name)
        self.selected_db = -1
        self.last_fsync = self._now()
        if had_incr:
            log.notice(f"Opening AOF incr file {name} on server start")
        else:
            log.notice(f"Creating AOF incr file {name} on server start")
        return True

    def delete_history_files(self) -> bool:
        """aofDelHistoryFiles: remove HISTORY files and drop them from the manifest."""
        am = self.manifest
        if self.node.config["aof-disable-auto-gc"] or not am.history:
            return True
        for info in am.history:
            self.node.logger.notice(f"Removing the history file {info.name} in the background")
            try:
                os.unlink(self._path(info.name))
            except OSError:
                pass
        am.history = []
        am.dirty = True
        return self.persist_manifest(am)

    # ------------------------------------------------------------ the base

    def _write_base(self, fh, progress=None) -> None:
        node = self.node
        config = node.config
        scripting = getattr(node, "_scripting", None)
        functions = [lib.code for lib in scripting.libraries.values()] if scripting is not None else []
        if config["aof-use-rdb-preamble"]:
            from node.persistence.snapshot import write_dataset

            aux = node.rdb._aux()
            aux["aof-base"] = 1
            write_dataset(fh, node.dbs, aux, functions=functions, compress=config["rdbcompression"],
                          checksum=config["rdbchecksum"], list_fill=config["list-max-listpack-size"],
                          progress=progress, key_delay_us=config["rdb-key-save-delay"])
        else:
            from node.persistence.aof_rewrite import write_aof_dataset

            ts = self._now() if config["aof-timestamp-enabled"] else None
            write_aof_dataset(fh, node.dbs, functions, timestamp=ts, key_delay_us=config["rdb-key-save-delay"],
                              progress=progress)

    def rewrite_sync(self, filename: str) -> bool:
        """rewriteAppendOnlyFile: the whole dataset into ``filename`` (temp file, fsync, rename)."""
        from node.persistence.snapshot import SaveFailed, write_atomically

        try:
            write_atomically(filename, f"temp-rewriteaof-{os.getpid()}.aof", self._write_base,
                             incremental_fsync=self.node.config["aof-rewrite-incremental-fsync"])
        except SaveFailed as exc:
            text = str(exc)
            if text.startswith("Error moving"):
                self.node.logger.warning(f"Error moving temp append only file on the final destination: {text}")
            else:
                self.node.logger.warning(f"Write error writing append only file on disk: {text}")
            return False
        return True

    # ------------------------------------------------------------- rewrite

    def open_new_incr_for_append(self) -> bool:
        """openNewIncrAofForAppend: the parent's new INCR file (or the temp one while turning AOF on)."""
        if self.state == AOF_OFF:
            return True
        temp_am = None
        if self.state == AOF_WAIT_REWRITE:
            name = f"temp-{self.filename}.incr"
        else:
            temp_am = self.manifest.dup()
            name = temp_am.new_incr(self.filename)
        try:
            newfd = os.open(self._path(name), os.O_WRONLY | os.O_TRUNC | os.O_CREAT, 0o644)
        except OSError as exc:
            self.node.logger.warning(f"Can't open the append-only file {name}: {exc.strerror}")
            return False
        if temp_am is not None and not self.persist_manifest(temp_am):
            os.close(newfd)
            return False
        self.node.logger.notice(f"Creating AOF incr file {name} on background rewrite")
        if self.fd != -1:
            self.worker.submit(self.fd, close=True)
            self.fsync_offset = self.current_size
            self.last_fsync = self._now()
        self.fd = newfd
        self.last_incr_size = 0
        if temp_am is not None:
            self.manifest = temp_am
        return True

    def rewrite_limited(self) -> bool:
        """aofRewriteLimited: back off after 3 consecutive failures (1, 2, 4... up to 60 minutes)."""
        if self.consecutive_failures < _LIMIT_THRESHOLD:
            self._limit_next_delay = 0
            self._limit_next_time = 0
            return False
        now = self._now()
        if self._limit_next_time:
            if now < self._limit_next_time:
                return True
            self._limit_next_time = 0
            return False
        self._limit_next_delay = 1 if not self._limit_next_delay else min(self._limit_next_delay * 2,
                                                                           _LIMIT_MAX_MINUTES)
        self._limit_next_time = now + self._limit_next_delay * 60
        self.node.logger.warning("Background AOF rewrite has repeatedly failed and triggered the limit, will retry "
                                 f"in {self._limit_next_delay} minutes")
        return True

    def rewrite_background(self) -> bool:
        """rewriteAppendOnlyFileBackground: fork a child writing the new BASE; False if it could not start."""
        from node.persistence.snapshot import _INFO

        if self.child_active():
            return False
        node = self.node
        log = node.logger
        if not self._mkdir():
            self.lastbgrewrite_ok = False
            return False
        self.selected_db = -1
        self.flush(force=True)
        if not self.open_new_incr_for_append():
            self.lastbgrewrite_ok = False
            return False
        self.rewrites += 1
        read_fd, write_fd = os.pipe()
        gc.freeze()
        rdb = node.rdb
        start = time.perf_counter_ns()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                pid = os.fork()
        except OSError as exc:
            gc.unfreeze()
            os.close(read_fd)
            os.close(write_fd)
            self.lastbgrewrite_ok = False
            log.warning(f"Can't rewrite append only file in background: fork: {exc.strerror}")
            return False
        if pid == 0:  # pragma: no cover - the child
            self._child(read_fd, write_fd, _INFO)
        rdb.fork_usec = (time.perf_counter_ns() - start) // 1000
        rdb.total_forks += 1
        os.close(write_fd)
        os.set_blocking(read_fd, False)
        self.child_pid = pid
        self.child_info_fd = read_fd
        self._child_info_buf = b""
        log.notice(f"Background append only file rewriting started by pid {pid}")
        self.rewrite_scheduled = False
        self.rewrite_time_start = self._now()
        return True

    def _child(self, read_fd: int, info_fd: int, info_struct) -> None:  # pragma: no cover - child process
        from node.persistence.snapshot import _private_dirty, prepare_forked_child

        code = 1
        try:
            logger = self.node.logger
            prepare_forked_child(logger, read_fd, info_fd)
            tmpfile = f"temp-rewriteaof-bg-{os.getpid()}.aof"
            if self.rewrite_sync(tmpfile):
                logger.notice(f"Successfully created the temporary AOF base file {tmpfile}")
                cow = _private_dirty()
                try:
                    os.write(info_fd, info_struct.pack(_INFO_AOF_COW, -1, cow))
                except OSError:
                    pass
                logger.notice(f"Fork CoW for AOF rewrite: current {cow >> 20} MB, peak {cow >> 20} MB, "
                              f"average {cow >> 20} MB")
                code = 0
        except BaseException:
            code = 1
        finally:
            os._exit(code)

    def _poll_child_info(self) -> None:
        from node.persistence.snapshot import read_child_info

        fd = self.child_info_fd
        if fd is None:
            return
        records, self._child_info_buf = read_child_info(fd, self._child_info_buf)
        for kind, _keys, cow in records:
            if kind == _INFO_AOF_COW:
                self.last_cow_size = cow

    def check_child(self) -> None:
        pid = self.child_pid
        if pid is None:
            return
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            done, status = pid, 1 << 8
        self._poll_child_info()
        if done == 0:
            return
        if os.WIFSIGNALED(status):
            exitcode, bysignal = 0, os.WTERMSIG(status)
        else:
            exitcode, bysignal = (os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1), 0
        self._child_done(pid, exitcode, bysignal)

    def _reset_child(self) -> None:
        if self.child_info_fd is not None:
            os.close(self.child_info_fd)
        self.child_info_fd = None
        self._child_info_buf = b""
        self.child_pid = None
        gc.unfreeze()

    def _remove_temp_files(self, pid: int) -> None:
        for name in (f"temp-rewriteaof-bg-{pid}.aof", f"temp-rewriteaof-{pid}.aof"):
            try:
                os.unlink(name)
            except OSError:
                pass

    def _child_done(self, pid: int, exitcode: int, bysignal: int) -> None:
        """backgroundRewriteDoneHandler."""
        log = self.node.logger
        if not bysignal and exitcode == 0:
            log.notice("Background AOF rewrite terminated with success")
            self._install_new_base(pid)
        elif not bysignal:
            self.lastbgrewrite_ok = False
            self.consecutive_failures += 1
            log.warning("Background AOF rewrite terminated with error")
        else:
            if bysignal != signal.SIGUSR1:
                self.lastbgrewrite_ok = False
                self.consecutive_failures += 1
            log.warning(f"Background AOF rewrite terminated by signal {bysignal}")
        self._remove_temp_files(pid)
        self._reset_child()
        if self.state == AOF_WAIT_REWRITE:
            self.buf.clear()
            self._remove_temp_incr()
        self.rewrite_time_last = self._now() - self.rewrite_time_start
        self.rewrite_time_start = -1
        if self.state == AOF_WAIT_REWRITE:
            self.rewrite_scheduled = True

    def _remove_temp_incr(self) -> None:
        name = f"temp-{self.filename}.incr"
        path = self._path(name)
        if os.path.exists(path):
            self.node.logger.notice(f"Removing the temp incr aof file {name} in the background")
            try:
                os.unlink(path)
            except OSError:
                pass

    def _install_new_base(self, pid: int) -> None:
        log = self.node.logger
        tmpfile = f"temp-rewriteaof-bg-{pid}.aof"
        temp_am = self.manifest.dup()
        base_name = temp_am.new_base(self.filename, self.node.config["aof-use-rdb-preamble"])
        base_path = self._path(base_name)
        try:
            os.rename(tmpfile, base_path)
        except OSError as exc:
            log.warning(f"Error trying to rename the temporary AOF base file {tmpfile} into {base_path}: "
                        f"{exc.strerror}")
            self.lastbgrewrite_ok = False
            self.consecutive_failures += 1
            return
        log.notice(f"Successfully renamed the temporary AOF base file {tmpfile} into {base_name}")
        new_incr_path = None
        if self.state == AOF_WAIT_REWRITE:
            temp_incr = f"temp-{self.filename}.incr"
            temp_incr_path = self._path(temp_incr)
            # The buffered writes of the rewrite window go to the temp INCR before it is renamed.
            self.flush(force=True)
            incr_name = temp_am.new_incr(self.filename)
            new_incr_path = self._path(incr_name)
            try:
                os.rename(temp_incr_path, new_incr_path)
            except OSError as exc:
                log.warning(f"Error trying to rename the temporary AOF incr file {temp_incr_path} into "
                            f"{new_incr_path}: {exc.strerror}")
                _unlink(base_path)
                self.lastbgrewrite_ok = False
                self.consecutive_failures += 1
                return
            log.notice(f"Successfully renamed the temporary AOF incr file {temp_incr} into {incr_name}")
        temp_am.mark_rewritten_incr_as_history(keep_last=self.fd != -1)
        if not self.persist_manifest(temp_am):
            _unlink(base_path)
            if new_incr_path is not None:
                _unlink(new_incr_path)
            self.lastbgrewrite_ok = False
            self.consecutive_failures += 1
            return
        self.manifest = temp_am
        if self.fd != -1:
            self.selected_db = -1
            self.current_size = self._file_size(base_name) + self.last_incr_size
            self.rewrite_base_size = self.current_size
            self.fsync_offset = self.current_size
            self.last_fsync = self._now()
        self.delete_history_files()
        self.lastbgrewrite_ok = True
        self.consecutive_failures = 0
        log.notice("Background AOF rewrite finished successfully")
        if self.state == AOF_WAIT_REWRITE:
            self.state = AOF_ON

    def kill_child(self) -> None:
        """killAppendOnlyChild: SIGUSR1 the rewrite child, reap it, drop its temp files."""
        pid = self.child_pid
        if pid is None:
            return
        self.node.logger.notice(f"Killing running AOF rewrite child: {pid}")
        try:
            os.kill(pid, signal.SIGUSR1)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        self._remove_temp_files(pid)
        self._reset_child()
        self.rewrite_time_start = -1

    # -------------------------------------------------------------- BGREWRITEAOF

    def bgrewriteaof(self, in_exec: bool):
        """bgrewriteaofCommand's decision: a status text, or an error text (starting with 'ERR')."""
        if self.child_pid is not None:
            return "ERR Background append only file rewriting already in progress"
        if self.child_active() or in_exec:
            self.rewrite_scheduled = True
            self.consecutive_failures = 0
            return "Background append only file rewriting scheduled"
        if self.rewrite_background():
            return "Background append only file rewriting started"
        return "ERR Can't execute an AOF background rewriting. Please check the server logs for more information."

    # ------------------------------------------------------------- on / off

    def _appendonly_changed(self, value) -> None:
        from node.config import ConfigError

        if value and self.state == AOF_OFF:
            if not self.start():
                raise ConfigError("Unable to turn on AOF. Check server logs.")
        elif not value and self.state != AOF_OFF:
            self.stop()

    def start(self) -> bool:
        """startAppendOnly (CONFIG SET appendonly yes)."""
        log = self.node.logger
        self.state = AOF_WAIT_REWRITE
        self._attach()
        if self.node.rdb.child_pid is not None:
            self.rewrite_scheduled = True
            log.warning("AOF was enabled but there is already another background operation. An AOF background was "
                        "scheduled to start when possible.")
        else:
            if self.child_pid is not None:
                log.warning("AOF was enabled but there is already an AOF rewriting in background. Stopping "
                            "background AOF and starting a rewrite now.")
                self.kill_child()
            if not self.rewrite_background():
                self.state = AOF_OFF
                self._detach()
                log.warning("Redis needs to enable the AOF but can't trigger a background AOF rewrite operation. "
                            "Check the above logs for more info about the error.")
                return False
        self.last_fsync = self._now()
        if not self.worker.ok:
            log.warning("AOF reopen, just ignore the AOF fsync error in bio job")
            self.worker.ok = True
        if not self.last_write_ok:
            log.warning("AOF reopen, just ignore the last error.")
            self.last_write_ok = True
        self.node.rdb.refresh_write_gate()
        return True

    def stop(self) -> None:
        """stopAppendOnly (CONFIG SET appendonly no)."""
        self.flush(force=True)
        if self.fd != -1:
            try:
                _fdatasync(self.fd)
            except OSError as exc:
                self.node.logger.warning(f"Fail to fsync the AOF file: {exc.strerror}")
            else:
                self.fsync_offset = self.current_size
                self.last_fsync = self._now()
            os.close(self.fd)
        self.fd = -1
        self.selected_db = -1
        self.state = AOF_OFF
        self.rewrite_scheduled = False
        self.last_incr_size = 0
        self.kill_child()
        self.buf = bytearray()
        self._detach()
        self.node.rdb.refresh_write_gate()

    def shutdown(self) -> None:
        """finishShutdown's AOF part: kill a rewrite child, write and fsync what is buffered."""
        if self.state == AOF_OFF:
            return
        if self.child_pid is not None:
            self.node.logger.warning("There is a child rewriting the AOF. Killing it!")
            self.kill_child()
        self.node.logger.notice("Calling fsync() on the AOF file.")
        self.flush(force=True)
        if self.fd != -1:
            try:
                _fdatasync(self.fd)
            except OSError:
                pass

    # ---------------------------------------------------------------- cron

    def cron(self) -> None:
        """serverCron's AOF part: reap the rewrite child, scheduled/automatic rewrites, deferred writes."""
        if self.child_pid is not None:
            self.check_child()
        if self.state == AOF_OFF:
            return
        if not self.child_active() and self.rewrite_scheduled and not self.rewrite_limited():
            self.rewrite_background()
        config = self.node.config
        perc = config["auto-aof-rewrite-percentage"]
        if (self.state == AOF_ON and not self.child_active() and perc
                and self.current_size > config["auto-aof-rewrite-min-size"]):
            base = self.rewrite_base_size or 1
            growth = self.current_size * 100 // base - 100
            if growth >= perc and not self.rewrite_limited():
                self.node.logger.notice(f"Starting automatic rewriting of AOF on {growth}% growth")
                self.rewrite_background()
        if self.state in (AOF_ON, AOF_WAIT_REWRITE):
            self.flush()
        if self.worker.ok != self._bio_ok_seen:
            self._bio_ok_seen = self.worker.ok
            self.node.rdb.refresh_write_gate()

    # ---------------------------------------------------------------- INFO

    def info_fields(self) -> list:
        self._poll_child_info()
        now = self._now()
        fields = [
            ("aof_enabled", int(self.state != AOF_OFF)),
            ("aof_rewrite_in_progress", int(self.child_pid is not None)),
            ("aof_rewrite_scheduled", int(self.rewrite_scheduled)),
            ("aof_last_rewrite_time_sec", self.rewrite_time_last),
            ("aof_current_rewrite_time_sec", now - self.rewrite_time_start if self.rewrite_time_start != -1 else -1),
            ("aof_last_bgrewrite_status", "ok" if self.lastbgrewrite_ok else "err"),
            ("aof_rewrites", self.rewrites),
            ("aof_rewrites_consecutive_failures", self.consecutive_failures),
            ("aof_last_write_status", "ok" if self.last_write_ok and self.worker.ok else "err"),
            ("aof_last_cow_size", self.last_cow_size),
            ("module_fork_in_progress", 0),
            ("module_fork_last_cow_size", 0),
        ]
        if self.state != AOF_OFF:
            fields += [
                ("aof_current_size", self.current_size),
                ("aof_base_size", self.rewrite_base_size),
                ("aof_pending_rewrite", int(self.rewrite_scheduled)),
                ("aof_buffer_length", len(self.buf)),
                ("aof_pending_bio_fsync", self.worker.pending),
                ("aof_delayed_fsync", self.delayed_fsync),
            ]
        return fields


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _exit(logger) -> None:
    """exit(1) from the middle of the event loop, as Redis does when 'always' cannot be honoured."""
    try:
        logger.close()
    finally:
        os._exit(1)
