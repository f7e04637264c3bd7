-- Put held messages back at the queue's head, in the same order.
-- KEYS: queue, held
-- ARGV: messages, oldest first
for i = #ARGV, 1, -1 do
  if redis.call('LREM', KEYS[2], -1, ARGV[i]) > 0 then
    redis.call('RPUSH', KEYS[1], ARGV[i])
  end
end
return #ARGV
