"""The collections API's part of the OpenAPI document (``webapp.openapi``)."""
from __future__ import annotations

from typing import Any

_NAME = {"name": "name", "in": "path", "required": True,
         "schema": {"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,64}$"}}
_VECTOR_ID = {"name": "vector_id", "in": "path", "required": True,
              "schema": {"type": "string", "minLength": 1, "maxLength": 128}}
_NUMBERS = {"type": "array", "minItems": 1, "items": {"type": "number"}}
_HITS = {"type": "object", "required": ["items"], "properties": {"items": {
    "type": "array", "items": {"type": "object", "required": ["id", "score", "task_id"],
                               "properties": {"id": {"type": "string"}, "score": {"type": "number"},
                                              "task_id": {"type": "string"}}}}}}


def _ref(name: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}


def schemas() -> dict[str, Any]:
    return {
        "CollectionCreate": {
            "type": "object", "required": ["name"], "additionalProperties": False,
            "properties": {
                "name": {"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,64}$"},
                "dimension": {"type": "integer", "minimum": 1, "nullable": True},
                "metric": {"type": "string", "enum": ["cosine", "ip", "l2"]},
                "dtype": {"type": "string", "enum": ["f32", "f16", "i8"]},
            },
        },
        "Collection": {
            "type": "object",
            "required": ["name", "dimension", "metric", "dtype", "count", "bytes", "created_at"],
            "properties": {
                "name": {"type": "string"}, "dimension": {"type": "integer", "nullable": True},
                "metric": {"type": "string"}, "dtype": {"type": "string"},
                "count": {"type": "integer"}, "bytes": {"type": "integer"},
                "version": {"type": "integer"},
                "created_at": {"type": "string", "format": "date-time"},
                "dimensions": {"type": "object", "additionalProperties": {"type": "integer"}},
            },
        },
        "CollectionList": {
            "type": "object", "required": ["items", "next_cursor"],
            "properties": {"items": {"type": "array",
                                     "items": {"$ref": "#/components/schemas/Collection"}},
                           "next_cursor": {"type": "string", "nullable": True}},
        },
        "Search": {
            "type": "object", "additionalProperties": False,
            "properties": {
                "vector": _NUMBERS,
                "vectors": {"type": "array", "minItems": 1, "items": _NUMBERS},
                "k": {"type": "integer", "minimum": 1, "maximum": 1000},
                "filter": {"type": "object", "additionalProperties": False,
                           "properties": {"task_id": {"type": "string"}}},
            },
        },
        "SearchResult": {"type": "object", "properties": {
            "items": _HITS["properties"]["items"],
            "results": {"type": "array", "items": _HITS}}},
        "Vector": {"type": "object", "required": ["id", "vector", "task_id"],
                   "properties": {"id": {"type": "string"}, "task_id": {"type": "string"},
                                  "vector": {"type": "array", "items": {"type": "number"}}}},
        "VectorDelete": {
            "type": "object", "additionalProperties": False,
            "properties": {"ids": {"type": "array", "items": {"type": "string"}},
                           "task_id": {"type": "string"}},
        },
        "Deleted": {"type": "object", "required": ["deleted"],
                    "properties": {"deleted": {"type": "integer"}}},
    }


#: The collections list's cursor: the name of the last collection of the page before.
_NAME_CURSOR = {
    "name": "cursor", "in": "query",
    "description": "The next_cursor of the previous page, unchanged (a collection's name); "
                   "empty is the first page.",
    "schema": {"type": "string", "pattern": "^[A-Za-z0-9_.-]{0,64}$"},
}


def paths(errors: Any, page: list[dict[str, Any]]) -> dict[str, Any]:
    """``errors(*codes)`` builds the problem answers, ``page`` the list parameters."""
    # A broken or oversized body is refused before any handler (400, 413).
    common = (400, 401, 413, 429, 503)
    body = (400, 404, 413, 415, 422)
    return {
        "/collections": {
            "post": {"summary": "Create a collection", "operationId": "createCollection",
                     "requestBody": {"required": True, "content": _ref("CollectionCreate")},
                     "responses": {"201": {"description": "Created", "content": _ref("Collection")},
                                   **errors(400, 409, 413, 415, 422, *common)}},
            "get": {"summary": "List collections", "operationId": "listCollections",
                    "parameters": [page[0], _NAME_CURSOR],
                    "responses": {"200": {"description": "A page", "content": _ref("CollectionList")},
                                  **errors(422, *common)}},
        },
        "/collections/{name}": {
            "get": {"summary": "Read a collection", "operationId": "getCollection",
                    "parameters": [_NAME],
                    "responses": {"200": {"description": "The collection",
                                          "content": _ref("Collection")}, **errors(404, *common)}},
            "delete": {"summary": "Delete a collection and its vectors",
                       "operationId": "deleteCollection", "parameters": [_NAME],
                       "responses": {"204": {"description": "Deleted"}, **errors(404, *common)}},
        },
        "/collections/{name}/search": {"post": {
            "summary": "Nearest vectors, best first", "operationId": "searchCollection",
            "parameters": [_NAME], "requestBody": {"required": True, "content": _ref("Search")},
            "responses": {"200": {"description": "Matches", "content": _ref("SearchResult")},
                          **errors(*body, *common)},
        }},
        "/collections/{name}/vectors/{vector_id}": {"get": {
            "summary": "Read a vector", "operationId": "getVector",
            "parameters": [_NAME, _VECTOR_ID],
            "responses": {"200": {"description": "The vector", "content": _ref("Vector")},
                          **errors(404, *common)},
        }},
        "/collections/{name}/vectors/delete": {"post": {
            "summary": "Delete vectors by ids or by task", "operationId": "deleteVectors",
            "parameters": [_NAME], "requestBody": {"required": True, "content": _ref("VectorDelete")},
            "responses": {"200": {"description": "Deleted", "content": _ref("Deleted")},
                          **errors(*body, *common)},
        }},
    }
