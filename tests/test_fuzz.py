"""Fuzz the API from its own OpenAPI document: no 5xx, and every answer matches the schema."""
from __future__ import annotations

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

FUZZ_EXAMPLES = 25
# The answer must be no 5xx and match the document. Whether schema-valid input
# is accepted is not checked: some rules (a registered callback, the size
# limits) live in configuration and data, not in the schema.
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, response_headers_conformance]


@pytest.fixture
def api_schema(app: Flask, api_key: str):  # type: ignore[no-untyped-def]
    app.config["FUZZ_KEY"] = api_key
    return schemathesis.openapi.from_wsgi("/openapi.json", app)


# tus PATCH bodies are raw bytes under their own media type.
schemathesis.serializer.alias("application/offset+octet-stream", "application/octet-stream")
schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=FUZZ_EXAMPLES, deadline=None,
          suppress_health_check=list(HealthCheck))
def test_api_never_fails_and_matches_its_schema(case, app: Flask) -> None:  # type: ignore[no-untyped-def]
    headers = {"Authorization": f"Bearer {app.config['FUZZ_KEY']}"}
    response = case.call(headers=headers)
    assert response.status_code < 500, response.text
    case.validate_response(response, checks=CHECKS)
