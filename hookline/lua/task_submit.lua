-- Accept a task: its record, index entries and broker message in one step.
-- KEYS: task, tenant index, active, queue
-- ARGV: id, now, message, index trim cutoff ('' for none), field, value, ...
redis.call('HSET', KEYS[1], unpack(ARGV, 5))
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
redis.call('LPUSH', KEYS[4], ARGV[3])
if ARGV[4] ~= '' then redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[4]) end
return 1
