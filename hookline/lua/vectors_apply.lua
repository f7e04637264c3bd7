-- Apply vectors left in the inbox: a finished job's vectors that an older
-- worker wrote there to be moved into the collection in a second step. The
-- index process sweeps the inbox; workers now write vectors with the step
-- that ends the task (task_finish).
--
-- KEYS: inbox, records, stats, tasks, log, seq, collections, registry, job ids
-- ARGV: task id, log trim cutoff (stream id), tenant, name, registry member,
--       description (JSON) to create the collection with if it is missing,
--       the job's dimension, the collection's uid ('' for any)
-- Returns the vectors written; -1 without an inbox entry; -2 when the
-- collection has another dimension by now (nothing is written).
-- include: vectors_write
local blob = redis.call('HGET', KEYS[1], ARGV[1])
if not blob then return -1 end
redis.call('HDEL', KEYS[1], ARGV[1])
local K = {KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9]}
redis.call('DEL', KEYS[9])
local fits, exists = collection_fits(K, ARGV)
if not fits then return -2 end
return write_vectors(K, ARGV, blob, false, exists)
