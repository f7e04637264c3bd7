"""Tasks and their webhook deliveries: ``Client.tasks``."""
from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any, cast
from urllib.parse import quote

from hookline.client.errors import WaitTimeout
from hookline.client.models import TERMINAL, Accepted, Delivery, Page, Task
from hookline.client.paging import pages
from hookline.client.transport import Transport, retry_after_seconds

#: Seconds between polls when the server sends no ``Retry-After``.
DEFAULT_POLL_INTERVAL = 1.0


def _path(task_id: str, *rest: str) -> str:
    return "/".join(("/tasks", quote(task_id, safe=""), *rest))


class Tasks:
    """Submit, read, list and cancel tasks; read and resend their webhooks."""

    def __init__(self, transport: Transport) -> None:
        self._http = transport

    def submit(self, vector_data: Sequence[Any] | None = None, *, metadata: dict[str, Any] | None = None,
               collection: str | None = None, callback_id: str | None = None,
               callback_url: str | None = None, upload_id: str | None = None,
               ids: Sequence[str] | None = None, ids_upload_id: str | None = None,
               progress_events: bool | None = None, index: bool | None = None,
               idempotency_key: str | None = None) -> Accepted:
        """``POST /tasks``: vectors inline (``vector_data``) or an upload (``upload_id``).

        ``collection`` is sent as ``metadata.collection``, which every version
        of the API reads. ``index=False`` processes and summarises the vectors
        and keeps them in no collection. Every submit carries an ``Idempotency-Key`` (a new
        one unless given), so that a retry after a broken connection cannot
        run the job twice.

        Raises:
            ValidationFailed: the job breaks a rule (shape, limits, an unknown callback).
            PayloadTooLarge: the body is over the server's limit; use an upload.
        """
        if (vector_data is None) == (upload_id is None):
            raise ValueError("pass vector_data or upload_id, not both or neither")
        body: dict[str, Any] = {"vector_data": vector_data} if upload_id is None else {"upload_id": upload_id}
        meta = dict(metadata or {})
        if collection is not None:
            meta["collection"] = collection
        optional = {"metadata": meta or None, "callback_id": callback_id, "callback_url": callback_url,
                    "ids": list(ids) if ids is not None else None, "ids_upload_id": ids_upload_id,
                    "progress_events": progress_events, "index": index}
        body.update({k: v for k, v in optional.items() if v is not None})
        key = idempotency_key or str(uuid.uuid4())
        return cast(Accepted, self._http.json("POST", "/tasks", json=body, headers={"Idempotency-Key": key}))

    def get(self, task_id: str) -> Task:
        """``GET /tasks/{id}``. Raises ``NotFound`` for an unknown or foreign id."""
        return cast(Task, self._http.json("GET", _path(task_id)))

    def list(self, *, status: str | None = None, limit: int | None = None,
             cursor: str | None = None) -> Page[Task]:
        """``GET /tasks``: one page, newest first, optionally of one ``status``."""
        params = {"status": status, "limit": limit, "cursor": cursor}
        return cast(Page[Task], self._http.json("GET", "/tasks", params=params))

    def iter(self, *, status: str | None = None, page_size: int | None = None) -> Iterator[Task]:
        """Every task, newest first, fetching pages as the iteration goes."""
        return pages(lambda cursor: self.list(status=status, limit=page_size, cursor=cursor))

    def cancel(self, task_id: str) -> Task:
        """``POST /tasks/{id}/cancel``: the task as it is now.

        Raises:
            Conflict: the task has already finished.
        """
        return cast(Task, self._http.json("POST", _path(task_id, "cancel")))

    def deliveries(self, task_id: str, *, limit: int | None = None,
                   cursor: str | None = None) -> Page[Delivery]:
        """``GET /tasks/{id}/deliveries``: webhook attempts, oldest first."""
        params = {"limit": limit, "cursor": cursor}
        return cast(Page[Delivery], self._http.json("GET", _path(task_id, "deliveries"), params=params))

    def iter_deliveries(self, task_id: str, *, page_size: int | None = None) -> Iterator[Delivery]:
        return pages(lambda cursor: self.deliveries(task_id, limit=page_size, cursor=cursor))

    def retry_delivery(self, task_id: str) -> dict[str, Any]:
        """``POST /tasks/{id}/deliveries/retry``: one more attempt, queued.

        Raises:
            Conflict: the task has no callback, or has not finished.
        """
        return cast(dict[str, Any], self._http.json("POST", _path(task_id, "deliveries", "retry")))

    def wait(self, task_id: str, timeout: float = 300.0, *,
             on_change: Callable[[Task], None] | None = None,
             poll_interval: float = DEFAULT_POLL_INTERVAL) -> Task:
        """Poll the task until it finishes and return it.

        Each poll sends the last ``ETag`` (``If-None-Match``), so an unchanged
        task costs a ``304`` with no body, and waits as long as the server's
        ``Retry-After`` asks (never past the deadline). ``on_change`` is called
        with every new version of the task (progress bars use it).

        Raises:
            WaitTimeout: not finished within ``timeout`` seconds (``.task`` is the last seen).
            NotFound: no such task.
        """
        deadline = time.monotonic() + timeout
        etag: str | None = None
        task: Task | None = None
        while True:
            headers = {"If-None-Match": etag} if etag else None
            resp = self._http.request("GET", _path(task_id), headers=headers)
            if resp.status_code != 304:
                task = cast(Task, resp.json())
                etag = resp.headers.get("ETag")
                if on_change is not None:
                    on_change(task)
                if task.get("status") in TERMINAL:
                    return task
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WaitTimeout(task_id, timeout, dict(task) if task else None)
            asked = retry_after_seconds(resp.headers.get("Retry-After"))
            self._http.sleep(min(asked if asked is not None else poll_interval, remaining))
