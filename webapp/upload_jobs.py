"""``POST /tasks {"upload_id", ...}``: a job whose vectors are in an upload.

Called by ``webapp.tasks`` for a body that names ``upload_id``; idempotency
keys, tenants and callbacks work as for inline jobs (the caller handles the
key, and hands its callback resolver in).
"""
from __future__ import annotations

import logging
from typing import Any

import orjson
from flask import Response, current_app, g
from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates

from actors.messages import job_message
from hookline import metrics
from hookline.ids import new_task_id
from hookline.uploads import UploadStore
from webapp.idempotency import Claimed
from webapp.problems import Problem, unprocessable
from webapp.schemas import TaskSubmitSchema
from webapp.services import WebServices

log = logging.getLogger("hookline.tasks")

class UploadTaskSchema(Schema):
    class Meta:
        unknown = RAISE

    upload_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    collection = fields.String(validate=validate.Regexp(r"^[A-Za-z0-9_.-]{1,64}$"))
    metadata = fields.Dict(keys=fields.String(), load_default=dict)
    callback_url = fields.String(validate=validate.Length(min=1, max=2048))
    callback_id = fields.String(validate=validate.Length(min=1, max=64))

    @validates("metadata")
    def _metadata_rules(self, value: dict[str, Any], **kwargs: Any) -> None:
        # The inline job's rules (size, collection name), as they are.
        TaskSubmitSchema._metadata_size(self, value)  # type: ignore[arg-type]


_schema = UploadTaskSchema()


def _invalid(field: str, message: str, status: int = 422) -> Problem:
    if status == 422:
        return unprocessable(message, errors={field: [message]})
    return Problem(status, "Not Found", message, errors={field: [message]})


def submit(svc: WebServices, owner: str, body: dict[str, Any], claimed: Claimed | None) -> Response:
    """Accept a job from a complete upload of ``owner``'s: ``202``, as an inline job.

    Raises:
        Problem: 404 for an upload that is not the tenant's, 422 for an
            unfinished upload or a body that breaks a rule.
    """
    if "vector_data" in body:
        raise _invalid("upload_id", "Send vector_data or upload_id, not both.")
    try:
        data = _schema.load(body)
    except ValidationError as exc:
        raise unprocessable("The task is not valid; see errors.",
                            errors=exc.normalized_messages()) from None
    uploads: UploadStore = current_app.extensions["hookline_uploads"].store
    upload = uploads.get(data["upload_id"], owner)
    if upload is None:
        raise _invalid("upload_id", "No upload with that id exists for this API key.", 404)
    if not upload.complete:
        raise _invalid("upload_id", f"The upload holds {upload.offset} of its {upload.length} "
                                    "bytes; finish it first.")
    callback = svc.callbacks.resolve(owner, data)
    metadata = data["metadata"]
    collection = data.get("collection") or str(metadata.get("collection", "default"))
    task_id = new_task_id()
    links = {"self": f"/tasks/{task_id}", "cancel": f"/tasks/{task_id}/cancel",
             "deliveries": f"/tasks/{task_id}/deliveries"}
    answer = orjson.dumps({"task_id": task_id, "status": "Processing", "links": links})
    location = f"/tasks/{task_id}"
    claimed_answer = claimed.answer_write(202, answer, location) if claimed is not None else None
    written = svc.store.submit_from_upload(
        task_id=task_id, tenant=owner, upload_id=upload.id, count=upload.rows,
        dimension=upload.dimension, metadata_json=orjson.dumps(metadata), collection=collection,
        callback=callback, message=job_message(task_id), answer=claimed_answer)
    if not written:
        raise _invalid("upload_id", "No upload with that id exists for this API key.", 404)
    metrics.tasks_submitted.inc()
    g.task_id = task_id
    log.info("task accepted", extra={"task_id": task_id, "status": "PENDING", "count": upload.rows,
                                      "upload_id": upload.id})
    resp = Response(answer, 202, mimetype="application/json")
    resp.headers["Location"] = location
    return resp
