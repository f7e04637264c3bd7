"""The job's real work: validate, L2-normalise and summarise a batch of vectors."""
from __future__ import annotations

from collections.abc import Callable, Iterator
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


def _blocks(vectors: np.ndarray, norms: np.ndarray, progress: Callable[[int], None] | None
            ) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Each block of ``PROGRESS_CHUNK`` rows, its first row and each row's divisor.

    Fills ``norms`` as it goes. ``progress`` is called with the number of
    rows done after each block but the last (whose progress is written with
    the result); it may raise ``Cancelled``.
    """
    count = len(vectors)
    for start in range(0, count, PROGRESS_CHUNK):
        block = vectors[start : start + PROGRESS_CHUNK]
        block_norms = np.linalg.norm(block, axis=1)
        norms[start : start + len(block)] = block_norms
        # A zero vector stays zero (it has no direction).
        yield start, block, np.where(block_norms > 0, block_norms, 1.0)
        if progress is not None and start + PROGRESS_CHUNK < count:
            progress(start + PROGRESS_CHUNK)


def _stats(vectors: np.ndarray, norms: np.ndarray) -> dict[str, Any]:
    count, dimension = vectors.shape
    return {
        "processed_vectors": int(count),
        "dimension": int(dimension),
        "norm_mean": float(norms.mean()),
        "norm_min": float(norms.min()),
        "norm_max": float(norms.max()),
        "zero_vectors": int((norms == 0).sum()),
    }


def normalise(
    vectors: np.ndarray, progress: Callable[[int], None] | None = None
) -> tuple[np.ndarray, dict[str, Any]]:
    """L2-normalise each row; return the float32 rows and the batch statistics.

    ``progress`` is called with the number of rows done after each block of
    ``PROGRESS_CHUNK``; it may raise ``Cancelled``.
    """
    out = np.empty(vectors.shape, dtype=np.float32)
    norms = np.empty(len(vectors), dtype=np.float64)
    for start, block, divisors in _blocks(vectors, norms, progress):
        np.divide(block, divisors[:, None], out=out[start : start + len(block)])
    return out, _stats(vectors, norms)


def summarise(vectors: np.ndarray, progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """``normalise``'s statistics, for rows that no collection keeps.

    Each block is normalised into one buffer of ``PROGRESS_CHUNK`` rows, used
    again for the next, instead of into an output as large as ``vectors``:
    a chunk of 10,000 x 384 holds 6 MB instead of 15 MB more.
    """
    norms = np.empty(len(vectors), dtype=np.float64)
    scratch = np.empty((min(PROGRESS_CHUNK, len(vectors)), vectors.shape[1]), dtype=np.float32)
    for _, block, divisors in _blocks(vectors, norms, progress):
        np.divide(block, divisors[:, None], out=scratch[: len(block)])
    return _stats(vectors, norms)


def stored_vectors(vectors: np.ndarray, normalised: np.ndarray) -> Callable[[str], np.ndarray]:
    """The float32 rows a collection of a given metric keeps.

    ``cosine`` keeps the normalised rows; ``ip`` and ``l2`` compare the
    vectors as sent, so they keep those.
    """

    def of(metric: str) -> np.ndarray:
        return normalised if metric == "cosine" else vectors.astype(np.float32)

    return of
