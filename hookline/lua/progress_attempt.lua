-- Log one attempt of a task.progress webhook, acknowledging its message.
-- KEYS: task, held list (or the task key), schedule
-- ARGV: attempt record, held message (or ''), event number, when its retry
--       is due (or ''), the retry (JSON, or ''), the retry's schedule member
-- The attempt goes into the task's attempts log, numbered with the terminal
-- webhook's attempts (``wh_attempts``) and counted apart (``pe_attempts``),
-- so the task's delivery state and the terminal webhook's retry schedule stay
-- its own. The attempt's lease ends. A retry is kept only while the event is
-- the task's newest and the task runs. Returns the attempt's number in the
-- log, 0 when the task is gone.
if ARGV[2] ~= '' then redis.call('LREM', KEYS[2], -1, ARGV[2]) end
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local n = redis.call('HINCRBY', KEYS[1], 'wh_attempts', 1)
redis.call('HINCRBY', KEYS[1], 'pe_attempts', 1)
local record = string.gsub(ARGV[1], '^{"attempt":0,', '{"attempt":' .. n .. ',', 1)
redis.call('HSET', KEYS[1], 'a:' .. n, record)
redis.call('HDEL', KEYS[1], 'pe_busy', 'pe_retry')
local s = redis.call('HMGET', KEYS[1], 'status', 'ending', 'cancel', 'pe_n')
if ARGV[4] ~= '' and s[1] == 'STARTED' and not s[2] and s[3] ~= '1' and s[4] == ARGV[3] then
  redis.call('HSET', KEYS[1], 'pe_retry', ARGV[5])
  redis.call('ZADD', KEYS[3], ARGV[4], ARGV[6])
end
return n
