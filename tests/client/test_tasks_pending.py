"""The client on a web process with no worker: tasks stay PENDING, so paging,
cancelling, waiting and errors can be seen as they are."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable

import pytest
import requests
from click.testing import CliRunner

from hookline.cli import cli
from hookline.client import (
    Client,
    Conflict,
    NotFound,
    Unauthorized,
    ValidationFailed,
    WaitTimeout,
)
from tests.client.support import ROOT, SEED, LineReader, Stack, new_key


def _http_requests(stack: Stack, status: str) -> float:
    """``hookline_http_requests_total`` for GET /tasks/<task_id> answered ``status``."""
    text = requests.get(stack.url + "/metrics", timeout=5).text
    total = 0.0
    for line in text.splitlines():
        if (line.startswith("hookline_http_requests_total{") and 'route="/tasks/<task_id>"' in line
                and f'status="{status}"' in line and 'method="GET"' in line):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_list_pages_through_every_task_newest_first(web_only: Stack, connect: Callable[..., Client]) -> None:
    client = connect(web_only)
    submitted = [client.tasks.submit(**SEED)["task_id"] for _ in range(7)]
    # When the tasks are read three at a time
    first = client.tasks.list(limit=3)
    second = client.tasks.list(limit=3, cursor=first["next_cursor"])
    third = client.tasks.list(limit=3, cursor=second["next_cursor"])
    # Then the pages hold all of them, newest first, and the last says there is no more
    pages = [first, second, third]
    assert [len(p["items"]) for p in pages] == [3, 3, 1]
    assert third["next_cursor"] is None
    assert [t["task_id"] for p in pages for t in p["items"]] == submitted[::-1]
    # And the iterator walks the same list across pages of two
    assert [t["task_id"] for t in client.tasks.iter(page_size=2)] == submitted[::-1]
    assert len(list(client.tasks.iter(status="PENDING"))) == 7
    assert list(client.tasks.iter(status="SUCCESS")) == []


def test_a_pending_task_is_cancelled_and_never_cancelled_twice(
        web_only: Stack, connect: Callable[..., Client]) -> None:
    client = connect(web_only)
    task_id = client.tasks.submit(**SEED)["task_id"]
    assert client.tasks.get(task_id)["status"] == "PENDING"
    cancelled = client.tasks.cancel(task_id)
    assert cancelled["status"] == "REVOKED"
    # A finished task cannot be cancelled: 409, with the problem body
    with pytest.raises(Conflict) as raised:
        client.tasks.cancel(task_id)
    assert raised.value.status == 409
    assert raised.value.problem["status"] == 409 and "already finished" in raised.value.detail
    # Waiting on it returns at once
    assert client.wait(task_id, timeout=5)["status"] == "REVOKED"


def test_errors_are_typed_and_carry_the_problem(web_only: Stack, connect: Callable[..., Client]) -> None:
    client, other = connect(web_only), connect(web_only)
    task_id = client.tasks.submit(**SEED)["task_id"]
    # An unknown id, and another tenant's task: 404 alike
    for who, wanted in ((client, "00000000-0000-0000-0000-000000000000"), (other, task_id)):
        with pytest.raises(NotFound) as raised:
            who.tasks.get(wanted)
        assert raised.value.problem["status"] == 404
        assert raised.value.problem["type"].endswith("/not-found")
    # A body that breaks the rules: 422 with the field at fault
    with pytest.raises(ValidationFailed) as invalid:
        client.tasks.submit(vector_data=[1.0, "two"])
    assert invalid.value.status == 422
    assert "vector_data" in invalid.value.errors
    assert "string" in " ".join(invalid.value.errors["vector_data"])
    # An unregistered callback is named too
    with pytest.raises(ValidationFailed) as unknown:
        client.tasks.submit(vector_data=[1.0], callback_id="cb_nope")
    assert "callback_id" in unknown.value.errors
    # A bad key: 401
    with pytest.raises(Unauthorized) as refused:
        Client(web_only.url, "hlk_nope_nope").tasks.list()
    assert refused.value.problem["status"] == 401
    # Nothing was created by the refused submits
    assert [t["task_id"] for t in client.tasks.iter()] == [task_id]


def test_wait_polls_with_the_etag_and_gives_up_at_the_deadline(
        web_only: Stack, connect: Callable[..., Client]) -> None:
    client = connect(web_only)
    task_id = client.tasks.submit(**SEED)["task_id"]
    seen: list[str] = []
    full, not_modified = _http_requests(web_only, "200"), _http_requests(web_only, "304")
    # When a pending task is awaited for 2.5 s (the server asks for 1 s between polls)
    with pytest.raises(WaitTimeout) as raised:
        client.wait(task_id, timeout=2.5, on_change=lambda t: seen.append(t["status"]))
    # Then the last version seen is in the error, seen once: the first poll had the body,
    # every later one was a 304
    assert raised.value.task is not None and raised.value.task["status"] == "PENDING"
    assert seen == ["PENDING"]
    assert _http_requests(web_only, "200") - full == 1
    assert _http_requests(web_only, "304") - not_modified >= 1


def test_the_cli_exits_4_when_the_awaited_task_is_revoked(web_only: Stack) -> None:
    key = new_key(web_only)
    client = Client(web_only.url, key)
    env = {"HOOKLINE_URL": web_only.url, "HOOKLINE_API_KEY": key}
    task_id = client.tasks.submit(**SEED)["task_id"]
    runner = CliRunner()
    cancelled = runner.invoke(cli, ["tasks", "cancel", task_id], env=env)
    assert cancelled.exit_code == 0, cancelled.output
    assert re.search(r"status:\s+REVOKED", cancelled.stdout)
    waited = runner.invoke(cli, ["tasks", "wait", task_id, "--json"], env=env)
    assert waited.exit_code == 4
    assert '"status": "REVOKED"' in waited.stdout
    again = runner.invoke(cli, ["tasks", "cancel", task_id], env=env)
    assert again.exit_code == 1 and "409" in again.stderr
    pending = client.tasks.submit(**SEED)["task_id"]
    timed_out = runner.invoke(cli, ["tasks", "wait", pending, "--timeout", "0.5"], env=env)
    assert timed_out.exit_code == 6, timed_out.output
    client.close()


def test_ctrl_c_while_waiting_exits_130(web_only: Stack) -> None:
    key = new_key(web_only)
    with Client(web_only.url, key) as client:
        task_id = client.tasks.submit(**SEED)["task_id"]
    env = {**os.environ, "HOOKLINE_URL": web_only.url, "HOOKLINE_API_KEY": key, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "hookline.cli", "tasks", "wait", task_id], env=env,
                            cwd=ROOT, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    try:
        # The progress line names the task once the first poll is answered
        LineReader(proc.stderr).wait_for(lambda line: f"{task_id} PENDING" in line, 30, "the first poll")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)
