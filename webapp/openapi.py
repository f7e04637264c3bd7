"""The API described as OpenAPI 3 (served at ``/openapi.json``; fuzzed by the tests)."""
from __future__ import annotations

from typing import Any

from hookline import __version__
from webapp import collections_openapi, uploads_openapi
from webapp.idempotency import MAX_KEY_LENGTH
from webapp.openapi_parts import COMMON as _COMMON
from webapp.openapi_parts import INDEX as _INDEX
from webapp.openapi_parts import errors as _errors
from webapp.openapi_parts import json_ref as _json

_STATUS = ["PENDING", "STARTED", "RETRY", "SUCCESS", "FAILURE", "REVOKED"]
_ISO = {"type": "string", "format": "date-time"}
_ISO_OR_NULL = {"type": "string", "format": "date-time", "nullable": True}


_ID = {"name": "task_id", "in": "path", "required": True, "schema": {"type": "string"}}
_CB = {"name": "cb_id", "in": "path", "required": True, "schema": {"type": "string"}}
_LIMIT = {"name": "limit", "in": "query",
          "schema": {"type": "integer", "minimum": 1, "maximum": 500}}
#: A cursor is opaque: the ``next_cursor`` of the page before, as it came.
_OPAQUE_CURSOR = {
    "name": "cursor", "in": "query",
    "description": "The next_cursor of the previous page, unchanged (base64url, no padding); "
                   "empty is the first page; any other value is 422.",
    "schema": {"type": "string", "maxLength": 512, "pattern": "^[A-Za-z0-9_-]*$"},
}
_PAGE = [_LIMIT, _OPAQUE_CURSOR]
#: The deliveries list's cursor: the offset of the next attempt.
_DELIVERY_PAGE = [_LIMIT, {
    "name": "cursor", "in": "query",
    "description": "The next_cursor of the previous page, unchanged (an offset in digits); "
                   "empty is the first page.",
    "schema": {"type": "string", "pattern": "^[0-9]{0,9}$"},
}]
_URL = {"type": "string", "minLength": 1, "maxLength": 2048}
#: What ``metadata.collection`` must look like (SPEC section 8).
_COLLECTION = {"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,64}$"}
def document(max_vectors: int = 100_000, max_dimension: int = 4096) -> dict[str, Any]:
    """The OpenAPI document, with this deployment's job limits."""
    schemas: dict[str, Any] = {
        "Problem": {
            "type": "object",
            "required": ["type", "title", "status", "detail"],
            "properties": {
                "type": {"type": "string"}, "title": {"type": "string"},
                "status": {"type": "integer"}, "detail": {"type": "string"},
                "errors": {"type": "object", "additionalProperties": {}},
            },
        },
        "TaskSubmit": {
            "type": "object",
            "required": ["vector_data"],
            "additionalProperties": False,
            "properties": {
                "vector_data": {
                    "oneOf": [
                        {"type": "array", "minItems": 1, "maxItems": max_vectors,
                         "items": {"type": "number"}},
                        {"type": "array", "minItems": 1, "maxItems": max_vectors,
                         "items": {"type": "array", "minItems": 1, "maxItems": max_dimension,
                                   "items": {"type": "number"}}},
                    ]
                },
                "metadata": {"type": "object", "additionalProperties": {},
                             "properties": {"collection": _COLLECTION},
                             "description": "At most 16 KiB as JSON; numbers finite."},
                "callback_url": {**_URL, "description": "A URL this tenant registered."},
                "callback_id": {"type": "string", "minLength": 1, "maxLength": 64},
                "collection": _COLLECTION,
                "ids": {"type": "array", "description": "One per vector, unique within the job.",
                        "uniqueItems": True,
                        "items": {"type": "string", "minLength": 1, "maxLength": 128}},
                "index": _INDEX,
            },
        },
        "TaskAccepted": {
            "type": "object",
            "required": ["task_id", "status", "links"],
            "properties": {
                "task_id": {"type": "string"},
                "status": {"type": "string", "enum": ["Processing"]},
                "links": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        },
        "Task": {
            "type": "object",
            "required": ["task_id", "status", "created_at", "attempts", "progress"],
            "properties": {
                "task_id": {"type": "string"},
                "status": {"type": "string", "enum": _STATUS},
                "result": {"type": "object", "nullable": True, "additionalProperties": {}},
                "error": {"type": "string"},
                "created_at": _ISO, "started_at": _ISO_OR_NULL, "finished_at": _ISO_OR_NULL,
                "attempts": {"type": "integer"},
                "progress": {"type": "object", "properties": {
                    "done": {"type": "integer"}, "total": {"type": "integer"}}},
                "chunks": {"type": "object", "properties": {
                    "done": {"type": "integer"}, "failed": {"type": "integer"},
                    "total": {"type": "integer"}}},
                "metadata": {"type": "object", "additionalProperties": {}},
                "callback": {"type": "object", "nullable": True, "properties": {
                    "id": {"type": "string"}, "url": {"type": "string"},
                    "delivery": {"type": "string", "nullable": True,
                                 "enum": ["pending", "retrying", "delivered", "failed",
                                          "disabled", None]}}},
            },
        },
        "TaskList": {
            "type": "object", "required": ["items", "next_cursor"],
            "properties": {"items": {"type": "array", "items": {"$ref": "#/components/schemas/Task"}},
                           "next_cursor": {"type": "string", "nullable": True}},
        },
        "CallbackCreate": {
            "type": "object", "required": ["url"], "additionalProperties": False,
            "properties": {"url": _URL, "description": {"type": "string", "maxLength": 1024}},
        },
        "CallbackPatch": {
            "type": "object", "additionalProperties": False,
            "properties": {"url": _URL, "description": {"type": "string", "maxLength": 1024},
                           "disabled": {"type": "boolean"}},
        },
        "Callback": {
            "type": "object", "required": ["id", "url", "disabled", "created_at"],
            "properties": {
                "id": {"type": "string"}, "url": {"type": "string"},
                "description": {"type": "string"}, "disabled": {"type": "boolean"},
                "disabled_reason": {"type": "string", "nullable": True}, "created_at": _ISO,
                "secret": {"type": "string"},
            },
        },
        "CallbackList": {
            "type": "object", "required": ["items", "next_cursor"],
            "properties": {"items": {"type": "array", "items": {"$ref": "#/components/schemas/Callback"}},
                           "next_cursor": {"type": "string", "nullable": True}},
        },
        "Secret": {
            "type": "object", "required": ["id", "secret"],
            "properties": {"id": {"type": "string"}, "secret": {"type": "string"},
                           "previous_secret_expires_at": _ISO},
        },
        "Recover": {
            "type": "object", "required": ["since"], "additionalProperties": False,
            "properties": {"since": {"type": "string", "format": "date-time"}},
        },
        "Delivery": {
            "type": "object",
            "required": ["webhook_id", "attempt", "at", "status_code", "error", "duration_ms",
                         "response_excerpt", "trigger"],
            "properties": {
                "webhook_id": {"type": "string"}, "attempt": {"type": "integer"}, "at": _ISO,
                "status_code": {"type": "integer", "nullable": True},
                "error": {"type": "string", "nullable": True},
                "duration_ms": {"type": "number"}, "response_excerpt": {"type": "string"},
                "trigger": {"type": "string", "enum": ["scheduled", "manual", "progress"],
                            "description": "progress: a large job's task.progress event"},
            },
        },
        "DeliveryList": {
            "type": "object", "required": ["items", "next_cursor"],
            "properties": {"items": {"type": "array", "items": {"$ref": "#/components/schemas/Delivery"}},
                           "next_cursor": {"type": "string", "nullable": True}},
        },
        "Upload": {
            "type": "object",
            "required": ["id", "format", "length", "offset", "state", "created_at"],
            "properties": {
                "id": {"type": "string"}, "format": {"type": "string", "enum": ["npy", "f32", "ids"]},
                "length": {"type": "integer"}, "offset": {"type": "integer"},
                "state": {"type": "string", "enum": ["open", "complete"]},
                "rows": {"type": "integer", "nullable": True},
                "dimension": {"type": "integer", "nullable": True},
                "dtype": {"type": "string", "nullable": True}, "created_at": _ISO,
            },
        },
        "Accepted": {"type": "object", "additionalProperties": {}},
        "Status": {"type": "object", "additionalProperties": {}},
    }
    paths: dict[str, Any] = {
        "/tasks": {
            "post": {
                "summary": "Submit a job", "operationId": "submitTask",
                "parameters": [{"name": "Idempotency-Key", "in": "header",
                                "schema": {"type": "string", "minLength": 1,
                                           "maxLength": MAX_KEY_LENGTH}}],
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "oneOf": [{"$ref": "#/components/schemas/TaskSubmit"},
                              {"$ref": "#/components/schemas/TaskFromUpload"}]}}}},
                "responses": {"202": {"description": "Accepted", "content": _json("TaskAccepted")},
                              **_errors(404, 409, 415, 422, *_COMMON)},
            },
            "get": {
                "summary": "List tasks, newest first", "operationId": "listTasks",
                "parameters": [*_PAGE, {"name": "status", "in": "query",
                                        "schema": {"type": "string", "enum": _STATUS}}],
                "responses": {"200": {"description": "A page", "content": _json("TaskList")},
                              **_errors(422, *_COMMON)},
            },
        },
        "/tasks/{task_id}": {"get": {
            "summary": "Read a task", "operationId": "getTask", "parameters": [_ID],
            "responses": {"200": {"description": "The task", "content": _json("Task")},
                          "304": {"description": "Not modified"}, **_errors(404, *_COMMON)},
        }},
        "/tasks/{task_id}/cancel": {"post": {
            "summary": "Cancel a task", "operationId": "cancelTask", "parameters": [_ID],
            "responses": {"202": {"description": "Cancelled or stopping", "content": _json("Task")},
                          **_errors(404, 409, *_COMMON)},
        }},
        "/tasks/{task_id}/deliveries": {"get": {
            "summary": "Webhook attempts, oldest first", "operationId": "listDeliveries",
            "parameters": [_ID, *_DELIVERY_PAGE],
            "responses": {"200": {"description": "A page", "content": _json("DeliveryList")},
                          **_errors(404, 422, *_COMMON)},
        }},
        "/tasks/{task_id}/deliveries/retry": {"post": {
            "summary": "Send the webhook once more", "operationId": "retryDelivery",
            "parameters": [_ID],
            "responses": {"202": {"description": "Queued", "content": _json("Accepted")},
                          **_errors(404, 409, *_COMMON)},
        }},
        "/callbacks": {
            "post": {
                "summary": "Register a callback", "operationId": "createCallback",
                "requestBody": {"required": True, "content": _json("CallbackCreate")},
                "responses": {"201": {"description": "Created", "content": _json("Callback")},
                              **_errors(415, 422, *_COMMON)},
            },
            "get": {
                "summary": "List callbacks", "operationId": "listCallbacks", "parameters": _PAGE,
                "responses": {"200": {"description": "A page", "content": _json("CallbackList")},
                              **_errors(422, *_COMMON)},
            },
        },
        "/callbacks/{cb_id}": {
            "get": {"summary": "Read a callback", "operationId": "getCallback", "parameters": [_CB],
                    "responses": {"200": {"description": "The callback", "content": _json("Callback")},
                                  **_errors(404, *_COMMON)}},
            "patch": {"summary": "Change a callback", "operationId": "patchCallback",
                      "parameters": [_CB],
                      "requestBody": {"required": True, "content": _json("CallbackPatch")},
                      "responses": {"200": {"description": "Changed", "content": _json("Callback")},
                                    **_errors(404, 415, 422, *_COMMON)}},
            "delete": {"summary": "Delete a callback", "operationId": "deleteCallback",
                       "parameters": [_CB],
                       "responses": {"204": {"description": "Deleted"}, **_errors(404, *_COMMON)}},
        },
        "/callbacks/{cb_id}/rotate-secret": {"post": {
            "summary": "Rotate the signing secret", "operationId": "rotateSecret",
            "parameters": [_CB],
            "responses": {"200": {"description": "The new secret", "content": _json("Secret")},
                          **_errors(404, *_COMMON)},
        }},
        "/callbacks/{cb_id}/recover": {"post": {
            "summary": "Resend failed deliveries since a time", "operationId": "recoverCallback",
            "parameters": [_CB], "requestBody": {"required": True, "content": _json("Recover")},
            "responses": {"202": {"description": "Queued", "content": _json("Accepted")},
                          **_errors(404, 415, 422, *_COMMON)},
        }},
        "/healthz": {"get": {"summary": "Process alive", "operationId": "healthz", "security": [],
                             "responses": {"200": {"description": "Alive", "content": _json("Status")},
                                           **_errors(400, 413)}}},
        "/readyz": {"get": {"summary": "Redis reachable", "operationId": "readyz", "security": [],
                            "responses": {"200": {"description": "Ready", "content": _json("Status")},
                                          "503": {"description": "Not ready", "content": _json("Status")},
                                          **_errors(400, 413)}}},
    }
    schemas.update(collections_openapi.schemas())
    paths.update(collections_openapi.paths(_errors, _PAGE))
    paths.update(uploads_openapi.paths())
    schemas.update(uploads_openapi.schemas(collection=_COLLECTION, url=_URL))
    return {
        "openapi": "3.0.3",
        "info": {"title": "Hookline", "version": __version__,
                 "description": "Long-running jobs behind HTTP, with signed completion webhooks."},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }
