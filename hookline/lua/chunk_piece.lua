-- Write one piece of a running chunk's vectors, before the chunk's end.
-- A chunk's vectors go in pieces of about a thousand, so that no command
-- holds a whole chunk (megabytes in a connection's query buffer in Redis);
-- the last piece goes with the chunk's end (chunk_end).
-- KEYS: task, ended set, then the collection's records, stats, tasks, log,
--       seq, collections, registry and job ids keys
-- ARGV: chunk, the chunk's rows up to this piece's end, vectors (see
--       vectors_write), '1' if the vectors' ids entry adds to the task's
--       (named ids), number n of vector arguments, the n vector arguments
-- Returns 1 when written; 0, writing nothing, when the chunk has ended or the
-- task is gone or no longer running; -1 when the task is cancelled; -2 when
-- the collection now has another dimension or is another one. Every piece
-- is in the task's ids entry once written, so a failed job's ending finds
-- and removes it even if its chunk never ended.
-- include: vectors_write
-- include: piece_names
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then return 0 end
local state = redis.call('HMGET', KEYS[1], 'status', 'cancel')
if state[1] ~= 'STARTED' then return 0 end
if state[2] == '1' then return -1 end
local VK, VA = {}, {}
for i = 1, 8 do VK[i] = KEYS[2 + i] end
for i = 1, tonumber(ARGV[5]) do VA[i] = ARGV[5 + i] end
local fits, exists = collection_fits(VK, VA)
if not fits then return -2 end
local named = ARGV[4] == '1'
write_vectors(VK, VA, ARGV[3], named, exists,
              named and not names_are_new(KEYS[1], ARGV[1], tonumber(ARGV[2])))
return 1
