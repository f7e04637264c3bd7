-- Delete a collection with its vectors (UNLINK frees them in the background).
--
-- KEYS: collections, stats, records, tasks, registry, log, seq
-- ARGV: name, registry member, tenant, log trim cutoff (stream id)
-- Returns 1, or 0 when there was no such collection.
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('UNLINK', KEYS[2], KEYS[3], KEYS[4])
redis.call('SREM', KEYS[5], ARGV[2])
local seq = redis.call('INCR', KEYS[7])
redis.call('XADD', KEYS[6], 'MINID', '~', ARGV[4], '*', 'op', 'x', 't', ARGV[3], 'c', ARGV[1],
           's', seq, 'k', '')
return 1
