"""Which registered callback a submitted task names, with a short per-process cache."""
from __future__ import annotations

import time
from typing import Any

from callbacks import CallbackRegistry
from webapp.problems import not_found, unprocessable

#: Seconds a resolved callback is reused by this process before Redis is asked
#: again (a deleted or changed callback is seen within this time).
CALLBACK_CACHE_SECONDS = 2.0
#: Resolved callbacks kept per process before the cache starts afresh.
CALLBACK_CACHE_ENTRIES = 10_000


class CallbackLookup:
    """Resolves a task's ``callback_id`` or ``callback_url`` to ``(id, url)``."""

    def __init__(self, registry: CallbackRegistry) -> None:
        self.registry = registry
        self._cache: dict[tuple[str, str, str], tuple[float, tuple[str, str]]] = {}

    def resolve(self, owner: str, data: dict[str, Any]) -> tuple[str, str] | None:
        """The callback the submitted ``data`` names, or ``None`` if it names none.

        Raises:
            Problem: 422 when both or an unknown callback are named.
        """
        callback_id, callback_url = data.get("callback_id"), data.get("callback_url")
        if not callback_id and not callback_url:
            return None
        cache_key = (owner, callback_id or "", callback_url or "")
        cached = self._cache.get(cache_key)
        now = time.monotonic()
        if cached is not None and cached[0] > now:
            return cached[1]
        found = self._lookup(owner, callback_id, callback_url)
        if len(self._cache) > CALLBACK_CACHE_ENTRIES:
            self._cache.clear()
        self._cache[cache_key] = (now + CALLBACK_CACHE_SECONDS, found)
        return found

    def _lookup(self, owner: str, callback_id: str | None, callback_url: str | None) -> tuple[str, str]:
        if callback_id and callback_url:
            raise unprocessable("Send callback_id or callback_url, not both.",
                                errors={"callback_id": ["Send callback_id or callback_url, not both."]})
        if callback_id:
            record = self.registry.get(owner, callback_id)
            if record is None:
                raise unprocessable("No callback with that id exists.",
                                    errors={"callback_id": ["No callback with that id exists for this API key."]})
            return record["id"], record["url"]
        assert callback_url
        found = self.registry.find_by_url(owner, callback_url)
        if found is None:
            message = ("This URL is not a registered callback. Register it first with "
                       "POST /callbacks {\"url\": ...} and use the URL or the returned id.")
            raise unprocessable(message, errors={"callback_url": [message]})
        record = self.registry.get(owner, found)
        if record is None:
            raise not_found("callback")
        return record["id"], record["url"]
