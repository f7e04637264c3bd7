"""Fixtures for the ``callbacks`` tests: a real redis-server and a real HTTP receiver."""
from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import redis as redis_lib

from callbacks import CallbackRegistry
from tests.procs import RedisServer


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A private redis-server on a free port, without persistence, for the whole run."""
    server = RedisServer(persistent=False)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_client(redis_server: RedisServer) -> Iterator[redis_lib.Redis]:
    client = redis_lib.Redis.from_url(redis_server.url)
    yield client
    client.close()


class FakeClock:
    """Unix seconds that move only when a test says so."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def registry(redis_client: redis_lib.Redis, clock: FakeClock) -> CallbackRegistry:
    """A registry under a key prefix of its own (no flushing between tests), on ``clock``."""
    return CallbackRegistry(redis_client, prefix=f"t{uuid.uuid4().hex[:12]}:", grace=100.0,
                            clock=clock)


# --- a real HTTP receiver ----------------------------------------------------------------


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: bytes
    client_port: int


Route = Callable[["_Handler"], None]


class Receiver:
    """A real HTTP/1.1 server on 127.0.0.1; each test scripts its answers by path.

    Handlers that are told to hang wait on ``release``, which ``close()`` sets,
    so nothing in the test itself sleeps.
    """

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.seen: list[Seen] = []
        self.connections = 0
        self.closed_connections = 0
        self.changed = threading.Condition()
        self.release = threading.Event()
        self.server = _Server(("127.0.0.1", 0), _Handler)
        self.server.receiver = self
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def url(self, path: str, host: str = "127.0.0.1", scheme: str = "http") -> str:
        return f"{scheme}://{host}:{self.port}{path}"

    def paths(self) -> list[str]:
        with self.changed:
            return [s.path for s in self.seen]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        with self.changed:
            return self.changed.wait_for(predicate, timeout)

    def note(self, **changes: Any) -> None:
        with self.changed:
            for name, delta in changes.items():
                setattr(self, name, getattr(self, name) + delta)
            self.changed.notify_all()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.close_open_connections()
        self.server.server_close()
        self.thread.join(timeout=10)


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # server_close() joins the handler threads
    block_on_close = True
    receiver: Receiver

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.open_connections: set[socket.socket] = set()
        self.lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.lock:
            self.open_connections.add(request)
        self.receiver.note(connections=1)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.lock:
            self.open_connections.discard(request)
        super().shutdown_request(request)
        self.receiver.note(closed_connections=1)

    def close_open_connections(self) -> None:
        with self.lock:
            for conn in self.open_connections:
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        receiver = self.server.receiver
        with receiver.changed:
            receiver.seen.append(Seen(self.path, {k.lower(): v for k, v in self.headers.items()},
                                      body, int(self.client_address[1])))
            receiver.changed.notify_all()
        route = receiver.routes.get(self.path.split("?")[0], answer_with(204))
        route(self)

    do_GET = do_POST  # noqa: N815 - a followed redirect would come as a GET


def answer_with(status: int, body: bytes = b"", headers: dict[str, str] | None = None,
                *, close: bool = False) -> Route:
    """A route that answers ``status`` with ``body``; ``close`` drops the connection after."""

    def route(handler: _Handler) -> None:
        handler.send_response(status)
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
        handler.wfile.flush()
        if close:
            handler.close_connection = True

    return route


@pytest.fixture
def http_receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()
