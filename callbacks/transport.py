"""The HTTP transport of webhook attempts, on urllib3's connections.

``Transport.post`` sends one request to an address the URL guard approved,
naming the original host in the ``Host`` header, in SNI and in the
certificate check. It never follows redirects, never reads proxy settings,
keeps one deadline for the whole exchange and reads at most ``max_read``
bytes of the answer. Connections are kept alive per (scheme, address, port,
host); one ``Transport`` is shared by every thread of a worker process.

It drives urllib3's connection objects itself instead of going through
urllib3's pools: an attempt needs none of a pool's retries, redirects,
timeout objects or checks of an idle socket before reuse (a kept connection
that the receiver closed is tried once more on a fresh one instead), and
that machinery was about a third of an attempt's CPU (``bench/delivery.py``).
"""
from __future__ import annotations

import errno
import http.client
import os
import re
import ssl
import threading
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import urllib3
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError, ProtocolError, ReadTimeoutError
from urllib3.exceptions import SSLError as Urllib3SSLError

from callbacks.connections import CONNECTION_CLASSES, KeptConnections, Receiver, attempt

#: Bytes of a receiver's answer that are read; the rest is never downloaded.
DEFAULT_MAX_READ = 4096
#: Idle keep-alive connections kept per receiver (scheme, address, port, host).
MAX_IDLE_PER_RECEIVER = 16
#: Receivers whose connections are kept; beyond this the least recently used are closed.
MAX_RECEIVERS = 256
#: Answer headers kept in ``AttemptResult.headers`` (the retry policy reads them).
KEPT_HEADERS = ("retry-after", "webhook-delivery")

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_BAD_VALUE = re.compile(r"[\r\n\x00]")
_ERRNO_TEXT = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset",
    errno.EHOSTUNREACH: "no route to host",
    errno.ENETUNREACH: "network unreachable",
    errno.ETIMEDOUT: "connection timed out",
}
# The server closed a kept-alive connection while it sat idle; the request
# never reached it, so one more try on a fresh connection is safe.
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, ConnectionAbortedError)
#: What a request on an open connection can fail with.
_FAILURES = (urllib3.exceptions.HTTPError, OSError, http.client.HTTPException)


@dataclass
class AttemptResult:
    """What one attempt saw.

    ``status_code`` is ``None`` when no answer came; ``error`` then says why
    (``"timeout after 15.0s"``, ``"connection refused"``, ``"refused: ..."``).
    ``headers`` holds only the answer headers in ``KEPT_HEADERS``, lower case.
    ``refused`` is true when the URL guard stopped the attempt before any
    connection was made.
    """

    status_code: int | None
    error: str | None
    duration_ms: float
    response_excerpt: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    refused: bool = False


def check_headers(headers: Mapping[str, str]) -> None:
    """Refuse headers that cannot be sent as they are.

    Raises:
        ValueError: a name is not an HTTP token, or a value holds CR, LF or
            NUL, or a value is outside Latin-1.
    """
    for name, value in headers.items():
        if not _TOKEN.fullmatch(name) or _BAD_VALUE.search(value):
            raise ValueError(f"header {name!r} cannot be sent")
        value.encode("latin-1")



class Transport:
    """Keep-alive HTTP(S) connections to checked addresses; safe to share between threads.

    ``connect_timeout`` bounds the TCP connect and TLS handshake; ``timeout``
    bounds the whole exchange. ``ca_certs`` is a CA bundle for https; by
    default the one requests uses.
    """

    def __init__(self, *, connect_timeout: float = 5.0, timeout: float = 15.0,
                 max_read: int = DEFAULT_MAX_READ, ca_certs: str | None = None) -> None:
        self.connect_timeout = float(min(connect_timeout, timeout))
        self.timeout = float(timeout)
        self.max_read = max_read
        self.ca_certs = ca_certs
        self._tls: ssl.SSLContext | None = None
        self._lock = threading.Lock()
        self._idle = KeptConnections(MAX_IDLE_PER_RECEIVER, MAX_RECEIVERS)
        # A transport dropped without close() closes its kept connections too.
        weakref.finalize(self, self._idle.clear)

    def post(self, scheme: str, addresses: tuple[str, ...], port: int, host: str,
             target: str, headers: Mapping[str, str], body: bytes) -> AttemptResult:
        """POST ``body`` to ``target`` on the first address that takes a connection.

        ``headers`` must carry ``host``. An address that refuses the
        connection makes way for the next; once a request may have arrived,
        no other address is tried. Network trouble comes back as an
        ``AttemptResult`` with an ``error``, never as an exception.

        Raises:
            ValueError: a header cannot be sent (see ``check_headers``).
        """
        check_headers(headers)
        attempt.deadline = time.monotonic() + self.timeout
        error = "no address to connect to"
        for address in addresses:
            outcome = self._exchange((scheme, address, port, host), target, headers, body)
            if isinstance(outcome, AttemptResult):
                return outcome
            error, reached = outcome
            if reached:  # the request may have arrived: never send it to a second address
                break
        return AttemptResult(None, error, 0.0)

    def _exchange(self, receiver: Receiver, target: str, headers: Mapping[str, str],
                  body: bytes) -> AttemptResult | tuple[str, bool]:
        for fresh in (False, True):
            left = attempt.deadline - time.monotonic()
            if left <= 0:
                return f"timeout after {self.timeout}s", False
            conn = None if fresh else self._idle.take(receiver)
            reused = conn is not None
            sent = False
            try:
                if conn is None:
                    # A second address or a second try gets only what the deadline leaves.
                    conn = self._open(receiver, min(self.connect_timeout, left))
                    conn.connect()
                conn.sock.settimeout(max(attempt.deadline - time.monotonic(), 0.001))
                sent = True
                conn.request("POST", target, body=body, headers=headers,
                             preload_content=False, decode_content=False)
                response = conn.getresponse()
            except BaseException as exc:
                # Failed, or interrupted (a worker's time limit raises inside
                # the thread): the socket may hold half an exchange.
                if conn is not None:
                    conn.close()
                if not isinstance(exc, _FAILURES):
                    raise
                if reused and isinstance(_cause(exc), _STALE):
                    # The receiver closed it while it sat idle, and most likely
                    # the others it kept too (a restart): those go, and the
                    # request goes once more on a new connection.
                    self._idle.drop(receiver)
                    continue
                connecting = not sent or isinstance(exc, ConnectTimeoutError)
                return self._describe(exc, connecting=connecting), not connecting
            return self._read(receiver, conn, response)
        return "connection closed without an answer", True

    def _open(self, receiver: Receiver, connect_timeout: float) -> Any:
        scheme, address, port, host = receiver
        # http names the host in the Host header only; https in SNI and the certificate check too.
        kwargs: dict[str, Any] = (
            {"server_hostname": host, "ssl_context": self._tls_context()} if scheme == "https" else {})
        return CONNECTION_CLASSES[scheme](address, port, timeout=connect_timeout, **kwargs)

    def _read(self, receiver: Receiver, conn: Any, response: Any) -> AttemptResult:
        kept = {name: response.headers[name] for name in KEPT_HEADERS if name in response.headers}
        parts: list[bytes] = []
        size, failure = 0, None
        try:
            # 1xx other than 100 (which http.client skips) ends the exchange:
            # what follows on that connection is not worth reading.
            while size < self.max_read and response.status >= 200:
                chunk = response.read(self.max_read - size, decode_content=False)
                if not chunk:
                    break
                parts.append(chunk)
                size += len(chunk)
        except _FAILURES as exc:
            failure = f"{self._describe(exc)} while reading the answer"
        except BaseException:
            conn.close()
            raise
        # Kept only when the answer was read to its end and the receiver keeps
        # the connection open (http.client drops the socket on "close").
        if failure is None and response.status >= 200 and response.closed and conn.sock is not None:
            self._idle.give(receiver, conn)
        else:
            response.close()
            conn.close()
        if failure is not None:
            return AttemptResult(response.status, failure, 0.0, "", kept)
        excerpt = b"".join(parts).decode("utf-8", errors="replace")
        return AttemptResult(response.status, None, 0.0, excerpt, kept)

    def _describe(self, exc: BaseException, *, connecting: bool = False) -> str:
        cause = _cause(exc)
        if isinstance(exc, (ConnectTimeoutError, ReadTimeoutError)) and not isinstance(
                exc, NewConnectionError) or isinstance(cause, TimeoutError):
            if connecting:
                return f"connect timeout after {self.connect_timeout}s"
            return f"timeout after {self.timeout}s"
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"tls certificate error: {cause.verify_message or cause.reason}"
        if isinstance(cause, ssl.SSLError):
            return f"tls error: {cause.reason or type(cause).__name__}"
        if isinstance(cause, http.client.RemoteDisconnected):
            return "connection closed without an answer"
        if isinstance(cause, http.client.IncompleteRead):
            return "answer cut short"
        if isinstance(cause, http.client.LineTooLong) or "more than" in str(cause):
            return "invalid answer (headers too long)"
        if isinstance(cause, http.client.BadStatusLine):
            return "invalid answer (not HTTP)"
        if isinstance(cause, http.client.HTTPException):
            return f"invalid answer ({type(cause).__name__})"
        if isinstance(cause, (BrokenPipeError, ConnectionAbortedError)):
            return "connection closed while sending"
        if isinstance(cause, OSError) and cause.errno in _ERRNO_TEXT:
            return _ERRNO_TEXT[cause.errno]
        if isinstance(cause, OSError) and cause.errno:
            return f"connection failed: {os.strerror(cause.errno).lower()}"
        return f"connection failed: {type(cause).__name__}"

    def _tls_context(self) -> ssl.SSLContext:
        context = self._tls
        if context is None:
            with self._lock:
                if self._tls is None:
                    cafile = self.ca_certs
                    if cafile is None:
                        # The same bundle requests verifies with (certifi's).
                        from requests.utils import DEFAULT_CA_BUNDLE_PATH

                        cafile = DEFAULT_CA_BUNDLE_PATH
                    # check_hostname: OpenSSL verifies the certificate against server_hostname.
                    self._tls = ssl.create_default_context(cafile=cafile)
                context = self._tls
        return context

    def idle_connections(self) -> int:
        """How many kept-alive connections wait for reuse."""
        return sum(1 for conn in self._idle.all() if conn.is_connected)

    def close(self) -> None:
        """Close every idle connection; connections in use close when their attempt ends."""
        self._idle.clear()


def _cause(exc: BaseException) -> BaseException:
    """The error under urllib3's wrappers (the OSError, ssl or http.client error)."""
    if isinstance(exc, Urllib3SSLError) and exc.args and isinstance(exc.args[0], BaseException):
        return exc.args[0]
    if isinstance(exc, ProtocolError) and len(exc.args) > 1 and isinstance(exc.args[1], BaseException):
        return _cause(exc.args[1])
    if exc.__cause__ is not None and isinstance(exc, urllib3.exceptions.HTTPError):
        return _cause(exc.__cause__)
    return exc
