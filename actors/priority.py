"""Keep a worker's ``nice`` in force when it runs in a session of its own.

Linux kernels with autogroup (``/proc/sys/kernel/sched_autogroup_enabled``)
share CPU time out between sessions first and by ``nice`` only inside a
session. The Procfile starts the job worker under ``nice -n 10`` so that the
web answers first; a Procfile runner that starts every line in a session of
its own (honcho does, through ``/bin/sh -c``) would make that priority count
for nothing. A session also has a ``nice`` of its own
(``/proc/self/autogroup``), so a worker gives its session the worker's
``nice`` where that reaches nothing else: the session has no terminal, and
nothing in it runs at a higher priority except the worker's own parents (the
shell that started it, which only waits). A session shared with other
processes (``python3 dev.py run``, the benchmark) or a terminal's session is
left alone, since the change would slow them too.
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
