-- Cancel a tenant's task: revoke it if it has not started, else ask it to stop.
-- KEYS: task, active, delivery queue, legacy payload, finished counts
-- ARGV: id, ttl, delivery message (or ''), tenant, now
-- include: settle
local record = as_record(redis.call('HGETALL', KEYS[1]))
local status = record['status']
if not status or record['tenant'] ~= ARGV[4] then return {0, ''} end
if status == 'PENDING' or status == 'RETRY' then
  settle(KEYS[1], record, {'status', 'REVOKED', 'finished', ARGV[5], 'cancel', '1',
                         'error', 'cancelled before it started'},
         KEYS[2], ARGV[1], ARGV[2], ARGV[3], KEYS[3], KEYS[4], KEYS[5])
  return {1, status}
end
if status == 'STARTED' then
  redis.call('HSET', KEYS[1], 'cancel', '1')
  return {2, status}
end
return {0, status}
