"""Walking the API's list envelope (``items`` and ``next_cursor``)."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TypeVar

from hookline.client.models import Page

T = TypeVar("T")


def pages(fetch: Callable[[str | None], Page[T]]) -> Iterator[T]:
    """Every item of a list, calling ``fetch(cursor)`` for one page at a time."""
    cursor: str | None = None
    while True:
        page = fetch(cursor)
        yield from page["items"]
        cursor = page.get("next_cursor")
        if not cursor:
            return
