-- Log one webhook attempt and set the delivery state, acknowledging the message.
-- KEYS: task, held list (or the task key), schedule, the callback's failed index,
--       the queue for the next attempt (or the task key)
-- ARGV: attempt record, delivery state, held message (or ''), task id,
--       when the next attempt is due (or ''), now, the retry's schedule member,
--       '1' if the attempt held the delivery's lease on the schedule (or ''),
--       the next attempt's message, queued now (or '')
-- The next attempt's message is queued only while the lease was still held:
-- a lease that ran out was already queued by the schedule.
if ARGV[3] ~= '' then redis.call('LREM', KEYS[2], -1, ARGV[3]) end
local leased = 0
if ARGV[8] == '1' then leased = redis.call('ZREM', KEYS[3], ARGV[7]) end
local state = redis.call('HMGET', KEYS[1], 'delivery', 'wh_attempts', 'pe_attempts')
local previous = state[1]
-- Only a task with a callback has a delivery state; an expired one has none.
if not previous then return {'', 0} end
local n = (tonumber(state[2]) or 0) + 1
local record = string.gsub(ARGV[1], '^{"attempt":0,', '{"attempt":' .. n .. ',', 1)
redis.call('HSET', KEYS[1], 'a:' .. n, record, 'delivery', ARGV[2], 'wh_attempts', n)
if ARGV[5] ~= '' then redis.call('ZADD', KEYS[3], ARGV[5], ARGV[7]) end
if ARGV[9] ~= '' and leased == 1 then redis.call('LPUSH', KEYS[5], ARGV[9]) end
if ARGV[2] == 'failed' then
  redis.call('ZADD', KEYS[4], ARGV[6], ARGV[4])
elseif ARGV[2] == 'delivered' and (previous == 'failed' or previous == 'retrying') then
  redis.call('ZREM', KEYS[4], ARGV[4])
end
-- The attempt's number in its own series: a large job's task.progress
-- attempts share the log (progress_attempt) but not the count.
return {previous, n - (tonumber(state[3]) or 0)}
