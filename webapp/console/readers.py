"""The console's read models: searches, stats and queue figures, built once per app."""
from __future__ import annotations

from typing import Any

from flask import current_app

from actors.queues import QueueCollector
from hookline.task_search import TaskSearch
from hookline.task_stats import TaskStats
from webapp.services import WebServices, services


class Readers:
    """Read-only helpers over the API's stores; no state of their own."""

    def __init__(self, svc: WebServices) -> None:
        self.search = TaskSearch(svc.store)
        self.stats = TaskStats(svc.store)
        self.queues = QueueCollector(svc.redis, heartbeat_timeout_ms=svc.config.heartbeat_timeout_ms)

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
