"""The Redis scripts of the callback registry, each one atomic step.

Each script checks what it may change inside Redis (the tenant, the record's
existence), so that one tenant can never touch another's record, and moves
the change counter (``cb:gen``) on in the same step.
"""
from __future__ import annotations

# Point the URL index away from a callback that no longer has ``url``: at the
# newest other callback of the tenant with that URL, or nowhere.
REPOINT_LUA = """
local function repoint(urls, index, prefix, url, cb_id)
  if not url or redis.call('HGET', urls, url) ~= cb_id then return end
  for _, member in ipairs(redis.call('ZREVRANGEBYLEX', index, '+', '-')) do
    local other = string.match(member, ':(.*)$')
    if other ~= cb_id and redis.call('HGET', prefix .. 'cb:' .. other, 'url') == url then
      redis.call('HSET', urls, url, other)
      return
    end
  end
  redis.call('HDEL', urls, url)
end
"""

# KEYS: record, url index, tenant index, generation
# ARGV: tenant, id, prefix, has_url, url, has_description, description, disabled ('', '0', '1'), now
# -> the record as HGETALL gives it, or false if it is not the tenant's
UPDATE_LUA = REPOINT_LUA + """
if redis.call('HGET', KEYS[1], 'tenant') ~= ARGV[1] then return false end
if ARGV[4] == '1' then
  local old = redis.call('HGET', KEYS[1], 'url')
  if old ~= ARGV[5] then
    redis.call('HSET', KEYS[1], 'url', ARGV[5])
    repoint(KEYS[2], KEYS[3], ARGV[3], old, ARGV[2])
    redis.call('HSET', KEYS[2], ARGV[5], ARGV[2])
  end
end
if ARGV[6] == '1' then redis.call('HSET', KEYS[1], 'description', ARGV[7]) end
if ARGV[8] == '1' and redis.call('HGET', KEYS[1], 'disabled') ~= '1' then
  redis.call('HSET', KEYS[1], 'disabled', '1', 'disabled_reason', 'manual', 'disabled_at', ARGV[9])
elseif ARGV[8] == '0' then
  redis.call('HSET', KEYS[1], 'disabled', '0', 'disabled_reason', '', 'disabled_at', '',
             'failing_since', '')
end
redis.call('INCR', KEYS[4])
return redis.call('HGETALL', KEYS[1])
"""

# KEYS: record, url index, tenant index, generation; ARGV: tenant, id, prefix -> 1 if deleted
DELETE_LUA = REPOINT_LUA + """
if redis.call('HGET', KEYS[1], 'tenant') ~= ARGV[1] then return 0 end
local fields = redis.call('HMGET', KEYS[1], 'url', 'order')
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[3], fields[2])
repoint(KEYS[2], KEYS[3], ARGV[3], fields[1], ARGV[2])
redis.call('INCR', KEYS[4])
return 1
"""

# KEYS: record, generation; ARGV: reason, now -> 1 if this call disabled it
DISABLE_LUA = """
if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('HGET', KEYS[1], 'disabled') == '1' then
  return 0
end
redis.call('HSET', KEYS[1], 'disabled', '1', 'disabled_reason', ARGV[1], 'disabled_at', ARGV[2])
redis.call('INCR', KEYS[2])
return 1
"""

# KEYS: record, generation; ARGV: now, disable_after -> 1 if this failure disabled it
FAILURE_LUA = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local state = redis.call('HMGET', KEYS[1], 'failing_since', 'disabled')
local since = state[1]
if not since or since == '' then
  since = ARGV[1]
  redis.call('HSET', KEYS[1], 'failing_since', since)
  redis.call('INCR', KEYS[2])
end
if state[2] ~= '1' and tonumber(ARGV[1]) - tonumber(since) >= tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], 'disabled', '1', 'disabled_reason', 'failing', 'disabled_at', ARGV[1])
  redis.call('INCR', KEYS[2])
  return 1
end
return 0
"""

# KEYS: record, generation; ARGV: now. A deleted record must not come back as a stub.
SUCCESS_LUA = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'failing_since', '', 'last_success_at', ARGV[1])
redis.call('INCR', KEYS[2])
return 1
"""
