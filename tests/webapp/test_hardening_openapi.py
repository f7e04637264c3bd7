"""The OpenAPI document refuses what the API refuses, for every rule a schema can state."""
from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from flask.testing import FlaskClient


def resolved(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with the document's components, for a JSON Schema validator."""
    return {**schema, "components": document["components"]}


def allows(document: dict[str, Any], schema: dict[str, Any], value: object) -> bool:
    # OpenAPI 3.0's nullable is not JSON Schema; nothing checked here uses it.
    validator = jsonschema.Draft7Validator(resolved(document, schema))
    return validator.is_valid(value)


def body_schema(document: dict[str, Any], path: str, method: str) -> dict[str, Any]:
    return document["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]


def parameter_schema(document: dict[str, Any], path: str, method: str, name: str) -> dict[str, Any]:
    found = [p for p in document["paths"][path][method]["parameters"] if p["name"] == name]
    return found[0]["schema"]


BODIES = [
    ("/tasks", "post", {"vector_data": [1.0], "callback_url": ""}),
    ("/tasks", "post", {"vector_data": [1.0], "callback_id": ""}),
    ("/tasks", "post", {"vector_data": [1.0], "metadata": {"collection": "a b"}}),
    ("/tasks", "post", {"vector_data": [0.5] * 1001}),
    ("/tasks", "post", {"vector_data": [[0.5] * 65]}),
    ("/callbacks", "post", {"url": ""}),
    ("/callbacks", "post", {"url": "https://x.example/" + "a" * 2048}),
    ("/callbacks/{cb_id}", "patch", {"url": ""}),
]


@pytest.mark.parametrize("path,method,body", BODIES)
def test_bodies_the_api_refuses_the_document_forbids(
    client: FlaskClient, auth: dict, path: str, method: str, body: dict,
) -> None:
    document = client.get("/openapi.json").get_json()
    resp = getattr(client, method)(path.format(cb_id="cb_x"), json=body, headers=auth)
    assert 400 <= resp.status_code < 500
    assert not allows(document, body_schema(document, path, method), body)


PARAMETERS = [
    ("/tasks", "post", "Idempotency-Key", ""),
    ("/tasks", "post", "Idempotency-Key", "k" * 256),
    ("/tasks", "get", "cursor", "%%%"),
    ("/callbacks", "get", "cursor", "a/b"),
    ("/tasks/{task_id}/deliveries", "get", "cursor", "\u00b2"),
    ("/tasks/{task_id}/deliveries", "get", "cursor", "x"),
]


@pytest.mark.parametrize("path,method,name,value", PARAMETERS)
def test_parameters_the_api_refuses_the_document_forbids(
    client: FlaskClient, auth: dict, path: str, method: str, name: str, value: str,
) -> None:
    document = client.get("/openapi.json").get_json()
    task_id = client.post("/tasks", json={"vector_data": [1.0]}, headers=auth).get_json()["task_id"]
    url = path.format(task_id=task_id)
    if name == "Idempotency-Key":
        resp = client.post(url, json={"vector_data": [1.0]}, headers={**auth, name: value})
    else:
        resp = client.get(url, query_string={name: value}, headers=auth)
    assert 400 <= resp.status_code < 500
    assert not allows(document, parameter_schema(document, path, method, name), value)


def test_every_operation_lists_the_answers_any_request_can_get(client: FlaskClient) -> None:
    document = client.get("/openapi.json").get_json()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            # The body limit and a broken body apply before any handler.
            assert {"400", "413"} <= set(operation["responses"]), (method, path)
            if operation.get("security", document["security"]):
                assert {"401", "429", "503"} <= set(operation["responses"]), (method, path)
