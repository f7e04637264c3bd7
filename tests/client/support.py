"""Helpers of the client and CLI tests (the real-process tools come from tests.procs)."""
from __future__ import annotations

import queue
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import IO, Any

from tests.procs import ROOT, Receiver, Stack, wait_until

__all__ = ["ROOT", "LineReader", "Receiver", "ScriptedServer", "Stack", "new_key", "wait_until"]

SEED = {"vector_data": [0.1, 0.2, 0.3], "metadata": {"source": "user"}}


def new_key(stack: Stack) -> str:
    """A key for a tenant of its own, made with the documented command, as an operator would."""
    tenant = "t" + uuid.uuid4().hex[:12]
    out = subprocess.run([sys.executable, "-m", "flask", "--app", "webapp", "keys", "create", tenant],
                         env=stack.env, capture_output=True, text=True, check=True, cwd=ROOT)
    return out.stdout.strip().splitlines()[-1]


class ScriptedServer:
    """A real HTTP server that answers GETs from a list of ``(status, headers, body)``, then 200."""

    def __init__(self, answers: list[tuple[int, dict[str, str], bytes]]) -> None:
        self.answers = list(answers)
        self.seen: list[float] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                server.seen.append(time.monotonic())
                status, headers, body = (server.answers.pop(0) if server.answers
                                         else (200, {}, b'{"status": "ok"}'))
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class LineReader:
    """Collects a subprocess's output lines in a thread, so tests can wait on them with deadlines."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self._queue.put(line.rstrip("\n"))

    def wait_for(self, match: Callable[[str], bool], timeout: float, what: str) -> str:
        deadline = time.monotonic() + timeout
        while True:
            for line in self.lines:
                if match(line):
                    return line
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out waiting for {what}; output so far: {self.lines}")
            try:
                self.lines.append(self._queue.get(timeout=remaining))
            except queue.Empty:
                pass
