"""``file:///path``: one file per blob, the embedded default.

An unsealed blob is ``<key>.partial``; ``seal`` renames it to ``<key>``, so a
reader never sees a blob that is still being written, as with S3.
"""
from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from hookline.blobs import BlobConflict, BlobNotFound, BlobStore, check_key

_PARTIAL = ".partial"


class FileBlobStore(BlobStore):
    """Blobs as files under ``root`` (created when first written)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def append(self, key: str, offset: int, chunks: Iterable[bytes | memoryview]) -> int:
        path = self._path(key)
        partial = path.with_name(path.name + _PARTIAL)
        partial.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT, 0o640)
        try:
            stored = os.fstat(fd).st_size
            if stored < offset:
                raise BlobConflict(f"{stored} bytes stored, not {offset}")
            if stored > offset:
                os.ftruncate(fd, offset)
            position = offset
            for chunk in chunks:
                view = memoryview(chunk)
                while view:
                    written = os.pwrite(fd, view, position)
                    position += written
                    view = view[written:]
            # No fsync here: a disk syncs at a fraction of the speed of the
            # page cache, and bytes lost with the machine show as a blob
            # shorter than its record, which the caller repairs by taking the
            # offset back to ``size()``. ``seal`` syncs the whole blob once.
            return position
        finally:
            os.close(fd)

    def seal(self, key: str, size: int) -> None:
        path = self._path(key)
        partial = path.with_name(path.name + _PARTIAL)
        try:
            stored = partial.stat().st_size
        except FileNotFoundError:
            if not path.exists():
                raise BlobNotFound(key) from None
            stored = path.stat().st_size
            if stored != size:
                raise BlobConflict(f"sealed blob holds {stored} bytes, not {size}") from None
            return
        if stored < size:
            raise BlobConflict(f"{stored} bytes stored, fewer than {size}")
        fd = os.open(partial, os.O_WRONLY)
        try:
            if stored > size:
                os.ftruncate(fd, size)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(partial, path)
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)  # the rename itself
        finally:
            os.close(folder)

    def read(self, key: str, start: int, length: int) -> bytes:
        try:
            fd = os.open(self._path(key), os.O_RDONLY)
        except FileNotFoundError:
            raise BlobNotFound(key) from None
        try:
            return os.pread(fd, max(0, length), start)
        finally:
            os.close(fd)

    def size(self, key: str) -> int:
        path = self._path(key)
        for candidate in (path, path.with_name(path.name + _PARTIAL)):
            try:
                return candidate.stat().st_size
            except FileNotFoundError:
                continue
        return 0

    def delete(self, key: str) -> None:
        path = self._path(key)
        for candidate in (path, path.with_name(path.name + _PARTIAL)):
            candidate.unlink(missing_ok=True)
