"""Requests cannot grow /metrics: made-up methods and paths add no series."""
from __future__ import annotations

import secrets

from flask.testing import FlaskClient

from hookline.metrics import HTTP_METHODS


def series(client: FlaskClient) -> set[str]:
    """The names and labels of every series /metrics exports."""
    text = client.get("/metrics").get_data(as_text=True)
    return {line.rsplit(" ", 1)[0] for line in text.splitlines()
            if line and not line.startswith("#")}


def made_up_requests(client: FlaskClient, auth: dict, count: int) -> None:
    for _ in range(count):
        method = secrets.token_hex(10).upper()
        client.open(f"/{secrets.token_hex(8)}", method=method, headers=auth)
        client.open("/tasks", method=method, headers=auth)
        client.get(f"/tasks/{secrets.token_hex(8)}", headers=auth)
        client.get(f"/{secrets.token_hex(8)}/{secrets.token_hex(4)}")


def test_made_up_methods_and_paths_add_no_series(client: FlaskClient, auth: dict) -> None:
    # Given every kind of request already seen once
    made_up_requests(client, auth, 1)
    series(client)  # the scrape counts itself too
    before = series(client)
    # When many more made-up methods and paths arrive
    made_up_requests(client, auth, 100)
    # Then /metrics holds the same series as before, only with larger counts
    after = series(client)
    assert after == before, sorted(after - before)[:10]
    http = {s for s in after if s.startswith("hookline_http_requests_total")}
    assert any('method="other"' in s for s in http)
    assert any('route="/tasks/<task_id>"' in s for s in http)
    allowed = {f'method="{m}"' for m in {*HTTP_METHODS, "other"}}
    assert all(any(label in s for label in allowed) for s in http)
