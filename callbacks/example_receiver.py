"""A Hookline webhook receiver in a few lines: verify, skip repeats, answer fast.

Run: HOOKLINE_WEBHOOK_SECRET=whsec_... flask --app callbacks.example_receiver run --port 9000
(This file is an example; the ``callbacks`` package never imports it.)
"""
from __future__ import annotations

import os

from flask import Flask, request

from callbacks import SignatureError, verify

app = Flask(__name__)

# In memory for the example only: use a table with a unique key on the
# webhook id in production, so that repeats are caught across restarts.
seen: set[str] = set()


@app.post("/hooks/hookline")
def hookline_webhook() -> tuple[str, int]:
    secret = os.environ["HOOKLINE_WEBHOOK_SECRET"]  # unset is a server error (500), not the sender's
    try:
        event = verify(request.get_data(), request.headers, secret)
    except SignatureError:
        return "bad signature", 400
    webhook_id = request.headers["webhook-id"]
    if webhook_id not in seen:  # a retry of an event already handled is acknowledged alone
        seen.add(webhook_id)
        task = event["data"]
        print(f"{event['type']}: task {task['task_id']} is {task['status']}")
    return "", 204
