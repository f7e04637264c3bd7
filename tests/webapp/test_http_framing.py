"""Malformed HTTP gets a 4xx from gunicorn, whichever request parser it uses.

gunicorn parses requests in Python, or in C when ``requirements-fast.txt``
is installed (CI installs it); either way a request the server cannot read
safely must be refused before it reaches the app, and the server must go on
answering.
"""
from __future__ import annotations

import importlib.util
import socket
from collections.abc import Callable

import pytest
import redis as redis_lib
import requests

from tests.procs import Stack

GOOD = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"

MALFORMED = {
    # Both framings at once: the classic request-smuggling shape.
    "content-length and chunked": (
        b"POST /tasks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    ),
    "two content-lengths": (
        b"POST /tasks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}"
    ),
    "a transfer coding nobody knows": (
        b"POST /tasks HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n"
    ),
    "a space in a header name": b"GET /healthz HTTP/1.1\r\nHo st: x\r\n\r\n",
    "a NUL in a header value": b"GET /healthz HTTP/1.1\r\nHost: x\x00y\r\n\r\n",
    "a request line over the limit": b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    "an unknown HTTP version": b"GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n",
    "a method with a symbol in it": b"G@T /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
}


#: gunicorn's ``--http-parser``: its Python parser always, its C one where installed
#: ("fast" makes gunicorn refuse to start without it, so it is really used).
PARSERS = ["python"] + (["fast"] if importlib.util.find_spec("gunicorn_h1c") else [])


def status_of(port: int, raw: bytes) -> int:
    """The status code of the server's answer to ``raw``, sent as is."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(raw)
        answer = b""
        while b"\r\n" not in answer:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    line = answer.split(b"\r\n", 1)[0].decode("latin-1")
    assert line.startswith("HTTP/1.1 "), f"no status line: {answer[:200]!r}"
    return int(line.split()[1])


@pytest.mark.parametrize("parser", PARSERS)
def test_malformed_requests_are_refused_with_a_4xx_and_change_nothing(
    parser: str, make_stack: Callable[..., Stack], redis: redis_lib.Redis,
    subtests: pytest.Subtests,
) -> None:
    stack = make_stack(GUNICORN_CMD_ARGS=f"--http-parser {parser}")
    stack.start_web(workers=1)
    for name, raw in MALFORMED.items():
        with subtests.test(msg=name):
            status = status_of(stack.port, raw)
            assert 400 <= status < 500, f"{name}: {status}"
            # The server goes on answering on a new connection.
            assert status_of(stack.port, GOOD) == 200
    # Nothing reached the task store, and nothing failed inside the server.
    assert not list(redis.scan_iter(match="hl:task:*"))
    assert requests.get(f"{stack.url}/healthz", timeout=5).ok
    assert "Traceback" not in stack.procs["web"].log_path.read_text(errors="replace")
