"""The broker, built in exactly one place.

``setup()`` is what the ``dramatiq`` command loads (``dramatiq actors:setup``):
it reads the configuration, builds the Redis broker with Hookline's
middleware, sets it as Dramatiq's global broker and declares the actors on
it. Nothing here runs at import time, so importing ``actors`` connects to
nothing and reads no environment.
"""
from __future__ import annotations

import logging
import os

import dramatiq
from dramatiq import Broker
from dramatiq.middleware import (
    CurrentMessage,
    Middleware,
    TimeLimit,
)

from actors import chunk_job, delivery, jobs
from actors.messages import CALLBACKS_QUEUE, JOB_ACTOR, JOBS_QUEUE, NAMESPACE
from actors.priority import session_nice_applied
from actors.redis_broker import LeanRedisBroker
from actors.services import Services
from actors.shutdown import guard_repeated_sigterm
from actors.upkeep import Upkeep
from callbacks.registry import generation_key
from hookline import logs, metrics
from hookline.config import Config
from hookline.redis_client import connect

log = logging.getLogger("hookline.worker")


class WorkerProcess(Middleware):
    """Process-level set-up and tear-down for a worker process."""

    def __init__(self, services: Services, broker: LeanRedisBroker) -> None:
        self.services = services
        self.broker = broker
        self.upkeep: Upkeep | None = None

    def after_worker_boot(self, broker: Broker, worker: dramatiq.Worker) -> None:
        metrics.initialise()
        session_nice_applied()
        upkeep = Upkeep(self.broker, self.services, deliver_due=delivery.make_due_handler(self.services))
        upkeep.heartbeat()
        upkeep.start()
        self.upkeep = upkeep
        log.info("worker process ready", extra={"worker": self.broker.broker_id})

    def before_worker_shutdown(self, broker: Broker, worker: dramatiq.Worker) -> None:
        if self.upkeep is not None:
            self.upkeep.stop()

    def after_worker_shutdown(self, broker: Broker, worker: dramatiq.Worker) -> None:
        # Live gauges of a stopped process must not linger in the sums.
        if self.services.config.prometheus_multiproc_dir:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(os.getpid())


def build_broker(config: Config) -> LeanRedisBroker:
    """A Redis broker with the middleware Hookline relies on."""
    broker = LeanRedisBroker(
        client=connect(config.broker_url),
        namespace=NAMESPACE,
        heartbeat_timeout=config.heartbeat_timeout_ms,
        # Only what the actors use: each middleware is called several times
        # per message (no age limits, pipelines or on_success callbacks here).
        middleware=[TimeLimit(), CurrentMessage()],
        # A webhook, sent by either worker, reuses what it read of its
        # callback while no callback has changed since (actors.endpoints).
        fetch_with={CALLBACKS_QUEUE: generation_key(f"{NAMESPACE}:"),
                    JOBS_QUEUE: generation_key(f"{NAMESPACE}:")},
    )
    return broker


def setup(config: Config | None = None) -> LeanRedisBroker:
    """Build and install the broker and declare the actors on it."""
    config = config or Config.from_env()
    logs.configure(config.log_format, config.log_level)
    # A SIGTERM to the whole process group must drain, not kill (actors.shutdown).
    guard_repeated_sigterm()
    broker = build_broker(config)
    services = Services.build(config)
    broker.add_middleware(WorkerProcess(services, broker))
    dramatiq.set_broker(broker)
    dramatiq.actor(  # type: ignore[call-overload]
        jobs.VectorJob(services, owner=broker.broker_id),
        actor_name=JOB_ACTOR,
        queue_name=JOBS_QUEUE,
        broker=broker,
        time_limit=config.job_time_limit * 1000,
    )
    chunk_job.declare(broker, services, queue_name=JOBS_QUEUE,
                      time_limit_ms=config.job_time_limit * 1000)
    delivery.declare(broker, services, queue_name=CALLBACKS_QUEUE)
    return broker
