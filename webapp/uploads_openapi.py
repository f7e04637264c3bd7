"""The OpenAPI description of the tus upload endpoints (SPEC section 9)."""
from __future__ import annotations

from typing import Any

from webapp.openapi_parts import COMMON, INDEX, errors, json_ref, problem_ref

_UP = {"name": "upload_id", "in": "path", "required": True, "schema": {"type": "string"}}
#: tus 1.0's Upload-Metadata: comma-separated "key base64(value)" pairs.
_TUS_METADATA = r"^[!-+\--~]+( [A-Za-z0-9+/]*={0,2})?(,[!-+\--~]+( [A-Za-z0-9+/]*={0,2})?)*$"
_TUS = {"name": "Tus-Resumable", "in": "header", "required": True,
        "schema": {"type": "string", "enum": ["1.0.0"]}}
_TUS_OPTIONS = {"204": {"description": "The protocol version, extensions and largest upload",
                        "headers": {n: {"schema": {"type": "string"}}
                                    for n in ("Tus-Version", "Tus-Extension", "Tus-Max-Size")}}}


def schemas(*, collection: dict[str, Any], url: dict[str, Any]) -> dict[str, Any]:
    """The request body of a task from an upload."""
    return {"TaskFromUpload": {
        "type": "object",
        "required": ["upload_id"],
        "additionalProperties": False,
        "properties": {
            "upload_id": {"type": "string", "minLength": 1, "maxLength": 64,
                          "description": "A complete upload of this tenant's."},
            "ids_upload_id": {"type": "string", "minLength": 1, "maxLength": 64, "description": (
                "A complete upload of format ids: UTF-8, one id (1-128 characters, unique) "
                "per line, one line per vector. Without it an id is <task_id>:<row>.")},
            "collection": collection,
            "metadata": {"type": "object", "additionalProperties": {},
                         "properties": {"collection": collection},
                         "description": "Echoed back; at most 16 KiB as JSON."},
            "callback_url": {**url, "description": "A URL this tenant registered."},
            "callback_id": {"type": "string", "minLength": 1, "maxLength": 64},
            "progress_events": {"type": "boolean", "default": False, "description": (
                "Also send signed task.progress webhooks to the callback (one is required) "
                "while the job runs, at most one every 5 s: {\"type\": \"task.progress\", "
                "\"data\": {\"task_id\", \"status\", \"progress\": {\"done\", \"total\"}, "
                "\"chunks\": {\"done\", \"failed\", \"total\"}}}, each with its own "
                "webhook-id. None is sent once the task begins to end: its terminal webhook "
                "comes last.")},
            "index": INDEX,
        },
    }}


def paths() -> dict[str, Any]:
    """The ``/uploads`` paths."""
    return {
        "/uploads": {
            "post": {
                "summary": "Create a tus upload", "operationId": "createUpload",
                "parameters": [_TUS,
                               {"name": "Upload-Length", "in": "header", "required": True,
                                "schema": {"type": "string", "pattern": "^[0-9]{1,19}$"}},
                               {"name": "Upload-Metadata", "in": "header", "required": True,
                                "description": "format (npy | f32 | ids) and, for f32, "
                                               "dimension; comma-separated 'key base64(value)' "
                                               "pairs. An ids upload is UTF-8 text, one vector "
                                               "id per line, named by a task's ids_upload_id",
                                "schema": {"type": "string", "pattern": _TUS_METADATA}}],
                "responses": {"201": {"description": "Created; Location: /uploads/{id}"},
                              **errors(400, 412, 413, 422, *COMMON)},
            },
            "options": {"summary": "tus discovery", "operationId": "uploadOptions", "security": [],
                        "responses": {**_TUS_OPTIONS, **errors(400, 413)}},
        },
        "/uploads/{upload_id}": {
            "head": {"summary": "The upload's offset (Upload-Offset, Upload-Length)",
                     "operationId": "headUpload", "parameters": [_UP, _TUS],
                     "responses": {"200": {"description": "Upload-Offset and Upload-Length headers"},
                                   **errors(404, 412, *COMMON)}},
            "get": {"summary": "The upload's record", "operationId": "getUpload", "parameters": [_UP],
                    "responses": {"200": {"description": "The upload", "content": json_ref("Upload")},
                                  **errors(404, *COMMON)}},
            "patch": {
                "summary": "Append bytes at Upload-Offset", "operationId": "patchUpload",
                "parameters": [_UP, _TUS, {"name": "Upload-Offset", "in": "header", "required": True,
                                           "schema": {"type": "string", "pattern": "^[0-9]{1,19}$"}}],
                "requestBody": {"required": True, "content": {"application/offset+octet-stream": {
                    "schema": {"type": "string", "format": "binary"}}}},
                "responses": {"204": {"description": "Stored; Upload-Offset is the new offset"},
                              "415": {"description": "Not application/offset+octet-stream",
                                      "content": problem_ref()},
                              **errors(400, 404, 409, 411, 412, 413, 422, 423, *COMMON)},
            },
            "delete": {"summary": "Delete an upload (tus termination)", "operationId": "deleteUpload",
                       "parameters": [_UP, _TUS],
                       "responses": {"204": {"description": "Deleted"},
                                     **errors(404, 409, 412, 423, *COMMON)}},
            "options": {"summary": "tus discovery", "operationId": "uploadResourceOptions",
                        "parameters": [_UP], "security": [], "responses": {**_TUS_OPTIONS, **errors(400, 413)}},
        },
    }
