"""dev.py's restart back-off starts over once a process has stayed up for a while."""
from __future__ import annotations

import os
import re
import sys
import threading
from pathlib import Path

import pytest

from tests.procs import ROOT, wait_until

sys.path.insert(0, str(ROOT))

import dev  # noqa: E402


def restart_delays(output: str, name: str) -> list[int]:
    return [int(d) for d in re.findall(rf"{name}: exited with \d+; restarting in (\d+) s", output)]


def supervise(tmp_path: Path, name: str, lifetime: float, starts_wanted: int) -> None:
    starts = tmp_path / name
    command = (f"{sys.executable} -c \"import time; open('{starts}', 'a').write('x'); "
               f"time.sleep({lifetime}); raise SystemExit(3)\"")
    supervisor = dev.Supervisor({name: command}, dict(os.environ), stable_after=1.0)
    thread = threading.Thread(target=supervisor.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: starts.exists() and len(starts.read_text()) >= starts_wanted, 30,
                   f"{name} is started {starts_wanted} times")
    finally:
        supervisor.stop()
        thread.join(10)


def test_a_process_that_stayed_up_is_restarted_after_the_shortest_pause(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a process that stays up past the stable time before each exit
    supervise(tmp_path, "steady", lifetime=1.5, starts_wanted=4)
    # Then every restart waits the first pause again, instead of 1, 2, 4 s
    delays = restart_delays(capsys.readouterr().out, "steady")
    assert len(delays) >= 3 and set(delays) == {1}, delays


def test_a_crash_loop_still_backs_off(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    supervise(tmp_path, "crasher", lifetime=0, starts_wanted=3)
    assert restart_delays(capsys.readouterr().out, "crasher")[:2] == [1, 2]
