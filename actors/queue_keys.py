"""The Redis keys of the broker's queues, and its message encoding.

Messages are Dramatiq messages encoded as JSON by orjson, so any Dramatiq
tool can read them.
"""
from __future__ import annotations

from typing import Any

import orjson
import redis
from dramatiq import Message


def encode(message: Message[Any]) -> bytes:
    return orjson.dumps(message.asdict())


def decode(data: bytes) -> Message[Any]:
    fields = orjson.loads(data)
    fields["args"] = tuple(fields["args"])
    return Message(**fields)


class Keys:
    """The Redis keys of one queue."""

    def __init__(self, namespace: str, queue_name: str) -> None:
        self.queue = f"{namespace}:q:{queue_name}"
        self.holders = f"{self.queue}:holders"
        self.held_prefix = f"{self.queue}:held:"
        self.dead = f"{self.queue}:dead"

    def held(self, worker_id: str) -> str:
        return self.held_prefix + worker_id


def heartbeats_key(namespace: str) -> str:
    """The sorted set of worker process ids by their last heartbeat (ms)."""
    return f"{namespace}:workers"


def backlog(client: redis.Redis, keys: Keys) -> tuple[int, int]:
    """How many messages of a queue wait on it, and how many workers hold."""
    held = [keys.held(worker.decode()) for worker in client.smembers(keys.holders)]
    pipe = client.pipeline(transaction=False)
    pipe.llen(keys.queue)
    for key in held:
        pipe.llen(key)
    ready, *counts = pipe.execute()
    return int(ready), sum(int(count) for count in counts)
