"""An ids upload: every id checked once, each chunk's ids read by their byte range."""
from __future__ import annotations

from pathlib import Path

import pytest

from hookline import upload_ids
from hookline.blobs.files import FileBlobStore
from hookline.upload_ids import IdsError, index_ids, read_ids
from hookline.uploads import COMPLETE, IDS, Upload


def stored(tmp_path: Path, text: str) -> tuple[FileBlobStore, Upload]:
    blobs = FileBlobStore(tmp_path / "blobs")
    data = text.encode()
    upload = Upload(id="up_ids", owner="acme", length=len(data), offset=len(data), format=IDS,
                    state=COMPLETE, created=0.0)
    blobs.put(upload.blob_key, [data])
    return blobs, upload


@pytest.mark.parametrize("ending", ["\n", ""])
def test_each_range_reads_back_exactly_its_ids(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ending: str) -> None:
    # Reads of 16 bytes, so that lines straddle reads
    monkeypatch.setattr(upload_ids, "READ_BYTES", 16)
    ids = [f"ü-{n}-" + "x" * (n % 13) for n in range(53)]
    blobs, upload = stored(tmp_path, "\n".join(ids) + ending)
    index = index_ids(blobs, upload, rows=53, stride=7)
    assert index.stride == 7 and len(index.marks) == 9
    for first, rows in [(0, 7), (7, 7), (49, 4), (3, 10), (0, 53), (52, 1)]:
        assert read_ids(blobs, upload.blob_key, index, first, rows) == ids[first:first + rows]


@pytest.mark.parametrize(("text", "rows", "message"), [
    ("a\nb\nc\n", 4, "the ids upload holds 3 ids for 4 vectors"),
    ("a\nb\nc\nd\n", 3, "the ids upload holds more than 3 ids, one per vector"),
    ("a\n\nc\n", 3, "line 2 of the ids upload holds an id of 0 characters; an id has 1 to 128"),
    ("a\n" + "é" * 129 + "\nc", 3, "line 2 of the ids upload holds an id of 129 characters"),
    ("a\nb\nc\nb\n", 4, "line 4 of the ids upload repeats the id 'b'"),
    ("a\n\xff\n", 2, None),
])
def test_an_id_that_breaks_a_rule_is_named_by_its_line(
        tmp_path: Path, text: str, rows: int, message: str | None) -> None:
    blobs = FileBlobStore(tmp_path / "blobs")
    data = text.encode("latin-1") if message is None else text.encode()
    upload = Upload(id="up_bad", owner="acme", length=len(data), offset=len(data), format=IDS,
                    state=COMPLETE, created=0.0)
    blobs.put(upload.blob_key, [data])
    with pytest.raises(IdsError) as caught:
        index_ids(blobs, upload, rows=rows, stride=2)
    assert str(caught.value).startswith(message or "line 2 of the ids upload is not UTF-8")


def test_the_index_keeps_a_bounded_number_of_marks(tmp_path: Path) -> None:
    blobs, upload = stored(tmp_path, "".join(f"{n}\n" for n in range(3_000)))
    index = index_ids(blobs, upload, rows=3_000, stride=1)
    assert len(index.marks) <= upload_ids.MAX_MARKS + 1
    assert read_ids(blobs, upload.blob_key, index, 1_234, 5) == [str(n) for n in range(1_234, 1_239)]
