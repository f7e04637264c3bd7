"""The ``.npy`` header of an upload, checked from its first bytes.

An upload in ``npy`` format must hold one 2-D array of little-endian float32
or float64 values in C order, and its header must agree with the upload's
``Upload-Length``. The header is the first ~128 bytes, so a file that breaks
a rule is refused on its first PATCH instead of after its last byte.
"""
from __future__ import annotations

import io
import struct
from dataclasses import dataclass

from numpy.lib import format as npy_format

MAGIC = b"\x93NUMPY"
#: Bytes that give a header's total size: magic, version, then its length field.
PREAMBLE_BYTES = 12
#: Largest header accepted, in bytes (numpy writes 128 for any 2-D array).
MAX_HEADER_BYTES = 10_000
#: The dtypes accepted, as numpy spells them, and their item sizes in bytes.
DTYPES = {"<f4": 4, "<f8": 8}


class NpyHeaderError(ValueError):
    """The bytes are not a ``.npy`` header that an upload may carry."""


@dataclass(frozen=True)
class NpyLayout:
    """Where the values of an ``.npy`` upload are and what they are."""

    #: Bytes before the first value.
    data_offset: int
    rows: int
    dimension: int
    #: ``<f4`` or ``<f8``.
    dtype: str

    @property
    def row_bytes(self) -> int:
        return self.dimension * DTYPES[self.dtype]


def header_size(prefix: bytes) -> int:
    """The header's total size in bytes, from at least its first 12 bytes.

    Raises:
        NpyHeaderError: not the ``.npy`` magic, an unknown version, or a
            header over ``MAX_HEADER_BYTES``.
    """
    if prefix[: len(MAGIC)] != MAGIC or len(prefix) < PREAMBLE_BYTES:
        raise NpyHeaderError("The upload does not start like a .npy file.")
    major = prefix[6]
    if major == 1:
        total = 10 + struct.unpack("<H", prefix[8:10])[0]
    elif major in (2, 3):
        total = 12 + struct.unpack("<I", prefix[8:12])[0]
    else:
        raise NpyHeaderError(f"Unknown .npy format version {major}.")
    if total > MAX_HEADER_BYTES:
        raise NpyHeaderError(f"The .npy header is over {MAX_HEADER_BYTES} bytes.")
    return total


def parse_header(header: bytes, upload_length: int, max_dimension: int) -> NpyLayout:
    """Check a whole ``.npy`` header against the rules and the upload's length.

    Raises:
        NpyHeaderError: with a message that names the rule broken.
    """
    stream = io.BytesIO(header)
    try:
        major, _ = npy_format.read_magic(stream)
        read = npy_format.read_array_header_1_0 if major == 1 else npy_format.read_array_header_2_0
        shape, fortran_order, dtype = read(stream, max_header_size=MAX_HEADER_BYTES)
    except (ValueError, SyntaxError, TypeError, struct.error) as exc:
        raise NpyHeaderError(f"The .npy header cannot be read: {exc}") from None
    descr = dtype.str
    if descr not in DTYPES:
        raise NpyHeaderError(
            f"The array's dtype is {descr}; send little-endian float32 (<f4) or float64 (<f8).")
    if fortran_order:
        raise NpyHeaderError("The array is in Fortran order; send it in C order.")
    if len(shape) != 2:
        raise NpyHeaderError(f"The array has {len(shape)} dimensions; send a 2-D array (rows, dimension).")
    rows, dimension = shape
    if rows < 1 or not 1 <= dimension <= max_dimension:
        raise NpyHeaderError(
            f"The array's shape is {tuple(shape)}; it needs at least one row and 1 to "
            f"{max_dimension} columns.")
    layout = NpyLayout(data_offset=stream.tell(), rows=rows, dimension=dimension, dtype=descr)
    expected = layout.data_offset + rows * layout.row_bytes
    if expected != upload_length:
        raise NpyHeaderError(
            f"The header says {expected} bytes in all (shape {tuple(shape)}, {descr}), "
            f"but Upload-Length is {upload_length}.")
    return layout
