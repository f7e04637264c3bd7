"""The job worker delivers a task's webhook itself when the receiver is healthy.

Right after a task ends, its first webhook attempt is made by the job thread
that ended it, within ``HOOKLINE_INLINE_DELIVERY_MS`` (connect and answer
together), instead of crossing a second queue and a second process. Only a
callback whose recent attempts succeeded qualifies: no failure streak in its
record, and no cool-down in this process.

Durability does not rest on the attempt: the step that ends the task leases
the delivery on the schedule (``TaskStore.finish(lease_until=...)``) instead
of queueing it. The attempt is the first of the delivery's series and is
recorded as the callbacks worker records one (``actors.outcomes``), ending
the lease in the same step: delivered; or retried on the schedule, failed or
its callback disabled, by the receiver's answer. An attempt the budget cut
short is recorded as attempt 1 too (its error says so), and the second
attempt, with the same ``webhook-id`` and the full timeout, goes on the
callbacks queue in that step: a receiver that answers within the timeout,
only not within the budget, is not failing. Either way the series keeps its
k + 1 attempts and every one is in the log. A worker killed in between leaves
the lease, which the schedule pump turns into a queued delivery when it runs
out.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any

from actors.endpoints import Endpoints
from actors.events import Event, attempt_record, signed_request, webhook_id
from actors.messages import delivery_message
from actors.outcomes import Outcomes
from callbacks import CallbackRegistry, Deliverer, RetryPolicy, UrlGuard, status_class
from hookline import __version__, keys, metrics
from hookline.config import Config
from hookline.task_store import TaskStore

log = logging.getLogger("hookline.inline")

#: Seconds beyond the budget a leased delivery waits on the schedule before
#: the pump queues it: only a worker that died (or stalled) lets it run out.
LEASE_SECONDS = 10.0
#: Seconds a receiver that gave no 2xx within the budget (slow, or failing)
#: is left to the callbacks worker by this process.
COOL_DOWN_SECONDS = 60.0
#: How the transport's error for an attempt out of time begins (``"timeout
#: after 0.25s"``, ``"connect timeout after 0.25s"``).
_CUT_SHORT = ("timeout", "connect timeout")


class InlineDelivery:
    """First webhook attempts made by the job worker, for receivers that answer quickly."""

    def __init__(self, config: Config, client: Any, store: TaskStore) -> None:
        budget = min(config.inline_delivery_ms / 1000, config.webhook_timeout)
        self.budget = budget
        #: Whether running out of the budget leaves the receiver time it has
        #: under the timeout: not when the budget is the whole timeout.
        self.cuts_short = budget < config.webhook_timeout
        self.store = store
        self.registry = CallbackRegistry(client, grace=config.secret_grace)
        self.endpoints = Endpoints(client, self.registry)
        self.outcomes = Outcomes(
            self.registry,
            RetryPolicy(config.webhook_retry_schedule,
                        retry_after_cap=config.webhook_retry_after_cap),
            disable_after=config.webhook_disable_after, forget=self.endpoints.forget, log=log)
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
        """When a delivery leased now goes to the queue if its attempt is not recorded."""
        return time.time() + self.budget + LEASE_SECONDS

    def deliver(self, event: Event, endpoint: dict[str, Any]) -> bool:
        """Attempt ``event`` once within the budget, as the first attempt of its series.

        Returns whether it was delivered. Never raises: a lease whose attempt
        could not be recorded runs out and the schedule queues the delivery.
        """
        try:
            return self._deliver(event, endpoint)
        except Exception:
            log.exception("inline delivery broke; its lease hands it to the queue",
                          extra={"task_id": event.task_id})
            return False

    def _deliver(self, event: Event, endpoint: dict[str, Any]) -> bool:
        task_id, cb_id = event.task_id, event.callback_id
        body, headers = signed_request(event, endpoint["secrets"])
        sent_at = time.time()
        result = self.deliverer.send(endpoint["url"], body, headers)
        extra: dict[str, Any] = {"inline": True, "duration_ms": round(result.duration_ms, 2)}
        then = None
        if (self.cuts_short and result.status_code is None
                and (result.error or "").startswith(_CUT_SHORT)):
            # No answer within the budget: the queue's attempt waits longer.
            then = delivery_message(task_id, callback_id=cb_id, event=event.in_message())

        def record(entry: bytes, state: str, retry_at: float | None) -> tuple[str | None, int]:
            return self.store.record_attempt(
                task_id, entry, state, failed_index=keys.failed_deliveries(cb_id), leased=True,
                retry_at=retry_at, then=(then.list_key, then.data) if then else None)

        if then is not None:
            self._cool_down(cb_id, extra)
            entry = attempt_record(webhook_id(task_id), sent_at, "scheduled", error=result.error,
                                   duration_ms=result.duration_ms)
            _, extra["attempt"] = record(entry, "retrying", None)
            metrics.child(metrics.webhook_attempts, "retry", status_class(None)).inc()
            metrics.child(metrics.webhook_inline, "handed_off").inc()
            log.info("no answer within the budget; the next attempt is queued", extra={
                **extra, "task_id": task_id, "callback_id": cb_id, "error": result.error})
            return False
        delivered = self.outcomes.settle(event, endpoint, result, sent_at, "scheduled",
                                         record=record, number=lambda: 1, extra=extra)
        if delivered:
            metrics.child(metrics.webhook_inline, "delivered").inc()
        else:
            self._cool_down(cb_id, extra)
            metrics.child(metrics.webhook_inline, "handed_off").inc()
        return delivered

    def _cool_down(self, cb_id: str, extra: dict[str, Any]) -> None:
        """Slow or failing: its next deliveries go straight to the queue, where it holds no job thread."""
        with self._lock:
            self._cooling[cb_id] = time.monotonic() + COOL_DOWN_SECONDS
        log.warning("receiver cools down: its webhooks go to the callbacks queue for %g s",
                    COOL_DOWN_SECONDS, extra={**extra, "callback_id": cb_id})
