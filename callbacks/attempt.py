"""One delivery attempt: a signed POST to a checked address, read with limits.

The connection goes to an address the URL guard approved (the request keeps
the original ``Host`` header, and TLS verifies the original host name), proxy
environment variables are ignored, redirects are not followed, and only the
first ``max_read`` bytes of the answer are read. Connections are pooled per
checked address and reused across attempts (keep-alive).
"""
from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import certifi
import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)

from callbacks.errors import UnsafeUrlError
from callbacks.urlguard import CheckedUrl, UrlGuard

#: Bytes of a receiver's answer that are read (the rest is never downloaded).
DEFAULT_MAX_READ = 4096
#: Idle keep-alive connections kept per receiver address.
POOL_SIZE = 16
_KEPT_HEADERS = ("retry-after", "webhook-delivery")


@dataclass
class AttemptResult:
    status_code: int | None
    error: str | None
    duration_ms: float
    response_excerpt: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    refused: bool = False


class Deliverer:
    """Sends webhook attempts; safe to share between threads."""

    def __init__(
        self,
        guard: UrlGuard,
        *,
        connect_timeout: float = 5.0,
        timeout: float = 15.0,
        max_read: int = DEFAULT_MAX_READ,
        user_agent: str = "hookline",
    ) -> None:
        self.guard = guard
        self.timeout = urllib3.Timeout(total=timeout, connect=min(connect_timeout, timeout))
        self.total = timeout
        self.max_read = max_read
        self.user_agent = user_agent
        self._pools: dict[tuple[str, str, int, str], urllib3.HTTPConnectionPool] = {}
        self._lock = threading.Lock()

    def _pool(self, checked: CheckedUrl, address: str) -> urllib3.HTTPConnectionPool:
        key = (checked.scheme, address, checked.port, checked.host)
        pool = self._pools.get(key)
        if pool is not None:
            return pool
        with self._lock:
            pool = self._pools.get(key)
            if pool is None:
                if checked.scheme == "https":
                    pool = urllib3.HTTPSConnectionPool(
                        address, checked.port, maxsize=POOL_SIZE, block=False, retries=False,
                        cert_reqs="CERT_REQUIRED", ca_certs=certifi.where(),
                        server_hostname=checked.host, assert_hostname=checked.host,
                    )
                else:
                    pool = urllib3.HTTPConnectionPool(
                        address, checked.port, maxsize=POOL_SIZE, block=False, retries=False
                    )
                self._pools[key] = pool
        return pool

    def send(self, url: str, body: bytes, headers: Mapping[str, str]) -> AttemptResult:
        """POST ``body`` to ``url``; never raises for network trouble."""
        started = time.perf_counter()
        try:
            checked = self.guard.check(url)
        except UnsafeUrlError as exc:
            return AttemptResult(None, f"refused: {exc}", _ms(started), refused=True)
        default_port = 443 if checked.scheme == "https" else 80
        host_header = checked.host if ":" not in checked.host else f"[{checked.host}]"
        if checked.port != default_port:
            host_header += f":{checked.port}"
        request_headers = {"host": host_header, "user-agent": self.user_agent, **headers}
        error = "no address to connect to"
        for address in checked.addresses:
            try:
                response = self._pool(checked, address).urlopen(
                    "POST", checked.path_with_query, body=body, headers=request_headers,
                    redirect=False, retries=False, timeout=self.timeout,
                    preload_content=False, assert_same_host=False,
                )
            except NewConnectionError as exc:
                error = _describe(exc, self.total)
                continue  # try the next checked address
            except HTTPError as exc:
                return AttemptResult(None, _describe(exc, self.total), _ms(started))
            try:
                excerpt = response.read(self.max_read, decode_content=False)
                complete = response.read(1, decode_content=False) == b""
            except HTTPError as exc:
                response.close()
                return AttemptResult(None, _describe(exc, self.total), _ms(started))
            if complete:
                response.release_conn()
            else:
                response.close()  # the rest is never read; do not reuse the socket
            kept = {name: response.headers[name] for name in _KEPT_HEADERS if name in response.headers}
            return AttemptResult(
                response.status, None, _ms(started),
                excerpt.decode("utf-8", errors="replace"), kept,
            )
        return AttemptResult(None, error, _ms(started))

    def close(self) -> None:
        with self._lock:
            for pool in self._pools.values():
                pool.close()
            self._pools.clear()


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def _describe(exc: Exception, total: float) -> str:
    # NewConnectionError subclasses ConnectTimeoutError, so it goes first.
    if isinstance(exc, NewConnectionError):
        text = str(exc).lower()
        if "refused" in text:
            return "connection refused"
        if "timed out" in text:
            return f"timeout after {total:g} s"
        return "connection failed"
    if isinstance(exc, (ConnectTimeoutError, ReadTimeoutError)):
        return f"timeout after {total:g} s"
    if isinstance(exc, SSLError):
        return "tls error"
    if isinstance(exc, ProtocolError):
        return "connection reset"
    if "timed out" in str(exc).lower():
        return f"timeout after {total:g} s"
    return type(exc).__name__
