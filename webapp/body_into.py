"""A large request body that the application reads straight into its own buffer.

gunicorn 27's body reader hands each piece over as a new ``bytes``: it
receives into a fresh object, writes it into a ``BytesIO``, copies it out and
slices it, and its ``Body`` does the same again; Werkzeug's ``LimitedStream``
then copies it once more into the caller's buffer. A profile of 64 MiB tus
PATCHes (py-spy, 400,000 vectors) spent two thirds of the web's CPU in those
copies and a third in ``recv`` and ``pwrite``; the web took 173 to 223 MB per
CPU second and one PATCH at a time could not pass 200 MB/s.

``DirectBody`` stands in for ``wsgi.input`` for a body framed by
``Content-Length`` of at least ``DIRECT_BODY_BYTES``. It gives the bytes
gunicorn has already read (they came with the headers) first, then
``recv_into`` the caller's buffer, and keeps gunicorn's count of what is left
of the body, so gunicorn still drains an unread rest before the next request
on the connection. Werkzeug's ``LimitedStream.readinto`` uses a stream's
``readinto`` when it has one, so ``request.stream.readinto`` reaches the
socket without a copy. Smaller bodies (JSON, at most a few MiB) keep
gunicorn's reader as it is.
"""
from __future__ import annotations

import socket
from typing import Any

from gunicorn.http.body import Body, LengthReader

#: Smallest body read straight into the application's buffer, in bytes.
DIRECT_BODY_BYTES = 1024 * 1024


class DirectBody:
    """``wsgi.input`` with ``readinto`` over a ``Content-Length`` body of gunicorn's."""

    def __init__(self, body: Body, sock: socket.socket) -> None:
        self.body = body
        self.reader: LengthReader = body.reader
        self.sock = sock

    @classmethod
    def wrap(cls, body: Any, sock: socket.socket, length: int | None) -> Any:
        """``body`` itself unless it is a large ``Content-Length`` body of gunicorn's.

        What this reads of gunicorn's (``requirements.txt`` pins 27.0.1) is
        checked here, so that another release's body is left as it is
        rather than read wrongly.
        """
        if (length is None or length < DIRECT_BODY_BYTES or not isinstance(body, Body)
                or type(body.reader) is not LengthReader
                or not all(hasattr(x, name) for x, name in (
                    (body, "buf"), (body, "failed"), (body.reader, "length"),
                    (body.reader, "unreader"), (body.reader.unreader, "take_buffered")))):
            return body
        return cls(body, sock)

    def readinto(self, buffer: Any) -> int:
        """Fill the start of ``buffer`` with the next bytes of the body; 0 at its end.

        Raises:
            OSError: the connection failed (gunicorn then closes it).
        """
        view = memoryview(buffer).cast("B")
        want = min(len(view), self.reader.length)
        if want <= 0:
            return 0
        if self.body.buf.tell():
            # An earlier read() left bytes in gunicorn's own buffer.
            data = self.body.read(want)
            view[: len(data)] = data
            return len(data)
        unreader = self.reader.unreader
        held = unreader.take_buffered()
        if held:
            count = min(want, len(held))
            view[:count] = held[:count]
            if count < len(held):
                unreader.unread(held[count:])  # the rest, or the next request
        else:
            try:
                count = self.sock.recv_into(view[:want])
            except OSError:
                self.body.failed = True  # where the next request starts is unknown
                raise
        self.reader.length -= count
        return count

    def read(self, size: int | None = None) -> bytes:
        return self.body.read(size)  # type: ignore[no-any-return]

    def readline(self, size: int | None = None) -> bytes:
        return self.body.readline(size)  # type: ignore[no-any-return]

    def readlines(self, hint: int | None = None) -> list[bytes]:
        return self.body.readlines(hint)  # type: ignore[no-any-return]

    def __iter__(self) -> Any:
        return iter(self.body)
