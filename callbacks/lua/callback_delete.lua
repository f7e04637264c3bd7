-- Delete a tenant's callback and its index entries, moving the change counter on.
-- KEYS: record, url index, tenant index, generation
-- ARGV: tenant, id, prefix
-- Returns 1 if deleted, 0 if it is not the tenant's.
-- include: repoint
if redis.call('HGET', KEYS[1], 'tenant') ~= ARGV[1] then return 0 end
local fields = redis.call('HMGET', KEYS[1], 'url', 'order')
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[3], fields[2])
repoint(KEYS[2], KEYS[3], ARGV[3], fields[1], ARGV[2])
redis.call('INCR', KEYS[4])
return 1
