"""Broker messages that are written beside a task's state change.

Dramatiq's Redis broker keeps a queue as a list of message ids
(``<ns>:<queue>``) and a hash of id -> encoded message (``<ns>:<queue>.msgs``).
Writing those two keys in the same transaction as the task record makes
"202 means durably recorded" literal: the record and its message exist
together or not at all. Messages carry the task id only, never the payload.
"""
from __future__ import annotations

import uuid

from dramatiq import Message

from actors.redis_broker import wake_key
from hookline.tasks import QueuedMessage

#: The broker's Redis key prefix (Dramatiq's default).
NAMESPACE = "dramatiq"
JOBS_QUEUE = "jobs"
CALLBACKS_QUEUE = "callbacks"
JOB_ACTOR = "process_vectors"
DELIVERY_ACTOR = "deliver_webhook"
HEARTBEATS_KEY = f"{NAMESPACE}:__heartbeats__"


def queued(queue: str, actor: str, *args: str, namespace: str = NAMESPACE) -> QueuedMessage:
    """An encoded message for ``actor`` on ``queue`` with positional ``args``."""
    redis_id = str(uuid.uuid4())
    message: Message[None] = Message(
        queue_name=queue,
        actor_name=actor,
        args=args,
        kwargs={},
        options={"redis_message_id": redis_id},
    )
    return QueuedMessage(
        message_id=redis_id,
        data=message.encode(),
        hash_key=f"{namespace}:{queue}.msgs",
        list_key=f"{namespace}:{queue}",
        wake_key=wake_key(namespace, queue),
    )


def job_message(task_id: str) -> QueuedMessage:
    return queued(JOBS_QUEUE, JOB_ACTOR, task_id)


def delivery_message(task_id: str, trigger: str = "scheduled") -> QueuedMessage:
    return queued(CALLBACKS_QUEUE, DELIVERY_ACTOR, task_id, trigger)
