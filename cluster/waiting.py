"""Polling a cluster until something holds: the one wait loop the admin tools, launcher and fixtures share."""

from __future__ import annotations

import time

from cluster.resp import RespError

__all__ = ["wait_until"]


def wait_until(predicate, timeout: float, what: str, *, interval: float = 0.1,
               tolerate: tuple = (OSError, ConnectionError, RespError, ValueError)) -> None:
    """Call ``predicate`` every ``interval`` s until it is true; ``TimeoutError`` naming ``what`` after ``timeout``.

    Errors in ``tolerate`` (a node restarting, refusing, answering garbage
    mid-change) count as "not yet".
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except tolerate:
            pass
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
