"""One stored vector as bytes: the record format of a collection's hash.

A record is a 13-byte header, the task id, the vector id when the job named
it, and the vector in the collection's storage type::

    <i row> <H dimension> <B task id bytes> <H id bytes> <f scale>
    task id, id (only when row is -1), vector

``row`` is the vector's row in its job when its id is the default
``<task_id>:<row>`` (the id is then not stored: 40 bytes saved per vector),
else -1. ``scale`` turns ``i8`` codes back into numbers (one scale per
vector, its largest magnitude over 127); it is 1 for ``f32`` and ``f16``.
The Lua scripts read the dimension at byte 5 and the task id at byte 14.

A record is filed under its vector key: the first 8 bytes of the BLAKE2b
hash of its id, as a 63-bit number. The HNSW index uses the same number, so
neither the index nor Redis keeps a map from ids to numbers. Two ids share a
key with a chance of about n^2 / 2^64 (5e-8 for a million vectors).
"""
from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

import numpy as np

_HEADER = struct.Struct("<iHBHf")
HEADER_BYTES = _HEADER.size
#: numpy type of each storage type, little-endian.
NUMPY_DTYPES: dict[str, np.dtype] = {"f32": np.dtype("<f4"), "f16": np.dtype("<f2"), "i8": np.dtype("i1")}
_KEY_MASK = (1 << 63) - 1


def vector_key(vector_id: str) -> int:
    """The 63-bit number a vector is filed under (in Redis and in the index)."""
    digest = hashlib.blake2b(vector_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & _KEY_MASK


def key_bytes(key: int) -> bytes:
    return key.to_bytes(8, "little")


def default_id(task_id: str, row: int) -> str:
    return f"{task_id}:{row}"


@dataclass(frozen=True)
class Record:
    """A stored vector, decoded."""

    id: str
    task_id: str
    vector: np.ndarray

    @property
    def dimension(self) -> int:
        return int(self.vector.shape[0])


def quantise(vectors: np.ndarray, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """``vectors`` (float32 rows) in storage type ``dtype``, and each row's scale."""
    if dtype == "i8":
        peak = np.abs(vectors).max(axis=1)
        scales = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
        codes = np.rint(vectors / scales[:, None]).clip(-127, 127).astype(np.int8)
        return codes, scales
    return vectors.astype(NUMPY_DTYPES[dtype]), np.ones(len(vectors), dtype=np.float32)


def encode(task_id: str, ids: list[str] | None, vectors: np.ndarray, dtype: str,
           first_row: int = 0) -> list[bytes]:
    """One record per row of ``vectors`` (float32); ``ids`` ``None`` means default ids.

    ``first_row`` is the job's row of ``vectors[0]`` (a chunk's first row).
    """
    stored, scales = quantise(vectors, dtype)
    task = task_id.encode()
    dimension = vectors.shape[1]
    records = []
    for row in range(len(vectors)):
        body = stored[row].tobytes()
        if ids is None:
            head = _HEADER.pack(first_row + row, dimension, len(task), 0, float(scales[row]))
            records.append(head + task + body)
        else:
            name = ids[row].encode()
            head = _HEADER.pack(-1, dimension, len(task), len(name), float(scales[row]))
            records.append(head + task + name + body)
    return records


def decode(raw: bytes, dtype: str) -> Record:
    """The record ``raw`` of a collection whose storage type is ``dtype``."""
    row, dimension, task_len, id_len, scale = _HEADER.unpack_from(raw)
    dimension, start = int(dimension), int(HEADER_BYTES)
    task_id = raw[start:start + task_len].decode()
    start += int(task_len)
    if row >= 0:
        vector_id = default_id(task_id, row)
    else:
        vector_id = raw[start:start + id_len].decode()
        start += int(id_len)
    stored = np.frombuffer(raw, dtype=NUMPY_DTYPES[dtype], count=dimension, offset=start)
    vector = stored.astype(np.float32)
    if dtype == "i8":
        vector *= np.float32(scale)
    return Record(vector_id, task_id, vector)


def vectors_of(raws: list[bytes], dtype: str, dimension: int) -> tuple[np.ndarray, np.ndarray]:
    """The float32 vectors of many records at once, and which records have ``dimension``.

    Returns ``(vectors, fits)``: one row per record of ``dimension`` (the
    others, of ``default``'s other dimensions, are left out) and a boolean
    per record. A search scores its candidates this way and decodes the ids
    of the few it returns only (``decode`` per record cost about 5 us each).
    """
    item = NUMPY_DTYPES[dtype].itemsize
    size = dimension * item
    heads = [_HEADER.unpack_from(raw) for raw in raws]
    fits = np.fromiter((head[1] == dimension for head in heads), dtype=bool, count=len(raws))
    body = b"".join(raw[len(raw) - size:] for raw, ok in zip(raws, fits) if ok)
    vectors = np.frombuffer(body, dtype=NUMPY_DTYPES[dtype]).reshape(-1, dimension)
    vectors = vectors.astype(np.float32)
    if dtype == "i8":
        scales = np.fromiter((head[4] for head, ok in zip(heads, fits) if ok), dtype=np.float32)
        vectors *= scales[:, None]
    return vectors, fits


def by_dimension(raws: list[bytes], dtype: str) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """The float32 vectors of many records at once, grouped by dimension:
    ``{dimension: (positions in raws, vectors)}`` (``default`` mixes them)."""
    groups: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    positions = np.arange(len(raws))
    while len(positions):
        left = [raws[i] for i in positions.tolist()]
        dimension = dimension_of(left[0])
        vectors, fits = vectors_of(left, dtype, dimension)
        groups[dimension] = (positions[fits], vectors)
        positions = positions[~fits]
    return groups


def dimension_of(raw: bytes) -> int:
    return int(_HEADER.unpack_from(raw)[1])
