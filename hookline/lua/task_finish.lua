-- Move a task to a terminal status, once, acknowledging its message.
-- KEYS: task, active, delivery queue, legacy payload, output hash, held list
--       (the task key stands in for the ones not used), finished counts, schedule
-- ARGV: id, ttl, delivery message (or ''), allowed statuses ",A,B,",
--       output bytes (or ''), held message (or ''), new status,
--       delivery lease until (or ''), field, value, ...
-- A leased delivery is not queued: the job worker attempts it itself, and
-- the schedule sends it to the queue when the lease runs out first.
-- include: settle
local record = as_record(redis.call('HGETALL', KEYS[1]))
if ARGV[6] ~= '' then redis.call('LREM', KEYS[6], -1, ARGV[6]) end
local status = record['status']
if not status then return {0, ''} end
if not string.find(ARGV[4], ',' .. status .. ',', 1, true) then return {0, status} end
-- The job's output is written with its result, so SUCCESS implies it.
if ARGV[5] ~= '' then redis.call('HSET', KEYS[5], ARGV[1], ARGV[5]) end
local delivery = ARGV[3]
if ARGV[8] ~= '' then
  delivery = ''
  redis.call('ZADD', KEYS[8], ARGV[8], 'hook:' .. ARGV[1])
end
settle(KEYS[1], record, {'status', ARGV[7], unpack(ARGV, 9)}, KEYS[2], ARGV[1], ARGV[2],
       delivery, KEYS[3], KEYS[4], KEYS[7])
return {1, status}
