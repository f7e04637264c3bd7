-- Give the held messages of dead workers back to the queue.
-- KEYS: heartbeats, holders, queue
-- ARGV: held key prefix, heartbeat cutoff (ms)
-- Returns how many messages went back to the queue.
local moved = 0
for _, worker in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local beat = redis.call('ZSCORE', KEYS[1], worker)
  if not beat or tonumber(beat) < tonumber(ARGV[2]) then
    local held = ARGV[1] .. worker
    -- Newest first onto the queue's head, so the oldest is taken first.
    while redis.call('LMOVE', held, KEYS[3], 'LEFT', 'RIGHT') do
      moved = moved + 1
    end
    redis.call('SREM', KEYS[2], worker)
  end
end
return moved
