"""Lowering one thread's CPU priority (on Linux a thread has its own nice value)."""
from __future__ import annotations

import logging
import os
import threading

log = logging.getLogger("hookline.index")


def lower_priority(nice: int, what: str) -> None:
    """Add ``nice`` to the calling thread's nice value; threads it starts inherit it."""
    if nice <= 0:
        return
    try:
        current = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), min(19, current + nice))
    except OSError as exc:  # not permitted here: run at the usual priority
        log.warning("could not lower a thread's priority", extra={"thread": what, "error": str(exc)})
