-- Take up to ``count`` messages, oldest first.
-- KEYS: queue, held
-- ARGV: count
local taken = redis.call('RPOP', KEYS[1], tonumber(ARGV[1]))
if not taken then return {} end
redis.call('LPUSH', KEYS[2], unpack(taken))
return taken
