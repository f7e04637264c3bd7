"""Background upkeep in every worker process.

Heartbeats, the dead-worker sweep, the retry schedule's pump and the
reconciler that sends again unfinished tasks whose message was lost
(docs/architecture.md, step 4).
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import orjson
import redis

from actors.messages import (
    CHUNK_KIND,
    HEARTBEATS_KEY,
    JOBS_QUEUE,
    chunk_message,
    finish_chunks_message,
    job_message,
    progress_message,
)
from actors.redis_broker import LeanRedisBroker
from actors.services import Services
from hookline import keys
from hookline.progress_events import PROGRESS_KIND
from hookline.redis_client import UNAVAILABLE
from hookline.task_record import PENDING, RETRY, STARTED, TERMINAL

log = logging.getLogger("hookline.upkeep")

#: Seconds between heartbeats of one worker process.
HEARTBEAT_INTERVAL = 2.0
#: Seconds between dead-worker sweeps of every queue.
MAINTENANCE_INTERVAL = 5.0
#: Seconds between pumps of the retry schedule.
PUMP_INTERVAL = 0.2
#: Seconds between reconciler passes (one process at a time runs one).
RECONCILE_INTERVAL = 5.0
#: Unfinished tasks the reconciler looks at per pass.
RECONCILE_BATCH = 500


class Upkeep(threading.Thread):
    def __init__(
        self,
        broker: LeanRedisBroker,
        services: Services,
        *,
        deliver_due: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(name="hookline-upkeep", daemon=True)
        self.broker = broker
        self.services = services
        self.deliver_due = deliver_due
        self.stopping = threading.Event()
        self._next = {"beat": 0.0, "sweep": 0.0, "pump": 0.0, "reconcile": 0.0}

    def stop(self) -> None:
        self.stopping.set()

    def run(self) -> None:
        while not self.stopping.is_set():
            now = time.monotonic()
            for name, interval, step in (
                ("beat", HEARTBEAT_INTERVAL, self.heartbeat),
                ("sweep", MAINTENANCE_INTERVAL, self.sweep),
                ("pump", PUMP_INTERVAL, self.pump),
                ("reconcile", RECONCILE_INTERVAL, self.reconcile),
            ):
                if now < self._next[name]:
                    continue
                self._next[name] = now + interval
                try:
                    step()
                except UNAVAILABLE:
                    log.warning("upkeep %s skipped: Redis unavailable", name)
                except Exception:
                    log.exception("upkeep %s failed", name)
            self.stopping.wait(PUMP_INTERVAL / 2)

    def heartbeat(self) -> None:
        self.broker.heartbeat()

    def sweep(self) -> None:
        """Give dead workers' unacknowledged messages back to their queues."""
        moved = self.broker.recover()
        if moved:
            log.warning("messages of dead workers went back to their queues", extra={"count": moved})

    def pump(self) -> None:
        store, schedule = self.services.store, self.services.schedule
        for claim in schedule.claim():
            if claim.kind == "job":
                store.requeue(claim.task_id, job_message(claim.task_id), expect=(RETRY,), status=RETRY)
            elif claim.kind == "hook" and self.deliver_due is not None:
                self.deliver_due(claim.task_id)
            elif claim.kind == PROGRESS_KIND:
                store.write_message(progress_message(claim.task_id))
            elif claim.kind == CHUNK_KIND:
                task_id, index = claim.task_id.rsplit(":", 1)
                store.write_message(chunk_message(JOBS_QUEUE, task_id, int(index)))
            schedule.done(claim)

    def reconcile(self) -> int:
        """Send again every unfinished task whose message is lost or stuck.

        A task is left alone while its message may still wait on the queue,
        while a live worker runs it, or while a retry is scheduled. It is
        sent again when its message is gone, or when a live worker has held
        the message without starting it for ``reconcile_after`` seconds (a
        consumer that lost its connection mid-delivery). A large job whose
        last chunk ended that long ago but which has not ended gets a
        ``finish_chunks`` message. A duplicate message is harmless: a task
        starts and ends only once. A live worker's message that it no longer
        runs (a failover lost the end of its run) is taken up by that worker
        itself (``LeanConsumer._adopt``).

        The queue is first in, first out, so a message written after the one
        at the queue's head is still waiting, and one written before it has
        been taken: only the held lists, which are short, are read whole.
        """
        client: redis.Redis = self.services.redis
        ttl_ms = int(RECONCILE_INTERVAL * 1000 * 0.9)
        if not client.set(keys.RECONCILER_LOCK, self.broker.broker_id, nx=True, px=ttl_ms):
            return 0
        cutoff = time.time() - self.services.config.reconcile_after
        store = self.services.store
        stale = store.unfinished_since(cutoff, RECONCILE_BATCH)
        if not stale:
            return 0
        beat_cutoff = int(time.time() * 1000) - self.broker.heartbeat_timeout
        live = {w.decode() for w in client.zrangebyscore(HEARTBEATS_KEY, beat_cutoff, "+inf")}
        queue = self.broker.keys(JOBS_QUEUE)
        head = client.lindex(queue.queue, -1)
        # Seconds: a task whose message was written at or after this may be waiting.
        waiting_since = orjson.loads(head)["message_timestamp"] / 1000 - 1 if head else None
        held: set[str] = set()
        for worker in sorted(live):
            for raw in client.lrange(queue.held(worker), 0, -1):
                held.update(str(arg) for arg in orjson.loads(raw).get("args", ()))
        records = store.run_states([task_id for task_id, _ in stale])
        sent = 0
        now = time.time()
        for (task_id, written), (current, owner, ending) in zip(stale, records):
            if current is None or current in TERMINAL:
                store.forget_finished(task_id)
                continue
            if current == STARTED and ending is not None:
                # A large job whose last chunk has ended: that chunk's worker
                # ends it at once, unless it died first.
                if ending < cutoff:
                    store.write_message(finish_chunks_message(task_id))
                    sent += 1
                    log.warning("reconciler sent a task again: its last chunk ended, "
                                "the task did not", extra={"task_id": task_id})
                store.still_waiting(task_id, now)
                continue
            running = current == STARTED and owner is not None and owner in live
            scheduled = self.services.schedule.due_at("job", task_id) is not None
            queued = waiting_since is not None and written >= waiting_since
            stuck = task_id in held and current in (PENDING, RETRY)
            if running or scheduled or queued or (task_id in held and not stuck):
                store.still_waiting(task_id, now)
                continue
            if store.requeue(
                task_id, job_message(task_id), expect=(current,), status=current
            ):
                sent += 1
                why = "its message was held but never started" if stuck else "its message was lost"
                log.warning(f"reconciler sent a task again: {why}",
                            extra={"task_id": task_id, "status": current})
        return sent
