"""Errors as RFC 9457 problem details (``application/problem+json``)."""
from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import orjson
from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from hookline.redis import UNAVAILABLE

log = logging.getLogger("hookline.web")

#: Seconds a client should wait before retrying while Redis is unreachable.
UNAVAILABLE_RETRY_AFTER = 5

_TYPES = {
    400: "bad-request", 401: "unauthorized", 404: "not-found", 405: "method-not-allowed",
    409: "conflict", 413: "payload-too-large", 415: "unsupported-media-type",
    422: "validation-error", 429: "rate-limited", 500: "internal-error",
    503: "unavailable",
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

    def response(self) -> Response:
        body: dict[str, Any] = {
            "type": f"https://hookline.dev/problems/{_TYPES.get(self.status, 'error')}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.errors:
            body["errors"] = self.errors
        # Errors of list items are keyed by their index (marshmallow), a number.
        resp = Response(orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS), self.status,
                        mimetype="application/problem+json")
        for name, value in self.headers.items():
            resp.headers[name] = value
        return resp


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

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unhandled error", extra={"method": request.method, "path": request.path})
        return Problem(500, "Internal Server Error", "An unexpected error occurred.").response()
