-- Replace an Idempotency-Key's value only if it is still the one read.
-- KEYS: the key
-- ARGV: the value read, the new value ('' to delete), its ttl (s)
-- Returns 1 if replaced (or deleted), 0 if the key holds something else by now.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
end
return 1
