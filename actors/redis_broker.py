"""A lean Redis broker for Dramatiq: a list per queue, a held list per worker.

* ``<ns>:q:<queue>`` is a list of encoded messages (``actors.queue_keys``).
  Producers ``LPUSH``; consumers (``actors.consumer``) take from the right,
  so it is first in, first out, moving what they take to their process's
  held list in the same atomic step.
* Acknowledging removes the message from the held list (``LREM``); an actor
  may do that inside its own last write (``actors.held``).
* Heartbeats are written by each worker process on a clock
  (``actors.upkeep``). The held lists of a process whose heartbeat stopped
  go back to their queues (:meth:`LeanRedisBroker.recover`).
* ``nack`` moves a message to ``<ns>:q:<queue>:dead`` (capped).
* Delayed messages wait on the queue's ``.DQ`` twin, as in Dramatiq.
* A queue may name a key read in the same round trip as each fetch
  (``fetch_with``); the webhook worker reads the callbacks' change counter
  this way.

Why it is built this way, instead of on Dramatiq's own Redis broker:
docs/architecture.md.
"""
from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import redis
from dramatiq import Consumer, Message
from dramatiq.common import current_millis, dq_name

from actors.consumer import LeanConsumer
from actors.queue_keys import Keys, backlog, encode, heartbeats_key
from actors.signals import LeanSignals
from hookline import scripts


class LeanRedisBroker(LeanSignals):
    """Dramatiq broker over Redis lists; see the module's docstring."""

    def __init__(
        self,
        *,
        client: redis.Redis,
        namespace: str = "hl",
        heartbeat_timeout: int = 60_000,
        middleware: list[Any] | None = None,
        fetch_with: dict[str, str] | None = None,
    ) -> None:
        #: Signal name -> the middleware methods that handle it (see emit_before).
        self._hooks: dict[str, list[Any]] = {}
        super().__init__(middleware=middleware)
        self.client = client
        self.namespace = namespace
        self.heartbeat_timeout = heartbeat_timeout
        #: Queue name -> a key read with every fetch (see the module's docstring).
        self.fetch_with = dict(fetch_with or {})
        self.broker_id = str(uuid.uuid4())
        self.queues: set[str] = set()
        self._outstanding: dict[str, set[bytes]] = {}
        self._lock = threading.Lock()
        self.scripts = {name: scripts.register(client, "actors", name)
                        for name in ("fetch", "requeue", "nack", "recover")}

    @property
    def heartbeats_key(self) -> str:
        return heartbeats_key(self.namespace)

    def outstanding(self, queue_name: str) -> set[bytes]:
        """Bodies this process has taken off ``queue_name`` and not settled."""
        with self._lock:
            return self._outstanding.setdefault(queue_name, set())

    def keys(self, queue_name: str) -> Keys:
        return Keys(self.namespace, queue_name)

    def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 30000) -> Consumer:
        return LeanConsumer(self, queue_name, prefetch, timeout)

    def declare_queue(self, queue_name: str) -> None:
        if queue_name in self.queues:
            return
        self.emit_before("declare_queue", queue_name)
        self.queues.add(queue_name)
        self.emit_after("declare_queue", queue_name)
        delayed = dq_name(queue_name)
        self.delay_queues.add(delayed)
        self.emit_after("declare_delay_queue", delayed)

    def enqueue(self, message: Message[Any], *, delay: int | None = None) -> Message[Any]:
        queue_name = message.queue_name
        if delay is not None:
            queue_name = dq_name(queue_name)
            message = message.copy(
                queue_name=queue_name,
                options={**message.options, "eta": current_millis() + delay},
            )
        self.emit_before("enqueue", message, delay)
        self.client.lpush(self.keys(queue_name).queue, encode(message))
        self.emit_after("enqueue", message, delay)
        return message

    def get_declared_queues(self) -> set[str]:
        return self.queues.copy()

    def get_declared_delay_queues(self) -> set[str]:
        return self.delay_queues.copy()

    def heartbeat(self, now_ms: int | None = None) -> None:
        now_ms = current_millis() if now_ms is None else now_ms
        self.client.zadd(self.heartbeats_key, {self.broker_id: now_ms})

    def recover(self, now_ms: int | None = None) -> int:
        """Give the held messages of dead worker processes back to their queues."""
        now_ms = current_millis() if now_ms is None else now_ms
        moved = 0
        for queue_name in sorted(self.queues | self.delay_queues):
            keys = self.keys(queue_name)
            moved += int(self.scripts["recover"](
                keys=[self.heartbeats_key, keys.holders, keys.queue],
                args=[keys.held_prefix, now_ms - self.heartbeat_timeout],
            ))
        return moved

    def flush(self, queue_name: str) -> None:
        for name in (queue_name, dq_name(queue_name)):
            keys = self.keys(name)
            holders = [h.decode() for h in self.client.smembers(keys.holders)]
            self.client.delete(keys.queue, keys.dead, keys.holders, *(keys.held(h) for h in holders))

    def flush_all(self) -> None:
        for queue_name in self.queues:
            self.flush(queue_name)

    def join(self, queue_name: str, *, timeout: int | None = None) -> None:
        """Wait until ``queue_name`` has no ready or held messages."""
        deadline = None if timeout is None else time.monotonic() + timeout / 1000
        while True:
            busy = sum(sum(backlog(self.client, self.keys(name)))
                       for name in (queue_name, dq_name(queue_name)))
            if busy == 0:
                return
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"queue {queue_name} still has {busy} messages")
            time.sleep(0.01)
