"""The highest open-loop rate a system sustains, Hookline's against the baseline's.

Called by ``bench/run.py --find-rate``. Both systems climb one ladder of
rates in the same session, each rung on a fresh stack, alternating which
system goes first; a system leaves the ladder at its first rung that fails,
and the step between its last pass and that failure is then halved
``--refine`` times (one that fails the first rung steps down instead). A
rung passes when, over ``--duration`` seconds at that
rate:

* every job was accepted and its webhook arrived, verified, once;
* p99 from submit to webhook is at most ``--p99-ms`` (100 ms);
* no backlog grew: the last webhook came at most ``MAX_DRAIN_SECONDS`` after
  the last submission, and the jobs completed per second kept up with the
  rate (a queue that grows shows as a drain at the end and a lower rate).
"""
from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: Seconds the last webhook may come after the last submission.
MAX_DRAIN_SECONDS = 1.0
#: Fraction of the offered rate the completions must reach.
MIN_KEPT_UP = 0.97

Runner = Callable[[argparse.Namespace, dict[str, Any], Path], dict[str, Any]]


def verdict(summary: dict[str, Any], rate: float, n: int, p99_ms: float,
            problems: list[str]) -> tuple[bool, str]:
    """Whether one rung passed, and why not."""
    if problems:
        return False, "; ".join(problems)
    p99 = (summary.get("e2e_latency_ms") or {}).get("p99")
    if p99 is None or p99 > p99_ms:
        return False, f"p99 {p99} ms"
    drain = (summary.get("e2e_s") or 0) - (summary.get("submit_phase_s") or 0)
    if drain > MAX_DRAIN_SECONDS:
        return False, f"drained {drain:.2f} s after the last submit"
    done = summary.get("e2e_throughput_jobs_s") or 0
    if done < MIN_KEPT_UP * rate:
        return False, f"completed {done} jobs/s"
    return True, "ok"


def one_rung(system: str, run: Runner, args: argparse.Namespace, rate: float,
             correct: Callable[[dict[str, Any], int], list[str]]) -> dict[str, Any]:
    n = int(rate * args.duration)
    setting = {"name": f"open-{rate:g}/s-{args.duration:g}s", "mode": "open", "rate": rate, "n": n}
    with tempfile.TemporaryDirectory(prefix="hl-rate-") as tmp:
        summary = run(args, setting, Path(tmp))
    # The baseline has no records of its own to check beyond the driver's.
    passed, why = verdict(summary, rate, n, args.p99_ms, correct(summary, n))
    latency = summary.get("e2e_latency_ms") or {}
    row = {"system": system, "rate": rate, "passed": passed, "why": why,
           "e2e_p50_ms": latency.get("p50"), "e2e_p99_ms": latency.get("p99"),
           "completed_jobs_s": summary.get("e2e_throughput_jobs_s"),
           "drain_s": round((summary.get("e2e_s") or 0) - (summary.get("submit_phase_s") or 0), 3),
           "cpu_ms_per_job": summary.get("cpu_ms_per_job"),
           "machine_busy_pct": (summary.get("cpu") or {}).get("machine_busy_pct")}
    print(f"  {system:8} {rate:7.1f} jobs/s: {'pass' if passed else 'FAIL'} ({why}); "
          f"p50 {row['e2e_p50_ms']} ms, p99 {row['e2e_p99_ms']} ms, drain {row['drain_s']} s",
          flush=True)
    return row


def find_rates(args: argparse.Namespace, runners: dict[str, Runner],
               correct: Callable[[dict[str, Any], int], list[str]]) -> dict[str, Any]:
    """Climb the ladder for every system in ``runners``; returns every rung and the result."""
    trials: list[dict[str, Any]] = []
    best: dict[str, float | None] = {name: None for name in runners}
    failed_at: dict[str, float | None] = {name: None for name in runners}

    def trial(system: str, rate: float) -> bool:
        row = one_rung(system, runners[system], args, rate, correct)
        trials.append(row)
        (best if row["passed"] else failed_at)[system] = rate
        return bool(row["passed"])

    rate, rung = args.rate_start, 0
    climbing = list(runners)
    while climbing and rate <= args.rate_max:
        for system in list(climbing) if rung % 2 == 0 else list(reversed(climbing)):
            if not trial(system, rate):
                climbing.remove(system)
        rate = round(rate * args.rate_step, 1)
        rung += 1
    for system in runners:
        # Failed on the first rung: step down until a rung passes.
        rate = args.rate_start
        while best[system] is None and rate > args.rate_start / 8:
            rate = round(rate / args.rate_step, 1)
            trial(system, rate)
        for _ in range(args.refine):
            low, high = best[system], failed_at[system]
            if low is None or high is None:
                break
            trial(system, round((low + high) / 2, 1))
    result: dict[str, Any] = {"criteria": {"duration_s": args.duration, "p99_ms": args.p99_ms,
                                           "max_drain_s": MAX_DRAIN_SECONDS,
                                           "min_kept_up": MIN_KEPT_UP},
                              "trials": trials, "sustained_jobs_s": best,
                              "first_failure_jobs_s": failed_at}
    ours, base = best.get("hookline"), best.get("baseline")
    if ours and base:
        result["ratio"] = round(ours / base, 3)
    return result
