-- Note a delivered webhook: the failure streak ends.
-- KEYS: record, generation
-- ARGV: now
-- A deleted record must not come back as a stub: returns 0 and writes nothing.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'failing_since', '', 'last_success_at', ARGV[1])
redis.call('INCR', KEYS[2])
return 1
