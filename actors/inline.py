"""The job worker delivers a task's webhook itself when the receiver is healthy.

Right after a task ends, its first webhook attempt is made by the job thread
that ended it, within ``HOOKLINE_INLINE_DELIVERY_MS`` (connect and answer
together), instead of crossing a second queue and a second process. Only a
callback whose recent attempts succeeded qualifies: no failure streak in its
record, and no cool-down in this process.

Durability does not rest on the attempt: the step that ends the task leases
the delivery on the schedule (``TaskStore.finish(lease_until=...)``) instead
of queueing it. A delivered attempt is recorded as the callbacks worker
records one, ending the lease in the same step; anything else (an error, a
non-2xx answer, no answer within the budget) hands the delivery to the
callbacks queue at once (``TaskStore.hand_off``), where the usual first
attempt, with the same ``webhook-id``, starts the usual retry series. A
worker killed in between leaves the lease, which the schedule pump turns into
a queued delivery when it runs out.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any

from actors.endpoints import Endpoints
from actors.events import Event, attempt_record, signed_request, webhook_id
from actors.messages import delivery_message
from callbacks import CallbackRegistry, Deliverer, UrlGuard, Verdict, classify, status_class
from hookline import __version__, keys, metrics
from hookline.config import Config
from hookline.task_store import TaskStore

log = logging.getLogger("hookline.inline")

#: Seconds a leased delivery waits on the schedule before the pump queues it:
#: far longer than the budget, so only a worker that died (or stalled) lets
#: it run out.
LEASE_SECONDS = 10.0
#: Seconds a receiver that gave no 2xx within the budget (slow, or failing)
#: is left to the callbacks worker by this process.
COOL_DOWN_SECONDS = 60.0


class InlineDelivery:
    """First webhook attempts made by the job worker, for receivers that answer quickly."""

    def __init__(self, config: Config, client: Any, store: TaskStore) -> None:
        budget = config.inline_delivery_ms / 1000
        self.budget = budget
        self.store = store
        self.registry = CallbackRegistry(client, grace=config.secret_grace)
        self.endpoints = Endpoints(client, self.registry)
        self.deliverer = Deliverer(
            UrlGuard(config.callback_allow), connect_timeout=budget, timeout=budget,
            user_agent=f"hookline/{__version__}",
        )
        #: Callback id -> ``time.monotonic()`` until which it is left to the queue.
        self._cooling: dict[str, float] = {}
        self._lock = threading.Lock()

    def endpoint_for(self, cb_id: str, message: Any) -> dict[str, Any] | None:
        """The callback's delivery record if this process should deliver to it now, else ``None``."""
        until = self._cooling.get(cb_id)
        if until is not None:
            if time.monotonic() < until:
                metrics.child(metrics.webhook_inline, "queued").inc()
                return None
            with self._lock:
                self._cooling.pop(cb_id, None)
        endpoint = self.endpoints.get(cb_id, message)
        if (endpoint is None or endpoint["disabled"] or endpoint["failing_since"]
                or not endpoint["secrets"]):
            metrics.child(metrics.webhook_inline, "queued").inc()
            return None
        return endpoint

    def lease_until(self) -> float:
        """When a delivery leased now goes to the queue if it is neither delivered nor handed off."""
        return time.time() + LEASE_SECONDS

    def deliver(self, event: Event, endpoint: dict[str, Any]) -> bool:
        """Attempt ``event`` once within the budget; hand it to the queue unless delivered.

        Returns whether it was delivered. Never raises: a lease that could be
        neither recorded nor handed off runs out and the schedule queues it.
        """
        try:
            return self._deliver(event, endpoint)
        except Exception:
            log.exception("inline delivery broke; its lease hands it to the queue",
                          extra={"task_id": event.task_id})
            return False

    def _deliver(self, event: Event, endpoint: dict[str, Any]) -> bool:
        task_id, cb_id, wid = event.task_id, event.callback_id, webhook_id(event.task_id)
        body, headers = signed_request(event, endpoint["secrets"])
        sent_at = time.time()
        result = self.deliverer.send(endpoint["url"], body, headers)
        verdict = classify(result.status_code, result.headers)
        delivered = verdict is Verdict.DELIVERED and not getattr(result, "refused", False)
        extra = {"task_id": task_id, "webhook_id": wid, "callback_id": cb_id,
                 "status_code": result.status_code, "error": result.error,
                 "duration_ms": round(result.duration_ms, 2), "inline": True}
        cls = status_class(result.status_code)
        if not delivered:
            # Slow or failing: the next deliveries to it go straight to the
            # queue, where a slow receiver holds no job thread.
            with self._lock:
                self._cooling[cb_id] = time.monotonic() + COOL_DOWN_SECONDS
            log.warning("receiver cools down: its webhooks go to the callbacks queue for %g s",
                        COOL_DOWN_SECONDS, extra=extra)
            # The message is made only now: most deliveries never need it.
            self.store.hand_off(task_id, delivery_message(
                task_id, callback_id=cb_id, event=event.in_message()))
            metrics.child(metrics.webhook_attempts, "retry", cls).inc()
            metrics.child(metrics.webhook_inline, "handed_off").inc()
            return False
        record = attempt_record(wid, sent_at, "scheduled", status_code=result.status_code,
                                duration_ms=result.duration_ms, excerpt=result.response_excerpt)
        previous, attempt = self.store.record_attempt(
            task_id, record, "delivered", failed_index=keys.failed_deliveries(cb_id), leased=True)
        metrics.child(metrics.webhook_attempts, "delivered", cls).inc()
        metrics.child(metrics.webhook_inline, "delivered").inc()
        if previous != "delivered" and event.finished_at:
            metrics.webhook_delivery.observe(max(0.0, time.time() - event.finished_at))
            metrics.webhook_attempts_per_delivery.observe(attempt)
        log.info("webhook delivered", extra={**extra, "attempt": attempt})
        return True
