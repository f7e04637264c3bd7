-- Apply a finished job's vectors: move them from the inbox into the collection.
-- Runs in the transaction that ends the task (right after the finish script,
-- which wrote the inbox entry only if this call ended the task), and again
-- from the index process for any entry a failed step left behind.
--
-- KEYS: inbox, records, stats, tasks, log, seq, collections, registry, job ids
-- ARGV: task id, log trim cutoff (stream id), tenant, name, registry member,
--       description (JSON) to create the collection with if it is missing,
--       the job's dimension
-- Inbox entry: <I4 n> the task's ids entry (n bytes), then per vector
--              <8-byte key> <I4 n> record (n bytes)
-- Returns the vectors written; -1 without an inbox entry; -2 when the
-- collection has another dimension by now (nothing is written).
local blob = redis.call('HGET', KEYS[1], ARGV[1])
if not blob then return -1 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[9])
redis.call('HSETNX', KEYS[7], ARGV[4], ARGV[6])
local described = cjson.decode(redis.call('HGET', KEYS[7], ARGV[4]))
local fixed = described['dimension']
if type(fixed) == 'number' and fixed ~= tonumber(ARGV[7]) then return -2 end
redis.call('SADD', KEYS[8], ARGV[5])

local ids_len, pos = struct.unpack('<I4', blob, 1)
local ids_entry = string.sub(blob, pos, pos + ids_len - 1)
pos = pos + ids_len
local keys, counts, bytes, written = {}, {}, 0, 0
while pos <= #blob do
  local key = string.sub(blob, pos, pos + 7)
  local size = struct.unpack('<I4', blob, pos + 8)
  local record = string.sub(blob, pos + 12, pos + 11 + size)
  pos = pos + 12 + size
  local old = redis.call('HGET', KEYS[2], key)
  if old then
    local old_dim = struct.unpack('<H', old, 5)
    counts[old_dim] = (counts[old_dim] or 0) - 1
    bytes = bytes - #old
  end
  local dim = struct.unpack('<H', record, 5)
  counts[dim] = (counts[dim] or 0) + 1
  bytes = bytes + #record
  redis.call('HSET', KEYS[2], key, record)
  keys[#keys + 1] = key
  written = written + 1
end
for dim, change in pairs(counts) do
  if change ~= 0 then redis.call('HINCRBY', KEYS[3], 'n:' .. dim, change) end
end
redis.call('HINCRBY', KEYS[3], 'b', bytes)
redis.call('HINCRBY', KEYS[3], 'v', 1)
redis.call('HSET', KEYS[4], ARGV[1], ids_entry)
local seq = redis.call('INCR', KEYS[6])
redis.call('XADD', KEYS[5], 'MINID', '~', ARGV[2], '*', 'op', 'u', 't', ARGV[3], 'c', ARGV[4],
           's', seq, 'k', table.concat(keys))
return written
