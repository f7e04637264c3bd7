"""One processing pass of ``bench/large.py``: a task on the upload, to its webhook.

A pass runs with indexing off (``"index": false``) or on (into an ``i8``
collection that the pass makes). It samples every 100 ms, from the ``202``
until the index has applied the job's vectors: Redis's ``used_memory``, and
what ``GET /tasks/{id}`` shows until the task ends. Every process's peak RSS
is started again before the pass, so each pass has its own.
"""
from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

from bench.large_stack import MB, Stack
from hookline import keys
from hookline.ids import parse_isoformat
from hookline.vector_collections import records_key

#: Seconds the index process has to catch up after the webhook.
INDEX_DEADLINE_S = 3600.0


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


class RedisPeak:
    """``used_memory`` sampled every 100 ms on a thread of its own, from ``idle``.

    At the peak it also notes when it came, how much of it was clients'
    buffers (``mem_clients_normal``: arguments on their way in, replies on
    their way out) and the largest one client's of late, and the AOF buffer
    (commands not yet written to the file): what is not data.
    """

    def __init__(self, stack: Stack) -> None:
        self.redis = stack.redis
        self.idle = self.peak = int(self.redis.info("memory")["used_memory"])
        self.peak_at = 0.0
        self.peak_clients = self.peak_aof = 0
        self.peak_largest = (0, 0)
        self.peak_memory: dict[str, int] = {}
        self.began = time.perf_counter()
        self.stop = threading.Event()
        threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self) -> None:
        while not self.stop.wait(0.1):
            memory = self.redis.info("memory")
            if int(memory["used_memory"]) > self.peak:
                self.peak = int(memory["used_memory"])
                self.peak_at = time.perf_counter() - self.began
                self.peak_clients = int(memory["mem_clients_normal"])
                self.peak_aof = int(memory.get("mem_aof_buffer", 0))
                self.peak_memory = {k: v for k, v in memory.items()
                                    if k.startswith(("used_memory", "mem_")) and isinstance(v, int)}
                clients = self.redis.info("clients")
                self.peak_largest = (int(clients["client_recent_max_input_buffer"]),
                                     int(clients["client_recent_max_output_buffer"]))

    @property
    def above_idle(self) -> int:
        return self.peak - self.idle

    def figures(self) -> dict[str, Any]:
        return {"redis_peak_above_idle_bytes": self.above_idle,
                "redis_peak_at_s": round(self.peak_at, 1),
                "redis_peak_client_buffers_bytes": self.peak_clients,
                "redis_peak_aof_buffer_bytes": self.peak_aof,
                # The largest one client's input and output buffers of late.
                "redis_peak_largest_client_buffers_bytes": list(self.peak_largest),
                "redis_peak_info_memory": self.peak_memory}


def process(stack: Stack, key: str, upload_id: str, rows: int, dimension: int, *,
            index: bool) -> dict[str, Any]:
    """Run a task on the upload, indexing into a new ``i8`` collection or not at all."""
    auth = {"Authorization": f"Bearer {key}"}
    base = f"http://127.0.0.1:{stack.port}"
    receiver = Receiver()
    callback = requests.post(f"{base}/callbacks", json={"url": receiver.url}, headers=auth, timeout=10)
    body: dict[str, Any] = {"upload_id": upload_id, "callback_id": callback.json()["id"]}
    if index:
        name = f"bench-{int(time.time())}"
        made = requests.post(f"{base}/collections", headers=auth, timeout=30, json={
            "name": name, "dimension": dimension, "dtype": "i8"})
        if made.status_code != 201:
            raise SystemExit(f"POST /collections answered {made.status_code}: {made.text}")
        body["collection"] = name
    else:
        body["index"] = False
    stack.reset_peaks()
    redis_peak = RedisPeak(stack)
    began = time.perf_counter()
    resp = requests.post(f"{base}/tasks", headers=auth, timeout=30, json=body)
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
    receiver.server.shutdown()
    if task["status"] != "SUCCESS" or not receiver.arrived:
        raise SystemExit(f"the task did not end in SUCCESS with its webhook: {task}")
    to_webhook = receiver.arrived[0][0] - began
    running = parse_isoformat(task["finished_at"]) - parse_isoformat(task["started_at"])
    figures: dict[str, Any] = {
        "index": index, "status": task["status"], "result_status": task["result"]["status"],
        "chunks": task["chunks"],
        "first_progress_s": round(first_progress or to_webhook, 3),
        "seconds_to_webhook": round(to_webhook, 3),
        "vectors_per_s_to_webhook": round(rows / to_webhook),
        "vectors_per_s_running": round(rows / running) if running > 0 else None,
        "webhooks": len(receiver.arrived),
    }
    if index:
        figures.update(caught_up(stack, began, rows, body["collection"]))
    redis_peak.stop.set()
    figures.update(redis_peak.figures())
    figures["peak_rss_mb"] = {name: stack.peak_rss_mb(name)
                              for name in ("web", "worker", "callbacks", "index")
                              if name in stack.named}
    return figures


def caught_up(stack: Stack, began: float, rows: int, collection: str) -> dict[str, Any]:
    """When the index process had applied every change of the pass, and the collection's size."""
    seq = int(stack.redis.get(keys.VECTOR_SEQ) or 0)
    deadline = time.monotonic() + INDEX_DEADLINE_S
    while stack.index_applied() < seq:
        if time.monotonic() > deadline:
            raise SystemExit(f"the index did not apply change {seq} within {INDEX_DEADLINE_S} s")
        time.sleep(0.1)
    seconds = time.perf_counter() - began
    log = (stack.workdir / "index.log").read_text(errors="replace")
    # The records hash is the collection's vectors, which Redis holds as the
    # source of truth; the change log (the stream the index follows) is kept
    # an hour.
    records = int(stack.redis.memory_usage(records_key("bench", collection), samples=0) or 0)
    stream = int(stack.redis.memory_usage(keys.VECTOR_LOG, samples=0) or 0)
    return {"index_caught_up_s": round(seconds, 3),
            "vectors_per_s_to_index": round(rows / seconds),
            # Each one reads the whole collection from Redis again.
            "index_rebuilds": log.count("rebuilding"),
            "collection_records_bytes": records, "change_log_bytes": stream,
            "collection_records_mb": round(records / MB, 1)}
