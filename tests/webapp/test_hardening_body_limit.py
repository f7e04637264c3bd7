"""A body over HOOKLINE_MAX_BODY_BYTES is a 413 whatever its framing, from a real gunicorn.

Chunked bodies are sent as chunks by a real client (requests, from a
generator). A request with no framing at all has no body: the bytes after
its head are never taken for one.
"""
from __future__ import annotations

import socket
from collections.abc import Callable, Iterator

import pytest
import redis as redis_lib
import requests

from tests.procs import Stack

LIMIT = 200_000


def chunks(body: bytes, size: int = 16_384) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


@pytest.fixture
def web(make_stack: Callable[..., Stack]) -> Stack:
    stack = make_stack(HOOKLINE_MAX_BODY_BYTES=str(LIMIT))
    stack.start_web(workers=1)
    return stack


JOB = b'{"vector_data": [0.5, 0.25]}'
OVER = {
    # JSON that ends early: read only up to the limit, it parsed and was accepted.
    "json that ends early": JOB + b" " * (LIMIT + 50_000),
    # An array cut at the limit was "not valid JSON" (400).
    "an array past the limit": b'{"vector_data": [' + b"0.125, " * 40_000 + b"0.5]}",
    "one byte over": JOB + b" " * (LIMIT + 1 - len(JOB)),
}


@pytest.mark.parametrize("name", OVER)
def test_a_chunked_body_over_the_limit_is_413(
    web: Stack, auth: dict, redis: redis_lib.Redis, name: str,
) -> None:
    body = OVER[name]
    assert len(body) > LIMIT
    resp = requests.post(f"{web.url}/tasks", data=chunks(body), timeout=30,
                         headers={**auth, "Content-Type": "application/json"})
    assert resp.request.headers.get("Transfer-Encoding") == "chunked"
    assert resp.status_code == 413, resp.text
    assert resp.headers["Content-Type"] == "application/problem+json"
    assert not list(redis.scan_iter(match="hl:task:*"))


def test_the_same_body_with_content_length_is_413(web: Stack, auth: dict) -> None:
    resp = requests.post(f"{web.url}/tasks", data=OVER["json that ends early"], timeout=30,
                         headers={**auth, "Content-Type": "application/json"})
    assert resp.status_code == 413
    assert resp.headers["Content-Type"] == "application/problem+json"


def test_a_chunked_body_at_the_limit_is_accepted(web: Stack, auth: dict) -> None:
    body = JOB + b" " * (LIMIT - len(JOB))
    resp = requests.post(f"{web.url}/tasks", data=chunks(body), timeout=30,
                         headers={**auth, "Content-Type": "application/json"})
    assert resp.request.headers.get("Transfer-Encoding") == "chunked"
    assert resp.status_code == 202, resp.text


def test_bytes_after_an_unframed_request_are_never_read_as_its_body(
    web: Stack, auth: dict, redis: redis_lib.Redis,
) -> None:
    # A request with neither Content-Length nor chunked has no body (RFC 9112
    # section 6.3): what follows its head is not parsed as a job, however long.
    head = (f"POST /tasks HTTP/1.0\r\nHost: x\r\nAuthorization: {auth['Authorization']}\r\n"
            "Content-Type: application/json\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", web.port), timeout=30) as sock:
        sock.sendall(head + OVER["json that ends early"])
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.split()[1] == b"400", answer[:300]
    assert b"application/problem+json" in rest.lower()
    assert b"empty" in rest
    assert not list(redis.scan_iter(match="hl:task:*"))
