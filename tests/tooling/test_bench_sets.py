"""bench/sets.py: the summary of saved benchmark sets that the README quotes."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.procs import ROOT


def _round(clients: int, ours: float, theirs: float, *, correct: bool = True) -> dict[str, Any]:
    def side(jobs_s: float, p99: float) -> dict[str, Any]:
        return {"e2e_throughput_jobs_s": jobs_s, "submit_latency_ms": {"p99": p99}}

    return {
        "setting": {"name": f"closed-{clients}c-n5000", "clients": clients},
        "hookline": side(ours, 50.0),
        "baseline": side(theirs, 200.0),
        "correct": correct,
    }


def _write(path: Path, date: str, runs: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps({"date": date, "runs": runs}))
    return path


def _sets(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "bench" / "sets.py"), *args],
                          capture_output=True, text=True, cwd=ROOT)


def test_sets_counts_medians_per_setting_and_skips_incorrect_rounds(tmp_path: Path) -> None:
    first = _write(tmp_path / "a.json", "2026-12-01 10:00 UTC", [
        _round(32, 600, 200), _round(32, 500, 200), _round(32, 700, 200),  # 3.0, 2.5, 3.5
        _round(128, 560, 200),
        # A round that lost a webhook is no evidence either way.
        _round(32, 9000, 200, correct=False),
    ])
    second = _write(tmp_path / "b.json", "2026-12-02 10:00 UTC", [
        _round(32, 400, 200), _round(32, 560, 200), _round(32, 580, 200),  # 2.0, 2.8, 2.9
        _round(128, 700, 200),
    ])
    result = _sets(str(second), str(first))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    # Oldest set first, 32 clients before 128 within a set.
    assert [line.split()[3] for line in lines[1:5]] == ["a.json", "a.json", "b.json", "b.json"]
    assert "closed-32c-n5000" in lines[1] and "3.00x (2.50-3.50)" in lines[1]
    assert "0.25x (0.25-0.25)" in lines[1]  # submit p99 50 against 200 ms
    assert "200-200" in lines[1]
    assert "2.80x (2.00-2.90)" in lines[3]
    assert lines[5] == ("closed-32c-n5000: 1 of 2 sets at 3x or more at their median "
                        "(set medians 2.80-3.00x); all 6 rounds: median 2.85x, 2 at 3x or more")
    assert lines[6] == ("closed-128c-n5000: 1 of 2 sets at 3x or more at their median "
                        "(set medians 2.80-3.50x); all 2 rounds: median 3.15x, 1 at 3x or more")
    # Only the newer set, and another target.
    newer = _sets("--since", "2026-12-02", "--target", "2.5", str(first), str(second))
    assert newer.stdout.splitlines()[-2] == (
        "closed-32c-n5000: 1 of 1 sets at 2.5x or more at their median "
        "(set medians 2.80-2.80x); all 3 rounds: median 2.80x, 2 at 2.5x or more")


def test_sets_without_baseline_rounds_says_so(tmp_path: Path) -> None:
    alone = tmp_path / "alone.json"
    alone.write_text(json.dumps({"date": "2026-12-01 10:00 UTC", "runs": [
        {"setting": {"name": "closed-32c-n5000"}, "hookline": {"e2e_throughput_jobs_s": 500},
         "baseline": None, "correct": True}]}))
    result = _sets(str(alone))
    assert result.returncode == 1
    assert "no saved set with the baseline beside it" in result.stderr
