-- Record the rows one chunk of a large job has done (a chunk run twice counts once).
-- KEYS: task
-- ARGV: chunk, rows done in it, now, event interval (s)
-- Returns {cancel, event} (event: see chunk_gate); a record that is gone reads as a cancel.
-- include: chunk_gate
if redis.call('EXISTS', KEYS[1]) == 0 then return {1, 0} end
local field = 'c:' .. ARGV[1]
local old = tonumber(redis.call('HGET', KEYS[1], field) or '0')
local n = tonumber(ARGV[2])
if n > old then
  redis.call('HSET', KEYS[1], field, n)
  redis.call('HINCRBY', KEYS[1], 'done', n - old)
end
local cancel = redis.call('HGET', KEYS[1], 'cancel') == '1' and 1 or 0
return {cancel, gate(KEYS[1], tonumber(ARGV[3]), tonumber(ARGV[4]))}
