"""A lock for many readers or one writer (the index's graphs: searches read, changes write)."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class ReadWriteLock:
    """Many readers or one writer; a waiting writer keeps new readers out.

    A writer that takes the lock again and again (the drainer) asks for it
    with ``polite``: it first lets in the readers that queued up while it
    held it, so searches are not starved between its batches.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._queued_readers = 0
        self._writing = False
        self._waiting = 0

    @contextmanager
    def read(self) -> Iterator[None]:
        with self._cond:
            self._queued_readers += 1
            while self._writing or self._waiting:
                self._cond.wait()
            self._queued_readers -= 1
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    @contextmanager
    def write(self, polite: bool = False) -> Iterator[None]:
        with self._cond:
            while polite and self._queued_readers:
                self._cond.wait()
            self._waiting += 1
            while self._writing or self._readers:
                self._cond.wait()
            self._waiting -= 1
            self._writing = True
        try:
            yield
        finally:
            with self._cond:
                self._writing = False
                self._cond.notify_all()
