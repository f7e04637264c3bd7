"""A large job's vector ids from an upload of ``format=ids``: checked once, read by range.

The upload is UTF-8 text, one id per line (``\\n``; a last newline is
optional), one line per vector of the job, each id 1-128 characters and
unique within the job. ``index_ids`` reads it once, front to back, when the
task is submitted: it checks every id and notes the byte offset of every
``stride``-th line, so that a chunk reads only the lines of its rows
(``read_ids``) instead of the whole upload.
"""
from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import cast

import numpy as np
import orjson
import redis

from hookline import keys
from hookline.blobs import BlobStore
from hookline.uploads import Upload, UploadStore

#: The task record's fields: the ids upload, and its ``IdsIndex`` (JSON).
IDS_UPLOAD_FIELD = "ids_upload"
IDS_INDEX_FIELD = "ids_at"
#: Characters an id may have, at most.
MAX_ID_CHARS = 128
#: Bytes read from the blob store at a time while checking.
READ_BYTES = 1 << 20
#: Line offsets an index keeps at most (a few KB in the task record).
MAX_MARKS = 1000


class IdsError(ValueError):
    """The ids upload breaks a rule; the message says which, and where."""


@dataclass(frozen=True)
class IdsIndex:
    """Byte offsets of lines ``0, stride, 2·stride, ...`` and of the end."""

    stride: int
    marks: list[int]

    def to_json(self) -> str:
        return orjson.dumps({"stride": self.stride, "marks": self.marks}).decode()

    @classmethod
    def from_json(cls, raw: str | bytes) -> IdsIndex:
        data = orjson.loads(raw)
        return cls(stride=int(data["stride"]), marks=[int(m) for m in data["marks"]])

    def span(self, first_row: int, rows: int) -> tuple[int, int, int]:
        """``(start, end, skip)``: the bytes holding rows ``first_row`` on, and the lines to skip."""
        low = first_row // self.stride
        high = min(len(self.marks) - 1, math.ceil((first_row + rows) / self.stride))
        return self.marks[low], self.marks[high], first_row - low * self.stride


def _blocks(blobs: BlobStore, key: str, length: int) -> Iterator[tuple[int, list[bytes]]]:
    """The upload's lines (without their ``\\n``) about 1 MiB at a time, each block with
    the byte offset of its first line. Lines are handled a block at a time: one by
    one, checking a million ids took 10 s here; by blocks, 2 s."""
    position, rest, rest_at = 0, b"", 0
    while position < length:
        data = blobs.read(key, position, min(READ_BYTES, length - position))
        if not data:
            raise IdsError("the ids upload ends early")
        position += len(data)
        buffer = rest + data
        cut = len(buffer) if position >= length else buffer.rfind(b"\n") + 1
        if cut:
            lines = buffer[:cut].split(b"\n")
            if buffer[cut - 1:cut] == b"\n":
                lines.pop()
            yield rest_at, lines
        rest, rest_at = buffer[cut:], rest_at + cut


def _texts(lines: list[bytes], first_row: int) -> list[str]:
    """The block's ids as text, checked; ``IdsError`` names the first bad line."""
    try:
        texts = [line.decode("utf-8") for line in lines]
    except UnicodeDecodeError:
        texts = []
        for row, line in enumerate(lines, first_row):
            try:
                texts.append(line.decode("utf-8"))
            except UnicodeDecodeError:
                raise IdsError(f"line {row + 1} of the ids upload is not UTF-8") from None
    sizes = [len(text) for text in texts]
    if sizes and (min(sizes) < 1 or max(sizes) > MAX_ID_CHARS):
        row, size = next((r, n) for r, n in enumerate(sizes) if not 1 <= n <= MAX_ID_CHARS)
        raise IdsError(f"line {first_row + row + 1} of the ids upload holds an id of {size} "
                       f"characters; an id has 1 to {MAX_ID_CHARS}")
    return texts


def index_ids(blobs: BlobStore, upload: Upload, rows: int, stride: int) -> IdsIndex:
    """Check every id of ``upload`` for a job of ``rows`` vectors; its ``IdsIndex``.

    ``stride`` is raised so that the index keeps at most ``MAX_MARKS`` offsets.

    Raises:
        IdsError: an id breaks a rule, or the count is not ``rows``.
        BlobError: the blob store failed.
    """
    stride = max(stride, math.ceil(rows / MAX_MARKS), 1)
    marks: list[int] = []
    # Python's own string hash finds candidate duplicates (blake2b, the vector
    # key, took 4 s per million ids here; this takes 0.3 s); both passes
    # run in one process, so its per-process seed does not matter.
    hashed = np.empty(rows, dtype=np.int64)
    count = 0
    for at, lines in _blocks(blobs, upload.blob_key, upload.length):
        if count + len(lines) > rows:
            raise IdsError(f"the ids upload holds more than {rows} ids, one per vector")
        texts = _texts(lines, count)
        starts = at + np.cumsum([0] + [len(line) + 1 for line in lines[:-1]])
        marks += starts[(-count) % stride::stride].tolist()
        hashed[count:count + len(texts)] = [hash(text) for text in texts]
        count += len(texts)
    if count != rows:
        raise IdsError(f"the ids upload holds {count} ids for {rows} vectors")
    marks.append(upload.length)
    _no_duplicates(blobs, upload, hashed)
    return IdsIndex(stride=stride, marks=marks)


def _no_duplicates(blobs: BlobStore, upload: Upload, hashed: np.ndarray) -> None:
    """Raise ``IdsError`` for an id that appears twice (ids are compared by hash first)."""
    ordered = np.sort(hashed)
    shared = set(ordered[1:][ordered[1:] == ordered[:-1]].tolist())
    if not shared:
        return
    seen: dict[int, str] = {}
    row = 0
    for _, lines in _blocks(blobs, upload.blob_key, upload.length):
        for line in lines:
            key = int(hashed[row])
            row += 1
            if key in shared:
                text = line.decode("utf-8")
                if seen.get(key) == text:
                    raise IdsError(f"line {row} of the ids upload repeats the id {text[:40]!r}")
                seen.setdefault(key, text)


def read_ids(blobs: BlobStore, key: str, index: IdsIndex, first_row: int, rows: int) -> list[str]:
    """The ids of rows ``first_row`` to ``first_row + rows - 1``, reading only about their bytes.

    Raises:
        IdsError: the blob no longer holds them.
        BlobError: the blob store failed.
    """
    start, end, skip = index.span(first_row, rows)
    data = blobs.read(key, start, end - start)
    lines = data.split(b"\n")[skip:skip + rows]
    if len(data) != end - start or len(lines) != rows:
        raise IdsError(f"the ids upload no longer holds the ids of rows {first_row} on")
    return [line.decode("utf-8") for line in lines]


def chunk_ids(client: redis.Redis, uploads: UploadStore, blobs: BlobStore, task_id: str,
              first_row: int, rows: int) -> list[str] | None:
    """The ids of a chunk's rows from the task's ids upload; ``None`` if the task has none.

    Raises:
        IdsError: the ids upload is gone, or no longer holds the ids.
        BlobError: the blob store failed.
    """
    upload_id, raw_index = cast("list[bytes | None]", client.hmget(
        keys.task(task_id), IDS_UPLOAD_FIELD, IDS_INDEX_FIELD))
    if not upload_id or not raw_index:
        return None
    upload = uploads.get(upload_id.decode())
    if upload is None:
        raise IdsError("the ids upload is gone")
    return read_ids(blobs, upload.blob_key, IdsIndex.from_json(raw_index), first_row, rows)
