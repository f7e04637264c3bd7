"""The console's HTTP contract, through Flask's test client and a real Redis.

Headers (CSP, no-store, cookie flags), CSRF, sign-in and sign-out, operator
keys, tenant isolation and escaping.
"""
from __future__ import annotations

from collections.abc import Callable

import pytest
import redis as redis_lib
from flask import Flask
from flask.testing import FlaskClient

from hookline import keys
from hookline.config import Config, ConfigError
from tests.console.conftest import csrf_of, sign_in
from tests.procs import wait_until
from webapp import create_app
from webapp.console import CONTENT_SECURITY_POLICY

PAGES = ("/console/", "/console/tasks", "/console/callbacks", "/console/deliveries/failed")


def test_pages_forbid_inline_script_framing_and_caching(console: FlaskClient) -> None:
    for path in PAGES:
        resp = console.get(path)
        assert resp.status_code == 200, path
        csp = resp.headers["Content-Security-Policy"]
        assert csp == CONTENT_SECURITY_POLICY
        for directive in ("default-src 'self'", "script-src 'self'", "style-src 'self'",
                          "frame-ancestors 'none'", "form-action 'self'"):
            assert directive in csp
        assert "unsafe-inline" not in csp
        assert resp.headers["Cache-Control"] == "no-store"
        # No inline script or style anywhere in the page.
        assert "<script>" not in resp.text and " style=" not in resp.text
        assert "<script src=\"/console/static/console.js\"" in resp.text


def test_session_cookie_is_httponly_strict_scoped_and_holds_no_key(app: Flask, api_key: str) -> None:
    client = app.test_client()
    page = client.get("/console/sign-in")
    resp = client.post("/console/sign-in", data={"api_key": api_key, "csrf_token": csrf_of(page.text)})
    cookie = resp.headers["Set-Cookie"]
    assert cookie.startswith("hookline_console=")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/console" in cookie
    assert "Secure" not in cookie  # plain HTTP here
    secret = api_key.split("_", 2)[2]
    value = cookie.split(";")[0].split("=", 1)[1]
    assert api_key not in cookie and secret not in value
    import base64
    payload = value.split(".")[0]
    decoded = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    assert secret.encode() not in decoded


def test_cookie_is_secure_over_https(app: Flask, api_key: str) -> None:
    client = app.test_client()
    page = client.get("/console/sign-in", base_url="https://console.example")
    resp = client.post("/console/sign-in", base_url="https://console.example",
                       data={"api_key": api_key, "csrf_token": csrf_of(page.text)})
    assert resp.status_code == 302
    assert "Secure" in resp.headers["Set-Cookie"]


def test_api_requests_get_no_session_cookie(client: FlaskClient, auth: dict[str, str]) -> None:
    resp = client.get("/tasks", headers=auth)
    assert resp.status_code == 200
    assert "Set-Cookie" not in resp.headers


def test_pages_need_sign_in(client: FlaskClient) -> None:
    for path in PAGES:
        resp = client.get(path)
        assert resp.status_code == 302 and resp.headers["Location"].endswith("/console/sign-in")
    assert client.get("/console/overview.json").status_code == 401


def test_a_wrong_key_is_refused_and_not_echoed(client: FlaskClient) -> None:
    page = client.get("/console/sign-in")
    resp = client.post("/console/sign-in", data={"api_key": "hlk_0011_notavalidsecret",
                                                 "csrf_token": csrf_of(page.text)})
    assert resp.status_code == 401
    assert "notavalidsecret" not in resp.text
    assert client.get("/console/").status_code == 302


def test_post_without_csrf_token_is_refused_and_changes_nothing(
    console: FlaskClient, submit: Callable[..., str], client: FlaskClient, auth: dict[str, str]
) -> None:
    task_id = submit()
    for data in ({}, {"csrf_token": "forged"}):
        resp = console.post(f"/console/tasks/{task_id}/cancel", data=data)
        assert resp.status_code == 403
        assert "form has expired" in resp.text
    assert client.get(f"/tasks/{task_id}", headers=auth).get_json()["status"] == "PENDING"
    # With the token, the same form cancels it.
    token = csrf_of(console.get(f"/console/tasks/{task_id}").text)
    assert console.post(f"/console/tasks/{task_id}/cancel", data={"csrf_token": token}).status_code == 302
    assert client.get(f"/tasks/{task_id}", headers=auth).get_json()["status"] == "REVOKED"


def test_sign_in_itself_needs_the_token(client: FlaskClient, api_key: str) -> None:
    client.get("/console/sign-in")
    assert client.post("/console/sign-in", data={"api_key": api_key}).status_code == 403
    assert client.get("/console/").status_code == 302


def test_sign_out_ends_the_session(console: FlaskClient) -> None:
    token = csrf_of(console.get("/console/").text)
    assert console.post("/console/sign-out", data={"csrf_token": token}).status_code == 302
    assert console.get("/console/").status_code == 302


def test_revoking_the_key_signs_the_session_out(console: FlaskClient, app: Flask, api_key: str) -> None:
    assert console.get("/console/tasks").status_code == 200
    app.extensions["hookline"].keys.revoke(api_key.split("_")[1])
    assert console.get("/console/tasks").status_code == 302


def test_an_idle_session_expires(app: Flask, api_key: str) -> None:
    app.extensions["hookline"].config = app.extensions["hookline"].config.replace(console_idle_timeout=1)
    client = sign_in(app.test_client(), api_key)
    assert client.get("/console/overview.json").status_code == 200
    # The overview's own refresh does not count as activity, so it sees the expiry.
    wait_until(lambda: client.get("/console/overview.json").status_code == 401, 10,
               "the idle session is refused")
    assert client.get("/console/tasks").status_code == 302


def test_a_tenant_cannot_reach_another_tenants_task(
    app: Flask, other_key: str, submit: Callable[..., str]
) -> None:
    task_id = submit()
    other = sign_in(app.test_client(), other_key)
    assert other.get(f"/console/tasks/{task_id}").status_code == 404
    token = csrf_of(other.get("/console/tasks").text)
    assert other.post(f"/console/tasks/{task_id}/cancel", data={"csrf_token": token}).status_code == 404
    assert task_id not in other.get("/console/tasks").text


def test_metadata_and_results_are_escaped(console: FlaskClient, submit: Callable[..., str]) -> None:
    task_id = submit(metadata={"note": "<script>alert('x')</script>", "<b>": "&"})
    page = console.get(f"/console/tasks/{task_id}").text
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(" in page and "&lt;b&gt;" in page


def test_operator_key_is_refused_by_the_tenant_api(client: FlaskClient, operator_key: str) -> None:
    resp = client.get("/tasks", headers={"Authorization": f"Bearer {operator_key}"})
    assert resp.status_code == 403
    assert resp.mimetype == "application/problem+json"
    assert operator_key not in resp.text


def test_operator_sees_every_tenant_and_can_filter(
    app: Flask, operator_key: str, submit: Callable[..., str], other_key: str, client: FlaskClient
) -> None:
    mine = submit()
    resp = client.post("/tasks", json={"vector_data": [1.0]},
                       headers={"Authorization": f"Bearer {other_key}"})
    theirs = resp.get_json()["task_id"]
    operator = sign_in(app.test_client(), operator_key)
    page = operator.get("/console/tasks").text
    assert mine in page and theirs in page
    only_acme = operator.get("/console/tasks?tenant=acme").text
    assert mine in only_acme and theirs not in only_acme
    assert operator.get(f"/console/tasks/{theirs}").status_code == 200
    assert "Queues" in operator.get("/console/").text


def test_a_secret_is_shown_only_by_the_rotation(
    console: FlaskClient, client: FlaskClient, auth: dict[str, str], redis: redis_lib.Redis
) -> None:
    cb = client.post("/callbacks", json={"url": "http://127.0.0.1:9/h"}, headers=auth).get_json()
    token = csrf_of(console.get("/console/callbacks").text)
    rotated = console.post(f"/console/callbacks/{cb['id']}/rotate", data={"csrf_token": token})
    assert rotated.status_code == 200 and rotated.headers["Cache-Control"] == "no-store"
    secret = rotated.text.split('<pre id="secret" class="secret">')[1].split("</pre>")[0]
    assert secret.startswith("whsec_") and secret != cb["secret"]
    for path in PAGES:
        assert secret not in console.get(path).text
    assert cb["secret"] not in console.get("/console/callbacks").text


def test_bad_filters_are_a_400_page_not_an_error(console: FlaskClient) -> None:
    for query in ("status=NOPE", "from=yesterday", "cursor=%%%", "from=2026-01-02T00:00&to=2026-01-01T00:00",
                  "id_prefix=%3Cx%3E"):
        resp = console.get(f"/console/tasks?{query}")
        assert resp.status_code == 400, query
        assert resp.mimetype == "text/html"
    assert console.get("/console/deliveries/failed?since=nope").status_code == 400


def test_tenants_made_before_the_tenant_set_are_found_once(app: Flask, api_key: str,
                                                           redis: redis_lib.Redis) -> None:
    store = app.extensions["hookline"].keys
    store.create("ops", operator=True)
    assert store.tenants() == ["acme"]
    redis.delete(keys.TENANTS)  # as a store written before the set existed
    assert store.tenants() == ["acme"]
    assert redis.smembers(keys.TENANTS) == {b"acme"}


def test_keys_list_marks_operator_keys(runner, operator_key: str, api_key: str) -> None:  # type: ignore[no-untyped-def]
    lines = runner.invoke(args=["keys", "list"]).output.strip().splitlines()
    assert sorted(line.split("\t")[1:] for line in lines) == [["acme"], ["ops", "operator"]]
    assert all(operator_key not in line and api_key not in line for line in lines)


def test_every_web_process_accepts_the_same_session(config, api_key: str,  # type: ignore[no-untyped-def]
                                                    redis: redis_lib.Redis) -> None:
    from webapp import create_app

    first, second = create_app(config), create_app(config)
    try:
        signed = sign_in(first.test_client(), api_key)
        cookie = signed.get_cookie("hookline_console", path="/console")
        assert cookie is not None
        other = second.test_client()
        other.set_cookie("hookline_console", cookie.value, path="/console")
        assert other.get("/console/tasks").status_code == 200
        assert redis.exists("hl:console:secret-key")
        # A process with a configured key refuses what the generated one signed.
        configured = create_app(config.replace(secret_key="s" * 40))
        stranger = configured.test_client()
        stranger.set_cookie("hookline_console", cookie.value, path="/console")
        assert stranger.get("/console/tasks").status_code == 302
        configured.extensions["hookline"].redis.connection_pool.disconnect()
    finally:
        for app in (first, second):
            app.extensions["hookline"].redis.connection_pool.disconnect()


def test_operator_filters_failed_deliveries_and_callbacks_by_tenant(app: Flask, operator_key: str,
                                                                    api_key: str) -> None:
    operator = sign_in(app.test_client(), operator_key)
    for path in ("/console/deliveries/failed?tenant=acme", "/console/callbacks?tenant=acme"):
        page = operator.get(path)
        assert page.status_code == 200
        assert '<option value="acme" selected>acme</option>' in page.text
    # An operator has no callbacks of its own to register.
    token = csrf_of(operator.get("/console/callbacks").text)
    assert operator.post("/console/callbacks", data={"csrf_token": token,
                                                     "url": "http://127.0.0.1:9/x"}).status_code == 404


def test_forged_cursors_are_a_400_page(console: FlaskClient, submit: Callable[..., str]) -> None:
    import base64

    submit()
    for raw in (b"nan|x", b"inf|x", b"-inf|", b"1e400|x", b"12|" + b"z" * 300, b"|", b"abc"):
        cursor = base64.urlsafe_b64encode(raw).decode().rstrip("=")
        resp = console.get(f"/console/tasks?cursor={cursor}")
        assert resp.status_code in (200, 400), (raw, resp.status_code)
        assert resp.mimetype == "text/html"


NASTY = ("", " ", "0", "-1", "nan", "inf", "9" * 40, "0001-01-01T00:00", "9999-12-31T23:59:59",
         "2026-13-45T99:99", "<script>", "%00", "\u202e", "a" * 600, "cb_" + "x" * 22, "../..")


def test_no_query_value_makes_a_page_fail(app: Flask, operator_key: str, console: FlaskClient,
                                          submit: Callable[..., str], client: FlaskClient,
                                          auth: dict[str, str]) -> None:
    from urllib.parse import quote

    task_id = submit()
    cb = client.post("/callbacks", json={"url": "http://127.0.0.1:9/h"}, headers=auth).get_json()
    operator = sign_in(app.test_client(), operator_key)
    pages = {
        "/console/tasks": ("status", "from", "to", "callback", "id_prefix", "cursor", "tenant"),
        "/console/deliveries/failed": ("callback", "since", "until", "tenant"),
        f"/console/callbacks/{cb['id']}/recover": ("since",),
        "/console/callbacks": ("tenant",),
        "/console/": ("tenant",),
        f"/console/tasks/{task_id}": ("tenant",),
    }
    for viewer in (console, operator):
        for path, params in pages.items():
            for param in params:
                for value in NASTY:
                    resp = viewer.get(f"{path}?{param}={quote(value)}")
                    assert resp.status_code < 500, (path, param, value, resp.status_code)
    for value in NASTY:
        assert console.get(f"/console/tasks/{quote(value, safe='')}").status_code in (200, 404)


def test_a_web_process_without_the_console_answers_the_api_and_404_for_it(
        config: Config, auth: dict[str, str]) -> None:
    # Given the console switched off (an API-only deployment)
    app = create_app(config.replace(console=False))
    client = app.test_client()
    try:
        # Then its pages are an ordinary 404 and the API works as before
        resp = client.get("/console/")
        assert resp.status_code == 404 and resp.mimetype == "application/problem+json"
        assert client.get("/tasks", headers=auth).status_code == 200
    finally:
        app.extensions["hookline"].redis.connection_pool.disconnect()


def test_the_console_switch_takes_on_and_off_and_refuses_anything_else() -> None:
    assert Config.from_env(env={}).console is True
    assert Config.from_env(env={"HOOKLINE_CONSOLE": "off"}).console is False
    assert Config.from_env(env={"HOOKLINE_CONSOLE": "1"}).console is True
    with pytest.raises(ConfigError, match="HOOKLINE_CONSOLE must be on or off"):
        Config.from_env(env={"HOOKLINE_CONSOLE": "maybe"})
