#!/usr/bin/env python3
"""Search benchmark: collections through the HTTP API, against exact search.

It starts a private stack (redis-server with append-only fsync every second,
gunicorn, the job worker, the callbacks worker and the index process, as
``bench/run.py`` does), then for an ``f32`` and an ``i8`` collection:

* indexes ``--n`` vectors of dimension ``--dim`` through ``POST /tasks``
  (tasks of ``--task`` vectors, 4 submitting clients) and reports vectors/s;
* for every task, the time from its finish (the worker's ``finished_at``) to
  the answer of the first search that returns its first vector (each
  submitter searches every 20 ms until it does: an upper bound by up to one
  search); and the index process's own time from a task's end to its
  vectors being searchable (``hookline_index_lag_seconds``, p99 as a
  bucket bound), which a search does not wait for beyond 0.05 s;
* how long after the last task the graph has taken in every vector (until
  then the newest are found by an exact scan);
* then, with every vector in its graph: resident memory per vector, the
  growth of every process's RSS (Redis and all of Hookline's) over the
  collection's vectors;
* recall@10 of ``--queries`` queries (batches of 100 over HTTP) against exact
  search with numpy over the same vectors;
* search over HTTP, one vector, k = 10, with 8 clients for ``--seconds``:
  queries per second, the 99th percentile of latency, and how the kernel
  spread the 8 connections over the web workers.

The data is clustered (``--clusters`` Gaussian clusters around random unit
centres, seeded): real embeddings are clustered, and on uniform random
vectors in 384 dimensions all distances are nearly equal, which makes an
approximate index look both worse (no structure to follow) and its recall
meaningless. Queries come from the same clusters but are not in the data.

    .venv/bin/python bench/search.py                 # the issue's 100,000 vectors
    .venv/bin/python bench/search.py --n 5000        # a quick check
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import orjson
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import LAYOUT, Hookline, pending_vectors, percentile_ms, wait_until  # noqa: E402
from hookline.ids import parse_isoformat  # noqa: E402

#: Clients that submit jobs, and that search in the throughput run.
SUBMITTERS = 4
SEARCHERS = 8
#: Tasks run (and deleted) before the memory baseline is taken.
WARM_TASKS = 12
#: Length of a vector's offset from its cluster's (unit) centre, on average.
SPREAD = 1.0


def clustered(n: int, dim: int, clusters: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` data rows and ``n // 50`` query rows (at least 200), float32, unit length."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)

    def draw(count: int) -> np.ndarray:
        noise = rng.normal(scale=SPREAD / np.sqrt(dim), size=(count, dim))
        rows = centres[rng.integers(0, clusters, count)] + noise
        rows /= np.linalg.norm(rows, axis=1, keepdims=True)
        return rows.astype(np.float32)

    return draw(n), draw(max(200, n // 50))


def stack_rss(stack: Hookline) -> dict[str, int]:
    """Resident bytes of each of the stack's processes (with its children), by name.

    Redis is asked to purge first: jemalloc keeps freed pages (the jobs'
    payloads) resident for a while, which is no cost of the vectors.
    """
    stack.client.memory_purge()
    groups = {proc.pid: name for name, proc in stack.procs.items()}
    totals = dict.fromkeys(stack.procs, 0)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            pgrp = int(stat.rsplit(")", 1)[1].split()[2])
            if pgrp in groups:
                rss_pages = int(Path(f"/proc/{entry}/statm").read_text().split()[1])
                totals[groups[pgrp]] += rss_pages * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            continue
    return totals


class Client:
    def __init__(self, url: str, key: str) -> None:
        self.url = url
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {key}"

    def post(self, path: str, body: Any) -> requests.Response:
        # orjson writes numpy arrays itself: the standard library's encoder
        # took about a core of this client's own to keep up with the jobs.
        return self.session.post(self.url + path, timeout=120,
                                 data=orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY),
                                 headers={"Content-Type": "application/json"})

    def get(self, path: str) -> Any:
        return self.session.get(self.url + path, timeout=30).json()


def index(stack: Hookline, key: str, name: str, data: np.ndarray, task: int,
          starts: dict[str, int]) -> dict[str, Any]:
    """Index ``data`` in tasks of ``task`` vectors; rate and finish-to-searchable times.

    ``starts`` gets the row of ``data`` each task starts at (ids are ``<task>:<row>``).
    """
    lags: list[float] = []
    lock = threading.Lock()

    def one(start: int) -> None:
        client = Client(stack.url, key)
        rows = data[start:start + task]
        resp = client.post("/tasks", {"vector_data": rows, "collection": name})
        resp.raise_for_status()
        task_id = resp.json()["task_id"]
        starts[task_id] = start
        # Search for the task's first vector until it is there: the first
        # answer that has it, against the task's finish time.
        while True:
            answer = client.post(f"/collections/{name}/search", {"vector": rows[0].tolist(), "k": 1})
            found = time.time()
            if answer.status_code != 200:
                raise SystemExit(f"search failed: {answer.status_code} {answer.text}")
            hits = answer.json()["items"]
            if hits and hits[0]["task_id"] == task_id:
                break
            time.sleep(0.02)
        body = client.get(f"/tasks/{task_id}")
        if body["status"] != "SUCCESS":
            raise SystemExit(f"vectors searchable before their task is SUCCESS: {body}")
        finished = parse_isoformat(body["finished_at"])
        with lock:
            lags.append(found - finished)

    started = time.perf_counter()
    with ThreadPoolExecutor(SUBMITTERS) as pool:
        list(pool.map(one, range(0, len(data), task)))
    elapsed = time.perf_counter() - started
    return {"vectors_per_s": round(len(data) / elapsed, 1),
            "finish_to_searchable_p99_ms": percentile_ms(lags, 99),
            "finish_to_searchable_max_ms": round(max(lags) * 1000, 1)}


def recall(stack: Hookline, key: str, name: str, data: np.ndarray, queries: np.ndarray,
           starts: dict[str, int]) -> float:
    client = Client(stack.url, key)
    exact = np.argsort(-(queries @ data.T), axis=1)[:, :10]
    hits = 0
    for start in range(0, len(queries), 100):
        batch = queries[start:start + 100]
        resp = client.post(f"/collections/{name}/search", {"vectors": batch.tolist(), "k": 10})
        resp.raise_for_status()
        for row, page in enumerate(resp.json()["results"]):
            got = {starts[h["task_id"]] + int(h["id"].rsplit(":", 1)[1]) for h in page["items"]}
            hits += len(got & set(exact[start + row].tolist()))
    return round(hits / (10 * len(queries)), 4)


def index_lag_p99(stack: Hookline) -> float | None:
    """The bucket bound under which 99 % of ``hookline_index_lag_seconds`` fall:
    the index process's own time from a task's end to its vectors being searchable."""
    text = requests.get(f"{stack.url}/metrics", timeout=30).text
    buckets = []
    for line in text.splitlines():
        if line.startswith("hookline_index_lag_seconds_bucket{"):
            bound = line.split('le="', 1)[1].split('"', 1)[0]
            buckets.append((float(bound), float(line.rsplit(" ", 1)[1])))
    buckets.sort()
    if not buckets or buckets[-1][1] == 0:
        return None
    total = buckets[-1][1]
    return next(bound for bound, count in buckets if count >= 0.99 * total)


def throughput(stack: Hookline, key: str, name: str, queries: np.ndarray,
               seconds: float) -> dict[str, Any]:
    """``SEARCHERS`` clients, each one keep-alive connection searching one vector at a time.

    The clients use the standard library's HTTP client on bodies encoded
    beforehand: with requests they took about 0.8 ms of this machine's CPU
    per search, a third of what the server took.
    """
    latencies: list[float] = []
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds
    target = urlsplit(stack.url)
    path = f"/collections/{name}/search"
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    bodies = [orjson.dumps({"vector": query, "k": 10}, option=orjson.OPT_SERIALIZE_NUMPY)
              for query in queries]

    client_ports: list[int] = []

    def run(worker: int) -> None:
        conn = http.client.HTTPConnection(target.hostname or "127.0.0.1", target.port, timeout=30)
        conn.connect()
        with lock:
            client_ports.append(conn.sock.getsockname()[1])
        mine, i = [], worker
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            conn.request("POST", path, bodies[i % len(bodies)], headers)
            resp = conn.getresponse()
            resp.read()
            if resp.status != 200:
                raise SystemExit(f"search failed: {resp.status}")
            mine.append(time.perf_counter() - t0)
            i += SEARCHERS
        conn.close()
        with lock:
            latencies.extend(mine)

    with ThreadPoolExecutor(SEARCHERS) as pool:
        searches = [pool.submit(run, worker) for worker in range(SEARCHERS)]
        wait_until(lambda: len(client_ports) == SEARCHERS or any(s.done() for s in searches), 30,
                   "every searcher connects")
        split = connections_per_worker(stack, target.port or 80, set(client_ports))
        for search in searches:
            search.result()
    return {"qps": round(len(latencies) / seconds, 1), "p99_ms": percentile_ms(latencies, 99),
            "p50_ms": percentile_ms(latencies, 50), "connections_per_web_worker": split}


def connections_per_worker(stack: Hookline, port: int, client_ports: set[int]) -> list[int]:
    """How the kernel spread the searchers' connections over the web workers
    (each listens on its own ``SO_REUSEPORT`` socket), most first.

    Eight connections over two workers split 4/4 or as unevenly as 7/1; the
    worker with more serves them on one interpreter (one GIL), so an uneven
    split shows as a higher p99 at the same total rate.
    """
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, remote = int(fields[1].rsplit(":", 1)[1], 16), int(fields[2].rsplit(":", 1)[1], 16)
            if local == port and remote in client_ports:
                inodes.add(f"socket:[{fields[9]}]")
    web = stack.procs["web"].pid
    counts = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1]) != web:
                continue
            held = sum(os.readlink(f"/proc/{entry}/fd/{fd}") in inodes
                       for fd in os.listdir(f"/proc/{entry}/fd"))
        except (OSError, ValueError, IndexError):
            continue
        counts.append(held)
    return sorted(counts, reverse=True)


def run_one(args: argparse.Namespace, dtype: str, data: np.ndarray,
            queries: np.ndarray) -> dict[str, Any]:
    """Every figure for one storage type, on a fresh stack."""
    with tempfile.TemporaryDirectory(prefix="hl-search-bench-") as tmp:
        stack = Hookline(Path(tmp), LAYOUT)
        stack.env["HOOKLINE_MAX_BODY_BYTES"] = str(32 * 1024 * 1024)
        try:
            stack.start()
            key = stack.api_key()
            client = Client(stack.url, key)
            name = f"bench-{dtype}"
            client.post("/collections", {"name": name, "dimension": args.dim, "dtype": dtype})
            # Warm every process up before the baseline, with as many tasks in
            # flight as the run has: the allocators' high-water mark (a job's
            # JSON and arrays, per thread) is a cost per process, not per vector.
            warm = data[:WARM_TASKS * args.task]
            index(stack, key, "warm", warm, args.task, {})
            client.session.delete(f"{stack.url}/collections/warm")
            time.sleep(1.0)
            before = stack_rss(stack)
            used = stack.client.info("memory")["used_memory"]
            starts: dict[str, int] = {}
            figures = index(stack, key, name, data, args.task, starts)
            wait_until(lambda: client.get(f"/collections/{name}")["count"] == args.n, 120,
                       "every vector is counted")
            # Memory and search speed in the steady state: every vector in its
            # graph (they were searchable before, by an exact scan).
            settled = time.perf_counter()
            wait_until(lambda: pending_vectors(stack) == 0, 300, "the graph takes every vector")
            figures["graph_settled_after_s"] = round(time.perf_counter() - settled, 1)
            time.sleep(1.0)
            after = stack_rss(stack)
            growth = {name: round((after[name] - before[name]) / args.n, 1) for name in after}
            figures["rss_bytes_per_vector"] = round(sum(growth.values()), 1)
            figures["rss_bytes_per_vector_by_process"] = growth
            figures["redis_used_memory_per_vector"] = round(
                (stack.client.info("memory")["used_memory"] - used) / args.n, 1)
            figures["raw_bytes_per_vector"] = args.dim * (4 if dtype == "f32" else 1)
            figures["index_lag_p99_at_most_s"] = index_lag_p99(stack)
            figures["recall_at_10"] = recall(stack, key, name, data, queries, starts)
            figures.update(throughput(stack, key, name, queries, args.seconds))
            return figures
        finally:
            stack.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--task", type=int, default=1000, help="vectors per task")
    parser.add_argument("--clusters", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=20251207)
    parser.add_argument("--seconds", type=float, default=15.0, help="throughput run length")
    parser.add_argument("--dtypes", nargs="*", default=["f32", "i8"])
    args = parser.parse_args()
    data, queries = clustered(args.n, args.dim, args.clusters, args.seed)
    report: dict[str, Any] = {"n": args.n, "dim": args.dim, "task": args.task,
                              "clusters": args.clusters, "seed": args.seed,
                              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    for dtype in args.dtypes:
        report[dtype] = run_one(args, dtype, data, queries)
        print(f"{dtype}: {json.dumps(report[dtype])}", flush=True)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
