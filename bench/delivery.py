#!/usr/bin/env python3
"""CPU of one webhook attempt, against a keep-alive receiver on loopback.

The receiver runs in its own process, and only the sending thread's CPU is
counted (``time.thread_time``), so the figure is what the callbacks worker
pays per attempt for the HTTP exchange: the URL check, the request, reading
the answer and keeping the connection. For reference, the same exchange on a
plain ``http.client`` keep-alive connection (no URL check, no deadline) is
measured in the same run.

    .venv/bin/python bench/delivery.py [--n 5000]
"""
from __future__ import annotations

import argparse
import http.client
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import free_port, wait_until  # noqa: E402
from callbacks import Deliverer, UrlGuard  # noqa: E402

#: A receiver that answers every POST with 204 on kept-alive connections.
RECEIVER = """
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(204)
        self.end_headers()

    def do_GET(self):
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass

ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""

#: A webhook of the standard workload's size, with its four headers.
BODY = json.dumps({"type": "task.succeeded", "timestamp": "2026-11-29T08:00:00.000Z",
                   "data": {"task_id": "0" * 36, "status": "SUCCESS", "result": {"n": [0.5] * 120}}}).encode()
HEADERS = {"content-type": "application/json", "webhook-id": "msg_" + "0" * 32,
           "webhook-timestamp": "1795939200", "webhook-signature": "v1," + "A" * 44}


def cpu_per_call(call: Callable[[], object], n: int) -> tuple[float, float]:
    """Microseconds of this thread's CPU and of wall time per call, after a warm-up."""
    for _ in range(50):
        call()
    cpu, wall = time.thread_time(), time.perf_counter()
    for _ in range(n):
        call()
    return ((time.thread_time() - cpu) / n * 1e6, (time.perf_counter() - wall) / n * 1e6)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=5000)
    args = parser.parse_args()
    port = free_port()
    receiver = subprocess.Popen([sys.executable, "-c", RECEIVER, str(port)])
    try:
        url = f"http://127.0.0.1:{port}/hook"
        wait_until(lambda: requests.get(url, timeout=1).ok, 20, "the receiver")
        with Deliverer(UrlGuard(["127.0.0.0/8"]), user_agent="hookline/bench") as deliverer:
            def attempt() -> None:
                assert deliverer.send(url, BODY, HEADERS).status_code == 204

            ours = cpu_per_call(attempt, args.n)
        conn = http.client.HTTPConnection("127.0.0.1", port)

        def plain() -> None:
            conn.request("POST", "/hook", BODY, {**HEADERS, "user-agent": "hookline/bench"})
            response = conn.getresponse()
            response.read(4096)
            assert response.status == 204

        reference = cpu_per_call(plain, args.n)
        conn.close()
    finally:
        receiver.terminate()
        receiver.wait(timeout=10)
    figures = {
        "attempts": args.n,
        "body_bytes": len(BODY),
        "deliverer_cpu_us": round(ours[0], 1),
        "deliverer_wall_us": round(ours[1], 1),
        "http_client_cpu_us": round(reference[0], 1),
        "http_client_wall_us": round(reference[1], 1),
    }
    print(f"{'sender':<28}{'CPU us/attempt':>16}{'wall us/attempt':>17}")
    print(f"{'Deliverer (guard + urllib3)':<28}{ours[0]:>16.1f}{ours[1]:>17.1f}")
    print(f"{'plain http.client':<28}{reference[0]:>16.1f}{reference[1]:>17.1f}")
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
