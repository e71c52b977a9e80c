"""Log lines in Redis's format: ``pid:role dd Mon yyyy hh:mm:ss.mmm <level> message``.

The level marks are Redis's: ``.`` debug, ``-`` verbose, ``*`` notice, ``#``
warning. Lines go to ``logfile``, or stderr when it is empty, and are flushed
each time so a crash never eats the last words.
"""

from __future__ import annotations

import os
import sys
import time
from typing import TextIO

__all__ = ["Logger", "LEVELS"]

LEVELS = {"debug": 0, "verbose": 1, "notice": 2, "warning": 3, "nothing": 4}
_MARKS = {0: ".", 1: "-", 2: "*", 3: "#"}


class Logger:
    def __init__(self, path: str = "", level: str = "notice", role: str = "M") -> None:
        self.level = LEVELS[level]
        self.role = role
        self.path = path
        self._stream: TextIO = open(path, "a", encoding="utf-8", errors="replace") if path else sys.stderr
        self._pid = os.getpid()

    def set_level(self, level: str) -> None:
        self.level = LEVELS[level]

    def log(self, level: int, message: str) -> None:
        if level < self.level:
            return
        now = time.time()
        stamp = time.strftime("%d %b %Y %H:%M:%S", time.localtime(now))
        millis = int(now * 1000) % 1000
        self._stream.write(f"{self._pid}:{self.role} {stamp}.{millis:03d} {_MARKS[level]} {message}\n")
        self._stream.flush()

    def debug(self, message: str) -> None:
        self.log(0, message)

    def verbose(self, message: str) -> None:
        self.log(1, message)

    def notice(self, message: str) -> None:
        self.log(2, message)

    def warning(self, message: str) -> None:
        self.log(3, message)

    def close(self) -> None:
        if self._stream is not sys.stderr:
            self._stream.close()
