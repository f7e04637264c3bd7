"""gunicorn's own refusals are problem documents, like the application's errors.

A real gunicorn with the project's worker class, with either request parser.
"""
from __future__ import annotations

import json
import socket
from collections.abc import Callable

import pytest
import requests

from tests.procs import Stack
from tests.webapp.test_http_framing import PARSERS

REQUESTS = {
    # name: (raw request, status)
    "a bad request line": (b"GET\r\nHost: x\r\n\r\n", 400),
    "a method with a symbol in it": (b"G@T /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    "a too-long request line": (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    "a 10 KB Idempotency-Key": (
        b"POST /tasks HTTP/1.1\r\nHost: x\r\nIdempotency-Key: " + b"k" * 10_000
        + b"\r\nContent-Length: 0\r\n\r\n", 431),
    "too many headers": (
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
        + b"".join(b"X-%d: y\r\n" % i for i in range(150)) + b"\r\n", 431),
    "a bad chunk size": (
        b"POST /tasks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n", 400),
}


def answer_to(port: int, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(raw)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


@pytest.mark.parametrize("parser", PARSERS)
def test_gunicorn_refusals_are_problem_json(
    parser: str, make_stack: Callable[..., Stack], subtests: pytest.Subtests,
) -> None:
    stack = make_stack(GUNICORN_CMD_ARGS=f"--http-parser {parser}")
    stack.start_web(workers=1)
    for name, (raw, expected) in REQUESTS.items():
        with subtests.test(msg=name):
            status, headers, body = answer_to(stack.port, raw)
            assert status == expected, (name, body[:200])
            assert headers["content-type"] == "application/problem+json"
            assert headers["x-content-type-options"] == "nosniff"
            assert int(headers["content-length"]) == len(body)
            problem = json.loads(body)
            assert problem["status"] == expected
            assert problem["title"] and problem["detail"]
            assert b"kkkkkkkk" not in body and b"aaaaaaaa" not in body
    assert requests.get(f"{stack.url}/healthz", timeout=5).ok
    assert "Traceback" not in stack.procs["web"].log()
