"""The client against the whole stack: jobs that run, callbacks and their webhooks."""
from __future__ import annotations

import datetime
from collections.abc import Callable

import pytest

from callbacks import SignatureError, verify
from hookline.client import Client, Conflict, NotFound
from hookline.client.models import Task
from tests.client.support import SEED, Receiver, Stack, wait_until


def test_submit_and_wait(full_stack: Stack, connect: Callable[..., Client]) -> None:
    client = connect(full_stack)
    seen: list[Task] = []
    accepted = client.tasks.submit([[3.0, 4.0], [0.0, 2.0]], metadata={"source": "client"}, collection="demo")
    assert accepted["status"] == "Processing"
    done = client.wait(accepted["task_id"], timeout=30, on_change=seen.append)
    assert done["status"] == "SUCCESS"
    assert done["result"]["processed_vectors"] == 2 and done["result"]["dimension"] == 2
    assert done["result"]["metadata_processed"] == {"source": "client", "collection": "demo"}
    assert done["progress"] == {"done": 2, "total": 2}
    assert seen[-1] == done
    assert client.health() == {"status": "ok"}
    assert client.ready()["status"] == "ready"


def test_the_same_idempotency_key_runs_one_job(full_stack: Stack, connect: Callable[..., Client]) -> None:
    client = connect(full_stack)
    first = client.tasks.submit(**SEED, idempotency_key="order-17")
    again = client.tasks.submit(**SEED, idempotency_key="order-17")
    assert again["task_id"] == first["task_id"]
    assert len(list(client.tasks.iter())) == 1


def test_callback_lifecycle_and_its_deliveries(full_stack: Stack, connect: Callable[..., Client],
                                               receiver: Receiver) -> None:
    client = connect(full_stack)
    # Created: the secret is in this answer only
    created = client.callbacks.create(receiver.url("/hook"), description="orders")
    secret = created["secret"]
    assert secret.startswith("whsec_") and created["disabled"] is False
    assert "secret" not in client.callbacks.get(created["id"])
    assert [c["id"] for c in client.callbacks.iter()] == [created["id"]]
    # Disabled and enabled again
    assert client.callbacks.disable(created["id"])["disabled"] is True
    assert client.callbacks.enable(created["id"])["disabled"] is False
    assert client.callbacks.update(created["id"], description="orders v2")["description"] == "orders v2"
    # A task's webhook arrives signed with the secret and is logged
    task_id = client.tasks.submit(**SEED, callback_id=created["id"])["task_id"]
    client.wait(task_id, timeout=30)
    wait_until(lambda: receiver.received("/hook"), 30, "the webhook arrives")
    event = verify(receiver.received("/hook")[0]["body"], receiver.received("/hook")[0]["headers"], secret)
    assert event["type"] == "task.succeeded" and event["data"]["task_id"] == task_id
    wait_until(lambda: client.tasks.get(task_id)["callback"]["delivery"] == "delivered", 10, "recorded")
    log = client.tasks.deliveries(task_id)
    assert [(d["attempt"], d["status_code"], d["trigger"]) for d in log["items"]] == [(1, 204, "scheduled")]
    # Resent by hand: one more attempt, marked manual
    assert client.tasks.retry_delivery(task_id)["trigger"] == "manual"
    wait_until(lambda: len(receiver.received("/hook")) == 2, 30, "the resend arrives")
    wait_until(lambda: len(list(client.tasks.iter_deliveries(task_id, page_size=1))) == 2, 10, "logged")
    triggers = [d["trigger"] for d in client.tasks.iter_deliveries(task_id, page_size=1)]
    assert triggers == ["scheduled", "manual"]
    # Rotated: later webhooks verify with the new secret
    rotated = client.callbacks.rotate(created["id"])
    assert rotated["secret"] != secret and rotated["previous_secret_expires_at"]
    client.tasks.retry_delivery(task_id)
    wait_until(lambda: len(receiver.received("/hook")) == 3, 30, "a webhook after rotation arrives")
    third = receiver.received("/hook")[2]
    assert verify(third["body"], third["headers"], rotated["secret"])["data"]["task_id"] == task_id
    # Deleted: gone for the API
    client.callbacks.delete(created["id"])
    with pytest.raises(NotFound):
        client.callbacks.get(created["id"])


def test_recover_resends_what_failed_since_then(full_stack: Stack, connect: Callable[..., Client],
                                                receiver: Receiver) -> None:
    client = connect(full_stack)
    # Given a receiver that fails every attempt until it is fixed (the stack retries 1,1,1 s)
    broken = {"on": True}
    receiver.script["/down"] = lambda n: (500, {}, 0.0) if broken["on"] else (204, {}, 0.0)
    callback = client.callbacks.create(receiver.url("/down"))
    since = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=1)
    task_id = client.tasks.submit(**SEED, callback_id=callback["id"])["task_id"]
    wait_until(lambda: client.tasks.get(task_id)["callback"]["delivery"] == "failed", 60, "delivery fails")
    failed_attempts = len(receiver.received("/down"))
    assert failed_attempts == 4
    # When it is fixed and the callback recovered
    broken["on"] = False
    recovery = client.callbacks.recover(callback["id"], since)
    # Then the failed delivery is sent again, and delivered
    assert recovery["count"] == 1
    wait_until(lambda: client.tasks.get(task_id)["callback"]["delivery"] == "delivered", 30, "redelivered")
    assert len(receiver.received("/down")) == failed_attempts + 1
    assert client.tasks.deliveries(task_id)["items"][-1]["trigger"] == "manual"
    # A task without a callback has nothing to resend
    plain = client.tasks.submit(**SEED)["task_id"]
    with pytest.raises(Conflict):
        client.tasks.retry_delivery(plain)
    # A webhook does not verify with another callback's secret
    with pytest.raises(SignatureError):
        verify(receiver.received("/down")[0]["body"], receiver.received("/down")[0]["headers"],
               client.callbacks.create(receiver.url("/other"))["secret"])
