"""Dramatiq's Redis broker, with consumers that wake when a message arrives.

Dramatiq's Redis consumer polls: after each empty fetch it sleeps for an
exponentially growing back-off of up to the worker timeout (1 s), so on a
quiet queue a message waits half a second on average before anyone looks.
Here an empty fetch blocks on a small "wake" list instead (``BLPOP``), and
every producer pushes a token to it beside the message, so an idle consumer
starts at once and a busy one never waits. Fetching stays Dramatiq's atomic
Lua script; the wake list only says "look now".
"""
from __future__ import annotations

import time
from typing import Any

import redis
from dramatiq.broker import MessageProxy
from dramatiq.brokers.redis import RedisBroker, _RedisConsumer
from dramatiq.errors import ConnectionClosed
from dramatiq.message import Message

#: Longest a consumer blocks on its wake list before polling anyway, in
#: seconds (it also bounds how late a delayed message or a missed token is).
MAX_IDLE_WAIT = 1.0
#: Tokens kept on a wake list: enough to wake every idle consumer of a queue.
WAKE_TOKENS = 16


def wake_key(namespace: str, queue_name: str) -> str:
    return f"{namespace}:{queue_name}.wake"


class WakefulConsumer(_RedisConsumer):
    def __init__(self, broker: RedisBroker, queue_name: str, prefetch: int, timeout: int) -> None:
        super().__init__(broker, queue_name, prefetch, timeout)
        self.wake_key = wake_key(broker.namespace, queue_name)
        # BLPOP holds its connection while it waits, so it gets its own client.
        self.waiter = redis.Redis(connection_pool=broker.client.connection_pool)

    def __next__(self) -> MessageProxy | None:
        try:
            while True:
                if self.message_cache:
                    data = self.message_cache.pop(0)
                    if data is None:
                        continue
                    self.misses = 0
                    message = Message.decode(data)
                    self.queued_message_ids.add(message.message_id)
                    return MessageProxy(message)
                room = self.prefetch - self.outstanding_message_count
                if room > 0:
                    self.message_cache = self.broker.do_fetch(self.queue_name, room)
                    if self.message_cache:
                        continue
                    # Nothing ready: sleep until a producer says there is.
                    wait = min(MAX_IDLE_WAIT, self.timeout / 1000)
                    self.waiter.blpop([self.wake_key], timeout=wait)
                else:
                    # Every prefetched message is still being worked on.
                    time.sleep(0.005)
                return None
        except redis.ConnectionError as exc:
            raise ConnectionClosed(exc) from None


class WakefulRedisBroker(RedisBroker):
    @property
    def consumer_class(self) -> Any:
        return WakefulConsumer

    def do_enqueue(self, queue_name: str, message_id: str, data: bytes) -> Any:  # type: ignore[override]
        # Messages Dramatiq itself enqueues (delayed ones coming due) wake a
        # consumer too.
        result = self._dispatch("enqueue")(queue_name, message_id, data)
        pipe = self.client.pipeline(transaction=False)
        pipe.rpush(wake_key(self.namespace, queue_name), 1)
        pipe.ltrim(wake_key(self.namespace, queue_name), -WAKE_TOKENS, -1)
        pipe.execute()
        return result
