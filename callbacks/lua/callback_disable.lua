-- Disable a callback for a reason, unless it is gone or disabled already.
-- KEYS: record, generation
-- ARGV: reason, now
-- Returns 1 if this call disabled it.
if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('HGET', KEYS[1], 'disabled') == '1' then
  return 0
end
redis.call('HSET', KEYS[1], 'disabled', '1', 'disabled_reason', ARGV[1], 'disabled_at', ARGV[2])
redis.call('INCR', KEYS[2])
return 1
