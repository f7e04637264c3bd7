"""Reading a job from a file: ``.json`` (a task body or a list of vectors) or ``.npy``.

A job whose JSON body would be too big for one request goes through the
resumable upload instead, as an ``.npy`` file.
"""
from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import numpy as np

#: Bytes of JSON body above which a job is uploaded instead: under the API's
#: default 10 MiB body limit (HOOKLINE_MAX_BODY_BYTES), with room for the rest of the body.
UPLOAD_THRESHOLD_BYTES = 8 * 1024 * 1024
#: Characters a number takes in JSON at most, with its comma (float32's repr and a sign).
JSON_BYTES_PER_NUMBER = 26
#: Fields of a task body the ``submit`` command passes on from a ``.json`` file.
BODY_FIELDS = ("vector_data", "metadata", "collection", "callback_id", "callback_url", "ids",
               "progress_events", "index")


@dataclass
class Job:
    """What to submit: ``fields`` for ``tasks.submit`` and, for a large job, a file to upload first."""

    fields: dict[str, Any] = field(default_factory=dict)
    upload_path: Path | None = None
    #: A temporary file made for the upload, to remove afterwards.
    temporary: bool = False
    count: int = 0


def _as_npy(vectors: Any) -> Path:
    array = np.asarray(vectors, dtype=np.float32)
    with tempfile.NamedTemporaryFile(suffix=".npy", delete=False) as out:
        np.save(out, array)
    return Path(out.name)


def load_job(path: Path, *, force_upload: bool = False,
             threshold: int = UPLOAD_THRESHOLD_BYTES) -> Job:
    """The job in ``path``; uploaded first when its JSON would be over ``threshold`` bytes.

    Raises:
        click.BadParameter: not ``.json`` or ``.npy``, not readable as such, or unknown fields.
    """
    suffix = path.suffix.lower()
    if suffix == ".npy":
        try:
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise click.BadParameter(f"not a readable .npy file: {exc}", param_hint="FILE") from None
        if array.ndim not in (1, 2):
            raise click.BadParameter(f"holds a {array.ndim}-dimensional array; send 1 or 2",
                                     param_hint="FILE")
        count = int(array.shape[0])
        if force_upload or array.size * JSON_BYTES_PER_NUMBER > threshold:
            return Job(upload_path=path, count=count)
        return Job(fields={"vector_data": np.asarray(array).tolist()}, count=count)
    if suffix != ".json":
        raise click.BadParameter("send a .json or an .npy file", param_hint="FILE")
    try:
        body = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise click.BadParameter(f"not readable JSON: {exc}", param_hint="FILE") from None
    if isinstance(body, list):
        body = {"vector_data": body}
    if not isinstance(body, dict):
        raise click.BadParameter("holds neither a task body (an object) nor a list of vectors",
                                 param_hint="FILE")
    unknown = sorted(set(body) - set(BODY_FIELDS))
    if unknown:
        raise click.BadParameter(f"unknown field(s) {', '.join(unknown)}; a task body has "
                                 f"{', '.join(BODY_FIELDS)}", param_hint="FILE")
    vectors = body.get("vector_data")
    count = len(vectors) if isinstance(vectors, list) else 0
    if vectors is not None and (force_upload or path.stat().st_size > threshold):
        fields = {k: v for k, v in body.items() if k != "vector_data"}
        return Job(fields=fields, upload_path=_as_npy(vectors), temporary=True, count=count)
    return Job(fields=body, count=count)
