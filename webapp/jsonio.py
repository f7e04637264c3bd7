"""JSON in and out, with orjson (several times faster than the stdlib here)."""
from __future__ import annotations

import json
import math
from typing import Any

import orjson
from flask import Response, request
from marshmallow import Schema, ValidationError

from webapp.problems import Problem, unprocessable


def reply(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    resp = Response(orjson.dumps(body), status, mimetype="application/json")
    for name, value in (headers or {}).items():
        resp.headers[name] = value
    return resp


#: orjson encodes at most this many nested arrays and objects (it refuses 255).
MAX_DEPTH = 254
#: Integers orjson reads and writes as integers; beyond them it uses floats.
_INT_RANGE = range(-(2**63), 2**64)


class BodyError(ValueError):
    """The bytes are not JSON that this API can read and write back."""


def _nonfinite(token: str) -> float:
    return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}[token]


def _integer(text: str) -> int | float:
    # As orjson does: an integer past 64 bits becomes a float (inf if huge),
    # so both parsers give the same value and it can be written again.
    value = int(text) if len(text) <= 21 else None
    if value is not None and value in _INT_RANGE:
        return value
    return float(text)


def decode(raw: bytes) -> Any:
    """Parse a request body into values that ``orjson.dumps`` can always write again.

    orjson reads standard JSON. Python's parser reads what orjson refuses but
    clients send (``NaN``, ``Infinity``, ``1e400``, integers of any size), so
    that validation can name the field at fault; its result is then checked
    the way orjson would have: no lone surrogate, no nesting over
    ``MAX_DEPTH``.

    Raises:
        BodyError: not JSON, or JSON whose strings or nesting cannot be
            written again.
    """
    try:
        value = orjson.loads(raw)
        checked = raw.count(b"[") + raw.count(b"{") <= MAX_DEPTH  # cannot nest deeper
    except orjson.JSONDecodeError:
        try:
            value = json.loads(raw, parse_constant=_nonfinite, parse_int=_integer)
        except (ValueError, RecursionError):
            raise BodyError("The request body is not valid JSON.") from None
        checked = False
    if not checked:
        try:
            orjson.dumps(value)
        except orjson.JSONEncodeError:
            raise BodyError(
                "The request body holds a lone UTF-16 surrogate or nests deeper than "
                f"{MAX_DEPTH} levels."
            ) from None
    return value


def json_body(*, required: bool = True) -> Any:
    """The request's JSON body.

    Raises:
        Problem: 415 for a non-JSON content type, 400 for an empty or
            malformed body (413 comes from the body limit before this).
    """
    mimetype = request.mimetype or ""
    raw = request.get_data(cache=True)
    if not raw and not required:
        return {}
    if not (mimetype == "application/json" or mimetype.endswith("+json")):
        raise Problem(
            415, "Unsupported Media Type", "Send the body as JSON with Content-Type: application/json."
        )
    if not raw.strip():
        raise Problem(400, "Bad Request", "The request body is empty; send a JSON object.")
    try:
        return decode(raw)
    except BodyError as exc:
        raise Problem(400, "Bad Request", str(exc)) from None


def load(schema: Schema, data: object) -> dict[str, Any]:
    """``data`` (a decoded body or query) loaded by ``schema``.

    Raises:
        Problem: 422 for anything but a JSON object, or one that breaks a rule.
    """
    if not isinstance(data, dict):
        raise unprocessable("The body must be a JSON object.",
                            errors={"_schema": ["Must be a JSON object."]})
    try:
        return schema.load(data)  # type: ignore[no-any-return]
    except ValidationError as exc:
        raise unprocessable("The request is not valid; see errors.",
                            errors=exc.normalized_messages()) from None
