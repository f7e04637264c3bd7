"""The .npy header rules, on headers numpy itself writes."""
from __future__ import annotations

import numpy as np
import pytest

from hookline.npy import NpyHeaderError, header_size, parse_header
from tests.uploads.tus import npy_bytes


def check(array: np.ndarray, extra: int = 0) -> None:
    data = npy_bytes(array)
    total = header_size(data[:12])
    parse_header(data[:total], len(data) + extra, 4096)


@pytest.mark.parametrize("dtype", ["<f4", "<f8"])
def test_a_2d_little_endian_float_array_is_accepted(dtype: str) -> None:
    data = npy_bytes(np.zeros((7, 5), dtype=dtype))
    total = header_size(data[:12])
    layout = parse_header(data[:total], len(data), 4096)
    assert (layout.rows, layout.dimension, layout.dtype, layout.data_offset) == (7, 5, dtype, total)
    assert total + 7 * layout.row_bytes == len(data)


@pytest.mark.parametrize("array, words", [
    (np.zeros((3, 4), dtype=">f4"), ">f4"),
    (np.zeros((3, 4), dtype="<i4"), "<i4"),
    (np.zeros((3, 4), dtype="<f2"), "<f2"),
    (np.asfortranarray(np.zeros((3, 4), dtype="<f4")), "Fortran order"),
    (np.zeros((2, 3, 4), dtype="<f4"), "3 dimensions"),
    (np.zeros(5, dtype="<f4"), "1 dimensions"),
    (np.zeros((0, 4), dtype="<f4"), "at least one row"),
    (np.zeros((3, 5000), dtype="<f4"), "5000"),
])
def test_arrays_that_break_a_rule_are_refused_with_the_reason(array: np.ndarray, words: str) -> None:
    with pytest.raises(NpyHeaderError, match=words.replace("(", r"\(")):
        check(array)


def test_a_length_that_disagrees_with_the_shape_is_refused() -> None:
    with pytest.raises(NpyHeaderError, match="Upload-Length"):
        check(np.zeros((3, 4), dtype="<f4"), extra=4)


@pytest.mark.parametrize("prefix", [b"PK\x03\x04" + b"\x00" * 8, b"\x93NUMPY\x09\x00\x10\x00\x00\x00",
                                    b"\x93NUMPY\x02\x00\xff\xff\xff\x00", b"\x93NUM"])
def test_what_is_not_a_npy_preamble_is_refused(prefix: bytes) -> None:
    with pytest.raises(NpyHeaderError):
        header_size(prefix)
