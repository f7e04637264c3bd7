"""urllib3 connection classes for webhook attempts: one deadline, one write, reuse noted.

``POOL_CLASSES`` are what the transport's pool manager builds pools from.
``attempt`` is per-thread state of the running attempt: the transport sets
``deadline`` (``time.monotonic()`` seconds) before a request, and reads
``sent`` (a request went out) and ``reused`` (on a connection that had
carried one before) after it.
"""
from __future__ import annotations

import http.client
import io
import threading
import time
from typing import Any

from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

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
    """Reads with the deadline, writes head and body at once, and notes reuse (see ``attempt``)."""

    response_class: Any = _Response
    sock: Any
    _used_sock: Any = None
    _held: bytes | None = None

    def request(self, *args: Any, **kwargs: Any) -> None:
        attempt.reused = self.sock is not None and self.sock is self._used_sock
        attempt.sent = True
        self._held: bytes | None = None
        super().request(*args, **kwargs)  # type: ignore[misc]
        held, self._held = self._held, None
        if held is not None:
            super().send(held)  # type: ignore[misc]
        self._used_sock = self.sock

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


class _Pool(HTTPConnectionPool):
    ConnectionCls = _Connection


class _TlsPool(HTTPSConnectionPool):
    ConnectionCls = _TlsConnection


POOL_CLASSES: dict[str, type[HTTPConnectionPool]] = {"http": _Pool, "https": _TlsPool}
