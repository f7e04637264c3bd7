-- Recent outcomes of one tenant's tasks, for the console's overview.
--
-- KEYS: [1] the tenant's index (a sorted set of task ids by creation time)
-- ARGV: [1] the prefix of a task's record key ("hl:task:")
--       [2] now (Unix seconds)
--       [3] the window: tasks that ended in the last this many seconds count
--       [4] the oldest creation time looked at (a task created before it is
--          not seen even if it ended inside the window)
--       [5] entries to examine at most, newest first
--       [6] where to start: '+inf', or '(' and the creation time of the last
--          entry a previous call examined
--
-- Returns {per-minute counts as a flat list of (minutes ago, status) pairs
-- and counts ("3:SUCCESS", n, ...), delivery states of the tasks that ended in
-- the window as (state, n, ...), entries examined, reached the oldest (1/0),
-- the creation time of the last entry examined}.
local index, prefix = KEYS[1], ARGV[1]
local now, window = tonumber(ARGV[2]), tonumber(ARGV[3])
local oldest, budget, start = ARGV[4], tonumber(ARGV[5]), ARGV[6]

local rows = redis.call('ZREVRANGEBYSCORE', index, start, oldest, 'WITHSCORES', 'LIMIT', 0, budget)
local minutes, deliveries = {}, {}
local last = ''
for i = 1, #rows, 2 do
  local id = rows[i]
  last = rows[i + 1]
  local record = redis.call('HMGET', prefix .. id, 'status', 'finished', 'delivery')
  local finished = tonumber(record[2])
  if record[1] and finished and now - finished < window and now >= finished then
    local slot = math.floor((now - finished) / 60) .. ':' .. record[1]
    minutes[slot] = (minutes[slot] or 0) + 1
    if record[3] then deliveries[record[3]] = (deliveries[record[3]] or 0) + 1 end
  end
end
local flat_minutes, flat_deliveries = {}, {}
for slot, n in pairs(minutes) do
  flat_minutes[#flat_minutes + 1] = slot
  flat_minutes[#flat_minutes + 1] = n
end
for state, n in pairs(deliveries) do
  flat_deliveries[#flat_deliveries + 1] = state
  flat_deliveries[#flat_deliveries + 1] = n
end
local complete = 1
if #rows / 2 >= budget then complete = 0 end
return {flat_minutes, flat_deliveries, #rows / 2, complete, last}
