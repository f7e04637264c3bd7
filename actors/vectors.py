"""The job's real work: validate, L2-normalise and summarise a batch of vectors."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

#: Vectors normalised between two progress reports (and cancel checks).
PROGRESS_CHUNK = 4096


class InvalidJob(ValueError):
    """The payload cannot be processed; retrying would not help."""


class Cancelled(Exception):
    """A cancel was asked for while the job ran."""


def load(payload: bytes, count: int, dimension: int) -> np.ndarray:
    """The stored payload as a ``(count, dimension)`` float64 array.

    Raises:
        InvalidJob: the payload's size, shape or values are wrong.
    """
    if count <= 0 or dimension <= 0 or len(payload) != count * dimension * 8:
        raise InvalidJob(f"payload does not hold {count} vectors of dimension {dimension}")
    vectors = np.frombuffer(payload, dtype="<f8").reshape(count, dimension)
    if not np.isfinite(vectors).all():
        raise InvalidJob("vector_data holds a value that is not a finite number")
    return vectors


def normalise(
    vectors: np.ndarray, progress: Callable[[int], None] | None = None
) -> tuple[np.ndarray, dict[str, Any]]:
    """L2-normalise each row; return the float32 rows and the batch statistics.

    A zero vector stays zero (it has no direction). ``progress`` is called
    with the number of rows done after each chunk; it may raise ``Cancelled``.
    """
    count, dimension = vectors.shape
    out = np.empty((count, dimension), dtype=np.float32)
    norms = np.empty(count, dtype=np.float64)
    for start in range(0, count, PROGRESS_CHUNK):
        chunk = vectors[start : start + PROGRESS_CHUNK]
        chunk_norms = np.linalg.norm(chunk, axis=1)
        norms[start : start + len(chunk)] = chunk_norms
        safe = np.where(chunk_norms > 0, chunk_norms, 1.0)
        out[start : start + len(chunk)] = chunk / safe[:, None]
        # Between chunks: the last one's progress is written with the result.
        if progress is not None and start + PROGRESS_CHUNK < count:
            progress(start + PROGRESS_CHUNK)
    stats = {
        "processed_vectors": int(count),
        "dimension": int(dimension),
        "norm_mean": float(norms.mean()),
        "norm_min": float(norms.min()),
        "norm_max": float(norms.max()),
        "zero_vectors": int((norms == 0).sum()),
    }
    return out, stats


def stored_vectors(vectors: np.ndarray, normalised: np.ndarray) -> Callable[[str], np.ndarray]:
    """The float32 rows a collection of a given metric keeps.

    ``cosine`` keeps the normalised rows; ``ip`` and ``l2`` compare the
    vectors as sent, so they keep those.
    """

    def of(metric: str) -> np.ndarray:
        return normalised if metric == "cosine" else vectors.astype(np.float32)

    return of
