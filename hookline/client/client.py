"""``Client``: the whole API over one keep-alive HTTP session."""
from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, cast

from hookline.client.callbacks import Callbacks
from hookline.client.collections import Collections
from hookline.client.models import Task
from hookline.client.tasks import Tasks
from hookline.client.transport import DEFAULT_MAX_WAIT, DEFAULT_RETRIES, DEFAULT_TIMEOUT, Transport
from hookline.client.uploads import Uploads

DEFAULT_URL = "http://127.0.0.1:8000"


class Client:
    """Hookline's API in Python.

    ``client.tasks``, ``client.callbacks``, ``client.collections`` and
    ``client.uploads`` hold the calls of each resource; ``wait()`` and
    ``upload()`` are here too, being the ones most scripts need::

        client = Client("http://127.0.0.1:8000", "hlk_...")
        task_id = client.tasks.submit([[0.1, 0.2]], metadata={"source": "cli"})["task_id"]
        print(client.wait(task_id, timeout=60)["result"])

    Every call retries ``429`` and ``503`` after ``Retry-After`` (at most
    ``retries`` times, each wait capped at ``max_wait`` seconds) and raises
    ``ApiError`` subclasses that carry the problem+json body, or ``TransportError``.
    """

    def __init__(self, url: str = DEFAULT_URL, api_key: str | None = None, *,
                 retries: int = DEFAULT_RETRIES, max_wait: float = DEFAULT_MAX_WAIT,
                 timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
                 sleep: Callable[[float], None] | None = None) -> None:
        extra: dict[str, Any] = {"sleep": sleep} if sleep is not None else {}
        self.transport = Transport(url, api_key, retries=retries, max_wait=max_wait, timeout=timeout,
                                   **extra)
        self.tasks = Tasks(self.transport)
        self.callbacks = Callbacks(self.transport)
        self.collections = Collections(self.transport)
        self.uploads = Uploads(self.transport)

    @property
    def url(self) -> str:
        return self.transport.url

    def close(self) -> None:
        """Close the session's connections."""
        self.transport.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def wait(self, task_id: str, timeout: float = 300.0, *,
             on_change: Callable[[Task], None] | None = None) -> Task:
        """``tasks.wait()``: poll until the task finishes (``WaitTimeout`` after ``timeout`` s)."""
        return self.tasks.wait(task_id, timeout, on_change=on_change)

    def upload(self, path: str | os.PathLike[str], **kwargs: Any) -> str:
        """``uploads.upload()``: send a file, resuming after a broken connection; its id."""
        return self.uploads.upload(path, **kwargs)

    def health(self) -> dict[str, Any]:
        """``GET /healthz``: the web process is alive."""
        return cast(dict[str, Any], self.transport.json("GET", "/healthz"))

    def ready(self) -> dict[str, Any]:
        """``GET /readyz``, asked once: ``{"status": "ready" | "unavailable", ...}``, never raising on 503."""
        return cast(dict[str, Any], self.transport.json("GET", "/readyz", retry=False, ok=(503,)))
