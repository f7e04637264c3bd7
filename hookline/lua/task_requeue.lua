-- Write a new broker message for an unfinished task.
-- KEYS: task, active, queue
-- ARGV: id, now, msg data, expected statuses ",A,B,", new status
local status = redis.call('HGET', KEYS[1], 'status')
if not status or not string.find(ARGV[4], ',' .. status .. ',', 1, true) then return 0 end
redis.call('HSET', KEYS[1], 'status', ARGV[5])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('LPUSH', KEYS[3], ARGV[3])
return 1
