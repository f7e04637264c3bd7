"""Console actions go through the API's own code: what the API shows afterwards is the proof."""
from __future__ import annotations

from collections.abc import Callable

import redis as redis_lib
from flask.testing import FlaskClient

from hookline import keys
from tests.console.conftest import csrf_of
from tests.procs import queued


def _callback(client: FlaskClient, auth: dict[str, str]) -> dict:
    resp = client.post("/callbacks", json={"url": "http://127.0.0.1:9/hook"}, headers=auth)
    assert resp.status_code == 201
    return dict(resp.get_json())


def _fail(redis: redis_lib.Redis, cb_id: str, task_id: str, at: float) -> None:
    """A delivery that failed at ``at``, as the delivery actor records it."""
    redis.zadd(keys.failed_deliveries(cb_id), {task_id: at})


def test_disable_and_enable_show_in_the_api(console: FlaskClient, client: FlaskClient,
                                            auth: dict[str, str]) -> None:
    cb = _callback(client, auth)
    token = csrf_of(console.get("/console/callbacks").text)
    assert console.post(f"/console/callbacks/{cb['id']}/disable", data={"csrf_token": token}).status_code == 302
    shown = client.get(f"/callbacks/{cb['id']}", headers=auth).get_json()
    assert shown["disabled"] is True and shown["disabled_reason"] == "manual"
    assert "disabled" in console.get("/console/callbacks").text
    assert console.post(f"/console/callbacks/{cb['id']}/enable", data={"csrf_token": token}).status_code == 302
    assert client.get(f"/callbacks/{cb['id']}", headers=auth).get_json()["disabled"] is False


def test_recover_shows_the_count_then_resends_once_each(
    console: FlaskClient, client: FlaskClient, auth: dict[str, str], redis: redis_lib.Redis,
    submit: Callable[..., str],
) -> None:
    cb = _callback(client, auth)
    old, new = submit(callback_id=cb["id"]), submit(callback_id=cb["id"])
    _fail(redis, cb["id"], old, 1_700_000_000.0)   # 2023-11-14
    _fail(redis, cb["id"], new, 1_800_000_000.0)   # 2027-01-15
    page = console.get(f"/console/callbacks/{cb['id']}/recover?since=2025-01-01T00:00")
    assert '<p id="recover-count"><b>1</b>' in page.text
    before = len(queued(redis, "callbacks"))
    resp = console.post(f"/console/callbacks/{cb['id']}/recover",
                        data={"csrf_token": csrf_of(page.text), "since": "2025-01-01T00:00"})
    assert resp.status_code == 302
    assert len(queued(redis, "callbacks")) == before + 1
    assert new.encode() in queued(redis, "callbacks")[-1]


def test_bulk_resend_of_failed_deliveries_by_query(
    console: FlaskClient, client: FlaskClient, auth: dict[str, str], redis: redis_lib.Redis,
    submit: Callable[..., str],
) -> None:
    cb = _callback(client, auth)
    ids = [submit(callback_id=cb["id"]) for _ in range(3)]
    for n, task_id in enumerate(ids):
        _fail(redis, cb["id"], task_id, 1_800_000_000.0 + n * 3600)
    page = console.get("/console/deliveries/failed?since=2027-01-15T08:30&until=2027-01-15T10:30")
    assert '<b>2</b> failed deliveries match' in page.text
    assert ids[1] in page.text and ids[2] in page.text and ids[0] not in page.text
    before = len(queued(redis, "callbacks"))
    resp = console.post("/console/deliveries/failed/resend", data={
        "csrf_token": csrf_of(page.text), "since": "2027-01-15T08:30", "until": "2027-01-15T10:30"})
    assert resp.status_code == 302
    sent = queued(redis, "callbacks")[before:]
    assert len(sent) == 2 and all(b'"manual"' in message for message in sent)


def test_resend_of_an_unfinished_task_is_refused_with_the_apis_reason(
    console: FlaskClient, client: FlaskClient, auth: dict[str, str], submit: Callable[..., str],
) -> None:
    cb = _callback(client, auth)
    task_id = submit(callback_id=cb["id"])
    token = csrf_of(console.get(f"/console/tasks/{task_id}").text)
    resp = console.post(f"/console/tasks/{task_id}/resend", data={"csrf_token": token},
                        follow_redirects=True)
    assert "has not finished" in resp.text
    api = client.post(f"/tasks/{task_id}/deliveries/retry", headers=auth)
    assert api.status_code == 409 and "has not finished" in api.get_json()["detail"]


def test_a_new_callback_shows_its_secret_once(console: FlaskClient, client: FlaskClient,
                                              auth: dict[str, str]) -> None:
    token = csrf_of(console.get("/console/callbacks").text)
    resp = console.post("/console/callbacks", data={"csrf_token": token, "url": "http://127.0.0.1:9/new"})
    assert resp.status_code == 200 and "whsec_" in resp.text
    secret = resp.text.split('<pre id="secret" class="secret">')[1].split("</pre>")[0]
    assert secret not in console.get("/console/callbacks").text
    listed = client.get("/callbacks", headers=auth).get_json()["items"]
    assert [c["url"] for c in listed] == ["http://127.0.0.1:9/new"]
    refused = console.post("/console/callbacks", data={"csrf_token": token, "url": "http://10.0.0.1/x"},
                           follow_redirects=True)
    assert "whsec_" not in refused.text and len(client.get("/callbacks", headers=auth).get_json()["items"]) == 1
