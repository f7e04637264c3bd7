-- Walk one tenant's creation-time index, newest first, for tasks that match.
--
-- KEYS: [1] the tenant's index (a sorted set of task ids by creation time)
-- ARGV: [1] the prefix of a task's record key ("hl:task:")
--       [2] where to start: a score ('+inf' for the newest) ...
--       [3] ... and a task id: entries at exactly that score whose id sorts at
--          or above it were seen before ('' skips every entry at that score)
--       [4] the oldest creation time wanted ('-inf' for no bound)
--       [5] statuses wanted as ",A,B," ('' for any)
--       [6] callback id wanted ('' for any)
--       [7] task id prefix wanted ('' for any)
--       [8] matches wanted: the walk stops once it has this many
--       [9] entries to examine at most in this call (bounds the time Redis is held)
--
-- Returns {matches (id, score, id, score, ...), stop score, stop id, reached
-- the end (1) or not (0), entries examined}. The stop position is the last
-- entry examined: the next call starts below it.
local index, prefix = KEYS[1], ARGV[1]
local top, after, bottom = ARGV[2], ARGV[3], tonumber(ARGV[4])
local statuses, callback, id_prefix = ARGV[5], ARGV[6], ARGV[7]
local want, budget = tonumber(ARGV[8]), tonumber(ARGV[9])
local top_score = tonumber(top)
local wanted = nil
if statuses ~= '' then
  wanted = {}
  for status in string.gmatch(statuses, '[^,]+') do wanted[status] = true end
end

local rank = 0
if top ~= '+inf' then rank = redis.call('ZCOUNT', index, '(' .. top, '+inf') end

local found, examined = {}, 0
local stop_score, stop_id = top, after
local batch = 500
while true do
  local rows = redis.call('ZREVRANGE', index, rank, rank + batch - 1, 'WITHSCORES')
  if #rows == 0 then return {found, stop_score, stop_id, 1, examined} end
  rank = rank + #rows / 2
  for i = 1, #rows, 2 do
    local id, raw = rows[i], rows[i + 1]
    local score = tonumber(raw)
    if score < bottom then return {found, stop_score, stop_id, 1, examined} end
    -- Entries tied with the start position that sort at or above its id
    -- come first in this order and were returned before.
    if score ~= top_score or id < after then
      examined = examined + 1
      stop_score, stop_id = raw, id
      local ok = id_prefix == '' or string.sub(id, 1, #id_prefix) == id_prefix
      if ok then
        -- An id whose record expired stays in the index until it is trimmed.
        -- One field is read when the callback is not asked for: the common case.
        local status, cb
        if callback == '' then
          status = redis.call('HGET', prefix .. id, 'status')
        else
          local record = redis.call('HMGET', prefix .. id, 'status', 'cb')
          status, cb = record[1], record[2]
        end
        ok = status and (wanted == nil or wanted[status]) and (callback == '' or cb == callback)
      end
      if ok then
        found[#found + 1] = id
        found[#found + 1] = raw
        if #found / 2 >= want then return {found, stop_score, stop_id, 0, examined} end
      end
      if examined >= budget then return {found, stop_score, stop_id, 0, examined} end
    end
  end
end
