-- A piece: write a job's vectors into its collection.
--
-- K: records, stats, tasks, log, seq, collections, registry, job ids (the
--    key that held a job's ids before they moved into its record; the
--    callers delete it where such a key may exist)
-- A: task id, log trim cutoff (stream id), tenant, name, registry member,
--    description (JSON) to create the collection with if it is missing,
--    the job's dimension, the uid of the collection the vectors were
--    encoded for ('' for any)
-- blob: <I4 n> the task's ids entry (n bytes, hookline/task_entries.py), then
--       per vector <8-byte key> <I4 n> record (n bytes)
-- append: the blob is one part of the job (a piece of a chunk): its named ids
--         entry is added to the task's.
-- keep: the task's entry holds these ids already (a piece written again): it
--       stays as it is.
--
-- The records are read and written a batch at a time, one HMGET and one
-- HSET per batch: a command of each per vector made a job of 16 vectors cost
-- 32 Redis commands more.
local VECTOR_BATCH = 500

-- Whether the collection takes vectors of the job's dimension, and is the
-- one they were encoded for (read only); and whether it exists.
local function collection_fits(K, A)
  local raw = redis.call('HGET', K[6], A[4])
  if not raw then return true, false end
  local described = cjson.decode(raw)
  if A[8] and A[8] ~= '' and described['uid'] ~= A[8] then return false, true end
  local fixed = described['dimension']
  return type(fixed) ~= 'number' or fixed == tonumber(A[7]), true
end

-- A task's named ids entry in the tagged format: one written before the
-- format was tagged (ids joined by newlines, by a chunk that ended before an
-- upgrade) is rewritten, each id with its length before it.
local function tagged(entry)
  if string.sub(entry, 1, 1) == '\0' then return entry end
  local parts = {'\0='}
  for id in string.gmatch(entry, '[^\n]+') do parts[#parts + 1] = struct.pack('<H', #id) .. id end
  return table.concat(parts)
end

-- Returns the number of vectors written. Call collection_fits first;
-- ``exists`` is its second answer (nil when unknown): a missing collection
-- is created with the description in A.
local function write_vectors(K, A, blob, append, exists, keep)
  if not exists and redis.call('HSETNX', K[6], A[4], A[6]) == 1 then
    redis.call('SADD', K[7], A[5])
  end
  local ids_len, pos = struct.unpack('<I4', blob, 1)
  local ids_entry = string.sub(blob, pos, pos + ids_len - 1)
  pos = pos + ids_len
  local keys, counts, bytes = {}, {}, 0
  local batch_keys, batch_pairs = {}, {}
  local function flush()
    if #batch_keys == 0 then return end
    local olds = redis.call('HMGET', K[1], unpack(batch_keys))
    for i = 1, #batch_keys do
      local old = olds[i]
      if old then
        local old_dim = struct.unpack('<H', old, 5)
        counts[old_dim] = (counts[old_dim] or 0) - 1
        bytes = bytes - #old
      end
    end
    redis.call('HSET', K[1], unpack(batch_pairs))
    batch_keys, batch_pairs = {}, {}
  end
  while pos <= #blob do
    local key = string.sub(blob, pos, pos + 7)
    local size = struct.unpack('<I4', blob, pos + 8)
    local record = string.sub(blob, pos + 12, pos + 11 + size)
    pos = pos + 12 + size
    local dim = struct.unpack('<H', record, 5)
    counts[dim] = (counts[dim] or 0) + 1
    bytes = bytes + #record
    batch_keys[#batch_keys + 1] = key
    batch_pairs[#batch_pairs + 1] = key
    batch_pairs[#batch_pairs + 1] = record
    keys[#keys + 1] = key
    if #batch_keys >= VECTOR_BATCH then flush() end
  end
  flush()
  for dim, change in pairs(counts) do
    if change ~= 0 then redis.call('HINCRBY', K[2], 'n:' .. dim, change) end
  end
  redis.call('HINCRBY', K[2], 'b', bytes)
  redis.call('HINCRBY', K[2], 'v', 1)
  if not keep then
    if append then
      local old = redis.call('HGET', K[3], A[1])
      if old and old ~= '' then ids_entry = tagged(old) .. string.sub(ids_entry, 3) end
    end
    redis.call('HSET', K[3], A[1], ids_entry)
  end
  local seq = redis.call('INCR', K[5])
  redis.call('XADD', K[4], 'MINID', '~', A[2], '*', 'op', 'u', 't', A[3], 'c', A[4],
             's', seq, 'k', table.concat(keys))
  return #keys
end
