"""The console in headless Chromium over a real stack: gunicorn, both workers, Redis, a receiver.

One run walks what an operator does and saves a screenshot of each page
(the README shows them from ``docs/console/``; ``HOOKLINE_SCREENSHOTS_DIR=docs/console``
refreshes them, see ``tests.console.browser.screenshot_dir``).
"""
from __future__ import annotations

from collections.abc import Callable

import requests
from selenium import webdriver
from selenium.webdriver.common.by import By

from callbacks import verify
from tests.console.browser import (
    Console,
    api,
    create_key,
    start_receiver,
    stop_receiver,
)
from tests.procs import Receiver, Stack, wait_until

HOOK = "/hook"


def submit(call: Callable[..., requests.Response], **body: object) -> str:
    resp = call("POST", "/tasks", json={"vector_data": [0.1, 0.2, 0.3], **body})
    assert resp.status_code == 202, resp.text
    return str(resp.json()["task_id"])


def delivered_to_receiver(receiver: Receiver, task_id: str) -> list[dict]:
    wid = "msg_" + task_id.replace("-", "")
    return [r for r in receiver.received(HOOK) if r["headers"].get("webhook-id") == wid]


def test_operator_walkthrough(make_stack: Callable[..., Stack], receiver: Receiver,
                              driver: webdriver.Chrome) -> None:
    # The receiver's server is swapped for one that can drop its keep-alive connections.
    stop_receiver(receiver)
    start_receiver(receiver)
    stack = make_stack().start()
    key = create_key(stack, "acme")
    operator_key = create_key(stack, "ops", "--operator")
    call = api(stack, key)
    callback = call("POST", "/callbacks", json={"url": receiver.url(HOOK)}).json()
    console = Console(driver, stack.url)

    # Given a tenant signed in to the console
    console.open("/console/sign-in")
    console.shot("sign-in")
    console.sign_in(key)
    assert "tenant acme" in console.text("#signed-in-as")

    # When tasks are submitted through the API, then they appear on the tasks page
    ids = [submit(call, callback_id=callback["id"], metadata={"batch": n}) for n in range(3)]
    console.open("/console/tasks")
    console.reload_until(lambda: all(i in console.text("#tasks") for i in ids), 30, "tasks appear")
    console.reload_until(lambda: console.text("#tasks").count("SUCCESS") >= 3, 30, "tasks succeed")
    console.shot("tasks")

    # And one task's page shows its delivery, as the receiver got it
    console.open(f"/console/tasks/{ids[0]}")
    console.reload_until(lambda: "204" in console.text("#deliveries"), 30, "the delivery shows")
    assert "scheduled" in console.text("#deliveries")
    assert console.text("#task-status") == "SUCCESS"
    assert delivered_to_receiver(receiver, ids[0])
    console.shot("task")

    # When the receiver is down until deliveries fail
    stop_receiver(receiver)
    down = [submit(call, callback_id=callback["id"]) for _ in range(2)]
    wait_until(lambda: all(call("GET", f"/tasks/{t}").json()["callback"]["delivery"] == "failed"
                           for t in down), 60, "deliveries fail while the receiver is down")
    start_receiver(receiver)

    # Then the failed deliveries page counts them, and a confirmed bulk resend delivers them
    console.open("/console/deliveries/failed")
    assert "2 failed deliveries match" in console.text("#failed-count")
    assert all(t in console.text("#failed") for t in down)
    console.shot("failed-deliveries")
    console.click("#bulk-resend", confirm=True)
    wait_until(lambda: "Queued 2 failed deliveries" in console.text(".flash"), 10, "resend queued")
    wait_until(lambda: all(delivered_to_receiver(receiver, t) for t in down), 30,
               "the resent webhooks arrive at the receiver")
    console.open(f"/console/tasks/{down[0]}")
    console.reload_until(lambda: "manual" in console.text("#deliveries")
                         and "204" in console.text("#deliveries"), 30, "the manual attempt shows")
    assert "0 failed deliveries match" in (console.open("/console/deliveries/failed")
                                           or console.text("#failed-count"))

    # When no worker runs jobs, a pending task can be cancelled from its page
    stack.procs["worker"].stop()
    pending = submit(call)
    console.open(f"/console/tasks/{pending}")
    assert console.text("#task-status") == "PENDING"
    console.click("#cancel", confirm=True)
    wait_until(lambda: console.text("#task-status") == "REVOKED", 10, "the task is revoked")
    assert call("GET", f"/tasks/{pending}").json()["status"] == "REVOKED"

    # A form whose CSRF token is removed is refused and changes nothing
    other_pending = submit(call)
    console.open(f"/console/tasks/{other_pending}")
    driver.execute_script("document.querySelectorAll('input[name=csrf_token]')"
                          ".forEach(function (e) { e.remove(); });")
    console.click("#cancel", confirm=True)
    wait_until(lambda: "form has expired" in console.text(), 10, "the POST is refused")
    assert call("GET", f"/tasks/{other_pending}").json()["status"] == "PENDING"

    # Metadata holding a script renders as text
    hostile = submit(call, metadata={"note": "<script>document.title='owned'</script><b>bold</b>"})
    console.open(f"/console/tasks/{hostile}")
    assert "<script>document.title='owned'</script>" in console.text("#metadata")
    assert driver.title != "owned" and not driver.find_elements(By.CSS_SELECTOR, "#metadata b")

    # Rotating a secret shows the new one once; deliveries are signed with it
    console.open("/console/callbacks")
    assert callback["id"] in console.text("#callbacks")
    console.shot("callbacks")
    console.click(f"tr[data-callback-id='{callback['id']}'] button.rotate", confirm=True)
    secret = wait_until(lambda: console.text("#secret"), 10, "the new secret shows")
    assert secret.startswith("whsec_") and secret != callback["secret"]
    console.open("/console/callbacks")
    assert secret not in driver.page_source

    # The task page's resend button sends the webhook once more, signed with the new secret
    before = len(delivered_to_receiver(receiver, ids[0]))
    console.open(f"/console/tasks/{ids[0]}")
    console.click("#resend", confirm=True)
    wait_until(lambda: "queued to be sent once more" in console.text(".flash"), 10, "resend queued")
    resent = wait_until(lambda: delivered_to_receiver(receiver, ids[0])[before:], 30,
                        "the resent webhook arrives")
    assert verify(resent[0]["body"], resent[0]["headers"], secret)["data"]["task_id"] == ids[0]

    # Another tenant cannot reach this tenant's task by its URL
    console.sign_out()
    console.sign_in(create_key(stack, "umbrella"))
    console.open(f"/console/tasks/{ids[0]}")
    assert "404" in console.text("h1") and ids[0] not in driver.page_source
    console.sign_out()

    # An operator sees every tenant, and the overview refreshes itself
    console.sign_in(operator_key)
    console.open("/console/")
    wait_until(lambda: driver.find_element(By.ID, "live").get_attribute("data-refreshed"), 20,
               "the overview refreshes from its JSON")
    assert "jobs" in console.text() and "callbacks" in console.text()
    console.shot("overview")
    console.open("/console/tasks?tenant=acme")
    assert ids[0] in console.text("#tasks")
