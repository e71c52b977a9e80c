"""The primary's side of a replica connection: REPLCONF, PSYNC/SYNC, full and partial resync.

A replica is an ordinary client of the epoll loop. Once it is attached, the
stream is appended to its output buffer (``ReplicationManager.feed_stream``)
and the server flushes it like any reply.

Full resync: the replica is listed in state ``wait_bgsave`` and
``node.replication.fork`` serves it from a fork child, as Redis does:
``+FULLRESYNC <replid> <offset at the fork>`` then the snapshot --
``$<len>\\r\\n<rdb>`` (disk target) or ``$EOF:<40 chars>\\r\\n<rdb><40 chars>``
(socket target: ``repl-diskless-sync yes`` and ``capa eof``) -- then the
stream written since the fork. ``rdb_snapshot`` (the dataset serialised in this
process) is kept for tools that want the bytes directly.

Partial resync: ``+CONTINUE <replid>`` (``+CONTINUE`` for a replica without
``capa psync2``) and the backlog from the requested offset.
"""

from __future__ import annotations

from node.resp import NO_REPLY, OK, ErrorReply

__all__ = ["psync", "replconf", "rdb_snapshot"]

_SYNTAX = ErrorReply("ERR syntax error")


def rdb_snapshot(node, manager) -> bytes:
    """The whole dataset as an RDB-10 file, with the replication aux fields Redis writes."""
    from io import BytesIO

    from node.persistence.snapshot import write_dataset

    aux = node.rdb._aux()
    # The db the stream continues in: a replica proxies its primary's stream, which selects no db anew.
    aux["repl-stream-db"] = manager.stream_db if manager.is_replica else 0
    aux["repl-id"] = manager.replid
    aux["repl-offset"] = manager.master_repl_offset
    scripting = getattr(node, "_scripting", None)
    functions = [lib.code for lib in scripting.libraries.values()] if scripting is not None else []
    out = BytesIO()
    config = node.config
    write_dataset(out, node.dbs, aux, functions=functions, compress=config["rdbcompression"],
                  checksum=config["rdbchecksum"], list_fill=config["list-max-listpack-size"])
    return out.getvalue()


def replconf(node, client, argv) -> object:
    manager = node.replication
    if len(argv) % 2 == 0:
        return _SYNTAX
    for j in range(1, len(argv), 2):
        option = argv[j].lower()
        value = argv[j + 1]
        if option == b"listening-port":
            try:
                port = int(value)
            except ValueError:
                return ErrorReply("ERR value is not an integer or out of range")
            manager.info_of(client).port = port
        elif option == b"ip-address":
            if len(value) >= 256:  # NET_HOST_STR_LEN
                return ErrorReply(
                    f"ERR REPLCONF ip-address provided by replica instance is too long: {len(value)} bytes")
            manager.info_of(client).ip = value.decode("utf-8", "surrogateescape")
        elif option == b"capa":
            if value.lower() == b"eof":
                manager.info_of(client).capa_eof = True
            elif value.lower() == b"psync2":
                manager.info_of(client).capa_psync2 = True
            elif value.lower() == b"shoal-snap":
                manager.info_of(client).capa_shoal = True
        elif option == b"ack":
            # REPLCONF ACK <offset> [FACK <aofofs>]: from a replica, never answered.
            if "S" not in client.flags:
                return NO_REPLY
            try:
                offset = int(value)
            except ValueError:
                return NO_REPLY
            manager.ack(client, offset)
            return NO_REPLY
        elif option == b"getack":
            # Only a replica answers, and only its primary (the link handles it); others: nothing.
            return NO_REPLY
        elif option == b"rdb-only":
            from node.resp.parser import string2ll

            number = string2ll(value)
            if number is None:
                return ErrorReply("ERR value is not an integer or out of range")
            if number not in (0, 1):
                return ErrorReply("ERR value is out of range, value must between 0 and 1")
            manager.info_of(client).rdb_only = number == 1
        elif option == b"rdb-filter-only":
            pass
        else:
            return ErrorReply(f"ERR Unrecognized REPLCONF option: {argv[j].decode('utf-8', 'replace')}")
    return OK


def psync(node, client, argv, *, sync: bool = False) -> object:
    """PSYNC <replid> <offset> / SYNC: attach ``client`` as a replica (partial or full resync)."""
    manager = node.replication
    if "S" in client.flags:
        return NO_REPLY
    if manager.is_replica and (manager.link is None or manager.link.state != "connected"):
        return ErrorReply("NOMASTERLINK Can't SYNC while not connected with my master")
    if client.out:
        return ErrorReply("ERR SYNC and PSYNC are invalid with pending output")
    info = manager.info_of(client)
    if not sync:
        try:
            psync_offset = int(argv[2])
        except ValueError:
            return ErrorReply("ERR value is not an integer or out of range")
        replid = argv[1].decode("utf-8", "surrogateescape")
        if _try_partial(node, manager, client, info, replid, psync_offset):
            manager.sync_partial_ok += 1
            return NO_REPLY
        if replid != "?":
            manager.sync_partial_err += 1
    manager.sync_full += 1
    logger = node.logger
    where = f"{info.address()}:{info.port}"
    logger.notice(f"Replica {where} asks for synchronization")
    if not manager.replicas and manager.backlog is None:
        manager.change_replid()
        manager.clear_replid2()
        manager.create_backlog()
        logger.notice(f"Replication backlog created, my new replication IDs are '{manager.replid}' "
                      f"and '{manager.replid2}'")
    elif manager.backlog is None:
        manager.create_backlog()
    info.pre_psync = sync
    info.state = "wait_bgsave"
    info.pending = None
    manager.add_replica(info)  # listed (state wait_bgsave) from now on, as Redis's server.slaves
    manager.forks.request(info)
    return NO_REPLY


def _try_partial(node, manager, client, info, replid: str, offset: int) -> bool:
    """masterTryPartialResynchronization."""
    if replid != manager.replid and (replid != manager.replid2 or offset > manager.second_replid_offset):
        if replid != "?":
            if replid != manager.replid and replid != manager.replid2:
                node.logger.notice(
                    f"Partial resynchronization not accepted: Replication ID mismatch (Replica asked for "
                    f"'{replid}', my replication IDs are '{manager.replid}' and '{manager.replid2}')")
            else:
                node.logger.notice(
                    f"Partial resynchronization not accepted: Requested offset for second ID was {offset}, "
                    f"but I can reply up to {manager.second_replid_offset}")
        else:
            node.logger.notice(f"Full resync requested by replica {info.address()}:{info.port}")
        return False
    backlog = manager.backlog
    if backlog is None or not backlog.covers(offset):
        node.logger.notice(
            f"Unable to partial resync with replica {info.address()}:{info.port} for lack of backlog "
            f"(Replica request was: {offset}).")
        return False
    if info.capa_psync2:
        client.out += b"+CONTINUE %s\r\n" % manager.replid.encode()
    else:
        client.out += b"+CONTINUE\r\n"
    client.out += backlog.since(offset)
    info.state = "online"
    manager.add_replica(info)
    node.logger.notice(
        f"Partial resynchronization request from {info.address()}:{info.port} accepted. Sending "
        f"{manager.master_repl_offset + 1 - offset} bytes of backlog starting from offset {offset}.")
    return True
