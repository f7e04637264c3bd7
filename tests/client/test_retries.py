"""Retries on 429 and 503 after Retry-After: against a real rate-limited web
process, and a small real server that answers 503 on cue."""
from __future__ import annotations

import email.utils
import time
from collections.abc import Callable, Iterator

import pytest
from click.testing import CliRunner

from hookline.cli import cli
from hookline.client import Client, RateLimited, TransportError, Unavailable
from tests.client.support import ScriptedServer, Stack, new_key
from tests.procs import free_port

UNAVAILABLE = (503, {"Retry-After": "1"}, b'{"status": 503, "title": "Service Unavailable", '
                                          b'"detail": "The task store is unreachable."}')


class Sleeps:
    """Records each wait the client asks for, and really waits."""

    def __init__(self) -> None:
        self.asked: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.asked.append(seconds)
        time.sleep(seconds)


@pytest.fixture
def scripted() -> Iterator[Callable[[list[tuple[int, dict[str, str], bytes]]], ScriptedServer]]:
    servers: list[ScriptedServer] = []

    def make(answers: list[tuple[int, dict[str, str], bytes]]) -> ScriptedServer:
        servers.append(ScriptedServer(answers))
        return servers[-1]

    yield make
    for server in servers:
        server.close()


def test_429_is_retried_after_retry_after(make_stack: Callable[..., Stack]) -> None:
    # Given a web process that allows one request a second (bursts of two)
    stack = make_stack(HOOKLINE_RATE_LIMIT="1")
    stack.start_web()
    key = new_key(stack)
    sleeps = Sleeps()
    client = Client(stack.url, key, sleep=sleeps)
    # When five requests are made at once
    pages = [client.tasks.list() for _ in range(5)]
    # Then every one succeeds, having waited as long as the server asked
    assert all(page["items"] == [] for page in pages)
    assert sleeps.asked and all(s == 1.0 for s in sleeps.asked)
    # And without retries the 429 is raised with its problem
    impatient = Client(stack.url, key, retries=0)
    with pytest.raises(RateLimited) as raised:
        for _ in range(5):
            impatient.tasks.list()
    assert raised.value.status == 429 and raised.value.problem["status"] == 429
    assert raised.value.headers["Retry-After"] == "1"
    client.close()
    impatient.close()


def test_503_is_retried_after_retry_after_in_seconds_or_as_a_date(
        scripted: Callable[..., ScriptedServer]) -> None:
    date = email.utils.formatdate(time.time() + 5, usegmt=True)
    server = scripted([UNAVAILABLE, (503, {"Retry-After": date}, b"{}")])
    sleeps = Sleeps()
    started = time.monotonic()
    assert Client(server.url, "k", sleep=sleeps).health() == {"status": "ok"}
    assert len(server.seen) == 3
    assert sleeps.asked[0] == 1.0
    assert 1.5 <= sleeps.asked[1] <= 5.0  # a date five seconds ahead, to the second, 1 s later
    assert server.seen[1] - server.seen[0] >= 1.0
    assert time.monotonic() - started < 15


def test_retries_are_bounded_and_each_wait_capped(scripted: Callable[..., ScriptedServer]) -> None:
    server = scripted([(503, {"Retry-After": "3600"}, UNAVAILABLE[2])] * 10)
    sleeps = Sleeps()
    with pytest.raises(Unavailable) as raised:
        Client(server.url, "k", retries=2, max_wait=0.2, sleep=sleeps).health()
    assert sleeps.asked == [0.2, 0.2]
    assert len(server.seen) == 3
    assert raised.value.problem["detail"] == "The task store is unreachable."


def test_readiness_is_asked_once_and_reported(scripted: Callable[..., ScriptedServer]) -> None:
    server = scripted([(503, {"Retry-After": "5"}, b'{"status": "unavailable", "redis": "unreachable"}')])
    assert Client(server.url, "k").ready() == {"status": "unavailable", "redis": "unreachable"}
    assert len(server.seen) == 1


def test_no_server_is_a_transport_error_and_exit_5(scripted: Callable[..., ScriptedServer]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(TransportError) as raised:
        Client(url, "hlk_secret_value", retries=1, sleep=lambda s: None).tasks.list()
    assert "hlk_secret_value" not in str(raised.value)
    # The CLI says the server is unavailable: 503s to the end, or no answer
    server = scripted([(503, {"Retry-After": "0"}, UNAVAILABLE[2])] * 10)
    result = CliRunner().invoke(cli, ["--json", "tasks", "ls"],
                                env={"HOOKLINE_URL": server.url, "HOOKLINE_API_KEY": "k"})
    assert result.exit_code == 5, result.output
    assert '"detail": "The task store is unreachable."' in result.stdout
