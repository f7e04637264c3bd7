"""Callback records kept per worker process while no callback has changed.

Both the webhook actor and the job actor's inline delivery read a task's
callback (URL, live secrets, failure streak) for every webhook. The queues
they take messages from read the callbacks' change counter in the same round
trip as each fetch (``fetch_with``), so a record read earlier under the same
counter is still the callback as it is, and is reused without a read.
"""
from __future__ import annotations

import time
from typing import Any

import redis
from dramatiq import MessageProxy

from actors.held import HeldMessage
from callbacks import CallbackRegistry

#: Callback records a worker process keeps for reuse.
ENDPOINTS_KEPT = 1024
#: Seconds after its fetch that a message may still reuse a kept callback
#: record; a message that waited longer (every thread busy with slow
#: receivers) reads the record afresh.
ENDPOINT_REUSE_SECONDS = 1.0
#: Seconds a record's delivery view (its live secrets parsed) is reused: a
#: rotated-out secret stops signing at most this late after its grace ends.
#: Making the view parses the secrets' JSON, a few per cent of a job worker's
#: CPU when done for every webhook.
VIEW_SECONDS = 1.0


class Endpoints:
    """Callback delivery records, reused while the change counter stands still."""

    def __init__(self, client: redis.Redis, registry: CallbackRegistry) -> None:
        self.redis = client
        self.registry = registry
        #: Callback id -> (the change counter it was read under, its record,
        #: its delivery view, when the view was made by ``time.monotonic()``).
        self._kept: dict[str, tuple[bytes, dict[bytes, bytes], dict[str, Any] | None, float]] = {}

    def get(self, cb_id: str, message: MessageProxy | None) -> dict[str, Any] | None:
        """The callback's delivery record (``registry.delivery_view``), or ``None``.

        The change counter was read with ``message``, after the message was
        written, and at most ``ENDPOINT_REUSE_SECONDS`` ago: a reused record
        is never older than the task's end, nor than a change made longer ago
        than that.
        """
        seen = None
        if (isinstance(message, HeldMessage)
                and time.monotonic() - message.fetched_at <= ENDPOINT_REUSE_SECONDS):
            seen = message.fetched_with
        kept = self._kept.get(cb_id)
        now = time.monotonic()
        if seen is not None and kept is not None and kept[0] == seen:
            if now - kept[3] <= VIEW_SECONDS:
                return kept[2]
            raw = kept[1]
        else:
            key = self.registry.delivery_key(cb_id)
            raw = self.redis.hgetall(key) if key is not None else {}  # type: ignore[assignment]
        view = self.registry.delivery_view(cb_id, raw)
        if seen is not None:
            if len(self._kept) >= ENDPOINTS_KEPT:
                self._kept.clear()
            self._kept[cb_id] = (seen, raw, view, now)
        return view

    def forget(self, cb_id: str) -> None:
        """This process changed the callback: later messages of the same fetch must not reuse it."""
        self._kept.pop(cb_id, None)
