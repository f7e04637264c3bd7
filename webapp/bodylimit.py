"""The body limit for every framing: ``Content-Length``, chunked, or none.

Werkzeug refuses a ``Content-Length`` over ``MAX_CONTENT_LENGTH`` before
reading, but a body without one (chunked) is only cut at the limit: reading
it stops there without an error, so an over-long body was parsed short (a
``202`` for a job whose JSON happened to end early, or a ``400``). Here such
a body is read up to one byte past the limit before any handler runs: over
it is a ``413``; within it, the handler reads the bytes as if they had come
with a ``Content-Length``.
"""
from __future__ import annotations

import io

from flask import Flask, request
from werkzeug.wsgi import get_content_length

from webapp.problems import Problem

#: Bytes read from the client at a time while counting an unframed body.
READ_SIZE = 64 * 1024


def too_large() -> Problem:
    return Problem(413, "Request Entity Too Large",
                   "The request body is larger than this server accepts.")


def _read_unframed(limit: int) -> None:
    environ = request.environ
    if get_content_length(environ) is not None or "wsgi.input_terminated" not in environ:
        return  # Werkzeug's own check, or no body at all (an empty stream)
    stream = environ["wsgi.input"]
    body = bytearray()
    try:
        while len(body) <= limit:
            chunk = stream.read(min(READ_SIZE, limit + 1 - len(body)))
            if not chunk:
                break
            body += chunk
    except Exception:  # noqa: BLE001 - whatever the server raises for a broken body
        # (gunicorn: InvalidChunkSize, NoMoreData, ... ; a socket error)
        raise Problem(400, "Bad Request",
                      "The request body could not be read: its chunked framing is broken "
                      "or it ended early.") from None
    if len(body) > limit:
        raise too_large()
    environ["wsgi.input"] = io.BytesIO(bytes(body))
    environ["CONTENT_LENGTH"] = str(len(body))


def register(app: Flask, limit: int) -> None:
    """Refuse any body over ``limit`` bytes with a 413, before a handler reads it."""
    app.before_request(lambda: _read_unframed(limit))
