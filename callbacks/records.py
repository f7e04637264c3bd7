"""The callback record in Redis: its key names and the views read from it.

Keys, under ``prefix`` (``hl:``):

* ``cb:<id>``, a hash: the record. ``secrets`` holds JSON
  ``[[secret, expires_at | null], ...]``, newest first.
* ``callbacks:<tenant>``, a sorted set of ``<created ms>:<id>`` members, all
  scored 0 so that they sort by creation, newest last.
* ``cburl:<tenant>``, a hash: URL to the id of the newest callback with it.
* ``cb:gen``, a counter that every change to a callback's record moves on in
  the same atomic step: a reader that sees it unchanged may reuse what it read.
"""
from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

ID = re.compile(r"cb_[A-Za-z0-9_-]{22}")
ORDER = re.compile(r"[0-9]{15}:cb_[A-Za-z0-9_-]{22}")


# --- Redis key names of the callback family ------------------------------------------------


def generation_key(prefix: str = "hl:") -> str:
    """The counter that every change to a callback moves on."""
    return f"{prefix}cb:gen"


def record_key(prefix: str, cb_id: str) -> str:
    """The hash that holds one callback's record."""
    return f"{prefix}cb:{cb_id}"


def tenant_index_key(prefix: str, tenant: str) -> str:
    """The sorted set of a tenant's callbacks, by creation."""
    return f"{prefix}callbacks:{tenant}"


def url_index_key(prefix: str, tenant: str) -> str:
    """The hash from a tenant's URLs to the newest callback with each."""
    return f"{prefix}cburl:{tenant}"


# --- views of a record, as HGETALL gives it ---------------------------------------------------


def iso(ts: float) -> str:
    """Unix seconds as ISO 8601 in UTC, to the millisecond (``...Z``)."""
    moment = dt.datetime.fromtimestamp(ts, tz=dt.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def text(raw: dict[bytes, bytes], name: str) -> str:
    """A field as text; empty when it is missing."""
    return raw.get(name.encode(), b"").decode()


def number(raw: dict[bytes, bytes], name: str) -> float | None:
    """A field as a number; ``None`` when it is missing or empty."""
    value = raw.get(name.encode())
    return float(value) if value else None


def public_view(cb_id: str, raw: dict[bytes, bytes]) -> dict[str, Any]:
    """What the API shows of a callback: never a secret."""
    return {
        "id": cb_id,
        "url": text(raw, "url"),
        "description": text(raw, "description"),
        "disabled": raw.get(b"disabled") == b"1",
        "disabled_reason": text(raw, "disabled_reason") or None,
        "created_at": text(raw, "created_at"),
    }


def live_secrets(raw: dict[bytes, bytes], now: float) -> list[str]:
    """The secrets that still sign at ``now``, newest first."""
    return [secret for secret, expires in json.loads(raw[b"secrets"])
            if expires is None or expires > now]
