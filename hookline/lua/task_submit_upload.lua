-- Accept a task whose vectors are in an upload: the record, its index entries,
-- its broker message and the pins of its uploads, together, if they still exist.
-- KEYS: task, tenant index, active, queue, then per upload (the vectors', and
--       the ids' when there is one) its record and its task set
-- ARGV: task id, now, message, field, value, ...
-- Returns 1, or 0 when an upload is gone (deleted or swept since it was read).
for i = 5, #KEYS, 2 do
  if redis.call('EXISTS', KEYS[i]) == 0 then return 0 end
end
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
redis.call('LPUSH', KEYS[4], ARGV[3])
for i = 5, #KEYS, 2 do
  redis.call('HSET', KEYS[i], 'task', ARGV[1])
  redis.call('SADD', KEYS[i + 1], ARGV[1])
end
return 1
