"""One delivery attempt: a signed POST to a checked address, read with limits.

The URL guard runs first, at every attempt. The connection then goes to an
address the guard approved, with no second lookup: the request keeps the
original ``Host`` header, and TLS sends the original host name (SNI) and
verifies the certificate against it. Proxy environment variables play no part,
redirects are never followed, the whole attempt has one deadline, and only the
first ``max_read`` bytes of the answer are read.

Connections are kept alive and reused across attempts, per (scheme, address,
port, host); one ``Deliverer`` is meant to be shared by every thread of a
worker process.

The request goes out in one write, and the answer is read by llhttp (the
parser of Node.js, through ``httptools``), which also handles chunked answers
and interim ``1xx`` ones. An attempt costs about a third of the CPU that
``http.client`` took for the same exchange (bench/delivery.py).
"""
from __future__ import annotations

import errno
import os
import re
import select
import socket
import ssl
import threading
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field

import httptools

from callbacks.errors import UnsafeUrlError
from callbacks.urlguard import UrlGuard

#: Bytes of a receiver's answer that are read; the rest is never downloaded.
DEFAULT_MAX_READ = 4096
#: Idle keep-alive connections kept per receiver (scheme, address, port, host).
MAX_IDLE_PER_RECEIVER = 16
#: Seconds an idle connection may wait for reuse before it is closed instead.
IDLE_TIMEOUT = 50.0
#: Answer headers kept in ``AttemptResult.headers`` (the retry policy reads them).
KEPT_HEADERS = ("retry-after", "webhook-delivery")
#: Bytes of status line and headers an answer may have before it is refused.
MAX_HEAD_BYTES = 65536
_RECV_BYTES = 65536
_KEPT = {name.encode(): name for name in KEPT_HEADERS}
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_BAD_VALUE = re.compile(r"[\r\n\x00]")
_BAD_TARGET = re.compile(r"[\x00-\x20\x7f]")

_PoolKey = tuple[str, str, int, str]
_ERRNO_TEXT = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset",
    errno.EHOSTUNREACH: "no route to host",
    errno.ENETUNREACH: "network unreachable",
    errno.ETIMEDOUT: "connection timed out",
}
# The server closed a kept-alive connection while it sat idle; the request
# never reached it, so one more try on a fresh connection is safe.
_STALE = (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)


class NoAnswer(ConnectionError):
    """The connection closed before the first byte of an answer."""


class AnswerCutShort(ConnectionError):
    """The connection closed before the answer's announced end."""


class InvalidAnswer(Exception):
    """What came back is not an HTTP answer."""


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


def request_head(target: str, headers: Mapping[str, str], length: int) -> bytes:
    """The request line and headers of a ``POST`` with a body of ``length`` bytes.

    Raises:
        ValueError: the target, a header name or a value cannot be sent as is
            (a control character, or a value outside Latin-1).
    """
    if not target.startswith("/") or _BAD_TARGET.search(target):
        raise ValueError("the request target cannot be sent")
    lines = [f"POST {target} HTTP/1.1"]
    for name, value in headers.items():
        if not _TOKEN.fullmatch(name) or _BAD_VALUE.search(value):
            raise ValueError(f"header {name!r} cannot be sent")
        lines.append(f"{name}: {value}")
    lines.append(f"content-length: {length}\r\n\r\n")
    return "\r\n".join(lines).encode("latin-1")


class _Answer:
    """One answer as the parser reports it; interim (1xx) answers are skipped."""

    __slots__ = ("parser", "status", "headers", "parts", "size", "limit", "framed",
                 "head_done", "complete", "keep_alive", "failure")

    def __init__(self, limit: int) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.status = 0
        self.headers: dict[str, str] = {}
        self.parts: list[bytes] = []
        self.size = 0
        self.limit = limit
        #: Content-Length or chunked: the answer has an end before the connection's.
        self.framed = False
        self.head_done = False
        self.complete = False
        #: Whether the connection may carry another request (llhttp knows it
        #: only while the answer is being parsed).
        self.keep_alive = False
        #: What stopped the reading of the body, once the head had arrived.
        self.failure: Exception | None = None

    def on_message_begin(self) -> None:
        self.headers.clear()
        self.framed = False

    def on_header(self, name: bytes, value: bytes) -> None:
        lower = name.lower()
        kept = _KEPT.get(lower)
        if kept is not None:
            self.headers[kept] = value.decode("latin-1")
        elif lower in (b"content-length", b"transfer-encoding"):
            self.framed = True

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        # 101 is final: the receiver switched protocols, which nobody asked for.
        if not 100 <= status < 200 or status == 101:
            self.status = status
            self.head_done = True

    def on_body(self, body: bytes) -> None:
        room = self.limit - self.size
        if room > 0:
            part = body[:room]
            self.parts.append(part)
            self.size += len(part)

    def on_message_complete(self) -> None:
        if self.head_done:
            self.complete = True
            self.keep_alive = bool(self.parser.should_keep_alive())

    @property
    def excerpt(self) -> str:
        return b"".join(self.parts).decode("utf-8", errors="replace")


class _Connection:
    """A connection to one checked address, named for one host (Host header, SNI)."""

    def __init__(self, key: _PoolKey, tls: ssl.SSLContext | None) -> None:
        _, address, port, host = key
        self.host = address
        self.port = port
        self.server_name = host
        self.tls = tls
        self.raw: socket.socket | None = None
        self.deadline = 0.0
        self.idle_since = 0.0

    def remaining(self) -> float:
        """Seconds left before the deadline.

        Raises:
            TimeoutError: none are left.
        """
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the attempt's deadline passed")
        return left

    def open(self, connect_timeout: float) -> None:
        """Connect (and for https, shake hands) within ``connect_timeout``.

        Raises:
            OSError: the connection or the TLS handshake failed or timed out.
        """
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.settimeout(min(connect_timeout, self.remaining()))
            sock.connect((self.host, self.port))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.tls is not None:
                sock = self.tls.wrap_socket(sock, server_hostname=self.server_name)
        except BaseException:
            sock.close()
            raise
        self.raw = sock

    def close(self) -> None:
        raw, self.raw = self.raw, None
        if raw is not None:
            raw.close()

    def exchange(self, data: bytes, max_read: int) -> tuple[_Answer, bool]:
        """Send ``data`` (a whole request) and read the answer, up to ``max_read`` bytes of body.

        Returns the answer and whether the connection may carry another
        request. A failure after the answer's head is kept in its ``failure``.

        Raises:
            NoAnswer: the connection closed before any answer (a stale one, when reused).
            InvalidAnswer: what came back is not HTTP.
            OSError: sending or reading failed; TimeoutError when the deadline passed.
        """
        raw = self.raw
        if raw is None:
            raise ConnectionAbortedError("the connection is closed")
        raw.settimeout(self.remaining())
        raw.sendall(data)
        answer = _Answer(max_read)
        try:
            reusable = self._read(raw, answer, max_read)
        except (OSError, InvalidAnswer) as exc:  # AnswerCutShort is an OSError
            if not answer.head_done:
                raise
            answer.failure = exc
            return answer, False
        return answer, reusable

    def _read(self, raw: socket.socket, answer: _Answer, max_read: int) -> bool:
        received = 0
        while not answer.complete:
            raw.settimeout(self.remaining())
            chunk = raw.recv(_RECV_BYTES)
            if not chunk:
                if not answer.head_done:
                    raise NoAnswer("connection closed without an answer")
                if answer.framed:
                    raise AnswerCutShort("answer cut short")
                return False  # the body ran until the connection closed
            received += len(chunk)
            try:
                answer.parser.feed_data(chunk)
            except httptools.HttpParserUpgrade:
                return False
            except httptools.HttpParserError as exc:
                reason = str(exc).lower()
                raise InvalidAnswer("not HTTP" if reason.startswith("expected http/") else reason) from None
            if answer.head_done:
                if answer.size >= max_read and not answer.complete:
                    return False  # the rest is never read
            elif received > MAX_HEAD_BYTES:
                raise InvalidAnswer("headers too long")
        return answer.keep_alive

    def dropped(self) -> bool:
        """True if the idle connection has closed, or holds data nobody asked for."""
        raw = self.raw
        if raw is None:
            return True
        if isinstance(raw, ssl.SSLSocket) and raw.pending():
            return True
        try:
            if hasattr(select, "poll"):
                poller = select.poll()
                poller.register(raw, select.POLLIN)
                return bool(poller.poll(0))
            return bool(select.select([raw], [], [], 0)[0])
        except (OSError, ValueError):
            return True


class Deliverer:
    """Sends webhook attempts; safe to share between threads.

    ``connect_timeout`` bounds the TCP connect and TLS handshake; ``timeout``
    bounds the whole attempt (connect, send, answer). ``ca_certs`` is a CA
    bundle for https; by default the one requests uses.
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
        self.connect_timeout = float(min(connect_timeout, timeout))
        self.timeout = float(timeout)
        self.max_read = max_read
        self.user_agent = user_agent
        self.ca_certs = ca_certs
        self._tls: ssl.SSLContext | None = None
        self._pools: dict[_PoolKey, list[_Connection]] = {}
        self._lock = threading.Lock()
        self._swept = time.monotonic()
        self._closed = False
        # Idle sockets are closed when the Deliverer goes away, even unclosed.
        weakref.finalize(self, _close_idle, self._pools, self._lock)

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
        deadline = time.monotonic() + self.timeout
        request_headers = {"user-agent": self.user_agent}
        for name, value in headers.items():
            request_headers[name.lower()] = value
        request_headers["host"] = checked.host_header
        head = request_head(checked.path_with_query, request_headers, len(body))
        error = "no address to connect to"
        for address in checked.addresses:
            key = (checked.scheme, address, checked.port, checked.host)
            result = self._exchange(key, head, body, deadline)
            if isinstance(result, AttemptResult):
                result.duration_ms = _ms(started)
                return result
            error, reached = result
            if reached:  # the request may have arrived: never send it to a second address
                break
        return AttemptResult(None, error, _ms(started))

    def _exchange(
        self, key: _PoolKey, head: bytes, body: bytes, deadline: float,
    ) -> AttemptResult | tuple[str, bool]:
        """One request on one address: the result, or (error, whether it may have arrived)."""
        conn = self._take(key)
        reused = conn is not None
        while True:
            if conn is None:
                conn = _Connection(key, self._tls_context() if key[0] == "https" else None)
                conn.deadline = deadline
                try:
                    conn.open(self.connect_timeout)
                except OSError as exc:
                    conn.close()
                    return self._describe(exc, connecting=True), False
            conn.deadline = deadline
            try:
                answer, reusable = conn.exchange(head + body, self.max_read)
            except (NoAnswer, *_STALE) as exc:
                conn.close()
                if reused:
                    conn, reused = None, False
                    continue
                return self._describe(exc), True
            except (OSError, InvalidAnswer) as exc:
                conn.close()
                return self._describe(exc), True
            except BaseException:  # a bug, or an interrupt: never leak the socket
                conn.close()
                raise
            break
        if answer.failure is not None:
            conn.close()
            return AttemptResult(answer.status, f"{self._describe(answer.failure)} while reading the answer",
                                 0.0, "", answer.headers)
        if reusable:
            self._give_back(key, conn)
        else:
            # Unread data, or the server asked to close: the socket cannot be reused.
            conn.close()
        return AttemptResult(answer.status, None, 0.0, answer.excerpt, answer.headers)

    def _describe(self, exc: BaseException, *, connecting: bool = False) -> str:
        if isinstance(exc, TimeoutError):
            if connecting:
                return f"connect timeout after {self.connect_timeout}s"
            return f"timeout after {self.timeout}s"
        if isinstance(exc, ssl.SSLCertVerificationError):
            return f"tls certificate error: {exc.verify_message or exc.reason}"
        if isinstance(exc, ssl.SSLError):
            return f"tls error: {exc.reason or type(exc).__name__}"
        if isinstance(exc, (NoAnswer, AnswerCutShort)):
            return str(exc)
        if isinstance(exc, InvalidAnswer):
            return f"invalid answer ({exc})"
        if isinstance(exc, (BrokenPipeError, ConnectionAbortedError)):
            return "connection closed while sending"
        if isinstance(exc, OSError) and exc.errno in _ERRNO_TEXT:
            return _ERRNO_TEXT[exc.errno]
        if isinstance(exc, OSError) and exc.errno:
            return f"connection failed: {os.strerror(exc.errno).lower()}"
        return f"connection failed: {type(exc).__name__}"

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
                    self._tls = ssl.create_default_context(cafile=cafile)
                context = self._tls
        return context

    def _take(self, key: _PoolKey) -> _Connection | None:
        """An idle connection to ``key`` that still looks alive, or ``None``."""
        while True:
            now = time.monotonic()
            with self._lock:
                stack = self._pools.get(key)
                conn = stack.pop() if stack else None
            if conn is None:
                return None
            if now - conn.idle_since < IDLE_TIMEOUT and not conn.dropped():
                return conn
            conn.close()

    def _give_back(self, key: _PoolKey, conn: _Connection) -> None:
        now = time.monotonic()
        conn.idle_since = now
        expired: list[_Connection] = []
        with self._lock:
            stack = self._pools.setdefault(key, [])
            if self._closed or len(stack) >= MAX_IDLE_PER_RECEIVER:
                expired.append(conn)
            else:
                stack.append(conn)
            if now - self._swept > IDLE_TIMEOUT:
                # Receivers that are no longer called would keep their sockets for ever.
                self._swept = now
                for pool_key, idle in list(self._pools.items()):
                    fresh = [c for c in idle if now - c.idle_since < IDLE_TIMEOUT]
                    expired.extend(c for c in idle if now - c.idle_since >= IDLE_TIMEOUT)
                    if fresh:
                        self._pools[pool_key] = fresh
                    else:
                        del self._pools[pool_key]
        for stale in expired:
            stale.close()

    def idle_connections(self) -> int:
        """How many kept-alive connections wait for reuse."""
        with self._lock:
            return sum(len(idle) for idle in self._pools.values())

    def close(self) -> None:
        """Close every idle connection; connections in use close when their attempt ends."""
        self._closed = True
        _close_idle(self._pools, self._lock)


def _close_idle(pools: dict[_PoolKey, list[_Connection]], lock: threading.Lock) -> None:
    with lock:
        idle = [conn for stack in pools.values() for conn in stack]
        pools.clear()
    for conn in idle:
        conn.close()


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000
