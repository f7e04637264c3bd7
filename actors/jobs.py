"""The job actor: ``process_vectors(task_id)`` on the ``jobs`` queue.

It is safe to run twice. ``TaskStore.start`` claims the task atomically, so a
message for a task that has ended (or that a live worker is running) is
acknowledged and dropped; the result is written with ``finish``, which
succeeds once per task. Transient failures (Redis, timeouts) are retried with
exponential backoff and jitter through the schedule; a payload that cannot be
processed ends in ``FAILURE`` at once.
"""
from __future__ import annotations

import dataclasses
import logging
import random
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import orjson
from dramatiq.middleware import CurrentMessage
from dramatiq.middleware.time_limit import TimeLimitExceeded

from actors.events import Event
from actors.held import give_back, held_message
from actors.inline import InlineDelivery
from actors.messages import JOB_ACTOR, JOBS_QUEUE, delivery_message
from actors.services import Services
from actors.vectors import Cancelled, InvalidJob, load, normalise, stored_vectors
from hookline import metrics
from hookline.memory import return_large_buffers
from hookline.redis_client import UNAVAILABLE
from hookline.task_record import FAILURE, REVOKED, STARTED, SUCCESS, RecordError, Task
from hookline.task_runs import VectorsRefused
from hookline.vector_collections import CollectionError, KnownCollections
from hookline.vectorstore import JobWrite, VectorStore

log = logging.getLogger("hookline.jobs")

#: Backoff for transient failures: base and cap in seconds (jitter is +-50 %).
RETRY_BASE_SECONDS = 1.0
RETRY_CAP_SECONDS = 60.0
#: Seconds a job waits for an unreachable Redis before giving its message up.
REDIS_WAIT_SECONDS = 60.0

T = TypeVar("T")


def patiently(call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call ``call``, waiting out a Redis outage of up to ``REDIS_WAIT_SECONDS``.

    A message whose claim or result cannot be written would otherwise stay
    claimed by this worker until it restarts.
    """
    deadline = time.monotonic() + REDIS_WAIT_SECONDS
    delay = 0.05
    while True:
        try:
            return call(*args, **kwargs)
        except UNAVAILABLE:
            if time.monotonic() + delay >= deadline:
                raise
            time.sleep(delay)
            delay = min(2.0, delay * 2)


def retry_delay(attempt: int, rng: random.Random | None = None) -> float:
    """Seconds before run ``attempt + 1`` after ``attempt`` runs failed."""
    base = min(RETRY_CAP_SECONDS, RETRY_BASE_SECONDS * 2 ** max(0, attempt - 1))
    return base * (rng or random).uniform(0.5, 1.5)


class VectorJob:
    """Callable registered as the ``process_vectors`` actor."""

    __name__ = JOB_ACTOR

    def __init__(self, services: Services, owner: str) -> None:
        self.services = services
        self.store = services.store
        self.owner = owner
        self.config = services.config
        # A job whose vectors are in an upload runs as chunks. Imported here:
        # actors.chunk_job uses this module's retry helpers.
        from actors.chunk_job import ChunkPlanner

        self.chunks = ChunkPlanner(services, JOBS_QUEUE)
        self.vectors = VectorStore(services.redis)
        self.collections = KnownCollections(self.vectors.collections)
        # Each job's payload and vectors are megabytes, freed when it ends.
        return_large_buffers()
        self.inline = (InlineDelivery(services.config, services.redis, services.store)
                       if services.config.inline_delivery_ms > 0 else None)

    def __call__(self, task_id: str) -> None:
        try:
            self._claim_and_run(task_id)
        except UNAVAILABLE as exc:
            # Redis stayed away longer than a job waits for it. Failing the
            # message would leave a task this run had claimed STARTED under a
            # live worker, which nothing ends: the message goes back on its
            # queue once Redis answers, and whichever worker takes it claims
            # the run again (the claim is the message's id).
            if not give_back(CurrentMessage.get_current_message()):
                raise
            log.warning("Redis unavailable; the job goes back on its queue",
                        extra={"task_id": task_id, "error": type(exc).__name__})

    def _claim_and_run(self, task_id: str) -> None:
        started = time.time()
        message = CurrentMessage.get_current_message()
        cutoff = int(started * 1000) - self.config.heartbeat_timeout_ms
        # The claim names this message: asked again with it, the claim is this
        # run's, even when Redis lost the answer to the first ask.
        claim = message.message_id if message is not None else uuid.uuid4().hex
        try:
            outcome, task, payload = patiently(self.store.start, task_id, self.owner, cutoff, claim)
        except RecordError as exc:
            # Claimed, but the record cannot be read (edited by hand): the
            # task fails visibly instead of its message coming back for ever.
            log.warning("task failed: its record cannot be read",
                        extra={"task_id": task_id, "error": exc.reason})
            self._end(None, task_id, FAILURE, started, error="the task record cannot be read")
            return
        if outcome == "foreign":
            # A newer record format, met during an upgrade: left unclaimed;
            # the reconciler sends it again, and a newer worker runs it.
            log.warning("message dropped: the task's record format is newer than this worker's",
                        extra={"task_id": task_id})
            return
        if outcome != "run":
            log.info("message dropped: task is %s", outcome, extra={"task_id": task_id})
            return
        if message is not None:
            wait = max(0.0, started - message.message_timestamp / 1000)
            metrics.child(metrics.task_queue_wait, JOB_ACTOR).observe(wait)
        log.info("task started", extra={"task_id": task_id, "status": STARTED})
        running = metrics.child(metrics.tasks_running, JOB_ACTOR)
        running.inc()
        try:
            self._run(task_id, task, payload, started)
        finally:
            running.dec()

    def _run(self, task_id: str, task: Task | None, payload: bytes | None, started: float) -> None:
        if payload is None and task is not None and self.chunks.plan(task_id):
            return  # fanned out: the chunk that ends last ends the task
        try:
            if task is None:
                raise InvalidJob("the task record is gone")
            if payload is None:
                raise InvalidJob("the task's payload is gone (already processed?)")
            vectors = load(payload, task.total, task.dimension)
            normalised, stats = normalise(vectors, lambda done: self._progress(task_id, done))
            vectors_of = stored_vectors(vectors, normalised)
            write = self._vectors_for(task, task_id, vectors_of) if task.indexed else None
        except Cancelled:
            self._end(task, task_id, REVOKED, started, error="cancelled while running")
        except InvalidJob as exc:
            self._end(task, task_id, FAILURE, started, error=str(exc))
        except TimeLimitExceeded:
            limit = self.config.job_time_limit
            self._end(task, task_id, FAILURE, started, error=f"time limit of {limit} s exceeded")
        except UNAVAILABLE as exc:
            self._retry(task, task_id, started, f"transient error: {type(exc).__name__}")
        except Exception:
            # A bug, not bad input: end the task visibly instead of leaving it
            # STARTED for ever (a live owner's task is never taken over).
            log.exception("job failed unexpectedly", extra={"task_id": task_id})
            self._end(task, task_id, FAILURE, started, error="internal error while processing")
        else:
            assert task is not None
            result = {
                "processed_vectors": stats["processed_vectors"],
                "dimension": stats["dimension"],
                "status": "indexed" if task.indexed else "processed",
                "metadata_processed": task.metadata,
                "norms": {k: stats[k] for k in ("norm_mean", "norm_min", "norm_max")},
                "collection": task.collection or None,
            }
            self._succeed(task, task_id, started, result, write, vectors_of)

    def _succeed(self, task: Task, task_id: str, started: float, result: dict,
                 write: JobWrite | None, vectors_of: Any) -> None:
        """End the task with its vectors, which go in with that step: SUCCESS implies them."""
        try:
            self._end(task, task_id, SUCCESS, started, result=result, done=task.total,
                      vectors=write)
            return
        except VectorsRefused:
            # The collection was deleted and made again since this worker read
            # it: nothing was written. Encoded again for the one there now,
            # unless that one takes another dimension.
            self.collections.forget(task.tenant, task.collection)
        try:
            self._end(task, task_id, SUCCESS, started, result=result, done=task.total,
                      vectors=self._vectors_for(task, task_id, vectors_of))
        except (InvalidJob, VectorsRefused):
            self._end(task, task_id, FAILURE, started, error=(
                f"collection {task.collection!r} no longer takes vectors of dimension "
                f"{task.dimension}"))

    def _vectors_for(self, task: Task, task_id: str, vectors_of: Any) -> JobWrite:
        """The job's vectors encoded for its collection, which is created if missing.

        Raises:
            InvalidJob: the collection has another dimension, or the ids do not fit.
        """
        try:
            collection = self.collections.ensure(task.tenant, task.collection, task.dimension)
        except CollectionError as exc:
            raise InvalidJob(str(exc)) from None
        ids = self.vectors.job_ids(task_id) if task.job_ids is None else (
            orjson.loads(task.job_ids) if task.job_ids else None)
        if ids is not None and len(ids) != task.total:
            raise InvalidJob(f"the job has {len(ids)} ids for {task.total} vectors")
        return self.vectors.prepare(collection, task_id, vectors_of(collection.metric), ids)

    def _progress(self, task_id: str, done: int) -> None:
        if self.store.progress(task_id, done):
            raise Cancelled()

    def _end(
        self,
        task: Task | None,
        task_id: str,
        status: str,
        started: float,
        *,
        result: dict | None = None,
        error: str | None = None,
        done: int | None = None,
        vectors: JobWrite | None = None,
    ) -> None:
        outcome = {SUCCESS: "success", FAILURE: "failure", REVOKED: "revoked"}[status]
        finished = time.time()
        delivery = event = endpoint = None
        message = CurrentMessage.get_current_message()
        if task is not None and task.callback_id:
            # The webhook worker sends this event without reading the task again.
            ended = dataclasses.replace(task, status=status, finished_at=finished, result=result,
                                        error=error, done=task.done if done is None else done)
            event = Event.of(ended)
            if self.inline is not None:
                endpoint = self.inline.endpoint_for(task.callback_id, message)
            if endpoint is None:
                delivery = delivery_message(task_id, callback_id=task.callback_id,
                                            event=event.in_message())
        held = held_message(message)
        changed = patiently(
            self.store.finish,
            task_id,
            status,
            delivery=delivery,
            held=(held.held_key, held.raw) if held else None,
            result=result,
            error=error,
            fields={"done": done} if done is not None else None,
            allowed_from=(STARTED,),
            vectors=vectors,
            finished_at=finished,
            # Delivered here, right after the end is written: leased, not queued.
            lease_until=self.inline.lease_until() if self.inline and endpoint else None,
        )
        if held is not None:
            held.acknowledged = True
        now = time.time()
        metrics.child(metrics.task_run, JOB_ACTOR, outcome).observe(now - started)
        if not changed:
            log.info("result discarded: task already ended", extra={"task_id": task_id})
            return
        if task is not None:
            metrics.child(metrics.task_end_to_end, JOB_ACTOR, outcome).observe(
                max(0.0, now - task.created_at)
            )
        log.info(
            "task finished",
            extra={"task_id": task_id, "status": status, "error": error,
                   "duration_ms": round((now - started) * 1000, 2)},
        )
        if self.inline is not None and endpoint is not None:
            assert event is not None
            self.inline.deliver(event, endpoint)

    def _retry(self, task: Task | None, task_id: str, started: float, error: str) -> None:
        attempts = task.attempts if task else 1
        metrics.child(metrics.task_run, JOB_ACTOR, "retry").observe(time.time() - started)
        if attempts > self.config.job_max_retries:
            self._end(task, task_id, FAILURE, started,
                      error=f"gave up after {attempts} attempts; last: {error}")
            return
        delay = retry_delay(attempts)
        if patiently(
            self.store.schedule_retry,
            task_id, owner=self.owner, due=time.time() + delay, error=error,
            schedule_key=self.services.schedule.key,
        ):
            metrics.child(metrics.task_retries, JOB_ACTOR).inc()
            log.info("task will retry", extra={"task_id": task_id, "status": "RETRY",
                                               "delay_s": round(delay, 2), "error": error})

