"""The AOF manifest of Redis 7: which files make up the append-only log, in what order.

An append-only directory (``appenddirname``) holds at most one BASE file (a
snapshot written by the last rewrite: an RDB file, or AOF commands with
``aof-use-rdb-preamble no``), the INCR files written since (commands, in
sequence order) and, briefly, HISTORY files (replaced by a rewrite, about to
be deleted). The manifest ``<appendfilename>.manifest`` lists them, one line
each::

    file appendonly.aof.2.base.rdb seq 2 type b
    file appendonly.aof.1.incr.aof seq 1 type h
    file appendonly.aof.3.incr.aof seq 3 type i

The base line comes first, then history, then incr lines, as Redis writes
them. Names needing quotes are written the way Redis's ``sdscatrepr`` does and
read back with ``sdssplitargs`` rules. A manifest is replaced atomically:
``temp-<appendfilename>.manifest``, fsync, rename, fsync of the directory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from node.config import config_repr, split_config_line

__all__ = ["AofInfo", "Manifest", "ManifestError", "BASE", "HIST", "INCR", "write_manifest"]

BASE, HIST, INCR = "b", "h", "i"
_MAX_LINE = 1024  # MANIFEST_MAX_LINE


class ManifestError(Exception):
    """A manifest Redis would refuse: ``message`` is its reason, ``line_no``/``line`` where."""

    def __init__(self, message: str, line_no: int | None = None, line: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line_no = line_no
        self.line = line


@dataclass
class AofInfo:
    name: str
    seq: int
    kind: str

    def line(self) -> str:
        name = self.name
        if _needs_repr(name):
            name = config_repr(name)
        return f"file {name} seq {self.seq} type {self.kind}\n"


def _needs_repr(text: str) -> bool:
    """sdsneedsrepr: quotes, backslashes, spaces or unprintable characters."""
    for ch in text:
        if ch in '\\"' or not ch.isprintable() or ch.isspace() or ord(ch) > 126:
            return True
    return False


@dataclass
class Manifest:
    base: AofInfo | None = None
    history: list[AofInfo] = field(default_factory=list)
    incr: list[AofInfo] = field(default_factory=list)
    base_seq: int = 0
    incr_seq: int = 0
    dirty: bool = False

    # ------------------------------------------------------------ text

    def to_text(self) -> str:
        parts = []
        if self.base is not None:
            parts.append(self.base.line())
        parts.extend(info.line() for info in self.history)
        parts.extend(info.line() for info in self.incr)
        return "".join(parts)

    @classmethod
    def parse(cls, data: bytes) -> "Manifest":
        """aofLoadManifestFromFile's rules; raises ManifestError."""
        if not data:
            raise ManifestError("Found an empty AOF manifest")
        am = cls()
        maxseq = 0
        text = data.decode("utf-8", "surrogateescape")
        lines = text.split("\n")
        ends_with_newline = text.endswith("\n")
        if ends_with_newline:
            lines.pop()
        for number, raw in enumerate(lines, 1):
            if raw.startswith("#"):
                continue
            if len(raw) >= _MAX_LINE or (number == len(lines) and not ends_with_newline):
                raise ManifestError("The AOF manifest file contains too long line", number, raw.strip())
            line = raw.strip(" \t\r\n")
            if not line:
                raise ManifestError("Invalid AOF manifest file format", number, line)
            argv = split_config_line(line)
            if argv is None or len(argv) < 6 or len(argv) % 2:
                raise ManifestError("Invalid AOF manifest file format", number, line)
            name, seq, kind = None, 0, ""
            for i in range(0, len(argv), 2):
                word = argv[i].lower()
                if word == "file":
                    name = argv[i + 1]
                    if "/" in name:
                        raise ManifestError("File can't be a path, just a filename", number, line)
                elif word == "seq":
                    seq = _atoll(argv[i + 1])
                elif word == "type":
                    kind = argv[i + 1][:1]
            if not name or not seq or not kind:
                raise ManifestError("Invalid AOF manifest file format", number, line)
            info = AofInfo(name, seq, kind)
            if kind == BASE:
                if am.base is not None:
                    raise ManifestError("Found duplicate base file information", number, line)
                am.base = info
                am.base_seq = seq
            elif kind == HIST:
                am.history.append(info)
            elif kind == INCR:
                if seq <= maxseq:
                    raise ManifestError("Found a non-monotonic sequence number", number, line)
                am.incr.append(info)
                am.incr_seq = seq
                maxseq = seq
            else:
                raise ManifestError("Unknown AOF file type", number, line)
        return am

    # ----------------------------------------------------------- changes

    def dup(self) -> "Manifest":
        return Manifest(
            None if self.base is None else AofInfo(self.base.name, self.base.seq, self.base.kind),
            [AofInfo(i.name, i.seq, i.kind) for i in self.history],
            [AofInfo(i.name, i.seq, i.kind) for i in self.incr],
            self.base_seq, self.incr_seq, self.dirty,
        )

    def new_base(self, filename: str, rdb_preamble: bool) -> str:
        """getNewBaseFileNameAndMarkPreAsHistory."""
        if self.base is not None:
            self.base.kind = HIST
            self.history.insert(0, self.base)
        self.base_seq += 1
        suffix = ".rdb" if rdb_preamble else ".aof"
        self.base = AofInfo(f"{filename}.{self.base_seq}.base{suffix}", self.base_seq, BASE)
        self.dirty = True
        return self.base.name

    def new_incr(self, filename: str) -> str:
        self.incr_seq += 1
        info = AofInfo(f"{filename}.{self.incr_seq}.incr.aof", self.incr_seq, INCR)
        self.incr.append(info)
        self.dirty = True
        return info.name

    def last_incr(self, filename: str) -> str:
        if not self.incr:
            return self.new_incr(filename)
        return self.incr[-1].name

    def mark_rewritten_incr_as_history(self, keep_last: bool) -> None:
        """markRewrittenIncrAofAsHistory: every INCR but the one being written becomes HISTORY."""
        if not self.incr:
            return
        keep = [self.incr[-1]] if keep_last else []
        moved = self.incr[:-1] if keep_last else self.incr[:]
        for info in reversed(moved):
            info.kind = HIST
            self.history.insert(0, info)
        self.incr = keep
        self.dirty = True

    def files(self) -> list[AofInfo]:
        """BASE then INCR files: what is loaded, in order."""
        return ([self.base] if self.base is not None else []) + list(self.incr)


def _atoll(text: str) -> int:
    text = text.strip()
    end = 1 if text[:1] in "+-" else 0
    while end < len(text) and text[end].isdigit():
        end += 1
    try:
        return int(text[:end])
    except ValueError:
        return 0


def write_manifest(dirname: str, filename: str, text: str, logger=None) -> bool:
    """writeAofManifestFile: temp file, fsync, rename, fsync the directory. False (logged) on failure."""
    name = f"{filename}.manifest"
    tmp_name = f"temp-{filename}.manifest"
    path = os.path.join(dirname, name)
    tmp_path = os.path.join(dirname, tmp_name)

    def warn(msg: str) -> bool:
        if logger is not None:
            logger.warning(msg)
        return False

    try:
        fd = os.open(tmp_path, os.O_WRONLY | os.O_TRUNC | os.O_CREAT, 0o644)
    except OSError as exc:
        return warn(f"Can't open the AOF manifest file {tmp_name}: {exc.strerror}")
    try:
        data = text.encode("utf-8", "surrogateescape")
        try:
            view = memoryview(data)
            while view:
                n = os.write(fd, view)
                view = view[n:]
        except OSError as exc:
            return warn(f"Error trying to write the temporary AOF manifest file {tmp_name}: {exc.strerror}")
        try:
            os.fsync(fd)
        except OSError as exc:
            return warn(f"Fail to fsync the temp AOF file {tmp_name}: {exc.strerror}.")
        try:
            os.rename(tmp_path, path)
        except OSError as exc:
            return warn(f"Error trying to rename the temporary AOF manifest file {tmp_name} into {name}: "
                        f"{exc.strerror}")
        try:
            dfd = os.open(dirname, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except OSError as exc:
            return warn(f"Fail to fsync AOF directory {path}: {exc.strerror}.")
    finally:
        os.close(fd)
    return True
