"""One stop per SIGTERM burst in a Dramatiq worker process.

What Dramatiq does (``dramatiq/cli.py``): the main process catches SIGTERM
(and SIGINT, turned into SIGTERM) and sends it on to each worker process.
A worker process's handler (``worker_process``'s ``termhandler``) stops the
worker gracefully on the first SIGTERM, and on any later one calls
``sys.exit`` at once ("Killing worker process..."), mid-drain, so the
messages it holds are neither finished nor given back: they wait for the
dead-worker sweep, and a task that was running runs a second time.

A SIGTERM sent to the whole process group (Heroku, honcho, ``kill -TERM
-PGID``) reaches each worker process twice within moments: once from the
sender and once forwarded by its parent. ``guard_repeated_sigterm`` makes
a repeat that arrives within ``REPEAT_WINDOW`` of the first part of the
same stop, so a group SIGTERM drains exactly as a SIGTERM to the main
process does. A SIGTERM sent later still stops the process at once.
"""
from __future__ import annotations

import logging
import signal
import threading
import time
from types import FrameType
from typing import Any

log = logging.getLogger("hookline.worker")

#: Seconds after a SIGTERM during which another one is taken for the same
#: stop (the group's and the parent's copies arrive within milliseconds; a
#: busy host can delay the parent's).
REPEAT_WINDOW = 5.0


def guard_repeated_sigterm() -> bool:
    """Wrap Dramatiq's worker-process SIGTERM handler, if it is the one installed.

    Does nothing (and returns ``False``) anywhere else: in Dramatiq's main
    process, whose handler is installed after the broker is set up, in a
    thread other than the main one, or outside the ``dramatiq`` command.
    """
    if threading.current_thread() is not threading.main_thread():
        return False
    previous: Any = signal.getsignal(signal.SIGTERM)
    if not (callable(previous) and getattr(previous, "__module__", "") == "dramatiq.cli"
            and getattr(previous, "__name__", "") == "termhandler"):
        return False
    first: float | None = None

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        nonlocal first
        now = time.monotonic()
        if first is not None and now - first < REPEAT_WINDOW:
            log.info("repeated SIGTERM ignored: the worker is already stopping")
            return
        first = now if first is None else first
        previous(signum, frame)

    signal.signal(signal.SIGTERM, on_sigterm)
    return True
