"""Full-sync snapshots built by a fork child, as Redis's BGSAVE for replication (replication.c).

The primary never serialises the dataset in its own process: a replica that
needs a full resync waits (state ``wait_bgsave``) until a child is forked for
it, and the child's copy-on-write image of the keyspace *is* the snapshot.
The replication offset at the fork is what ``+FULLRESYNC`` announces; what is
written afterwards is kept in the replica's ``pending`` buffer and sent once
the snapshot is through.

Two targets, as Redis's ``repl-diskless-sync``:

* disk (``no``, or a replica without ``capa eof``): an ordinary BGSAVE to
  ``dbfilename`` (with the ``repl-*`` aux fields); when the child has exited
  with success each waiting replica gets ``$<len>\\r\\n`` and the file, read
  in chunks by a trio task per replica. A replica asking while such a BGSAVE
  runs attaches to it if one already waiting has the same capabilities (it
  copies that one's buffered stream and start offset), else waits for the
  next one.
* socket (``yes``, every replica of the batch announced ``capa eof``): the
  child writes the snapshot into a pipe; one trio task reads it and forwards
  each chunk to every replica of the batch, between ``$EOF:<40 chars>\\r\\n``
  and the same 40 chars, which are only sent once the child has exited with
  success. The batch is formed by ``repl-diskless-sync-delay`` (seconds the
  first replica waits for others) and ``repl-diskless-sync-max-replicas`` (start
  as soon as that many wait); later replicas wait for the next fork. When every
  replica of a socket transfer is gone the child is killed. After the mark
  the replica is online but its stream waits for its first ``REPLCONF ACK``
  (Redis 7's ``repl_start_cmd_stream_on_ack``).

What the child writes: an RDB-10 file, or -- when every replica of the batch
is a Shoal node (``capa shoal-snap``) and the target is the socket --
``node.replication.snapshot``'s marshal form.

Never blocking: the pipe is read when trio says it is readable, chunks are
queued only to replicas whose output buffer is under ``_HIGH_WATER`` (the
server's epoll loop drains it), and the child is reaped by the persistence
cron (``node.rdb``, which also keeps ``rdb_bgsave_in_progress`` and one child
at a time). ``forks`` counts the children started for replication; each start
logs ``Starting BGSAVE for SYNC with target: ...`` with the replicas it serves.

Small differences from Redis 7.0, none visible in replies: the pending-fork
check runs with the replication cron (5 times a second, Redis: once); the
keep-alive newline goes only to replicas that have waited a second or more;
the ``$EOF:`` preamble and mark are written by the parent (Redis's child writes
them), so a child that dies mid-transfer never leaves a mark behind; the start
log line names the replicas of the batch.
"""

from __future__ import annotations

import gc
import os
import time
import warnings

__all__ = ["ForkSync", "SyncJob"]

_CHUNK = 1 << 18
_HIGH_WATER = 1 << 20  # queue no more RDB bytes to a replica while its output buffer holds this much
_BGSAVE_FAILED = b"-ERR BGSAVE failed, maybe there is not enough memory or similar error\r\n"


class SyncJob:
    """One fork serving full syncs."""

    __slots__ = ("target", "pid", "offset", "replicas", "pipe_fd", "result", "fmt", "started")

    def __init__(self, target: str, pid: int, offset: int, fmt: str) -> None:
        self.target = target  # "disk" or "socket"
        self.pid = pid
        self.offset = offset  # the replication offset at the fork (+FULLRESYNC's)
        self.replicas: list = []
        self.pipe_fd: int | None = None
        self.result: tuple[int, int] | None = None  # (exitcode, signal) once reaped
        self.fmt = fmt  # "rdb" or "shoal"
        self.started = time.monotonic()


class ForkSync:
    def __init__(self, manager) -> None:
        self.manager = manager
        self.node = manager.node
        self.job: SyncJob | None = None
        self.forks = 0

    # ------------------------------------------------------------ helpers

    def _log(self):
        return self.node.logger

    def _where(self, info) -> str:
        return f"{info.address()}:{info.port}"

    def _other_child(self) -> bool:
        node = self.node
        return node.rdb.child_pid is not None or getattr(getattr(node, "aof", None), "child_pid", None) is not None

    def _socket_capable(self, info) -> bool:
        return info.capa_eof and not info.pre_psync

    def waiting(self) -> list:
        return [info for info in self.manager.replicas if info.phase == "start"]

    # ------------------------------------------------------------ SYNC / PSYNC

    def request(self, info) -> None:
        """syncCommand's full-resync part, after the replica was added in state wait_bgsave."""
        log = self._log()
        node = self.node
        rdb = node.rdb
        job = self.job
        info.phase = "start"
        info.wait_since = time.monotonic()
        if rdb.child_pid is not None and rdb.child_type == "disk":
            other = None
            if job is not None and job.target == "disk" and job.pid == rdb.child_pid:
                for candidate in job.replicas:
                    if (candidate.phase == "end" and candidate.rdb_only == info.rdb_only
                            and (not candidate.capa_eof or info.capa_eof)
                            and (not candidate.capa_psync2 or info.capa_psync2)):
                        other = candidate
                        break
            if other is not None:
                info.pending = bytearray(other.pending or b"")
                self._setup_full_resync(info, job.offset)
                job.replicas.append(info)
                log.notice("Waiting for end of BGSAVE for SYNC")
            else:
                log.notice("Can't attach the replica to the current BGSAVE. Waiting for next BGSAVE for SYNC")
        elif rdb.child_pid is not None and rdb.child_type == "socket":
            log.notice("Current BGSAVE has socket target. Waiting for next BGSAVE for SYNC")
        else:
            if node.config["repl-diskless-sync"] and self._socket_capable(info) and \
                    node.config["repl-diskless-sync-delay"]:
                log.notice("Delay next BGSAVE for diskless SYNC")
            elif not self._other_child():
                self.start(info.rdb_only)
            else:
                log.notice("No BGSAVE in progress, but another BG operation is active. "
                           "BGSAVE for replication delayed")

    def _setup_full_resync(self, info, offset: int) -> None:
        """replicationSetupSlaveForFullResync: the replica waits for the end of the fork; the next
        command of the stream re-selects its db."""
        info.phase = "end"
        info.initial_offset = offset
        if info.pending is None:
            info.pending = bytearray()
        self.manager.seldb = -1
        if not info.pre_psync:
            client = info.client
            client.out += b"+FULLRESYNC %s %d\r\n" % (self.manager.replid.encode(), offset)
            self.node.pending_write.add(client)

    # ------------------------------------------------------------ cron

    def cron(self) -> None:
        """replicationStartPendingFork, keep-alive newlines, and reaping a finished transfer child fast."""
        node = self.node
        if self.job is not None and node.rdb.child_pid == self.job.pid:
            node.rdb.check_child()
        if self._other_child():
            return
        waiting = self.waiting()
        if not waiting:
            return
        config = node.config
        now = time.monotonic()
        req = waiting[0].rdb_only
        batch = [info for info in waiting if info.rdb_only == req]
        max_idle = max(now - info.wait_since for info in batch)
        diskless = config["repl-diskless-sync"]
        most = config["repl-diskless-sync-max-replicas"]
        if not diskless or (most > 0 and len(batch) >= most) or max_idle >= config["repl-diskless-sync-delay"]:
            self.start(req)

    def keepalive(self) -> None:
        """Once a second: a newline to replicas waiting for a fork, or for a disk BGSAVE to finish."""
        now = time.monotonic()
        socket_running = self.node.rdb.child_pid is not None and self.node.rdb.child_type == "socket"
        for info in self.manager.replicas:
            if now - info.wait_since < 1.0:
                continue
            if info.phase == "start" or (info.phase == "end" and not socket_running):
                info.client.out += b"\n"
                self.node.pending_write.add(info.client)

    # ------------------------------------------------------------ fork

    def start(self, rdb_only: bool) -> bool:
        """startBgsaveForReplication for every waiting replica with this ``rdb_only``."""
        node = self.node
        manager = self.manager
        log = self._log()
        batch = [info for info in self.waiting() if info.rdb_only == rdb_only]
        if not batch:
            return False
        socket_target = node.config["repl-diskless-sync"] and all(self._socket_capable(i) for i in batch)
        log.notice(f"Starting BGSAVE for SYNC with target: {'replicas sockets' if socket_target else 'disk'} "
                   f"({len(batch)} replica{'s' if len(batch) != 1 else ''}: "
                   f"{', '.join(self._where(i) for i in batch)})")
        offset = manager.master_repl_offset
        stream_db = manager.stream_db if manager.is_replica else 0
        aux = {"repl-stream-db": stream_db, "repl-id": manager.replid, "repl-offset": offset}
        if socket_target:
            fmt = "shoal" if all(i.capa_shoal for i in batch) and not rdb_only else "rdb"
            job = self._fork_socket(aux, fmt, stream_db)
        else:
            job = self._fork_disk(aux)
        if job is None:
            log.warning("BGSAVE for replication failed")
            for info in batch:
                client = info.client
                info.phase = "failed"
                client.out += _BGSAVE_FAILED
                client.close_after_reply = True
                node.pending_write.add(client)
                node.pending_close.append(client)
            return False
        self.forks += 1
        self.job = job
        for info in batch:
            info.pending = None
            self._setup_full_resync(info, offset)
            job.replicas.append(info)
        if job.target == "socket":
            mark = os.urandom(20).hex().encode()
            for info in batch:
                info.mark = mark
                info.client.out += b"$EOF:%s\r\n" % mark
            node.spawn(self._stream_pipe, job)
        node.flush_clients()
        return True

    def _fork_disk(self, aux: dict) -> SyncJob | None:
        rdb = self.node.rdb
        rdb.extra_aux = aux
        try:
            started = rdb.bgsave()
        finally:
            rdb.extra_aux = None
        if not started:
            return None
        job = SyncJob("disk", rdb.child_pid, aux["repl-offset"], "rdb")
        rdb.child_done_hook = lambda pid, code, sig: self._child_done(job, code, sig)
        return job

    def _fork_socket(self, aux: dict, fmt: str, stream_db: int) -> SyncJob | None:
        """rdbSaveToSlavesSockets: a child writing the snapshot into a pipe."""
        from node.persistence.snapshot import prepare_forked_child

        node = self.node
        rdb = node.rdb
        data_r, data_w = os.pipe()
        info_r, info_w = os.pipe()
        keys_total = sum(db.size for db in node.dbs)
        gc.freeze()
        start = time.perf_counter_ns()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                pid = os.fork()
        except OSError as exc:
            gc.unfreeze()
            for fd in (data_r, data_w, info_r, info_w):
                os.close(fd)
            node.logger.warning(f"Can't save in background: fork: {exc.strerror or exc}")
            return None
        if pid == 0:  # pragma: no cover - the child
            code = 1
            try:
                prepare_forked_child(node.logger, info_r, info_w, extra_keep=(data_w,))
                code = self._child_write(data_w, info_w, aux, fmt, stream_db)
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        rdb.fork_usec = (time.perf_counter_ns() - start) // 1000
        rdb.total_forks += 1  # (rdb_saves counts disk saves only, as Redis's stat_rdb_saves)
        os.close(data_w)
        os.close(info_w)
        try:
            import fcntl

            fcntl.fcntl(data_r, getattr(fcntl, "F_SETPIPE_SZ", 1031), _CHUNK)  # fewer wake-ups per MB
        except OSError:
            pass
        os.set_blocking(data_r, False)
        os.set_blocking(info_r, False)
        rdb.child_pid = pid
        rdb.child_type = "socket"
        rdb.child_info_fd = info_r
        rdb._child_info_buf = b""
        rdb.save_time_start = rdb._now_s()
        rdb.save_keys_total = keys_total
        rdb.save_keys_processed = 0
        rdb.current_cow_size = rdb.current_cow_peak = 0
        rdb.current_cow_updated = 0.0
        job = SyncJob("socket", pid, aux["repl-offset"], fmt)
        job.pipe_fd = data_r
        rdb.child_done_hook = lambda pid_, code, sig: self._child_done(job, code, sig)
        node.logger.notice(f"Background RDB transfer started by pid {pid}")
        return job

    def _child_write(self, data_fd: int, info_fd: int, aux: dict, fmt: str,
                     stream_db: int) -> int:  # pragma: no cover - the child
        from node.persistence.snapshot import _INFO, _INFO_COW, _INFO_CURRENT, _private_dirty, write_dataset

        node = self.node
        out = os.fdopen(data_fd, "wb", buffering=1 << 16)
        last = time.monotonic()

        def progress(keys: int) -> None:
            nonlocal last
            now = time.monotonic()
            if now - last >= 1.0:
                last = now
                try:
                    os.write(info_fd, _INFO.pack(_INFO_CURRENT, keys, _private_dirty()))
                except OSError:
                    pass

        try:
            if fmt == "shoal":
                from node.replication.snapshot import dump_snapshot

                payload = dump_snapshot(node, stream_db)
                view = memoryview(payload)
                for at in range(0, len(view), _CHUNK):
                    out.write(view[at:at + _CHUNK])
            else:
                config = node.config
                full_aux = node.rdb._aux()
                full_aux.pop("aof-base", None)
                full_aux.update(aux)
                full_aux["aof-base"] = 0
                scripting = getattr(node, "_scripting", None)
                functions = [lib.code for lib in scripting.libraries.values()] if scripting is not None else []
                write_dataset(out, node.dbs, full_aux, functions=functions, compress=config["rdbcompression"],
                              checksum=config["rdbchecksum"], list_fill=config["list-max-listpack-size"],
                              progress=progress, key_delay_us=config["rdb-key-save-delay"])
            out.flush()
        except OSError:  # the parent closed the pipe: every replica went away
            return 1
        try:
            os.write(info_fd, _INFO.pack(_INFO_COW, -1, _private_dirty()))
        except OSError:
            pass
        return 0

    def _child_done(self, job: SyncJob, exitcode: int, bysignal: int) -> None:
        """Called by node.rdb when the child is reaped (updateSlavesWaitingBgsave)."""
        job.result = (exitcode, bysignal)
        if self.job is job:
            self.job = None
        ok = exitcode == 0 and not bysignal
        node = self.node
        if job.target == "disk":
            for info in list(job.replicas):
                if info.client.killed or info not in self.manager.replicas:
                    continue
                if not ok:
                    node.logger.warning("SYNC failed. BGSAVE child returned an error")
                    self._drop(info)
                    continue
                try:
                    fd = os.open(node.rdb.filename, os.O_RDONLY)
                    size = os.fstat(fd).st_size
                except OSError as exc:
                    node.logger.warning(f"SYNC failed. Can't open/stat DB after BGSAVE: {exc.strerror or exc}")
                    self._drop(info)
                    continue
                info.phase = "bulk"
                info.state = "send_bulk"
                info.client.out += b"$%d\r\n" % size
                node.pending_write.add(info.client)
                node.spawn(self._stream_file, info, fd, size)
        # socket: _stream_pipe finishes the transfer once it has read the pipe to its end
        # A replica that asked meanwhile is served by the next fork (the cron starts it).

    def _drop(self, info) -> None:
        client = info.client
        info.phase = "failed"
        if not client.killed:
            client.killed = True
            self.node.pending_close.append(client)

    # ------------------------------------------------------------ transfer

    def _alive(self, info) -> bool:
        return not info.client.killed and info in self.manager.replicas and self.node.clients.get(
            info.client.id) is info.client

    async def _stream_file(self, info, fd: int, size: int) -> None:
        """sendBulkToSlave: the BGSAVE file to one replica, a chunk at a time as its buffer drains."""
        import trio

        node = self.node
        client = info.client
        sent = 0
        try:
            while sent < size:
                if not self._alive(info):
                    return
                if len(client.out) >= _HIGH_WATER:
                    node.flush_clients()
                    await trio.sleep(0.002)
                    continue
                chunk = os.pread(fd, min(_CHUNK, size - sent), sent)
                if not chunk:
                    node.logger.warning("Read error sending DB to replica: premature EOF")
                    self._drop(info)
                    return
                client.out += chunk
                sent += len(chunk)
                node.pending_write.add(client)
                node.flush_clients()
                await trio.sleep(0)
        finally:
            os.close(fd)
        if self._alive(info):
            self._online(info, wait_ack=False)
            node.logger.notice(f"Synchronization with replica {self._where(info)} succeeded")
            node.flush_clients()

    async def _stream_pipe(self, job: SyncJob) -> None:
        """rdbPipeReadHandler: forward the child's output to every replica of the batch."""
        import trio

        node = self.node
        fd = job.pipe_fd
        rdb = node.rdb
        killed = False
        try:
            while True:
                live = [info for info in job.replicas if self._alive(info)]
                if not live:
                    if not killed and job.result is None:
                        killed = True
                        node.logger.warning("Diskless rdb transfer, last replica dropped, killing fork child.")
                        rdb.kill_child()
                    break
                if any(len(info.client.out) >= _HIGH_WATER for info in live):
                    node.flush_clients()
                    await trio.sleep(0.002)
                    continue
                try:
                    chunk = os.read(fd, _CHUNK)
                except BlockingIOError:
                    await trio.lowlevel.wait_readable(fd)
                    continue
                except OSError:
                    chunk = b""
                if not chunk:
                    node.logger.notice(f"Diskless rdb transfer, done reading from pipe, "
                                       f"{len(live)} replicas still up.")
                    break
                for info in live:
                    info.client.out += chunk
                    node.pending_write.add(info.client)
                node.flush_clients()
        finally:
            trio.lowlevel.notify_closing(fd)
            os.close(fd)
            job.pipe_fd = None
        # Wait for the child's exit status: only a child that finished cleanly completes the transfer.
        while job.result is None:
            if rdb.child_pid == job.pid:
                rdb.check_child()
            else:  # reaped without our hook (should not happen): treat as failed
                job.result = (1, 0)
                if self.job is job:
                    self.job = None
            if job.result is None:
                await trio.sleep(0.01)
        ok = job.result == (0, 0)
        for info in job.replicas:
            if not self._alive(info):
                continue
            if not ok:
                node.logger.warning("SYNC failed. BGSAVE child returned an error")
                self._drop(info)
                continue
            info.client.out += info.mark
            node.pending_write.add(info.client)
            if info.rdb_only:
                self._online(info, wait_ack=False)
                continue
            self._online(info, wait_ack=True)
            node.logger.notice(f"Streamed RDB transfer with replica {self._where(info)} succeeded (socket). "
                               "Waiting for REPLCONF ACK from replica to enable streaming")
        node.flush_clients()

    def _online(self, info, *, wait_ack: bool) -> None:
        """replicaPutOnline (+ replicaStartCommandStream unless it waits for the first ACK)."""
        manager = self.manager
        client = info.client
        info.phase = "online"
        info.state = "online"
        info.ack_time_ms = self.node.clock.wall_ms()
        if info.rdb_only:
            # REPLCONF rdb-only 1 (redis-cli --rdb): the snapshot only, then the connection closes.
            info.pending = None
            client.close_after_reply = True
            self.node.pending_write.add(client)
            self.node.logger.notice(f"Snapshot sent to {self._where(info)} (rdb-only)")
            return
        if wait_ack:
            info.await_ack = True
        else:
            self.start_stream(info)
        manager.refresh_good_replicas()

    def start_stream(self, info) -> None:
        info.await_ack = False
        pending = info.pending
        info.pending = None
        if pending:
            info.client.out += pending
            self.node.pending_write.add(info.client)

    def replica_gone(self, info) -> None:
        """A replica of a running transfer disconnected (the pipe task notices and may kill the child)."""
        info.pending = None
