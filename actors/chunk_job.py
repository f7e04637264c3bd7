"""Jobs from an upload: the planner and the ``process_chunk(task_id, k)`` actor.

The job actor hands a task that names an upload to ``ChunkPlanner.plan``,
which writes the chunk counters into the record and one small message per
chunk onto the ``jobs`` queue. Any job worker then runs the chunks in
parallel; each reads only its own byte range of the blob, and
``ChunkLedger.end`` tells exactly one of them that it ended the last chunk:
that one ends the task, once, with its webhook (docs/large-jobs.md).
"""
from __future__ import annotations

import functools
import logging
import time
from typing import Any

import dramatiq
import orjson
from dramatiq.middleware import CurrentMessage
from dramatiq.middleware.time_limit import TimeLimitExceeded

from actors import chunk_work
from actors.chunk_work import ChunkWork
from actors.held import give_back
from actors.jobs import patiently, retry_delay
from actors.messages import CHUNK_ACTOR, CHUNK_KIND, chunk_member, chunk_message
from actors.progress_events import queue_progress_event
from actors.services import Services
from actors.vectors import Cancelled, normalise, stored_vectors, summarise
from hookline import metrics
from hookline.blobs import BlobError
from hookline.redis_client import UNAVAILABLE
from hookline.task_chunks import CANCELLED, REFUSED, STOPPED, InvalidChunk, read_chunk
from hookline.task_chunks import FAILURE as CHUNK_FAILURE
from hookline.task_chunks import REVOKED as CHUNK_REVOKED
from hookline.task_chunks import SUCCESS as CHUNK_SUCCESS
from hookline.task_record import FAILURE, TERMINAL, Task
from hookline.upload_ids import IdsError, chunk_ids
from hookline.vector_collections import CollectionError
from hookline.vectorstore import JobWrite

log = logging.getLogger("hookline.jobs")



class ChunkPlanner(ChunkWork):
    """Fans a task from an upload out into chunk messages."""

    def plan(self, task_id: str) -> bool:
        """Plan ``task_id`` if it reads an upload; ``False`` for an inline task.

        Running again (a redelivered message, the reconciler) sends again the
        messages of chunks that have not ended: a chunk counts once whatever
        runs it twice.
        """
        upload_id = self.services.store.upload_of(task_id)
        if upload_id is None:
            return False
        upload = self.uploads.get(upload_id)
        if upload is None or not upload.complete:
            self.end_task(task_id, FAILURE, error="the task's upload is gone")
            return True
        if self.ledger.ending_since(task_id) is not None:
            # Every chunk has ended, but the task has not: the worker that
            # ended the last one died before it ended the task.
            self.finish_from_ledger(task_id)
            return True
        plan = self.plan_of(upload)
        ended = self.ledger.ended(task_id)
        planned = self.ledger.planned(task_id)
        self.ledger.write_plan(
            task_id, plan, [chunk_message(self.queue, task_id, chunk.index)
                            for chunk in plan if chunk.index not in ended], planned=planned)
        log.info("task planned", extra={"task_id": task_id, "chunks": plan.count})
        return True


class ChunkJob(ChunkWork):
    """Callable registered as the ``process_chunk`` actor."""

    __name__ = CHUNK_ACTOR

    def __call__(self, task_id: str, index: int) -> None:
        running = metrics.child(metrics.tasks_running, CHUNK_ACTOR)
        running.inc()
        try:
            self._attempt(task_id, index)
        finally:
            running.dec()

    def _attempt(self, task_id: str, index: int) -> None:
        try:
            self._run(task_id, index)
        except TimeLimitExceeded:
            limit = self.services.config.job_time_limit
            self._account(task_id, index, CHUNK_FAILURE,
                          error=f"chunk {index}: time limit of {limit} s exceeded")
        except (BlobError, *UNAVAILABLE) as exc:
            self._retry_later(task_id, index, exc)
        except Exception:
            # A bug, not bad input: the chunk ends visibly, so the task
            # still ends once instead of waiting for it for ever.
            log.exception("chunk failed unexpectedly", extra={"task_id": task_id, "chunk": index})
            self._account(task_id, index, CHUNK_FAILURE,
                          error=f"chunk {index}: internal error while processing")

    def _retry_later(self, task_id: str, index: int, exc: BaseException) -> None:
        """Run the chunk again through the schedule after a transient error, or give up.

        The thread goes back to work at once instead of sleeping through the
        backoff. A Redis too far away to schedule the retry gets the message
        back on its queue instead, once it answers.
        """
        try:
            failed = self.ledger.failed_run(task_id, index)
            if failed > self.services.config.job_max_retries:
                self._account(task_id, index, CHUNK_FAILURE,
                              error=f"chunk {index}: gave up after {failed} attempts; "
                                    f"last: {type(exc).__name__}")
                return
            delay = retry_delay(failed)
            self.services.schedule.add(CHUNK_KIND, chunk_member(task_id, index), time.time() + delay)
        except UNAVAILABLE:
            if not give_back(CurrentMessage.get_current_message()):
                raise
            log.warning("Redis unavailable; the chunk goes back on its queue",
                        extra={"task_id": task_id, "chunk": index})
            return
        metrics.child(metrics.task_retries, CHUNK_ACTOR).inc()
        log.info("chunk will retry", extra={"task_id": task_id, "chunk": index,
                                            "error": type(exc).__name__, "delay_s": round(delay, 2)})

    def _run(self, task_id: str, index: int) -> None:
        status, cancel, upload_id = self.ledger.run_state(task_id)
        if status is None or status in TERMINAL:
            return  # the task is over (or gone): nothing to count
        if cancel:
            self._account(task_id, index, CHUNK_REVOKED)
            return
        upload = self.uploads.get(upload_id) if upload_id else None
        if upload is None:
            self._account(task_id, index, CHUNK_FAILURE, error=f"chunk {index}: the upload is gone")
            return
        plan = self.plan_of(upload)
        chunk = plan.chunk(index)
        task = self.services.store.get(task_id)
        if task is None:
            return
        try:
            values = read_chunk(self.blobs, upload.blob_key, plan, chunk)
            progress = functools.partial(self._progress, task_id, index)
            pieces: list[JobWrite] = []
            if task.indexed:
                normalised, stats = normalise(values, progress)
                ids = chunk_ids(self.services.redis, self.uploads, self.blobs, task_id,
                                chunk.first_row, chunk.rows)
                pieces = self._vectors_for(task, plan.rows, chunk.first_row, ids,
                                           stored_vectors(values, normalised))
                del normalised
            else:
                stats = summarise(values, progress)
            del values  # not held while the chunk's end is written
        except InvalidChunk as exc:
            self._account(task_id, index, CHUNK_FAILURE, error=str(exc))
            return
        except IdsError as exc:
            self._account(task_id, index, CHUNK_FAILURE, error=f"{chunk.describe()}: {exc}")
            return
        except Cancelled:
            self._account(task_id, index, CHUNK_REVOKED)
            return
        # Every piece but the last goes in before the end, which takes the last.
        for piece in pieces[:-1]:
            answer = patiently(self.ledger.write_piece, task_id, index, piece)
            if answer == STOPPED:
                return  # ended by another run, or the task is over
            if answer == CANCELLED:
                self._account(task_id, index, CHUNK_REVOKED)
                return
            if answer == REFUSED:
                self._account(task_id, index, CHUNK_FAILURE, error=self._refused(task_id, index))
                return
        summary = orjson.dumps({"n": stats["processed_vectors"],
                                "sum": stats["norm_mean"] * stats["processed_vectors"],
                                "min": stats["norm_min"], "max": stats["norm_max"],
                                "zeros": stats["zero_vectors"]}).decode()
        self._account(task_id, index, CHUNK_SUCCESS, rows=chunk.rows, stats=summary,
                      vectors=pieces[-1] if pieces else None)

    def _vectors_for(self, task: Task, total: int, first_row: int, ids: list[str] | None,
                     vectors_of: Any) -> list[JobWrite]:
        """The chunk's vectors encoded for the task's collection (created if missing), in pieces.

        Raises:
            InvalidChunk: the collection has another dimension.
        """
        try:
            collection = self.vectors.collections.ensure(task.tenant, task.collection,
                                                         task.dimension)
        except CollectionError as exc:
            raise InvalidChunk(str(exc)) from None
        return self.vectors.prepare_pieces(collection, task.task_id, vectors_of(collection.metric),
                                           ids, first_row=first_row, total=total)

    def _refused(self, task_id: str, index: int) -> str:
        """The error of a chunk whose collection no longer takes its vectors."""
        task = self.services.store.get(task_id)
        name = task.collection if task else "default"
        return f"chunk {index}: collection {name!r} no longer takes vectors of this job's dimension"

    def _progress(self, task_id: str, index: int, done: int) -> None:
        cancel, event = self.ledger.progress(task_id, index, done, time.time())
        if cancel:
            raise Cancelled()
        self._send_progress(task_id, event)

    def _send_progress(self, task_id: str, event: int) -> None:
        """Queue ``task.progress`` event number ``event`` (0: none is due)."""
        if not event:
            return
        try:
            queue_progress_event(self.services.store, self.ledger, task_id, event)
        except UNAVAILABLE:
            # Informative only: the next event carries newer counts.
            log.warning("progress event not queued: Redis unavailable", extra={"task_id": task_id})

    def _account(self, task_id: str, index: int, outcome: str, **details: Any) -> None:
        end = patiently(self.ledger.end, task_id, index, outcome, now=time.time(), **details)
        if end.refused:
            # The collection was deleted and made again with another dimension.
            outcome, details = CHUNK_FAILURE, {"error": self._refused(task_id, index)}
            end = patiently(self.ledger.end, task_id, index, outcome, now=time.time(), **details)
        if end.first:
            metrics.child(metrics.task_chunks, outcome).inc()
            log.info("chunk ended", extra={"task_id": task_id, "chunk": index, "outcome": outcome,
                                           "error": details.get("error")})
        if end.last:
            self.finish_from_ledger(task_id)
        else:
            self._send_progress(task_id, end.emit)


def declare(broker: dramatiq.Broker, services: Services, *, queue_name: str, time_limit_ms: int) -> None:
    """Declare ``process_chunk`` and ``finish_chunks`` on ``broker`` (on the jobs queue)."""
    chunk_work.declare(broker, services, queue_name=queue_name)
    dramatiq.actor(  # type: ignore[call-overload]
        ChunkJob(services, queue_name), actor_name=CHUNK_ACTOR, queue_name=queue_name,
        broker=broker, time_limit=time_limit_ms)
