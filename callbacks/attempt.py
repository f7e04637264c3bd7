"""One delivery attempt: the URL guard, then a signed POST through the transport.

The guard runs at every attempt (DNS can change); the request then goes to
an address it approved (``callbacks.transport``). One ``Deliverer`` is meant
to be shared by every thread of a worker process.
"""
from __future__ import annotations

import time
from collections.abc import Mapping

from callbacks.errors import UnsafeUrlError
from callbacks.transport import DEFAULT_MAX_READ, AttemptResult, Transport
from callbacks.urlguard import UrlGuard

__all__ = ["AttemptResult", "Deliverer"]


class Deliverer:
    """Sends webhook attempts; safe to share between threads.

    ``connect_timeout`` bounds the TCP connect and TLS handshake; ``timeout``
    bounds the whole attempt (connect, send, answer). ``ca_certs`` is a CA
    bundle for https; by default the one requests uses. ``transport`` holds
    the connections.
    """

    def __init__(
        self,
        guard: UrlGuard,
        *,
        connect_timeout: float = 5.0,
        timeout: float = 15.0,
        max_read: int = DEFAULT_MAX_READ,
        user_agent: str = "hookline/0.1.0",
        ca_certs: str | None = None,
    ) -> None:
        self.guard = guard
        self.user_agent = user_agent
        self.transport = Transport(connect_timeout=connect_timeout, timeout=timeout,
                                   max_read=max_read, ca_certs=ca_certs)

    def __enter__(self) -> Deliverer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def send(self, url: str, body: bytes, headers: Mapping[str, str]) -> AttemptResult:
        """POST ``body`` to ``url`` with ``headers``; one attempt.

        Never raises for network trouble or a refused URL: those come back as
        an ``AttemptResult`` with ``status_code`` ``None`` and an ``error``.

        Raises:
            ValueError: a header name or value cannot be sent (a caller's bug).
        """
        started = time.perf_counter()
        try:
            checked = self.guard.check(url)
        except UnsafeUrlError as exc:
            return AttemptResult(None, f"refused: {exc}", _ms(started), refused=True)
        request_headers = {"user-agent": self.user_agent}
        for name, value in headers.items():
            request_headers[name.lower()] = value
        request_headers["host"] = checked.host_header
        result = self.transport.post(checked.scheme, checked.addresses, checked.port, checked.host,
                                     checked.path_with_query, request_headers, body)
        result.duration_ms = _ms(started)
        return result

    def idle_connections(self) -> int:
        """How many kept-alive connections wait for reuse."""
        return self.transport.idle_connections()

    def close(self) -> None:
        """Close every idle connection; connections in use close when their attempt ends."""
        self.transport.close()


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000
