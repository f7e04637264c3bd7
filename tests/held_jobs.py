"""Running the job actor in process with the message a worker would hold."""
from __future__ import annotations

import redis as redis_lib
from dramatiq.middleware import CurrentMessage

from actors.held import HeldMessage
from actors.jobs import VectorJob
from actors.queue_keys import decode

HELD_KEY = "hl:q:jobs:held:worker-under-test"


def held_job(redis: redis_lib.Redis, raw: bytes) -> HeldMessage:
    """A job message as a worker holds it: taken off its queue, on a held list."""
    redis.lpush(HELD_KEY, raw)
    return HeldMessage(decode(raw), raw, HELD_KEY)


def run_with(actor: VectorJob, message: HeldMessage, task_id: str) -> None:
    current = CurrentMessage()
    current.before_process_message(None, message)
    try:
        actor(task_id)
    finally:
        current.after_process_message(None, message)
