-- A piece: whether a piece of a chunk with named ids adds its names to the
-- task's ids entry. ``w:<chunk>`` in the task's record holds how many of the
-- chunk's rows have their names in it (pieces have fixed bounds): a chunk run
-- again after a kill writes its first pieces again, but adds their names once.
local function names_are_new(task, chunk, stop)
  local field = 'w:' .. chunk
  if tonumber(redis.call('HGET', task, field) or '0') >= stop then return false end
  redis.call('HSET', task, field, stop)
  return true
end
