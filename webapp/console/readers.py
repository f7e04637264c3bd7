"""The console's read models: searches, stats and queue figures, built once per app."""
from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

from flask import current_app

from actors.queues import QueueCollector
from hookline.task_search import TaskSearch
from hookline.task_stats import RecentStats, TaskStats
from webapp.services import WebServices, services

#: Seconds this process reuses the recent-outcome counts of one set of
#: tenants: however many overviews are open, each process walks each scope at
#: most this often.
STATS_CACHE_SECONDS = 4.0
#: Scopes kept at most (an operator's tenant filters, each tenant's own).
STATS_CACHE_SIZE = 256


class Readers:
    """Read-only helpers over the API's stores; no state of their own."""

    def __init__(self, svc: WebServices) -> None:
        self.search = TaskSearch(svc.store)
        self.stats = TaskStats(svc.store)
        self.queues = QueueCollector(svc.redis, heartbeat_timeout_ms=svc.config.heartbeat_timeout_ms)
        self._stats: dict[tuple[str, ...], tuple[float, RecentStats]] = {}
        self._lock = threading.Lock()

    def recent_stats(self, tenants: Sequence[str]) -> RecentStats:
        """``TaskStats.recent`` for ``tenants``, reused for ``STATS_CACHE_SECONDS``."""
        scope = tuple(tenants)
        now = time.monotonic()
        with self._lock:
            cached = self._stats.get(scope)
        if cached is not None and cached[0] > now:
            return cached[1]
        fresh = self.stats.recent(scope)
        with self._lock:
            if len(self._stats) >= STATS_CACHE_SIZE:
                self._stats.clear()
            self._stats[scope] = (now + STATS_CACHE_SECONDS, fresh)
        return fresh

    def queue_figures(self) -> dict[str, Any]:
        """What ``/metrics`` shows of the queues and workers, from the same collector.

        ``{"queues": {queue: {state: n, "oldest_age": s}}, "workers": n,
        "webhook_pending": n}``; empty when Redis does not answer.
        """
        queues: dict[str, dict[str, float]] = {}
        figures: dict[str, Any] = {"queues": queues, "workers": None, "webhook_pending": None}
        for family in self.queues.collect():
            for sample in family.samples:
                if family.name == "hookline_queue_messages":
                    queues.setdefault(sample.labels["queue"], {})[sample.labels["state"]] = sample.value
                elif family.name == "hookline_queue_oldest_age_seconds":
                    queues.setdefault(sample.labels["queue"], {})["oldest_age"] = sample.value
                elif family.name == "hookline_workers_alive":
                    figures["workers"] = sample.value
                elif family.name == "hookline_webhook_pending":
                    figures["webhook_pending"] = sample.value
        return figures


def readers() -> Readers:
    found = current_app.extensions.get("hookline_console")
    if found is None:
        found = current_app.extensions["hookline_console"] = Readers(services())
    return found  # type: ignore[no-any-return]
