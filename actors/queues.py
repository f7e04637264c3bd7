"""Queue-level gauges, read from the broker once per scrape.

For each queue of the broker's layout (``actors.redis_broker``):

* ready     ``LLEN <q>``: messages waiting for a worker
* delayed   messages waiting for their eta on the ``.DQ`` twin, ready or
            held by a worker
* dead      ``LLEN <q>:dead``: dead-lettered messages
* in_flight the held lists of every worker: fetched, not yet acknowledged
"""
from __future__ import annotations

import time
from collections.abc import Iterator, Sequence

import orjson
import redis
from dramatiq.common import dq_name
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from actors.messages import CALLBACKS_QUEUE, HEARTBEATS_KEY, JOBS_QUEUE, NAMESPACE
from actors.queue_keys import Keys
from hookline.schedule import Schedule


class QueueCollector(Collector):
    def __init__(
        self,
        client: redis.Redis,
        *,
        heartbeat_timeout_ms: int,
        queues: Sequence[str] = (JOBS_QUEUE, CALLBACKS_QUEUE),
        namespace: str = NAMESPACE,
    ) -> None:
        self.redis = client
        self.queues = tuple(queues)
        self.namespace = namespace
        self.heartbeat_timeout_ms = heartbeat_timeout_ms

    def collect(self) -> Iterator[GaugeMetricFamily]:
        depth = GaugeMetricFamily(
            "hookline_queue_messages", "Messages per queue and state.", labels=["queue", "state"]
        )
        oldest = GaugeMetricFamily(
            "hookline_queue_oldest_age_seconds",
            "Age of the oldest ready message (0 when the queue is empty).",
            labels=["queue"],
        )
        alive = GaugeMetricFamily(
            "hookline_workers_alive", "Worker processes with a fresh heartbeat."
        )
        pending = GaugeMetricFamily(
            "hookline_webhook_pending", "Webhook deliveries waiting for a retry."
        )
        now_ms = int(time.time() * 1000)
        try:
            names = [(queue, Keys(self.namespace, queue)) for queue in self.queues]
            names += [(queue, Keys(self.namespace, dq_name(queue))) for queue in self.queues]
            pipe = self.redis.pipeline(transaction=False)
            for _, keys in names:
                pipe.smembers(keys.holders)
            holders = pipe.execute()
            pipe = self.redis.pipeline(transaction=False)
            for (_, keys), workers in zip(names, holders):
                pipe.llen(keys.queue)
                pipe.llen(keys.dead)
                pipe.lindex(keys.queue, -1)
                for worker in sorted(workers):
                    pipe.llen(keys.held(worker.decode()))
            pipe.zcount(HEARTBEATS_KEY, now_ms - self.heartbeat_timeout_ms, "+inf")
            pipe.zcount(Schedule(self.redis).key, "-inf", "+inf")
            values = iter(pipe.execute())
            counts: dict[str, dict[str, int]] = {
                q: {"ready": 0, "delayed": 0, "dead": 0, "in_flight": 0} for q in self.queues}
            for (queue, keys), workers in zip(names, holders):
                ready, dead, head = next(values), next(values), next(values)
                held = sum(next(values) for _ in workers)
                row = counts[queue]
                if keys.queue.endswith(".DQ"):
                    row["delayed"] += ready + held
                    row["dead"] += dead
                    continue
                row["ready"], row["in_flight"] = ready, held
                row["dead"] += dead
                age = 0.0
                if head:
                    age = max(0.0, (now_ms - orjson.loads(head)["message_timestamp"]) / 1000)
                oldest.add_metric([queue], age)
            for queue, row in counts.items():
                for state, value in row.items():
                    depth.add_metric([queue, state], value)
            alive.add_metric([], next(values))
            pending.add_metric([], next(values))
        except redis.RedisError:
            # An unreachable broker shows as missing series (alerts use
            # absent()), never as a failed scrape of everything else.
            return
        yield depth
        yield oldest
        yield alive
        yield pending
