"""urllib3 connection classes for webhook attempts: one deadline, one write.

``CONNECTION_CLASSES`` are what the transport opens, per scheme. ``attempt``
is per-thread state of the running attempt: the transport sets ``deadline``
(``time.monotonic()`` seconds) before a request, and the answer is read
with whatever time it leaves.
"""
from __future__ import annotations

import http.client
import io
import threading
import time
from typing import Any

from urllib3.connection import HTTPConnection, HTTPSConnection

# The running attempt of this thread (see the module docstring); threads never share one.
attempt = threading.local()


class _DeadlineReader(io.RawIOBase):
    """Reads a socket with whatever time the attempt's deadline leaves."""

    def __init__(self, raw: Any, sock: Any) -> None:
        self.raw = raw
        self.sock = sock

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int | None:
        left = getattr(attempt, "deadline", float("inf")) - time.monotonic()
        if left <= 0:
            raise TimeoutError("the attempt's deadline passed")
        self.sock.settimeout(left)
        return int(self.raw.readinto(buffer))

    def close(self) -> None:
        self.raw.close()
        super().close()


class _Response(http.client.HTTPResponse):
    # urllib3's timeouts bound each read; this bounds the answer as a whole,
    # so a receiver that trickles its answer cannot hold a thread for ever.
    def __init__(self, sock: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(sock, *args, **kwargs)
        self.fp = io.BufferedReader(_DeadlineReader(self.fp.detach(), sock))


class _Tracked:
    """Reads with the deadline and writes head and body at once."""

    response_class: Any = _Response
    _held: bytes | None = None

    def request(self, *args: Any, **kwargs: Any) -> None:
        self._held = None
        super().request(*args, **kwargs)  # type: ignore[misc]
        held, self._held = self._held, None
        if held is not None:
            super().send(held)  # type: ignore[misc]

    # urllib3 writes the head and the body separately; held back, the head
    # goes out with the body in one write (one packet, one system call less).
    def endheaders(self, *args: Any, **kwargs: Any) -> None:
        self._held = b""
        super().endheaders(*args, **kwargs)  # type: ignore[misc]

    def send(self, data: Any) -> None:
        held = self._held
        if held == b"":
            self._held = bytes(data)
            return
        if held:
            self._held = None
            data = held + bytes(data)
        super().send(data)  # type: ignore[misc]


class _Connection(_Tracked, HTTPConnection):
    pass


class _TlsConnection(_Tracked, HTTPSConnection):
    pass


CONNECTION_CLASSES: dict[str, type[HTTPConnection]] = {"http": _Connection, "https": _TlsConnection}
