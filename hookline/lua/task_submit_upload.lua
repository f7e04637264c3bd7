-- Accept a task whose vectors are in an upload: the record, its index entries,
-- its broker message and the upload's pin, together, if the upload still exists.
-- KEYS: task, tenant index, active, queue, upload record, upload's task set
-- ARGV: task id, now, message, field, value, ...
-- Returns 1, or 0 when the upload is gone (deleted or swept since it was read).
if redis.call('EXISTS', KEYS[5]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
redis.call('LPUSH', KEYS[4], ARGV[3])
redis.call('HSET', KEYS[5], 'task', ARGV[1])
redis.call('SADD', KEYS[6], ARGV[1])
return 1
