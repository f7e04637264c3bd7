"""The callbacks API: registered endpoints, secrets, delivery logs and resends."""
from __future__ import annotations

import logging
import re

from flask import Blueprint, Response, request
from marshmallow import RAISE, Schema, fields, validate

from callbacks import UnsafeUrlError
from hookline.ids import isoformat, parse_isoformat
from webapp import actions
from webapp.auth import authenticate, tenant
from webapp.jsonio import json_body, load, reply
from webapp.problems import Problem, not_found, unprocessable
from webapp.services import services
from webapp.tasks import _get_task

log = logging.getLogger("hookline.callbacks")

bp = Blueprint("callbacks", __name__)
bp.before_request(authenticate)


class CallbackCreateSchema(Schema):
    class Meta:
        unknown = RAISE

    url = fields.String(required=True, validate=validate.Length(min=1, max=2048))
    description = fields.String(load_default="", validate=validate.Length(max=1024))


class CallbackPatchSchema(Schema):
    class Meta:
        unknown = RAISE

    url = fields.String(validate=validate.Length(min=1, max=2048))
    description = fields.String(validate=validate.Length(max=1024))
    # Only JSON true and false; no "yes", 1 or "on".
    disabled = fields.Boolean(truthy={True}, falsy={False})


class RecoverSchema(Schema):
    class Meta:
        unknown = RAISE

    since = fields.String(required=True)


#: A deliveries cursor: the offset of the next attempt, in ASCII digits.
_OFFSET_CURSOR = re.compile(r"[0-9]{1,9}")


class PageSchema(Schema):
    class Meta:
        unknown = RAISE

    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))
    cursor = fields.String(load_default=None, validate=validate.Length(max=512))




def _guard(url: str) -> None:
    try:
        services().guard.check(url)
    except UnsafeUrlError as exc:
        raise unprocessable(str(exc), errors={"url": [str(exc)]}) from None


@bp.post("/callbacks")
def create() -> Response:
    data = load(CallbackCreateSchema(), json_body())
    _guard(data["url"])
    record, secret = services().registry.create(tenant(), data["url"], data["description"])
    log.info("callback registered", extra={"callback_id": record["id"]})
    return reply({**record, "secret": secret}, 201, {"Location": f"/callbacks/{record['id']}"})


@bp.get("/callbacks")
def index() -> Response:
    query = load(PageSchema(), request.args.to_dict())
    try:
        items, cursor = services().registry.list(tenant(), query["limit"], query["cursor"])
    except ValueError:
        raise unprocessable("The cursor is not valid.",
                            errors={"cursor": ["Not a cursor from this API."]}) from None
    return reply({"items": items, "next_cursor": cursor})


def _get(cb_id: str) -> dict:
    record = services().registry.get(tenant(), cb_id) if len(cb_id) <= 64 else None
    if record is None:
        raise not_found("callback")
    return record


@bp.get("/callbacks/<cb_id>")
def read(cb_id: str) -> Response:
    return reply(_get(cb_id))


@bp.patch("/callbacks/<cb_id>")
def update(cb_id: str) -> Response:
    _get(cb_id)
    data = load(CallbackPatchSchema(), json_body())
    if "url" in data:
        _guard(data["url"])
    record = services().registry.update(tenant(), cb_id, **data)
    if record is None:
        raise not_found("callback")
    return reply(record)


@bp.delete("/callbacks/<cb_id>")
def delete(cb_id: str) -> Response:
    _get(cb_id)
    services().registry.delete(tenant(), cb_id)
    return Response(status=204)


@bp.post("/callbacks/<cb_id>/rotate-secret")
def rotate(cb_id: str) -> Response:
    _get(cb_id)
    rotated = actions.rotate_secret(services(), tenant(), cb_id)
    if rotated is None:
        raise not_found("callback")
    secret, expires_at = rotated
    return reply({"id": cb_id, "secret": secret, "previous_secret_expires_at": expires_at})


@bp.post("/callbacks/<cb_id>/recover")
def recover(cb_id: str) -> Response:
    _get(cb_id)
    data = load(RecoverSchema(), json_body())
    try:
        since = parse_isoformat(data["since"])
    except (ValueError, OverflowError):
        raise unprocessable("since must be an ISO 8601 timestamp.",
                            errors={"since": ["Not an ISO 8601 timestamp."]}) from None
    count = actions.recover_failed(services(), cb_id, since)
    return reply({"id": cb_id, "since": isoformat(since), "count": count}, 202)


@bp.get("/tasks/<task_id>/deliveries")
def deliveries(task_id: str) -> Response:
    _get_task(task_id)
    query = load(PageSchema(), request.args.to_dict())
    rows = services().store.deliveries(task_id)
    start = 0
    if query["cursor"]:
        # ASCII digits only: str.isdigit() also takes "²", which int() refuses.
        if not _OFFSET_CURSOR.fullmatch(query["cursor"]):
            raise unprocessable("The cursor is not valid.",
                                errors={"cursor": ["Not a cursor from this API."]})
        start = int(query["cursor"])
    page = rows[start : start + query["limit"]]
    end = start + len(page)
    return reply({"items": page, "next_cursor": str(end) if end < len(rows) else None})


@bp.post("/tasks/<task_id>/deliveries/retry")
def retry(task_id: str) -> Response:
    task = _get_task(task_id)
    try:
        actions.resend_webhook(services(), task)
    except actions.Refused as exc:
        raise Problem(409, "Conflict", str(exc)) from None
    return reply({"task_id": task_id, "status": "queued", "trigger": "manual"}, 202)
