"""Opaque page cursors for listing a tenant's tasks."""
from __future__ import annotations

import base64
import math
import re

#: What a task id looks like in a cursor (``new_task_id``: a UUID string).
_CURSOR_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def encode_cursor(score: float, member: str) -> str:
    return base64.urlsafe_b64encode(f"{score!r}|{member}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str]:
    """The ``(score, task id)`` a cursor of ``encode_cursor`` holds.

    Raises:
        ValueError: a cursor this store did not make: not base64 of
            ``score|id``, a score that is not a finite number (Redis refuses
            ``nan``), or an id that is not a task id.
    """
    padded = cursor + "=" * (-len(cursor) % 4)
    try:
        text, member = base64.urlsafe_b64decode(padded.encode()).decode().split("|", 1)
        score = float(text)
    except (ValueError, UnicodeDecodeError, TypeError) as exc:
        raise ValueError("not a cursor from this API") from exc
    if not math.isfinite(score) or not _CURSOR_ID.fullmatch(member):
        raise ValueError("not a cursor from this API")
    return score, member
