-- A piece (needs as_record): end a task. ``record`` is the record as read,
-- ``changes`` the fields the end sets. The record is written afresh, without
-- the payload and the run's owner and claim: a new hash takes Redis's compact
-- encoding, where deleting the payload's field would leave the large one
-- behind (about 1.4 KB per finished task instead of 1 KB). A record without a
-- payload field was written before the payload moved into it, and its
-- payload's own key goes instead. ``counts`` is the hash of endings by
-- outcome that hookline_tasks_finished_total exports.
-- include: as_record
local function settle(task, record, changes, active, id, ttl, delivery, queue, legacy, counts)
  for i = 1, #changes, 2 do record[changes[i]] = changes[i + 1] end
  -- Counted in the step that ends the task, so exactly once (SUCCESS -> success).
  redis.call('HINCRBY', counts, string.lower(record['status']), 1)
  if record['payload'] == nil then redis.call('DEL', legacy) end
  record['payload'] = nil
  record['ids'] = nil
  record['owner'] = nil
  record['claim'] = nil
  local fields = {}
  for field, value in pairs(record) do
    fields[#fields + 1] = field
    fields[#fields + 1] = value
  end
  redis.call('DEL', task)
  redis.call('HSET', task, unpack(fields))
  redis.call('EXPIRE', task, ttl)
  redis.call('ZREM', active, id)
  if delivery ~= '' then redis.call('LPUSH', queue, delivery) end
end
