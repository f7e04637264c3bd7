"""What the actors need, built once per worker process and passed in."""
from __future__ import annotations

from dataclasses import dataclass

import redis

from actors.messages import HEARTBEATS_KEY
from hookline.config import Config
from hookline.redis_client import connect
from hookline.schedule import Schedule
from hookline.task_store import TaskStore


@dataclass
class Services:
    config: Config
    redis: redis.Redis
    store: TaskStore
    schedule: Schedule

    @classmethod
    def build(cls, config: Config) -> "Services":
        client = connect(config.redis_url)
        return cls(
            config=config,
            redis=client,
            store=TaskStore(client, result_ttl=config.result_ttl, heartbeats_key=HEARTBEATS_KEY),
            schedule=Schedule(client),
        )
