"""HTTP for the client: one keep-alive session, authentication, retries, errors.

``Transport.request`` retries ``429`` and ``503`` after the server's
``Retry-After`` (capped), and a broken connection when the request is safe to
send twice (a safe method, or an ``Idempotency-Key``); every other error
answer becomes an ``ApiError``.
"""
from __future__ import annotations

import email.utils
import time
from collections.abc import Callable, Mapping
from typing import Any

import requests
import requests.auth

from hookline import __version__
from hookline.client.errors import TransportError, error_for

#: Statuses retried after ``Retry-After``: the server changed nothing.
RETRY_STATUSES = frozenset({429, 503})
#: Methods that are safe to send again after a broken connection.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
#: Retries of one request before its last error is raised.
DEFAULT_RETRIES = 4
#: Longest wait between two tries, in seconds, whatever ``Retry-After`` asks.
DEFAULT_MAX_WAIT = 30.0
#: Wait before a retry the server gave no ``Retry-After`` for, in seconds (doubled each time).
BACKOFF_BASE = 0.5
#: Seconds to connect, and to wait for an answer.
DEFAULT_TIMEOUT = (5.0, 60.0)


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date; None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class Transport:
    """The session every call of one ``Client`` goes through."""

    def __init__(self, url: str, api_key: str | None, *, retries: int = DEFAULT_RETRIES,
                 max_wait: float = DEFAULT_MAX_WAIT, timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.url = url.rstrip("/")
        self.retries = retries
        self.max_wait = max_wait
        self.timeout = timeout
        self.sleep = sleep
        self.session = requests.Session()
        self.session.headers["User-Agent"] = f"hookline-client/{__version__}"
        if api_key:
            # As the session's auth, not a bare header: requests would otherwise put
            # credentials from ~/.netrc in its place.
            self.session.auth = BearerAuth(api_key)

    def close(self) -> None:
        self.session.close()

    def _wait_for(self, resp: requests.Response | None, tries: int) -> float:
        asked = retry_after_seconds(resp.headers.get("Retry-After")) if resp is not None else None
        wait = asked if asked is not None else BACKOFF_BASE * 2 ** tries
        return min(wait, self.max_wait)

    def request(self, method: str, path: str, *, json: Any = None, params: Mapping[str, Any] | None = None,
                headers: Mapping[str, str] | None = None, data: bytes | None = None,
                retry: bool = True, ok: tuple[int, ...] = ()) -> requests.Response:
        """Send one request and return its answer (2xx, 304 or a status in ``ok``).

        Raises:
            ApiError: (a subclass by status) for any other answer, after the retries.
            TransportError: the server could not be reached, after the retries.
        """
        safe_again = method in IDEMPOTENT_METHODS or bool(headers and "Idempotency-Key" in headers)
        tries = 0
        while True:
            try:
                resp = self.session.request(
                    method, self.url + path, json=json, data=data, headers=headers,
                    params={k: v for k, v in (params or {}).items() if v is not None},
                    timeout=self.timeout, allow_redirects=False,
                )
            except requests.RequestException as exc:
                if retry and safe_again and tries < self.retries:
                    self.sleep(self._wait_for(None, tries))
                    tries += 1
                    continue
                raise TransportError(f"{method} {self.url}{path}: no answer ({type(exc).__name__})") from exc
            if resp.status_code < 400 or resp.status_code in ok:
                return resp
            if retry and tries < self.retries and (
                    resp.status_code in RETRY_STATUSES or _still_processing(resp, headers)):
                self.sleep(self._wait_for(resp, tries))
                tries += 1
                continue
            raise error_for(resp.status_code, _problem(resp), dict(resp.headers))

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        """``request()`` and the answer's JSON body (None for an empty body)."""
        resp = self.request(method, path, **kwargs)
        return resp.json() if resp.content else None


class BearerAuth(requests.auth.AuthBase):
    """``Authorization: Bearer <api key>``; its ``repr`` leaves the key out."""

    def __init__(self, api_key: str) -> None:
        self._api_key = api_key

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._api_key}"
        return request

    def __repr__(self) -> str:
        return "BearerAuth(<api key>)"


def _still_processing(resp: requests.Response, headers: Mapping[str, str] | None) -> bool:
    """A 409 for an ``Idempotency-Key`` whose first request is still running.

    It follows a retry after a broken connection whose first try did arrive;
    asked again after ``Retry-After``, the server answers with the first try's answer.
    """
    return (resp.status_code == 409 and bool(headers and "Idempotency-Key" in headers)
            and "Retry-After" in resp.headers)


def _problem(resp: requests.Response) -> dict[str, Any]:
    try:
        body = resp.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        return body
    # No body (a HEAD) or not our server's problem+json (a proxy's page): the status and an excerpt.
    detail = resp.text[:200]
    if not detail.strip():
        detail = f"{resp.request.method} {resp.url} answered {resp.status_code}"
    return {"status": resp.status_code, "title": resp.reason or "Error", "detail": detail}
