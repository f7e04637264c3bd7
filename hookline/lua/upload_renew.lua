-- Extend an upload's lock while this writer still holds it.
-- KEYS: lock
-- ARGV: token, time to live (ms)
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
