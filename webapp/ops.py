"""Operations endpoints: liveness, readiness, metrics and the OpenAPI document."""
from __future__ import annotations

from flask import Blueprint, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess

from actors.queues import QueueCollector
from hookline.metrics import FinishedCollector
from hookline.redis_client import UNAVAILABLE
from webapp.jsonio import reply
from webapp.openapi import document
from webapp.services import services

bp = Blueprint("ops", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    return reply({"status": "ok"})


@bp.get("/readyz")
def readyz() -> Response:
    svc = services()
    try:
        svc.redis.ping()
    except UNAVAILABLE:
        return reply({"status": "unavailable", "redis": "unreachable"}, 503, {"Retry-After": "5"})
    return reply({"status": "ready", "redis": "ok", "broker": "redis"})


@bp.get("/metrics")
def metrics() -> Response:
    svc = services()
    registry = CollectorRegistry()
    if svc.config.prometheus_multiproc_dir:
        multiprocess.MultiProcessCollector(registry)
        body = generate_latest(registry)
    else:
        from prometheus_client import REGISTRY

        body = generate_latest(REGISTRY)
    queues = CollectorRegistry()
    queues.register(QueueCollector(svc.redis, heartbeat_timeout_ms=svc.config.heartbeat_timeout_ms))
    queues.register(FinishedCollector(svc.redis))
    body += generate_latest(queues)
    return Response(body, 200, content_type=CONTENT_TYPE_LATEST)


@bp.get("/openapi.json")
def openapi() -> Response:
    config = services().config
    return reply(document(config.max_vectors, config.max_dimension))
