"""What the request handlers need, built once by the app factory."""
from __future__ import annotations

from dataclasses import dataclass, field

import redis
from flask import current_app

from actors.messages import HEARTBEATS_KEY
from callbacks import CallbackRegistry, UrlGuard
from hookline.config import Config
from hookline.ratelimit import RateLimiter
from hookline.redis_client import connect
from hookline.schedule import Schedule
from hookline.task_store import TaskStore
from hookline.tenants import KeyStore
from webapp.callback_lookup import CallbackLookup
from webapp.idempotency import IdempotencyKeys
from webapp.schemas import ListQuerySchema, TaskSubmitSchema


@dataclass
class WebServices:
    config: Config
    redis: redis.Redis
    store: TaskStore
    keys: KeyStore
    limiter: RateLimiter
    registry: CallbackRegistry
    guard: UrlGuard
    schedule: Schedule
    #: Resolves the callback a submitted task names (keeps a short cache).
    callbacks: CallbackLookup = field(init=False)
    #: ``Idempotency-Key`` claims, and this process's requests that hold one.
    idempotency: IdempotencyKeys = field(init=False)
    #: Built once: marshmallow schemas are costly to make per request.
    submit_schema: TaskSubmitSchema = field(init=False)
    list_schema: ListQuerySchema = field(default_factory=ListQuerySchema)

    def __post_init__(self) -> None:
        self.callbacks = CallbackLookup(self.registry)
        self.idempotency = IdempotencyKeys(self.redis)
        self.submit_schema = TaskSubmitSchema(
            max_vectors=self.config.max_vectors, max_dimension=self.config.max_dimension)

    @classmethod
    def build(cls, config: Config) -> "WebServices":
        client = connect(config.redis_url)
        return cls(
            config=config,
            redis=client,
            store=TaskStore(client, result_ttl=config.result_ttl, heartbeats_key=HEARTBEATS_KEY),
            keys=KeyStore(client),
            limiter=RateLimiter(client, config.rate_limit),
            registry=CallbackRegistry(client, grace=config.secret_grace),
            guard=UrlGuard(config.callback_allow),
            schedule=Schedule(client),
        )


def services() -> WebServices:
    return current_app.extensions["hookline"]  # type: ignore[no-any-return]
