"""A large job's ``task.progress`` webhooks: queued by its chunks, sent by the webhook worker.

A chunk whose progress or end passes the task's gate (one event per
``HOOKLINE_PROGRESS_EVENT_SECONDS``, numbered) queues the event with the
task's counts on the ``callbacks`` queue. The webhook worker sends it signed,
under its own ``webhook-id``, and logs the attempt in the task's attempts log
without touching the terminal webhook's delivery state or retry count. An
event goes only while the task runs and is not ending, and only while it is
the task's newest: a newer one makes an older one, or its retry, moot
(docs/large-jobs.md, section 7).
"""
from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any

import orjson
from dramatiq.middleware import CurrentMessage
from dramatiq.middleware.time_limit import TimeLimitExceeded

from actors.endpoints import Endpoints
from actors.events import attempt_record, webhook_id
from actors.held import held_message
from actors.messages import PROGRESS_TRIGGER, progress_message
from callbacks import (
    CallbackRegistry,
    Deliverer,
    RetryPolicy,
    Verdict,
    classify,
    parse_retry_after,
    signature_header,
    status_class,
)
from hookline import metrics
from hookline.ids import isoformat
from hookline.progress_events import ProgressEventLog
from hookline.task_chunks import ChunkLedger
from hookline.task_record import STARTED
from hookline.task_store import TaskStore

log = logging.getLogger("hookline.delivery")

EVENT_TYPE = "task.progress"
#: Seconds beyond the webhook timeout that an attempt's lease lasts (the
#: webhook actor's time limit adds as much).
LEASE_MARGIN_SECONDS = 30.0


def progress_webhook_id(task_id: str, number: int) -> str:
    """The ``webhook-id`` of the task's progress event ``number``: its own, the same on every retry."""
    return f"{webhook_id(task_id)}_p{number}"


def queue_progress_event(store: TaskStore, ledger: ChunkLedger, task_id: str, number: int) -> None:
    """Queue progress event ``number`` of ``task_id`` with the task's counts as they are now."""
    callback_id = store.callback_of(task_id)
    if not callback_id:
        return
    counts = ledger.counts(task_id)
    chunks = counts["chunks"]
    assert isinstance(chunks, dict)
    data = {"task_id": task_id, "status": STARTED, "progress": counts["progress"],
            "chunks": {name: chunks[name] for name in ("done", "failed", "total")}}
    store.write_message(progress_message(task_id, callback_id, {"n": number, "data": data}))


@dataclasses.dataclass
class ProgressDelivery:
    """One attempt of a progress event, for the ``deliver_webhook`` actor."""

    events: ProgressEventLog
    registry: CallbackRegistry
    endpoints: Endpoints
    deliverer: Deliverer
    policy: RetryPolicy
    #: The webhook timeout and the callbacks' disable period, in seconds.
    timeout: float
    disable_after: float

    def __call__(self, task_id: str, callback_id: str | None, carried: dict[str, Any] | None) -> None:
        """Attempt the event carried (or the task's pending retry); never raises.

        A progress event is informative: one that meets a failure of ours
        (Redis away, a bug) is dropped, with a log line; the next carries
        newer counts.
        """
        try:
            self._deliver(task_id, callback_id, carried)
        except (Exception, TimeLimitExceeded):
            log.exception("progress event dropped: delivery failed unexpectedly",
                          extra={"task_id": task_id})

    def _deliver(self, task_id: str, callback_id: str | None, carried: dict[str, Any] | None) -> None:
        if carried is None or not callback_id:
            carried = self.events.pending(task_id)  # a retry, due now
            if carried is None:
                return
            callback_id = carried["callback_id"]
        number, attempt = int(carried["n"]), int(carried.get("attempt", 1))
        endpoint = self.endpoints.get(callback_id, CurrentMessage.get_current_message())
        if endpoint is None or endpoint["disabled"]:
            return
        now = time.time()
        if not self.events.claim(task_id, number, now=now,
                                 lease_until=now + self.timeout + LEASE_MARGIN_SECONDS):
            log.info("progress event dropped: the task is ending or has a newer one",
                     extra={"task_id": task_id, "event": number})
            return
        wid = progress_webhook_id(task_id, number)
        body = orjson.dumps({"type": EVENT_TYPE, "timestamp": isoformat(now), "data": carried["data"]})
        timestamp = int(now)
        result = self.deliverer.send(endpoint["url"], body, {
            "content-type": "application/json", "webhook-id": wid,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature_header(endpoint["secrets"], wid, timestamp, body)})
        verdict = Verdict.RETRY if getattr(result, "refused", False) else classify(
            result.status_code, result.headers)
        record = attempt_record(wid, now, PROGRESS_TRIGGER, status_code=result.status_code,
                                error=result.error, duration_ms=result.duration_ms,
                                excerpt=result.response_excerpt)
        cls, cb_id = status_class(result.status_code), endpoint.get("id") or callback_id
        extra = {"task_id": task_id, "webhook_id": wid, "status_code": result.status_code,
                 "error": result.error, "callback_id": cb_id}
        delay = None
        if verdict is Verdict.DELIVERED:
            outcome = "delivered"
            if endpoint.get("failing_since"):
                self.registry.record_success(cb_id)
                self.endpoints.forget(cb_id)
        elif verdict is Verdict.DISABLE:
            outcome = "failed"
            reason = "gone" if result.status_code == 410 else "receiver_request"
            if self.registry.disable(cb_id, reason):
                metrics.callbacks_disabled.labels(reason=reason).inc()
            self.endpoints.forget(cb_id)
        else:
            if verdict is Verdict.RETRY:
                delay = self.policy.delay_for(attempt, parse_retry_after(
                    result.headers.get("retry-after")))
            outcome = "failed" if delay is None else "retry"
            if self.registry.record_failure(cb_id, self.disable_after):
                metrics.callbacks_disabled.labels(reason="failing").inc()
            self.endpoints.forget(cb_id)
        metrics.child(metrics.webhook_attempts, outcome, cls).inc()
        held = held_message(CurrentMessage.get_current_message())
        retry = (None if delay is None else
                 {"n": number, "data": carried["data"], "attempt": attempt + 1,
                  "callback_id": callback_id})
        self.events.record(task_id, number, record, held=(held.held_key, held.raw) if held else None,
                           retry_at=None if delay is None else time.time() + delay, retry=retry)
        if held is not None:
            held.acknowledged = True
        log.info("progress event %s", outcome, extra=extra)
