"""Registered webhook endpoints: ``Client.callbacks``."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, cast
from urllib.parse import quote

from hookline.client.models import Callback, Page, Recovery, Rotation
from hookline.client.paging import pages
from hookline.client.transport import Transport


def _path(callback_id: str, *rest: str) -> str:
    return "/".join(("/callbacks", quote(callback_id, safe=""), *rest))


def _isoformat(when: datetime | str) -> str:
    if isinstance(when, str):
        return when
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.isoformat()


class Callbacks:
    """Create, read, change, delete callbacks; rotate secrets; resend failures."""

    def __init__(self, transport: Transport) -> None:
        self._http = transport

    def create(self, url: str, description: str | None = None) -> Callback:
        """``POST /callbacks``; the answer holds the signing ``secret``, shown only here.

        Raises:
            ValidationFailed: the URL is not allowed (the URL guard) or not valid.
        """
        body: dict[str, Any] = {"url": url}
        if description is not None:
            body["description"] = description
        return cast(Callback, self._http.json("POST", "/callbacks", json=body))

    def list(self, *, limit: int | None = None, cursor: str | None = None) -> Page[Callback]:
        return cast(Page[Callback], self._http.json("GET", "/callbacks",
                                                    params={"limit": limit, "cursor": cursor}))

    def iter(self, *, page_size: int | None = None) -> Iterator[Callback]:
        return pages(lambda cursor: self.list(limit=page_size, cursor=cursor))

    def get(self, callback_id: str) -> Callback:
        """``GET /callbacks/{id}``. Raises ``NotFound``."""
        return cast(Callback, self._http.json("GET", _path(callback_id)))

    def update(self, callback_id: str, *, url: str | None = None, description: str | None = None,
               disabled: bool | None = None) -> Callback:
        """``PATCH /callbacks/{id}`` with the fields given."""
        body = {k: v for k, v in (("url", url), ("description", description), ("disabled", disabled))
                if v is not None}
        return cast(Callback, self._http.json("PATCH", _path(callback_id), json=body))

    def enable(self, callback_id: str) -> Callback:
        return self.update(callback_id, disabled=False)

    def disable(self, callback_id: str) -> Callback:
        return self.update(callback_id, disabled=True)

    def delete(self, callback_id: str) -> None:
        """``DELETE /callbacks/{id}``. Raises ``NotFound``."""
        self._http.request("DELETE", _path(callback_id))

    def rotate(self, callback_id: str) -> Rotation:
        """``POST /callbacks/{id}/rotate-secret``: the new secret (the old one signs too, for a while)."""
        return cast(Rotation, self._http.json("POST", _path(callback_id, "rotate-secret")))

    def recover(self, callback_id: str, since: datetime | str) -> Recovery:
        """``POST /callbacks/{id}/recover``: resend every delivery that failed since then.

        A naive ``datetime`` is taken as UTC. The answer holds the ``count`` queued.
        """
        return cast(Recovery, self._http.json("POST", _path(callback_id, "recover"),
                                              json={"since": _isoformat(since)}))
