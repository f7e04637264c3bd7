"""The client's exceptions: one root, ``HooklineError``, and a short tree under it.

``ApiError`` carries the server's answer as RFC 9457 problem details; its
subclasses name the statuses a caller usually handles on its own.
"""
from __future__ import annotations

from typing import Any


class HooklineError(Exception):
    """Anything the client raises."""


class TransportError(HooklineError):
    """The server could not be reached, or the connection broke mid-request."""


class WaitTimeout(HooklineError):
    """``wait()`` gave up before the task finished; ``task`` is what it saw last."""

    def __init__(self, task_id: str, timeout: float, task: dict[str, Any] | None) -> None:
        super().__init__(f"task {task_id} did not finish within {timeout:g} s")
        self.task_id = task_id
        self.task = task


class ApiError(HooklineError):
    """The server answered with an error status.

    ``problem`` is the ``application/problem+json`` body (``type``, ``title``,
    ``status``, ``detail`` and, for validation failures, ``errors``); a body
    that is not JSON is kept as ``{"status", "title", "detail"}`` built from
    the answer, so ``problem`` is always a dict.
    """

    def __init__(self, status: int, problem: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.problem = problem
        self.headers = headers or {}
        super().__init__(f"{status} {problem.get('title', '')}: {problem.get('detail', '')}".strip())

    @property
    def detail(self) -> str:
        return str(self.problem.get("detail") or self.problem.get("title") or "")

    @property
    def errors(self) -> dict[str, Any]:
        """Per-field messages of a validation failure (empty otherwise)."""
        errors = self.problem.get("errors")
        return errors if isinstance(errors, dict) else {}


class BadRequest(ApiError):
    """400: malformed JSON, an empty body or a bad header."""


class Unauthorized(ApiError):
    """401: no API key, or one the server does not know."""


class NotFound(ApiError):
    """404: no such object for this API key (another tenant's is 404 too)."""


class Conflict(ApiError):
    """409: the object's state forbids it (a finished task, a wrong upload offset)."""


class PayloadTooLarge(ApiError):
    """413: the body (or the upload) is over the server's limit."""


class UnsupportedMediaType(ApiError):
    """415: the body was not sent as JSON."""


class ValidationFailed(ApiError):
    """422: a well-formed request that breaks a rule; see ``errors``."""


class Locked(ApiError):
    """423: another request is writing this upload; retry after ``Retry-After``."""


class RateLimited(ApiError):
    """429, still answered after the client's retries."""


class ServerError(ApiError):
    """5xx other than 503."""


class Unavailable(ServerError):
    """503, still answered after the client's retries (Redis unreachable, a failover)."""


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest, 401: Unauthorized, 404: NotFound, 409: Conflict, 413: PayloadTooLarge,
    415: UnsupportedMediaType, 422: ValidationFailed, 423: Locked, 429: RateLimited, 503: Unavailable,
}


def error_for(status: int, problem: dict[str, Any], headers: dict[str, str] | None = None) -> ApiError:
    """The exception for an error answer with this status and body."""
    cls = _BY_STATUS.get(status) or (ServerError if status >= 500 else ApiError)
    return cls(status, problem, headers)
