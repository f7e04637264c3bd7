-- An Idempotency-Key's answer, written in the step that writes its task.
-- The request that claimed the key writes only while the key holds its own
-- claim, or nothing (the claim's lease ran out, or a failover lost it, and
-- no other request has claimed the key since): two requests with one key
-- never both write a task.
local function claim_lost(key, claim)
  if claim == '' then return false end
  local held = redis.call('GET', key)
  return held ~= false and held ~= claim
end

local function store_answer(key, claim, answer, ttl)
  if claim ~= '' then redis.call('SET', key, answer, 'EX', ttl) end
end
