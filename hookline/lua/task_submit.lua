-- Accept a task: its record, index entries, broker message and its
-- Idempotency-Key's answer in one step.
-- KEYS: task, tenant index, active, queue, Idempotency-Key (the task's key for none)
-- ARGV: id, now, message, index trim cutoff ('' for none),
--       the key's claim ('' for none), answer, answer's ttl, field, value, ...
-- Returns 1, or -1 when another request holds the key (nothing written).
-- include: claimed_answer
if claim_lost(KEYS[5], ARGV[5]) then return -1 end
redis.call('HSET', KEYS[1], unpack(ARGV, 8))
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
redis.call('LPUSH', KEYS[4], ARGV[3])
if ARGV[4] ~= '' then redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[4]) end
store_answer(KEYS[5], ARGV[5], ARGV[6], ARGV[7])
return 1
