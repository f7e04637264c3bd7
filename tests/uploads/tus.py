"""A minimal tus 1.0 client for the tests, over requests and raw sockets."""
from __future__ import annotations

import base64
import io
import socket
from typing import Any

import numpy as np
import requests

TUS = {"Tus-Resumable": "1.0.0"}
OCTETS = "application/offset+octet-stream"


def metadata(**pairs: Any) -> str:
    return ",".join(f"{k} {base64.b64encode(str(v).encode()).decode()}" for k, v in pairs.items())


def create(base: str, auth: dict[str, str], length: int, **meta: Any) -> requests.Response:
    headers = {**auth, **TUS, "Upload-Length": str(length), "Upload-Metadata": metadata(**meta)}
    return requests.post(f"{base}/uploads", headers=headers, timeout=10)


def created(base: str, auth: dict[str, str], length: int, **meta: Any) -> str:
    """The new upload's URL."""
    resp = create(base, auth, length, **meta)
    assert resp.status_code == 201, resp.text
    return base + resp.headers["Location"]


def patch(url: str, auth: dict[str, str], offset: int, data: bytes, **headers: str) -> requests.Response:
    sent = {**auth, **TUS, "Upload-Offset": str(offset), "Content-Type": OCTETS, **headers}
    return requests.patch(url, data=data, headers=sent, timeout=60)


def head(url: str, auth: dict[str, str]) -> requests.Response:
    return requests.head(url, headers={**auth, **TUS}, timeout=10)


def offset(url: str, auth: dict[str, str]) -> int:
    resp = head(url, auth)
    assert resp.status_code == 200, resp.status_code
    return int(resp.headers["Upload-Offset"])


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def open_patch(url: str, auth: dict[str, str], offset: int, length: int) -> socket.socket:
    """Start a PATCH of ``length`` bytes on a raw socket and send only its headers."""
    host, _, rest = url.removeprefix("http://").partition("/")
    name, _, port = host.partition(":")
    sock = socket.create_connection((name, int(port)), timeout=10)
    lines = [f"PATCH /{rest} HTTP/1.1", f"Host: {host}", "Tus-Resumable: 1.0.0",
             f"Upload-Offset: {offset}", f"Content-Type: {OCTETS}", f"Content-Length: {length}",
             *(f"{k}: {v}" for k, v in auth.items())]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    return sock


def read_status(sock: socket.socket) -> tuple[int, bytes]:
    """The status code and whatever else of the answer arrives first."""
    data = b""
    while b"\r\n\r\n" not in data:
        piece = sock.recv(65536)
        if not piece:
            break
        data += piece
    return int(data.split(b" ", 2)[1]), data
