"""A task with a callback, submitted through the API, for the actor tests."""
from __future__ import annotations

from flask.testing import FlaskClient

from tests.procs import Receiver


def task_with_callback(client: FlaskClient, auth: dict, receiver: Receiver) -> tuple[str, str]:
    """A pending task whose callback is ``receiver``'s ``/hook``: ``(task id, callback id)``."""
    callback = client.post("/callbacks", json={"url": receiver.url("/hook")}, headers=auth).get_json()
    task_id = client.post("/tasks", json={"vector_data": [0.5, 0.5], "callback_id": callback["id"]},
                          headers=auth).get_json()["task_id"]
    return task_id, callback["id"]
