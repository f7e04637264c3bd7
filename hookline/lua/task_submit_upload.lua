-- Accept a task whose vectors are in an upload: the record, its index entries,
-- its broker message, the upload's pin and its Idempotency-Key's answer,
-- together, if the upload still exists.
-- KEYS: task, tenant index, active, queue, upload record, upload's task set,
--       Idempotency-Key (the task's key for none)
-- ARGV: task id, now, message, the key's claim ('' for none), answer,
--       answer's ttl, field, value, ...
-- Returns 1; 0 when the upload is gone (deleted or swept since it was read);
-- -1 when another request holds the key. Nothing is written but on 1.
-- include: claimed_answer
if claim_lost(KEYS[7], ARGV[4]) then return -1 end
if redis.call('EXISTS', KEYS[5]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 7))
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
redis.call('LPUSH', KEYS[4], ARGV[3])
redis.call('HSET', KEYS[5], 'task', ARGV[1])
redis.call('SADD', KEYS[6], ARGV[1])
store_answer(KEYS[7], ARGV[4], ARGV[5], ARGV[6])
return 1
