"""gunicorn answers leave in one write, with the same bytes as before."""
from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
from gunicorn.config import Config
from gunicorn.http import wsgi

from webapp.serving import CoalescingResponse


class Socket:
    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def sendall(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def sendfile(self, file: Any, offset: int = 0, count: int | None = None) -> int:
        file.seek(offset)
        data = file.read(count)
        self.writes.append(data)
        return len(data)


class Request:
    def __init__(self, method: str = "POST", version: tuple[int, int] = (1, 1)) -> None:
        self.method, self.version = method, version

    def should_close(self) -> bool:
        return False


Script = Callable[[Any], None]


def one_body(resp: Any) -> None:
    resp.start_response("202 Accepted", [("Content-Type", "application/json"), ("Content-Length", "13")])
    resp.write(b'{"task":"t1"}')
    resp.close()


def no_body(resp: Any) -> None:
    resp.start_response("204 No Content", [("X-Thing", "1")])
    resp.close()


def two_pieces(resp: Any) -> None:
    resp.start_response("200 OK", [("Content-Length", "6")])
    resp.write(b"abc")
    resp.write(b"def")
    resp.close()


def chunked(resp: Any) -> None:
    resp.start_response("200 OK", [("Content-Type", "text/plain")])
    resp.write(b"first")
    resp.write(b"second")
    resp.close()


def empty_pieces(resp: Any) -> None:
    resp.start_response("200 OK", [("Content-Length", "2")])
    resp.write(b"")
    resp.write(b"ok")
    resp.close()


def a_file(resp: Any) -> None:
    resp.start_response("200 OK", [("Content-Length", "4")])
    resp.write_file(wsgi.FileWrapper(FileWithNo(b"file")))
    resp.close()


class FileWithNo(io.BytesIO):
    """A file the response may hand to sendfile (it has a descriptor number)."""

    def fileno(self) -> int:
        return 0


def run(cls: type, script: Script, request: Request) -> list[bytes]:
    sock = Socket()
    resp = cls(request, sock, Config())
    script(resp)
    return [w for w in sock.writes if w]


def without_date(data: bytes) -> bytes:
    return b"\r\n".join(line for line in data.split(b"\r\n") if not line.startswith(b"Date: "))


@pytest.mark.parametrize("script", [one_body, no_body, two_pieces, chunked, empty_pieces])
@pytest.mark.parametrize("method", ["POST", "HEAD"])
def test_the_bytes_on_the_wire_are_gunicorns(script: Script, method: str) -> None:
    ours = run(CoalescingResponse, script, Request(method))
    theirs = run(wsgi.Response, script, Request(method))
    assert without_date(b"".join(ours)) == without_date(b"".join(theirs))


def test_a_file_keeps_its_place_after_the_head(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.lseek", lambda fd, pos, how: 0)
    ours = run(CoalescingResponse, a_file, Request())
    assert ours[0].startswith(b"HTTP/1.1 200 OK\r\n") and ours[0].endswith(b"\r\n\r\n")
    assert b"".join(ours[1:]) == b"file"


def test_an_answer_with_one_body_piece_is_one_write() -> None:
    writes = run(CoalescingResponse, one_body, Request())
    assert len(writes) == 1
    assert writes[0].startswith(b"HTTP/1.1 202 Accepted\r\n")
    assert writes[0].endswith(b'\r\n\r\n{"task":"t1"}')
    assert len(run(wsgi.Response, one_body, Request())) == 2  # gunicorn's own: head, then body
    assert len(run(CoalescingResponse, no_body, Request())) == 1
