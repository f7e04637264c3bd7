"""The console's collections pages over the Flask test client and a real Redis (no index process).

What a collection shows, tenant isolation, CSRF, escaping and bad input. The
search itself, with the index process answering, is in the browser test.
"""
from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from tests.console.conftest import csrf_of, sign_in
from webapp.console import CONTENT_SECURITY_POLICY


def _create(client: FlaskClient, auth: dict[str, str], **body: object) -> None:
    resp = client.post("/collections", json=body, headers=auth)
    assert resp.status_code == 201, resp.text


def test_the_list_shows_what_the_api_shows(console: FlaskClient, client: FlaskClient,
                                           auth: dict[str, str]) -> None:
    _create(client, auth, name="docs", dimension=48, metric="ip", dtype="f16")
    shown = client.get("/collections/docs", headers=auth).get_json()
    resp = console.get("/console/collections")
    assert resp.status_code == 200
    assert resp.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert resp.headers["Cache-Control"] == "no-store"
    row = resp.text.split('<tr data-collection="acme/docs">')[1].split("</tr>")[0]
    cells = [cell.split(">", 1)[1] for cell in row.split("<td")[1:]]
    assert "docs" in cells[0] and '<td class="count">0' in row
    assert [c.rstrip("</td>\n ") for c in cells[2:6]] == ["48", "ip", "f16", "0 B"]
    assert shown["version"] == 0 and f">{shown['version']}</td>" in row
    # The page links to the collection, and is in the navigation
    page = console.get("/console/collections/acme/docs")
    assert page.status_code == 200 and '<dd id="count">0</dd>' in page.text
    assert 'href="/console/collections"' in console.get("/console/").text


def test_a_tenant_cannot_reach_another_tenants_collection(
    app: Flask, console: FlaskClient, client: FlaskClient, auth: dict[str, str], other_key: str,
) -> None:
    _create(client, auth, name="private", dimension=3)
    other = sign_in(app.test_client(), other_key)
    assert "private" not in other.get("/console/collections").text
    assert other.get("/console/collections/acme/private").status_code == 404
    token = csrf_of(other.get("/console/collections").text)
    refused = other.post("/console/collections/acme/private", data={"csrf_token": token, "id": "x"})
    assert refused.status_code == 404 and "private" not in refused.text
    # Nor by its own name under its own tenant
    assert other.get("/console/collections/umbrella/private").status_code == 404
    assert console.get("/console/collections/acme/no such name").status_code == 404


def test_an_operator_sees_every_tenant_and_can_filter(
    app: Flask, client: FlaskClient, auth: dict[str, str], other_key: str, operator_key: str,
) -> None:
    _create(client, auth, name="acme-docs", dimension=3)
    _create(client, {"Authorization": f"Bearer {other_key}"}, name="umbrella-docs", dimension=4)
    operator = sign_in(app.test_client(), operator_key)
    both = operator.get("/console/collections").text
    assert 'data-collection="acme/acme-docs"' in both and 'data-collection="umbrella/umbrella-docs"' in both
    only = operator.get("/console/collections?tenant=umbrella").text
    assert "acme-docs" not in only and "umbrella-docs" in only
    assert operator.get("/console/collections/umbrella/umbrella-docs").status_code == 200


def test_the_search_form_needs_its_token_and_refuses_bad_input(
    console: FlaskClient, client: FlaskClient, auth: dict[str, str],
) -> None:
    _create(client, auth, name="docs", dimension=3)
    page = console.get("/console/collections/acme/docs").text
    assert 'name="k"' in page and 'value="10"' in page
    path = "/console/collections/acme/docs"
    assert console.post(path, data={"id": "a"}).status_code == 403
    token = csrf_of(page)
    for k in ("0", "1001", "ten"):
        bad = console.post(path, data={"csrf_token": token, "id": "a", "k": k})
        assert bad.status_code == 400 and "k: a whole number from 1 to 1000" in bad.text
    too_long = console.post(path, data={"csrf_token": token, "id": "x" * 129})
    assert too_long.status_code == 400 and "1 to 128 characters" in too_long.text
    hostile = "<script>alert(1)</script>"
    missing = console.post(path, data={"csrf_token": token, "id": hostile})
    assert missing.status_code == 404 and "holds no vector with that id" in missing.text
    assert hostile not in missing.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in missing.text
