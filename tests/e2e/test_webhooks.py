"""Webhooks end to end: gunicorn, both workers, redis-server and a real receiver."""
from __future__ import annotations

import subprocess
import sys
import threading
import time

import orjson
import redis as redis_lib
import requests
import standardwebhooks

from callbacks import verify
from tests.procs import ROOT, Receiver, Stack, held, queued, wait_until

SEED = {"vector_data": [0.1, 0.2, 0.3], "metadata": {"source": "user"}}


def key_for(stack: Stack, tenant: str = "acme") -> dict[str, str]:
    out = subprocess.run([sys.executable, "-m", "flask", "--app", "webapp", "keys", "create", tenant],
                         env=stack.env, capture_output=True, text=True, check=True, cwd=ROOT)
    return {"Authorization": f"Bearer {out.stdout.strip().splitlines()[-1]}"}


def register(stack: Stack, auth: dict, url: str) -> dict:
    resp = requests.post(f"{stack.url}/callbacks", json={"url": url}, headers=auth, timeout=5)
    assert resp.status_code == 201, resp.text
    return resp.json()


def submit(stack: Stack, auth: dict, **extra: object) -> str:
    resp = requests.post(f"{stack.url}/tasks", json={**SEED, **extra}, headers=auth, timeout=5)
    assert resp.status_code == 202, resp.text
    return resp.json()["task_id"]


def task(stack: Stack, auth: dict, task_id: str) -> dict:
    return requests.get(f"{stack.url}/tasks/{task_id}", headers=auth, timeout=5).json()


def deliveries(stack: Stack, auth: dict, task_id: str) -> list[dict]:
    return requests.get(f"{stack.url}/tasks/{task_id}/deliveries", headers=auth, timeout=5).json()["items"]


def check_signature(hook: dict, secret: str) -> dict:
    body = verify(hook["body"], hook["headers"], secret)
    assert standardwebhooks.Webhook(secret).verify(hook["body"], hook["headers"]) == body
    return body


def test_one_verified_webhook_per_task_whose_data_is_the_task(stack: Stack, receiver: Receiver) -> None:
    auth = key_for(stack)
    callback = register(stack, auth, receiver.url("/ok"))
    assert callback["secret"].startswith("whsec_")
    task_id = submit(stack, auth, callback_url=receiver.url("/ok"))
    wait_until(lambda: receiver.received("/ok"), 30, "the webhook arrives")
    wait_until(lambda: task(stack, auth, task_id)["callback"]["delivery"] == "delivered", 10,
               "delivery recorded")
    hooks = receiver.received("/ok")
    assert len(hooks) == 1
    event = check_signature(hooks[0], callback["secret"])
    assert event["type"] == "task.succeeded"
    assert event["data"] == task(stack, auth, task_id)
    assert hooks[0]["headers"]["webhook-id"] == "msg_" + task_id.replace("-", "")
    assert hooks[0]["headers"]["user-agent"].startswith("hookline/")
    log = deliveries(stack, auth, task_id)
    assert [(d["attempt"], d["status_code"], d["trigger"]) for d in log] == [(1, 204, "scheduled")]


def test_failed_and_revoked_tasks_send_their_events(make_stack, receiver: Receiver, redis) -> None:  # type: ignore[no-untyped-def]
    stack = make_stack()
    stack.start_web()
    stack.start_callbacks()
    auth = key_for(stack)
    callback = register(stack, auth, receiver.url("/events"))
    # A pending task cancelled before any worker runs: task.revoked
    revoked = submit(stack, auth, callback_id=callback["id"])
    assert requests.post(f"{stack.url}/tasks/{revoked}/cancel", headers=auth, timeout=5).status_code == 202
    # A task whose payload cannot be processed: task.failed
    failing = submit(stack, auth, callback_id=callback["id"])
    redis.hset(f"hl:task:{failing}", "payload", b"\x00" * 5)
    stack.start_worker()
    wait_until(lambda: len(receiver.received("/events")) == 2, 30, "both webhooks arrive")
    events = {e["data"]["task_id"]: e for e in
              (check_signature(h, callback["secret"]) for h in receiver.received("/events"))}
    assert events[revoked]["type"] == "task.revoked"
    assert events[failing]["type"] == "task.failed"
    assert events[failing]["data"]["status"] == "FAILURE"
    assert "payload" in events[failing]["data"]["error"]


def test_retries_follow_the_schedule_with_fresh_signatures(make_stack, receiver: Receiver) -> None:  # type: ignore[no-untyped-def]
    # The callbacks worker's series from its first attempt: the job worker
    # does not try the receiver first (tests/e2e/test_inline_delivery.py).
    stack = make_stack(HOOKLINE_WEBHOOK_RETRY_SCHEDULE="1,2,1,1", HOOKLINE_WEBHOOK_TIMEOUT="1",
                       HOOKLINE_INLINE_DELIVERY_MS="0")
    stack.start()
    # The receiver answers 500, then 503 with Retry-After: 3, then hangs past the timeout, then 200
    answers = {1: (500, {}, 0.0), 2: (503, {"Retry-After": "3"}, 0.0), 3: (200, {}, 2.5)}
    receiver.script["/flaky"] = lambda n: answers.get(n, (200, {}, 0.0))
    auth = key_for(stack)
    callback = register(stack, auth, receiver.url("/flaky"))
    task_id = submit(stack, auth, callback_id=callback["id"])
    wait_until(lambda: task(stack, auth, task_id)["callback"]["delivery"] == "delivered", 60,
               "delivered after retries")
    hooks = receiver.received("/flaky")
    assert len(hooks) == 4
    assert len({h["headers"]["webhook-id"] for h in hooks}) == 1
    assert len({h["headers"]["webhook-signature"] for h in hooks}) == 4
    for hook in hooks:
        check_signature(hook, callback["secret"])
    gaps = [b["at"] - a["at"] for a, b in zip(hooks, hooks[1:])]
    # schedule 1 s (±20 %), then Retry-After 3 s as a floor over 2 s, then 1 s after a 1 s timeout
    assert 0.7 <= gaps[0] <= 2.5, gaps
    assert 2.9 <= gaps[1] <= 4.5, gaps
    assert 1.6 <= gaps[2] <= 3.5, gaps
    log = deliveries(stack, auth, task_id)
    assert [d["status_code"] for d in log] == [500, 503, None, 200]
    assert log[2]["error"] and "timeout" in log[2]["error"].lower()
    assert [d["attempt"] for d in log] == [1, 2, 3, 4]


def test_410_disables_the_callback_and_later_tasks_skip_it(make_stack, receiver: Receiver) -> None:  # type: ignore[no-untyped-def]
    # One attempt, the callbacks worker's: the job worker does not try the
    # receiver first (tests/e2e/test_inline_delivery.py).
    stack = make_stack(HOOKLINE_INLINE_DELIVERY_MS="0").start()
    receiver.script["/gone"] = lambda n: (410, {}, 0.0)
    auth = key_for(stack)
    callback = register(stack, auth, receiver.url("/gone"))
    first = submit(stack, auth, callback_id=callback["id"])
    wait_until(lambda: task(stack, auth, first)["callback"]["delivery"] == "disabled", 30,
               "delivery marked disabled")
    shown = requests.get(f"{stack.url}/callbacks/{callback['id']}", headers=auth, timeout=5).json()
    assert shown["disabled"] is True and shown["disabled_reason"]
    assert "secret" not in shown
    second = submit(stack, auth, callback_id=callback["id"])
    wait_until(lambda: task(stack, auth, second)["status"] == "SUCCESS", 30, "second task done")
    wait_until(lambda: task(stack, auth, second)["callback"]["delivery"] == "disabled", 30,
               "second delivery skipped")
    assert len(receiver.received("/gone")) == 1


def test_redirect_is_not_followed(stack: Stack, receiver: Receiver) -> None:
    receiver.script["/moved"] = lambda n: (302, {"Location": receiver.url("/elsewhere")}, 0.0)
    auth = key_for(stack)
    callback = register(stack, auth, receiver.url("/moved"))
    task_id = submit(stack, auth, callback_id=callback["id"])
    wait_until(lambda: task(stack, auth, task_id)["callback"]["delivery"] == "failed", 30,
               "delivery fails after the schedule")
    assert receiver.received("/elsewhere") == []
    assert {d["status_code"] for d in deliveries(stack, auth, task_id)} == {302}


def test_exhausted_delivery_is_failed_then_a_manual_retry_and_recover_deliver(
        stack: Stack, receiver: Receiver) -> None:
    up = {"value": False}
    receiver.script["/down"] = lambda n: (200, {}, 0.0) if up["value"] else (500, {}, 0.0)
    auth = key_for(stack)
    callback = register(stack, auth, receiver.url("/down"))
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 5))
    first = submit(stack, auth, callback_id=callback["id"])
    second = submit(stack, auth, callback_id=callback["id"])
    for task_id in (first, second):
        wait_until(lambda t=task_id: task(stack, auth, t)["callback"]["delivery"] == "failed", 30,
                   "delivery fails after 1 + 3 attempts")
        assert len(deliveries(stack, auth, task_id)) == 4
    up["value"] = True
    # One manual attempt delivers the first
    resp = requests.post(f"{stack.url}/tasks/{first}/deliveries/retry", headers=auth, timeout=5)
    assert resp.status_code == 202
    wait_until(lambda: task(stack, auth, first)["callback"]["delivery"] == "delivered", 30,
               "manual resend delivers")
    assert deliveries(stack, auth, first)[-1]["trigger"] == "manual"
    # recover resends what is still failed
    resp = requests.post(f"{stack.url}/callbacks/{callback['id']}/recover", json={"since": since},
                         headers=auth, timeout=5)
    assert resp.status_code == 202 and resp.json()["count"] == 1
    wait_until(lambda: task(stack, auth, second)["callback"]["delivery"] == "delivered", 30,
               "recover delivers")
    ids = {h["headers"]["webhook-id"] for h in receiver.received("/down")}
    assert len(ids) == 2


def test_rotated_secret_old_and_new_both_verify(stack: Stack, receiver: Receiver) -> None:
    auth = key_for(stack)
    callback = register(stack, auth, receiver.url("/rot"))
    rotated = requests.post(f"{stack.url}/callbacks/{callback['id']}/rotate-secret", headers=auth,
                            timeout=5)
    assert rotated.status_code == 200
    new_secret = rotated.json()["secret"]
    assert new_secret != callback["secret"]
    submit(stack, auth, callback_id=callback["id"])
    wait_until(lambda: receiver.received("/rot"), 30, "webhook arrives")
    hook = receiver.received("/rot")[0]
    assert len(hook["headers"]["webhook-signature"].split(" ")) == 2
    check_signature(hook, callback["secret"])
    check_signature(hook, new_secret)


def test_a_hanging_receiver_holds_nothing_up(make_stack, receiver: Receiver) -> None:  # type: ignore[no-untyped-def]
    stack = make_stack(HOOKLINE_WEBHOOK_TIMEOUT="20", HOOKLINE_WEBHOOK_RETRY_SCHEDULE="60")
    stack.start()
    receiver.script["/hang"] = lambda n: (200, {}, 15.0)
    auth = key_for(stack)
    slow = register(stack, auth, receiver.url("/hang"))
    fast = register(stack, auth, receiver.url("/fast"))
    submit(stack, auth, callback_id=slow["id"])
    wait_until(lambda: receiver.received("/hang"), 30, "the slow receiver is being called")
    started = time.time()
    ids = [submit(stack, auth, callback_id=fast["id"]) for _ in range(200)]
    wait_until(lambda: len(receiver.received("/fast")) == 200, 14, "200 other webhooks arrive")
    # All of them arrived while the slow receiver still held its request
    assert time.time() - started < 15
    got = {orjson.loads(h["body"])["data"]["task_id"] for h in receiver.received("/fast")}
    assert got == set(ids)


def test_a_first_delivery_reads_nothing_yet_every_callback_change_reaches_the_next_webhook(
    stack: Stack, receiver: Receiver, redis: redis_lib.Redis
) -> None:
    auth = key_for(stack)
    callback = register(stack, auth, receiver.url("/a"))
    submit(stack, auth, callback_id=callback["id"])
    wait_until(lambda: len(receiver.received("/a")) == 1, 30, "the first webhook arrives")

    # Everything Redis is asked while the next task runs and is delivered.
    commands: list[dict] = []
    watching = threading.Event()
    done = threading.Event()

    def watch() -> None:
        with redis.monitor() as monitor:
            watching.set()
            while not done.is_set():
                commands.append(monitor.next_command())

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    assert watching.wait(10)
    second = submit(stack, auth, callback_id=callback["id"])
    wait_until(lambda: len(receiver.received("/a")) == 2, 30, "the second webhook arrives")
    done.set()
    watcher.join(10)
    # The job's own scripts read the record (inside Redis); the webhook
    # worker sends the event its message carries, without reading the task.
    assert [c for c in commands if c["client_type"] != "lua"
            and c["command"].startswith(f"HGETALL hl:task:{second}")] == []
    hook = receiver.received("/a")[1]
    check_signature(hook, callback["secret"])
    wait_until(lambda: task(stack, auth, second)["callback"]["delivery"] == "delivered", 10,
               "delivery recorded")
    assert orjson.loads(hook["body"])["data"] == task(stack, auth, second)

    # A rotated secret signs the very next webhook.
    rotated = requests.post(f"{stack.url}/callbacks/{callback['id']}/rotate-secret", headers=auth,
                            timeout=5)
    new_secret = rotated.json()["secret"]
    submit(stack, auth, callback_id=callback["id"])
    wait_until(lambda: len(receiver.received("/a")) == 3, 30, "the third webhook arrives")
    check_signature(receiver.received("/a")[2], new_secret)

    # A new URL takes the very next webhook.
    moved = requests.patch(f"{stack.url}/callbacks/{callback['id']}",
                           json={"url": receiver.url("/b")}, headers=auth, timeout=5)
    assert moved.status_code == 200, moved.text
    submit(stack, auth, callback_id=callback["id"])
    wait_until(lambda: len(receiver.received("/b")) == 1, 30, "the webhook goes to the new URL")

    # A disabled callback gets nothing more.
    off = requests.patch(f"{stack.url}/callbacks/{callback['id']}", json={"disabled": True},
                         headers=auth, timeout=5)
    assert off.status_code == 200, off.text
    last = submit(stack, auth, callback_id=callback["id"])
    wait_until(lambda: task(stack, auth, last)["callback"]["delivery"] == "disabled", 30,
               "the delivery is marked disabled")
    assert len(receiver.received("/a")) == 3 and len(receiver.received("/b")) == 1


def test_a_callback_moved_while_its_webhook_waits_behind_a_slow_receiver_takes_the_new_url(
    make_stack, receiver: Receiver, redis: redis_lib.Redis  # type: ignore[no-untyped-def]
) -> None:
    # Every webhook through the callbacks worker, the healthy one included:
    # the job worker does not deliver any itself.
    stack = make_stack(HOOKLINE_WEBHOOK_TIMEOUT="30", HOOKLINE_WEBHOOK_RETRY_SCHEDULE="60",
                       HOOKLINE_INLINE_DELIVERY_MS="0")
    stack.start_web()
    stack.start_worker()
    # One webhook thread: the next message is taken off the queue, with the
    # callbacks' change counter, and waits in the process while it is busy.
    stack.start_worker("callbacks", "callbacks", processes=1, threads=1)
    receiver.script["/hang"] = lambda n: (200, {}, 8.0)
    auth = key_for(stack)
    slow = register(stack, auth, receiver.url("/hang"))
    moving = register(stack, auth, receiver.url("/old"))
    first = submit(stack, auth, callback_id=moving["id"])
    wait_until(lambda: task(stack, auth, first)["callback"]["delivery"] == "delivered", 30,
               "the first webhook is delivered (the worker has read the callback)")
    submit(stack, auth, callback_id=slow["id"])
    wait_until(lambda: receiver.received("/hang"), 30, "the slow receiver is being called")
    waiting = submit(stack, auth, callback_id=moving["id"])
    wait_until(lambda: task(stack, auth, waiting)["status"] == "SUCCESS"
               and not queued(redis, "callbacks") and held(redis, "callbacks") == 2, 10,
               "the second webhook's message is taken while the only thread is busy")
    moved = requests.patch(f"{stack.url}/callbacks/{moving['id']}",
                           json={"url": receiver.url("/new")}, headers=auth, timeout=5)
    assert moved.status_code == 200, moved.text
    # ... while the slow receiver still holds its request.
    assert time.time() - receiver.received("/hang")[0]["at"] < 7

    wait_until(lambda: task(stack, auth, waiting)["callback"]["delivery"] == "delivered", 30,
               "the waiting webhook is delivered once the slow receiver answers")
    assert [orjson.loads(h["body"])["data"]["task_id"] for h in receiver.received("/old")] == [first]
    hooks = receiver.received("/new")
    assert [orjson.loads(h["body"])["data"]["task_id"] for h in hooks] == [waiting]
    check_signature(hooks[0], moving["secret"])


def test_an_event_too_large_for_its_message_is_read_from_the_task(stack: Stack, receiver: Receiver) -> None:
    auth = key_for(stack)
    callback = register(stack, auth, receiver.url("/big"))
    metadata = {"notes": "x" * 6000}  # the event is over 4 KiB as JSON
    task_id = submit(stack, auth, callback_id=callback["id"], metadata=metadata)
    wait_until(lambda: receiver.received("/big"), 30, "the webhook arrives")
    wait_until(lambda: task(stack, auth, task_id)["callback"]["delivery"] == "delivered", 10,
               "delivery recorded")
    event = check_signature(receiver.received("/big")[0], callback["secret"])
    assert event["data"] == task(stack, auth, task_id)
    assert event["data"]["metadata"] == metadata
