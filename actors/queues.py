"""Queue-level gauges, read from the broker once per scrape.

For each queue of Dramatiq's Redis layout:

* ready     ``LLEN <q>``: messages waiting for a worker
* delayed   ``HLEN <q>.DQ.msgs``: messages held back until their eta (the
            ``.DQ`` list alone misses those a worker has already fetched)
* dead      ``ZCARD <q>.XQ``: dead-lettered messages
* in_flight ``HLEN <q>.msgs - LLEN <q>``: fetched, not yet acknowledged
"""
from __future__ import annotations

import time
from collections.abc import Iterator, Sequence

import orjson
import redis
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from actors.messages import CALLBACKS_QUEUE, HEARTBEATS_KEY, JOBS_QUEUE, NAMESPACE
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
            pipe = self.redis.pipeline(transaction=False)
            for queue in self.queues:
                base = f"{self.namespace}:{queue}"
                pipe.llen(base)
                pipe.hlen(f"{base}.msgs")
                pipe.hlen(f"{base}.DQ.msgs")
                pipe.zcard(f"{base}.XQ")
                pipe.lindex(base, 0)
            pipe.zcount(HEARTBEATS_KEY, now_ms - self.heartbeat_timeout_ms, "+inf")
            pipe.zcount(Schedule(self.redis).key, "-inf", "+inf")
            values = pipe.execute()
            heads = []
            for i, queue in enumerate(self.queues):
                ready, stored, delayed, dead, head = values[5 * i : 5 * i + 5]
                depth.add_metric([queue, "ready"], ready)
                depth.add_metric([queue, "delayed"], delayed)
                depth.add_metric([queue, "dead"], dead)
                depth.add_metric([queue, "in_flight"], max(0, stored - ready))
                heads.append((queue, head))
            pipe = self.redis.pipeline(transaction=False)
            for queue, head in heads:
                pipe.hget(f"{self.namespace}:{queue}.msgs", head or b"-")
            for (queue, _), raw in zip(heads, pipe.execute()):
                age = 0.0
                if raw:
                    age = max(0.0, (now_ms - orjson.loads(raw)["message_timestamp"]) / 1000)
                oldest.add_metric([queue], age)
            alive.add_metric([], values[-2])
            pending.add_metric([], values[-1])
        except redis.RedisError:
            # An unreachable broker shows as missing series (alerts use
            # absent()), never as a failed scrape of everything else.
            return
        yield depth
        yield oldest
        yield alive
        yield pending
