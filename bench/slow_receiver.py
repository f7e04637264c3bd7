"""A receiver that answers in 2 s, fed beside the measured load (``bench/run.py --slow-receiver``).

The shared driver's receiver answers at once and every measured job names
its callback. This adds a second tenant whose callback points at a receiver
that takes ``DELAY_SECONDS`` to answer, and submits jobs to it at a steady
trickle for as long as the measured pass runs. The measured figures (the
healthy receiver's finish → webhook and the job throughput) are then read
as usual; run.py runs the same setting without the trickle in the same
session to compare.
"""
from __future__ import annotations

import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests

#: Seconds the slow receiver takes to answer.
DELAY_SECONDS = 2.0
#: Jobs per second sent to the slow receiver during the measured pass.
TRICKLE_RATE = 5.0
TENANT = "bench-slow"


class SlowReceiver:
    """An HTTP server that answers every POST with 204 after ``DELAY_SECONDS``."""

    def __init__(self) -> None:
        self.received = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                time.sleep(DELAY_SECONDS)
                with receiver.lock:
                    receiver.received += 1
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Trickle(threading.Thread):
    """Submits jobs with the slow receiver's callback at ``TRICKLE_RATE`` until stopped."""

    def __init__(self, url: str, key: str, callback_id: str, vectors: list[list[float]]) -> None:
        super().__init__(name="slow-trickle", daemon=True)
        self.url, self.callback_id, self.vectors = url, callback_id, vectors
        self.headers = {"Authorization": f"Bearer {key}"}
        self.stopping = threading.Event()
        self.accepted: list[str] = []

    def run(self) -> None:
        with requests.Session() as session:
            while not self.stopping.wait(1 / TRICKLE_RATE):
                resp = session.post(f"{self.url}/tasks", headers=self.headers, timeout=10,
                                    json={"vector_data": self.vectors, "callback_id": self.callback_id})
                if resp.status_code == 202:
                    self.accepted.append(resp.json()["task_id"])

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=10)


def start(stack: Any, root: Path, flask: Path, vectors: int, dims: int) -> tuple[SlowReceiver, Trickle]:
    """A slow receiver and a trickle of jobs for it, under a tenant of its own on ``stack``."""
    out = subprocess.run([str(flask), "--app", "webapp", "keys", "create", TENANT],
                         cwd=root, env=stack.env, capture_output=True, text=True, check=True)
    key = out.stdout.strip().splitlines()[-1]
    receiver = SlowReceiver()
    callback = requests.post(f"{stack.url}/callbacks", headers={"Authorization": f"Bearer {key}"},
                             json={"url": f"http://127.0.0.1:{receiver.port}/slow"},
                             timeout=10).json()
    trickle = Trickle(stack.url, key, callback["id"], [[0.5] * dims for _ in range(vectors)])
    trickle.start()
    return receiver, trickle


def report(receiver: SlowReceiver, trickle: Trickle, settle_seconds: float) -> dict[str, Any]:
    """Stop the trickle, give its webhooks time to arrive, and say how many did."""
    trickle.stop()
    deadline = time.monotonic() + settle_seconds
    while receiver.received < len(trickle.accepted) and time.monotonic() < deadline:
        time.sleep(0.1)
    return {"delay_s": DELAY_SECONDS, "jobs": len(trickle.accepted), "delivered": receiver.received}
