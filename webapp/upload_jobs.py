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
from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates, validates_schema

from actors.messages import job_message
from hookline import metrics
from hookline.blobs import BlobError
from hookline.ids import new_task_id
from hookline.task_chunks import PROGRESS_EVENTS_FIELD
from hookline.task_record import NOT_INDEXED
from hookline.upload_ids import IDS_INDEX_FIELD, IDS_UPLOAD_FIELD, IdsError, IdsIndex, index_ids
from hookline.uploads import IDS, Upload
from webapp.collections_api import check_collection
from webapp.idempotency import Claimed
from webapp.problems import Problem, unprocessable
from webapp.schemas import JsonBoolean, TaskSubmitSchema, job_collection, not_indexed_names_no_collection
from webapp.services import WebServices
from webapp.upload_writes import UploadServices

log = logging.getLogger("hookline.tasks")

class UploadTaskSchema(Schema):
    class Meta:
        unknown = RAISE

    upload_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    ids_upload_id = fields.String(validate=validate.Length(min=1, max=64))
    collection = fields.String(validate=validate.Regexp(r"^[A-Za-z0-9_.-]{1,64}$"))
    metadata = fields.Dict(keys=fields.String(), load_default=dict)
    callback_url = fields.String(validate=validate.Length(min=1, max=2048))
    callback_id = fields.String(validate=validate.Length(min=1, max=64))
    progress_events = JsonBoolean(load_default=False)
    #: ``false``: processed and summarised, kept in no collection.
    index = JsonBoolean(load_default=True)

    @validates("metadata")
    def _metadata_rules(self, value: dict[str, Any], **kwargs: Any) -> None:
        # The inline job's rules (size, collection name), as they are.
        TaskSubmitSchema._metadata_size(self, value)  # type: ignore[arg-type]

    @validates_schema
    def _index_or_collection(self, data: dict[str, Any], **kwargs: Any) -> None:
        not_indexed_names_no_collection(data)


_schema = UploadTaskSchema()


def _invalid(field: str, message: str, status: int = 422) -> Problem:
    if status == 422:
        return unprocessable(message, errors={field: [message]})
    return Problem(status, "Not Found", message, errors={field: [message]})


def _complete(upload: Upload | None, field: str) -> Upload:
    if upload is None:
        raise _invalid(field, "No upload with that id exists for this API key.", 404)
    if not upload.complete:
        raise _invalid(field, f"The upload holds {upload.offset} of its {upload.length} "
                              "bytes; finish it first.")
    return upload


def _ids_upload(uploads: UploadServices, owner: str, upload_id: str) -> Upload:
    upload = _complete(uploads.store.get(upload_id, owner), "ids_upload_id")
    if upload.format != IDS:
        raise _invalid("ids_upload_id", "The upload is not of format ids.")
    return upload


def index_of(uploads: UploadServices, ids_upload: Upload, rows: int) -> IdsIndex:
    """The ids upload checked against a job of ``rows`` vectors; its index.

    Raises:
        Problem: 422 for an id that breaks a rule or a count that differs;
            503 when the blob store fails.
    """
    try:
        return index_ids(uploads.blobs, ids_upload, rows, uploads.config.chunk_vectors)
    except IdsError as exc:
        message = f"{str(exc)[:1].upper()}{str(exc)[1:]}."
        raise _invalid("ids_upload_id", message) from None
    except BlobError:
        log.warning("ids upload unreadable", extra={"upload_id": ids_upload.id})
        raise Problem(503, "Service Unavailable", "The ids upload cannot be read now; retry.",
                      headers={"Retry-After": "5"}) from None


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
    uploads: UploadServices = current_app.extensions["hookline_uploads"]
    upload = _complete(uploads.store.get(data["upload_id"], owner), "upload_id")
    if upload.format == IDS:
        raise _invalid("upload_id", "The upload holds ids; name it as ids_upload_id.")
    callback = svc.callbacks.resolve(owner, data)
    if data["progress_events"] and callback is None:
        raise _invalid("progress_events", "Progress events go to the task's callback; "
                                          "name callback_url or callback_id too.")
    metadata = data["metadata"]
    task_id = new_task_id()
    collection = job_collection(data)
    if collection != NOT_INDEXED:
        # A named collection is made with the job's dimension, or must have it.
        check_collection(svc.redis, owner, collection, upload.dimension, field="collection")
    links = {"self": f"/tasks/{task_id}", "cancel": f"/tasks/{task_id}/cancel",
             "deliveries": f"/tasks/{task_id}/deliveries"}
    answer = orjson.dumps({"task_id": task_id, "status": "Processing", "links": links})
    location = f"/tasks/{task_id}"
    record_fields: dict[str, str] = {PROGRESS_EVENTS_FIELD: "1"} if data["progress_events"] else {}
    if "ids_upload_id" in data:
        ids_upload = _ids_upload(uploads, owner, data["ids_upload_id"])
        record_fields.update({IDS_UPLOAD_FIELD: ids_upload.id,
                              IDS_INDEX_FIELD: index_of(uploads, ids_upload, upload.rows).to_json()})
    claimed_answer = claimed.answer_write(202, answer, location) if claimed is not None else None
    written = svc.store.submit_from_upload(
        task_id=task_id, tenant=owner, upload_id=upload.id, count=upload.rows,
        dimension=upload.dimension, metadata_json=orjson.dumps(metadata), collection=collection,
        callback=callback, message=job_message(task_id), answer=claimed_answer,
        ids_upload_id=record_fields.get(IDS_UPLOAD_FIELD), fields=record_fields)
    if not written:
        raise _invalid("upload_id", "One of the task's uploads is gone; upload it again.", 404)
    metrics.tasks_submitted.inc()
    g.task_id = task_id
    log.info("task accepted", extra={"task_id": task_id, "status": "PENDING", "count": upload.rows,
                                      "upload_id": upload.id})
    resp = Response(answer, 202, mimetype="application/json")
    resp.headers["Location"] = location
    return resp
