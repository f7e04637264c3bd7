"""A task's entry in its collection's ``hl:ctask:...`` hash: which vectors it wrote.

What a search filter and a delete by ``task_id`` read. An entry is one of::

    \\x00#<count>                  default ids <task_id>:0 ... <task_id>:<count - 1>
    \\x00= (<H n> <n bytes>)...    named ids, each UTF-8 with its length before it

The leading NUL byte marks this format. Entries written before it were
``#<count>`` or the ids joined by newlines, so a job whose first id began
with ``#`` read as a count and its vectors could be neither filtered nor
deleted by task; a length before each id also lets an id hold a newline.
Those older entries are still read: text that is ``#`` and digits and
nothing else could be either, and reads as both (the callers keep only the
vectors whose record names the task).
"""
from __future__ import annotations

import re
import struct

from hookline.vectorrecords import default_id, vector_key

COUNT_PREFIX = b"\x00#"
NAMES_PREFIX = b"\x00="
_LENGTH = struct.Struct("<H")
_OLD_COUNT = re.compile(r"#[0-9]+")


def count_entry(count: int) -> bytes:
    """The entry of a job of ``count`` vectors with default ids."""
    return COUNT_PREFIX + str(count).encode()


def names_entry(ids: list[str]) -> bytes:
    """The entry of a job (or, appended without its prefix, a chunk) with named ids."""
    parts = [NAMES_PREFIX]
    for name in ids:
        raw = name.encode()
        parts += [_LENGTH.pack(len(raw)), raw]
    return b"".join(parts)


def entry_keys(task_id: str, entry: bytes) -> list[int]:
    """The vector keys an entry names (some may belong to later tasks by now)."""
    if entry.startswith(COUNT_PREFIX):
        return _default_keys(task_id, int(entry[len(COUNT_PREFIX):]))
    if entry.startswith(NAMES_PREFIX):
        keys, pos = [], len(NAMES_PREFIX)
        while pos < len(entry):
            (size,) = _LENGTH.unpack_from(entry, pos)
            keys.append(vector_key(entry[pos + 2:pos + 2 + size].decode()))
            pos += 2 + size
        return keys
    text = entry.decode()
    keys = [vector_key(name) for name in text.split("\n")]
    if _OLD_COUNT.fullmatch(text):
        keys += _default_keys(task_id, int(text[1:]))
    return keys


def _default_keys(task_id: str, count: int) -> list[int]:
    return [vector_key(default_id(task_id, row)) for row in range(count)]
