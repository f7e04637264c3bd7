"""Keep a worker's ``nice`` in force when it runs in a session of its own.

With autogroup, Linux shares CPU between sessions first and by ``nice`` only
inside one, so a Procfile runner that gives each line its own session
(honcho) would void the job worker's ``nice -n 5``. A worker alone in a
session without a terminal gives the session its ``nice``; a shared session
is left alone, since the change would slow the others too.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import NamedTuple

log = logging.getLogger("hookline.worker")

PROC = Path("/proc")


class Stat(NamedTuple):
    parent: int
    session: int
    terminal: int
    nice: int


def _stat(pid: int | str) -> Stat:
    text = (PROC / str(pid) / "stat").read_text()
    # The command name, in parentheses, may hold spaces: count from its end.
    fields = text[text.rindex(")") + 2:].split()
    return Stat(int(fields[1]), int(fields[3]), int(fields[4]), int(fields[16]))


def _ancestors(pid: int) -> set[int]:
    found: set[int] = set()
    while pid > 1 and pid not in found:
        found.add(pid)
        pid = _stat(pid).parent
    return found


def session_nice_applied() -> int | None:
    """Give this process's session its ``nice``, where that reaches nothing else.

    Returns the ``nice`` now in force for the session, or ``None`` where the
    session was left alone (priority 0, no autogroup, the kernel's root group,
    a terminal's session, or another process in it at a higher priority).
    """
    nice = os.nice(0)
    if nice <= 0:
        return None
    try:
        if (PROC / "sys/kernel/sched_autogroup_enabled").read_text().strip() != "1":
            return None
        if not (PROC / "self/autogroup").read_text().strip():
            # The kernel's root group: this session is PID 1's own (a process
            # started by a container's init without setsid, as a CI runner's
            # can be). It has no nice of its own to set.
            return None
        me = _stat("self")
        if me.terminal != 0:
            return None
        ours = _ancestors(os.getpid())
        for entry in PROC.iterdir():
            if not entry.name.isdigit() or int(entry.name) in ours:
                continue
            try:
                other = _stat(entry.name)
            except (OSError, ValueError, IndexError):
                continue  # it ended while we looked
            if other.session == me.session and other.nice < nice:
                return None
        (PROC / "self/autogroup").write_text(str(nice))
    except OSError as exc:
        log.info("session priority left unchanged: %s", exc.strerror)
        return None
    log.info("session priority set to nice %d, this worker's own", nice)
    return nice
