"""Opaque page cursors for listing a tenant's tasks."""
from __future__ import annotations

import base64


def encode_cursor(score: float, member: str) -> str:
    return base64.urlsafe_b64encode(f"{score!r}|{member}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str]:
    """Raises ValueError for a cursor this store did not make."""
    padded = cursor + "=" * (-len(cursor) % 4)
    try:
        score, member = base64.urlsafe_b64decode(padded.encode()).decode().split("|", 1)
        return float(score), member
    except (ValueError, UnicodeDecodeError, TypeError) as exc:
        raise ValueError("not a cursor from this API") from exc
