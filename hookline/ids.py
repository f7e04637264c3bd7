"""Identifiers and timestamps in the product's formats."""
from __future__ import annotations

import datetime as dt
import secrets
import uuid


def new_task_id() -> str:
    """A task id, in the seed's format (a UUID string)."""
    return str(uuid.uuid4())


def new_id(prefix: str) -> str:
    """An opaque id such as ``cb_3JkR...``: a prefix and 128 random bits."""
    return f"{prefix}_{secrets.token_urlsafe(16)}"


def isoformat(ts: float | None) -> str | None:
    """Unix seconds as ISO 8601 in UTC with a ``Z``, or ``None``."""
    if ts is None:
        return None
    moment = dt.datetime.fromtimestamp(ts, tz=dt.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_isoformat(value: str) -> float:
    """ISO 8601 (``Z`` or an offset; naive means UTC) as Unix seconds.

    Raises:
        ValueError: the text is not an ISO 8601 timestamp.
    """
    moment = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()
