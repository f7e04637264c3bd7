"""The run command's supervisor restarts a process that dies, and stops them all."""
from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

from tests.procs import ROOT, wait_until

sys.path.insert(0, str(ROOT))

import dev  # noqa: E402


def test_a_dead_process_is_restarted_and_stop_ends_everything(tmp_path: Path) -> None:
    starts = tmp_path / "starts"
    crasher = f"{sys.executable} -c \"open('{starts}', 'a').write('x'); raise SystemExit(3)\""
    sleeper = f"{sys.executable} -c \"import time; time.sleep(600)\""
    supervisor = dev.Supervisor({"crasher": crasher, "sleeper": sleeper}, dict(os.environ))
    thread = threading.Thread(target=supervisor.run, daemon=True)
    thread.start()
    try:
        # A process that exits on its own is started again (after 1 s, then 2 s)
        wait_until(lambda: starts.exists() and len(starts.read_text()) >= 2, 15,
                   "the crashing process is restarted")
        sleeper_proc = supervisor.procs["sleeper"]
        assert sleeper_proc.poll() is None
    finally:
        supervisor.stop()
        thread.join(10)
    # Stopping ends every process it started
    assert all(proc.poll() is not None for proc in supervisor.procs.values())
    assert not thread.is_alive()
