"""Persistence in Redis's own formats: RDB (``rdb``), its CRC-64 (``crc64``) and LZF (``lzf``).

The append-only file (Redis 7's multi-part AOF: ``aof``, ``aof_manifest``,
``aof_loader``, ``aof_rewrite``) and the RDB snapshots of a running node
(``snapshot``) use them.

Everything here is pure (no trio, no clock): the code that saves and loads
files, or serves DUMP/RESTORE, passes bytes and file objects in.
"""
