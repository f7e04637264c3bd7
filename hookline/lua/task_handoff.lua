-- Hand a leased webhook delivery to its queue, once.
-- KEYS: schedule, delivery queue
-- ARGV: the lease's schedule member, delivery message
-- A lease that is gone was delivered, or already sent by the schedule.
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('LPUSH', KEYS[2], ARGV[2])
return 1
