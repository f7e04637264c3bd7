-- Change a tenant's callback (URL, description, disabled) and move the change counter on.
-- KEYS: record, url index, tenant index, generation
-- ARGV: tenant, id, prefix, has_url, url, has_description, description,
--       disabled ('', '0', '1'), now
-- Returns the record as HGETALL gives it, or false if it is not the tenant's.
-- include: repoint
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
