"""What one webhook attempt's answer does to its delivery and its callback.

Shared by the callbacks worker (``actors/delivery.py``) and the job worker's
first attempt (``actors/inline.py``): whichever process made the attempt, it
is logged, retried on the schedule, failed, or disables its callback the same
way, and counts in the callback's failure streak the same way.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from actors.events import Event, attempt_record, webhook_id
from callbacks import (
    AttemptResult,
    CallbackRegistry,
    RetryPolicy,
    Verdict,
    classify,
    parse_retry_after,
    status_class,
)
from hookline import metrics

#: Logs one attempt and sets the delivery state, in one step: ``(record,
#: state, when the next attempt is due or None)`` -> ``(previous state,
#: the attempt's number)``.
Record = Callable[[bytes, str, float | None], tuple[str | None, int]]


class Outcomes:
    """Settles attempts: the attempts log, the retry schedule, the callback's state."""

    def __init__(self, registry: CallbackRegistry, policy: RetryPolicy, *, disable_after: float,
                 forget: Callable[[str], None], log: logging.Logger) -> None:
        self.registry = registry
        self.policy = policy
        self.disable_after = disable_after
        #: Called with a callback id this process changed (``Endpoints.forget``).
        self.forget = forget
        self.log = log

    def settle(
        self, event: Event, endpoint: dict[str, Any], result: AttemptResult, sent_at: float,
        trigger: str, *, record: Record, number: Callable[[], int], extra: dict[str, Any],
    ) -> bool:
        """Record the attempt ``result`` and act on its answer; ``True`` if delivered.

        ``number`` says which scheduled attempt of its series this was (1
        for the first); it is asked only when a retry is due. ``extra`` is
        logged with the outcome.
        """
        task_id, wid = event.task_id, webhook_id(event.task_id)
        verdict = classify(result.status_code, result.headers)
        if getattr(result, "refused", False):
            verdict = Verdict.RETRY
        entry = attempt_record(wid, sent_at, trigger, status_code=result.status_code,
                               error=result.error, duration_ms=result.duration_ms,
                               excerpt=result.response_excerpt)
        extra.update(task_id=task_id, webhook_id=wid, status_code=result.status_code,
                     error=result.error, callback_id=event.callback_id)
        cls = status_class(result.status_code)
        cb_id = endpoint.get("id") or event.callback_id

        def record_as(state: str, retry_at: float | None = None) -> tuple[str | None, int]:
            previous, attempt = record(entry, state, retry_at)
            extra["attempt"] = attempt
            return previous, attempt

        if verdict is Verdict.DELIVERED:
            metrics.child(metrics.webhook_attempts, "delivered", cls).inc()
            previous, attempt = record_as("delivered")
            if endpoint.get("failing_since"):
                self.registry.record_success(cb_id)
                self.forget(cb_id)
            if previous != "delivered" and event.finished_at:
                metrics.webhook_delivery.observe(max(0.0, time.time() - event.finished_at))
                metrics.webhook_attempts_per_delivery.observe(attempt)
            self.log.info("webhook delivered", extra=extra)
            return True
        if verdict is Verdict.DISABLE:
            reason = "gone" if result.status_code == 410 else "receiver_request"
            if self.registry.disable(cb_id, reason):
                metrics.callbacks_disabled.labels(reason=reason).inc()
            self.forget(cb_id)
            metrics.child(metrics.webhook_attempts, "failed", cls).inc()
            record_as("disabled")
            self.log.warning("callback disabled by the receiver", extra=extra)
            return False
        delay = None
        if verdict is Verdict.RETRY and trigger == "scheduled":
            retry_after = parse_retry_after(result.headers.get("retry-after"))
            delay = self.policy.delay_for(number(), retry_after)
        if self.registry.record_failure(cb_id, self.disable_after):
            metrics.callbacks_disabled.labels(reason="failing").inc()
            self.log.warning("callback disabled: failing for too long", extra=extra)
        self.forget(cb_id)
        if delay is not None:
            metrics.child(metrics.webhook_attempts, "retry", cls).inc()
            record_as("retrying", time.time() + delay)
            self.log.info("webhook will retry", extra={**extra, "delay_s": round(delay, 2)})
            return False
        metrics.child(metrics.webhook_attempts, "failed", cls).inc()
        # A failed manual resend of a delivered webhook leaves it delivered.
        state = "delivered" if trigger == "manual" and event.delivery == "delivered" else "failed"
        previous, attempt = record_as(state)
        if state == "failed" and previous != "failed":
            metrics.webhook_attempts_per_delivery.observe(attempt)
        self.log.warning("webhook failed", extra=extra)
        return False
