-- Accept a task whose vectors are in an upload: the record, its index entries,
-- its broker message, the pins of its uploads and its Idempotency-Key's
-- answer, together, if the uploads still exist.
-- KEYS: task, tenant index, active, queue, then per upload (the vectors', and
--       the ids' when there is one) its record and its task set, then the
--       Idempotency-Key (the task's key for none)
-- ARGV: task id, now, message, the key's claim ('' for none), answer,
--       answer's ttl, field, value, ...
-- Returns 1; 0 when an upload is gone (deleted or swept since it was read);
-- -1 when another request holds the key. Nothing is written but on 1.
-- include: claimed_answer
local answer_key = KEYS[#KEYS]
if claim_lost(answer_key, ARGV[4]) then return -1 end
for i = 5, #KEYS - 1, 2 do
  if redis.call('EXISTS', KEYS[i]) == 0 then return 0 end
end
redis.call('HSET', KEYS[1], unpack(ARGV, 7))
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
redis.call('LPUSH', KEYS[4], ARGV[3])
for i = 5, #KEYS - 1, 2 do
  redis.call('HSET', KEYS[i], 'task', ARGV[1])
  redis.call('SADD', KEYS[i + 1], ARGV[1])
end
store_answer(answer_key, ARGV[4], ARGV[5], ARGV[6])
return 1
