"""Which requests holding an ``Idempotency-Key`` still run, as each web process says.

A request claims its key before it writes its task. A request that ends
without writing (a ``503`` while Redis fails over, a process that dies)
leaves the claim behind: its lease could not be ended, or a failover kept
the claim and lost what replaced it. Each web process therefore writes, at
each claim and every ``BEAT_SECONDS``, the requests of its own that hold a
key, under a sequence number of its own. A claim carries the process and
the number it was made under. A retry that meets the claim reads the list:
a list at least as new as the claim without it, or no list at all (the
process is gone), means that the request is over, and the retry may take
the key over at once instead of answering ``409`` until the lease ends.

Taking a key over never makes a second task: a task is written only while
its key holds the claim of the request writing it (``hookline/lua/claimed_answer.lua``).
"""
from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass

import orjson
import redis

from hookline import keys
from hookline.redis_client import UNAVAILABLE

log = logging.getLogger("hookline.idempotency")

#: Seconds between two lists of a process's running requests.
BEAT_SECONDS = 1.0
#: Milliseconds a list is kept: a process that wrote none for this long is gone.
LIST_TTL_MS = 5000


@dataclass(frozen=True)
class Running:
    """A request that holds (or is about to claim) a key: its process and number."""

    process: str
    number: int


class ClaimOwners:
    """This process's running requests, published in Redis; see the module's docstring."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client
        self._lock = threading.Lock()
        self._forked()

    def _forked(self) -> None:
        """Start afresh: a new process (a forked worker) is another owner."""
        self._pid = os.getpid()
        self.process = uuid.uuid4().hex
        self._number = 0
        self._running: set[int] = set()
        #: Whether the list changed since it was last written.
        self._changed = False
        self._thread: threading.Thread | None = None

    def begin(self) -> Running:
        """Count a request as running from now until ``end``."""
        with self._lock:
            if self._pid != os.getpid():
                self._forked()
            if self._thread is None:
                self._thread = threading.Thread(target=self._beat, name="hookline-claim-owners",
                                                daemon=True)
                self._thread.start()
            self._number += 1
            self._running.add(self._number)
            return Running(self.process, self._number)

    def end(self, running: Running, settled: bool) -> None:
        """The request is over; ``settled`` if its claim is answered or released in Redis.

        A claim left standing is said to be over in the next list; a settled
        one needs no list (it expires on its own).
        """
        with self._lock:
            self._running.discard(running.number)
            self._changed = self._changed or not settled

    def unsettled(self) -> None:
        """A request that ended may have left its claim standing: say so in the next list."""
        with self._lock:
            self._changed = True

    def publish(self, pipe: redis.client.Pipeline) -> None:
        """Queue on ``pipe`` the write of this process's list as of now."""
        with self._lock:
            listed = orjson.dumps([self._number, sorted(self._running)])
        pipe.set(keys.claim_owner(self.process), listed, px=LIST_TTL_MS)

    def over(self, process: str, number: int) -> bool:
        """Whether request ``number`` of ``process`` has ended, as its process last said."""
        raw = self.redis.get(keys.claim_owner(process))
        if raw is None:
            return True
        newest, running = orjson.loads(raw)
        return bool(newest >= number and number not in running)

    def _beat(self) -> None:
        """Write the list while requests run, and after one left its claim standing.

        An idle process writes nothing: its list expires, which says as much.
        """
        while True:
            time.sleep(BEAT_SECONDS)
            with self._lock:
                due = self._changed or bool(self._running)
                self._changed = False
            if not due:
                continue
            try:
                pipe = self.redis.pipeline(transaction=False)
                self.publish(pipe)
                pipe.execute()
            except Exception as exc:
                with self._lock:
                    self._changed = True
                if not isinstance(exc, UNAVAILABLE):
                    log.exception("the list of running requests was not written")
