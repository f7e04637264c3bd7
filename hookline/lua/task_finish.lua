-- Move a task to a terminal status, once, acknowledging its message.
-- KEYS: task, active, delivery queue, legacy payload, held list (the task
--       key stands in for the ones not used), finished counts, schedule,
--       then, for a job's vectors, its collection's records, stats, tasks,
--       log, seq, collections, registry and job ids keys
-- ARGV: id, ttl, delivery message (or ''), allowed statuses ",A,B,",
--       held message (or ''), new status, delivery lease until (or ''),
--       vectors (or ''), number n of vector arguments (0 without vectors),
--       the n vector arguments (see vectors_write), field, value, ...
-- A leased delivery is not queued: the job worker attempts it itself, and
-- the schedule sends it to the queue when the lease runs out first.
-- The job's vectors are written in the step that ends it, so SUCCESS implies
-- them. Returns {1, old status} for the call that ended the task, {0, status}
-- for any other, and {-2, status}, changing nothing, when the vectors'
-- collection now has another dimension.
-- include: settle
-- include: vectors_write
local record = as_record(redis.call('HGETALL', KEYS[1]))
local status = record['status']
local allowed = status and string.find(ARGV[4], ',' .. status .. ',', 1, true)
local n = tonumber(ARGV[9])
local VK, VA, exists = {}, {}, nil
if ARGV[8] ~= '' and allowed then
  for i = 1, 8 do VK[i] = KEYS[7 + i] end
  for i = 1, n do VA[i] = ARGV[9 + i] end
  local fits
  fits, exists = collection_fits(VK, VA)
  if not fits then return {-2, status} end
end
if ARGV[5] ~= '' then redis.call('LREM', KEYS[5], -1, ARGV[5]) end
if not status then return {0, ''} end
if not allowed then return {0, status} end
if ARGV[8] ~= '' then
  -- A record from before the ids moved into it may have them under their own key.
  if record['ids'] == nil then redis.call('DEL', VK[8]) end
  write_vectors(VK, VA, ARGV[8], false, exists)
end
local delivery = ARGV[3]
if ARGV[7] ~= '' then
  delivery = ''
  redis.call('ZADD', KEYS[7], ARGV[7], 'hook:' .. ARGV[1])
end
settle(KEYS[1], record, {'status', ARGV[6], unpack(ARGV, 10 + n)}, KEYS[2], ARGV[1], ARGV[2],
       delivery, KEYS[3], KEYS[4], KEYS[6])
return {1, status}
