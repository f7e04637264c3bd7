#!/usr/bin/env python3
"""Render time of each console page with 100,000 tasks in the store.

Starts a private redis-server, fills it through ``TaskStore`` (the calls the
API and the workers make: ``submit``, ``finish``, ``record_attempt``), then
renders each page N times through Flask's test client, signed in as the
tenant that owns the tasks and as an operator, and prints the median and the
95th percentile. The target is under 300 ms per page.

    .venv/bin/python bench/console.py [--tasks 100000] [--n 30]

The fill mixes outcomes as a busy tenant's week might: most tasks succeed,
0.1 % fail (the rare status a search must still find), 1 % wait, a few are
revoked; half have a callback, and 1 % of those deliveries failed.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from actors.events import attempt_record, webhook_id  # noqa: E402
from actors.messages import HEARTBEATS_KEY  # noqa: E402
from bench.run import REDIS_SETTINGS, free_port, wait_until  # noqa: E402
from hookline import keys  # noqa: E402
from hookline.config import Config  # noqa: E402
from hookline.ids import isoformat, new_task_id  # noqa: E402
from hookline.task_record import FAILURE, REVOKED, SUCCESS  # noqa: E402
from hookline.task_store import QueuedMessage, TaskStore  # noqa: E402
from webapp import create_app  # noqa: E402

#: Where the filler's broker messages go: a list no worker reads.
FILL_QUEUE = "hl:bench:console"
#: Threads that fill the store (their Redis round trips overlap).
FILL_THREADS = 8
#: Milliseconds a page may take at the 95th percentile.
TARGET_MS = 300.0


def fill(store: TaskStore, tenant: str, count: int, callback: tuple[str, str],
         hours: float) -> dict[str, str]:
    """Write ``count`` tasks of ``tenant``, created over the last ``hours``; returns sample ids."""
    rng = random.Random(21)
    now = time.time()
    message = QueuedMessage("bench", b"-", FILL_QUEUE)
    plan = []
    for i in range(count):
        roll = rng.random()
        status = (FAILURE if roll < 0.001 else REVOKED if roll < 0.004
                  else None if roll < 0.014 else SUCCESS)
        created = now - hours * 3600 * (1 - i / count)
        plan.append((new_task_id(), status, created, rng.random() < 0.5, rng.random() < 0.01))

    def write(item: tuple[str, str | None, float, bool, bool]) -> None:
        task_id, status, created, with_callback, delivery_failed = item
        store.submit(task_id=task_id, tenant=tenant, vectors=b"\0" * 24, count=3, dimension=1,
                     metadata_json=b'{"source":"bench"}', collection="default",
                     callback=callback if with_callback else None, message=message, now=created)
        if status is None:
            return
        store.finish(task_id, status, delivery=None, finished_at=created + 1.5,
                     result={"processed_vectors": 3, "status": "indexed"} if status == SUCCESS else None,
                     error=None if status == SUCCESS else "bench")
        if with_callback:
            record = attempt_record(webhook_id(task_id), created + 2, "scheduled",
                                    status_code=503 if delivery_failed else 204, duration_ms=3.0)
            store.record_attempt(task_id, record, "failed" if delivery_failed else "delivered",
                                 failed_index=keys.failed_deliveries(callback[0]))

    with concurrent.futures.ThreadPoolExecutor(FILL_THREADS) as pool:
        list(pool.map(write, plan, chunksize=500))
    store.redis.delete(FILL_QUEUE)
    return {"newest": plan[-1][0], "failed": next(p[0] for p in plan if p[1] == FAILURE)}


def timed(client: Any, path: str, n: int, before: Any = None) -> tuple[float, float, int]:
    """Median and 95th percentile in ms of ``n`` renders of ``path``, and the last status.

    ``before`` runs before each render, outside the timing.
    """
    times = []
    status = 0
    for _ in range(n):
        if before is not None:
            before()
        started = time.perf_counter()
        resp = client.get(path)
        times.append((time.perf_counter() - started) * 1000)
        status = resp.status_code
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.95))], status


def signed_in(app: Any, key: str) -> Any:
    client = app.test_client()
    page = client.get("/console/sign-in").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    assert client.post("/console/sign-in", data={"api_key": key, "csrf_token": token}).status_code == 302
    return client


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--n", type=int, default=30, help="renders per page")
    parser.add_argument("--hours", type=float, default=144.0,
                        help="the tasks' creation times span this many hours up to now "
                             "(small: every task is recent, the overview's worst case)")
    args = parser.parse_args()
    server = shutil.which("redis-server")
    if server is None:
        raise SystemExit("redis-server not found")
    workdir = Path(tempfile.mkdtemp(prefix="hl-bench-console-"))
    port = free_port()
    proc = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir),
                             *REDIS_SETTINGS], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"redis://127.0.0.1:{port}/0"
        client = redis.Redis.from_url(url)
        wait_until(client.ping, 20, "redis-server")
        app = create_app(Config.from_env(env={"REDIS_URL": url, "HOOKLINE_RATE_LIMIT": "0",
                                              "HOOKLINE_LOG_LEVEL": "WARNING",
                                              "HOOKLINE_CALLBACK_ALLOW": "127.0.0.0/8"}))
        svc = app.extensions["hookline"]
        key = svc.keys.create("bench")
        operator_key = svc.keys.create("ops", operator=True)
        svc.keys.create("quiet")  # a second tenant, so the operator's view merges
        record, _ = svc.registry.create("bench", "http://127.0.0.1:9/hook")
        store = TaskStore(svc.redis, result_ttl=svc.config.result_ttl, heartbeats_key=HEARTBEATS_KEY)
        started = time.perf_counter()
        ids = fill(store, "bench", args.tasks, (record["id"], record["url"]), args.hours)
        print(f"filled {args.tasks:,} tasks created over {args.hours:g} h in {time.perf_counter() - started:.1f} s "
              f"({client.dbsize():,} keys, {client.info('memory')['used_memory_human']})")
        since = isoformat(time.time() - 7 * 86400)
        readers = app.extensions

        def forget_counts() -> None:
            # Each overview reuses its counts for a few seconds; "cold" renders count afresh.
            if "hookline_console" in readers:
                readers["hookline_console"]._stats.clear()

        pages = [
            ("overview (counts cached)", "/console/", None),
            ("overview (cold)", "/console/", forget_counts),
            ("overview.json (cold)", "/console/overview.json", forget_counts),
            ("tasks", "/console/tasks", None),
            ("tasks status=FAILURE (0.1 %)", "/console/tasks?status=FAILURE", None),
            ("tasks status=PENDING (1 %)", "/console/tasks?status=PENDING", None),
            ("tasks id prefix", f"/console/tasks?id_prefix={ids['failed'][:4]}", None),
            ("tasks callback + from/to", f"/console/tasks?callback={record['id']}"
                                         "&from=2000-01-01T00:00&to=2100-01-01T00:00", None),
            ("task detail", f"/console/tasks/{ids['failed']}", None),
            ("callbacks", "/console/callbacks", None),
            ("failed deliveries", "/console/deliveries/failed", None),
            ("recover count", f"/console/callbacks/{record['id']}/recover?since={since}", None),
        ]
        viewers = [("tenant", signed_in(app, key)), ("operator", signed_in(app, operator_key))]
        print(f"{'page':34} {'viewer':9} {'median ms':>10} {'p95 ms':>8}  status")
        worst = 0.0
        for name, path, before in pages:
            for who, console in viewers:
                median, p95, status = timed(console, path, args.n, before)
                worst = max(worst, p95)
                print(f"{name:34} {who:9} {median:10.1f} {p95:8.1f}  {status}")
        print(f"worst p95: {worst:.1f} ms (target < {TARGET_MS:.0f} ms); "
              f"{args.n} renders per page, Flask test client, one process")
        svc.redis.connection_pool.disconnect()
        return 0 if worst < TARGET_MS else 1
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
