"""What ``HOOKLINE_REDIS_MIN_REPLICAS=1`` costs end to end, against a local replica.

``bench/run.py``'s stack and load driver, with a replica of the stack's
Redis on the same machine in both arms: one arm with
``HOOKLINE_REDIS_MIN_REPLICAS=0`` (replication alone), one with ``1`` (each
submit waits for the replica). The arms alternate, round after round, so
that a drift of the machine's speed does not always favour the same one. It
prints each run's end-to-end jobs/s and submit p99, and the medians of the
``1`` / ``0`` ratios.

    .venv/bin/python bench/replica_cost.py --n 2000 --clients 32 --rounds 2
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import run  # noqa: E402
from dev import REDIS_SETTINGS  # noqa: E402


class ReplicatedHookline(run.Hookline):
    """``run.Hookline`` with a replica of its Redis, and the replicas a submit waits for."""

    min_replicas = 0

    def __init__(self, workdir: Path, layout: dict[str, int], redis_over: str = "unix") -> None:
        super().__init__(workdir, layout, redis_over)
        self.env["HOOKLINE_REDIS_MIN_REPLICAS"] = str(self.min_replicas)

    def start(self) -> None:
        super().start()
        port = run.free_port()
        folder = self.workdir / "replica"
        folder.mkdir()
        server = shutil.which("redis-server") or "redis-server"
        self._spawn("replica", [server, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder),
                                *REDIS_SETTINGS, "--replicaof", "127.0.0.1", str(self.redis_port)])
        replica = redis.Redis(port=port)
        run.wait_until(lambda: replica.info("replication").get("master_link_status") == "up", 60,
                       "the replica is in sync")

    def stop(self) -> None:
        proc = self.procs.get("replica")
        if proc is not None and proc.poll() is None:
            proc.terminate()
        super().stop()


def one_run(args: argparse.Namespace, min_replicas: int) -> dict[str, Any]:
    ReplicatedHookline.min_replicas = min_replicas
    run.Hookline = ReplicatedHookline  # type: ignore[misc]
    setting = {"name": f"closed-{args.clients}c-n{args.n}", "mode": "closed", "clients": args.clients,
               "n": args.n}
    with tempfile.TemporaryDirectory(prefix="hl-bench-replica-") as tmp:
        summary = run.run_hookline(args, setting, Path(tmp))
    problems = run.correct(summary, args.n)
    return {
        "min_replicas": min_replicas,
        "e2e_jobs_s": run._dig(summary, run.RATIOS["e2e jobs/s"]),
        "submit_p99_ms": run._dig(summary, run.RATIOS["submit p99"]),
        "correct": not problems,
        "problems": problems,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    args.vectors, args.dims, args.timeout = 16, 64, 300.0
    for name, default in run.LAYOUT.items():
        setattr(args, name, default)
    runs = []
    for round_no in range(1, args.rounds + 1):
        order = (0, 1) if round_no % 2 else (1, 0)
        for min_replicas in order:
            result = one_run(args, min_replicas)
            result["round"] = round_no
            print(json.dumps(result), flush=True)
            runs.append(result)
    ratios = {}
    for measure in ("e2e_jobs_s", "submit_p99_ms"):
        each = []
        for round_no in range(1, args.rounds + 1):
            by_arm = {r["min_replicas"]: r[measure] for r in runs if r["round"] == round_no}
            if by_arm.get(0) and by_arm.get(1) is not None:
                each.append(round(by_arm[1] / by_arm[0], 3))
        if each:
            ratios[measure] = {"each": each, "median": statistics.median(each)}
    print(json.dumps({"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                      "ratios_1_over_0": ratios}, indent=2))
    return 0 if all(r["correct"] for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
