#!/usr/bin/env python3
"""Large jobs: upload throughput, then processing, of one job of many vectors.

The workload is one ``.npy`` of ``--vectors`` x ``--dimension`` float32
values (the issue's: 1,000,000 x 384, 1.5 GB), sent with tus PATCHes of
``--patch-mib`` MiB (64) by one client, as a resumable-upload client sends
it; the client never holds the file either (every PATCH body is a view of one
64 MiB block of values). It starts a private redis-server and gunicorn (2
processes x 4 threads, as ``bench/run.py`` does) with the blob store in a
folder on disk, and measures:

1. the upload: MB/s overall and per PATCH, the web's CPU seconds and MB per
   CPU second (a shared machine's wall clock also counts other work), the
   peak RSS of every web process (``VmHWM``);
2. with ``--process`` (default): the Procfile's job worker (2 processes x 4
   threads) and a callbacks worker, a task naming the upload and a callback
   to a receiver here; the time to the first progress in ``GET /tasks/{id}``,
   vectors per second from ``202`` to the webhook and from start to finish,
   the peak RSS of every worker process, and Redis memory above idle,
   sampled every 100 ms. Indexing comes with collections.

    .venv/bin/python bench/large.py                      # the issue's 1.5 GB
    .venv/bin/python bench/large.py --vectors 100000     # 154 MB, for a shared machine
"""
from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.large_stack import MB, Source, Stack  # noqa: E402
from hookline.ids import parse_isoformat  # noqa: E402

MiB = 1024 * 1024
#: The issue's targets: upload MB/s, vectors/s without indexing, seconds to first progress.
TARGET_MB_S = 300.0
TARGET_VECTORS_S = 100_000.0
TARGET_FIRST_PROGRESS_S = 2.0


def upload(port: int, key: str, source: Source, patch_bytes: int) -> dict[str, Any]:
    """Create the upload and PATCH it whole; MB/s overall and per PATCH."""
    auth = {"Authorization": f"Bearer {key}", "Tus-Resumable": "1.0.0"}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    meta = "format " + base64.b64encode(b"npy").decode()
    conn.request("POST", "/uploads", headers={**auth, "Upload-Length": str(source.length),
                                              "Upload-Metadata": meta})
    resp = conn.getresponse()
    resp.read()
    if resp.status != 201:
        raise SystemExit(f"POST /uploads answered {resp.status}")
    path = resp.getheader("Location") or ""
    rates: list[float] = []
    offset = 0
    started = time.perf_counter()
    while offset < source.length:
        end = min(source.length, offset + patch_bytes)
        body = source.view(offset, end)
        began = time.perf_counter()
        conn.request("PATCH", path, body=body, headers={
            **auth, "Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream"})
        resp = conn.getresponse()
        answer = resp.read()
        if resp.status != 204:
            raise SystemExit(f"PATCH at {offset} answered {resp.status}: {answer[:300]!r}")
        rates.append((end - offset) / MB / (time.perf_counter() - began))
        offset = int(resp.getheader("Upload-Offset") or -1)
    elapsed = time.perf_counter() - started
    conn.request("GET", path, headers=auth)
    view = json.loads(conn.getresponse().read())
    conn.close()
    if view["state"] != "complete" or view["rows"] != (source.length - len(source.header)) // (view["dimension"] * 4):
        raise SystemExit(f"the upload did not end complete and whole: {view}")
    return {
        "bytes": source.length, "patches": len(rates), "seconds": round(elapsed, 3),
        "mb_per_s": round(source.length / MB / elapsed, 1),
        "patch_mb_per_s": {"median": round(statistics.median(rates), 1),
                           "min": round(min(rates), 1), "max": round(max(rates), 1)},
        "upload": view,
        "upload_id": path.rsplit("/", 1)[1],
    }


class Receiver:
    """Answers every webhook with 204 and notes when each arrived."""

    def __init__(self) -> None:
        self.arrived: list[tuple[float, bytes]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                owner.arrived.append((time.perf_counter(), body))
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"


def process(stack: Stack, key: str, upload_id: str, rows: int) -> dict[str, Any]:
    """Run a task on the upload; progress, throughput and Redis memory."""
    auth = {"Authorization": f"Bearer {key}"}
    base = f"http://127.0.0.1:{stack.port}"
    receiver = Receiver()
    callback = requests.post(f"{base}/callbacks", json={"url": receiver.url}, headers=auth, timeout=10)
    idle = int(stack.redis.info("memory")["used_memory"])
    peak = [idle]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.1):
            peak[0] = max(peak[0], int(stack.redis.info("memory")["used_memory"]))

    threading.Thread(target=sample, daemon=True).start()
    began = time.perf_counter()
    resp = requests.post(f"{base}/tasks", headers=auth, timeout=30,
                         json={"upload_id": upload_id, "callback_id": callback.json()["id"]})
    if resp.status_code != 202:
        raise SystemExit(f"POST /tasks answered {resp.status_code}: {resp.text}")
    task_id = resp.json()["task_id"]
    first_progress = None
    while True:
        task = requests.get(f"{base}/tasks/{task_id}", headers=auth, timeout=10).json()
        if first_progress is None and task["progress"]["done"] > 0:
            first_progress = time.perf_counter() - began
        if task["status"] in ("SUCCESS", "FAILURE", "REVOKED"):
            break
        time.sleep(0.05)
    deadline = time.monotonic() + 60
    while not receiver.arrived and time.monotonic() < deadline:
        time.sleep(0.02)
    stop.set()
    receiver.server.shutdown()
    if task["status"] != "SUCCESS" or not receiver.arrived:
        raise SystemExit(f"the task did not end in SUCCESS with its webhook: {task}")
    to_webhook = receiver.arrived[0][0] - began
    running = parse_isoformat(task["finished_at"]) - parse_isoformat(task["started_at"])
    return {
        "status": task["status"], "chunks": task["chunks"],
        "first_progress_s": round(first_progress or to_webhook, 3),
        "seconds_to_webhook": round(to_webhook, 3),
        "vectors_per_s_to_webhook": round(rows / to_webhook),
        "vectors_per_s_running": round(rows / running) if running > 0 else None,
        "webhooks": len(receiver.arrived),
        "redis_peak_above_idle_bytes": peak[0] - idle,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vectors", type=int, default=1_000_000)
    parser.add_argument("--dimension", type=int, default=384)
    parser.add_argument("--patch-mib", type=int, default=64)
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--web-threads", type=int, default=4)
    parser.add_argument("--job-processes", type=int, default=2)
    parser.add_argument("--job-threads", type=int, default=4)
    parser.add_argument("--no-process", dest="process", action="store_false",
                        help="measure the upload only")
    parser.add_argument("--blob-dir", type=Path, default=None,
                        help="where the blob store writes (default: a temporary folder under .hookline/)")
    args = parser.parse_args()
    (ROOT / ".hookline").mkdir(exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="bench-large-", dir=ROOT / ".hookline"))
    source = Source(args.vectors, args.dimension, args.patch_mib * MiB)
    stack = Stack(workdir, args.blob_dir or workdir / "blobs", args.web_workers, args.web_threads)
    processed: dict[str, Any] | None = None
    try:
        stack.start()
        key = stack.key()
        idle = int(stack.redis.info("memory")["used_memory"])
        cpu_before, client_before = stack.cpu_seconds("web"), time.process_time()
        figures = upload(stack.port, key, source, args.patch_mib * MiB)
        web_cpu = stack.cpu_seconds("web") - cpu_before
        client_cpu = time.process_time() - client_before
        redis_above_idle = int(stack.redis.info("memory")["used_memory"]) - idle
        if args.process:
            stack.start_workers(args.job_processes, args.job_threads)
            processed = process(stack, key, figures["upload_id"], args.vectors)
            processed["worker_peak_rss_mb"] = stack.peak_rss_mb("worker")
        web_peaks = stack.peak_rss_mb("web")
    finally:
        stack.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    result = {
        "host": {"machine": platform.machine(), "cpus": os.cpu_count()},
        "workload": {"vectors": args.vectors, "dimension": args.dimension, "patch_mib": args.patch_mib},
        "upload": {
            **{k: v for k, v in figures.items() if k not in ("upload", "upload_id")},
            "target_mb_per_s": TARGET_MB_S,
            # CPU per byte says more than MB/s on a shared machine.
            "web_cpu_seconds": round(web_cpu, 2),
            "web_mb_per_cpu_second": round(figures["bytes"] / MB / web_cpu, 1) if web_cpu else None,
            "client_cpu_seconds": round(client_cpu, 2),
            "redis_memory_above_idle_bytes": redis_above_idle,
        },
        "processing": processed,
        "web_peak_rss_mb": web_peaks,
        "load_average_1m": os.getloadavg()[0],
    }
    up = result["upload"]
    print(f"{'upload':<28}{up['bytes'] / MB:>10.1f} MB in {up['patches']} PATCHes of {args.patch_mib} MiB")
    print(f"{'throughput':<28}{up['mb_per_s']:>10.1f} MB/s  (target >= {TARGET_MB_S:.0f})")
    pm = up["patch_mb_per_s"]
    print(f"{'per PATCH':<28}{pm['median']:>10.1f} MB/s median ({pm['min']}-{pm['max']})")
    print(f"{'web CPU':<28}{web_cpu:>10.2f} s ({up['web_mb_per_cpu_second']} MB per CPU second; "
          f"client {client_cpu:.2f} s; load average {result['load_average_1m']:.1f})")
    print(f"{'web peak RSS':<28}{max(web_peaks.values()):>10.1f} MB (largest of {len(web_peaks)} processes)")
    if processed is not None:
        print(f"{'first progress':<28}{processed['first_progress_s']:>10.2f} s after 202 "
              f"(target <= {TARGET_FIRST_PROGRESS_S:.0f})")
        print(f"{'processing':<28}{processed['vectors_per_s_to_webhook']:>10} vectors/s, 202 to webhook "
              f"(target >= {TARGET_VECTORS_S:.0f}); {processed['vectors_per_s_running']} while running")
        print(f"{'worker peak RSS':<28}{max(processed['worker_peak_rss_mb'].values()):>10.1f} MB "
              f"(largest of {len(processed['worker_peak_rss_mb'])} processes)")
        print(f"{'Redis peak above idle':<28}{processed['redis_peak_above_idle_bytes'] / MB:>10.2f} MB")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
