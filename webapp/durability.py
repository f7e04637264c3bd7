"""A submit confirmed by Redis replicas before its ``202`` (SPEC §12).

With ``HOOKLINE_REDIS_MIN_REPLICAS=N`` (N >= 1) a ``202`` means that N
replicas hold the task too, so a failover cannot lose a task whose client
was told it was accepted. Replication is asynchronous, so the step comes
after the write: when the replicas do not confirm in time the answer is
``503``, and the task may or may not survive. A retry with the same
``Idempotency-Key`` then gets the original task if it did (confirmed again
first), and a new one if it did not.
"""
from __future__ import annotations

from webapp.problems import Problem
from webapp.services import WebServices

#: Seconds a client is asked to wait before retrying an unconfirmed submit.
UNCONFIRMED_RETRY_AFTER = 1


def wait_replicas(svc: WebServices, task_id: str) -> None:
    """Return once the configured replicas hold ``task_id``; at once if none are asked for.

    Raises:
        Problem: ``503`` with ``Retry-After``, the replicas did not confirm in time.
        redis.ConnectionError, redis.TimeoutError: Redis did not answer (also a ``503``).
    """
    replicas = svc.config.redis_min_replicas
    if replicas <= 0:
        return
    if svc.store.replicated(task_id, replicas, svc.config.redis_replica_timeout_ms):
        return
    raise Problem(
        503, "Service Unavailable",
        "The task was written but Redis replicas did not confirm it in time, so it may be lost. "
        "Retry with the same Idempotency-Key: you get the task if it was kept, a new one if not.",
        headers={"Retry-After": str(UNCONFIRMED_RETRY_AFTER)},
    )
