-- Mark a running task RETRY and put it on the schedule.
-- KEYS: task, schedule
-- ARGV: id, due, error, owner
local record = redis.call('HMGET', KEYS[1], 'status', 'owner')
if record[1] ~= 'STARTED' or record[2] ~= ARGV[4] then return 0 end
redis.call('HSET', KEYS[1], 'status', 'RETRY', 'error', ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[2], 'job:' .. ARGV[1])
return 1
