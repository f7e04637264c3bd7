"""Errors as RFC 9457 problem details (``application/problem+json``)."""
from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import orjson
from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from hookline.redis_client import UNAVAILABLE
from hookline.task_record import RecordError

log = logging.getLogger("hookline.web")

#: Seconds a client should wait before retrying while Redis is unreachable.
UNAVAILABLE_RETRY_AFTER = 5

_TYPES = {
    400: "bad-request", 401: "unauthorized", 403: "forbidden",
    404: "not-found", 405: "method-not-allowed",
    409: "conflict", 411: "length-required", 412: "precondition-failed",
    413: "payload-too-large", 414: "uri-too-long",
    415: "unsupported-media-type", 417: "expectation-failed", 422: "validation-error", 423: "locked",
    429: "rate-limited", 431: "header-fields-too-large", 500: "internal-error",
    501: "not-implemented", 503: "unavailable",
}


class Problem(Exception):
    """An error answer; raise it anywhere in a request."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        *,
        errors: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail or title
        self.errors = errors
        self.headers = dict(headers or {})

    def body(self) -> bytes:
        """The problem document, as JSON bytes."""
        body: dict[str, Any] = {
            "type": f"https://hookline.dev/problems/{_TYPES.get(self.status, 'error')}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.errors:
            body["errors"] = self.errors
        # Errors of list items are keyed by their index (marshmallow), a number.
        return orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS)

    def response(self) -> Response:
        resp = Response(self.body(), self.status, mimetype="application/problem+json")
        for name, value in self.headers.items():
            resp.headers[name] = value
        return resp


def unprocessable(detail: str, errors: Mapping[str, Any] | None = None) -> Problem:
    """A ``422``: the request is well-formed but its content is not acceptable."""
    return Problem(422, "Unprocessable Content", detail, errors=errors)


def not_found(what: str = "task") -> Problem:
    return Problem(404, "Not Found", f"No {what} with that id exists for this API key.")


def register(app: Flask) -> None:
    @app.errorhandler(Problem)
    def _problem(exc: Problem) -> Response:
        return exc.response()

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Response:
        status = exc.code or 500
        detail = exc.description or exc.name
        if status == 413:
            detail = "The request body is larger than this server accepts."
        if status == 405:
            detail = f"{request.method} is not allowed on this resource."
        headers = {}
        if status == 405 and exc.get_response().headers.get("Allow"):
            headers["Allow"] = exc.get_response().headers["Allow"]
        return Problem(status, exc.name, detail, headers=headers).response()

    def _unavailable(exc: Exception) -> Response:
        log.warning("Redis unavailable: %s", type(exc).__name__)
        return Problem(
            503,
            "Service Unavailable",
            "The task store is unreachable; nothing was changed. Retry later.",
            headers={"Retry-After": str(UNAVAILABLE_RETRY_AFTER)},
        ).response()

    for error_class in UNAVAILABLE:
        app.register_error_handler(error_class, _unavailable)

    @app.errorhandler(RecordError)
    def _unreadable(exc: RecordError) -> Response:
        # Expected enough to need no traceback: a record edited by hand, or
        # written by a newer version during an upgrade.
        log.error("task record cannot be read", extra={"task_id": exc.task_id, "error": exc.reason})
        return Problem(500, "Internal Server Error",
                       "The task's stored record cannot be read; nothing was changed.").response()

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unhandled error", extra={"method": request.method, "path": request.path})
        return Problem(500, "Internal Server Error", "An unexpected error occurred.").response()
