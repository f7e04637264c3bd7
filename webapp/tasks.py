"""The task API (the seed's, kept compatible): submit, read, list, cancel."""
from __future__ import annotations

import logging

import orjson
from flask import Blueprint, Response, g, request
from marshmallow import ValidationError

from actors.messages import job_message
from hookline import metrics
from hookline.ids import new_task_id
from hookline.task_record import NOT_INDEXED, TERMINAL, Task
from webapp import actions, upload_jobs
from webapp.auth import authenticate, tenant
from webapp.collections_api import check_collection
from webapp.durability import wait_replicas
from webapp.idempotency import Claimed, run_once
from webapp.jsonio import json_body, reply
from webapp.problems import Problem, not_found, unprocessable
from webapp.schemas import job_collection
from webapp.services import WebServices, services

log = logging.getLogger("hookline.tasks")

bp = Blueprint("tasks", __name__)
bp.before_request(authenticate)

#: Seconds a poller is asked to wait before polling an unfinished task again.
POLL_RETRY_AFTER = 1

def _links(task_id: str) -> dict[str, str]:
    return {
        "self": f"/tasks/{task_id}",
        "cancel": f"/tasks/{task_id}/cancel",
        "deliveries": f"/tasks/{task_id}/deliveries",
    }


@bp.post("/tasks")
def submit() -> Response:
    resp = _accept()
    svc = services()
    if resp.status_code == 202 and svc.config.redis_min_replicas:
        # A replayed 202 too: its task may not have reached the replicas yet.
        try:
            wait_replicas(svc, resp.headers["Location"].rsplit("/", 1)[-1])
        except Exception:
            # A failover may keep the key's claim and lose its answer: the
            # next list of running requests says this one is over.
            svc.idempotency.owners.unsettled()
            raise
    return resp


def _accept() -> Response:
    svc = services()
    owner = tenant()
    return run_once(svc.idempotency, owner, request.headers.get("Idempotency-Key"),
                    request.get_data(cache=True), lambda claimed: _submit(svc, owner, claimed))


def _submit(svc: WebServices, owner: str, claimed: Claimed | None) -> Response:
    body = json_body()
    if not isinstance(body, dict):
        raise unprocessable("The body must be a JSON object.",
                            errors={"_schema": ["Must be a JSON object."]})
    if "upload_id" in body:  # the vectors are in an upload (webapp/upload_jobs.py)
        return upload_jobs.submit(svc, owner, body, claimed)
    try:
        data = svc.submit_schema.load(body)
    except ValidationError as exc:
        raise unprocessable("The task is not valid; see errors.",
                            errors=exc.normalized_messages()) from None
    callback = svc.callbacks.resolve(owner, data)
    vectors = data["vector_data"]
    metadata = data["metadata"]
    task_id = new_task_id()
    answer = {"task_id": task_id, "status": "Processing", "links": _links(task_id)}
    answer_bytes = orjson.dumps(answer)
    location = f"/tasks/{task_id}"
    collection = job_collection(data)
    if collection != NOT_INDEXED:
        check_collection(svc.redis, owner, collection, vectors.shape[1])
    extra: list[tuple[str, bytes, int]] = []
    svc.store.submit(
        task_id=task_id,
        tenant=owner,
        vectors=vectors.tobytes(),
        ids_json=orjson.dumps(data["ids"]) if data.get("ids") is not None else b"",
        count=int(vectors.shape[0]),
        dimension=int(vectors.shape[1]),
        metadata_json=orjson.dumps(metadata),
        collection=collection,
        callback=callback,
        message=job_message(task_id),
        extra=extra,
        answer=claimed.answer_write(202, answer_bytes, location) if claimed is not None else None,
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
        query = services().list_schema.load(request.args.to_dict())
    except ValidationError as exc:
        raise unprocessable("The query is not valid; see errors.",
                            errors=exc.normalized_messages()) from None
    try:
        tasks, cursor = services().store.list(
            tenant(), limit=query["limit"], cursor=query["cursor"], status=query["status"]
        )
    except ValueError:
        raise unprocessable("The cursor is not valid.",
                            errors={"cursor": ["Not a cursor from this API."]}) from None
    return reply({"items": [t.to_public() for t in tasks], "next_cursor": cursor})


@bp.post("/tasks/<task_id>/cancel")
def cancel(task_id: str) -> Response:
    task = _get_task(task_id)
    try:
        actions.cancel_task(services(), task)
    except LookupError:
        raise not_found() from None
    except actions.Refused as exc:
        raise Problem(409, "Conflict", str(exc)) from None
    updated = services().store.get(task_id, tenant())
    if updated is None:
        raise not_found()
    return _task_response(updated, 202)
