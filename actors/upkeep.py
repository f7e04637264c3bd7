"""Background upkeep in every worker process.

Dramatiq's Redis broker leaves three gaps that this thread closes:

* Heartbeats are written only as a side effect of broker calls, so a process
  busy with long jobs looks dead; here every process beats on its own clock.
* Messages held by a dead worker come back only when "maintenance" runs, on
  0.1 % of broker calls; here it runs every few seconds on every queue.
* A message lost on the way (an enqueue that failed, a key deleted by hand)
  leaves its task stuck; the reconciler finds unfinished tasks without a
  message and sends them again.

It also pumps the schedule: job and webhook retries that have come due.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import redis
from dramatiq.brokers.redis import RedisBroker

from actors.messages import HEARTBEATS_KEY, JOBS_QUEUE, job_message
from actors.services import Services
from hookline.redis import UNAVAILABLE
from hookline.tasks import ACTIVE_KEY, PENDING, RETRY, STARTED, TERMINAL, task_key

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

_LOCK_KEY = "hl:reconciler:lock"


class Upkeep(threading.Thread):
    def __init__(
        self,
        broker: RedisBroker,
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
        self.broker.client.zadd(HEARTBEATS_KEY, {self.broker.broker_id: int(time.time() * 1000)})

    def sweep(self) -> None:
        """Give dead workers' unacknowledged messages back to their queues."""
        dispatch = self.broker.scripts["dispatch"]
        for queue in sorted(self.broker.get_declared_queues() | self.broker.delay_queues):
            dispatch(
                keys=[self.broker.namespace],
                args=[
                    "qsize", int(time.time() * 1000), queue, self.broker.broker_id,
                    self.broker.heartbeat_timeout, self.broker.dead_message_ttl, 1,
                    self.broker._max_unpack_size(),
                ],
            )

    def pump(self) -> None:
        store, schedule = self.services.store, self.services.schedule
        for kind, task_id in schedule.claim():
            if kind == "job":
                store.requeue(task_id, job_message(task_id), expect=(RETRY,), status=RETRY)
            elif kind == "hook" and self.deliver_due is not None:
                self.deliver_due(task_id)
            schedule.done(kind, task_id)

    def reconcile(self) -> int:
        """Send again every unfinished task whose message is lost or stuck.

        A task is left alone while its message waits on the queue, while a
        live worker runs it, or while a retry is scheduled. It is sent again
        when its message is gone, or when a live worker has held the message
        without starting it for ``reconcile_after`` seconds (a consumer that
        lost its connection mid-delivery keeps the message claimed). A
        duplicate message is harmless: a task starts and ends only once.
        """
        client: redis.Redis = self.services.redis
        ttl_ms = int(RECONCILE_INTERVAL * 1000 * 0.9)
        if not client.set(_LOCK_KEY, self.broker.broker_id, nx=True, px=ttl_ms):
            return 0
        cutoff = time.time() - self.services.config.reconcile_after
        stale = [m.decode() for m in client.zrangebyscore(
            ACTIVE_KEY, "-inf", cutoff, start=0, num=RECONCILE_BATCH)]
        if not stale:
            return 0
        beat_cutoff = int(time.time() * 1000) - self.broker.heartbeat_timeout
        live = {w.decode() for w in client.zrangebyscore(HEARTBEATS_KEY, beat_cutoff, "+inf")}
        held_keys = [f"{self.broker.namespace}:__acks__.{w}.{JOBS_QUEUE}" for w in sorted(live)]
        pipe = client.pipeline(transaction=False)
        for task_id in stale:
            pipe.hmget(task_key(task_id), "status", "msg", "owner")
        records = pipe.execute()
        hash_key = job_message("-").hash_key
        pipe = client.pipeline(transaction=False)
        for _, msg, _ in records:
            pipe.hexists(hash_key, msg or b"-")
            for key in held_keys:
                pipe.sismember(key, msg or b"-")
        flags = pipe.execute()
        width = 1 + len(held_keys)
        sent = 0
        now = time.time()
        for i, (task_id, (status, _, owner)) in enumerate(zip(stale, records)):
            if status is None or status.decode() in TERMINAL:
                client.zrem(ACTIVE_KEY, task_id)
                continue
            current = status.decode()
            exists, held = flags[i * width], flags[i * width + 1 : (i + 1) * width]
            running = current == STARTED and owner is not None and owner.decode() in live
            scheduled = self.services.schedule.due_at("job", task_id) is not None
            stuck = exists and any(held) and current in (PENDING, RETRY)
            if running or scheduled or (exists and not stuck):
                client.zadd(ACTIVE_KEY, {task_id: now}, xx=True)
                continue
            if self.services.store.requeue(
                task_id, job_message(task_id), expect=(current,), status=current
            ):
                sent += 1
                why = "its message was held but never started" if stuck else "its message was lost"
                log.warning(f"reconciler sent a task again: {why}",
                            extra={"task_id": task_id, "status": current})
        return sent
