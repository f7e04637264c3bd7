"""Adapter for the shared load driver (``../shared/bench/e2e.py --adapter hookline_adapter``).

Hookline's API differs from the seed's in two ways the driver's adapter
interface does not cover: every call carries ``Authorization: Bearer``, and
the webhook nests the task under ``data``. The key comes from
``HOOKLINE_BENCH_KEY``; it is added to the driver's request headers and to
its status look-ups when this module is imported by the driver.
"""
from __future__ import annotations

import os
import sys
from typing import Any

SUBMIT_PATH = "/tasks"
ACCEPT_STATUSES = (202,)
CALLBACK_FIELD = "callback_id"
CALLBACK_VALUE = os.environ.get("HOOKLINE_BENCH_CALLBACK", "")
WEBHOOK_ID_FIELD = "data.task_id"
STATUS_PATH = "/tasks/{task_id}"

_AUTH = {"Authorization": f"Bearer {os.environ.get('HOOKLINE_BENCH_KEY', '')}"}


def build_body(i: int, vectors: Any, callback_field: str, callback_value: str) -> dict[str, Any]:
    body = {"vector_data": vectors, "metadata": {"source": "bench", "i": i}}
    if callback_field:
        body[callback_field] = callback_value
    return body


def task_id_from_accept(resp: dict[str, Any]) -> str:
    return str(resp["task_id"])


def is_done(status_resp: dict[str, Any]) -> bool:
    return status_resp.get("status") == "SUCCESS"


def _authorise_driver() -> None:
    driver = sys.modules.get("__main__")
    if driver is None or not hasattr(driver, "JSON_HEADERS"):
        return
    driver.JSON_HEADERS = {**driver.JSON_HEADERS, **_AUTH}  # type: ignore[attr-defined]
    plain_get_json = driver.get_json  # type: ignore[attr-defined]

    async def get_json(session: Any, url: str, headers: Any = None) -> Any:
        if "/_stats" in url or "/_dump" in url:  # the driver's own receiver
            return await plain_get_json(session, url)
        async with session.get(url, headers=_AUTH) as resp:
            return await resp.json(content_type=None)

    driver.get_json = get_json  # type: ignore[attr-defined]


_authorise_driver()
