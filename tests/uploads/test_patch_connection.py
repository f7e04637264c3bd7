"""A large PATCH body read straight into the application's buffer keeps its connection usable.

gunicorn's worker hands a body of 1 MiB or more to the application with a
``readinto`` of its own (``webapp/body_into.py``): the bytes gunicorn has
already read come first, and what it read past the body belongs to the next
request on the same keep-alive connection. (A body the application stops
reading early is drained by gunicorn, or the connection closed when over
64 KiB are left, as before.)
"""
from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import requests

from tests.e2e.test_core import key_for
from tests.procs import Stack
from tests.uploads import tus

MiB = 1024 * 1024


def request(method: str, path: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in headers.items())]
    if body or method == "PATCH":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def responses(conn: socket.socket, methods: list[str]) -> list[tuple[int, dict[str, str], bytes]]:
    """One answer per request sent, in order, read from the one connection."""
    data, answers = b"", []
    for method in methods:
        while b"\r\n\r\n" not in data:
            piece = conn.recv(65536)
            assert piece, f"the connection closed after {len(answers)} answers"
            data += piece
        head, data = data.split(b"\r\n\r\n", 1)
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        headers = {k.lower(): v.strip() for k, v in (h.split(":", 1) for h in header_lines)}
        length = 0 if method == "HEAD" else int(headers.get("content-length", "0"))
        while len(data) < length:
            data += conn.recv(65536)
        answers.append((int(status_line.split()[1]), headers, data[:length]))
        data = data[length:]
    return answers


def test_requests_behind_a_large_patch_on_one_connection_are_read_whole(
        large: Stack, tmp_path: Path) -> None:
    auth = key_for(large)
    body = np.random.default_rng(3).integers(0, 256, 3 * MiB + 16, dtype=np.uint8).tobytes()
    url = tus.created(large.url, auth, 2 * len(body), format="f32", dimension=1)
    path = "/" + url.split("/", 3)[3]
    patch = {**auth, **tus.TUS, "Content-Type": tus.OCTETS}
    with socket.create_connection(("127.0.0.1", int(large.url.rsplit(":", 1)[1]))) as conn:
        # A PATCH read whole, with the next request sent in the same write:
        # what gunicorn read past the body is the HEAD's, and must stay its.
        conn.sendall(request("PATCH", path, {**patch, "Upload-Offset": "0"}, body)
                     + request("HEAD", path, {**auth, **tus.TUS}))
        (patched, p_headers, _), (headed, h_headers, _) = responses(conn, ["PATCH", "HEAD"])
        assert (patched, p_headers["upload-offset"]) == (204, str(len(body)))
        assert (headed, h_headers["upload-offset"]) == (200, str(len(body)))
    # And the bytes stored are the bytes sent
    assert tus.patch(url, auth, len(body), body).status_code == 204
    assert requests.get(url, headers=auth, timeout=5).json()["state"] == "complete"
    assert (tmp_path / "blobs" / "uploads" / path.rsplit("/", 1)[1]).read_bytes() == body + body


def test_a_bad_npy_header_is_refused_from_the_first_bytes_of_a_large_body(large: Stack) -> None:
    auth = key_for(large)
    body = b"not a .npy file" + bytes(2 * MiB)
    url = tus.created(large.url, auth, len(body), format="npy")
    path = "/" + url.split("/", 3)[3]
    patch = {**auth, **tus.TUS, "Content-Type": tus.OCTETS, "Upload-Offset": "0"}
    with socket.create_connection(("127.0.0.1", int(large.url.rsplit(":", 1)[1]))) as conn:
        # Only the head of the body is sent: the answer comes from its first bytes
        conn.sendall(request("PATCH", path, patch, body)[: -MiB])
        [(refused, _, problem)] = responses(conn, ["PATCH"])
    assert refused == 422 and b".npy" in problem
    assert tus.head(url, auth).headers["Upload-Offset"] == "0"
