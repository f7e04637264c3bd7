"""What the API and the console both do to tasks and callbacks, written once.

The API's views and the console's forms call these, so a rule (what may be
cancelled, when a webhook may be sent again, what ``recover`` resends) has
one home. They take the caller's services and an object the caller has
already found for its tenant.
"""
from __future__ import annotations

import logging
import time

from actors.messages import delivery_message
from hookline.ids import isoformat
from hookline.task_record import Task
from webapp.services import WebServices

log = logging.getLogger("hookline.actions")

#: Most deliveries one ``recover`` call resends.
RECOVER_LIMIT = 10_000


class Refused(Exception):
    """The action does not apply to the object as it is now (the API's 409)."""


def cancel_task(svc: WebServices, task: Task) -> str:
    """Cancel ``task``: ``revoked`` (it never runs) or ``stopping`` (at its next progress point).

    Raises:
        LookupError: the task is gone (expired meanwhile).
        Refused: it has already finished.
    """
    outcome, previous = svc.store.cancel(
        task.tenant, task.task_id, delivery_message(task.task_id) if task.callback_id else None
    )
    if outcome == "missing":
        raise LookupError(task.task_id)
    if outcome == "finished":
        raise Refused(f"The task has already finished ({previous}).")
    if outcome == "revoked":
        log.info("task revoked", extra={"task_id": task.task_id, "status": "REVOKED",
                                        "previous": previous})
    else:
        log.info("task cancel requested", extra={"task_id": task.task_id, "status": previous})
    return outcome


def resend_webhook(svc: WebServices, task: Task) -> None:
    """Queue one more attempt of ``task``'s webhook (a manual resend, never a new series).

    Raises:
        Refused: the task has no callback, or has not finished.
    """
    if task.callback_id is None:
        raise Refused("This task has no callback to deliver to.")
    if not task.finished:
        raise Refused("The task has not finished; its webhook is sent when it does.")
    svc.store.write_message(delivery_message(task.task_id, "manual"))
    log.info("manual resend queued", extra={"task_id": task.task_id})


def count_failed(svc: WebServices, cb_id: str, since: float, until: float | None = None) -> int:
    """How many of ``cb_id``'s deliveries failed between ``since`` and ``until`` (Unix seconds)."""
    return failed_summary(svc, [cb_id], since, until, limit=0)[0]


def failed_summary(svc: WebServices, cb_ids: list[str], since: float, until: float | None = None,
                   limit: int = 50) -> tuple[int, list[tuple[str, str, float]]]:
    """Failed deliveries of ``cb_ids`` in the range: how many, and up to ``limit`` of each callback's."""
    return svc.store.failed_summary(cb_ids, since, until, limit)


def recover_failed(svc: WebServices, cb_id: str, since: float, until: float | None = None) -> int:
    """Resend, once each, ``cb_id``'s deliveries that failed in the range; returns how many."""
    failed = svc.store.failed_since(cb_id, since, RECOVER_LIMIT, until)
    for task_id in failed:
        svc.store.write_message(delivery_message(task_id, "manual"))
    log.info("recovery queued", extra={"callback_id": cb_id, "count": len(failed)})
    return len(failed)


def rotate_secret(svc: WebServices, tenant: str, cb_id: str) -> tuple[str, str] | None:
    """A new signing secret for the callback and when the previous one stops signing.

    ``None`` if the callback is not ``tenant``'s.
    """
    secret = svc.registry.rotate_secret(tenant, cb_id)
    if secret is None:
        return None
    log.info("callback secret rotated", extra={"callback_id": cb_id})
    return secret, isoformat(time.time() + svc.config.secret_grace) or ""
