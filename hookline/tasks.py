"""The task store: the one module that owns the Redis keys of tasks.

Keys (``hl:`` prefix):

* ``task:{id}``     hash, the task record (expires ``result_ttl`` after it ends);
                    until the task ends, its ``payload`` field holds the job's
                    vectors as little-endian float64 bytes
* ``tasks:{tenant}`` sorted set of the tenant's task ids by creation time
* ``active``        sorted set of unfinished task ids by the time their last
                    broker message was written (the reconciler reads it)

A task's webhook attempts live in its record, as fields ``a:1``, ``a:2``, …
(JSON), so they expire with it. The payload shares the record's key, so that
accepting, starting and ending a task each touch one key less; the step that
ends a task writes the record afresh without it. A hash that once held the
payload keeps Redis's large encoding after the field goes, while the new one
takes the compact encoding when ``hash-max-ziplist-value``
(``hash-max-listpack-value``) is at least 1024 (the run command sets it).

State changes are Lua scripts, so each one is an atomic compare-and-set: a task
reaches a terminal state exactly once whatever is redelivered or retried, and
the webhook delivery of that state is queued in the same step.
"""
from __future__ import annotations

import base64
import builtins
import dataclasses
import hashlib
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import orjson
import redis

from hookline.ids import isoformat
from hookline.schedule import SCHEDULE_KEY
from hookline.schedule import member as schedule_member

PENDING, STARTED, RETRY = "PENDING", "STARTED", "RETRY"
SUCCESS, FAILURE, REVOKED = "SUCCESS", "FAILURE", "REVOKED"
TERMINAL = frozenset({SUCCESS, FAILURE, REVOKED})
STATUSES = (PENDING, STARTED, RETRY, SUCCESS, FAILURE, REVOKED)

#: Fraction of submissions that also trim expired ids from a tenant's index.
INDEX_TRIM_CHANCE = 0.01

PREFIX = "hl:"


@dataclasses.dataclass(frozen=True)
class QueuedMessage:
    """A broker message ready to be written beside a state change.

    ``list_key`` is the broker's Redis list for the queue, so the message and
    the task record land in one atomic step.
    """

    message_id: str
    data: bytes
    list_key: str


def task_key(task_id: str) -> str:
    return f"{PREFIX}task:{task_id}"


#: The record's field that holds the job's vectors until the task ends.
PAYLOAD_FIELD = "payload"


def legacy_payload_key(task_id: str) -> str:
    """Where a task accepted before the payload moved into its record keeps it.

    Read when a record has no payload field, and deleted when it ends, so
    that tasks accepted by an older web process still run after an upgrade.
    """
    return f"{PREFIX}payload:{task_id}"


#: The fields of a record that ``Task`` shows: what a read takes instead of
#: the whole hash, which holds the payload until the task ends.
RECORD_FIELDS = (b"tenant", b"status", b"created", b"started", b"finished", b"attempts", b"done",
                 b"total", b"dim", b"result", b"error", b"meta", b"cb", b"cburl", b"delivery",
                 b"coll", b"cancel")


def index_key(tenant: str) -> str:
    return f"{PREFIX}tasks:{tenant}"


ACTIVE_KEY = f"{PREFIX}active"

# KEYS: task, tenant index, active, queue
# ARGV: id, now, message, index trim cutoff ('' for none), field, value, ...
_SUBMIT_LUA = """
redis.call('HSET', KEYS[1], unpack(ARGV, 5))
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
redis.call('LPUSH', KEYS[4], ARGV[3])
if ARGV[4] ~= '' then redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[4]) end
return 1
"""

# The record as HGETALL gives it (a flat list), as a table of its fields.
_RECORD_LUA = """
local function as_record(flat)
  local record = {}
  for i = 1, #flat, 2 do record[flat[i]] = flat[i + 1] end
  return record
end
"""

# ``record`` is the record as read (``as_record``), ``changes`` the fields the
# end sets. The record is written afresh, without the payload and the run's
# owner and claim: a new hash takes Redis's compact encoding, where deleting
# the payload's field would leave the large one behind (about 1.4 KB per
# finished task instead of 1 KB). A record without a payload field was
# written before the payload moved into it, and its payload's own key goes
# instead.
_TERMINAL_LUA = _RECORD_LUA + """
local function settle(task, record, changes, active, id, ttl, delivery, queue, legacy)
  for i = 1, #changes, 2 do record[changes[i]] = changes[i + 1] end
  if record['payload'] == nil then redis.call('DEL', legacy) end
  record['payload'] = nil
  record['owner'] = nil
  record['claim'] = nil
  local fields = {}
  for field, value in pairs(record) do
    fields[#fields + 1] = field
    fields[#fields + 1] = value
  end
  redis.call('DEL', task)
  redis.call('HSET', task, unpack(fields))
  redis.call('EXPIRE', task, ttl)
  redis.call('ZREM', active, id)
  if delivery ~= '' then redis.call('LPUSH', queue, delivery) end
end
"""

# KEYS: task, active, delivery queue, legacy payload, output hash, held list
#       (the task key stands in for the ones not used)
# ARGV: id, ttl, delivery message (or ''), allowed statuses ",A,B,",
#       output bytes (or ''), held message (or ''), new status, field, value, ...
_FINISH_LUA = _TERMINAL_LUA + """
local record = as_record(redis.call('HGETALL', KEYS[1]))
if ARGV[6] ~= '' then redis.call('LREM', KEYS[6], -1, ARGV[6]) end
local status = record['status']
if not status then return {0, ''} end
if not string.find(ARGV[4], ',' .. status .. ',', 1, true) then return {0, status} end
-- The job's output is written with its result, so SUCCESS implies it.
if ARGV[5] ~= '' then redis.call('HSET', KEYS[5], ARGV[1], ARGV[5]) end
settle(KEYS[1], record, {'status', ARGV[7], unpack(ARGV, 8)}, KEYS[2], ARGV[1], ARGV[2],
       ARGV[3], KEYS[3], KEYS[4])
return {1, status}
"""

# KEYS: task, active, delivery queue, legacy payload
# ARGV: id, ttl, delivery message (or ''), tenant, now
_CANCEL_LUA = _TERMINAL_LUA + """
local record = as_record(redis.call('HGETALL', KEYS[1]))
local status = record['status']
if not status or record['tenant'] ~= ARGV[4] then return {0, ''} end
if status == 'PENDING' or status == 'RETRY' then
  settle(KEYS[1], record, {'status', 'REVOKED', 'finished', ARGV[5], 'cancel', '1',
                         'error', 'cancelled before it started'},
         KEYS[2], ARGV[1], ARGV[2], ARGV[3], KEYS[3], KEYS[4])
  return {1, status}
end
if status == 'STARTED' then
  redis.call('HSET', KEYS[1], 'cancel', '1')
  return {2, status}
end
return {0, status}
"""

# KEYS: task, heartbeats zset, legacy payload
# ARGV: now (s), owner, heartbeat cutoff (ms), claim
# Returns the outcome and, for 'run', the record with its payload, the run's
# attempt number and start time: one round trip. A record written before the
# payload moved into it comes with the payload's own key's value.
_START_LUA = _RECORD_LUA + """
local flat = redis.call('HGETALL', KEYS[1])
local record = as_record(flat)
local status = record['status']
if not status then return 'missing' end
if status == 'SUCCESS' or status == 'FAILURE' or status == 'REVOKED' then return 'terminal' end
-- A record written before the payload moved into it keeps it under its own key.
local function old_payload()
  if record['payload'] then return false end
  return redis.call('GET', KEYS[3])
end
if status == 'STARTED' and record['claim'] == ARGV[4] then
  -- The message that claimed the run, again. From the same worker: Redis
  -- went away before the answer to its claim arrived, and the run is still
  -- its own. From another: the worker that held the message gave it back
  -- (or died), and whoever holds a message may run its task.
  if record['owner'] == ARGV[2] then
    return {'run', flat, tonumber(record['attempts']), record['started'], old_payload()}
  end
elseif status == 'STARTED' and record['owner'] then
  -- Any other message never takes a run from a live worker, this process
  -- included: only once the owner's heartbeat stops may it start again.
  local beat = redis.call('ZSCORE', KEYS[2], record['owner'])
  if beat and tonumber(beat) >= tonumber(ARGV[3]) then return 'busy' end
end
local attempts = (tonumber(record['attempts']) or 0) + 1
redis.call('HSET', KEYS[1], 'status', 'STARTED', 'started', ARGV[1], 'owner', ARGV[2],
           'claim', ARGV[4], 'attempts', attempts)
-- The record as read; the caller applies the fields just written.
return {'run', flat, attempts, ARGV[1], old_payload()}
"""

# KEYS: task, schedule; ARGV: id, due, error, owner
_RETRY_LUA = """
local record = redis.call('HMGET', KEYS[1], 'status', 'owner')
if record[1] ~= 'STARTED' or record[2] ~= ARGV[4] then return 0 end
redis.call('HSET', KEYS[1], 'status', 'RETRY', 'error', ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[2], 'job:' .. ARGV[1])
return 1
"""

# KEYS: task, active, queue
# ARGV: id, now, msg data, expected statuses ",A,B,", new status
_REQUEUE_LUA = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status or not string.find(ARGV[4], ',' .. status .. ',', 1, true) then return 0 end
redis.call('HSET', KEYS[1], 'status', ARGV[5])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('LPUSH', KEYS[3], ARGV[3])
return 1
"""

# KEYS: task, held list (or the task key), schedule, the callback's failed index
# ARGV: attempt record, delivery state, held message (or ''), task id,
#       when the next attempt is due (or ''), now, the retry's schedule member
_ATTEMPT_LUA = """
if ARGV[3] ~= '' then redis.call('LREM', KEYS[2], -1, ARGV[3]) end
local state = redis.call('HMGET', KEYS[1], 'delivery', 'wh_attempts')
local previous = state[1]
-- Only a task with a callback has a delivery state; an expired one has none.
if not previous then return {'', 0} end
local n = (tonumber(state[2]) or 0) + 1
local record = string.gsub(ARGV[1], '^{"attempt":0,', '{"attempt":' .. n .. ',', 1)
redis.call('HSET', KEYS[1], 'a:' .. n, record, 'delivery', ARGV[2], 'wh_attempts', n)
if ARGV[5] ~= '' then redis.call('ZADD', KEYS[3], ARGV[5], ARGV[7]) end
if ARGV[2] == 'failed' then
  redis.call('ZADD', KEYS[4], ARGV[6], ARGV[4])
elseif ARGV[2] == 'delivered' and (previous == 'failed' or previous == 'retrying') then
  redis.call('ZREM', KEYS[4], ARGV[4])
end
return {previous, n}
"""


@dataclasses.dataclass
class Task:
    """A task record as the API and the actors see it."""

    task_id: str
    tenant: str
    status: str
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    attempts: int = 0
    done: int = 0
    total: int = 0
    dimension: int = 0
    result: dict[str, Any] | None = None
    error: str | None = None
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)
    callback_id: str | None = None
    callback_url: str | None = None
    delivery: str | None = None
    collection: str = "default"
    cancel_requested: bool = False
    @property
    def finished(self) -> bool:
        return self.status in TERMINAL

    def to_public(self) -> dict[str, Any]:
        """The body of ``GET /tasks/{id}`` (and the ``data`` of its webhook)."""
        body: dict[str, Any] = {"task_id": self.task_id, "status": self.status}
        if self.status == SUCCESS:
            body["result"] = self.result
        if self.error is not None and self.status in (FAILURE, REVOKED, RETRY):
            body["error"] = self.error
        body.update(
            created_at=isoformat(self.created_at),
            started_at=isoformat(self.started_at),
            finished_at=isoformat(self.finished_at),
            attempts=self.attempts,
            progress={"done": self.done, "total": self.total},
            metadata=self.metadata,
            callback=(
                {"id": self.callback_id, "url": self.callback_url, "delivery": self.delivery}
                if self.callback_id
                else None
            ),
        )
        return body

    def etag(self) -> str:
        digest = hashlib.blake2b(orjson.dumps(self.to_public()), digest_size=12).digest()
        return '"' + base64.urlsafe_b64encode(digest).decode().rstrip("=") + '"'


def _float(value: bytes | None) -> float | None:
    return float(value) if value else None


def _decode(task_id: str, raw: Mapping[bytes, bytes]) -> Task:
    get = raw.get
    result = get(b"result")
    meta = get(b"meta")
    return Task(
        task_id=task_id,
        tenant=raw[b"tenant"].decode(),
        status=raw[b"status"].decode(),
        created_at=float(raw[b"created"]),
        started_at=_float(get(b"started")),
        finished_at=_float(get(b"finished")),
        attempts=int(get(b"attempts") or 0),
        done=int(get(b"done") or 0),
        total=int(get(b"total") or 0),
        dimension=int(get(b"dim") or 0),
        result=orjson.loads(result) if result else None,
        error=get(b"error", b"").decode() or None,
        metadata=orjson.loads(meta) if meta else {},
        callback_id=get(b"cb", b"").decode() or None,
        callback_url=get(b"cburl", b"").decode() or None,
        delivery=get(b"delivery", b"").decode() or None,
        collection=get(b"coll", b"default").decode(),
        cancel_requested=get(b"cancel") == b"1",
    )


def _fields(values: Sequence[bytes | None]) -> dict[bytes, bytes]:
    """``HMGET``'s answer for ``RECORD_FIELDS`` as a mapping of the fields present."""
    return {name: value for name, value in zip(RECORD_FIELDS, values) if value is not None}


def encode_cursor(score: float, member: str) -> str:
    return base64.urlsafe_b64encode(f"{score!r}|{member}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str]:
    """Raises ValueError for a cursor this store did not make."""
    padded = cursor + "=" * (-len(cursor) % 4)
    try:
        score, member = base64.urlsafe_b64decode(padded.encode()).decode().split("|", 1)
        return float(score), member
    except (ValueError, UnicodeDecodeError, TypeError) as exc:
        raise ValueError("not a cursor from this API") from exc


class TaskStore:
    """Reads and changes task records; every change of state is atomic."""

    def __init__(self, client: redis.Redis, *, result_ttl: int, heartbeats_key: str) -> None:
        self.redis = client
        self.result_ttl = result_ttl
        self.heartbeats_key = heartbeats_key
        self._submit = client.register_script(_SUBMIT_LUA)
        self._finish = client.register_script(_FINISH_LUA)
        self._attempt = client.register_script(_ATTEMPT_LUA)
        self._cancel = client.register_script(_CANCEL_LUA)
        self._start = client.register_script(_START_LUA)
        self._requeue = client.register_script(_REQUEUE_LUA)
        self._retry = client.register_script(_RETRY_LUA)

    # -- writes from the API -------------------------------------------------

    def submit(
        self,
        *,
        task_id: str,
        tenant: str,
        vectors: bytes,
        count: int,
        dimension: int,
        metadata_json: bytes,
        collection: str,
        callback: tuple[str, str] | None,
        message: QueuedMessage,
        extra: Sequence[tuple[str, bytes, int]] = (),
        now: float | None = None,
    ) -> float:
        """Write the record, payload, index entry and broker message atomically.

        ``extra`` holds further ``SET key value EX ttl`` writes that belong to
        the same request (the idempotency record). Returns the creation time.
        """
        now = time.time() if now is None else now
        record: dict[str, Any] = {
            "tenant": tenant,
            "status": PENDING,
            "created": repr(now),
            "total": count,
            "dim": dimension,
            "meta": metadata_json,
            PAYLOAD_FIELD: vectors,
        }
        if collection != "default":
            record["coll"] = collection
        if callback:
            record["cb"], record["cburl"] = callback
            record["delivery"] = "pending"
        pairs = [item for field in record.items() for item in field]
        trim = ""
        if hash(task_id) % int(1 / INDEX_TRIM_CHANCE) == 0:
            trim = repr(now - self.result_ttl - 86400)
        # One script, so the record and its message exist together or not at
        # all; the idempotency record, when there is one, joins a transaction.
        keys = [task_key(task_id), index_key(tenant), ACTIVE_KEY, message.list_key]
        args = [task_id, repr(now), message.data, trim, *pairs]
        if not extra:
            # Called directly: a script in a pipeline costs a SCRIPT EXISTS per call.
            self._submit(keys=keys, args=args)
            return now
        pipe = self.redis.pipeline(transaction=True)
        self._submit(keys=keys, args=args, client=pipe)
        for key, value, ttl in extra:
            pipe.set(key, value, ex=ttl)
        pipe.execute()
        return now

    def write_message(self, message: QueuedMessage) -> None:
        """Put ``message`` on its queue (outside any state change)."""
        self.redis.lpush(message.list_key, message.data)

    def cancel(
        self, tenant: str, task_id: str, delivery: QueuedMessage | None
    ) -> tuple[str, str]:
        """Cancel a task of ``tenant``.

        Returns ``(outcome, previous status)``: outcome ``revoked`` (it will
        never run), ``stopping`` (it stops at its next progress point),
        ``finished`` (already terminal) or ``missing`` (unknown or foreign).
        """
        keys, args = self._settle_args(task_id, delivery)
        changed, previous = self._cancel(keys=keys, args=[*args, tenant, repr(time.time())])
        previous = previous.decode() if isinstance(previous, bytes) else previous
        if changed == 1:
            return "revoked", previous
        if changed == 2:
            return "stopping", previous
        return ("finished" if previous else "missing"), previous

    # -- reads ---------------------------------------------------------------

    def get(self, task_id: str, tenant: str | None = None) -> Task | None:
        """The task, or ``None`` if unknown, expired or another tenant's."""
        raw = _fields(self.redis.hmget(task_key(task_id), RECORD_FIELDS))
        if not raw or b"status" not in raw:
            return None
        task = _decode(task_id, raw)
        if tenant is not None and task.tenant != tenant:
            return None
        return task

    def list(
        self, tenant: str, *, limit: int, cursor: str | None, status: str | None
    ) -> tuple[builtins.list[Task], str | None]:
        """A page of the tenant's tasks, newest first.

        Raises:
            ValueError: ``cursor`` was not made by this store.
        """
        key = index_key(tenant)
        max_score: float | str = "+inf"
        after: str | None = None
        if cursor:
            max_score, after = decode_cursor(cursor)
        found: builtins.list[Task] = []
        offset = 0
        batch = max(limit * 2, 50)
        while len(found) < limit:
            rows = self.redis.zrevrangebyscore(
                key, max_score, "-inf", start=offset, num=batch, withscores=True
            )
            if not rows:
                return found, None
            offset += len(rows)
            ids = []
            for member, score in rows:  # type: ignore[str-unpack]
                task_id = member.decode()
                if after is not None:
                    if score == max_score and task_id >= after:
                        continue
                    after = None
                ids.append((task_id, score))
            pipe = self.redis.pipeline(transaction=False)
            for task_id, _ in ids:
                pipe.hmget(task_key(task_id), RECORD_FIELDS)
            for (task_id, score), values in zip(ids, pipe.execute()):
                raw = _fields(values)
                if not raw or b"status" not in raw:
                    continue
                task = _decode(task_id, raw)
                if status and task.status != status:
                    continue
                found.append(task)
                if len(found) == limit:
                    return found, encode_cursor(score, task_id)
        return found, None

    @staticmethod
    def decode(task_id: str, raw: Mapping[bytes, bytes]) -> Task | None:
        """The task in ``raw`` (its record as ``HGETALL`` returns it), or ``None``."""
        if not raw or b"status" not in raw:
            return None
        return _decode(task_id, raw)

    def deliveries(self, task_id: str) -> builtins.list[dict[str, Any]]:
        """The task's webhook attempts, oldest first."""
        raw = self.redis.hgetall(task_key(task_id))
        attempts = [(int(k[2:]), v) for k, v in raw.items() if k.startswith(b"a:")]
        return [orjson.loads(v) for _, v in sorted(attempts)]

    def record_attempt(
        self,
        task_id: str,
        record: bytes,
        delivery: str,
        *,
        failed_index: str,
        held: tuple[str, bytes] | None = None,
        retry_at: float | None = None,
    ) -> tuple[str | None, int]:
        """Log one webhook attempt and set the delivery state, in one step.

        ``record`` is the attempt as JSON starting with ``{"attempt":0,``; the
        attempt's number is filled in here. ``held`` is ``(held list,
        message)``: the broker message to acknowledge. ``retry_at`` puts the
        next attempt on the schedule. A ``failed`` delivery enters the
        callback's ``failed_index`` (what ``recover`` resends), and a
        delivered one leaves it. Done together, so that a worker dying
        between two of these can neither drop a retry nor hide a failure.
        Returns the previous delivery state (``None`` for an expired task)
        and the attempt's number.
        """
        previous, attempt = self._attempt(
            keys=[task_key(task_id), held[0] if held else task_key(task_id), SCHEDULE_KEY,
                  failed_index],
            args=[record, delivery, held[1] if held else b"", task_id,
                  "" if retry_at is None else repr(retry_at), repr(time.time()),
                  schedule_member("hook", task_id)],
        )
        return (previous.decode() or None), int(attempt)

    # -- writes from the workers ---------------------------------------------

    def start(
        self, task_id: str, owner: str, heartbeat_cutoff_ms: int, claim: str
    ) -> tuple[str, Task | None, bytes | None]:
        """Claim the task for a run.

        ``claim`` names this run (the broker message's id). Asking again with
        the same claim, because Redis went away before the answer came, gets
        the same run back instead of ``busy``; another worker holding that
        message (given back, or recovered from a dead worker) takes the run
        over. Returns the outcome, and for ``run`` the task and its payload.
        The outcome is ``run`` (claimed: status ``STARTED``), ``terminal`` (it
        has ended: drop the message), ``busy`` (a live worker runs it under
        another claim) or ``missing`` (no record: expired or never written).
        """
        reply = self._start(
            keys=[task_key(task_id), self.heartbeats_key, legacy_payload_key(task_id)],
            args=[repr(time.time()), owner, heartbeat_cutoff_ms, claim],
        )
        if isinstance(reply, bytes):
            return reply.decode(), None, None
        _, flat, attempts, started, legacy = reply
        record = dict(zip(flat[0::2], flat[1::2]))
        payload = record.pop(PAYLOAD_FIELD.encode(), None)
        if legacy is not None:
            payload = legacy
        record.update({b"status": b"STARTED", b"started": started, b"owner": owner.encode(),
                       b"attempts": str(attempts).encode()})
        return "run", _decode(task_id, record), payload

    def progress(self, task_id: str, done: int) -> bool:
        """Record progress; returns whether a cancel was asked for."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.hset(task_key(task_id), "done", done)
        pipe.hget(task_key(task_id), "cancel")
        return pipe.execute()[1] == b"1"

    def finish(
        self,
        task_id: str,
        status: str,
        *,
        delivery: QueuedMessage | None,
        result: Mapping[str, Any] | None = None,
        error: str | None = None,
        fields: Mapping[str, Any] | None = None,
        allowed_from: Iterable[str] = (PENDING, STARTED, RETRY),
        output: tuple[str, bytes] | None = None,
        held: tuple[str, bytes] | None = None,
        finished_at: float | None = None,
        then: Callable[[Any], None] | None = None,
    ) -> bool:
        """Move the task to a terminal ``status``, once.

        ``output`` is ``(hash key, bytes)``: the job's output, written under
        the task id in the same step. ``held`` is ``(held list, message)``:
        the broker message to acknowledge in the same step, whatever the
        outcome. ``finished_at`` defaults to now. ``then(pipeline)`` adds
        commands that run right after, in the same transaction (an error in
        them does not undo the end; their owner must recover from it).
        Returns ``True`` for the call that made the transition; every other
        call (a redelivery, a race with cancel) gets ``False`` and changes
        nothing.
        """
        assert status in TERMINAL
        pairs: list[Any] = ["finished", repr(time.time() if finished_at is None else finished_at)]
        if result is not None:
            pairs += ["result", orjson.dumps(result)]
        if error is not None:
            pairs += ["error", error]
        for name, value in (fields or {}).items():
            pairs += [name, value]
        keys, args = self._settle_args(task_id, delivery)
        keys += [output[0] if output else task_key(task_id), held[0] if held else task_key(task_id)]
        allowed = "," + ",".join(allowed_from) + ","
        args = [*args, allowed, output[1] if output else b"", held[1] if held else b"",
                status, *pairs]
        if then is None:
            changed, _ = self._finish(keys=keys, args=args)
            return changed == 1
        pipe = self.redis.pipeline(transaction=True)
        self._finish(keys=keys, args=args, client=pipe)
        then(pipe)
        ended = pipe.execute(raise_on_error=False)[0]
        if isinstance(ended, Exception):
            raise ended
        return ended[0] == 1

    def schedule_retry(
        self, task_id: str, *, owner: str, due: float, error: str, schedule_key: str
    ) -> bool:
        """Mark a running task ``RETRY`` and put it on the schedule for ``due``."""
        changed = self._retry(
            keys=[task_key(task_id), schedule_key], args=[task_id, repr(due), error, owner]
        )
        return changed == 1

    def requeue(
        self, task_id: str, message: QueuedMessage, *, expect: Iterable[str], status: str
    ) -> bool:
        """Write a new broker message for an unfinished task (retry, reconcile)."""
        changed = self._requeue(
            keys=[task_key(task_id), ACTIVE_KEY, message.list_key],
            args=[
                task_id,
                repr(time.time()),
                message.data,
                "," + ",".join(expect) + ",",
                status,
            ],
        )
        return changed == 1

    def _settle_args(
        self, task_id: str, delivery: QueuedMessage | None
    ) -> tuple[builtins.list[str], builtins.list[Any]]:
        keys = [
            task_key(task_id),
            ACTIVE_KEY,
            delivery.list_key if delivery else task_key(task_id),
            legacy_payload_key(task_id),
        ]
        args = [task_id, self.result_ttl, delivery.data if delivery else b""]
        return keys, args
