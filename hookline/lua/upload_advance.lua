-- Record an upload's new offset if the lock and the offset are as the writer expects.
-- KEYS: record, lock
-- ARGV: token, expected offset, new offset, then field/value pairs to set with it
-- Returns 1, or -1 (lock lost), -2 (offset moved), -3 (gone).
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return -1 end
local offset = redis.call('HGET', KEYS[1], 'offset')
if not offset then return -3 end
if offset ~= ARGV[2] then return -2 end
redis.call('HSET', KEYS[1], 'offset', ARGV[3])
for i = 4, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
return 1
