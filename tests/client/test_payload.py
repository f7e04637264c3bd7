"""How ``hookline submit`` reads a file, and when it sends it as an upload instead of inline."""
from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np
import pytest

from hookline.cli.payload import UPLOAD_THRESHOLD_BYTES, load_job


def test_small_files_are_sent_inline(tmp_path: Path) -> None:
    listed = tmp_path / "list.json"
    listed.write_text("[[1, 2], [3, 4]]")
    assert load_job(listed).fields == {"vector_data": [[1, 2], [3, 4]]}
    body = tmp_path / "body.json"
    body.write_text(json.dumps({"vector_data": [1.5], "metadata": {"a": 1}, "callback_id": "cb_1"}))
    job = load_job(body)
    assert job.fields == {"vector_data": [1.5], "metadata": {"a": 1}, "callback_id": "cb_1"}
    assert job.upload_path is None
    array = tmp_path / "v.npy"
    np.save(array, np.array([[0.5, 0.25]], dtype=np.float32))
    assert load_job(array).fields == {"vector_data": [[0.5, 0.25]]}


def test_large_files_go_through_the_upload(tmp_path: Path) -> None:
    # An .npy whose JSON would pass the threshold is uploaded as it is
    big = tmp_path / "big.npy"
    np.save(big, np.ones((UPLOAD_THRESHOLD_BYTES // 40, 2), dtype=np.float32))
    job = load_job(big)
    assert job.upload_path == big and not job.temporary and job.fields == {}
    # A JSON file over the threshold becomes a temporary float32 .npy; the rest of its body stays
    rows = [[i / 7, -i / 3, 1e-3 * i] for i in range(200_000)]
    large = tmp_path / "large.json"
    large.write_text(json.dumps({"vector_data": rows, "metadata": {"run": 1}}))
    assert large.stat().st_size > UPLOAD_THRESHOLD_BYTES
    job = load_job(large)
    assert job.temporary and job.upload_path is not None and job.fields == {"metadata": {"run": 1}}
    assert np.array_equal(np.load(job.upload_path), np.asarray(rows, dtype=np.float32))
    job.upload_path.unlink()
    # --upload sends even a small file that way
    small = tmp_path / "small.npy"
    np.save(small, np.ones(3))
    assert load_job(small, force_upload=True).upload_path == small


def test_a_lower_threshold_uploads_smaller_files(tmp_path: Path) -> None:
    array = tmp_path / "v.npy"
    np.save(array, np.ones((10, 4), dtype=np.float32))  # about 1 KB of JSON
    assert load_job(array, threshold=2048).upload_path is None
    assert load_job(array, threshold=512).upload_path == array
    body = tmp_path / "body.json"
    body.write_text(json.dumps({"vector_data": [[1, 2]] * 100, "collection": "c"}))
    job = load_job(body, threshold=100)
    assert job.temporary and job.upload_path is not None and job.fields == {"collection": "c"}
    job.upload_path.unlink()


@pytest.mark.parametrize(("name", "content", "message"), [
    ("job.txt", "[1]", "send a .json or an .npy"),
    ("job.json", "{not json", "not readable JSON"),
    ("job.json", '"text"', "neither a task body"),
    ("job.json", '{"vector_data": [1], "priority": 9}', "unknown field(s) priority"),
])
def test_unreadable_files_are_refused_with_the_reason(tmp_path: Path, name: str, content: str,
                                                      message: str) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(click.BadParameter, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_job(path)


def test_an_array_of_three_dimensions_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cube.npy"
    np.save(path, np.zeros((2, 2, 2)))
    with pytest.raises(click.BadParameter, match="3-dimensional"):
        load_job(path)
