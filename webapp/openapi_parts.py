"""Pieces every part of the OpenAPI document uses: problem answers and references."""
from __future__ import annotations

from typing import Any


def problem_ref() -> dict[str, Any]:
    return {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


def errors(*codes: int) -> dict[str, Any]:
    text = {400: "Malformed request (or a body whose framing is broken)",
            401: "Missing or invalid API key", 404: "Not found", 409: "Conflict",
            411: "Content-Length missing", 412: "Tus-Resumable missing or not 1.0.0",
            413: "Body over its limit (whatever its framing)", 415: "Not JSON",
            422: "Invalid input", 423: "Another request writes it", 429: "Rate limited",
            503: "Redis unavailable"}
    return {str(c): {"description": text[c], "content": problem_ref()} for c in codes}


def json_ref(ref: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}


# Any request may carry a body, so any may be refused for it (400, 413)
# before its handler runs.
COMMON = (400, 401, 413, 429, 503)


#: ``index`` of a task's body, inline or from an upload.
INDEX = {"type": "boolean", "default": True, "description": (
    "false: the job's vectors are validated, normalised and summarised as usual, and kept in "
    "no collection; its result says \"status\": \"processed\" (not \"indexed\") and "
    "\"collection\": null. Such a job names no collection and no ids (422).")}
