"""Fuzz the API: from its own OpenAPI document, and with every class of hostile JSON.

From the document (schemathesis): no 5xx, every answer matches the
document, what the document forbids is refused, and what it allows is
accepted unless a rule that no schema can state refuses it (``DATA_RULES``).
By hand (hypothesis): bodies holding integers of any size, lone surrogates
and non-finite numbers anywhere, and any cursor on every list, never get a
5xx.
"""
from __future__ import annotations

import base64
import json
import math

import pytest
import schemathesis
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import (
    content_type_conformance,
    missing_required_header,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)
from schemathesis.config import SchemathesisConfig
from schemathesis.core.parameters import ParameterLocation

FUZZ_EXAMPLES = 25
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, response_headers_conformance,
          negative_data_rejection, missing_required_header, unsupported_method]
#: Fields with rules that no schema can state (they depend on stored data,
#: the network, or on values relating to each other): a request the document
#: allows may be refused (422) for these fields only.
DATA_RULES = {
    "vector_data": "rows of one length (JSON Schema cannot relate items)",
    "metadata": "at most 16 KiB as JSON",
    "callback_url": "a URL this tenant registered",
    "callback_id": "a callback of this tenant",
    "url": "resolves to public addresses only (the URL guard)",
    "cursor": "a next_cursor this API made",
    "Idempotency-Key": "not used before with a different body",
    "upload_id": "a complete upload of this tenant's",
    "ids": "one per vector (JSON Schema cannot relate two fields' lengths)",
    "collection": "a collection of this tenant's has this job's dimension, and none with \"index\": false",
    "ids_upload_id": "a complete upload of this tenant's, and none with \"index\": false",
    "format": "Upload-Metadata's format, base64 inside the header: npy or f32",
    "dimension": "Upload-Metadata's dimension for f32, base64 inside the header",
    "Upload-Metadata": "keys once each, values base64 (a header JSON Schema cannot parse)",
    "Upload-Length": "a whole number of rows of the declared shape",
}


#: How this API refuses a request the document forbids. Beside schemathesis's
#: defaults, 413: a body made invalid by growing an array past its
#: ``maxItems`` may also outgrow the body limit, which is checked first.
REFUSALS = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]
CONFIG = SchemathesisConfig.from_dict(
    {"checks": {"negative_data_rejection": {"expected-statuses": REFUSALS}}})


@pytest.fixture
def api_schema(app: Flask, api_key: str):  # type: ignore[no-untyped-def]
    app.config["FUZZ_KEY"] = api_key
    return schemathesis.openapi.from_wsgi("/openapi.json", app, config=CONFIG)


# tus PATCH bodies are raw bytes under their own media type.
schemathesis.serializer.alias("application/offset+octet-stream", "application/octet-stream")
schema = schemathesis.pytest.from_fixture("api_schema")


def assert_schema_valid_data_accepted(case, response) -> None:  # type: ignore[no-untyped-def]
    """A request the document allows is refused only for a rule in ``DATA_RULES``."""
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return
    if response.status_code in (400, 415):
        raise AssertionError(f"schema-valid request refused: {response.text}")
    if response.status_code == 422:
        fields = set(json.loads(response.text).get("errors", {}))
        assert fields and fields <= set(DATA_RULES), f"schema-valid request refused: {response.text}"


def leaves_the_key_out(case) -> bool:  # type: ignore[no-untyped-def]
    """Whether the case's headers are made invalid by leaving ``Authorization`` out.

    Such a request must go out without the test's key, and be refused (401):
    sent with it, the API would rightly accept it and schemathesis would
    report accepted negative data.
    """
    if case.meta is None:
        return False
    header = case.meta.components.get(ParameterLocation.HEADER)
    if header is None or header.mode.is_positive:
        return False
    return "authorization" not in {name.lower() for name in (case.headers or {})}


@schema.parametrize()
@settings(max_examples=FUZZ_EXAMPLES, deadline=None,
          suppress_health_check=list(HealthCheck))
def test_api_never_fails_and_matches_its_schema(case, app: Flask) -> None:  # type: ignore[no-untyped-def]
    headers = {} if leaves_the_key_out(case) else {"Authorization": f"Bearer {app.config['FUZZ_KEY']}"}
    response = case.call(headers=headers)
    assert response.status_code < 500, response.text
    if response.status_code == 412:
        # tus 1.0 answers a missing or unsupported Tus-Resumable with 412,
        # which schemathesis's missing-header check does not expect.
        assert case.path.startswith("/uploads")
        assert (case.headers or {}).get("Tus-Resumable") != "1.0.0", response.text
        assert response.headers.get("Tus-Version") or response.headers.get("tus-version")
        return
    case.validate_response(response, checks=CHECKS, headers=headers)
    assert_schema_valid_data_accepted(case, response)


# -- hostile JSON, by hand ------------------------------------------------------

def _as_json(value: object) -> str:
    """JSON text as a careless client writes it: NaN, Infinity, escapes kept."""
    return json.dumps(value, ensure_ascii=True, allow_nan=True)


_SCALARS = st.one_of(
    st.none(), st.booleans(), st.text(max_size=8),
    st.integers(min_value=-(10**40), max_value=10**40),       # past 64 bits
    st.floats(allow_nan=True, allow_infinity=True),           # NaN, +-Infinity
    st.sampled_from(["\ud800", "\udfff", "a\udc00b"]),         # lone surrogates
)
_VALUES = st.recursive(_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6) | _SCALARS.filter(
        lambda v: isinstance(v, str)), inner, max_size=4)), max_leaves=12)
#: Numbers JSON's grammar allows that no double holds.
_HUGE_TOKENS = st.sampled_from(["1e400", "-1e400", "9" * 400, "1" + "0" * 5000])


def _body(fields: list[str]) -> st.SearchStrategy[str]:
    hostile = st.dictionaries(st.sampled_from(fields), _VALUES, min_size=1).map(_as_json)
    # A huge number token somewhere: where Python's parser must take over.
    with_token = st.tuples(st.sampled_from(fields), _HUGE_TOKENS, hostile).map(
        lambda t: f'{{"{t[0]}": {t[1]}, "x": {t[2]}}}')
    return st.one_of(hostile, with_token)


BODY_TARGETS = [
    ("post", "/tasks", ["vector_data", "metadata", "callback_url", "callback_id"]),
    ("post", "/callbacks", ["url", "description"]),
    ("patch", "/callbacks/cb_nope", ["url", "description", "disabled"]),
    ("post", "/callbacks/cb_nope/recover", ["since"]),
]


@pytest.mark.parametrize("method,path,fields", BODY_TARGETS, ids=[t[1] for t in BODY_TARGETS])
def test_hostile_json_never_gets_a_5xx(
    client: FlaskClient, auth: dict, method: str, path: str, fields: list[str],
) -> None:
    @given(body=_body(fields))
    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    def check(body: str) -> None:
        resp = getattr(client, method)(path, data=body, content_type="application/json",
                                       headers=auth)
        assert resp.status_code < 500, (body, resp.get_data(as_text=True))
        if resp.status_code >= 400:
            assert resp.mimetype == "application/problem+json"
        elif method == "post" and path == "/tasks":
            # What was accepted is what will be echoed: finite and encodable.
            task = client.get(resp.headers["Location"], headers=auth).get_json()
            assert task is not None and not _has_nonfinite(task)

    check()


def _has_nonfinite(value: object) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_has_nonfinite(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_nonfinite(v) for v in value)
    return False


@pytest.mark.parametrize("path", ["/tasks", "/callbacks", "/tasks/{task_id}/deliveries"])
def test_any_cursor_on_every_list_gets_a_page_or_a_4xx(
    client: FlaskClient, auth: dict, path: str,
) -> None:
    task_id = client.post("/tasks", json={"vector_data": [1.0]}, headers=auth).get_json()["task_id"]
    url = path.format(task_id=task_id)

    def b64(text: str) -> str:
        return base64.urlsafe_b64encode(text.encode("utf-8", "surrogatepass")).decode().rstrip("=")

    scores = st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr),
                       st.sampled_from(["nan", "inf", "-inf", "1e400", "NaN", "0x1p3", "1_0"]),
                       st.text(max_size=6))
    cursors = st.one_of(
        st.text(max_size=40),
        st.tuples(scores, st.text(max_size=40)).map(lambda t: b64(f"{t[0]}|{t[1]}")),
        st.text(max_size=40).map(b64),
    )

    @given(cursor=cursors)
    @settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
    def check(cursor: str) -> None:
        resp = client.get(url, query_string={"cursor": cursor}, headers=auth)
        assert resp.status_code in (200, 422), (cursor, resp.get_data(as_text=True))

    check()
