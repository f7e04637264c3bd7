"""urllib3 connection classes for webhook attempts (one deadline, one write), and where they are kept.

``CONNECTION_CLASSES`` are what the transport opens, per scheme;
``KeptConnections`` holds them between attempts. ``attempt``
is per-thread state of the running attempt: the transport sets ``deadline``
(``time.monotonic()`` seconds) before a request, and the answer is read
with whatever time it leaves.
"""
from __future__ import annotations

import http.client
import io
import threading
import time
from collections import OrderedDict
from typing import Any

from urllib3.connection import HTTPConnection, HTTPSConnection

#: (scheme, address, port, host): the receiver a kept connection belongs to.
Receiver = tuple[str, str, int, str]

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


class KeptConnections:
    """Kept-alive connections by receiver: at most ``per_receiver`` each, for the
    ``receivers`` used last; thread-safe."""

    def __init__(self, per_receiver: int, receivers: int) -> None:
        self.per_receiver = per_receiver
        self.receivers = receivers
        self._lock = threading.Lock()
        self._kept: OrderedDict[Receiver, list[Any]] = OrderedDict()

    def take(self, receiver: Receiver) -> Any | None:
        with self._lock:
            kept = self._kept.get(receiver)
            if not kept:
                return None
            self._kept.move_to_end(receiver)
            return kept.pop()

    def give(self, receiver: Receiver, conn: Any) -> None:
        closing = []
        with self._lock:
            kept = self._kept.setdefault(receiver, [])
            self._kept.move_to_end(receiver)
            if len(kept) < self.per_receiver:
                kept.append(conn)
            else:
                closing.append(conn)
            while len(self._kept) > self.receivers:
                closing += self._kept.popitem(last=False)[1]
        for extra in closing:
            extra.close()

    def drop(self, receiver: Receiver) -> None:
        """Close the receiver's kept connections."""
        with self._lock:
            kept = self._kept.pop(receiver, [])
        for conn in kept:
            conn.close()

    def all(self) -> list[Any]:
        with self._lock:
            return [conn for kept in self._kept.values() for conn in kept]

    def clear(self) -> None:
        with self._lock:
            kept, self._kept = self._kept, OrderedDict()
        for conns in kept.values():
            for conn in conns:
                conn.close()
