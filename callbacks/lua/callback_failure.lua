-- Note a failed delivery; disable the callback once it has failed for long enough.
-- KEYS: record, generation
-- ARGV: now, disable_after (s)
-- Returns 1 if this failure disabled it.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local state = redis.call('HMGET', KEYS[1], 'failing_since', 'disabled')
local since = state[1]
if not since or since == '' then
  since = ARGV[1]
  redis.call('HSET', KEYS[1], 'failing_since', since)
  redis.call('INCR', KEYS[2])
end
if state[2] ~= '1' and tonumber(ARGV[1]) - tonumber(since) >= tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], 'disabled', '1', 'disabled_reason', 'failing', 'disabled_at', ARGV[1])
  redis.call('INCR', KEYS[2])
  return 1
end
return 0
