#!/usr/bin/env python3
"""Summarise saved ``run.py --compare-baseline --rounds R`` results, one line per set.

This machine's speed drifts by a factor of two between hours, so a target
stated as a ratio to the baseline is judged over several sets of alternating
rounds, not one. This prints, for each saved JSON document and each setting,
the median and spread of the end-to-end and submit-p99 ratios and the
baseline's range of jobs/s (how fast the machine was), then, per setting,
how many sets met the target at their median and the median of every round.

    .venv/bin/python bench/sets.py bench/results/closed-32-128-vs-baseline-rounds3-*.json
    .venv/bin/python bench/sets.py --since 2026-11-29 --target 3
"""
from __future__ import annotations

import argparse
import glob
import json
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_GLOB = "closed-*-vs-baseline-rounds*.json"


@dataclass
class Setting:
    """The rounds of one setting (``closed-32c-n5000``) in one saved set."""

    clients: int = 0
    e2e: list[float] = field(default_factory=list)
    submit_p99: list[float] = field(default_factory=list)
    baseline_jobs_s: list[float] = field(default_factory=list)


@dataclass
class Set:
    path: Path
    date: str
    settings: dict[str, Setting]


def load(path: Path) -> Set | None:
    """The set in ``path``, or ``None`` if it holds no round with the baseline beside it."""
    document = json.loads(path.read_text())
    settings: dict[str, Setting] = {}
    for run in document.get("runs", []):
        ours, theirs = run.get("hookline"), run.get("baseline")
        if not ours or not theirs or not run.get("correct", False):
            continue
        setting = settings.setdefault(run["setting"]["name"],
                                      Setting(clients=run["setting"].get("clients", 0)))
        setting.e2e.append(ours["e2e_throughput_jobs_s"] / theirs["e2e_throughput_jobs_s"])
        setting.submit_p99.append(ours["submit_latency_ms"]["p99"] / theirs["submit_latency_ms"]["p99"])
        setting.baseline_jobs_s.append(theirs["e2e_throughput_jobs_s"])
    if not settings:
        return None
    return Set(path, document.get("date", "?"), settings)


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f}x ({min(values):.2f}-{max(values):.2f})"


def report(sets: list[Set], target: float) -> list[str]:
    lines = [f"{'date':<21} {'set':<56} {'setting':<18} {'rounds':>6}  {'e2e ratio, median (range)':<26}"
             f" {'submit p99 ratio':<20} baseline jobs/s"]
    for found in sets:
        for name, setting in sorted(found.settings.items(), key=lambda item: (item[1].clients, item[0])):
            low, high = min(setting.baseline_jobs_s), max(setting.baseline_jobs_s)
            lines.append(
                f"{found.date:<21} {found.path.name:<56} {name:<18} {len(setting.e2e):>6}  "
                f"{_spread(setting.e2e):<26} {_spread(setting.submit_p99):<20} {low:.0f}-{high:.0f}"
            )
    # 32 clients before 128, as run.py runs them.
    clients = {name: setting.clients for found in sets for name, setting in found.settings.items()}
    names = sorted(clients, key=lambda name: (clients[name], name))
    for name in names:
        medians = [statistics.median(f.settings[name].e2e) for f in sets if name in f.settings]
        rounds = [ratio for f in sets if name in f.settings for ratio in f.settings[name].e2e]
        met = sum(median >= target for median in medians)
        lines.append(
            f"{name}: {met} of {len(medians)} sets at {target:g}x or more at their median "
            f"(set medians {min(medians):.2f}-{max(medians):.2f}x); "
            f"all {len(rounds)} rounds: median {statistics.median(rounds):.2f}x, "
            f"{sum(r >= target for r in rounds)} at {target:g}x or more"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", type=Path,
                        help=f"saved JSON documents (default: results/{DEFAULT_GLOB})")
    parser.add_argument("--since", default="",
                        help="only sets dated on or after this (YYYY-MM-DD, or YYYY-MM-DD HH:MM, UTC)")
    parser.add_argument("--target", type=float, default=3.0, help="end-to-end ratio to count (default 3)")
    args = parser.parse_args(argv)
    paths = args.files or [Path(p) for p in glob.glob(str(RESULTS / DEFAULT_GLOB))]
    loaded = [found for found in map(load, paths) if found is not None]
    sets = sorted((s for s in loaded if s.date >= args.since), key=lambda s: (s.date, s.path.name))
    if not sets:
        print("no saved set with the baseline beside it", file=sys.stderr)
        return 1
    print("\n".join(report(sets, args.target)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
