"""Broker messages that are written beside a task's state change.

A queue is one Redis list of encoded Dramatiq messages, so a message can be
written in the same atomic step as the task record. Messages carry the task
id, never the payload; a webhook's first message also carries its event.
"""
from __future__ import annotations

from typing import Any

from dramatiq import Message

from actors.queue_keys import Keys, encode, heartbeats_key
from hookline import keys
from hookline.task_store import QueuedMessage

#: The broker's Redis key prefix.
NAMESPACE = keys.NAMESPACE
JOBS_QUEUE = "jobs"
CALLBACKS_QUEUE = "callbacks"
JOB_ACTOR = "process_vectors"
DELIVERY_ACTOR = "deliver_webhook"
#: Ends a large job whose chunks have all ended (``actors.chunk_work``).
FINISH_CHUNKS_ACTOR = "finish_chunks"
HEARTBEATS_KEY = heartbeats_key(NAMESPACE)


def queue_key(queue: str) -> str:
    return Keys(NAMESPACE, queue).queue


def queued(queue: str, actor: str, *args: Any) -> QueuedMessage:
    """An encoded message for ``actor`` on ``queue`` with positional ``args``."""
    message: Message[None] = Message(
        queue_name=queue, actor_name=actor, args=args, kwargs={}, options={}
    )
    return QueuedMessage(message_id=message.message_id, data=encode(message),
                         list_key=queue_key(queue))


def job_message(task_id: str) -> QueuedMessage:
    return queued(JOBS_QUEUE, JOB_ACTOR, task_id)


#: One chunk of a large job (``actors.chunk_job``).
CHUNK_ACTOR = "process_chunk"
#: The schedule's kind of a chunk's retry; its member is ``chunk:<task id>:<k>``.
CHUNK_KIND = "chunk"


def chunk_message(queue: str, task_id: str, index: int) -> QueuedMessage:
    return queued(queue, CHUNK_ACTOR, task_id, index)


def chunk_member(task_id: str, index: int) -> str:
    """What names chunk ``index`` of ``task_id`` on the schedule (after its kind)."""
    return f"{task_id}:{index}"


def finish_chunks_message(task_id: str) -> QueuedMessage:
    return queued(JOBS_QUEUE, FINISH_CHUNKS_ACTOR, task_id)


def delivery_message(
    task_id: str, trigger: str = "scheduled", callback_id: str | None = None,
    event: dict[str, Any] | None = None,
) -> QueuedMessage:
    """The message of one webhook attempt.

    ``callback_id`` saves the actor a round trip, and ``event`` (the event
    as the task ended, ``actors.delivery.Event.in_message``) another.
    """
    args: list[Any] = [task_id, trigger]
    if callback_id:
        args.append(callback_id)
        if event is not None:  # only ever sent beside the callback it goes to
            args.append(event)
    return queued(CALLBACKS_QUEUE, DELIVERY_ACTOR, *args)


#: The trigger of a large job's ``task.progress`` webhook.
PROGRESS_TRIGGER = "progress"


def progress_message(task_id: str, callback_id: str | None = None,
                     event: dict[str, Any] | None = None) -> QueuedMessage:
    """The message of one attempt of a ``task.progress`` webhook.

    ``event`` (``{"n", "data"}``) is the event; without it, the attempt is
    the retry the task's record keeps (``hookline.progress_events``).
    """
    args: list[Any] = [task_id, PROGRESS_TRIGGER]
    if callback_id and event is not None:
        args += [callback_id, event]
    return queued(CALLBACKS_QUEUE, DELIVERY_ACTOR, *args)
