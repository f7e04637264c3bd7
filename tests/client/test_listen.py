"""``hookline listen`` end to end: a real relay process between the stack and a local receiver."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from typing import IO, NamedTuple

import pytest
import requests

from callbacks import verify
from hookline.cli.listen import Relay as Relaying
from hookline.cli.listen import Stop, _raise_stop
from hookline.client import Client, NotFound
from tests.client.support import ROOT, SEED, LineReader, Receiver, Stack, new_key, wait_until


class Relay(NamedTuple):
    proc: subprocess.Popen[str]
    lines: LineReader
    key: str
    errors: IO[str]


@pytest.fixture
def start_relay(full_stack: Stack, receiver: Receiver) -> Iterator[Callable[..., Relay]]:
    """``start_relay(*flags)``: ``hookline [flags] listen --forward-to <receiver>/fwd`` as a
    real process, a reader of its output, its API key and its error output; killed after the
    test if still running."""
    procs: list[tuple[subprocess.Popen[str], IO[str]]] = []

    def start(*flags: str) -> Relay:
        key = new_key(full_stack)
        env = {**os.environ, "HOOKLINE_URL": full_stack.url, "HOOKLINE_API_KEY": key, "PYTHONUNBUFFERED": "1"}
        # Its error output goes to a file, which never fills up and blocks the
        # relay as an unread pipe would; stopped() shows it.
        errors = tempfile.TemporaryFile("w+")
        proc = subprocess.Popen([sys.executable, "-m", "hookline.cli", *flags, "listen", "--forward-to",
                                 receiver.url("/fwd")], env=env, cwd=ROOT, text=True,
                                stdout=subprocess.PIPE, stderr=errors)
        procs.append((proc, errors))
        assert proc.stdout is not None
        return Relay(proc, LineReader(proc.stdout), key, errors)

    yield start
    for proc, errors in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        errors.close()
        if proc.stdout is not None:
            proc.stdout.close()


def stopped(relay: Relay, how: signal.Signals) -> str:
    """Stop the relay as a person would; its exit must be clean. Returns its error output."""
    proc, lines, _, errors = relay
    proc.send_signal(how)
    try:
        code = proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        code = None
    errors.seek(0)
    said = errors.read()
    assert code == 0, f"the relay exited with {code} (None: still running); its output: {lines.lines}, " \
                      f"its errors: {said}"
    return said


@pytest.fixture
def relay(start_relay: Callable[..., Relay]) -> Relay:
    """The relay with ``--json``: one JSON object per line."""
    return start_relay("--json")


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_listen_verifies_prints_forwards_and_cleans_up(
        full_stack: Stack, receiver: Receiver, relay: Relay,
        stop: signal.Signals) -> None:
    _, lines, key, _ = relay
    client = Client(full_stack.url, key)
    # Given the relay registered its own receiver as a callback
    ready = json.loads(lines.wait_for(lambda line: '"ready"' in line, 30, "the relay is ready"))
    callback = client.callbacks.get(ready["callback_id"])
    assert callback["url"] == ready["url"] and ready["url"].startswith("http://127.0.0.1:")
    # When a task that names it finishes
    task_id = client.tasks.submit(**SEED, callback_id=callback["id"])["task_id"]
    client.wait(task_id, timeout=30)
    # Then the relay prints the event, and forwards the same body and signature to the local app
    printed = json.loads(lines.wait_for(lambda line: task_id in line, 30, "the event is printed"))
    assert printed["type"] == "task.succeeded" and printed["forward_status"] == 204
    assert printed["answered"] == 200
    forwarded = wait_until(lambda: receiver.received("/fwd"), 10, "the webhook is forwarded")[0]
    event = verify(forwarded["body"], forwarded["headers"], ready["secret"])
    assert event["data"]["task_id"] == task_id
    # And the platform recorded the relay's answer
    wait_until(lambda: client.tasks.get(task_id)["callback"]["delivery"] == "delivered", 10, "delivered")
    assert [d["status_code"] for d in client.tasks.deliveries(task_id)["items"]] == [200]
    # A request without a valid signature is refused and not forwarded
    forged = requests.post(ready["url"], data=forwarded["body"], timeout=5, headers={
        "webhook-id": forwarded["headers"]["webhook-id"],
        "webhook-timestamp": forwarded["headers"]["webhook-timestamp"],
        "webhook-signature": "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "content-type": "application/json"})
    assert forged.status_code == 400
    lines.wait_for(lambda line: "signature rejected" in line, 10, "the refusal is printed")
    assert len(receiver.received("/fwd")) == 1
    # When it is stopped, it removes its callback and exits cleanly
    stopped(relay, stop)
    lines.wait_for(lambda line: '"stopped"' in line, 10, "the stop is printed")
    with pytest.raises(NotFound):
        client.callbacks.get(callback["id"])
    client.close()


def test_a_failing_local_app_gets_its_webhook_retried(
        full_stack: Stack, receiver: Receiver, relay: Relay) -> None:
    _, lines, key, _ = relay
    client = Client(full_stack.url, key)
    ready = json.loads(lines.wait_for(lambda line: '"ready"' in line, 30, "the relay is ready"))
    # Given a local app that answers 503 once, then 204
    receiver.script["/fwd"] = lambda n: (503, {}, 0.0) if n == 1 else (204, {}, 0.0)
    task_id = client.tasks.submit(**SEED, callback_id=ready["callback_id"])["task_id"]
    # Then the platform saw a 5xx and tried again (the stack's schedule is 1 s)
    wait_until(lambda: client.tasks.get(task_id)["callback"]["delivery"] == "delivered", 30, "delivered")
    assert [d["status_code"] for d in client.tasks.deliveries(task_id)["items"]] == [500, 200]
    assert len(receiver.received("/fwd")) == 2
    stopped(relay, signal.SIGINT)
    client.close()




def test_listen_speaks_to_people_without_json(full_stack: Stack, receiver: Receiver,
                                              start_relay: Callable[..., Relay]) -> None:
    relay = start_relay()
    _, lines, key, _ = relay
    found = re.search(r"callback (\S+) to", lines.wait_for(lambda line: "Relaying" in line, 30, "ready"))
    assert found is not None
    with Client(full_stack.url, key) as client:
        task_id = client.tasks.submit(**SEED, callback_id=found.group(1))["task_id"]
        line = lines.wait_for(lambda text: task_id in text, 30, "the event line")
        assert "task.succeeded" in line and f"-> 204 {receiver.url('/fwd')}" in line
        assert f"Removed callback {found.group(1)}" in stopped(relay, signal.SIGINT)
        with pytest.raises(NotFound):
            client.callbacks.get(found.group(1))


def test_a_sigterm_while_a_request_is_taken_stops_the_relay() -> None:
    # Given the relay's server, and a SIGTERM that arrives while it takes a
    # request (its handler raises Stop in the main thread, wherever it is)
    server = Relaying("http://127.0.0.1:9/", "", lambda line: None).server("127.0.0.1", 0)
    server.process_request = lambda request, address: _raise_stop(signal.SIGTERM, None)  # type: ignore[method-assign]
    ended: list[str] = []

    def serve() -> None:
        try:
            server.serve_forever(poll_interval=0.05)
        except Stop:
            ended.append("stopped")

    serving = threading.Thread(target=serve, daemon=True)
    serving.start()
    # When a request comes in
    try:
        requests.post(f"http://127.0.0.1:{server.server_address[1]}/", data=b"{}", timeout=5)
    except requests.RequestException:
        pass  # the connection is closed unanswered: the relay is stopping
    # Then the server stops serving, as it does for Ctrl-C, instead of
    # reporting the signal as a failed request and serving on
    serving.join(timeout=10)
    still_serving = serving.is_alive()
    if still_serving:
        server.shutdown()
    server.server_close()
    assert not still_serving and ended == ["stopped"]
