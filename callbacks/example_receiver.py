"""A webhook receiver in a few lines: verify, dedupe on webhook-id, answer fast.

Run: HOOKLINE_WEBHOOK_SECRET=whsec_... flask --app callbacks.example_receiver run --port 9000
"""
from __future__ import annotations

import os

from flask import Flask, request

from callbacks import SignatureError, verify

app = Flask(__name__)
SECRET = os.environ.get("HOOKLINE_WEBHOOK_SECRET", "")
# Kept in memory for the example; use a table with a unique key in production.
seen: set[str] = set()


@app.post("/hooks/hookline")
def hookline_webhook() -> tuple[str, int]:
    try:
        event = verify(request.get_data(), request.headers, SECRET)
    except SignatureError:
        return "bad signature", 400
    webhook_id = request.headers["webhook-id"]
    if webhook_id in seen:  # a retry of an event already handled
        return "", 204
    seen.add(webhook_id)
    task = event["data"]
    print(f"{event['type']}: task {task['task_id']} is {task['status']}")
    return "", 204
