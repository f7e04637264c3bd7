"""The broker's consumer: takes messages off a queue into this process's held list.

In one round trip, a ``BLMOVE`` that sleeps until a message arrives when the
queue is empty, followed by a small Lua script that takes the rest of a
backlog. A process whose prefetch is full sleeps until its threads settle
messages (with a backlog, half of them), then takes their places in one
round trip. Nothing polls.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING

import orjson
import redis
from dramatiq import Consumer, MessageProxy
from dramatiq.common import current_millis
from dramatiq.errors import ConnectionClosed

from actors.held import HeldMessage
from actors.queue_keys import Keys, decode
from hookline.redis_client import UNAVAILABLE
from hookline.sentinel import primary_moves

if TYPE_CHECKING:
    from actors.redis_broker import LeanRedisBroker

#: Longest one blocking wait for a message, in seconds; the consumer thread
#: gets control back this often even on an idle queue.
IDLE_WAIT_SECONDS = 1.0
#: Dead-lettered messages kept per queue.
DEAD_LETTERS_KEPT = 10_000
#: Milliseconds a message may have waited on its queue before the consumer
#: takes it as a sign of a backlog, and fetches in batches again.
BACKLOG_AGE_MS = 10
#: With a backlog, the consumer waits until this fraction of its prefetch is
#: free before it fetches again, so that one round trip takes several
#: messages instead of one per message settled. Dramatiq's prefetch is twice
#: the worker threads unless ``dramatiq_queue_prefetch`` says otherwise, so
#: by default the refill comes when the messages left are about as many as
#: the threads that run them.
REFILL_FRACTION = 0.5
#: Seconds between checks that every message on this process's held list is
#: one it works on (see ``LeanConsumer._adopt``); a failover seen by the
#: process brings the next check forward.
HELD_CHECK_SECONDS = 5.0


class LeanConsumer(Consumer):
    def __init__(self, broker: LeanRedisBroker, queue_name: str, prefetch: int, timeout: int) -> None:
        self.broker = broker
        self.queue_name = queue_name
        self.prefetch = prefetch
        self.timeout = timeout
        self.keys = Keys(broker.namespace, queue_name)
        self.held_key = self.keys.held(broker.broker_id)
        self.cache: deque[bytes] = deque()
        self.fetch_with = broker.fetch_with.get(queue_name)
        #: The ``fetch_with`` key's value as of the fetch that filled ``cache``, and when.
        self.fetched_with: bytes | None = None
        self.fetched_at = 0.0
        self.outstanding = broker.outstanding(queue_name)
        #: Whether more messages probably wait: then a fetch takes a batch.
        self.backlog = True
        #: Set when a settled message frees room for the fetch the consumer waits for.
        self.freed = threading.Event()
        self.wanted = 1
        #: When the held list is next checked, and the failovers seen at the last check.
        self.next_check = 0.0
        self.moves_seen = primary_moves()
        # A blocking move holds its connection while it waits, so it gets its own.
        self.waiter = redis.Redis(connection_pool=broker.client.connection_pool)
        try:
            # A holder without a heartbeat counts as dead: beat before taking anything.
            broker.heartbeat()
            broker.client.sadd(self.keys.holders, broker.broker_id)
            self._adopt()
        except UNAVAILABLE as exc:
            raise ConnectionClosed(exc) from None

    def _adopt(self) -> None:
        """Take up messages on this process's held list that nobody here works on.

        Run when the consumer starts, every ``HELD_CHECK_SECONDS`` and after
        the process follows a failover. A message is held until the write
        that settles it; a failover can lose that write (replication is
        asynchronous) while the process has moved on, and a consumer that
        lost its connection after Redis moved a message never got it. Either
        way the message would stay held, and its task ``STARTED`` under a
        live owner, for as long as the process lives (docs/failover.md).

        Only this thread hands messages out, and a message leaves the held
        list in Redis before it leaves ``outstanding``: so a message held in
        Redis that was neither outstanding before the read nor in the cache
        is run by nobody here.
        """
        known = set(self.outstanding)
        known.update(self.cache)
        self.moves_seen = primary_moves()
        self.next_check = time.monotonic() + HELD_CHECK_SECONDS
        for raw in reversed(self.broker.client.lrange(self.held_key, 0, -1)):
            if raw not in known:
                known.add(raw)
                self.cache.append(raw)
        self.fetched_with = None

    def __next__(self) -> MessageProxy | None:
        try:
            if not self.cache and (time.monotonic() >= self.next_check
                                   or primary_moves() != self.moves_seen):
                self._adopt()
            if not self.cache:
                room = self._room()
                if room is None:
                    return None
                self.cache.extend(self._fetch(room))
                if not self.cache:
                    return None
            raw = self.cache.popleft()
        except UNAVAILABLE as exc:
            raise ConnectionClosed(exc) from None
        try:
            message = decode(raw)
        except (orjson.JSONDecodeError, TypeError, KeyError):
            # Not a message anybody can run: keep it where people look.
            self.broker.scripts["nack"](keys=[self.held_key, self.keys.dead], args=[raw, DEAD_LETTERS_KEPT])
            return None
        if not self.backlog and current_millis() - message.message_timestamp > BACKLOG_AGE_MS:
            self.backlog = True
        self.outstanding.add(raw)
        return HeldMessage(message, raw, self.held_key, self.fetched_with, self.fetched_at)

    def _room(self) -> int | None:
        """How many messages to fetch now; ``None`` after waiting for room.

        Room comes back as worker threads settle their messages. Polling for
        it woke the consumer thread every few milliseconds while the process
        was full, and refilled one message per round trip; it now sleeps
        until a settled message frees enough room, which with a backlog is a
        share of the prefetch (``REFILL_FRACTION``), so one fetch takes
        several. The wait is bounded like a blocking fetch, so the consumer
        thread still gets control back to move due delayed messages and to
        stop.
        """
        self.wanted = max(1, int(self.prefetch * REFILL_FRACTION)) if self.backlog else 1
        room = self.prefetch - len(self.outstanding)
        if room >= self.wanted:
            return room
        self.freed.clear()
        # A message settled between the count and the clear has not set the event.
        room = self.prefetch - len(self.outstanding)
        if room >= self.wanted:
            return room
        self.freed.wait(min(IDLE_WAIT_SECONDS, self.timeout / 1000))
        return None

    def _settled(self, raw: bytes) -> None:
        """``raw`` no longer takes room: wake the consumer if it waits for that room."""
        self.outstanding.discard(raw)
        if self.prefetch - len(self.outstanding) >= self.wanted:
            self.freed.set()

    def _fetch(self, room: int) -> list[bytes]:
        """Take up to ``room`` messages in one round trip, waiting a while for the first.

        ``BLMOVE`` returns at once when the queue has a message and sleeps
        until one arrives when it has none; the script behind it takes the
        rest of a backlog in the same round trip. Without a backlog each
        message arrives on its own, and the script would only find an empty
        queue: it is left out until a message is seen to have waited.
        """
        wait = min(IDLE_WAIT_SECONDS, self.timeout / 1000)
        batch = room > 1 and self.backlog
        pipe = self.waiter.pipeline(transaction=False)
        pipe.blmove(self.keys.queue, self.held_key, wait, "RIGHT", "LEFT")
        if batch:
            script = self.broker.scripts["fetch"]
            pipe.evalsha(script.sha, 2, self.keys.queue, self.held_key, room - 1)
        if self.fetch_with:
            # After the move: the value is at least as new as the messages.
            pipe.get(self.fetch_with)
        replies = pipe.execute(raise_on_error=False)
        self.fetched_at = time.monotonic()
        first, rest = replies[0], replies[1] if batch else []
        if self.fetch_with:
            seen = replies[-1]
            if seen is None:
                # A key that does not exist reads as b"": a value like any other.
                self.fetched_with = b""
            else:
                self.fetched_with = seen if isinstance(seen, bytes) else None
        if isinstance(first, Exception):
            raise first
        if isinstance(rest, redis.exceptions.NoScriptError):
            # Redis restarted: load the script; what it would have taken waits.
            self.broker.client.script_load(self.broker.scripts["fetch"].script)
            rest = []
        elif isinstance(rest, Exception):
            raise rest
        if batch:
            # Fewer than asked for: the queue is empty now.
            self.backlog = len(rest) == room - 1
        return ([first] if first is not None else []) + list(rest)

    def ack(self, message: MessageProxy) -> None:
        assert isinstance(message, HeldMessage)
        try:
            if message.send_again:
                # Only if still held: the actor's own last write may have
                # acknowledged it before the connection went.
                self.broker.scripts["requeue"](keys=[self.keys.queue, self.held_key],
                                               args=[message.raw])
            elif not message.acknowledged:
                self.broker.client.lrem(self.held_key, -1, message.raw)
                message.acknowledged = True
        except UNAVAILABLE as exc:
            raise ConnectionClosed(exc) from None
        self._settled(message.raw)

    def nack(self, message: MessageProxy) -> None:
        assert isinstance(message, HeldMessage)
        try:
            self.broker.scripts["nack"](
                keys=[self.held_key, self.keys.dead], args=[message.raw, DEAD_LETTERS_KEPT])
        except UNAVAILABLE as exc:
            raise ConnectionClosed(exc) from None
        self._settled(message.raw)

    def requeue(self, messages: Iterable[MessageProxy]) -> None:
        raws = [m.raw for m in messages if isinstance(m, HeldMessage)] + list(self.cache)
        self.cache.clear()
        if raws:
            self.broker.scripts["requeue"](keys=[self.keys.queue, self.held_key], args=raws)
        for raw in raws:
            self._settled(raw)

    def close(self) -> None:
        # Messages fetched but not handed out yet go back to the queue now,
        # not when the process's heartbeat runs out.
        if self.cache:
            try:
                self.requeue([])
            except redis.RedisError:
                pass
        self.waiter.close()
