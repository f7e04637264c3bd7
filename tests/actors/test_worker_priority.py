"""The Procfile's job worker keeps its lower priority under a runner like honcho.

On kernels with autogroup, ``nice`` only ranks processes of one session; a
runner that starts each Procfile line in a session of its own (honcho) would
otherwise leave the worker on an equal footing with the web.
"""
from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.procs import ROOT, Process, Stack, wait_until

sys.path.insert(0, str(ROOT))

import dev  # noqa: E402

AUTOGROUP = Path("/proc/sys/kernel/sched_autogroup_enabled")

pytestmark = pytest.mark.skipif(
    not AUTOGROUP.exists() or AUTOGROUP.read_text().strip() != "1",
    reason="this kernel does not group CPU time by session (autogroup is off)",
)


def autogroup_nice(pid: int) -> int | None:
    """The nice of ``pid``'s session, or ``None`` in the kernel's root group.

    A session begun under autogroup reads e.g. "/autogroup-85 nice 10"; one
    that never left the first process's session (a CI runner's, in a
    container) reads empty, and has no nice of its own.
    """
    text = Path(f"/proc/{pid}/autogroup").read_text().split()
    return int(text[-1]) if text else None


@pytest.fixture
def session_runner(make_stack, tmp_path: Path) -> Iterator:
    """Start a shell command in a session of its own, as honcho starts a Procfile line."""
    stack: Stack = make_stack()
    started: list[Process] = []

    def run(command: str) -> Process:
        proc = Process(f"session-{len(started)}", ["/bin/sh", "-c", command], stack.env, tmp_path)
        started.append(proc)
        wait_until(lambda: proc.log().count("worker process ready") >= 2, 60,
                   "the worker boots its two processes")
        return proc

    yield run
    for proc in started:
        # The whole session stops (Dramatiq's processes too, not only the
        # shell), or its workers would take the next test's messages.
        sid = proc.pid
        try:
            os.killpg(sid, signal.SIGTERM)
            wait_until(lambda sid=sid: not _session(sid), 30, "the worker's session ends")
        except ProcessLookupError:
            pass
        except AssertionError:
            os.killpg(sid, signal.SIGKILL)
        proc.stop()


def workers(proc: Process) -> list[int]:
    """The Dramatiq worker processes under ``proc`` (the shell may have become Dramatiq)."""
    return wait_until(lambda: [pid for pid in _descendants(proc.pid)
                               if "actors:setup" in Path(f"/proc/{pid}/cmdline").read_text()],
                      10, "worker processes are listed")


def _stats() -> Iterator[tuple[int, list[str]]]:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue  # it ended while we looked
            yield int(entry.name), stat[stat.rindex(")") + 2:].split()


def _session(sid: int) -> list[int]:
    # A zombie has ended already: the shell's stays until the fixture reaps it.
    return [pid for pid, fields in _stats() if int(fields[3]) == sid and fields[0] != "Z"]


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for child, fields in _stats():
        children.setdefault(int(fields[1]), []).append(child)
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def test_a_worker_in_a_session_of_its_own_gives_the_session_its_nice(session_runner) -> None:
    ours = autogroup_nice(os.getpid())
    # Given the Procfile's worker line, run the way honcho runs it
    line = dev.procfile()["worker"]
    niceness, _ = dev.split_nice(line)
    assert niceness > 0
    proc = session_runner(line)
    # Then its session ranks below the others by the worker's nice
    pids = workers(proc)
    assert pids
    assert {autogroup_nice(pid) for pid in pids} == {niceness}, proc.log()
    # And this test's own session is untouched
    assert autogroup_nice(os.getpid()) == ours


def test_a_session_shared_with_a_busier_process_is_left_alone(session_runner) -> None:
    # Given the same worker in a session that also holds a process at nice 0
    # (as when the web shares it)
    proc = session_runner(f"sleep 120 & {dev.procfile()['worker']}")
    # Then the session keeps its priority: lowering it would slow the other too
    pids = workers(proc)
    assert pids
    assert {autogroup_nice(pid) for pid in pids} == {0}
    assert "session priority set" not in proc.log()
