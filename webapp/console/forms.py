"""Reading the console's query strings and forms into typed values.

Bad input never reaches a store: each reader returns the value or an error
message that the page shows beside the form.
"""
from __future__ import annotations

import re
from collections.abc import Mapping

from hookline.ids import parse_isoformat
from hookline.task_record import STATUSES
from hookline.task_search import TaskQuery

#: Rows a list page shows.
PAGE_SIZE = 50
#: Longest filter value accepted (ids are shorter).
MAX_FILTER_LENGTH = 128
_ID_PREFIX = re.compile(r"^[A-Za-z0-9_:-]*$")


class FormError(ValueError):
    """A form field holds a value that cannot be used; the message says which and why."""


def parse_time(raw: str | None, field: str) -> float | None:
    """A ``datetime-local`` value or ISO 8601 text (naive means UTC) as Unix seconds.

    Raises:
        FormError: the text is not a time.
    """
    text = (raw or "").strip()
    if not text:
        return None
    try:
        return parse_isoformat(text)
    except (ValueError, OverflowError):
        raise FormError(f"{field}: {text[:40]!r} is not a date and time (YYYY-MM-DDTHH:MM, UTC).") from None


def _short(args: Mapping[str, str], name: str) -> str:
    value = (args.get(name) or "").strip()
    if len(value) > MAX_FILTER_LENGTH:
        raise FormError(f"{name}: at most {MAX_FILTER_LENGTH} characters.")
    return value


def task_query(args: Mapping[str, str]) -> TaskQuery:
    """The tasks page's filters.

    Raises:
        FormError: a filter is not valid.
    """
    status = _short(args, "status").upper()
    if status and status not in STATUSES:
        raise FormError(f"status: one of {', '.join(STATUSES)}.")
    prefix = _short(args, "id_prefix")
    if not _ID_PREFIX.match(prefix):
        raise FormError("id prefix: letters, digits, '-', '_' and ':' only.")
    created_from = parse_time(args.get("from"), "from")
    created_to = parse_time(args.get("to"), "to")
    if created_from is not None and created_to is not None and created_from >= created_to:
        raise FormError("from must be before to.")
    return TaskQuery(statuses=(status,) if status else (), callback_id=_short(args, "callback"),
                     id_prefix=prefix, created_from=created_from, created_to=created_to)


def cursor(args: Mapping[str, str]) -> str | None:
    value = (args.get("cursor") or "").strip()
    if len(value) > 512:
        raise FormError("cursor: not a cursor from this console.")
    return value or None
