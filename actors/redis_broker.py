"""A lean Redis broker for Dramatiq: a list per queue, a held list per worker.

Dramatiq's own Redis broker keeps each message twice (an id on a list, the
body in a hash), runs a Lua script with a heartbeat write for every fetch and
every acknowledgement, and polls an empty queue with a growing back-off. At
Hookline's message rates that bookkeeping cost more than the jobs themselves
(bench/RESULTS.md). This broker keeps the same guarantees with less:

* ``<ns>:q:<queue>`` is a list of encoded messages. Producers ``LPUSH``;
  consumers take from the right, so it is first in, first out.
* A consumer moves what it takes to its process's *held* list
  (``<ns>:q:<queue>:held:<worker id>``) in the same atomic step, in one round
  trip: a ``BLMOVE`` that sleeps until a message arrives when the queue is
  empty, followed by a small Lua script that takes the rest of a backlog.
  A process whose prefetch is full sleeps until its threads settle
  messages (with a backlog, half of them), then takes their places in one
  round trip. Nothing polls.
* Acknowledging removes the message from the held list (``LREM``). An actor
  may do that inside its own last write (:func:`held_message`), which
  saves a round trip per message.
* Heartbeats are written by each worker process on a clock
  (``actors.upkeep``), not by every broker call. The held lists of a process
  whose heartbeat stopped go back to their queues (:meth:`recover`).
* ``nack`` moves a message to ``<ns>:q:<queue>:dead`` (capped).
* Delayed messages use Dramatiq's own scheme: they wait on the queue's
  ``.DQ`` twin and the worker holds them until their eta.
* A queue may name a key to read in the same round trip as each fetch
  (``fetch_with``); its value then (``b""`` for no such key, ``None`` if
  it could not be read) is the message's ``fetched_with``, and the time of
  that fetch its ``fetched_at``. The webhook worker reads the callbacks'
  change counter this way, to know whether what it read of a callback is
  still current.

Messages are Dramatiq messages encoded as JSON by orjson, so any Dramatiq
tool can read them.
"""
from __future__ import annotations

import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable
from typing import Any

import orjson
import redis
from dramatiq import Broker, Consumer, Message, MessageProxy, Middleware
from dramatiq.common import current_millis, dq_name
from dramatiq.errors import ConnectionClosed
from dramatiq.middleware import MiddlewareError

from hookline.redis import UNAVAILABLE

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

# KEYS: queue, held; ARGV: count. Take up to ``count`` messages, oldest first.
_FETCH_LUA = """
local taken = redis.call('RPOP', KEYS[1], tonumber(ARGV[1]))
if not taken then return {} end
redis.call('LPUSH', KEYS[2], unpack(taken))
return taken
"""

# KEYS: queue, held; ARGV: messages, oldest first. Put them back at the
# queue's head, in the same order.
_REQUEUE_LUA = """
for i = #ARGV, 1, -1 do
  if redis.call('LREM', KEYS[2], -1, ARGV[i]) > 0 then
    redis.call('RPUSH', KEYS[1], ARGV[i])
  end
end
return #ARGV
"""

# KEYS: held, dead; ARGV: message, how many dead letters to keep
_NACK_LUA = """
redis.call('LREM', KEYS[1], -1, ARGV[1])
redis.call('LPUSH', KEYS[2], ARGV[1])
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[2]) - 1)
return 1
"""

# KEYS: heartbeats, holders, queue; ARGV: held key prefix, heartbeat cutoff (ms)
# Returns how many messages went back to the queue.
_RECOVER_LUA = """
local moved = 0
for _, worker in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local beat = redis.call('ZSCORE', KEYS[1], worker)
  if not beat or tonumber(beat) < tonumber(ARGV[2]) then
    local held = ARGV[1] .. worker
    -- Newest first onto the queue's head, so the oldest is taken first.
    while redis.call('LMOVE', held, KEYS[3], 'LEFT', 'RIGHT') do
      moved = moved + 1
    end
    redis.call('SREM', KEYS[2], worker)
  end
end
return moved
"""


def encode(message: Message[Any]) -> bytes:
    return orjson.dumps(message.asdict())


def decode(data: bytes) -> Message[Any]:
    fields = orjson.loads(data)
    fields["args"] = tuple(fields["args"])
    return Message(**fields)


class Keys:
    """The Redis keys of one queue."""

    def __init__(self, namespace: str, queue_name: str) -> None:
        self.queue = f"{namespace}:q:{queue_name}"
        self.holders = f"{self.queue}:holders"
        self.held_prefix = f"{self.queue}:held:"
        self.dead = f"{self.queue}:dead"

    def held(self, worker_id: str) -> str:
        return self.held_prefix + worker_id


def heartbeats_key(namespace: str) -> str:
    """The sorted set of worker process ids by their last heartbeat (ms)."""
    return f"{namespace}:workers"


def backlog(client: redis.Redis, keys: Keys) -> tuple[int, int]:
    """How many messages of a queue wait on it, and how many workers hold."""
    held = [keys.held(worker.decode()) for worker in client.smembers(keys.holders)]
    pipe = client.pipeline(transaction=False)
    pipe.llen(keys.queue)
    for key in held:
        pipe.llen(key)
    ready, *counts = pipe.execute()
    return int(ready), sum(int(count) for count in counts)


class HeldMessage(MessageProxy):
    """A message a consumer holds, with what acknowledging it takes."""

    def __init__(self, message: Message[Any], raw: bytes, held_key: str,
                 fetched_with: bytes | None = None, fetched_at: float = 0.0) -> None:
        super().__init__(message)
        # The fields Dramatiq reads for every message, on the proxy itself:
        # MessageProxy would look each one up through __getattr__.
        self.queue_name = message.queue_name
        self.actor_name = message.actor_name
        self.options = message.options
        self.message_id = message.message_id
        self.message_timestamp = message.message_timestamp
        self.raw = raw
        self.held_key = held_key
        #: The value of the queue's ``fetch_with`` key when this message was taken.
        self.fetched_with = fetched_with
        #: When it was taken (``time.monotonic()``): a message may wait a while
        #: in the process before a thread runs it.
        self.fetched_at = fetched_at
        #: Set once the message has left the held list (see ``held_message``).
        self.acknowledged = False
        #: Set by an actor that could not finish for want of Redis: instead of
        #: being acknowledged, the message goes back to the head of its queue
        #: (once Redis answers again; Dramatiq retries until it does).
        self.send_again = False


def held_message(message: MessageProxy | None) -> HeldMessage | None:
    """``message`` if its actor may acknowledge it inside its own last write.

    The actor removes ``raw`` from ``held_key`` in the same script that
    records its outcome and sets ``acknowledged``; the consumer then skips
    its own ``LREM``, which saves a round trip per message.
    """
    if isinstance(message, HeldMessage) and not message.acknowledged:
        return message
    return None


def give_back(message: MessageProxy | None) -> bool:
    """Have ``message`` go back to its queue instead of being acknowledged.

    For an actor that could not finish for want of Redis: the consumer puts
    the message back at its queue's head once Redis answers. Returns
    ``False`` if ``message`` is not one this broker holds (the actor was
    called directly), and the caller should raise instead.
    """
    held = held_message(message)
    if held is None:
        return False
    held.send_again = True
    return True


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
        """Take up messages on this process's held list that nobody works on.

        A consumer that lost its connection after Redis moved a message (the
        reply never arrived) would otherwise leave it held for as long as the
        process lives.
        """
        for raw in reversed(self.broker.client.lrange(self.held_key, 0, -1)):
            if raw not in self.outstanding:
                self.cache.append(raw)
        self.fetched_with = None

    def __next__(self) -> MessageProxy | None:
        try:
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
            self.broker.client.script_load(_FETCH_LUA)
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


class LeanRedisBroker(Broker):
    """Dramatiq broker over Redis lists; see the module's docstring."""

    def __init__(
        self,
        *,
        client: redis.Redis,
        namespace: str = "hl",
        heartbeat_timeout: int = 60_000,
        middleware: list[Any] | None = None,
        fetch_with: dict[str, str] | None = None,
    ) -> None:
        #: Signal name -> the middleware methods that handle it (see emit_before).
        self._hooks: dict[str, list[Any]] = {}
        super().__init__(middleware=middleware)
        self.client = client
        self.namespace = namespace
        self.heartbeat_timeout = heartbeat_timeout
        #: Queue name -> a key read with every fetch (see the module's docstring).
        self.fetch_with = dict(fetch_with or {})
        self.broker_id = str(uuid.uuid4())
        self.queues: set[str] = set()
        self._outstanding: dict[str, set[bytes]] = {}
        self._lock = threading.Lock()
        self.scripts = {
            "fetch": client.register_script(_FETCH_LUA),
            "requeue": client.register_script(_REQUEUE_LUA),
            "nack": client.register_script(_NACK_LUA),
            "recover": client.register_script(_RECOVER_LUA),
        }

    @property
    def heartbeats_key(self) -> str:
        return heartbeats_key(self.namespace)

    def add_middleware(self, middleware: Middleware, **where: Any) -> None:
        super().add_middleware(middleware, **where)
        self._hooks.clear()

    def _handlers(self, name: str) -> list[Any]:
        """The bound ``name`` methods of the middleware that define their own, in order.

        Dramatiq calls every middleware for every signal, and most inherit a
        method that does nothing; four signals a message times three
        middleware made twelve calls, where this makes three.
        """
        handlers = self._hooks.get(name)
        if handlers is None:
            default = getattr(Middleware, name, None)
            handlers = []
            for middleware in self.middleware:
                method = getattr(middleware, name, None)
                if method is None:
                    continue  # no such hook
                if default is not None and getattr(method, "__func__", None) is default:
                    continue  # Middleware's own no-op
                handlers.append(method)
            self._hooks[name] = handlers
        return handlers

    def emit_before(self, signal: str, *args: Any, **kwargs: Any) -> None:
        for handler in self._handlers("before_" + signal):
            try:
                handler(self, *args, **kwargs)
            except MiddlewareError:
                raise
            except Exception:
                self.logger.critical("Unexpected failure in before_%s of %r.", signal,
                                     handler.__self__, exc_info=True)

    def emit_after(self, signal: str, *args: Any, **kwargs: Any) -> None:
        for handler in reversed(self._handlers("after_" + signal)):
            try:
                handler(self, *args, **kwargs)
            except Exception:
                self.logger.critical("Unexpected failure in after_%s of %r.", signal,
                                     handler.__self__, exc_info=True)

    def outstanding(self, queue_name: str) -> set[bytes]:
        """Bodies this process has taken off ``queue_name`` and not settled."""
        with self._lock:
            return self._outstanding.setdefault(queue_name, set())

    def keys(self, queue_name: str) -> Keys:
        return Keys(self.namespace, queue_name)

    def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 30000) -> Consumer:
        return LeanConsumer(self, queue_name, prefetch, timeout)

    def declare_queue(self, queue_name: str) -> None:
        if queue_name in self.queues:
            return
        self.emit_before("declare_queue", queue_name)
        self.queues.add(queue_name)
        self.emit_after("declare_queue", queue_name)
        delayed = dq_name(queue_name)
        self.delay_queues.add(delayed)
        self.emit_after("declare_delay_queue", delayed)

    def enqueue(self, message: Message[Any], *, delay: int | None = None) -> Message[Any]:
        queue_name = message.queue_name
        if delay is not None:
            queue_name = dq_name(queue_name)
            message = message.copy(
                queue_name=queue_name,
                options={**message.options, "eta": current_millis() + delay},
            )
        self.emit_before("enqueue", message, delay)
        self.client.lpush(self.keys(queue_name).queue, encode(message))
        self.emit_after("enqueue", message, delay)
        return message

    def get_declared_queues(self) -> set[str]:
        return self.queues.copy()

    def get_declared_delay_queues(self) -> set[str]:
        return self.delay_queues.copy()

    def heartbeat(self, now_ms: int | None = None) -> None:
        now_ms = current_millis() if now_ms is None else now_ms
        self.client.zadd(self.heartbeats_key, {self.broker_id: now_ms})

    def recover(self, now_ms: int | None = None) -> int:
        """Give the held messages of dead worker processes back to their queues."""
        now_ms = current_millis() if now_ms is None else now_ms
        moved = 0
        for queue_name in sorted(self.queues | self.delay_queues):
            keys = self.keys(queue_name)
            moved += int(self.scripts["recover"](
                keys=[self.heartbeats_key, keys.holders, keys.queue],
                args=[keys.held_prefix, now_ms - self.heartbeat_timeout],
            ))
        return moved

    def flush(self, queue_name: str) -> None:
        for name in (queue_name, dq_name(queue_name)):
            keys = self.keys(name)
            holders = [h.decode() for h in self.client.smembers(keys.holders)]
            self.client.delete(keys.queue, keys.dead, keys.holders, *(keys.held(h) for h in holders))

    def flush_all(self) -> None:
        for queue_name in self.queues:
            self.flush(queue_name)

    def join(self, queue_name: str, *, timeout: int | None = None) -> None:
        """Wait until ``queue_name`` has no ready or held messages."""
        deadline = None if timeout is None else time.monotonic() + timeout / 1000
        while True:
            busy = sum(sum(backlog(self.client, self.keys(name)))
                       for name in (queue_name, dq_name(queue_name)))
            if busy == 0:
                return
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"queue {queue_name} still has {busy} messages")
            time.sleep(0.01)
