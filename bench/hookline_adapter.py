"""Adapter for the shared load driver (``../shared/bench/e2e.py --adapter hookline_adapter``).

Every call carries ``Authorization: Bearer`` (the driver adds ``HEADERS`` to
its submits and status look-ups), jobs name a registered callback by id, and
the webhook nests the task under ``data``. The key comes from
``HOOKLINE_BENCH_KEY`` and the callback from ``HOOKLINE_BENCH_CALLBACK``.
"""
from __future__ import annotations

import os
from typing import Any

SUBMIT_PATH = "/tasks"
ACCEPT_STATUSES = (202,)
CALLBACK_FIELD = "callback_id"
CALLBACK_VALUE = os.environ.get("HOOKLINE_BENCH_CALLBACK", "")
WEBHOOK_ID_FIELD = "data.task_id"
STATUS_PATH = "/tasks/{task_id}"

HEADERS = {"Authorization": f"Bearer {os.environ.get('HOOKLINE_BENCH_KEY', '')}"}


def build_body(i: int, vectors: Any, callback_field: str, callback_value: str) -> dict[str, Any]:
    body = {"vector_data": vectors, "metadata": {"source": "bench", "i": i}}
    if callback_field:
        body[callback_field] = callback_value
    return body


def task_id_from_accept(resp: dict[str, Any]) -> str:
    return str(resp["task_id"])


def is_done(status_resp: dict[str, Any]) -> bool:
    return status_resp.get("status") == "SUCCESS"

