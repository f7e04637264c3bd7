-- A piece: the progress-event gate of a large job. The number of the
-- task.progress event this caller may send now (counting from 1); the next
-- may not go for ``interval`` seconds. 0 when none may go: events are off,
-- the last one is too recent or showed the same count of vectors done, or
-- the task is stopping or ending.
local function gate(task, now, interval)
  local s = redis.call('HMGET', task, 'pe', 'pe_at', 'status', 'cancel', 'ending', 'done', 'pe_done')
  if s[1] ~= '1' or s[3] ~= 'STARTED' or s[4] == '1' or s[5] then return 0 end
  if now - tonumber(s[2] or '0') < interval or s[6] == s[7] then return 0 end
  redis.call('HSET', task, 'pe_at', now, 'pe_done', s[6] or '0')
  return redis.call('HINCRBY', task, 'pe_n', 1)
end
