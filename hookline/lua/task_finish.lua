-- Move a task to a terminal status, once, acknowledging its message.
-- KEYS: task, active, delivery queue, legacy payload, output hash, held list
--       (the task key stands in for the ones not used), finished counts
-- ARGV: id, ttl, delivery message (or ''), allowed statuses ",A,B,",
--       output bytes (or ''), held message (or ''), new status, field, value, ...
-- include: settle
local record = as_record(redis.call('HGETALL', KEYS[1]))
if ARGV[6] ~= '' then redis.call('LREM', KEYS[6], -1, ARGV[6]) end
local status = record['status']
if not status then return {0, ''} end
if not string.find(ARGV[4], ',' .. status .. ',', 1, true) then return {0, status} end
-- The job's output is written with its result, so SUCCESS implies it.
if ARGV[5] ~= '' then redis.call('HSET', KEYS[5], ARGV[1], ARGV[5]) end
settle(KEYS[1], record, {'status', ARGV[7], unpack(ARGV, 8)}, KEYS[2], ARGV[1], ARGV[2],
       ARGV[3], KEYS[3], KEYS[4], KEYS[7])
return {1, status}
