-- Delete vectors of a collection by key, optionally only those of one task.
--
-- KEYS: records, stats, tasks, log, seq
-- ARGV: tenant, name, log trim cutoff (stream id), task id ('' for any),
--       8-byte key, ...
-- Returns the number of vectors deleted.
local deleted, counts, bytes = {}, {}, 0
local task = ARGV[4]
for i = 5, #ARGV do
  local old = redis.call('HGET', KEYS[1], ARGV[i])
  if old then
    -- The task id starts after the 13-byte header; its length is byte 7.
    local task_len = string.byte(old, 7)
    if task == '' or string.sub(old, 14, 13 + task_len) == task then
      local dim = struct.unpack('<H', old, 5)
      counts[dim] = (counts[dim] or 0) - 1
      bytes = bytes - #old
      redis.call('HDEL', KEYS[1], ARGV[i])
      deleted[#deleted + 1] = ARGV[i]
    end
  end
end
if task ~= '' then redis.call('HDEL', KEYS[3], task) end
if #deleted == 0 then return 0 end
for dim, change in pairs(counts) do redis.call('HINCRBY', KEYS[2], 'n:' .. dim, change) end
redis.call('HINCRBY', KEYS[2], 'b', bytes)
redis.call('HINCRBY', KEYS[2], 'v', 1)
local seq = redis.call('INCR', KEYS[5])
redis.call('XADD', KEYS[4], 'MINID', '~', ARGV[3], '*', 'op', 'd', 't', ARGV[1], 'c', ARGV[2],
           's', seq, 'k', table.concat(deleted))
return #deleted
