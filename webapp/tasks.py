"""The task API (the seed's, kept compatible): submit, read, list, cancel."""
from __future__ import annotations

import logging
import time
from typing import Any

import orjson
from flask import Blueprint, Response, g, request
from marshmallow import ValidationError

from actors.messages import delivery_message, job_message
from hookline import metrics
from hookline.collections import DEFAULT
from hookline.ids import new_task_id
from hookline.tasks import TERMINAL, Task
from webapp.auth import authenticate, tenant
from webapp.collections_api import job_extras
from webapp.idempotency import MAX_KEY_LENGTH, IdempotencyKeys
from webapp.jsonio import json_body, reply
from webapp.problems import Problem, not_found
from webapp.schemas import ListQuerySchema, TaskSubmitSchema
from webapp.services import WebServices, services

log = logging.getLogger("hookline.tasks")

bp = Blueprint("tasks", __name__)
bp.before_request(authenticate)

#: Seconds a poller is asked to wait before polling an unfinished task again.
POLL_RETRY_AFTER = 1

_list_schema = ListQuerySchema()


def _links(task_id: str) -> dict[str, str]:
    return {
        "self": f"/tasks/{task_id}",
        "cancel": f"/tasks/{task_id}/cancel",
        "deliveries": f"/tasks/{task_id}/deliveries",
    }


def _schema(svc: WebServices) -> TaskSubmitSchema:
    cached = getattr(svc, "_submit_schema", None)
    if cached is None:
        cached = TaskSubmitSchema(
            max_vectors=svc.config.max_vectors, max_dimension=svc.config.max_dimension
        )
        svc._submit_schema = cached  # type: ignore[attr-defined]
    return cached


#: Seconds a resolved callback is reused by this process before Redis is asked
#: again (a deleted or changed callback is seen within this time).
CALLBACK_CACHE_SECONDS = 2.0
_callback_cache: dict[tuple[str, str, str], tuple[float, tuple[str, str]]] = {}


def _resolve_callback(svc: WebServices, owner: str, data: dict[str, Any]) -> tuple[str, str] | None:
    callback_id, callback_url = data.get("callback_id"), data.get("callback_url")
    if not callback_id and not callback_url:
        return None
    cache_key = (owner, callback_id or "", callback_url or "")
    cached = _callback_cache.get(cache_key)
    now = time.monotonic()
    if cached is not None and cached[0] > now:
        return cached[1]
    found = _lookup_callback(svc, owner, callback_id, callback_url)
    if len(_callback_cache) > 10_000:
        _callback_cache.clear()
    _callback_cache[cache_key] = (now + CALLBACK_CACHE_SECONDS, found)
    return found


def _lookup_callback(
    svc: WebServices, owner: str, callback_id: str | None, callback_url: str | None
) -> tuple[str, str]:
    if callback_id and callback_url:
        raise Problem(422, "Unprocessable Content", "Send callback_id or callback_url, not both.",
                      errors={"callback_id": ["Send callback_id or callback_url, not both."]})
    if callback_id:
        record = svc.registry.get(owner, callback_id)
        if record is None:
            raise Problem(422, "Unprocessable Content", "No callback with that id exists.",
                          errors={"callback_id": ["No callback with that id exists for this API key."]})
        return record["id"], record["url"]
    if callback_url:
        found = svc.registry.find_by_url(owner, callback_url)
        if found is None:
            message = ("This URL is not a registered callback. Register it first with "
                       "POST /callbacks {\"url\": ...} and use the URL or the returned id.")
            raise Problem(422, "Unprocessable Content", message, errors={"callback_url": [message]})
        record = svc.registry.get(owner, found)
        if record is None:
            raise not_found("callback")
        return record["id"], record["url"]
    raise AssertionError("unreachable: no callback named")


@bp.post("/tasks")
def submit() -> Response:
    svc = services()
    owner = tenant()
    idem_header = request.headers.get("Idempotency-Key")
    if idem_header is None:
        return _submit(svc, owner, None)
    if not idem_header or len(idem_header) > MAX_KEY_LENGTH:
        raise Problem(400, "Bad Request", f"Idempotency-Key must be 1-{MAX_KEY_LENGTH} characters.")
    keys = IdempotencyKeys(svc.redis)
    rkey = keys.redis_key(owner, idem_header)
    fingerprint = keys.fingerprint(request.get_data(cache=True))
    stored = keys.claim(rkey, fingerprint)
    if stored is not None:
        if stored.fingerprint != fingerprint:
            raise Problem(422, "Unprocessable Content",
                          "This Idempotency-Key was already used with a different request body.")
        if stored.state == "pending":
            raise Problem(409, "Conflict",
                          "A request with this Idempotency-Key is still being processed; retry shortly.",
                          headers={"Retry-After": "1"})
        resp = Response(stored.body, stored.status,
                        mimetype="application/json" if stored.status < 400 else "application/problem+json")
        if stored.location:
            resp.headers["Location"] = stored.location
        resp.headers["Idempotent-Replayed"] = "true"
        return resp
    try:
        return _submit(svc, owner, (rkey, fingerprint, keys))
    except Problem as problem:
        if problem.status >= 500 or problem.status in (401, 429):
            keys.release(rkey)
        else:
            resp = problem.response()
            keys.store(rkey, problem.status, resp.get_data(), "", fingerprint)
        raise
    except Exception:
        keys.release(rkey)
        raise


def _submit(svc: WebServices, owner: str, idem: tuple[str, str, IdempotencyKeys] | None) -> Response:
    body = json_body()
    if not isinstance(body, dict):
        raise Problem(422, "Unprocessable Content", "The body must be a JSON object.",
                      errors={"_schema": ["Must be a JSON object."]})
    try:
        data = _schema(svc).load(body)
    except ValidationError as exc:
        raise Problem(422, "Unprocessable Content", "The task is not valid; see errors.",
                      errors=exc.normalized_messages()) from None
    callback = _resolve_callback(svc, owner, data)
    vectors = data["vector_data"]
    metadata = data["metadata"]
    task_id = new_task_id()
    answer = {"task_id": task_id, "status": "Processing", "links": _links(task_id)}
    answer_bytes = orjson.dumps(answer)
    location = f"/tasks/{task_id}"
    collection = data.get("collection") or str(metadata.get("collection", DEFAULT))
    extra = job_extras(svc.redis, owner, collection, task_id, vectors.shape[1], data.get("ids"),
                       svc.config.result_ttl)
    if idem is not None:
        rkey, fingerprint, keys = idem
        extra.append((rkey, keys.answer(202, answer_bytes, location, fingerprint), 24 * 3600))
    svc.store.submit(
        task_id=task_id,
        tenant=owner,
        vectors=vectors.tobytes(),
        count=int(vectors.shape[0]),
        dimension=int(vectors.shape[1]),
        metadata_json=orjson.dumps(metadata),
        collection=collection,
        callback=callback,
        message=job_message(task_id),
        extra=extra,
    )
    metrics.tasks_submitted.inc()
    g.task_id = task_id
    if log.isEnabledFor(logging.INFO):
        log.info("task accepted", extra={"task_id": task_id, "status": "PENDING",
                                          "count": int(vectors.shape[0])})
    resp = Response(answer_bytes, 202, mimetype="application/json")
    resp.headers["Location"] = location
    return resp


def _task_response(task: Task, status: int = 200) -> Response:
    etag = task.etag()
    headers = {"ETag": etag, "Cache-Control": "private, no-cache"}
    if task.status not in TERMINAL:
        headers["Retry-After"] = str(POLL_RETRY_AFTER)
    if status == 200 and etag in _if_none_match():
        resp = Response(status=304)
        for name, value in headers.items():
            resp.headers[name] = value
        return resp
    return reply(task.to_public(), status, headers)


def _if_none_match() -> set[str]:
    raw = request.headers.get("If-None-Match", "")
    return {part.strip().removeprefix("W/") for part in raw.split(",") if part.strip()}


def _get_task(task_id: str) -> Task:
    if len(task_id) > 64:
        raise not_found()
    task = services().store.get(task_id, tenant())
    if task is None:
        raise not_found()
    return task


@bp.get("/tasks/<task_id>")
def read(task_id: str) -> Response:
    return _task_response(_get_task(task_id))


@bp.get("/tasks")
def index() -> Response:
    try:
        query = _list_schema.load(request.args.to_dict())
    except ValidationError as exc:
        raise Problem(422, "Unprocessable Content", "The query is not valid; see errors.",
                      errors=exc.normalized_messages()) from None
    try:
        tasks, cursor = services().store.list(
            tenant(), limit=query["limit"], cursor=query["cursor"], status=query["status"]
        )
    except ValueError:
        raise Problem(422, "Unprocessable Content", "The cursor is not valid.",
                      errors={"cursor": ["Not a cursor from this API."]}) from None
    return reply({"items": [t.to_public() for t in tasks], "next_cursor": cursor})


@bp.post("/tasks/<task_id>/cancel")
def cancel(task_id: str) -> Response:
    task = _get_task(task_id)
    svc = services()
    outcome, previous = svc.store.cancel(
        tenant(), task_id, delivery_message(task_id) if task.callback_id else None
    )
    if outcome == "missing":
        raise not_found()
    if outcome == "finished":
        raise Problem(409, "Conflict", f"The task has already finished ({previous}).")
    if outcome == "revoked":
        metrics.tasks_finished.labels(actor="process_vectors", outcome="revoked").inc()
        log.info("task revoked", extra={"task_id": task_id, "status": "REVOKED", "previous": previous})
    else:
        log.info("task cancel requested", extra={"task_id": task_id, "status": previous})
    updated = svc.store.get(task_id, tenant())
    if updated is None:
        raise not_found()
    return _task_response(updated, 202)
