"""Persistence in Redis's own formats: RDB (``rdb``), its CRC-64 (``crc64``) and LZF (``lzf``).

Everything here is pure (no trio, no clock): the code that saves and loads
files, or serves DUMP/RESTORE, passes bytes and file objects in.
"""
