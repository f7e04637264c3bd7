-- A piece: the progress-event gate of a large job. 1 if this caller may send a
-- task.progress event now (and the next may not for ``interval`` seconds).
local function gate(task, now, interval)
  if redis.call('HGET', task, 'pe') ~= '1' then return 0 end
  local last = tonumber(redis.call('HGET', task, 'pe_at') or '0')
  if now - last < interval then return 0 end
  redis.call('HSET', task, 'pe_at', now)
  return 1
end
