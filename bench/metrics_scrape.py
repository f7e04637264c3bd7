#!/usr/bin/env python3
"""How fast and how big is /metrics as tasks pile up?

Starts the production stack (bench/run.py's), pushes tasks through it in
batches, and after 1,000 and after 10,000 finished tasks scrapes /metrics
repeatedly, printing the scrape time (p50 / p99 / max) and the page size.
The page must stay small (no per-task series) and fast (under 100 ms).

    .venv/bin/python bench/metrics_scrape.py [--tasks 10000] [--scrapes 50]
"""
from __future__ import annotations

import argparse
import concurrent.futures
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from actors.messages import JOBS_QUEUE, queue_key  # noqa: E402
from bench.run import LAYOUT, Hookline, wait_until  # noqa: E402
from hookline import keys  # noqa: E402

BODY = json.dumps({"vector_data": [[0.5] * 64] * 16, "metadata": {"source": "scrape-bench"}})


def submit(url: str, key: str, count: int) -> None:
    session = requests.Session()
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    for _ in range(count):
        session.post(f"{url}/tasks", data=BODY, headers=headers, timeout=30).raise_for_status()


def scrape(url: str, times: int) -> dict[str, float]:
    session = requests.Session()
    durations, size = [], 0
    for _ in range(times):
        started = time.perf_counter()
        resp = session.get(f"{url}/metrics", timeout=30)
        durations.append((time.perf_counter() - started) * 1000)
        size = len(resp.content)
    a = np.asarray(durations)
    return {"p50_ms": round(float(np.percentile(a, 50)), 2),
            "p99_ms": round(float(np.percentile(a, 99)), 2),
            "max_ms": round(float(a.max()), 2), "bytes": size}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--scrapes", type=int, default=50)
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory(prefix="hl-scrape-") as tmp:
        # The benchmark's layout: every process that writes metrics files counts.
        stack = Hookline(Path(tmp), dict(LAYOUT))
        try:
            stack.start()
            key = stack.api_key()
            done = 0
            for checkpoint in sorted({min(1000, args.tasks), args.tasks}):
                batch = checkpoint - done
                with concurrent.futures.ThreadPoolExecutor(8) as pool:
                    shares = [batch // 8 + (1 if i < batch % 8 else 0) for i in range(8)]
                    list(pool.map(lambda n: submit(stack.url, key, n), shares))
                done = checkpoint
                wait_until(lambda: stack.client.llen(queue_key(JOBS_QUEUE)) == 0
                           and stack.client.zcard(keys.ACTIVE) == 0, 600, "tasks finish")
                results[checkpoint] = scrape(stack.url, args.scrapes)
                print(f"after {checkpoint:>6} tasks: /metrics {results[checkpoint]}", flush=True)
        finally:
            stack.stop()
    print(json.dumps({"scrape": results}, indent=2))
    worst = max(r["p99_ms"] for r in results.values())
    sizes = [r["bytes"] for r in results.values()]
    grew = max(sizes) - min(sizes)
    print(f"p99 scrape {worst} ms (target < 100 ms); page size changed by {grew} bytes")
    return 0 if worst < 100 else 1


if __name__ == "__main__":
    sys.exit(main())
