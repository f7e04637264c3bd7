-- Account for the end of one chunk of a large job, once, with its vectors.
-- KEYS: task, ended set, then, for a chunk's vectors, its collection's
--       records, stats, tasks, log, seq, collections, registry and job ids keys
-- ARGV: chunk, outcome, rows, statistics (JSON or ''), error (or ''), now,
--       event interval (s), seconds the ended set lives, vectors (or ''; the
--       chunk's last piece, its earlier ones written by chunk_piece),
--       '1' if the vectors' ids entry adds to the task's (named ids),
--       number n of vector arguments, the n vector arguments (see vectors_write)
-- Returns {first, last, cancel, event}: first is 0 when this chunk had already
-- ended (nothing changes); last is 1 for the one end that accounts for the
-- task's last chunk; event is the number of the task.progress event the
-- caller sends (0: none; see chunk_gate). {-2, 0, 0, 0}, changing nothing, when the vectors'
-- collection now has another dimension. A successful chunk's vectors are
-- written in this step, so a chunk counted done implies them; they are not
-- written once the task is cancelled or no longer running (its ending
-- removes what its chunks wrote).
-- include: chunk_gate
-- include: vectors_write
-- include: piece_names
if redis.call('EXISTS', KEYS[1]) == 0 then return {0, 0, 1, 0} end
local blob = ARGV[9] or ''
local VK, VA = {}, {}
if blob ~= '' then
  for i = 1, 8 do VK[i] = KEYS[2 + i] end
  for i = 1, tonumber(ARGV[11]) do VA[i] = ARGV[11 + i] end
  if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 0 and not collection_fits(VK, VA) then
    return {-2, 0, 0, 0}
  end
end
if redis.call('SADD', KEYS[2], ARGV[1]) == 0 then
  return {0, 0, redis.call('HGET', KEYS[1], 'cancel') == '1' and 1 or 0, 0}
end
redis.call('EXPIRE', KEYS[2], ARGV[8])
local counters = {success = 'ch_done', failure = 'ch_failed', revoked = 'ch_revoked'}
redis.call('HINCRBY', KEYS[1], counters[ARGV[2]], 1)
if ARGV[2] == 'success' then
  local field = 'c:' .. ARGV[1]
  local old = tonumber(redis.call('HGET', KEYS[1], field) or '0')
  redis.call('HSET', KEYS[1], field, ARGV[3])
  redis.call('HINCRBY', KEYS[1], 'done', tonumber(ARGV[3]) - old)
  if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 's:' .. ARGV[1], ARGV[4]) end
  local state = redis.call('HMGET', KEYS[1], 'status', 'cancel')
  if blob ~= '' and state[1] == 'STARTED' and state[2] ~= '1' then
    local named = ARGV[10] == '1'
    write_vectors(VK, VA, blob, named, nil,
                  named and not names_are_new(KEYS[1], ARGV[1], tonumber(ARGV[3])))
  end
elseif ARGV[2] == 'failure' then
  -- The others stop at their next progress point; the first reason is kept.
  redis.call('HSET', KEYS[1], 'cancel', '1')
  redis.call('HSETNX', KEYS[1], 'chunk_error', ARGV[5])
end
local counts = redis.call('HMGET', KEYS[1], 'ch_done', 'ch_failed', 'ch_revoked', 'ch_total')
local ended = (tonumber(counts[1]) or 0) + (tonumber(counts[2]) or 0) + (tonumber(counts[3]) or 0)
local last = 0
-- ``ending`` holds when the last end came: the reconciler finishes a task
-- whose ending has stood too long (its ender died before it ended it).
if counts[4] and ended >= tonumber(counts[4]) and redis.call('HSETNX', KEYS[1], 'ending', ARGV[6]) == 1 then
  last = 1
end
local cancel = redis.call('HGET', KEYS[1], 'cancel') == '1' and 1 or 0
if last == 1 then return {1, 1, cancel, 0} end
return {1, 0, cancel, gate(KEYS[1], tonumber(ARGV[6]), tonumber(ARGV[7]))}
