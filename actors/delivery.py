"""The webhook actor: ``deliver_webhook(task_id, trigger)`` on the ``callbacks`` queue.

One call makes one signed attempt and records it; the receiver's answer
decides whether it is delivered, retried on the schedule, failed, or its
callback disabled. A first delivery sends from its message without reading
the task (docs/architecture.md, step 5).
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import CurrentMessage
from dramatiq.middleware.time_limit import TimeLimitExceeded

from actors.endpoints import Endpoints
from actors.events import Event, attempt_record, signed_request, webhook_id
from actors.held import give_back, held_message
from actors.messages import DELIVERY_ACTOR, PROGRESS_TRIGGER, delivery_message
from actors.outcomes import Outcomes
from actors.progress_events import ProgressDelivery
from actors.services import Services
from callbacks import CallbackRegistry, Deliverer, RetryPolicy, UrlGuard, status_class
from hookline import __version__, keys, metrics
from hookline.progress_events import ProgressEventLog
from hookline.redis_client import UNAVAILABLE
from hookline.task_record import Task

log = logging.getLogger("hookline.delivery")

_ENDED = frozenset({"delivered", "failed", "disabled"})

#: Seconds a delivery that met an unavailable Redis waits before going back
#: on its queue.
RETRY_PAUSE_SECONDS = 1.0
#: Seconds between looks at a large job's progress webhook in flight, which
#: its terminal webhook waits for.
PROGRESS_WAIT_SECONDS = 0.5


class WebhookDelivery:
    """Callable registered as the ``deliver_webhook`` actor."""

    __name__ = DELIVERY_ACTOR

    def __init__(self, services: Services) -> None:
        config = services.config
        self.services = services
        self.store = services.store
        self.redis = services.redis
        self.registry = CallbackRegistry(services.redis, grace=config.secret_grace)
        self.policy = RetryPolicy(
            config.webhook_retry_schedule, retry_after_cap=config.webhook_retry_after_cap
        )
        self.deliverer = Deliverer(
            UrlGuard(config.callback_allow),
            connect_timeout=min(config.webhook_connect_timeout, config.webhook_timeout),
            timeout=config.webhook_timeout,
            user_agent=f"hookline/{__version__}",
        )
        self.endpoints = Endpoints(services.redis, self.registry)
        self.outcomes = Outcomes(self.registry, self.policy,
                                 disable_after=config.webhook_disable_after,
                                 forget=self.endpoints.forget, log=log)
        self.progress_log = ProgressEventLog(services.redis)
        self.progress = ProgressDelivery(
            self.progress_log, self.registry, self.endpoints, self.deliverer, self.policy,
            timeout=config.webhook_timeout, disable_after=config.webhook_disable_after)

    def __call__(self, task_id: str, trigger: str = "scheduled", callback_id: str | None = None,
                 event: dict[str, Any] | None = None) -> None:
        if trigger == PROGRESS_TRIGGER:
            self.progress(task_id, callback_id, event)
            return
        try:
            self._deliver(task_id, trigger, callback_id, event)
        except UNAVAILABLE as exc:
            # Acknowledging the message would drop the webhook: nothing else
            # knows it is due. It goes back on the queue once Redis answers
            # (if the attempt was made, the receiver may see it twice, with
            # the same webhook-id).
            if not give_back(CurrentMessage.get_current_message()):
                raise
            log.warning("Redis unavailable; the delivery goes back on its queue",
                        extra={"task_id": task_id, "error": type(exc).__name__})
            # Not straight back: a Redis that answers the fetch but fails
            # this message would otherwise spin.
            time.sleep(RETRY_PAUSE_SECONDS)
        except (Exception, TimeLimitExceeded) as exc:
            # A bug or a hung attempt, not the receiver's answer: the delivery
            # fails visibly (in its attempts log, and listed for a manual
            # resend or recover) instead of vanishing with its message.
            log.exception("delivery failed unexpectedly", extra={"task_id": task_id})
            error = ("time limit exceeded" if isinstance(exc, TimeLimitExceeded)
                     else "internal error while delivering")
            self._fail_visibly(task_id, trigger, callback_id, error)

    def _fail_visibly(self, task_id: str, trigger: str, callback_id: str | None, error: str) -> None:
        cb_id = callback_id or self.store.callback_of(task_id)
        if not cb_id:
            return
        record = attempt_record(webhook_id(task_id), time.time(), trigger, error=error)
        self._record(task_id, record, "failed", cb_id)
        metrics.child(metrics.webhook_attempts, "failed", status_class(None)).inc()

    def _record(
        self, task_id: str, record: bytes, state: str, cb_id: str, retry_at: float | None = None
    ) -> tuple[str | None, int]:
        """Log an attempt and set the delivery state, acknowledging the message in the same step."""
        held = held_message(CurrentMessage.get_current_message())
        previous, attempt = self.store.record_attempt(
            task_id, record, state, failed_index=keys.failed_deliveries(cb_id),
            held=(held.held_key, held.raw) if held else None, retry_at=retry_at)
        if held is not None:
            held.acknowledged = True
        return previous, attempt

    def _deliver(self, task_id: str, trigger: str, callback_id: str | None,
                 carried: dict[str, Any] | None) -> None:
        if carried is not None and callback_id and trigger == "scheduled":
            event = Event.from_message(task_id, callback_id, carried)
            endpoint = self._endpoint(callback_id)
        else:
            task, endpoint = self._read(task_id, callback_id)
            if task is None or not task.finished or task.callback_id is None:
                return
            if trigger == "scheduled" and task.delivery in _ENDED:
                log.info("delivery already ended",
                         extra={"task_id": task_id, "outcome": task.delivery})
                return
            event = Event.of(task)
        if trigger == "scheduled" and "chunks" in event.data and self._progress_in_flight(task_id):
            return
        if endpoint is None or endpoint["disabled"]:
            self.store.set_delivery(task_id, "disabled")
            log.info("callback disabled or deleted; not delivered",
                     extra={"task_id": task_id, "callback_id": event.callback_id})
            return
        self._attempt(event, endpoint, trigger)

    def _progress_in_flight(self, task_id: str) -> bool:
        """Whether a progress webhook of the task is in flight; if so, this one waits for it.

        The terminal event must reach the receiver last. Its attempt comes
        back through the schedule once the progress attempt is logged, or
        its lease has run out (a worker that died mid-attempt).
        """
        busy_until, now = self.progress_log.busy_until(task_id), time.time()
        if busy_until <= now:
            return False
        self.services.schedule.add("hook", task_id, min(busy_until, now + PROGRESS_WAIT_SECONDS))
        log.info("webhook waits for a progress webhook in flight", extra={"task_id": task_id})
        return True

    def _endpoint(self, cb_id: str) -> dict[str, Any] | None:
        return self.endpoints.get(cb_id, CurrentMessage.get_current_message())

    def _read(self, task_id: str, callback_id: str | None) -> tuple[Task | None, dict[str, Any] | None]:
        """The task and its callback's delivery record, in one round trip when the message names both."""
        cb_key = self.registry.delivery_key(callback_id) if callback_id else None
        if cb_key is not None:
            task, raw_cb = self.store.get_with_hash(task_id, cb_key)
            if task is not None and task.callback_id == callback_id:
                return task, self.registry.delivery_view(callback_id, raw_cb)
        else:
            task = self.store.get(task_id)
        if task is None or task.callback_id is None:
            return task, None
        return task, self.registry.get_for_delivery(task.callback_id)

    def _attempt(self, event: Event, endpoint: dict[str, Any], trigger: str) -> None:
        task_id = event.task_id
        body, headers = signed_request(event, endpoint["secrets"])
        sent_at = time.time()
        result = self.deliverer.send(endpoint["url"], body, headers)
        cb_id = endpoint.get("id") or event.callback_id

        def record(entry: bytes, state: str, retry_at: float | None) -> tuple[str | None, int]:
            return self._record(task_id, entry, state, cb_id, retry_at)

        self.outcomes.settle(event, endpoint, result, sent_at, trigger, record=record,
                             number=lambda: self._scheduled_number(task_id), extra={})

    def _scheduled_number(self, task_id: str) -> int:
        """Which scheduled attempt of its series this one is (1 for the first)."""
        records = self.store.deliveries(task_id)
        return sum(1 for r in records if r.get("trigger") == "scheduled") + 1

def make_due_handler(services: Services) -> Callable[[str], None]:
    """What the upkeep pump calls when a webhook retry comes due."""

    def due(task_id: str) -> None:
        services.store.write_message(delivery_message(task_id, "scheduled"))

    return due


def declare(broker: RedisBroker, services: Services, *, queue_name: str) -> None:
    dramatiq.actor(  # type: ignore[call-overload]
        WebhookDelivery(services),
        actor_name=DELIVERY_ACTOR,
        queue_name=queue_name,
        broker=broker,
        time_limit=int((services.config.webhook_timeout + 30) * 1000),
    )
