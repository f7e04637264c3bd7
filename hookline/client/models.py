"""The shapes of the API's answers, as typed dicts (the JSON as it arrives)."""
from __future__ import annotations

from typing import Any, Generic, TypedDict, TypeVar

T = TypeVar("T")

#: Statuses after which a task never changes again.
TERMINAL = frozenset({"SUCCESS", "FAILURE", "REVOKED"})


class Page(TypedDict, Generic[T]):
    """One page of a list: pass ``next_cursor`` back as ``cursor`` for the next."""

    items: list[T]
    next_cursor: str | None


class Progress(TypedDict):
    done: int
    total: int


class TaskCallback(TypedDict):
    id: str
    url: str
    delivery: str


class Task(TypedDict, total=False):
    """``GET /tasks/{id}``."""

    task_id: str
    status: str
    result: dict[str, Any]
    error: str
    created_at: str | None
    started_at: str | None
    finished_at: str | None
    attempts: int
    progress: Progress
    chunks: dict[str, int]
    metadata: dict[str, Any]
    callback: TaskCallback | None


class Accepted(TypedDict, total=False):
    """The ``202`` answer to ``POST /tasks``."""

    task_id: str
    status: str
    links: dict[str, str]


class Delivery(TypedDict):
    """One webhook attempt of ``GET /tasks/{id}/deliveries``."""

    webhook_id: str
    attempt: int
    at: str
    status_code: int | None
    error: str | None
    duration_ms: float
    response_excerpt: str
    trigger: str


class Callback(TypedDict, total=False):
    """A registered endpoint; ``secret`` only in the answers to create and rotate."""

    id: str
    url: str
    description: str
    disabled: bool
    disabled_reason: str | None
    created_at: str
    secret: str


class Rotation(TypedDict):
    id: str
    secret: str
    previous_secret_expires_at: str


class Recovery(TypedDict):
    id: str
    since: str
    count: int


class Collection(TypedDict, total=False):
    name: str
    dimension: int | None
    dimensions: dict[str, int]
    metric: str
    dtype: str
    count: int
    bytes: int
    created_at: str


class Hit(TypedDict):
    id: str
    score: float
    task_id: str


class StoredVector(TypedDict):
    id: str
    vector: list[float]
    task_id: str


class UploadState(TypedDict):
    """What ``HEAD /uploads/{id}`` says: bytes received so far, and in all."""

    offset: int
    length: int


#: The answer to one search: hits, best first.
Hits = list[Hit]
#: The answer to a batch search: one ``Hits`` per query vector, in order.
BatchHits = list[Hits]
