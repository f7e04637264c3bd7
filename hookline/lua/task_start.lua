-- Claim a task for a run.
-- KEYS: task, heartbeats zset, legacy payload
-- ARGV: now (s), owner, heartbeat cutoff (ms), claim, newest record format the caller reads
-- Returns the outcome and, for 'run', the record with its payload, the run's
-- attempt number and start time: one round trip. A record written before the
-- payload moved into it comes with the payload's own key's value.
-- include: as_record
local flat = redis.call('HGETALL', KEYS[1])
local record = as_record(flat)
local status = record['status']
if not status then return 'missing' end
-- A record of a newer format is left, unclaimed, for a worker that reads it.
local version = tonumber(record['v'] or '1')
if not version or version > tonumber(ARGV[5]) then return 'foreign' end
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
