-- Move a held message to the dead letters.
-- KEYS: held, dead
-- ARGV: message, how many dead letters to keep
redis.call('LREM', KEYS[1], -1, ARGV[1])
redis.call('LPUSH', KEYS[2], ARGV[1])
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[2]) - 1)
return 1
