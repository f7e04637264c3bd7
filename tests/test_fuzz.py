"""Fuzz the API from its own OpenAPI document: no 5xx, and every answer matches the schema."""
from __future__ import annotations

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, settings

FUZZ_EXAMPLES = 25


@pytest.fixture
def api_schema(app: Flask, api_key: str):  # type: ignore[no-untyped-def]
    app.config["FUZZ_KEY"] = api_key
    return schemathesis.openapi.from_wsgi("/openapi.json", app)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=FUZZ_EXAMPLES, deadline=None,
          suppress_health_check=list(HealthCheck))
def test_api_never_fails_and_matches_its_schema(case, app: Flask) -> None:  # type: ignore[no-untyped-def]
    headers = {"Authorization": f"Bearer {app.config['FUZZ_KEY']}"}
    response = case.call(headers=headers)
    assert response.status_code < 500, response.text
    case.validate_response(response)
