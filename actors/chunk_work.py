"""What a large job's planner, its chunks and its late ending share; the ``finish_chunks`` actor.

``ChunkWork`` holds the stores, the ledger and the task's one ending.
``finish_chunks(task_id)`` ends a task whose chunks have all ended but which
is still ``STARTED``: the worker that ended its last chunk died before it
ended the task (between removing a failed job's vectors and the ending, say).
The reconciler sends it for a task whose ``ending`` has stood for
``HOOKLINE_RECONCILE_AFTER`` (docs/large-jobs.md, section 5); the ending is
once whoever calls it, so the task ends once, with one webhook.
"""
from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any

import dramatiq

from actors.events import Event
from actors.jobs import patiently
from actors.messages import FINISH_CHUNKS_ACTOR, JOB_ACTOR, delivery_message
from actors.services import Services
from hookline import metrics
from hookline.blobs import open_blob_store
from hookline.task_chunks import ChunkLedger, ChunkPlan
from hookline.task_record import FAILURE, REVOKED, STARTED, SUCCESS
from hookline.uploads import Upload, UploadStore
from hookline.vectorstore import VectorStore

log = logging.getLogger("hookline.jobs")


class ChunkWork:
    """What the planner and the chunks share: stores, the ledger, the task's ending."""

    def __init__(self, services: Services, queue: str) -> None:
        self.services = services
        self.queue = queue
        self.uploads = UploadStore(services.redis)
        self.ledger = ChunkLedger(services.redis, ended_ttl=services.config.result_ttl + 86400,
                                  event_interval=services.config.progress_event_seconds)
        self.blobs = open_blob_store(services.config.blob_url,
                                     s3_endpoint_url=services.config.s3_endpoint_url)
        self.vectors = VectorStore(services.redis)

    def plan_of(self, upload: Upload) -> ChunkPlan:
        return ChunkPlan.for_upload(upload, self.services.config.chunk_vectors)

    def end_task(self, task_id: str, status: str, *, result: dict | None = None,
                 error: str | None = None) -> bool:
        """End the task once (``STARTED`` -> ``status``), queueing its webhook in the same step."""
        store = self.services.store
        task = store.get(task_id)
        if task is None or task.finished:
            return False
        finished = time.time()
        delivery = None
        if task.callback_id:
            ended = dataclasses.replace(task, status=status, finished_at=finished, result=result,
                                        error=error)
            delivery = delivery_message(task_id, callback_id=task.callback_id,
                                        event=Event.of(ended).in_message())
        changed = patiently(store.finish, task_id, status, delivery=delivery, result=result,
                            error=error, allowed_from=(STARTED,), finished_at=finished)
        if changed:
            outcome = {SUCCESS: "success", FAILURE: "failure", REVOKED: "revoked"}[status]
            # Counted in Redis by the ending itself; the histogram is per process.
            metrics.child(metrics.task_end_to_end, JOB_ACTOR, outcome).observe(
                max(0.0, finished - task.created_at))
            log.info("task finished", extra={"task_id": task_id, "status": status, "error": error})
        return bool(changed)

    def finish_from_ledger(self, task_id: str) -> None:
        """End the task from its chunks' outcomes (called by the end that was last)."""
        ended = self.ledger.outcome(task_id)
        if ended.failed or ended.revoked:
            # A failed or cancelled job leaves nothing behind. Every chunk has
            # ended, so none can write after this; the delete comes before the
            # ending so that a FAILURE or REVOKED seen implies it.
            self.remove_vectors(task_id)
            if ended.failed:
                self.end_task(task_id, FAILURE, error=ended.reason or "a chunk failed")
            else:
                self.end_task(task_id, REVOKED, error="cancelled while running")
            return
        count = ended.total
        stats = self.ledger.stats(task_id, count)
        vectors = sum(s["n"] for s in stats)
        task = self.services.store.get(task_id)
        result: dict[str, Any] = {
            "processed_vectors": vectors,
            "dimension": task.dimension if task else None,
            "status": "indexed" if task is None or task.indexed else "processed",
            "chunks": count,
            "metadata_processed": task.metadata if task else {},
            "norms": {"norm_mean": sum(s["sum"] for s in stats) / vectors if vectors else 0.0,
                      "norm_min": min((s["min"] for s in stats), default=0.0),
                      "norm_max": max((s["max"] for s in stats), default=0.0)},
            "collection": (task.collection or None) if task else "default",
        }
        self.end_task(task_id, SUCCESS, result=result)

    def remove_vectors(self, task_id: str) -> int:
        """Delete what the task's chunks indexed (safe to run twice); the number deleted."""
        task = self.services.store.get(task_id)
        if task is None or not task.indexed:
            return 0
        collection = self.vectors.collections.get(task.tenant, task.collection)
        if collection is None:
            return 0  # dropped with its vectors
        deleted = patiently(self.vectors.delete_task, collection, task_id)
        if deleted:
            log.info("vectors of an unfinished job removed",
                     extra={"task_id": task_id, "count": deleted})
        return deleted


class FinishChunks(ChunkWork):
    """Callable registered as the ``finish_chunks`` actor."""

    __name__ = FINISH_CHUNKS_ACTOR

    def __call__(self, task_id: str) -> None:
        status, _, _ = self.ledger.run_state(task_id)
        if status != STARTED or self.ledger.ending_since(task_id) is None:
            return  # ended already, or chunks still run: their last end ends it
        log.warning("ending a task whose last chunk ended without ending it",
                    extra={"task_id": task_id})
        self.finish_from_ledger(task_id)


def declare(broker: dramatiq.Broker, services: Services, *, queue_name: str) -> None:
    """Declare ``finish_chunks`` on ``broker`` (its messages share the jobs queue)."""
    dramatiq.actor(  # type: ignore[call-overload]
        FinishChunks(services, queue_name), actor_name=FINISH_CHUNKS_ACTOR, queue_name=queue_name,
        broker=broker)
